//! Socket sources. `auto` uses netlink and falls back to procfs only when the kernel refuses
//! netlink (a locked-down container), never on a decode error.
//!
//! Neither source is a consistent snapshot: the kernel walks its hash tables while sockets come
//! and go, and a socket that moves during the walk is reported twice (measured with three
//! threads opening and closing loopback connections: 13,630 duplicate lines over 81 reads of
//! `/proc/net/tcp`). Both dumps are made in chunks (a datagram, a `read()`), and each chunk
//! resumes the walk at a position counted within a hash bucket (sock_diag) or within the table
//! (procfs); sockets added before that position since the last chunk push the ones already
//! reported past it, so the last few of one chunk come again at the start of the next. A
//! second report therefore follows the first by about as many sockets as were added in between
//! (a few, even under churn), and every read is deduplicated over a window of the last
//! [`DEDUP_WINDOW`] to `2 × DEDUP_WINDOW` sockets of each family, keeping the first report: no
//! socket is counted twice, and the cost does not grow with the host.

#[cfg(target_os = "linux")]
pub mod netlink;
#[cfg(target_os = "linux")]
pub mod procfs;
pub mod tcpinfo;

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::time::SystemTime;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::model::{Extras, ProcPaths, Snapshot, Socket, Source};

/// Reads the sockets `filter` selects from `choice` (`Auto`: netlink, else procfs where netlink is refused).
#[cfg(target_os = "linux")]
pub fn read(choice: Source, filter: &Filter, extras: Extras, paths: &ProcPaths) -> Result<Snapshot> {
    let taken_at = SystemTime::now();
    let (source, (mut v4, v6)) =
        scan(choice, filter, extras, paths, &Vec::new, &|out: &mut Vec<Socket>, s| out.push(s))?;
    v4.extend(v6);
    Ok(Snapshot {
        source,
        taken_at,
        sockets: v4,
        unavailable: unavailable(source, extras),
        processes: Vec::new(),
        queues: Vec::new(),
    })
}

/// Hands each socket `filter` selects from `choice` to `visit`, with its address family's
/// accumulator (made by `make`), deduplicated as it arrives; returns the source that answered
/// and the IPv4 and IPv6 accumulators. Nothing else is kept, whatever the number of sockets.
/// Where `Auto` falls back to procfs, the accumulators are made afresh.
#[cfg(target_os = "linux")]
pub fn scan<T, M, V>(
    choice: Source,
    filter: &Filter,
    extras: Extras,
    paths: &ProcPaths,
    make: &M,
    visit: &V,
) -> Result<(Source, (T, T))>
where
    T: Send,
    M: Fn() -> T + Sync,
    V: Fn(&mut T, Socket) + Sync,
{
    let make = || (Dedup::default(), make());
    let visit = |(dedup, acc): &mut (Dedup, T), s: Socket| {
        if dedup.first(&s) {
            visit(acc, s);
        }
    };
    let strip = |((_, a), (_, b)): ((Dedup, T), (Dedup, T))| (a, b);
    Ok(match choice {
        Source::Netlink => (Source::Netlink, strip(netlink::scan(filter, extras, &make, &visit)?)),
        Source::Procfs => (Source::Procfs, strip(procfs::scan(filter, extras, paths, &make, &visit)?)),
        Source::Auto => match netlink::scan(filter, extras, &make, &visit) {
            Ok(both) => (Source::Netlink, strip(both)),
            Err(Error::NetlinkRefused(_)) => {
                (Source::Procfs, strip(procfs::scan(filter, extras, paths, &make, &visit)?))
            }
            Err(e) => return Err(e),
        },
    })
}

