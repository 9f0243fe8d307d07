//! `sockets --watch`: each report carries the change of the host's TcpExt counters since the
//! one before, counted by the kernel (here `TCPAbortOnClose`, made by closing sockets that hold
//! unread data).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::*;

#[test]
fn watch_reports_the_tcpext_change_between_reports() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    let mut child = cmd()
        .args(["sockets", "--watch", "1", "--summary", "--format", "json", "--port", &port])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    std::thread::sleep(Duration::from_millis(1300));
    // Three sockets closed with unread data: the kernel resets them and counts TCPAbortOnClose.
    for _ in 0..3 {
        let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        c.write_all(b"unread").unwrap();
        std::thread::sleep(Duration::from_millis(20));
        drop(s);
    }
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    let _ = child.kill();
    let _ = child.wait();
    let text = reader.join().unwrap();
    let docs: Vec<Value> =
        text.split("\n\n").filter(|d| !d.trim().is_empty()).map(|d| serde_json::from_str(d).unwrap()).collect();
    assert!(docs.len() >= 3, "{} reports in {:?}", docs.len(), start.elapsed());
    let first = &docs[0]["tcpext"];
    assert!(first["seconds"].as_f64().unwrap() < 0.5, "the first report counts from the start: {first}");
    for name in [
        "TCPKeepAlive",
        "TCPAbortOnTimeout",
        "TCPTimeouts",
        "TCPAbortOnData",
        "TCPAbortOnClose",
        "ListenOverflows",
        "ListenDrops",
    ] {
        assert!(docs[1]["tcpext"]["counters"][name].is_u64(), "{name}: {}", docs[1]);
    }
    let later = &docs[1]["tcpext"];
    assert!((later["seconds"].as_f64().unwrap() - 1.0).abs() < 0.5, "{later}");
    let aborts: u64 = docs.iter().map(|d| d["tcpext"]["counters"]["TCPAbortOnClose"].as_u64().unwrap()).sum();
    assert!(aborts >= 3, "TCPAbortOnClose grew by {aborts} over the reports");
    // Without --watch there is no change to report.
    assert!(json(&["sockets", "--summary", "--port", &port]).get("tcpext").is_none());
}
