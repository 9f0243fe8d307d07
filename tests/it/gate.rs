//! `webui-doctor check` as a CI job sees it: exit codes and stderr lines on real sockets.

use std::time::Duration;

use crate::util::*;

#[test]
fn close_wait_breaches_until_the_server_closes() {
    let f = Fixture::new(false);
    let port = f.port.to_string();
    let out = run(&["check", "--port", &port]);
    assert_eq!(code(&out), 1, "stdout: {}\nstderr: {}", stdout(&out), stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("1 sockets in CLOSE-WAIT (max 0)"), "{err}");
    assert!(stdout(&out).contains("FAIL max-close-wait"), "{}", stdout(&out));

    // One CLOSE-WAIT is within --max-close-wait 1.
    assert_eq!(code(&run(&["check", "--port", &port, "--max-close-wait", "1"])), 0);

    // The application finally closes: CLOSE-WAIT turns into LAST-ACK and is gone.
    let Fixture { close_wait, .. } = f;
    drop(close_wait.server);
    assert!(
        wait_until(Duration::from_secs(3), || code(&run(&["check", "--port", &port])) == 0),
        "check still fails after close: {}",
        stderr(&run(&["check", "--port", &port]))
    );
}

#[test]
fn require_keepalive_fails_on_a_connection_without_it() {
    let f = Fixture::new(true);
    let port = f.port.to_string();
    // Server side: the plain and the keepalive connection are established; one has no timer.
    let out = run(&["check", "--port", &port, "--max-close-wait", "5", "--require-keepalive"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("1 of 2 established server-side sockets have no keepalive timer armed"),
        "{}",
        stderr(&out)
    );

    // Only the keepalive connection: passes.
    let peer = f.keepalive.server.peer_addr().unwrap().port().to_string();
    let out = run(&["check", "--port", &port, "--dport", &peer, "--require-keepalive"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // JSON carries the same verdict for scripts.
    let out = run(&["check", "--port", &port, "--require-keepalive", "--max-close-wait", "5", "--format", "json"]);
    assert_eq!(code(&out), 1);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["rules"][0]["rule"], "max-close-wait");
    assert_eq!(v["rules"][0]["ok"], true);
    assert_eq!(v["rules"][1]["rule"], "require-keepalive");
    assert_eq!(v["rules"][1]["actual"], 1);
    assert_eq!(v["summary"]["keepalive"]["armed"], 1);
}

/// The gate judges the server side, as the keepalive-missing finding does: a host's own outgoing
/// connection without keepalive (its local port not listening) does not fail it.
#[test]
fn require_keepalive_ignores_the_hosts_outgoing_connections() {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let outgoing = std::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
    let (_accepted, _) = server.accept().unwrap();
    let local = outgoing.local_addr().unwrap().port().to_string();
    // The outgoing side only: established, no keepalive, its port not listening.
    let v = json(&["sockets", "--sport", &local, "--state", "established"]);
    assert_eq!(v["summary"]["keepalive"]["established"], 1);
    assert_eq!(v["summary"]["keepalive"]["armed"], 0);
    let out = run(&["check", "--sport", &local, "--require-keepalive"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("0 of 0 established server-side sockets"), "{}", stdout(&out));
    // The server side of the same connection does fail it.
    let port = server.local_addr().unwrap().port().to_string();
    assert_eq!(code(&run(&["check", "--port", &port, "--require-keepalive"])), 1);
}

#[test]
fn usage_and_operational_errors_exit_2() {
    for args in [
        &["check", "--bogus"][..],
        &["check", "--state", "half-open"],
        &["sockets", "--port", "http"],
        &["sockets", "--sport", "9000-8000"],
        &["sockets", "-4", "-6"],
        &["frobnicate"],
    ] {
        let out = run(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert!(!stderr(&out).is_empty());
    }
    let out = run(&["check", "--netns", "webui-doctor-no-such-ns"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out).trim(),
        "webui-doctor: network namespace 'webui-doctor-no-such-ns' not found (/run/netns/webui-doctor-no-such-ns): \
         No such file or directory (os error 2)"
    );
    assert_eq!(code(&run(&["--help"])), 0);
    assert_eq!(code(&run(&["--version"])), 0);
}
