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

use crate::deadpeer::Detect;
use crate::error::{Error, Result, VerifyError};
use crate::filter::{Filter, PortRange};
use crate::model::{Endpoint, Process, SockOpts, Socket, StateSet, TcpState, Timer, TimerKind};
use crate::process::ProcessMap;
use crate::query::{Query, collect};

/// The values a caller expects; each one given becomes a check.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expectations {
    /// `--expect-idle`, in seconds.
    pub idle_s: Option<u32>,
    /// `--expect-interval`, in seconds.
    pub interval_s: Option<u32>,
    /// `--expect-count`.
    pub count: Option<u32>,
    /// `--expect-user-timeout`, in ms.
    pub user_timeout_ms: Option<u32>,
    /// The most the worst-case dead-peer detection may take.
    pub max_detect: Duration,
}

/// The client side of a verification: our connection, the server socket it produced, and what
/// could be read of that socket's options.
pub struct Probe {
    /// Our connection, held open.
    pub client: TcpStream,
    /// The server's accepted socket for it.
    pub server: Socket,
    /// The server process, when it could be seen.
    pub owner: Option<Process>,
    /// The options read from the server's socket, or why they could not be.
    pub options: std::result::Result<SockOpts, String>,
    /// The namespace's `net.ipv4.tcp_retries2`: what bounds data in flight without a user timeout.
    pub retries2: u32,
}

impl Probe {
    /// Our side's address.
    pub fn client_addr(&self) -> SocketAddr {
        self.client.local_addr().unwrap_or(self.server.peer.0)
    }
}

/// The server socket whose peer is `client` on port `server_port`, as sock_diag shows it. `base`
/// gives the source and the proc root; its filter is replaced.
pub fn find_server_socket(base: &Query, server: SocketAddr, client: SocketAddr) -> Result<Option<Socket>> {
    let port = |p: u16| Some(PortRange { low: p, high: p });
    let filter = Filter { sport: port(server.port()), dport: port(client.port()), ..Filter::default() };
    let (snapshot, _) = collect(&Query::new(base.source, filter, base.paths.clone()))?;
    Ok(snapshot.sockets.into_iter().find(|s| s.peer.0 == client && s.local.ip() == server.ip()))
}

/// How long to wait for the server to accept our connection.
const ACCEPT_WAIT: Duration = Duration::from_secs(3);

/// How long to wait, once accepted, for the socket to carry keepalive and the values expected. A
/// server that sets them does so right after `accept()`, and `fix --follow` on a server that
/// overrides the listener's options within a period; one that never does costs this much.
const OPTIONS_WAIT: Duration = Duration::from_secs(2);

impl Expectations {
    /// Whether `o` carries every value given.
    pub fn met(&self, o: &SockOpts) -> bool {
        self.idle_s.is_none_or(|v| v == o.keepidle_s)
            && self.interval_s.is_none_or(|v| v == o.keepintvl_s)
            && self.count.is_none_or(|v| v == o.keepcnt)
            && self.user_timeout_ms.is_none_or(|v| v == o.user_timeout_ms)
    }
}

