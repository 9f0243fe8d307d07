//! `webui-doctor verify HOST:PORT`: prove the keepalive fix on a live server. Connect to it, find
//! the server's *accepted* socket for that connection in sock_diag (by the 4-tuple), and read the
//! options it really carries from the server process (pidfd_getfd). Where that is not permitted,
//! fall back to what the kernel's timer shows.
//!
//! `--drill` goes further: it makes the client vanish without a FIN (an nftables rule drops the
//! server's packets to it), watches the server's socket, and measures when it is dropped.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::diagnose::long_duration;
use crate::error::{Error, Result};
use crate::filter::{Filter, PortRange};
use crate::model::{Process, Socket, Timer, TimerKind};
use crate::sockopt::SockOpts;
use crate::source::SourceChoice;
use crate::{Query, collect};

/// The values a caller expects; each one given becomes a check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expectations {
    pub idle_s: Option<u32>,
    pub interval_s: Option<u32>,
    pub count: Option<u32>,
    pub user_timeout_ms: Option<u32>,
    /// The most the worst-case dead-peer detection may take.
    pub max_detect: Duration,
}

/// The client side of a verification: our connection and the server socket it produced.
pub struct Probe {
    pub client: TcpStream,
    pub server: Socket,
    /// `fd` is the server's descriptor for the socket, when its owner could be seen.
    pub owner: Option<(Process, i32)>,
}

impl Probe {
    pub fn client_addr(&self) -> SocketAddr {
        self.client.local_addr().unwrap_or(self.server.peer.0)
    }
}

/// The server socket whose peer is `client` on port `server_port`, as sock_diag shows it.
pub fn find_server_socket(server: SocketAddr, client: SocketAddr, source: SourceChoice) -> Result<Option<Socket>> {
    let port = |p: u16| Some(PortRange { low: p, high: p });
    let filter = Filter { sport: port(server.port()), dport: port(client.port()), ..Filter::default() };
    let (snapshot, _) = collect(&Query { source, filter, processes: false, sockopts: false })?;
    Ok(snapshot.sockets.into_iter().find(|s| s.peer.0 == client && s.local.ip() == server.ip()))
}

/// Connects to `target` (optionally holding `GET stream` open) and finds the accepted socket.
pub fn connect(target: SocketAddr, stream: Option<&str>, source: SourceChoice) -> Result<Probe> {
    let io = |what: &str, e: std::io::Error| Error::Verify(format!("{what} {target}: {e}"));
    let mut client = TcpStream::connect_timeout(&target, Duration::from_secs(5)).map_err(|e| io("connecting to", e))?;
    if let Some(path) = stream {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {target}\r\nAccept: text/event-stream\r\nUser-Agent: webui-doctor\r\n\r\n"
        );
        client.write_all(request.as_bytes()).map_err(|e| io("sending the request to", e))?;
    }
    let local = client.local_addr().map_err(|e| io("connected to", e))?;
    // The accepted socket gets an inode when the application accept()s it, and its options just
    // after; wait for the inode, then give the application a moment to set them.
    let start = Instant::now();
    let mut found = None;
    while start.elapsed() < Duration::from_secs(3) {
        if let Some(s) = find_server_socket(target, local, source)?
            && s.inode != 0
        {
            found = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if found.is_none() {
        return Err(Error::Verify(format!(
            "no accepted socket for {local} -> {target} appeared within 3 s: is the server on this host, and does it accept?"
        )));
    }
    std::thread::sleep(Duration::from_millis(100));
    let server = find_server_socket(target, local, source)?.ok_or_else(|| {
        Error::Verify(format!("the server closed the connection from {local} at once (try --stream PATH)"))
    })?;
    let map = crate::process::ProcessMap::scan(&crate::process::proc_root())
        .map_err(|e| Error::Read { path: crate::process::proc_root(), source: e })?;
    let owner = map.owners(server.inode).first().map(|o| (o.process.clone(), o.fd));
    Ok(Probe { client, server, owner })
}

/// How long a dead peer goes unnoticed, for the two cases that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Detect {
    /// An idle connection: keepalive probes (bounded by the user timeout). `None`: never.
    pub idle_ms: Option<u64>,
    /// Data in flight (a heartbeat the peer never acknowledges): the user timeout. `None`: only
    /// the kernel's retransmission limit (`net.ipv4.tcp_retries2`, about 15 minutes).
    pub busy_ms: Option<u64>,
}

