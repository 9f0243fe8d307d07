//! `--netns NAME` reads the sockets of a namespace the test creates with `ip netns add`, and only
//! those. Needs root; runs for real in CI.

use std::net::{TcpListener, TcpStream};
use std::process::Command;

use crate::util::*;

#[test]
fn netns_lists_the_namespaces_sockets_only() {
    if !require(is_root(), "root (ip netns add)") {
        return;
    }
    let ns = Netns::create("list");
    let (listener, client, server) = ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (l, c, s)
    });
    let inode = inode_of(&listener);
    for source in ["netlink", "procfs"] {
        let v = json(&["sockets", "--netns", &ns.0, "--source", source]);
        assert_eq!(v["filters"]["netns"], ns.0.as_str());
        assert_eq!(v["summary"]["total"], 3, "{source}: a fresh namespace holds only the test's sockets: {v:#}");
        assert_eq!(v["summary"]["by_state"]["listening"], 1);
        assert_eq!(v["summary"]["by_state"]["established"], 2);
        let listen = v["sockets"].as_array().unwrap().iter().find(|s| s["state"] == "listening").unwrap();
        assert_eq!(listen["inode"], inode);
        assert_eq!(listen["local"], listener.local_addr().unwrap().to_string());
    }
    // From the host's namespace the listener is not visible.
    let v = json(&["sockets", "--state", "listening"]);
    assert!(v["sockets"].as_array().unwrap().iter().all(|s| s["inode"] != inode), "host sees the namespace's socket");

    let out = run(&["sockets", "--netns", &ns.0, "--summary"]);
    assert!(stdout(&out).contains(&format!("netns {}", ns.0)), "{}", stdout(&out));
    drop((client, server));
}

/// A listener and a connected pair inside `ns`; returns the listener's inode and the sockets.
fn three_sockets(ns: &Netns) -> (u64, (TcpListener, TcpStream, TcpStream)) {
    let sockets = ns.run(|| {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        (l, c, s)
    });
    (inode_of(&sockets.0), sockets)
}

/// A process living in `ns` (a container's stand-in), killed on drop.
struct Resident(std::process::Child);

impl Drop for Resident {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn netns_pid_reads_a_process_namespace() {
    if !require(is_root(), "root (ip netns add)") {
        return;
    }
    let ns = Netns::create("pid");
    let (inode, held) = three_sockets(&ns);
    let resident = Resident(Command::new("ip").args(["netns", "exec", &ns.0, "sleep", "60"]).spawn().unwrap());
    let pid = resident.0.id().to_string();
    // `ip netns exec` enters the namespace, then execs sleep under the same pid.
    assert!(wait_until(std::time::Duration::from_secs(5), || {
        std::fs::read_link(format!("/proc/{pid}/ns/net")).ok()
            == std::fs::metadata(format!("/run/netns/{}", ns.0))
                .ok()
                .map(|m| std::path::PathBuf::from(format!("net:[{}]", std::os::unix::fs::MetadataExt::ino(&m))))
    }));
    let v = json(&["sockets", "--netns-pid", &pid]);
    assert_eq!(v["summary"]["total"], 3, "{v:#}");
    assert!(v["sockets"].as_array().unwrap().iter().any(|s| s["inode"] == inode));
    assert_eq!(v["filters"]["netns"], format!("pid:{pid}"));
    let out = run(&["sockets", "--netns-pid", "999999999"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("network namespace 'pid:999999999' not found"), "{}", stderr(&out));
    drop(held);
}

#[test]
fn all_netns_reads_every_namespace_once() {
    if !require(is_root(), "root (ip netns add)") {
        return;
    }
    let (a, b) = (Netns::create("all-a"), Netns::create("all-b"));
    let (inode_a, held_a) = three_sockets(&a);
    let (inode_b, held_b) = three_sockets(&b);
    // A process inside `a` must not make it count twice.
    let _resident = Resident(Command::new("ip").args(["netns", "exec", &a.0, "sleep", "60"]).spawn().unwrap());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let v = json(&["sockets", "--all-netns"]);
    let sockets = v["sockets"].as_array().unwrap();
    for (ns, inode) in [(&a, inode_a), (&b, inode_b)] {
        let mine: Vec<&serde_json::Value> = sockets.iter().filter(|s| s["netns"] == ns.0.as_str()).collect();
        assert_eq!(mine.len(), 3, "{}: {mine:#?}", ns.0);
        assert_eq!(sockets.iter().filter(|s| s["inode"] == inode).count(), 1, "the listener once");
        let group = v["groups"].as_array().unwrap().iter().filter(|g| g["key"] == ns.0.as_str()).count();
        assert_eq!(group, 1, "one group per namespace");
    }
    assert_eq!(v["grouped_by"], "netns");
    assert_eq!(v["namespaces_skipped"], 0, "root enters every namespace");
    let labels: Vec<&str> = sockets.iter().map(|s| s["netns"].as_str().expect("every socket is tagged")).collect();
    assert!(labels.iter().all(|l| !l.is_empty()));
    // Findings say which namespace they are about: the listener's established pairs have no
    // keepalive in each namespace.
    let missing: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "keepalive-missing")
        .map(|f| f["netns"].as_str().unwrap())
        .collect();
    assert!(missing.contains(&a.0.as_str()) && missing.contains(&b.0.as_str()), "{missing:?}");
    // A process filter keeps each namespace's sockets together and labelled: the listener of a
    // process living in `b` only.
    let mut child = Command::new("ip")
        .args(["netns", "exec", &b.0, "python3", "-c"])
        .arg("import socket,time; l=socket.socket(); l.bind(('127.0.0.1',0)); l.listen(); print(l.getsockname()[1], flush=True); time.sleep(60)")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let listener = Resident(child);
    let v = json(&["sockets", "--all-netns", "--pid", &listener.0.id().to_string()]);
    let only: Vec<&serde_json::Value> = v["sockets"].as_array().unwrap().iter().collect();
    assert_eq!(only.len(), 1, "{v:#}");
    assert_eq!(only[0]["netns"], b.0.as_str());
    assert_eq!(only[0]["local"], format!("127.0.0.1:{}", line.trim()));
    drop(listener);

