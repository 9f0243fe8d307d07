//! Headless Chromium driven through ChromeDriver (WebDriver over HTTP on loopback), for the
//! dashboard tests and the benchmark (which includes this file with `#[path]`): standalone, with
//! its own small HTTP client, so both can use it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Whether Chromium and ChromeDriver are installed.
pub fn available() -> bool {
    Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists()
}

/// A ChromeDriver process and one browser session; both end on drop.
pub struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let start = Instant::now();
        while TcpStream::connect(addr).is_err() {
            assert!(start.elapsed() < Duration::from_secs(10), "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut b = Browser { driver, addr, session: String::new(), _profile: profile };
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync", "--no-first-run",
                         "--window-size=1280,1000",
                         format!("--user-data-dir={}", b._profile.path().display())]
            }
        }}});
        let created = b.call("POST", "/session", &caps);
        b.session = created["sessionId"].as_str().expect("a session id").to_owned();
        b
    }

    fn call(&self, method: &str, path: &str, body: &Value) -> Value {
        let body = if method == "GET" || method == "DELETE" { String::new() } else { body.to_string() };
        let (status, text) = request(self.addr, method, path, &body);
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        assert_eq!(status, 200, "WebDriver {method} {path}: {text}");
        v["value"].clone()
    }

    pub fn go(&self, url: &str) {
        self.call("POST", &format!("/session/{}/url", self.session), &json!({ "url": url }));
    }

    pub fn eval(&self, script: &str) -> Value {
        self.call("POST", &format!("/session/{}/execute/sync", self.session), &json!({ "script": script, "args": [] }))
    }

    /// The dashboard's own timing of the events it applied (`window.dashboardStats`).
    pub fn apply_times(&self) -> ApplyTimes {
        let stats = self.eval("return window.dashboardStats;");
        let all: Vec<f64> =
            stats["ms"].as_array().expect("dashboardStats.ms").iter().filter_map(Value::as_f64).collect();
        assert!(all.len() >= 2, "the page applied {} events", all.len());
        let mut steady = all[1..].to_vec();
        steady.sort_by(f64::total_cmp);
        ApplyTimes {
            first: all[0],
            steady: steady.len(),
            median: steady[steady.len() / 2],
            worst: steady[steady.len() - 1],
            max_chars: stats["maxChars"].as_u64().unwrap_or(0),
            all,
        }
    }

    pub fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call("GET", &format!("/session/{}/screenshot", self.session), &Value::Null);
        base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ =
                std::panic::catch_unwind(|| request(self.addr, "DELETE", &format!("/session/{}", self.session), ""));
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// How long the dashboard took to apply its events, in ms. The first event also pays the page's
/// one-time set-up (the first layout of every section with content, the script's first
/// compilation), so it is kept apart from the ones after it, which are what each period costs.
#[derive(Debug)]
pub struct ApplyTimes {
    pub first: f64,
    /// Events after the first, and their median and slowest.
    pub steady: usize,
    pub median: f64,
    pub worst: f64,
    /// The largest event, in characters.
    pub max_chars: u64,
    /// Every event's time, in order.
    pub all: Vec<f64>,
}

/// One HTTP/1.1 request on its own connection: the status and the body (ChromeDriver answers
/// with a `Content-Length`, and may hold the connection open after it).
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect to chromedriver");
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 65536];
    let end_of_head = loop {
        if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut buf).expect("read the WebDriver answer");
        assert!(n > 0, "WebDriver closed the connection before its answer");
        raw.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&raw[..end_of_head]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    let length = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok()).flatten()
    });
    match length {
        Some(len) => {
            while raw.len() < end_of_head + len {
                let n = s.read(&mut buf).expect("read the WebDriver answer");
                assert!(n > 0, "WebDriver closed the connection mid-answer");
                raw.extend_from_slice(&buf[..n]);
            }
            raw.truncate(end_of_head + len);
        }
        None => {
            s.read_to_end(&mut raw).expect("read the WebDriver answer");
        }
    }
    (status, String::from_utf8_lossy(&raw[end_of_head..]).into_owned())
}
