//! The command line, in one place: `--help`, the man pages in `man/` and the shell completions in
//! `completions/` are all generated from these definitions.
//!
//! Its doc comments are the help text: clap turns each into what `--help` prints. The items
//! without one (argument structs, flattened groups, the state names) are documented by the help of
//! what uses them, and a doc comment added for rustdoc would change what users read, so
//! `missing_docs` is allowed here alone.
#![allow(missing_docs)]

use clap::builder::{EnumValueParser, TypedValueParser};
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::analysis::GroupBy;
use crate::filter::{PortRange, group};
use crate::fix::CloseWith;
use crate::model::{Source, StateSet, TcpState};

#[derive(Debug, Parser)]
#[command(
    name = "webui-doctor",
    version,
    about = "TCP connection health for Linux servers: CLOSE-WAIT, keepalive timers, dead peers",
    long_about = "TCP connection health for Linux servers.\n\n\
        Inspects a host's TCP sockets through sock_diag netlink (or /proc/net/tcp as a fallback), \
        like `ss -tanoe`: states, queues, keepalive and retransmit timers, idle times and owning \
        processes, with a summary of CLOSE-WAIT and keepalive coverage. `check` turns the same \
        numbers into a CI or monitoring gate.\n\n\
        Exit codes: 0 ok, 1 gate breached, 2 usage or operational error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List TCP sockets with timers, queues, idle times and owners (like `ss -tanoe`)
    #[command(long_about = "List TCP sockets with timers, queues, idle times and owners, like `ss -tanoe`, \
        followed by a summary: counts per state, CLOSE-WAIT, and how many established sockets have \
        a keepalive timer armed.")]
    Sockets(SocketsArgs),
    /// Exit 1 when CLOSE-WAIT sockets or missing keepalive pass a threshold (a CI gate)
    #[command(long_about = "Gate on connection health. Exits 0 when every rule holds, 1 when a rule is \
        breached (one line per breached rule on stderr, with the counts), 2 on usage or operational \
        errors. Rules: at most --max-close-wait sockets in CLOSE-WAIT; with --require-keepalive, \
        every established socket in the selection has its keepalive timer armed.")]
    Check(CheckArgs),
    /// Serve a live dashboard, SSE stream, JSON API and Prometheus metrics, with the keepalive fix
    #[command(long_about = "Serve a live connection-health dashboard (/), a JSON API (/api/snapshot), an SSE \
        stream of snapshots (/api/events) with a heartbeat, Prometheus metrics (/metrics) and /healthz. \
        Every accepted connection gets SO_KEEPALIVE, TCP_NODELAY, the keepalive idle time, interval and \
        count, and TCP_USER_TIMEOUT, each applied on its own. Binds 127.0.0.1:8787 by default; a \
        non-loopback address needs an access token (--token-file or the WEBUI_DOCTOR_TOKEN environment \
        variable). Stops gracefully on SIGINT or SIGTERM.")]
    Serve(ServeArgs),
    /// Prove the keepalive fix on a live server: its accepted socket's options, and (--drill) a real dead-peer drop
    #[command(long_about = "Connect to a server on this host, find the server's accepted socket for that \
        connection (sock_diag, by the 4-tuple), and report whether its keepalive timer is armed and the option \
        values it really carries (SO_KEEPALIVE, TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, \
        TCP_USER_TIMEOUT), read from the server process with pidfd_getfd (root or the server's user). Without \
        that permission it falls back to what the timer shows. Exit 0 when every check passes, 1 when one fails, \
        2 on errors. With --drill it makes the client vanish without a FIN (an nftables rule drops the server's \
        packets to it; root only), reports each keepalive probe, and measures when the server drops the \
        connection. The rule and the connection are removed on every exit, Ctrl-C included.")]
    Verify(VerifyArgs),
    /// Put the keepalive fix on a running server from outside, and end its CLOSE-WAIT sockets
    #[command(long_about = "Put the keepalive fix on a server that is already running: no code change, no \
        restart. The kernel copies a listening socket's options into every socket it accepts later, so \
        fix takes a copy of the server's listening socket (pidfd_getfd) and sets SO_KEEPALIVE, TCP_NODELAY, \
        TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT and TCP_USER_TIMEOUT on it, each on its own, then reads \
        them back; the established connections on the same ports get them too. With --close-wait it also \
        ends the ports' CLOSE-WAIT sockets (SOCK_DESTROY, as `ss -K`, or shutdown on a copy). Needs root, \
        or the server's uid with ptrace allowed. Exit 0 when everything selected was applied, 1 when an \
        option or a socket failed, 2 on usage or operational errors (nothing changed).")]
    Fix(FixArgs),
    /// Print every TCP socket that ends, with why: keepalive timeout, retransmit timeout, or closed
    #[command(long_about = "Print one line per TCP socket that ends, as the kernel announces it (sock_diag's \
        destroy notifications, what `ss -E` reads): time, local and peer address, the final state, unanswered \
        probes, retransmissions, unacknowledged segments, the last send/receive/ACK ages, and the cause: \
        keepalive-timeout (probes went unanswered), retransmit-timeout (sent data stayed unacknowledged: \
        TCP_USER_TIMEOUT or tcp_retries2), closed (a FIN or a reset; the kernel's data does not tell them \
        apart), or unknown. Runs until Ctrl-C, --count or --duration. Notifications the kernel drops because \
        the receive buffer overran are reported, never passed over. Any user may subscribe on current kernels; \
        with CAP_NET_ADMIN the receive buffer can be made larger than net.core.rmem_max.")]
    Events(EventsArgs),
}

