//! One read of the host's sockets: from a source, through the filter, joined with owning
//! processes (and their socket options) on request. The proc root and the source choice come in
//! with the query, resolved once by the caller; nothing here reads the environment.

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::analysis::Part;
use crate::diagnose::Facts;
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::model::{
    Attribution, Extras, KeepaliveSysctls, ProcPaths, Process, Snapshot, Socket, Source, StateSet, TcpExt, TcpState,
};
use crate::netns::Namespace;
use crate::process::ProcessMap;
use crate::tally::Tally;
use crate::{cgroup, sockopt, source};

/// Everything one read needs: where, what, and whether to join owning processes.
#[derive(Debug, Clone)]
pub struct Query {
    /// Where to read.
    pub source: Source,
    /// Which sockets.
    pub filter: Filter,
    /// The proc root.
    pub paths: ProcPaths,
    /// Join owners (`-p`).
    pub processes: bool,
    /// Read each owned socket's keepalive options from its process (`-O`; implies `processes`).
    pub sockopts: bool,
    /// With `sockopts`: read even from owners in a `net_cls`/`net_prio` cgroup.
    pub force: bool,
    /// What to read besides the basics (`-i`, `-m`, cgroup paths).
    pub extras: Extras,
}

impl Query {
    /// A query of `source` for `filter`, no owners and no extras.
    pub fn new(source: Source, filter: Filter, paths: ProcPaths) -> Query {
        Query { source, filter, paths, processes: false, sockopts: false, force: false, extras: Extras::default() }
    }

    /// Whether owners are joined: asked for, or needed by `-O` or a `--pid`/`--process` filter.
    pub fn joins_processes(&self) -> bool {
        self.processes || self.sockopts || self.filter.wants_processes()
    }
}

/// Reads the sockets `query` selects. With processes, joins owners and applies the `--pid` /
/// `--process` filters, reporting how attribution went.
pub fn collect(query: &Query) -> Result<(Snapshot, Option<Attribution>)> {
    let mut snapshot = read(query, &query.paths)?;
    let attribution = join(query, &mut snapshot)?;
    Ok((snapshot, attribution))
}

/// What a counted read gave: the tally, and what a report says besides (see [`count`]).
#[derive(Debug)]
pub struct Counted<T> {
    /// The tally of every socket selected, IPv4's then IPv6's.
    pub tally: T,
    /// The source that answered, when, and what it could not give: a [`Snapshot`] with no sockets.
    pub snapshot: Snapshot,
    /// With processes: how attribution went.
    pub attribution: Option<Attribution>,
    /// The facts the findings are judged by, complete (owners' stats, listen queues).
    pub facts: Facts,
}

