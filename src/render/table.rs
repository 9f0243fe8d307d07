//! The human view: a table like `ss -tanoe` with readable units, and a summary block. On a
//! terminal it fits the width and colours CLOSE-WAIT (unless `NO_COLOR`); piped, it is plain text
//! with fixed columns so `grep` and `awk` work on it.

use std::io::{self, Write};

use comfy_table::{Attribute, Cell, CellAlignment, Color, ContentArrangement, Table, presets};

use crate::model::{Socket, TcpState};
use crate::render::{Report, human_ms, timestamp};

/// Terminal facts the table adapts to; decided once by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub tty: bool,
    pub colour: bool,
}

impl Style {
    /// From the real stdout and the `NO_COLOR` convention (<https://no-color.org>).
    pub fn detect() -> Style {
        use std::io::IsTerminal;
        let tty = io::stdout().is_terminal();
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style { tty, colour: tty && !no_colour }
    }

    pub const PLAIN: Style = Style { tty: false, colour: false };
}

/// Optional columns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Columns {
    /// The owning process (`-p`).
    pub processes: bool,
    /// The socket options read from the owner (`-O`).
    pub sockopts: bool,
}

pub fn write(out: &mut impl Write, report: &Report, style: Style, columns: Columns) -> io::Result<()> {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    if !style.tty {
        table.force_no_tty();
    }
    // Fit a terminal of known, usable width; a terminal that reports no width (or a silly one)
    // gets full-width rows rather than columns squeezed to a character.
    let arrangement = match table.width() {
        Some(w) if style.tty && w >= 60 => ContentArrangement::Dynamic,
        _ => ContentArrangement::Disabled,
    };
    table.set_content_arrangement(arrangement);
    // Escape sequences only when colour is wanted; with NO_COLOR or a pipe the text is plain.
    if style.colour {
        table.enforce_styling();
    }
    let mut header =
        vec!["State", "Recv-Q", "Send-Q", "Local", "Peer", "Timer", "Probes", "Idle-Recv", "Idle-Send", "UID", "Inode"];
    if columns.processes {
        header.push("Process");
    }
    if columns.sockopts {
        header.push("Options");
    }
    table.set_header(header.into_iter().map(|h| {
        let cell = Cell::new(h);
        if style.colour { cell.add_attribute(Attribute::Bold) } else { cell }
    }));
    for s in &report.snapshot.sockets {
        table.add_row(row(s, style, columns));
    }
    for i in [1, 2, 6, 9, 10] {
        if let Some(col) = table.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    if !report.snapshot.sockets.is_empty() {
        writeln!(out, "{}", table.trim_fmt())?;
        writeln!(out)?;
    }
    write_summary(out, report)
}

fn row(s: &Socket, style: Style, columns: Columns) -> Vec<Cell> {
    let mut state = Cell::new(s.state.ss_label());
    if style.colour && s.state == TcpState::CloseWait {
        state = state.fg(Color::Red).add_attribute(Attribute::Bold);
    }
    let (timer, probes) = match s.timer {
        Some(t) => (format!("{} {}", t.kind.name(), human_ms(t.expires_ms)), t.probes.to_string()),
        None => ("-".to_owned(), String::new()),
    };
    let idle = |f: fn(&crate::model::Idle) -> u64| s.idle.as_ref().map_or("-".to_owned(), |i| human_ms(f(i)));
    let mut cells = vec![
        state,
        Cell::new(s.recv_q),
        Cell::new(s.send_q),
        Cell::new(s.local),
        Cell::new(s.peer),
        Cell::new(timer),
        Cell::new(probes),
        Cell::new(idle(|i| i.last_recv_ms)),
        Cell::new(idle(|i| i.last_send_ms)),
        Cell::new(s.uid),
        Cell::new(s.inode),
    ];
    if columns.processes {
        cells.push(Cell::new(s.process.as_ref().map_or("-".to_owned(), |p| format!("{}({})", p.comm, p.pid))));
    }
    if columns.sockopts {
        cells.push(Cell::new(s.sockopts.map_or("-".to_owned(), |o| o.describe())));
    }
    cells
}

/// The summary block; `--summary` prints it alone.
pub fn write_summary(out: &mut impl Write, report: &Report) -> io::Result<()> {
    let summary = &report.summary;
    let ns = report.netns.map(|n| format!(", netns {n}")).unwrap_or_default();
    writeln!(out, "source: {}{ns}, taken at {}", report.snapshot.source.name(), timestamp(report.snapshot.taken_at))?;
    let states: Vec<String> =
        summary.by_state.iter().filter(|(_, n)| *n > 0).map(|(s, n)| format!("{} {n}", s.name())).collect();
    let states = if states.is_empty() { String::new() } else { format!(" ({})", states.join(", ")) };
    writeln!(out, "sockets: {}{states}", summary.total)?;
    writeln!(out, "close-wait: {}", summary.close_wait())?;
    let k = summary.keepalive;
    writeln!(
        out,
        "keepalive: {} of {} established sockets have a keepalive timer armed, {} have none",
        k.armed,
        k.established,
        k.unarmed()
    )?;
    if let Some(warning) = report.attribution.and_then(|a| a.warning()) {
        writeln!(out, "processes: {warning}")?;
    }
    if let Some(warning) = report.attribution.and_then(|a| a.sockopts_warning()) {
        writeln!(out, "options: {warning}")?;
    }
    write_findings(out, report)
}

/// One line per finding: `warning [close-wait] 5 sockets on :8787 in CLOSE-WAIT, ...`.
pub fn write_findings(out: &mut impl Write, report: &Report) -> io::Result<()> {
    for f in &report.findings {
        let severity = match f.severity {
            crate::diagnose::Severity::Warning => "warning",
            crate::diagnose::Severity::Info => "info",
        };
        writeln!(out, "{severity} [{}] {}", f.code, f.message)?;
    }
    Ok(())
}