/// The network namespace `fix`, `verify` and `events` act in: the current one by default.
#[derive(Debug, Args, Clone, Default)]
pub struct Namespace {
    /// Act in network namespace NAME (as listed by `ip netns`)
    #[arg(long, value_name = "NAME", conflicts_with = "netns_pid")]
    pub netns: Option<String>,

    /// Act in process PID's network namespace (a container's)
    #[arg(long, value_name = "PID")]
    pub netns_pid: Option<u32>,
}

impl Namespace {
    pub fn given(&self) -> bool {
        self.netns.is_some() || self.netns_pid.is_some()
    }
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub addresses: Addresses,

    #[command(flatten)]
    pub namespace: Namespace,

    /// Output format
    #[arg(long, value_enum, default_value_t = EventsFormat::Text)]
    pub format: EventsFormat,

    /// Stop after N sockets have ended
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,

    /// Stop after SECS seconds
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub duration: Option<std::time::Duration>,
}

/// Ports and address families: shared by the commands that read sockets and by `events`.
#[derive(Debug, Args)]
pub struct Addresses {
    /// Only sockets whose local port is PORT: a server's sockets (repeatable)
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,

    /// Only sockets whose local (source) port is in PORT or LOW-HIGH
    #[arg(long, value_name = "PORT|LOW-HIGH")]
    pub sport: Option<PortRange>,

    /// Only sockets whose remote (destination) port is in PORT or LOW-HIGH
    #[arg(long, value_name = "PORT|LOW-HIGH")]
    pub dport: Option<PortRange>,

    /// Only IPv4 sockets
    #[arg(short = '4', long = "ipv4", conflicts_with = "ipv6")]
    pub ipv4: bool,

    /// Only IPv6 sockets
    #[arg(short = '6', long = "ipv6")]
    pub ipv6: bool,
}

/// Which sockets to read; shared by `sockets` and `check` (`fix`, `verify` and `events` take
/// their own, narrower selections and [`Namespace`]).
#[derive(Debug, Args)]
pub struct Selection {
    /// Where to read sockets: netlink sock_diag, /proc/net/tcp{,6}, or netlink with a fallback
    /// to procfs when the kernel refuses netlink
    #[arg(long, value_parser = source_parser(), default_value = "auto")]
    pub source: Source,

    /// Only sockets in this state or state group (repeatable; names as in `ss state ...`)
    #[arg(long = "state", value_name = "STATE", value_enum, ignore_case = true)]
    pub states: Vec<StateArg>,

    #[command(flatten)]
    pub addresses: Addresses,

    /// Show the process owning each socket (scans /proc/*/fd, like `ss -p`)
    #[arg(short = 'p', long)]
    pub processes: bool,

