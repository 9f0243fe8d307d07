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

/// Something `--follow` saw and did, one line each.
#[derive(Debug, Clone, Serialize)]
pub struct FollowEvent {
    pub port: u16,
    /// `applied` (a new listener, or one that lost the options, was fixed), `skipped` (left
    /// alone on purpose, once per listener), `override` (the server sets its own options on each
    /// connection: said once per port, and new connections are cured from then on),
    /// `connections` (new connections that lacked the options were fixed), `no-listener` (the
    /// server is down), `exited` (the `--pid` process is gone), `failed`.
    pub event: &'static str,
    pub inode: Option<u64>,
    pub process: Option<Process>,
    /// The listener's uid, where one was acted on.
    pub uid: Option<u32>,
    pub message: String,
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
    let seen = first
        .sockets
        .iter()
        .filter(|f| f.role == Role::Established)
        .filter_map(|f| Some((f.local.parse::<std::net::SocketAddr>().ok()?.port(), f.cookie)));
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
        |port, event, message: String| FollowEvent { port, event, inode: None, process: None, uid: None, message };
    loop {
        sleep(period);
        if os::terminate_requested() {
            return Ok(Ended::Interrupted);
        }
        if let Some(pid) = target_pid
            && copier.exited(pid)
        {
            on_event(&event(0, "exited", format!("process {pid} exited; nothing left to follow")))
                .map_err(Error::Output)?;
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
                    let message = format!("no listening socket on :{port}; waiting for the server");
                    on_event(&event(port, "no-listener", message)).map_err(Error::Output)?;
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
                        let message = format!(":{port} listening socket {}: left alone: {e}", s.inode);
                        let e =
                            FollowEvent { inode: Some(s.inode), uid: Some(s.uid), ..event(port, "skipped", message) };
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
                                ..event(n.port, "override", override_message(n))
                            };
                            on_event(&e).map_err(Error::Output)?;
                        }
                    }
                    let fixed_with = report
                        .sockets
                        .iter()
                        .filter(|s| {
                            s.role == Role::Established
                                && s.action == Action::Set
                                && s.local.ends_with(&format!(":{port}"))
                        })
                        .count();
                    for f in report.sockets.iter().filter(listening).filter(|f| stale.contains(&f.inode)) {
                        let kind = match f.action {
                            Action::Failed => "failed",
                            Action::Skipped => {
                                skipped.insert(f.inode);
                                "skipped"
                            }
                            _ => {
                                if let (Some(p), Some(fd)) = (&f.process, f.fd) {
                                    known.insert(f.inode, (p.pid, fd));
                                }
                                "applied"
                            }
                        };
                        let owner = f.process.as_ref().map_or_else(
                            || "owner unknown".to_owned(),
                            |p| format!("{} pid {} uid {}", p.comm, p.pid, f.uid),
                        );
                        let what = match f.action {
                            Action::Set => "options set".to_owned(),
                            Action::Unchanged => "already carries the options".to_owned(),
                            Action::Skipped => format!("left alone: {}", f.error.as_deref().unwrap_or("skipped")),
                            _ => f.error.clone().unwrap_or("failed".into()),
                        };
                        let message = format!(
                            ":{port} listening socket {} ({owner}): {what}; {fixed_with} established sockets fixed with it",
                            f.inode
                        );
                        let e = FollowEvent {
                            inode: Some(f.inode),
                            process: f.process.clone(),
                            uid: Some(f.uid),
                            ..event(port, kind, message)
                        };
                        on_event(&e).map_err(Error::Output)?;
                    }
                }
                Err(e) => {
                    on_event(&event(port, "failed", format!(":{port}: {e}"))).map_err(Error::Output)?;
                }
            }
        }
        if cure.active() {
            for &port in &watched {
                let fixes = match cure.round(plan, base, port, &server, &mut copier) {
                    Ok(f) => f,
                    Err(e) => {
                        on_event(&event(port, "failed", format!(":{port}: {e}"))).map_err(Error::Output)?;
                        continue;
                    }
                };
                if fixes.is_empty() {
                    continue;
                }
                let failed = fixes.iter().filter(|f| f.action == Action::Failed).count();
                let set = fixes.iter().filter(|f| f.action == Action::Set).count();
                let mut message = format!(":{port}: {set} new connection{} fixed", if set == 1 { "" } else { "s" });
                if let Some(f) = fixes.iter().find(|f| f.action == Action::Set) {
                    let changes: Vec<String> =
                        f.changes.iter().map(|c| format!("{} {}→{}", c.option.name(), c.from, c.to)).collect();
                    message.push_str(&format!(" ({})", changes.join(", ")));
                }
                if failed > 0 {
                    message.push_str(&format!("; {failed} failed"));
                }
                if fixes.len() > set + failed {
                    message.push_str(&format!("; {} left alone", fixes.len() - set - failed));
                }
                let kind = if set > 0 { "connections" } else { "failed" };
                on_event(&event(port, kind, message)).map_err(Error::Output)?;
            }
        }
    }
}

/// "the server sets its own TCP_KEEPIDLE 15 s, TCP_KEEPINTVL 15 s on every connection; …"
pub fn override_message(n: &NextConnection) -> String {
    format!(
        ":{}: the server sets its own {} on every connection; the listener's values do not reach them. New \
         connections are fixed each period from now on",
        n.port,
        super::overridden_values(n)
    )
}
