//! `verify`, `verify --drill`, `sockets -O`, `--watch` and the diagnosis, against real servers
//! and real sockets put into each situation.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::*;
use crate::util::*;

/// Drills clean up after each other (a drill deletes tables whose process is gone), so the tests
/// that drill take turns.
static DRILLS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn drill_turn() -> std::sync::MutexGuard<'static, ()> {
    DRILLS.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn verify_json(args: &[&str]) -> (i32, Value, String) {
    subcommand_json("verify", args)
}

/// The system keepalive defaults, as `SO_KEEPALIVE` alone uses them.
fn sysctl(name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}")).unwrap().trim().parse().unwrap()
}

#[test]
fn verify_reports_the_real_option_values() {
    if !require(is_root(), "root (pidfd_getfd on the server)") {
        return;
    }
    // 10/5/3 with a 25 s user timeout: every value exact, exit 0.
    let good = Serve::start(&["--snapshot-period", "1000"]);
    let addr = good.addr.to_string();
    let (status, v, err) = verify_json(&[
        &addr,
        "--stream",
        "/api/events",
        "--expect-idle",
        "10",
        "--expect-interval",
        "5",
        "--expect-count",
        "3",
        "--expect-user-timeout",
        "25",
    ]);
    assert_eq!(status, 0, "{v:#}\n{err}");
    assert_eq!(
        v["options"],
        serde_json::json!({"so_keepalive": true, "tcp_nodelay": true, "keepidle_s": 10, "keepintvl_s": 5,
                           "keepcnt": 3, "user_timeout_ms": 25000})
    );
    assert_eq!(v["keepalive_armed"], true);
    assert_eq!(v["process"]["pid"], good.pid());
    assert_eq!(v["detect"], serde_json::json!({"idle_ms": 25000, "busy_ms": 25000, "retries_ms": 924_600}));
    assert!(v["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true), "{v:#}");
    // A wrong expectation fails with the measured value in the message.
    let (status, v, err) = verify_json(&[&addr, "--stream", "/api/events", "--expect-idle", "30"]);
    assert_eq!(status, 1);
    let idle = v["checks"].as_array().unwrap().iter().find(|c| c["check"] == "idle").unwrap();
    assert_eq!(idle["message"], "idle is 10 s (expected 30 s)");
    assert_eq!(err, "webui-doctor: verify failed: failed checks: idle\n");
    // In text, each failed check is printed once: its FAIL line on stdout, its name on stderr.
    let out = run(&["verify", &addr, "--stream", "/api/events", "--expect-idle", "30", "--expect-count", "9"]);
    assert_eq!(code(&out), 1);
    let all = stdout(&out) + &stderr(&out);
    assert_eq!(all.matches("idle is 10 s (expected 30 s)").count(), 1, "{all}");
    assert_eq!(all.matches("count is 3 (expected 9)").count(), 1, "{all}");
    assert_eq!(stderr(&out), "webui-doctor: verify failed: failed checks: idle, count\n");

    // No keepalive: exit 1, and it says why.
    let off = Serve::start(&["--no-keepalive", "--snapshot-period", "1000"]);
    let out = run(&["verify", &off.addr.to_string(), "--stream", "/api/events"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out)
            .contains("FAIL keepalive: SO_KEEPALIVE is off: a client that vanishes without a FIN is never dropped")
    );
    assert!(stderr(&out).contains("failed checks: keepalive"), "{}", stderr(&out));
    assert!(stdout(&out).contains("timer: none"), "{}", stdout(&out));
    assert!(stdout(&out).ends_with("FAIL\n"));
    // The bound it leaves reads as a sentence.
    assert!(
        stdout(&out)
            .contains("a dead peer is never dropped on an idle connection (keepalive off), and after about 15 min"),
        "{}",
        stdout(&out)
    );
    assert!(!stdout(&out).contains("after never"), "{}", stdout(&out));
}

/// A server that sets SO_KEEPALIVE and nothing else inherits the system timings: verify flags
/// the detection time they give (2 h 11 min with the kernel defaults).
#[test]
fn verify_flags_keepalive_with_system_default_timings() {
    if !require(is_root(), "root (pidfd_getfd)") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        socket2::SockRef::from(&s).set_keepalive(true).unwrap();
        std::thread::sleep(Duration::from_secs(3));
    });
    let out = run(&["verify", &addr.to_string()]);
    let detect_ms =
        (sysctl("tcp_keepalive_time") + sysctl("tcp_keepalive_intvl") * sysctl("tcp_keepalive_probes")) * 1000;
    let text = stdout(&out);
    assert!(text.contains(&format!("TCP_KEEPIDLE={}s", sysctl("tcp_keepalive_time"))), "{text}");
    let expected = webui_doctor::units::long_duration(detect_ms);
    assert!(text.contains(&format!("dropped after {expected} on an idle connection")), "{text}");
    assert_eq!(code(&out), if detect_ms > 300_000 { 1 } else { 0 }, "{text}");
    server.join().unwrap();
}

/// As `nobody`, the server's socket options cannot be read: verify says so and judges from the
/// keepalive timer — a fallback, not an error.
#[test]
fn verify_falls_back_to_the_timer_without_permission() {
    if !require(is_root(), "root (to switch to nobody)") {
        return;
    }
    let serve = Serve::start(&["--snapshot-period", "1000"]);
    let out = run_as_nobody(&["verify", &serve.addr.to_string(), "--stream", "/api/events", "--expect-idle", "10"]);
    let text = stdout(&out);
    assert_eq!(code(&out), 0, "{text}\n{}", stderr(&out));
    assert!(text.contains("options: not readable"), "{text}");
    assert!(text.contains("judging from the timer"), "{text}");
    assert!(text.contains("keepalive idle time inferred from the timer: about 10 s"), "{text}");
    assert!(text.contains("ok   keepalive: the keepalive timer is armed"), "{text}");
    assert!(text.contains("??   max-detect"), "{text}");
}

fn drill_tables() -> Vec<String> {
    let out = Command::new("nft").args(["list", "tables", "inet"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("table inet ").map(str::to_owned))
        .filter(|t| t.starts_with(webui_doctor::drill::TABLE_PREFIX))
        .collect()
}

/// Sockets of the connection between `client` and `server` (either side): after a drill,
/// none may be left.
fn connections_left(client: &str, server: &str) -> Vec<Value> {
    let port = client.rsplit(':').next().unwrap();
    let v = json(&["sockets", "--sport", port]);
    let w = json(&["sockets", "--dport", port]);
    v["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .chain(w["sockets"].as_array().unwrap())
        .filter(|s| (s["local"] == client && s["peer"] == server) || (s["local"] == server && s["peer"] == client))
        .cloned()
        .collect()
}

#[test]
fn drill_measures_the_drop_and_cleans_up() {
    if !require(have_nft(), "root and nftables") {
        return;
    }
    let _turn = drill_turn();
    let fast = Serve::start(&[
        "--keepalive-idle",
        "2",
        "--keepalive-interval",
        "1",
        "--keepalive-count",
        "3",
        "--snapshot-period",
        "1000",
    ]);
    let off = Serve::start(&["--no-keepalive", "--snapshot-period", "1000"]);
    let off_addr = off.addr.to_string();
    let other =
        std::thread::spawn(move || verify_json(&[&off_addr, "--stream", "/api/events", "--drill", "--timeout", "4"]));
    let (code, v, err) =
        verify_json(&[&fast.addr.to_string(), "--stream", "/api/events", "--drill", "--timeout", "10"]);
    assert_eq!(code, 0, "{v:#}\n{err}");
    let dropped = v["drill"]["dropped_after_ms"].as_u64().expect("dropped");
    eprintln!("drill at 2/1/3: dropped after {dropped} ms, probes {}", v["drill"]["probes"]);
    assert!((3500..=6500).contains(&dropped), "dropped after {dropped} ms, expected 5 ± 1.5 s");
    let probes: Vec<u64> =
        v["drill"]["probes"].as_array().unwrap().iter().map(|p| p["count"].as_u64().unwrap()).collect();
    assert_eq!(probes.iter().max(), Some(&3), "{probes:?}");
    assert!(connections_left(v["client"].as_str().unwrap(), v["server"].as_str().unwrap()).is_empty());

    let (code, v, err) = other.join().unwrap();
    assert_eq!(code, 1, "{err}");
    assert!(v["drill"]["dropped_after_ms"].is_null(), "{v:#}");
    assert!(err.contains("did not drop the vanished client within 4 s"), "{err}");
    assert!(
        connections_left(v["client"].as_str().unwrap(), v["server"].as_str().unwrap()).is_empty(),
        "a connection was left"
    );
    assert!(!drill_tables().iter().any(|t| t.ends_with(&format!("_{}", std::process::id()))));
}

/// Starts a drill (text output) against a server without keepalive and returns the child, its
/// table name and the client address once the rule is in place.
fn start_drill(serve: &Serve, timeout: &str) -> (std::process::Child, String, String, Vec<String>) {
    let mut child = cmd()
        .args(["verify", &serve.addr.to_string(), "--stream", "/api/events", "--drill", "--timeout", timeout])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let table = format!("{}{}", webui_doctor::drill::TABLE_PREFIX, child.id());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut client = String::new();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push(line.clone());
        if let Some(rest) = line.strip_prefix("drill: dropping the server's packets to ") {
            client = rest.split(';').next().unwrap().to_owned();
            break;
        }
    }
    assert!(!client.is_empty(), "{seen:?}");
    assert!(wait_until(Duration::from_secs(2), || drill_tables().contains(&table)), "rule installed");
    // Keep reading in the background so the child never blocks on a full pipe.
    let rest = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<String>>());
    let _ = rest;
    (child, table, client, seen)
}

/// SIGINT, SIGTERM, SIGHUP (the terminal went away) or SIGQUIT in the middle of a drill: the
/// rule and the connection go, exit code 130.
#[test]
fn interrupted_drill_leaves_nothing_behind() {
    if !require(have_nft(), "root and nftables") {
        return;
    }
    let _turn = drill_turn();
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
        let serve = Serve::start(&["--no-keepalive", "--snapshot-period", "1000"]);
        let (mut child, table, client, _) = start_drill(&serve, "30");
        std::thread::sleep(Duration::from_millis(500));
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(child.id() as i32, signal) };
        let start = Instant::now();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "signal {signal}");
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(!drill_tables().contains(&table), "table {table} left behind after signal {signal}");
        let server = serve.addr.to_string();
        assert!(
            wait_until(Duration::from_secs(2), || connections_left(&client, &server).is_empty()),
            "signal {signal}: {:?}",
            connections_left(&client, &server)
        );
    }
}