/// The fields asked for in `extras` that `source` cannot give.
pub fn unavailable(source: Source, extras: Extras) -> Vec<&'static str> {
    let mut unavailable = Vec::new();
    #[cfg(target_os = "linux")]
    if source == Source::Procfs {
        for (asked, fields) in [
            (extras.info, procfs::UNAVAILABLE_INFO),
            (extras.memory, procfs::UNAVAILABLE_MEMORY),
            (extras.cgroup, &["cgroup"]),
        ] {
            if asked {
                unavailable.extend_from_slice(fields);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (source, extras);
    unavailable
}

/// Sockets of one family kept to recognise a second report, at least (see the module's notes).
pub const DEDUP_WINDOW: usize = 1024;

/// A socket as deduplication tells it apart: a socket's own name is its inode (`SO_REUSEPORT`
/// listeners share an address, not an inode); sockets without one (TIME-WAIT, orphans, those
/// in a listen queue) are told apart by their 4-tuple.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Ident {
    inode: u64,
    local: crate::model::Endpoint,
    peer: crate::model::Endpoint,
}

/// Recognises second reports among one family's recent sockets: the last [`DEDUP_WINDOW`] to
/// `2 × DEDUP_WINDOW` of them, in two generations. One 64-bit key per socket goes into a map
/// with a cheap unkeyed hash; equal keys are confirmed on the sockets' identities, so a key
/// collision never drops a socket.
#[derive(Default)]
pub struct Dedup {
    current: HashMap<u64, Ident, BuildHasherDefault<Mix>>,
    previous: HashMap<u64, Ident, BuildHasherDefault<Mix>>,
    /// Identities whose key another socket took (a collision: almost never), of both generations.
    collided: Vec<Ident>,
}

impl Dedup {
    /// Whether this is the first report of `s` (else it is a duplicate, to be dropped).
    pub fn first(&mut self, s: &Socket) -> bool {
        let ident = Ident { inode: s.inode, local: s.local, peer: s.peer };
        let key = if s.inode != 0 { s.inode } else { tuple_key(s) };
        let same = |map: &HashMap<u64, Ident, BuildHasherDefault<Mix>>| map.get(&key).map(|&i| i == ident);
        match (same(&self.current), same(&self.previous)) {
            (Some(true), _) | (_, Some(true)) => return false,
            _ if self.collided.contains(&ident) => return false,
            (None, _) => {
                self.current.insert(key, ident);
            }
            (Some(false), _) => self.collided.push(ident),
        }
        if self.current.len() >= DEDUP_WINDOW {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.clear();
            if self.collided.len() > DEDUP_WINDOW {
                self.collided.drain(..DEDUP_WINDOW / 2);
            }
        }
        true
    }
}

/// A 64-bit digest of a socket's 4-tuple (only used as a map key; equal keys are confirmed).
fn tuple_key(s: &Socket) -> u64 {
    let bits = |e: crate::model::Endpoint| -> u64 {
        let ip = match e.ip() {
            std::net::IpAddr::V4(a) => u128::from(u32::from(a)),
            std::net::IpAddr::V6(a) => u128::from(a),
        };
        ((ip >> 64) as u64 ^ ip as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ u64::from(e.port())
    };
    bits(s.local).rotate_left(32) ^ bits(s.peer).wrapping_mul(0xC2B2_AE3D_27D4_EB4F)
}

/// Keys here are inodes (kernel counters) and 4-tuple digests, not attacker-chosen strings, so
/// no keyed hash is needed; but the map takes its bucket from the low bits, so every input bit
/// must reach them (splitmix64's finalizer). A plain multiply did not: TIME-WAIT digests that
/// differed only in their high bits piled into three buckets and the read took 10 % longer.
#[derive(Default)]
struct Mix(u64);

impl std::hash::Hasher for Mix {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        let mut z = self.0 ^ n;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.0 = z ^ (z >> 31);
    }
}

/// Ends one socket in the kernel (`SOCK_DESTROY`, as `ss -K`); see `netlink::destroy`.
#[cfg(target_os = "linux")]
pub fn destroy(socket: &Socket) -> std::io::Result<()> {
    netlink::destroy(socket)
}

#[cfg(not(target_os = "linux"))]
pub fn destroy(_: &Socket) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "SOCK_DESTROY is only supported on Linux"))
}

#[cfg(not(target_os = "linux"))]
pub fn scan<T, M, V>(
    _choice: Source,
    _filter: &Filter,
    _extras: Extras,
    _paths: &ProcPaths,
    _make: &M,
    _visit: &V,
) -> Result<(Source, (T, T))>
where
    T: Send,
    M: Fn() -> T + Sync,
    V: Fn(&mut T, Socket) + Sync,
{
    Err(Error::Unsupported("reading TCP sockets"))
}

#[cfg(not(target_os = "linux"))]
pub fn read(_choice: Source, _filter: &Filter, _extras: Extras, _paths: &ProcPaths) -> Result<Snapshot> {
    let _ = SystemTime::now();
    Err(Error::Unsupported("reading TCP sockets"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TcpState;

    fn dedup(sockets: Vec<Socket>) -> Vec<Socket> {
        let mut d = Dedup::default();
        sockets.into_iter().filter(|s| d.first(s)).collect()
    }

    #[test]
    fn the_window_is_bounded_and_covers_its_length() {
        let socket = |n: u64| {
            let mut s =
                Socket::new(TcpState::Established, "127.0.0.1:8787".parse().unwrap(), "127.0.0.1:1".parse().unwrap());
            s.inode = n + 1;
            s
        };
        let mut d = Dedup::default();
        for n in 0..10 * DEDUP_WINDOW as u64 {
            assert!(d.first(&socket(n)));
            // A second report up to DEDUP_WINDOW sockets later is always recognised.
            if n >= DEDUP_WINDOW as u64 {
                assert!(!d.first(&socket(n - DEDUP_WINDOW as u64 + 1)), "{n}");
            }
            assert!(d.current.len() + d.previous.len() <= 2 * DEDUP_WINDOW);
        }
    }

    #[test]
    fn a_socket_reported_twice_counts_once() {
        let socket = |peer: &str, inode| {
            let mut s = Socket::new(TcpState::Established, "127.0.0.1:8787".parse().unwrap(), peer.parse().unwrap());
            s.inode = inode;
            s
        };
        let mut moved = socket("127.0.0.1:40000", 7);
        moved.state = TcpState::CloseWait;
        let listeners = [socket("0.0.0.0:0", 1), socket("0.0.0.0:0", 2)]; // SO_REUSEPORT pair
        let out = dedup(vec![socket("127.0.0.1:40000", 7), moved, listeners[0].clone(), listeners[1].clone()]);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].state, TcpState::Established, "the first report is kept");
        // Sockets without an inode: the 4-tuple decides.
        let tw = |peer| Socket { state: TcpState::TimeWait, ..socket(peer, 0) };
        let out =
            dedup(vec![tw("127.0.0.1:1"), tw("127.0.0.1:2"), tw("127.0.0.1:1"), tw("127.0.0.1:3"), tw("127.0.0.1:2")]);
        let peers: Vec<u16> = out.iter().map(|s| s.peer.port()).collect();
        assert_eq!(peers, [1, 2, 3]);
        // A socket whose inode equals another's 4-tuple key is not a duplicate of it.
        let a = tw("127.0.0.1:9");
        let b = socket("127.0.0.1:10", tuple_key(&a));
        assert_eq!(dedup(vec![a.clone(), b.clone(), a, b]).len(), 2);
    }
}