    /// Only sockets owned by process PID (implies -p)
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Only sockets owned by a process whose command name is NAME (implies -p)
    #[arg(long, value_name = "NAME")]
    pub process: Option<String>,

    /// Read the sockets of network namespace NAME (as listed by `ip netns`)
    #[arg(long, value_name = "NAME", conflicts_with_all = ["netns_pid", "all_netns"])]
    pub netns: Option<String>,

    /// Read the sockets of process PID's network namespace (a container's)
    #[arg(long, value_name = "PID", conflicts_with = "all_netns")]
    pub netns_pid: Option<u32>,

    /// Read every network namespace on the host, one after another: the named ones (`ip netns`)
    /// and those of running processes, each once; every socket is tagged with its namespace
    #[arg(long)]
    pub all_netns: bool,

    /// Only sockets created in cgroup v2 PATH or below (as `ss --cgroup` shows it, e.g.
    /// /system.slice/nginx.service); needs the netlink source
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,
}

#[derive(Debug, Args)]
pub struct SocketsArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// Output format
    #[arg(long, value_enum, default_value_t = SocketsFormat::Table)]
    pub format: SocketsFormat,

    /// Show what each connection is doing, from tcp_info (like `ss -i`): RTT, retransmissions,
    /// unacknowledged segments, bytes not yet sent, time since the peer's last ACK, windows
    #[arg(short = 'i', long)]
    pub info: bool,

    /// Show each socket's memory (like `ss -m`): receive and send queues against their buffers
    #[arg(short = 'm', long)]
    pub memory: bool,

    /// Show extended columns: the cgroup v2 path of each socket (like `ss -e --cgroup`)
    #[arg(short = 'e', long)]
    pub extended: bool,

    /// Add a summary per group: sockets per state, CLOSE-WAIT and keepalive coverage (for
    /// `process` also open files against the limit, and threads), largest CLOSE-WAIT first
    #[arg(long, value_name = "GROUP", value_parser = group_by_parser())]
    pub by: Option<GroupBy>,

    /// Read each socket's keepalive options (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT,
    /// TCP_USER_TIMEOUT, TCP_NODELAY) from its owning process with pidfd_getfd; implies -p.
    /// Needs root or the owner's user
    #[arg(short = 'O', long)]
    pub sockopts: bool,

    /// Refresh every SECS seconds: in place on a terminal, as repeated reports when piped
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub watch: Option<std::time::Duration>,

    /// Print only the summary (counts per state, CLOSE-WAIT, keepalive coverage); with
    /// --format json, the JSON document without its socket list
    #[arg(long)]
    pub summary: bool,

    /// With -O: read the options even of a process in a non-root cgroup-v1 net_cls or net_prio
    /// group. pidfd_getfd re-tags the socket with this process's class id, which breaks tc and
    /// nftables `meta cgroup` rules for that service; without --force such sockets are skipped
    #[arg(long, requires = "sockopts")]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// The most CLOSE-WAIT sockets that still pass
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_close_wait: usize,

    /// Fail when an established server-side socket in the selection (its local port listening,
    /// as the keepalive-missing finding counts them) has no keepalive timer armed; the host's
    /// own outgoing connections are not judged
    #[arg(long)]
    pub require_keepalive: bool,

    /// Fail when a dead peer could hold an established server-side socket longer than SECS,
    /// idle or with data in flight (the bound `verify` and the findings use); needs -O
    #[arg(long, value_name = "SECS", value_parser = parse_seconds)]
    pub max_detect: Option<std::time::Duration>,

    /// Read each socket's keepalive options from its owning process (as `sockets -O`)
    #[arg(short = 'O', long)]
    pub sockopts: bool,

    /// With -O: read the options even of a process in a non-root cgroup-v1 net_cls or net_prio
    /// group (see `sockets --force`)
    #[arg(long, requires = "sockopts")]
    pub force: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8787")]
    pub listen: std::net::SocketAddr,

    #[command(flatten)]
    pub keepalive: KeepaliveFlags,

    /// Do not enable keepalive or the user timeout (for A/B comparisons); TCP_NODELAY stays on
    #[arg(long)]
    pub no_keepalive: bool,

    /// Seconds without an event after which an SSE stream gets a `: keepalive` comment
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds)]
    pub heartbeat: std::time::Duration,

    /// Seconds between snapshots pushed to SSE clients
    #[arg(long, value_name = "SECS", default_value = "2", value_parser = parse_seconds)]
    pub snapshot_period: std::time::Duration,

    /// Local ports the dashboard and SSE stream follow (repeatable; default: the server's own port)
    #[arg(long = "watch-port", value_name = "PORT")]
    pub watch_ports: Vec<u16>,

    /// Where to read sockets
    #[arg(long, value_parser = source_parser(), default_value = "auto")]
    pub source: Source,

    /// File holding the access token, at least 16 bytes (else the WEBUI_DOCTOR_TOKEN environment variable)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<std::path::PathBuf>,

    /// Prometheus exporter-toolkit web configuration (TLS, basic_auth_users, response headers), as node_exporter's --web.config.file; re-read when it changes
    #[arg(long, value_name = "FILE")]
    pub web_config_file: Option<std::path::PathBuf>,

    /// Serve plain HTTP on a non-loopback address (refused otherwise: give --web-config-file with tls_server_config)
    #[arg(long)]
    pub allow_plain_http: bool,

    /// Seconds a client may take to send its request header before it is disconnected
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub header_timeout: std::time::Duration,

    /// Most connections open at once; past it, new ones get 503
    #[arg(long, value_name = "N", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,

    /// Most SSE streams open at once; past it, /api/events answers 503
    #[arg(long, value_name = "N", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sse_clients: u32,

    /// Most requests and SSE streams in flight at once from one client address (/healthz is never refused); past it, 503. Connections from one address are capped at twice this
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections_per_ip: u32,

    /// Seconds a client may take to send a request body (the log-in form) before it is disconnected
    #[arg(long, value_name = "SECS", default_value = "10", value_parser = parse_seconds)]
    pub body_timeout: std::time::Duration,

    /// Also serve requests whose Host header is NAME (or NAME:PORT) when no token is set
    /// (repeatable). Without a token only the listening address, localhost, 127.0.0.1 and [::1]
    /// are served: other names are how a web page rebinds its own name to this server
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,

    /// Let /api/snapshot name each socket's owning process (processes=1). Off by default: run
    /// as root, it would show every user's processes to anyone who can reach the server
    #[arg(long)]
    pub allow_processes: bool,

    /// Most sockets in each SSE event, the most urgent first (CLOSE-WAIT longest idle, then
    /// retransmitting, then established without keepalive); an event also stays within 64 KiB.
    /// The summary and findings always cover every watched socket
    #[arg(long, value_name = "N", default_value_t = 500, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub max_rows: u32,

    /// Seconds a connection's written bytes may stay unacknowledged before the server ends it (a
    /// client that stopped reading its SSE stream, or vanished where TCP_USER_TIMEOUT does not
    /// exist), or that acknowledges a large response at under 16 KiB/s over --body-timeout; 0
    /// turns the watchdog and that floor off
    #[arg(long, value_name = "SECS", default_value = "30", value_parser = parse_seconds_or_zero)]
    pub watchdog: std::time::Duration,
}

