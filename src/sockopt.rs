//! Reads the keepalive-related options of a socket that another process owns: find its fd in
//! `/proc/PID/fd`, duplicate it with `pidfd_getfd(2)` and `getsockopt` the copy. This is the
//! only way to see the idle time, interval, count and user timeout actually set (sock_diag
//! shows the timer, not the options). Needs ptrace access to the owner: root or the same user.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use serde::Serialize;

use crate::error::{Error, Result};

/// The values a server's accepted socket carries, as the kernel reports them (the system
/// defaults where the application set nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SockOpts {
    pub so_keepalive: bool,
    pub tcp_nodelay: bool,
    /// `TCP_KEEPIDLE`, seconds.
    pub keepidle_s: u32,
    /// `TCP_KEEPINTVL`, seconds.
    pub keepintvl_s: u32,
    /// `TCP_KEEPCNT`.
    pub keepcnt: u32,
    /// `TCP_USER_TIMEOUT`, milliseconds; 0 is the kernel default.
    pub user_timeout_ms: u32,
}

impl SockOpts {
    /// Compact text for the table: `keepalive 10s/5s/3 user-timeout 25s nodelay`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.so_keepalive {
            parts.push(format!("keepalive {}s/{}s/{}", self.keepidle_s, self.keepintvl_s, self.keepcnt));
        } else {
            parts.push("no-keepalive".to_owned());
        }
        if self.user_timeout_ms > 0 {
            parts.push(format!("user-timeout {}", crate::render::human_ms(u64::from(self.user_timeout_ms))));
        }
        if self.tcp_nodelay {
            parts.push("nodelay".to_owned());
        }
        parts.join(" ")
    }
}

/// The fd number under which `pid` holds the socket with `inode`.
pub fn find_fd(root: &std::path::Path, pid: u32, inode: u64) -> Result<Option<i32>> {
    let dir = root.join(pid.to_string()).join("fd");
    let entries = std::fs::read_dir(&dir).map_err(|source| Error::Read { path: dir.clone(), source })?;
    let want = format!("socket:[{inode}]");
    for entry in entries.flatten() {
        if std::fs::read_link(entry.path()).is_ok_and(|l| l.as_os_str() == want.as_str()) {
            return Ok(entry.file_name().to_str().and_then(|n| n.parse().ok()));
        }
    }
    Ok(None)
}

#[cfg(target_os = "linux")]
pub fn read(pid: u32, inode: u64) -> Result<SockOpts> {
    let root = crate::process::proc_root();
    let fd = find_fd(&root, pid, inode)?.ok_or_else(|| Error::SockOpt {
        pid,
        inode,
        source: io::Error::new(io::ErrorKind::NotFound, "the process no longer holds the socket"),
    })?;
    read_fd(pid, fd).map_err(|source| Error::SockOpt { pid, inode, source })
}

/// The options of descriptor `fd` in process `pid`.
#[cfg(target_os = "linux")]
pub fn read_fd(pid: u32, fd: i32) -> io::Result<SockOpts> {
    get_all(&duplicate(pid, fd)?)
}

/// `pidfd_open` + `pidfd_getfd`: our own descriptor for the target's socket.
#[cfg(target_os = "linux")]
fn duplicate(pid: u32, fd: i32) -> io::Result<OwnedFd> {
    // SAFETY: raw syscalls with plain integer arguments; each result is checked before use and
    // owned exactly once.
    unsafe {
        let pidfd = libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0);
        if pidfd < 0 {
            return Err(io::Error::last_os_error());
        }
        let pidfd = OwnedFd::from_raw_fd(pidfd as i32);
        let copy = libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0);
        if copy < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(copy as i32))
    }
}

/// Reads the six options from a socket descriptor of our own.
#[cfg(target_os = "linux")]
pub fn get_all(fd: &impl AsRawFd) -> io::Result<SockOpts> {
    let get = |level: i32, name: i32| -> io::Result<i32> {
        let mut value: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` and `len` are valid for the int-sized option getsockopt writes.
        let rc = unsafe { libc::getsockopt(fd.as_raw_fd(), level, name, (&raw mut value).cast(), &mut len) };
        if rc == 0 { Ok(value) } else { Err(io::Error::last_os_error()) }
    };
    Ok(SockOpts {
        so_keepalive: get(libc::SOL_SOCKET, libc::SO_KEEPALIVE)? != 0,
        tcp_nodelay: get(libc::IPPROTO_TCP, libc::TCP_NODELAY)? != 0,
        keepidle_s: get(libc::IPPROTO_TCP, libc::TCP_KEEPIDLE)? as u32,
        keepintvl_s: get(libc::IPPROTO_TCP, libc::TCP_KEEPINTVL)? as u32,
        keepcnt: get(libc::IPPROTO_TCP, libc::TCP_KEEPCNT)? as u32,
        user_timeout_ms: get(libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT)? as u32,
    })
}

#[cfg(not(target_os = "linux"))]
pub fn read(_pid: u32, _inode: u64) -> Result<SockOpts> {
    Err(Error::Unsupported("reading another process's socket options"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn reads_options_of_a_socket_in_this_process_through_pidfd() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on a live descriptor.
        assert_eq!(unsafe { libc::fstat(stream.as_raw_fd(), &mut st) }, 0);
        let opts = read(std::process::id(), st.st_ino).unwrap();
        assert!(opts.tcp_nodelay);
        assert!(!opts.so_keepalive);
        assert_eq!(opts.user_timeout_ms, 0);
    }
}
