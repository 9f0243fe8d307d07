//! The library's typed errors. The binary turns every one of them into a single stderr line
//! and exit code 2; callers that fall back (netlink -> procfs) match on the variant.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused a sock_diag socket or request (locked-down container, seccomp, no
    /// NETLINK_SOCK_DIAG support). `--source auto` falls back to procfs on this error only.
    #[error("netlink sock_diag refused")]
    NetlinkRefused(#[source] io::Error),

    #[error("reading netlink sock_diag")]
    NetlinkIo(#[source] io::Error),

    /// The kernel's reply could not be decoded; the numbers would be wrong, so nothing is shown.
    #[error("malformed netlink sock_diag reply: {0}")]
    NetlinkDecode(String),

    /// The kernel answered the dump with an error code.
    #[error("netlink sock_diag request failed")]
    NetlinkKernel(#[source] io::Error),

    #[error("{}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A line of `/proc/net/tcp{,6}` that does not have the kernel's format.
    #[error("{}:{line}: {reason}", path.display())]
    Parse { path: PathBuf, line: usize, reason: String },

    #[error("network namespace '{name}' not found ({})", path.display())]
    NetnsMissing {
        name: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot enter network namespace '{name}' (needs CAP_SYS_ADMIN)")]
    NetnsEnter {
        name: String,
        #[source]
        source: io::Error,
    },

    /// Another process's socket options could not be read (no ptrace access, or it exited).
    #[error("reading socket options of inode {inode} in process {pid}")]
    SockOpt {
        pid: u32,
        inode: u64,
        #[source]
        source: std::io::Error,
    },

    /// `verify` could not set up its connection or find the server's socket.
    #[error("{0}")]
    Verify(String),

    /// `verify --drill` could not install or remove its nftables rule, or was not allowed to.
    #[error("{0}")]
    Drill(String),

    #[error("{0} is only supported on Linux")]
    Unsupported(&'static str),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
