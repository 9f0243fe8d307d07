//! One read of the host's sockets: from a source, through the filter, joined with owning
//! processes (and their socket options) on request. The proc root and the source choice come in
//! with the query, resolved once by the caller; nothing here reads the environment.

use std::collections::BTreeSet;

use crate::diagnose::Facts;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::model::{Attribution, KeepaliveSysctls, ProcPaths, Process, Snapshot, Socket, Source, StateSet, TcpState};
use crate::process::ProcessMap;
use crate::{analysis, sockopt, source};

/// Everything one read needs: where, what, and whether to join owning processes.
#[derive(Debug, Clone)]
pub struct Query {
    pub source: Source,
    pub filter: Filter,
    pub paths: ProcPaths,
    pub processes: bool,
    /// Read each owned socket's keepalive options from its process (`-O`; implies `processes`).
    pub sockopts: bool,
    /// With `sockopts`: read even from owners in a `net_cls`/`net_prio` cgroup.
    pub force: bool,
}

impl Query {
    pub fn new(source: Source, filter: Filter, paths: ProcPaths) -> Query {
        Query { source, filter, paths, processes: false, sockopts: false, force: false }
    }

    /// Whether owners are joined: asked for, or needed by `-O` or a `--pid`/`--process` filter.
    pub fn joins_processes(&self) -> bool {
        self.processes || self.sockopts || self.filter.wants_processes()
    }
}

/// Reads the sockets `query` selects. With processes, joins owners and applies the `--pid` /
/// `--process` filters, reporting how attribution went.
pub fn collect(query: &Query) -> Result<(Snapshot, Option<Attribution>)> {
    let mut snapshot = source::read(query.source, &query.filter, &query.paths)?;
    if !query.joins_processes() {
        return Ok((snapshot, None));
    }
    let root = &query.paths.root;
    let map = ProcessMap::scan(root).map_err(|source| Error::Read { path: root.clone(), source })?;
    let f = &query.filter;
    let wanted = |p: &Process| f.pid.is_none_or(|pid| p.pid == pid) && f.process.as_ref().is_none_or(|c| &p.comm == c);
    let unattributed = map.attribute(&mut snapshot.sockets, wanted);
    if f.wants_processes() {
        snapshot.sockets.retain(|s| s.process.as_ref().is_some_and(wanted));
    }
    let mut attribution = Attribution {
        unattributed,
        denied_processes: map.denied,
        sockopts_unread: None,
        sockopts_skipped_net_cls: None,
    };
    if query.sockopts {
        let (unread, skipped) = read_sockopts(&mut snapshot.sockets, &map, query);
        attribution.sockopts_unread = Some(unread);
        attribution.sockopts_skipped_net_cls = Some(skipped);
    }
    Ok((snapshot, Some(attribution)))
}

/// Fills `sockopts` for every socket with a known owner; returns how many could not be read, and
/// how many of those were left alone because of their owner's `net_cls` cgroup.
fn read_sockopts(sockets: &mut [Socket], map: &ProcessMap, query: &Query) -> (usize, usize) {
    let (mut unread, mut skipped) = (0, 0);
    for s in sockets.iter_mut() {
        let Some(p) = &s.process else { continue };
        let Some(fd) = map.fd(s.inode, p.pid) else {
            unread += 1;
            continue;
        };
        match sockopt::read(&query.paths.root, p.pid, fd, s.inode, query.force) {
            Ok(o) => s.sockopts = Some(o),
            Err(crate::error::SockOptError::NetCls { .. }) => {
                unread += 1;
                skipped += 1;
            }
            Err(_) => unread += 1,
        }
    }
    (unread, skipped)
}

/// The ports that have a listening socket among those `query` can see (same addresses and port
/// filters): taken from `sockets` when the query read LISTEN sockets, else from a LISTEN-only read.
pub fn listening_ports(query: &Query, sockets: &[Socket]) -> Result<BTreeSet<u16>> {
    if query.filter.states.contains(TcpState::Listening) {
        return Ok(analysis::listening_ports(sockets));
    }
    // Listening sockets have no peer: a `--dport` filter would hide them all.
    let filter = Filter {
        states: StateSet::of(&[TcpState::Listening]),
        dport: None,
        pid: None,
        process: None,
        ..query.filter.clone()
    };
    let snapshot = source::read(query.source, &filter, &query.paths)?;
    Ok(analysis::listening_ports(&snapshot.sockets))
}

/// What the findings need besides the sockets: the keepalive sysctls, and the listening ports
/// (read only when an established socket lacks keepalive, the one finding that needs them).
pub fn facts(query: &Query, sockets: &[Socket]) -> Result<Facts> {
    let unarmed = sockets.iter().any(|s| s.state == TcpState::Established && !s.keepalive_armed());
    let listening = if unarmed { listening_ports(query, sockets)? } else { BTreeSet::new() };
    Ok(Facts { sysctls: read_sysctls(&query.paths), listening })
}

/// `net.ipv4.tcp_keepalive_{time,intvl,probes}` under the proc root; `None` when unreadable.
pub fn read_sysctls(paths: &ProcPaths) -> Option<KeepaliveSysctls> {
    let get = |name: &str| {
        std::fs::read_to_string(paths.root.join("sys/net/ipv4").join(name)).ok()?.trim().parse::<u64>().ok()
    };
    Some(KeepaliveSysctls {
        time_s: get("tcp_keepalive_time")?,
        intvl_s: get("tcp_keepalive_intvl")?,
        probes: get("tcp_keepalive_probes")?,
    })
}