/// SIGKILL runs no cleanup: the set element expires on its own shortly after the drill's
/// timeout, and the next drill deletes the dead process's table.
#[test]
fn killed_drill_expires_and_is_cleaned_up_by_the_next() {
    if !require(have_nft(), "root and nftables") {
        return;
    }
    let _turn = drill_turn();
    let serve = Serve::start(&["--no-keepalive", "--snapshot-period", "1000"]);
    let (mut child, table, _client, _) = start_drill(&serve, "2");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(drill_tables().contains(&table), "the table outlives a SIGKILL");
    let elements = || {
        let out = Command::new("nft").args(["list", "set", "inet", &table, "blocked4"]).output().unwrap();
        assert!(out.status.success(), "the table {table} is gone before its element expired");
        String::from_utf8_lossy(&out.stdout).contains("elements =")
    };
    assert!(elements(), "the block is in place right after the kill");
    let start = Instant::now();
    assert!(wait_until(Duration::from_secs(12), || !elements()), "the element did not expire");
    eprintln!("killed drill: block expired {:.1} s after the kill", start.elapsed().as_secs_f64());
    // The next drill removes the dead process's table.
    let (code, _, _) = verify_json(&[&serve.addr.to_string(), "--stream", "/api/events", "--drill", "--timeout", "1"]);
    assert_eq!(code, 1);
    assert!(!drill_tables().contains(&table), "stale table {table} survived the next run");
}

