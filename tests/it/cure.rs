//! The cure in the kernel (`fix --persist`): a cgroup sock_ops program the tool writes itself,
//! read back with `BPF_PROG_QUERY`. Needs root, a cgroup2 mount and CONFIG_CGROUP_BPF; runs for
//! real in CI. Every test detaches what it attached and removes the cgroups it made, even when it
//! fails.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::server::have_nft;
use crate::util::*;

fn cgroup2_mount() -> Option<PathBuf> {
    webui_doctor::cgroup::mount_point(&webui_doctor::model::ProcPaths::default())
}

/// Our programs attached directly to `dir`, as the kernel lists them.
fn ours(dir: &std::path::Path) -> Vec<u32> {
    use webui_doctor::cure;
    let cgroup = cure::open_cgroup(dir).unwrap();
    cure::query(&cgroup)
        .unwrap()
        .into_iter()
        .filter(|&id| cure::program_fd(id).and_then(|fd| cure::info(&fd)).is_ok_and(|p| p.name == cure::PROGRAM_NAME))
        .collect()
}

/// A cgroup made for the test: on drop, its processes are killed, our programs on it detached
/// and the cgroup removed.
struct TestCgroup {
    dir: PathBuf,
    rel: String,
    children: Vec<Child>,
}

impl TestCgroup {
    fn new(tag: &str) -> TestCgroup {
        TestCgroup::at(&format!("/wd-test-{}-{tag}", std::process::id()))
    }

    fn at(rel: &str) -> TestCgroup {
        let mount = cgroup2_mount().expect("a cgroup2 mount");
        let rel = rel.to_owned();
        let dir = mount.join(rel.trim_start_matches('/'));
        std::fs::create_dir(&dir).expect("creating a cgroup");
        TestCgroup { dir, rel, children: Vec::new() }
    }

