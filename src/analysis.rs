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
