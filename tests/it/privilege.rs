//! Least privilege: what works as an ordinary user works as `nobody`, and where root is needed
//! the message says so (exit 2), rather than failing obscurely.

use crate::server::*;
use crate::util::*;

#[test]
fn serve_runs_as_an_ordinary_user() {
    if !require(is_root(), "root (to switch to nobody)") {
        return;
    }
    let f = Fixture::new(false);
    let serve = Serve::start_as_nobody(&["--watch-port", &f.port.to_string(), "--allow-processes"]);
    assert!(serve.logged("(all applied)"), "{}", serve.log());
    // sock_diag needs no privilege: the whole host is visible.
    let snap: serde_json::Value =
        serde_json::from_str(&get(serve.addr, &format!("/api/snapshot?port={}", f.port)).body).unwrap();
    assert_eq!(snap["summary"]["total"], 4);
    // Owners of other users' sockets are not, and the answer says why instead of guessing.
    let snap: serde_json::Value =
        serde_json::from_str(&get(serve.addr, &format!("/api/snapshot?port={}&processes=1", f.port)).body).unwrap();
    assert!(snap["sockets"].as_array().unwrap().iter().all(|s| s["process"].is_null()));
    assert_eq!(snap["attribution"]["unattributed"], 4);
    assert!(snap["attribution"]["denied_processes"].as_u64().unwrap() > 0);
    let metrics = get(serve.addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains(&format!("webui_doctor_tcp_sockets{{state=\"close_wait\",port=\"{}\"}} 1", f.port)));
}

#[test]
fn root_only_features_say_so() {
    if !require(is_root(), "root (to switch to nobody)") {
        return;
    }
    // A namespace the test creates as root; nobody may not enter it.
    let name = format!("wd-test-{}-priv", std::process::id());
    assert!(std::process::Command::new("ip").args(["netns", "add", &name]).status().unwrap().success());
    let out = run_as_nobody(&["sockets", "--netns", &name]);
    let _ = std::process::Command::new("ip").args(["netns", "del", &name]).status();
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains(&format!("cannot enter network namespace '{name}' (needs CAP_SYS_ADMIN)")), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    // -O as nobody: other users' sockets stay without options, and the summary says why.
    let f = Fixture::new(false);
    let out = run_as_nobody(&["sockets", "-O", "--port", &f.port.to_string(), "--summary"]);
    assert_eq!(code(&out), 0);
    assert!(stdout(&out).contains("processes: 4 sockets have no owning process"), "{}", stdout(&out));
}
