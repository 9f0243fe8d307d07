//! What a fixed server's connections really carry. The kernel copies the listener's options into
//! each socket it accepts, but a server may set its own on every connection after `accept()`
//! (Go's `net/http` sets `TCP_KEEPIDLE` and `TCP_KEEPINTVL` 15 s; Java, Netty, .NET and Rust
//! servers can do the same). [`check_next`] looks at the next connection the server accepts,
//! opening one itself when none comes within [`super::QUEUE_WAIT`]; [`Cure`] puts the options on
//! established connections that lack them (`--follow`, each period).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::{Action, Plan, Role, Selected, SocketFix, apply, copy_of, outcome, skipped};
use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::model::{Endpoint, Extras, Process, SockOptName, SockOpts, Socket, StateSet, TcpState};
use crate::process::ProcessMap;
use crate::query::Query;
use crate::sockopt::Copier;
use crate::{os, source};

/// How long after `accept()` a server is given to set its own options before they are read: it
/// does so on the accepting thread, right after the call.
const SETTLE: Duration = Duration::from_millis(200);

/// How long our own connection may wait to be accepted.
const ACCEPT_WAIT: Duration = Duration::from_secs(1);

/// What the next connection on a fixed port carries.
#[derive(Debug, Clone, Serialize)]
pub struct NextConnection {
    /// The port.
    pub port: u16,
    /// `carries` (the fix reaches connections), `overrides` (the server sets its own values on
    /// each connection), `unchecked` (no connection could be looked at; `error` says why).
    pub verdict: Verdict,
    /// The connection looked at: its server side…
    pub local: Option<Endpoint>,
    /// …and its client.
    pub peer: Option<Endpoint>,
    /// Its owner.
    pub process: Option<Process>,
    /// The connection was opened by `fix` itself (none arrived within a second) and closed again.
    pub opened_by_fix: bool,
    /// The options read from the connection.
    pub carried: Option<SockOpts>,
    /// The options whose value differs from the fix's.
    pub overridden: Vec<Overridden>,
    /// Why it could not be looked at.
    pub error: Option<String>,
}

/// The verdict on the next connection of a fixed port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// `carries`: the fix reaches new connections.
    Carries,
    /// `overrides`: the server sets its own values on each connection.
    Overrides,
    /// `unchecked`: no connection could be looked at.
    Unchecked,
}

/// One option a server set over the fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Overridden {
    /// The option.
    pub option: SockOptName,
    /// What the fix put on the listener.
    pub wanted: u32,
    /// What the connection carries.
    pub carried: u32,
}

/// The established sockets whose local port is `port` (the server side; the kernel filters).
fn established(base: &Query, port: u16) -> Result<Vec<Socket>> {
    let range = Some(crate::filter::PortRange { low: port, high: port });
    let filter = Filter { states: StateSet::of(&[TcpState::Established]), sport: range, ..Filter::default() };
    // Addresses, inode and cookie are all that is needed: no tcp_info.
    let extras = Extras { no_tcp_info: true, ..Extras::default() };
    Ok(source::read(base.source, &filter, extras, &base.paths)?.sockets)
}

/// For each port whose listener the fix reached, what the next accepted connection carries.
/// `seen` holds the cookies of the connections that existed before the fix (not "next").
pub(super) fn check_next(
    plan: &Plan,
    base: &Query,
    listeners: &[(&SocketFix, SocketAddr)],
    server: &BTreeSet<u32>,
    seen: &HashSet<u64>,
    copier: &mut Copier,
) -> Result<Vec<NextConnection>> {
    let ports: BTreeSet<u16> = listeners.iter().map(|(_, a)| a.port()).collect();
    let mut out = Vec::new();
    for port in ports {
        let Some(&(_, addr)) = listeners.iter().find(|(_, a)| a.port() == port) else { continue };
        out.push(next_on(plan, base, port, addr, server, seen, copier)?);
    }
    Ok(out)
}

