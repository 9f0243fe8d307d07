//! Findings: what the sockets mean, in plain words with the evidence, so the numbers need no
//! expert. Each finding has a stable `code` that scripts may match on.
//!
//! | code | when |
//! | --- | --- |
//! | `close-wait` | sockets in CLOSE-WAIT on a port: the application has not closed after the peer's FIN |
//! | `keepalive-missing` | established server-side sockets (local port listening) with no keepalive timer armed |
//! | `dead-peer-retransmitting` | established sockets resending data (or window probes) that are never acknowledged |
//! | `keepalive-sysctl-slow` | the system keepalive timings take more than 10 minutes to detect a dead peer |

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Value, json};

use crate::model::{KeepaliveSysctls, Socket, TcpState, TimerKind};
use crate::units::{human_ms, long_duration};

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
}

/// Retransmissions (or unanswered zero-window probes) after which a peer counts as gone. A
/// healthy path retransmits now and then; three backed-off retransmissions in a row mean no ACK
/// for at least 7 RTOs (1.4 s at the 200 ms minimum). Any ACK resets both counts.
pub const DEAD_PEER_RETRANSMITS: u32 = 3;

/// System keepalive timings slower than this (to detect a dead peer) are worth a note.
pub const SLOW_KEEPALIVE_MS: u64 = 10 * 60 * 1000;

/// What the findings need besides the sockets, read by the caller at the edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The namespace's keepalive sysctls; `None` when unreadable.
    pub sysctls: Option<KeepaliveSysctls>,
    /// The local ports with a listening socket: a socket on one of them is the server side.
    pub listening: BTreeSet<u16>,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// All findings for `sockets` (already filtered), given the namespace's facts.
pub fn diagnose(sockets: &[Socket], facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    close_wait(sockets, &mut out);
    keepalive_missing(sockets, &facts.listening, &mut out);
    dead_peers(sockets, &mut out);
    if let Some(s) = facts.sysctls
        && s.detect_ms() > SLOW_KEEPALIVE_MS
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
        });
    }
    out
}

fn close_wait(sockets: &[Socket], out: &mut Vec<Finding>) {
    let mut by_port: BTreeMap<u16, Vec<&Socket>> = BTreeMap::new();
    for s in sockets.iter().filter(|s| s.state == TcpState::CloseWait) {
        by_port.entry(s.local.port()).or_default().push(s);
    }
    for (port, group) in by_port {
        let mut owners: Vec<String> =
            group.iter().filter_map(|s| s.process.as_ref().map(|p| format!("{} (pid {})", p.comm, p.pid))).collect();
        owners.sort();
        owners.dedup();
        let oldest = group.iter().filter_map(|s| s.idle.map(|i| i.last_recv_ms)).max();
        let mut message = format!("{} on :{port} in CLOSE-WAIT", plural(group.len(), "socket", "sockets"));
        if !owners.is_empty() {
            message.push_str(&format!(", owned by {}", owners.join(", ")));
        }
        if let Some(ms) = oldest {
            message.push_str(&format!(", oldest idle {}", human_ms(ms)));
        }
        let cure = format!("webui-doctor fix --port {port} --close-wait");
        message.push_str(&format!(
            ": the application is not closing connections after the client's FIN; keepalive will not clear these. \
             `{cure}` ends them now"
        ));
        out.push(Finding {
            code: "close-wait",
            severity: Severity::Warning,
            message,
            evidence: json!({ "port": port, "sockets": group.len(), "owners": owners, "oldest_idle_ms": oldest }),
            cure: Some(cure),
        });
    }
}

/// Server-side sockets only: those whose local port has a listening socket. A client's own
/// outgoing connections (a browser, a package manager) are the client's business, and counting
/// them made the first run on any laptop warn about itself.
fn keepalive_missing(sockets: &[Socket], listening: &BTreeSet<u16>, out: &mut Vec<Finding>) {
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
    out.push(Finding {
        code: "keepalive-missing",
        severity: Severity::Warning,
        message: format!(
            "{} of {} on {on} have no keepalive timer (outgoing connections, whose local port is not listening, are not \
             counted): a peer that vanishes without a FIN is never noticed on an idle connection. `{cure}` puts \
             keepalive on the running server",
            unarmed,
            plural(server_side, "established server-side socket", "established server-side sockets")
        ),
        evidence: json!({ "established": server_side, "without_keepalive": unarmed, "ports": ports }),
        cure: Some(cure),
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
            "peers": stuck.iter().map(|s| s.peer.to_string()).collect::<Vec<_>>(),
        }),
        cure: None,
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn socket(state: TcpState, timer: Option<(TimerKind, u32)>, send_q: u32) -> Socket {
        Socket {
            family: Family::Inet,
            state,
            local: Endpoint("127.0.0.1:8787".parse().unwrap()),
            peer: Endpoint("127.0.0.1:40000".parse().unwrap()),
            recv_q: 0,
            send_q,
            timer: timer.map(|(kind, probes)| Timer { kind, expires_ms: 100, probes }),
            uid: 0,
            inode: 1,
            process: Some(Process { pid: 4242, comm: "python3".into() }),
            idle: Some(Idle { last_recv_ms: 7_800_000, last_send_ms: 1 }),
            sockopts: None,
            cookie: 0,
        }
    }

    #[test]
    fn each_finding_appears_only_in_its_situation() {
        let healthy = vec![socket(TcpState::Established, Some((TimerKind::Keepalive, 0)), 0)];
        let fast = KeepaliveSysctls { time_s: 10, intvl_s: 5, probes: 3 };
        let server = |sysctls| Facts { sysctls: Some(sysctls), listening: [8787].into() };
        assert!(diagnose(&healthy, &server(fast)).is_empty());
        // Without keepalive, but not on a listening port (a client's own connection): no finding.
        let client = vec![socket(TcpState::Established, None, 0)];
        assert!(diagnose(&client, &Facts { sysctls: Some(fast), listening: [80].into() }).is_empty());
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
}
