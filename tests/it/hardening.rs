//! What a hostile page, a local user or a careless flag can do, each tried for real: durations
//! that would panic or overflow, DNS rebinding and cross-site requests against `serve`, requests
//! that multiply work when cancelled, slow bodies, one address taking every slot, cookies that
//! leak the token, terminal escapes in process names, environment overrides under set-uid, and
//! sockets in a `net_cls` cgroup.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::*;
use crate::util::*;

/// Every duration flag: zero, under a millisecond and out of range are usage errors (exit 2,
/// one line naming the flag), never a panic or a silently wrapped number.
#[test]
fn out_of_range_durations_are_usage_errors() {
    let cases: &[&[&str]] = &[
        &["serve", "--snapshot-period", "1e-10"],
        &["serve", "--snapshot-period", "0"],
        &["serve", "--heartbeat", "0.0004"],
        &["serve", "--header-timeout", "0"],
        &["serve", "--body-timeout=-1.5"],
        &["serve", "--header-timeout", "1e400"],
        &["serve", "--heartbeat", "1e12"],
        &["serve", "--user-timeout", "5000000"],
        &["serve", "--user-timeout", "0.0001"],
        &["serve", "--keepalive-idle", "0"],
        &["serve", "--keepalive-idle", "40000"],
        &["serve", "--keepalive-count", "200"],
        &["sockets", "--watch", "0"],
        &["sockets", "--watch", "NaN"],
        &["verify", "127.0.0.1:1", "--expect-user-timeout", "5000000"],
        &["verify", "127.0.0.1:1", "--max-detect", "inf"],
        &["verify", "127.0.0.1:1", "--drill", "--timeout", "0.00001"],
    ];
    for args in cases {
        let out = run(args);
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: one line, got {err:?}");
        let flag = args.iter().rev().find(|a| a.starts_with("--")).unwrap().split('=').next().unwrap();
        assert!(err.starts_with("webui-doctor: invalid value") && err.contains(flag), "{args:?}: {err}");
    }
    // The edges themselves are accepted: a millisecond, and the largest user timeout.
    let out = run(&["verify", "127.0.0.1:1", "--expect-user-timeout", "4294967.295", "--max-detect", "0.001"]);
    assert!(!stderr(&out).contains("invalid value"), "{}", stderr(&out));
}

/// One request, written raw (so a test controls every header), answered on a closed connection.
fn raw(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("{head}Connection: close\r\n\r\n").as_bytes()).unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    let status = text.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, text)
}

fn get_with(addr: SocketAddr, path: &str, host: &str, extra: &str) -> u16 {
    raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{extra}")).0
}

