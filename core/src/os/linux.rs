//! The Linux side effects, through rustix wherever it has the call; the two it lacks
//! (`getauxval(AT_SECURE)` and installing a signal handler) use libc, each with its SAFETY note.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use rustix::net::sockopt;
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, Resource, Rlimit};

use crate::model::{ProcPaths, SockOptName, SockOpts};

/// True when this process runs with privileges its caller does not have: set-uid or set-gid,
/// file capabilities (the kernel's `AT_SECURE`), or an effective uid or gid unlike the real one.
/// Environment overrides are then ignored: they would let the caller choose what a privileged
/// process reads.
pub fn privileged_by_exec() -> bool {
    // SAFETY: getauxval reads the auxiliary vector the kernel gave this process; it has no
    // preconditions and returns 0 for an absent entry.
    let at_secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
    at_secure
        || rustix::process::getuid() != rustix::process::geteuid()
        || rustix::process::getgid() != rustix::process::getegid()
}

/// The line every command that acts on another process or runs a program prints, and exits 2
/// with, when [`privileged_by_exec`] holds: a set-uid (or file-capability) copy would act as root
/// for a caller who could not.
pub const SETUID_REFUSAL: &str = "webui-doctor must not be installed set-uid; run it with sudo";

/// Whether `PROC_ROOT` / `PROC_NET_TCP*` may be honoured: never for a command that acts on
/// another process (`acting`), never under [`privileged_by_exec`], and never when `SUDO_UID` is
/// set (`sudo -E` or `env_keep` would pass the caller's overrides to root).
pub fn env_overrides_allowed(acting: bool) -> bool {
    !acting && !privileged_by_exec() && std::env::var_os("SUDO_UID").is_none()
}

/// An environment variable, unless it is empty or `allowed` is false.
fn override_env(name: &str, allowed: bool) -> Option<OsString> {
    if !allowed {
        return None;
    }
    std::env::var_os(name).filter(|v| !v.is_empty())
}

/// `/proc`, or the `PROC_ROOT` / `PROC_NET_TCP` / `PROC_NET_TCP6` overrides where
/// [`env_overrides_allowed`]: for read-only listing by an unprivileged user (a fixture tree).
pub fn proc_paths(acting: bool) -> ProcPaths {
    let allowed = env_overrides_allowed(acting);
    let mut paths =
        ProcPaths::under(override_env("PROC_ROOT", allowed).map_or_else(|| PathBuf::from("/proc"), PathBuf::from));
    if let Some(p) = override_env("PROC_NET_TCP", allowed) {
        paths.tcp = p.into();
    }
    if let Some(p) = override_env("PROC_NET_TCP6", allowed) {
        paths.tcp6 = p.into();
    }
    paths
}

/// USER_HZ: the unit of `/proc/net/tcp`'s `tm->when` column (clock ticks, not jiffies).
pub fn clock_ticks_per_second() -> u64 {
    rustix::param::clock_ticks_per_second()
}

/// The socket inode behind descriptor `fd` of a process, read with `readlinkat` relative to the
/// process's open `fd` directory (no path walk from `/`); `None` for anything but a socket.
pub fn socket_inode_at(fd_dir: &File, fd: i32) -> Option<u64> {
    descriptor_at(fd_dir, fd).flatten()
}

/// What descriptor `fd` of a process is: `None` when it has no such descriptor (or it could
/// not be read), `Some(None)` for anything but a socket, `Some(Some(inode))` for a socket.
pub fn descriptor_at(fd_dir: &File, fd: i32) -> Option<Option<u64>> {
    use std::io::Write;
    // The name on the stack: this runs once per open file on the host.
    let mut name = [0u8; 12];
    let mut cursor = io::Cursor::new(&mut name[..11]);
    write!(cursor, "{fd}").ok()?;
    let len = cursor.position() as usize;
    let name = std::ffi::CStr::from_bytes_with_nul(&name[..=len]).ok()?;
    let mut target = [0u8; 64];
    let n = rustix::fs::readlinkat_raw(fd_dir, name, &mut target[..]).ok()?;
    // A link that fills the buffer may be cut short; `socket:[N]` always fits in 64 bytes.
    Some(if n < target.len() { socket_inode(&target[..n]) } else { None })
}

/// `socket:[12345]` -> 12345.
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A file's text, opened with `O_NOFOLLOW`: a symlink planted where `/proc/PID/comm` is expected
/// (a fixture tree, or a hostile one) is refused rather than followed. At most 4 KiB is read.
pub fn read_nofollow(path: &Path) -> io::Result<String> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
    let mut text = String::new();
    File::from(fd).take(4096).read_to_string(&mut text)?;
    Ok(text)
}