    /// A Python server started inside the cgroup (moved there before it listens), accepting and
    /// holding connections on `port`; it also opens one outgoing connection to `outgoing`.
    fn server(&mut self, port: u16, outgoing: u16) -> u32 {
        const SERVER: &str = r#"
import socket, sys, threading
sys.stdin.readline()
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", int(sys.argv[1]))); l.listen()
out = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
held = []
def serve():
    while True:
        held.append(l.accept()[0])
threading.Thread(target=serve, daemon=True).start()
print("ready", flush=True)
sys.stdin.readline()
"#;
        let mut child = Command::new("python3")
            .args(["-c", SERVER, &port.to_string(), &outgoing.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        std::fs::write(self.dir.join("cgroup.procs"), child.id().to_string()).expect("moving the server");
        child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(line.trim(), "ready");
        let pid = child.id();
        self.children.push(child);
        pid
    }

    /// Kills every process in the cgroup (forked workers too, with `cgroup.kill`), and reaps ours.
    fn kill_servers(&mut self) {
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        for mut c in self.children.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        wait_until(Duration::from_secs(5), || {
            std::fs::read_to_string(self.dir.join("cgroup.procs")).is_ok_and(|p| p.trim().is_empty())
        });
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        self.kill_servers();
        let _ = run(&["fix", "--remove", "--all", "--cgroup", &self.rel]);
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// `fix --persist --cgroup`: the fixer exits, the server is killed and started again in the same
/// cgroup, and its new connections carry the options from the handshake (read back with -O and
/// by the kernel's keepalive timer as `ss` shows it); a blackholed client is dropped within
/// 5 ± 1.5 s; the server's own outgoing connection is untouched. `--list` shows exactly the
/// cure, `--persist` again changes nothing, `--remove` leaves `BPF_PROG_QUERY` empty of ours.
#[test]
fn a_persisted_cure_holds_across_a_restart_in_its_cgroup() {
    if !require(is_root() && cgroup2_mount().is_some(), "root and a cgroup2 mount") {
        return;
    }
    let mut cg = TestCgroup::new("persist");
    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sink_port = sink.local_addr().unwrap().port();
    let port = crate::servers::free_port();
    let port_s = port.to_string();
    cg.server(port, sink_port);
    let persist = [
        "fix",
        "--persist",
        "--cgroup",
        &cg.rel,
        "--port",
        &port_s,
        "--keepalive-idle",
        "2",
        "--keepalive-interval",
        "1",
        "--keepalive-count",
        "3",
        "--user-timeout",
        "0",
    ];
    let out = run(&persist);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("attached the keepalive program"), "{}", stderr(&out));
    assert_eq!(ours(&cg.dir).len(), 1);
    let again = run(&persist);
    assert!(stderr(&again).contains("nothing changed"), "{}", stderr(&again));
    assert_eq!(ours(&cg.dir).len(), 1);

    // The server restarts (a new listener): no fix runs, the kernel cures its connections.
    cg.kill_servers();
    let pid = cg.server(port, sink_port);
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let carried = || crate::servers::carried(port, &client);
    assert!(wait_until(Duration::from_secs(3), || carried()["keepidle_s"] == 2), "{}", carried());
    let o = carried();
    assert_eq!(
        (o["so_keepalive"].as_bool(), o["keepintvl_s"].as_u64(), o["keepcnt"].as_u64()),
        (Some(true), Some(1), Some(3))
    );
    assert_eq!(o["user_timeout_ms"], 0);
    let ss = Command::new("ss").args(["-tnoH", "state", "established", &format!("sport = :{port}")]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&ss.stdout).contains("timer:(keepalive"),
        "{}",
        String::from_utf8_lossy(&ss.stdout)
    );
    // The server's own outgoing connection (an active open) carries nothing.
    let (_to_sink, _) = sink.accept().unwrap();
    let v = json(&["sockets", "--dport", &sink_port.to_string(), "-O", "--pid", &pid.to_string()]);
    let outgoing = &v["sockets"][0]["sockopts"];
    assert_eq!(outgoing["so_keepalive"], false, "{v:#}");

    // sockets -O and verify say the port has a kernel cure.
    let table = stdout(&run(&["sockets", "--sport", &port_s, "-O"]));
    assert!(table.contains(&format!("in cgroup {} gives every connection accepted on :{port}", cg.rel)), "{table}");
    let v = json(&["sockets", "--sport", &port_s, "-O"]);
    assert_eq!(v["cures"][0]["ports"], serde_json::json!([port]), "{v:#}");
    let (_, v, _) = crate::util::subcommand_json("verify", &[&format!("127.0.0.1:{port}"), "--max-detect", "1000"]);
    assert_eq!(v["cures"][0]["cgroup"], cg.rel.as_str(), "{v:#}");

    if have_nft() {
        let (status, v, err) = crate::util::subcommand_json(
            "verify",
            &[&format!("127.0.0.1:{port}"), "--drill", "--timeout", "15", "--max-detect", "1000"],
        );
        assert_eq!(status, 0, "{v:#}\n{err}");
        let ms = v["drill"]["dropped_after_ms"].as_u64().expect("dropped");
        assert!((3500..=6500).contains(&ms), "dropped after {ms} ms");
    }

    let list = json(&["fix", "--list", "--cgroup", &cg.rel]);
    let cures = list.as_array().unwrap();
    assert_eq!(cures.len(), 1, "{list:#}");
    assert_eq!(cures[0]["cgroup"], cg.rel.as_str());
    assert_eq!(cures[0]["ports"], serde_json::json!([port]));
    let table = stdout(&run(&["fix", "--list", "--cgroup", &cg.rel]));
    assert!(table.contains("TCP_KEEPIDLE 2") && table.contains(&format!(":{port}")), "{table}");

    let removed = run(&["fix", "--remove", "--cgroup", &cg.rel, "--port", &port_s]);
    assert!(stdout(&removed).contains("detached the keepalive program"), "{}", stdout(&removed));
    assert!(ours(&cg.dir).is_empty());
    assert_eq!(json(&["fix", "--list", "--cgroup", &cg.rel]).as_array().unwrap().len(), 0);
}

/// Host-wide (`--persist` without `--cgroup`: the cgroup2 root): a server started afterwards
/// anywhere is cured on that port only; one on another port is untouched.
#[test]
fn a_host_wide_cure_covers_its_port_only() {
    if !require(is_root() && cgroup2_mount().is_some(), "root and a cgroup2 mount") {
        return;
    }
    let (port, other) = (crate::servers::free_port(), crate::servers::free_port());
    let port_s = port.to_string();
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = run(&["fix", "--remove", "--port", &self.0]);
        }
    }
    let out = run(&["fix", "--persist", "--port", &port_s]);
    let _remove = Remove(port_s.clone());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing listens on"), "{}", stderr(&out));
    let a = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let b = std::net::TcpListener::bind(("127.0.0.1", other)).unwrap();
    let ca = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let cb = TcpStream::connect(("127.0.0.1", other)).unwrap();
    let (_sa, _) = a.accept().unwrap();
    let (_sb, _) = b.accept().unwrap();
    let cured = crate::servers::carried(port, &ca);
    assert_eq!((cured["keepidle_s"].as_u64(), cured["user_timeout_ms"].as_u64()), (Some(10), Some(25_000)), "{cured}");
    assert_eq!(crate::servers::carried(other, &cb)["so_keepalive"], false);
    let list = json(&["fix", "--list"]);
    assert!(list.as_array().unwrap().iter().any(|c| c["cgroup"] == "/" && c["ports"] == serde_json::json!([port])));
}

