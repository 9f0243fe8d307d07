//! `webui-doctor fix`: put the keepalive fix on a server that is already running, from outside.
//!
//! The kernel copies a listening socket's options into every socket it accepts later. So a copy
//! of the server's *listening* socket (`pidfd_getfd`), given `SO_KEEPALIVE`, the keepalive
//! timings, `TCP_USER_TIMEOUT` and `TCP_NODELAY`, fixes every connection the server accepts from
//! then on; the same options on copies of its established sockets fix the connections it already
//! has. `--close-wait` ends the port's CLOSE-WAIT sockets with `SOCK_DESTROY` (what `ss -K`
//! does), or `shutdown(SHUT_RDWR)` on a copy where the kernel refuses that.
//!
//! It works in two phases so that it either acts on everything selected or on nothing: first a
//! copy of every selected socket is taken, checked (see `sockopt::Copier`: the owner is held by a
//! pidfd from the choice on, the copy must carry the chosen socket's inode, cookie and addresses,
//! and the owner's net_cls/net_prio class must be ours unless forced) and let go; then each is
//! copied and checked again, and the options are set and read back. A permission error or an owner that exits in the
//! first phase stops the command before any change; one that exits during the second fails only
//! its own sockets. Nothing outside the selection is touched, and the owner's descriptors are never
//! closed: only our copies are.

use std::collections::{BTreeSet, HashSet};
use std::os::fd::OwnedFd;

use serde::Serialize;

use crate::error::{Error, FixError, Result, SockOptError};
use crate::filter::Filter;
use crate::model::{Endpoint, Extras, Process, SockOptName, SockOpts, Socket, StateSet, TcpState};
use crate::process::ProcessMap;
use crate::query::Query;
use crate::sockopt::Copier;
use crate::{os, source};

mod connections;
pub mod follow;

pub use connections::{NextConnection, Overridden, Verdict, overridden_values};
pub use follow::{Ended, FollowEvent, follow};

/// The option values to put on each selected socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Wanted {
    /// `TCP_KEEPIDLE`, in seconds.
    pub keepidle_s: u32,
    /// `TCP_KEEPINTVL`, in seconds.
    pub keepintvl_s: u32,
    /// `TCP_KEEPCNT`.
    pub keepcnt: u32,
    /// `None`: leave `TCP_USER_TIMEOUT` as it is (`--user-timeout 0`).
    pub user_timeout_ms: Option<u32>,
    /// `false`: leave `TCP_NODELAY` as it is (`--no-nodelay`).
    pub nodelay: bool,
}

impl Wanted {
    /// Each option to set and its value, in the order they are set.
    pub fn targets(&self) -> Vec<(SockOptName, u32)> {
        let mut t = vec![(SockOptName::SoKeepalive, 1)];
        if self.nodelay {
            t.push((SockOptName::TcpNodelay, 1));
        }
        t.extend([
            (SockOptName::TcpKeepidle, self.keepidle_s),
            (SockOptName::TcpKeepintvl, self.keepintvl_s),
            (SockOptName::TcpKeepcnt, self.keepcnt),
        ]);
        if let Some(ms) = self.user_timeout_ms {
            t.push((SockOptName::TcpUserTimeout, ms));
        }
        t
    }

    /// Whether `o` already carries every wanted value.
    pub fn satisfied_by(&self, o: &SockOpts) -> bool {
        self.targets().iter().all(|&(name, value)| name.get(o) == value)
    }
}

/// Which listening sockets to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `--port`: the listeners on these ports.
    Ports(Vec<u16>),
    /// `--pid`: the listeners of this process.
    Pid(u32),
}

/// How `--close-wait` ends a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CloseWith {
    /// `SOCK_DESTROY`, and `shutdown` where the kernel refuses it (`EOPNOTSUPP`)
    Auto,
    /// `SOCK_DESTROY` through sock_diag only (what `ss -K` does; needs CONFIG_INET_DIAG_DESTROY)
    Destroy,
    /// `shutdown(SHUT_RDWR)` on a `pidfd_getfd` copy only
    Shutdown,
}

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Whose sockets.
    pub target: Target,
    /// The options to set.
    pub wanted: Wanted,
    /// Also end the selected ports' CLOSE-WAIT sockets.
    pub close_wait: Option<CloseWith>,
    /// With `close_wait`: only sockets that have received nothing for longer, in ms.
    pub idle_over_ms: Option<u64>,
    /// `--dry-run`: change nothing, say what would change.
    pub dry_run: bool,
    /// Act even on owners in a `net_cls`/`net_prio` cgroup.
    pub force: bool,
    /// A server that sets its own options on every connection is reported, not a failure.
    pub allow_override: bool,
}