/// Without a token only a Host that names this server is served: a page that rebinds its own
/// name to 127.0.0.1 gets 403 everywhere; `--allow-host` adds a name.
#[test]
fn dns_rebinding_hosts_are_refused() {
    let serve = Serve::start(&["--snapshot-period", "1000", "--allow-host", "dash.example"]);
    let (addr, port) = (serve.addr, serve.port());
    for path in ["/", "/api/snapshot", "/api/events", "/metrics", "/healthz"] {
        let rebound = get_with(addr, path, &format!("attacker.example:{port}"), "");
        assert_eq!(rebound, 403, "{path} with a rebinding Host");
        assert_eq!(get_with(addr, path, "127.0.0.1:1", ""), 403, "{path}: another port");
    }
    for host in
        [format!("127.0.0.1:{port}"), format!("localhost:{port}"), format!("dash.example:{port}"), "LOCALHOST".into()]
    {
        assert_eq!(get_with(addr, "/api/snapshot", &host, ""), 200, "Host {host}");
    }
    let (status, text) = raw(addr, "GET /api/snapshot HTTP/1.1\r\nHost: attacker.example\r\n");
    assert_eq!(status, 403);
    assert!(text.contains("this Host is not served"), "{text}");
    // The refusals are counted.
    let metrics = get(addr, "/metrics").body;
    let refused = metrics
        .lines()
        .find_map(|l| l.strip_prefix("webui_doctor_server_requests_refused_total{reason=\"host\"} "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap();
    assert!(refused >= 11, "{refused}");

    // With a token, the token decides, whatever the Host.
    let dir = tempfile::tempdir().unwrap();
    let guarded = Serve::start(&["--token-file", &token_file(&dir, "tok-0123456789abcdef")]);
    let name = format!("dash.internal:{}", guarded.port());
    assert_eq!(get_with(guarded.addr, "/api/snapshot", &name, "Authorization: Bearer tok-0123456789abcdef\r\n"), 200);
    assert_eq!(get_with(guarded.addr, "/api/snapshot", &name, ""), 401);
}

/// Cross-site requests to the API, the SSE stream and /metrics are refused; the same origin
/// and a link to the page itself are not. Every answer carries nosniff and a strict CSP.
#[test]
fn cross_site_requests_are_refused_and_headers_are_strict() {
    let serve = Serve::start(&["--snapshot-period", "1000"]);
    let (addr, host) = (serve.addr, serve.addr.to_string());
    for path in ["/api/events", "/api/snapshot", "/metrics"] {
        assert_eq!(get_with(addr, path, &host, "Origin: http://evil.example\r\n"), 403, "{path} cross-origin");
        assert_eq!(get_with(addr, path, &host, "Origin: null\r\n"), 403, "{path} opaque origin");
        assert_eq!(get_with(addr, path, &host, "Sec-Fetch-Site: cross-site\r\n"), 403, "{path} cross-site");
    }
    assert_eq!(get_with(addr, "/api/snapshot", &host, &format!("Origin: http://{host}\r\n")), 200);
    assert_eq!(get_with(addr, "/api/snapshot", &host, "Sec-Fetch-Site: same-origin\r\n"), 200);
    assert_eq!(get_with(addr, "/", &host, "Sec-Fetch-Site: cross-site\r\n"), 200, "a link to the dashboard");
    assert_eq!(
        raw(
            addr,
            &format!("POST /login HTTP/1.1\r\nHost: {host}\r\nOrigin: http://evil.example\r\nContent-Length: 0\r\n")
        )
        .0,
        403
    );

    for path in ["/", "/api/snapshot", "/healthz", "/assets/dashboard.js", "/nope"] {
        let r = Http::connect(addr).get(path, &[("Connection", "close")]);
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"), "{path}");
        let csp = r.header("content-security-policy").unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
    }
    let page = get(addr, "/").body;
    assert!(!page.contains("<script>") && !page.contains("<style>") && !page.contains("style=\""), "inline code");
}

/// `processes=1` names every user's processes: refused unless the operator allows it.
#[test]
fn process_owners_need_allow_processes() {
    let serve = Serve::start(&["--snapshot-period", "1000"]);
    for path in ["/api/snapshot?processes=1", "/api/snapshot?pid=1", "/api/snapshot?process=init"] {
        let r = get(serve.addr, path);
        assert_eq!(r.status, 403, "{path}");
        assert!(r.body.contains("--allow-processes"), "{}", r.body);
    }
    assert_eq!(get(serve.addr, "/api/snapshot").status, 200);
    let allowed = Serve::start(&["--snapshot-period", "1000", "--allow-processes"]);
    let port = allowed.port();
    let r = get(allowed.addr, &format!("/api/snapshot?processes=1&port={port}&state=listening"));
    assert_eq!(r.status, 200);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["sockets"][0]["process"]["pid"], allowed.pid(), "{v:#}");
}

/// Processes holding many open files, so that each `/proc/*/fd` scan takes a while.
struct FdHolders(Vec<Child>);

impl FdHolders {
    fn start(processes: usize, files: usize) -> FdHolders {
        let script = "import os, sys\nfds = [os.open('/dev/null', os.O_RDONLY) for _ in range(int(sys.argv[1]))]\n\
                      print('ready', flush=True)\nsys.stdin.read()\n";
        let mut holders = FdHolders(
            (0..processes)
                .map(|_| {
                    Command::new("python3")
                        .args(["-c", script, &files.to_string()])
                        .stdin(Stdio::piped())
                        .stdout(Stdio::piped())
                        .spawn()
                        .expect("python3")
                })
                .collect(),
        );
        for child in &mut holders.0 {
            let mut line = String::new();
            BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
            assert_eq!(line.trim(), "ready");
        }
        holders
    }
}

impl Drop for FdHolders {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn threads_and_fds(pid: u32) -> (usize, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let threads = status.lines().find_map(|l| l.strip_prefix("Threads:")?.trim().parse().ok()).unwrap();
    (threads, std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count())
}

/// 100 `/api/snapshot?processes=1` requests, each abandoned after 20 ms, on a host with 114,000
/// open files: the reads stay bounded (the permit lives in the read, not the request), so
/// threads and descriptors stay flat. Before, this drove the server to 171 threads and 1,028 fds.
#[test]
fn cancelled_requests_do_not_multiply_reads() {
    let _holders = FdHolders::start(6, 19_000);
    let serve = Serve::start(&["--snapshot-period", "1000", "--allow-processes"]);
    let (mut peak_threads, mut peak_fds) = (0, 0);
    for i in 0..100 {
        let mut s = TcpStream::connect(serve.addr).unwrap();
        // Distinct queries, so no two share a read.
        let req = format!("GET /api/snapshot?processes=1&port={i} HTTP/1.1\r\nHost: {}\r\n\r\n", serve.addr);
        s.write_all(req.as_bytes()).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(s);
        let (t, f) = threads_and_fds(serve.pid());
        (peak_threads, peak_fds) = (peak_threads.max(t), peak_fds.max(f));
    }
    eprintln!("100 cancelled processes=1 requests: peak {peak_threads} threads, {peak_fds} open files");
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    // tokio's workers and the reads in flight (one per core), plus the process's own threads.
    assert!(peak_threads <= 2 * cores + 8, "{peak_threads} threads");
    assert!(peak_fds <= 400, "{peak_fds} open files");
    // Still serving, and a read that finishes is answered.
    assert!(wait_until(Duration::from_secs(20), || get(serve.addr, "/api/snapshot?processes=1&port=1").status == 200));
}

/// Identical requests inside one snapshot period share one read; past the read limit the answer
/// is 503 at once rather than a queue.
#[test]
fn identical_requests_share_one_read() {
    let serve = Serve::start(&["--snapshot-period", "3"]);
    let a = get(serve.addr, "/api/snapshot?state=listening");
    let b = get(serve.addr, "/api/snapshot?state=listening");
    let taken = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap()["taken_at"].clone();
    assert_eq!(taken(&a.body), taken(&b.body), "the second request reused the first read");
    let c = get(serve.addr, "/api/snapshot?state=established");
    assert_ne!(taken(&a.body), taken(&c.body), "another query is another read");
}

/// A `POST /login` body trickled a byte at a time cannot hold a slot: the connection is answered
/// 408 and closed at the body timeout. Bodies over 1 KiB get 413; other routes take no body.
#[test]
fn slow_and_large_bodies_are_cut() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(&dir, "tok-0123456789abcdef");
    let serve = Serve::start(&["--token-file", &file, "--body-timeout", "1", "--max-connections", "20"]);
    let addr = serve.addr;
    let start = Instant::now();
    let tricklers: Vec<std::thread::JoinHandle<(Duration, String)>> = (0..20)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let head = format!(
                    "POST /login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
                     Content-Length: 500\r\n\r\ntoken="
                );
                s.write_all(head.as_bytes()).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
                let t = Instant::now();
                let mut got = Vec::new();
                // One byte every 100 ms for up to 8 s, until the server answers and closes.
                for _ in 0..80 {
                    if s.write_all(b"a").is_err() {
                        break;
                    }
                    let mut buf = [0u8; 512];
                    match s.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(_) => {}
                    }
                }
                (t.elapsed(), String::from_utf8_lossy(&got).into_owned())
            })
        })
        .collect();
    // While they trickle, the server still has room once they are cut.
    for t in tricklers {
        let (took, answer) = t.join().unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
        assert!(took < Duration::from_secs(4), "cut after {took:?}");
    }
    eprintln!("20 trickled log-in bodies cut after {:?}", start.elapsed());
    assert_eq!(get(addr, "/healthz").status, 200);

    let big = format!("token={}", "a".repeat(2048));
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(Http::connect(addr).request("POST", "/login", &form, &big).status, 413);
    let with_body = Http::connect(addr).request("GET", "/healthz", &[("Connection", "close")], "x=1");
    assert_eq!(with_body.status, 413);
}

