//! The data every source produces and every renderer reads: one `Socket` per kernel socket,
//! gathered into a `Snapshot`. Names and JSON shapes here are a public contract (see GUIDE.md, "JSON output").

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use serde::{Serialize, Serializer};

/// TCP states in the kernel's numbering (`include/net/tcp_states.h`), so a state code from
/// netlink or `/proc/net/tcp` converts with `from_code` and a state mask bit is `1 << code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    /// `ESTAB`
    Established = 1,
    /// `SYN-SENT`
    SynSent = 2,
    /// `SYN-RECV`
    SynRecv = 3,
    /// `FIN-WAIT-1`
    FinWait1 = 4,
    /// `FIN-WAIT-2`
    FinWait2 = 5,
    /// `TIME-WAIT`
    TimeWait = 6,
    /// `UNCONN` / closed
    Closed = 7,
    /// `CLOSE-WAIT`: the peer closed; the application has not.
    CloseWait = 8,
    /// `LAST-ACK`
    LastAck = 9,
    /// `LISTEN`
    Listening = 10,
    /// `CLOSING`
    Closing = 11,
}

impl TcpState {
    /// Every state, in the kernel's order.
    pub const ALL: [TcpState; 11] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Closed,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listening,
        TcpState::Closing,
    ];

    /// The state of the kernel's number (`TCP_ESTABLISHED` = 1, …).
    pub fn from_code(code: u8) -> Option<TcpState> {
        TcpState::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// The state with this `ss` filter name (`close-wait`, ...).
    pub fn from_name(name: &str) -> Option<TcpState> {
        TcpState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The kernel's number.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The name `ss` accepts in a state filter, used in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "established",
            TcpState::SynSent => "syn-sent",
            TcpState::SynRecv => "syn-recv",
            TcpState::FinWait1 => "fin-wait-1",
            TcpState::FinWait2 => "fin-wait-2",
            TcpState::TimeWait => "time-wait",
            TcpState::Closed => "closed",
            TcpState::CloseWait => "close-wait",
            TcpState::LastAck => "last-ack",
            TcpState::Listening => "listening",
            TcpState::Closing => "closing",
        }
    }

    /// The column text `ss` prints (`ESTAB`, `CLOSE-WAIT`, ...), used in the table.
    pub fn ss_label(self) -> &'static str {
        match self {
            TcpState::Established => "ESTAB",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynRecv => "SYN-RECV",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Closed => "UNCONN",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listening => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    /// The label value node_exporter's `node_tcp_connection_states` uses, so both can be compared.
    pub fn prometheus_label(self) -> &'static str {
        match self {
            TcpState::Established => "established",
            TcpState::SynSent => "syn_sent",
            TcpState::SynRecv => "syn_recv",
            TcpState::FinWait1 => "fin_wait1",
            TcpState::FinWait2 => "fin_wait2",
            TcpState::TimeWait => "time_wait",
            TcpState::Closed => "close",
            TcpState::CloseWait => "close_wait",
            TcpState::LastAck => "last_ack",
            TcpState::Listening => "listen",
            TcpState::Closing => "closing",
        }
    }
}

impl Serialize for TcpState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A set of TCP states, laid out exactly like the sock_diag request's state mask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateSet(u32);

impl StateSet {
    /// No state.
    pub const EMPTY: StateSet = StateSet(0);

    /// Every state.
    pub fn all() -> StateSet {
        TcpState::ALL.iter().copied().collect()
    }

    /// These states.
    pub fn of(states: &[TcpState]) -> StateSet {
        states.iter().copied().collect()
    }

    /// Whether `state` is in the set.
    pub fn contains(self, state: TcpState) -> bool {
        self.0 & (1 << state.code()) != 0
    }

    /// Adds `state`.
    pub fn insert(&mut self, state: TcpState) {
        self.0 |= 1 << state.code();
    }

    /// The states in either set.
    pub fn union(self, other: StateSet) -> StateSet {
        StateSet(self.0 | other.0)
    }

    /// Whether the set has no state.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bit mask for `inet_diag_req_v2.idiag_states`.
    pub fn mask(self) -> u32 {
        self.0
    }

