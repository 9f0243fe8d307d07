//! Copies of sockets that other processes own, taken with `pidfd_getfd(2)`: how `-O` and `verify`
//! read the keepalive options actually set (sock_diag shows the timer, not the options), and how
//! `fix` changes them. Needs ptrace access to the owner: root or the same user.
//!
//! Every copy goes through one [`Copier`], because a copy is not as harmless as it looks:
//! - **Refused under set-uid.** A set-uid or file-capability install would take copies for a
//!   caller who could not ([`Copier::new`] fails with the refusal `main` prints).
//! - **The process selected, held.** A pidfd is taken for each owner when the sockets are chosen
//!   and kept until the action, so a pid reused in between is never the one copied from.
//! - **The socket selected, proven by the kernel.** A copy is used only when its inode, its
//!   64-bit cookie (`SO_COOKIE`, never reused while the kernel runs; compared wherever the dump
//!   gave one, which sock_diag does and `/proc/net/tcp` does not) and, for a connection, its two
//!   addresses are those of the socket chosen from the dump. A descriptor number that now names
//!   another file or another connection is left alone.
//! - **No re-tagging.** `pidfd_getfd` stamps the *caller's* cgroup-v1 `net_cls` class id and
//!   `net_prio` index on the socket it copies (seen: `class_id:0x100001` became `0`), which
//!   silently breaks tc and nftables `meta cgroup` rules for that service. A copy is taken only
//!   when the owner's class id and `net_prio` group are the caller's (so the stamp changes
//!   nothing), unless the caller forces it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use crate::error::SockOptError;
use crate::model::{SockOpts, Socket, SocketIdentity};
use crate::os;

/// Takes checked copies of other processes' sockets; one per command run.
pub struct Copier {
    proc_root: PathBuf,
    /// Read even from owners whose net_cls/net_prio membership differs from ours.
    force: bool,
    /// Where the cgroup-v1 net_cls hierarchy is mounted (read once), for class ids.
    mount: Option<PathBuf>,
    /// This process's net_cls/net_prio membership: what a copy would stamp.
    ours: NetClass,
    /// A pidfd per owner, taken at selection ([`Copier::hold`]); `Err` keeps why it failed.
    held: HashMap<u32, Result<OwnedFd, i32>>,
}

impl Copier {
    /// A copier reading `PID/cgroup` under `proc_root`. Refused under set-uid.
    pub fn new(proc_root: &Path, force: bool) -> Result<Copier, SockOptError> {
        if os::privileged_by_exec() {
            return Err(SockOptError::SetUid);
        }
        let mount = net_cls_mount();
        let ours = NetClass::of(Path::new("/proc/self/cgroup"), mount.as_deref());
        Ok(Copier { proc_root: proc_root.to_owned(), force, mount, ours, held: HashMap::new() })
    }

    /// Takes (once) the pidfd that every later copy from `pid` goes through.
    pub fn hold(&mut self, pid: u32) {
        self.held.entry(pid).or_insert_with(|| os::pidfd_open(pid).map_err(|e| e.raw_os_error().unwrap_or(0)));
    }

    /// Whether the process held for `pid` has exited (or could not be held).
    pub fn exited(&self, pid: u32) -> bool {
        match self.held.get(&pid) {
            Some(Ok(pidfd)) => os::pidfd_exited(pidfd),
            _ => true,
        }
    }

    /// Our own descriptor for `socket`, which `pid` holds as `fd`, after every check: the owner's
    /// net_cls/net_prio membership is ours (unless forced), and the copy is that socket.
    pub fn copy(&mut self, pid: u32, fd: i32, socket: &Socket) -> Result<OwnedFd, SockOptError> {
        if !self.force {
            let theirs = NetClass::of(&self.proc_root.join(pid.to_string()).join("cgroup"), self.mount.as_deref());
            if theirs != self.ours {
                return Err(SockOptError::NetCls { pid, cgroup: theirs.describe(), ours: self.ours.describe() });
            }
        }
        self.hold(pid);
        let pidfd = match &self.held[&pid] {
            Ok(pidfd) => pidfd,
            Err(errno) => {
                return Err(SockOptError::Duplicate { pid, fd, source: std::io::Error::from_raw_os_error(*errno) });
            }
        };
        let copy = os::pidfd_getfd(pidfd, fd).map_err(|source| SockOptError::Duplicate { pid, fd, source })?;
        let found = os::socket_identity(&copy).map_err(|source| SockOptError::Read { pid, source })?;
        if let Some(what) = mismatch(socket, &found) {
            return Err(SockOptError::NotSelected { pid, fd, what });
        }
        Ok(copy)
    }

