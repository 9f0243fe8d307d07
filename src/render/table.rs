//! The human view: a table like `ss -tanoe` with readable units, and a summary block. On a
//! terminal CLOSE-WAIT is coloured (unless `NO_COLOR`); piped, it is plain text with fixed
//! columns so `grep` and `awk` work on it. Like `ss`, rows are never wrapped.

use std::io::{self, Write};

use crate::analysis::{Group, GroupBy};
use crate::model::{Memory, Socket, TcpState};
use crate::render::{Clean, Report, attribution_warning, describe_sockopts, sockopts_warning};
use crate::units::{HumanMs, timestamp};

/// Terminal facts the table adapts to; decided once by the caller.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    /// Stdout is a terminal.
    pub tty: bool,
    /// Colour may be used (a terminal, and no `NO_COLOR`).
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

    /// No terminal, no colour: for files, pipes and tests.
    pub const PLAIN: Style = Style { tty: false, colour: false };
}

/// Optional columns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Columns {
    /// The owning process (`-p`).
    pub processes: bool,
    /// The socket options read from the owner (`-O`).
    pub sockopts: bool,
    /// RTT, retransmissions, unacknowledged, not sent, last ACK (`-i`).
    pub info: bool,
    /// Socket memory (`-m`).
    pub memory: bool,
    /// The cgroup path (`-e`).
    pub cgroup: bool,
    /// The network namespace (`--all-netns`).
    pub netns: bool,
}

impl Columns {
    fn shown(self, i: usize) -> bool {
        match i {
            0..=10 => true,
            PROCESS => self.processes,
            OPTIONS => self.sockopts,
            RTT..=LAST_ACK => self.info,
            MEMORY => self.memory,
            CGROUP => self.cgroup,
            NETNS => self.netns,
            _ => false,
        }
    }
}

const COLUMNS: usize = 21;
const PROCESS: usize = 11;
const OPTIONS: usize = 12;
const RTT: usize = 13;
const LAST_ACK: usize = 17;
const MEMORY: usize = 18;
const CGROUP: usize = 19;
const NETNS: usize = 20;

const HEADER: [&str; COLUMNS] = [
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
    "RTT",
    "Retrans",
    "Unacked",
    "Not-sent",
    "Last-ACK",
    "Memory",
    "Cgroup",
    "Netns",
];
/// Columns whose numbers line up on the right.
const RIGHT: [bool; COLUMNS] = [
    false, true, true, false, false, false, true, false, false, true, true, false, false, true, true, true, true, true,
    false, false, false,
];

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
        put(PROCESS, buf, &|b| match &s.process {
            Some(p) => write!(b, "{}({})", Clean(&p.comm), p.pid),
            None if s.queued => b.write_str("queued"),
            None => dash(b),
        });
    }
    if columns.sockopts {
        put(OPTIONS, buf, &|b| match s.sockopts {
            Some(o) => b.write_str(&describe_sockopts(&o)),
            None => dash(b),
        });
    }
    if columns.info {
        let info = s.details.info.as_deref().copied().unwrap_or_default();
        // A number, or `-` where the kernel (or the source) did not say.
        fn num(b: &mut String, v: Option<impl std::fmt::Display>) -> std::fmt::Result {
            match v {
                Some(v) => write!(b, "{v}"),
                None => b.write_char('-'),
            }
        }
        put(RTT, buf, &|b| match info.rtt_us() {
            Some(us) => write!(b, "{}.{:03}ms", us / 1000, us % 1000),
            None => dash(b),
        });
        put(14, buf, &|b| match (info.retransmits(), info.total_retrans()) {
            (Some(now), Some(total)) => write!(b, "{now}/{total}"),
            (now, _) => num(b, now),
        });
        put(15, buf, &|b| num(b, info.unacked()));
        put(16, buf, &|b| num(b, info.notsent_bytes()));
        put(LAST_ACK, buf, &|b| match info.last_ack_ms() {
            Some(ms) => write!(b, "{}", HumanMs(u64::from(ms))),
            None => dash(b),
        });
    }
    if columns.memory {
        put(MEMORY, buf, &|b| match s.details.memory.as_deref() {
            Some(Memory { rmem_alloc: Some(r), rcvbuf: Some(rb), wmem_queued: Some(w), sndbuf: Some(tb), .. }) => {
                write!(b, "r{r}/{rb} w{w}/{tb}")
            }
            _ => dash(b),
        });
    }
    if columns.cgroup {
        put(CGROUP, buf, &|b| match &s.details.cgroup {
            Some(path) => write!(b, "{}", Clean(path)),
            None => dash(b),
        });
    }
    if columns.netns {
        put(NETNS, buf, &|b| match &s.details.netns {
            Some(ns) => write!(b, "{}", Clean(ns)),
            None => dash(b),
        });
    }
}

