//! Findings: what the sockets mean, as data: a stable [`Code`] that scripts may match on, and
//! typed [`Evidence`] with the numbers behind it. `render` turns each into plain words (the
//! `message`), so the numbers need no expert.
//!
//! | code | when |
//! | --- | --- |
//! | `close-wait` | sockets in CLOSE-WAIT on a port: the application has not closed after the peer's FIN (those never accepted are counted apart) |
//! | `listen-queue` | connections waiting in a listening socket's queue, accepted by no process yet: the server accepts slower than clients come |
//! | `keepalive-missing` | established server-side sockets (local port listening) with no keepalive timer armed |
//! | `dead-peer-retransmitting` | established sockets resending data (or window probes) that are never acknowledged |
//! | `keepalive-sysctl-slow` | the system keepalive timings take more than 10 minutes to detect a dead peer, and some socket relies on them |
//! | `no-user-timeout` | with `-O`: established server-side sockets with keepalive but no `TCP_USER_TIMEOUT` (data in flight holds a dead peer until `tcp_retries2` gives up) |
//! | `slow-reader` | established sockets with data queued whose peer stopped reading (zero window) |
//! | `fd-exhaustion` | an owning process past 80 % of its soft `RLIMIT_NOFILE` (needs `-p`) |
//! | `thread-per-connection` | an owning process with at least as many threads as connections (needs `-p`) |

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Serialize, Serializer};

use crate::deadpeer::Detect;
use crate::model::{Endpoint, KeepaliveSysctls, ListenQueue, ProcessStats, Socket, TcpState, TimerKind};
use crate::tally::Tally;

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Something leaks or will fail: act on it.
    Warning,
    /// Worth knowing; nothing fails yet.
    Info,
}

/// A finding's stable code: what scripts match on (`findings[].code` in JSON, `[code]` in text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    /// `close-wait`
    CloseWait,
    /// `listen-queue`
    ListenQueue,
    /// `keepalive-missing`
    KeepaliveMissing,
    /// `dead-peer-retransmitting`
    DeadPeerRetransmitting,
    /// `keepalive-sysctl-slow`
    KeepaliveSysctlSlow,
    /// `no-user-timeout`
    NoUserTimeout,
    /// `slow-reader`
    SlowReader,
    /// `fd-exhaustion`
    FdExhaustion,
    /// `thread-per-connection`
    ThreadPerConnection,
}

impl Code {
    /// The code as scripts see it.
    pub fn name(self) -> &'static str {
        match self {
            Code::CloseWait => "close-wait",
            Code::ListenQueue => "listen-queue",
            Code::KeepaliveMissing => "keepalive-missing",
            Code::DeadPeerRetransmitting => "dead-peer-retransmitting",
            Code::KeepaliveSysctlSlow => "keepalive-sysctl-slow",
            Code::NoUserTimeout => "no-user-timeout",
            Code::SlowReader => "slow-reader",
            Code::FdExhaustion => "fd-exhaustion",
            Code::ThreadPerConnection => "thread-per-connection",
        }
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One finding: what it is, how much it matters, its numbers, and the command that cures it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// How much it matters.
    pub severity: Severity,
    /// The numbers behind it; which variant says which finding it is ([`Finding::code`]).
    pub evidence: Evidence,
    /// The command that cures it, where there is one (a suggestion: nothing runs by itself).
    pub cure: Option<String>,
    /// With `--all-netns`: the network namespace the finding is about.
    pub netns: Option<std::sync::Arc<str>>,
}

impl Finding {
    /// The finding's stable code.
    pub fn code(&self) -> Code {
        match self.evidence {
            Evidence::CloseWait(_) => Code::CloseWait,
            Evidence::ListenQueue(_) => Code::ListenQueue,
            Evidence::KeepaliveMissing(_) => Code::KeepaliveMissing,
            Evidence::DeadPeerRetransmitting(_) => Code::DeadPeerRetransmitting,
            Evidence::KeepaliveSysctlSlow(_) => Code::KeepaliveSysctlSlow,
            Evidence::NoUserTimeout(_) => Code::NoUserTimeout,
            Evidence::SlowReader(_) => Code::SlowReader,
            Evidence::FdExhaustion(_) => Code::FdExhaustion,
            Evidence::ThreadPerConnection(_) => Code::ThreadPerConnection,
        }
    }
}

