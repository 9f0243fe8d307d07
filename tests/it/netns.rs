//! `--netns NAME` reads the sockets of a namespace the test creates with `ip netns add`, and only
//! those. Needs root; runs for real in CI.

use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::process::Command;

use crate::util::*;

/// A named network namespace, deleted on drop even when the test fails.
struct Netns(String);

impl Netns {
    fn create(tag: &str) -> Netns {
        let name = format!("wd-test-{}-{tag}", std::process::id());
        let ok = |args: &[&str]| {
            let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
            assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        };
        ok(&["netns", "add", &name]);
        let ns = Netns(name);
        ok(&["-n", &ns.0, "link", "set", "lo", "up"]);
        ns
    }

    /// Runs `f` on a thread that has entered the namespace; sockets it creates live there.
    fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.0);
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).unwrap();
            // SAFETY: setns on this thread only, with a descriptor kept open for the call.
            assert_eq!(unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
            f()
        })
        .join()
        .unwrap()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

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
