//! Servers nobody here wrote, as they run: gunicorn with sync workers (installed into a
//! virtualenv by `tests/run-all.sh`), a Go `net/http` server (Debian's `golang-go`, built here)
//! and a Python server that sets its own keepalive on every connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{is_root, json, require, run, subcommand_json, wait_until};

/// A process started in its own process group, killed with the whole group on drop (a
/// pre-forking server's workers included), even when the test fails.
pub struct Group(Child);

impl Group {
    pub fn spawn(mut command: Command) -> Group {
        use std::os::unix::process::CommandExt;
        let child = command.process_group(0).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
        Group(child)
    }
}

impl Group {
    /// Waits (at most 20 s) until the server has forked `n` children: gunicorn binds, answers
    /// through its first worker and only then boots the others, and a worker booted after `fix`
    /// looked at the listener's owners is not one `fix` knows.
    pub fn wait_children(&self, n: usize) {
        let pid = self.0.id().to_string();
        let children = || {
            let Ok(dir) = std::fs::read_dir("/proc") else { return 0 };
            dir.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
                // The parent pid is the second field after the `(comm)`, which may hold spaces.
                .filter(|stat| stat.rsplit_once(") ").and_then(|(_, rest)| rest.split(' ').nth(1)) == Some(&pid))
                .count()
        };
        assert!(wait_until(Duration::from_secs(20), || children() >= n), "{n} workers did not start");
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = i32::try_from(self.0.id()).expect("pid");
        // SAFETY: kill has no memory preconditions; a negative pid names our child's group.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `gunicorn` from `WEBUI_DOCTOR_GUNICORN` or the test virtualenv (`target/test-venv`).
fn gunicorn() -> Option<PathBuf> {
    let path = std::env::var_os("WEBUI_DOCTOR_GUNICORN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/gunicorn"));
    path.exists().then_some(path)
}

/// A directory holding the WSGI app, and gunicorn to run it (`None`, the test skipped, outside
/// CI where the virtualenv is missing).
fn gunicorn_app() -> Option<(tempfile::TempDir, PathBuf)> {
    let Some(gunicorn) = gunicorn() else {
        require(false, "gunicorn in target/test-venv (tests/run-all.sh installs it)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), WSGI_APP).unwrap();
    Some((dir, gunicorn))
}

const WSGI_APP: &str = r#"
import time
def app(environ, start_response):
    if environ.get("PATH_INFO") == "/slow":
        time.sleep(float(environ.get("QUERY_STRING") or "30"))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
"#;

fn get_ok(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    reply.contains("ok")
}

/// Sends a request for `/slow` and closes: the client is gone, its request waits.
fn send_and_close(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /slow?30 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
}

fn ss_close_wait(port: u16) -> usize {
    let out = Command::new("ss").args(["-tanH", "state", "close-wait", &format!("sport = :{port}")]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// gunicorn's two sync workers are busy; five clients sent a request and left. Two wait in the
/// workers, three in the listen queue: `sockets` tells them apart, `fix --close-wait` ends all
/// five (`ss` counts none left), `check` then passes; live connections still queued are counted,
/// not claimed fixed.
#[test]
fn gunicorn_with_busy_workers_has_its_queue_seen_and_cured() {
    if !require(is_root(), "root (pidfd_getfd, SOCK_DESTROY)") {
        return;
    }
    let Some((dir, gunicorn)) = gunicorn_app() else { return };
    let port = free_port();
    let mut command = Command::new(gunicorn);
    command.args(["-w", "2", "-k", "sync", "-b", &format!("127.0.0.1:{port}"), "--timeout", "120", "app:app"]);
    command.current_dir(dir.path());
    let _server = Group::spawn(command);
    assert!(wait_until(Duration::from_secs(20), || get_ok(port)), "gunicorn did not start on :{port}");
    // Both workers answer before they are made busy.
    assert!(get_ok(port) && get_ok(port));

    for _ in 0..5 {
        send_and_close(port);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(
        wait_until(Duration::from_secs(5), || ss_close_wait(port) == 5),
        "ss: {} in CLOSE-WAIT",
        ss_close_wait(port)
    );

    let port_s = port.to_string();
    let doc = json(&["sockets", "--port", &port_s, "-p"]);
    assert_eq!(doc["summary"]["queued"]["close_wait"], 3, "{}", doc["summary"]);
    let queued: Vec<&serde_json::Value> =
        doc["sockets"].as_array().unwrap().iter().filter(|s| s["queued"] == true).collect();
    assert_eq!(queued.len(), 3);
    assert!(queued.iter().all(|s| s["inode"] == 0 && s["process"].is_null() && s["state"] == "close-wait"));
    let finding = |code: &str| doc["findings"].as_array().unwrap().iter().find(|f| f["code"] == code).cloned();
    let lq = finding("listen-queue").expect("a listen-queue finding");
    assert_eq!(lq["evidence"]["queued"], 3, "{lq}");
    assert_eq!(lq["evidence"]["close_wait"], 3);
    assert_eq!(lq["evidence"]["waiting"], 3);
    assert!(lq["evidence"]["backlog"].as_u64().unwrap() > 3);
    assert!(lq["message"].as_str().unwrap().contains("workers are busy"), "{lq}");
    let cw = finding("close-wait").expect("a close-wait finding");
    assert_eq!((cw["evidence"]["accepted"].as_u64(), cw["evidence"]["queued"].as_u64()), (Some(2), Some(3)), "{cw}");
    assert!(
        cw["message"].as_str().unwrap().starts_with(&format!("2 sockets on :{port} in CLOSE-WAIT, owned by gunicorn"))
    );
    // The table names them queued in place of an owner.
    let table = String::from_utf8(run(&["sockets", "--port", &port_s, "-p"]).stdout).unwrap();
    assert_eq!(
        table.lines().filter(|l| l.contains("CLOSE-WAIT") && l.trim_end().ends_with("queued")).count(),
        3,
        "{table}"
    );

    let check = run(&["check", "--port", &port_s]);
    assert_eq!(check.status.code(), Some(1), "check passes with five CLOSE-WAIT");
    assert!(String::from_utf8_lossy(&check.stderr).contains("3 of them in the listen queue"));

    let fixed = json(&["fix", "--port", &port_s, "--close-wait"]);
    let roles = |role: &str| fixed["sockets"].as_array().unwrap().iter().filter(|s| s["role"] == role).count();
    assert_eq!((roles("queued"), roles("close-wait")), (3, 2), "{fixed}");
    assert!(
        fixed["sockets"].as_array().unwrap().iter().filter(|s| s["role"] == "queued").all(|s| s["action"] == "closed")
    );
    assert_eq!(fixed["summary"]["queued"], 3);
    assert_eq!(fixed["summary"]["failed"], 0);
    assert_eq!(ss_close_wait(port), 0, "ss still shows CLOSE-WAIT on :{port}");
    let check = run(&["check", "--port", &port_s]);
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));

    // Two live clients wait behind the busy workers: no descriptor, so no options; counted.
    let _waiting: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(("127.0.0.1", port)).unwrap()).collect();
    let out = run(&["fix", "--port", &port_s]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 connections still in the listen queue keep the listener's options"), "{text}");
}

const GO_SERVER: &str = r#"package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// net/http as most Go services run it: net.Listen, then http.Serve. Go sets TCP_KEEPIDLE and
// TCP_KEEPINTVL 15 s on every connection it accepts.
func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	http.HandleFunc("/events", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for {
			if _, err := fmt.Fprint(w, ": heartbeat\n\n"); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(time.Second)
		}
	})
	http.Serve(ln, nil)
}
"#;

/// A Python server that, like many, sets its own keepalive on each connection it accepts.
const PY_OVERRIDING: &str = r#"
import http.server, socket, sys, time
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def setup(self):
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 15)
        super().setup()
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        try:
            while True:
                self.wfile.write(b": heartbeat\n\n")
                self.wfile.flush()
                time.sleep(1)
        except OSError:
            return
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// A running `fix --follow`, ended with SIGTERM on drop (also when the test fails).
struct Follow(Child);

impl Drop for Follow {
    fn drop(&mut self) {
        let pid = i32::try_from(self.0.id()).expect("pid");
        // SAFETY: kill has no memory preconditions.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

/// Starts `command` (in its own process group) and reads the port it prints first.
fn start_printing_port(mut command: Command) -> (Group, u16) {
    use std::io::BufRead;
    use std::os::unix::process::CommandExt;
    let mut child = command.process_group(0).stdout(Stdio::piped()).spawn().expect("spawn the server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port = line.trim().parse().unwrap_or_else(|_| panic!("the server said {line:?}"));
    (Group(child), port)
}

/// Builds the Go server with Debian's golang-go, in `dir`.
fn go_server(dir: &std::path::Path) -> Option<PathBuf> {
    go_build(dir, GO_SERVER)
}

/// Builds `source` with Debian's golang-go, in `dir`.
fn go_build(dir: &std::path::Path, source: &str) -> Option<PathBuf> {
    let have_go = Command::new("go").arg("version").output().is_ok_and(|o| o.status.success());
    if !require(have_go, "go (golang-go)") {
        return None;
    }
    std::fs::write(dir.join("main.go"), source).unwrap();
    let out = Command::new("go")
        .args(["build", "-o", "server", "main.go"])
        .current_dir(dir)
        .env("GOCACHE", dir.join("cache"))
        .env("GOPATH", dir.join("gopath"))
        .env("GOFLAGS", "-mod=mod")
        .env("HOME", dir)
        .output()
        .expect("go build");
    assert!(out.status.success(), "go build: {}", String::from_utf8_lossy(&out.stderr));
    Some(dir.join("server"))
}

/// Opens the server's event stream and waits for its first heartbeat.
fn stream(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    assert!(n > 0, "no reply from :{port}");
    s
}

/// The options the server's side of `client` carries, as `sockets -O` reads them.
pub fn carried(port: u16, client: &TcpStream) -> serde_json::Value {
    let peer = client.local_addr().unwrap().to_string();
    let doc = json(&["sockets", "--sport", &port.to_string(), "-O", "--state", "established"]);
    doc["sockets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["peer"] == peer)
        .map(|s| s["sockopts"].clone())
        .unwrap_or_default()
}

/// A server that sets its own options on every connection: `fix` says so and exits 1 (0 with
/// `--allow-override`); `fix --follow 0.5` cures each new connection within a period (read back
/// with `sockets -O`), and `verify --expect-*` then passes.
fn override_is_reported_and_followed(port: u16, own: &[(&str, u64)]) {
    let port_s = port.to_string();
    let out = run(&["fix", "--port", &port_s, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "fix accepted an override: {}", String::from_utf8_lossy(&out.stdout));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let next = &report["next"][0];
    assert_eq!(next["verdict"], "overrides", "{next}");
    for (option, value) in own {
        assert!(
            next["overridden"].as_array().unwrap().iter().any(|o| o["option"] == *option && o["carried"] == *value),
            "{option} {value} not named: {next}"
        );
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("the server sets its own {} {} s", own[0].0, own[0].1)), "{stderr}");
    // fix's own connection is gone.
    assert!(wait_until(Duration::from_secs(2), || crate::util::ss_sockets(port)
        .iter()
        .all(|s| s.state != "CLOSE-WAIT")));
    assert!(run(&["fix", "--port", &port_s, "--allow-override"]).status.success());

    let mut follow = Follow(
        crate::util::cmd()
            .args(["fix", "--port", &port_s, "--follow", "0.5", "--format", "json"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut out = follow.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = String::new();
        let _ = out.read_to_string(&mut lines);
        lines
    });
    std::thread::sleep(Duration::from_secs(3));
    let client = stream(port);
    let cured = wait_until(Duration::from_secs(3), || {
        let o = carried(port, &client);
        o["keepidle_s"] == 10 && o["keepintvl_s"] == 5 && o["keepcnt"] == 3 && o["user_timeout_ms"] == 25000
    });
    assert!(cured, "the new connection kept {}", carried(port, &client));
    verify_carries(port, Some("/events"), (10, 5, 3, 25), 60);
    drop(follow);
    let lines = reader.join().unwrap();
    // JSON lines from the first line on, and a `connections` event for the new connection.
    let events: Vec<serde_json::Value> =
        lines.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect();
    assert!(events.iter().all(serde_json::Value::is_object));
    assert!(events.iter().any(|e| e["event"] == "connections"), "{lines}");
}

#[test]
fn go_net_http_overrides_and_every_command_agrees() {
    if !require(is_root(), "root (pidfd_getfd)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(binary) = go_server(dir.path()) else { return };
    let (_server, port) = start_printing_port(Command::new(binary));
    let port_s = port.to_string();

    // Unfixed: Go's 15/15 over the sysctl count, no user timeout.
    let client = stream(port);
    assert!(wait_until(Duration::from_secs(2), || carried(port, &client)["keepidle_s"] == 15));
    let doc = json(&["sockets", "--port", &port_s, "-O"]);
    let finding = doc["findings"].as_array().unwrap().iter().find(|f| f["code"] == "no-user-timeout").cloned();
    let finding = finding.unwrap_or_else(|| panic!("no no-user-timeout finding: {}", doc["findings"]));
    assert_eq!(finding["evidence"]["sockets"], 1);
    assert_eq!(finding["evidence"]["busy_ms"], 924_600);
    let check = run(&["check", "--port", &port_s, "-O", "--max-detect", "60"]);
    assert_eq!(check.status.code(), Some(1), "{}", String::from_utf8_lossy(&check.stdout));
    assert!(String::from_utf8_lossy(&check.stdout).contains("FAIL max-detect"));
    let without = run(&["check", "--port", &port_s, "--max-detect", "60"]);
    assert_eq!(without.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&without.stderr).contains("--max-detect needs -O"));
    let (code, verify, _) = subcommand_json("verify", &[&format!("127.0.0.1:{port}"), "--max-detect", "60"]);
    assert_eq!(code, 1, "{verify}");
    let max_detect = verify["checks"].as_array().unwrap().iter().find(|c| c["check"] == "max-detect").cloned().unwrap();
    assert_eq!(max_detect["ok"], false, "verify disagrees with check: {max_detect}");
    drop(client);

    override_is_reported_and_followed(port, &[("TCP_KEEPIDLE", 15), ("TCP_KEEPINTVL", 15)]);
}

#[test]
fn a_python_server_setting_its_own_keepidle_is_reported_and_followed() {
    if !require(is_root(), "root (pidfd_getfd)") {
        return;
    }
    let mut command = Command::new("python3");
    command.args(["-c", PY_OVERRIDING]);
    let (_server, port) = start_printing_port(command);
    override_is_reported_and_followed(port, &[("TCP_KEEPIDLE", 15)]);
}

// ---------------------------------------------------------------------------------------------
// The code fix for each server tried (README, "Servers tried"), checked against the real server:
// unfixed, `fix` cures it from outside (except where the server overrides, above); fixed in its
// own code, `verify` finds the values on every connection with no `fix` at all.

/// `verify` against `127.0.0.1:port` expecting these values (user timeout in seconds, 0: none).
fn verify_carries(port: u16, stream: Option<&str>, (idle, interval, count, ut): (u32, u32, u32, u32), max: u32) {
    let addr = format!("127.0.0.1:{port}");
    let values = [idle.to_string(), interval.to_string(), count.to_string(), ut.to_string(), max.to_string()];
    let mut args = vec![
        "verify",
        &addr,
        "--expect-idle",
        &values[0],
        "--expect-interval",
        &values[1],
        "--expect-count",
        &values[2],
        "--expect-user-timeout",
        &values[3],
        "--max-detect",
        &values[4],
    ];
    if let Some(path) = stream {
        args.extend(["--stream", path]);
    }
    let out = run(&args);
    assert!(
        out.status.success(),
        "verify {args:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The unfixed server: `fix` (default 10/5/3, 25 s) reaches its next connection, and verify
/// agrees.
fn fix_reaches(port: u16, stream: Option<&str>) {
    let (code, report, err) = subcommand_json("fix", &["--port", &port.to_string()]);
    assert_eq!(code, 0, "{report}\n{err}");
    assert_eq!(report["next"][0]["verdict"], "carries", "{}", report["next"]);
    verify_carries(port, stream, (10, 5, 3, 25), 60);
}

fn wait_ready(port: u16) {
    assert!(wait_until(Duration::from_secs(20), || get_ok(port)), "the server did not answer on :{port}");
}

const PY_CODE_FIX: &str = r#"
import http.server, socket, sys
class H(http.server.BaseHTTPRequestHandler):
    def setup(self):
        if sys.argv[1] == "fixed":
            s = self.request
            s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 25000)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

#[test]
fn python_threading_server_code_fix_and_fix() {
    if !require(is_root(), "root (pidfd_getfd)") {
        return;
    }
    for variant in ["plain", "fixed"] {
        let mut command = Command::new("python3");
        command.args(["-c", PY_CODE_FIX, variant]);
        let (_server, port) = start_printing_port(command);
        match variant {
            "fixed" => verify_carries(port, None, (10, 5, 3, 25), 60),
            _ => fix_reaches(port, None),
        }
    }
}

/// gunicorn: the options on the listening sockets once they exist (`when_ready`, in the master,
/// before the workers fork), so every worker's accepted socket inherits them.
const GUNICORN_CONF: &str = r#"
import socket
def when_ready(server):
    for listener in server.LISTENERS:
        s = listener.sock
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 25000)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
"#;

#[test]
fn gunicorn_code_fix_and_fix() {
    if !require(is_root(), "root (pidfd_getfd)") {
        return;
    }
    let Some((dir, gunicorn)) = gunicorn_app() else { return };
    std::fs::write(dir.path().join("keepalive.conf.py"), GUNICORN_CONF).unwrap();
    for fixed in [false, true] {
        let port = free_port();
        let mut command = Command::new(&gunicorn);
        command.args(["-w", "2", "-b", &format!("127.0.0.1:{port}"), "app:app"]).current_dir(dir.path());
        if fixed {
            command.args(["-c", "keepalive.conf.py"]);
        }
        let server = Group::spawn(command);
        wait_ready(port);
        server.wait_children(2);
        if fixed { verify_carries(port, None, (10, 5, 3, 25), 60) } else { fix_reaches(port, None) }
    }
}

/// uvicorn: a socket made (and given the options) before uvicorn serves on it.
const UVICORN_APP: &str = r#"
import socket, sys, uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"3")]})
    await send({"type": "http.response.body", "body": b"ok\n"})
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
if sys.argv[1] == "fixed":
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 5)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 25000)
sock.bind(("127.0.0.1", 0))
print(sock.getsockname()[1], flush=True)
uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
"#;

