//! The monitoring people already run, as real peers on loopback: the Prometheus server scraping
//! `serve`, and node_exporter's tcpstat collector counting the same sockets.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::server::*;
use crate::util::*;

/// A child process killed on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Prometheus scrapes `serve`; its query API returns the socket gauges with the values
/// `/api/snapshot` reports for the same port.
#[test]
fn prometheus_scrapes_serve() {
    if !require(have("prometheus"), "prometheus (Debian package prometheus)") {
        return;
    }
    let f = Fixture::new(false);
    let serve = Serve::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - '{}'\nscrape_configs:\n  - job_name: webui-doctor\n    static_configs:\n      - targets: ['{}']\n",
            concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus/alerts.yml"),
            serve.addr
        ),
    )
    .unwrap();
    let port = free_port();
    let _prometheus = Daemon(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let query = |q: &str| -> Option<BTreeMap<String, f64>> {
        let path = format!(
            "/api/v1/query?query={}",
            q.replace('{', "%7B").replace('}', "%7D").replace('"', "%22").replace('=', "%3D")
        );
        let r = std::net::TcpStream::connect(api).ok().map(|_| get(api, &path))?;
        let v: Value = serde_json::from_str(&r.body).ok()?;
        let results = v["data"]["result"].as_array()?;
        (!results.is_empty()).then(|| {
            results
                .iter()
                .map(|r| {
                    (
                        r["metric"]["state"].as_str().unwrap_or("").to_owned(),
                        r["value"][1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect()
        })
    };
    let selector = format!("webui_doctor_tcp_sockets{{port=\"{}\"}}", f.port);
    assert!(
        wait_until(Duration::from_secs(30), || query(&selector).is_some()),
        "Prometheus never stored webui_doctor_tcp_sockets for port {}",
        f.port
    );
    let stored = query(&selector).unwrap();
    let snap: Value = serde_json::from_str(&get(serve.addr, &format!("/api/snapshot?port={}", f.port)).body).unwrap();
    for (label, name) in [
        ("listen", "listening"),
        ("established", "established"),
        ("close_wait", "close-wait"),
        ("time_wait", "time-wait"),
    ] {
        assert_eq!(stored[label] as u64, snap["summary"]["by_state"][name].as_u64().unwrap(), "{label}: {stored:?}");
    }
    let armed = query(&format!("webui_doctor_tcp_keepalive_armed{{port=\"{}\"}}", f.port)).unwrap();
    assert_eq!(armed[""] as u64, snap["summary"]["keepalive"]["armed"].as_u64().unwrap());
    assert_eq!((stored["listen"], stored["established"], stored["close_wait"]), (1.0, 2.0, 1.0));
    let up = query("up{job=\"webui-doctor\"}").unwrap();
    assert_eq!(up[""], 1.0, "the scrape itself succeeds");

    // The shipped alert rules load and evaluate on serve's series: every rule healthy, and the
    // fixture's CLOSE-WAIT socket makes TcpCloseWaitPresent pending for its port.
    let rules_ok = || -> bool {
        let Ok(v) = serde_json::from_str::<Value>(&get(api, "/api/v1/rules").body) else { return false };
        let rules: Vec<&Value> =
            v["data"]["groups"].as_array().into_iter().flatten().flat_map(|g| g["rules"].as_array().unwrap()).collect();
        rules.len() == 4
            && rules
                .iter()
                .all(|r| r["health"] == "ok" && !r["lastEvaluation"].as_str().unwrap_or("0").starts_with("0001"))
    };
    assert!(wait_until(Duration::from_secs(20), rules_ok), "{}", get(api, "/api/v1/rules").body);
    let port_label = f.port.to_string();
    let pending = || -> bool {
        let Ok(v) = serde_json::from_str::<Value>(&get(api, "/api/v1/alerts").body) else { return false };
        v["data"]["alerts"].as_array().into_iter().flatten().any(|a| {
            a["labels"]["alertname"] == "TcpCloseWaitPresent"
                && a["labels"]["port"] == port_label.as_str()
                && a["state"] == "pending"
        })
    };
    assert!(wait_until(Duration::from_secs(20), pending), "{}", get(api, "/api/v1/alerts").body);
}

/// The shipped alert rules pass Prometheus's own checks and their unit tests
/// (`deploy/prometheus/alerts.test.yml`: each rule fires where it should and not elsewhere).
#[test]
fn alert_rules_pass_promtool() {
    if !require(have_promtool(), "promtool (Debian package prometheus)") {
        return;
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/prometheus");
    for args in [["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]] {
        let out = Command::new("promtool").args(args).current_dir(dir).output().unwrap();
        assert!(out.status.success(), "promtool {args:?}: {}{}", stdout(&out), stderr(&out));
    }
}

/// The real node_exporter with only the collectors in `args`, on a free loopback port, once it
/// answers.
fn node_exporter(args: &[String]) -> (Daemon, std::net::SocketAddr) {
    let port = free_port();
    let daemon = Daemon(
        Command::new("prometheus-node-exporter")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--collector.disable-defaults")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start node_exporter"),
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(wait_until(Duration::from_secs(10), || std::net::TcpStream::connect(addr).is_ok()));
    (daemon, addr)
}

/// node_exporter's `node_tcp_connection_states` on the same host equals `webui-doctor sockets
/// --format prometheus` summed over `port`, state by state.
#[test]
fn node_exporter_counts_the_same_sockets() {
    if !require(have("prometheus-node-exporter"), "prometheus-node-exporter") {
        return;
    }
    let _f = Fixture::new(true);
    let (_exporter, addr) = node_exporter(&["--collector.tcpstat".to_owned()]);
    // node_exporter counts the connection its scrape arrives on; open that connection first, so
    // our read sees it too.
    let theirs = |http: &mut Http| -> BTreeMap<String, u64> {
        http.get("/metrics", &[])
            .body
            .lines()
            .filter_map(|l| l.strip_prefix("node_tcp_connection_states{state=\""))
            .filter_map(|l| {
                let (state, value) = l.split_once("\"} ")?;
                let value = value.parse::<f64>().ok()? as u64;
                (!state.ends_with("queued_bytes")).then(|| (state.to_owned(), value))
            })
            .collect()
    };
    let ours = || -> BTreeMap<String, u64> {
        let mut sums = BTreeMap::new();
        for l in stdout(&run(&["sockets", "--format", "prometheus"])).lines() {
            let Some(rest) = l.strip_prefix("webui_doctor_tcp_sockets{state=\"") else { continue };
            let (state, rest) = rest.split_once('"').unwrap();
            let value: u64 = rest.rsplit_once(' ').unwrap().1.parse().unwrap();
            *sums.entry(state.to_owned()).or_insert(0) += value;
        }
        sums.retain(|_, v| *v > 0); // node_exporter writes only the states it saw
        sums
    };
    // Other tests open and close sockets meanwhile: compare until two reads agree.
    let mut last = (BTreeMap::new(), BTreeMap::new());
    let agreed = wait_until(Duration::from_secs(15), || {
        let mut http = Http::connect(addr);
        assert!(wait_until(Duration::from_secs(2), || {
            json(&["sockets", "--sport", &addr.port().to_string(), "--state", "established"])["summary"]["total"] == 1
        }));
        let mine = ours();
        last = (mine, theirs(&mut http));
        last.0 == last.1
    });
    assert!(agreed, "webui-doctor {:?}\nnode_exporter {:?}", last.0, last.1);
    assert!(last.0.get("established").copied().unwrap_or(0) >= 4);
}

/// The node_exporter setting the README gives for the TcpExt counters `sockets --watch` shows:
/// with it, the real node_exporter exports each of them, and its values are the kernel's.
pub const NETSTAT_FIELDS: &str = "^(TcpExt_(TCPKeepAlive|TCPAbortOnTimeout|TCPTimeouts|TCPAbortOnData|TCPAbortOnClose|ListenOverflows|ListenDrops))$";

#[test]
fn node_exporter_exports_the_tcpext_counters_with_the_readme_setting() {
    if !require(have("prometheus-node-exporter"), "prometheus-node-exporter") {
        return;
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/GUIDE.md")).unwrap();
    assert!(
        readme.contains(&format!("--collector.netstat.fields='{NETSTAT_FIELDS}'")),
        "GUIDE.md gives another setting"
    );
    let (_exporter, addr) =
        node_exporter(&["--collector.netstat".to_owned(), format!("--collector.netstat.fields={NETSTAT_FIELDS}")]);
    let body = get(addr, "/metrics").body;
    let kernel = webui_doctor::query::parse_tcpext(&std::fs::read_to_string("/proc/net/netstat").unwrap()).unwrap();
    for (name, value) in kernel.fields() {
        let series = format!("node_netstat_TcpExt_{name} ");
        let exported: f64 = body
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series}missing"));
        // Other tests run beside this one: the counters only grow, by a little.
        assert!(
            exported <= value as f64 + 1000.0 && exported + 1000.0 >= value as f64,
            "{name}: {exported} vs {value}"
        );
    }
}