    /// The states in the set, in the kernel's order.
    pub fn iter(self) -> impl Iterator<Item = TcpState> {
        TcpState::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<TcpState> for StateSet {
    fn from_iter<I: IntoIterator<Item = TcpState>>(iter: I) -> StateSet {
        let mut set = StateSet::EMPTY;
        for s in iter {
            set.insert(s);
        }
        set
    }
}

/// The address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    Inet,
    /// IPv6.
    Inet6,
}

/// The kind of timer the kernel has armed on a socket (`idiag_timer` / the `tr` column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TimerKind {
    /// Retransmitting unacknowledged data.
    Retransmit,
    /// Keepalive: waiting to probe an idle peer.
    Keepalive,
    /// TIME-WAIT's expiry.
    TimeWait,
    /// Zero-window probe timer; `ss` calls it `persist`.
    Persist,
    /// A delayed ACK (kernel timer code 5).
    DelayedAck,
}

impl TimerKind {
    /// Decodes the kernel's timer code; 0 (no timer) and unknown codes give `None`.
    pub fn from_code(code: u8) -> Option<TimerKind> {
        match code {
            1 => Some(TimerKind::Retransmit),
            2 => Some(TimerKind::Keepalive),
            3 => Some(TimerKind::TimeWait),
            4 => Some(TimerKind::Persist),
            5 => Some(TimerKind::DelayedAck),
            _ => None,
        }
    }

    /// The kind as `ss` and the JSON name it.
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Retransmit => "retransmit",
            TimerKind::Keepalive => "keepalive",
            TimerKind::TimeWait => "time-wait",
            TimerKind::Persist => "persist",
            TimerKind::DelayedAck => "delayed-ack",
        }
    }
}

/// A socket's running timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timer {
    /// Which timer.
    pub kind: TimerKind,
    /// Milliseconds until the timer fires.
    pub expires_ms: u64,
    /// Retransmissions for a retransmit timer, unanswered probes for keepalive and persist.
    pub probes: u32,
}

/// Milliseconds since the socket last received and last sent data (from `tcp_info`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Idle {
    /// Since the last data received, in ms.
    pub last_recv_ms: u64,
    /// Since the last data sent, in ms.
    pub last_send_ms: u64,
}

/// A process that holds a socket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Process {
    /// Its process id.
    pub pid: u32,
    /// Its name (`/proc/PID/comm`).
    pub comm: String,
}

/// An address rendered as `ss` does: `127.0.0.1:8787`, `[::1]:8787`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint(pub SocketAddr);

impl Endpoint {
    /// The port.
    pub fn port(self) -> u16 {
        self.0.port()
    }

    /// The address.
    pub fn ip(self) -> IpAddr {
        self.0.ip()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SocketAddr's Display already brackets IPv6 and drops scope/flow info we never set.
        write!(f, "{}", self.0)
    }
}

impl Serialize for Endpoint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One TCP socket, as the kernel reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Socket {
    /// IPv4 or IPv6.
    pub family: Family,
    /// Its state.
    pub state: TcpState,
    /// Its own address.
    pub local: Endpoint,
    /// Its peer's (`0.0.0.0:0` for a listener).
    pub peer: Endpoint,
    /// Bytes received and not read by the application (for a listener: connections waiting).
    pub recv_q: u32,
    /// Bytes sent and not acknowledged (for a listener: its backlog).
    pub send_q: u32,
    /// Its timer, if one runs.
    pub timer: Option<Timer>,
    /// The uid that created it.
    pub uid: u32,
    /// Its inode (0 while the connection waits in a listen queue).
    pub inode: u64,
    /// Its owner, with `-p`.
    pub process: Option<Process>,
    /// Idle times, where `tcp_info` gives them.
    pub idle: Option<Idle>,
    /// With `-O`: the keepalive options read from the owner's socket.
    pub sockopts: Option<SockOpts>,
    /// A server-side connection no process has accepted yet: it waits in a listening socket's
    /// queue (no inode, no owner, no descriptor to take options). Only in JSON when true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub queued: bool,
    /// The kernel's socket cookie (sock_diag; 0 from procfs): names this socket and no later one
    /// with the same 4-tuple, so `fix --close-wait` destroys exactly what it read.
    #[serde(skip)]
    pub cookie: u64,
    /// What `-i`, `-m`, the cgroup lookup and `--all-netns` add.
    #[serde(flatten)]
    pub details: Details,
}

