//! The keepalive fix, applied to one socket: `SO_KEEPALIVE`, `TCP_NODELAY`, the keepalive idle
//! time, interval and probe count, and on Linux `TCP_USER_TIMEOUT`.
//!
//! Each option is set on its own and its outcome recorded, so one option the platform lacks (a
//! Python fix that set them in one block lost all of them when `TCP_KEEPIDLE` was missing on
//! macOS) never stops the others. The idle time goes through socket2's `TcpKeepalive`, which
//! picks the platform's own option (`TCP_KEEPIDLE` on Linux, `TCP_KEEPALIVE` on macOS); see
//! [`platform`](crate::platform) for which option exists where.
//!
//! ```
//! use webui_doctor_server::{KeepaliveConfig, tune};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let client = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
//! let (stream, _) = listener.accept().await?;
//! let outcomes = tune(&stream, &KeepaliveConfig::default());
//! # #[cfg(target_os = "linux")]
//! assert!(outcomes.iter().all(|o| o.ok()), "{outcomes:?}");
//! # drop(client); Ok(()) }
//! ```

use std::io;
use std::time::Duration;

use serde::Serialize;
use socket2::SockRef;

use crate::platform::{IDLE_OPTION, Timings, set_idle, set_interval, set_retries, set_user_timeout};

/// What to set on each accepted socket. The default is the fix: keepalive after 10 s idle, a
/// probe every 5 s, 3 unanswered probes, and a 25 s `TCP_USER_TIMEOUT` — a dead peer is dropped
/// after about 25 s whether or not data is in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeepaliveConfig {
    /// `false` to set neither keepalive nor the user timeout (for A/B tests); `TCP_NODELAY`
    /// is still set.
    pub enabled: bool,
    /// Idle time before the first probe (`TCP_KEEPIDLE`; `TCP_KEEPALIVE` on macOS).
    pub idle: Duration,
    /// Time between probes (`TCP_KEEPINTVL`).
    pub interval: Duration,
    /// Unanswered probes before the connection is dropped (`TCP_KEEPCNT`).
    pub count: u32,
    /// `TCP_USER_TIMEOUT`; `None` leaves the kernel default. Defaults to idle + interval x count,
    /// so data that is never acknowledged (heartbeats to a vanished client) cannot keep a dead
    /// peer alive: keepalive does not probe while data is in flight.
    pub user_timeout: Option<Duration>,
}

/// How long keepalive takes to drop a silent peer: idle + interval x count. The one place this
/// formula is written; saturates instead of overflowing for hostile values (a sysctl, a flag).
pub fn dead_peer_after(idle: Duration, interval: Duration, count: u32) -> Duration {
    interval.checked_mul(count).and_then(|probes| idle.checked_add(probes)).unwrap_or(Duration::MAX)
}

impl Default for KeepaliveConfig {
    fn default() -> KeepaliveConfig {
        KeepaliveConfig::new(Duration::from_secs(10), Duration::from_secs(5), 3)
    }
}

impl KeepaliveConfig {
    /// Keepalive on with these timings, and `TCP_USER_TIMEOUT` equal to the time they take to
    /// drop a dead peer (so a peer with unacknowledged data is dropped no later than an idle one).
    pub fn new(idle: Duration, interval: Duration, count: u32) -> KeepaliveConfig {
        KeepaliveConfig {
            enabled: true,
            idle,
            interval,
            count,
            user_timeout: Some(dead_peer_after(idle, interval, count)),
        }
    }

    /// The worst-case time to drop a silent peer: idle + interval x count.
    pub fn detect_after(&self) -> Duration {
        dead_peer_after(self.idle, self.interval, self.count)
    }
}

/// A socket option this crate sets; serialized (and shown) by its C name, e.g. `TCP_KEEPIDLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SocketOption {
    /// `TCP_NODELAY`.
    Nodelay,
    /// `SO_KEEPALIVE`.
    Keepalive,
    /// The idle time before the first probe: `TCP_KEEPIDLE` (`TCP_KEEPALIVE` on Apple's systems).
    KeepIdle,
    /// `TCP_KEEPINTVL`.
    KeepInterval,
    /// `TCP_KEEPCNT`.
    KeepCount,
    /// `TCP_USER_TIMEOUT`.
    UserTimeout,
}

impl SocketOption {
    /// Every option [`apply`] may set, in the order it sets them.
    pub const ALL: [SocketOption; 6] = [
        SocketOption::Nodelay,
        SocketOption::Keepalive,
        SocketOption::KeepIdle,
        SocketOption::KeepInterval,
        SocketOption::KeepCount,
        SocketOption::UserTimeout,
    ];

    /// The option's C name on this platform.
    pub fn name(self) -> &'static str {
        match self {
            SocketOption::Nodelay => "TCP_NODELAY",
            SocketOption::Keepalive => "SO_KEEPALIVE",
            SocketOption::KeepIdle => IDLE_OPTION,
            SocketOption::KeepInterval => "TCP_KEEPINTVL",
            SocketOption::KeepCount => "TCP_KEEPCNT",
            SocketOption::UserTimeout => "TCP_USER_TIMEOUT",
        }
    }
}

impl std::fmt::Display for SocketOption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for SocketOption {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// The outcome of setting one option.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OptionOutcome {
    /// The socket option, e.g. `TCP_KEEPIDLE`.
    pub option: SocketOption,
    /// The value asked for, as text (`1`, `10s`, `25000ms`).
    pub value: String,
    /// `None` when it took effect; the error otherwise.
    pub error: Option<String>,
}