    // Without CAP_SYS_ADMIN no namespace can be entered: an error, not an empty report.
    let out = run_as_nobody(&["sockets", "--all-netns"]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(stderr(&out).contains("no network namespace could be entered (needs CAP_SYS_ADMIN)"), "{}", stderr(&out));
    let table = stdout(&run(&["sockets", "--all-netns", "--state", "listening"]));
    assert!(table.lines().next().unwrap().contains("Netns") && table.contains(&a.0), "{table}");
    drop((held_a, held_b));
}

/// A server inside a namespace the test made: `sockets --all-netns` prints a cure that names the
/// namespace, and that command, run as printed, cures it; `fix --pid PID` of a process in the
/// namespace reads that namespace and cures it too. The initial namespace is `host`.
#[test]
fn a_server_in_a_namespace_is_cured_by_the_command_printed_for_it() {
    if !require(is_root(), "root (ip netns add, pidfd_getfd)") {
        return;
    }
    const SERVER: &str = "import socket, threading, time\n\
        l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\n\
        print(l.getsockname()[1], flush=True)\n\
        held = []\n\
        while True: held.append(l.accept()[0])\n";
    let ns = Netns::create("cure");
    let start = || {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &ns.0, "python3", "-c", SERVER])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        let port: u16 = line.trim().parse().unwrap();
        (Resident(child), port)
    };
    let (first, port) = start();
    let _client = ns.run(move || TcpStream::connect(("127.0.0.1", port)).unwrap());
    let keepidle = |port: u16| {
        let v = json(&["sockets", "--netns", &ns.0, "--sport", &port.to_string(), "--state", "established", "-O"]);
        v["sockets"][0]["sockopts"]["keepidle_s"].clone()
    };
    assert!(wait_until(std::time::Duration::from_secs(3), || keepidle(port) == 7200));

    let v = json(&["sockets", "--all-netns"]);
    assert!(v["sockets"].as_array().unwrap().iter().all(|s| s["netns"] != "pid:1"), "the initial namespace is host");
    let cure = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == "keepalive-missing" && f["netns"] == ns.0.as_str())
        .and_then(|f| f["cure"].as_str())
        .unwrap_or_else(|| panic!("no cure for {}: {:#}", ns.0, v["findings"]))
        .to_owned();
    assert_eq!(cure, format!("webui-doctor fix --netns {} --port {port}", ns.0));
    let words: Vec<&str> = cure.split_whitespace().skip(1).collect();
    let out = run(&words);
    assert_eq!(code(&out), 0, "{cure}: {}", stderr(&out));
    assert_eq!(keepidle(port), 10, "{cure} did not reach the connection");
    drop(first);

    let (second, port) = start();
    let _client = ns.run(move || TcpStream::connect(("127.0.0.1", port)).unwrap());
    assert!(wait_until(std::time::Duration::from_secs(3), || keepidle(port) == 7200));
    let out = run(&["fix", "--pid", &second.0.id().to_string()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(keepidle(port), 10);
    // verify connects from inside the namespace too.
    let target = format!("127.0.0.1:{port}");
    let out = run(&[
        "verify",
        "--netns",
        &ns.0,
        &target,
        "--expect-idle",
        "10",
        "--expect-user-timeout",
        "25",
        "--max-detect",
        "60",
    ]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    // From the host, nothing listens there.
    assert_ne!(code(&run(&["verify", &target])), 0);
}

/// `fix --persist --netns NAME`: the kernel cure, attached host-wide, is limited to that
/// namespace by its cookie: a server restarted inside gets the options at the handshake, a host
/// server on the same port number does not.
#[test]
fn a_persisted_cure_for_a_namespace_stays_in_it() {
    let mount = webui_doctor::cgroup::mount_point(&webui_doctor::model::ProcPaths::default());
    if !require(is_root() && mount.is_some(), "root, ip netns add and a cgroup2 mount") {
        return;
    }
    let ns = Netns::create("persist");
    let host = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = host.local_addr().unwrap().port();
    struct Remove(String);
    impl Drop for Remove {
        fn drop(&mut self) {
            let _ = run(&["fix", "--remove", "--port", &self.0]);
        }
    }
    let out = run(&["fix", "--persist", "--netns", &ns.0, "--port", &port.to_string()]);
    let _remove = Remove(port.to_string());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stderr(&out).contains("in the network namespace with cookie"), "{}", stderr(&out));
    // Inside: a listener made after the cure (no fix ever ran on it).
    let keepidle_inside = ns.run(move || {
        let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (s, _) = l.accept().unwrap();
        webui_doctor::os::get_sockopts(&s).unwrap().keepidle_s
    });
    assert_eq!(keepidle_inside, 10);
    // The host's server on the same port number: untouched.
    let _c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (s, _) = host.accept().unwrap();
    let o = webui_doctor::os::get_sockopts(&s).unwrap();
    assert!(!o.so_keepalive, "{o:?}");
}