/// How a CLOSE-WAIT socket was ended (`closed_with` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClosedWith {
    /// `SOCK_DESTROY` through sock_diag: the socket left the kernel at once.
    Destroy,
    /// `shutdown(SHUT_RDWR)` on a copy of the owner's descriptor.
    Shutdown,
}

impl ClosedWith {
    /// The method as scripts see it.
    pub fn name(self) -> &'static str {
        match self {
            ClosedWith::Destroy => "destroy",
            ClosedWith::Shutdown => "shutdown",
        }
    }
}

/// What a socket is to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// A listening socket.
    Listening,
    /// An accepted connection.
    Established,
    /// An accepted connection in CLOSE-WAIT.
    CloseWait,
    /// A CLOSE-WAIT connection still in the listen queue: no process holds it, so it can only be
    /// destroyed in the kernel (by its 4-tuple and cookie).
    Queued,
}

/// What happened to one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Options set and read back as wanted.
    Set,
    /// It already carried every wanted value.
    Unchanged,
    /// `--dry-run`: would be set.
    WouldSet,
    /// Ended (`closed_with` says how).
    Closed,
    /// `--dry-run`: would be ended.
    WouldClose,
    /// Left alone on purpose (`error` says why: a `net_cls` cgroup without `--force`).
    Skipped,
    /// An option or the close failed (`error` says which).
    Failed,
}

/// One option's change on one socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// The option.
    pub option: SockOptName,
    /// Its value before.
    pub from: u32,
    /// The value set.
    pub to: u32,
    /// The `setsockopt` error, when this option could not be set.
    pub error: Option<String>,
}

/// What was done to one socket.
#[derive(Debug, Clone, Serialize)]
pub struct SocketFix {
    /// What it is to the server.
    pub role: Role,
    /// The socket's own address.
    pub local: Endpoint,
    /// Its peer's (`0.0.0.0:0` for a listener).
    pub peer: Endpoint,
    /// Its inode (0 while queued).
    pub inode: u64,
    /// Its owner.
    pub process: Option<Process>,
    /// The owner's descriptor for the socket (`--follow` re-checks the listener through it).
    #[serde(skip)]
    pub fd: Option<i32>,
    /// The kernel's socket cookie (`--follow` knows which connections it has looked at).
    #[serde(skip)]
    pub cookie: u64,
    /// What was done.
    pub action: Action,
    /// The socket's uid, as the kernel reports it (its creator's).
    pub uid: u32,
    /// Left alone because the copy was not the socket chosen (its descriptor or inode number was
    /// reused in between).
    #[serde(skip)]
    pub mismatched: bool,
    /// The options read from the socket before anything was done (`null` for CLOSE-WAIT).
    pub before: Option<SockOpts>,
    /// Read back after setting (`null` on a dry run and for CLOSE-WAIT).
    pub after: Option<SockOpts>,
    /// The options whose value differed (on a dry run: would differ).
    pub changes: Vec<Change>,
    /// How a closed socket was ended.
    pub closed_with: Option<ClosedWith>,
    /// Why it was skipped or failed.
    pub error: Option<String>,
}

/// What a run did, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FixSummary {
    /// Listening sockets selected.
    pub listening: usize,
    /// Established sockets selected.
    pub established: usize,
    /// CLOSE-WAIT sockets selected, the queued ones included.
    pub close_wait: usize,
    /// Of `close_wait`: those still in the listen queue (role `queued`).
    pub queued: usize,
    /// Live connections still in the listen queue when the run ended: no descriptor until a
    /// process accepts them, so they keep the listener's options from when they arrived.
    pub queued_open: usize,
    /// Sockets whose options were set (or would be, on a dry run).
    pub changed: usize,
    /// Sockets that already carried the options.
    pub unchanged: usize,
    /// CLOSE-WAIT sockets ended.
    pub closed: usize,
    /// Sockets left alone on purpose.
    pub skipped: usize,
    /// Of the skipped: copies that were not the socket chosen (a reused descriptor or inode).
    pub mismatched: usize,
    /// Sockets where an option or the close failed.
    pub failed: usize,
}