#[test]
fn drill_needs_root() {
    if !require(is_root(), "root (to switch to nobody)") {
        return;
    }
    let serve = Serve::start(&["--snapshot-period", "1000"]);
    let out =
        run_as_nobody(&["verify", &serve.addr.to_string(), "--stream", "/api/events", "--drill", "--timeout", "2"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--drill needs root"), "{}", stderr(&out));
}

/// `sockets -O` reads the same values from the server's socket as `verify`.
#[test]
fn sockopts_column_shows_the_servers_options() {
    if !require(is_root(), "root (pidfd_getfd)") {
        return;
    }
    let serve = Serve::start(&["--keepalive-idle", "7", "--snapshot-period", "1000"]);
    let (_events, client) = Http::open_stream(serve.addr);
    let client = client.to_string();
    let port = serve.port().to_string();
    let v = json(&["sockets", "-O", "--sport", &port, "--dport", &client]);
    let s = &v["sockets"][0];
    assert_eq!(s["sockopts"]["keepidle_s"], 7, "{s}");
    assert_eq!(s["sockopts"]["keepintvl_s"], 5);
    assert_eq!(s["sockopts"]["user_timeout_ms"], 22_000);
    assert_eq!(s["process"]["pid"], serve.pid());
    assert_eq!(v["attribution"]["sockopts_unread"], 0);
    let table = stdout(&run(&["sockets", "-O", "--sport", &port, "--dport", &client]));
    assert!(table.contains("keepalive 7s/5s/3 user-timeout 22s nodelay"), "{table}");
    // The listener is not verified by anybody's client; without -O there is no sockopts.
    assert!(json(&["sockets", "--sport", &port])["sockets"][0]["sockopts"].is_null());
}

fn codes(v: &Value) -> Vec<String> {
    v["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn close_wait_and_missing_keepalive_findings_follow_the_sockets() {
    let f = Fixture::new(false);
    let port = f.port.to_string();
    let v = json(&["sockets", "--port", &port, "-p"]);
    let finding = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "close-wait").expect("close-wait");
    let msg = finding["message"].as_str().unwrap();
    assert!(msg.starts_with(&format!("1 socket on :{port} in CLOSE-WAIT, owned by ")), "{msg}");
    assert!(msg.contains(&format!("(pid {})", std::process::id())), "{msg}");
    assert!(
        msg.ends_with(&format!(
            "keepalive will not clear these. `webui-doctor fix --port {port} --close-wait` ends them now"
        )),
        "{msg}"
    );
    assert_eq!(finding["cure"], format!("webui-doctor fix --port {port} --close-wait"));
    assert_eq!(finding["evidence"]["port"], f.port);
    let missing = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "keepalive-missing").unwrap();
    let text = missing["message"].as_str().unwrap();
    assert!(
        text.starts_with(&format!("1 of 2 established server-side sockets on :{port} have no keepalive timer")),
        "{text}"
    );

    // Only the keepalive connection, only established: neither finding.
    let peer = f.keepalive.server.peer_addr().unwrap().port().to_string();
    let v = json(&["sockets", "--port", &port, "--dport", &peer]);
    let c = codes(&v);
    assert!(!c.contains(&"close-wait".to_owned()) && !c.contains(&"keepalive-missing".to_owned()), "{c:?}");
    // check prints the findings too.
    let out = run(&["check", "--port", &port]);
    assert!(stdout(&out).contains("warning [close-wait]"), "{}", stdout(&out));
}

/// A server that keeps sending heartbeats to a vanished client, without a user timeout:
/// `dead-peer-retransmitting` appears once the retransmissions pile up, and not before.
#[test]
fn dead_peer_retransmitting_finding() {
    if !require(have_nft(), "root and nftables") {
        return;
    }
    let serve = Serve::start(&["--no-keepalive", "--heartbeat", "0.2", "--snapshot-period", "1000"]);
    let port = serve.port().to_string();
    let (_events, client) = Http::open_stream(serve.addr);
    assert!(!codes(&json(&["sockets", "--port", &port])).contains(&"dead-peer-retransmitting".to_owned()));
    let _rule = Blackhole::new(serve.port(), client);
    let found = wait_until(Duration::from_secs(8), || {
        codes(&json(&["sockets", "--port", &port])).contains(&"dead-peer-retransmitting".to_owned())
    });
    assert!(found, "{:#}", json(&["sockets", "--port", &port]));
    let v = json(&["sockets", "--port", &port]);
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "dead-peer-retransmitting").unwrap();
    assert!(f["message"].as_str().unwrap().contains("set TCP_USER_TIMEOUT"));
    assert!(f["evidence"]["unacked_bytes"].as_u64().unwrap() > 0);
    assert!(f["evidence"]["max_retransmits"].as_u64().unwrap() >= 3);
}

