//! `check`'s rules in plain words: the `message` of each rule in text and JSON.

use serde::Serialize;

use crate::gate::{Detail, Rule, RuleResult};
use crate::units::long_duration;

/// A rule as JSON writes it: `rule`, `ok`, `actual`, `limit`, `message`.
#[derive(Serialize)]
struct Out {
    rule: Rule,
    ok: bool,
    actual: usize,
    limit: usize,
    message: String,
}

/// Serializes `rules` as the JSON array `check --format json` writes.
pub fn serialize<S: serde::Serializer>(rules: &&[RuleResult], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(rules.iter().map(|r| Out {
        rule: r.rule,
        ok: r.ok,
        actual: r.actual,
        limit: r.limit,
        message: message(r),
    }))
}

/// What the rule measured, in a sentence.
pub fn message(r: &RuleResult) -> String {
    match r.detail {
        Detail::CloseWait { queued: 0 } => format!("{} sockets in CLOSE-WAIT (max {})", r.actual, r.limit),
        Detail::CloseWait { queued } => format!(
            "{} sockets in CLOSE-WAIT, {queued} of them in the listen queue, never accepted (max {})",
            r.actual, r.limit
        ),
        Detail::Keepalive { established } => {
            format!("{} of {established} established server-side sockets have no keepalive timer armed", r.actual)
        }
        Detail::Detect { max_ms, total, over, worst_ms, in_flight, unread } => {
            let mut message = if over == 0 {
                format!(
                    "a dead peer is dropped within {} on every one of {total} established server-side sockets",
                    long_duration(max_ms)
                )
            } else {
                let worst = match worst_ms {
                    Some(ms) => {
                        let why = if in_flight { " (data in flight with no TCP_USER_TIMEOUT)" } else { "" };
                        format!("up to about {}{why}", long_duration(ms))
                    }
                    None => "never, on an idle one (keepalive off)".to_owned(),
                };
                format!(
                    "{over} of {total} established server-side sockets can hold a dead peer longer than {}: {worst}",
                    long_duration(max_ms)
                )
            };
            if unread > 0 {
                message.push_str(&format!("; the options of {unread} could not be read, so they fail too"));
            }
            message
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::Summary;
    use crate::deadpeer::Detect;
    use crate::gate::{Bounds, Gate, server_bounds};
    use crate::model::*;

    #[test]
    fn each_rule_says_what_it_measured() {
        let addr = "127.0.0.1:8787".parse().unwrap();
        let mut sockets =
            vec![Socket::new(TcpState::Established, addr, addr), Socket::new(TcpState::CloseWait, addr, addr)];
        sockets[0].timer = Some(Timer { kind: TimerKind::Keepalive, expires_ms: 1, probes: 0 });
        sockets.push(Socket::new(TcpState::Established, addr, addr));
        let gate = Gate { max_close_wait: 1, require_keepalive: true, max_detect_ms: None };
        let r = gate.evaluate(&Summary::of(&sockets), &server_bounds(&sockets, &[8787].into(), 15));
        assert_eq!(message(&r[0]), "1 sockets in CLOSE-WAIT (max 1)");
        assert_eq!(message(&r[1]), "1 of 2 established server-side sockets have no keepalive timer armed");

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
        assert_eq!(
            message(&r[1]),
            "1 of 1 established server-side sockets can hold a dead peer longer than 1 min: up to about 15 min 24 s \
             (data in flight with no TCP_USER_TIMEOUT)"
        );
        let r = gate.evaluate(&Summary::default(), &bounds(30_000));
        assert_eq!(
            message(&r[1]),
            "a dead peer is dropped within 1 min on every one of 1 established server-side sockets"
        );
        let unread = Bounds { unread: 2, ..Bounds::default() };
        assert!(
            message(&gate.evaluate(&Summary::default(), &unread)[1])
                .ends_with("; the options of 2 could not be read, so they fail too")
        );
    }
}
