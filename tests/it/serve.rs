//! `webui-doctor serve` on real sockets: the options on accepted sockets, dead peers dropped (and
//! not dropped without keepalive), a client's FIN noticed at once, SSE heartbeats, metrics that
//! agree with the API, tokens, caps and graceful shutdown.

use std::time::{Duration, Instant};

use crate::server::*;
use crate::util::*;

/// The five options (and the user timeout) read back from the server's own accepted socket,
/// through pidfd_getfd on the server process; and `sockets` shows its keepalive timer.
#[test]
fn accepted_socket_has_every_option() {
    if !require(is_root(), "root (pidfd_getfd on the server process)") {
        return;
    }
    let serve = Serve::start(&["--snapshot-period", "1000", "--heartbeat", "1000"]);
    let (_events, client_port) = Http::open_stream(serve.addr);
    let socket = server_socket(serve.port(), client_port).expect("server socket");
    let inode = socket["inode"].as_u64().unwrap();
    let opts = sockopts_of(serve.pid(), inode);
    assert!(opts.so_keepalive && opts.tcp_nodelay, "{opts:?}");
    assert_eq!((opts.keepidle_s, opts.keepintvl_s, opts.keepcnt), (10, 5, 3));
    assert_eq!(opts.user_timeout_ms, 25_000);
    assert_eq!(socket["timer"]["kind"], "keepalive", "{socket}");
    assert!(socket["timer"]["expires_ms"].as_u64().unwrap() <= 10_000);
    assert!(serve.logged("TCP_KEEPIDLE=10s TCP_KEEPINTVL=5s TCP_KEEPCNT=3 TCP_USER_TIMEOUT=25000ms (all applied)"));

    // /healthz reports what took effect.
    let health: serde_json::Value = serde_json::from_str(&get(serve.addr, "/healthz").body).unwrap();
    assert_eq!(health["keepalive"]["all_applied"], true);
    assert_eq!(health["keepalive"]["user_timeout_ms"], 25_000);
    assert_eq!(health["keepalive"]["options"].as_array().unwrap().len(), 6);

    // Custom values, and --no-keepalive for the A/B runs.
    let custom = Serve::start(&[
        "--keepalive-idle",
        "7",
        "--keepalive-interval",
        "2",
        "--keepalive-count",
        "4",
        "--user-timeout",
        "0",
    ]);
    let off = Serve::start(&["--no-keepalive"]);
    for (serve, want) in [(&custom, Some((7, 2, 4, 0))), (&off, None)] {
        let (_c, port) = Http::open_stream(serve.addr);
        let inode = server_socket(serve.port(), port).unwrap()["inode"].as_u64().unwrap();
        let opts = sockopts_of(serve.pid(), inode);
        assert!(opts.tcp_nodelay);
        match want {
            Some((idle, intvl, cnt, ut)) => {
                assert!(opts.so_keepalive);
                assert_eq!(
                    (opts.keepidle_s, opts.keepintvl_s, opts.keepcnt, opts.user_timeout_ms),
                    (idle, intvl, cnt, ut)
                );
            }
            None => assert!(!opts.so_keepalive && opts.user_timeout_ms == 0, "{opts:?}"),
        }
    }
}

/// Holds an SSE stream, blackholes the server's packets to it, and measures how long the server
/// keeps its socket. Returns `None` when it was still there at `limit`.
/// Also returns the largest send queue seen and the socket's last state.
fn time_to_drop(serve: &Serve, limit: Duration) -> (Option<Duration>, u64, String) {
    time_to_drop_of(serve, || Http::open_stream(serve.addr), limit)
}