/// The numbers behind each finding, one type per code; in JSON, the `evidence` object (its keys
/// in alphabetical order, as they have always been written). Fields marked "not in JSON" are what
/// the message needs besides the numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Evidence {
    /// `close-wait`
    CloseWait(CloseWait),
    /// `listen-queue`
    ListenQueue(ListenQueueEvidence),
    /// `keepalive-missing`
    KeepaliveMissing(KeepaliveMissing),
    /// `dead-peer-retransmitting`
    DeadPeerRetransmitting(DeadPeerRetransmitting),
    /// `keepalive-sysctl-slow`
    KeepaliveSysctlSlow(KeepaliveSysctlSlow),
    /// `no-user-timeout`
    NoUserTimeout(NoUserTimeout),
    /// `slow-reader`
    SlowReader(SlowReader),
    /// `fd-exhaustion`
    FdExhaustion(FdExhaustion),
    /// `thread-per-connection`
    ThreadPerConnection(ThreadPerConnection),
}

/// `close-wait`: sockets in CLOSE-WAIT on one port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CloseWait {
    /// Of them, accepted by the application.
    pub accepted: usize,
    /// The longest any accepted one has received nothing, in ms (`None` without idle times).
    pub oldest_idle_ms: Option<u64>,
    /// Their owners, as `comm (pid N)`, sorted.
    pub owners: Vec<String>,
    /// The local port.
    pub port: u16,
    /// Of them, still in the listen queue (never accepted).
    pub queued: usize,
    /// All of them.
    pub sockets: usize,
    /// Whether owners were joined (`-p`); not in JSON.
    #[serde(skip)]
    pub processes_joined: bool,
}

/// `listen-queue`: connections waiting in one port's listen queue.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListenQueueEvidence {
    /// The listeners' backlogs, summed.
    pub backlog: u64,
    /// Of the queued, closed by their clients (CLOSE-WAIT in the queue).
    pub close_wait: usize,
    /// `TcpExt` `ListenDrops` since boot, where readable.
    pub listen_drops: Option<u64>,
    /// `TcpExt` `ListenOverflows` since boot, where readable.
    pub listen_overflows: Option<u64>,
    /// The local port.
    pub port: u16,
    /// Connections in the queue.
    pub queued: usize,
    /// The listeners' `Recv-Q`, summed.
    pub waiting: u64,
    /// Whether the listeners' queues were read (then `waiting` and `backlog` mean something);
    /// not in JSON.
    #[serde(skip)]
    pub queues_read: bool,
}

/// `keepalive-missing`: established server-side sockets without a keepalive timer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeepaliveMissing {
    /// Of `ports`, those a kernel cure covers.
    pub cured_ports: Vec<u16>,
    /// Established server-side sockets.
    pub established: usize,
    /// The local ports of those without.
    pub ports: BTreeSet<u16>,
    /// Those without a keepalive timer.
    pub without_keepalive: usize,
}

/// `dead-peer-retransmitting`: established sockets whose data is never acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadPeerRetransmitting {
    /// The most retransmissions (or probes) of any of them.
    pub max_retransmits: u32,
    /// Their first [`EVIDENCE_PEERS`] peers.
    pub peers: Vec<Endpoint>,
    /// How many.
    pub sockets: usize,
    /// Their send queues, summed.
    pub unacked_bytes: u64,
}

/// `keepalive-sysctl-slow`: the namespace's keepalive defaults detect a dead peer late.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeepaliveSysctlSlow {
    /// How long `SO_KEEPALIVE` alone takes with them, in ms.
    pub detect_ms: u64,
    /// The sysctls.
    #[serde(serialize_with = "sysctls_sorted")]
    pub sysctls: KeepaliveSysctls,
}

/// `no-user-timeout`: server-side sockets with keepalive but no `TCP_USER_TIMEOUT` (with `-O`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoUserTimeout {
    /// With data in flight: when the retransmission limit ends the connection, in ms.
    pub busy_ms: u64,
    /// Idle: when keepalive drops a dead peer, in ms (the slowest of them).
    pub idle_ms: u64,
    /// The local port.
    pub port: u16,
    /// How many.
    pub sockets: usize,
    /// `net.ipv4.tcp_retries2`; not in JSON.
    #[serde(skip)]
    pub retries2: u32,
}