/// What the kernel says a socket descriptor is, read from our own copy of it: the inode, the
/// 64-bit cookie (`SO_COOKIE`) and the two addresses (`getsockname`/`getpeername`; the peer is
/// `None` for a socket without one, such as a listener).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketIdentity {
    /// The socket's inode.
    pub inode: u64,
    /// The kernel's socket cookie.
    pub cookie: u64,
    /// Its own address.
    pub local: Option<std::net::SocketAddr>,
    /// Its peer's.
    pub peer: Option<std::net::SocketAddr>,
}

/// The optional parts of a socket: filled only when asked for (`-i`, `-m`) or where the source
/// knows them (cgroup: sock_diag only), so a plain listing pays nothing for them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Details {
    /// With `-i`: what the connection is doing, from `tcp_info`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub info: Option<Box<TcpInfo>>,
    /// With `-m`: the socket's memory, from `INET_DIAG_SKMEMINFO`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<Box<Memory>>,
    /// The cgroup v2 path of the process that created the socket, relative to the cgroup2 mount
    /// (as `ss --cgroup` prints it); `None` from procfs, for minisockets (TIME-WAIT, SYN-RECV)
    /// and for a cgroup removed since.
    pub cgroup: Option<Arc<str>>,
    /// What the cgroup belongs to, as a person calls it (a systemd unit, a container, a pod);
    /// only where the path says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<Arc<Workload>>,
    /// The kernel's cgroup v2 id (`INET_DIAG_CGROUP_ID`); 0 when not reported.
    #[serde(skip)]
    pub cgroup_id: u64,
    /// With `--all-netns`: the namespace the socket lives in, `NAME` (from `ip netns`) or
    /// `pid:PID` (a process's namespace that has no name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub netns: Option<Arc<str>>,
}

/// What a person calls the owner of a cgroup: a systemd unit, a container, a Kubernetes pod.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// `unit`, `container` or `pod`.
    pub kind: &'static str,
    /// `nginx.service`; a container's short id (12 hex digits); `pod <uid>`.
    pub name: String,
    /// The container's full id (for a pod, its container's), where the path holds one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// Declares [`TcpInfo`]: each field packed at its own width, a bit of `known` saying whether the
