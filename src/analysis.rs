//! What the sockets add up to: counts per state, CLOSE-WAIT, keepalive coverage of established
//! connections. Computed once from the filtered list; every renderer and the gate read it.

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::model::{Socket, TcpState};

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub total: usize,
    pub by_state: StateCounts,
    pub keepalive: KeepaliveCoverage,
}

/// Counts for all eleven states, in kernel order; serialized as `{"established": n, ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StateCounts([usize; 11]);

impl StateCounts {
    pub fn get(&self, state: TcpState) -> usize {
        self.0[usize::from(state.code() - 1)]
    }

    fn add(&mut self, state: TcpState) {
        self.0[usize::from(state.code() - 1)] += 1;
    }

    pub fn iter(&self) -> impl Iterator<Item = (TcpState, usize)> + '_ {
        TcpState::ALL.into_iter().map(|s| (s, self.get(s)))
    }
}

impl Serialize for StateCounts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(11))?;
        for (state, n) in self.iter() {
            map.serialize_entry(state.name(), &n)?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct KeepaliveCoverage {
    /// Established sockets in the selection.
    pub established: usize,
    /// Of those, the ones whose keepalive timer is armed right now.
    pub armed: usize,
}

impl KeepaliveCoverage {
    pub fn unarmed(&self) -> usize {
        self.established - self.armed
    }
}

impl Summary {
    pub fn of(sockets: &[Socket]) -> Summary {
        let mut by_state = StateCounts::default();
        let mut keepalive = KeepaliveCoverage::default();
        for s in sockets {
            by_state.add(s.state);
            if s.state == TcpState::Established {
                keepalive.established += 1;
                if s.keepalive_armed() {
                    keepalive.armed += 1;
                }
            }
        }
        Summary { total: sockets.len(), by_state, keepalive }
    }

    pub fn close_wait(&self) -> usize {
        self.by_state.get(TcpState::CloseWait)
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::model::*;
    use proptest::prelude::*;

    fn socket(state: u8, timer: u8) -> Socket {
        let addr = Endpoint("127.0.0.1:1".parse().unwrap());
        Socket {
            family: Family::Inet,
            state: TcpState::from_code(state).unwrap(),
            local: addr,
            peer: addr,
            recv_q: 0,
            send_q: 0,
            timer: TimerKind::from_code(timer).map(|kind| Timer { kind, expires_ms: 1, probes: 0 }),
            uid: 0,
            inode: 0,
            process: None,
            idle: None,
            sockopts: None,
        }
    }

    proptest! {
        /// The summary always equals a brute-force count over the socket list.
        #[test]
        fn summary_is_a_plain_count(list in proptest::collection::vec((1u8..=11, 0u8..=5), 0..300)) {
            let sockets: Vec<Socket> = list.iter().map(|&(s, t)| socket(s, t)).collect();
            let summary = Summary::of(&sockets);
            prop_assert_eq!(summary.total, sockets.len());
            for state in TcpState::ALL {
                prop_assert_eq!(summary.by_state.get(state), sockets.iter().filter(|s| s.state == state).count());
            }
            let est = sockets.iter().filter(|s| s.state == TcpState::Established);
            prop_assert_eq!(summary.keepalive.established, est.clone().count());
            prop_assert_eq!(summary.keepalive.armed, est.filter(|s| s.timer.is_some_and(|t| t.kind == TimerKind::Keepalive)).count());
        }
    }
}
