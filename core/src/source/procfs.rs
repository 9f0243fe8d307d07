//! The fallback source: `/proc/net/tcp` and `/proc/net/tcp6`, read the way `ss` reads them when
//! netlink is refused. The procfs crate's `TcpNetEntry` drops the timer columns, so the lines
//! are parsed here. Every malformed line is an error naming the file and line: a partly read
//! table would give wrong counts, which is worse than no answer.

use std::io::{self, BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::error::{Error, Result};
use crate::filter::Filter;
use crate::model::{
    Details, Endpoint, Extras, Family, ProcPaths, Socket, StateSet, TcpInfo, TcpState, Timer, TimerKind,
};

/// Reads both tables, handing each socket that passes `filter` to `visit` with its family's
/// accumulator (one made by `make` for each), as the lines are parsed: nothing is kept. Most of
/// the cost is the kernel printing them (`/proc/net/tcp` is text made on every read), so the
/// IPv6 table is read on a second thread while this one reads IPv4. Returns IPv4's and IPv6's.
pub fn scan<T, M, V>(filter: &Filter, extras: Extras, paths: &ProcPaths, make: &M, visit: &V) -> Result<(T, T)>
where
    T: Send,
    M: Fn() -> T + Sync,
    V: Fn(&mut T, Socket) + Sync,
{
    let hz = crate::os::clock_ticks_per_second();
    let (v4, v6) = std::thread::scope(|scope| {
        let v6 = scope.spawn(|| read_family(Family::Inet6, &paths.tcp6, hz, filter, extras, make, visit));
        (read_family(Family::Inet, &paths.tcp, hz, filter, extras, make, visit), v6.join())
    });
    Ok((v4?, v6.unwrap_or_else(|panic| std::panic::resume_unwind(panic))?))
}

fn read_family<T>(
    family: Family,
    path: &Path,
    hz: u64,
    filter: &Filter,
    extras: Extras,
    make: &impl Fn() -> T,
    visit: &impl Fn(&mut T, Socket),
) -> Result<T> {
    let mut acc = make();
    if !filter.wants_family(family) {
        return Ok(acc);
    }
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        // A kernel without IPv6 has no tcp6 table: no IPv6 sockets, as `ss` concludes.
        Err(e) if e.kind() == io::ErrorKind::NotFound && family == Family::Inet6 => return Ok(acc),
        Err(source) => return Err(Error::Read { path: path.to_owned(), source }),
    };
    let reader = BufReader::with_capacity(256 * 1024, file);
    parse_each(reader, path, family, hz, filter, extras, &mut |s| visit(&mut acc, s))?;
    Ok(acc)
}

/// Parses one table (header line first), appending the sockets that pass `filter`.
pub fn parse_table(
    reader: impl BufRead,
    path: &Path,
    family: Family,
    hz: u64,
    filter: &Filter,
    extras: Extras,
    out: &mut Vec<Socket>,
) -> Result<()> {
    parse_each(reader, path, family, hz, filter, extras, &mut |s| out.push(s))
}

