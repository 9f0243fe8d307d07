//! Findings: what the sockets mean, in plain words with the evidence, so the numbers need no
//! expert. Each finding has a stable `code` that scripts may match on.
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

use serde::Serialize;
use serde_json::{Value, json};

use crate::deadpeer::Detect;
use crate::model::{KeepaliveSysctls, ListenQueue, ProcessStats, Socket, TcpState, TimerKind};
use crate::units::{human_bytes, human_ms, long_duration, thousands};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Info,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub code: &'static str,
    pub severity: Severity,
    pub message: String,
    /// The numbers behind the message.
    pub evidence: Value,
    /// The command that cures it, where there is one (a suggestion: nothing runs by itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cure: Option<String>,
    /// With `--all-netns`: the network namespace the finding is about.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<std::sync::Arc<str>>,
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

/// The first [`EVIDENCE_PEERS`] peers of `sockets`.
fn peers(sockets: &[&Socket]) -> Vec<String> {
    sockets.iter().take(EVIDENCE_PEERS).map(|s| s.peer.to_string()).collect()
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// All findings for `sockets` (already filtered), given the namespace's facts.
pub fn diagnose(sockets: &[Socket], facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    close_wait(sockets, facts.processes_joined, &mut out);
    listen_queue(sockets, facts, &mut out);
    keepalive_missing(sockets, &facts.listening, &facts.cured, &mut out);
    dead_peers(sockets, &mut out);
    slow_readers(sockets, &mut out);
    if !facts.processes.is_empty() {
        let owners = owner_ports(sockets);
        fd_exhaustion(&owners, &facts.processes, &mut out);
        thread_per_connection(&owners, &facts.processes, &mut out);
    }
    no_user_timeout(sockets, facts, &mut out);
    if let Some(s) = facts.sysctls
        && s.detect_ms() > SLOW_KEEPALIVE_MS
        && relies_on_sysctls(sockets, &s)
    {
        out.push(Finding {
            code: "keepalive-sysctl-slow",
            severity: Severity::Info,
            message: format!(
                "net.ipv4.tcp_keepalive_time is {} s (interval {} s, {} probes): SO_KEEPALIVE alone detects a dead \
                 peer after {}; set TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT on the socket",
                s.time_s,
                s.intvl_s,
                s.probes,
                long_duration(s.detect_ms())
            ),
            evidence: json!({ "sysctls": s, "detect_ms": s.detect_ms() }),
            cure: None,
            netns: None,
        });
    }
    out
}

fn close_wait(sockets: &[Socket], processes_joined: bool, out: &mut Vec<Finding>) {
    let mut by_port: BTreeMap<u16, Vec<&Socket>> = BTreeMap::new();
    for s in sockets.iter().filter(|s| s.state == TcpState::CloseWait) {
        by_port.entry(s.local.port()).or_default().push(s);
    }
    for (port, group) in by_port {
        let (queued, accepted): (Vec<&Socket>, Vec<&Socket>) = group.iter().partition(|s| s.queued);
        let mut owners: Vec<String> =
            accepted.iter().filter_map(|s| s.process.as_ref().map(|p| format!("{} (pid {})", p.comm, p.pid))).collect();
        owners.sort();
        owners.dedup();
        let oldest = accepted.iter().filter_map(|s| s.idle.map(|i| i.last_recv_ms)).max();
        let cure = format!("webui-doctor fix --port {port} --close-wait");
        let waiting = |n: usize| {
            format!(
                "{} in the listen queue, closed by {} before any process took {} (see listen-queue)",
                if n == 1 { "it waits" } else { "they wait" },
                if n == 1 { "its client" } else { "their clients" },
                if n == 1 { "it" } else { "them" }
            )
        };
        let message = if accepted.is_empty() {
            format!(
                "{} on :{port} in CLOSE-WAIT, none accepted by the application: {}. `{cure}` ends them now",
                plural(group.len(), "socket", "sockets"),
                waiting(queued.len())
            )
        } else {
            let mut message = format!("{} on :{port} in CLOSE-WAIT", plural(accepted.len(), "socket", "sockets"));
            if !owners.is_empty() {
                message.push_str(&format!(", owned by {}", owners.join(", ")));
            }
            if let Some(ms) = oldest {
                message.push_str(&format!(", oldest idle {}", human_ms(ms)));
            }
            message.push_str(&format!(
                ": the application is not closing connections after the client's FIN; keepalive will not clear \
                 these. `{cure}` ends them now"
            ));
            if !queued.is_empty() {
                message.push_str(&format!("; {} more never accepted: {}", queued.len(), waiting(queued.len())));
            }
            if !processes_joined {
                message.push_str(" (with -p: whether the owner is running out of files)");
            }
            message
        };
        out.push(Finding {
            code: "close-wait",
            severity: Severity::Warning,
            message,
            evidence: json!({
                "port": port,
                "sockets": group.len(),
                "accepted": accepted.len(),
                "queued": queued.len(),
                "owners": owners,
                "oldest_idle_ms": oldest,
            }),
            cure: Some(cure),
            netns: None,
        });
    }
}

/// Connections no process has accepted yet, per port: the server takes them off its listen queue
/// slower than clients arrive (every worker busy). Those whose clients already closed wait there
/// as CLOSE-WAIT; the rest carry the listener's options from before any fix and cannot be given
/// new ones until a worker accepts them.
fn listen_queue(sockets: &[Socket], facts: &Facts, out: &mut Vec<Finding>) {
    let mut by_port: BTreeMap<u16, (usize, usize)> = BTreeMap::new();
    for s in sockets.iter().filter(|s| s.queued) {
        let (open, closed) = by_port.entry(s.local.port()).or_default();
        if s.state == TcpState::CloseWait { *closed += 1 } else { *open += 1 }
    }
    for (port, (open, closed)) in by_port {
        let queues: Vec<&ListenQueue> = facts.queues.iter().filter(|q| q.local.port() == port).collect();
        let waiting: u64 = queues.iter().map(|q| u64::from(q.waiting)).sum();
        let backlog: u64 = queues.iter().map(|q| u64::from(q.backlog)).sum();
        let mut message = format!(
            "{} on :{port} {} in the listen queue, accepted by no process yet",
            plural(open + closed, "connection", "connections"),
            if open + closed == 1 { "waits" } else { "wait" }
        );
        if closed > 0 {
            message.push_str(&format!(
                " ({closed} already closed by {}: CLOSE-WAIT in the queue)",
                if closed == 1 { "its client" } else { "their clients" }
            ));
        }
        if !queues.is_empty() {
            message.push_str(&format!("; backlog {waiting} of {backlog} used"));
        }
        if let Some((overflows, drops)) = facts.listen_drops {
            message.push_str(&format!(
                "; ListenOverflows {}, ListenDrops {} since boot",
                thousands(overflows),
                thousands(drops)
            ));
        }
        let cure = (closed > 0).then(|| format!("webui-doctor fix --port {port} --close-wait"));
        message.push_str(
            ": the server accepts slower than clients come (its workers are busy); once the backlog is full the \
             kernel drops new handshakes. Queued connections keep the listener's options from when they arrived, \
             and no option can be set on them until accepted. More workers or threads (or an asynchronous worker \
             class) cure it",
        );
        if let Some(cure) = &cure {
            message.push_str(&format!("; `{cure}` ends the closed ones now"));
        }
        out.push(Finding {
            code: "listen-queue",
            severity: Severity::Warning,
            message,
            evidence: json!({
                "port": port,
                "queued": open + closed,
                "close_wait": closed,
                "waiting": waiting,
                "backlog": backlog,
                "listen_overflows": facts.listen_drops.map(|d| d.0),
                "listen_drops": facts.listen_drops.map(|d| d.1),
            }),
            cure,
            netns: None,
        });
    }
}

/// Whether some selected socket takes its keepalive timings from the sysctls. With `-O` that is
/// known: keepalive on with exactly the sysctl values (what `getsockopt` reports for a socket
/// that set none). Without it, any connection with its keepalive timer armed may.
fn relies_on_sysctls(sockets: &[Socket], s: &KeepaliveSysctls) -> bool {
    let connected = |x: &&Socket| matches!(x.state, TcpState::Established | TcpState::Listening);
    sockets.iter().filter(connected).any(|x| match x.sockopts {
        Some(o) => {
            o.so_keepalive
                && (u64::from(o.keepidle_s), u64::from(o.keepintvl_s), u64::from(o.keepcnt))
                    == (s.time_s, s.intvl_s, s.probes)
        }
        None => x.keepalive_armed(),
    })
}

/// With `-O`: established server-side sockets with keepalive on and no `TCP_USER_TIMEOUT`. Idle,
/// a dead peer is dropped by the probes; but while data is in flight (an SSE heartbeat the peer
/// never acknowledges) no probe is sent, and only the retransmission limit ends it.
fn no_user_timeout(sockets: &[Socket], facts: &Facts, out: &mut Vec<Finding>) {
    let mut by_port: BTreeMap<u16, (usize, u64)> = BTreeMap::new();
    for s in sockets.iter().filter(|s| s.state == TcpState::Established && facts.listening.contains(&s.local.port())) {
        let Some(o) = s.sockopts else { continue };
        if !o.so_keepalive || o.user_timeout_ms != 0 {
            continue;
        }
        let idle = Detect::of(&o, facts.retries2).idle_ms.unwrap_or(0);
        let (n, worst_idle) = by_port.entry(s.local.port()).or_default();
        *n += 1;
        *worst_idle = (*worst_idle).max(idle);
    }
    for (port, (n, idle_ms)) in by_port {
        let busy_ms = crate::deadpeer::retries_ms(facts.retries2);
        let cure = format!("webui-doctor fix --port {port}");
        out.push(Finding {
            code: "no-user-timeout",
            severity: Severity::Warning,
            message: format!(
                "{} on :{port} {} keepalive but no TCP_USER_TIMEOUT: a dead peer is dropped after {} on an idle \
                 connection, but with data in flight (a heartbeat it never acknowledges) no keepalive probe is sent \
                 and only the retransmission limit ends it, after about {} (net.ipv4.tcp_retries2 {}). `{cure}` sets \
                 a user timeout",
                plural(n, "established server-side socket", "established server-side sockets"),
                if n == 1 { "has" } else { "have" },
                long_duration(idle_ms),
                long_duration(busy_ms),
                facts.retries2
            ),
            evidence: json!({ "port": port, "sockets": n, "idle_ms": idle_ms, "busy_ms": busy_ms }),
            cure: Some(cure),
            netns: None,
        });
    }
}

/// Server-side sockets only: those whose local port has a listening socket. A client's own
/// outgoing connections (a browser, a package manager) are the client's business, and counting
/// them made the first run on any laptop warn about itself.
fn keepalive_missing(sockets: &[Socket], listening: &BTreeSet<u16>, cured: &BTreeSet<u16>, out: &mut Vec<Finding>) {
    let (mut server_side, mut unarmed) = (0usize, 0usize);
    let mut ports = BTreeSet::new();
    for s in sockets.iter().filter(|s| s.state == TcpState::Established && listening.contains(&s.local.port())) {
        server_side += 1;
        if !s.keepalive_armed() {
            unarmed += 1;
            ports.insert(s.local.port());
        }
    }
    if unarmed == 0 {
        return;
    }
    let on = ports.iter().map(|p| format!(":{p}")).collect::<Vec<_>>().join(", ");
    let cure =
        format!("webui-doctor fix {}", ports.iter().map(|p| format!("--port {p}")).collect::<Vec<_>>().join(" "));
    let mut message = format!(
        "{} of {} on {on} have no keepalive timer (outgoing connections, whose local port is not listening, are not \
         counted): a peer that vanishes without a FIN is never noticed on an idle connection. `{cure}` puts \
         keepalive on the running server",
        unarmed,
        plural(server_side, "established server-side socket", "established server-side sockets")
    );
    let covered: Vec<String> = ports.iter().filter(|p| cured.contains(p)).map(|p| format!(":{p}")).collect();
    if !covered.is_empty() {
        message.push_str(&format!(
            "; {} {} a kernel cure attached (fix --persist), so these connections predate it: the cure reaches only \
             connections accepted after it, and `{cure}` gives these the options",
            covered.join(", "),
            if covered.len() == 1 { "has" } else { "have" }
        ));
    }
    out.push(Finding {
        code: "keepalive-missing",
        severity: Severity::Warning,
        message,
        evidence: json!({
            "established": server_side,
            "without_keepalive": unarmed,
            "ports": ports,
            "cured_ports": ports.iter().filter(|p| cured.contains(p)).collect::<Vec<_>>(),
        }),
        cure: Some(cure),
        netns: None,
    });
}

fn dead_peers(sockets: &[Socket], out: &mut Vec<Finding>) {
    let stuck: Vec<&Socket> = sockets
        .iter()
        .filter(|s| s.state == TcpState::Established)
        .filter(|s| {
            s.timer.is_some_and(|t| {
                matches!(t.kind, TimerKind::Retransmit | TimerKind::Persist) && t.probes >= DEAD_PEER_RETRANSMITS
            })
        })
        .collect();
    if stuck.is_empty() {
        return;
    }
    let unacked: u64 = stuck.iter().map(|s| u64::from(s.send_q)).sum();
    let most = stuck.iter().filter_map(|s| s.timer.map(|t| t.probes)).max().unwrap_or(0);
    out.push(Finding {
        code: "dead-peer-retransmitting",
        severity: Severity::Warning,
        message: format!(
            "{} retransmitting with {unacked} bytes unacknowledged (up to {most} retransmissions): a peer is gone and \
             keepalive cannot probe while data is in flight; set TCP_USER_TIMEOUT",
            plural(stuck.len(), "established socket", "established sockets")
        ),
        evidence: json!({
            "sockets": stuck.len(),
            "unacked_bytes": unacked,
            "max_retransmits": most,
            "peers": peers(&stuck),
        }),
        cure: None,
        netns: None,
    });
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
    let closed = info.snd_wnd == Some(0);
    let held_back = match (info.notsent_bytes, info.rwnd_limited_ms, info.busy_ms) {
        (Some(notsent), Some(limited), Some(busy)) => {
            notsent > 0 && limited >= RWND_LIMITED_MIN_MS && limited.saturating_mul(2) > busy
        }
        _ => false,
    };
    persist || closed || held_back
}

fn slow_readers(sockets: &[Socket], out: &mut Vec<Finding>) {
    let mut by_port: BTreeMap<u16, Vec<&Socket>> = BTreeMap::new();
    for s in sockets.iter().filter(|s| is_slow_reader(s)) {
        by_port.entry(s.local.port()).or_default().push(s);
    }
    for (port, group) in by_port {
        let queued: u64 = group.iter().map(|s| u64::from(s.send_q)).sum();
        // Since the last data segment went out: how long the stream has not moved.
        let stalled = group.iter().filter_map(|s| s.idle.map(|i| i.last_send_ms)).max();
        let streams = plural(group.len(), "stream", "streams");
        let mut message = match stalled {
            Some(ms) => format!(
                "{streams} on :{port} {} not been read for {}; {} queued",
                if group.len() == 1 { "has" } else { "have" },
                human_ms(ms),
                human_bytes(queued)
            ),
            None => format!("{streams} on :{port} stopped being read; {} queued", human_bytes(queued)),
        };
        let cure = format!("webui-doctor fix --port {port}");
        message.push_str(&format!(
            ": the peer's receive window is closed (it stopped reading), so keepalive never fires and the \
             server's writes block or buffer. With TCP_USER_TIMEOUT the kernel ends such a stream once its window \
             has stayed closed that long, at its next window probe (measured on Linux 6.18 by webui-doctor's tests, \
             also when set after the stall; older kernels kept it open while the peer answered the probes). \
             `{cure}` sets it"
        ));
        out.push(Finding {
            code: "slow-reader",
            severity: Severity::Warning,
            message,
            evidence: json!({
                "port": port,
                "sockets": group.len(),
                "queued_bytes": queued,
                "stalled_ms": stalled,
                "peers": peers(&group),
            }),
            cure: Some(cure),
            netns: None,
        });
    }
}

/// Per owning process and state, the local ports of its sockets with how many each: one pass
/// over the sockets, whatever the number of processes.
type OwnerPorts = HashMap<(u32, TcpState), BTreeMap<u16, usize>>;

fn owner_ports(sockets: &[Socket]) -> OwnerPorts {
    let mut out: OwnerPorts = HashMap::new();
    for s in sockets {
        if let Some(p) = &s.process
            && matches!(s.state, TcpState::Established | TcpState::CloseWait | TcpState::Listening)
        {
            *out.entry((p.pid, s.state)).or_default().entry(s.local.port()).or_insert(0) += 1;
        }
    }
    out
}

/// Local ports of `pid`'s sockets in `state`, with how many sockets each.
fn ports_of(owners: &OwnerPorts, pid: u32, state: TcpState) -> BTreeMap<u16, usize> {
    owners.get(&(pid, state)).cloned().unwrap_or_default()
}

fn port_list(ports: &BTreeMap<u16, usize>) -> String {
    ports.keys().map(|p| format!(":{p}")).collect::<Vec<_>>().join(", ")
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
        let mut message = format!(
            "{} (pid {}) holds {} of {} files; {} are sockets",
            p.comm,
            p.pid,
            thousands(open),
            thousands(limit),
            thousands(p.socket_files as u64)
        );
        let cure = if stuck > 0 {
            message.push_str(&format!(
                ", {} of them CLOSE-WAIT on {}",
                thousands(stuck as u64),
                port_list(&close_wait)
            ));
            let ports: Vec<String> = close_wait.keys().map(|p| format!("--port {p}")).collect();
            Some(format!("webui-doctor fix {} --close-wait", ports.join(" ")))
        } else {
            None
        };
        message.push_str(": at the limit accept() and open() fail with EMFILE (\"Too many open files\")");
        if let Some(cure) = &cure {
            message.push_str(&format!(
                "; `{cure}` ends the CLOSE-WAIT ones in the kernel, and each file is freed when the server's next \
                 read or write on it fails and it closes it"
            ));
        }
        out.push(Finding {
            code: "fd-exhaustion",
            severity: Severity::Warning,
            message,
            evidence: json!({
                "pid": p.pid,
                "comm": p.comm,
                "open_files": p.open_files,
                "file_limit": limit,
                "socket_files": p.socket_files,
                "close_wait": stuck,
                "ports": close_wait.keys().collect::<Vec<_>>(),
            }),
            cure,
            netns: None,
        });
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
        let listening: BTreeMap<u16, usize> = ports_of(owners, p.pid, TcpState::Listening);
        let served: Vec<String> = listening.keys().map(|p| format!("--port {p}")).collect();
        let cure = (!served.is_empty()).then(|| format!("webui-doctor fix {}", served.join(" ")));
        let mut message = format!(
            "{} (pid {}) runs {} threads for {} connections on {}: a thread per connection, so every peer that \
             vanishes without a FIN also holds a thread (and its stack) until the connection ends",
            p.comm,
            p.pid,
            thousands(threads),
            thousands(connections as u64),
            port_list(&ports)
        );
        if let Some(cure) = &cure {
            message.push_str(&format!("; `{cure}` puts keepalive on it so dead peers end"));
        }
        out.push(Finding {
            code: "thread-per-connection",
            severity: Severity::Warning,
            message,
            evidence: json!({
                "pid": p.pid,
                "comm": p.comm,
                "threads": threads,
                "connections": connections,
                "ports": ports.keys().collect::<Vec<_>>(),
            }),
            cure,
            netns: None,
        });
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

    #[test]
    fn each_finding_appears_only_in_its_situation() {
        let healthy = vec![socket(TcpState::Established, Some((TimerKind::Keepalive, 0)), 0)];
        let fast = KeepaliveSysctls { time_s: 10, intvl_s: 5, probes: 3 };
        let server = |sysctls| Facts {
            sysctls: Some(sysctls),
            listening: [8787].into(),
            processes_joined: true,
            ..Facts::default()
        };
        assert!(diagnose(&healthy, &server(fast)).is_empty());
        // Without keepalive, but not on a listening port (a client's own connection): no finding.
        let client = vec![socket(TcpState::Established, None, 0)];
        assert!(
            diagnose(&client, &Facts { sysctls: Some(fast), listening: [80].into(), ..Facts::default() }).is_empty()
        );
        // Sums over hostile sysctl values saturate instead of overflowing.
        let huge = KeepaliveSysctls { time_s: u64::MAX, intvl_s: u64::MAX, probes: u64::MAX };
        assert_eq!(diagnose(&healthy, &server(huge)).len(), 1);

        let sick = vec![
            socket(TcpState::CloseWait, None, 0),
            socket(TcpState::CloseWait, None, 0),
            socket(TcpState::Established, Some((TimerKind::Retransmit, 5)), 180),
            socket(TcpState::Established, Some((TimerKind::Retransmit, 1)), 20),
            socket(TcpState::Established, Some((TimerKind::Keepalive, 0)), 0),
        ];
        let slow = KeepaliveSysctls { time_s: 7200, intvl_s: 75, probes: 9 };
        let findings = diagnose(&sick, &server(slow));
        let codes: Vec<_> = findings.iter().map(|f| f.code).collect();
        assert_eq!(codes, ["close-wait", "keepalive-missing", "dead-peer-retransmitting", "keepalive-sysctl-slow"]);
        assert_eq!(
            findings[0].message,
            "2 sockets on :8787 in CLOSE-WAIT, owned by python3 (pid 4242), oldest idle 2h10m: the application is not \
             closing connections after the client's FIN; keepalive will not clear these. `webui-doctor fix --port 8787 \
             --close-wait` ends them now"
        );
        assert!(
            findings[1].message.starts_with("2 of 3 established server-side sockets on :8787 have no keepalive timer"),
            "{}",
            findings[1].message
        );
        assert!(findings[2].message.starts_with("1 established socket retransmitting with 180 bytes unacknowledged"));
        assert!(findings[3].message.contains("detects a dead peer after 2 h 11 min"), "{}", findings[3].message);
    }

    fn stats(pid: u32, open_files: usize, file_limit: u64, threads: u64) -> ProcessStats {
        ProcessStats {
            pid,
            comm: "python3".into(),
            open_files,
            socket_files: open_files - 4,
            file_limit: Some(file_limit),
            threads: Some(threads),
        }
    }

    #[test]
    fn per_process_findings_need_their_thresholds() {
        let mut sockets: Vec<Socket> = (0..20).map(|_| socket(TcpState::CloseWait, None, 0)).collect();
        sockets.push(socket(TcpState::Listening, None, 0));
        let facts = |p: ProcessStats| Facts { processes_joined: true, processes: vec![p], ..Facts::default() };
        let codes = |f: &Facts| diagnose(&sockets, f).iter().map(|f| f.code).collect::<Vec<_>>();
        // 220 of 256 files (86 %) and 22 threads for 20 connections.
        let found = diagnose(&sockets, &facts(stats(4242, 220, 256, 22)));
        let fd = found.iter().find(|f| f.code == "fd-exhaustion").unwrap();
        assert_eq!(
            fd.message,
            "python3 (pid 4242) holds 220 of 256 files; 216 are sockets, 20 of them CLOSE-WAIT on :8787: at the limit \
             accept() and open() fail with EMFILE (\"Too many open files\"); `webui-doctor fix --port 8787 \
             --close-wait` ends the CLOSE-WAIT ones in the kernel, and each file is freed when the server's next \
             read or write on it fails and it closes it"
        );
        assert!(found.iter().any(|f| f.code == "thread-per-connection"
            && f.message.starts_with("python3 (pid 4242) runs 22 threads for 20 connections on :8787")));
        // 100 of 256 files, and fewer threads than connections: neither.
        assert_eq!(codes(&facts(stats(4242, 100, 256, 5))), ["close-wait"]);
        // Another process's numbers say nothing about these sockets' owner.
        let other = codes(&facts(stats(1, 100, 256, 40)));
        assert!(!other.contains(&"thread-per-connection"), "{other:?}");
        // Without -p the close-wait finding says what -p would add.
        let plain = diagnose(&sockets, &Facts::default());
        assert!(
            plain[0].message.ends_with("(with -p: whether the owner is running out of files)"),
            "{}",
            plain[0].message
        );
    }

    #[test]
    fn keepalive_missing_on_a_cured_port_says_the_connections_predate_the_cure() {
        let sockets = vec![socket(TcpState::Established, None, 0)];
        let facts = |cured: &[u16]| Facts {
            listening: [8787].into(),
            cured: cured.iter().copied().collect(),
            ..Facts::default()
        };
        let plain = diagnose(&sockets, &facts(&[]));
        assert!(!plain[0].message.contains("kernel cure"), "{}", plain[0].message);
        let cured = diagnose(&sockets, &facts(&[8787]));
        assert!(
            cured[0]
                .message
                .contains(":8787 has a kernel cure attached (fix --persist), so these connections predate it"),
            "{}",
            cured[0].message
        );
        assert_eq!(cured[0].evidence["cured_ports"], json!([8787]));
    }

    #[test]
    fn queued_connections_are_counted_apart_and_not_blamed_on_the_application() {
        let queued = |state| {
            let mut s = socket(state, None, 0);
            s.inode = 0;
            s.process = None;
            s.queued = true;
            s
        };
        let sockets = vec![
            socket(TcpState::CloseWait, None, 0),
            queued(TcpState::CloseWait),
            queued(TcpState::CloseWait),
            queued(TcpState::Established),
        ];
        let facts = Facts {
            processes_joined: true,
            queues: vec![ListenQueue { local: sockets[0].local, waiting: 3, backlog: 128 }],
            listen_drops: Some((7, 9)),
            ..Facts::default()
        };
        let found = diagnose(&sockets, &facts);
        let cw = found.iter().find(|f| f.code == "close-wait").unwrap();
        assert!(
            cw.message.starts_with("1 socket on :8787 in CLOSE-WAIT, owned by python3 (pid 4242)"),
            "{}",
            cw.message
        );
        assert!(cw.message.contains("; 2 more never accepted: they wait in the listen queue"), "{}", cw.message);
        assert_eq!((cw.evidence["accepted"].as_u64(), cw.evidence["queued"].as_u64()), (Some(1), Some(2)));
        let lq = found.iter().find(|f| f.code == "listen-queue").unwrap();
        assert!(
            lq.message.starts_with(
                "3 connections on :8787 wait in the listen queue, accepted by no process yet (2 already closed by \
                 their clients: CLOSE-WAIT in the queue); backlog 3 of 128 used; ListenOverflows 7, ListenDrops 9 since \
                 boot: the server accepts slower than clients come"
            ),
            "{}",
            lq.message
        );
        assert_eq!(lq.cure.as_deref(), Some("webui-doctor fix --port 8787 --close-wait"));
        // Only queued ones: the application is not blamed at all.
        let only = diagnose(&sockets[1..3], &facts);
        let cw = only.iter().find(|f| f.code == "close-wait").unwrap();
        assert!(cw.message.contains("none accepted by the application"), "{}", cw.message);
        assert!(!cw.message.contains("is not closing"), "{}", cw.message);
        // Nothing queued: no listen-queue finding.
        assert!(diagnose(&sockets[..1], &facts).iter().all(|f| f.code != "listen-queue"));
    }

    #[test]
    fn slow_reader_is_a_closed_window_with_data_queued() {
        let stalled = socket(TcpState::Established, Some((TimerKind::Persist, 0)), 4_100_000);
        let idle_reader = socket(TcpState::Established, Some((TimerKind::Keepalive, 0)), 0);
        let mut closed = socket(TcpState::Established, None, 10);
        closed.details.info = Some(Box::new(TcpInfo { snd_wnd: Some(0), ..TcpInfo::default() }));
        assert!(is_slow_reader(&stalled) && is_slow_reader(&closed) && !is_slow_reader(&idle_reader));
        let found = diagnose(&[stalled, idle_reader, closed], &Facts::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].message.starts_with(
                "2 streams on :8787 have not been read for 1ms; 4.1 MB queued: the peer's receive window is closed"
            ),
            "{}",
            found[0].message
        );
        assert_eq!(found[0].evidence["queued_bytes"], 4_100_010);
        // However many, the evidence lists a bounded number of peers; the count says the rest.
        let many: Vec<Socket> =
            (0..100).map(|_| socket(TcpState::Established, Some((TimerKind::Persist, 0)), 10)).collect();
        let found = diagnose(&many, &Facts::default());
        assert_eq!(found[0].evidence["sockets"], 100);
        assert_eq!(found[0].evidence["peers"].as_array().unwrap().len(), EVIDENCE_PEERS);
    }
}
