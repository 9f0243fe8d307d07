//! The per-process findings (`fd-exhaustion`, `thread-per-connection`) and `--by` groups, on
//! real Python processes: one with a low `RLIMIT_NOFILE` holding many sockets, and a
//! `ThreadingHTTPServer` whose clients hold their connections open.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::util::*;

/// A Python process started with `script`, which prints `ready PORT` once set up; killed on drop.
struct Py {
    child: Child,
    port: u16,
}

impl Py {
    fn start(script: &str, args: &[&str]) -> Py {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let port = line.strip_prefix("ready ").and_then(|p| p.trim().parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            panic!("python did not start: {line:?}");
        };
        Py { child, port }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Py {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Lowers its own soft RLIMIT_NOFILE to 256, then holds a listener and N connected pairs (both
/// ends), and closes the client end of the first C pairs (their server ends go CLOSE-WAIT).
const HOLDER: &str = r#"
import resource, socket, sys
n, closed = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(512)
pairs = []
for i in range(n):
    c = socket.create_connection(l.getsockname())
    s, _ = l.accept()
    pairs.append([c, s])
for p in pairs[:closed]:
    p[0].close()
print("ready", l.getsockname()[1], flush=True)
sys.stdin.read()
"#;

fn findings(v: &Value, code: &str) -> Vec<Value> {
    v["findings"].as_array().unwrap().iter().filter(|f| f["code"] == code).cloned().collect()
}

#[test]
fn fd_exhaustion_past_80_percent_of_the_limit() {
    // 1 listener + 115 pairs - 10 closed client ends = 221 sockets, plus stdio: 224 of 256
    // files (88 %).
    let near = Py::start(HOLDER, &["115", "10"]);
    let pid = near.pid().to_string();
    let closed_port = near.port;
    let v = json(&["sockets", "-p", "--pid", &pid]);
    let found = findings(&v, "fd-exhaustion");
    assert_eq!(found.len(), 1, "{:#}", v["findings"]);
    let e = &found[0]["evidence"];
    assert_eq!(e["pid"], near.pid());
    assert_eq!(e["file_limit"], 256);
    assert!(e["open_files"].as_u64().unwrap() >= 221, "{e}");
    assert!(e["socket_files"].as_u64().unwrap() >= 221, "{e}");
    // The 10 accepted sockets whose clients closed wait in CLOSE-WAIT.
    assert_eq!(e["close_wait"], 10, "{e}");
    assert_eq!(e["ports"], serde_json::json!([closed_port]));
    let message = found[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!("python3 (pid {pid}) holds ")) && message.contains(" of 256 files"),
        "{message}"
    );
    assert_eq!(found[0]["cure"], format!("webui-doctor fix --port {closed_port} --close-wait"));

    // Without -p there is no process to judge: no finding, and the close-wait finding says so.
    let plain = json(&["sockets", "--port", &closed_port.to_string()]);
    assert!(findings(&plain, "fd-exhaustion").is_empty());
    let cw = &findings(&plain, "close-wait")[0];
    assert!(cw["message"].as_str().unwrap().contains("with -p: whether the owner is running out of files"), "{cw}");

    // 1 + 2 x 50 = 101 sockets: 40 %, nothing to say.
    let far = Py::start(HOLDER, &["50", "0"]);
    let v = json(&["sockets", "-p", "--pid", &far.pid().to_string()]);
    assert!(findings(&v, "fd-exhaustion").is_empty(), "{:#}", v["findings"]);
}

/// A plain `ThreadingHTTPServer`: one thread per accepted connection.
const THREADED: &str = r#"
import http.server, sys
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
print("ready", srv.server_address[1], flush=True)
srv.serve_forever()
"#;

fn connect_idle(port: u16, n: usize) -> Vec<TcpStream> {
    // Each client sends half a request line: its handler thread blocks reading the rest.
    (0..n)
        .map(|_| {
            let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
            c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
            c
        })
        .collect()
}

fn thread_findings(server: &Py) -> Vec<Value> {
    let v = json(&["sockets", "-p", "--pid", &server.pid().to_string()]);
    findings(&v, "thread-per-connection")
}

#[test]
fn thread_per_connection_for_a_threading_http_server() {
    let server = Py::start(THREADED, &[]);
    let few = connect_idle(server.port, 5);
    assert!(wait_until(std::time::Duration::from_secs(3), || thread_count(server.pid()) > 5));
    assert!(thread_findings(&server).is_empty(), "5 connections are below the threshold");
    let more = connect_idle(server.port, 20);
    assert!(wait_until(std::time::Duration::from_secs(5), || thread_count(server.pid()) > 25));
    let found = thread_findings(&server);
    assert_eq!(found.len(), 1);
    let e = &found[0]["evidence"];
    assert_eq!(e["pid"], server.pid());
    assert_eq!(e["connections"], 25);
    assert!(e["threads"].as_u64().unwrap() >= 26, "{e}");
    assert_eq!(found[0]["cure"], format!("webui-doctor fix --port {}", server.port));
    drop((few, more));
}

fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn by_process_counts_add_up_to_the_listing() {
    let holder = Py::start(HOLDER, &["30", "10"]);
    let f = Fixture::new(false);
    let ports = [holder.port.to_string(), f.port.to_string()];
    let args = ["sockets", "--by", "process", "--port", &ports[0], "--port", &ports[1]];
    let v = json(&args);
    assert_eq!(v["grouped_by"], "process");
    let groups = v["groups"].as_array().unwrap();
    let sockets = v["sockets"].as_array().unwrap();
    // Every socket's owner (or "-") is one group; each group's counts are its sockets', summed.
    let key = |s: &Value| match s["process"].is_null() {
        true => "-".to_owned(),
        false => format!("{} (pid {})", s["process"]["comm"].as_str().unwrap(), s["process"]["pid"]),
    };
    let mut total = 0;
    for g in groups {
        let mine: Vec<&Value> = sockets.iter().filter(|s| key(s) == g["key"].as_str().unwrap()).collect();
        assert_eq!(g["summary"]["total"], mine.len(), "{g}");
        for state in ["established", "close-wait", "time-wait", "listening", "fin-wait-2"] {
            let n = mine.iter().filter(|s| s["state"] == state).count();
            assert_eq!(g["summary"]["by_state"][state], n, "{state} in {g}");
        }
        total += mine.len();
    }
    assert_eq!(total, sockets.len());
    // Largest CLOSE-WAIT first: the holder's 10 before the fixture's 1.
    assert_eq!(groups[0]["key"], format!("python3 (pid {})", holder.pid()));
    assert_eq!(groups[0]["summary"]["by_state"]["close-wait"], 10);
    assert_eq!(groups[0]["process"]["file_limit"], 256);
    assert!(groups[0]["process"]["threads"].as_u64().unwrap() >= 1);

    let table = stdout(&run(&["sockets", "--by", "process", "--summary", "--port", &ports[0]]));
    let row = table.lines().find(|l| l.contains(&format!("python3 (pid {})", holder.pid()))).unwrap();
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(cells.contains(&"10") && cells.iter().any(|c| c.ends_with("/256")), "{row}");
    for by in ["port", "peer", "cgroup"] {
        let v = json(&["sockets", "--by", by, "--port", &ports[1]]);
        let summed: u64 = v["groups"].as_array().unwrap().iter().map(|g| g["summary"]["total"].as_u64().unwrap()).sum();
        assert_eq!(summed, v["summary"]["total"].as_u64().unwrap(), "--by {by}");
    }
}