/// Connects to `target` (optionally holding `GET stream` open), finds the accepted socket and
/// reads its options (`force`: even from a `net_cls` cgroup), waiting a bounded time for them to
/// show keepalive and the values `expect` names.
pub fn connect(
    target: SocketAddr,
    stream: Option<&str>,
    base: &Query,
    force: bool,
    expect: &Expectations,
) -> Result<Probe> {
    let io = |what, source| Error::Verify(VerifyError::Connect { what, target, source });
    let mut client = TcpStream::connect_timeout(&target, Duration::from_secs(5)).map_err(|e| io("connecting to", e))?;
    if let Some(path) = stream {
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {target}\r\nAccept: text/event-stream\r\nUser-Agent: webui-doctor\r\n\r\n"
        );
        client.write_all(request.as_bytes()).map_err(|e| io("sending the request to", e))?;
    }
    let local = client.local_addr().map_err(|e| io("connected to", e))?;
    // The accepted socket gets an inode when the application accept()s it; until then it waits in
    // the listen queue (inode 0, no owner).
    let start = Instant::now();
    let mut server = loop {
        match find_server_socket(base, target, local)? {
            Some(s) if s.inode != 0 => break s,
            found if start.elapsed() > ACCEPT_WAIT => return Err(give_up(base, target, &client, found.as_ref())),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let root = &base.paths.root;
    let map = ProcessMap::scan(root).map_err(|source| Error::Read { path: root.clone(), source })?;
    let owner = map.owners(server.inode).first().cloned();
    let mut copier = crate::sockopt::Copier::new(root, force)?;
    if let Some(o) = &owner {
        copier.hold(o.process.pid);
    }
    // Then poll, with a bound, until the application has set keepalive: the options show it,
    // or (where they cannot be read) the keepalive timer is armed.
    let start = Instant::now();
    let options = loop {
        let options = match &owner {
            Some(o) => copier.read(o.process.pid, o.fd, &server).map_err(|e| crate::error::chain(&e)),
            None => {
                Err("the server's process is not visible (another user's process, or another PID namespace)".into())
            }
        };
        let set = match &options {
            Ok(o) => o.so_keepalive && expect.met(o),
            Err(_) => server.keepalive_armed(),
        };
        if set || start.elapsed() > OPTIONS_WAIT {
            break options;
        }
        std::thread::sleep(Duration::from_millis(20));
        server = find_server_socket(base, target, local)?.ok_or(VerifyError::ClosedAtOnce { client: local })?;
    };
    let retries2 = crate::deadpeer::read_retries2(root);
    Ok(Probe { client, server, owner: owner.map(|o| o.process), options, retries2 })
}

/// Why no worker accepted our connection, after removing it: a connection left in the queue
/// would reach a worker later, or (closed with a FIN) wait there as CLOSE-WAIT that the next
/// `check` counts as the application's. Our side ends with a reset; the queued server side is
/// also destroyed where the kernel lets us (`SOCK_DESTROY`, by its cookie).
fn give_up(base: &Query, target: SocketAddr, client: &TcpStream, queued: Option<&Socket>) -> Error {
    let local = client.local_addr().unwrap_or(target);
    let _ = crate::os::linger_zero(client);
    let Some(s) = queued else {
        return VerifyError::NotAccepted { client: local, target }.into();
    };
    let _ = crate::source::destroy(s);
    // The listener's Recv-Q is the number of connections waiting to be accepted.
    let port = Some(PortRange { low: target.port(), high: target.port() });
    let filter = Filter { states: StateSet::of(&[TcpState::Listening]), sport: port, ..Filter::default() };
    let waiting = collect(&Query::new(base.source, filter, base.paths.clone())).ok().and_then(|(snap, _)| {
        snap.sockets.iter().find(|l| l.local.ip() == target.ip() || l.local.ip().is_unspecified()).map(|l| l.recv_q)
    });
    VerifyError::Queued { client: local, target, waiting }.into()
}

/// A check's stable name: what scripts match on (`checks[].check` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckName {
    /// `keepalive`: keepalive is on.
    Keepalive,
    /// `idle`: `TCP_KEEPIDLE` is the value expected.
    Idle,
    /// `interval`: `TCP_KEEPINTVL` is the value expected.
    Interval,
    /// `count`: `TCP_KEEPCNT` is the value expected.
    Count,
    /// `user-timeout`: `TCP_USER_TIMEOUT` is the value expected.
    UserTimeout,
    /// `max-detect`: a dead peer is dropped within the limit.
    MaxDetect,
}

impl CheckName {
    /// The name as scripts see it.
    pub fn name(self) -> &'static str {
        match self {
            CheckName::Keepalive => "keepalive",
            CheckName::Idle => "idle",
            CheckName::Interval => "interval",
            CheckName::Count => "count",
            CheckName::UserTimeout => "user-timeout",
            CheckName::MaxDetect => "max-detect",
        }
    }
}

