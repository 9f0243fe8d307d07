//! `serve` against the clients that cause the trouble: slowloris, malformed requests, churn with
//! FIN and RST, and shutdown under 1,000 open streams — each against a real server process, on
//! loopback, with bounded loops.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::server::*;
use crate::util::*;

fn healthz_ms(addr: SocketAddr) -> f64 {
    let t = Instant::now();
    assert_eq!(get(addr, "/healthz").status, 200);
    t.elapsed().as_secs_f64() * 1000.0
}

fn p99(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")?.split_whitespace().next()?.parse().ok()).unwrap()
}

fn gauge(addr: SocketAddr, name: &str) -> f64 {
    let text = get(addr, "/metrics").body;
    text.lines().find_map(|l| l.strip_prefix(name)?.trim().parse().ok()).unwrap_or_else(|| panic!("{name}"))
}

/// 1,000 connections that never finish their request head are all closed by the header
/// timeout, while `/healthz` keeps answering fast.
#[test]
fn slowloris_connections_are_cut_and_health_stays_fast() {
    let serve = Serve::start(&["--header-timeout", "2", "--max-connections-per-ip", "5000"]);
    let start = Instant::now();
    let mut slow: Vec<TcpStream> = (0..1000)
        .map(|i| {
            let mut s = TcpStream::connect(serve.addr).unwrap();
            // Half send part of a head, half send nothing at all.
            if i % 2 == 0 {
                s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ").unwrap();
            }
            s
        })
        .collect();
    let mut latencies = Vec::new();
    while start.elapsed() < Duration::from_millis(1500) {
        latencies.push(healthz_ms(serve.addr));
        std::thread::sleep(Duration::from_millis(10));
    }
    let p99 = p99(latencies.clone());
    eprintln!("slowloris: /healthz p99 {p99:.1} ms over {} requests with 1000 stalled connections", latencies.len());
    assert!(p99 <= 100.0, "/healthz p99 {p99:.1} ms");
    // Every stalled connection is closed by the server (read returns EOF or a reset).
    let deadline = Instant::now() + Duration::from_secs(5);
    for s in &mut slow {
        s.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1))))
            .unwrap();
        let mut buf = [0u8; 512];
        let closed = loop {
            match s.read(&mut buf) {
                Ok(0) => break true,
                Ok(_) => continue, // a 408 or similar before the close
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break true,
                Err(_) => break false,
            }
        };
        assert!(closed, "a stalled connection was still open after {:?}", start.elapsed());
    }
    eprintln!("slowloris: all 1000 closed after {:.2} s", start.elapsed().as_secs_f64());
    assert!(wait_until(Duration::from_secs(2), || gauge(serve.addr, "webui_doctor_server_connections_open ") <= 1.0));
}

