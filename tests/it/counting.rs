//! The commands that only count (`--summary`, `check`, `--by ... --summary`) read the sockets
//! into a tally as the dump arrives and keep none of them; the listing reads them into a list.
//! Both must say the same: the summary, findings, attribution and groups of a counted read equal
//! those of a listing of the same sockets, in every state a count tells apart (queued
//! connections included), from both sources and both families.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use serde_json::Value;

use crate::util::*;

/// Connections no process accepts: two left open in the listen queue, one whose client has
/// closed (CLOSE-WAIT in the queue), around a listener of their own.
struct Queue {
    _listener: socket2::Socket,
    port: u16,
    _clients: Vec<TcpStream>,
}

impl Queue {
    fn new(v6: bool) -> Queue {
        let listener = quiet_listener(v6);
        let addr = listener.local_addr().unwrap();
        let listener = socket2::Socket::from(listener);
        listener.listen(16).unwrap();
        let mut clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
        clients[0].write_all(b"waiting").unwrap();
        clients[2].shutdown(Shutdown::Write).unwrap();
        let queue = Queue { _listener: listener, port: addr.port(), _clients: clients };
        let settled = wait_until(Duration::from_secs(5), || {
            ss_sockets(queue.port).iter().filter(|s| s.state == "CLOSE-WAIT").count() == 1
        });
        assert!(settled, "the queued CLOSE-WAIT did not appear: {:#?}", ss_sockets(queue.port));
        queue
    }
}

/// The document without what differs between two reads of the same sockets: the time, the
/// socket list itself (only the listing has it), and the files and threads of this test's own
/// process (`--by process`), which its other threads change.
fn head(mut v: Value) -> Value {
    let o = v.as_object_mut().expect("a JSON object");
    for key in ["taken_at", "sockets", "ok", "rules"] {
        o.remove(key);
    }
    for group in o.get_mut("groups").and_then(Value::as_array_mut).into_iter().flatten() {
        if let Some(p) = group.get_mut("process").and_then(Value::as_object_mut) {
            for key in ["open_files", "socket_files", "threads"] {
                p.remove(key);
            }
        }
    }
    v
}

/// `--summary` asks the kernel for no `tcp_info` (it lists no socket), so its findings carry no
/// idle times; the same document without them, to compare with a listing's. Nor the host's
/// `ListenOverflows`/`ListenDrops`, which other tests move between two reads.
fn without_idle_times(v: Value) -> Value {
    let mut v = without_host_counters(v);
    for f in v["findings"].as_array_mut().into_iter().flatten() {
        let f = f.as_object_mut().unwrap();
        f.remove("message"); // made from the evidence, idle times included
        let evidence = f.get_mut("evidence").and_then(Value::as_object_mut).unwrap();
        evidence.remove("oldest_idle_ms");
        evidence.remove("stalled_ms");
    }
    v
}

/// The document without the host's `TcpExt` counters in the listen-queue evidence (and the
/// message that names them).
fn without_host_counters(mut v: Value) -> Value {
    for f in v["findings"].as_array_mut().into_iter().flatten() {
        if f["code"] == "listen-queue" {
            let f = f.as_object_mut().unwrap();
            f.remove("message");
            let evidence = f.get_mut("evidence").and_then(Value::as_object_mut).unwrap();
            evidence.remove("listen_drops");
            evidence.remove("listen_overflows");
        }
    }
    v
}

/// `sockets ARGS` listed and `sockets ARGS --summary` counted, each without what only the
/// other can have (the listing names each socket's cgroup, which procfs cannot give:
/// `"unavailable"`).
fn stored_and_counted(args: &[&str]) -> (Value, Value) {
    let mut listing = vec!["sockets"];
    listing.extend_from_slice(args);
    let mut summary = listing.clone();
    summary.push("--summary");
    let mut listed = without_idle_times(head(json(&listing)));
    if args.contains(&"procfs") {
        listed.as_object_mut().unwrap().remove("unavailable");
    }
    (listed, without_idle_times(head(json(&summary))))
}