/// `slow-reader`: streams whose peer stopped reading, on one port.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlowReader {
    /// Their first [`EVIDENCE_PEERS`] peers.
    pub peers: Vec<Endpoint>,
    /// The local port.
    pub port: u16,
    /// Their send queues, summed.
    pub queued_bytes: u64,
    /// How many.
    pub sockets: usize,
    /// The longest since any of them sent data, in ms.
    pub stalled_ms: Option<u64>,
}

/// `fd-exhaustion`: a process near its soft `RLIMIT_NOFILE`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FdExhaustion {
    /// Its sockets in CLOSE-WAIT.
    pub close_wait: usize,
    /// Its name.
    pub comm: String,
    /// Its soft limit.
    pub file_limit: u64,
    /// Files it holds.
    pub open_files: usize,
    /// Its process id.
    pub pid: u32,
    /// The local ports of its CLOSE-WAIT sockets.
    pub ports: Vec<u16>,
    /// Of its files, sockets.
    pub socket_files: usize,
}

/// `thread-per-connection`: a process with a thread for every connection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThreadPerConnection {
    /// Its name.
    pub comm: String,
    /// Its established and CLOSE-WAIT connections.
    pub connections: usize,
    /// Its process id.
    pub pid: u32,
    /// The local ports of those connections.
    pub ports: Vec<u16>,
    /// Its threads.
    pub threads: u64,
}

/// The sysctls with their keys in alphabetical order, as the evidence has always written them.
fn sysctls_sorted<S: Serializer>(s: &KeepaliveSysctls, ser: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Sorted {
        intvl_s: u64,
        probes: u64,
        time_s: u64,
    }
    Sorted { intvl_s: s.intvl_s, probes: s.probes, time_s: s.time_s }.serialize(ser)
}

/// Retransmissions (or unanswered zero-window probes) after which a peer counts as gone. A
/// healthy path retransmits now and then; three backed-off retransmissions in a row mean no ACK
/// for at least 7 RTOs (1.4 s at the 200 ms minimum). Any ACK resets both counts.
pub const DEAD_PEER_RETRANSMITS: u32 = 3;

/// System keepalive timings slower than this (to detect a dead peer) are worth a note.
pub const SLOW_KEEPALIVE_MS: u64 = 10 * 60 * 1000;

/// What the findings need besides the sockets, read by the caller at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// The namespace's keepalive sysctls; `None` when unreadable.
    pub sysctls: Option<KeepaliveSysctls>,
    /// The local ports with a listening socket: a socket on one of them is the server side.
    pub listening: BTreeSet<u16>,
    /// Whether owners were joined (`-p`): the per-process findings need them.
    pub processes_joined: bool,
    /// Each owning process's files, limit and threads (with `-p`).
    pub processes: Vec<ProcessStats>,
    /// The queues of the listeners whose ports have connections waiting (see `Snapshot::queues`).
    pub queues: Vec<ListenQueue>,
    /// `net.ipv4.tcp_retries2` (the default where unreadable): bounds data in flight on a
    /// socket without a user timeout.
    pub retries2: u32,
    /// Ports a kernel cure (`fix --persist`) covers: connections there without keepalive predate it.
    pub cured: BTreeSet<u16>,
    /// `ListenOverflows` and `ListenDrops` since boot (this namespace's `TcpExt`), read when a
    /// connection waits in a queue; `None` when unreadable.
    pub listen_drops: Option<(u64, u64)>,
}

impl Default for Facts {
    fn default() -> Facts {
        Facts {
            sysctls: None,
            listening: BTreeSet::new(),
            processes_joined: false,
            processes: Vec::new(),
            retries2: crate::deadpeer::DEFAULT_RETRIES2,
            queues: Vec::new(),
            cured: BTreeSet::new(),
            listen_drops: None,
        }
    }
}

/// Share of the soft `RLIMIT_NOFILE` past which a process is about to fail `accept()` and
/// `open()` with `EMFILE`, in percent.
pub const FD_EXHAUSTION_PERCENT: u64 = 80;

/// Connections a process must hold before a thread count that matches them says "a thread per
/// connection" rather than "a small pool".
pub const THREAD_PER_CONNECTION_MIN: usize = 16;

/// With `-i`: a stream whose sending was held back by the peer's window for more than half its
/// busy time, and at least this long, has a reader that cannot keep up.
pub const RWND_LIMITED_MIN_MS: u64 = 1000;

