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

    /// Another process's socket options could not be read.
    #[error(transparent)]
    SockOpt(#[from] SockOptError),

    #[error(transparent)]
    Verify(#[from] VerifyError),

    #[error(transparent)]
    Drill(#[from] DrillError),

    #[error(transparent)]
    Fix(#[from] FixError),

    /// Writing the output failed (a closed stdout, say) while work was under way.
    #[error("writing output")]
    Output(#[source] io::Error),

    #[error("{0} is only supported on Linux")]
    Unsupported(&'static str),

    /// The kernel refused the subscription to socket-end notifications.
    #[error(
        "the kernel refused the subscription to TCP socket-end notifications (some kernels allow it with CAP_NET_ADMIN only)"
    )]
    EventsRefused(#[source] io::Error),

    /// `--all-netns` found no namespace it could enter.
    #[error("no network namespace could be entered (needs CAP_SYS_ADMIN)")]
    NoNamespaces,

    /// A selection the source that answered cannot make (`--cgroup` on procfs).
    #[error("{0} needs the netlink source: /proc/net/tcp does not say")]
    NeedsNetlink(&'static str),
}

/// Why another process's socket options were not read.
#[derive(Debug, thiserror::Error)]
pub enum SockOptError {
    #[error(
        "process {pid} is in net_cls/net_prio cgroup {cgroup}, this process in {ours}: pidfd_getfd would re-tag its socket with our class id (use --force to read anyway)"
    )]
    NetCls { pid: u32, cgroup: String, ours: String },

    #[error("cannot duplicate fd {fd} of process {pid} (pidfd_getfd needs root or the owner's user)")]
    Duplicate {
        pid: u32,
        fd: i32,
        #[source]
        source: io::Error,
    },

    /// The fd or the inode number was reused between the choice and the copy: the copy is
    /// another socket (or another file), and is left alone.
    #[error("fd {fd} of process {pid} is no longer the socket chosen ({what}); left alone")]
    NotSelected { pid: u32, fd: i32, what: String },

    /// A set-uid or file-capability install: copies are refused.
    #[error("{}", crate::os::SETUID_REFUSAL)]
    SetUid,

    #[error("reading socket options of process {pid}")]
    Read {
        pid: u32,
        #[source]
        source: io::Error,
    },
}

/// `verify` could not set up its connection or find the server's socket.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("{what} {target}")]
    Connect {
        what: &'static str,
        target: std::net::SocketAddr,
        #[source]
        source: io::Error,
    },

    #[error(
        "no accepted socket for {client} -> {target} appeared within 3 s: is the server on this host, and does it accept?"
    )]
    NotAccepted { client: std::net::SocketAddr, target: std::net::SocketAddr },

    /// The connection reached the listen queue but no worker took it (all busy).
    #[error(
        "accepted by no worker within 3 s: {client} -> {target} waited in the listen queue{} (the server's workers are busy); verify removed its connection",
        waiting.map(|n| format!(", which holds {n}")).unwrap_or_default()
    )]
    Queued { client: std::net::SocketAddr, target: std::net::SocketAddr, waiting: Option<u32> },

    #[error("the server closed the connection from {client} at once (try --stream PATH)")]
    ClosedAtOnce { client: std::net::SocketAddr },
}

/// `verify --drill` could not install or remove its nftables rule, or was not allowed to.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("--drill needs root: it installs an nftables rule")]
    NotRoot,

    /// A set-uid or file-capability install: no program is run.
    #[error("{}", crate::os::SETUID_REFUSAL)]
    SetUid,

    #[error("cannot run nft (install nftables)")]
    NftMissing(#[source] io::Error),

    #[error("talking to nft")]
    NftIo(#[source] io::Error),

    #[error("nft refused the rule: {0}")]
    NftRefused(String),

    #[error("server and client are of different address families")]
    MixedFamilies,
}

/// `fix` could not start, or stopped before changing anything.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error("no listening TCP socket on port {}", ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", "))]
    NoListener { ports: Vec<u16> },

    #[error("no process {0}")]
    NoProcess(u32),

    #[error("process {0} holds no listening TCP socket")]
    PidListensNowhere(u32),

    #[error(
        "cannot take a copy of the sockets of process {pid} (pidfd_getfd needs root, or the owner's uid with ptrace allowed by kernel.yama.ptrace_scope{}); nothing was changed",
        scope.map(|s| format!(", which is {s} here")).unwrap_or_default()
    )]
    Permission {
        pid: u32,
        scope: Option<u8>,
        #[source]
        source: io::Error,
    },

    #[error(
        "the owner of socket {inode} on {local} is not visible (another user's process: run as root); nothing was changed"
    )]
    OwnerHidden { inode: u64, local: String },

    #[error("process {pid} exited while the fix was being prepared; nothing was changed")]
    Exited { pid: u32 },
}

/// An error and its causes on one line, as `main` prints them: `cannot duplicate fd 5 of process
/// 42 (…): Operation not permitted (os error 1)`. For reasons kept as text in a report.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
