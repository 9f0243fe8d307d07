//! Output formats. Each renderer formats what it is given (a [`Report`], a verify or drill
//! report) and writes to any `io::Write`, so the CLI and tests share the same code path. No I/O
//! but the writer, and no analysis: the numbers arrive computed.
//!
//! Text meant for a terminal goes through [`Clean`]: process names and other strings from the
//! host can carry terminal escapes (`\e]0;…\a` retitles the window, `\e[2J` clears it), so
//! control characters are written as visible escapes. JSON escapes them by itself.

pub mod events;
pub mod fix;
pub mod json;
pub mod prometheus;
pub mod table;
pub mod verify;

use std::fmt;

pub use crate::analysis::Report;
use crate::model::{Attribution, SockOpts};
use crate::units::human_ms;

/// A string from the host (a process name, a message that quotes one), safe to print on a
/// terminal: control characters become `\x1b`-style escapes, a backslash becomes `\\`.
#[derive(Debug, Clone, Copy)]
pub struct Clean<'a>(pub &'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if !text.chars().any(|c| c.is_control() || c == '\\') {
            return f.write_str(text);
        }
        for c in text.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                c if c.is_control() && (c as u32) < 0x100 => write!(f, "\\x{:02x}", c as u32)?,
                c if c.is_control() => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

/// With `-p`: one sentence when some sockets have no owner, or `None`.
pub fn attribution_warning(a: &Attribution) -> Option<String> {
    if a.unattributed == 0 {
        return None;
    }
    let why = if a.denied_processes > 0 {
        format!(
            ": {} processes could not be read (permission denied; run as root or as their owner)",
            a.denied_processes
        )
    } else {
        String::new()
    };
    Some(format!("{} sockets have no owning process{why}", a.unattributed))
}

/// With `-O`: one sentence when some options could not be read, or `None`.
pub fn sockopts_warning(a: &Attribution) -> Option<String> {
    let unread = a.sockopts_unread.filter(|&n| n > 0)?;
    let mut text =
        format!("{unread} sockets' options could not be read (needs root or the owner's user, through pidfd_getfd)");
    if let Some(skipped) = a.sockopts_skipped_net_cls.filter(|&n| n > 0) {
        text.push_str(&format!(
            "; {skipped} left alone because their owner is in a net_cls/net_prio cgroup that pidfd_getfd would \
             re-tag (--force reads them anyway)"
        ));
    }
    Some(text)
}

/// Compact text for the table: `keepalive 10s/5s/3 user-timeout 25s nodelay`.
pub fn describe_sockopts(o: &SockOpts) -> String {
    let mut parts = Vec::new();
    if o.so_keepalive {
        parts.push(format!("keepalive {}s/{}s/{}", o.keepidle_s, o.keepintvl_s, o.keepcnt));
    } else {
        parts.push("no-keepalive".to_owned());
    }
    if o.user_timeout_ms > 0 {
        parts.push(format!("user-timeout {}", human_ms(u64::from(o.user_timeout_ms))));
    }
    if o.tcp_nodelay {
        parts.push("nodelay".to_owned());
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::Clean;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(Clean("python3").to_string(), "python3");
        assert_eq!(Clean("\u{1b}]0;PWN\u{7}\u{1b}[2J").to_string(), "\\x1b]0;PWN\\x07\\x1b[2J");
        assert_eq!(Clean("a\\x1b\u{9b}").to_string(), "a\\\\x1b\\x9b");
        assert_eq!(Clean("naïve").to_string(), "naïve");
    }
}
