//! `webui-doctor check`: the rules a CI job or monitoring probe gates on, evaluated against a
//! summary. Each rule reports its measured value and limit, so a breach explains itself.

use serde::Serialize;

use crate::analysis::{KeepaliveCoverage, Summary};
use crate::deadpeer::Detect;
use crate::model::{Socket, TcpState};
use crate::tally::Tally;

/// The rules `check` was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// `--max-close-wait`.
    pub max_close_wait: usize,
    /// `--require-keepalive`.
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
    ServerSide::new(listening.clone(), retries2).over(sockets).bounds
}

/// [`server_bounds`] counted one socket at a time ([`Tally`]).
#[derive(Debug, Clone)]
pub struct ServerSide {
    listening: std::collections::BTreeSet<u16>,
    retries2: u32,
    /// What the rules judge.
    pub bounds: Bounds,
}

impl ServerSide {
    /// No sockets yet: the server side is the local ports in `listening`.
    pub fn new(listening: std::collections::BTreeSet<u16>, retries2: u32) -> ServerSide {
        ServerSide { listening, retries2, bounds: Bounds::default() }
    }
}

impl Tally for ServerSide {
    fn add(&mut self, s: &Socket) {
        if s.state != TcpState::Established || !self.listening.contains(&s.local.port()) {
            return;
        }
        let bounds = &mut self.bounds;
        bounds.keepalive.established += 1;
        bounds.keepalive.armed += usize::from(s.keepalive_armed());
        match s.sockopts {
            Some(o) => bounds.read.push(crate::deadpeer::Detect::of(&o, self.retries2)),
            // Still in the listen queue: no descriptor, nothing to read; judged once accepted.
            None if s.queued => {}
            None => bounds.unread += 1,
        }
    }

    fn merge(&mut self, later: Self) {
        self.bounds.extend(later.bounds);
    }
}

/// A rule's stable name: what scripts match on (`rules[].rule` in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// `max-close-wait`: at most so many sockets in CLOSE-WAIT.
    MaxCloseWait,
    /// `require-keepalive`: every established server-side socket has a keepalive timer.
    RequireKeepalive,
    /// `max-detect`: no established server-side socket holds a dead peer longer than the limit.
    MaxDetect,
}

impl Rule {
    /// The rule's name as scripts see it.
    pub fn name(self) -> &'static str {
        match self {
            Rule::MaxCloseWait => "max-close-wait",
            Rule::RequireKeepalive => "require-keepalive",
            Rule::MaxDetect => "max-detect",
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One rule judged: its measured number against its limit, and what the words about it need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResult {
    /// Which rule.
    pub rule: Rule,
    /// Whether it passed.
    pub ok: bool,
    /// The measured number: CLOSE-WAIT sockets, server-side established sockets without
    /// keepalive, or those a dead peer may hold too long.
    pub actual: usize,
    /// The most that passes.
    pub limit: usize,
    /// The numbers behind `actual`, for the message.
    pub detail: Detail,
}

/// What a rule measured besides `actual`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// `max-close-wait`: of the CLOSE-WAIT sockets, those still in a listen queue.
    CloseWait {
        /// Never accepted.
        queued: usize,
    },
    /// `require-keepalive`: the established server-side sockets judged.
    Keepalive {
        /// All of them.
        established: usize,
    },
    /// `max-detect`.
    Detect {
        /// The limit, in ms.
        max_ms: u64,
        /// The established server-side sockets judged.
        total: usize,
        /// Of them, those past the limit (whose options were read).
        over: usize,
        /// The longest any of those holds a dead peer, in ms; `None`: forever (keepalive off).
        worst_ms: Option<u64>,
        /// Some of those are past it only with data in flight and no `TCP_USER_TIMEOUT`.
        in_flight: bool,
        /// Those whose options could not be read (they fail too).
        unread: usize,
    },
}

impl Gate {
    /// Judges a summary and the server-side bounds by each rule asked for.
    pub fn evaluate(&self, summary: &Summary, bounds: &Bounds) -> Vec<RuleResult> {
        let close_wait = summary.close_wait();
        let mut results = vec![RuleResult {
            rule: Rule::MaxCloseWait,
            ok: close_wait <= self.max_close_wait,
            actual: close_wait,
            limit: self.max_close_wait,
            detail: Detail::CloseWait { queued: summary.queued.close_wait },
        }];
        if self.require_keepalive {
            let k = bounds.keepalive;
            results.push(RuleResult {
                rule: Rule::RequireKeepalive,
                ok: k.unarmed() == 0,
                actual: k.unarmed(),
                limit: 0,
                detail: Detail::Keepalive { established: k.established },
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
    let worst_ms = over.iter().map(|d| d.worst_ms()).max_by_key(|w| w.map_or(u64::MAX, |w| w)).flatten();
    RuleResult {
        rule: Rule::MaxDetect,
        ok: over.is_empty() && bounds.unread == 0,
        actual: over.len() + bounds.unread,
        limit: 0,
        detail: Detail::Detect {
            max_ms: max,
            total: bounds.read.len() + bounds.unread,
            over: over.len(),
            worst_ms,
            in_flight: over.iter().any(|d| d.busy_ms.is_none() && d.retries_ms > max),
            unread: bounds.unread,
        },
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
        assert_eq!(r[1].detail, Detail::Keepalive { established: 2 });
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
            r[1].detail,
            Detail::Detect {
                max_ms: 60_000,
                total: 1,
                over: 1,
                worst_ms: Some(crate::deadpeer::retries_ms(15)),
                in_flight: true,
                unread: 0
            }
        );
        // With a 30 s user timeout both bounds are 30 s (idle: the first probe slot past it).
        assert!(gate.evaluate(&Summary::default(), &bounds(30_000))[1].ok);
        let unread = Bounds { unread: 2, ..Bounds::default() };
        assert!(!gate.evaluate(&Summary::default(), &unread)[1].ok);
    }
}