/// Reads the sockets `query` selects into a tally made by `make` (one per address family, then
/// merged), keeping no socket: the counting commands' read, whose memory does not grow with the
/// host. Each socket goes through what [`collect`] does to a list — queued connections marked,
/// cgroups named and `--cgroup` applied, owners joined and `--pid`/`--process` applied — as it
/// arrives. `make` is given the facts known before the dump (the listening ports, the sysctls),
/// which is what the findings judge each socket by; the listening sockets are read first for
/// them (a LISTEN-only read). Not for `-O`, which reads each socket's options from its owner
/// (use [`collect`]).
pub fn count<T: Tally>(query: &Query, make: impl Fn(&Facts) -> T + Sync) -> Result<Counted<T>> {
    debug_assert!(!query.sockopts, "-O reads options from a stored list");
    let paths = &query.paths;
    let map = if query.joins_processes() {
        Some(ProcessMap::scan(&paths.root).map_err(|source| Error::Read { path: paths.root.clone(), source })?)
    } else {
        None
    };
    let names = match cgroup::mount_point(paths) {
        Some(mount) if query.extras.cgroup || query.filter.cgroup.is_some() => Some(cgroup::names(&mount)),
        _ => None,
    };
    let f = &query.filter;
    let wanted = |p: &Process| f.pid.is_none_or(|pid| p.pid == pid) && f.process.as_ref().is_none_or(|c| &p.comm == c);
    // Everything but the queue marking, which a listener does not need.
    let select = |s: &mut Socket, kept: &mut Kept| -> bool {
        if let Some(names) = &names {
            cgroup::name(s, names);
        }
        if let Some(want) = &f.cgroup
            && !s.details.cgroup.as_deref().is_some_and(|p| cgroup::is_within(p, want))
        {
            return false;
        }
        if let Some(map) = &map {
            s.process = map.owner(s.inode, wanted);
            if s.process.is_none() && s.inode != 0 {
                kept.unattributed += 1;
            }
            if f.wants_processes() && !s.process.as_ref().is_some_and(wanted) {
                return false;
            }
            if let Some(p) = &s.process {
                kept.owners.insert(p.clone());
            }
        }
        true
    };
    // The listeners first: they mark the queued connections, and their ports are the server side.
    let listeners = source::read(query.source, &listener_filter(f), Extras::default(), paths)?.sockets;
    let listener_ports: BTreeSet<u16> = listeners.iter().map(|l| l.local.port()).collect();
    let listening: BTreeSet<u16> = if f.states.contains(TcpState::Listening) {
        // As `listening_ports` takes them from a read that included LISTEN: those selected.
        let mut kept = Kept::default();
        listeners.iter().cloned().filter_map(|mut l| select(&mut l, &mut kept).then_some(l.local.port())).collect()
    } else {
        listener_ports.clone()
    };
    let mut facts = Facts {
        sysctls: read_sysctls(paths),
        listening,
        processes_joined: query.joins_processes(),
        retries2: crate::deadpeer::read_retries2(&paths.root),
        ..Facts::default()
    };
    let taken_at = std::time::SystemTime::now();
    let make = || (Kept::default(), make(&facts));
    let visit = |(kept, tally): &mut (Kept, T), mut s: Socket| {
        if s.unaccepted() && listener_ports.contains(&s.local.port()) {
            s.queued = true;
            kept.waiting.insert(s.local.port());
        }
        if select(&mut s, kept) {
            tally.take(s);
        }
    };
    let (source, ((mut kept, mut tally), (kept6, tally6))) =
        source::scan(query.source, f, query.extras, paths, &make, &visit)?;
    if f.cgroup.is_some() && source == Source::Procfs {
        return Err(Error::NeedsNetlink("--cgroup"));
    }
    tally.merge(tally6);
    kept.waiting.extend(kept6.waiting);
    kept.owners.extend(kept6.owners);
    kept.unattributed += kept6.unattributed;
    let queues = queues_of(&listeners, &kept.waiting);
    let mut snapshot = Snapshot {
        source,
        taken_at,
        sockets: Vec::new(),
        unavailable: source::unavailable(source, query.extras),
        processes: Vec::new(),
        queues,
    };
    let attribution = map.map(|map| {
        snapshot.processes = kept.owners.iter().filter_map(|p| map.stats(&paths.root, p)).collect();
        Attribution {
            unattributed: kept.unattributed,
            denied_processes: map.denied,
            sockopts_unread: None,
            sockopts_skipped_net_cls: None,
        }
    });
    facts.processes = snapshot.processes.clone();
    facts.queues = snapshot.queues.clone();
    facts.listen_drops = if snapshot.queues.is_empty() {
        None
    } else {
        read_tcpext(paths).map(|t| (t.listen_overflows, t.listen_drops))
    };
    Ok(Counted { tally, snapshot, attribution, facts })
}

/// What a counted read keeps per family besides the tally: bounded by ports and processes.
#[derive(Default)]
struct Kept {
    /// Ports with a connection waiting in a listen queue.
    waiting: BTreeSet<u16>,
    /// Owners of the sockets selected.
    owners: BTreeSet<Process>,
    /// Sockets with an inode and no owner found.
    unattributed: usize,
}

/// The queues of the listeners on `ports`.
fn queues_of(listeners: &[Socket], ports: &BTreeSet<u16>) -> Vec<crate::model::ListenQueue> {
    listeners.iter().filter(|l| ports.contains(&l.local.port())).filter_map(Socket::listen_queue).collect()
}

/// The sockets of the current network namespace, with cgroup paths, `--cgroup` applied.
fn read(query: &Query, paths: &ProcPaths) -> Result<Snapshot> {
    let mut snapshot = source::read(query.source, &query.filter, query.extras, paths)?;
    mark_queued(query, paths, &mut snapshot)?;
    name_cgroups(&mut snapshot.sockets, paths, query.extras.cgroup || query.filter.cgroup.is_some());
    if let Some(wanted) = &query.filter.cgroup {
        if snapshot.source == Source::Procfs {
            return Err(Error::NeedsNetlink("--cgroup"));
        }
        snapshot.sockets.retain(|s| s.details.cgroup.as_deref().is_some_and(|p| cgroup::is_within(p, wanted)));
    }
    Ok(snapshot)
}