/// One client address cannot take every slot, nor the health check's: past
/// --max-connections-per-ip streams and requests in flight it gets 503 while `/healthz` still
/// answers 200; idle connections from it are capped at twice that.
#[test]
fn connections_per_address_are_capped() {
    let serve = Serve::start(&["--max-connections-per-ip", "3", "--snapshot-period", "1000"]);
    let streams: Vec<Http> = (0..3).map(|_| Http::open_events(serve.addr, &[])).collect();
    let (status, text) = raw(serve.addr, &format!("GET /api/snapshot HTTP/1.1\r\nHost: {}\r\n", serve.addr));
    assert_eq!(status, 503, "{text}");
    assert_eq!(get(serve.addr, "/healthz").status, 200, "the health check was refused");
    drop(streams);
    // Until the server has seen the three streams end, a request may still be turned away: each
    // such 503 is counted too, so the counter is the first rejection plus those.
    let mut rejected = 1;
    assert!(wait_until(Duration::from_secs(3), || {
        let status = get(serve.addr, "/api/snapshot").status;
        rejected += usize::from(status == 503);
        status == 200
    }));
    // Idle connections: twice the cap are held, the next is refused at accept.
    let held: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(serve.addr).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let (status, text) = raw(serve.addr, &format!("GET /healthz HTTP/1.1\r\nHost: {}\r\n", serve.addr));
    assert_eq!(status, 503, "{text}");
    rejected += 1;
    drop(held);
    assert!(wait_until(Duration::from_secs(3), || {
        let status = get(serve.addr, "/metrics").status;
        rejected += usize::from(status == 503);
        status == 200
    }));
    let metrics = get(serve.addr, "/metrics").body;
    let want = format!("webui_doctor_server_requests_rejected_total{{reason=\"max_connections_per_ip\"}} {rejected}");
    assert!(metrics.contains(&want), "{want} missing in\n{metrics}");
}

