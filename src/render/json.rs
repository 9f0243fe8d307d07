//! `--format json`: the documented objects (GUIDE.md, "JSON output"). Field names are a contract.

use std::io::{self, Write};

use serde::Serialize;

use crate::analysis::{Group, GroupBy, Summary};
use crate::diagnose::Finding;
use crate::filter::{Filter, PortRange};
use crate::gate::RuleResult;
use crate::model::{Attribution, EndedFeed, Socket, Source, TcpExtChange, TcpState};
use crate::render::Report;
use crate::units::timestamp;

/// serde_json's formatter `F`, except that every [`hidden`](super::hidden) character in a string
/// (C1 controls, DEL, bidi overrides, zero-width characters; serde_json escapes only C0) is
/// written as a `\uXXXX` escape: the document decodes to the same strings, and a terminal or log
/// viewer that shows it raw sees no format character. The forwarding methods are `#[inline]`, as
/// serde_json's own are: called once per key and value, a call each measurably slowed the listing.
struct Safe<F>(F);

impl<F: serde_json::ser::Formatter> serde_json::ser::Formatter for Safe<F> {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, fragment: &str) -> io::Result<()> {
        // Printable ASCII, nearly every key and value: nothing to look for char by char (this
        // check took a quarter of `-i --format json`'s time).
        if fragment.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return w.write_all(fragment.as_bytes());
        }
        let mut start = 0;
        for (i, c) in fragment.char_indices().filter(|&(_, c)| super::hidden(c)) {
            w.write_all(&fragment.as_bytes()[start..i])?;
            for unit in c.encode_utf16(&mut [0; 2]) {
                write!(w, "\\u{unit:04x}")?;
            }
            start = i + c.len_utf8();
        }
        w.write_all(&fragment.as_bytes()[start..])
    }
    #[inline]
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_array(w)
    }
    #[inline]
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array(w)
    }
    #[inline]
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_array_value(w, first)
    }
    #[inline]
    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_array_value(w)
    }
    #[inline]
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object(w)
    }
    #[inline]
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object(w)
    }
    #[inline]
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.0.begin_object_key(w, first)
    }
    #[inline]
    fn end_object_key<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_key(w)
    }
    #[inline]
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.begin_object_value(w)
    }
    #[inline]
    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.0.end_object_value(w)
    }
}

/// `value` as compact JSON on `w`, every hidden character escaped (see `Safe`).
pub fn to_writer<W: Write, T: ?Sized + Serialize>(w: W, value: &T) -> serde_json::Result<()> {
    value.serialize(&mut serde_json::Serializer::with_formatter(w, Safe(serde_json::ser::CompactFormatter)))
}

/// `value` as pretty JSON (two-space indent) on `w`, every hidden character escaped.
pub fn to_writer_pretty<W: Write, T: ?Sized + Serialize>(w: W, value: &T) -> serde_json::Result<()> {
    let pretty = Safe(serde_json::ser::PrettyFormatter::new());
    value.serialize(&mut serde_json::Serializer::with_formatter(w, pretty))
}

/// [`to_writer`] into a string.
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<String> {
    let mut out = Vec::new();
    to_writer(&mut out, value)?;
    // The serializer writes only UTF-8.
    String::from_utf8(out).map_err(serde::ser::Error::custom)
}

/// The fields every JSON document starts with: where, when, what was selected, what it adds up to.
#[derive(Serialize)]
struct Head<'a> {
    source: Source,
    taken_at: String,
    filters: FilterEcho<'a>,
    summary: &'a Summary,
    /// Fields asked for (`-i`, `-m`, cgroup) that the source cannot give: `null` in every socket.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    unavailable: &'a [&'static str],
    /// Present with `-p`: how many sockets stayed without an owner, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    attribution: Option<Attribution>,
    #[serde(serialize_with = "super::findings::serialize")]
    findings: &'a [Finding],
    /// With `--watch`: the host's TcpExt counters' change since the last report.
    #[serde(skip_serializing_if = "Option::is_none")]
    tcpext: Option<TcpExtChange>,
    /// With `-O`: the kernel cures that cover a listening port shown.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    cures: &'a [crate::cure::Attached],
    /// With `--all-netns`: namespaces listed but not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    namespaces_skipped: Option<usize>,
    /// With `--by`: what the groups are split by, and the groups.
    #[serde(skip_serializing_if = "Option::is_none")]
    grouped_by: Option<GroupBy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    groups: Option<&'a [Group]>,
}

