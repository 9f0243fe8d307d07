//! `fix` output: a table of what changed on each socket (before → after, read back from the
//! socket), a summary line, or the JSON document (GUIDE.md, "Fix a running server").

use std::io::{self, Write};

use crate::fix::follow::Detail;
use crate::fix::{Action, FixReport, FollowEvent, NextConnection, Role, SocketFix, Verdict, overridden_values};
use crate::render::Clean;
use crate::units::long_duration;

/// `TCP_KEEPIDLE 7200→2, TCP_KEEPCNT 9→3`, or a dash.
fn changes(f: &SocketFix) -> String {
    if f.changes.is_empty() {
        return "-".into();
    }
    f.changes
        .iter()
        .map(|c| {
            let failed = if c.error.is_some() { " FAILED" } else { "" };
            format!("{} {}→{}{failed}", c.option.name(), c.from, c.to)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn role(r: Role) -> &'static str {
    match r {
        Role::Listening => "LISTEN",
        Role::Established => "ESTAB",
        Role::CloseWait | Role::Queued => "CLOSE-WAIT",
    }
}

fn action(f: &SocketFix) -> String {
    match f.action {
        Action::Set => "set".into(),
        Action::Unchanged => "unchanged".into(),
        Action::WouldSet => "would set".into(),
        Action::Closed => format!("closed ({})", f.closed_with.map_or("?", |c| c.name())),
        Action::WouldClose => "would close".into(),
        Action::Skipped => "skipped".into(),
        Action::Failed => "FAILED".into(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The table and the summary line.
pub fn write(out: &mut impl Write, r: &FixReport) -> io::Result<()> {
    let rows: Vec<[String; 6]> = r
        .sockets
        .iter()
        .map(|f| {
            let owner = match &f.process {
                Some(p) => format!("{}({})", Clean(&p.comm), p.pid),
                None if f.role == Role::Queued => "queued".into(),
                None => "-".into(),
            };
            [role(f.role).into(), f.local.to_string(), f.peer.to_string(), owner, action(f), changes(f)]
        })
        .collect();
    let header = ["State", "Local", "Peer", "Process", "Action", "Options (before→after)"];
    super::write_columns(out, header, &rows)?;
    writeln!(out)?;
    writeln!(out, "{}", summary_line(r))?;
    for f in r.sockets.iter().filter(|f| f.error.is_some()) {
        writeln!(out, "{} {} {}: {}", action(f), role(f.role), f.local, Clean(f.error.as_deref().unwrap_or("")))?;
    }
    for n in &r.next {
        writeln!(out, "{}", next_line(n))?;
    }
    if let Some(d) = r.detect {
        let idle = match d.idle_ms {
            Some(ms) => format!("after {} on an idle connection", long_duration(ms)),
            None => "never on an idle connection (keepalive off)".to_owned(),
        };
        let busy = match d.busy_ms {
            Some(ms) => format!("after {} with data in flight", long_duration(ms)),
            None => format!("after about {} with data in flight (no TCP_USER_TIMEOUT)", long_duration(d.retries_ms)),
        };
        let reach = if r.overrides().next().is_some() { " (where the server keeps them)" } else { "" };
        writeln!(out, "with the listener's options a dead peer is dropped {idle} and {busy}{reach}")?;
    }
    Ok(())
}

/// What the next connection on a port carries, as one line.
pub fn next_line(n: &NextConnection) -> String {
    let from = match (&n.peer, n.opened_by_fix) {
        (_, true) => " (a connection opened by fix, then reset)".to_owned(),
        (Some(peer), false) => format!(" (from {peer})"),
        (None, false) => String::new(),
    };
    match n.verdict {
        Verdict::Carries => format!(":{}: the next accepted connection{from} carries the options", n.port),
        Verdict::Overrides => format!(
            ":{}: the server sets its own {} on every connection{from}; the listener's values do not reach them. \
             Set them in the server's code (GUIDE.md, \"Servers tried\"), or keep `webui-doctor fix --port {} \
             --follow` running: it fixes each new connection",
            n.port,
            overridden_values(n),
            n.port
        ),
        Verdict::Unchecked => format!(
            ":{}: the next connection could not be checked: {}",
            n.port,
            Clean(n.error.as_deref().unwrap_or("unknown"))
        ),
    }
}

/// `fix: ports 8787: 1 listening and 3 established sockets set, 2 unchanged; 5 CLOSE-WAIT closed; 0 failed`.
pub fn summary_line(r: &FixReport) -> String {
    let s = &r.summary;
    let ports = r.ports.iter().map(|p| format!(":{p}")).collect::<Vec<_>>().join(", ");
    let verb = if r.dry_run { "would be set" } else { "set" };
    let mut text = format!(
        "fix{}: {ports}: {} listening and {} established sockets; {} {verb}, {} already carried the options",
        if r.dry_run { " --dry-run (nothing changed)" } else { "" },
        s.listening,
        s.established,
        s.changed,
        s.unchanged
    );
    if s.close_wait > 0 {
        text.push_str(&format!("; {} CLOSE-WAIT {}", s.closed, if r.dry_run { "would be closed" } else { "closed" }));
        if s.queued > 0 {
            text.push_str(&format!(" ({} of them queued, never accepted)", s.queued));
        }
    }
    if s.queued_open > 0 {
        text.push_str(&format!(
            "; {} still in the listen queue {} the listener's options from when {} arrived (no descriptor until a \
             worker accepts {}; --follow fixes {} then)",
            plural(s.queued_open, "connection", "connections"),
            if s.queued_open == 1 { "keeps" } else { "keep" },
            if s.queued_open == 1 { "it" } else { "they" },
            if s.queued_open == 1 { "it" } else { "them" },
            if s.queued_open == 1 { "it" } else { "them" },
        ));
    }
    if s.skipped > 0 {
        text.push_str(&format!("; {} skipped", s.skipped));
        if s.mismatched > 0 {
            text.push_str(&format!(" ({} no longer the socket chosen)", s.mismatched));
        }
    }
    text.push_str(&format!("; {} failed", s.failed));
    if !r.dry_run && s.changed == 0 && s.closed == 0 && s.failed == 0 && s.skipped == 0 {
        text.push_str(" (nothing to change: every selected socket already carries the options)");
    }
    text
}

/// `fix --format json`: the report, pretty; on one line (`lines`) when `--follow` goes on to write
/// one JSON object per event, so the whole output is JSON lines.
pub fn write_json(out: &mut impl Write, r: &FixReport, lines: bool) -> io::Result<()> {
    if lines {
        super::json::to_writer(&mut *out, r)?;
    } else {
        super::json::to_writer_pretty(&mut *out, r)?;
    }
    writeln!(out)
}

/// One `--follow` line: `2026-11-25T13:50:00.123Z :8790 listening socket …`, or a JSON line.
pub fn write_follow_event(out: &mut impl Write, e: &FollowEvent, json: bool) -> io::Result<()> {
    let now = crate::units::timestamp(std::time::SystemTime::now());
    if json {
        #[derive(serde::Serialize)]
        struct Line<'a> {
            at: String,
            #[serde(flatten)]
            event: &'a FollowEvent,
            message: String,
        }
        super::json::to_writer(&mut *out, &Line { at: now, event: e, message: follow_message(e) })?;
        writeln!(out)?;
    } else {
        writeln!(out, "{now} {} {}", e.event, Clean(&follow_message(e)))?;
    }
    out.flush()
}

/// A `--follow` event in a sentence.
pub fn follow_message(e: &FollowEvent) -> String {
    let port = e.port;
    let inode = e.inode.unwrap_or(0);
    match &e.detail {
        Detail::Exited { pid } => format!("process {pid} exited; nothing left to follow"),
        Detail::NoListener => format!("no listening socket on :{port}; waiting for the server"),
        Detail::LeftAlone { error } => format!(":{port} listening socket {inode}: left alone: {error}"),
        Detail::Override(n) => override_message(n),
        Detail::Listener { action, error, fixed_with } => {
            let owner = e.process.as_ref().map_or_else(
                || "owner unknown".to_owned(),
                |p| format!("{} pid {} uid {}", p.comm, p.pid, e.uid.unwrap_or_default()),
            );
            let what = match action {
                Action::Set => "options set".to_owned(),
                Action::Unchanged => "already carries the options".to_owned(),
                Action::Skipped => format!("left alone: {}", error.as_deref().unwrap_or("skipped")),
                _ => error.clone().unwrap_or("failed".into()),
            };
            format!(
                ":{port} listening socket {inode} ({owner}): {what}; {fixed_with} established sockets fixed with it"
            )
        }
        Detail::Error(e) => format!(":{port}: {e}"),
        Detail::Connections { set, failed, left_alone, changes } => {
            let mut message = format!(":{port}: {set} new connection{} fixed", if *set == 1 { "" } else { "s" });
            if let Some(changes) = changes {
                let changes: Vec<String> =
                    changes.iter().map(|c| format!("{} {}→{}", c.option.name(), c.from, c.to)).collect();
                message.push_str(&format!(" ({})", changes.join(", ")));
            }
            if *failed > 0 {
                message.push_str(&format!("; {failed} failed"));
            }
            if *left_alone > 0 {
                message.push_str(&format!("; {left_alone} left alone"));
            }
            message
        }
    }
}

/// "the server sets its own TCP_KEEPIDLE 15 s, TCP_KEEPINTVL 15 s on every connection; …"
pub fn override_message(n: &NextConnection) -> String {
    format!(
        ":{}: the server sets its own {} on every connection; the listener's values do not reach them. New \
         connections are fixed each period from now on",
        n.port,
        overridden_values(n)
    )
}