/// The same for a stream `open` opens (the connection and its client port).
pub fn time_to_drop_of(
    serve: &Serve,
    open: impl FnOnce() -> (Http, u16),
    limit: Duration,
) -> (Option<Duration>, u64, String) {
    let (_events, client_port) = open();
    assert!(server_socket(serve.port(), client_port).is_some());
    let _rule = Blackhole::new(serve.port(), client_port);
    let start = Instant::now();
    let (mut max_send_q, mut state) = (0, String::new());
    while start.elapsed() < limit {
        match server_socket(serve.port(), client_port) {
            None => return (Some(start.elapsed()), max_send_q, "gone".into()),
            Some(s) => {
                max_send_q = max_send_q.max(s["send_q"].as_u64().unwrap());
                state = s["state"].as_str().unwrap().to_owned();
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (None, max_send_q, state)
}

fn scrape(serve: &Serve, series: &str) -> f64 {
    let text = get(serve.addr, "/metrics").body;
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("{series} not in\n{text}"))
}

const FAST: [&str; 6] = ["--keepalive-idle", "2", "--keepalive-interval", "1", "--keepalive-count", "3"];

/// Idle stream, client gone without a FIN: dropped within 2 + 1x3 = 5 s (+1 s slack) with
/// keepalive; still there after the same time without it.
#[test]
fn dead_peer_on_an_idle_stream_is_dropped_only_with_keepalive() {
    if !require(have_nft(), "root and nftables") {
        return;
    }
    let idle = ["--snapshot-period", "1000", "--heartbeat", "1000"];
    let with = Serve::start(&[&FAST[..], &idle[..]].concat());
    let without = Serve::start(&[&FAST[..], &idle[..], &["--no-keepalive"]].concat());
    let b = std::thread::spawn(move || (time_to_drop(&without, Duration::from_secs(6)), without));
    let (dropped, _, _) = time_to_drop(&with, Duration::from_secs(6));
    let dropped = dropped.expect("with keepalive the dead peer is dropped within 6 s");
    eprintln!("idle stream: dead peer dropped after {:.2} s", dropped.as_secs_f64());
    assert!(dropped >= Duration::from_secs(3), "dropped too early ({dropped:?}): not by keepalive");
    assert_eq!(scrape(&with, "webui_doctor_server_peers_timed_out_total"), 1.0);
    let ((kept, _, state), without) = b.join().unwrap();
    assert!(kept.is_none(), "without keepalive the socket should still be there, but went after {kept:?}");
    assert_eq!(state, "established");
    assert_eq!(scrape(&without, "webui_doctor_server_peers_timed_out_total"), 0.0);
}

/// Heartbeats every second to a vanished client sit unacknowledged, so keepalive never probes;
/// TCP_USER_TIMEOUT (5 s here) still drops it, within 8 s. Without keepalive and user timeout it
/// stays ESTABLISHED with a growing send queue after 15 s.
#[test]
fn dead_peer_with_heartbeats_in_flight_is_dropped_by_user_timeout() {
    if !require(have_nft(), "root and nftables") {
        return;
    }
    let beating = ["--snapshot-period", "1000", "--heartbeat", "1"];
    let with = Serve::start(&[&FAST[..], &beating[..]].concat());
    let without = Serve::start(&[&FAST[..], &beating[..], &["--no-keepalive"]].concat());
    let b = std::thread::spawn(move || (time_to_drop(&without, Duration::from_secs(15)), without));
    let (dropped, _, _) = time_to_drop(&with, Duration::from_secs(8));
    let dropped = dropped.expect("with the user timeout the dead peer is dropped within 8 s");
    eprintln!("heartbeat stream: dead peer dropped after {:.2} s", dropped.as_secs_f64());
    assert_eq!(scrape(&with, "webui_doctor_server_peers_timed_out_total"), 1.0);
    let ((kept, send_q, state), _without) = b.join().unwrap();
    assert!(kept.is_none(), "without keepalive the socket went after {kept:?}");
    assert_eq!(state, "established");
    // At least five unacknowledged `: keepalive\n\n` heartbeats (13 bytes each) queued up.
    assert!(send_q >= 5 * 13, "send queue did not grow: {send_q}");
}

/// After a client's FIN on an idle SSE stream the server closes at once: no CLOSE-WAIT on its
/// port after 1 s (measured: the time until the server socket leaves CLOSE-WAIT).
#[test]
fn client_fin_on_an_idle_stream_leaves_no_close_wait() {
    let serve = Serve::start(&["--snapshot-period", "1000", "--heartbeat", "1000"]);
    let (events, client_port) = Http::open_stream(serve.addr);
    let start = Instant::now();
    events.stream().shutdown(std::net::Shutdown::Write).unwrap();
    let gone = wait_until(Duration::from_secs(1), || {
        server_socket(serve.port(), client_port)
            .is_none_or(|s| s["state"] != "close-wait" && s["state"] != "established")
    });
    eprintln!("CLOSE-WAIT lifetime after client FIN: {} ms", start.elapsed().as_millis());
    assert!(gone, "server socket still {:?} after 1 s", server_socket(serve.port(), client_port));
    let out = run(&["check", "--port", &serve.port().to_string(), "--max-close-wait", "0"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(wait_until(Duration::from_secs(2), || scrape(&serve, "webui_doctor_server_sse_clients") == 0.0));
}

/// Heartbeat comments arrive at the configured interval; snapshots at theirs; each snapshot's
/// data is the documented JSON document for the watched port.
#[test]
fn sse_heartbeats_and_snapshots_arrive_on_time() {
    let serve = Serve::start(&["--snapshot-period", "1000", "--heartbeat", "1"]);
    let mut events = Http::open_events(serve.addr, &[]);
    let first = events.next_snapshot(Duration::from_secs(2));
    assert_eq!(first["filters"]["ports"][0], serve.port());
    for key in ["source", "taken_at", "summary", "findings", "page", "columns", "rows"] {
        assert!(first.get(key).is_some(), "snapshot lacks {key}: {first}");
    }
    assert!(first["summary"]["by_state"]["listening"].as_u64().unwrap() >= 1);
    let lines = events.sse_lines(Instant::now() + Duration::from_millis(4500));
    let beats: Vec<Instant> = lines.iter().filter(|(_, l)| l == ": keepalive").map(|(t, _)| *t).collect();
    assert!((3..=5).contains(&beats.len()), "{} heartbeats in 4.5 s: {lines:?}", beats.len());
    for pair in beats.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(gap >= Duration::from_millis(800) && gap <= Duration::from_millis(1500), "heartbeat gap {gap:?}");
    }
    assert!(!lines.iter().any(|(_, l)| l == "event: snapshot"), "no snapshot was due: {lines:?}");

    let fast = Serve::start(&["--snapshot-period", "0.5", "--heartbeat", "1000"]);
    let mut events = Http::open_events(fast.addr, &[]);
    let lines = events.sse_lines(Instant::now() + Duration::from_millis(2200));
    let snapshots = lines.iter().filter(|(_, l)| l == "event: snapshot").count();
    assert!((4..=6).contains(&snapshots), "{snapshots} snapshots in 2.2 s at a 0.5 s period");
    for (_, l) in lines.iter().filter(|(_, l)| l.starts_with("data: ")) {
        let v: serde_json::Value = serde_json::from_str(&l[6..]).unwrap();
        // A handful of sockets: every one is in the rows, and the page says so.
        assert_eq!(v["summary"]["total"], v["page"]["total"]);
        assert_eq!(v["page"]["shown"].as_u64().unwrap(), v["rows"].as_array().unwrap().len() as u64);
        assert_eq!(v["page"]["shown"], v["page"]["total"]);
    }
}

/// `/metrics` is valid exposition (promtool) and its counts for the server's port equal
/// `/api/snapshot?port=P`, read over the same connection so the socket set is the same.
#[test]
fn metrics_agree_with_the_snapshot_api() {
    let serve = Serve::start(&[]);
    let port = serve.port();
    let mut http = Http::connect(serve.addr);
    let metrics = http.get("/metrics", &[]);
    let snapshot = http.get(&format!("/api/snapshot?port={port}"), &[]);
    assert_eq!(metrics.status, 200);
    assert_eq!(metrics.header("content-type"), Some("text/plain; version=0.0.4; charset=utf-8"));
    assert_eq!(snapshot.header("content-type"), Some("application/json"));
    let snap: serde_json::Value = serde_json::from_str(&snapshot.body).unwrap();
    for (label, name) in [
        ("established", "established"),
        ("listen", "listening"),
        ("time_wait", "time-wait"),
        ("close_wait", "close-wait"),
        ("fin_wait2", "fin-wait-2"),
    ] {
        let series = format!("webui_doctor_tcp_sockets{{state=\"{label}\",port=\"{port}\"}}");
        let value: f64 = metrics.body.lines().find_map(|l| l.strip_prefix(&series)?.trim().parse().ok()).unwrap();
        assert_eq!(value as u64, snap["summary"]["by_state"][name].as_u64().unwrap(), "{label}");
    }
    let armed = format!("webui_doctor_tcp_keepalive_armed{{port=\"{port}\"}}");
    let value: f64 = metrics.body.lines().find_map(|l| l.strip_prefix(&armed)?.trim().parse().ok()).unwrap();
    assert_eq!(value as u64, snap["summary"]["keepalive"]["armed"].as_u64().unwrap());
    assert!(metrics.body.contains("webui_doctor_server_connections_accepted_total "));
    assert!(metrics.body.contains("webui_doctor_server_keepalive_option_failures_total{option=\"TCP_KEEPIDLE\"} 0"));
    if require(have_promtool(), "promtool (Debian package prometheus)") {
        promtool_check(&metrics.body);
    }

    // Bad filter parameters are a 400 with the reason, and the server keeps serving.
    let bad = http.get("/api/snapshot?state=half-open", &[]);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("unknown state 'half-open'"), "{}", bad.body);
    assert_eq!(http.get("/api/snapshot?prot=1", &[]).status, 400);
    assert_eq!(http.get("/healthz", &[]).status, 200);

    // Process owners only with --allow-processes: then the server's own files and limit.
    assert!(!metrics.body.contains("webui_doctor_process_open_files"));
    let serve = Serve::start(&["--allow-processes"]);
    let body = get(serve.addr, "/metrics").body;
    let series = format!("webui_doctor_process_open_files{{pid=\"{}\",comm=\"webui-doctor\"}}", serve.pid());
    let open: f64 =
        body.lines().find_map(|l| l.strip_prefix(&series)?.trim().parse().ok()).unwrap_or_else(|| panic!("{body}"));
    assert!(open >= 3.0, "{open}");
    assert!(body.contains("webui_doctor_process_open_files_limit{"), "{body}");
    if require(have_promtool(), "promtool (Debian package prometheus)") {
        promtool_check(&body);
    }
}

#[test]
fn token_is_required_off_loopback_and_checked_everywhere_but_healthz() {
    let out = cmd().args(["serve", "--listen", "0.0.0.0:0"]).env_remove("WEBUI_DOCTOR_TOKEN").output().unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("refusing to listen on 0.0.0.0:0 without an access token"), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, "s3cret-token-0123456789\n").unwrap();
    // A token file others may read is refused, as ssh refuses such a key.
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let out =
        cmd().args(["serve", "--listen", "127.0.0.1:0", "--token-file", file.to_str().unwrap()]).output().unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("is readable by group or others (mode 644): chmod 600 it"), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let serve = Serve::start(&["--token-file", file.to_str().unwrap()]);
    let addr = serve.addr;
    let status = |path: &str, headers: &[(&str, &str)]| Http::connect(addr).get(path, headers).status;
    assert_eq!(status("/healthz", &[]), 200);
    for path in ["/", "/api/snapshot", "/api/events", "/metrics"] {
        assert_eq!(status(path, &[]), 401, "{path} without a token");
        assert_eq!(status(path, &[("Authorization", "Bearer wrong")]), 401, "{path} with a wrong token");
    }
    assert_eq!(status("/api/snapshot", &[("Authorization", "Bearer s3cret-token-0123456789")]), 200);
    // The scheme is case-insensitive (RFC 9110).
    assert_eq!(status("/api/snapshot", &[("Authorization", "bearer s3cret-token-0123456789")]), 200);
    assert_eq!(status("/api/snapshot", &[("Authorization", "BEARER s3cret-token-0123456789")]), 200);
    assert_eq!(status("/metrics", &[("Authorization", "Bearer s3cret-token-0123456789")]), 200);

    // The dashboard's login: the form sets an HttpOnly, SameSite=Strict cookie holding a random
    // session id, never the token (cookies are not isolated by port).
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let wrong = Http::connect(addr).request("POST", "/login", &form, "token=nope");
    assert_eq!(wrong.status, 401);
    let ok = Http::connect(addr).request("POST", "/login", &form, "token=s3cret-token-0123456789");
    assert_eq!(ok.status, 303);
    let cookie = ok.header("set-cookie").unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("s3cret-token-0123456789"), "the cookie carries the token: {cookie}");
    assert!(cookie.contains("Max-Age="), "{cookie}");
    let pair = cookie.split(';').next().unwrap();
    let (name, id) = pair.split_once('=').unwrap();
    assert_eq!(name, "webui_doctor_session");
    assert_eq!(id.len(), 64, "{id}");
    assert_eq!(status("/", &[("Cookie", pair)]), 200);
    assert_eq!(status("/api/snapshot", &[("Cookie", pair)]), 200);
    // Another log-in gets another session.
    let again = Http::connect(addr).request("POST", "/login", &form, "token=s3cret-token-0123456789");
    assert_ne!(again.header("set-cookie").unwrap().split(';').next().unwrap(), pair);
    // The token itself in a cookie is no credential, nor is a made-up session.
    assert_eq!(status("/api/snapshot", &[("Cookie", "webui_doctor_token=s3cret-token-0123456789")]), 401);
    assert_eq!(status("/api/snapshot", &[("Cookie", "webui_doctor_session=s3cret-token-0123456789")]), 401);
    assert_eq!(status("/api/snapshot", &[("Cookie", &format!("webui_doctor_session={}", "0".repeat(64)))]), 401);

    // A non-loopback bind starts when the token comes from the environment.
    let open = Serve::start_with_env(
        &["--listen", "0.0.0.0:0", "--allow-plain-http"],
        &[("WEBUI_DOCTOR_TOKEN", "env-token-0123456789abcdef")],
    );
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], open.port()));
    assert_eq!(
        Http::connect(local).get("/metrics", &[("Authorization", "Bearer env-token-0123456789abcdef")]).status,
        200
    );
    assert_eq!(Http::connect(local).get("/metrics", &[]).status, 401);
}

