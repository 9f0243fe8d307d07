//! `-p`, `--pid`, `--process`: the test's own sockets are attributed to the test process, and a
//! user without permission is told how many sockets stayed unattributed.

use crate::util::*;

fn own_comm() -> String {
    std::fs::read_to_string("/proc/self/comm").unwrap().trim_end().to_owned()
}

#[test]
fn own_sockets_belong_to_this_process() {
    let f = Fixture::new(false);
    let port = f.port.to_string();
    let pid = std::process::id();
    let v = json(&["sockets", "-p", "--port", &port]);
    let sockets = v["sockets"].as_array().unwrap();
    assert_eq!(sockets.len(), 4);
    for s in sockets {
        assert_eq!(s["process"]["pid"], pid, "{s}");
        assert_eq!(s["process"]["comm"], own_comm(), "{s}");
    }
    assert_eq!(v["attribution"]["unattributed"], 0);

    // Without -p nothing is attributed and no attribution block is written.
    let v = json(&["sockets", "--port", &port]);
    assert!(v["sockets"][0]["process"].is_null());
    assert!(v.get("attribution").is_none());

    // The TIME-WAIT socket has no owner and is not counted as missing one.
    let tw = f.time_wait_client_port.to_string();
    let v = json(&["sockets", "-p", "--sport", &tw, "--dport", &port, "--state", "time-wait"]);
    assert_eq!(v["sockets"][0]["state"], "time-wait");
    assert!(v["sockets"][0]["process"].is_null());
    assert_eq!(v["attribution"]["unattributed"], 0);

    let out = run(&["sockets", "-p", "--port", &port]);
    assert!(stdout(&out).contains(&format!("{}({pid})", own_comm())), "{}", stdout(&out));
}

#[test]
fn pid_and_process_filters_select_owners() {
    let f = Fixture::new(true);
    let port = f.port.to_string();
    let pid = std::process::id().to_string();
    let by_pid = json(&["sockets", "--pid", &pid, "--port", &port]);
    assert_eq!(by_pid["summary"]["total"], 4);
    assert_eq!(by_pid["filters"]["pid"], std::process::id());
    let by_comm = json(&["sockets", "--process", &own_comm(), "--port", &port]);
    assert_eq!(by_comm["summary"]["total"], 4);
    // PID 1 does not own the test's sockets; no such command either.
    assert_eq!(json(&["sockets", "--pid", "1", "--port", &port])["summary"]["total"], 0);
    assert_eq!(json(&["sockets", "--process", "no-such-command", "--port", &port])["summary"]["total"], 0);
}

/// As `nobody`, other users' fd tables are closed: the sockets are still listed, and the
/// summary says how many have no owner and why.
#[test]
fn unprivileged_user_is_told_what_stayed_unattributed() {
    if !require(is_root(), "root (to switch to the nobody user)") {
        return;
    }
    let f = Fixture::new(false);
    let port = f.port.to_string();
    let out = run_as_nobody(&["sockets", "-p", "--port", &port, "--summary"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("sockets: 4"), "{text}");
    assert!(text.contains("processes: 4 sockets have no owning process: "), "{text}");
    assert!(text.contains("processes could not be read (permission denied"), "{text}");
}