/// Parses one table (header line first), handing each socket that passes `filter` to `sink`.
fn parse_each(
    reader: impl BufRead,
    path: &Path,
    family: Family,
    hz: u64,
    filter: &Filter,
    extras: Extras,
    sink: &mut impl FnMut(Socket),
) -> Result<()> {
    // The kernel lists a table's listening sockets before all others (its listening hash, then
    // the established one): a LISTEN-only read stops at the first other line instead of having
    // the kernel format the rest (the listing's pre-read of the listeners would otherwise cost
    // as much as the listing).
    let listeners_only = filter.states == StateSet::of(&[TcpState::Listening]);
    let mut saw_header = false;
    for (index, line) in reader.split(b'\n').enumerate() {
        let lineno = index + 1;
        let line = line.map_err(|source| Error::Read { path: path.to_owned(), source })?;
        let err = |reason: String| Error::Parse { path: path.to_owned(), line: lineno, reason };
        let line = std::str::from_utf8(&line).map_err(|_| err("not valid text".into()))?;
        if !saw_header {
            if !line.trim_start().starts_with("sl") {
                return Err(err("missing the header line ('sl local_address ...')".into()));
            }
            saw_header = true;
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        if listeners_only && line.split_ascii_whitespace().nth(3).is_some_and(|st| st != "0A") {
            break;
        }
        if let Some(socket) = parse_line(line, family, hz, filter, extras).map_err(err)? {
            sink(socket);
        }
    }
    if !saw_header {
        return Err(Error::Parse {
            path: path.to_owned(),
            line: 1,
            reason: "empty file: the kernel always writes a header line".into(),
        });
    }
    Ok(())
}

/// One socket line. Returns `Ok(None)` for a well-formed line the filter excludes; the state and
/// family are checked before the rest is decoded, so excluded lines cost little.
pub fn parse_line(
    line: &str,
    family: Family,
    hz: u64,
    filter: &Filter,
    extras: Extras,
) -> Result<Option<Socket>, String> {
    let mut fields = line.split_ascii_whitespace();
    let mut next = |name: &str| fields.next().ok_or_else(|| format!("missing column '{name}'"));
    let _sl = next("sl")?;
    let local = next("local_address")?;
    let remote = next("rem_address")?;
    let st = next("st")?;
    let queues = next("tx_queue:rx_queue")?;
    let timer = next("tr:tm->when")?;
    let retrnsmt = next("retrnsmt")?;
    let uid = next("uid")?;
    let timeout = next("timeout")?;
    let inode = next("inode")?;

    let code = hex_u8(st, "st")?;
    let state = TcpState::from_code(code).ok_or_else(|| format!("unknown TCP state code {code:#04x}"))?;
    if !filter.states.contains(state) {
        return Ok(None);
    }
    let local = endpoint(local, family, "local_address")?;
    let peer = endpoint(remote, family, "rem_address")?;
    if !filter.matches_ports(local.port(), peer.port()) {
        return Ok(None);
    }
    let (tx, rx) = pair(queues, "tx_queue:rx_queue")?;
    let send_q = hex_u32(tx, "tx_queue")?;
    let recv_q = hex_u32(rx, "rx_queue")?;
    let (tr, when) = pair(timer, "tr:tm->when")?;
    let tr = hex_u8(tr, "tr")?;
    let when = u64::from_str_radix(when, 16).map_err(|_| bad("tm->when", when))?;
    let retransmits = hex_u32(retrnsmt, "retrnsmt")?;
    let uid = uid.parse::<u32>().map_err(|_| bad("uid", uid))?;
    let probes = timeout.parse::<u32>().map_err(|_| bad("timeout", timeout))?;
    let inode = inode.parse::<u64>().map_err(|_| bad("inode", inode))?;
    // Full sockets go on with refcount, address, then `rto` in clock ticks; TIME-WAIT and
    // request sockets stop after the address.
    let rto = fields.nth(2);

    let timer = match TimerKind::from_code(tr) {
        None if tr == 0 => None,
        None => return Err(format!("unknown timer code {tr} in column 'tr'")),
        Some(kind) => {
            let expires_ms = when
                .checked_mul(1000)
                .map(|ms| ms / hz)
                .ok_or_else(|| format!("timer expiry {when:#x} ticks is out of range"))?;
            // The kernel writes icsk_retransmits in `retrnsmt` and icsk_probes_out in `timeout`;
            // sock_diag reports whichever belongs to the timer, and so do we.
            let probes = match kind {
                TimerKind::Retransmit => retransmits,
                TimerKind::Keepalive | TimerKind::Persist => probes,
                TimerKind::TimeWait | TimerKind::DelayedAck => 0,
            };
            Some(Timer { kind, expires_ms, probes })
        }
    };
    Ok(Some(Socket {
        family,
        state,
        local,
        peer,
        recv_q,
        send_q,
        timer,
        uid,
        inode,
        process: None,
        idle: None,
        sockopts: None,
        queued: false,
        cookie: 0,
        details: details(extras, rto, retransmits, hz)?,
    }))
}

/// The fields of `tcp_info` whose value this table prints: `rto` (clock ticks) and the
/// retransmission count. Everything else stays unknown (see [`UNAVAILABLE`]).
fn details(extras: Extras, rto: Option<&str>, retransmits: u32, hz: u64) -> Result<Details, String> {
    let mut details = Details::default();
    if extras.info {
        let rto_ms = match rto {
            Some(t) => {
                let ticks = t.parse::<u64>().map_err(|_| bad("rto", t))?;
                Some(u32::try_from(ticks.saturating_mul(1000) / hz).unwrap_or(u32::MAX))
            }
            None => None,
        };
        let retransmits = Some(u8::try_from(retransmits).unwrap_or(u8::MAX));
        let mut info = TcpInfo::default();
        info.set_rto_ms(rto_ms);
        info.set_retransmits(retransmits);
        details.info = Some(Box::new(info));
    }
    if extras.memory {
        details.memory = Some(Box::default());
    }
    Ok(details)
}

/// What this source cannot give for `-i`, `-m` and the cgroup, named as in the JSON output.
pub const UNAVAILABLE_INFO: &[&str] = &[
    "info.rtt_us",
    "info.rttvar_us",
    "info.backoff",
    "info.total_retrans",
    "info.unacked",
    "info.lost",
    "info.notsent_bytes",
    "info.last_ack_ms",
    "info.snd_wnd",
    "info.rcv_wnd",
    "info.bytes_acked",
    "info.bytes_received",
    "info.delivery_rate_bps",
    "info.busy_ms",
    "info.rwnd_limited_ms",
    "info.sndbuf_limited_ms",
];
/// What procfs cannot give with `-m`.
pub const UNAVAILABLE_MEMORY: &[&str] = &["memory"];

fn bad(column: &str, value: &str) -> String {
    format!("bad value '{value}' in column '{column}'")
}

fn pair<'a>(field: &'a str, column: &str) -> Result<(&'a str, &'a str), String> {
    field.split_once(':').ok_or_else(|| bad(column, field))
}