impl Detect {
    pub fn of(o: &SockOpts) -> Detect {
        let (idle, intvl, ut) =
            (u64::from(o.keepidle_s) * 1000, u64::from(o.keepintvl_s) * 1000, u64::from(o.user_timeout_ms));
        let idle_ms = o.so_keepalive.then(|| {
            if ut == 0 {
                idle + intvl * u64::from(o.keepcnt)
            } else {
                // With a user timeout the keepalive timer drops the peer at the first probe slot
                // (idle + k x interval, k >= 1) at which the user timeout has passed.
                let k = ut.saturating_sub(idle).div_ceil(intvl.max(1)).max(1);
                idle + k * intvl
            }
        });
        Detect { idle_ms, busy_ms: (ut > 0).then_some(ut) }
    }

    /// The worse of the two; `None` when either is unbounded by the socket.
    pub fn worst_ms(&self) -> Option<u64> {
        Some(self.idle_ms?.max(self.busy_ms?))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable name: `keepalive`, `idle`, `interval`, `count`, `user-timeout`, `max-detect`.
    pub check: &'static str,
    /// `None` when it could not be evaluated (options unreadable).
    pub ok: Option<bool>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub server: String,
    pub client: String,
    pub inode: u64,
    pub process: Option<Process>,
    pub timer: Option<Timer>,
    pub keepalive_armed: bool,
    /// Read from the server's socket; `None` when not permitted (see `options_error`).
    pub options: Option<SockOpts>,
    pub options_error: Option<String>,
    /// Without the options: the idle time the keepalive timer's expiry implies, in seconds.
    pub inferred_idle_s: Option<u64>,
    pub detect: Option<Detect>,
    pub checks: Vec<Check>,
    pub ok: bool,
}

pub fn verify(probe: &Probe, expect: &Expectations) -> VerifyReport {
    let s = &probe.server;
    let (options, options_error) = match &probe.owner {
        #[cfg(target_os = "linux")]
        Some((p, fd)) => match crate::sockopt::read_fd(p.pid, *fd) {
            Ok(o) => (Some(o), None),
            Err(e) => (None, Some(format!("cannot read the socket options of pid {}: {e}", p.pid))),
        },
        #[cfg(not(target_os = "linux"))]
        Some(_) => (None, Some("reading socket options is only supported on Linux".into())),
        None => (
            None,
            Some("the server's process is not visible (another user's process, or another PID namespace)".into()),
        ),
    };
    let keepalive_armed = s.keepalive_armed();
    let inferred_idle_s = match (&options, s.timer) {
        (None, Some(Timer { kind: TimerKind::Keepalive, expires_ms, .. })) => Some(expires_ms.div_ceil(1000)),
        _ => None,
    };
    let detect = options.as_ref().map(Detect::of);
    let mut checks = Vec::new();
    let unknown = |check, what: &str| Check {
        check,
        ok: None,
        message: format!("{what}: unknown, the socket options could not be read"),
    };

    // Keepalive itself.
    checks.push(match &options {
        Some(o) if o.so_keepalive => Check { check: "keepalive", ok: Some(true), message: "SO_KEEPALIVE is on".into() },
        Some(_) => Check {
            check: "keepalive",
            ok: Some(false),
            message: "SO_KEEPALIVE is off: a client that vanishes without a FIN is never dropped".into(),
        },
        None if keepalive_armed => Check {
            check: "keepalive",
            ok: Some(true),
            message: "the keepalive timer is armed (options not readable; judged from the timer)".into(),
        },
        None => Check {
            check: "keepalive",
            ok: Some(false),
            message: "no keepalive timer is armed on the server's socket".into(),
        },
    });

    let mut expect_value = |check: &'static str, want: Option<u32>, have: Option<u32>, unit: &str| {
        let Some(want) = want else { return };
        checks.push(match have {
            Some(have) => Check {
                check,
                ok: Some(have == want),
                message: format!("{check} is {have}{unit} (expected {want}{unit})"),
            },
            None => unknown(check, check),
        });
    };
    let inferred = inferred_idle_s.map(|s| s as u32);
    expect_value("idle", expect.idle_s, options.map(|o| o.keepidle_s).or(inferred), " s");
    expect_value("interval", expect.interval_s, options.map(|o| o.keepintvl_s), " s");
    expect_value("count", expect.count, options.map(|o| o.keepcnt), "");
    expect_value("user-timeout", expect.user_timeout_ms, options.map(|o| o.user_timeout_ms), " ms");

