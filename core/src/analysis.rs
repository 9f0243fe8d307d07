//! What the sockets add up to: counts per state, CLOSE-WAIT, keepalive coverage of established
//! connections, and the [`Report`] (summary + findings) every renderer and the gate read. Built
//! from data handed in (the sockets, the keepalive sysctls, the listening ports): no I/O here.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::sync::Arc;

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::diagnose::{Facts, Finding, diagnose};
use crate::filter::Filter;
use crate::model::{Attribution, ProcessStats, Snapshot, Socket, TcpExtChange, TcpState};
use crate::tally::Tally;

/// What `--by` groups sockets by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// the owning process (implies -p)
    Process,
    /// the local port where it is listening (the server side); other sockets as one group
    Port,
    /// the peer's address
    Peer,
    /// the cgroup v2 path
    Cgroup,
    /// the network namespace (with --all-netns)
    Netns,
    /// the workload the cgroup path names: a systemd unit, a container, a Kubernetes pod
    Workload,
}

impl GroupBy {
    /// The grouping as the JSON and the text name it.
    pub fn name(self) -> &'static str {
        match self {
            GroupBy::Process => "process",
            GroupBy::Port => "port",
            GroupBy::Peer => "peer",
            GroupBy::Cgroup => "cgroup",
            GroupBy::Netns => "netns",
            GroupBy::Workload => "workload",
        }
    }
}

/// One `--by` group: its key, what its sockets add up to and, for a process, its files and
/// threads.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Group {
    /// The process (`comm (pid N)`), port, peer address, cgroup path or namespace; `-` for
    /// sockets without one (no owner seen, no cgroup), `other` for non-listening ports.
    pub key: String,
    /// What its sockets add up to.
    pub summary: Summary,
    /// With `--by process`: the owner's open files, limit and threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessStats>,
}

/// The sockets split by `by`, largest CLOSE-WAIT first (then most sockets, then by key).
/// `listening` names the server-side ports for `--by port`; `processes` the owners' stats.
pub fn groups(by: GroupBy, sockets: &[Socket], listening: &BTreeSet<u16>, processes: &[ProcessStats]) -> Vec<Group> {
    Grouping::new(by, listening.clone()).over(sockets).groups(processes)
}

/// `--by` counted one socket at a time ([`Tally`]): a summary per key.
#[derive(Debug, Clone)]
pub struct Grouping {
    by: GroupBy,
    listening: BTreeSet<u16>,
    map: BTreeMap<String, (Summary, Option<u32>)>,
}

impl Grouping {
    /// No sockets yet, grouped by `by` (`listening`: the server-side ports, for `--by port`).
    pub fn new(by: GroupBy, listening: BTreeSet<u16>) -> Grouping {
        Grouping { by, listening, map: BTreeMap::new() }
    }

    /// What the groups are split by.
    pub fn by(&self) -> GroupBy {
        self.by
    }

    /// The groups, largest CLOSE-WAIT first (then most sockets, then by key); `processes` gives
    /// each process group its owner's stats.
    pub fn groups(self, processes: &[ProcessStats]) -> Vec<Group> {
        let mut out: Vec<Group> = self
            .map
            .into_iter()
            .map(|(key, (summary, pid))| Group {
                key,
                summary,
                process: pid.and_then(|pid| processes.iter().find(|p| p.pid == pid).cloned()),
            })
            .collect();
        out.sort_by(|a, b| {
            b.summary
                .close_wait()
                .cmp(&a.summary.close_wait())
                .then(b.summary.total.cmp(&a.summary.total))
                .then_with(|| a.key.cmp(&b.key))
        });
        out
    }
}

impl Tally for Grouping {
    fn add(&mut self, s: &Socket) {
        let (key, pid) = match self.by {
            GroupBy::Process => match &s.process {
                Some(p) => (format!("{} (pid {})", p.comm, p.pid), Some(p.pid)),
                None => ("-".to_owned(), None),
            },
            GroupBy::Port if self.listening.contains(&s.local.port()) => (s.local.port().to_string(), None),
            GroupBy::Port => ("other".to_owned(), None),
            GroupBy::Peer if s.state == TcpState::Listening => ("-".to_owned(), None),
            GroupBy::Peer => (s.peer.ip().to_string(), None),
            GroupBy::Cgroup => (s.details.cgroup.as_deref().unwrap_or("-").to_owned(), None),
            GroupBy::Netns => (s.details.netns.as_deref().unwrap_or("-").to_owned(), None),
            GroupBy::Workload => match s.details.workload.as_deref() {
                Some(w) if w.kind == "pod" => (w.name.clone(), None),
                Some(w) => (format!("{} {}", w.kind, w.name), None),
                None => ("-".to_owned(), None),
            },
        };
        self.map.entry(key).or_insert_with(|| (Summary::default(), pid)).0.add(s);
    }