fn hex_u8(s: &str, column: &str) -> Result<u8, String> {
    u8::from_str_radix(s, 16).map_err(|_| bad(column, s))
}

fn hex_u32(s: &str, column: &str) -> Result<u32, String> {
    u32::from_str_radix(s, 16).map_err(|_| bad(column, s))
}

/// `0100007F:1F90` or a 32-digit IPv6 address. The kernel prints each 32-bit word of the address
/// in host byte order, so each word's native-endian bytes are the address bytes in wire order.
fn endpoint(field: &str, family: Family, column: &str) -> Result<Endpoint, String> {
    let (addr, port) = pair(field, column)?;
    if port.len() != 4 {
        return Err(bad(column, field));
    }
    let port = u16::from_str_radix(port, 16).map_err(|_| bad(column, field))?;
    let words = match (family, addr.len()) {
        (Family::Inet, 8) | (Family::Inet6, 32) => addr.len() / 8,
        _ => return Err(bad(column, field)),
    };
    let mut bytes = [0u8; 16];
    for i in 0..words {
        let word = addr
            .get(i * 8..i * 8 + 8)
            .and_then(|w| u32::from_str_radix(w, 16).ok())
            .ok_or_else(|| bad(column, field))?;
        bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    let ip = match family {
        Family::Inet => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        Family::Inet6 => IpAddr::V6(Ipv6Addr::from(bytes)),
    };
    Ok(Endpoint(SocketAddr::new(ip, port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";

    fn parse(text: &str, family: Family) -> Result<Vec<Socket>> {
        let mut out = Vec::new();
        parse_table(text.as_bytes(), Path::new("tcp"), family, 100, &Filter::default(), Extras::default(), &mut out)?;
        Ok(out)
    }

    #[test]
    fn decodes_a_keepalive_socket() {
        let text = format!(
            "{HEADER}   0: 0100007F:2253 0100007F:A1B2 01 00000010:00000002 02:000003E8 00000000  1000        2 123456 1 0000000000000000 20 4 30 10 -1\n"
        );
        let sockets = parse(&text, Family::Inet).unwrap();
        let s = &sockets[0];
        assert_eq!(s.local.to_string(), "127.0.0.1:8787");
        assert_eq!(s.peer.to_string(), "127.0.0.1:41394");
        assert_eq!(s.state, TcpState::Established);
        assert_eq!((s.send_q, s.recv_q), (16, 2));
        assert_eq!(s.timer, Some(Timer { kind: TimerKind::Keepalive, expires_ms: 10_000, probes: 2 }));
        assert_eq!((s.uid, s.inode), (1000, 123456));
    }

    /// A LISTEN-only read ends at the first line of another state (the kernel lists its
    /// listeners first), so what follows is neither parsed nor judged; any other read parses
    /// every line.
    #[test]
    fn a_listeners_only_read_stops_after_the_listeners() {
        let text = format!(
            "{HEADER}   0: 0100007F:2253 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:2253 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0000000000000000 20 4 30 10 -1\n   2: not a socket line\n"
        );
        let listeners = Filter { states: StateSet::of(&[TcpState::Listening]), ..Filter::default() };
        let mut out = Vec::new();
        parse_table(text.as_bytes(), Path::new("tcp"), Family::Inet, 100, &listeners, Extras::default(), &mut out)
            .unwrap();
        assert_eq!(out.iter().map(|s| s.inode).collect::<Vec<_>>(), [111]);
        let all = parse(&text, Family::Inet);
        assert!(matches!(all, Err(Error::Parse { line: 4, .. })), "{all:?}");
    }

    #[test]
    fn decodes_ipv6_and_time_wait_lines() {
        let text = format!(
            "{HEADER}   0: 00000000000000000000000001000000:1F90 00000000000000000000000001000000:C350 06 00000000:00000000 03:00000BB8 00000000     0        0 0 3 0000000000000000\n"
        );
        let s = &parse(&text, Family::Inet6).unwrap()[0];
        assert_eq!(s.local.to_string(), "[::1]:8080");
        assert_eq!(s.state, TcpState::TimeWait);
        assert_eq!(s.timer, Some(Timer { kind: TimerKind::TimeWait, expires_ms: 30_000, probes: 0 }));
        assert_eq!(s.inode, 0);
    }

    #[test]
    fn bad_lines_are_errors_with_file_and_line() {
        let cases = [
            ("   0: 0100007F:2253 0100007F:A1B2 01", "missing column 'tx_queue:rx_queue'"),
            ("   0: 0100007G:2253 0100007F:A1B2 01 0:0 00:0 0 0 0 1", "local_address"),
            ("   0: 0100007F:2253 0100007F:A1B2 1F 0:0 00:0 0 0 0 1", "unknown TCP state code"),
            ("   0: 0100007F:2253 0100007F:A1B2 01 1FFFFFFFF:0 00:0 0 0 0 1", "tx_queue"),
            ("   0: 0100007F:2253 0100007F:A1B2 01 0:0 02:FFFFFFFFFFFFFFFF 0 0 0 1", "out of range"),
            ("   0: 0100007F:2253 0100007F:A1B2 01 0:0 09:0 0 0 0 1", "unknown timer code 9"),
            ("   0: 0100007F:2253 0100007F:A1B2 01 0:0 00:0 0 -5 0 1", "uid"),
            ("   0: 0100007F:2253 0100007F:A1B2 01 0:0 00:0 0 0 0 99999999999999999999999", "inode"),
        ];
        for (line, needle) in cases {
            let err = parse(&format!("{HEADER}{line}\n"), Family::Inet).unwrap_err().to_string();
            assert!(err.starts_with("tcp:2: "), "{err}");
            assert!(err.contains(needle), "{err} should mention {needle}");
        }
        let err = parse("", Family::Inet).unwrap_err().to_string();
        assert!(err.contains("tcp:1: empty file"), "{err}");
        let err = parse("garbage\n", Family::Inet).unwrap_err().to_string();
        assert!(err.contains("header"), "{err}");
        // An IPv4-length address in the IPv6 table is not silently read as something else.
        let line = "   0: 0100007F:2253 0100007F:A1B2 01 0:0 00:0 0 0 0 1";
        assert!(parse(&format!("{HEADER}{line}\n"), Family::Inet6).is_err());
    }

    #[test]
    fn filter_skips_lines_before_decoding_them_fully() {
        let text = format!(
            "{HEADER}   0: 0100007F:2253 00000000:0000 0A 00000000:00000080 00:00000000 00000000     0        0 77 1\n   1: 0100007F:2253 0100007F:A1B2 08 0:0 00:0 0 0 0 78\n"
        );
        let filter = Filter { states: crate::model::StateSet::of(&[TcpState::CloseWait]), ..Filter::default() };
        let mut out = Vec::new();
        parse_table(text.as_bytes(), Path::new("tcp"), Family::Inet, 100, &filter, Extras::default(), &mut out)
            .unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].inode, 78);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any bytes at all: a list of sockets or an error naming the file, never a panic.
        #[test]
        fn any_bytes_parse_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let mut out = Vec::new();
            let r = parse_table(&bytes[..], Path::new("tcp"), Family::Inet, 100, &Filter::default(), Extras::default(), &mut out);
            if let Err(e) = r {
                prop_assert!(e.to_string().starts_with("tcp:"), "{}", e);
            }
        }

        /// Lines shaped like the kernel's, with any column replaced by noise.
        #[test]
        fn near_miss_lines_fail_cleanly(cols in proptest::collection::vec("[0-9A-Fa-f:x -]{0,40}", 0..14)) {
            let line = cols.join(" ");
            let _ = parse_line(&line, Family::Inet6, 100, &Filter::default(), Extras::default());
            let _ = parse_line(&line, Family::Inet, 250, &Filter::default(), Extras::default());
        }
    }
}