/// Peers listed in a finding's evidence, at most: the evidence travels in every SSE event, and
/// 10,000 retransmitting sockets must not make it 10,000 addresses long (the count is in
/// `sockets`).
pub const EVIDENCE_PEERS: usize = 20;

/// `webui-doctor fix` for these ports, with `extra` flags.
fn fix_ports<'a>(ports: impl IntoIterator<Item = &'a u16>, extra: &str) -> String {
    let ports: Vec<String> = ports.into_iter().map(|p| format!("--port {p}")).collect();
    format!("webui-doctor fix {}{extra}", ports.join(" "))
}

/// All findings for `sockets` (already filtered), given the namespace's facts.
pub fn diagnose(sockets: &[Socket], facts: &Facts) -> Vec<Finding> {
    Diagnosis::new(facts).over(sockets).findings(facts)
}

/// What the findings need of the sockets, counted one socket at a time ([`Tally`]): per-port
/// aggregates and at most [`EVIDENCE_PEERS`] example peers per finding, so its size follows the
/// ports and processes, not the sockets. [`Diagnosis::findings`] judges it.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    /// The facts judged as each socket comes: the server-side ports, the sysctls, `tcp_retries2`.
    listening: BTreeSet<u16>,
    sysctls: Option<KeepaliveSysctls>,
    retries2: u32,
    close_wait: BTreeMap<u16, CloseWaitPort>,
    /// Per port: queued connections still open, and closed by their clients.
    queued: BTreeMap<u16, (usize, usize)>,
    /// Established server-side sockets, those without keepalive, and their ports.
    server_side: usize,
    unarmed: usize,
    unarmed_ports: BTreeSet<u16>,
    dead: Stuck,
    slow: BTreeMap<u16, Slow>,
    owners: OwnerPorts,
    /// Per port (with `-O`): sockets with keepalive and no user timeout, and the slowest idle bound.
    no_user_timeout: BTreeMap<u16, (usize, u64)>,
    /// Some connected socket takes its keepalive timings from the sysctls.
    relies_on_sysctls: bool,
}

#[derive(Debug, Clone, Default)]
struct CloseWaitPort {
    sockets: usize,
    queued: usize,
    accepted: usize,
    oldest_idle_ms: Option<u64>,
    owners: BTreeSet<String>,
}

#[derive(Debug, Clone, Default)]
struct Stuck {
    sockets: usize,
    max_retransmits: u32,
    peers: Vec<Endpoint>,
    unacked_bytes: u64,
}

#[derive(Debug, Clone, Default)]
struct Slow {
    sockets: usize,
    peers: Vec<Endpoint>,
    queued_bytes: u64,
    stalled_ms: Option<u64>,
}

/// Appends `later`'s example peers after `peers`, keeping the first [`EVIDENCE_PEERS`].
fn merge_peers(peers: &mut Vec<Endpoint>, later: Vec<Endpoint>) {
    let room = EVIDENCE_PEERS.saturating_sub(peers.len());
    peers.extend(later.into_iter().take(room));
}

impl Diagnosis {
    /// An empty diagnosis judging by `facts`' listening ports, sysctls and `tcp_retries2`.
    pub fn new(facts: &Facts) -> Diagnosis {
        Diagnosis {
            listening: facts.listening.clone(),
            sysctls: facts.sysctls,
            retries2: facts.retries2,
            close_wait: BTreeMap::new(),
            queued: BTreeMap::new(),
            server_side: 0,
            unarmed: 0,
            unarmed_ports: BTreeSet::new(),
            dead: Stuck::default(),
            slow: BTreeMap::new(),
            owners: HashMap::new(),
            no_user_timeout: BTreeMap::new(),
            relies_on_sysctls: false,
        }
    }