/// Marks the connections waiting in a listen queue (`queued`) and keeps those listeners' queues
/// in the snapshot. Costs a LISTEN-only read only when some socket has no inode in a state a
/// queued connection has (and none when the query read the listeners itself).
fn mark_queued(query: &Query, paths: &ProcPaths, snapshot: &mut Snapshot) -> Result<()> {
    if !snapshot.sockets.iter().any(Socket::unaccepted) {
        return Ok(());
    }
    let here = Query { paths: paths.clone(), ..query.clone() };
    let listeners = listening_sockets(&here, &snapshot.sockets)?;
    let ports: BTreeSet<u16> = listeners.iter().map(|l| l.local.port()).collect();
    let mut waiting = BTreeSet::new();
    for s in snapshot.sockets.iter_mut().filter(|s| s.unaccepted() && ports.contains(&s.local.port())) {
        s.queued = true;
        waiting.insert(s.local.port());
    }
    snapshot.queues = queues_of(&listeners, &waiting);
    Ok(())
}

/// `--all-netns`: reads each namespace in turn, on a thread that enters it (a thread's network
/// namespace is its own, so this process's stays as it was), tagging every socket with its
/// namespace. Owners are joined once, after all reads (inodes are unique host-wide). Returns the
/// part of the socket list and the facts (sysctls, listening ports) of each namespace, for
/// findings that are about one namespace each.
pub fn collect_namespaces(
    query: &Query,
    namespaces: &[Namespace],
) -> Result<(Snapshot, Option<Attribution>, Vec<Part>, usize)> {
    let mut all: Option<Snapshot> = None;
    let mut parts = Vec::new();
    // Namespaces that could not be entered (gone since listed, or not permitted): counted and
    // reported, so a total never silently leaves one out.
    let mut skipped = 0;
    for ns in namespaces {
        let read_one = || -> Result<Option<(Snapshot, Facts)>> {
            if crate::os::enter_netns(&ns.file).is_err() {
                return Ok(None); // gone since it was listed, or not ours to enter
            }
            // `/proc/net` follows the process's first thread; this thread's view is thread-self.
            let paths = if query.paths == ProcPaths::default() {
                ProcPaths::under(PathBuf::from("/proc/thread-self"))
            } else {
                query.paths.clone()
            };
            let here = Query { paths: ProcPaths { root: query.paths.root.clone(), ..paths }, ..query.clone() };
            let snapshot = read(&here, &here.paths)?;
            let facts = facts(&here, &snapshot)?;
            Ok(Some((snapshot, facts)))
        };
        let Some((mut snapshot, facts)) = std::thread::scope(|scope| scope.spawn(read_one).join())
            .unwrap_or_else(|p| std::panic::resume_unwind(p))?
        else {
            skipped += 1;
            continue;
        };
        for s in &mut snapshot.sockets {
            s.details.netns = Some(ns.label.clone());
        }
        let whole = all.get_or_insert_with(|| Snapshot {
            source: snapshot.source,
            taken_at: snapshot.taken_at,
            sockets: Vec::new(),
            unavailable: snapshot.unavailable.clone(),
            processes: Vec::new(),
            queues: Vec::new(),
        });
        whole.sockets.append(&mut snapshot.sockets);
        whole.queues.append(&mut snapshot.queues);
        parts.push(Part { netns: ns.label.clone(), sockets: 0..0, facts });
    }
    let Some(mut snapshot) = all else {
        return Err(Error::NoNamespaces);
    };
    let attribution = join(query, &mut snapshot)?;
    // Each namespace's sockets are one run of the list, in order; `--pid`/`--process` may have
    // removed some, so the runs are found after the join.
    let mut start = 0;
    for part in &mut parts {
        let len = snapshot.sockets[start..]
            .iter()
            .take_while(|s| s.details.netns.as_ref().is_some_and(|n| std::sync::Arc::ptr_eq(n, &part.netns)))
            .count();
        part.sockets = start..start + len;
        start += len;
    }
    for part in &mut parts {
        part.facts.processes_joined = query.joins_processes();
        let owners: BTreeSet<u32> =
            snapshot.sockets[part.sockets.clone()].iter().filter_map(|s| s.process.as_ref().map(|p| p.pid)).collect();
        part.facts.processes = snapshot.processes.iter().filter(|p| owners.contains(&p.pid)).cloned().collect();
    }
    Ok((snapshot, attribution, parts, skipped))
}

