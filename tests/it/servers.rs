//! Servers nobody here wrote, as they run: gunicorn with sync workers (installed into a
//! virtualenv by `tests/run-all.sh`), a Go `net/http` server (Debian's `golang-go`, built here)
//! and a Python server that sets its own keepalive on every connection.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::util::{is_root, json, require, run, wait_until};

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