/// `pidfd_open`: a handle on process `pid` that stays that process (a pid reused after it
/// exits is another process; the handle then answers `ESRCH`).
pub fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    let pid =
        i32::try_from(pid).ok().and_then(Pid::from_raw).ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
    Ok(rustix::process::pidfd_open(pid, PidfdFlags::empty())?)
}

/// `pidfd_getfd`: our own descriptor for descriptor `fd` of the process `pidfd` holds. Needs
/// ptrace access to the process (root, or the same user).
pub fn pidfd_getfd(pidfd: &OwnedFd, fd: i32) -> io::Result<OwnedFd> {
    Ok(rustix::process::pidfd_getfd(pidfd, fd, PidfdGetfdFlags::empty())?)
}

/// Whether the process behind `pidfd` has exited (a pidfd polls readable then).
pub fn pidfd_exited(pidfd: &OwnedFd) -> bool {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let zero = rustix::event::Timespec { tv_sec: 0, tv_nsec: 0 };
    rustix::event::poll(&mut fds, Some(&zero)).is_ok_and(|n| n > 0)
}

/// What the kernel says a socket descriptor of our own is: its inode, its 64-bit cookie
/// (`SO_COOKIE`, never reused while the kernel runs), and its two addresses (`None` for the
/// peer of a socket that has none, such as a listener).
pub fn socket_identity(fd: impl AsFd) -> io::Result<crate::model::SocketIdentity> {
    let fd = fd.as_fd();
    let addr = |a: rustix::net::SocketAddrAny| std::net::SocketAddr::try_from(a).ok();
    Ok(crate::model::SocketIdentity {
        inode: rustix::fs::fstat(fd)?.st_ino,
        cookie: sockopt::socket_cookie(fd)?,
        local: addr(rustix::net::getsockname(fd)?),
        peer: rustix::net::getpeername(fd).ok().flatten().and_then(addr),
    })
}

/// Reads the six keepalive-related options from a socket descriptor of our own.
pub fn get_sockopts(fd: impl AsFd) -> io::Result<SockOpts> {
    let fd = fd.as_fd();
    let secs = |d: Duration| u32::try_from(d.as_secs()).unwrap_or(u32::MAX);
    Ok(SockOpts {
        so_keepalive: sockopt::socket_keepalive(fd)?,
        tcp_nodelay: sockopt::tcp_nodelay(fd)?,
        keepidle_s: secs(sockopt::tcp_keepidle(fd)?),
        keepintvl_s: secs(sockopt::tcp_keepintvl(fd)?),
        keepcnt: sockopt::tcp_keepcnt(fd)?,
        user_timeout_ms: sockopt::tcp_user_timeout(fd)?,
    })
}

/// Sets one of the keepalive options on a socket descriptor of our own.
pub fn set_sockopt(fd: impl AsFd, name: SockOptName, value: u32) -> io::Result<()> {
    let fd = fd.as_fd();
    let secs = || Duration::from_secs(u64::from(value));
    Ok(match name {
        SockOptName::SoKeepalive => sockopt::set_socket_keepalive(fd, value != 0),
        SockOptName::TcpNodelay => sockopt::set_tcp_nodelay(fd, value != 0),
        SockOptName::TcpKeepidle => sockopt::set_tcp_keepidle(fd, secs()),
        SockOptName::TcpKeepintvl => sockopt::set_tcp_keepintvl(fd, secs()),
        SockOptName::TcpKeepcnt => sockopt::set_tcp_keepcnt(fd, value),
        SockOptName::TcpUserTimeout => sockopt::set_tcp_user_timeout(fd, value),
    }?)
}

/// `shutdown(SHUT_RDWR)`: ends the connection for every descriptor that refers to the socket,
/// the owner's included (it stays open there until the owner closes it).
pub fn shutdown_both(fd: impl AsFd) -> io::Result<()> {
    Ok(rustix::net::shutdown(fd, rustix::net::Shutdown::Both)?)
}

/// `kernel.yama.ptrace_scope`, when Yama is there: who may `pidfd_getfd` whom.
pub fn ptrace_scope() -> Option<u8> {
    std::fs::read_to_string("/proc/sys/kernel/yama/ptrace_scope").ok()?.trim().parse().ok()
}