/// A python3 process whose command name (comm) is `name`, holding a listening socket.
struct NamedListener {
    child: Child,
    port: u16,
}

impl NamedListener {
    fn start(name: &[u8]) -> NamedListener {
        let script = "import ctypes, socket, sys\n\
                      ctypes.CDLL(None).prctl(15, bytes.fromhex(sys.argv[1]), 0, 0, 0)\n\
                      s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
                      c = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.shutdown(socket.SHUT_WR)\n\
                      print(s.getsockname()[1], flush=True)\nsys.stdin.read()\n";
        let hex: String = name.iter().map(|b| format!("{b:02x}")).collect();
        let mut child = Command::new("python3")
            .args(["-c", script, &hex])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        NamedListener { port: line.trim().parse().unwrap(), child }
    }
}

impl Drop for NamedListener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A process name with terminal escapes (retitle the window, clear the screen) reaches the
/// terminal escaped, in the table and in the findings; JSON keeps the real name.
#[test]
fn escape_laden_process_names_are_printed_escaped() {
    let evil = b"\x1b]0;PWN\x07\x1b[2J";
    let server = NamedListener::start(evil);
    let port = server.port.to_string();
    let out = run(&["sockets", "-p", "--port", &port]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0);
    assert!(!text.contains('\x1b') && !text.contains('\x07'), "raw escapes reached the terminal: {text:?}");
    assert!(text.contains("\\x1b]0;PWN\\x07\\x1b[2J"), "{text}");
    // The CLOSE-WAIT finding names the owner too; `check` prints it.
    let check = stdout(&run(&["check", "-p", "--port", &port]));
    assert!(!check.contains('\x1b') && check.contains("owned by \\x1b]0;PWN"), "{check:?}");
    let v = json(&["sockets", "-p", "--port", &port]);
    assert_eq!(v["sockets"][0]["process"]["comm"], "\u{1b}]0;PWN\u{7}\u{1b}[2J");
}