/// Display width of a cell: its length when ASCII (almost always), else its char count.
fn width_of(text: &str) -> usize {
    if text.is_ascii() { text.len() } else { text.chars().count() }
}

/// One slice of rows with every cell formatted once into one text arena (a few bytes per cell,
/// no allocation per cell), where each row's cells end, and the widest cell of each column.
struct Formatted {
    arena: String,
    /// Per row: where its first cell starts in the arena, and where each shown cell ends.
    rows: Vec<(u32, [u32; COLUMNS])>,
    width: [usize; COLUMNS],
}

fn format_rows(sockets: &[Socket], columns: Columns) -> Formatted {
    let mut f = Formatted {
        arena: String::with_capacity(sockets.len() * 96),
        rows: Vec::with_capacity(sockets.len()),
        width: [0; COLUMNS],
    };
    let mut buf = String::new();
    for s in sockets {
        let start = f.arena.len() as u32;
        let mut ends = [0u32; COLUMNS];
        cells(s, columns, &mut buf, |i, text| {
            f.width[i] = f.width[i].max(width_of(text));
            f.arena.push_str(text);
            ends[i] = f.arena.len() as u32;
        });
        f.rows.push((start, ends));
    }
    f
}

/// Appends one padded cell (and its separating blanks) to `line`.
fn pad(line: &mut String, width: usize, right: bool, text: &str, colour: Option<&str>) {
    let fill = width.saturating_sub(width_of(text));
    line.push(' ');
    if right {
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
    if !right {
        line.extend(std::iter::repeat_n(' ', fill));
    }
    line.push(' ');
}

/// Rows `range` of a formatted slice (`sockets` is the same slice), padded to the table's widths.
fn render_rows(
    f: &Formatted,
    sockets: &[Socket],
    range: std::ops::Range<usize>,
    width: &[usize; COLUMNS],
    columns: Columns,
    style: Style,
) -> String {
    let mut text = String::with_capacity(range.len() * 160);
    let mut line = String::new();
    for (s, (start, ends)) in sockets[range.clone()].iter().zip(&f.rows[range]) {
        let red = style.colour && s.state == TcpState::CloseWait;
        row_line(&mut text, &mut line, &f.arena, *start as usize, ends, red, width, columns);
    }
    text
}

/// One row, its cells `arena[start..ends[i]]` one after the other, padded to the table's widths
/// and appended to `text` (`line` is scratch); `red` colours the state.
#[allow(clippy::too_many_arguments)]
fn row_line(
    text: &mut String,
    line: &mut String,
    arena: &str,
    mut start: usize,
    ends: &[u32; COLUMNS],
    red: bool,
    width: &[usize; COLUMNS],
    columns: Columns,
) {
    line.clear();
    let red = red.then_some("\x1b[1;31m");
    for i in (0..COLUMNS).filter(|&i| columns.shown(i)) {
        let end = ends[i] as usize;
        pad(line, width[i], RIGHT[i], &arena[start..end], if i == 0 { red } else { None });
        start = end;
    }
    text.push_str(line.trim_end());
    text.push('\n');
}

/// Rows below which the table is formatted on one thread (threads cost more than they save).
const PARALLEL_ROWS: usize = 8192;

/// Rows each thread pads per round of the second pass: memory stays bounded whatever the count.
const BATCH: usize = 4096;

/// The socket table, then the summary. Two passes: every cell is formatted once and column
/// widths measured, then the rows are padded. Both passes run on every core: the first on one
/// slice of the rows per thread, the second in rounds of consecutive batches, written in order.
/// (comfy-table, which keeps a `String` and a style per cell, needed 200 MiB and 3x the time of
/// `ss -tanoe` for 50k sockets.)
pub fn write(out: &mut impl Write, report: &Report, style: Style, columns: Columns) -> io::Result<()> {
    let sockets = &report.snapshot.sockets;
    if !sockets.is_empty() {
        let threads = if sockets.len() < PARALLEL_ROWS {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(8)
        };
        write_rows(out, sockets, style, columns, threads)?;
        writeln!(out)?;
    }
    write_summary(out, report)
}

/// The header and one line per socket, formatted on `threads` threads.
fn write_rows(
    out: &mut impl Write,
    sockets: &[Socket],
    style: Style,
    columns: Columns,
    threads: usize,
) -> io::Result<()> {
    {
        // Slices are whole batches long, so no batch spans two slices.
        let slice = sockets.len().div_ceil(threads).div_ceil(BATCH) * BATCH;
        let formatted: Vec<Formatted> = std::thread::scope(|scope| {
            let handles: Vec<_> = sockets.chunks(slice).map(|c| scope.spawn(move || format_rows(c, columns))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        });
        let mut width = HEADER.map(str::len);
        for f in &formatted {
            for (w, fw) in width.iter_mut().zip(f.width) {
                *w = (*w).max(fw);
            }
        }
        write_header(out, &width, style, columns)?;
        let batches: Vec<usize> = (0..sockets.len()).step_by(BATCH).collect();
        for round in batches.chunks(threads) {
            let texts: Vec<String> = std::thread::scope(|scope| {
                let handles: Vec<_> = round
                    .iter()
                    .map(|&first| {
                        let (f, slice_start) = (&formatted[first / slice], first / slice * slice);
                        let rows = &sockets[slice_start..(slice_start + slice).min(sockets.len())];
                        let range = first - slice_start..(first - slice_start + BATCH).min(rows.len());
                        scope.spawn(move || render_rows(f, rows, range, &width, columns, style))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
            });
            for text in texts {
                out.write_all(text.as_bytes())?;
            }
        }
    }
    Ok(())
}

/// The table's rows as the sockets arrive (see [`super::spill`]): each row's cells, formatted
/// on the render threads, and the widest cell of each column; [`write_spilled`] pads them.
pub type Rows = super::spill::Spill<Cells>;

/// Rows as their cells: per row a CLOSE-WAIT flag, the number of cells, and each cell's column,
/// length and text.
#[derive(Clone, Copy)]
pub struct Cells(pub Columns);

impl super::spill::Render for Cells {
    type Extra = [usize; COLUMNS];
    const SEPARATOR: &'static [u8] = b"";
    fn render(&self, batch: &[Socket], out: &mut Vec<u8>) -> io::Result<[usize; COLUMNS]> {
        let mut width = [0; COLUMNS];
        let mut buf = String::new();
        for s in batch {
            out.push(u8::from(s.state == TcpState::CloseWait));
            let count = out.len();
            out.push(0);
            cells(s, self.0, &mut buf, |i, text| {
                width[i] = width[i].max(width_of(text));
                out[count] += 1;
                out.push(i as u8);
                out.extend_from_slice(&(text.len() as u32).to_le_bytes());
                out.extend_from_slice(text.as_bytes());
            });
        }
        Ok(width)
    }
    fn combine(total: &mut [usize; COLUMNS], batch: [usize; COLUMNS]) {
        for (t, b) in total.iter_mut().zip(batch) {
            *t = (*t).max(b);
        }
    }
}

/// The table whose rows `rows` holds, then the summary of `report`: the bytes [`write`] gives
/// for the same sockets. The rows are padded as the stored table's are, in rounds on every
/// core: while the threads pad one round of chunks (about a megabyte of cells each), the next
/// round is read.
pub fn write_spilled(
    out: &mut impl Write,
    report: &Report,
    rows: Rows,
    style: Style,
    columns: Columns,
) -> io::Result<()> {
    let (parts, cell_width) = rows.finish()?;
    if parts.iter().any(|p| p.count > 0) {
        let mut width = HEADER.map(str::len);
        for (w, c) in width.iter_mut().zip(cell_width) {
            *w = (*w).max(c);
        }
        write_header(out, &width, style, columns)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        let mut chunks = Chunks { parts: parts.into_iter(), reader: None, carry: Vec::new() };
        let mut round = chunks.round(threads)?;
        while !round.is_empty() {
            let (texts, next) = std::thread::scope(|scope| {
                let handles: Vec<_> =
                    round.iter().map(|chunk| scope.spawn(|| pad_rows(chunk, &width, style, columns))).collect();
                let next = chunks.round(threads);
                let texts: Vec<io::Result<String>> =
                    handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect();
                (texts, next)
            });
            for text in texts {
                out.write_all(text?.as_bytes())?;
            }
            round = next?;
        }
        writeln!(out)?;
    }
    write_summary(out, report)
}

/// Bytes of encoded rows a thread pads at once.
const CHUNK: usize = 1 << 19;

/// The parts' encoded rows cut into chunks of whole rows.
struct Chunks<I> {
    parts: I,
    reader: Option<Box<dyn io::BufRead>>,
    /// Bytes read past the last whole row.
    carry: Vec<u8>,
}

impl<I: Iterator<Item = super::spill::Part>> Chunks<I> {
    /// Up to `n` chunks; none at the end.
    fn round(&mut self, n: usize) -> io::Result<Vec<Vec<u8>>> {
        let mut round = Vec::with_capacity(n);
        while round.len() < n {
            match self.chunk()? {
                Some(chunk) => round.push(chunk),
                None => break,
            }
        }
        Ok(round)
    }

    fn chunk(&mut self) -> io::Result<Option<Vec<u8>>> {
        use io::Read as _;
        loop {
            if self.reader.is_none() {
                match self.parts.next() {
                    Some(part) => self.reader = Some(Box::new(part.reader()?)),
                    None => return Ok(None),
                }
            }
            let mut chunk = std::mem::take(&mut self.carry);
            let reader = self.reader.as_mut().expect("opened above");
            let got = reader.take((CHUNK - chunk.len().min(CHUNK / 2)) as u64).read_to_end(&mut chunk)?;
            if got == 0 {
                // This part is done; rows never span two parts.
                if !chunk.is_empty() {
                    return Err(io::Error::other("a spilled row is cut short"));
                }
                self.reader = None;
                continue;
            }
            let whole = whole_rows(&chunk);
            self.carry = chunk.split_off(whole);
            if whole > 0 {
                return Ok(Some(chunk));
            }
        }
    }
}

/// The length of the longest prefix of `bytes` that holds whole encoded rows.
fn whole_rows(bytes: &[u8]) -> usize {
    let (mut at, mut whole) = (0, 0);
    while let Some(&count) = bytes.get(at + 1) {
        at += 2;
        for _ in 0..count {
            let Some(len) = bytes.get(at + 1..at + 5) else { return whole };
            at += 5 + u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        }
        if at > bytes.len() {
            return whole;
        }
        whole = at;
    }
    whole
}

/// Encoded rows (whole ones), padded to the table's widths.
fn pad_rows(mut bytes: &[u8], width: &[usize; COLUMNS], style: Style, columns: Columns) -> io::Result<String> {
    let bad = || io::Error::other("a spilled row is not valid text");
    let mut text = String::with_capacity(bytes.len() * 3 / 2);
    let (mut line, mut arena) = (String::new(), String::new());
    while let [red, count, rest @ ..] = bytes {
        bytes = rest;
        arena.clear();
        let mut ends = [0u32; COLUMNS];
        for _ in 0..*count {
            let [i, l0, l1, l2, l3, rest @ ..] = bytes else { return Err(bad()) };
            let len = u32::from_le_bytes([*l0, *l1, *l2, *l3]) as usize;
            let (cell, rest) = rest.split_at_checked(len).ok_or_else(bad)?;
            arena.push_str(std::str::from_utf8(cell).map_err(|_| bad())?);
            ends[usize::from(*i).min(COLUMNS - 1)] = arena.len() as u32;
            bytes = rest;
        }
        row_line(&mut text, &mut line, &arena, 0, &ends, style.colour && *red == 1, width, columns);
    }
    if !bytes.is_empty() {
        return Err(bad());
    }
    Ok(text)
}

/// The header line, padded to `width`.
fn write_header(out: &mut impl Write, width: &[usize; COLUMNS], style: Style, columns: Columns) -> io::Result<()> {
    let mut line = String::new();
    let bold = style.colour.then_some("\x1b[1m");
    for (i, h) in HEADER.iter().enumerate().filter(|(i, _)| columns.shown(*i)) {
        pad(&mut line, width[i], RIGHT[i], h, bold);
    }
    writeln!(out, "{}", line.trim_end())
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
    match summary.queued.close_wait {
        0 => writeln!(out, "close-wait: {}", summary.close_wait())?,
        queued => writeln!(out, "close-wait: {} ({queued} in a listen queue, never accepted)", summary.close_wait())?,
    }
    if summary.queued.total() > 0 {
        writeln!(
            out,
            "queued: {} connections wait in a listen queue, accepted by no process yet ({} established, {} close-wait)",
            summary.queued.total(),
            summary.queued.established,
            summary.queued.close_wait
        )?;
    }
    let k = summary.keepalive;
    writeln!(
        out,
        "keepalive: {} of {} established sockets have a keepalive timer armed, {} have none",
        k.armed,
        k.established,
        k.unarmed()
    )?;
    if !report.snapshot.unavailable.is_empty() {
        writeln!(
            out,
            "unavailable: the {} source cannot give {}; shown as -",
            report.snapshot.source.name(),
            report.snapshot.unavailable.join(", ")
        )?;
    }
    if let Some((by, groups)) = &report.groups {
        writeln!(out)?;
        write_groups(out, *by, groups)?;
        writeln!(out)?;
    }
    if let Some(t) = report.tcpext {
        let fields: Vec<String> = t.counters.fields().iter().map(|(name, n)| format!("{name} +{n}")).collect();
        writeln!(out, "host TcpExt, last {:.1}s: {}", t.seconds, fields.join(", "))?;
    }
    if let Some(n @ 1..) = report.namespaces_skipped {
        writeln!(out, "netns: {n} namespaces could not be entered (gone since listed, or not permitted); not counted")?;
    }
    if let Some(warning) = report.attribution.as_ref().and_then(attribution_warning) {
        writeln!(out, "processes: {warning}")?;
    }
    if let Some(warning) = report.attribution.as_ref().and_then(sockopts_warning) {
        writeln!(out, "options: {warning}")?;
    }
    for c in &report.cures {
        writeln!(out, "{}", super::cure::line(c))?;
    }
    write_findings(out, report)
}

/// The `--by` summary: one row per group, largest CLOSE-WAIT first. A few dozen rows at most,
/// so this uses comfy-table (the streaming writer above is for the big socket listing).
pub fn write_groups(out: &mut impl Write, by: GroupBy, groups: &[Group]) -> io::Result<()> {
    use comfy_table::{CellAlignment, ColumnConstraint, Table, presets};
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    let title = match by {
        GroupBy::Process => "Process",
        GroupBy::Port => "Port",
        GroupBy::Peer => "Peer",
        GroupBy::Cgroup => "Cgroup",
        GroupBy::Netns => "Netns",
        GroupBy::Workload => "Workload",
    };
    let mut header = vec![title, "Sockets", "ESTAB", "CLOSE-WAIT", "TIME-WAIT", "LISTEN", "Other", "Keepalive"];
    if by == GroupBy::Process {
        header.extend(["Files/Limit", "Threads"]);
    }
    table.set_header(header);
    for g in groups {
        let s = &g.summary;
        let named = [TcpState::Established, TcpState::CloseWait, TcpState::TimeWait, TcpState::Listening];
        let other = s.total - named.iter().map(|st| s.by_state.get(*st)).sum::<usize>();
        let mut row = vec![Clean(&g.key).to_string(), s.total.to_string()];
        row.extend(named.iter().map(|st| s.by_state.get(*st).to_string()));
        row.push(other.to_string());
        row.push(format!("{}/{}", s.keepalive.armed, s.keepalive.established));
        if by == GroupBy::Process {
            let p = g.process.as_ref();
            row.push(match p {
                Some(p) => match p.file_limit {
                    Some(limit) => format!("{}/{limit}", p.open_files),
                    None => format!("{}/unlimited", p.open_files),
                },
                None => "-".to_owned(),
            });
            row.push(p.and_then(|p| p.threads).map_or_else(|| "-".to_owned(), |t| t.to_string()));
        }
        table.add_row(row);
    }
    for (i, column) in table.column_iter_mut().enumerate() {
        if i > 0 {
            column.set_cell_alignment(CellAlignment::Right);
        }
        column.set_constraint(ColumnConstraint::ContentWidth);
    }
    writeln!(out, "{}", table.trim_fmt())
}

/// One line per finding: `warning [close-wait] 5 sockets on :8787 in CLOSE-WAIT, ...`.
pub fn write_findings(out: &mut impl Write, report: &Report) -> io::Result<()> {
    for f in &report.findings {
        let severity = match f.severity {
            crate::diagnose::Severity::Warning => "warning",
            crate::diagnose::Severity::Info => "info",
        };
        let message = super::findings::message(f);
        match &f.netns {
            Some(ns) => writeln!(out, "{severity} [{}] (netns {}) {}", f.code(), Clean(ns), Clean(&message))?,
            None => writeln!(out, "{severity} [{}] {}", f.code(), Clean(&message))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn sockets(n: usize) -> Vec<Socket> {
        (0..n)
            .map(|i| Socket {
                recv_q: i as u32,
                send_q: (i * i) as u32,
                inode: i as u64 * 1000,
                idle: Some(Idle { last_recv_ms: i as u64 * 10, last_send_ms: 5 }),
                ..Socket::new(
                    if i % 7 == 0 { TcpState::CloseWait } else { TcpState::Established },
                    "127.0.0.1:8787".parse().unwrap(),
                    // Widths vary with the row, and the widest cells sit in the last slice.
                    format!("10.0.{}.{}:{}", i % 256, i % 100, i).parse().unwrap(),
                )
            })
            .collect()
    }

    /// Any number of threads writes the same table as one.
    #[test]
    fn threads_write_the_same_table() {
        let sockets = sockets(2 * BATCH + 77);
        let style = Style { tty: true, colour: true };
        let columns = Columns { info: true, cgroup: true, ..Columns::default() };
        let render = |threads| {
            let mut out = Vec::new();
            write_rows(&mut out, &sockets, style, columns, threads).unwrap();
            out
        };
        let one = render(1);
        assert_eq!(one.iter().filter(|&&b| b == b'\n').count(), sockets.len() + 1);
        for threads in [2, 3, 8] {
            assert!(render(threads) == one, "{threads} threads");
        }
    }

    /// Encoded rows cut anywhere: the whole rows before the cut are found, and padding a cut row
    /// fails rather than print part of it.
    #[test]
    fn cut_rows_are_found_and_refused() {
        use super::super::spill::Render as _;
        let columns = Columns { info: true, ..Columns::default() };
        let mut bytes = Vec::new();
        let mut boundaries = vec![0];
        for s in sockets(20) {
            Cells(columns).render(std::slice::from_ref(&s), &mut bytes).unwrap();
            boundaries.push(bytes.len());
        }
        let width = [40; COLUMNS];
        let style = Style { tty: false, colour: false };
        let whole = pad_rows(&bytes, &width, style, columns).unwrap();
        assert_eq!(whole.lines().count(), 20);
        for cut in 0..=bytes.len() {
            let found = whole_rows(&bytes[..cut]);
            assert_eq!(found, *boundaries.iter().rfind(|&&b| b <= cut).unwrap(), "cut at {cut}");
            assert_eq!(
                pad_rows(&bytes[..cut], &width, style, columns).is_ok(),
                boundaries.contains(&cut),
                "cut at {cut}"
            );
        }
    }

    /// The table rendered as the sockets come (in two parts, spilled past `SPILL_AT`) is the
    /// stored table to the byte, summary included, with and without colour and optional columns.
    #[test]
    fn spilled_table_equals_the_stored_one() {
        use crate::tally::Tally as _;
        let filter = crate::filter::Filter::default();
        for (n, split) in [(0, 0), (1, 1), (5, 2), (10 * BATCH + 77, 77)] {
            let mut list = sockets(n);
            // One cell far wider than the rest, in the second part: the widths are the whole
            // table's.
            if let Some(last) = list.last_mut() {
                last.details.cgroup = Some(format!("/{}", "x".repeat(300)).into());
            }
            let snapshot = Snapshot {
                source: Source::Netlink,
                taken_at: std::time::UNIX_EPOCH,
                sockets: list,
                unavailable: Vec::new(),
                processes: Vec::new(),
                queues: Vec::new(),
            };
            let report = Report::new(&snapshot, &filter, None, None, &crate::diagnose::Facts::default());
            for (style, columns) in [
                (Style { tty: true, colour: true }, Columns { info: true, cgroup: true, ..Columns::default() }),
                (Style { tty: false, colour: false }, Columns::default()),
            ] {
                let mut stored = Vec::new();
                write(&mut stored, &report, style, columns).unwrap();
                let (first, second) = snapshot.sockets.split_at(split);
                let mut rows = Rows::new(Cells(columns)).over(first);
                rows.merge(Rows::new(Cells(columns)).over(second));
                let mut spilled = Vec::new();
                write_spilled(&mut spilled, &report, rows, style, columns).unwrap();
                assert!(spilled == stored, "{n} sockets split at {split}, {columns:?}: tables differ");
                assert!(
                    n < 10 * BATCH || stored.len() > super::super::spill::SPILL_AT * 3 / 2,
                    "the largest case spills"
                );
            }
        }
    }
}