#[test]
fn caps_answer_503_and_recover() {
    let serve = Serve::start(&["--max-sse-clients", "2", "--max-connections", "4", "--snapshot-period", "1000"]);
    let a = Http::open_events(serve.addr, &[]);
    let b = Http::open_events(serve.addr, &[]);
    let third = Http::connect(serve.addr).get("/api/events", &[]);
    assert_eq!(third.status, 503);
    // Wait until the server has closed its side of that refused request's connection.
    let port = serve.port().to_string();
    assert!(wait_until(Duration::from_secs(2), || {
        json(&["sockets", "--sport", &port, "--state", "established"])["summary"]["total"] == 2
    }));
    // Two streams, one idle connection and one request fill the four slots; a fifth is refused.
    let _idle = Http::connect(serve.addr);
    let mut fourth = Http::connect(serve.addr);
    assert_eq!(fourth.get("/healthz", &[]).status, 200);
    let refused = Http::connect(serve.addr).get("/healthz", &[]);
    assert_eq!(refused.status, 503);
    drop((a, b, fourth));
    assert!(wait_until(Duration::from_secs(2), || {
        let mut c = Http::connect(serve.addr);
        c.get("/healthz", &[("Connection", "close")]).status == 200
    }));
    let again = Http::open_events(serve.addr, &[]);
    drop(again);
    assert!(scrape_ok(&serve, "webui_doctor_server_requests_rejected_total{reason=\"max_sse_clients\"}") >= 1.0);
}