/// Joins owners (`-p` and what implies it), applies `--pid`/`--process`, reads `-O` options.
fn join(query: &Query, snapshot: &mut Snapshot) -> Result<Option<Attribution>> {
    if !query.joins_processes() {
        return Ok(None);
    }
    let root = &query.paths.root;
    let map = ProcessMap::scan(root).map_err(|source| Error::Read { path: root.clone(), source })?;
    let f = &query.filter;
    let wanted = |p: &Process| f.pid.is_none_or(|pid| p.pid == pid) && f.process.as_ref().is_none_or(|c| &p.comm == c);
    let unattributed = map.attribute(&mut snapshot.sockets, wanted);
    if f.wants_processes() {
        snapshot.sockets.retain(|s| s.process.as_ref().is_some_and(wanted));
    }
    let owners: BTreeSet<&Process> = snapshot.sockets.iter().filter_map(|s| s.process.as_ref()).collect();
    snapshot.processes = owners.into_iter().filter_map(|p| map.stats(root, p)).collect();
    let mut attribution = Attribution {
        unattributed,
        denied_processes: map.denied,
        sockopts_unread: None,
        sockopts_skipped_net_cls: None,
    };
    if query.sockopts {
        let (unread, skipped) = read_sockopts(&mut snapshot.sockets, &map, query)?;
        attribution.sockopts_unread = Some(unread);
        attribution.sockopts_skipped_net_cls = Some(skipped);
    }
    Ok(Some(attribution))
}

/// Names the cgroup of every socket the source gave an id for (sock_diag does, procfs does not),
/// when the output shows or selects on it; costs one walk of the cgroup2 tree.
fn name_cgroups(sockets: &mut [Socket], paths: &ProcPaths, wanted: bool) {
    if !wanted || !sockets.iter().any(|s| s.details.cgroup_id != 0) {
        return;
    }
    if let Some(mount) = cgroup::mount_point(paths) {
        cgroup::resolve(sockets, &cgroup::names(&mount));
    }
}

/// Fills `sockopts` for every socket with a known owner; returns how many could not be read, and
/// how many of those were left alone because of their owner's `net_cls` cgroup.
fn read_sockopts(sockets: &mut [Socket], map: &ProcessMap, query: &Query) -> Result<(usize, usize)> {
    let mut copier = sockopt::Copier::new(&query.paths.root, query.force)?;
    // Every owner is held from here on, before the first copy.
    for p in sockets.iter().filter_map(|s| s.process.as_ref()) {
        copier.hold(p.pid);
    }
    let (mut unread, mut skipped) = (0, 0);
    for s in sockets.iter_mut() {
        let Some(p) = &s.process else { continue };
        let Some(fd) = map.fd(s.inode, p.pid) else {
            unread += 1;
            continue;
        };
        let pid = p.pid;
        match copier.read(pid, fd, s) {
            Ok(o) => s.sockopts = Some(o),
            Err(crate::error::SockOptError::NetCls { .. }) => {
                unread += 1;
                skipped += 1;
            }
            Err(_) => unread += 1,
        }
    }
    Ok((unread, skipped))
}

/// The ports that have a listening socket among those `query` can see (same addresses and port
/// filters): taken from `sockets` when the query read LISTEN sockets, else from a LISTEN-only read.
pub fn listening_ports(query: &Query, sockets: &[Socket]) -> Result<BTreeSet<u16>> {
    Ok(listening_sockets(query, sockets)?.iter().map(|s| s.local.port()).collect())
}

/// The listening sockets `query` can see (same addresses and port filters): those in `sockets`
/// when the query read LISTEN sockets, else from a LISTEN-only read.
fn listening_sockets(query: &Query, sockets: &[Socket]) -> Result<Vec<Socket>> {
    if query.filter.states.contains(TcpState::Listening) {
        return Ok(sockets.iter().filter(|s| s.state == TcpState::Listening).cloned().collect());
    }
    let filter = listener_filter(&query.filter);
    Ok(source::read(query.source, &filter, Extras::default(), &query.paths)?.sockets)
}

/// The listening sockets a query can see: those it selects where it selects LISTEN; else every
/// listener on its addresses and local ports (listening sockets have no peer: a `--dport`
/// filter would hide them all).
fn listener_filter(filter: &Filter) -> Filter {
    let listen = StateSet::of(&[TcpState::Listening]);
    if filter.states.contains(TcpState::Listening) {
        return Filter { states: listen, ..filter.clone() };
    }
    Filter { states: listen, dport: None, pid: None, process: None, cgroup: None, ..filter.clone() }
}