impl<'a> Head<'a> {
    fn of(report: &'a Report) -> Head<'a> {
        Head {
            source: report.snapshot.source,
            taken_at: timestamp(report.snapshot.taken_at),
            filters: FilterEcho::of(report.filter, report.netns),
            summary: &report.summary,
            unavailable: &report.snapshot.unavailable,
            attribution: report.attribution,
            findings: &report.findings,
            tcpext: report.tcpext,
            cures: &report.cures,
            namespaces_skipped: report.namespaces_skipped,
            grouped_by: report.groups.as_ref().map(|(by, _)| *by),
            groups: report.groups.as_ref().map(|(_, g)| g.as_slice()),
        }
    }
}

#[derive(Serialize)]
struct SocketsDoc<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    sockets: &'a [Socket],
}

#[derive(Serialize)]
struct CheckDoc<'a> {
    #[serde(flatten)]
    head: Head<'a>,
    ok: bool,
    #[serde(serialize_with = "super::gate::serialize")]
    rules: &'a [RuleResult],
}

fn write_doc(out: &mut impl Write, doc: &impl Serialize) -> io::Result<()> {
    to_writer_pretty(&mut *out, doc)?;
    writeln!(out)
}

/// Sockets each thread serializes per round: rounds keep memory bounded (about a megabyte per
/// thread) whatever the number of sockets.
const BATCH: usize = 2048;

/// `sockets --format json`: the same bytes as `serde_json::to_writer_pretty` of the whole
/// document, but the socket list (nearly all of the work) is serialized on every core: in
/// rounds, each thread a batch of sockets, indented to its place in the document, the batches
/// written in order.
pub fn write(out: &mut impl Write, report: &Report) -> io::Result<()> {
    let mut head = Vec::new();
    to_writer_pretty(&mut head, &Head::of(report))?;
    // `{ ... \n}`: reopen the object to add the last field.
    let open = head.strip_suffix(b"\n}").ok_or_else(|| io::Error::other("unexpected JSON head"))?;
    out.write_all(open)?;
    let sockets = &report.snapshot.sockets;
    if sockets.is_empty() {
        out.write_all(b",\n  \"sockets\": []\n}\n")?;
        return Ok(());
    }
    out.write_all(b",\n  \"sockets\": [\n")?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let mut first = true;
    for round in sockets.chunks(threads * BATCH) {
        let parts: Vec<io::Result<Vec<u8>>> = if round.len() <= BATCH {
            vec![indented(round)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = round.chunks(BATCH).map(|c| scope.spawn(move || indented(c))).collect();
                handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
            })
        };
        for part in parts {
            if !first {
                out.write_all(b",\n")?;
            }
            first = false;
            out.write_all(&part?)?;
        }
    }
    out.write_all(b"\n  ]\n}\n")
}

/// Sockets as pretty JSON array elements at depth 2 (four spaces), separated by `,\n`.
fn indented(sockets: &[Socket]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(sockets.len() * 512);
    super::spill::Render::render(&Elements, sockets, &mut out)?;
    Ok(out)
}

/// One socket as a pretty array element at depth 2, appended to `out`: the bytes of
/// [`to_writer_pretty`] with every line indented by two more levels, written so directly.
fn element(out: &mut Vec<u8>, socket: &Socket) -> io::Result<()> {
    out.extend_from_slice(b"    ");
    let pretty = Safe(Pretty { depth: 2, has_value: false });
    Ok(socket.serialize(&mut serde_json::Serializer::with_formatter(out, pretty))?)
}

/// serde_json's `PrettyFormatter` (two-space indent) starting at a given depth, for values
/// nested in a document written piece by piece; its output at depth 0 is serde_json's.
struct Pretty {
    depth: usize,
    has_value: bool,
}

impl Pretty {
    fn open<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth += 1;
        self.has_value = false;
        w.write_all(bracket)
    }

    /// A container with values closes on a line of its own.
    fn close<W: ?Sized + Write>(&mut self, w: &mut W, bracket: &[u8]) -> io::Result<()> {
        self.depth -= 1;
        if self.has_value {
            w.write_all(b"\n")?;
            self.indent(w)?;
        }
        w.write_all(bracket)
    }

    fn indent<W: ?Sized + Write>(&self, w: &mut W) -> io::Result<()> {
        const SPACES: &[u8; 64] = b"                                                                ";
        let mut left = 2 * self.depth;
        while left > 0 {
            let n = left.min(SPACES.len());
            w.write_all(&SPACES[..n])?;
            left -= n;
        }
        Ok(())
    }
}