fn scrape_ok(serve: &Serve, series: &str) -> f64 {
    let text = get(serve.addr, "/metrics").body;
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok())).unwrap_or(-1.0)
}

/// SIGTERM (and SIGINT) with open SSE streams: every stream ends, and the process exits 0
/// within 2 s.
#[test]
fn graceful_shutdown_ends_open_streams() {
    let mut interrupted = Serve::start(&["--snapshot-period", "1000"]);
    let mut stream = Http::open_events(interrupted.addr, &[]);
    stream.next_snapshot(Duration::from_secs(3));
    let (code, _) = interrupted.signal(libc::SIGINT, Duration::from_secs(2));
    assert_eq!(code, Some(0), "{}", interrupted.log());

    let mut serve = Serve::start(&["--snapshot-period", "1000"]);
    let mut streams: Vec<Http> = (0..5).map(|_| Http::open_events(serve.addr, &[])).collect();
    for s in &mut streams {
        s.next_snapshot(Duration::from_secs(3));
    }
    // A client connected that has sent nothing yet holds the shutdown no longer than one between
    // requests (not its 10 s head timeout, nor the 5 s grace).
    let _idle = std::net::TcpStream::connect(serve.addr).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let (code, took) = serve.terminate(Duration::from_secs(2));
    assert_eq!(code, Some(0), "exit within 2 s (took {took:?}): {}", serve.log());
    for s in &mut streams {
        // Each stream was ended by the server (HTTP's last chunk), not cut by the process dying.
        assert!(s.ends_with_last_chunk(Instant::now() + Duration::from_secs(1)), "a stream was not ended cleanly");
    }
    eprintln!("graceful shutdown with 5 open streams: {} ms", took.as_millis());
}

