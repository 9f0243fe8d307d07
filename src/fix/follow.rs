//! `fix --follow`: keep the fix applied across restarts, and (where the server sets its own
//! options on each connection) on every new connection.

use std::collections::BTreeSet;

use serde::Serialize;

use super::connections::Cure;
use super::{Action, FixReport, NextConnection, Plan, Role, SocketFix, Target, run};
use crate::error::{Error, Result, SockOptError};
use crate::filter::Filter;
use crate::model::{Extras, Process, Socket, StateSet, TcpState};
use crate::process::ProcessMap;
use crate::query::Query;
use crate::sockopt::Copier;
use crate::{os, source};

/// What `--follow` saw and did: what scripts match on (`event` in its JSON lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A new listener, or one that lost the options, was fixed.
    Applied,
    /// A listener left alone on purpose (said once per listener).
    Skipped,
    /// The server sets its own options on each connection: said once per port, and new
    /// connections are cured from then on.
    Override,
    /// New connections that lacked the options were fixed.
    Connections,
    /// Nothing listens on the port (the server is down).
    NoListener,
    /// The `--pid` process is gone.
    Exited,
    /// Fixing failed.
    Failed,
}

impl Event {
    /// The event as scripts see it.
    pub fn name(self) -> &'static str {
        match self {
            Event::Applied => "applied",
            Event::Skipped => "skipped",
            Event::Override => "override",
            Event::Connections => "connections",
            Event::NoListener => "no-listener",
            Event::Exited => "exited",
            Event::Failed => "failed",
        }
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Something `--follow` saw and did, one line each.
#[derive(Debug, Clone, Serialize)]
pub struct FollowEvent {
    /// The port (0 for `exited`).
    pub port: u16,
    /// What happened.
    pub event: Event,
    /// The listener's inode, where one was acted on.
    pub inode: Option<u64>,
    /// Its owner.
    pub process: Option<Process>,
    /// The listener's uid, where one was acted on.
    pub uid: Option<u32>,
    /// The details the message is made of (`render::fix`).
    #[serde(skip)]
    pub detail: Detail,
}

/// The details of a [`FollowEvent`].
#[derive(Debug, Clone)]
pub enum Detail {
    /// The `--pid` process exited.
    Exited {
        /// Its process id.
        pid: u32,
    },
    /// Nothing listens on the port.
    NoListener,
    /// A listener in another `net_cls` class, left alone.
    LeftAlone {
        /// Why (the refusal).
        error: String,
    },
    /// The server overrides the options on each connection.
    Override(NextConnection),
    /// A listener fixed again (or skipped, or failed).
    Listener {
        /// What was done to it.
        action: Action,
        /// Why it was skipped or failed.
        error: Option<String>,
        /// Established sockets fixed in the same run.
        fixed_with: usize,
    },
    /// A read or a run failed.
    Error(String),
    /// New connections cured.
    Connections {
        /// Fixed.
        set: usize,
        /// Failed.
        failed: usize,
        /// Left alone.
        left_alone: usize,
        /// The changes on the first one fixed, where one was.
        changes: Option<Vec<super::Change>>,
    },
}

/// Why `follow` returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// SIGINT or SIGTERM: the caller exits 130, as an interrupted command does.
    Interrupted,
    /// The `--pid` process exited: nothing left to follow.
    Exited,
}