impl serde_json::ser::Formatter for Pretty {
    #[inline]
    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"[")
    }
    #[inline]
    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"]")
    }
    #[inline]
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
    #[inline]
    fn end_array_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    #[inline]
    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.open(w, b"{")
    }
    #[inline]
    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.close(w, b"}")
    }
    #[inline]
    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        self.indent(w)
    }
    #[inline]
    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
    #[inline]
    fn end_object_value<W: ?Sized + Write>(&mut self, _w: &mut W) -> io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// `sockets --format json`'s socket list as the sockets arrive (see [`super::spill`]): the
/// same bytes as [`write`], in memory that does not grow with the host.
pub type Listing = super::spill::Spill<Elements>;

/// Sockets as pretty JSON array elements at depth 2.
#[derive(Clone, Copy, Default)]
pub struct Elements;

impl super::spill::Render for Elements {
    type Extra = ();
    const SEPARATOR: &'static [u8] = b",\n";
    fn render(&self, batch: &[Socket], out: &mut Vec<u8>) -> io::Result<()> {
        for (i, s) in batch.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",\n");
            }
            element(out, s)?;
        }
        Ok(())
    }
    fn combine(_: &mut (), _: ()) {}
}

/// Writes the document whose socket list `listing` holds, `report` giving the head.
pub fn write_listing(out: &mut impl Write, report: &Report, listing: Listing) -> io::Result<()> {
    let (parts, ()) = listing.finish()?;
    let mut head = Vec::new();
    to_writer_pretty(&mut head, &Head::of(report))?;
    let open = head.strip_suffix(b"\n}").ok_or_else(|| io::Error::other("unexpected JSON head"))?;
    out.write_all(open)?;
    if parts.iter().all(|p| p.count == 0) {
        out.write_all(b",\n  \"sockets\": []\n}\n")?;
        return Ok(());
    }
    out.write_all(b",\n  \"sockets\": [\n")?;
    let mut first = true;
    for part in parts.into_iter().filter(|p| p.count > 0) {
        if !first {
            out.write_all(b",\n")?;
        }
        first = false;
        part.copy_to(out)?;
    }
    out.write_all(b"\n  ]\n}\n")
}

/// `sockets --format json --summary`: the head alone, so the source is still named.
pub fn write_summary(out: &mut impl Write, report: &Report) -> io::Result<()> {
    write_doc(out, &Head::of(report))
}

/// The sockets document on one line (for an SSE `data:` field or an HTTP body).
pub fn to_compact(report: &Report) -> serde_json::Result<String> {
    to_string(&SocketsDoc { head: Head::of(report), sockets: &report.snapshot.sockets })
}

/// One page of a sockets document: the summary and findings of all the sockets, and the
/// sockets `page` selects (already ordered by the caller), with where the page is.
pub fn to_compact_page(report: &Report, sockets: &[&Socket], page: Page) -> serde_json::Result<String> {
    #[derive(Serialize)]
    struct Paged<'a> {
        #[serde(flatten)]
        head: Head<'a>,
        page: Page,
        sockets: &'a [&'a Socket],
    }
    to_string(&Paged { head: Head::of(report), page, sockets })
}

/// Where a page of sockets is: `offset` into the list in urgency order, at most `limit`, of
/// `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Page {
    /// The first row, in urgency order.
    pub offset: usize,
    /// At most this many rows.
    pub limit: usize,
    /// Rows in all.
    pub total: usize,
}

/// The most bytes of one SSE event `serve` sends, framing (`event: snapshot`, `data: `, the
/// blank line) included: small enough for a browser tab to take every period whatever the host
/// holds.
pub const STREAM_EVENT_BYTES: usize = 64 * 1024;

/// The name of the SSE event that carries a stream document (`event: snapshot`).
pub const STREAM_EVENT: &str = "snapshot";

/// The bytes an SSE frame adds around its data: `event: ` and the name, `\ndata: `, and `\n\n`.
pub const STREAM_FRAMING: usize = "event: ".len() + STREAM_EVENT.len() + "\ndata: ".len() + "\n\n".len();

/// What each of a stream document's `"rows"` holds, in order.
pub const STREAM_COLUMNS: [&str; 10] =
    ["state", "recv_q", "send_q", "local", "peer", "timer", "expires_ms", "probes", "last_recv_ms", "last_send_ms"];