    fn merge(&mut self, later: Self) {
        for (key, (summary, pid)) in later.map {
            self.map.entry(key).or_insert_with(|| (Summary::default(), pid)).0.merge(summary);
        }
    }
}

/// What a set of sockets adds up to: the summary block of every output.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// Sockets counted.
    pub total: usize,
    /// Per state.
    pub by_state: StateCounts,
    /// Keepalive timers on established sockets.
    pub keepalive: KeepaliveCoverage,
    /// Of `by_state`: connections waiting in a listen queue, accepted by no process yet.
    pub queued: Queued,
}

/// Connections waiting in a listen queue, by state: still open, and already closed by their
/// clients (CLOSE-WAIT before any `accept()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Queued {
    /// Still open.
    pub established: usize,
    /// Closed by their clients (CLOSE-WAIT).
    pub close_wait: usize,
}

impl Queued {
    /// All the queued connections.
    pub fn total(&self) -> usize {
        self.established + self.close_wait
    }
}

/// Counts for all eleven states, in kernel order; serialized as `{"established": n, ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateCounts([usize; 11]);

impl StateCounts {
    /// Sockets in `state`.
    pub fn get(&self, state: TcpState) -> usize {
        self.0[usize::from(state.code() - 1)]
    }

    fn add(&mut self, state: TcpState) {
        self.0[usize::from(state.code() - 1)] += 1;
    }

    /// Each state with its count, in the kernel's order.
    pub fn iter(&self) -> impl Iterator<Item = (TcpState, usize)> + '_ {
        TcpState::ALL.into_iter().map(|s| (s, self.get(s)))
    }
}

impl Serialize for StateCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(11))?;
        for (state, n) in self.iter() {
            map.serialize_entry(state.name(), &n)?;
        }
        map.end()
    }
}

/// Established sockets and how many have a keepalive timer armed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct KeepaliveCoverage {
    /// Established sockets in the selection.
    pub established: usize,
    /// Of those, the ones whose keepalive timer is armed right now.
    pub armed: usize,
}

impl KeepaliveCoverage {
    /// Established sockets without a keepalive timer.
    pub fn unarmed(&self) -> usize {
        self.established - self.armed
    }
}

impl Summary {
    /// Counts `sockets`.
    pub fn of(sockets: &[Socket]) -> Summary {
        Summary::default().over(sockets)
    }
}

impl Tally for Summary {
    fn add(&mut self, s: &Socket) {
        self.total += 1;
        self.by_state.add(s.state);
        if s.queued {
            match s.state {
                TcpState::Established => self.queued.established += 1,
                TcpState::CloseWait => self.queued.close_wait += 1,
                _ => {}
            }
        }
        if s.state == TcpState::Established {
            self.keepalive.established += 1;
            if s.keepalive_armed() {
                self.keepalive.armed += 1;
            }
        }
    }

    fn merge(&mut self, later: Self) {
        self.total += later.total;
        for (n, m) in self.by_state.0.iter_mut().zip(later.by_state.0) {
            *n += m;
        }
        self.keepalive.established += later.keepalive.established;
        self.keepalive.armed += later.keepalive.armed;
        self.queued.established += later.queued.established;
        self.queued.close_wait += later.queued.close_wait;
    }
}

impl Summary {
    /// One summary per Prometheus `port` label: the local port where it has a listening socket
    /// (the server side), `""` for every other socket. Every listening port and `""` is present,
    /// zeros included, so an alert on `close_wait > 0` sees an explicit 0.
    pub fn by_port(sockets: &[Socket], listening: &BTreeSet<u16>) -> BTreeMap<String, Summary> {
        ByPort::new(listening.clone(), false).over(sockets).ports
    }