    let max = expect.max_detect.as_millis() as u64;
    checks.push(match detect {
        None => unknown("max-detect", "worst-case detection time"),
        Some(d) => {
            let describe = |ms: Option<u64>, never: &str| ms.map_or(never.to_owned(), long_duration);
            let idle = describe(d.idle_ms, "never (keepalive off)");
            let busy = describe(d.busy_ms, "about 15 min (no TCP_USER_TIMEOUT; net.ipv4.tcp_retries2 decides)");
            let ok = d.worst_ms().is_some_and(|w| w <= max);
            Check {
                check: "max-detect",
                ok: Some(ok),
                message: format!(
                    "a dead peer is dropped after {idle} on an idle connection and {busy} with data in flight (at most {} allowed)",
                    long_duration(max)
                ),
            }
        }
    });

    let ok = checks.iter().all(|c| c.ok != Some(false));
    VerifyReport {
        server: s.local.to_string(),
        client: s.peer.to_string(),
        inode: s.inode,
        process: probe.owner.as_ref().map(|(p, _)| p.clone()),
        timer: s.timer,
        keepalive_armed,
        options,
        options_error,
        inferred_idle_s,
        detect,
        checks,
        ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(keepalive: bool, idle: u32, intvl: u32, cnt: u32, ut: u32) -> SockOpts {
        SockOpts {
            so_keepalive: keepalive,
            tcp_nodelay: true,
            keepidle_s: idle,
            keepintvl_s: intvl,
            keepcnt: cnt,
            user_timeout_ms: ut,
        }
    }

    #[test]
    fn detection_times() {
        assert_eq!(Detect::of(&opts(true, 10, 5, 3, 0)), Detect { idle_ms: Some(25_000), busy_ms: None });
        assert_eq!(Detect::of(&opts(true, 10, 5, 3, 25_000)), Detect { idle_ms: Some(25_000), busy_ms: Some(25_000) });
        // 2/1/3 with a 5 s user timeout: probes at 2, 3, 4; dropped at the 5 s slot.
        assert_eq!(Detect::of(&opts(true, 2, 1, 3, 5000)).idle_ms, Some(5000));
        // A user timeout shorter than the first interval still waits for one probe.
        assert_eq!(Detect::of(&opts(true, 10, 5, 3, 1000)).idle_ms, Some(15_000));
        assert_eq!(Detect::of(&opts(true, 7200, 75, 9, 0)).idle_ms, Some(7_875_000));
        assert_eq!(Detect::of(&opts(false, 7200, 75, 9, 0)).idle_ms, None);
        assert_eq!(Detect::of(&opts(true, 10, 5, 3, 25_000)).worst_ms(), Some(25_000));
        assert_eq!(Detect::of(&opts(true, 10, 5, 3, 0)).worst_ms(), None);
    }
}
