//! Helpers for tests of `webui-doctor serve`: the real server as a child process, a small HTTP
//! client over a plain `TcpStream` (so a test controls FIN, half-open and idle exactly), an SSE
//! reader, and an nftables rule that makes a client vanish without a FIN.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::*;

/// A running `webui-doctor serve`, stopped (SIGTERM, then SIGKILL) on drop.
pub struct Serve {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: Arc<Mutex<String>>,
}

impl Serve {
    pub fn start(args: &[&str]) -> Serve {
        Serve::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Serve {
        Serve::spawn(cmd(), args, env)
    }

    /// The server as the unprivileged `nobody` user (util-linux's `setpriv`).
    pub fn start_as_nobody(args: &[&str]) -> Serve {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", env!("CARGO_BIN_EXE_webui-doctor")]);
        Serve::spawn(c, args, &[])
    }

    fn spawn(mut c: Command, args: &[&str], env: &[(&str, &str)]) -> Serve {
        c.arg("serve").args(args).env_remove("WEBUI_DOCTOR_TOKEN");
        if !args.contains(&"--listen") {
            c.args(["--listen", "127.0.0.1:0"]);
        }
        for (k, v) in env {
            c.env(k, v);
        }
        Serve::launch(c)
    }

    /// Starts any server that logs `listening on http://ADDR` on stderr (serve, the server
    /// crate's examples) and waits for that line.
    pub fn launch(mut c: Command) -> Serve {
        let mut child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("start webui-doctor serve");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) =
                    line.split("listening on http://").nth(1).or_else(|| line.split("listening on https://").nth(1))
                {
                    let _ = tx.send(rest.split_whitespace().next().unwrap().to_owned());
                }
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(a) => a.parse().unwrap(),
            Err(_) => {
                let _ = child.kill();
                panic!("{c:?} did not start: {}", log.lock().unwrap());
            }
        };
        Serve { child, addr, log }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// True once the server's log (read on another thread) contains `text`; waits up to 5 s.
    pub fn logged(&self, text: &str) -> bool {
        wait_until(Duration::from_secs(5), || self.log().contains(text))
    }

    /// Sends SIGTERM and waits up to `limit` for the exit; returns the exit code and the time.
    pub fn terminate(&mut self, limit: Duration) -> (Option<i32>, Duration) {
        self.signal(libc::SIGTERM, limit)
    }

    /// Sends `signal` and waits up to `limit` for the exit; returns the exit code and the time.
    pub fn signal(&mut self, signal: i32, limit: Duration) -> (Option<i32>, Duration) {
        let start = Instant::now();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status.code(), start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        (None, start.elapsed())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.terminate(Duration::from_secs(3));
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Http {
    reader: BufReader<TcpStream>,
    addr: SocketAddr,
}

impl Http {
    pub fn connect(addr: SocketAddr) -> Http {
        Http::over(TcpStream::connect(addr).unwrap())
    }

    /// Over a stream the caller connected (with its own socket options).
    pub fn over(stream: TcpStream) -> Http {
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let addr = stream.peer_addr().unwrap();
        Http { reader: BufReader::new(stream), addr }
    }

    /// A connection whose receive buffer is 4 KB: once its reader stops, its window closes at
    /// once (a client that stopped reading, but still acknowledges every probe).
    pub fn small_window(addr: SocketAddr) -> Http {
        let s = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None).unwrap();
        s.set_recv_buffer_size(4096).unwrap();
        s.connect(&addr.into()).unwrap();
        Http::over(TcpStream::from(s))
    }

    /// Sends `GET path` (an event stream) with `headers` and reads the response head, which must
    /// be a 200; the body is left unread.
    pub fn get_stream(&mut self, path: &str, headers: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        self.reader.get_mut().write_all(req.as_bytes()).unwrap();
        let (status, headers) = self.read_head();
        assert_eq!(status, 200, "GET {path}: {headers:?}");
        headers
    }

    /// Sends `GET path` and reads the response head, leaving the body (a stream) unread; the
    /// connection and its client port.
    pub fn open(mut self, path: &str) -> (Http, u16) {
        self.get_stream(path, &[]);
        let port = self.stream().local_addr().unwrap().port();
        (self, port)
    }

    /// Reads up to `n` bytes of whatever comes (the raw stream); the count read.
    pub fn read_some(&mut self, n: usize) -> usize {
        let mut buf = vec![0; n];
        self.reader.read(&mut buf).unwrap_or(0)
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        req.push_str(body);
        self.reader.get_mut().write_all(req.as_bytes()).unwrap();
        self.read_response()
    }

    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Response {
        self.request("GET", path, headers, "")
    }

    /// Status line and headers only (for streams whose body never ends).
    pub fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        (status, headers)
    }

    fn read_response(&mut self) -> Response {
        let (status, headers) = self.read_head();
        let find = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if let Some(len) = find("content-length") {
            body.resize(len.parse().unwrap(), 0);
            self.reader.read_exact(&mut body).unwrap();
        } else if find("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).unwrap();
                let n = usize::from_str_radix(size.trim(), 16).unwrap();
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        } else {
            self.reader.read_to_end(&mut body).unwrap();
        }
        Response { status, headers, body: String::from_utf8_lossy(&body).into_owned() }
    }

