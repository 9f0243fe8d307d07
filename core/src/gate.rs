//! `webui-doctor check`: the rules a CI job or monitoring probe gates on, evaluated against a
//! summary. Each rule reports its measured value and limit, so a breach explains itself.

use serde::Serialize;

use crate::analysis::{KeepaliveCoverage, Summary};
use crate::deadpeer::Detect;
use crate::model::{Socket, TcpState};
use crate::units::long_duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    pub max_close_wait: usize,
    pub require_keepalive: bool,
    /// `--max-detect`: the longest a dead peer may hold a server-side connection, in ms.
    pub max_detect_ms: Option<u64>,
}

/// What the rules about connections judge: the established *server-side* sockets (whose local
/// port has a listening socket), as the findings do. A host's own outgoing connections are the
/// client's business and never fail the gate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bounds {
    /// `--require-keepalive`: server-side established sockets, and those with a keepalive timer.
    pub keepalive: KeepaliveCoverage,
    /// `--max-detect`: the bound of each whose options were read…
    pub read: Vec<Detect>,
    /// …and how many could not be read.
    pub unread: usize,
}

impl Bounds {
    /// Adds another namespace's part.
    pub fn extend(&mut self, other: Bounds) {
        self.keepalive.established += other.keepalive.established;
        self.keepalive.armed += other.keepalive.armed;
        self.read.extend(other.read);
        self.unread += other.unread;
    }
}

/// The server-side sockets among `sockets` (local port in `listening`), as the rules judge them;
/// `retries2` bounds data in flight without a user timeout.
pub fn server_bounds(sockets: &[Socket], listening: &std::collections::BTreeSet<u16>, retries2: u32) -> Bounds {
    let mut bounds = Bounds::default();
    for s in sockets.iter().filter(|s| s.state == TcpState::Established && listening.contains(&s.local.port())) {
        bounds.keepalive.established += 1;
        bounds.keepalive.armed += usize::from(s.keepalive_armed());
        match s.sockopts {
            Some(o) => bounds.read.push(crate::deadpeer::Detect::of(&o, retries2)),
            // Still in the listen queue: no descriptor, nothing to read; judged once accepted.
            None if s.queued => {}
            None => bounds.unread += 1,
        }
    }
    bounds
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    /// Stable rule name: `max-close-wait`, `require-keepalive` or `max-detect`.
    pub rule: &'static str,
    pub ok: bool,
    /// The measured number: CLOSE-WAIT sockets, server-side established sockets without
    /// keepalive, or those a dead peer may hold too long.
    pub actual: usize,
    /// The most that passes.
    pub limit: usize,
    pub message: String,
}

impl Gate {
    pub fn evaluate(&self, summary: &Summary, bounds: &Bounds) -> Vec<RuleResult> {
        let close_wait = summary.close_wait();
        let mut results = vec![RuleResult {
            rule: "max-close-wait",
            ok: close_wait <= self.max_close_wait,
            actual: close_wait,
            limit: self.max_close_wait,
            message: match summary.queued.close_wait {
                0 => format!("{close_wait} sockets in CLOSE-WAIT (max {})", self.max_close_wait),
                queued => format!(
                    "{close_wait} sockets in CLOSE-WAIT, {queued} of them in the listen queue, never accepted (max {})",
                    self.max_close_wait
                ),
            },
        }];
        if self.require_keepalive {
            let k = bounds.keepalive;
            results.push(RuleResult {
                rule: "require-keepalive",
                ok: k.unarmed() == 0,
                actual: k.unarmed(),
                limit: 0,
                message: format!(
                    "{} of {} established server-side sockets have no keepalive timer armed",
                    k.unarmed(),
                    k.established
                ),
            });
        }
        if let Some(max) = self.max_detect_ms {
            results.push(max_detect(max, bounds));
        }
        results
    }
}