/// The keepalive options `serve` puts on every connection and `fix` on a running server's.
#[derive(Debug, Clone, Copy, Args)]
pub struct KeepaliveFlags {
    /// Seconds of idle time before the first keepalive probe (TCP_KEEPIDLE, 1-32767)
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=32767))]
    pub keepalive_idle: u32,

    /// Seconds between keepalive probes (TCP_KEEPINTVL, 1-32767)
    #[arg(long, value_name = "SECS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=32767))]
    pub keepalive_interval: u32,

    /// Unanswered probes before the connection is dropped (TCP_KEEPCNT, 1-127)
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=127))]
    pub keepalive_count: u32,

    /// TCP_USER_TIMEOUT in seconds: how long sent data may stay unacknowledged. Default: idle +
    /// interval x count; 0 leaves the kernel default
    #[arg(long, value_name = "SECS", value_parser = parse_user_timeout)]
    pub user_timeout: Option<std::time::Duration>,
}

#[derive(Debug, Args)]
pub struct FixArgs {
    #[command(flatten)]
    pub namespace: Namespace,

    /// Fix the server listening on local port PORT (repeatable)
    #[arg(long = "port", value_name = "PORT", required_unless_present_any = ["pid", "list", "all"],
          conflicts_with = "pid")]
    pub ports: Vec<u16>,

    /// Fix every listening TCP socket of process PID
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,

    #[command(flatten)]
    pub keepalive: KeepaliveFlags,

    /// Leave TCP_NODELAY as it is
    #[arg(long)]
    pub no_nodelay: bool,

    /// Also end the selected ports' CLOSE-WAIT sockets (the peer has closed; the server has not)
    #[arg(long)]
    pub close_wait: bool,

    /// With --close-wait: how to end them
    #[arg(long, value_enum, default_value_t = CloseWith::Auto, requires = "close_wait")]
    pub close_with: CloseWith,

    /// With --close-wait: only sockets that have received nothing for longer than SECS (about the
    /// time since the peer's FIN; from tcp_info)
    #[arg(long, value_name = "SECS", value_parser = parse_seconds, requires = "close_wait")]
    pub idle_over: Option<std::time::Duration>,

    /// Print the plan (each socket, each option from -> to, each socket to close) and change nothing
    #[arg(long)]
    pub dry_run: bool,

    /// Act even on a server in a non-root cgroup-v1 net_cls or net_prio group (pidfd_getfd re-tags
    /// its sockets with this process's class id, which breaks tc and nftables `meta cgroup` rules)
    #[arg(long)]
    pub force: bool,

    /// Also cure in the kernel: attach a cgroup sock_ops program that gives every connection
    /// accepted on the ports from now on the options at the handshake, whatever process accepts
    /// it, across restarts, with no daemon (needs root and CONFIG_CGROUP_BPF). With --dry-run:
    /// the program's instructions and where it would be attached
    #[arg(long, requires = "ports", conflicts_with_all = ["follow", "list", "remove"])]
    pub persist: bool,

    /// With --persist, --list or --remove: the cgroup v2 directory (relative to the cgroup2
    /// mount, as `ss --cgroup` prints it, or an absolute path under it); default: the root, the
    /// whole host
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<String>,

    /// With --persist, --list or --remove: the cgroup of systemd unit NAME (`nginx.service`, or
    /// `nginx`), found in the cgroup tree
    #[arg(long, value_name = "NAME", conflicts_with_all = ["cgroup", "container"])]
    pub unit: Option<String>,

    /// With --persist, --list or --remove: the cgroup of the container whose id starts with ID
    /// (Docker, containerd, CRI-O, Podman, or a pod's container), found in the cgroup tree
    #[arg(long, value_name = "ID", conflicts_with = "cgroup")]
    pub container: Option<String>,

    /// Show the cures attached in the kernel (every cgroup, or under --cgroup), from the kernel
    #[arg(long, conflicts_with_all = ["ports", "pid", "remove", "follow", "dry_run"])]
    pub list: bool,

    /// Detach the cures for the --port ports (in --cgroup, or anywhere), or --all of them; only
    /// webui-doctor's programs are touched
    #[arg(long, conflicts_with_all = ["pid", "follow", "dry_run", "close_wait"])]
    pub remove: bool,

    /// With --remove: every cure webui-doctor attached
    #[arg(long, requires = "remove", conflicts_with = "ports")]
    pub all: bool,

    /// Exit 0 even when the server sets its own keepalive options on every connection over the
    /// listener's (the next accepted connection is checked after each fix; the override is still
    /// reported)
    #[arg(long)]
    pub allow_override: bool,

    /// Keep running: every SECS seconds (default 2), fix again a listening socket on the ports
    /// that is new (the server restarted) or has lost the options, and, where the server
    /// overrides them, every new connection; one line per change. Ends on SIGINT or SIGTERM
    #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2", value_parser = parse_seconds,
          conflicts_with = "dry_run")]
    pub follow: Option<std::time::Duration>,

    /// Where to read sockets
    #[arg(long, value_parser = source_parser(), default_value = "auto")]
    pub source: Source,

    /// Output format
    #[arg(long, value_enum, default_value_t = FixFormat::Text)]
    pub format: FixFormat,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub namespace: Namespace,

    /// The server to verify, on this host: HOST:PORT (e.g. 127.0.0.1:8787, localhost:8787, [::1]:8787)
    #[arg(value_name = "HOST:PORT")]
    pub target: String,

    /// Send `GET PATH` and hold the response open (an SSE endpoint), for servers that close idle
    /// connections quickly
    #[arg(long, value_name = "PATH")]
    pub stream: Option<String>,

    /// Expected TCP_KEEPIDLE, in seconds
    #[arg(long, value_name = "SECS")]
    pub expect_idle: Option<u32>,

    /// Expected TCP_KEEPINTVL, in seconds
    #[arg(long, value_name = "SECS")]
    pub expect_interval: Option<u32>,

    /// Expected TCP_KEEPCNT
    #[arg(long, value_name = "N")]
    pub expect_count: Option<u32>,

    /// Expected TCP_USER_TIMEOUT, in seconds (0: not set)
    #[arg(long, value_name = "SECS", value_parser = parse_user_timeout)]
    pub expect_user_timeout: Option<std::time::Duration>,

    /// The most the worst-case dead-peer detection (idle, or with data in flight) may take
    #[arg(long, value_name = "SECS", default_value = "300", value_parser = parse_seconds)]
    pub max_detect: std::time::Duration,

    /// Really test it: blackhole the client and measure when the server drops it (root only)
    #[arg(long)]
    pub drill: bool,

    /// With --drill: how long to wait for the server to drop the connection
    #[arg(long, value_name = "SECS", default_value = "60", value_parser = parse_seconds, requires = "drill")]
    pub timeout: std::time::Duration,

    /// Where to read sockets
    #[arg(long, value_parser = source_parser(), default_value = "auto")]
    pub source: Source,

    /// Read the server's socket options even when it is in a non-root cgroup-v1 net_cls or
    /// net_prio group (pidfd_getfd re-tags the socket with this process's class id)
    #[arg(long)]
    pub force: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    pub format: VerifyFormat,
}