impl std::fmt::Display for CheckName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One check of the server's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Which check.
    pub check: CheckName,
    /// `None` when it could not be evaluated (options unreadable).
    pub ok: Option<bool>,
    /// What was found, for the message.
    pub found: Found,
}

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The options could not be read, and the timer cannot tell.
    Unknown,
    /// `SO_KEEPALIVE` is on (`true`) or off, read from the socket on `port`.
    Keepalive {
        /// Whether it is on.
        on: bool,
        /// The server's port (for the cure).
        port: u16,
    },
    /// Options unreadable: the keepalive timer is armed (`true`) or not, on `port`.
    Timer {
        /// Whether it is armed.
        armed: bool,
        /// The server's port (for the cure).
        port: u16,
    },
    /// A value read (or, for the idle time, inferred from the timer) against the one expected.
    Value {
        /// On the socket.
        have: u32,
        /// Expected.
        want: u32,
    },
    /// How long a dead peer holds the connection, against the most allowed.
    Detect {
        /// The socket's bounds.
        detect: Detect,
        /// `net.ipv4.tcp_retries2`.
        retries2: u32,
        /// The most allowed, in ms.
        max_ms: u64,
    },
}

/// What `verify` found on the server's accepted socket.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// The server's side of the connection.
    pub server: Endpoint,
    /// Our side.
    pub client: Endpoint,
    /// The accepted socket's inode.
    pub inode: u64,
    /// Its owner, where visible.
    pub process: Option<Process>,
    /// Its timer.
    pub timer: Option<Timer>,
    /// Whether its keepalive timer runs.
    pub keepalive_armed: bool,
    /// Read from the server's socket; `None` when not permitted (see `options_error`).
    pub options: Option<SockOpts>,
    /// Why the options could not be read.
    pub options_error: Option<String>,
    /// Without the options: the idle time the keepalive timer's expiry implies, in seconds.
    pub inferred_idle_s: Option<u64>,
    /// How long a dead peer can hold it, from its options.
    pub detect: Option<Detect>,
    /// Each check, in order (in JSON with its message: `render::verify` writes them).
    #[serde(skip)]
    pub checks: Vec<Check>,
    /// Every check passed (none failed). Not serialized: the document carries one verdict, which
    /// also counts the drill.
    #[serde(skip)]
    pub ok: bool,
}

/// Judges the probed socket against `expect`.
pub fn verify(probe: &Probe, expect: &Expectations) -> VerifyReport {
    let s = &probe.server;
    let (options, options_error) = match &probe.options {
        Ok(o) => (Some(*o), None),
        Err(e) => (None, Some(e.clone())),
    };
    let keepalive_armed = s.keepalive_armed();
    let inferred_idle_s = match (&options, s.timer) {
        (None, Some(Timer { kind: TimerKind::Keepalive, expires_ms, .. })) => Some(expires_ms.div_ceil(1000)),
        _ => None,
    };
    let detect = options.as_ref().map(|o| Detect::of(o, probe.retries2));
    let mut checks = Vec::new();
    let unknown = |check| Check { check, ok: None, found: Found::Unknown };

    // Keepalive itself.
    let port = s.local.port();
    let (ok, found) = match &options {
        Some(o) => (o.so_keepalive, Found::Keepalive { on: o.so_keepalive, port }),
        None => (keepalive_armed, Found::Timer { armed: keepalive_armed, port }),
    };
    checks.push(Check { check: CheckName::Keepalive, ok: Some(ok), found });

    let mut expect_value = |check: CheckName, want: Option<u32>, have: Option<u32>| {
        let Some(want) = want else { return };
        checks.push(match have {
            Some(have) => Check { check, ok: Some(have == want), found: Found::Value { have, want } },
            None => unknown(check),
        });
    };
    let inferred = inferred_idle_s.map(|s| u32::try_from(s).unwrap_or(u32::MAX));
    expect_value(CheckName::Idle, expect.idle_s, options.map(|o| o.keepidle_s).or(inferred));
    expect_value(CheckName::Interval, expect.interval_s, options.map(|o| o.keepintvl_s));
    expect_value(CheckName::Count, expect.count, options.map(|o| o.keepcnt));
    expect_value(CheckName::UserTimeout, expect.user_timeout_ms, options.map(|o| o.user_timeout_ms));

    let max_ms = u64::try_from(expect.max_detect.as_millis()).unwrap_or(u64::MAX);
    checks.push(match detect {
        None => unknown(CheckName::MaxDetect),
        Some(d) => Check {
            check: CheckName::MaxDetect,
            ok: Some(d.within(max_ms)),
            found: Found::Detect { detect: d, retries2: probe.retries2, max_ms },
        },
    });

    let ok = checks.iter().all(|c| c.ok != Some(false));
    VerifyReport {
        server: s.local,
        client: s.peer,
        inode: s.inode,
        process: probe.owner.clone(),
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
