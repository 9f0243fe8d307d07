//! Durations and times as people read them. A leaf: it imports nothing from the crate, so every
//! layer (diagnosis messages, renderers) can use it without importing each other.

use std::time::SystemTime;

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

/// Bytes in decimal units, one decimal: `512 B`, `4.1 kB`, `4.1 MB`, `1.2 GB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "GB"), (1_000_000, "MB"), (1_000, "kB")];
    match UNITS.iter().find(|(size, _)| n >= *size) {
        Some((size, unit)) => format!("{}.{} {unit}", n / size, n % size * 10 / size),
        None => format!("{n} B"),
    }
}

/// A count with thousands separators: `3,900`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `2 h 11 min`, `25 s`: for durations people compare against hours.
pub fn long_duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 if s.is_multiple_of(60) => format!("{} min", s / 60),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-25T08:24:43.123Z`.
pub fn timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_and_counts_read_at_a_glance() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(4_150_000), "4.1 MB");
        assert_eq!(human_bytes(u64::MAX), "18446744073.7 GB");
        assert_eq!(thousands(3900), "3,900");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }

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
            (u64::MAX, "213503982334d14h"),
        ];
        for (ms, want) in cases {
            assert_eq!(human_ms(ms), want, "{ms} ms");
        }
        assert_eq!(long_duration(25_000), "25 s");
        assert_eq!(long_duration(7_875_000), "2 h 11 min");
        assert_eq!(long_duration(u64::MAX), "5124095576030 h 25 min");
    }
}
