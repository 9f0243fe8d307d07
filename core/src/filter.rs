//! Which sockets a command looks at. States and address families go into the source's request
//! (the sock_diag state mask, or skipped while parsing procfs lines); ports are matched per
//! socket; process filters apply after the process map has been joined.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::model::{Family, Socket, StateSet, TcpState};

/// An inclusive port range, written `8787` or `8000-8999`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    /// The lowest port.
    pub low: u16,
    /// The highest port.
    pub high: u16,
}

impl PortRange {
    /// Whether `port` is in the range.
    pub fn contains(self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }
}

impl FromStr for PortRange {
    type Err = String;

    fn from_str(s: &str) -> Result<PortRange, String> {
        let parse = |p: &str| {
            p.trim()
                .trim_start_matches(':')
                .parse::<u16>()
                .map_err(|_| format!("'{s}' is not a port (0-65535) or a range like 8000-8999"))
        };
        let (low, high) = match s.split_once('-') {
            Some((a, b)) => (parse(a)?, parse(b)?),
            None => {
                let p = parse(s)?;
                (p, p)
            }
        };
        if low > high {
            return Err(format!("port range '{s}' is empty (start above end)"));
        }
        Ok(PortRange { low, high })
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.low == self.high { write!(f, "{}", self.low) } else { write!(f, "{}-{}", self.low, self.high) }
    }
}

impl Serialize for PortRange {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// ss's state groups, as iproute2's ss.c defines them: SS_CONN leaves out listening, closed
/// and the two minisocket states; "synchronized" is SS_CONN less syn-sent; "big" is all but
/// "bucket".
pub mod group {
    use crate::model::TcpState::{self, *};

    /// `all`
    pub const ALL: &[TcpState] = &TcpState::ALL;
    /// `connected`: every state but LISTEN, SYN-RECV, TIME-WAIT and CLOSED.
    pub const CONNECTED: &[TcpState] = &[Established, SynSent, FinWait1, FinWait2, CloseWait, LastAck, Closing];
    /// `synchronized`: `connected` without SYN-SENT.
    pub const SYNCHRONIZED: &[TcpState] = &[Established, FinWait1, FinWait2, CloseWait, LastAck, Closing];
    /// `bucket`: the minisocket states.
    pub const BUCKET: &[TcpState] = &[SynRecv, TimeWait];
    /// `big`: every state but the minisocket ones.
    pub const BIG: &[TcpState] =
        &[Established, SynSent, FinWait1, FinWait2, Closed, CloseWait, LastAck, Listening, Closing];

    /// Every group by the name `ss` gives it.
    pub const NAMED: [(&str, &[TcpState]); 5] =
        [("all", ALL), ("connected", CONNECTED), ("synchronized", SYNCHRONIZED), ("bucket", BUCKET), ("big", BIG)];
}

/// A state name as `ss` accepts it: one of the eleven states or one of ss's groups (for URL
/// query parameters; the command line parses `cli::StateArg` directly).
pub fn parse_state_filter(name: &str) -> Result<StateSet, String> {
    let lower = name.to_ascii_lowercase();
    if let Some(state) = TcpState::from_name(&lower) {
        return Ok(StateSet::of(&[state]));
    }
    if let Some((_, states)) = group::NAMED.iter().find(|(n, _)| *n == lower) {
        return Ok(StateSet::of(states));
    }
    let names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    Err(format!(
        "unknown state '{name}': expected one of {}, or a group: all, connected, synchronized, bucket, big",
        names.join(", ")
    ))
}

/// Which sockets to show: the states ask the kernel, the rest select from its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// The states wanted.
    pub states: StateSet,
    /// IPv4 wanted.
    pub inet: bool,
    /// IPv6 wanted.
    pub inet6: bool,
    /// Local ports (`--port`); a socket matches if its local port is any of them.
    pub ports: Vec<u16>,
    /// `--sport`: the local port in this range.
    pub sport: Option<PortRange>,
    /// `--dport`: the peer's port in this range.
    pub dport: Option<PortRange>,
    /// `--pid`: sockets of this process (implies owners).
    pub pid: Option<u32>,
    /// `--process`: sockets of processes with this name (implies owners).
    pub process: Option<String>,
    /// `--cgroup PATH` (normalized, see `cgroup::normalize`): sockets in that cgroup v2 or below.
    pub cgroup: Option<String>,
}

impl Default for Filter {
    fn default() -> Filter {
        Filter {
            states: StateSet::all(),
            inet: true,
            inet6: true,
            ports: Vec::new(),
            sport: None,
            dport: None,
            pid: None,
            process: None,
            cgroup: None,
        }
    }
}

impl Filter {
    /// Whether sockets of `family` are wanted.
    pub fn wants_family(&self, family: Family) -> bool {
        match family {
            Family::Inet => self.inet,
            Family::Inet6 => self.inet6,
        }
    }

    /// The port part of the filter, applied to each socket a source reads.
    pub fn matches_ports(&self, local_port: u16, peer_port: u16) -> bool {
        (self.ports.is_empty() || self.ports.contains(&local_port))
            && self.sport.is_none_or(|r| r.contains(local_port))
            && self.dport.is_none_or(|r| r.contains(peer_port))
    }

    /// Whether `s` is wanted (ports; the states were asked of the kernel).
    pub fn matches(&self, s: &Socket) -> bool {
        self.states.contains(s.state)
            && self.wants_family(s.family)
            && self.matches_ports(s.local.port(), s.peer.port())
    }

    /// Whether the selection needs owners.
    pub fn wants_processes(&self) -> bool {
        self.pid.is_some() || self.process.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges_parse_and_reject_garbage() {
        assert_eq!("8787".parse(), Ok(PortRange { low: 8787, high: 8787 }));
        assert_eq!(":80".parse(), Ok(PortRange { low: 80, high: 80 }));
        assert_eq!("1000-2000".parse(), Ok(PortRange { low: 1000, high: 2000 }));
        assert!("2000-1000".parse::<PortRange>().is_err());
        assert!("70000".parse::<PortRange>().is_err());
        assert!("http".parse::<PortRange>().is_err());
    }

    #[test]
    fn state_groups_match_ss() {
        let connected = parse_state_filter("connected").unwrap();
        assert!(!connected.contains(TcpState::Listening));
        assert!(!connected.contains(TcpState::TimeWait));
        assert!(connected.contains(TcpState::CloseWait));
        let bucket = parse_state_filter("bucket").unwrap();
        assert_eq!(bucket.iter().collect::<Vec<_>>(), vec![TcpState::SynRecv, TcpState::TimeWait]);
        assert_eq!(parse_state_filter("CLOSE-WAIT").unwrap(), StateSet::of(&[TcpState::CloseWait]));
        assert!(parse_state_filter("close_wait").is_err());
        assert_eq!(parse_state_filter("all").unwrap(), StateSet::all());
    }

    #[test]
    fn port_filters_combine() {
        let f = Filter { ports: vec![8787, 9000], dport: Some("40000-50000".parse().unwrap()), ..Filter::default() };
        assert!(f.matches_ports(8787, 45000));
        assert!(f.matches_ports(9000, 40000));
        assert!(!f.matches_ports(8788, 45000));
        assert!(!f.matches_ports(8787, 39999));
    }
}
