//! Each finding in plain words: the `message` of the JSON output and of the text lines, made from
//! the finding's typed evidence and its cure.

use serde::Serialize;

use crate::diagnose::{
    CloseWait, Code, DeadPeerRetransmitting, Evidence, FdExhaustion, Finding, KeepaliveMissing, KeepaliveSysctlSlow,
    ListenQueueEvidence, NoUserTimeout, Severity, SlowReader, ThreadPerConnection,
};
use crate::units::{human_bytes, human_ms, long_duration, thousands};

/// A finding as JSON writes it: `code`, `severity`, `message`, `evidence`, and `cure` and `netns`
/// where there are.
#[derive(Serialize)]
pub struct Out<'a> {
    code: Code,
    severity: Severity,
    message: String,
    evidence: &'a Evidence,
    #[serde(skip_serializing_if = "Option::is_none")]
    cure: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    netns: &'a Option<std::sync::Arc<str>>,
}

impl<'a> Out<'a> {
    /// `finding` with its message.
    pub fn of(finding: &'a Finding) -> Out<'a> {
        Out {
            code: finding.code(),
            severity: finding.severity,
            message: message(finding),
            evidence: &finding.evidence,
            cure: &finding.cure,
            netns: &finding.netns,
        }
    }
}

/// Serializes `findings` as the JSON array of [`Out`].
pub fn serialize<S: serde::Serializer>(findings: &&[Finding], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(findings.iter().map(Out::of))
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn port_list(ports: &[u16]) -> String {
    ports.iter().map(|p| format!(":{p}")).collect::<Vec<_>>().join(", ")
}

/// The finding in plain words, with the numbers that matter and what to do.
pub fn message(f: &Finding) -> String {
    let cure = f.cure.as_deref().unwrap_or_default();
    match &f.evidence {
        Evidence::CloseWait(e) => close_wait(e, cure),
        Evidence::ListenQueue(e) => listen_queue(e, f.cure.as_deref()),
        Evidence::KeepaliveMissing(e) => keepalive_missing(e, cure),
        Evidence::DeadPeerRetransmitting(e) => dead_peer(e),
        Evidence::KeepaliveSysctlSlow(e) => sysctl_slow(e),
        Evidence::NoUserTimeout(e) => no_user_timeout(e, cure),
        Evidence::SlowReader(e) => slow_reader(e, cure),
        Evidence::FdExhaustion(e) => fd_exhaustion(e, f.cure.as_deref()),
        Evidence::ThreadPerConnection(e) => thread_per_connection(e, f.cure.as_deref()),
    }
}

fn close_wait(e: &CloseWait, cure: &str) -> String {
    let port = e.port;
    let waiting = |n: usize| {
        format!(
            "{} in the listen queue, closed by {} before any process took {} (see listen-queue)",
            if n == 1 { "it waits" } else { "they wait" },
            if n == 1 { "its client" } else { "their clients" },
            if n == 1 { "it" } else { "them" }
        )
    };
    if e.accepted == 0 {
        return format!(
            "{} on :{port} in CLOSE-WAIT, none accepted by the application: {}. `{cure}` ends them now",
            plural(e.sockets, "socket", "sockets"),
            waiting(e.queued)
        );
    }
    let mut message = format!("{} on :{port} in CLOSE-WAIT", plural(e.accepted, "socket", "sockets"));
    if !e.owners.is_empty() {
        message.push_str(&format!(", owned by {}", e.owners.join(", ")));
    }
    if let Some(ms) = e.oldest_idle_ms {
        message.push_str(&format!(", oldest idle {}", human_ms(ms)));
    }
    message.push_str(&format!(
        ": the application is not closing connections after the client's FIN; keepalive will not clear these. \
         `{cure}` ends them now"
    ));
    if e.queued > 0 {
        message.push_str(&format!("; {} more never accepted: {}", e.queued, waiting(e.queued)));
    }
    if !e.processes_joined {
        message.push_str(" (with -p: whether the owner is running out of files)");
    }
    message
}

fn listen_queue(e: &ListenQueueEvidence, cure: Option<&str>) -> String {
    let (port, closed) = (e.port, e.close_wait);
    let mut message = format!(
        "{} on :{port} {} in the listen queue, accepted by no process yet",
        plural(e.queued, "connection", "connections"),
        if e.queued == 1 { "waits" } else { "wait" }
    );
    if closed > 0 {
        message.push_str(&format!(
            " ({closed} already closed by {}: CLOSE-WAIT in the queue)",
            if closed == 1 { "its client" } else { "their clients" }
        ));
    }
    if e.queues_read {
        message.push_str(&format!("; backlog {} of {} used", e.waiting, e.backlog));
    }
    if let (Some(overflows), Some(drops)) = (e.listen_overflows, e.listen_drops) {
        message.push_str(&format!(
            "; ListenOverflows {}, ListenDrops {} since boot",
            thousands(overflows),
            thousands(drops)
        ));
    }
    message.push_str(
        ": the server accepts slower than clients come (its workers are busy); once the backlog is full the \
         kernel drops new handshakes. Queued connections keep the listener's options from when they arrived, \
         and no option can be set on them until accepted. More workers or threads (or an asynchronous worker \
         class) cure it",
    );
    if let Some(cure) = cure {
        message.push_str(&format!("; `{cure}` ends the closed ones now"));
    }
    message
}

fn keepalive_missing(e: &KeepaliveMissing, cure: &str) -> String {
    let on = e.ports.iter().map(|p| format!(":{p}")).collect::<Vec<_>>().join(", ");
    let mut message = format!(
        "{} of {} on {on} have no keepalive timer (outgoing connections, whose local port is not listening, are not \
         counted): a peer that vanishes without a FIN is never noticed on an idle connection. `{cure}` puts \
         keepalive on the running server",
        e.without_keepalive,
        plural(e.established, "established server-side socket", "established server-side sockets")
    );
    if !e.cured_ports.is_empty() {
        message.push_str(&format!(
            "; {} {} a kernel cure attached (fix --persist), so these connections predate it: the cure reaches only \
             connections accepted after it, and `{cure}` gives these the options",
            port_list(&e.cured_ports),
            if e.cured_ports.len() == 1 { "has" } else { "have" }
        ));
    }
    message
}

fn dead_peer(e: &DeadPeerRetransmitting) -> String {
    format!(
        "{} retransmitting with {} bytes unacknowledged (up to {} retransmissions): a peer is gone and keepalive \
         cannot probe while data is in flight; set TCP_USER_TIMEOUT",
        plural(e.sockets, "established socket", "established sockets"),
        e.unacked_bytes,
        e.max_retransmits
    )
}

fn sysctl_slow(e: &KeepaliveSysctlSlow) -> String {
    let s = &e.sysctls;
    format!(
        "net.ipv4.tcp_keepalive_time is {} s (interval {} s, {} probes): SO_KEEPALIVE alone detects a dead peer \
         after {}; set TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT on the socket",
        s.time_s,
        s.intvl_s,
        s.probes,
        long_duration(e.detect_ms)
    )
}

fn no_user_timeout(e: &NoUserTimeout, cure: &str) -> String {
    let n = e.sockets;
    format!(
        "{} on :{} {} keepalive but no TCP_USER_TIMEOUT: a dead peer is dropped after {} on an idle connection, but \
         with data in flight (a heartbeat it never acknowledges) no keepalive probe is sent and only the \
         retransmission limit ends it, after about {} (net.ipv4.tcp_retries2 {}). `{cure}` sets a user timeout",
        plural(n, "established server-side socket", "established server-side sockets"),
        e.port,
        if n == 1 { "has" } else { "have" },
        long_duration(e.idle_ms),
        long_duration(e.busy_ms),
        e.retries2
    )
}

fn slow_reader(e: &SlowReader, cure: &str) -> String {
    let port = e.port;
    let streams = plural(e.sockets, "stream", "streams");
    let mut message = match e.stalled_ms {
        Some(ms) => format!(
            "{streams} on :{port} {} not been read for {}; {} queued",
            if e.sockets == 1 { "has" } else { "have" },
            human_ms(ms),
            human_bytes(e.queued_bytes)
        ),
        None => format!("{streams} on :{port} stopped being read; {} queued", human_bytes(e.queued_bytes)),
    };
    message.push_str(&format!(
        ": the peer's receive window is closed (it stopped reading), so keepalive never fires and the server's \
         writes block or buffer. With TCP_USER_TIMEOUT the kernel ends such a stream once its window has stayed \
         closed that long, at its next window probe (measured on Linux 6.18 by webui-doctor's tests, also when set \
         after the stall; older kernels kept it open while the peer answered the probes). `{cure}` sets it"
    ));
    message
}

fn fd_exhaustion(e: &FdExhaustion, cure: Option<&str>) -> String {
    let mut message = format!(
        "{} (pid {}) holds {} of {} files; {} are sockets",
        e.comm,
        e.pid,
        thousands(e.open_files as u64),
        thousands(e.file_limit),
        thousands(e.socket_files as u64)
    );
    if e.close_wait > 0 {
        message.push_str(&format!(
            ", {} of them CLOSE-WAIT on {}",
            thousands(e.close_wait as u64),
            port_list(&e.ports)
        ));
    }
    message.push_str(": at the limit accept() and open() fail with EMFILE (\"Too many open files\")");
    if let Some(cure) = cure {
        message.push_str(&format!(
            "; `{cure}` ends the CLOSE-WAIT ones in the kernel, and each file is freed when the server's next read \
             or write on it fails and it closes it"
        ));
    }
    message
}

fn thread_per_connection(e: &ThreadPerConnection, cure: Option<&str>) -> String {
    let mut message = format!(
        "{} (pid {}) runs {} threads for {} connections on {}: a thread per connection, so every peer that vanishes \
         without a FIN also holds a thread (and its stack) until the connection ends",
        e.comm,
        e.pid,
        thousands(e.threads),
        thousands(e.connections as u64),
        port_list(&e.ports)
    );
    if let Some(cure) = cure {
        message.push_str(&format!("; `{cure}` puts keepalive on it so dead peers end"));
    }
    message
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::diagnose::*;
    use crate::model::*;

    /// The evidence as JSON writes it.
    fn evidence(f: &Finding) -> serde_json::Value {
        serde_json::to_value(&f.evidence).unwrap()
    }

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
        let codes: Vec<_> = findings.iter().map(|f| f.code().name()).collect();
        assert_eq!(codes, ["close-wait", "keepalive-missing", "dead-peer-retransmitting", "keepalive-sysctl-slow"]);
        assert_eq!(
            message(&findings[0]),
            "2 sockets on :8787 in CLOSE-WAIT, owned by python3 (pid 4242), oldest idle 2h10m: the application is not \
             closing connections after the client's FIN; keepalive will not clear these. `webui-doctor fix --port 8787 \
             --close-wait` ends them now"
        );
        assert!(
            message(&findings[1])
                .starts_with("2 of 3 established server-side sockets on :8787 have no keepalive timer"),
            "{}",
            message(&findings[1])
        );
        assert!(message(&findings[2]).starts_with("1 established socket retransmitting with 180 bytes unacknowledged"));
        assert!(message(&findings[3]).contains("detects a dead peer after 2 h 11 min"), "{}", message(&findings[3]));
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
        let codes = |f: &Facts| diagnose(&sockets, f).iter().map(|f| f.code().name()).collect::<Vec<_>>();
        // 220 of 256 files (86 %) and 22 threads for 20 connections.
        let found = diagnose(&sockets, &facts(stats(4242, 220, 256, 22)));
        let fd = found.iter().find(|f| f.code() == Code::FdExhaustion).unwrap();
        assert_eq!(
            message(fd),
            "python3 (pid 4242) holds 220 of 256 files; 216 are sockets, 20 of them CLOSE-WAIT on :8787: at the limit \
             accept() and open() fail with EMFILE (\"Too many open files\"); `webui-doctor fix --port 8787 \
             --close-wait` ends the CLOSE-WAIT ones in the kernel, and each file is freed when the server's next \
             read or write on it fails and it closes it"
        );
        assert!(found.iter().any(|f| f.code().name() == "thread-per-connection"
            && message(f).starts_with("python3 (pid 4242) runs 22 threads for 20 connections on :8787")));
        // 100 of 256 files, and fewer threads than connections: neither.
        assert_eq!(codes(&facts(stats(4242, 100, 256, 5))), ["close-wait"]);
        // Another process's numbers say nothing about these sockets' owner.
        let other = codes(&facts(stats(1, 100, 256, 40)));
        assert!(!other.contains(&"thread-per-connection"), "{other:?}");
        // Without -p the close-wait finding says what -p would add.
        let plain = diagnose(&sockets, &Facts::default());
        assert!(
            message(&plain[0]).ends_with("(with -p: whether the owner is running out of files)"),
            "{}",
            message(&plain[0])
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
        assert!(!message(&plain[0]).contains("kernel cure"), "{}", message(&plain[0]));
        let cured = diagnose(&sockets, &facts(&[8787]));
        assert!(
            message(&cured[0])
                .contains(":8787 has a kernel cure attached (fix --persist), so these connections predate it"),
            "{}",
            message(&cured[0])
        );
        assert_eq!(evidence(&cured[0])["cured_ports"], json!([8787]));
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
        let cw = found.iter().find(|f| f.code().name() == "close-wait").unwrap();
        assert!(
            message(cw).starts_with("1 socket on :8787 in CLOSE-WAIT, owned by python3 (pid 4242)"),
            "{}",
            message(cw)
        );
        assert!(message(cw).contains("; 2 more never accepted: they wait in the listen queue"), "{}", message(cw));
        assert_eq!((evidence(cw)["accepted"].as_u64(), evidence(cw)["queued"].as_u64()), (Some(1), Some(2)));
        let lq = found.iter().find(|f| f.code().name() == "listen-queue").unwrap();
        assert!(
            message(lq).starts_with(
                "3 connections on :8787 wait in the listen queue, accepted by no process yet (2 already closed by \
                 their clients: CLOSE-WAIT in the queue); backlog 3 of 128 used; ListenOverflows 7, ListenDrops 9 since \
                 boot: the server accepts slower than clients come"
            ),
            "{}",
            message(lq)
        );
        assert_eq!(lq.cure.as_deref(), Some("webui-doctor fix --port 8787 --close-wait"));
        // Only queued ones: the application is not blamed at all.
        let only = diagnose(&sockets[1..3], &facts);
        let cw = only.iter().find(|f| f.code().name() == "close-wait").unwrap();
        assert!(message(cw).contains("none accepted by the application"), "{}", message(cw));
        assert!(!message(cw).contains("is not closing"), "{}", message(cw));
        // Nothing queued: no listen-queue finding.
        assert!(diagnose(&sockets[..1], &facts).iter().all(|f| f.code().name() != "listen-queue"));
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
        let found = diagnose(&[stalled, idle_reader, closed], &Facts::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            message(&found[0]).starts_with(
                "2 streams on :8787 have not been read for 1ms; 4.1 MB queued: the peer's receive window is closed"
            ),
            "{}",
            message(&found[0])
        );
        assert_eq!(evidence(&found[0])["queued_bytes"], 4_100_010);
        // However many, the evidence lists a bounded number of peers; the count says the rest.
        let many: Vec<Socket> =
            (0..100).map(|_| socket(TcpState::Established, Some((TimerKind::Persist, 0)), 10)).collect();
        let found = diagnose(&many, &Facts::default());
        assert_eq!(evidence(&found[0])["sockets"], 100);
        assert_eq!(evidence(&found[0])["peers"].as_array().unwrap().len(), EVIDENCE_PEERS);
    }
}
