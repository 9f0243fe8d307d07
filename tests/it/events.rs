//! `events`: each cause produced for real on loopback and reported once, with the right port;
//! the port filter; and 10,000 connections churned while it runs, every end reported (or
//! counted as lost). Needs root (CAP_NET_ADMIN for the subscription, nftables for the
//! vanished client); runs for real in CI.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use socket2::{SockRef, TcpKeepalive};

use crate::server::{Blackhole, Serve, get, have_nft, server_socket};
use crate::util::*;

/// `webui-doctor events --format json ARGS`, running, its output read as it comes (a full pipe
/// would stall it); stopped with SIGTERM (so it prints its totals) and its JSON lines parsed.
pub struct Events(Option<Child>, Option<std::thread::JoinHandle<String>>);

impl Events {
    pub fn start(args: &[&str]) -> Events {
        let mut child = cmd()
            .args(["events", "--format", "json"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start webui-doctor events");
        let mut stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut out = String::new();
            stdout.read_to_string(&mut out).unwrap();
            out
        });
        // The subscription is made at once; give the process time to get there.
        std::thread::sleep(Duration::from_millis(400));
        Events(Some(child), Some(reader))
    }

    /// Stops it and returns its lines and its stderr.
    pub fn finish(mut self) -> (Vec<Value>, String) {
        let mut child = self.0.take().unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let out = self.1.take().unwrap().join().unwrap();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "events failed: {err}");
        (out.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect(), err)
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn port_of(addr: &Value) -> u16 {
    addr.as_str().unwrap().rsplit(':').next().unwrap().parse().unwrap()
}

/// A listener and one accepted connection; the server side tuned by `tune`.
fn connection(tune: impl Fn(&TcpStream)) -> (TcpListener, TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    tune(&s);
    (l, c, s)
}

fn keepalive_2_1_3(s: &TcpStream) {
    let ka =
        TcpKeepalive::new().with_time(Duration::from_secs(2)).with_interval(Duration::from_secs(1)).with_retries(3);
    SockRef::from(s).set_tcp_keepalive(&ka).unwrap();
}

#[test]
fn keepalive_timeout_for_a_vanished_idle_client() {
    if !require(have_nft(), "root and nftables (nft)") {
        return;
    }
    let (l, client, server) = connection(keepalive_2_1_3);
    let port = l.local_addr().unwrap().port();
    let client_port = client.local_addr().unwrap().port();
    let events = Events::start(&["--port", &port.to_string()]);
    let started = Instant::now();
    let _rule = Blackhole::new(port, client_port);
    let gone = wait_until(Duration::from_secs(10), || server_socket(port, client_port).is_none());
    let took = started.elapsed();
    // The kernel announces the end when the socket is freed: when its owner closes it, as a
    // server does once its read or write fails.
    drop(server);
    std::thread::sleep(Duration::from_millis(300));
    let (lines, _) = events.finish();
    assert!(gone && took <= Duration::from_secs(8), "not dropped within 8 s ({took:?})");
    assert_eq!(lines.len(), 1, "one end, the server side: {lines:#?}");
    let e = &lines[0];
    assert_eq!(e["cause"], "keepalive-timeout", "{e}");
    assert_eq!(port_of(&e["local"]), port);
    assert_eq!(port_of(&e["peer"]), client_port);
    assert_eq!(e["probes"], 3, "{e}");
    assert_eq!(e["retransmits"], 0, "{e}");
    drop(client);
}

#[test]
fn retransmit_timeout_with_heartbeats_in_flight() {
    if !require(have_nft(), "root and nftables (nft)") {
        return;
    }
    let (l, client, server) = connection(|s| {
        keepalive_2_1_3(s);
        SockRef::from(s).set_tcp_user_timeout(Some(Duration::from_secs(5))).unwrap();
    });
    let port = l.local_addr().unwrap().port();
    let client_port = client.local_addr().unwrap().port();
    let events = Events::start(&["--port", &port.to_string()]);
    let _rule = Blackhole::new(port, client_port);
    // A heartbeat every second, as an SSE server sends, until the kernel ends the connection.
    let mut writer = server.try_clone().unwrap();
    let beats = std::thread::spawn(move || {
        for _ in 0..15 {
            if writer.write_all(b": keepalive\n\n").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
    assert!(
        wait_until(Duration::from_secs(12), || server_socket(port, client_port).is_none()),
        "the user timeout did not end the connection"
    );
    beats.join().unwrap();
    drop(server);
    std::thread::sleep(Duration::from_millis(300));
    let (lines, _) = events.finish();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let e = &lines[0];
    assert_eq!(e["cause"], "retransmit-timeout", "{e}");
    assert!(e["retransmits"].as_u64().unwrap() > 0 && e["total_retrans"].as_u64().unwrap() > 0, "{e}");
    assert_eq!(port_of(&e["peer"]), client_port);
    drop(client);
}

#[test]
fn fin_and_reset_are_closed_and_other_ports_stay_out() {
    if !require(is_root(), "root (CAP_NET_ADMIN)") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let events = Events::start(&["--port", &port.to_string()]);
    // An orderly close: the client's FIN, the server reads EOF and closes.
    let fin = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s1, _) = l.accept().unwrap();
    drop(fin);
    assert_eq!(s1.read(&mut [0u8; 8]).unwrap(), 0);
    drop(s1);
    // A reset: the client closes with SO_LINGER 0.
    let rst = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut s2, _) = l.accept().unwrap();
    SockRef::from(&rst).set_linger(Some(Duration::ZERO)).unwrap();
    drop(rst);
    assert!(s2.read(&mut [0u8; 8]).is_err(), "the server sees the reset");
    drop(s2);
    // A connection on another port ends too; --port leaves it out.
    let c = TcpStream::connect(other.local_addr().unwrap()).unwrap();
    let (s3, _) = other.accept().unwrap();
    drop((c, s3));
    std::thread::sleep(Duration::from_millis(500));
    let (lines, err) = events.finish();
    assert_eq!(lines.len(), 2, "the two server sides on :{port}: {lines:#?}");
    for e in &lines {
        assert_eq!(port_of(&e["local"]), port, "{e}");
        assert_eq!(e["cause"], "closed", "{e}");
        assert_eq!((e["probes"].as_u64(), e["retransmits"].as_u64()), (Some(0), Some(0)), "{e}");
    }
    assert!(err.contains("events: 2 sockets ended, 0 receive-buffer overruns"), "{err}");
}

#[test]
fn churn_every_end_is_reported_or_counted() {
    if !require(is_root(), "root (CAP_NET_ADMIN)") {
        return;
    }
    const CONNECTIONS: usize = 10_000;
    const BURST: usize = 500;
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // No port filter: both ends of every connection (the client side's local port is
    // ephemeral); the lines are sorted out by port below.
    let events = Events::start(&[]);
    for _ in 0..CONNECTIONS / BURST {
        // Open a burst (accepting each at once: the listen backlog is 128), then close it.
        let pairs: Vec<(TcpStream, TcpStream)> = (0..BURST)
            .map(|_| {
                let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
                (c, l.accept().unwrap().0)
            })
            .collect();
        drop(pairs);
    }
    // Let the last sockets finish closing (LAST-ACK needs the peer's ACK).
    std::thread::sleep(Duration::from_secs(2));
    let (lines, err) = events.finish();
    let ours = lines
        .iter()
        .filter(|e| {
            e.get("local").is_some_and(|a| port_of(a) == port) || e.get("peer").is_some_and(|a| port_of(a) == port)
        })
        .count();
    let overruns = lines.iter().filter_map(|e| e.get("overrun")).count();
    eprintln!("churn: {ours} of {} ends reported, {overruns} overruns; {}", 2 * CONNECTIONS, err.trim());
    assert_eq!(overruns, 0, "the receive buffer overran: {err}");
    assert_eq!(ours, 2 * CONNECTIONS, "{err}");
}

/// Linux 6.18 lets any user subscribe: `nobody` sees the ends of the test's connection.
#[test]
fn an_ordinary_user_sees_the_ends_too() {
    if !require(is_root(), "root (to run as nobody)") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let nobody = std::thread::spawn(move || {
        run_as_nobody(&["events", "--format", "json", "--port", &port, "--count", "1", "--duration", "10"])
    });
    std::thread::sleep(Duration::from_millis(500));
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    drop((c, s));
    let out = nobody.join().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let e: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(e["cause"], "closed", "{e}");
    assert!(stderr(&out).contains("events: 1 socket ended, 0 receive-buffer overruns"), "{}", stderr(&out));
}

/// Ends `n` connections to `l`: the client closes, the server reads EOF and closes.
pub fn close_connections(l: &TcpListener, n: usize) {
    for _ in 0..n {
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (mut s, _) = l.accept().unwrap();
        drop(c);
        assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0);
    }
}

/// `serve`'s `webui_doctor_tcp_ended_total{port,cause}` counts what `events` sees on the same
/// watched port, by cause, and nothing from other ports.
#[test]
fn serve_counts_the_ends_of_its_watched_port() {
    if !require(is_root(), "root") {
        return;
    }
    let watched = TcpListener::bind("127.0.0.1:0").unwrap();
    let other = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = watched.local_addr().unwrap().port();
    let serve = Serve::start(&["--watch-port", &port.to_string()]);
    let events = Events::start(&["--port", &port.to_string()]);
    close_connections(&watched, 3);
    close_connections(&other, 2);
    let series = format!("webui_doctor_tcp_ended_total{{port=\"{port}\",cause=\"closed\"}}");
    let counted =
        || get(serve.addr, "/metrics").body.lines().find_map(|l| l.strip_prefix(&series)?.trim().parse::<f64>().ok());
    assert!(wait_until(Duration::from_secs(5), || counted() == Some(3.0)), "{:?}", counted());
    let (lines, _) = events.finish();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let body = get(serve.addr, "/metrics").body;
    for cause in ["keepalive-timeout", "retransmit-timeout", "unknown"] {
        let zero = format!("webui_doctor_tcp_ended_total{{port=\"{port}\",cause=\"{cause}\"}} 0");
        assert!(body.contains(&zero), "{zero} missing in\n{body}");
    }
    assert!(body.contains("\nwebui_doctor_events_malformed_total 0\n"), "the malformed counter in\n{body}");
    let other_port = other.local_addr().unwrap().port();
    assert!(
        !body.contains(&format!("webui_doctor_tcp_ended_total{{port=\"{other_port}\"")),
        "an unwatched port has no ended series"
    );
    if require(have_promtool(), "promtool (Debian package prometheus)") {
        promtool_check(&body);
    }
    // The SSE document and /api carry the feed: newest first, on the watched port.
    let doc: Value = serde_json::from_str(&get(serve.addr, "/api/snapshot").body).unwrap();
    assert!(doc.get("ended").is_none(), "only the watched stream carries the feed");
}

/// Sends `payloads` (hex) from a netlink socket of a python3 process to port id `portid`.
fn unicast(portid: u32, payloads: &[String]) {
    let script = "import socket, sys\n\
                  s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 4); s.bind((0, 0))\n\
                  for p in sys.argv[2:]: s.sendto(bytes.fromhex(p), (int(sys.argv[1]), 0))\n";
    let status = std::process::Command::new("python3")
        .args(["-c", script, &portid.to_string()])
        .args(payloads)
        .status()
        .expect("python3");
    assert!(status.success());
}

/// The netlink port id of the sock_diag socket process `pid` holds (`/proc/net/netlink`, by inode).
fn netlink_portid(pid: u32) -> Option<u32> {
    let inodes: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .flatten()
        .filter_map(|e| {
            webui_doctor::os::socket_inode(std::fs::read_link(e.path()).ok()?.as_os_str().as_encoded_bytes())
        })
        .collect();
    std::fs::read_to_string("/proc/net/netlink").ok()?.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let inode: u64 = f.get(9)?.parse().ok()?;
        (f.get(1) == Some(&"4") && inodes.contains(&inode)).then(|| f.get(2)?.parse().ok())?
    })
}