    /// CLOSE-WAIT sockets, the queued ones included.
    pub fn close_wait(&self) -> usize {
        self.by_state.get(TcpState::CloseWait)
    }
}

/// The Prometheus gauges' counts, one socket at a time ([`Tally`]): a summary per `port` label
/// ([`Summary::by_port`]), optionally per `port` and `cgroup`, and which processes listen where.
#[derive(Debug, Clone)]
pub struct ByPort {
    listening: BTreeSet<u16>,
    /// Per `port` label.
    pub ports: BTreeMap<String, Summary>,
    /// Per `port` and `cgroup` label, where asked for.
    pub cgroups: Option<BTreeMap<(String, String), Summary>>,
    /// The owners of listening sockets, with the port.
    listeners: BTreeSet<(u32, u16)>,
}

impl ByPort {
    /// No sockets yet; `listening` names the server-side ports, `cgroups` asks for the split by cgroup.
    pub fn new(listening: BTreeSet<u16>, cgroups: bool) -> ByPort {
        let ports = std::iter::once(String::new())
            .chain(listening.iter().map(u16::to_string))
            .map(|p| (p, Summary::default()))
            .collect();
        ByPort { listening, ports, cgroups: cgroups.then(BTreeMap::new), listeners: BTreeSet::new() }
    }

    /// Of `processes`, those with a listening socket counted (on one of `ports`, where given).
    pub fn listening_owners(&self, processes: &[ProcessStats], ports: Option<&[u16]>) -> Vec<ProcessStats> {
        let servers: BTreeSet<u32> = self
            .listeners
            .iter()
            .filter(|(_, port)| ports.is_none_or(|ports| ports.contains(port)))
            .map(|&(pid, _)| pid)
            .collect();
        processes.iter().filter(|p| servers.contains(&p.pid)).cloned().collect()
    }
}

impl Tally for ByPort {
    fn add(&mut self, s: &Socket) {
        let port = port_label(s, &self.listening);
        if let Some(cgroups) = &mut self.cgroups {
            let cgroup = s.details.cgroup.as_deref().unwrap_or("-").to_owned();
            cgroups.entry((port.clone(), cgroup)).or_default().add(s);
        }
        self.ports.entry(port).or_default().add(s);
        if s.state == TcpState::Listening
            && let Some(p) = &s.process
        {
            self.listeners.insert((p.pid, s.local.port()));
        }
    }

    fn merge(&mut self, later: Self) {
        for (port, summary) in later.ports {
            self.ports.entry(port).or_default().merge(summary);
        }
        if let (Some(mine), Some(theirs)) = (&mut self.cgroups, later.cgroups) {
            for (key, summary) in theirs {
                mine.entry(key).or_default().merge(summary);
            }
        }
        self.listeners.extend(later.listeners);
    }
}

/// The sockets most in need of a look first: CLOSE-WAIT (longest idle first), then those
/// retransmitting (most retransmissions first), then established ones without a keepalive timer,
/// then the rest in the order read. For views that show only some of a host's sockets.
pub fn by_urgency(sockets: &[Socket]) -> Vec<&Socket> {
    most_urgent(sockets, sockets.len())
}

/// The first `n` sockets of [`by_urgency`]'s order, without sorting the rest: a selection, then
/// a sort of the `n` chosen (what the dashboard's stream needs of 100,000 sockets is 500). The
/// key ends with the socket's place in the list, so ties fall as a stable sort leaves them.
pub fn most_urgent(sockets: &[Socket], n: usize) -> Vec<&Socket> {
    let mut ranked: Vec<(Rank, &Socket)> = sockets.iter().enumerate().map(|(i, s)| (rank(s, i), s)).collect();
    if n < ranked.len() {
        if n == 0 {
            return Vec::new();
        }
        ranked.select_nth_unstable_by_key(n - 1, |(r, _)| *r);
        ranked.truncate(n);
    }
    ranked.sort_unstable_by_key(|(r, _)| *r);
    ranked.into_iter().map(|(_, s)| s).collect()
}

/// Where a socket stands in [`by_urgency`]'s order: its class, its weight in the class, and its
/// place `i` in the list read (ties fall as a stable sort leaves them).
type Rank = (u8, std::cmp::Reverse<u64>, usize);