/// kernel gave it, a getter that answers `None` where it did not and a setter that takes an
/// `Option`, and the JSON object with every field in this order (`null` where unknown).
macro_rules! packed_tcp_info {
    ($( $(#[doc = $doc:literal])* $field:ident, $set:ident: $ty:ty; )*) => {
        /// The `tcp_info` fields that tell what a connection is doing (`-i`). Each is `None` where
        /// the running kernel's `tcp_info` is too short to hold it (older kernels send a shorter
        /// struct; minisockets and the procfs source send none), never a guessed zero. Packed:
        /// 104 bytes a socket where a struct of `Option`s takes 192.
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct TcpInfo {
            /// Bit `Field::x as u32` set: `x` is known.
            known: u32,
            $($field: $ty,)*
        }

        #[allow(non_camel_case_types)]
        enum Field {
            $($field,)*
        }

        impl TcpInfo {
            $(
                $(#[doc = $doc])*
                pub fn $field(&self) -> Option<$ty> {
                    (self.known & (1 << Field::$field as u32) != 0).then_some(self.$field)
                }

                #[doc = concat!("Sets `", stringify!($field), "`, or forgets it (`None`).")]
                pub fn $set(&mut self, value: Option<$ty>) {
                    let bit = 1 << Field::$field as u32;
                    match value {
                        Some(v) => {
                            self.$field = v;
                            self.known |= bit;
                        }
                        None => {
                            self.$field = <$ty>::default();
                            self.known &= !bit;
                        }
                    }
                }
            )*
        }

        impl Serialize for TcpInfo {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeStruct as _;
                let mut s = serializer.serialize_struct("TcpInfo", [$(stringify!($field)),*].len())?;
                $(s.serialize_field(stringify!($field), &self.$field())?;)*
                s.end()
            }
        }
    };
}

packed_tcp_info! {
    /// Smoothed round-trip time, microseconds.
    rtt_us, set_rtt_us: u32;
    /// Variation of the smoothed round-trip time, in µs.
    rttvar_us, set_rttvar_us: u32;
    /// Retransmission timeout, milliseconds.
    rto_ms, set_rto_ms: u32;
    /// Exponential backoff of the retransmit or window-probe timer.
    backoff, set_backoff: u8;
    /// Retransmissions of the current segment (reset by an ACK).
    retransmits, set_retransmits: u8;
    /// Retransmissions over the connection's life.
    total_retrans, set_total_retrans: u32;
    /// Segments sent and not yet acknowledged.
    unacked, set_unacked: u32;
    /// Segments presumed lost.
    lost, set_lost: u32;
    /// Bytes written by the application and not yet sent.
    notsent_bytes, set_notsent_bytes: u32;
    /// Milliseconds since the peer last acknowledged anything.
    last_ack_ms, set_last_ack_ms: u32;
    /// The peer's advertised receive window, bytes (0: the peer stopped reading).
    snd_wnd, set_snd_wnd: u32;
    /// Our advertised receive window, bytes.
    rcv_wnd, set_rcv_wnd: u32;
    /// Bytes acknowledged by the peer.
    bytes_acked, set_bytes_acked: u64;
    /// Bytes received from the peer.
    bytes_received, set_bytes_received: u64;
    /// Most recent delivery rate, bits per second (as `ss -i` prints it).
    delivery_rate_bps, set_delivery_rate_bps: u64;
    /// Milliseconds spent sending data.
    busy_ms, set_busy_ms: u64;
    /// Milliseconds sending was limited by the peer's receive window.
    rwnd_limited_ms, set_rwnd_limited_ms: u64;
    /// Milliseconds sending was limited by our send buffer.
    sndbuf_limited_ms, set_sndbuf_limited_ms: u64;
}

/// Socket memory in bytes (`-m`), from `INET_DIAG_SKMEMINFO` (what `ss -m` prints as `skmem`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Memory {
    /// Received data waiting for the application (`r`).
    pub rmem_alloc: Option<u32>,
    /// Receive buffer size (`rb`).
    pub rcvbuf: Option<u32>,
    /// Data handed to the network layer, not yet freed (`t`).
    pub wmem_alloc: Option<u32>,
    /// Send buffer size (`tb`).
    pub sndbuf: Option<u32>,
    /// Data queued for sending, sent or not (`w`).
    pub wmem_queued: Option<u32>,
}

/// The optional parts a read asks the source for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Extras {
    /// `-i`: decode `tcp_info` into [`TcpInfo`].
    pub info: bool,
    /// `-m`: ask for and decode `INET_DIAG_SKMEMINFO`.
    pub memory: bool,
    /// The cgroup path is shown or selected on (`-e`, `--by cgroup`, `--cgroup`).
    pub cgroup: bool,
    /// Counts and timers only (`--summary`): no `tcp_info` is asked for, so idle times stay
    /// `null` and the findings leave them out. Ignored with `info`.
    pub no_tcp_info: bool,
}

impl Socket {
    /// A socket with these addresses and nothing else known (no inode, timer, owner or cookie).
    pub fn new(state: TcpState, local: SocketAddr, peer: SocketAddr) -> Socket {
        Socket {
            family: if local.is_ipv4() { Family::Inet } else { Family::Inet6 },
            state,
            local: Endpoint(local),
            peer: Endpoint(peer),
            recv_q: 0,
            send_q: 0,
            timer: None,
            uid: 0,
            inode: 0,
            process: None,
            idle: None,
            sockopts: None,
            queued: false,
            cookie: 0,
            details: Details::default(),
        }
    }

    /// Whether its keepalive timer is running.
    pub fn keepalive_armed(&self) -> bool {
        matches!(self.timer, Some(Timer { kind: TimerKind::Keepalive, .. }))
    }