    /// Reads SSE lines (chunked framing removed) until `deadline`, returning each non-empty line
    /// with the time it arrived.
    pub fn sse_lines(&mut self, until: Instant) -> Vec<(Instant, String)> {
        let mut out = Vec::new();
        let mut pending = String::new();
        while Instant::now() < until {
            let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
            let mut size = String::new();
            match self.reader.read_line(&mut size) {
                Ok(0) => break,
                Ok(_) => {}
                Err(_) => break,
            }
            let Ok(n) = usize::from_str_radix(size.trim(), 16) else { continue };
            if n == 0 {
                break;
            }
            let mut chunk = vec![0; n + 2];
            if self.reader.read_exact(&mut chunk).is_err() {
                break;
            }
            pending.push_str(&String::from_utf8_lossy(&chunk[..n]));
            while let Some(i) = pending.find('\n') {
                let line: String = pending.drain(..=i).collect();
                let line = line.trim_end().to_owned();
                if !line.is_empty() {
                    out.push((Instant::now(), line));
                }
            }
        }
        out
    }

    /// Reads the stream until it ends or `until`: true when it ended with HTTP's last chunk (a
    /// server that finished the response), false on a bare close or the deadline.
    pub fn ends_with_last_chunk(&mut self, until: Instant) -> bool {
        while Instant::now() < until {
            let left = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            self.reader.get_ref().set_read_timeout(Some(left)).unwrap();
            let mut size = String::new();
            match self.reader.read_line(&mut size) {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
            let Ok(n) = usize::from_str_radix(size.trim(), 16) else { continue };
            if n == 0 {
                return true;
            }
            let mut chunk = vec![0; n + 2];
            if self.reader.read_exact(&mut chunk).is_err() {
                return false;
            }
        }
        false
    }

    /// Waits for the next `event: snapshot` and returns its parsed data.
    pub fn next_snapshot(&mut self, within: Duration) -> serde_json::Value {
        let deadline = Instant::now() + within;
        let mut saw_event = false;
        while Instant::now() < deadline {
            for (_, line) in self.sse_lines_one(deadline) {
                if line == "event: snapshot" {
                    saw_event = true;
                } else if let Some(data) = line.strip_prefix("data: ")
                    && saw_event
                {
                    return serde_json::from_str(data).unwrap();
                }
            }
        }
        panic!("no snapshot event within {within:?}");
    }

    fn sse_lines_one(&mut self, deadline: Instant) -> Vec<(Instant, String)> {
        let step = (Instant::now() + Duration::from_millis(200)).min(deadline);
        self.sse_lines(step)
    }

    /// Opens `/api/events`, waits for the first snapshot, and returns the stream with its
    /// client port (the server socket's peer).
    pub fn open_stream(addr: SocketAddr) -> (Http, u16) {
        let mut events = Http::open_events(addr, &[]);
        events.next_snapshot(Duration::from_secs(5));
        let port = events.stream().local_addr().unwrap().port();
        (events, port)
    }

    /// Opens `/api/events` and checks the response head.
    pub fn open_events(addr: SocketAddr, headers: &[(&str, &str)]) -> Http {
        let mut h = Http::connect(addr);
        let headers = h.get_stream("/api/events", headers);
        let get = |n: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.as_str());
        assert_eq!(get("content-type"), Some("text/event-stream"));
        assert_eq!(get("x-accel-buffering"), Some("no"));
        h
    }
}

/// GET on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Http::connect(addr).get(path, &[("Connection", "close")])
}

/// An nftables table whose one rule drops what the server sends to one client port on
/// loopback: to the server, the client has vanished without a FIN. The rule sits on the input
/// hook, so the server's packets leave it normally and are lost on the way, as on a real
/// network (a drop on the output hook fails the send locally, and TCP reacts differently: it
/// arms the zero-window probe timer instead of retransmitting). Deleted on drop.
pub struct Blackhole {
    table: String,
}

impl Blackhole {
    pub fn new(server_port: u16, client_port: u16) -> Blackhole {
        let table = format!("wd_test_{}_{client_port}", std::process::id());
        let script = format!(
            "table inet {table} {{\n chain in {{\n  type filter hook input priority 0; policy accept;\n  \
             iif \"lo\" tcp sport {server_port} tcp dport {client_port} drop\n }}\n}}\n"
        );
        let mut child = Command::new("nft").args(["-f", "-"]).stdin(Stdio::piped()).spawn().expect("nft (nftables)");
        child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
        assert!(child.wait().unwrap().success(), "nft rejected: {script}");
        Blackhole { table }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        let _ = Command::new("nft").args(["delete", "table", "inet", &self.table]).status();
    }
}

pub fn have_nft() -> bool {
    is_root() && Command::new("nft").arg("--version").output().is_ok_and(|o| o.status.success())
}

/// The server's socket for the connection from `client_port`, as webui-doctor sees it.
pub fn server_socket(server_port: u16, client_port: u16) -> Option<serde_json::Value> {
    let v = json(&["sockets", "--sport", &server_port.to_string(), "--dport", &client_port.to_string()]);
    v["sockets"].as_array().unwrap().first().cloned()
}
