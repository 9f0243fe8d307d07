//! The dashboard in a real headless Chromium, driven through ChromeDriver (WebDriver over HTTP
//! on loopback): the page, fed by the SSE stream, shows the counts the JSON API reports for the
//! same port. A screenshot is saved to `tests/artifacts/dashboard.png`.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use crate::server::*;
use crate::util::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A ChromeDriver process and one browser session; both end on drop.
struct Browser {
    driver: Child,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Browser {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(CHROMEDRIVER)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        assert!(wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(addr).is_ok()));
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
        let r = Http::connect(self.addr).request(
            method,
            path,
            &[("Content-Type", "application/json"), ("Connection", "close")],
            &body,
        );
        let v: Value = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        assert_eq!(r.status, 200, "WebDriver {method} {path}: {}", r.body);
        v["value"].clone()
    }

    fn go(&self, url: &str) {
        self.call("POST", &format!("/session/{}/url", self.session), &json!({ "url": url }));
    }

    fn eval(&self, script: &str) -> Value {
        self.call("POST", &format!("/session/{}/execute/sync", self.session), &json!({ "script": script, "args": [] }))
    }

    fn screenshot(&self) -> Vec<u8> {
        let b64 = self.call("GET", &format!("/session/{}/screenshot", self.session), &Value::Null);
        base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = Http::connect(self.addr).request(
                "DELETE",
                &format!("/session/{}", self.session),
                &[("Connection", "close")],
                "",
            );
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn dashboard_renders_the_live_counts_the_api_reports() {
    if !require(Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(), "chromium and chromium-driver") {
        return;
    }
    let f = Fixture::new(false);
    let serve = Serve::start(&["--watch-port", &f.port.to_string(), "--snapshot-period", "0.5"]);
    let browser = Browser::start();
    browser.go(&format!("http://{}/", serve.addr));

    // Wait for a few snapshots from the stream, so the chart has points.
    let start = Instant::now();
    while browser.eval("return Number(document.body.dataset.snapshots || 0)").as_u64().unwrap() < 4 {
        assert!(start.elapsed() < Duration::from_secs(10), "the page received no snapshots");
        std::thread::sleep(Duration::from_millis(100));
    }
    let page = browser.eval(
        "const t = (id) => document.getElementById(id).textContent; \
         return { total: t('count-total'), established: t('count-established'), closeWait: t('count-close-wait'), \
                  listening: t('count-listening'), armed: t('keepalive-armed'), kaEstablished: t('keepalive-established'), \
                  source: t('source'), status: t('status'), \
                  rows: [...document.querySelectorAll('#sockets tr')].map((r) => r.className), \
                  external: [...document.querySelectorAll('script[src], link[href]')] \
                    .filter((e) => new URL(e.src || e.href, location.href).origin !== location.origin).length };",
    );
    let api: Value = serde_json::from_str(&get(serve.addr, &format!("/api/snapshot?port={}", f.port)).body).unwrap();
    let sum = &api["summary"];
    assert_eq!(page["total"], sum["total"].to_string());
    assert_eq!(page["established"], sum["by_state"]["established"].to_string());
    assert_eq!(page["closeWait"], sum["by_state"]["close-wait"].to_string());
    assert_eq!(page["listening"], sum["by_state"]["listening"].to_string());
    assert_eq!(page["armed"], sum["keepalive"]["armed"].to_string());
    assert_eq!(page["kaEstablished"], sum["keepalive"]["established"].to_string());
    assert_eq!(page["source"], api["source"]);
    assert_eq!(page["status"], "live");
    // The fixture's server side: listen, two established (one with keepalive), one CLOSE-WAIT.
    assert_eq!((&page["total"], &page["closeWait"], &page["armed"]), (&json!("4"), &json!("1"), &json!("1")));
    let mut rows: Vec<&str> = page["rows"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    rows.sort();
    assert_eq!(rows, ["close-wait", "established", "established", "listening"]);
    assert_eq!(page["external"], 0, "the page loads nothing from elsewhere");

    // The state filter narrows the table.
    let shown = browser.eval(
        "const s = document.getElementById('filter-state'); s.value = 'close-wait'; \
         s.dispatchEvent(new Event('change')); return document.querySelectorAll('#sockets tr.close-wait').length + '/' + \
         document.querySelectorAll('#sockets tr').length;",
    );
    assert_eq!(shown, "1/1");

    let png = browser.screenshot();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "not a real screenshot");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("dashboard.png"), png).unwrap();
}

/// The dashboard shows what ended on the watched port: the totals per cause and each end, as
/// serve's subscription saw them.
#[test]
fn dashboard_shows_the_ended_connections() {
    if !require(Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists(), "chromium and chromium-driver") {
        return;
    }
    let watched = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = watched.local_addr().unwrap().port();
    let serve = Serve::start(&["--watch-port", &port.to_string(), "--snapshot-period", "0.5"]);
    std::thread::sleep(Duration::from_millis(300));
    crate::events::close_connections(&watched, 2);
    let browser = Browser::start();
    browser.go(&format!("http://{}/", serve.addr));
    let start = Instant::now();
    let rows = loop {
        let rows = browser.eval(
            "return [...document.querySelectorAll('#ended tr[data-cause]')].map((r) => \
             [r.dataset.cause, r.cells[1].textContent]);",
        );
        if rows.as_array().is_some_and(|r| r.len() == 2) {
            break rows;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "the feed never showed the two ends: {rows}");
        std::thread::sleep(Duration::from_millis(100));
    };
    for row in rows.as_array().unwrap() {
        assert_eq!(row[0], "closed");
        assert_eq!(row[1], format!("127.0.0.1:{port}"));
    }
    let totals = browser.eval("return document.getElementById('ended-totals').textContent;");
    assert!(totals.as_str().unwrap().contains("closed 2"), "{totals}");
}