/// A client that never finishes its request header is disconnected after --header-timeout.
#[test]
fn header_timeout_disconnects_slow_clients() {
    use std::io::{Read, Write};
    let serve = Serve::start(&["--header-timeout", "1"]);
    let mut slow = std::net::TcpStream::connect(serve.addr).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n").unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let start = Instant::now();
    let mut buf = Vec::new();
    let _ = slow.read_to_end(&mut buf);
    let took = start.elapsed();
    assert!(took >= Duration::from_millis(900) && took < Duration::from_secs(3), "closed after {took:?}");
    assert_eq!(get(serve.addr, "/healthz").status, 200);
}

/// `/api/snapshot?limit=N&offset=M` pages through the sockets in urgency order (CLOSE-WAIT,
/// then retransmitting, then established without keepalive, then the rest), with the summary
/// and findings of them all.
#[test]
fn snapshot_pages_in_urgency_order() {
    let f = Fixture::new(false);
    let serve = Serve::start(&[]);
    let page = |query: &str| -> serde_json::Value {
        let r = get(serve.addr, &format!("/api/snapshot?port={}&{query}", f.port));
        assert_eq!(r.status, 200, "{}", r.body);
        serde_json::from_str(&r.body).unwrap()
    };
    let first = page("limit=2");
    assert_eq!(first["page"], serde_json::json!({ "offset": 0, "limit": 2, "total": 4 }));
    assert_eq!(first["summary"]["total"], 4, "the summary counts every socket");
    let states = |v: &serde_json::Value| -> Vec<(String, bool)> {
        v["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["state"].as_str().unwrap().to_owned(), s["timer"]["kind"] == "keepalive"))
            .collect()
    };
    assert_eq!(states(&first), [("close-wait".to_owned(), false), ("established".to_owned(), false)]);
    let rest = page("limit=2&offset=2");
    let mut rest_states = states(&rest);
    rest_states.sort();
    assert_eq!(rest_states, [("established".to_owned(), true), ("listening".to_owned(), false)]);
    assert_eq!(page("offset=10")["sockets"].as_array().unwrap().len(), 0);
    let bad = get(serve.addr, "/api/snapshot?limit=many");
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("limit: 'many' is not a count"), "{}", bad.body);
    // Without paging the document is as before: every socket, no "page".
    assert!(page("state=all").get("page").is_none());
}