    /// The findings, in their fixed order, given the rest of the facts (owners' files and
    /// threads, listen queues, cures, drops).
    pub fn findings(self, facts: &Facts) -> Vec<Finding> {
        let mut out = Vec::new();
        for (port, cw) in self.close_wait {
            let evidence = CloseWait {
                accepted: cw.accepted,
                oldest_idle_ms: cw.oldest_idle_ms,
                owners: cw.owners.into_iter().collect(),
                port,
                queued: cw.queued,
                sockets: cw.sockets,
                processes_joined: facts.processes_joined,
            };
            out.push(finding(
                Severity::Warning,
                Evidence::CloseWait(evidence),
                Some(fix_ports([&port], " --close-wait")),
            ));
        }
        listen_queue(&self.queued, facts, &mut out);
        if self.unarmed > 0 {
            let cure = fix_ports(&self.unarmed_ports, "");
            let evidence = KeepaliveMissing {
                cured_ports: self.unarmed_ports.iter().copied().filter(|p| facts.cured.contains(p)).collect(),
                established: self.server_side,
                ports: self.unarmed_ports,
                without_keepalive: self.unarmed,
            };
            out.push(finding(Severity::Warning, Evidence::KeepaliveMissing(evidence), Some(cure)));
        }
        if self.dead.sockets > 0 {
            let evidence = DeadPeerRetransmitting {
                max_retransmits: self.dead.max_retransmits,
                peers: self.dead.peers,
                sockets: self.dead.sockets,
                unacked_bytes: self.dead.unacked_bytes,
            };
            out.push(finding(Severity::Warning, Evidence::DeadPeerRetransmitting(evidence), None));
        }
        for (port, slow) in self.slow {
            let evidence = SlowReader {
                peers: slow.peers,
                port,
                queued_bytes: slow.queued_bytes,
                sockets: slow.sockets,
                // Since the last data segment went out: how long the stream has not moved.
                stalled_ms: slow.stalled_ms,
            };
            out.push(finding(Severity::Warning, Evidence::SlowReader(evidence), Some(fix_ports([&port], ""))));
        }
        if !facts.processes.is_empty() {
            fd_exhaustion(&self.owners, &facts.processes, &mut out);
            thread_per_connection(&self.owners, &facts.processes, &mut out);
        }
        for (port, (n, idle_ms)) in self.no_user_timeout {
            let evidence = NoUserTimeout {
                busy_ms: crate::deadpeer::retries_ms(self.retries2),
                idle_ms,
                port,
                sockets: n,
                retries2: self.retries2,
            };
            out.push(finding(Severity::Warning, Evidence::NoUserTimeout(evidence), Some(fix_ports([&port], ""))));
        }
        if let Some(s) = self.sysctls
            && s.detect_ms() > SLOW_KEEPALIVE_MS
            && self.relies_on_sysctls
        {
            out.push(finding(
                Severity::Info,
                Evidence::KeepaliveSysctlSlow(KeepaliveSysctlSlow { detect_ms: s.detect_ms(), sysctls: s }),
                None,
            ));
        }
        out
    }
}

impl Tally for Diagnosis {
    fn add(&mut self, s: &Socket) {
        let port = s.local.port();
        let established = s.state == TcpState::Established;
        if s.state == TcpState::CloseWait {
            let cw = self.close_wait.entry(port).or_default();
            cw.sockets += 1;
            if s.queued {
                cw.queued += 1;
            } else {
                cw.accepted += 1;
                cw.oldest_idle_ms = cw.oldest_idle_ms.max(s.idle.map(|i| i.last_recv_ms));
                if let Some(p) = &s.process {
                    cw.owners.insert(format!("{} (pid {})", p.comm, p.pid));
                }
            }
        }
        if s.queued {
            let (open, closed) = self.queued.entry(port).or_default();
            if s.state == TcpState::CloseWait { *closed += 1 } else { *open += 1 }
        }
        let server_side = established && self.listening.contains(&port);
        if server_side {
            self.server_side += 1;
            if !s.keepalive_armed() {
                self.unarmed += 1;
                self.unarmed_ports.insert(port);
            }
        }
        if established
            && let Some(t) = s.timer
            && matches!(t.kind, TimerKind::Retransmit | TimerKind::Persist)
            && t.probes >= DEAD_PEER_RETRANSMITS
        {
            let dead = &mut self.dead;
            dead.sockets += 1;
            dead.max_retransmits = dead.max_retransmits.max(t.probes);
            if dead.peers.len() < EVIDENCE_PEERS {
                dead.peers.push(s.peer);
            }
            dead.unacked_bytes += u64::from(s.send_q);
        }
        if is_slow_reader(s) {
            let slow = self.slow.entry(port).or_default();
            slow.sockets += 1;
            if slow.peers.len() < EVIDENCE_PEERS {
                slow.peers.push(s.peer);
            }
            slow.queued_bytes += u64::from(s.send_q);
            slow.stalled_ms = slow.stalled_ms.max(s.idle.map(|i| i.last_send_ms));
        }
        if let Some(p) = &s.process
            && matches!(s.state, TcpState::Established | TcpState::CloseWait | TcpState::Listening)
        {
            *self.owners.entry((p.pid, s.state)).or_default().entry(port).or_insert(0) += 1;
        }
        if server_side
            && let Some(o) = s.sockopts
            && o.so_keepalive
            && o.user_timeout_ms == 0
        {
            let idle = Detect::of(&o, self.retries2).idle_ms.unwrap_or(0);
            let (n, worst_idle) = self.no_user_timeout.entry(port).or_default();
            *n += 1;
            *worst_idle = (*worst_idle).max(idle);
        }
        if !self.relies_on_sysctls
            && let Some(sysctls) = &self.sysctls
            && matches!(s.state, TcpState::Established | TcpState::Listening)
        {
            self.relies_on_sysctls = relies_on_sysctls(s, sysctls);
        }
    }

