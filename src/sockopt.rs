//! Reads the keepalive-related options of a socket that another process owns: duplicate its
//! descriptor with `pidfd_getfd(2)` and `getsockopt` the copy. This is the only way to see the
//! idle time, interval, count and user timeout actually set (sock_diag shows the timer, not the
//! options). Needs ptrace access to the owner: root or the same user.
//!
//! Two guards come first, because a copy is not as harmless as it looks:
//! - the copy's inode must be the socket's: a pid or fd can be reused between the `/proc` scan
//!   and the call, and then the copy is some other file;
//! - `pidfd_getfd` re-tags the socket with the *caller's* cgroup-v1 `net_cls` class id (seen:
//!   `class_id:0x100001` became `0`), which silently breaks tc and nftables `meta cgroup` rules
//!   for that service. An owner in a non-root `net_cls` or `net_prio` cgroup is skipped unless
//!   the caller forces it.

use std::os::fd::OwnedFd;
use std::path::Path;

use crate::error::SockOptError;
use crate::model::SockOpts;
use crate::os;

/// The options of the socket `inode`, held by `pid` as descriptor `fd`. `proc_root` is where
/// `PID/cgroup` is read; `force` reads even from a `net_cls`/`net_prio` cgroup.
pub fn read(proc_root: &Path, pid: u32, fd: i32, inode: u64, force: bool) -> Result<SockOpts, SockOptError> {
    let copy = checked_copy(proc_root, pid, fd, inode, force)?;
    os::get_sockopts(&copy).map_err(|source| SockOptError::Read { pid, source })
}

/// Our own descriptor for the socket `inode` that `pid` holds as `fd`, after both guards: the
/// owner is not in a `net_cls`/`net_prio` cgroup (unless `force`), and the copy is that socket.
/// Every command that reads or changes another process's socket goes through here.
pub fn checked_copy(proc_root: &Path, pid: u32, fd: i32, inode: u64, force: bool) -> Result<OwnedFd, SockOptError> {
    if !force && let Some(cgroup) = net_cls_cgroup(proc_root, pid) {
        return Err(SockOptError::NetCls { pid, cgroup });
    }
    let copy = os::duplicate(pid, fd).map_err(|source| SockOptError::Duplicate { pid, fd, source })?;
    let found = os::inode_of(&copy).map_err(|source| SockOptError::Read { pid, source })?;
    if found != inode {
        return Err(SockOptError::InodeChanged { pid, fd, expected: inode, found });
    }
    Ok(copy)
}

/// The non-root cgroup-v1 `net_cls`/`net_prio` path of `pid`, if it has one.
pub fn net_cls_cgroup(proc_root: &Path, pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(proc_root.join(pid.to_string()).join("cgroup")).ok()?;
    net_cls_in(&text)
}

/// From `/proc/PID/cgroup` text (`ID:CONTROLLERS:PATH` lines).
fn net_cls_in(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        let tagged = controllers.split(',').any(|c| c == "net_cls" || c == "net_prio");
        (tagged && path != "/").then(|| path.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_cls_paths() {
        assert_eq!(net_cls_in("12:net_cls,net_prio:/\n0::/user.slice\n"), None);
        assert_eq!(net_cls_in("12:net_cls,net_prio:/tc1\n0::/\n"), Some("/tc1".into()));
        assert_eq!(net_cls_in("3:net_prio:/a:b\n"), Some("/a:b".into()));
        assert_eq!(net_cls_in("0::/system.slice\n"), None);
        assert_eq!(net_cls_in("garbage"), None);
    }
}

#[cfg(all(test, target_os = "linux"))]
mod linux_tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn reads_a_socket_of_this_process_and_refuses_a_changed_inode() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        stream.set_nodelay(true).unwrap();
        let inode = os::inode_of(&stream).unwrap();
        let (pid, fd) = (std::process::id(), stream.as_raw_fd());
        let opts = read(Path::new("/proc"), pid, fd, inode, false).unwrap();
        assert!(opts.tcp_nodelay);
        assert!(!opts.so_keepalive);
        assert_eq!(opts.user_timeout_ms, 0);
        // The same descriptor number now names another socket: nothing is read from it.
        let other = os::inode_of(&listener).unwrap();
        match read(Path::new("/proc"), pid, fd, other, false) {
            Err(SockOptError::InodeChanged { expected, found, .. }) => assert_eq!((expected, found), (other, inode)),
            r => panic!("expected InodeChanged, got {r:?}"),
        }
    }
}
