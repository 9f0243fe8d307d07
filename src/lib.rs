//! webui-doctor: TCP connection health for Linux servers.
//!
//! Data flows one way: a source (`source::netlink` or `source::procfs`) reads the kernel's
//! sockets into `model::Socket`s, `filter` selects them, `process` joins owners on request,
//! `analysis` sums them up, `gate` judges them, and `render` prints them.

pub mod analysis;
pub mod cli;
pub mod diagnose;
pub mod drill;
pub mod error;
pub mod exit_codes;
pub mod filter;
pub mod gate;
pub mod model;
pub mod netns;
pub mod process;
pub mod render;
pub mod serve;
pub mod sockopt;
pub mod source;
pub mod verify;

pub use error::{Error, Result};

use std::collections::BTreeSet;

use crate::filter::Filter;
use crate::model::{StateSet, TcpState};
use crate::render::Attribution;
use crate::source::{Snapshot, SourceChoice};

/// Everything one read needs: where, what, and whether to join owning processes.
#[derive(Debug, Clone)]
pub struct Query {
    pub source: SourceChoice,
    pub filter: Filter,
    pub processes: bool,
    /// Read each owned socket's keepalive options from its process (`-O`; implies `processes`).
    pub sockopts: bool,
}

/// Reads the sockets `query` selects. With `processes`, joins owners and applies the `--pid` /
/// `--process` filters, reporting how attribution went.
pub fn collect(query: &Query) -> Result<(Snapshot, Option<Attribution>)> {
    let mut snapshot = source::read(query.source, &query.filter)?;
    if !(query.processes || query.sockopts || query.filter.wants_processes()) {
        return Ok((snapshot, None));
    }
    let root = process::proc_root();
    let map = process::ProcessMap::scan(&root).map_err(|source| Error::Read { path: root.clone(), source })?;
    let f = &query.filter;
    let wanted =
        |p: &model::Process| f.pid.is_none_or(|pid| p.pid == pid) && f.process.as_ref().is_none_or(|c| &p.comm == c);
    let unattributed = map.attribute(&mut snapshot.sockets, wanted);
    if f.wants_processes() {
        snapshot.sockets.retain(|s| s.process.as_ref().is_some_and(wanted));
    }
    let sockopts_unread = query.sockopts.then(|| read_sockopts(&mut snapshot.sockets, &map));
    Ok((snapshot, Some(Attribution { unattributed, denied_processes: map.denied, sockopts_unread })))
}

/// Fills `sockopts` for every socket with a known owner; returns how many could not be read.
fn read_sockopts(sockets: &mut [model::Socket], map: &process::ProcessMap) -> usize {
    let mut unread = 0;
    for s in sockets.iter_mut() {
        let Some(p) = &s.process else { continue };
        let fd = map.fd(s.inode, p.pid);
        #[cfg(target_os = "linux")]
        {
            s.sockopts = fd.and_then(|fd| sockopt::read_fd(p.pid, fd).ok());
        }
        #[cfg(not(target_os = "linux"))]
        let _ = fd;
        if s.sockopts.is_none() {
            unread += 1;
        }
    }
    unread
}

/// The ports that carry a Prometheus `port` label: those with a listening socket. Taken from
/// `sockets` when the query read LISTEN sockets, else from a LISTEN-only read with the same
/// address and port filters.
pub fn listening_ports(query: &Query, sockets: &[model::Socket]) -> Result<BTreeSet<u16>> {
    if query.filter.states.contains(TcpState::Listening) {
        return Ok(render::prometheus::listening_ports(sockets));
    }
    let listen = Query {
        source: query.source,
        filter: Filter {
            states: StateSet::of(&[TcpState::Listening]),
            pid: None,
            process: None,
            ..query.filter.clone()
        },
        processes: false,
        sockopts: false,
    };
    let (snapshot, _) = collect(&listen)?;
    Ok(render::prometheus::listening_ports(&snapshot.sockets))
}
