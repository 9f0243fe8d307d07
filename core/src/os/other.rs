//! Platforms other than Linux: webui-doctor reads Linux's socket tables, so every call here
//! reports that it is not supported (the server crate builds everywhere; this crate's CLI does not
//! pretend to).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use crate::model::{ProcPaths, SockOptName, SockOpts};

fn unsupported<T>() -> io::Result<T> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "only supported on Linux"))
}

pub fn privileged_by_exec() -> bool {
    true
}
pub const SETUID_REFUSAL: &str = "webui-doctor must not be installed set-uid; run it with sudo";
pub fn env_overrides_allowed(_: bool) -> bool {
    false
}
pub fn proc_paths(_: bool) -> ProcPaths {
    ProcPaths::default()
}
pub fn clock_ticks_per_second() -> u64 {
    100
}
pub fn socket_inode_at(_: &File, _: i32) -> Option<u64> {
    None
}
pub fn descriptor_at(_: &File, _: i32) -> Option<Option<u64>> {
    None
}
pub fn socket_inode(_: &[u8]) -> Option<u64> {
    None
}
pub fn read_nofollow(_: &Path) -> io::Result<String> {
    unsupported()
}
pub fn pidfd_open(_: u32) -> io::Result<OwnedFd> {
    unsupported()
}
pub fn pidfd_getfd(_: &OwnedFd, _: i32) -> io::Result<OwnedFd> {
    unsupported()
}
pub fn pidfd_exited(_: &OwnedFd) -> bool {
    true
}
pub fn socket_identity(_: impl AsFd) -> io::Result<crate::model::SocketIdentity> {
    unsupported()
}
pub fn get_sockopts(_: impl AsFd) -> io::Result<SockOpts> {
    unsupported()
}
pub fn set_sockopt(_: impl AsFd, _: SockOptName, _: u32) -> io::Result<()> {
    unsupported()
}
pub fn shutdown_both(_: impl AsFd) -> io::Result<()> {
    unsupported()
}
pub fn ptrace_scope() -> Option<u8> {
    None
}
pub fn linger_zero(_: impl AsFd) -> io::Result<()> {
    unsupported()
}
pub fn enter_netns(_: &File) -> io::Result<()> {
    unsupported()
}
pub fn set_recv_buffer(_: impl std::os::fd::AsFd, _: usize) -> io::Result<()> {
    unsupported()
}
pub fn set_recv_timeout(_: impl std::os::fd::AsFd, _: std::time::Duration) -> io::Result<()> {
    unsupported()
}
pub fn is_root() -> bool {
    false
}
pub fn raise_fd_limit() -> Option<u64> {
    None
}
pub const TERMINATING_SIGNALS: [(i32, &str); 0] = [];
pub fn catch_termination() {}
pub fn terminate_requested() -> bool {
    false
}
pub fn limit_malloc_arenas() {}