    /// Whether this could be a connection waiting in a listen queue: a full socket (established,
    /// or CLOSE-WAIT once its client has gone) that no process has accepted (inode 0). It is
    /// one when its local port also has a listening socket.
    pub fn unaccepted(&self) -> bool {
        self.inode == 0 && matches!(self.state, TcpState::Established | TcpState::CloseWait)
    }

    /// A listening socket's accept queue, as `ss` shows it for LISTEN: `Recv-Q` is the number of
    /// connections waiting to be accepted, `Send-Q` the backlog. `None` for other states.
    pub fn listen_queue(&self) -> Option<ListenQueue> {
        (self.state == TcpState::Listening).then_some(ListenQueue {
            local: self.local,
            waiting: self.recv_q,
            backlog: self.send_q,
        })
    }
}

/// One listening socket's accept queue: connections the kernel has completed and no process has
/// taken with `accept()` yet, against the backlog `listen()` asked for (capped by
/// `net.core.somaxconn`). A full queue makes the kernel drop new handshakes (`ListenOverflows`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ListenQueue {
    /// The listener's address.
    pub local: Endpoint,
    /// Connections waiting (the listener's `Recv-Q`).
    pub waiting: u32,
    /// The most that may wait (the listener's `Send-Q`).
    pub backlog: u32,
}

/// Where sockets are read from: the `--source` choice, and (never `Auto`) the reader that
/// produced a snapshot, named in every output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// netlink, or procfs when the kernel refuses netlink
    Auto,
    /// a NETLINK_SOCK_DIAG dump (timers, queues, tcp_info idle times)
    Netlink,
    /// /proc/net/tcp and /proc/net/tcp6 (no idle times); honours PROC_ROOT
    Procfs,
}

impl Source {
    /// The source as the JSON and the text name it.
    pub fn name(self) -> &'static str {
        match self {
            Source::Auto => "auto",
            Source::Netlink => "netlink",
            Source::Procfs => "procfs",
        }
    }
}

/// The sockets one read returned, with where and when they came from.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// `Netlink` or `Procfs`: the reader that answered.
    pub source: Source,
    /// When the read was made.
    pub taken_at: SystemTime,
    /// The sockets, in the kernel's order.
    pub sockets: Vec<Socket>,
    /// Fields asked for that this source cannot give (named as in the JSON output, such as
    /// `info.rtt_us`): they are `null` in every socket, which is not the same as zero.
    pub unavailable: Vec<&'static str>,
    /// With `-p`: each process owning a socket in `sockets`, lowest pid first.
    pub processes: Vec<ProcessStats>,
    /// The queues of the listening sockets whose ports have connections waiting to be accepted
    /// among `sockets` (those marked `queued`); read only when there are such connections.
    pub queues: Vec<ListenQueue>,
}

/// Where the `/proc` files are: `/proc`, or the `PROC_ROOT`, `PROC_NET_TCP` and `PROC_NET_TCP6`
/// overrides `ss` also honours (for fixtures). Resolved once, at start, and carried in the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcPaths {
    /// The proc root (`/proc`, or `PROC_ROOT`).
    pub root: PathBuf,
    /// `PROC_NET_TCP`, else `ROOT/net/tcp`.
    pub tcp: PathBuf,
    /// `PROC_NET_TCP6`, else `ROOT/net/tcp6`.
    pub tcp6: PathBuf,
}

impl ProcPaths {
    /// The files under `root`.
    pub fn under(root: PathBuf) -> ProcPaths {
        ProcPaths { tcp: root.join("net/tcp"), tcp6: root.join("net/tcp6"), root }
    }
}

impl Default for ProcPaths {
    fn default() -> ProcPaths {
        ProcPaths::under(PathBuf::from("/proc"))
    }
}

/// The values a server's accepted socket carries, as the kernel reports them (the system
/// defaults where the application set nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SockOpts {
    /// `SO_KEEPALIVE`.
    pub so_keepalive: bool,
    /// `TCP_NODELAY`.
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