/// No raw control or Unicode format character (here ESC, BEL and a right-to-left override)
/// reaches a reader, in the table, the JSON (which still decodes to the real name) or the
/// Prometheus labels.
#[test]
fn control_and_format_characters_never_reach_a_reader_raw() {
    let name = "\u{1b}]0;x\u{7}\u{202e}";
    let server = NamedListener::start(name.as_bytes());
    let port = server.port.to_string();
    let raw =
        |text: &str| text.chars().find(|&c| (c.is_control() && c != '\n') || ('\u{2000}'..='\u{206f}').contains(&c));
    let table = stdout(&run(&["sockets", "-p", "--port", &port]));
    assert_eq!(raw(&table), None, "{table:?}");
    assert!(table.contains("\\x1b]0;x\\x07\\u{202e}"), "{table}");
    let out = run(&["sockets", "-p", "--port", &port, "--format", "json"]);
    let text = stdout(&out);
    assert_eq!(raw(&text), None, "{text:?}");
    assert!(text.contains("\\u001b]0;x\\u0007\\u202e"), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["sockets"][0]["process"]["comm"], name);
    let prom = stdout(&run(&["sockets", "-p", "--port", &port, "--format", "prometheus"]));
    assert_eq!(raw(&prom), None, "{prom:?}");
    assert!(prom.contains("comm=\"\\\\x1b]0;x\\\\x07\\\\u{202e}\""), "{prom}");
    let check = stdout(&run(&["check", "-p", "--port", &port]));
    assert_eq!(raw(&check), None, "{check:?}");
}

/// `PROC_ROOT` (and the other path overrides) are ignored when the binary runs with privileges
/// its caller lacks: a set-uid copy run as `nobody` reads the real /proc, not the caller's tree.
#[test]
fn path_overrides_are_ignored_under_setuid() {
    if !require(is_root(), "root (a set-uid copy and setpriv)") {
        return;
    }
    // A fake table with one listening socket on port 9 (the discard port, never used here).
    let fixture = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(fixture.path().join("net")).unwrap();
    std::fs::write(
        fixture.path().join("net/tcp"),
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
         0: 0100007F:0009 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1\n",
    )
    .unwrap();
    let (_dir, copy) = binary_copy(0o755);
    use std::os::unix::fs::PermissionsExt;
    for p in [fixture.path(), &fixture.path().join("net")] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(fixture.path().join("net/tcp"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let as_nobody = |bin: &std::path::Path| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin)
            .args(["sockets", "--source", "procfs", "--port", "9", "--format", "json"])
            .env("PROC_ROOT", fixture.path())
            .env_remove("SUDO_UID")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["summary"]["total"].as_u64().unwrap()
    };
    // Not set-uid: the caller's override is honoured (it is the caller's own privilege).
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(as_nobody(&copy), 1, "the fixture is read without set-uid");
    // Set-uid root: ignored, so the real /proc is read (nothing listens on port 9).
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o4755)).unwrap();
    assert_eq!(as_nobody(&copy), 0, "PROC_ROOT was honoured by a set-uid binary");
}