/// A dashboard client that stops reading `/api/events` (its receive window closed) is ended by
/// the write-progress watchdog within its deadline + 1 s, even with no user timeout, and counted
/// in `webui_doctor_server_watchdog_ended_total`; `/healthz` names the deadline.
#[test]
fn serve_watchdog_ends_a_stalled_dashboard_stream() {
    let serve = Serve::start(&["--watchdog", "2", "--user-timeout", "0", "--snapshot-period", "0.02"]);
    let health: serde_json::Value = serde_json::from_str(&get(serve.addr, "/healthz").body).unwrap();
    assert_eq!(health["watchdog"]["deadline_s"], 2.0, "{health}");
    assert_eq!(health["watchdog"]["supported"], true, "{health}");
    let (_stalled, port) = Http::small_window(serve.addr).open("/api/events");
    let start = Instant::now();
    let ended = wait_until(Duration::from_secs(5), || {
        server_socket(serve.port(), port).is_none_or(|s| s["state"] != "established")
    });
    let after = start.elapsed();
    eprintln!("serve --watchdog 2: stalled /api/events reader ended after {:.2} s", after.as_secs_f64());
    assert!(ended && after <= Duration::from_secs(3), "still open after {after:?}");
    assert_eq!(scrape(&serve, "webui_doctor_server_watchdog_ended_total"), 1.0);
}

