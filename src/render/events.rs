//! `events` output: one line per ended socket, or one JSON object per line.

use std::io::{self, Write};

use crate::model::Ended;
use crate::render::Clean;
use crate::units::HumanMs;

/// `2026-11-25T16:10:03.123Z 127.0.0.1:8787 127.0.0.1:40000 closed probes=3 retrans=0/0
/// unacked=0 lost=0 last-send=5.1s last-recv=5.1s last-ack=5.1s keepalive-timeout`: key=value
/// fields for `grep` and `awk`, `-` where the kernel sent no `tcp_info`.
pub fn write_line(out: &mut impl Write, e: &Ended) -> io::Result<()> {
    fn opt(v: Option<impl std::fmt::Display>) -> String {
        v.map_or_else(|| "-".to_owned(), |v| v.to_string())
    }
    let ms = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |v| HumanMs(v).to_string());
    writeln!(
        out,
        "{} {} {} {} probes={} retrans={}/{} unacked={} lost={} last-send={} last-recv={} last-ack={} {}",
        Clean(&e.time),
        e.local,
        e.peer,
        e.state.name(),
        opt(e.probes),
        opt(e.retransmits),
        opt(e.total_retrans),
        opt(e.unacked),
        opt(e.lost),
        ms(e.last_send_ms),
        ms(e.last_recv_ms),
        ms(e.last_ack_ms.map(u64::from)),
        e.cause.name()
    )
}

/// One JSON object on one line.
pub fn write_json(out: &mut impl Write, e: &Ended) -> io::Result<()> {
    super::json::to_writer(&mut *out, e)?;
    writeln!(out)
}

/// What an overrun looks like in each format: the kernel dropped notifications.
pub fn write_overrun(out: &mut impl Write, json: bool, overruns: u64) -> io::Result<()> {
    if json {
        writeln!(out, "{{\"overrun\":{overruns}}}")
    } else {
        writeln!(
            out,
            "overrun #{overruns}: the receive buffer was full and the kernel dropped notifications (it does not say how many)"
        )
    }
}
