//! How long a dead peer can hold a connection: the one rule that `verify`'s `max-detect`, the
//! findings (`no-user-timeout`, `keepalive-sysctl-slow`), `check --max-detect` and `fix`'s report
//! all use, so they never disagree.
//!
//! Two cases matter. An *idle* connection is ended by keepalive: `TCP_KEEPIDLE` +
//! `TCP_KEEPINTVL` × `TCP_KEEPCNT` (the socket's own values, or the namespace's sysctls where it
//! set none: `getsockopt` reports those), or, with `TCP_USER_TIMEOUT`, at the first probe slot past
//! the user timeout. A connection with *data in flight* (a heartbeat the peer never acknowledges)
//! sends no keepalive probe at all: it ends at `TCP_USER_TIMEOUT`, or, without one, when the
//! kernel gives up retransmitting after `net.ipv4.tcp_retries2` backed-off tries (about 15 min at
//! the default 15).

use serde::Serialize;

use crate::model::{KeepaliveSysctls, SockOpts};

/// The kernel's minimum and maximum retransmission timeout (`TCP_RTO_MIN`, `TCP_RTO_MAX`).
const RTO_MIN_MS: u64 = 200;
const RTO_MAX_MS: u64 = 120_000;

/// `net.ipv4.tcp_retries2`'s default.
pub const DEFAULT_RETRIES2: u32 = 15;

/// How long the kernel retransmits before it gives up on a connection with unacknowledged data,
/// for `tcp_retries2` tries: the kernel's own model (`tcp_model_timeout`), at the minimum RTO
/// (a longer round trip only makes it longer). 924.6 s for the default 15.
pub fn retries_ms(retries2: u32) -> u64 {
    // Doublings until the RTO reaches its cap: ilog2(120 s / 200 ms) = 9.
    let thresh = (RTO_MAX_MS / RTO_MIN_MS).ilog2();
    if retries2 <= thresh {
        ((2u64 << retries2) - 1) * RTO_MIN_MS
    } else {
        ((2u64 << thresh) - 1) * RTO_MIN_MS + u64::from(retries2 - thresh) * RTO_MAX_MS
    }
}

/// Keepalive alone: idle, then `count` unanswered probes `interval` apart, in milliseconds.
pub fn keepalive_ms(idle_s: u64, interval_s: u64, count: u64) -> u64 {
    idle_s.saturating_add(interval_s.saturating_mul(count)).saturating_mul(1000)
}

impl KeepaliveSysctls {
    /// How long `SO_KEEPALIVE` alone takes to drop a silent peer with these defaults.
    pub fn detect_ms(&self) -> u64 {
        keepalive_ms(self.time_s, self.intvl_s, self.probes)
    }
}

/// How long a dead peer goes unnoticed on one socket, idle and with data in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Detect {
    /// An idle connection: keepalive probes (bounded by the user timeout). `None`: never
    /// (keepalive off).
    pub idle_ms: Option<u64>,
    /// Data in flight: the user timeout. `None`: no `TCP_USER_TIMEOUT`, so `retries_ms` decides.
    pub busy_ms: Option<u64>,
    /// Data in flight without a user timeout: what `net.ipv4.tcp_retries2` gives.
    pub retries_ms: u64,
}

impl Detect {
    /// The bound for a socket carrying `o`, with this namespace's `tcp_retries2`.
    pub fn of(o: &SockOpts, retries2: u32) -> Detect {
        let (idle, intvl, ut) =
            (u64::from(o.keepidle_s) * 1000, u64::from(o.keepintvl_s) * 1000, u64::from(o.user_timeout_ms));
        let idle_ms = o.so_keepalive.then(|| {
            if ut == 0 {
                keepalive_ms(o.keepidle_s.into(), o.keepintvl_s.into(), o.keepcnt.into())
            } else {
                // With a user timeout the keepalive timer drops the peer at the first probe slot
                // (idle + k x interval, k >= 1) at which the user timeout has passed.
                let k = ut.saturating_sub(idle).div_ceil(intvl.max(1)).max(1);
                idle.saturating_add(k.saturating_mul(intvl))
            }
        });
        Detect { idle_ms, busy_ms: (ut > 0).then_some(ut), retries_ms: retries_ms(retries2) }
    }

    /// With data in flight: the user timeout, else the retransmission limit.
    pub fn in_flight_ms(&self) -> u64 {
        self.busy_ms.unwrap_or(self.retries_ms)
    }

    /// The longer of the two; `None` when an idle dead peer is never noticed.
    pub fn worst_ms(&self) -> Option<u64> {
        Some(self.idle_ms?.max(self.in_flight_ms()))
    }

    /// Whether a dead peer is always dropped within `max_ms`.
    pub fn within(&self, max_ms: u64) -> bool {
        self.worst_ms().is_some_and(|w| w <= max_ms)
    }
}

/// `net.ipv4.tcp_retries2` under a proc root; the default where unreadable.
pub fn read_retries2(root: &std::path::Path) -> u32 {
    std::fs::read_to_string(root.join("sys/net/ipv4/tcp_retries2"))
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(DEFAULT_RETRIES2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(keepalive: bool, idle: u32, intvl: u32, cnt: u32, ut: u32) -> SockOpts {
        SockOpts {
            so_keepalive: keepalive,
            tcp_nodelay: true,
            keepidle_s: idle,
            keepintvl_s: intvl,
            keepcnt: cnt,
            user_timeout_ms: ut,
        }
    }

    #[test]
    fn retransmission_limit_follows_the_kernels_model() {
        // tcp_retries2 15: 0.2 x (2^10 - 1) + 6 x 120 s.
        assert_eq!(retries_ms(15), 924_600);
        assert_eq!(retries_ms(8), 102_200);
        assert_eq!(retries_ms(0), 200);
    }

    #[test]
    fn detection_times() {
        let d = |o| Detect::of(&o, 15);
        assert_eq!(d(opts(true, 10, 5, 3, 0)), Detect { idle_ms: Some(25_000), busy_ms: None, retries_ms: 924_600 });
        assert_eq!(d(opts(true, 10, 5, 3, 25_000)).busy_ms, Some(25_000));
        // 2/1/3 with a 5 s user timeout: probes at 2, 3, 4; dropped at the 5 s slot.
        assert_eq!(d(opts(true, 2, 1, 3, 5000)).idle_ms, Some(5000));
        // A user timeout shorter than the first interval still waits for one probe.
        assert_eq!(d(opts(true, 10, 5, 3, 1000)).idle_ms, Some(15_000));
        assert_eq!(d(opts(true, 7200, 75, 9, 0)).idle_ms, Some(7_875_000));
        assert_eq!(d(opts(false, 7200, 75, 9, 0)).idle_ms, None);
        assert_eq!(d(opts(true, 10, 5, 3, 25_000)).worst_ms(), Some(25_000));
        // Without a user timeout the retransmission limit bounds data in flight.
        assert_eq!(d(opts(true, 10, 5, 3, 0)).worst_ms(), Some(924_600));
        assert!(!d(opts(true, 10, 5, 3, 0)).within(60_000));
        assert!(d(opts(true, 10, 5, 3, 25_000)).within(25_000));
        assert!(!d(opts(false, 10, 5, 3, 25_000)).within(u64::MAX));
        // Go's net/http: 15/15 over the sysctl count 9.
        assert_eq!(d(opts(true, 15, 15, 9, 0)).idle_ms, Some(150_000));
    }
}