    fn merge(&mut self, later: Self) {
        for (port, cw) in later.close_wait {
            let mine = self.close_wait.entry(port).or_default();
            mine.sockets += cw.sockets;
            mine.queued += cw.queued;
            mine.accepted += cw.accepted;
            mine.oldest_idle_ms = mine.oldest_idle_ms.max(cw.oldest_idle_ms);
            mine.owners.extend(cw.owners);
        }
        for (port, (open, closed)) in later.queued {
            let mine = self.queued.entry(port).or_default();
            mine.0 += open;
            mine.1 += closed;
        }
        self.server_side += later.server_side;
        self.unarmed += later.unarmed;
        self.unarmed_ports.extend(later.unarmed_ports);
        let dead = &mut self.dead;
        dead.sockets += later.dead.sockets;
        dead.max_retransmits = dead.max_retransmits.max(later.dead.max_retransmits);
        merge_peers(&mut dead.peers, later.dead.peers);
        dead.unacked_bytes += later.dead.unacked_bytes;
        for (port, slow) in later.slow {
            let mine = self.slow.entry(port).or_default();
            mine.sockets += slow.sockets;
            merge_peers(&mut mine.peers, slow.peers);
            mine.queued_bytes += slow.queued_bytes;
            mine.stalled_ms = mine.stalled_ms.max(slow.stalled_ms);
        }
        for (key, ports) in later.owners {
            let mine = self.owners.entry(key).or_default();
            for (port, n) in ports {
                *mine.entry(port).or_insert(0) += n;
            }
        }
        for (port, (n, idle)) in later.no_user_timeout {
            let mine = self.no_user_timeout.entry(port).or_default();
            mine.0 += n;
            mine.1 = mine.1.max(idle);
        }
        self.relies_on_sysctls |= later.relies_on_sysctls;
    }
}

fn finding(severity: Severity, evidence: Evidence, cure: Option<String>) -> Finding {
    Finding { severity, evidence, cure, netns: None }
}

/// Connections no process has accepted yet, per port: the server takes them off its listen queue
/// slower than clients arrive (every worker busy). Those whose clients already closed wait there
/// as CLOSE-WAIT; the rest carry the listener's options from before any fix and cannot be given
/// new ones until a worker accepts them.
fn listen_queue(by_port: &BTreeMap<u16, (usize, usize)>, facts: &Facts, out: &mut Vec<Finding>) {
    for (&port, &(open, closed)) in by_port {
        let queues: Vec<&ListenQueue> = facts.queues.iter().filter(|q| q.local.port() == port).collect();
        let evidence = ListenQueueEvidence {
            backlog: queues.iter().map(|q| u64::from(q.backlog)).sum(),
            close_wait: closed,
            listen_drops: facts.listen_drops.map(|d| d.1),
            listen_overflows: facts.listen_drops.map(|d| d.0),
            port,
            queued: open + closed,
            waiting: queues.iter().map(|q| u64::from(q.waiting)).sum(),
            queues_read: !queues.is_empty(),
        };
        let cure = (closed > 0).then(|| fix_ports([&port], " --close-wait"));
        out.push(finding(Severity::Warning, Evidence::ListenQueue(evidence), cure));
    }
}

/// Whether a connected socket takes its keepalive timings from the sysctls. With `-O` that is
/// known: keepalive on with exactly the sysctl values (what `getsockopt` reports for a socket
/// that set none). Without it, any connection with its keepalive timer armed may.
fn relies_on_sysctls(x: &Socket, s: &KeepaliveSysctls) -> bool {
    match x.sockopts {
        Some(o) => {
            o.so_keepalive
                && (u64::from(o.keepidle_s), u64::from(o.keepintvl_s), u64::from(o.keepcnt))
                    == (s.time_s, s.intvl_s, s.probes)
        }
        None => x.keepalive_armed(),
    }
}

