//! `webui-doctor check`: the rules a CI job or monitoring probe gates on, evaluated against a
//! summary. Each rule reports its measured value and limit, so a breach explains itself.

use serde::Serialize;

use crate::analysis::Summary;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    pub max_close_wait: usize,
    pub require_keepalive: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleResult {
    /// Stable rule name: `max-close-wait` or `require-keepalive`.
    pub rule: &'static str,
    pub ok: bool,
    /// The measured number: CLOSE-WAIT sockets, or established sockets without keepalive.
    pub actual: usize,
    /// The most that passes.
    pub limit: usize,
    pub message: String,
}

impl Gate {
    pub fn evaluate(&self, summary: &Summary) -> Vec<RuleResult> {
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
            let k = summary.keepalive;
            results.push(RuleResult {
                rule: "require-keepalive",
                ok: k.unarmed() == 0,
                actual: k.unarmed(),
                limit: 0,
                message: format!(
                    "{} of {} established sockets have no keepalive timer armed",
                    k.unarmed(),
                    k.established
                ),
            });
        }
        results
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
        let gate = Gate { max_close_wait: 1, require_keepalive: true };
        let r = gate.evaluate(&summary);
        assert!(r[0].ok);
        assert!(!r[1].ok);
        assert_eq!(r[1].actual, 1);
        assert_eq!(r[1].message, "1 of 2 established sockets have no keepalive timer armed");
        let r = Gate { max_close_wait: 0, require_keepalive: false }.evaluate(&summary);
        assert_eq!(r.len(), 1);
        assert!(!r[0].ok);
    }
}
