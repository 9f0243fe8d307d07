//! The human view: a table like `ss -tanoe` with readable units, and a summary block. On a
//! terminal CLOSE-WAIT is coloured (unless `NO_COLOR`); piped, it is plain text with fixed
//! columns so `grep` and `awk` work on it. Like `ss`, rows are never wrapped.

use std::io::{self, Write};

use crate::model::{Socket, TcpState};
use crate::render::{Clean, Report, attribution_warning, describe_sockopts, sockopts_warning};
use crate::units::{HumanMs, timestamp};

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

const HEADER: [&str; 13] = [
    "State",
    "Recv-Q",
    "Send-Q",
    "Local",
    "Peer",
    "Timer",
    "Probes",
    "Idle-Recv",
    "Idle-Send",
    "UID",
    "Inode",
    "Process",
    "Options",
];
/// Columns whose numbers line up on the right.
const RIGHT: [bool; 13] = [false, true, true, false, false, false, true, false, false, true, true, false, false];

/// Formats one socket's cells, handing each to `cell(column, text)`; optional columns the table
/// does not show are skipped. One reused buffer: no allocation per cell.
fn cells(s: &Socket, columns: Columns, buf: &mut String, mut cell: impl FnMut(usize, &str)) {
    use std::fmt::Write as _;
    let mut put = |i: usize, buf: &mut String, f: &dyn Fn(&mut String) -> std::fmt::Result| {
        buf.clear();
        let _ = f(buf);
        cell(i, buf);
    };
    let dash = |b: &mut String| b.write_char('-');
    put(0, buf, &|b| b.write_str(s.state.ss_label()));
    put(1, buf, &|b| write!(b, "{}", s.recv_q));
    put(2, buf, &|b| write!(b, "{}", s.send_q));
    put(3, buf, &|b| write!(b, "{}", s.local));
    put(4, buf, &|b| write!(b, "{}", s.peer));
    put(5, buf, &|b| match s.timer {
        Some(t) => write!(b, "{} {}", t.kind.name(), HumanMs(t.expires_ms)),
        None => dash(b),
    });
    put(6, buf, &|b| match s.timer {
        Some(t) => write!(b, "{}", t.probes),
        None => Ok(()),
    });
    put(7, buf, &|b| match s.idle {
        Some(i) => write!(b, "{}", HumanMs(i.last_recv_ms)),
        None => dash(b),
    });
    put(8, buf, &|b| match s.idle {
        Some(i) => write!(b, "{}", HumanMs(i.last_send_ms)),
        None => dash(b),
    });
    put(9, buf, &|b| write!(b, "{}", s.uid));
    put(10, buf, &|b| write!(b, "{}", s.inode));
    if columns.processes {
        put(11, buf, &|b| match &s.process {
            Some(p) => write!(b, "{}({})", Clean(&p.comm), p.pid),
            None => dash(b),
        });
    }
    if columns.sockopts {
        put(12, buf, &|b| match s.sockopts {
            Some(o) => b.write_str(&describe_sockopts(&o)),
            None => dash(b),
        });
    }
}

/// Display width of a cell: its length when ASCII (almost always), else its char count.
fn width_of(text: &str) -> usize {
    if text.is_ascii() { text.len() } else { text.chars().count() }
}

/// The socket table, then the summary. Every cell is formatted once into one text arena (a
/// few bytes per cell, no allocation per cell); column widths are measured on the way, and the
/// second pass only pads. (comfy-table, which keeps a `String` and a style per cell, needed
/// 200 MiB and 3x the time of `ss -tanoe` for 50k sockets.)
pub fn write(out: &mut impl Write, report: &Report, style: Style, columns: Columns) -> io::Result<()> {
    let sockets = &report.snapshot.sockets;
    let shown = |i: usize| i < 11 || (i == 11 && columns.processes) || (i == 12 && columns.sockopts);
    if !sockets.is_empty() {
        let mut width = HEADER.map(str::len);
        let mut arena = String::with_capacity(sockets.len() * 96);
        // Per row: where each shown cell ends in the arena.
        let mut ends: Vec<[u32; 13]> = Vec::with_capacity(sockets.len());
        let mut buf = String::new();
        for s in sockets {
            let mut row = [0u32; 13];
            cells(s, columns, &mut buf, |i, text| {
                width[i] = width[i].max(width_of(text));
                arena.push_str(text);
                row[i] = arena.len() as u32;
            });
            ends.push(row);
        }
        let mut line = String::new();
        let pad = |line: &mut String, i: usize, text: &str, colour: Option<&str>| {
            let fill = width[i].saturating_sub(width_of(text));
            line.push(' ');
            if RIGHT[i] {
                line.extend(std::iter::repeat_n(' ', fill));
            }
            match colour {
                Some(code) => {
                    line.push_str(code);
                    line.push_str(text);
                    line.push_str("\x1b[0m");
                }
                None => line.push_str(text),
            }
            if !RIGHT[i] {
                line.extend(std::iter::repeat_n(' ', fill));
            }
            line.push(' ');
        };
        let bold = style.colour.then_some("\x1b[1m");
        for (i, h) in HEADER.iter().enumerate().filter(|(i, _)| shown(*i)) {
            pad(&mut line, i, h, bold);
        }
        writeln!(out, "{}", line.trim_end())?;
        let mut start = 0usize;
        for (s, row) in sockets.iter().zip(&ends) {
            line.clear();
            let red = (style.colour && s.state == TcpState::CloseWait).then_some("\x1b[1;31m");
            for i in (0..13).filter(|&i| shown(i)) {
                let end = row[i] as usize;
                pad(&mut line, i, &arena[start..end], if i == 0 { red } else { None });
                start = end;
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        writeln!(out)?;
    }
    write_summary(out, report)
}

/// The summary block; `--summary` prints it alone.
pub fn write_summary(out: &mut impl Write, report: &Report) -> io::Result<()> {
    let summary = &report.summary;
    let ns = report.netns.map(|n| format!(", netns {}", Clean(n))).unwrap_or_default();
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
    if let Some(warning) = report.attribution.as_ref().and_then(attribution_warning) {
        writeln!(out, "processes: {warning}")?;
    }
    if let Some(warning) = report.attribution.as_ref().and_then(sockopts_warning) {
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
        writeln!(out, "{severity} [{}] {}", f.code, Clean(&f.message))?;
    }
    Ok(())
}
