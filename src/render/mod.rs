//! Output formats. Each renderer reads one `Report` (the filtered snapshot and its summary) and
//! writes to any `io::Write`, so the CLI and tests share the same code path.

pub mod json;
pub mod prometheus;
pub mod table;

use std::time::SystemTime;

use serde::Serialize;

use crate::analysis::Summary;
use crate::diagnose::{Finding, KeepaliveSysctls, diagnose};
use crate::filter::Filter;
use crate::source::Snapshot;

/// How process attribution went (`-p`): sockets with an inode but no owner we could see, and the
/// processes whose fd table we were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Attribution {
    pub unattributed: usize,
    pub denied_processes: usize,
    /// With `-O`: owned sockets whose options could not be read (no ptrace access to the owner).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sockopts_unread: Option<usize>,
}

impl Attribution {
    /// With `-O`, one sentence when some options could not be read.
    pub fn sockopts_warning(&self) -> Option<String> {
        match self.sockopts_unread {
            Some(n) if n > 0 => Some(format!(
                "{n} sockets' options could not be read (needs root or the owner's user, through pidfd_getfd)"
            )),
            _ => None,
        }
    }

    /// One sentence for humans, or `None` when every socket was attributed.
    pub fn warning(&self) -> Option<String> {
        if self.unattributed == 0 {
            return None;
        }
        let why = if self.denied_processes > 0 {
            format!(
                ": {} processes could not be read (permission denied; run as root or as their owner)",
                self.denied_processes
            )
        } else {
            String::new()
        };
        Some(format!("{} sockets have no owning process{why}", self.unattributed))
    }
}

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
    /// A report over `snapshot` as read with `filter`: the summary and the findings are computed
    /// here, once (the findings read the namespace's keepalive sysctls).
    pub fn new(
        snapshot: &'a Snapshot,
        filter: &'a Filter,
        netns: Option<&'a str>,
        attribution: Option<Attribution>,
    ) -> Report<'a> {
        let findings = diagnose(&snapshot.sockets, KeepaliveSysctls::read(&crate::process::proc_root()));
        Report { summary: Summary::of(&snapshot.sockets), findings, snapshot, filter, netns, attribution }
    }
}

/// Milliseconds in the units an operator reads at a glance: `350ms`, `9.5s`, `42s`, `2m03s`,
/// `2h03m`, `3d04h`.
pub fn human_ms(ms: u64) -> String {
    HumanMs(ms).to_string()
}

/// [`human_ms`] as a `Display`, to write into a buffer without allocating.
#[derive(Debug, Clone, Copy)]
pub struct HumanMs(pub u64);

impl std::fmt::Display for HumanMs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const S: u64 = 1000;
        const M: u64 = 60 * S;
        const H: u64 = 60 * M;
        const D: u64 = 24 * H;
        let ms = self.0;
        match ms {
            0..S => write!(f, "{ms}ms"),
            S..10_000 => write!(f, "{}.{}s", ms / S, ms % S / 100),
            10_000..M => write!(f, "{}s", ms / S),
            M..H => write!(f, "{}m{:02}s", ms / M, ms % M / S),
            H..D => write!(f, "{}h{:02}m", ms / H, ms % H / M),
            _ => write!(f, "{}d{:02}h", ms / D, ms % D / H),
        }
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-25T08:24:43.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::human_ms;

    #[test]
    fn human_units() {
        let cases = [
            (0, "0ms"),
            (350, "350ms"),
            (999, "999ms"),
            (1000, "1.0s"),
            (9_599, "9.5s"),
            (10_000, "10s"),
            (59_999, "59s"),
            (123_000, "2m03s"),
            (3_600_000, "1h00m"),
            (7_380_000, "2h03m"),
            (273_600_000, "3d04h"),
        ];
        for (ms, want) in cases {
            assert_eq!(human_ms(ms), want, "{ms} ms");
        }
    }
}