/// The document `serve` streams for its watched ports: the head (summary and findings of every
/// watched socket, `total` of them), `"ended"` (what ended on those ports), and at most
/// `max_rows` of `urgent` (the most urgent sockets, most urgent first: `analysis::Urgent`), as rows of [`STREAM_COLUMNS`] — ~90 bytes a socket against ~240 as an
/// object, so 500 fit. Rows stop early when the next would take the document past `budget`
/// bytes; `"page": {"offset": 0, "limit", "total", "shown"}` says how many are in it of how many.
pub fn to_stream(
    report: &Report,
    ended: &EndedFeed,
    (urgent, total): (&[Socket], usize),
    max_rows: usize,
    budget: usize,
) -> serde_json::Result<String> {
    use serde::ser::Error;
    #[derive(Serialize)]
    struct Streamed<'a> {
        #[serde(flatten)]
        head: Head<'a>,
        ended: &'a EndedFeed,
    }
    let head = to_string(&Streamed { head: Head::of(report), ended })?;
    let open = head.strip_suffix('}').ok_or_else(|| serde_json::Error::custom("unexpected JSON head"))?;
    let columns = to_string(&STREAM_COLUMNS)?;
    let tail = |shown: usize| {
        format!(
            ",\"page\":{{\"offset\":0,\"limit\":{max_rows},\"total\":{total},\"shown\":{shown}}},\"columns\":{columns},\"rows\":["
        )
    };
    // The most the tail can take: `shown` is at most `max_rows` digits wide.
    let fixed = open.len() + tail(max_rows).len() + "]}".len();
    let mut rows = String::new();
    let mut shown = 0;
    for s in urgent.iter().take(max_rows) {
        let row = to_string(&(
            s.state,
            s.recv_q,
            s.send_q,
            s.local,
            s.peer,
            s.timer.map(|t| t.kind),
            s.timer.map(|t| t.expires_ms),
            s.timer.map(|t| t.probes),
            s.idle.map(|i| i.last_recv_ms),
            s.idle.map(|i| i.last_send_ms),
        ))?;
        let comma = usize::from(shown > 0);
        if fixed + rows.len() + comma + row.len() > budget {
            break;
        }
        if comma == 1 {
            rows.push(',');
        }
        rows.push_str(&row);
        shown += 1;
    }
    let mut out = String::with_capacity(fixed + rows.len());
    out.push_str(open);
    out.push_str(&tail(shown));
    out.push_str(&rows);
    out.push_str("]}");
    Ok(out)
}

/// `check --format json`: the same head, the verdict and each rule's measurement.
pub fn write_check(out: &mut impl Write, report: &Report, rules: &[RuleResult]) -> io::Result<()> {
    write_doc(out, &CheckDoc { head: Head::of(report), ok: rules.iter().all(|r| r.ok), rules })
}

/// The filter as it is echoed in JSON output (`"filters": {...}`).
#[derive(Debug, Serialize)]
struct FilterEcho<'a> {
    states: Vec<&'static str>,
    families: Vec<&'static str>,
    ports: &'a [u16],
    sport: Option<PortRange>,
    dport: Option<PortRange>,
    pid: Option<u32>,
    process: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup: Option<&'a str>,
    netns: Option<&'a str>,
}

