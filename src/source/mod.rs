//! Socket sources. `auto` uses netlink and falls back to procfs only when the kernel refuses
//! netlink (a locked-down container), never on a decode error.
//!
//! Neither source is a consistent snapshot: the kernel walks its hash tables while sockets come
//! and go, and a socket that moves during the walk is reported twice (measured with three
//! threads opening and closing loopback connections: 13,630 duplicate lines over 81 reads of
//! `/proc/net/tcp`). Every read is therefore deduplicated by (local, peer, inode), keeping the
//! first report, so no socket is ever counted twice.

#[cfg(target_os = "linux")]
pub mod netlink;
#[cfg(target_os = "linux")]
pub mod procfs;

use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::model::{ProcPaths, Snapshot, Source};

#[cfg(target_os = "linux")]
pub fn read(choice: Source, filter: &Filter, paths: &ProcPaths) -> Result<Snapshot> {
    let taken_at = SystemTime::now();
    let (source, sockets) = match choice {
        Source::Netlink => (Source::Netlink, netlink::read(filter)?),
        Source::Procfs => (Source::Procfs, procfs::read(filter, paths)?),
        Source::Auto => match netlink::read(filter) {
            Ok(sockets) => (Source::Netlink, sockets),
            Err(Error::NetlinkRefused(_)) => (Source::Procfs, procfs::read(filter, paths)?),
            Err(e) => return Err(e),
        },
    };
    Ok(Snapshot { source, taken_at, sockets: dedup(sockets) })
}

/// Drops second reports of the same socket (same local and peer address and inode). A TCP
/// 4-tuple names one socket; the inode keeps `SO_REUSEPORT` listeners, which share an address,
/// apart.
fn dedup(mut sockets: Vec<crate::model::Socket>) -> Vec<crate::model::Socket> {
    let mut seen = std::collections::HashSet::with_capacity(sockets.len());
    sockets.retain(|s| seen.insert((s.local, s.peer, s.inode)));
    sockets
}

#[cfg(not(target_os = "linux"))]
pub fn read(_choice: Source, _filter: &Filter, _paths: &ProcPaths) -> Result<Snapshot> {
    let _ = SystemTime::now();
    Err(Error::Unsupported("reading TCP sockets"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Endpoint, Family, Socket, TcpState};

    #[test]
    fn a_socket_reported_twice_counts_once() {
        let socket = |peer: &str, inode| Socket {
            family: Family::Inet,
            state: TcpState::Established,
            local: Endpoint("127.0.0.1:8787".parse().unwrap()),
            peer: Endpoint(peer.parse().unwrap()),
            recv_q: 0,
            send_q: 0,
            timer: None,
            uid: 0,
            inode,
            process: None,
            idle: None,
            sockopts: None,
        };
        let mut moved = socket("127.0.0.1:40000", 7);
        moved.state = TcpState::CloseWait;
        let listeners = [socket("0.0.0.0:0", 1), socket("0.0.0.0:0", 2)]; // SO_REUSEPORT pair
        let out = dedup(vec![socket("127.0.0.1:40000", 7), moved, listeners[0].clone(), listeners[1].clone()]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].state, TcpState::Established, "the first report is kept");
    }
}