/// What `fix` did.
#[derive(Debug, Clone, Serialize)]
pub struct FixReport {
    /// `--dry-run`.
    pub dry_run: bool,
    /// The ports fixed.
    pub ports: Vec<u16>,
    /// The options wanted.
    pub wanted: Wanted,
    /// Each socket selected and what was done to it.
    pub sockets: Vec<SocketFix>,
    /// The counts.
    pub summary: FixSummary,
    /// Per fixed port, what the next connection the server accepted really carries.
    pub next: Vec<NextConnection>,
    /// How long a dead peer can now hold a connection the fixed listener passes its options to
    /// (the rule `verify` and the findings use); `null` on a dry run.
    pub detect: Option<crate::deadpeer::Detect>,
    /// `--allow-override`: an override is reported, not a failure.
    #[serde(skip)]
    pub allow_override: bool,
    /// The processes holding the listeners (a pre-forking server's workers included).
    #[serde(skip)]
    pub server: BTreeSet<u32>,
    /// The connections still in the listen queue at the end of the run: (port, cookie).
    #[serde(skip)]
    pub still_queued: Vec<PortCookie>,
}

impl FixReport {
    /// Everything selected was applied (or already was), and reaches the server's connections
    /// (or `--allow-override`): exit 0.
    pub fn ok(&self) -> bool {
        self.summary.failed == 0
            && self.summary.skipped == 0
            && (self.allow_override || self.overrides().next().is_none())
    }

    /// The ports whose server sets its own options on every connection.
    pub fn overrides(&self) -> impl Iterator<Item = &NextConnection> {
        self.next.iter().filter(|n| n.verdict == Verdict::Overrides)
    }
}

/// A selected socket with the process and descriptor it is held under.
struct Selected {
    role: Role,
    socket: Socket,
    owner: Option<(Process, i32)>,
}

/// Runs `plan` against the sockets `base` can read (its source and proc root).
pub fn run(plan: &Plan, base: &Query) -> Result<FixReport> {
    let mut copier = Copier::new(&base.paths.root, plan.force)?;
    let map =
        ProcessMap::scan(&base.paths.root).map_err(|source| Error::Read { path: base.paths.root.clone(), source })?;
    let Selection { ports, selected, queued, server } = select(plan, base, &map)?;
    // Each owner is held from the choice to the action: a pid reused in between is not it.
    for (p, _) in selected.iter().filter_map(|s| s.owner.as_ref()) {
        copier.hold(p.pid);
    }

    // Phase one: take and check a copy of every socket whose options we set, then let it go.
    // Nothing changes yet, and only one copy is open at a time (a server may hold more sockets
    // than this process may open files).
    let mut work: Vec<(Selected, std::result::Result<(), Skip>)> = Vec::new();
    for sel in selected {
        let checked = if matches!(sel.role, Role::CloseWait | Role::Queued) {
            Ok(())
        } else {
            copy_of(&sel, &mut copier)?.map(drop)
        };
        work.push((sel, checked));
    }

    // Phase two: a fresh copy (checked again), set, read back, close.
    let mut sockets = Vec::new();
    for (sel, checked) in work {
        let outcome = match (sel.role, checked) {
            (Role::CloseWait | Role::Queued, _) => close(&sel, plan, &mut copier),
            (_, Err(skip)) => skipped(&sel, skip),
            (_, Ok(())) => match copy_of(&sel, &mut copier) {
                Ok(Ok(fd)) => apply(&sel, &fd, plan),
                Ok(Err(skip)) => skipped(&sel, skip),
                Err(Error::Fix(FixError::Exited { pid })) => {
                    outcome(&sel, Action::Failed, Some(format!("process {pid} exited before its options were set")))
                }
                Err(e) => outcome(&sel, Action::Failed, Some(crate::error::chain(&e))),
            },
        };
        sockets.push(outcome);
    }
    // Connections that waited in the queue get a descriptor when a worker accepts them: those
    // accepted within a short wait are fixed now; the rest are counted.
    let mut still_queued: Vec<(u16, u64)> = queued.iter().map(|s| (s.local.port(), s.cookie)).collect();
    if !plan.dry_run && !queued.is_empty() {
        let (accepted, still) = settle_queued(plan, base, &queued, &server, &mut copier)?;
        sockets.extend(accepted);
        still_queued = still;
    }
    // What the next connection carries, on each port whose listener now has the options.
    let fixed: Vec<(&SocketFix, std::net::SocketAddr)> = sockets
        .iter()
        .filter(|f| f.role == Role::Listening && matches!(f.action, Action::Set | Action::Unchanged))
        .map(|f| (f, f.local.0))
        .collect();
    let next = if plan.dry_run || fixed.is_empty() {
        Vec::new()
    } else {
        let seen: HashSet<u64> = sockets.iter().map(|f| f.cookie).chain(queued.iter().map(|s| s.cookie)).collect();
        connections::check_next(plan, base, &fixed, &server, &seen, &mut copier)?
    };
    let retries2 = crate::deadpeer::read_retries2(&base.paths.root);
    let detect =
        fixed.iter().find_map(|(f, _)| f.after.or(f.before)).map(|o| crate::deadpeer::Detect::of(&o, retries2));
    let mut summary = summarize(&sockets);
    summary.queued_open = still_queued.len();
    Ok(FixReport {
        dry_run: plan.dry_run,
        ports,
        wanted: plan.wanted,
        sockets,
        summary,
        next,
        detect: if plan.dry_run { None } else { detect },
        allow_override: plan.allow_override,
        server,
        still_queued,
    })
}