impl<'a> FilterEcho<'a> {
    /// `filter` as the JSON output echoes it.
    fn of(filter: &'a Filter, netns: Option<&'a str>) -> FilterEcho<'a> {
        let mut families = Vec::new();
        if filter.inet {
            families.push("inet");
        }
        if filter.inet6 {
            families.push("inet6");
        }
        FilterEcho {
            states: filter.states.iter().map(TcpState::name).collect(),
            families,
            ports: &filter.ports,
            sport: filter.sport,
            dport: filter.dport,
            pid: filter.pid,
            process: filter.process.as_deref(),
            cgroup: filter.cgroup.as_deref(),
            netns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Report;
    use crate::diagnose::Facts;
    use crate::filter::Filter;
    use crate::model::*;

    fn sockets(n: usize) -> Vec<Socket> {
        (0..n)
            .map(|i| Socket {
                send_q: i as u32,
                inode: i as u64,
                idle: Some(Idle { last_recv_ms: 1, last_send_ms: 2 }),
                details: Details { info: Some(Box::default()), ..Details::default() },
                ..Socket::new(
                    TcpState::Established,
                    "127.0.0.1:8787".parse().unwrap(),
                    format!("127.0.0.1:{}", 1000 + i % 60000).parse().unwrap(),
                )
            })
            .collect()
    }

    fn snapshot(sockets: Vec<Socket>) -> Snapshot {
        Snapshot {
            source: Source::Netlink,
            taken_at: std::time::UNIX_EPOCH,
            sockets,
            unavailable: Vec::new(),
            processes: Vec::new(),
            queues: Vec::new(),
        }
    }

    /// The stream document holds at most `max_rows` rows, the most urgent first, and never
    /// passes its byte budget: rows stop early and `page.shown` says how many there are.
    #[test]
    fn stream_is_bounded_in_rows_and_bytes() {
        let mut list = sockets(20_000);
        // Every 100th an IPv6 CLOSE-WAIT with the longest address there is, idle for i ms.
        for (i, s) in list.iter_mut().enumerate().filter(|(i, _)| i % 100 == 7) {
            s.state = TcpState::CloseWait;
            s.peer = Endpoint("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe]:65535".parse().unwrap());
            s.idle = Some(Idle { last_recv_ms: i as u64, last_send_ms: 0 });
        }
        let snapshot = snapshot(list);
        let filter = Filter::default();
        let report = Report::new(&snapshot, &filter, None, None, &Facts::default());
        let ended = EndedFeed::new(&[8787]);
        let budget = STREAM_EVENT_BYTES - STREAM_FRAMING;
        for (max_rows, budget) in [(500, budget), (0, budget), (20_000, budget), (500, 3000)] {
            let urgent = crate::tally::Tally::over(crate::analysis::Urgent::new(max_rows), &snapshot.sockets);
            let total = urgent.seen();
            let text = to_stream(&report, &ended, (&urgent.sockets(), total), max_rows, budget).unwrap();
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let rows = v["rows"].as_array().unwrap();
            assert!(text.len() <= budget, "{max_rows} rows: {} bytes over {budget}", text.len());
            assert!(rows.len() <= max_rows);
            assert_eq!(v["page"]["shown"], rows.len());
            assert_eq!(v["page"]["total"], 20_000);
            assert_eq!(v["page"]["limit"], max_rows);
            assert_eq!(v["summary"]["total"], 20_000, "the summary covers every socket");
            assert_eq!(v["columns"].as_array().unwrap().len(), STREAM_COLUMNS.len());
            if max_rows == 500 && budget > 3000 {
                assert_eq!(rows.len(), 500, "500 rows fit in 64 KiB");
            }
            if max_rows > 0 {
                assert!(!rows.is_empty() && rows.len() < 20_000);
                // CLOSE-WAIT first, longest idle first: the last of them, idle 19907 ms.
                assert_eq!(rows[0][0], "close-wait");
                assert_eq!(rows[0][8], 19_907);
                assert!(rows.iter().all(|r| r.as_array().unwrap().len() == STREAM_COLUMNS.len()));
            }
        }
    }

    /// The parallel writer gives exactly the bytes serde_json writes for the whole document,
    /// on one slice and on many.
    #[test]
    fn sliced_output_equals_serde_json() {
        for n in [0, 1, 3, BATCH, 5 * BATCH + 7] {
            let snapshot = snapshot(sockets(n));
            let filter = Filter::default();
            let report = Report::new(&snapshot, &filter, None, None, &Facts::default());
            let mut ours = Vec::new();
            write(&mut ours, &report).unwrap();
            let mut theirs = Vec::new();
            write_doc(&mut theirs, &SocketsDoc { head: Head::of(&report), sockets: &snapshot.sockets }).unwrap();
            assert!(ours == theirs, "{n} sockets: outputs differ");
        }
    }

    /// The listing serialized as the sockets come, in two parts (IPv4 and IPv6) and spilled to
    /// a file past `SPILL_AT`, gives the bytes of the stored listing.
    #[test]
    fn streamed_listing_equals_the_stored_one() {
        use crate::tally::Tally as _;
        for (n, split) in [(0, 0), (1, 0), (1, 1), (3, 2), (512, 7), (5 * BATCH + 7, 4 * BATCH)] {
            let snapshot = snapshot(sockets(n));
            let filter = Filter::default();
            let report = Report::new(&snapshot, &filter, None, None, &Facts::default());
            let mut stored = Vec::new();
            write(&mut stored, &report).unwrap();
            let (v4, v6) = snapshot.sockets.split_at(split);
            let mut listing = Listing::new(Elements).over(v4);
            listing.merge(Listing::new(Elements).over(v6));
            let mut streamed = Vec::new();
            write_listing(&mut streamed, &report, listing).unwrap();
            assert!(streamed == stored, "{n} sockets split at {split}: outputs differ");
            assert!(n < 5 * BATCH || stored.len() > 2 * super::super::spill::SPILL_AT, "the largest case spills");
        }
    }
}
