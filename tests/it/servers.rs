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
    let Some(gunicorn) = gunicorn() else {
        require(false, "gunicorn in target/test-venv (tests/run-all.sh installs it)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("app.py"), WSGI_APP).unwrap();
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
    let have_go = Command::new("go").arg("version").output().is_ok_and(|o| o.status.success());
    if !require(have_go, "go (golang-go)") {
        return None;
    }
    std::fs::write(dir.join("main.go"), GO_SERVER).unwrap();
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
fn carried(port: u16, client: &TcpStream) -> serde_json::Value {
    let peer = client.local_addr().unwrap().to_string();
    let doc = json(&["sockets", "--port", &port.to_string(), "-O", "--state", "established"]);
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

    let follow = crate::util::cmd()
        .args(["fix", "--port", &port_s, "--follow", "0.5", "--format", "json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let client = stream(port);
    let cured = wait_until(Duration::from_secs(3), || {
        let o = carried(port, &client);
        o["keepidle_s"] == 10 && o["keepintvl_s"] == 5 && o["keepcnt"] == 3 && o["user_timeout_ms"] == 25000
    });
    let verified = run(&[
        "verify",
        &format!("127.0.0.1:{port}"),
        "--stream",
        "/events",
        "--expect-idle",
        "10",
        "--expect-interval",
        "5",
        "--expect-count",
        "3",
        "--expect-user-timeout",
        "25",
        "--max-detect",
        "60",
    ]);
    // SAFETY: kill has no memory preconditions.
    unsafe { libc::kill(i32::try_from(follow.id()).unwrap(), libc::SIGTERM) };
    let output = follow.wait_with_output().unwrap();
    let lines = String::from_utf8(output.stdout).unwrap();
    assert!(cured, "the new connection kept {}; follow said:\n{lines}", carried(port, &client));
    assert!(verified.status.success(), "verify: {}", String::from_utf8_lossy(&verified.stdout));
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