/// Sends raw bytes, half-closes, and returns what came back.
fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn status_of(response: &str) -> Option<u16> {
    response.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[test]
fn malformed_requests_get_4xx_or_a_close_and_the_server_keeps_serving() {
    let serve = Serve::start(&[]);
    let big = format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024));
    let cases: Vec<(&str, Vec<u8>, &[u16])> = vec![
        ("garbage", b"\x00\x01\x02garbage\xff\xfe\r\n\r\n".to_vec(), &[400]),
        ("bad method", b"G\x01T / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(), &[400]),
        ("unknown method", b"BREW / HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(), &[405]),
        ("bad URI", b"GET /\x7f\x01 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(), &[400]),
        ("bad version", b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n".to_vec(), &[400, 505]),
        ("header over 64 KiB", big.into_bytes(), &[431]),
        ("bad filter", b"GET /api/snapshot?state=sideways HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(), &[400]),
        ("unknown filter", b"GET /api/snapshot?colour=red HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(), &[400]),
        ("bad port", b"GET /api/snapshot?port=99999 HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(), &[400]),
    ];
    for (what, bytes, allowed) in cases {
        let response = raw(serve.addr, &bytes);
        match status_of(&response) {
            Some(code) => assert!(allowed.contains(&code), "{what}: got {code}: {response:.200}"),
            None => assert!(response.is_empty(), "{what}: neither a status nor a close: {response:.200}"),
        }
        assert_eq!(get(serve.addr, "/healthz").status, 200, "the server stopped serving after {what}");
    }
}

/// 10,000 connections, SSE and plain, opened and ended in bursts, half with FIN and half with
/// RST. Afterwards the server holds no CLOSE-WAIT, and its open-connection gauge, descriptors
/// and RSS are back where they were after warm-up bursts of the same shape.
#[test]
fn churn_leaves_no_trace() {
    let serve =
        Serve::start(&["--snapshot-period", "1000", "--max-connections", "8000", "--max-connections-per-ip", "8000"]);
    let addr = serve.addr;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let burst = |size: usize, round: usize| {
        rt.block_on(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let tasks: Vec<_> = (0..size)
                .map(|i| {
                    tokio::spawn(async move {
                        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
                        let path = if i % 2 == 0 { "/api/events" } else { "/healthz" };
                        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes()).await.ok()?;
                        let mut buf = [0u8; 1024];
                        let n = s.read(&mut buf).await.ok()?;
                        if (i + round).is_multiple_of(2) {
                            socket2::SockRef::from(&s).set_linger(Some(Duration::ZERO)).ok()?;
                        }
                        drop(s);
                        Some(n)
                    })
                })
                .collect();
            let mut ok = 0;
            for t in tasks {
                if matches!(t.await, Ok(Some(n)) if n > 0) {
                    ok += 1;
                }
            }
            ok
        })
    };
    // Waits until the server holds no connection, judged from outside (sock_diag), so that no
    // request of ours, and no host-wide /metrics read, changes what is measured.
    let port = serve.port().to_string();
    let settle = || {
        assert!(
            wait_until(Duration::from_secs(5), || {
                json(&["sockets", "--sport", &port, "--state", "connected"])["summary"]["total"] == 0
            }),
            "the server still holds connections"
        );
    };
    // Each burst starts once the server has let go of the previous one, so it never holds more
    // than one burst (a busy machine would otherwise overlap them and raise the high-water mark
    // mid-test). Warm up with 20,000 connections of the same shape: the allocator fills towards
    // its steady state over the first ten thousand or so (sampled after every burst of 500 in
    // five runs: RSS rose 30-40 % over the first 2,000, then crept up to 7 % more until about
    // 12,500, and stayed within 1-2 % after; after only 10,000, one run in four measured +11 %
    // later), so the baseline is that steady state.
    for round in 0..40 {
        assert_eq!(burst(500, round), 500);
        settle();
    }
    let (fds0, rss0) = (open_fds(serve.pid()), rss_kib(serve.pid()));
    let mut served = 0;
    for round in 0..20 {
        served += burst(500, round);
        settle();
    }
    assert_eq!(served, 10_000, "every churned request was answered");
    let out = run(&["check", "--port", &port, "--max-close-wait", "0"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // A connection the kernel has ended (a reset) holds its descriptor until the server's next
    // poll of it: on a loaded machine that can trail the kernel by a moment. A leak stays.
    wait_until(Duration::from_secs(10), || open_fds(serve.pid()) <= fds0);
    let (fds1, rss1) = (open_fds(serve.pid()), rss_kib(serve.pid()));
    eprintln!("churn of 10000 connections: fds {fds0} -> {fds1}, RSS {rss0} -> {rss1} KiB");
    assert!(fds1 <= fds0, "descriptors leaked: {fds0} -> {fds1}");
    assert!(rss1 as f64 <= rss0 as f64 * 1.10, "RSS grew from {rss0} to {rss1} KiB");
    // The gauges agree: only the /metrics request itself is open.
    assert_eq!(gauge(addr, "webui_doctor_server_connections_open "), 1.0);
    assert_eq!(gauge(addr, "webui_doctor_server_sse_clients "), 0.0);
}

/// SIGTERM with 1,000 open SSE streams: the process exits within 2 s and every client sees
/// its stream end.
#[test]
fn shutdown_with_a_thousand_streams() {
    let mut serve =
        Serve::start(&["--snapshot-period", "1000", "--max-sse-clients", "2000", "--max-connections-per-ip", "2000"]);
    let addr = serve.addr;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(1000);
    let clients: Vec<_> = (0..1000)
        .map(|_| {
            let ready = ready_tx.clone();
            rt.spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                s.write_all(b"GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n").await.unwrap();
                let mut buf = vec![0u8; 4096];
                let _ = s.read(&mut buf).await.unwrap();
                ready.send(()).await.unwrap();
                // Read until the server ends the stream.
                let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
                loop {
                    match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => return true,
                        Ok(Ok(_)) => continue,
                        Err(_) => return false,
                    }
                }
            })
        })
        .collect();
    rt.block_on(async {
        for _ in 0..1000 {
            ready_rx.recv().await.unwrap();
        }
    });
    let (code, took) = serve.terminate(Duration::from_secs(2));
    assert_eq!(code, Some(0), "did not exit within 2 s ({took:?}): {}", serve.log());
    let ended = rt.block_on(async {
        let mut n = 0;
        for c in clients {
            if c.await.unwrap() {
                n += 1;
            }
        }
        n
    });
    eprintln!("shutdown with 1000 SSE streams: exited in {} ms, {ended} streams ended", took.as_millis());
    assert_eq!(ended, 1000);
}