#[test]
fn uvicorn_code_fix_and_fix() {
    if !require(is_root(), "root (pidfd_getfd)") {
        return;
    }
    let Some(gunicorn) = gunicorn() else {
        require(false, "the test virtualenv (tests/run-all.sh installs gunicorn and uvicorn)");
        return;
    };
    let python = gunicorn.with_file_name("python");
    let has_uvicorn = Command::new(&python).args(["-c", "import uvicorn"]).status().is_ok_and(|s| s.success());
    if !require(has_uvicorn, "uvicorn in target/test-venv") {
        return;
    }
    for variant in ["plain", "fixed"] {
        let mut command = Command::new(&python);
        command.args(["-c", UVICORN_APP, variant]);
        let (_server, port) = start_printing_port(command);
        wait_ready(port);
        if variant == "fixed" { verify_carries(port, None, (10, 5, 3, 25), 60) } else { fix_reaches(port, None) }
    }
}

/// nginx: `so_keepalive=10s:5s:3` on the listen directive; it has no user timeout, so data in
/// flight stays bounded only by tcp_retries2. The unfixed one uses `reuseport` (a listener per
/// worker).
#[test]
fn nginx_code_fix_and_fix() {
    if !require(is_root(), "root (pidfd_getfd)") {
        return;
    }
    let nginx = PathBuf::from("/usr/sbin/nginx");
    if !require(nginx.exists(), "nginx (Debian package nginx)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (variant, listen) in [("plain", "reuseport"), ("fixed", "so_keepalive=10s:5s:3")] {
        let port = free_port();
        let d = dir.path().join(variant);
        std::fs::create_dir_all(&d).unwrap();
        let t = d.display();
        let conf = format!(
            "daemon off; worker_processes 2; pid {t}/nginx.pid; error_log {t}/error.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {t}/b; proxy_temp_path {t}/p; fastcgi_temp_path {t}/f;\n\
             uwsgi_temp_path {t}/u; scgi_temp_path {t}/s;\n\
             server {{ listen 127.0.0.1:{port} {listen}; location / {{ return 200 \"ok\\n\"; }} }} }}\n"
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let mut command = Command::new(&nginx);
        command.args(["-e", &format!("{t}/error.log"), "-c", &format!("{t}/nginx.conf")]);
        let _server = Group::spawn(command);
        wait_ready(port);
        if variant == "fixed" {
            verify_carries(port, None, (10, 5, 3, 0), 1000);
        } else {
            fix_reaches(port, None);
        }
    }
}

/// Node: `setKeepAlive` on each connection (libuv then sets a 1 s interval and 10 probes); Node
/// has no user timeout.
const NODE_SERVER: &str = r#"
const http = require("http");
const server = http.createServer((req, res) => res.end("ok\n"));
if (process.argv.includes("fixed")) server.on("connection", (s) => s.setKeepAlive(true, 10000));
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
"#;

#[test]
fn node_code_fix_and_fix() {
    if !require(is_root(), "root (pidfd_getfd)") {
        return;
    }
    let has_node = Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    if !require(has_node, "node") {
        return;
    }
    for variant in ["plain", "fixed"] {
        let mut command = Command::new("node");
        command.args(["-e", NODE_SERVER, "--", variant]);
        let (_server, port) = start_printing_port(command);
        if variant == "fixed" { verify_carries(port, None, (10, 1, 10, 0), 1000) } else { fix_reaches(port, None) }
    }
}

/// Go: no keepalive of Go's own (`KeepAlive: -1`), the options on the listener instead, which
/// every accepted connection inherits (Go 1.19, Debian's; 1.23's `KeepAliveConfig` sets the same
/// three on each connection).
const GO_CODE_FIX: &str = r#"package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"syscall"
	"context"
)

func main() {
	lc := net.ListenConfig{
		KeepAlive: -1,
		Control: func(network, address string, c syscall.RawConn) error {
			var err error
			c.Control(func(fd uintptr) {
				for _, o := range [][3]int{
					{syscall.SOL_SOCKET, syscall.SO_KEEPALIVE, 1},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPIDLE, 10},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPINTVL, 5},
					{syscall.IPPROTO_TCP, syscall.TCP_KEEPCNT, 3},
					{syscall.IPPROTO_TCP, 0x12, 25000}, // TCP_USER_TIMEOUT
				} {
					if e := syscall.SetsockoptInt(int(fd), o[0], o[1], o[2]); e != nil {
						err = e
					}
				}
			})
			return err
		},
	}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	os.Stdout.Sync()
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok\n") }))
}
"#;

#[test]
fn go_code_fix() {
    if !require(is_root(), "root (pidfd_getfd)") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let Some(binary) = go_build(dir.path(), GO_CODE_FIX) else { return };
    let (_server, port) = start_printing_port(Command::new(binary));
    verify_carries(port, None, (10, 5, 3, 25), 60);
}
