//! Everything that differs by platform, in one place. What each platform has, as socket2 0.6
//! documents it (and the kernel or OS headers name it):
//!
//! | what | Linux, Android, Fuchsia | macOS, iOS, tvOS, watchOS, visionOS | FreeBSD, NetBSD (DragonFly) | OpenBSD | illumos | Windows |
//! | --- | --- | --- | --- | --- | --- | --- |
//! | keepalive on | `SO_KEEPALIVE` | `SO_KEEPALIVE` | `SO_KEEPALIVE` | `SO_KEEPALIVE` | `SO_KEEPALIVE` | `SO_KEEPALIVE` |
//! | idle time | `TCP_KEEPIDLE` | `TCP_KEEPALIVE` | `TCP_KEEPIDLE` | — (system-wide sysctl) | `TCP_KEEPIDLE` | `SIO_KEEPALIVE_VALS` |
//! | probe interval | `TCP_KEEPINTVL` | `TCP_KEEPINTVL` | `TCP_KEEPINTVL` | — | `TCP_KEEPINTVL` | `SIO_KEEPALIVE_VALS` |
//! | probe count | `TCP_KEEPCNT` | `TCP_KEEPCNT` | `TCP_KEEPCNT` | — | `TCP_KEEPCNT` | `TCP_KEEPCNT` (Windows 10 1703+) |
//! | unacknowledged-data timeout | `TCP_USER_TIMEOUT` | — | — | — | — | — |
//! | bytes not yet acknowledged | `SIOCOUTQ` ioctl (not Fuchsia) | `SO_NWRITE` option | `FIONWRITE` ioctl (not DragonFly) | — | — | — |
//!
//! Where a platform lacks an option, setting it reports `Unsupported` in its
//! [`OptionOutcome`](crate::OptionOutcome) and the others still apply; where it cannot count
//! unacknowledged bytes, the [watchdog](crate::watchdog) says so and watches nothing. Only the
//! Linux column is tested (this project builds and tests on Linux); the others compile against
//! socket2's and the OS's documented interfaces.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

/// The option that carries the keepalive idle time on this platform.
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "tvos", target_os = "watchos", target_os = "visionos"))]
pub const IDLE_OPTION: &str = "TCP_KEEPALIVE";
#[cfg(not(any(
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos"
)))]
/// The option that carries the keepalive idle time on this platform.
pub const IDLE_OPTION: &str = "TCP_KEEPIDLE";

#[cfg_attr(any(target_os = "linux", target_os = "android"), allow(dead_code))]
fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("{what} is not supported on this platform"))
}

/// The platforms where socket2 sets the probe interval and count (`with_interval`,
/// `with_retries`).
macro_rules! keepalive_timings {
    ($($item:item)*) => {$(
        #[cfg(any(
            target_os = "android", target_os = "dragonfly", target_os = "freebsd", target_os = "fuchsia",
            target_os = "illumos", target_os = "ios", target_os = "visionos", target_os = "linux",
            target_os = "macos", target_os = "netbsd", target_os = "tvos", target_os = "watchos",
            target_os = "windows", target_os = "cygwin"
        ))]
        $item
    )*};
}

macro_rules! no_keepalive_timings {
    ($($item:item)*) => {$(
        #[cfg(not(any(
            target_os = "android", target_os = "dragonfly", target_os = "freebsd", target_os = "fuchsia",
            target_os = "illumos", target_os = "ios", target_os = "visionos", target_os = "linux",
            target_os = "macos", target_os = "netbsd", target_os = "tvos", target_os = "watchos",
            target_os = "windows", target_os = "cygwin"
        )))]
        $item
    )*};
}

/// The keepalive timings, as the setters below take them. Each setter is one option, but on
/// Windows one call (`SIO_KEEPALIVE_VALS`) sets the idle time and the interval together, and
/// socket2 sends 0 for whichever is left out: there every setter passes both, so setting one
/// never zeroes the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timings {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped.
    pub count: u32,
}

/// `TcpKeepalive` with what `SIO_KEEPALIVE_VALS` needs on Windows (both times), and nothing else
/// elsewhere.
fn base(t: Timings) -> TcpKeepalive {
    #[cfg(windows)]
    return TcpKeepalive::new().with_time(t.idle).with_interval(t.interval);
    #[cfg(not(windows))]
    {
        let _ = t;
        TcpKeepalive::new()
    }
}

/// The idle time (`TCP_KEEPIDLE`, `TCP_KEEPALIVE` on macOS).
#[cfg(not(any(target_os = "openbsd", target_os = "haiku", target_os = "vita")))]
pub fn set_idle(sock: &SockRef<'_>, t: Timings) -> io::Result<()> {
    sock.set_tcp_keepalive(&base(t).with_time(t.idle))
}

/// The idle time: system-wide only on this platform. socket2 skips it here without an error,
/// which would report an option as set that was not.
#[cfg(any(target_os = "openbsd", target_os = "haiku", target_os = "vita"))]
pub fn set_idle(_: &SockRef<'_>, _: Timings) -> io::Result<()> {
    Err(unsupported("a per-socket keepalive idle time"))
}