/// Where the kernel refuses `bpf(2)` (here: CAP_BPF and CAP_SYS_ADMIN dropped from the bounding
/// set, as in a locked-down container), `--persist` says so in one line, fixes what exists now
/// through `pidfd_getfd` as without it, points at `--follow`, and exits 1.
#[test]
fn without_bpf_persist_falls_back_and_says_why() {
    let have_setpriv = Command::new("setpriv").arg("--version").output().is_ok_and(|o| o.status.success());
    if !require(is_root() && have_setpriv, "root and setpriv (util-linux)") {
        return;
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (_server_end, _) = listener.accept().unwrap();
    let out = Command::new("setpriv")
        .args(["--bounding-set", "-bpf,-sys_admin,-perfmon", "--"])
        .arg(env!("CARGO_BIN_EXE_webui-doctor"))
        .args(["fix", "--persist", "--port", &port.to_string(), "--allow-override"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("the kernel cure is not available here").count(), 1, "{err}");
    assert!(err.contains(&format!("keep `webui-doctor fix --port {port} --follow` running")), "{err}");
    // What exists now was fixed all the same.
    assert_eq!(crate::servers::carried(port, &client)["keepidle_s"], 10);
    assert!(json(&["fix", "--list"]).as_array().unwrap().iter().all(|c| c["ports"] != serde_json::json!([port])));
}

/// `deploy/systemd/webui-doctor-persist@.service`, run as systemd would (its ExecStart, then its
/// ExecStop, with the instance port): the cure is attached, then gone.
#[test]
fn the_persist_unit_attaches_and_detaches() {
    if !require(is_root() && cgroup2_mount().is_some(), "root and a cgroup2 mount") {
        return;
    }
    let unit =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/systemd/webui-doctor-persist@.service"))
            .unwrap();
    let port = crate::servers::free_port().to_string();
    let command = |key: &str| -> Vec<String> {
        let line = unit.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key}"));
        let words: Vec<String> = line.split_whitespace().map(|w| w.replace("%i", &port)).collect();
        assert_eq!(words[0], "/usr/bin/webui-doctor");
        words[1..].to_vec()
    };
    let start = command("ExecStart=");
    let stop = command("ExecStop=");
    struct Stop(Vec<String>);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = cmd().args(&self.0).output();
        }
    }
    let out = cmd().args(&start).output().unwrap();
    let _stop = Stop(stop.clone());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let has = || {
        json(&["fix", "--list"])
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["ports"] == serde_json::json!([port.parse::<u16>().unwrap()]))
    };
    assert!(has());
    assert!(cmd().args(&stop).output().unwrap().status.success());
    assert!(!has());
}

/// A cgroup named as Docker names a container's (`docker-<id>.scope`): its sockets carry the
/// workload (`container`, the short id), `--by workload` groups by it, and `fix --persist
/// --container ID`, `--list --container`, `--remove --container` find the cgroup by the id.
#[test]
fn a_container_cgroup_is_named_and_cured_by_its_id() {
    if !require(is_root() && cgroup2_mount().is_some(), "root and a cgroup2 mount") {
        return;
    }
    // A made-up id that starts with this test's pid, so parallel runs do not meet.
    let id = format!("{:08x}{}", std::process::id(), "ab12".repeat(14));
    let mut cg = TestCgroup::at(&format!("/docker-{id}.scope"));
    let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = crate::servers::free_port();
    cg.server(port, sink.local_addr().unwrap().port());
    let v = json(&["sockets", "-e", "--sport", &port.to_string(), "--state", "listening"]);
    let w = &v["sockets"][0]["workload"];
    assert_eq!(
        (w["kind"].as_str(), w["name"].as_str(), w["id"].as_str()),
        (Some("container"), Some(&id[..12]), Some(id.as_str())),
        "{v:#}"
    );
    let by = json(&["sockets", "--by", "workload", "--sport", &port.to_string()]);
    assert!(by["groups"].as_array().unwrap().iter().any(|g| g["key"] == format!("container {}", &id[..12])), "{by:#}");

    let short = &id[..12];
    let out = run(&["fix", "--persist", "--container", short, "--port", &port.to_string(), "--allow-override"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("to cgroup {}", cg.rel)), "{}", stderr(&out));
    let list = json(&["fix", "--list", "--container", short]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list:#}");
    assert_eq!(list[0]["cgroup"], cg.rel.as_str());
    assert!(stdout(&run(&["fix", "--remove", "--container", short, "--port", &port.to_string()])).contains("detached"));
    assert!(ours(&cg.dir).is_empty());
    let missing = run(&["fix", "--list", "--container", "0123456789ab"]);
    assert_eq!(code(&missing), 2);
    assert!(
        stderr(&missing).contains("no cgroup of a container whose id starts with 0123456789ab"),
        "{}",
        stderr(&missing)
    );
}

/// A pre-forking server (one listener, two forked workers accepting on it) and a `SO_REUSEPORT`
/// pair of listeners, in a cgroup with the cure: every worker's and every listener's accepted
/// connections are cured. `--remove` leaves a program that is not webui-doctor's attached.
#[test]
fn every_worker_and_reuseport_listener_is_cured_and_others_programs_stay() {
    if !require(is_root() && cgroup2_mount().is_some(), "root and a cgroup2 mount") {
        return;
    }
    const SERVERS: &str = r#"
import os, socket, sys, time
sys.stdin.readline()
port, pair = int(sys.argv[1]), int(sys.argv[2])
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port)); l.listen()
held = []
for _ in range(2):
    if os.fork() == 0:
        while True: held.append(l.accept()[0])
