//! Both sources against `ss -tanoe` on real sockets in every state, IPv4 and IPv6: socket by
//! socket, state, queues, uid, inode, timer kind, probes and expiry must agree.

use std::io::{Read, Write};

use serde_json::Value;

use crate::util::*;

/// ss's state column for a webui-doctor state name, written out here rather than taken from
/// `TcpState::ss_label`: the oracle must not be derived from the code it checks.
fn ss_state(name: &str) -> &'static str {
    match name {
        "established" => "ESTAB",
        "syn-sent" => "SYN-SENT",
        "syn-recv" => "SYN-RECV",
        "fin-wait-1" => "FIN-WAIT-1",
        "fin-wait-2" => "FIN-WAIT-2",
        "time-wait" => "TIME-WAIT",
        "closed" => "UNCONN",
        "close-wait" => "CLOSE-WAIT",
        "last-ack" => "LAST-ACK",
        "listening" => "LISTEN",
        "closing" => "CLOSING",
        other => panic!("unknown state {other}"),
    }
}

fn ss_timer(kind: &str) -> &'static str {
    match kind {
        "retransmit" => "on",
        "keepalive" => "keepalive",
        "time-wait" => "timewait",
        "persist" => "persist",
        other => panic!("ss has no name for timer {other}"),
    }
}

fn compare_with_ss(v6: bool, source: &str) {
    let mut f = Fixture::new(v6);
    f.queue_bytes();
    // Let time pass, then send on the keepalive pair: its server has sent data just now but
    // received none for over a second, so a swapped or misplaced tcp_info field shows.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    f.keepalive.server.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    f.keepalive.client.read_exact(&mut buf).unwrap();
    assert!(wait_until(std::time::Duration::from_secs(2), || ss_sockets(f.port)
        .iter()
        .any(|s| f.owns(&s.local, &s.peer) && s.recv_q == 5)));

    // Idle times and timer expiries move while the two reads run: the tolerance grows with the
    // time between them (a busy host makes both tools slower).
    let started = std::time::Instant::now();
    let ours = json(&["sockets", "--source", source]);
    let theirs = ss_sockets(f.port);
    let slack = 300 + started.elapsed().as_millis() as u64;
    assert_eq!(ours["source"], source);
    let owned = |s: &&Value| f.owns(s["local"].as_str().unwrap(), s["peer"].as_str().unwrap());
    let ours: Vec<&Value> = ours["sockets"].as_array().unwrap().iter().filter(owned).collect();
    let theirs: Vec<&SsSocket> = theirs.iter().filter(|s| f.owns(&s.local, &s.peer)).collect();
    // listen + 2x2 established + close-wait + fin-wait-2 + time-wait
    assert_eq!(ours.len(), 8, "{ours:#?}");
    assert_eq!(theirs.len(), 8, "{theirs:#?}");

    let keepalive_local = f.keepalive.server.local_addr().unwrap();
    let keepalive_peer = f.keepalive.server.peer_addr().unwrap();
    for s in &ours {
        let local = s["local"].as_str().unwrap();
        let peer = s["peer"].as_str().unwrap();
        let ss = theirs
            .iter()
            .find(|x| x.local == local && x.peer == peer)
            .unwrap_or_else(|| panic!("ss has no {local} -> {peer}: {theirs:#?}"));
        let state = s["state"].as_str().unwrap();
        let what = format!("{source} {state} {local} -> {peer}");
        assert_eq!(ss_state(state), ss.state, "{what}");
        assert_eq!(s["inode"].as_u64().unwrap(), ss.inode, "{what}");
        assert_eq!(s["uid"].as_u64().unwrap(), u64::from(ss.uid), "{what}");
        assert_eq!(s["recv_q"].as_u64().unwrap(), u64::from(ss.recv_q), "{what}");
        // /proc/net/tcp writes write_seq - snd_una for a listener where sock_diag (and so ss)
        // gives the backlog limit; the README notes the difference.
        if !(source == "procfs" && state == "listening") {
            assert_eq!(s["send_q"].as_u64().unwrap(), u64::from(ss.send_q), "{what}");
        }
        match (&s["timer"], &ss.timer) {
            (Value::Null, None) => {}
            (t, Some((kind, ms, probes))) if !t.is_null() => {
                assert_eq!(ss_timer(t["kind"].as_str().unwrap()), kind, "{what}");
                assert_eq!(t["probes"].as_u64().unwrap(), u64::from(*probes), "{what}");
                let diff = t["expires_ms"].as_u64().unwrap().abs_diff(*ms);
                assert!(diff <= 1200 + slack, "{what}: expiry {} vs ss {ms}", t["expires_ms"]);
            }
            (t, ss) => panic!("{what}: timer {t} vs ss {ss:?}"),
        }
        let idle = &s["idle"];
        if source == "netlink" && state == "established" {
            let (recv, send) = (idle["last_recv_ms"].as_u64().unwrap(), idle["last_send_ms"].as_u64().unwrap());
            assert!(recv.abs_diff(ss.last_recv_ms) <= slack, "{what}: {idle} vs ss lastrcv {}", ss.last_recv_ms);
            assert!(send.abs_diff(ss.last_send_ms) <= slack, "{what}: {idle} vs ss lastsnd {}", ss.last_send_ms);
            if local == keepalive_local.to_string() && peer == keepalive_peer.to_string() {
                assert!(recv >= 1000 && send < 1000, "{what}: {idle}");
            }
        } else if source == "procfs" || state == "listening" || state == "time-wait" {
            assert!(idle.is_null(), "{what}: {idle}");
        }
        assert_eq!(s["family"], if v6 { "inet6" } else { "inet" }, "{what}");
    }

    // The states the fixture made are all there, with the keepalive timer on the right socket.
    let find = |state: &str| ours.iter().filter(|s| s["state"] == state).count();
    assert_eq!((find("listening"), find("established")), (1, 4));
    assert_eq!((find("close-wait"), find("fin-wait-2"), find("time-wait")), (1, 1, 1));
    let armed: Vec<_> = ours.iter().filter(|s| s["timer"]["kind"] == "keepalive").collect();
    assert_eq!(armed.len(), 1, "{armed:#?}");
    assert_eq!(armed[0]["local"], keepalive_local.to_string());
    assert_eq!(armed[0]["peer"], keepalive_peer.to_string());
    let expires = armed[0]["timer"]["expires_ms"].as_u64().unwrap();
    assert!(expires <= KEEPALIVE_IDLE.as_millis() as u64 && expires > 50_000, "{expires}");
}