    /// The options of `socket`, held by `pid` as `fd`.
    pub fn read(&mut self, pid: u32, fd: i32, socket: &Socket) -> Result<SockOpts, SockOptError> {
        let copy = self.copy(pid, fd, socket)?;
        os::get_sockopts(&copy).map_err(|source| SockOptError::Read { pid, source })
    }
}

/// How a copy differs from the socket chosen from the dump, if it does: the inode, the cookie
/// (where the dump gave one) and the addresses (the peer, for a connection) must all agree.
pub fn mismatch(chosen: &Socket, found: &SocketIdentity) -> Option<String> {
    if found.inode != chosen.inode {
        return Some(format!("inode {} is now {}", chosen.inode, found.inode));
    }
    if chosen.cookie != 0 && found.cookie != chosen.cookie {
        return Some(format!("cookie {:#x} is now {:#x}", chosen.cookie, found.cookie));
    }
    let same = |a: SocketAddr, b: Option<SocketAddr>| b.is_some_and(|b| canonical(a) == canonical(b));
    if !same(chosen.local.0, found.local) {
        return Some(format!("local address {} is now {}", chosen.local, shown(found.local)));
    }
    let connected = chosen.peer.port() != 0;
    if connected && !same(chosen.peer.0, found.peer) {
        return Some(format!("peer {} is now {}", chosen.peer, shown(found.peer)));
    }
    if !connected && found.peer.is_some_and(|p| p.port() != 0) {
        return Some(format!("a listener is now connected to {}", shown(found.peer)));
    }
    None
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is (a dual-stack socket's view).
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

fn shown(a: Option<SocketAddr>) -> String {
    a.map_or_else(|| "none".to_owned(), |a| a.to_string())
}

/// A process's cgroup-v1 `net_cls` class and `net_prio` group: what `pidfd_getfd` stamps on a
/// socket it copies. Two processes with equal values stamp the same.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NetClass {
    /// The class id in force (`net_cls.classid` of the group, read where the hierarchy is
    /// mounted), else the group's path; `None` outside any net_cls hierarchy (class id 0).
    class: Option<String>,
    /// The `net_prio` group (its index is per group); `None` outside one, or in its root.
    prio: Option<String>,
}

impl NetClass {
    /// Read now (a process may have moved since the last copy), from its `/proc/PID/cgroup`.
    fn of(cgroup_file: &Path, mount: Option<&Path>) -> NetClass {
        let text = std::fs::read_to_string(cgroup_file).unwrap_or_default();
        let (cls, prio) = net_cls_in(&text);
        let class = cls.map(|path| class_id(mount, &path).unwrap_or_else(|| format!("group {path}")));
        NetClass { class: class.filter(|c| c != "0"), prio: prio.filter(|p| p != "/") }
    }

    fn describe(&self) -> String {
        match (&self.class, &self.prio) {
            (None, None) => "/ (class id 0)".into(),
            (Some(c), None) => format!("class id {c}"),
            (None, Some(p)) => format!("net_prio {p}"),
            (Some(c), Some(p)) => format!("class id {c}, net_prio {p}"),
        }
    }
}

/// Where the cgroup-v1 net_cls hierarchy is mounted, if it is.
fn net_cls_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.get(2) == Some(&"cgroup") && f.get(3)?.split(',').any(|o| o == "net_cls")).then(|| f[1].into())
    })
}

/// The class id of the net_cls group `path`, from the hierarchy's `net_cls.classid`.
fn class_id(mount: Option<&Path>, path: &str) -> Option<String> {
    let file = mount?.join(path.trim_start_matches('/')).join("net_cls.classid");
    let id: u64 = std::fs::read_to_string(file).ok()?.trim().parse().ok()?;
    Some(if id == 0 { "0".into() } else { format!("{id:#x}") })
}