rp = []
for _ in range(2):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    s.bind(("127.0.0.1", pair)); s.listen(); rp.append(s)
for s in rp:
    if os.fork() == 0:
        while True: held.append(s.accept()[0])
print("ready", flush=True)
sys.stdin.readline()
"#;
    let mut cg = TestCgroup::new("workers");
    let (port, pair) = (crate::servers::free_port(), crate::servers::free_port());
    let out = run(&["fix", "--persist", "--cgroup", &cg.rel, "--port", &port.to_string(), "--port", &pair.to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let mut child = Command::new("python3")
        .args(["-c", SERVERS, &port.to_string(), &pair.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(cg.dir.join("cgroup.procs"), child.id().to_string()).unwrap();
    child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    cg.children.push(child);
    for p in [port, pair] {
        let clients: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(("127.0.0.1", p)).unwrap()).collect();
        // Whichever worker took each one, every accepted connection carries the options.
        let all = || {
            let v = json(&["sockets", "--sport", &p.to_string(), "--state", "established", "-O"]);
            let s = v["sockets"].as_array().unwrap().clone();
            s.len() == clients.len() && s.iter().all(|x| x["sockopts"]["keepidle_s"] == 10)
        };
        assert!(wait_until(Duration::from_secs(3), all), ":{p}: not every connection is cured");
    }

    // Someone else's sock_ops program on the same cgroup (a stand-in: r0 = 1; exit).
    let other = other_program();
    let cgroup = webui_doctor::cure::open_cgroup(&cg.dir).unwrap();
    attach_raw(&cgroup, &other);
    let removed = run(&["fix", "--remove", "--all", "--cgroup", &cg.rel]);
    assert!(stdout(&removed).contains("detached"), "{}", stdout(&removed));
    assert!(ours(&cg.dir).is_empty());
    let left = webui_doctor::cure::query(&cgroup).unwrap();
    assert_eq!(left.len(), 1, "the other program must stay: {left:?}");
}

/// A two-instruction sock_ops program named `other_tool`, loaded with bpf(2) directly.
fn other_program() -> std::os::fd::OwnedFd {
    use std::os::fd::FromRawFd;
    let code: Vec<u8> = [[0xb7u8, 0, 0, 0, 1, 0, 0, 0], [0x95, 0, 0, 0, 0, 0, 0, 0]].concat();
    let license = c"GPL";
    let mut a = [0u8; webui_doctor::os::BPF_ATTR_SIZE];
    a[0..4].copy_from_slice(&13u32.to_ne_bytes());
    a[4..8].copy_from_slice(&2u32.to_ne_bytes());
    a[8..16].copy_from_slice(&(code.as_ptr() as u64).to_ne_bytes());
    a[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
    a[48..58].copy_from_slice(b"other_tool");
    let fd = webui_doctor::os::bpf(5, &mut a).expect("loading the other program");
    // SAFETY: a new descriptor from bpf(2), owned by nothing else.
    unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }
}

fn attach_raw(cgroup: &std::fs::File, prog: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut a = [0u8; webui_doctor::os::BPF_ATTR_SIZE];
    a[0..4].copy_from_slice(&(cgroup.as_raw_fd() as u32).to_ne_bytes());
    a[4..8].copy_from_slice(&(prog.as_raw_fd() as u32).to_ne_bytes());
    a[8..12].copy_from_slice(&3u32.to_ne_bytes());
    a[12..16].copy_from_slice(&2u32.to_ne_bytes());
    webui_doctor::os::bpf(8, &mut a).expect("attaching the other program");
}
