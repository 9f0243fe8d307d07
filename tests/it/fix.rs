//! `webui-doctor fix` against a real, running Python server (the standard library's
//! `ThreadingHTTPServer`, no keepalive, an SSE route): the options reach the listening socket, a
//! connection opened before the fix and every connection after it; CLOSE-WAIT sockets end; the
//! drill proves the drop; and nothing outside the selection changes.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::server::Blackhole;
use crate::util::*;

/// A `ThreadingHTTPServer` whose `/events` writes an SSE comment every `period` seconds, one
/// thread per connection, and sets no socket option. Killed on drop.
pub struct PyServer {
    child: Child,
    pub port: u16,
}

const PY_SERVER: &str = r#"
import http.server, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path.startswith("/events"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b": heartbeat\n\n")
                    self.wfile.flush()
                    time.sleep(float(sys.argv[1]))
            except OSError:
                return
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

impl PyServer {
    pub fn start(period_s: f64) -> PyServer {
        PyServer::on_port(period_s, 0)
    }

    pub fn on_port(period_s: f64, port: u16) -> PyServer {
        let mut child = Command::new("python3")
            .args(["-c", PY_SERVER, &period_s.to_string(), &port.to_string()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().unwrap()).read_line(&mut line).unwrap();
        PyServer { port: line.trim().parse().unwrap_or_else(|_| panic!("python server said {line:?}")), child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Opens `/events` and returns the stream once the first heartbeat arrived.
    pub fn stream(&self) -> TcpStream {
        let mut s = TcpStream::connect(self.addr()).unwrap();
        s.write_all(format!("GET /events HTTP/1.1\r\nHost: {}\r\n\r\n", self.addr()).as_bytes()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        while !line.starts_with(": heartbeat") {
            line.clear();
            r.read_line(&mut line).unwrap();
        }
        s
    }

    pub fn threads(&self) -> usize {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status.lines().find_map(|l| l.strip_prefix("Threads:")?.trim().parse().ok()).unwrap()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TIMINGS: [&str; 6] = ["--keepalive-idle", "2", "--keepalive-interval", "1", "--keepalive-count", "3"];

fn fix_json(args: &[&str]) -> (i32, Value, String) {
    subcommand_json("fix", args)
}

/// The listening socket's options, read the way `sockets -O` reads them.
fn listener_opts(port: u16) -> Value {
    let v = json(&["sockets", "-O", "--port", &port.to_string(), "--state", "listening"]);
    v["sockets"][0]["sockopts"].clone()
}

fn close_wait_count(port: u16) -> u64 {
    json(&["sockets", "--port", &port.to_string(), "--state", "close-wait"])["summary"]["total"].as_u64().unwrap()
}

const FIXED: &str =
    r#"{"so_keepalive":true,"tcp_nodelay":true,"keepidle_s":2,"keepintvl_s":1,"keepcnt":3,"user_timeout_ms":5000}"#;

/// The whole cure on a server that sets no option and writes every 60 s: before, verify fails;
/// a dry run changes nothing; the fix reaches the listener and a connection opened before it;
/// after, verify passes, the drill drops a vanished client within 5 ± 1.5 s, and so does the
/// connection that predates the fix. A second server on another port is never touched.
#[test]
fn fix_cures_a_running_python_server() {
    if !require(crate::server::have_nft(), "root and nftables (pidfd_getfd on the server, the drill)") {
        return;
    }
    let server = PyServer::start(60.0);
    let other = PyServer::start(60.0);
    let port = server.port.to_string();
    let before_fix = server.stream();
    let before_port = before_fix.local_addr().unwrap().port();
    // A socket of this test that uses the server's port number on another address: a client's
    // own connection, not the server's. The fix must leave it alone.
    let elsewhere = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bystander = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    bystander.bind(&std::net::SocketAddr::from(([127, 0, 0, 2], server.port)).into()).unwrap();
    bystander.connect(&elsewhere.local_addr().unwrap().into()).unwrap();
    let (_accepted, _) = elsewhere.accept().unwrap();

    // Before: keepalive is off.
    let out = run(&["verify", &server.addr(), "--stream", "/events"]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(stdout(&out).contains("SO_KEEPALIVE is off"), "{}", stdout(&out));
    // ... and names the cure, as the keepalive-missing finding does.
    let cure = format!("`webui-doctor fix --port {port}` puts keepalive on the running server");
    assert!(stdout(&out).contains(&cure), "{}", stdout(&out));
    let v = json(&["sockets", "--port", &port]);
    let missing = v["findings"].as_array().unwrap().iter().find(|f| f["code"] == "keepalive-missing").unwrap();
    assert_eq!(missing["cure"], format!("webui-doctor fix --port {port}"), "{missing}");

    // A dry run plans and changes nothing.
    let untouched = listener_opts(server.port);
    assert_eq!(untouched["so_keepalive"], false);
    let (status, plan, err) = fix_json(&[&["--port", &port, "--dry-run"][..], &TIMINGS].concat());
    assert_eq!(status, 0, "{err}");
    assert_eq!(plan["dry_run"], true);
    let actions: Vec<&str> =
        plan["sockets"].as_array().unwrap().iter().map(|s| s["action"].as_str().unwrap()).collect();
    assert!(actions.len() >= 2 && actions.iter().all(|a| *a == "would-set"), "{plan:#}");
    let listen = plan["sockets"].as_array().unwrap().iter().find(|s| s["role"] == "listening").unwrap();
    let planned: Vec<(&str, u64, u64)> = listen["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["option"].as_str().unwrap(), c["from"].as_u64().unwrap(), c["to"].as_u64().unwrap()))
        .collect();
    assert!(planned.contains(&("SO_KEEPALIVE", 0, 1)) && planned.contains(&("TCP_KEEPIDLE", 7200, 2)), "{planned:?}");
    assert_eq!(listener_opts(server.port), untouched, "a dry run changed the listener");

    // The fix: the listener and the connection opened before it carry all six, read back.
    let (status, report, err) = fix_json(&[&["--port", &port][..], &TIMINGS].concat());
    assert_eq!(status, 0, "{err}");
    let fixed: Value = serde_json::from_str(FIXED).unwrap();
    for s in report["sockets"].as_array().unwrap() {
        assert_eq!(s["action"], "set", "{s}");
        assert_eq!(s["after"], fixed, "{s}");
    }
    let pre = report["sockets"].as_array().unwrap().iter().find(|s| s["peer"] == format!("127.0.0.1:{before_port}"));
    assert!(pre.is_some(), "the connection opened before the fix was fixed too: {report:#}");
    assert_eq!(listener_opts(server.port), fixed);
    assert_eq!(listener_opts(other.port)["so_keepalive"], false, "the other server was touched");
    assert!(
        !report["sockets"].as_array().unwrap().iter().any(|s| s["local"] == format!("127.0.0.2:{port}")),
        "{report:#}"
    );
    assert!(!bystander.keepalive().unwrap(), "a socket of another process on the same port number was changed");

    // Running it again changes nothing, and says so.
    let out = run(&[&["fix", "--port", &port][..], &TIMINGS].concat());
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("nothing to change"), "{}", stdout(&out));

    // After: a new connection's accepted socket has all six; verify passes; the drill drops it.
    let out = run(&[
        "verify",
        &server.addr(),
        "--stream",
        "/events",
        "--expect-idle",
        "2",
        "--expect-interval",
        "1",
        "--expect-count",
        "3",
        "--expect-user-timeout",
        "5",
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let out = run(&["verify", &server.addr(), "--stream", "/events", "--drill", "--timeout", "10", "--format", "json"]);
    let v = strict_json(&out.stdout).unwrap();
    let dropped = v["drill"]["dropped_after_ms"].as_u64().unwrap_or_else(|| panic!("not dropped: {v:#}"));
    eprintln!("fixed python server: a vanished client was dropped after {dropped} ms");
    assert!((3500..=6500).contains(&dropped), "dropped after {dropped} ms");

    // The connection opened before the fix, blackholed, is dropped within the same bound. Its
    // keepalive timer has been running since the fix (each probe answered), so the next probe
    // is due anywhere from at once to the 2 s idle time away: dropped 3 (1 s x 3) to 5 s later.
    let _rule = Blackhole::new(server.port, before_port);
    let start = Instant::now();
    let gone = wait_until(Duration::from_secs(10), || {
        let v = json(&["sockets", "--sport", &port, "--dport", &before_port.to_string(), "--state", "established"]);
        v["summary"]["total"] == 0
    });
    let took = start.elapsed();
    eprintln!("fixed python server: the connection opened before the fix was dropped after {took:?}");
    assert!(gone && took >= Duration::from_millis(2900) && took <= Duration::from_millis(6500), "{took:?}");
    drop(before_fix);
}

/// CLOSE-WAIT sockets of a server that writes every half second: `--close-wait` ends them in
/// the kernel at once (`SOCK_DESTROY`), and each handler thread ends at its next write, which
/// fails. `--close-with shutdown` does the same through a copy of the owner's socket.
#[test]
fn close_wait_sockets_are_ended_and_their_threads_freed() {
    if !require(is_root(), "root (SOCK_DESTROY, pidfd_getfd)") {
        return;
    }
    for (how, closed_with) in [("auto", "destroy"), ("shutdown", "shutdown")] {
        let server = PyServer::start(0.5);
        let port = server.port.to_string();
        let baseline = server.threads();
        let clients: Vec<TcpStream> = (0..5).map(|_| server.stream()).collect();
        for c in &clients {
            c.shutdown(Shutdown::Write).unwrap();
        }
        assert!(wait_until(Duration::from_secs(3), || close_wait_count(server.port) == 5));
        assert_eq!(server.threads(), baseline + 5);
        // A dry run lists the five and closes none; --idle-over narrows the selection by idle time.
        let (_, plan, _) = fix_json(&["--port", &port, "--close-wait", "--close-with", how, "--dry-run"]);
        assert_eq!(plan["summary"]["close_wait"], 5, "{plan:#}");
        assert_eq!(close_wait_count(server.port), 5, "a dry run closed something");
        let (_, plan, _) = fix_json(&["--port", &port, "--close-wait", "--idle-over", "3600", "--dry-run"]);
        assert_eq!(plan["summary"]["close_wait"], 0, "none has been idle for an hour: {plan:#}");
        let (status, report, err) = fix_json(&["--port", &port, "--close-wait", "--close-with", how]);
        assert_eq!(status, 0, "{err}");
        let closed: Vec<&Value> =
            report["sockets"].as_array().unwrap().iter().filter(|s| s["role"] == "close-wait").collect();
        assert_eq!(closed.len(), 5, "{report:#}");
        assert!(closed.iter().all(|s| s["action"] == "closed" && s["closed_with"] == closed_with), "{report:#}");
        // Gone from the kernel's CLOSE-WAIT list (shutdown passes through LAST-ACK, briefly).
        let after = if how == "auto" { close_wait_count(server.port) } else { 0 };
        assert_eq!(after, 0, "SOCK_DESTROY leaves no CLOSE-WAIT at once");
        assert!(wait_until(Duration::from_secs(2), || close_wait_count(server.port) == 0), "{how}");
        // Each thread ends at its next write (every 0.5 s), which now fails.
        assert!(
            wait_until(Duration::from_secs(3), || server.threads() == baseline),
            "{how}: {} threads, {baseline} before the streams",
            server.threads()
        );
        eprintln!(
            "--close-with {how}: 5 CLOSE-WAIT before, {} after; threads back to {baseline}",
            close_wait_count(server.port)
        );
        drop(clients);
    }
}

/// What it refuses, and that a refusal changes nothing.
#[test]
fn fix_refuses_cleanly() {
    // Nothing listens there: exit 2, one line.
    let idle = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let free = idle.local_addr().unwrap().port();
    drop(idle);
    let out = run(&["fix", "--port", &free.to_string()]);
    assert_eq!(code(&out), 2);
    assert_eq!(stderr(&out), format!("webui-doctor: no listening TCP socket on port {free}\n"));
    let out = run(&["fix", "--pid", "4194304"]);
    assert_eq!((code(&out), stderr(&out)), (2, "webui-doctor: no process 4194304\n".into()));
    let out = run(&["fix"]);
    assert_eq!(code(&out), 2, "a port or a pid is required");

    if !require(is_root(), "root (a root-owned server and a run as nobody)") {
        return;
    }
    // As nobody against a root-owned server: exit 2 with what is needed; nothing changed.
    let server = PyServer::start(60.0);
    let _s = server.stream();
    let before = listener_opts(server.port);
    let out = run_as_nobody(&[&["fix", "--port", &server.port.to_string()][..], &TIMINGS].concat());
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("run as root") || err.contains("pidfd_getfd needs root"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert_eq!(listener_opts(server.port), before, "a refused fix changed the listener");
}

/// The `ExecStart` of `deploy/systemd/webui-doctor-fix@.service`, for port `port`, with this
/// build's binary in place of the installed one.
fn unit_command(port: u16) -> Vec<String> {
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/systemd/webui-doctor-fix@.service"))
            .expect("the systemd unit");
    let exec = unit.lines().find_map(|l| l.strip_prefix("ExecStart=")).expect("an ExecStart line");
    let mut words: Vec<String> = exec.split_whitespace().map(|w| w.replace("%i", &port.to_string())).collect();
    assert_eq!(words[0], "/usr/bin/webui-doctor");
    words.remove(0);
    words
}

/// `--follow` as the systemd unit runs it: the server restarts on the same port and the new
/// listening socket carries the options within two periods; SIGTERM ends it with exit 130.
#[test]
fn follow_fixes_a_restarted_server() {
    if !require(is_root(), "root (pidfd_getfd on the server)") {
        return;
    }
    let server = PyServer::start(60.0);
    let port = server.port;
    let mut args = unit_command(port);
    assert!(args.windows(2).any(|w| w == ["--follow", "2"]), "{args:?}");
    // The unit's command, with a shorter period and the test's timings.
    let at = args.iter().position(|a| a == "--follow").unwrap();
    args[at + 1] = "0.5".into();
    args.extend(TIMINGS.iter().map(|s| s.to_string()));
    let mut follow = cmd().args(&args).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.starts_with("fix: ")), "the first fix ran");
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<String>>());
    let fixed: Value = serde_json::from_str(FIXED).unwrap();
    assert_eq!(listener_opts(port), fixed);

    drop(server);
    let restarted = PyServer::on_port(60.0, port);
    let start = Instant::now();
    assert!(wait_until(Duration::from_secs(3), || listener_opts(port) == fixed), "the new listener was not fixed");
    let took = start.elapsed();
    eprintln!("--follow 0.5: the restarted server's listener carried the options after {took:?}");
    assert!(took <= Duration::from_millis(1500), "{took:?}: more than two periods (and a read)");

    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(follow.id() as i32, libc::SIGTERM) };
    let status = follow.wait().unwrap();
    assert_eq!(status.code(), Some(130), "an interrupted --follow exits 130");
    let log = log.join().unwrap();
    assert!(log.iter().any(|l| l.contains("applied") && l.contains("options set")), "{log:?}");
    drop(restarted);
}

/// The unit files are ones systemd accepts: no unknown key, no bad value (`systemd-analyze
/// verify`, with this build's binary in place of the installed one).
#[test]
fn systemd_units_verify() {
    if !require(Command::new("systemd-analyze").arg("--version").output().is_ok(), "systemd-analyze (systemd)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (file, instance) in [
        ("webui-doctor-fix@.service", "webui-doctor-fix@8787.service"),
        ("webui-doctor.service", "webui-doctor.service"),
    ] {
        let unit = std::fs::read_to_string(format!("{}/deploy/systemd/{file}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
            .replace("/usr/bin/webui-doctor", env!("CARGO_BIN_EXE_webui-doctor"));
        let path = dir.path().join(instance);
        std::fs::write(&path, unit).unwrap();
        let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).arg(&path).output().unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{file}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// Each unit keeps only what it needs: `systemd-analyze security --offline=yes` scores the
/// serve unit at most 2.0 and the fix unit at most 4.5 (lower is less exposed; 8.3 and 6.6 once).
#[test]
fn systemd_units_are_locked_down() {
    if !require(Command::new("systemd-analyze").arg("--version").output().is_ok(), "systemd-analyze (systemd)") {
        return;
    }
    for (file, most) in
        [("webui-doctor.service", 2.0), ("webui-doctor-fix@.service", 4.5), ("webui-doctor-persist@.service", 3.0)]
    {
        let path = format!("{}/deploy/systemd/{file}", env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--no-pager"])
            .arg(&path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let score: f64 = text
            .lines()
            .find_map(|l| {
                l.split("Overall exposure level for ")
                    .nth(1)?
                    .split(": ")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("{file}: no score in {text}{}", String::from_utf8_lossy(&out.stderr)));
        eprintln!("{file}: exposure {score}");
        assert!(score <= most, "{file} scores {score}, more than {most}");
    }
}

/// `fix --follow --format json` writes JSON lines from the first line: the report on one line,
/// then one object per event (here the server's restart).
#[test]
fn follow_json_is_json_lines_from_the_first() {
    if !require(is_root(), "root (pidfd_getfd on the server)") {
        return;
    }
    let server = PyServer::start(60.0);
    let port = server.port;
    let mut follow = cmd()
        .args(["fix", "--port", &port.to_string(), "--follow", "0.3", "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    drop(server);
    let restarted = PyServer::on_port(60.0, port);
    let mut seen = vec![first];
    for line in lines.by_ref().map_while(Result::ok) {
        let applied = line.contains("\"applied\"");
        seen.push(line);
        if applied {
            break;
        }
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(follow.id() as i32, libc::SIGTERM) };
    seen.extend(lines.map_while(Result::ok));
    assert_eq!(follow.wait().unwrap().code(), Some(130));
    drop(restarted);
    for line in &seen {
        let v = strict_json(line.as_bytes()).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        assert!(v.is_object(), "{line}");
    }
    assert!(strict_json(seen[0].as_bytes()).unwrap()["summary"].is_object(), "{}", seen[0]);
    assert!(seen.iter().any(|l| l.contains("\"event\":\"applied\"")), "{seen:?}");
}

/// Each command's `--format` help says what that command prints, not what `check` prints.
#[test]
fn format_help_is_each_commands_own() {
    let fix = stdout(&run(&["fix", "--help"]));
    let verify = stdout(&run(&["verify", "--help"]));
    let check = stdout(&run(&["check", "--help"]));
    assert!(check.contains("one line per rule"), "{check}");
    assert!(fix.contains("a table of each selected socket") && fix.contains("JSON lines from the first"), "{fix}");
    assert!(verify.contains("then PASS or FAIL"), "{verify}");
    for text in [&fix, &verify] {
        assert!(!text.contains("one line per rule"), "{text}");
    }
}
