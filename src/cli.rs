//! The command line, in one place: `--help`, the man pages in `man/` and the shell completions in
//! `completions/` are all generated from these definitions.

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::filter::PortRange;

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
}

/// Which sockets to read; shared by every subcommand.
#[derive(Debug, Args)]
pub struct Selection {
    /// Where to read sockets: netlink sock_diag, /proc/net/tcp{,6}, or netlink with a fallback
    /// to procfs when the kernel refuses netlink
    #[arg(long, value_enum, default_value_t = SourceArg::Auto)]
    pub source: SourceArg,

    /// Only sockets in this state or state group (repeatable; names as in `ss state ...`)
    #[arg(long = "state", value_name = "STATE", value_enum, ignore_case = true)]
    pub states: Vec<StateArg>,

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
    #[arg(long, value_name = "NAME")]
    pub netns: Option<String>,
}

#[derive(Debug, Args)]
pub struct SocketsArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// Output format
    #[arg(long, value_enum, default_value_t = SocketsFormat::Table)]
    pub format: SocketsFormat,

    /// Print only the summary (counts per state, CLOSE-WAIT, keepalive coverage); with
    /// --format json, the JSON document without its socket list
    #[arg(long)]
    pub summary: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub selection: Selection,

    /// The most CLOSE-WAIT sockets that still pass
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub max_close_wait: usize,

    /// Fail when any established socket in the selection has no keepalive timer armed
    #[arg(long)]
    pub require_keepalive: bool,

    /// Output format
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SourceArg {
    /// netlink, or procfs when the kernel refuses netlink
    Auto,
    /// a NETLINK_SOCK_DIAG dump (timers, queues, tcp_info idle times)
    Netlink,
    /// /proc/net/tcp and /proc/net/tcp6 (no idle times); honours PROC_ROOT
    Procfs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SocketsFormat {
    /// a table like `ss`, then the summary
    Table,
    /// one JSON object (schema in the README)
    Json,
    /// Prometheus text, e.g. for node_exporter's textfile collector
    Prometheus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// one line per rule, then the source and socket count
    Text,
    /// one JSON object: summary, rules and the verdict
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
    pub fn name(self) -> String {
        self.to_possible_value().map(|v| v.get_name().to_owned()).unwrap_or_default()
    }
}