/// The longest duration a flag takes (one day): longer periods, heartbeats or timeouts are
/// typing mistakes, and larger numbers would overflow the timers they feed.
pub const MAX_SECONDS: f64 = 86_400.0;

/// The shortest: every timer here counts in milliseconds, so less would silently become 0.
pub const MIN_SECONDS: f64 = 0.001;

/// A number of seconds from 1 ms to one day, fractions allowed (`0.5`).
pub fn parse_seconds(s: &str) -> Result<std::time::Duration, String> {
    seconds_in(s, MAX_SECONDS)
}

fn seconds_in(s: &str, max: f64) -> Result<std::time::Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (MIN_SECONDS..=max).contains(&v) => Ok(std::time::Duration::from_secs_f64(v)),
        Ok(v) if v.is_finite() && v > 0.0 && v < MIN_SECONDS => {
            Err(format!("'{s}' is under a millisecond: give at least {MIN_SECONDS} seconds"))
        }
        Ok(v) if v.is_finite() && v > max => Err(format!("'{s}' is out of range: at most {max} seconds")),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

/// Like `parse_seconds`, but 0 is allowed (meaning: off).
pub fn parse_seconds_or_zero(s: &str) -> Result<std::time::Duration, String> {
    if s.trim().parse::<f64>() == Ok(0.0) { Ok(std::time::Duration::ZERO) } else { parse_seconds(s) }
}

