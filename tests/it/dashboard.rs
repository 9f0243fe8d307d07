//! The dashboard in a real headless Chromium, driven through ChromeDriver (WebDriver over HTTP
//! on loopback, see `browser`): the page, fed by the SSE stream, shows the counts the JSON API reports for the
//! same port. A screenshot is saved to `tests/artifacts/dashboard.png`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::browser::{self, Browser};
use crate::server::*;
use crate::util::*;

#[test]
fn dashboard_renders_the_live_counts_the_api_reports() {
    if !require(browser::available(), "chromium and chromium-driver") {
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
                  rows: [...document.querySelectorAll('#sockets .row')].map((r) => r.dataset.state), \
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

    // The state filter narrows the list (on the server: a page of /api/snapshot?state=...).
    browser.eval(
        "const s = document.getElementById('filter-state'); s.value = 'close-wait'; \
         s.dispatchEvent(new Event('change')); return 0;",
    );
    assert!(
        wait_until(Duration::from_secs(5), || {
            browser.eval("return document.getElementById('shown').textContent") == "1 of 1 shown (CLOSE-WAIT)"
        }),
        "the filtered page never came"
    );
    let shown = browser.eval("return [...document.querySelectorAll('#sockets .row')].map((r) => r.dataset.state);");
    assert_eq!(shown, json!(["close-wait"]));

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
    if !require(browser::available(), "chromium and chromium-driver") {
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

/// A Python process holding `n` accepted connections on one port (the watched port), the first
/// `close_wait` of which the clients closed (so the server side is in CLOSE-WAIT); the clients
/// live in a forked child, so neither process holds more than its share of descriptors. Both
/// end when the fixture is dropped (their stdin closes).
pub struct ManySockets {
    child: Child,
    pub port: u16,
}

const MANY_SOCKETS: &str = r#"
import os, resource, socket, sys
n, close_wait = int(sys.argv[1]), int(sys.argv[2])
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(4096)
port = listener.getsockname()[1]
ready_r, ready_w = os.pipe()
if os.fork() == 0:
    os.close(ready_r)
    held = []
    for i in range(n):
        c = socket.create_connection(("127.0.0.1", port))
        if i < close_wait:
            c.close()
        else:
            held.append(c)
    os.write(ready_w, b"x")
    sys.stdin.read()
    os._exit(0)
os.close(ready_w)
accepted = [listener.accept()[0] for _ in range(n)]
os.read(ready_r, 1)
print(port, flush=True)
sys.stdin.read()
"#;

impl ManySockets {
    pub fn start(n: usize, close_wait: usize) -> ManySockets {
        let mut child = Command::new("python3")
            .args(["-c", MANY_SOCKETS, &n.to_string(), &close_wait.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the fixture did not start: {line:?}"));
        ManySockets { child, port }
    }
}

impl Drop for ManySockets {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// With 10,000 sockets on the watched port, every SSE event stays within 64 KiB (500 rows, the
/// CLOSE-WAIT ones first), the page applies each one within 50 ms (measured in the page with
/// `performance.now()`, style and layout included), says "500 of 10,001 shown", pages on
/// through `/api/snapshot`, filters by state on the server, and shows the findings with their
/// evidence.
#[test]
fn dashboard_stays_small_and_fast_with_10000_sockets() {
    if !require(browser::available(), "chromium and chromium-driver") {
        return;
    }
    let many = ManySockets::start(10_000, 1_000);
    let serve = Serve::start(&["--watch-port", &many.port.to_string(), "--snapshot-period", "0.5"]);

    // On the wire: each event within 64 KiB, framing included.
    let mut events = Http::open_events(serve.addr, &[]);
    let lines = events.sse_lines(Instant::now() + Duration::from_millis(2300));
    let data: Vec<&str> = lines.iter().filter_map(|(_, l)| l.strip_prefix("data: ")).collect();
    assert!(data.len() >= 3, "{} events in 2.3 s", data.len());
    let largest = data.iter().map(|d| "event: snapshot\ndata: \n\n".len() + d.len()).max().unwrap();
    eprintln!("10,000 sockets: {} events, the largest {largest} bytes", data.len());
    assert!(largest <= 64 * 1024, "an SSE event of {largest} bytes");
    for d in &data {
        let v: Value = serde_json::from_str(d).unwrap();
        assert_eq!(v["page"]["total"], 10_001, "the listener and 10,000 accepted sockets");
        assert_eq!(v["page"]["shown"], 500);
        assert_eq!(v["summary"]["by_state"]["close-wait"], 1_000);
        let rows = v["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 500);
        assert!(rows.iter().all(|r| r[0] == "close-wait"), "CLOSE-WAIT first: 1,000 of them fill the 500 rows");
        assert!(v["findings"].as_array().unwrap().iter().any(|f| f["code"] == "close-wait"));
    }
    drop(events);

    let browser = Browser::start();
    browser.go(&format!("http://{}/", serve.addr));
    let start = Instant::now();
    while browser.eval("return window.dashboardStats ? window.dashboardStats.events : 0").as_u64().unwrap() < 8 {
        assert!(start.elapsed() < Duration::from_secs(20), "the page received too few snapshots");
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("phases of the last event (ms): {}", browser.eval("return window.dashboardStats.phases;"));
    // Both are printed; the steady ones are held to 50 ms, the first (which pays the page's
    // set-up) to a bound that catches a regression without failing on a loaded CI machine.
    let t = browser.apply_times();
    eprintln!(
        "10,000 sockets: the page applied {} events after the first in {:.1} ms median, {:.1} ms at most; the first in {:.1} ms; events of up to {} characters",
        t.steady, t.median, t.worst, t.first, t.max_chars
    );
    assert!(t.worst <= 50.0, "an event took {:.1} ms to apply: {:?}", t.worst, t.all);
    assert!(t.first <= 250.0, "the first event took {:.1} ms to apply: {:?}", t.first, t.all);
    let text = |id: &str| browser.eval(&format!("return document.getElementById('{id}').textContent;"));
    assert_eq!(text("shown"), "500 of 10,001 shown");
    // The list holds 500 rows; those on screen exist, the rest are made as the page scrolls.
    let list = || browser.eval("return Number(document.getElementById('sockets').dataset.rows);");
    let rows = || browser.eval("return [...document.querySelectorAll('#sockets .row')].map((r) => r.dataset.state);");
    assert_eq!(list(), 500);
    browser.eval("window.scrollTo(0, document.body.scrollHeight); return 0;");
    // The rows on screen are made on the scroll event, in the page's next frame.
    let last = || {
        browser.eval(
            "const r = [...document.querySelectorAll('#sockets .row')]; return Number(r[r.length - 1].dataset.index);",
        )
    };
    wait_until(Duration::from_secs(3), || last() == 499);
    assert_eq!(last(), 499, "scrolled to the end, the last row is there");
    browser.eval("window.scrollTo(0, 0); return 0;");

    // The findings, with their evidence.
    let finding = browser.eval(
        "const d = document.querySelector('#findings details[data-code=\"close-wait\"]'); \
         return d ? { summary: d.querySelector('summary').textContent, evidence: d.querySelector('pre').textContent } : null;",
    );
    assert!(finding["summary"].as_str().is_some_and(|s| s.contains("CLOSE-WAIT")), "{finding}");
    let evidence: Value = serde_json::from_str(finding["evidence"].as_str().unwrap()).unwrap();
    assert_eq!(evidence["sockets"], 1_000, "{evidence}");

    // Next page: sockets 501-1,000 from /api/snapshot, the last CLOSE-WAIT ones.
    browser.eval("document.getElementById('page-next').click(); return 0;");
    let wait_for = |want: &str| {
        let start = Instant::now();
        loop {
            let got = text("shown");
            if got == want {
                return;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "shown: {got}, want {want}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for("501–1,000 of 10,001 shown");
    assert_eq!(list(), 500);
    let page: Vec<Value> = rows().as_array().unwrap().clone();
    assert!(
        !page.is_empty() && page.iter().all(|r| r == "close-wait"),
        "the second 500 are the rest of the CLOSE-WAIT ones"
    );
    browser.eval("document.getElementById('page-next').click(); return 0;");
    wait_for("1,001–1,500 of 10,001 shown");
    assert!(!rows().as_array().unwrap().is_empty() && rows().as_array().unwrap().iter().all(|r| r == "established"));

    // A state chosen: filtered on the server, from the first page again.
    browser.eval(
        "const s = document.getElementById('filter-state'); s.value = 'listening'; \
         s.dispatchEvent(new Event('change')); return 0;",
    );
    wait_for("1 of 1 shown (LISTEN)");
    assert_eq!(rows(), json!(["listening"]));
    // Back to all states: the live rows of the stream again.
    browser.eval(
        "const s = document.getElementById('filter-state'); s.value = ''; \
         s.dispatchEvent(new Event('change')); return 0;",
    );
    wait_for("500 of 10,001 shown");
}
