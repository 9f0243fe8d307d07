//! `serve --web-config-file`: TLS and basic authentication the way Prometheus exporters take
//! them, tried with curl and a real Prometheus: the right user gets in over HTTPS, a missing one
//! gets 401, plain HTTP gets nothing, a renewed certificate is served without a restart, and a
//! non-loopback address is refused without TLS unless plain HTTP is asked for.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::server::*;
use crate::util::*;

/// A self-signed certificate for `localhost` and 127.0.0.1, as the README makes one.
fn certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// `curl` against the server: the HTTP status, or 0 when no HTTP answer came.
fn curl(url: &str, args: &[&str]) -> u16 {
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"])
        .args(args)
        .arg(url)
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

const USER: &str = "prometheus";
const PASSWORD: &str = "correct horse battery staple";

fn web_config(dir: &Path) -> PathBuf {
    certificate(dir, "tls");
    let hash = bcrypt::hash(PASSWORD, 6).unwrap();
    let file = dir.join("web.yml");
    std::fs::write(
        &file,
        format!(
            "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  min_version: TLS12\n\
             http_server_config:\n  headers:\n    Strict-Transport-Security: max-age=60\n\
             basic_auth_users:\n  {USER}: '{hash}'\n"
        ),
    )
    .unwrap();
    file
}

#[test]
fn tls_and_basic_auth_from_a_web_config_file() {
    if !require(have("openssl") && have("curl"), "openssl and curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = web_config(dir.path());
    let serve = Serve::start(&["--web-config-file", config.to_str().unwrap()]);
    assert!(serve.logged("listening on https://"), "{}", serve.log());
    let url = format!("https://127.0.0.1:{}/metrics", serve.port());
    let ca = dir.path().join("tls.crt");
    let ca = ca.to_str().unwrap();
    let user = format!("{USER}:{PASSWORD}");
    assert_eq!(curl(&url, &["--cacert", ca, "-u", &user]), 200);
    assert_eq!(curl(&url, &["--cacert", ca]), 401);
    assert_eq!(curl(&url, &["--cacert", ca, "-u", &format!("{USER}:wrong")]), 401);
    assert_eq!(curl(&url, &["--cacert", ca, "-u", &format!("nobody:{PASSWORD}")]), 401);
    assert_eq!(curl(&format!("https://127.0.0.1:{}/healthz", serve.port()), &["--cacert", ca]), 200);
    assert_eq!(curl(&format!("http://127.0.0.1:{}/metrics", serve.port()), &["-u", &user]), 0, "plain HTTP answered");
    let head = Command::new("curl")
        .args(["-s", "-D", "-", "-o", "/dev/null", "--cacert", ca, "-u", &user])
        .arg(&url)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&head.stdout).contains("strict-transport-security: max-age=60"));

    // A renewed certificate (written over the old one, as certbot and cert-manager do) is served
    // to the next connections without a restart.
    let renewed_dir = tempfile::tempdir().unwrap();
    let (new_cert, new_key) = certificate(renewed_dir.path(), "tls");
    let new_ca = new_cert.to_str().unwrap().to_owned();
    assert_eq!(curl(&url, &["--cacert", &new_ca, "-u", &user]), 0, "the new certificate is not served yet");
    std::fs::copy(&new_key, dir.path().join("tls.key.new")).unwrap();
    std::fs::copy(&new_cert, dir.path().join("tls.crt.new")).unwrap();
    std::fs::rename(dir.path().join("tls.key.new"), dir.path().join("tls.key")).unwrap();
    std::fs::rename(dir.path().join("tls.crt.new"), dir.path().join("tls.crt")).unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || curl(&url, &["--cacert", &new_ca, "-u", &user]) == 200),
        "the renewed certificate was not picked up: {}",
        serve.log()
    );
}

/// A real Prometheus scrapes it the way it scrapes an exporter with TLS and basic auth:
/// `scheme: https`, `tls_config.ca_file`, `basic_auth`; `up` is 1.
#[test]
fn prometheus_scrapes_over_tls_with_basic_auth() {
    if !require(have("openssl") && have("prometheus"), "openssl and prometheus") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = web_config(dir.path());
    let serve = Serve::start(&["--web-config-file", config.to_str().unwrap()]);
    let prom = dir.path().join("prometheus.yml");
    std::fs::write(
        &prom,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: webui-doctor\n    scheme: https\n    \
             tls_config:\n      ca_file: '{}'\n    basic_auth:\n      username: {USER}\n      password: '{PASSWORD}'\n    \
             static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            dir.path().join("tls.crt").display(),
            serve.port()
        ),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut prometheus = Command::new("prometheus")
        .arg(format!("--config.file={}", prom.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start prometheus");
    let api = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let up = || -> Option<String> {
        std::net::TcpStream::connect(api).ok()?;
        let v: serde_json::Value =
            serde_json::from_str(&get(api, "/api/v1/query?query=up%7Bjob%3D%22webui-doctor%22%7D").body).ok()?;
        v["data"]["result"][0]["value"][1].as_str().map(str::to_owned)
    };
    let scraped = wait_until(Duration::from_secs(30), || up().as_deref() == Some("1"));
    let _ = prometheus.kill();
    let _ = prometheus.wait();
    assert!(scraped, "up was {:?}; serve: {}", up(), serve.log());
}

/// A non-loopback address is refused without TLS (one line, exit 2), served with it, and served
/// in plain HTTP only when asked for.
#[test]
fn non_loopback_needs_tls_or_an_explicit_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let token = token_file(&dir, "a-token-of-32-bytes-0123456789ab");
    let mut c = cmd();
    c.args(["serve", "--listen", "0.0.0.0:0", "--token-file", &token]);
    let out = output_within(c, Duration::from_secs(10));
    assert_eq!(code(&out), 2);
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("refusing to serve plain HTTP on 0.0.0.0:0"), "{}", stderr(&out));
    let plain = Serve::start(&["--listen", "0.0.0.0:0", "--token-file", &token, "--allow-plain-http"]);
    assert!(plain.logged("listening on http://"));
    if require(have("openssl"), "openssl") {
        let config = web_config(dir.path());
        let tls = Serve::start(&["--listen", "0.0.0.0:0", "--web-config-file", config.to_str().unwrap()]);
        assert!(tls.logged("listening on https://"), "{}", tls.log());
    }
}