/// `--follow`: every `period`, checks the listening sockets of the target (`--port`: those on
/// the ports; `--pid`: those of that process, until it exits) and fixes again any that is new
/// (the server restarted) or has lost the options. Cheap when nothing changed: one LISTEN-only
/// sock_diag read and, per listener, one checked copy whose options are read and compared. A
/// listener left alone (another net_cls class without `--force`) stays alone and is logged once.
/// Returns when SIGINT or SIGTERM arrives, or when the `--pid` process exits.
pub fn follow(
    plan: &Plan,
    first: &FixReport,
    base: &Query,
    period: std::time::Duration,
    mut on_event: impl FnMut(&FollowEvent) -> std::io::Result<()>,
) -> Result<Ended> {
    use std::collections::{HashMap, HashSet};
    os::catch_termination();
    let mut copier = Copier::new(&base.paths.root, plan.force)?;
    let listening = |f: &&SocketFix| f.role == Role::Listening;
    // Listener inode -> (pid, fd) of the owner we last fixed it through.
    let mut known: HashMap<u64, (u32, i32)> = first
        .sockets
        .iter()
        .filter(listening)
        .filter(|f| matches!(f.action, Action::Set | Action::Unchanged))
        .filter_map(|f| Some((f.inode, (f.process.as_ref()?.pid, f.fd?))))
        .collect();
    let mut skipped: HashSet<u64> =
        first.sockets.iter().filter(listening).filter(|f| f.action == Action::Skipped).map(|f| f.inode).collect();
    let target_pid = match plan.target {
        Target::Pid(pid) => {
            copier.hold(pid);
            Some(pid)
        }
        Target::Ports(_) => None,
    };
    let ports = &first.ports;
    let mut down: BTreeSet<u16> = BTreeSet::new();
    // Connections: every new one where the server overrides the listener's options; else only
    // those that were still in the listen queue during the fix, once accepted.
    let mut overriding: BTreeSet<u16> = first.overrides().map(|n| n.port).collect();
    let seen = first.sockets.iter().filter(|f| f.role == Role::Established).map(|f| (f.local.port(), f.cookie));
    let mut cure = Cure::new(!overriding.is_empty(), &first.still_queued, seen);
    let mut server = first.server.clone();
    let again = Plan { close_wait: None, dry_run: false, ..plan.clone() };
    let sleep = |total: std::time::Duration| {
        let start = std::time::Instant::now();
        while start.elapsed() < total && !os::terminate_requested() {
            std::thread::sleep(std::time::Duration::from_millis(50).min(total));
        }
    };
    let event =
        |port, event, detail: Detail| FollowEvent { port, event, inode: None, process: None, uid: None, detail };
    loop {
        sleep(period);
        if os::terminate_requested() {
            return Ok(Ended::Interrupted);
        }
        if let Some(pid) = target_pid
            && copier.exited(pid)
        {
            on_event(&event(0, Event::Exited, Detail::Exited { pid })).map_err(Error::Output)?;
            return Ok(Ended::Exited);
        }
        // The listeners to look at: on the ports, or held by the process.
        let filter = Filter {
            states: StateSet::of(&[TcpState::Listening]),
            ports: if target_pid.is_some() { Vec::new() } else { ports.clone() },
            ..Filter::default()
        };
        let mut listeners = source::read(base.source, &filter, Extras::default(), &base.paths)?.sockets;
        let owners = target_pid.map(|pid| ProcessMap::scan_one(&base.paths.root, pid));
        if let (Some(pid), Some(map)) = (target_pid, &owners) {
            listeners.retain(|s| map.fd(s.inode, pid).is_some());
        }
        let watched: Vec<u16> = match target_pid {
            Some(_) => listeners.iter().map(|s| s.local.port()).collect::<BTreeSet<_>>().into_iter().collect(),
            None => ports.clone(),
        };
        for &port in &watched {
            let here: Vec<&Socket> = listeners.iter().filter(|s| s.local.port() == port).collect();
            if here.is_empty() {
                if down.insert(port) {
                    on_event(&event(port, Event::NoListener, Detail::NoListener)).map_err(Error::Output)?;
                }
                continue;
            }
            down.remove(&port);
            let mut stale: HashSet<u64> = HashSet::new();
            for s in &here {
                if skipped.contains(&s.inode) {
                    continue;
                }
                let Some(&(pid, fd)) = known.get(&s.inode) else {
                    stale.insert(s.inode);
                    continue;
                };
                match copier.copy(pid, fd, s) {
                    Ok(copy) if os::get_sockopts(&copy).is_ok_and(|o| plan.wanted.satisfied_by(&o)) => {}
                    Err(e @ SockOptError::NetCls { .. }) => {
                        skipped.insert(s.inode);
                        let detail = Detail::LeftAlone { error: crate::error::chain(&e) };
                        let e = FollowEvent {
                            inode: Some(s.inode),
                            uid: Some(s.uid),
                            ..event(port, Event::Skipped, detail)
                        };
                        on_event(&e).map_err(Error::Output)?;
                    }
                    _ => {
                        stale.insert(s.inode);
                    }
                }
            }
            if stale.is_empty() {
                continue;
            }
            let one = Plan {
                target: match target_pid {
                    Some(pid) => Target::Pid(pid),
                    None => Target::Ports(vec![port]),
                },
                ..again.clone()
            };
            match run(&one, base) {
                Ok(report) => {
                    server.extend(report.server.iter().copied());
                    for n in report.overrides() {
                        if overriding.insert(n.port) {
                            cure.all = true;
                            let e = FollowEvent {
                                process: n.process.clone(),
                                ..event(n.port, Event::Override, Detail::Override(n.clone()))
                            };
                            on_event(&e).map_err(Error::Output)?;
                        }
                    }
                    let fixed_with = report
                        .sockets
                        .iter()
                        .filter(|s| s.role == Role::Established && s.action == Action::Set && s.local.port() == port)
                        .count();
                    for f in report.sockets.iter().filter(listening).filter(|f| stale.contains(&f.inode)) {
                        let kind = match f.action {
                            Action::Failed => Event::Failed,
                            Action::Skipped => {
                                skipped.insert(f.inode);
                                Event::Skipped
                            }
                            _ => {
                                if let (Some(p), Some(fd)) = (&f.process, f.fd) {
                                    known.insert(f.inode, (p.pid, fd));
                                }
                                Event::Applied
                            }
                        };
                        let detail = Detail::Listener { action: f.action, error: f.error.clone(), fixed_with };
                        let e = FollowEvent {
                            inode: Some(f.inode),
                            process: f.process.clone(),
                            uid: Some(f.uid),
                            ..event(port, kind, detail)
                        };
                        on_event(&e).map_err(Error::Output)?;
                    }
                }
                Err(e) => {
                    let detail = Detail::Error(crate::error::chain(&e));
                    on_event(&event(port, Event::Failed, detail)).map_err(Error::Output)?;
                }
            }
        }
        if cure.active() {
            for &port in &watched {
                let fixes = match cure.round(plan, base, port, &server, &mut copier) {
                    Ok(f) => f,
                    Err(e) => {
                        let detail = Detail::Error(crate::error::chain(&e));
                        on_event(&event(port, Event::Failed, detail)).map_err(Error::Output)?;
                        continue;
                    }
                };
                if fixes.is_empty() {
                    continue;
                }
                let failed = fixes.iter().filter(|f| f.action == Action::Failed).count();
                let set = fixes.iter().filter(|f| f.action == Action::Set).count();
                let changes = fixes.iter().find(|f| f.action == Action::Set).map(|f| f.changes.clone());
                let kind = if set > 0 { Event::Connections } else { Event::Failed };
                let detail = Detail::Connections { set, failed, left_alone: fixes.len() - set - failed, changes };
                on_event(&event(port, kind, detail)).map_err(Error::Output)?;
            }
        }
    }
}