/// Whether the peer has stopped reading a stream we are writing: data queued and the peer's
/// window closed (the kernel runs the zero-window probe timer, or `tcp_info` says `snd_wnd` 0),
/// or with `-i` unsent data while the window held sending back most of the busy time.
pub fn is_slow_reader(s: &Socket) -> bool {
    if s.state != TcpState::Established || s.send_q == 0 {
        return false;
    }
    let persist = s.timer.is_some_and(|t| t.kind == TimerKind::Persist);
    let info = s.details.info.as_deref().copied().unwrap_or_default();
    let closed = info.snd_wnd() == Some(0);
    let held_back = match (info.notsent_bytes(), info.rwnd_limited_ms(), info.busy_ms()) {
        (Some(notsent), Some(limited), Some(busy)) => {
            notsent > 0 && limited >= RWND_LIMITED_MIN_MS && limited.saturating_mul(2) > busy
        }
        _ => false,
    };
    persist || closed || held_back
}

/// Per owning process and state, the local ports of its sockets with how many each: one pass
/// over the sockets, whatever the number of processes.
type OwnerPorts = HashMap<(u32, TcpState), BTreeMap<u16, usize>>;

/// Local ports of `pid`'s sockets in `state`, with how many sockets each.
fn ports_of(owners: &OwnerPorts, pid: u32, state: TcpState) -> BTreeMap<u16, usize> {
    owners.get(&(pid, state)).cloned().unwrap_or_default()
}

fn fd_exhaustion(owners: &OwnerPorts, processes: &[ProcessStats], out: &mut Vec<Finding>) {
    for p in processes {
        let Some(limit) = p.file_limit else { continue };
        let open = p.open_files as u64;
        if open.saturating_mul(100) < limit.saturating_mul(FD_EXHAUSTION_PERCENT) {
            continue;
        }
        let close_wait = ports_of(owners, p.pid, TcpState::CloseWait);
        let stuck: usize = close_wait.values().sum();
        let cure = (stuck > 0).then(|| fix_ports(close_wait.keys(), " --close-wait"));
        let evidence = FdExhaustion {
            close_wait: stuck,
            comm: p.comm.clone(),
            file_limit: limit,
            open_files: p.open_files,
            pid: p.pid,
            ports: close_wait.keys().copied().collect(),
            socket_files: p.socket_files,
        };
        out.push(finding(Severity::Warning, Evidence::FdExhaustion(evidence), cure));
    }
}