fn max_detect(max: u64, bounds: &Bounds) -> RuleResult {
    let over: Vec<&Detect> = bounds.read.iter().filter(|d| !d.within(max)).collect();
    let total = bounds.read.len() + bounds.unread;
    let mut message = if over.is_empty() {
        format!(
            "a dead peer is dropped within {} on every one of {total} established server-side sockets",
            long_duration(max)
        )
    } else {
        let worst = match over.iter().map(|d| d.worst_ms()).max_by_key(|w| w.map_or(u64::MAX, |w| w)) {
            Some(Some(ms)) => {
                let why = if over.iter().any(|d| d.busy_ms.is_none() && d.retries_ms > max) {
                    " (data in flight with no TCP_USER_TIMEOUT)"
                } else {
                    ""
                };
                format!("up to about {}{why}", long_duration(ms))
            }
            _ => "never, on an idle one (keepalive off)".to_owned(),
        };
        format!(
            "{} of {total} established server-side sockets can hold a dead peer longer than {}: {worst}",
            over.len(),
            long_duration(max)
        )
    };
    if bounds.unread > 0 {
        message.push_str(&format!("; the options of {} could not be read, so they fail too", bounds.unread));
    }
    RuleResult {
        rule: "max-detect",
        ok: over.is_empty() && bounds.unread == 0,
        actual: over.len() + bounds.unread,
        limit: 0,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;

    fn socket(state: TcpState, keepalive: bool) -> Socket {
        let addr = "127.0.0.1:8787".parse().unwrap();
        let mut s = Socket::new(state, addr, addr);
        s.timer = keepalive.then_some(Timer { kind: TimerKind::Keepalive, expires_ms: 1, probes: 0 });
        s.inode = 1;
        s
    }

    #[test]
    fn rules_pass_at_the_limit_and_fail_past_it() {
        let sockets = vec![
            socket(TcpState::CloseWait, false),
            socket(TcpState::Established, true),
            socket(TcpState::Established, false),
        ];
        let summary = Summary::of(&sockets);
        let gate = Gate { max_close_wait: 1, require_keepalive: true, max_detect_ms: None };
        let server = server_bounds(&sockets, &[8787].into(), 15);
        let r = gate.evaluate(&summary, &server);
        assert!(r[0].ok);
        assert!(!r[1].ok);
        assert_eq!(r[1].actual, 1);
        assert_eq!(r[1].message, "1 of 2 established server-side sockets have no keepalive timer armed");
        // The same sockets as a client's outgoing connections (port 8787 not listening): passes.
        let client = server_bounds(&sockets, &[80].into(), 15);
        assert!(gate.evaluate(&summary, &client)[1].ok);
        let r = Gate { max_close_wait: 0, require_keepalive: false, max_detect_ms: None }
            .evaluate(&summary, &Bounds::default());
        assert_eq!(r.len(), 1);
        assert!(!r[0].ok);
    }

    #[test]
    fn max_detect_fails_on_a_socket_without_a_user_timeout() {
        let o = |ut| SockOpts {
            so_keepalive: true,
            tcp_nodelay: false,
            keepidle_s: 15,
            keepintvl_s: 15,
            keepcnt: 9,
            user_timeout_ms: ut,
        };
        let gate = Gate { max_close_wait: 0, require_keepalive: false, max_detect_ms: Some(60_000) };
        let bounds = |ut| Bounds { read: vec![Detect::of(&o(ut), 15)], ..Bounds::default() };
        let r = gate.evaluate(&Summary::default(), &bounds(0));
        assert!(!r[1].ok);
        assert_eq!(
            r[1].message,
            "1 of 1 established server-side sockets can hold a dead peer longer than 1 min: up to about 15 min 24 s \
             (data in flight with no TCP_USER_TIMEOUT)"
        );
        // With a 30 s user timeout both bounds are 30 s (idle: the first probe slot past it).
        assert!(gate.evaluate(&Summary::default(), &bounds(30_000))[1].ok);
        let unread = Bounds { unread: 2, ..Bounds::default() };
        assert!(!gate.evaluate(&Summary::default(), &unread)[1].ok);
    }
}
