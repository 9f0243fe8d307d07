//! What the sockets add up to: counts per state, CLOSE-WAIT, keepalive coverage of established
//! connections, and the [`Report`] (summary + findings) every renderer and the gate read. Built
//! from data handed in (the sockets, the keepalive sysctls, the listening ports): no I/O here.

use std::collections::{BTreeMap, BTreeSet};

use serde::ser::{Serialize, SerializeMap, Serializer};

use crate::diagnose::{Facts, Finding, diagnose};
use crate::filter::Filter;
use crate::model::{Attribution, Snapshot, Socket, TcpState};

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
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
        let mut summary = Summary::default();
        for s in sockets {
            summary.add(s);
        }
        summary
    }

    fn add(&mut self, s: &Socket) {
        self.total += 1;
        self.by_state.add(s.state);
        if s.state == TcpState::Established {
            self.keepalive.established += 1;
            if s.keepalive_armed() {
                self.keepalive.armed += 1;
            }
        }
    }

    /// One summary per Prometheus `port` label: the local port where it has a listening socket
    /// (the server side), `""` for every other socket. Every listening port and `""` is present,
    /// zeros included, so an alert on `close_wait > 0` sees an explicit 0.
    pub fn by_port(sockets: &[Socket], listening: &BTreeSet<u16>) -> BTreeMap<String, Summary> {
        let mut out: BTreeMap<String, Summary> = std::iter::once(String::new())
            .chain(listening.iter().map(u16::to_string))
            .map(|p| (p, Summary::default()))
            .collect();
        for s in sockets {
            let port = if listening.contains(&s.local.port()) { s.local.port().to_string() } else { String::new() };
            out.entry(port).or_default().add(s);
        }
        out
    }

    pub fn close_wait(&self) -> usize {
        self.by_state.get(TcpState::CloseWait)
    }
}

/// The ports that have a listening socket.
pub fn listening_ports(sockets: &[Socket]) -> BTreeSet<u16> {
    sockets.iter().filter(|s| s.state == TcpState::Listening).map(|s| s.local.port()).collect()
}

/// A snapshot as read with a filter, with its summary and findings: what every output shows.
pub struct Report<'a> {
    pub snapshot: &'a Snapshot,
    pub summary: Summary,
    /// What the sockets mean (`diagnose`), shown after the summary.
    pub findings: Vec<Finding>,
    pub filter: &'a Filter,
    pub netns: Option<&'a str>,
    pub attribution: Option<Attribution>,
}

impl<'a> Report<'a> {
    /// The summary and the findings, computed here, once.
    pub fn new(
        snapshot: &'a Snapshot,
        filter: &'a Filter,
        netns: Option<&'a str>,
        attribution: Option<Attribution>,
        facts: &Facts,
    ) -> Report<'a> {
        let findings = diagnose(&snapshot.sockets, facts);
        Report { summary: Summary::of(&snapshot.sockets), findings, snapshot, filter, netns, attribution }
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
            cookie: 0,
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
            // Split by port, the parts add up to the whole.
            let parts = Summary::by_port(&sockets, &[1].into());
            for state in TcpState::ALL {
                prop_assert_eq!(parts.values().map(|p| p.by_state.get(state)).sum::<usize>(), summary.by_state.get(state));
            }
        }
    }
}