/// `keepalive-sysctl-slow` reads the namespace's own sysctls: present where they are the kernel
/// defaults and a connection relies on them, absent where they were lowered, absent where no
/// socket relies on them (with `-O`: every socket carries its own timings).
#[test]
fn slow_keepalive_sysctl_finding_follows_the_namespace() {
    if !require(is_root(), "root (ip netns add)") {
        return;
    }
    let slow = TestNetns::create("slow", 7200);
    let fast = TestNetns::create("fast", 60);
    let has = |args: &[&str]| codes(&json(args)).contains(&"keepalive-sysctl-slow".to_owned());
    // Nothing in the namespace relies on its sysctls yet.
    assert!(!has(&["sockets", "--netns", &slow.0]));
    let relying = slow.connection(None);
    let v = json(&["sockets", "--netns", &slow.0]);
    let f = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "keepalive-sysctl-slow").cloned();
    let f = f.unwrap_or_else(|| panic!("{v:#}"));
    assert!(f["message"].as_str().unwrap().starts_with("net.ipv4.tcp_keepalive_time is 7200 s"), "{f}");
    assert!(has(&["sockets", "--netns", &slow.0, "-O"]));
    drop(relying);
    // A connection with its own timings: -O knows it does not rely on the sysctls.
    let _own = slow.connection(Some(10));
    assert!(!has(&["sockets", "--netns", &slow.0, "-O"]));
    let _fast = fast.connection(None);
    assert!(!has(&["sockets", "--netns", &fast.0]));
}