fn thread_per_connection(owners: &OwnerPorts, processes: &[ProcessStats], out: &mut Vec<Finding>) {
    for p in processes {
        let Some(threads) = p.threads else { continue };
        let mut ports = ports_of(owners, p.pid, TcpState::Established);
        for (port, n) in ports_of(owners, p.pid, TcpState::CloseWait) {
            *ports.entry(port).or_insert(0) += n;
        }
        let connections: usize = ports.values().sum();
        if connections < THREAD_PER_CONNECTION_MIN || (threads as usize) < connections {
            continue;
        }
        let listening = ports_of(owners, p.pid, TcpState::Listening);
        let cure = (!listening.is_empty()).then(|| fix_ports(listening.keys(), ""));
        let evidence = ThreadPerConnection {
            comm: p.comm.clone(),
            connections,
            pid: p.pid,
            ports: ports.keys().copied().collect(),
            threads,
        };
        out.push(finding(Severity::Warning, Evidence::ThreadPerConnection(evidence), cure));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn socket(state: TcpState, timer: Option<(TimerKind, u32)>, send_q: u32) -> Socket {
        let mut s = Socket::new(state, "127.0.0.1:8787".parse().unwrap(), "127.0.0.1:40000".parse().unwrap());
        s.send_q = send_q;
        s.timer = timer.map(|(kind, probes)| Timer { kind, expires_ms: 100, probes });
        s.inode = 1;
        s.process = Some(Process { pid: 4242, comm: "python3".into() });
        s.idle = Some(Idle { last_recv_ms: 7_800_000, last_send_ms: 1 });
        s
    }

    /// Each finding's code and evidence, as data: the words are `render`'s (tested there).
    #[test]
    fn codes_and_evidence_are_typed_and_serialize_as_always() {
        let sick = vec![
            socket(TcpState::CloseWait, None, 0),
            socket(TcpState::CloseWait, None, 0),
            socket(TcpState::Established, Some((TimerKind::Retransmit, 5)), 180),
            socket(TcpState::Established, Some((TimerKind::Keepalive, 0)), 0),
        ];
        let facts = Facts {
            sysctls: Some(KeepaliveSysctls { time_s: 7200, intvl_s: 75, probes: 9 }),
            listening: [8787].into(),
            processes_joined: true,
            ..Facts::default()
        };
        let found = diagnose(&sick, &facts);
        let codes: Vec<Code> = found.iter().map(Finding::code).collect();
        assert_eq!(
            codes,
            [Code::CloseWait, Code::KeepaliveMissing, Code::DeadPeerRetransmitting, Code::KeepaliveSysctlSlow]
        );
        assert_eq!(serde_json::to_string(&codes[0]).unwrap(), "\"close-wait\"");
        assert_eq!(codes[3].to_string(), "keepalive-sysctl-slow");
        match &found[0].evidence {
            Evidence::CloseWait(e) => {
                assert_eq!((e.port, e.sockets, e.accepted, e.queued), (8787, 2, 2, 0));
                assert_eq!(e.owners, ["python3 (pid 4242)"]);
                assert_eq!(e.oldest_idle_ms, Some(7_800_000));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(found[0].cure.as_deref(), Some("webui-doctor fix --port 8787 --close-wait"));
        // Keys in alphabetical order, fields the message alone needs left out.
        assert_eq!(
            serde_json::to_string(&found[0].evidence).unwrap(),
            r#"{"accepted":2,"oldest_idle_ms":7800000,"owners":["python3 (pid 4242)"],"port":8787,"queued":0,"sockets":2}"#
        );
        assert_eq!(
            serde_json::to_string(&found[3].evidence).unwrap(),
            r#"{"detect_ms":7875000,"sysctls":{"intvl_s":75,"probes":9,"time_s":7200}}"#
        );
        assert_eq!(
            serde_json::to_string(&found[2].evidence).unwrap(),
            r#"{"max_retransmits":5,"peers":["127.0.0.1:40000"],"sockets":1,"unacked_bytes":180}"#
        );
    }

    #[test]
    fn healthy_and_client_side_sockets_have_no_findings() {
        let healthy = vec![socket(TcpState::Established, Some((TimerKind::Keepalive, 0)), 0)];
        let fast = KeepaliveSysctls { time_s: 10, intvl_s: 5, probes: 3 };
        let server = Facts { sysctls: Some(fast), listening: [8787].into(), ..Facts::default() };
        assert!(diagnose(&healthy, &server).is_empty());
        let client = vec![socket(TcpState::Established, None, 0)];
        assert!(diagnose(&client, &Facts { listening: [80].into(), ..server.clone() }).is_empty());
        // Sums over hostile sysctl values saturate instead of overflowing.
        let huge = KeepaliveSysctls { time_s: u64::MAX, intvl_s: u64::MAX, probes: u64::MAX };
        assert_eq!(diagnose(&healthy, &Facts { sysctls: Some(huge), ..server }).len(), 1);
    }

    #[test]
    fn slow_reader_is_a_closed_window_with_data_queued() {
        let stalled = socket(TcpState::Established, Some((TimerKind::Persist, 0)), 4_100_000);
        let idle_reader = socket(TcpState::Established, Some((TimerKind::Keepalive, 0)), 0);
        let mut closed = socket(TcpState::Established, None, 10);
        let mut info = TcpInfo::default();
        info.set_snd_wnd(Some(0));
        closed.details.info = Some(Box::new(info));
        assert!(is_slow_reader(&stalled) && is_slow_reader(&closed) && !is_slow_reader(&idle_reader));
        // However many, the evidence lists a bounded number of peers; the count says the rest.
        let many: Vec<Socket> =
            (0..100).map(|_| socket(TcpState::Established, Some((TimerKind::Persist, 0)), 10)).collect();
        match &diagnose(&many, &Facts::default())[0].evidence {
            Evidence::SlowReader(e) => assert_eq!((e.sockets, e.peers.len()), (100, EVIDENCE_PEERS)),
            other => panic!("{other:?}"),
        }
    }
}