/// The six options the keepalive fix sets, in the order it sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SockOptName {
    /// `SO_KEEPALIVE`
    #[serde(rename = "SO_KEEPALIVE")]
    SoKeepalive,
    /// `TCP_NODELAY`
    #[serde(rename = "TCP_NODELAY")]
    TcpNodelay,
    /// `TCP_KEEPIDLE`
    #[serde(rename = "TCP_KEEPIDLE")]
    TcpKeepidle,
    /// `TCP_KEEPINTVL`
    #[serde(rename = "TCP_KEEPINTVL")]
    TcpKeepintvl,
    /// `TCP_KEEPCNT`
    #[serde(rename = "TCP_KEEPCNT")]
    TcpKeepcnt,
    /// `TCP_USER_TIMEOUT`
    #[serde(rename = "TCP_USER_TIMEOUT")]
    TcpUserTimeout,
}

impl SockOptName {
    /// The option's C name.
    pub fn name(self) -> &'static str {
        match self {
            SockOptName::SoKeepalive => "SO_KEEPALIVE",
            SockOptName::TcpNodelay => "TCP_NODELAY",
            SockOptName::TcpKeepidle => "TCP_KEEPIDLE",
            SockOptName::TcpKeepintvl => "TCP_KEEPINTVL",
            SockOptName::TcpKeepcnt => "TCP_KEEPCNT",
            SockOptName::TcpUserTimeout => "TCP_USER_TIMEOUT",
        }
    }

    /// This option's value in `o`, as the kernel takes it (flags 0/1, seconds, a count, ms).
    pub fn get(self, o: &SockOpts) -> u32 {
        match self {
            SockOptName::SoKeepalive => u32::from(o.so_keepalive),
            SockOptName::TcpNodelay => u32::from(o.tcp_nodelay),
            SockOptName::TcpKeepidle => o.keepidle_s,
            SockOptName::TcpKeepintvl => o.keepintvl_s,
            SockOptName::TcpKeepcnt => o.keepcnt,
            SockOptName::TcpUserTimeout => o.user_timeout_ms,
        }
    }
}

/// What an owning process holds and may hold (`-p`): its open files against its soft
/// `RLIMIT_NOFILE`, and its threads. `None` where `/proc/PID` would not say (exited, denied).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessStats {
    /// Its process id.
    pub pid: u32,
    /// Its name.
    pub comm: String,
    /// Entries in `/proc/PID/fd`.
    pub open_files: usize,
    /// Of those, sockets of any kind (TCP, UDP, unix).
    pub socket_files: usize,
    /// The soft `RLIMIT_NOFILE` (`/proc/PID/limits`); `None` when unlimited or unreadable.
    pub file_limit: Option<u64>,
    /// `Threads` in `/proc/PID/status`.
    pub threads: Option<u64>,
}

/// How process attribution went (`-p`): sockets with an inode but no owner we could see, and the
/// processes whose fd table we were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Attribution {
    /// Sockets with no owner found.
    pub unattributed: usize,
    /// Processes whose files could not be read.
    pub denied_processes: usize,
    /// With `-O`: owned sockets whose options could not be read (no ptrace access to the owner).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockopts_unread: Option<usize>,
    /// With `-O`: owned sockets left alone because their owner is in a `net_cls`/`net_prio`
    /// cgroup that `pidfd_getfd` would re-tag (see `--force`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockopts_skipped_net_cls: Option<usize>,
}

/// `net.ipv4.tcp_keepalive_{time,intvl,probes}` of the current network namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KeepaliveSysctls {
    /// `net.ipv4.tcp_keepalive_time`, in seconds.
    pub time_s: u64,
    /// `net.ipv4.tcp_keepalive_intvl`, in seconds.
    pub intvl_s: u64,
    /// `net.ipv4.tcp_keepalive_probes`.
    pub probes: u64,
}

/// Why a TCP socket ended, as far as its final `tcp_info` tells (`events`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndCause {
    /// Probes went unanswered (keepalive, or window probes to a closed window).
    KeepaliveTimeout,
    /// Sent data (or a SYN) stayed unacknowledged: `TCP_USER_TIMEOUT` or `tcp_retries2`.
    RetransmitTimeout,
    /// Nothing was outstanding: an orderly close (FIN) or a reset, which the final state does not
    /// tell apart.
    Closed,
    /// No `tcp_info` came with the notification.
    Unknown,
}