/// What the findings need besides the sockets: the keepalive sysctls and `tcp_retries2`, the
/// listening ports (read only when an established socket lacks keepalive or carries `-O`
/// options, the findings that need them), the listen queues and, with `-p`, the owning
/// processes' files and threads.
pub fn facts(query: &Query, snapshot: &Snapshot) -> Result<Facts> {
    let sockets = &snapshot.sockets;
    // Established sockets without keepalive, or with options read (`-O`), are judged by whether
    // they are the server side.
    let server_side =
        sockets.iter().any(|s| s.state == TcpState::Established && (!s.keepalive_armed() || query.sockopts));
    let listening = if server_side { listening_ports(query, sockets)? } else { BTreeSet::new() };
    // With -O, where keepalive-missing can appear: a walk of the cgroup tree and its attached
    // programs, as root (kept off the plain listing's path, and serve's).
    let unarmed_server = sockets
        .iter()
        .any(|s| s.state == TcpState::Established && !s.keepalive_armed() && listening.contains(&s.local.port()));
    let cured = match crate::cgroup::mount_point(&query.paths) {
        Some(mount) if query.sockopts && unarmed_server && crate::os::is_root() => crate::cure::cured_ports(&mount),
        _ => BTreeSet::new(),
    };
    Ok(Facts {
        sysctls: read_sysctls(&query.paths),
        listening,
        processes_joined: query.joins_processes(),
        processes: snapshot.processes.clone(),
        retries2: crate::deadpeer::read_retries2(&query.paths.root),
        cured,
        queues: snapshot.queues.clone(),
        listen_drops: if snapshot.queues.is_empty() {
            None
        } else {
            read_tcpext(&query.paths).map(|t| (t.listen_overflows, t.listen_drops))
        },
    })
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

/// The `TcpExt:` counters of `ROOT/net/netstat` (this namespace's); `None` when the file is
/// unreadable or lacks one of them.
pub fn read_tcpext(paths: &ProcPaths) -> Option<TcpExt> {
    parse_tcpext(&std::fs::read_to_string(paths.root.join("net/netstat")).ok()?)
}

/// `Tcp: PassiveOpens` of `ROOT/net/snmp` (this namespace's): connections that completed a
/// handshake with a listener, ever. `None` when unreadable.
pub fn read_passive_opens(paths: &ProcPaths) -> Option<u64> {
    parse_passive_opens(&std::fs::read_to_string(paths.root.join("net/snmp")).ok()?)
}

/// `/proc/net/snmp` holds pairs of lines, names then values; TCP's start `Tcp:`.
pub fn parse_passive_opens(text: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let at = names.split_ascii_whitespace().position(|n| n == "PassiveOpens")?;
    values.split_ascii_whitespace().nth(at)?.parse().ok()
}

/// `/proc/net/netstat` holds pairs of lines, names then values, each starting `TcpExt:`.
pub fn parse_tcpext(text: &str) -> Option<TcpExt> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (names, values) = (lines.next()?, lines.next()?);
    let pairs: std::collections::HashMap<&str, u64> = names
        .split_ascii_whitespace()
        .skip(1)
        .zip(values.split_ascii_whitespace().skip(1))
        .filter_map(|(n, v)| Some((n, v.parse().ok()?)))
        .collect();
    let get = |name: &str| pairs.get(name).copied();
    Some(TcpExt {
        keep_alive: get("TCPKeepAlive")?,
        abort_on_timeout: get("TCPAbortOnTimeout")?,
        timeouts: get("TCPTimeouts")?,
        abort_on_data: get("TCPAbortOnData")?,
        abort_on_close: get("TCPAbortOnClose")?,
        listen_overflows: get("ListenOverflows")?,
        listen_drops: get("ListenDrops")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcpext_by_name_not_by_position() {
        let text = "TcpExt: SyncookiesSent TCPKeepAlive ListenOverflows ListenDrops TCPTimeouts TCPAbortOnData \
                    TCPAbortOnClose TCPAbortOnTimeout\nTcpExt: 1 2 3 4 5 6 7 8\nIpExt: InNoRoutes\nIpExt: 9\n";
        let t = parse_tcpext(text).unwrap();
        assert_eq!(
            t.fields(),
            [
                ("TCPKeepAlive", 2),
                ("TCPAbortOnTimeout", 8),
                ("TCPTimeouts", 5),
                ("TCPAbortOnData", 6),
                ("TCPAbortOnClose", 7),
                ("ListenOverflows", 3),
                ("ListenDrops", 4)
            ]
        );
        assert_eq!(parse_tcpext("TcpExt: TCPKeepAlive\nTcpExt: 1\n"), None, "a missing counter is no answer");
        assert_eq!(parse_tcpext("TcpExt: TCPKeepAlive ListenDrops\nTcpExt: x 1\n"), None);
        assert_eq!(t.since(&TcpExt { keep_alive: 5, ..t }).keep_alive, 0, "a counter that went back");
    }
}
