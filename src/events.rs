//! `webui-doctor events`: every TCP socket that ends, as the kernel announces it on sock_diag's
//! destroy multicast groups (what `ss -E` reads), with the cause its final `tcp_info` shows.
//!
//! What the final `tcp_info` can tell apart, measured on Linux 6.18 (GUIDE.md, "webui-doctor events"):
//! a socket killed by keepalive reports unanswered probes and no retransmissions; one killed by
//! `TCP_USER_TIMEOUT` or `tcp_retries2` with data in flight reports retransmissions; one closed
//! by the peer's FIN and one closed by its RST look the same (nothing outstanding), so both are
//! `closed`. A cause the data does not support is never guessed: no `tcp_info`, `unknown`.

use std::time::{Duration, Instant, SystemTime};

use crate::error::Result;
use crate::filter::Filter;
use crate::model::{EndCause, Ended, Socket};
use crate::units::timestamp;

/// The cause a socket's final counters show.
pub fn cause(probes: Option<u8>, retransmits: Option<u8>) -> EndCause {
    match (probes, retransmits) {
        (_, Some(r)) if r > 0 => EndCause::RetransmitTimeout,
        (Some(p), Some(0)) if p > 0 => EndCause::KeepaliveTimeout,
        (Some(0), Some(0)) => EndCause::Closed,
        _ => EndCause::Unknown,
    }
}

/// One ended socket, as reported: its addresses and final state, the counters, the cause.
pub fn ended(socket: &Socket, probes: Option<u8>, at: SystemTime) -> Ended {
    let info = socket.details.info.as_deref().copied().unwrap_or_default();
    // A listener, or a socket that sent a reset (the kernel clears its addresses and ACK state
    // on an abortive close), has no peer: its send/receive/ACK ages count from boot, not from
    // any data, so they are left out.
    let connected = socket.peer.port() != 0;
    let age = |v: Option<u64>| v.filter(|_| connected);
    Ended {
        time: timestamp(at),
        family: socket.family,
        local: socket.local,
        peer: socket.peer,
        state: socket.state,
        probes,
        retransmits: info.retransmits(),
        total_retrans: info.total_retrans(),
        unacked: info.unacked(),
        lost: info.lost(),
        last_send_ms: age(socket.idle.map(|i| i.last_send_ms)),
        last_recv_ms: age(socket.idle.map(|i| i.last_recv_ms)),
        last_ack_ms: info.last_ack_ms().filter(|_| connected),
        cause: cause(probes, info.retransmits()),
    }
}

/// When `events` stops on its own (it always stops on SIGINT or SIGTERM).
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// After this many ended sockets.
    pub count: Option<u64>,
    /// After this long.
    pub duration: Option<Duration>,
}

/// What the feed gave to the caller.
#[derive(Debug)]
pub enum Event {
    /// A socket ended.
    Ended(Ended),
    /// The receive buffer overran and the kernel dropped notifications; the running count of
    /// overruns (the kernel does not say how many notifications each one lost).
    Overrun(u64),
    /// A notification from the kernel could not be decoded and was skipped; the running count.
    Malformed(u64),
}

/// How a run went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    /// Sockets reported ended.
    pub ended: u64,
    /// Times the receive buffer overran.
    pub overruns: u64,
    /// Kernel notifications that could not be decoded (skipped).
    pub malformed: u64,
    /// Messages from processes rather than the kernel (ignored: anyone may send one).
    pub foreign: u64,
}

/// Receive buffer of the subscription: about 12,000 notifications of a socket with `tcp_info`
/// (each takes ~1.3 KiB of buffer), several seconds of 5,000 ends per second if the reader
/// stalls.
pub const BUFFER: usize = 16 << 20;

/// How long one wait lasts, so a signal or the duration is noticed promptly.
const WAIT: Duration = Duration::from_millis(200);

/// Subscribes and hands every ended socket `filter` selects to `each`, until a limit, a
/// termination signal, or an error (`each`'s included, such as a closed stdout).
#[cfg(target_os = "linux")]
pub fn run(
    filter: &Filter,
    limits: Limits,
    stop: impl Fn() -> bool,
    mut each: impl FnMut(Event) -> std::io::Result<()>,
) -> Result<Totals> {
    use crate::error::Error;
    use crate::source::netlink::{DestroyFeed, Received};

    let mut feed = DestroyFeed::open(filter, BUFFER, WAIT)?;
    let deadline = limits.duration.map(|d| Instant::now() + d);
    let mut totals = Totals::default();
    let mut batch = Vec::new();
    loop {
        if stop() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(totals);
        }
        match feed.recv(filter, &mut batch)? {
            Received::Idle => continue,
            Received::Overrun => {
                totals.overruns += 1;
                each(Event::Overrun(totals.overruns)).map_err(Error::Output)?;
            }
            Received::Foreign => totals.foreign += 1,
            Received::Malformed(_) => {
                totals.malformed += 1;
                each(Event::Malformed(totals.malformed)).map_err(Error::Output)?;
            }
            Received::Ended => {
                let now = SystemTime::now();
                for (socket, probes) in batch.drain(..) {
                    totals.ended += 1;
                    each(Event::Ended(ended(&socket, probes, now))).map_err(Error::Output)?;
                    if limits.count.is_some_and(|n| totals.ended >= n) {
                        return Ok(totals);
                    }
                }
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub fn run(_: &Filter, _: Limits, _: impl Fn() -> bool, _: impl FnMut(Event) -> std::io::Result<()>) -> Result<Totals> {
    let _ = (Instant::now(), SystemTime::now());
    Err(crate::error::Error::Unsupported("events"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_follow_the_final_counters() {
        // Measured: keepalive 2/1/3 kill -> probes 3, retransmits 0.
        assert_eq!(cause(Some(3), Some(0)), EndCause::KeepaliveTimeout);
        // Measured: TCP_USER_TIMEOUT with data in flight -> retransmits 4, probes 0.
        assert_eq!(cause(Some(0), Some(4)), EndCause::RetransmitTimeout);
        assert_eq!(cause(Some(2), Some(1)), EndCause::RetransmitTimeout);
        // FIN and RST: nothing outstanding.
        assert_eq!(cause(Some(0), Some(0)), EndCause::Closed);
        // No tcp_info: no guess.
        assert_eq!(cause(None, None), EndCause::Unknown);
        assert_eq!(cause(Some(1), None), EndCause::Unknown);
    }
}