impl EndCause {
    /// Every cause.
    pub const ALL: [EndCause; 4] =
        [EndCause::KeepaliveTimeout, EndCause::RetransmitTimeout, EndCause::Closed, EndCause::Unknown];

    /// The cause as the JSON and the text name it.
    pub fn name(self) -> &'static str {
        match self {
            EndCause::KeepaliveTimeout => "keepalive-timeout",
            EndCause::RetransmitTimeout => "retransmit-timeout",
            EndCause::Closed => "closed",
            EndCause::Unknown => "unknown",
        }
    }
}

/// One TCP socket's end, from a sock_diag destroy notification: the socket's last state and the
/// final `tcp_info` counters that say why it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ended {
    /// RFC 3339 time the notification was received.
    pub time: String,
    /// IPv4 or IPv6.
    pub family: Family,
    /// Its own address.
    pub local: Endpoint,
    /// Its peer's.
    pub peer: Endpoint,
    /// The state the kernel reports in the notification (`closed` for nearly every end).
    pub state: TcpState,
    /// Unanswered probes (keepalive or zero-window), `tcpi_probes`.
    pub probes: Option<u8>,
    /// Retransmissions of the last unacknowledged segment, `tcpi_retransmits`.
    pub retransmits: Option<u8>,
    /// Retransmissions over its life.
    pub total_retrans: Option<u32>,
    /// Segments still unacknowledged (the queue is usually purged before the notification).
    pub unacked: Option<u32>,
    /// Segments the kernel counted as lost.
    pub lost: Option<u32>,
    /// Since it last sent data, in ms.
    pub last_send_ms: Option<u64>,
    /// Since it last received data, in ms.
    pub last_recv_ms: Option<u64>,
    /// Since it last received an ACK, in ms.
    pub last_ack_ms: Option<u32>,
    /// Why it ended.
    pub cause: EndCause,
}

/// What `serve` has seen end on its watched ports since it started: per port and cause, and the
/// most recent ends, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EndedFeed {
    /// `{"8787": {"keepalive-timeout": 3, ...}}`: every watched port, every cause, zeros included.
    pub totals: std::collections::BTreeMap<u16, std::collections::BTreeMap<&'static str, u64>>,
    /// The last ones, newest last.
    pub recent: std::collections::VecDeque<Ended>,
    /// Why there is no feed (the kernel refused the subscription), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Kernel notifications that could not be decoded, skipped.
    pub malformed: u64,
}

impl EndedFeed {
    /// Ends kept in `recent`.
    pub const RECENT: usize = 20;

    /// A feed for these ports.
    pub fn new(ports: &[u16]) -> EndedFeed {
        let causes = || EndCause::ALL.iter().map(|c| (c.name(), 0)).collect();
        EndedFeed { totals: ports.iter().map(|&p| (p, causes())).collect(), ..EndedFeed::default() }
    }

    /// Counts one end (on a watched port) and keeps it in `recent`.
    pub fn add(&mut self, e: Ended) {
        if let Some(n) = self.totals.get_mut(&e.local.port()).and_then(|t| t.get_mut(e.cause.name())) {
            *n += 1;
        }
        self.recent.push_front(e);
        self.recent.truncate(EndedFeed::RECENT);
    }
}

/// The kernel's TCP counters (`/proc/net/netstat`, `TcpExt:`) that tell, host-wide, the story
/// the sockets tell one by one: keepalive probes sent, connections aborted on timeout, on
/// unread data or at close, listen-queue overflows. Shown as the change between `--watch`
/// reports; node_exporter's netstat collector exports the totals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct TcpExt {
    /// `TCPKeepAlive`: keepalive probes sent.
    #[serde(rename = "TCPKeepAlive")]
    pub keep_alive: u64,
    /// `TCPAbortOnTimeout`: connections ended by keepalive or retransmission timeouts.
    #[serde(rename = "TCPAbortOnTimeout")]
    pub abort_on_timeout: u64,
    /// `TCPTimeouts`: retransmission timeouts.
    #[serde(rename = "TCPTimeouts")]
    pub timeouts: u64,
    /// `TCPAbortOnData`: connections reset because data arrived after close.
    #[serde(rename = "TCPAbortOnData")]
    pub abort_on_data: u64,
    /// `TCPAbortOnClose`: connections reset because unread data was left at close.
    #[serde(rename = "TCPAbortOnClose")]
    pub abort_on_close: u64,
    /// `ListenOverflows`: handshakes dropped because a listen queue was full.
    pub listen_overflows: u64,
    /// `ListenDrops`: handshakes dropped at a listener for any reason.
    pub listen_drops: u64,
}