/// A namespace with its own `net.ipv4.tcp_keepalive_time`; deleted on drop.
struct TestNetns(String);

impl TestNetns {
    fn create(tag: &str, keepalive_time: u32) -> TestNetns {
        let name = format!("wd-test-{}-{tag}", std::process::id());
        assert!(Command::new("ip").args(["netns", "add", &name]).status().unwrap().success());
        let ns = TestNetns(name);
        // The interval and probe count follow the idle time, so "fast" is fast in all three.
        let (intvl, probes) = if keepalive_time > 600 { (75, 9) } else { (10, 3) };
        for set in [
            format!("net.ipv4.tcp_keepalive_time={keepalive_time}"),
            format!("net.ipv4.tcp_keepalive_intvl={intvl}"),
            format!("net.ipv4.tcp_keepalive_probes={probes}"),
        ] {
            let ok = Command::new("ip").args(["netns", "exec", &ns.0, "sysctl", "-qw", &set]).status();
            assert!(ok.is_ok_and(|s| s.success()), "sysctl {set} in {}", ns.0);
        }
        let up = Command::new("ip").args(["-n", &ns.0, "link", "set", "lo", "up"]).status();
        assert!(up.is_ok_and(|s| s.success()));
        ns
    }

    /// A loopback connection inside the namespace whose server side has SO_KEEPALIVE (and, with
    /// `idle`, its own TCP_KEEPIDLE); killed on drop.
    fn connection(&self, idle: Option<u32>) -> KillOnDrop {
        const SCRIPT: &str = "import socket, sys\n\
            l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\n\
            c = socket.create_connection(l.getsockname()); a = l.accept()[0]\n\
            a.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)\n\
            if sys.argv[1] != '-': a.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, int(sys.argv[1]))\n\
            print('ready', flush=True)\n\
            sys.stdin.read()\n";
        let idle = idle.map_or("-".to_owned(), |i| i.to_string());
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.0, "python3", "-c", SCRIPT, &idle])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        KillOnDrop(child)
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for TestNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `--watch`: repeated reports when piped; redrawn in place on a terminal.
#[test]
fn watch_repeats_the_report() {
    let f = Fixture::new(false);
    let port = f.port.to_string();
    let mut child =
        cmd().args(["sockets", "--port", &port, "--summary", "--watch", "0.3"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut reports = 0;
    let mut line = String::new();
    while reports < 3 && reader.read_line(&mut line).unwrap() > 0 {
        if line.starts_with("sockets: 4 ") {
            reports += 1;
        }
        assert!(!line.contains('\x1b'), "no escape codes when piped: {line:?}");
        line.clear();
    }
    assert_eq!(reports, 3);
    let _ = child.kill();
    let _ = child.wait();

    if require(std::path::Path::new("/usr/bin/script").exists(), "script (util-linux)") {
        let cmdline = format!(
            "timeout -s INT 1 {} sockets --port {port} --summary --watch 0.3",
            env!("CARGO_BIN_EXE_webui-doctor")
        );
        let out = Command::new("script").args(["-qec", &cmdline, "/dev/null"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.matches("\x1b[H\x1b[2J").count() >= 2, "{text:?}");
    }
}

/// A drill whose reader goes away (`verify --drill | head -3`): the next line it writes fails,
/// and it ends quietly with the rule and the connection removed, instead of panicking (101).
#[test]
fn drill_with_a_closed_stdout_cleans_up() {
    if !require(have_nft(), "root and nftables") {
        return;
    }
    let _turn = drill_turn();
    // Probes every second and no user timeout: the drill has a line to print each second.
    let serve = Serve::start(&[
        "--keepalive-idle",
        "1",
        "--keepalive-interval",
        "1",
        "--keepalive-count",
        "20",
        "--user-timeout",
        "0",
        "--snapshot-period",
        "1000",
    ]);
    let mut child = cmd()
        .args(["verify", &serve.addr.to_string(), "--stream", "/api/events", "--drill", "--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let table = format!("{}{}", webui_doctor::drill::TABLE_PREFIX, child.id());
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let client = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.strip_prefix("drill: dropping the server's packets to ").map(|r| r.split(';').next().unwrap().to_owned())
        })
        .expect("the drill started");
    drop(lines); // the reader goes away
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the drill went on with nobody reading");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!drill_tables().contains(&table), "table {table} left behind");
    let server = serve.addr.to_string();
    assert!(wait_until(Duration::from_secs(2), || connections_left(&client, &server).is_empty()));
}

/// A server that sets keepalive a moment after `accept()` (here 400 ms, as a thread pool that is
/// busy might): verify waits for it, within a bound, instead of reading too early.
#[test]
fn verify_waits_for_options_set_after_accept() {
    if !require(is_root(), "root (pidfd_getfd on the server process)") {
        return;
    }
    let script = "import socket, sys, threading, time\n\
                  s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n\
                  print(s.getsockname()[1], flush=True)\n\
                  def late(c):\n    time.sleep(0.4)\n\
                  \x20   c.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)\n\
                  \x20   c.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)\n\
                  \x20   c.recv(1)\n\
                  while True:\n    c, _ = s.accept(); threading.Thread(target=late, args=(c,), daemon=True).start()\n";
    let mut server = Command::new("python3").args(["-c", script]).stdout(Stdio::piped()).spawn().unwrap();
    let mut port = String::new();
    BufReader::new(server.stdout.as_mut().unwrap()).read_line(&mut port).unwrap();
    let (status, v, err) = verify_json(&[&format!("127.0.0.1:{}", port.trim()), "--expect-idle", "10"]);
    let _ = server.kill();
    let _ = server.wait();
    assert_eq!(v["options"]["so_keepalive"], true, "{v:#}\n{err}");
    assert_eq!(v["options"]["keepidle_s"], 10, "{v:#}");
    assert_eq!(status, 1, "keepalive without a user timeout fails max-detect only: {err}");
    assert_eq!(err, "webui-doctor: verify failed: failed checks: max-detect\n");
}

/// A server whose workers are all busy (here: one that never calls `accept`): verify says the
/// connection waited in the listen queue and how many wait there, exits 2, and leaves no
/// connection of its own behind (checked with `ss`: only the listener and the queued connection
/// that was there before remain).
#[test]
fn verify_names_a_queued_connection_and_removes_it() {
    let script = "import socket, sys\n\
                  s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(8)\n\
                  c = socket.create_connection(s.getsockname())\n\
                  print(s.getsockname()[1], flush=True)\nsys.stdin.read()\n";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let port: u16 = line.trim().parse().unwrap();
    let before = ss_sockets(port).len();
    assert_eq!(before, 3, "listener, one queued connection and its client: {:?}", ss_sockets(port));
    let out = run(&["verify", &format!("127.0.0.1:{port}")]);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("accepted by no worker within 3 s"), "{err}");
    assert!(err.contains("waited in the listen queue, which holds 2"), "{err}");
    let after = ss_sockets(port);
    drop(child.stdin.take());
    let _ = child.wait();
    assert_eq!(after.len(), before, "verify left a connection behind: {after:?}");
    assert!(after.iter().all(|s| s.state != "CLOSE-WAIT"), "{after:?}");
}