/// `SO_LINGER` 0: closing the socket then sends a RST and leaves no TIME-WAIT entry.
pub fn linger_zero(fd: impl AsFd) -> io::Result<()> {
    Ok(sockopt::set_socket_linger(fd, Some(Duration::ZERO))?)
}

/// Moves this thread (the CLI's only one) into the network namespace `ns` refers to.
pub fn enter_netns(ns: &File) -> io::Result<()> {
    Ok(rustix::thread::move_into_link_name_space(ns.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))?)
}

/// True when the effective user is root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Lifts the soft `RLIMIT_NOFILE` to the hard limit: every connection a server holds is a
/// descriptor. Returns the soft limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    let lim = rustix::process::getrlimit(Resource::Nofile);
    if lim.current < lim.maximum {
        let _ = rustix::process::setrlimit(Resource::Nofile, Rlimit { current: lim.maximum, maximum: lim.maximum });
    }
    rustix::process::getrlimit(Resource::Nofile).current
}

static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_terminate(_: libc::c_int) {
    TERMINATED.store(true, Ordering::SeqCst);
}

/// The signals that ask a process to end: each sets a flag ([`terminate_requested`]) instead of
/// killing the process, so the caller can clean up first.
pub const TERMINATING_SIGNALS: [(libc::c_int, &str); 4] =
    [(libc::SIGINT, "SIGINT"), (libc::SIGTERM, "SIGTERM"), (libc::SIGHUP, "SIGHUP"), (libc::SIGQUIT, "SIGQUIT")];

/// Routes SIGINT, SIGTERM, SIGHUP and SIGQUIT to a flag, so cleanup runs whichever arrives.
pub fn catch_termination() {
    for (signal, _) in TERMINATING_SIGNALS {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, on_terminate as extern "C" fn(libc::c_int) as libc::sighandler_t);
        }
    }
}

/// Whether one of [`TERMINATING_SIGNALS`] arrived since [`catch_termination`].
pub fn terminate_requested() -> bool {
    TERMINATED.load(Ordering::SeqCst)
}

/// glibc gives each thread that allocates its own arena (up to 8 per core) and never returns
/// their free pages; with tokio's workers and blocking pool, a long-running server's RSS crept
/// up as connections came and went. Two arenas keep it flat at no measurable cost.
pub fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only changes allocator parameters; called before any server thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// `SO_RCVBUFFORCE` (past `net.core.rmem_max`; needs `CAP_NET_ADMIN`), else `SO_RCVBUF`.
pub fn set_recv_buffer(fd: impl AsFd, bytes: usize) -> io::Result<()> {
    match sockopt::set_socket_recv_buffer_size_force(&fd, bytes) {
        Ok(()) => Ok(()),
        Err(_) => Ok(sockopt::set_socket_recv_buffer_size(&fd, bytes)?),
    }
}

/// `SO_RCVTIMEO`: a blocking receive returns `EAGAIN` after `wait`.
pub fn set_recv_timeout(fd: impl AsFd, wait: Duration) -> io::Result<()> {
    Ok(sockopt::set_socket_timeout(&fd, sockopt::Timeout::Recv, Some(wait))?)
}

/// `bpf(2)`: `cmd` with the attribute block `attr` (zero-filled past what the command reads).
/// Returns the call's non-negative result (a descriptor or 0). rustix has no wrapper for it.
pub fn bpf(cmd: u32, attr: &mut [u8; BPF_ATTR_SIZE]) -> io::Result<i32> {
    // SAFETY: `attr` is a live, writable buffer of the size passed; the kernel reads and writes
    // at most that many bytes of it. Pointers the command follows (instructions, license, log,
    // id arrays) were written into it by the caller from buffers that outlive this call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, libc::c_long::from(cmd), attr.as_mut_ptr(), BPF_ATTR_SIZE) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(i32::try_from(r).unwrap_or(i32::MAX)) }
}

/// The size of the `bpf_attr` block passed (the commands used read well under it).
pub const BPF_ATTR_SIZE: usize = 128;

/// The current network namespace's cookie (`SO_NETNS_COOKIE`, Linux 5.14), read from a socket
/// made for the purpose: what `bpf_get_netns_cookie` returns for a connection in it.
pub fn netns_cookie() -> io::Result<u64> {
    use std::os::fd::AsRawFd;
    let socket = rustix::net::socket(rustix::net::AddressFamily::INET, rustix::net::SocketType::DGRAM, None)?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `socket` is an open descriptor; the kernel writes at most `len` bytes into `cookie`,
    // which is that large, and sets `len`.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if r != 0 { Err(io::Error::last_os_error()) } else { Ok(cookie) }
}