impl TcpExt {
    /// The counters by their kernel names, in the order shown.
    pub fn fields(&self) -> [(&'static str, u64); 7] {
        [
            ("TCPKeepAlive", self.keep_alive),
            ("TCPAbortOnTimeout", self.abort_on_timeout),
            ("TCPTimeouts", self.timeouts),
            ("TCPAbortOnData", self.abort_on_data),
            ("TCPAbortOnClose", self.abort_on_close),
            ("ListenOverflows", self.listen_overflows),
            ("ListenDrops", self.listen_drops),
        ]
    }

    /// `self - earlier`, counter by counter (0 where a counter went back, as after a reboot or a
    /// namespace change).
    pub fn since(&self, earlier: &TcpExt) -> TcpExt {
        TcpExt {
            keep_alive: self.keep_alive.saturating_sub(earlier.keep_alive),
            abort_on_timeout: self.abort_on_timeout.saturating_sub(earlier.abort_on_timeout),
            timeouts: self.timeouts.saturating_sub(earlier.timeouts),
            abort_on_data: self.abort_on_data.saturating_sub(earlier.abort_on_data),
            abort_on_close: self.abort_on_close.saturating_sub(earlier.abort_on_close),
            listen_overflows: self.listen_overflows.saturating_sub(earlier.listen_overflows),
            listen_drops: self.listen_drops.saturating_sub(earlier.listen_drops),
        }
    }
}

/// The change of [`TcpExt`] between two `--watch` reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TcpExtChange {
    /// Seconds between the two reads.
    pub seconds: f64,
    /// The counters.
    pub counters: TcpExt,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field keeps its own value and knows whether it was set; the JSON is the object of
    /// `Option`s it replaced, in the same order, `null` where unknown.
    #[test]
    fn tcp_info_is_packed_and_reads_as_options() {
        assert!(std::mem::size_of::<TcpInfo>() <= 104, "{} bytes", std::mem::size_of::<TcpInfo>());
        let mut i = TcpInfo::default();
        assert_eq!((i.rtt_us(), i.backoff(), i.busy_ms()), (None, None, None));
        i.set_rtt_us(Some(0));
        i.set_backoff(Some(3));
        i.set_bytes_acked(Some(u64::MAX));
        i.set_sndbuf_limited_ms(Some(7));
        i.set_rcv_wnd(Some(65_535));
        assert_eq!((i.rtt_us(), i.rttvar_us(), i.backoff(), i.retransmits()), (Some(0), None, Some(3), None));
        assert_eq!((i.bytes_acked(), i.bytes_received(), i.sndbuf_limited_ms()), (Some(u64::MAX), None, Some(7)));
        let json = serde_json::to_string(&i).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"rtt_us":0,"rttvar_us":null,"rto_ms":null,"backoff":3,"retransmits":null,"#,
                r#""total_retrans":null,"unacked":null,"lost":null,"notsent_bytes":null,"#,
                r#""last_ack_ms":null,"snd_wnd":null,"rcv_wnd":65535,"bytes_acked":18446744073709551615,"#,
                r#""bytes_received":null,"delivery_rate_bps":null,"busy_ms":null,"rwnd_limited_ms":null,"#,
                r#""sndbuf_limited_ms":7}"#
            )
        );
        i.set_rtt_us(None);
        i.set_backoff(None);
        i.set_bytes_acked(None);
        i.set_sndbuf_limited_ms(None);
        i.set_rcv_wnd(None);
        assert_eq!(i, TcpInfo::default(), "forgetting every field leaves nothing known");
    }
}
