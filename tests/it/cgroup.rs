//! Cgroup v2 paths: a process the test moves into a cgroup it creates under the cgroup2 mount
//! shows that path (as `ss --cgroup` does), and `--cgroup` selects exactly its sockets. Needs
//! root and a cgroup2 mount; runs for real in CI.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::util::*;

fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
    })
}

/// A cgroup made for the test, with a Python process in it; the process is killed and the
/// cgroup removed on drop, even when the test fails.
struct Contained {
    dir: PathBuf,
    child: Child,
}

impl Drop for Contained {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Waits for `go` on stdin (so it can be moved first), then opens a listener and 3 connected
/// pairs, closes one client end, and prints `ready PORT`.
const SCRIPT: &str = r#"
import socket, sys
sys.stdin.readline()
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
pairs = [(socket.create_connection(l.getsockname()), l.accept()[0]) for _ in range(3)]
pairs[0][0].close()
print("ready", l.getsockname()[1], flush=True)
sys.stdin.readline()
"#;

#[test]
fn cgroup_path_and_selection() {
    let mount = cgroup2_mount();
    if !require(is_root() && mount.is_some(), "root and a cgroup2 mount") {
        return;
    }
    let name = format!("wd-test-{}", std::process::id());
    let dir = mount.unwrap().join(&name);
    std::fs::create_dir(&dir).expect("creating a cgroup");
    let child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut c = Contained { dir, child };
    std::fs::write(c.dir.join("cgroup.procs"), c.child.id().to_string()).expect("moving the process");
    c.child.stdin.as_mut().unwrap().write_all(b"go\n").unwrap();
    let mut line = String::new();
    BufReader::new(c.child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let port: u16 = line.trim().strip_prefix("ready ").unwrap().parse().unwrap();
    let path = format!("/{name}");

    // Each of the process's sockets: the listener, 3 accepted, 2 open client ends (the third
    // closed: its server end is in CLOSE-WAIT). The closed client's FIN-WAIT-2 end is an orphan
    // with no cgroup any more.
    let v = json(&["sockets", "-e", "--port", &port.to_string()]);
    let sockets = v["sockets"].as_array().unwrap();
    let in_cgroup = sockets.iter().filter(|s| s["cgroup"] == path.as_str()).count();
    assert_eq!(in_cgroup, 4, "listener + 3 accepted: {v:#}");
    let ss = Command::new("ss").args(["-tan", "--cgroup", &format!("sport = :{port}")]).output().unwrap();
    let ss_count = String::from_utf8_lossy(&ss.stdout).matches(&format!("cgroup:{path}")).count();
    assert_eq!(ss_count, in_cgroup, "ss --cgroup agrees");

    // --cgroup selects the process's sockets on every port: its client ends too, nothing else.
    let v = json(&["sockets", "-p", "--cgroup", &path]);
    let selected = v["sockets"].as_array().unwrap();
    assert_eq!(selected.len(), 6, "{v:#}");
    assert!(selected.iter().all(|s| s["process"]["pid"] == c.child.id()), "{v:#}");
    assert_eq!(v["filters"]["cgroup"], path.as_str());
    // A path written without the leading slash, or with a trailing one, is the same cgroup;
    // a sibling whose name starts the same is not.
    assert_eq!(json(&["sockets", "--cgroup", &format!("{name}/")])["summary"]["total"], 6);
    assert_eq!(json(&["sockets", "--cgroup", &format!("{path}x")])["summary"]["total"], 0);

    // The table's extended column, and --by cgroup.
    let table = stdout(&run(&["sockets", "-e", "--port", &port.to_string()]));
    assert!(table.lines().next().unwrap().contains("Cgroup") && table.contains(&path), "{table}");
    let v = json(&["sockets", "--by", "cgroup", "--port", &port.to_string()]);
    let group = v["groups"].as_array().unwrap().iter().find(|g| g["key"] == path.as_str()).unwrap();
    assert_eq!(group["summary"]["total"], 4);
    assert_eq!(group["summary"]["by_state"]["close-wait"], 1);

    // procfs has no cgroup: --cgroup is refused, not answered with nothing.
    let out = run(&["sockets", "--source", "procfs", "--cgroup", &path]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--cgroup needs the netlink source"), "{}", stderr(&out));
}