/// An SSE stream that is a connection's first request leaves hyper once its head is ready (and
/// is written by the accept loop); one that follows another request on the same connection stays
/// with hyper. A client cannot tell them apart: the same status and headers in the same order,
/// the same chunked framing of heartbeats and snapshots, and the closing chunk at shutdown.
#[test]
fn a_stream_written_outside_hyper_is_the_stream_hyper_writes() {
    let mut serve = Serve::start(&["--snapshot-period", "1000", "--heartbeat", "1"]);
    let mut first = Http::connect(serve.addr);
    let first_head = first.get_stream("/api/events", &[]);
    let mut later = Http::connect(serve.addr);
    assert_eq!(later.get("/healthz", &[]).status, 200);
    let later_head = later.get_stream("/api/events", &[]);
    let names = |h: &[(String, String)]| h.iter().map(|(k, _)| k.to_ascii_lowercase()).collect::<Vec<_>>();
    assert_eq!(names(&first_head), names(&later_head));
    let without_date = |h: &[(String, String)]| h.iter().filter(|(k, _)| k != "date").cloned().collect::<Vec<_>>();
    assert_eq!(without_date(&first_head), without_date(&later_head));
    assert!(first_head.iter().any(|(k, v)| k == "transfer-encoding" && v == "chunked"), "{first_head:?}");
    for events in [&mut first, &mut later] {
        assert!(events.next_snapshot(Duration::from_secs(3))["summary"]["total"].as_u64().is_some());
        let lines = events.sse_lines(Instant::now() + Duration::from_millis(2500));
        assert!(lines.iter().filter(|(_, l)| l == ": keepalive").count() >= 2, "{lines:?}");
    }
    serve.terminate(Duration::from_secs(5));
    for events in [&mut first, &mut later] {
        assert!(events.ends_with_last_chunk(Instant::now() + Duration::from_secs(5)));
    }
}
