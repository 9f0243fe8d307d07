//! `serve` against its own clients, as the review tried it: readers that stop reading a large
//! document, one address holding every stream, idle unauthenticated connections, short tokens,
//! guessed log-ins and doubled `Host` headers. Each against a real server process on loopback.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::dashboard::ManySockets;
use crate::server::*;
use crate::util::*;

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 =
        status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok()).unwrap();
    kib / 1024.0
}

/// 120 readers that ask for `/api/snapshot` of a host with 30,000 sockets (a ~7 MB document,
/// more than the kernel's send buffers absorb) and never read: every response shares one
/// buffer, so `serve` grows by far less than a copy each (once 22 → 851 MiB); and the rate
/// floor cuts each of them once the body timeout has passed.
#[test]
fn stalled_readers_share_one_document_and_are_cut() {
    let _many = [ManySockets::start(7_500, 0), ManySockets::start(7_500, 0)];
    let serve = Serve::start(&["--max-connections-per-ip", "500", "--body-timeout", "3", "--snapshot-period", "5"]);
    let size = get(serve.addr, "/api/snapshot").body.len();
    assert!(size > 5_000_000, "the document is {size} bytes");
    let before = rss_mib(serve.pid());
    let readers: Vec<TcpStream> = (0..120)
        .map(|_| {
            let mut s = Http::small_window(serve.addr).stream().try_clone().unwrap();
            s.write_all(format!("GET /api/snapshot HTTP/1.1\r\nHost: {}\r\n\r\n", serve.addr).as_bytes()).unwrap();
            s
        })
        .collect();
    // Every reader's response is under way (a kernel send queue each) before RSS is read.
    let mut peak = before;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(2) {
        peak = peak.max(rss_mib(serve.pid()));
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("120 stalled readers of a {size}-byte document: serve {before:.1} -> {peak:.1} MiB RSS");
    assert!(peak - before < 64.0, "RSS grew by {:.1} MiB", peak - before);
    // The floor: 16 KiB/s over the 3 s body timeout. None of them reads, so each is cut.
    let cut = wait_until(Duration::from_secs(10), || {
        let m = get(serve.addr, "/metrics").body;
        m.lines()
            .find_map(|l| l.strip_prefix("webui_doctor_server_watchdog_ended_total ")?.trim().parse::<f64>().ok())
            .is_some_and(|n| n >= 120.0)
    });
    assert!(cut, "the stalled readers were not cut: {}", get(serve.addr, "/metrics").body);
    drop(readers);
}

/// 64 held streams from one address (the default cap) leave `/healthz` answering 200, while a
/// 65th request from there gets 503.
#[test]
fn held_streams_never_refuse_the_health_check() {
    let serve = Serve::start(&["--snapshot-period", "1000"]);
    let streams: Vec<Http> = (0..64).map(|_| Http::open_events(serve.addr, &[])).collect();
    assert_eq!(get(serve.addr, "/healthz").status, 200);
    assert_eq!(get(serve.addr, "/api/snapshot").status, 503);
    drop(streams);
}

/// With a token, 64 idle unauthenticated connections from one address do not crowd out a
/// `Bearer` request from it: the oldest of them are closed to make room.
#[test]
fn idle_unauthenticated_connections_leave_room_for_a_bearer() {
    let dir = tempfile::tempdir().unwrap();
    let token = "a-token-of-32-bytes-0123456789ab";
    let serve = Serve::start(&["--token-file", &token_file(&dir, token)]);
    let idle: Vec<TcpStream> = (0..64).map(|_| TcpStream::connect(serve.addr).unwrap()).collect();
    // Past the grace a new connection gets to send its request in.
    std::thread::sleep(Duration::from_millis(700));
    let auth = format!("Bearer {token}");
    let r = Http::connect(serve.addr).get("/api/snapshot", &[("Authorization", &auth), ("Connection", "close")]);
    assert_eq!(r.status, 200);
    let metrics = Http::connect(serve.addr).get("/metrics", &[("Authorization", &auth), ("Connection", "close")]);
    assert!(
        metrics
            .body
            .lines()
            .any(|l| l.starts_with("webui_doctor_server_requests_rejected_total{reason=\"unauthenticated_evicted\"}")
                && !l.ends_with(" 0")),
        "{}",
        metrics.body
    );
    drop(idle);
}

/// A 4-byte token is refused at start; repeated wrong log-ins get 429 with `Retry-After` and are
/// logged with the address; two `Host` headers get 400.
#[test]
fn weak_tokens_guesses_and_doubled_hosts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = cmd();
    c.args(["serve", "--listen", "127.0.0.1:0", "--token-file", &token_file(&dir, "abcd")]);
    let out = output_within(c, Duration::from_secs(10));
    assert_eq!(code(&out), 2);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("the access token is 4 bytes; at least 16 are required"), "{}", stderr(&out));

    let token = "a-token-of-32-bytes-0123456789ab";
    let serve = Serve::start(&["--token-file", &token_file(&dir, token)]);
    let form = [("Content-Type", "application/x-www-form-urlencoded"), ("Connection", "close")];
    let statuses: Vec<u16> = (0..20)
        .map(|i| Http::connect(serve.addr).request("POST", "/login", &form, &format!("token=guess{i}")).status)
        .collect();
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429; 10], "{statuses:?}");
    let limited = Http::connect(serve.addr).request("POST", "/login", &form, &format!("token={token}"));
    assert_eq!(limited.status, 429, "even the right token waits out the window");
    assert!(limited.header("retry-after").is_some_and(|s| s.parse::<u64>().is_ok_and(|s| (1..=60).contains(&s))));
    let bearer =
        Http::connect(serve.addr).get("/api/snapshot", &[("Authorization", "Bearer guess"), ("Connection", "close")]);
    assert_eq!(bearer.status, 429);
    assert!(serve.logged("failed log-in (form) from 127.0.0.1:"), "{}", serve.log());

    let doubled = Http::connect(serve.addr).get("/healthz", &[("Host", "evil.example"), ("Connection", "close")]);
    assert_eq!(doubled.status, 400, "two Host headers");
}