#[test]
fn a_counted_summary_says_what_the_listing_says() {
    for v6 in [false, true] {
        let f = Fixture::new(v6);
        let q = Queue::new(v6);
        let (a, b) = (f.port.to_string(), q.port.to_string());
        let mut cases: Vec<Vec<&str>> = Vec::new();
        for source in ["netlink", "procfs"] {
            cases.push(vec!["--source", source, "--port", &a, "--port", &b]);
            cases.push(vec!["--source", source, "--port", &a, "--port", &b, "--by", "port"]);
            cases.push(vec!["--source", source, "--port", &a, "--port", &b, "--by", "peer"]);
            // LISTEN not selected: the server side comes from a read of the listeners.
            cases.push(vec!["--source", source, "--port", &a, "--port", &b, "--state", "established"]);
            cases.push(vec!["--source", source, "--port", &a, "--port", &b, "--state", "close-wait"]);
        }
        cases.push(vec!["--port", &a, "--port", &b, "-p"]);
        cases.push(vec!["--port", &a, "--port", &b, "--by", "process"]);
        cases.push(vec!["--port", &a, "--port", &b, "--by", "cgroup"]);
        cases.push(vec!["--port", &a, "--port", &b, "--pid", "1"]);
        for case in &cases {
            let (stored, counted) = stored_and_counted(case);
            assert_eq!(counted, stored, "v6 {v6}, {case:?}");
        }
        // The fixture is what was counted: a case that counts nothing would pass the above.
        let (_, counted) = stored_and_counted(&["--port", &a, "--port", &b]);
        // Server side (local port): two listeners, three accepted connections, three queued.
        assert_eq!(counted["summary"]["total"], 8, "{}", counted["summary"]);
        assert_eq!(counted["summary"]["queued"]["established"], 2, "{}", counted["summary"]);
        assert_eq!(counted["summary"]["queued"]["close_wait"], 1, "{}", counted["summary"]);
        let codes: Vec<&str> =
            counted["findings"].as_array().unwrap().iter().map(|f| f["code"].as_str().unwrap()).collect();
        assert!(codes.contains(&"close-wait") && codes.contains(&"listen-queue"), "{codes:?}");
        // `check` counts too (with idle times): its head is the listing's, to the message.
        let out = run(&["check", "--port", &a, "--port", &b, "--max-close-wait", "100", "--format", "json"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let mut check = without_host_counters(head(serde_json::from_slice(&out.stdout).unwrap()));
        let mut listed = without_host_counters(head(json(&["sockets", "--port", &a, "--port", &b])));
        // Idle times grow between the two reads; everything else stands still.
        for doc in [&mut check, &mut listed] {
            for f in doc["findings"].as_array_mut().unwrap() {
                if let Some(ms) = f["evidence"].get_mut("oldest_idle_ms").filter(|ms| ms.is_u64()) {
                    *ms = Value::from("some");
                    f.as_object_mut().unwrap().remove("message");
                }
            }
        }
        assert_eq!(check, listed, "check, v6 {v6}");
    }
}

/// Holds `pairs` loopback connections (both ends) in a Python process of its own, so the test
/// can make more sockets than one process may hold files; ends when dropped.
struct Holder(std::process::Child);

const HOLDER: &str = r#"
import resource, socket, sys
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4096)
held = []
for i in range(int(sys.argv[1])):
    c = socket.create_connection(l.getsockname())
    s, _ = l.accept()
    held += [c, s]
print("ready", flush=True)
sys.stdin.read()
"#;

impl Holder {
    fn start(ns: &Netns, pairs: usize) -> Holder {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.0, "python3", "-c", HOLDER, &pairs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready", "the socket holder did not start");
        Holder(child)
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The command's own peak RSS in KiB, as GNU `time` measures it (a small parent's `wait4`: a
/// child spawned from this test binary would start from the test's high-water mark); the least
/// of three runs.
fn peak_rss_kib(args: &[&str]) -> u64 {
    (0..3)
        .map(|_| {
            let out = std::process::Command::new("/usr/bin/time")
                .args(["-f", "%M", env!("CARGO_BIN_EXE_webui-doctor")])
                .args(args)
                .output()
                .expect("/usr/bin/time");
            assert!(out.status.success(), "{args:?}: {}", stderr(&out));
            let err = stderr(&out);
            err.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("time said {err:?}"))
        })
        .min()
        .unwrap()
}

/// Counting keeps no socket: `--summary` over 50,000 sockets needs no more memory than over
/// 5,000 (within 1.2×), the JSON and table listings, which stream, little more (within 1.3×),
/// while `-O`, which keeps them, grows. The sockets are the only ones in a namespace of their own, so
/// nothing else on the host moves the numbers.
#[test]
fn summary_memory_does_not_grow_with_the_sockets() {
    if !require(is_root(), "root (ip netns add)") || !require(have("/usr/bin/time"), "GNU time (package time)") {
        return;
    }
    let ns = Netns::create("count");
    let total = || json(&["sockets", "--netns", &ns.0, "--summary"])["summary"]["total"].as_u64().unwrap();
    let rss = |format: &str| peak_rss_kib(&["sockets", "--netns", &ns.0, "--format", format]);
    let summary_rss = || peak_rss_kib(&["sockets", "--netns", &ns.0, "--summary"]);
    // `-O` keeps every socket (it reads their options from the owners once the list is whole).
    let stored_rss = || peak_rss_kib(&["sockets", "--netns", &ns.0, "-O", "--format", "json"]);
    // 5,000 connected sockets, then 50,000 (and a listener per holder): each holder keeps at most
    // 15,000 files, below the per-process limit.
    let mut holders = vec![Holder::start(&ns, 1250), Holder::start(&ns, 1250)];
    assert_eq!(total(), 5_002);
    let (summary_small, json_small, table_small) = (summary_rss(), rss("json"), rss("table"));
    let stored_small = stored_rss();
    holders.extend((0..3).map(|_| Holder::start(&ns, 7500)));
    assert_eq!(total(), 50_005);
    let (summary_large, json_large, table_large) = (summary_rss(), rss("json"), rss("table"));
    let stored_large = stored_rss();
    drop(holders);
    eprintln!(
        "peak RSS: --summary {summary_small} KiB at 5,002 sockets, {summary_large} KiB at 50,005; \
         JSON {json_small} then {json_large} KiB; table {table_small} then {table_large} KiB; \
         -O {stored_small} then {stored_large} KiB"
    );
    // The measurement sees memory that follows the sockets (`-O` keeps each, in well over 100
    // bytes)…
    assert!(stored_large > stored_small + 45_000 * 100 / 1024, "-O: {stored_small} then {stored_large} KiB");
    // …counting has none…
    assert!(
        summary_large * 10 <= summary_small * 12,
        "--summary: {summary_small} KiB at 5,002 sockets, {summary_large} KiB at 50,005"
    );
    // …and the listings, rendered as the sockets come and spilled past a few megabytes, only
    // their bounded rounds.
    assert!(json_large * 10 <= json_small * 13, "JSON: {json_small} KiB at 5,002 sockets, {json_large} KiB at 50,005");
    assert!(
        table_large * 10 <= table_small * 13,
        "table: {table_small} KiB at 5,002 sockets, {table_large} KiB at 50,005"
    );
}

/// A tmpfs of one mebibyte mounted for the test, unmounted (and its directory removed) on drop.
struct SmallTmpfs(std::path::PathBuf);

impl SmallTmpfs {
    fn mount() -> SmallTmpfs {
        let dir = std::env::temp_dir().join(format!("wd-test-{}-tmpfs", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let guard = SmallTmpfs(dir);
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "wd-test", guard.0.to_str().unwrap()])
            .output()
            .expect("mount");
        assert!(out.status.success(), "mount: {}", stderr(&out));
        guard
    }
}

impl Drop for SmallTmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The JSON listing spills past 2 MiB to an unnamed file in `TMPDIR`: it lists the same sockets
/// spilled or, where `TMPDIR` cannot hold a file, in memory; and where the file fills the disk,
/// it fails with one line naming the directory and the reason (exit 2), never a cut document.
#[test]
fn json_listing_spills_to_tmpdir_or_says_why_not() {
    if !require(is_root(), "root (ip netns add, mount)") {
        return;
    }
    let ns = Netns::create("spill");
    // 6,000 sockets: about 6 MiB of `-i` JSON.
    let _holder = Holder::start(&ns, 3_000);
    let listing = |tmpdir: &std::path::Path| {
        cmd().env("TMPDIR", tmpdir).args(["sockets", "--netns", &ns.0, "-i", "--format", "json"]).output().unwrap()
    };
    let endpoints = |out: &std::process::Output| {
        assert_eq!(code(out), 0, "{}", stderr(out));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON document");
        let mut ends: Vec<String> = v["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| format!("{} {} {}", s["local"], s["peer"], s["state"]))
            .collect();
        assert_eq!(ends.len() as u64, v["summary"]["total"].as_u64().unwrap());
        ends.sort();
        ends
    };
    let spilled = tempfile::tempdir().unwrap();
    let on_disk = endpoints(&listing(spilled.path()));
    assert_eq!(on_disk.len(), 6_001);
    assert!(std::fs::read_dir(spilled.path()).unwrap().next().is_none(), "the spill left a file behind");
    assert_eq!(endpoints(&listing(std::path::Path::new("/nonexistent/wd-test"))), on_disk);

    let full = SmallTmpfs::mount();
    let out = listing(&full.0);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(out.stdout.is_empty(), "a cut document was written");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("spilling the listing to {}", full.0.display()))
            && err.contains("No space left on device"),
        "{err}"
    );
}