fn next_on(
    plan: &Plan,
    base: &Query,
    port: u16,
    listener: SocketAddr,
    server: &BTreeSet<u32>,
    seen: &HashSet<u64>,
    copier: &mut Copier,
) -> Result<NextConnection> {
    // A connection that arrives by itself within the wait. One that may have been cloned from the
    // listener in the instant before the fix would look overridden: that verdict is confirmed on
    // a connection of our own, surely made after it.
    let start = Instant::now();
    while start.elapsed() < super::QUEUE_WAIT {
        if let Some(s) = established(base, port)?.into_iter().find(|s| s.inode != 0 && !seen.contains(&s.cookie)) {
            let next = look(plan, base, port, s, server, copier, false);
            if next.verdict != Verdict::Overrides {
                return Ok(next);
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    probe(plan, base, port, listener, server, copier)
}

fn unchecked(port: u16, error: String) -> NextConnection {
    NextConnection {
        port,
        verdict: Verdict::Unchecked,
        local: None,
        peer: None,
        process: None,
        opened_by_fix: false,
        carried: None,
        overridden: Vec::new(),
        error: Some(error),
    }
}

/// Opens a connection of our own to the listener, looks at the server's side once accepted, and
/// ends it with a reset (or, never accepted, removes it from the queue), so no worker is left
/// with it and no CLOSE-WAIT stays behind.
fn probe(
    plan: &Plan,
    base: &Query,
    port: u16,
    listener: SocketAddr,
    server: &BTreeSet<u32>,
    copier: &mut Copier,
) -> Result<NextConnection> {
    let target = match listener.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => SocketAddr::from(([127, 0, 0, 1], port)),
        ip if ip.is_unspecified() => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port)),
        _ => listener,
    };
    let client = match TcpStream::connect_timeout(&target, ACCEPT_WAIT) {
        Ok(c) => c,
        Err(e) => return Ok(unchecked(port, format!("connecting to {target} to look at a new connection: {e}"))),
    };
    let local = client.local_addr().map_err(Error::Output)?;
    let start = Instant::now();
    let mut queued = None;
    let mut found = None;
    while start.elapsed() < ACCEPT_WAIT {
        match established(base, port)?.into_iter().find(|s| s.peer.0 == local) {
            Some(s) if s.inode != 0 => {
                found = Some(s);
                break;
            }
            other => queued = other.or(queued),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let next = match found {
        Some(s) => look(plan, base, port, s, server, copier, true),
        None => {
            if let Some(s) = &queued {
                let _ = source::destroy(s);
            }
            let mut n = unchecked(
                port,
                format!(
                    "no process accepted a connection within {} s (the server is busy, or its listen queue is full)",
                    ACCEPT_WAIT.as_secs()
                ),
            );
            n.opened_by_fix = true;
            n
        }
    };
    let _ = os::linger_zero(&client);
    Ok(next)
}

/// Reads what the accepted `socket` carries, once the server has had time to set its own.
fn look(
    plan: &Plan,
    base: &Query,
    port: u16,
    socket: Socket,
    server: &BTreeSet<u32>,
    copier: &mut Copier,
    opened_by_fix: bool,
) -> NextConnection {
    std::thread::sleep(SETTLE);
    let mut next = unchecked(port, String::new());
    next.error = None;
    next.opened_by_fix = opened_by_fix;
    next.local = Some(socket.local);
    next.peer = Some(socket.peer);
    let map = ProcessMap::scan_some(&base.paths.root, server.iter().copied());
    let owner = map.owners(socket.inode).iter().find(|o| server.contains(&o.process.pid)).cloned();
    let read = match &owner {
        Some(o) => {
            next.process = Some(o.process.clone());
            copier.hold(o.process.pid);
            copier.read(o.process.pid, o.fd, &socket).map_err(|e| crate::error::chain(&e))
        }
        None => Err("the connection is held by no process of the server".to_owned()),
    };
    match read {
        Ok(carried) => {
            next.carried = Some(carried);
            next.overridden = plan
                .wanted
                .targets()
                .into_iter()
                .filter(|&(name, value)| name.get(&carried) != value)
                .map(|(option, wanted)| Overridden { option, wanted, carried: option.get(&carried) })
                .collect();
            next.verdict = if next.overridden.is_empty() { Verdict::Carries } else { Verdict::Overrides };
        }
        Err(e) => next.error = Some(e),
    }
    next
}

/// `TCP_KEEPIDLE 15 s, TCP_KEEPINTVL 15 s`: the values a server set over the fix.
pub fn overridden_values(next: &NextConnection) -> String {
    next.overridden
        .iter()
        .map(|o| format!("{} {}", o.option.name(), value(o.option, o.carried)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// An option's value as people read it: seconds, milliseconds, a count, on/off.
pub fn value(option: SockOptName, v: u32) -> String {
    match option {
        SockOptName::SoKeepalive | SockOptName::TcpNodelay => if v == 0 { "off" } else { "on" }.to_owned(),
        SockOptName::TcpKeepidle | SockOptName::TcpKeepintvl => format!("{v} s"),
        SockOptName::TcpKeepcnt => v.to_string(),
        SockOptName::TcpUserTimeout => format!("{v} ms"),
    }
}

/// `--follow` where connections need the fix themselves: each period, every established
/// connection on the ports not seen before is read and, where it lacks the options, fixed.
/// Cheap when nothing is new: one ESTABLISHED-only sock_diag read per port and a set lookup per
/// connection; the server's fd tables are read only when a new connection appears.
pub(super) struct Cure {
    /// Every new connection (the server overrides), or only those that were in the listen
    /// queue during the fix, to fix once accepted.
    pub all: bool,
    ports: HashMap<u16, PortState>,
    /// The server's descriptors, kept between rounds.
    fds: crate::process::FdCache,
}

/// What `Cure` knows of one port's connections, by cookie.
#[derive(Debug, Default)]
struct PortState {
    /// Already looked at.
    seen: HashSet<u64>,
    /// Queued during the fix: to fix once accepted.
    pending: HashSet<u64>,
    /// The inodes present at the last round (to tell the fd cache which sockets ended).
    inodes: HashSet<u64>,
    /// The namespace's `PassiveOpens` at the last round, and whether a connection waited in the
    /// listen queue then: with no new handshake and none queued, no connection can be new.
    opens: Option<u64>,
    queued: bool,
}

impl Cure {
    /// `pending` and `seen` are (port, cookie) pairs.
    pub fn new(all: bool, pending: &[(u16, u64)], seen: impl IntoIterator<Item = (u16, u64)>) -> Cure {
        let mut ports: HashMap<u16, PortState> = HashMap::new();
        for &(port, cookie) in pending {
            ports.entry(port).or_default().pending.insert(cookie);
        }
        for (port, cookie) in seen {
            ports.entry(port).or_default().seen.insert(cookie);
        }
        Cure { all, ports, fds: crate::process::FdCache::default() }
    }

    pub fn active(&self) -> bool {
        self.all || self.ports.values().any(|p| !p.pending.is_empty())
    }

    /// One round on `port`, for connections held by one of the `server` processes.
    pub fn round(
        &mut self,
        plan: &Plan,
        base: &Query,
        port: u16,
        server: &BTreeSet<u32>,
        copier: &mut Copier,
    ) -> Result<Vec<SocketFix>> {
        let state = self.ports.entry(port).or_default();
        if !self.all && state.pending.is_empty() {
            return Ok(Vec::new());
        }
        let opens = crate::query::read_passive_opens(&base.paths);
        if opens.is_some() && opens == state.opens && !state.queued {
            return Ok(Vec::new());
        }
        state.opens = opens;
        let now = established(base, port)?;
        state.queued = now.iter().any(|s| s.inode == 0);
        let present: HashSet<u64> = now.iter().map(|s| s.cookie).collect();
        let inodes: HashSet<u64> = now.iter().map(|s| s.inode).filter(|&i| i != 0).collect();
        let ended: HashSet<u64> = state.inodes.difference(&inodes).copied().collect();
        state.inodes = inodes;
        // Forget what has ended, so the sets stay as large as the port's connections.
        state.seen.retain(|c| present.contains(c));
        state.pending.retain(|c| present.contains(c));
        let all = self.all;
        let new: Vec<Socket> = now
            .into_iter()
            .filter(|s| s.inode != 0 && !state.seen.contains(&s.cookie))
            .filter(|s| all || state.pending.contains(&s.cookie))
            .collect();
        if new.is_empty() {
            return Ok(Vec::new());
        }
        for s in &new {
            state.seen.insert(s.cookie);
            state.pending.remove(&s.cookie);
        }
        let wanted: Vec<u64> = new.iter().map(|s| s.inode).collect();
        let owners = self.fds.owners(&base.paths.root, server, &wanted, &ended);
        let mut fixes = Vec::new();
        for socket in new {
            let Some(o) = owners.get(&socket.inode) else { continue };
            copier.hold(o.process.pid);
            let sel = Selected { role: Role::Established, socket, owner: Some((o.process.clone(), o.fd)) };
            let fix = match copy_of(&sel, copier) {
                Ok(Ok(copy)) => apply(&sel, &copy, plan),
                Ok(Err(skip)) => skipped(&sel, skip),
                Err(e) => outcome(&sel, Action::Failed, Some(crate::error::chain(&e))),
            };
            if fix.action != Action::Unchanged {
                fixes.push(fix);
            }
        }
        Ok(fixes)
    }
}