fn rank(s: &Socket, i: usize) -> Rank {
    let idle = s.idle.map_or(0, |i| i.last_recv_ms);
    let (class, weight) = match s.state {
        TcpState::CloseWait => (0, idle),
        _ if s.timer.is_some_and(|t| t.kind == crate::model::TimerKind::Retransmit) => {
            (1, u64::from(s.timer.map_or(0, |t| t.probes)))
        }
        TcpState::Established if !s.keepalive_armed() => (2, 0),
        _ => (3, 0),
    };
    (class, std::cmp::Reverse(weight), i)
}

/// [`most_urgent`] counted one socket at a time ([`Tally`]): the `n` most urgent so far in a
/// heap, and how many were seen — `n` sockets kept, whatever the number read.
#[derive(Debug, Clone)]
pub struct Urgent {
    n: usize,
    seen: usize,
    heap: std::collections::BinaryHeap<Ranked>,
}

/// A socket with its rank, ordered by the rank alone.
#[derive(Debug, Clone)]
struct Ranked(Rank, Socket);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl Urgent {
    /// Keeps the `n` most urgent.
    pub fn new(n: usize) -> Urgent {
        Urgent { n, seen: 0, heap: std::collections::BinaryHeap::new() }
    }

    /// Sockets seen.
    pub fn seen(&self) -> usize {
        self.seen
    }

    /// The most urgent, most urgent first: [`most_urgent`] of all the sockets seen.
    pub fn sockets(self) -> Vec<Socket> {
        self.heap.into_sorted_vec().into_iter().map(|Ranked(_, s)| s).collect()
    }

    fn offer(&mut self, ranked: Ranked) {
        if self.heap.len() < self.n {
            self.heap.push(ranked);
        } else if self.heap.peek().is_some_and(|worst| ranked < *worst) {
            self.heap.pop();
            self.heap.push(ranked);
        }
    }
}

impl Tally for Urgent {
    fn add(&mut self, s: &Socket) {
        let r = rank(s, self.seen);
        self.seen += 1;
        if self.heap.len() < self.n || self.heap.peek().is_some_and(|worst| r < worst.0) {
            self.offer(Ranked(r, s.clone()));
        }
    }

    fn merge(&mut self, later: Self) {
        let offset = self.seen;
        self.seen += later.seen;
        for Ranked((class, weight, i), s) in later.heap {
            self.offer(Ranked((class, weight, i + offset), s));
        }
    }
}

/// A socket's Prometheus `port` label: its local port where that port is listening (the server
/// side), else empty.
fn port_label(s: &Socket, listening: &BTreeSet<u16>) -> String {
    if listening.contains(&s.local.port()) { s.local.port().to_string() } else { String::new() }
}

/// The ports that have a listening socket.
pub fn listening_ports(sockets: &[Socket]) -> BTreeSet<u16> {
    sockets.iter().filter(|s| s.state == TcpState::Listening).map(|s| s.local.port()).collect()
}

/// One namespace's share of an `--all-netns` read: its sockets (a range of the snapshot's list)
/// and the facts its findings are judged by.
#[derive(Debug, Clone)]
pub struct Part {
    /// The namespace's label.
    pub netns: Arc<str>,
    /// Its sockets, as a range of the snapshot's list.
    pub sockets: Range<usize>,
    /// Its facts.
    pub facts: Facts,
}

/// A snapshot as read with a filter, with its summary and findings: what every output shows.
pub struct Report<'a> {
    /// The sockets read.
    pub snapshot: &'a Snapshot,
    /// What they add up to.
    pub summary: Summary,
    /// What the sockets mean (`diagnose`), shown after the summary.
    pub findings: Vec<Finding>,
    /// The filter they were read with (echoed in JSON).
    pub filter: &'a Filter,
    /// The namespace read, where one was entered.
    pub netns: Option<&'a str>,
    /// With `-p`: how many sockets stayed without an owner.
    pub attribution: Option<Attribution>,
    /// With `--by`: the per-group summaries, and what they are grouped by.
    pub groups: Option<(GroupBy, Vec<Group>)>,
    /// With `--all-netns`: namespaces listed but not read (gone, or not ours to enter).
    pub namespaces_skipped: Option<usize>,
    /// With `--watch`: the host's TcpExt counters' change since the last report.
    pub tcpext: Option<TcpExtChange>,
    /// With `-O`: the kernel cures (`fix --persist`) that cover a listening port in the report.
    pub cures: Vec<crate::cure::Attached>,
}