keepalive_timings! {
    /// `TCP_KEEPINTVL` (or the platform's equivalent).
    pub fn set_interval(sock: &SockRef<'_>, t: Timings) -> io::Result<()> {
        sock.set_tcp_keepalive(&base(t).with_interval(t.interval))
    }

    /// `TCP_KEEPCNT`.
    pub fn set_retries(sock: &SockRef<'_>, t: Timings) -> io::Result<()> {
        sock.set_tcp_keepalive(&base(t).with_retries(t.count))
    }
}

no_keepalive_timings! {
    /// `TCP_KEEPINTVL`: not on this platform.
    pub fn set_interval(_: &SockRef<'_>, _: Timings) -> io::Result<()> {
        Err(unsupported("TCP_KEEPINTVL"))
    }

    /// `TCP_KEEPCNT`: not on this platform.
    pub fn set_retries(_: &SockRef<'_>, _: Timings) -> io::Result<()> {
        Err(unsupported("TCP_KEEPCNT"))
    }
}

/// `TCP_USER_TIMEOUT`: how long sent data may stay unacknowledged before the kernel drops the
/// connection. Linux (and Android, Fuchsia, Cygwin) only.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "fuchsia", target_os = "cygwin"))]
pub fn set_user_timeout(sock: &SockRef<'_>, timeout: Duration) -> io::Result<()> {
    sock.set_tcp_user_timeout(Some(timeout))
}

/// `TCP_USER_TIMEOUT`: not on this platform (the watchdog covers it).
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "fuchsia", target_os = "cygwin")))]
pub fn set_user_timeout(_: &SockRef<'_>, _: Duration) -> io::Result<()> {
    Err(unsupported("TCP_USER_TIMEOUT"))
}

/// Bytes written to the socket that the peer has not acknowledged yet (sent or still queued):
/// Linux's `SIOCOUTQ`.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub fn outgoing_queue(sock: &SockRef<'_>) -> io::Result<usize> {
    use rustix::ioctl::{Getter, Opcode, ioctl};
    /// `SIOCOUTQ` (= `TIOCOUTQ`, `asm-generic/ioctls.h`): the send queue's length, in bytes.
    const SIOCOUTQ: Opcode = 0x5411;
    // SAFETY: SIOCOUTQ on a TCP socket writes one `int` through the pointer, which is what
    // `Getter<_, c_int>` provides; the descriptor is borrowed from a live socket for the call.
    let queued = unsafe { ioctl(&**sock, Getter::<SIOCOUTQ, std::ffi::c_int>::new()) }?;
    usize::try_from(queued).map_err(|_| io::Error::other("SIOCOUTQ gave a negative length"))
}

/// Bytes in the socket's send buffer, not yet acknowledged: `FIONWRITE`.
#[cfg(any(target_os = "freebsd", target_os = "netbsd"))]
pub fn outgoing_queue(sock: &SockRef<'_>) -> io::Result<usize> {
    use rustix::ioctl::{Getter, Opcode, ioctl, opcode};
    /// `FIONWRITE` (`sys/filio.h`): `_IOR('f', 119, int)` on FreeBSD (0x40046677), `_IOR('f',
    /// 121, int)` on NetBSD (0x40046679), as the libc crate has them too.
    #[cfg(target_os = "freebsd")]
    const FIONWRITE: Opcode = opcode::read::<std::ffi::c_int>(b'f', 119);
    #[cfg(target_os = "netbsd")]
    const FIONWRITE: Opcode = opcode::read::<std::ffi::c_int>(b'f', 121);
    // SAFETY: FIONWRITE writes one `int` through the pointer; the descriptor is live for the call.
    let queued = unsafe { ioctl(&**sock, Getter::<FIONWRITE, std::ffi::c_int>::new()) }?;
    usize::try_from(queued).map_err(|_| io::Error::other("FIONWRITE gave a negative length"))
}

/// Bytes in the socket's send buffer, not yet acknowledged: the `SO_NWRITE` socket option.
#[cfg(any(target_os = "macos", target_os = "ios", target_os = "tvos", target_os = "watchos", target_os = "visionos"))]
pub fn outgoing_queue(sock: &SockRef<'_>) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let mut queued: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: SO_NWRITE writes one `int` into `queued`, whose size is passed in `len`; the
    // descriptor is borrowed from a live socket for the call.
    let rc = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NWRITE,
            (&mut queued as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    usize::try_from(queued).map_err(|_| io::Error::other("SO_NWRITE gave a negative length"))
}

/// Not on this platform: nothing tells how many written bytes are still unacknowledged.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "freebsd",
    target_os = "netbsd",
    target_os = "macos",
    target_os = "ios",
    target_os = "tvos",
    target_os = "watchos",
    target_os = "visionos"
)))]
pub fn outgoing_queue(_: &SockRef<'_>) -> io::Result<usize> {
    Err(unsupported("the unacknowledged-bytes count (SIOCOUTQ)"))
}

/// Ends the connection with a reset when it closes (`SO_LINGER` 0): a stalled peer's queued
/// bytes are dropped at once instead of being retried for minutes by an orphaned socket.
pub fn reset_on_close(sock: &SockRef<'_>) -> io::Result<()> {
    sock.set_linger(Some(Duration::ZERO))
}