/// The largest `TCP_USER_TIMEOUT`: the option is an unsigned 32-bit count of milliseconds.
pub const MAX_USER_TIMEOUT_SECONDS: f64 = u32::MAX as f64 / 1000.0;

/// `TCP_USER_TIMEOUT` in seconds: 0 (off), or 1 ms up to what the option's 32 bits hold.
pub fn parse_user_timeout(s: &str) -> Result<std::time::Duration, String> {
    if s.trim().parse::<f64>() == Ok(0.0) {
        return Ok(std::time::Duration::ZERO);
    }
    seconds_in(s, MAX_USER_TIMEOUT_SECONDS)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SocketsFormat {
    /// a table like `ss`, then the summary
    Table,
    /// one JSON object (schema in GUIDE.md)
    Json,
    /// Prometheus text, e.g. for node_exporter's textfile collector
    Prometheus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EventsFormat {
    /// one line per ended socket
    Text,
    /// one JSON object per line (JSON lines)
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// one line per rule, then the source and socket count
    Text,
    /// one JSON object: summary, rules and the verdict
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FixFormat {
    /// a table of each selected socket and what was done, then one summary line; with --follow, then one line per event
    Text,
    /// one JSON object: each socket with its options before and after; with --follow, JSON lines from the first (the report on one line, then one object per event)
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyFormat {
    /// the connection, its options, one line per check, the drill's probes as they come, then PASS or FAIL
    Text,
    /// one JSON object: the checks, the drill and the verdict
    Json,
}

/// The state names and groups `ss` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StateArg {
    Established,
    SynSent,
    SynRecv,
    #[value(name = "fin-wait-1")]
    FinWait1,
    #[value(name = "fin-wait-2")]
    FinWait2,
    TimeWait,
    Closed,
    CloseWait,
    LastAck,
    Listening,
    Closing,
    /// every state
    All,
    /// all but listening, closed, time-wait and syn-recv
    Connected,
    /// connected, less syn-sent
    Synchronized,
    /// the minisocket states: syn-recv, time-wait
    Bucket,
    /// all but syn-recv and time-wait
    Big,
}

impl StateArg {
    /// The states this name or group stands for.
    pub fn states(self) -> StateSet {
        use TcpState::*;
        let one = |s| StateSet::of(&[s]);
        match self {
            StateArg::Established => one(Established),
            StateArg::SynSent => one(SynSent),
            StateArg::SynRecv => one(SynRecv),
            StateArg::FinWait1 => one(FinWait1),
            StateArg::FinWait2 => one(FinWait2),
            StateArg::TimeWait => one(TimeWait),
            StateArg::Closed => one(Closed),
            StateArg::CloseWait => one(CloseWait),
            StateArg::LastAck => one(LastAck),
            StateArg::Listening => one(Listening),
            StateArg::Closing => one(Closing),
            StateArg::All => StateSet::of(group::ALL),
            StateArg::Connected => StateSet::of(group::CONNECTED),
            StateArg::Synchronized => StateSet::of(group::SYNCHRONIZED),
            StateArg::Bucket => StateSet::of(group::BUCKET),
            StateArg::Big => StateSet::of(group::BIG),
        }
    }
}

/// `--source`: the library's [`Source`], mirrored here so the library needs no clap.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum SourceArg {
    /// netlink, or procfs when the kernel refuses netlink
    Auto,
    /// a NETLINK_SOCK_DIAG dump (timers, queues, tcp_info idle times)
    Netlink,
    /// /proc/net/tcp and /proc/net/tcp6 (no idle times); honours PROC_ROOT
    Procfs,
}

fn source_parser() -> impl TypedValueParser<Value = Source> {
    EnumValueParser::<SourceArg>::new().map(|arg| match arg {
        SourceArg::Auto => Source::Auto,
        SourceArg::Netlink => Source::Netlink,
        SourceArg::Procfs => Source::Procfs,
    })
}

/// `--by`: the library's [`GroupBy`], mirrored here so the library needs no clap.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum GroupByArg {
    /// the owning process (implies -p)
    Process,
    /// the local port where it is listening (the server side); other sockets as one group
    Port,
    /// the peer's address
    Peer,
    /// the cgroup v2 path
    Cgroup,
    /// the network namespace (with --all-netns)
    Netns,
    /// the workload the cgroup path names: a systemd unit, a container, a Kubernetes pod
    Workload,
}

fn group_by_parser() -> impl TypedValueParser<Value = GroupBy> {
    EnumValueParser::<GroupByArg>::new().map(|arg| match arg {
        GroupByArg::Process => GroupBy::Process,
        GroupByArg::Port => GroupBy::Port,
        GroupByArg::Peer => GroupBy::Peer,
        GroupByArg::Cgroup => GroupBy::Cgroup,
        GroupByArg::Netns => GroupBy::Netns,
        GroupByArg::Workload => GroupBy::Workload,
    })
}