impl<'a> Report<'a> {
    /// The summary and the findings, computed here, once.
    pub fn new(
        snapshot: &'a Snapshot,
        filter: &'a Filter,
        netns: Option<&'a str>,
        attribution: Option<Attribution>,
        facts: &Facts,
    ) -> Report<'a> {
        let findings = diagnose(&snapshot.sockets, facts);
        Report::counted(snapshot, filter, netns, attribution, Summary::of(&snapshot.sockets), findings)
    }

    /// A report of a counted read (`query::count`): the summary and findings were counted as
    /// the sockets came, and `snapshot` holds none of them.
    pub fn counted(
        snapshot: &'a Snapshot,
        filter: &'a Filter,
        netns: Option<&'a str>,
        attribution: Option<Attribution>,
        summary: Summary,
        findings: Vec<Finding>,
    ) -> Report<'a> {
        Report {
            summary,
            findings,
            snapshot,
            filter,
            netns,
            attribution,
            groups: None,
            namespaces_skipped: None,
            tcpext: None,
            cures: Vec::new(),
        }
    }

    /// An `--all-netns` report: one summary over every namespace, findings judged per namespace
    /// (a port listening in one says nothing about another) and tagged with it, and the
    /// sockets grouped by namespace.
    pub fn for_namespaces(
        snapshot: &'a Snapshot,
        filter: &'a Filter,
        attribution: Option<Attribution>,
        parts: &[Part],
        skipped: usize,
    ) -> Report<'a> {
        let mut findings = Vec::new();
        for part in parts {
            let sockets = snapshot.sockets.get(part.sockets.clone()).unwrap_or_default();
            findings.extend(diagnose(sockets, &part.facts).into_iter().map(|mut f| {
                in_namespace(&mut f, &part.netns);
                f
            }));
        }
        let by_netns = groups(GroupBy::Netns, &snapshot.sockets, &BTreeSet::new(), &[]);
        Report {
            summary: Summary::of(&snapshot.sockets),
            findings,
            snapshot,
            filter,
            netns: None,
            attribution,
            groups: Some((GroupBy::Netns, by_netns)),
            namespaces_skipped: Some(skipped),
            tcpext: None,
            cures: Vec::new(),
        }
    }
}

