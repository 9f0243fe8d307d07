//! The parts that act as root touch only what was selected, and never for a caller who could not
//! do it alone: a set-uid install refuses to act, a fake `/proc` cannot choose what `fix` ends,
//! no program is found through the caller's `PATH`, and a copy never re-tags another net_cls
//! class. Each tried for real, as the review that found them did.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::fix::PyServer;
use crate::server::have_nft;
use crate::util::*;

/// A directory holding a fake `nft` that leaves a mark when run: the proof it never is.
struct FakeNft {
    dir: tempfile::TempDir,
}

impl FakeNft {
    fn new() -> FakeNft {
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        let script = dir.path().join("nft");
        std::fs::write(&script, format!("#!/bin/sh\ntouch {}\nexit 0\n", dir.path().join("ran").display())).unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        FakeNft { dir }
    }

    fn path_var(&self) -> String {
        format!("{}:{}", self.dir.path().display(), std::env::var("PATH").unwrap_or_default())
    }

    fn ran(&self) -> bool {
        self.dir.path().join("ran").exists()
    }
}

/// A set-uid root copy of the binary, run as `nobody` with a `PATH` that finds a fake `nft`
/// first: every command that acts on another process, enters a namespace or runs a program
/// refuses with one line and exit 2, and the fake is never run.
#[test]
fn a_setuid_copy_refuses_to_act() {
    if !require(is_root(), "root (a set-uid copy and setpriv)") {
        return;
    }
    let server = PyServer::start(60.0);
    let port = server.port.to_string();
    let _client = server.stream();
    let nft = FakeNft::new();
    let (_dir, copy) = binary_copy(0o4755);
    let addr = server.addr();
    let cases: &[&[&str]] = &[
        &["verify", &addr, "--drill", "--timeout", "2"],
        &["verify", &addr],
        &["fix", "--port", &port],
        &["fix", "--port", &port, "--close-wait"],
        &["sockets", "-O", "--port", &port],
        &["sockets", "--netns", "x"],
        &["events", "--netns", "x", "--count", "1"],
    ];
    let before = ss_sockets(server.port);
    for args in cases {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&copy)
            .args(*args)
            .env("PATH", nft.path_var())
            .env_remove("SUDO_UID")
            .output()
            .unwrap();
        let err = stderr(&out);
        assert_eq!(code(&out), 2, "{args:?}: {err}");
        assert_eq!(
            err.trim(),
            "webui-doctor: webui-doctor must not be installed set-uid; run it with sudo",
            "{args:?}"
        );
    }
    assert!(!nft.ran(), "the caller's nft was run");
    assert_eq!(ss_sockets(server.port).len(), before.len(), "a socket of the server changed");
    // Listing stays open to the set-uid copy: it acts on nothing.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&copy)
        .args(["sockets", "--port", &port, "--summary"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

/// As root, not set-uid: the drill's `nft` is the system's, found by absolute path, whatever
/// `PATH` says.
#[test]
fn the_drill_never_looks_nft_up_in_path() {
    if !require(is_root() && have_nft(), "root and nft") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::thread::spawn(move || {
        let (s, _) = listener.accept().unwrap();
        socket2::SockRef::from(&s).set_keepalive(true).unwrap();
        std::thread::sleep(Duration::from_secs(4));
        drop(s);
    });
    let nft = FakeNft::new();
    let out = cmd()
        .args(["verify", &addr.to_string(), "--drill", "--timeout", "1"])
        .env("PATH", nft.path_var())
        .output()
        .unwrap();
    accepted.join().unwrap();
    assert!(!nft.ran(), "nft was looked up through PATH");
    // The real nft installed the rule: the drill ran to its timeout (not dropped in 1 s at
    // the kernel's default 2 h idle), and said so.
    assert_eq!(code(&out), 1, "{}{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("drill: NOT dropped within"), "{}", stdout(&out));
}

/// One line of `/proc/net/tcp` for a real socket, in a state of the caller's choosing.
fn tcp_line(n: usize, local: std::net::SocketAddr, peer: std::net::SocketAddr, state: u8, inode: u64) -> String {
    let hex = |a: std::net::SocketAddr| match a {
        std::net::SocketAddr::V4(v4) => format!("{:08X}:{:04X}", u32::from_le_bytes(v4.ip().octets()), v4.port()),
        _ => unreachable!("IPv4 only"),
    };
    format!(
        "{n:4}: {} {} {state:02X} 00000000:00000000 00:00000000 00000000     0        0 {inode} 1 0000000000000000 20 4 30 10 -1\n",
        hex(local),
        hex(peer)
    )
}

/// A fake `/proc` that names a real ESTABLISHED connection CLOSE-WAIT, owned (by fd number) by
/// this test process. Run as root with `SUDO_UID` set (`sudo -E`), and run as root without it:
/// `fix --close-wait --source procfs` reads the real tables either way and leaves the
/// connection as it is, checked with `ss`.
#[test]
fn a_fake_proc_tree_cannot_choose_what_fix_ends() {
    if !require(is_root(), "root (pidfd_getfd on this process)") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    let tree = tempfile::tempdir().unwrap();
    let me = tree.path().join(std::process::id().to_string());
    std::fs::create_dir_all(tree.path().join("net")).unwrap();
    std::fs::create_dir_all(me.join("fd")).unwrap();
    std::fs::write(me.join("comm"), "victim\n").unwrap();
    let mut tcp = String::from(
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
    );
    tcp += &tcp_line(0, listener.local_addr().unwrap(), "0.0.0.0:0".parse().unwrap(), 0x0A, inode_of(&listener));
    tcp += &tcp_line(1, server.local_addr().unwrap(), server.peer_addr().unwrap(), 0x08, inode_of(&server));
    std::fs::write(tree.path().join("net/tcp"), tcp).unwrap();
    std::fs::write(tree.path().join("net/tcp6"), "  sl  local_address\n").unwrap();
    for (fd, inode) in [(listener.as_raw_fd(), inode_of(&listener)), (server.as_raw_fd(), inode_of(&server))] {
        std::os::unix::fs::symlink(format!("socket:[{inode}]"), me.join("fd").join(fd.to_string())).unwrap();
    }
    let established =
        || ss_sockets(port).iter().filter(|s| s.state == "ESTAB" && s.local.ends_with(&format!(":{port}"))).count();
    assert_eq!(established(), 1);
    for sudo in [true, false] {
        let mut c = cmd();
        c.args(["fix", "--port", &port.to_string(), "--close-wait", "--source", "procfs", "--format", "json"])
            .env("PROC_ROOT", tree.path());
        if sudo {
            c.env("SUDO_UID", "1000");
        }
        let out = c.output().unwrap();
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
        assert_eq!(v["summary"]["close_wait"], 0, "sudo {sudo}: {v:#}");
        assert_eq!(v["summary"]["closed"], 0, "sudo {sudo}: {v:#}");
        assert_eq!(established(), 1, "sudo {sudo}: the real connection was ended");
    }
    // Listing as an ordinary user still reads the fixture (its own choice, its own privilege),
    // but not once SUDO_UID says root is acting for someone.
    let total = |sudo: bool| {
        let mut c = cmd();
        c.args(["sockets", "--source", "procfs", "--port", &port.to_string(), "--format", "json"])
            .env("PROC_ROOT", tree.path());
        if sudo {
            c.env("SUDO_UID", "1000");
        }
        let v: serde_json::Value = serde_json::from_slice(&c.output().unwrap().stdout).unwrap();
        v["summary"]["by_state"]["close-wait"].as_u64().unwrap_or(0)
    };
    assert_eq!(total(false), 1, "the fixture is read for listing");
    assert_eq!(total(true), 0, "PROC_ROOT was honoured with SUDO_UID set");
    drop((client, server));
}

/// The `class_id` `ss --tos` shows for every socket on `port`.
fn class_ids(port: u16) -> Vec<String> {
    let out = Command::new("ss").args(["-tan", "--tos", "sport", "=", &format!(":{port}")]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("class_id:").map(str::to_owned))
        .collect()
}

/// `webui-doctor ARGS` started inside the net_cls group `group`.
fn in_group(group: &Path, args: &[&str]) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("echo $$ > {}/cgroup.procs && exec \"$0\" \"$@\"", group.display()))
        .arg(env!("CARGO_BIN_EXE_webui-doctor"))
        .args(args);
    for var in ENV_READ {
        c.env_remove(var);
    }
    c
}

/// A server in one net_cls group, the caller in another: `-O`, `fix` and `fix --follow` each
/// leave the server's class id as it was (a copy would stamp the caller's), and the follow logs
/// the listener as skipped, once, never as applied.
#[test]
fn a_caller_in_another_net_cls_class_leaves_the_class_alone() {
    if !require(is_root(), "root (cgroups and pidfd_getfd)") {
        return;
    }
    let cg = NetCls::new();
    if !require(cg.is_some(), "the cgroup-v1 net_cls controller") {
        return;
    }
    let mut cg = cg.unwrap();
    let (server_group, caller_group): (PathBuf, PathBuf) = (cg.group("srv", "0x100001"), cg.group("cli", "0x100002"));
    let server = PyServer::start(60.0);
    NetCls::enter(&server_group, server.pid());
    let _stream = server.stream();
    let port = server.port;
    let before = class_ids(port);
    assert_eq!(before.len(), 2, "listener and connection: {before:?}");
    assert!(before.iter().all(|c| c != "0"), "the server's sockets carry its class: {before:?}");

    let out =
        in_group(&caller_group, &["sockets", "-O", "--port", &port.to_string(), "--format", "json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["attribution"]["sockopts_skipped_net_cls"], 2, "{v:#}");
    assert_eq!(class_ids(port), before, "-O re-tagged the server's sockets");

    let out = in_group(&caller_group, &["fix", "--port", &port.to_string()]).output().unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(stderr(&out).contains("net_cls/net_prio cgroup"), "{}", stderr(&out));
    assert_eq!(class_ids(port), before, "fix re-tagged the server's sockets");

    let mut follow = in_group(&caller_group, &["fix", "--port", &port.to_string(), "--follow", "0.5"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(follow.id() as i32, libc::SIGTERM) };
    let status = follow.wait().unwrap();
    let log: Vec<String> = BufReader::new(follow.stdout.take().unwrap()).lines().map_while(Result::ok).collect();
    assert_eq!(status.code(), Some(130), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("applied")), "{log:?}");
    assert_eq!(class_ids(port), before, "--follow re-tagged the server's sockets");
    drop(server);

    // The case the review found: the server in no class at all (the root group), the caller in
    // one. Comparing only the server's group let the copy stamp the caller's class on it.
    let root_server = PyServer::start(60.0);
    let _stream = root_server.stream();
    let port = root_server.port.to_string();
    assert_eq!(class_ids(root_server.port), ["0", "0"]);
    let out = in_group(&caller_group, &["sockets", "-O", "--port", &port, "--format", "json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["attribution"]["sockopts_skipped_net_cls"], 2, "{v:#}");
    let out = in_group(&caller_group, &["fix", "--port", &port]).output().unwrap();
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert_eq!(class_ids(root_server.port), ["0", "0"], "a caller's class was stamped on a root server's sockets");
}

/// `--follow --pid` follows that process and ends with it (exit 0, one line); `--follow --port`
/// names the new owner, uid included, in each re-apply line.
#[test]
fn follow_pid_ends_with_its_process_and_port_names_the_owner() {
    if !require(is_root(), "root (pidfd_getfd on the server)") {
        return;
    }
    let server = PyServer::start(60.0);
    let pid = server.pid().to_string();
    let mut follow = cmd().args(["fix", "--pid", &pid, "--follow", "0.3"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.starts_with("fix: ")), "the first fix ran");
    drop(server);
    let exited = wait_until(Duration::from_secs(5), || follow.try_wait().unwrap().is_some());
    if !exited {
        let _ = follow.kill();
    }
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(exited, "--follow --pid went on after its process exited: {rest:?}");
    assert_eq!(follow.wait().unwrap().code(), Some(0));
    assert!(rest.iter().any(|l| l.contains(&format!("process {pid} exited"))), "{rest:?}");

    let server = PyServer::start(60.0);
    let port = server.port;
    let mut follow =
        cmd().args(["fix", "--port", &port.to_string(), "--follow", "0.3"]).stdout(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(follow.stdout.take().unwrap()).lines();
    assert!(lines.by_ref().map_while(Result::ok).any(|l| l.starts_with("fix: ")), "the first fix ran");
    drop(server);
    let restarted = PyServer::on_port(60.0, port);
    let line = lines.map_while(Result::ok).find(|l| l.contains("applied") || l.contains("options set"));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(follow.id() as i32, libc::SIGTERM) };
    let _ = follow.wait();
    let line = line.expect("a re-apply line");
    assert!(line.contains(&format!("pid {} uid 0", restarted.pid())), "{line}");
}
