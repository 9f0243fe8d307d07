//! The library's typed errors. The binary turns every one of them into a single stderr line
//! and exit code 2; callers that fall back (netlink -> procfs) match on the variant.

use std::io;
use std::path::PathBuf;

/// Everything the library can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kernel refused a sock_diag socket or request (locked-down container, seccomp, no
    /// NETLINK_SOCK_DIAG support). `--source auto` falls back to procfs on this error only.
    #[error("netlink sock_diag refused")]
    NetlinkRefused(#[source] io::Error),

    /// Reading the dump failed midway.
    #[error("reading netlink sock_diag")]
    NetlinkIo(#[source] io::Error),

    /// The kernel's reply could not be decoded; the numbers would be wrong, so nothing is shown.
    #[error("malformed netlink sock_diag reply: {0}")]
    NetlinkDecode(String),

    /// The kernel answered the dump with an error code.
    #[error("netlink sock_diag request failed")]
    NetlinkKernel(#[source] io::Error),

    /// A file under `/proc` (or `PROC_ROOT`) could not be read.
    #[error("{}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// A line of `/proc/net/tcp{,6}` that does not have the kernel's format.
    #[error("{}:{line}: {reason}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Its line, from 1.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },

    /// `--netns NAME` names no namespace under `/run/netns`.
    #[error("network namespace '{name}' not found ({})", path.display())]
    NetnsMissing {
        /// The name given.
        name: String,
        /// Where it was looked for.
        path: PathBuf,
        /// Why it could not be opened.
        #[source]
        source: io::Error,
    },

    /// `setns` refused.
    #[error("cannot enter network namespace '{name}' (needs CAP_SYS_ADMIN)")]
    NetnsEnter {
        /// The namespace.
        name: String,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// Another process's socket options could not be read.
    #[error(transparent)]
    SockOpt(#[from] SockOptError),

    /// `verify` could not set up its connection.
    #[error(transparent)]
    Verify(#[from] VerifyError),

    /// `verify --drill` could not install or remove its rule.
    #[error(transparent)]
    Drill(#[from] DrillError),

    /// `fix` could not start.
    #[error(transparent)]
    Fix(#[from] FixError),

    /// Writing the output failed (a closed stdout, say) while work was under way.
    #[error("writing output")]
    Output(#[source] io::Error),

    /// Not on this operating system.
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
    /// The owner is in another `net_cls`/`net_prio` class: a copy would re-tag its socket.
    #[error(
        "process {pid} is in net_cls/net_prio cgroup {cgroup}, this process in {ours}: pidfd_getfd would re-tag its socket with our class id (use --force to read anyway)"
    )]
    NetCls {
        /// The owner.
        pid: u32,
        /// Its cgroup.
        cgroup: String,
        /// Ours.
        ours: String,
    },

    /// `pidfd_getfd` refused.
    #[error("cannot duplicate fd {fd} of process {pid} (pidfd_getfd needs root or the owner's user)")]
    Duplicate {
        /// The owner.
        pid: u32,
        /// Its descriptor.
        fd: i32,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The fd or the inode number was reused between the choice and the copy: the copy is
    /// another socket (or another file), and is left alone.
    #[error("fd {fd} of process {pid} is no longer the socket chosen ({what}); left alone")]
    NotSelected {
        /// The owner.
        pid: u32,
        /// Its descriptor.
        fd: i32,
        /// What differed (inode, cookie or addresses).
        what: String,
    },

    /// A set-uid or file-capability install: copies are refused.
    #[error("{}", crate::os::SETUID_REFUSAL)]
    SetUid,

    /// `getsockopt` on the copy failed.
    #[error("reading socket options of process {pid}")]
    Read {
        /// The owner.
        pid: u32,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// `verify` could not set up its connection or find the server's socket.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Connecting to the server, or sending the request, failed.
    #[error("{what} {target}")]
    Connect {
        /// What was being done (`connecting to`).
        what: &'static str,
        /// The server.
        target: std::net::SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The server accepted nothing within 3 s.
    #[error(
        "no accepted socket for {client} -> {target} appeared within 3 s: is the server on this host, and does it accept?"
    )]
    NotAccepted {
        /// Our side.
        client: std::net::SocketAddr,
        /// The server.
        target: std::net::SocketAddr,
    },

    /// The connection reached the listen queue but no worker took it (all busy).
    #[error(
        "accepted by no worker within 3 s: {client} -> {target} waited in the listen queue{} (the server's workers are busy); verify removed its connection",
        waiting.map(|n| format!(", which holds {n}")).unwrap_or_default()
    )]
    Queued {
        /// Our side.
        client: std::net::SocketAddr,
        /// The server.
        target: std::net::SocketAddr,
        /// Connections waiting in the listener's queue, where it could be read.
        waiting: Option<u32>,
    },

    /// The server closed our connection before its options could be read.
    #[error("the server closed the connection from {client} at once (try --stream PATH)")]
    ClosedAtOnce {
        /// Our side.
        client: std::net::SocketAddr,
    },
}

/// `verify --drill` could not install or remove its nftables rule, or was not allowed to.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    /// Not root.
    #[error("--drill needs root: it installs an nftables rule")]
    NotRoot,

    /// A set-uid or file-capability install: no program is run.
    #[error("{}", crate::os::SETUID_REFUSAL)]
    SetUid,

    /// `nft` is not installed.
    #[error("cannot run nft (install nftables)")]
    NftMissing(#[source] io::Error),

    /// Writing to or reading from `nft` failed.
    #[error("talking to nft")]
    NftIo(#[source] io::Error),

    /// `nft` refused the rule (its message).
    #[error("nft refused the rule: {0}")]
    NftRefused(String),

    /// An IPv4 server and an IPv6 client, or the reverse.
    #[error("server and client are of different address families")]
    MixedFamilies,
}

/// `fix` could not start, or stopped before changing anything.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    /// Nothing listens on the ports.
    #[error("no listening TCP socket on port {}", ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", "))]
    NoListener {
        /// The ports.
        ports: Vec<u16>,
    },

    /// `--pid` names no process.
    #[error("no process {0}")]
    NoProcess(u32),

    /// `--pid`'s process listens nowhere.
    #[error("process {0} holds no listening TCP socket")]
    PidListensNowhere(u32),

    /// `pidfd_getfd` is not allowed on the owner.
    #[error(
        "cannot take a copy of the sockets of process {pid} (pidfd_getfd needs root, or the owner's uid with ptrace allowed by kernel.yama.ptrace_scope{}); nothing was changed",
        scope.map(|s| format!(", which is {s} here")).unwrap_or_default()
    )]
    Permission {
        /// The owner.
        pid: u32,
        /// `kernel.yama.ptrace_scope`, where readable.
        scope: Option<u8>,
        /// Why.
        #[source]
        source: io::Error,
    },

    /// The owner of a selected socket cannot be seen.
    #[error(
        "the owner of socket {inode} on {local} is not visible (another user's process: run as root); nothing was changed"
    )]
    OwnerHidden {
        /// The socket's inode.
        inode: u64,
        /// Its address.
        local: String,
    },

    /// The owner exited midway.
    #[error("process {pid} exited while the fix was being prepared; nothing was changed")]
    Exited {
        /// The owner.
        pid: u32,
    },
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

/// The library's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