/// `pidfd_getfd` would re-tag a socket in a `net_cls` cgroup with our class id: `-O` leaves such
/// owners alone and says so, unless `--force`.
#[test]
fn sockopts_skip_net_cls_owners_unless_forced() {
    if !require(is_root(), "root (cgroups and pidfd_getfd)") {
        return;
    }
    let server = NamedListener::start(b"netcls-server");
    let cg = NetCls::new();
    if !require(cg.is_some(), "the cgroup-v1 net_cls controller") {
        return;
    }
    let mut cg = cg.unwrap();
    let group = cg.group("server", "0x100001");
    NetCls::enter(&group, server.child.id());
    let port = server.port.to_string();
    let v = json(&["sockets", "-O", "--port", &port, "--state", "listening"]);
    assert!(v["sockets"][0]["sockopts"].is_null(), "{v:#}");
    assert_eq!(v["attribution"]["sockopts_skipped_net_cls"], 1, "{v:#}");
    let table = stdout(&run(&["sockets", "-O", "--port", &port, "--state", "listening"]));
    assert!(table.contains("left alone because their owner is in a net_cls/net_prio cgroup"), "{table}");
    let forced = json(&["sockets", "-O", "--force", "--port", &port, "--state", "listening"]);
    assert_eq!(forced["sockets"][0]["sockopts"]["so_keepalive"], false, "{forced:#}");
    assert_eq!(forced["attribution"]["sockopts_skipped_net_cls"], 0);
    // fix honours the same rule: the listener is skipped (exit 1, the reason on stderr) and left
    // as it was; with --force it is fixed.
    let out = run(&["fix", "--port", &port, "--format", "json"]);
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listen = v["sockets"].as_array().unwrap().iter().find(|s| s["role"] == "listening").unwrap().clone();
    assert_eq!(listen["action"], "skipped", "{v:#}");
    assert!(stderr(&out).contains("net_cls/net_prio cgroup"), "{}", stderr(&out));
    assert_eq!(
        json(&["sockets", "-O", "--force", "--port", &port, "--state", "listening"])["sockets"][0]["sockopts"]["so_keepalive"],
        false
    );
    let out = run(&["fix", "--port", &port, "--force"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let fixed = json(&["sockets", "-O", "--force", "--port", &port, "--state", "listening"]);
    assert_eq!(fixed["sockets"][0]["sockopts"]["so_keepalive"], true);
    drop(server);
}

/// `keepalive-missing` is about servers: a client's own outgoing connection without keepalive
/// (its local port is not listening) does not raise it; the server side does.
#[test]
fn keepalive_missing_counts_server_side_sockets_only() {
    // A listener on P and a client bound to P+1, so one `--sport P-(P+1)` selects both sides.
    let (listener, client_port) = loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            break (l, p + 1);
        }
    };
    let port = listener.local_addr().unwrap().port();
    let client = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    client.set_reuse_address(true).unwrap();
    client.bind(&SocketAddr::from(([127, 0, 0, 1], client_port)).into()).unwrap();
    client.connect(&listener.local_addr().unwrap().into()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let codes = |v: &serde_json::Value| -> Vec<String> {
        v["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_owned()).collect()
    };
    let range = format!("{port}-{client_port}");
    // Server side with keepalive, client side without: no finding.
    socket2::SockRef::from(&server).set_keepalive(true).unwrap();
    let v = json(&["sockets", "--sport", &range]);
    assert_eq!(v["summary"]["keepalive"]["established"], 2, "{v:#}");
    assert!(!codes(&v).contains(&"keepalive-missing".to_owned()), "{v:#}");
    // Server side without: the finding, counting that one socket only.
    socket2::SockRef::from(&server).set_keepalive(false).unwrap();
    let v = json(&["sockets", "--sport", &range]);
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "keepalive-missing").expect("finding");
    assert_eq!(f["evidence"]["without_keepalive"], 1, "{f}");
    assert_eq!(f["evidence"]["established"], 1, "{f}");
}