impl OptionOutcome {
    /// Whether the option took effect.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }
}

/// Applies `config` to a stream (tokio's or std's `TcpStream`, a socket2 `Socket`: anything
/// socket2 can borrow) and reports every option's outcome. For servers that run their own accept
/// loop; [`TunedListener`](crate::TunedListener) calls it for every connection it accepts.
pub fn tune<'a, S>(stream: &'a S, config: &KeepaliveConfig) -> Vec<OptionOutcome>
where
    SockRef<'a>: From<&'a S>,
{
    apply(SockRef::from(stream), config)
}

/// Applies `config` to one socket and reports every option's outcome, in the order of
/// [`SocketOption::ALL`].
pub fn apply(sock: SockRef<'_>, config: &KeepaliveConfig) -> Vec<OptionOutcome> {
    let mut out = Vec::with_capacity(6);
    let mut record = |option: SocketOption, value: String, result: io::Result<()>| {
        out.push(OptionOutcome { option, value, error: result.err().map(|e| e.to_string()) });
    };
    record(SocketOption::Nodelay, "1".into(), sock.set_tcp_nodelay(true));
    if !config.enabled {
        return out;
    }
    record(SocketOption::Keepalive, "1".into(), sock.set_keepalive(true));
    let t = Timings { idle: config.idle, interval: config.interval, count: config.count };
    record(SocketOption::KeepIdle, secs(config.idle), set_idle(&sock, t));
    record(SocketOption::KeepInterval, secs(config.interval), set_interval(&sock, t));
    record(SocketOption::KeepCount, config.count.to_string(), set_retries(&sock, t));
    if let Some(timeout) = config.user_timeout {
        record(SocketOption::UserTimeout, format!("{}ms", timeout.as_millis()), set_user_timeout(&sock, timeout));
    }
    out
}

fn secs(d: Duration) -> String {
    if d.subsec_millis() == 0 { format!("{}s", d.as_secs()) } else { format!("{}ms", d.as_millis()) }
}

/// Applies `config` to a fresh, unconnected TCP socket: what will take effect on accepted
/// sockets, known before the first client arrives (logged at start, shown on `/healthz`).
pub fn probe(config: &KeepaliveConfig) -> io::Result<Vec<OptionOutcome>> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    Ok(apply(SockRef::from(&socket), config))
}

/// One line for the log: `SO_KEEPALIVE=1 TCP_KEEPIDLE=10s ... (all applied)`.
pub fn describe(outcomes: &[OptionOutcome]) -> String {
    let mut parts: Vec<String> = outcomes
        .iter()
        .map(|o| match &o.error {
            None => format!("{}={}", o.option, o.value),
            Some(e) => format!("{}={} FAILED ({e})", o.option, o.value),
        })
        .collect();
    let failed = outcomes.iter().filter(|o| !o.ok()).count();
    parts.push(if failed == 0 { "(all applied)".into() } else { format!("({failed} failed)") });
    parts.join(" ")
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn every_option_takes_effect_and_reads_back() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let config = KeepaliveConfig {
            enabled: true,
            idle: Duration::from_secs(10),
            interval: Duration::from_secs(5),
            count: 3,
            user_timeout: Some(Duration::from_secs(25)),
        };
        let outcomes = apply(SockRef::from(&server), &config);
        assert!(outcomes.iter().all(OptionOutcome::ok), "{outcomes:?}");
        assert_eq!(outcomes.len(), 6);
        let s = SockRef::from(&server);
        assert!(s.keepalive().unwrap());
        assert!(s.tcp_nodelay().unwrap());
        assert_eq!(s.tcp_keepalive_time().unwrap(), Duration::from_secs(10));
        assert_eq!(s.tcp_keepalive_interval().unwrap(), Duration::from_secs(5));
        assert_eq!(s.tcp_keepalive_retries().unwrap(), 3);
        assert_eq!(s.tcp_user_timeout().unwrap(), Some(Duration::from_secs(25)));
        assert!(describe(&outcomes).ends_with("(all applied)"));
    }

    #[test]
    fn one_failing_option_does_not_stop_the_others() {
        // A keepalive count of 0 is refused by Linux (EINVAL); everything else must still apply.
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let config = KeepaliveConfig { count: 0, ..KeepaliveConfig::default() };
        let outcomes = apply(SockRef::from(&socket), &config);
        let failed: Vec<_> = outcomes.iter().filter(|o| !o.ok()).map(|o| o.option).collect();
        assert_eq!(failed, vec![SocketOption::KeepCount]);
        assert_eq!(outcomes.last().unwrap().option, SocketOption::UserTimeout);
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_user_timeout().unwrap(), Some(Duration::from_secs(25)));
        assert!(describe(&outcomes).contains("TCP_KEEPCNT=0 FAILED"));
    }

    #[test]
    fn no_keepalive_sets_only_nodelay() {
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let config = KeepaliveConfig { enabled: false, ..KeepaliveConfig::default() };
        let outcomes = apply(SockRef::from(&socket), &config);
        assert_eq!(outcomes.iter().map(|o| o.option).collect::<Vec<_>>(), vec![SocketOption::Nodelay]);
        assert_eq!(serde_json::to_string(&outcomes[0].option).unwrap(), "\"TCP_NODELAY\"");
        assert!(!socket.keepalive().unwrap());
    }
}