/// A well-formed "socket ended" message for `port`, as the kernel would send it.
fn forged_end(port: u16) -> String {
    let mut msg = Vec::new();
    let len: u32 = 16 + 72;
    msg.extend(len.to_ne_bytes());
    msg.extend(20u16.to_ne_bytes()); // SOCK_DIAG_BY_FAMILY
    msg.extend([0u8; 10]); // flags, seq, pid
    msg.extend([2u8, 7, 0, 0]); // AF_INET, CLOSE, no timer
    msg.extend(port.to_be_bytes());
    msg.extend(1u16.to_be_bytes()); // peer port 1
    msg.extend([127, 0, 0, 1]);
    msg.extend([0u8; 12]);
    msg.extend([127, 0, 0, 1]);
    msg.extend([0u8; 12]);
    msg.extend([0u8; 4 + 8 + 4 + 4 + 4 + 4 + 4]); // if, cookie, expires, queues, uid, inode
    msg.iter().map(|b| format!("{b:02x}")).collect()
}

/// Anyone may unicast to the events socket: a forged end (well-formed, for the watched port) and
/// an undecodable message from a process are ignored and counted as not from the kernel; the
/// feed goes on and reports the real end that follows, only it.
#[test]
fn messages_not_from_the_kernel_are_ignored() {
    if !require(is_root(), "root (CAP_NET_ADMIN)") {
        return;
    }
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let events = Events::start(&["--port", &port.to_string()]);
    let pid = events.0.as_ref().unwrap().id();
    let portid = netlink_portid(pid).expect("the events socket in /proc/net/netlink");
    unicast(portid, &[forged_end(port), "0400000014000000".into()]);
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    let client_port = c.local_addr().unwrap().port();
    drop((c, s));
    std::thread::sleep(Duration::from_millis(500));
    let (lines, err) = events.finish();
    assert_eq!(lines.len(), 1, "only the real end: {lines:#?}");
    assert_eq!(port_of(&lines[0]["peer"]), client_port, "{lines:#?}");
    assert!(err.contains("0 malformed notifications skipped, 2 messages not from the kernel ignored"), "{err}");
}