/// The `net_cls` and `net_prio` paths in `/proc/PID/cgroup` text (`ID:CONTROLLERS:PATH` lines).
fn net_cls_in(text: &str) -> (Option<String>, Option<String>) {
    let (mut cls, mut prio) = (None, None);
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else { continue };
        for c in controllers.split(',') {
            match c {
                "net_cls" => cls = Some(path.to_owned()),
                "net_prio" => prio = Some(path.to_owned()),
                _ => {}
            }
        }
    }
    (cls, prio)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TcpState;

    #[test]
    fn net_cls_paths() {
        assert_eq!(net_cls_in("12:net_cls,net_prio:/\n0::/user.slice\n"), (Some("/".into()), Some("/".into())));
        assert_eq!(net_cls_in("12:net_cls,net_prio:/tc1\n0::/\n").0, Some("/tc1".into()));
        assert_eq!(net_cls_in("3:net_prio:/a:b\n"), (None, Some("/a:b".into())));
        assert_eq!(net_cls_in("0::/system.slice\n"), (None, None));
        assert_eq!(net_cls_in("garbage"), (None, None));
    }

    fn socket(inode: u64, cookie: u64, local: &str, peer: &str) -> Socket {
        let mut s = Socket::new(TcpState::Established, local.parse().unwrap(), peer.parse().unwrap());
        (s.inode, s.cookie) = (inode, cookie);
        s
    }

    /// The check every action waits on: an inode number reused by another connection, a cookie
    /// that differs, or other addresses each mean "not the socket chosen".
    #[test]
    fn a_copy_must_be_the_socket_chosen() {
        let chosen = socket(100, 0xabc, "127.0.0.1:8787", "127.0.0.1:40000");
        let found = SocketIdentity {
            inode: 100,
            cookie: 0xabc,
            local: Some("127.0.0.1:8787".parse().unwrap()),
            peer: Some("127.0.0.1:40000".parse().unwrap()),
        };
        assert_eq!(mismatch(&chosen, &found), None);
        // The inode number came back on another socket: same number, another cookie.
        let reused = SocketIdentity { cookie: 0xdef, ..found };
        assert_eq!(mismatch(&chosen, &reused).unwrap(), "cookie 0xabc is now 0xdef");
        let other = SocketIdentity { inode: 101, ..found };
        assert!(mismatch(&chosen, &other).unwrap().starts_with("inode 100"));
        // Without a cookie (procfs), the addresses still decide.
        let procfs = socket(100, 0, "127.0.0.1:8787", "127.0.0.1:40000");
        let moved = SocketIdentity { peer: Some("127.0.0.1:40001".parse().unwrap()), ..reused };
        assert_eq!(mismatch(&procfs, &moved).unwrap(), "peer 127.0.0.1:40000 is now 127.0.0.1:40001");
        assert_eq!(mismatch(&procfs, &reused), None);
        // A dual-stack socket reports the IPv4 peer mapped; it is the same peer.
        let mapped = SocketIdentity {
            local: Some("[::ffff:127.0.0.1]:8787".parse().unwrap()),
            peer: Some("[::ffff:127.0.0.1]:40000".parse().unwrap()),
            ..found
        };
        assert_eq!(mismatch(&chosen, &mapped), None);
        // A listener has no peer.
        let listener = socket(7, 0, "0.0.0.0:8787", "0.0.0.0:0");
        let l = SocketIdentity { inode: 7, cookie: 1, local: Some("0.0.0.0:8787".parse().unwrap()), peer: None };
        assert_eq!(mismatch(&listener, &l), None);
        assert!(mismatch(&listener, &SocketIdentity { peer: found.peer, ..l }).is_some());
    }
}

#[cfg(all(test, target_os = "linux"))]
mod linux_tests {
    use super::*;
    use crate::model::TcpState;
    use std::os::fd::AsRawFd;

    #[test]
    fn reads_a_socket_of_this_process_and_refuses_another() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        stream.set_nodelay(true).unwrap();
        let id = os::socket_identity(&stream).unwrap();
        let mut chosen = Socket::new(TcpState::Established, stream.local_addr().unwrap(), stream.peer_addr().unwrap());
        (chosen.inode, chosen.cookie) = (id.inode, id.cookie);
        assert_ne!(id.cookie, 0);
        let (pid, fd) = (std::process::id(), stream.as_raw_fd());
        let mut copier = Copier::new(Path::new("/proc"), false).unwrap();
        let opts = copier.read(pid, fd, &chosen).unwrap();
        assert!(opts.tcp_nodelay);
        assert!(!opts.so_keepalive);
        assert_eq!(opts.user_timeout_ms, 0);
        // The same descriptor number, but the dump named another socket: nothing is read.
        let other = Socket { inode: os::socket_identity(&listener).unwrap().inode, ..chosen.clone() };
        match copier.read(pid, fd, &other) {
            Err(SockOptError::NotSelected { what, .. }) => assert!(what.starts_with("inode"), "{what}"),
            r => panic!("expected NotSelected, got {r:?}"),
        }
        // The same inode, but a cookie the kernel never gave it: a reused inode number.
        let reused = Socket { cookie: id.cookie ^ 1, ..chosen };
        let r = copier.read(pid, fd, &reused);
        assert!(matches!(r, Err(SockOptError::NotSelected { .. })), "{r:?}");
    }
}