/// Tags a finding with its namespace, and makes its cure work as printed from the host: the
/// command names the namespace (`--netns NAME`, `--netns-pid PID`; none for `host`). The message,
/// made from the cure when it is printed, names it too.
fn in_namespace(f: &mut Finding, netns: &Arc<str>) {
    let flag = match &**netns {
        "host" => None,
        label => Some(match label.strip_prefix("pid:") {
            Some(pid) => format!("--netns-pid {pid}"),
            None => format!("--netns {label}"),
        }),
    };
    if let Some(flag) = flag {
        let with = format!("webui-doctor fix {flag} ");
        if let Some(cure) = &mut f.cure {
            *cure = cure.replacen("webui-doctor fix ", &with, 1);
        }
    }
    f.netns = Some(netns.clone());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    #[test]
    fn a_cure_found_in_a_namespace_names_it() {
        let cure = || Finding {
            severity: crate::diagnose::Severity::Warning,
            evidence: crate::diagnose::Evidence::KeepaliveMissing(crate::diagnose::KeepaliveMissing {
                cured_ports: vec![],
                established: 1,
                ports: [80].into(),
                without_keepalive: 1,
            }),
            cure: Some("webui-doctor fix --port 80".into()),
            netns: None,
        };
        let (mut a, mut b, mut c) = (cure(), cure(), cure());
        in_namespace(&mut a, &Arc::from("web"));
        in_namespace(&mut b, &Arc::from("pid:4242"));
        in_namespace(&mut c, &Arc::from("host"));
        assert_eq!(a.cure.as_deref(), Some("webui-doctor fix --netns web --port 80"));
        assert_eq!(b.cure.as_deref(), Some("webui-doctor fix --netns-pid 4242 --port 80"));
        assert_eq!(c.cure.as_deref(), Some("webui-doctor fix --port 80"));
        assert_eq!(c.netns.as_deref(), Some("host"));
    }

    #[test]
    fn urgency_puts_close_wait_then_retransmitting_then_no_keepalive_first() {
        let s = |state: TcpState, timer: Option<(TimerKind, u32)>, idle: u64, port: u16| Socket {
            timer: timer.map(|(kind, probes)| Timer { kind, expires_ms: 1, probes }),
            inode: u64::from(port),
            idle: Some(Idle { last_recv_ms: idle, last_send_ms: 0 }),
            ..Socket::new(state, "127.0.0.1:8787".parse().unwrap(), std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        };
        let sockets = vec![
            s(TcpState::Established, Some((TimerKind::Keepalive, 0)), 0, 1),
            s(TcpState::Established, None, 0, 2),
            s(TcpState::CloseWait, None, 10, 3),
            s(TcpState::Established, Some((TimerKind::Retransmit, 2)), 0, 4),
            s(TcpState::CloseWait, None, 90, 5),
            s(TcpState::Established, Some((TimerKind::Retransmit, 6)), 0, 6),
            s(TcpState::Listening, None, 0, 7),
        ];
        let order: Vec<u16> = by_urgency(&sockets).iter().map(|s| s.peer.port()).collect();
        assert_eq!(order, [5, 3, 6, 4, 2, 1, 7]);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::model::*;
    use proptest::prelude::*;

    fn socket(state: u8, timer: u8) -> Socket {
        let addr = "127.0.0.1:1".parse().unwrap();
        let mut s = Socket::new(TcpState::from_code(state).unwrap(), addr, addr);
        s.timer = TimerKind::from_code(timer).map(|kind| Timer { kind, expires_ms: 1, probes: 0 });
        s
    }

    proptest! {
        /// The top `n` by urgency are the first `n` of the whole list in urgency order, ties
        /// included (the selection must not reorder what a stable sort would keep in place).
        #[test]
        fn most_urgent_is_the_head_of_the_full_order(
            list in proptest::collection::vec((1u8..=11, 0u8..=5, 0u64..4), 0..200),
            n in 0usize..220,
        ) {
            let sockets: Vec<Socket> = list
                .iter()
                .enumerate()
                .map(|(i, &(s, t, idle))| Socket {
                    inode: i as u64,
                    idle: Some(Idle { last_recv_ms: idle, last_send_ms: 0 }),
                    ..socket(s, t)
                })
                .collect();
            let mut full: Vec<&Socket> = sockets.iter().collect();
            let class = |s: &Socket| match s.state {
                TcpState::CloseWait => (0, std::cmp::Reverse(s.idle.map_or(0, |i| i.last_recv_ms))),
                _ if s.timer.is_some_and(|t| t.kind == TimerKind::Retransmit) => (1, std::cmp::Reverse(0)),
                TcpState::Established if !s.keepalive_armed() => (2, std::cmp::Reverse(0)),
                _ => (3, std::cmp::Reverse(0)),
            };
            full.sort_by_key(|s| class(s));
            let want: Vec<u64> = full.iter().take(n).map(|s| s.inode).collect();
            let got: Vec<u64> = most_urgent(&sockets, n).iter().map(|s| s.inode).collect();
            prop_assert_eq!(got, want);
        }

        /// The summary always equals a brute-force count over the socket list.
        #[test]
        fn summary_is_a_plain_count(list in proptest::collection::vec((1u8..=11, 0u8..=5), 0..300)) {
            let sockets: Vec<Socket> = list.iter().map(|&(s, t)| socket(s, t)).collect();
            let summary = Summary::of(&sockets);
            prop_assert_eq!(summary.total, sockets.len());
            for state in TcpState::ALL {
                prop_assert_eq!(summary.by_state.get(state), sockets.iter().filter(|s| s.state == state).count());
            }
            let est = sockets.iter().filter(|s| s.state == TcpState::Established);
            prop_assert_eq!(summary.keepalive.established, est.clone().count());
            prop_assert_eq!(summary.keepalive.armed, est.filter(|s| s.timer.is_some_and(|t| t.kind == TimerKind::Keepalive)).count());
            // Split by port, the parts add up to the whole.
            let parts = Summary::by_port(&sockets, &[1].into());
            for state in TcpState::ALL {
                prop_assert_eq!(parts.values().map(|p| p.by_state.get(state)).sum::<usize>(), summary.by_state.get(state));
            }
        }
    }
}