#[test]
fn netlink_matches_ss_ipv4() {
    compare_with_ss(false, "netlink");
}

#[test]
fn netlink_matches_ss_ipv6() {
    compare_with_ss(true, "netlink");
}

#[test]
fn procfs_matches_ss_ipv4() {
    compare_with_ss(false, "procfs");
}

#[test]
fn procfs_matches_ss_ipv6() {
    compare_with_ss(true, "procfs");
}

/// The summary of a port's server-side sockets equals a count made by hand from the fixture.
#[test]
fn summary_counts_the_servers_sockets() {
    let f = Fixture::new(false);
    let port = f.port.to_string();
    for source in ["netlink", "procfs"] {
        let v = json(&["sockets", "--source", source, "--port", &port]);
        let summary = &v["summary"];
        assert_eq!(summary["total"], 4, "{source}: {summary}");
        assert_eq!(summary["by_state"]["listening"], 1);
        assert_eq!(summary["by_state"]["established"], 2);
        assert_eq!(summary["by_state"]["close-wait"], 1);
        assert_eq!(summary["keepalive"]["established"], 2);
        assert_eq!(summary["keepalive"]["armed"], 1);
        assert_eq!(v["filters"]["ports"][0], f.port);
    }
}

/// Every filter selects what `ss` would: states (names and groups), families, sport/dport.
#[test]
fn filters_select_like_ss() {
    let f = Fixture::new(false);
    let port = f.port.to_string();
    let count = |args: &[&str]| {
        let mut all = vec!["sockets"];
        all.extend_from_slice(args);
        let v = json(&all);
        v["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| f.owns(s["local"].as_str().unwrap(), s["peer"].as_str().unwrap()))
            .count()
    };
    assert_eq!(count(&["--state", "close-wait"]), 1);
    assert_eq!(count(&["--state", "CLOSE-WAIT", "--state", "time-wait"]), 2);
    assert_eq!(count(&["--state", "connected"]), 6); // 4 established, close-wait, fin-wait-2
    assert_eq!(count(&["--state", "bucket"]), 1); // time-wait
    assert_eq!(count(&["--state", "big"]), 7);
    assert_eq!(count(&["--sport", &port]), 4);
    assert_eq!(count(&["--dport", &port]), 4);
    assert_eq!(count(&["-6", "--sport", &port]), 0);
    assert_eq!(count(&["-4", "--sport", &port]), 4);
    let tw = f.time_wait_client_port.to_string();
    assert_eq!(count(&["--sport", &format!("{tw}-{tw}"), "--state", "time-wait"]), 1);
    let v = json(&["sockets", "--state", "listening", "--port", &port]);
    assert_eq!(v["filters"]["states"], serde_json::json!(["listening"]));
}

#[test]
fn ss_timer_text_reads_back() {
    assert_eq!(ss_timer_ms("7.412ms"), 7412);
    assert_eq!(ss_timer_ms("412ms"), 412);
    assert_eq!(ss_timer_ms("59sec"), 59_000);
    assert_eq!(ss_timer_ms("1min5sec"), 65_000);
    assert_eq!(ss_timer_ms("12min"), 720_000);
}