/// A connection named by its local port and kernel cookie.
pub type PortCookie = (u16, u64);

/// How long `fix` waits for queued connections to be accepted before it reports them as still
/// queued (and for the server's next connection, to see what it carries).
pub const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Waits up to [`QUEUE_WAIT`] for the `queued` connections to be accepted by one of the
/// `server` processes, then fixes each one that was (the same socket: its cookie and 4-tuple),
/// as an established socket. Returns those fixes and how many are still queued.
fn settle_queued(
    plan: &Plan,
    base: &Query,
    queued: &[Socket],
    server: &BTreeSet<u32>,
    copier: &mut Copier,
) -> Result<(Vec<SocketFix>, Vec<PortCookie>)> {
    let ports: Vec<u16> = queued.iter().map(|s| s.local.port()).collect::<BTreeSet<_>>().into_iter().collect();
    let filter = Filter { states: StateSet::of(&[TcpState::Established]), ports, ..Filter::default() };
    let same = |a: &Socket, b: &Socket| a.cookie == b.cookie && a.local == b.local && a.peer == b.peer;
    let start = std::time::Instant::now();
    let accepted: Vec<Socket> = loop {
        let now = source::read(base.source, &filter, Extras::default(), &base.paths)?.sockets;
        let taken: Vec<Socket> =
            now.into_iter().filter(|s| s.inode != 0 && queued.iter().any(|q| same(q, s))).collect();
        if taken.len() == queued.len() || start.elapsed() >= QUEUE_WAIT {
            break taken;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let still: Vec<(u16, u64)> =
        queued.iter().filter(|q| !accepted.iter().any(|a| same(q, a))).map(|q| (q.local.port(), q.cookie)).collect();
    if accepted.is_empty() {
        return Ok((Vec::new(), still));
    }
    let map =
        ProcessMap::scan(&base.paths.root).map_err(|source| Error::Read { path: base.paths.root.clone(), source })?;
    let mut fixes = Vec::new();
    for socket in accepted {
        let owner = map
            .owners(socket.inode)
            .iter()
            .find(|o| server.contains(&o.process.pid))
            .map(|o| (o.process.clone(), o.fd));
        let Some((process, fd)) = owner else { continue };
        copier.hold(process.pid);
        let sel = Selected { role: Role::Established, socket, owner: Some((process, fd)) };
        fixes.push(match copy_of(&sel, copier) {
            Ok(Ok(copy)) => apply(&sel, &copy, plan),
            Ok(Err(skip)) => skipped(&sel, skip),
            Err(e) => outcome(&sel, Action::Failed, Some(crate::error::chain(&e))),
        });
    }
    Ok((fixes, still))
}

/// Why one socket is left alone.
#[derive(Debug)]
struct Skip {
    why: String,
    /// The copy was not the socket chosen.
    mismatched: bool,
}

fn skipped(sel: &Selected, skip: Skip) -> SocketFix {
    let mut fix = outcome(sel, Action::Skipped, Some(skip.why));
    fix.mismatched = skip.mismatched;
    fix
}

/// The listening sockets of the target, then the established (and with `--close-wait`, the
/// CLOSE-WAIT) sockets on their ports. Errors when nothing listens where asked.
fn select(plan: &Plan, base: &Query, map: &ProcessMap) -> Result<Selection> {
    let read = |states: &[TcpState], ports: Vec<u16>| -> Result<Vec<Socket>> {
        let filter = Filter { states: StateSet::of(states), ports, ..Filter::default() };
        Ok(source::read(base.source, &filter, Extras::default(), &base.paths)?.sockets)
    };
    let owner_of = |s: &Socket, pid: Option<u32>| -> Option<(Process, i32)> {
        let owners = map.owners(s.inode);
        let o = owners.iter().find(|o| pid.is_none_or(|p| o.process.pid == p)).or(owners.first())?;
        Some((o.process.clone(), o.fd))
    };
    let (listeners, pid) = match &plan.target {
        Target::Ports(ports) => {
            let found = read(&[TcpState::Listening], ports.clone())?;
            let missing: Vec<u16> =
                ports.iter().copied().filter(|p| !found.iter().any(|s| s.local.port() == *p)).collect();
            if !missing.is_empty() {
                return Err(FixError::NoListener { ports: missing }.into());
            }
            (found, None)
        }
        Target::Pid(pid) => {
            if !base.paths.root.join(pid.to_string()).exists() {
                return Err(FixError::NoProcess(*pid).into());
            }
            let all = read(&[TcpState::Listening], Vec::new())?;
            let mine: Vec<Socket> =
                all.into_iter().filter(|s| map.owners(s.inode).iter().any(|o| o.process.pid == *pid)).collect();
            if mine.is_empty() {
                return Err(FixError::PidListensNowhere(*pid).into());
            }
            (mine, Some(*pid))
        }
    };
    let ports: Vec<u16> = listeners.iter().map(|s| s.local.port()).collect::<BTreeSet<_>>().into_iter().collect();
    // The server: every process that holds one of the listeners (a pre-forking server's workers
    // share it). Connections on the ports are selected only when one of them holds the socket,
    // so a client's own socket that happens to use the same port number is never touched.
    let server: BTreeSet<u32> = listeners.iter().flat_map(|s| map.owners(s.inode)).map(|o| o.process.pid).collect();
    let served = |s: &Socket| map.owners(s.inode).iter().any(|o| server.contains(&o.process.pid));
    let owned_by_server = |s: &Socket| -> Option<(Process, i32)> {
        let o = map.owners(s.inode).iter().find(|o| server.contains(&o.process.pid))?;
        Some((o.process.clone(), o.fd))
    };
    // A connection in one of the listeners' queues: inode 0 (no process has it yet) on a
    // listener's port and address. A client's own socket always has an inode.
    let in_queue = |s: &Socket| {
        s.unaccepted()
            && listeners.iter().any(|l| {
                l.local.port() == s.local.port() && (l.local.ip().is_unspecified() || l.local.ip() == s.local.ip())
            })
    };
    let mut selected: Vec<Selected> = Vec::new();
    for s in &listeners {
        let owner = owner_of(s, pid);
        selected.push(Selected { role: Role::Listening, socket: s.clone(), owner });
    }
    let mut queued = Vec::new();
    // Inode 0: still in the accept queue, owned by nobody yet; nothing to take a copy of (it
    // was cloned from the listener before the fix). Kept, to fix once accepted.
    for s in read(&[TcpState::Established], ports.clone())? {
        if served(&s) {
            let owner = owned_by_server(&s);
            selected.push(Selected { role: Role::Established, socket: s, owner });
        } else if in_queue(&s) {
            queued.push(s);
        }
    }
    if plan.close_wait.is_some() {
        for s in read(&[TcpState::CloseWait], ports.clone())? {
            let role = if served(&s) {
                Role::CloseWait
            } else if in_queue(&s) {
                Role::Queued
            } else {
                continue;
            };
            // Since the last byte received: for a CLOSE-WAIT socket, about the time since the
            // peer's FIN. (Time since the last send would hide a zombie that still writes.)
            let idle_ms = s.idle.map(|i| i.last_recv_ms);
            if plan.idle_over_ms.is_some_and(|min| idle_ms.is_none_or(|idle| idle <= min)) {
                continue;
            }
            let owner = owned_by_server(&s);
            selected.push(Selected { role, socket: s, owner });
        }
    }
    Ok(Selection { ports, selected, queued, server })
}

/// What `select` chose: the ports, the sockets to act on (listeners first), and the live
/// connections waiting in the listeners' queues.
struct Selection {
    ports: Vec<u16>,
    selected: Vec<Selected>,
    queued: Vec<Socket>,
    /// Every process holding one of the listeners.
    server: BTreeSet<u32>,
}

/// Our copy of a selected socket, checked. A permission error, a hidden owner or an owner that
/// exited stops the whole command (nothing has changed yet); an owner in another net_cls class
/// without `--force`, or a copy that is not the socket chosen, skips this socket only.
fn copy_of(sel: &Selected, copier: &mut Copier) -> Result<std::result::Result<OwnedFd, Skip>> {
    let Some((process, fd)) = &sel.owner else {
        return Err(FixError::OwnerHidden { inode: sel.socket.inode, local: sel.socket.local.to_string() }.into());
    };
    let pid = process.pid;
    match copier.copy(pid, *fd, &sel.socket) {
        Ok(copy) => Ok(Ok(copy)),
        // This socket only: left alone, with the reason.
        Err(e @ SockOptError::NetCls { .. }) => Ok(Err(Skip { why: crate::error::chain(&e), mismatched: false })),
        Err(e @ SockOptError::NotSelected { .. }) => Ok(Err(Skip { why: crate::error::chain(&e), mismatched: true })),
        // The process is gone, or has closed that descriptor since the scan.
        Err(SockOptError::Duplicate { source, .. })
            if matches!(source.raw_os_error(), Some(libc::ESRCH | libc::EBADF)) =>
        {
            Err(FixError::Exited { pid }.into())
        }
        Err(SockOptError::Duplicate { source, .. })
            if matches!(source.raw_os_error(), Some(libc::EPERM | libc::EACCES)) =>
        {
            Err(FixError::Permission { pid, scope: os::ptrace_scope(), source }.into())
        }
        Err(e) => Err(e.into()),
    }
}

fn outcome(sel: &Selected, action: Action, error: Option<String>) -> SocketFix {
    SocketFix {
        role: sel.role,
        local: sel.socket.local,
        peer: sel.socket.peer,
        inode: sel.socket.inode,
        process: sel.owner.as_ref().map(|(p, _)| p.clone()),
        fd: sel.owner.as_ref().map(|(_, fd)| *fd),
        cookie: sel.socket.cookie,
        action,
        uid: sel.socket.uid,
        mismatched: false,
        before: None,
        after: None,
        changes: Vec::new(),
        closed_with: None,
        error,
    }
}

/// Sets each wanted option that differs, on its own (one failure never skips the others), and
/// reads them all back.
fn apply(sel: &Selected, copy: &OwnedFd, plan: &Plan) -> SocketFix {
    let before = match os::get_sockopts(copy) {
        Ok(o) => o,
        Err(e) => return outcome(sel, Action::Failed, Some(format!("reading the options: {e}"))),
    };
    let mut fix = outcome(sel, Action::Unchanged, None);
    fix.before = Some(before);
    fix.changes = plan
        .wanted
        .targets()
        .into_iter()
        .filter(|&(name, value)| name.get(&before) != value)
        .map(|(option, to)| Change { option, from: option.get(&before), to, error: None })
        .collect();
    if fix.changes.is_empty() {
        return fix;
    }
    if plan.dry_run {
        fix.action = Action::WouldSet;
        return fix;
    }
    for change in &mut fix.changes {
        change.error = os::set_sockopt(copy, change.option, change.to).err().map(|e| e.to_string());
    }
    fix.after = os::get_sockopts(copy).ok();
    let read_back = fix.after.is_some_and(|a| fix.changes.iter().all(|c| c.option.get(&a) == c.to));
    fix.action = if read_back && fix.changes.iter().all(|c| c.error.is_none()) { Action::Set } else { Action::Failed };
    if fix.action == Action::Failed {
        let failed: Vec<&str> = fix.changes.iter().filter(|c| c.error.is_some()).map(|c| c.option.name()).collect();
        fix.error = Some(if failed.is_empty() {
            "the options did not read back as set".into()
        } else {
            format!("could not set {}", failed.join(", "))
        });
    }
    fix
}

/// Ends one CLOSE-WAIT socket: `SOCK_DESTROY`, or `shutdown` on a copy.
fn close(sel: &Selected, plan: &Plan, copier: &mut Copier) -> SocketFix {
    let mut fix = outcome(sel, Action::WouldClose, None);
    let Some(with) = plan.close_wait else { return fix };
    if plan.dry_run {
        return fix;
    }
    let destroy = || source::destroy(&sel.socket);
    let mut shutdown = || -> std::result::Result<(), String> {
        let Some((p, fd)) = &sel.owner else {
            return Err(if sel.role == Role::Queued {
                "still in the listen queue: no process holds it, so only SOCK_DESTROY can end it".into()
            } else {
                "no process holds this socket".into()
            });
        };
        let copy = copier.copy(p.pid, *fd, &sel.socket).map_err(|e| crate::error::chain(&e))?;
        os::shutdown_both(&copy).map_err(|e| format!("shutdown: {e}"))
    };
    // A socket read from procfs has no cookie, and SOCK_DESTROY without one could hit a newer
    // connection on the same 4-tuple: such sockets take the shutdown path.
    let result = match with {
        CloseWith::Destroy => destroy().map(|()| ClosedWith::Destroy).map_err(|e| format!("SOCK_DESTROY: {e}")),
        CloseWith::Shutdown => shutdown().map(|()| ClosedWith::Shutdown),
        CloseWith::Auto if sel.socket.cookie == 0 => shutdown().map(|()| ClosedWith::Shutdown),
        CloseWith::Auto => match destroy() {
            Ok(()) => Ok(ClosedWith::Destroy),
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => shutdown().map(|()| ClosedWith::Shutdown),
            Err(e) => Err(format!("SOCK_DESTROY: {e}")),
        },
    };
    match result {
        Ok(how) => {
            fix.action = Action::Closed;
            fix.closed_with = Some(how);
        }
        Err(e) => {
            fix.action = Action::Failed;
            fix.error = Some(e);
        }
    }
    fix
}

fn summarize(sockets: &[SocketFix]) -> FixSummary {
    let mut s = FixSummary::default();
    for f in sockets {
        match f.role {
            Role::Listening => s.listening += 1,
            Role::Established => s.established += 1,
            Role::CloseWait => s.close_wait += 1,
            Role::Queued => {
                s.close_wait += 1;
                s.queued += 1;
            }
        }
        match f.action {
            Action::Set | Action::WouldSet => s.changed += 1,
            Action::Unchanged => s.unchanged += 1,
            Action::Closed | Action::WouldClose => s.closed += 1,
            Action::Skipped => {
                s.skipped += 1;
                s.mismatched += usize::from(f.mismatched);
            }
            Action::Failed => s.failed += 1,
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket owned by a process that has exited between the scan and the copy: the command
    /// stops with that reason before anything changes, instead of acting on a reused pid.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_owner_that_exited_stops_the_fix() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let mut socket =
            Socket::new(TcpState::Listening, "127.0.0.1:8787".parse().unwrap(), "0.0.0.0:0".parse().unwrap());
        socket.inode = 1;
        let sel = Selected { role: Role::Listening, socket, owner: Some((Process { pid, comm: "true".into() }, 3)) };
        let mut copier = Copier::new(std::path::Path::new("/proc"), false).unwrap();
        match copy_of(&sel, &mut copier) {
            Err(Error::Fix(FixError::Exited { pid: p })) => assert_eq!(p, pid),
            other => panic!("expected Exited, got {:?}", other.map(|r| r.map(|_| ()))),
        }
    }

    #[test]
    fn wanted_options_and_what_satisfies_them() {
        let w = Wanted { keepidle_s: 2, keepintvl_s: 1, keepcnt: 3, user_timeout_ms: Some(5000), nodelay: true };
        let names: Vec<&str> = w.targets().iter().map(|(n, _)| n.name()).collect();
        assert_eq!(
            names,
            ["SO_KEEPALIVE", "TCP_NODELAY", "TCP_KEEPIDLE", "TCP_KEEPINTVL", "TCP_KEEPCNT", "TCP_USER_TIMEOUT"]
        );
        let mut o = SockOpts {
            so_keepalive: true,
            tcp_nodelay: true,
            keepidle_s: 2,
            keepintvl_s: 1,
            keepcnt: 3,
            user_timeout_ms: 5000,
        };
        assert!(w.satisfied_by(&o));
        o.tcp_nodelay = false;
        assert!(!w.satisfied_by(&o));
        // --no-nodelay and --user-timeout 0 leave those two alone.
        let loose = Wanted { nodelay: false, user_timeout_ms: None, ..w };
        o.user_timeout_ms = 0;
        assert!(loose.satisfied_by(&o));
        assert_eq!(loose.targets().len(), 4);
    }
}
