//! Output formats. Each renderer formats what it is given (a [`Report`], a verify or drill
//! report) and writes to any `io::Write`, so the CLI and tests share the same code path. No I/O
//! but the writer, and no analysis: the numbers arrive computed.
//!
//! Strings from the host (process names, cgroup paths, messages that quote them) can carry
//! terminal escapes (`\e]0;…\a` retitles the window, `\e[2J` clears it) and Unicode format
//! characters (a bidi override `U+202E` makes a line read backwards; zero-width ones hide text).
//! None of them reaches a reader raw: text lines and Prometheus labels go through [`Clean`],
//! which writes each as a visible escape; JSON writes each as a `\uXXXX` escape (see
//! [`json::to_writer`]), so a parser still gets the real name back.

pub mod cure;
pub mod events;
pub mod findings;
pub mod fix;
pub mod gate;
pub mod json;
pub mod prometheus;
pub mod spill;
pub mod table;
pub mod verify;

use std::fmt;

pub use crate::analysis::Report;
use crate::model::{Attribution, SockOpts};
use crate::units::human_ms;

/// A string from the host (a process name, a message that quotes one), safe to print on a
/// terminal or in a Prometheus label: control and format characters become `\x1b`-style or
/// `\u{202e}`-style escapes, a backslash becomes `\\`.
#[derive(Debug, Clone, Copy)]
pub struct Clean<'a>(pub &'a str);

impl fmt::Display for Clean<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if !text.chars().any(|c| hidden(c) || c == '\\') {
            return f.write_str(text);
        }
        for c in text.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                c if hidden(c) && (c as u32) < 0x100 => write!(f, "\\x{:02x}", c as u32)?,
                c if hidden(c) => write!(f, "\\u{{{:x}}}", c as u32)?,
                c => fmt::Write::write_char(f, c)?,
            }
        }
        Ok(())
    }
}

/// Characters that must not reach a reader raw: controls (C0, DEL, C1), Unicode format
/// characters (general category Cf: bidi embeddings, overrides and isolates, zero-width
/// spaces and joiners, the byte-order mark, invisible operators, tags) and the line and
/// paragraph separators (which end a line where none is shown).
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(
            c as u32,
            0x00AD
                | 0x0600..=0x0605
                | 0x061C
                | 0x06DD
                | 0x070F
                | 0x0890..=0x0891
                | 0x08E2
                | 0x180E
                | 0x200B..=0x200F
                | 0x2028..=0x202E
                | 0x2060..=0x2064
                | 0x2066..=0x206F
                | 0xFEFF
                | 0xFFF9..=0xFFFB
                | 0x110BD
                | 0x110CD
                | 0x13430..=0x1343F
                | 0x1BCA0..=0x1BCA3
                | 0x1D173..=0x1D17A
                | 0xE0001
                | 0xE0020..=0xE007F
        )
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

/// Rows under a header, each column as wide as its widest cell, two spaces apart (for the small
/// tables of `fix` and `fix --list`; the socket listing has its own streaming writer).
pub fn write_columns<const N: usize>(
    out: &mut impl std::io::Write,
    header: [&str; N],
    rows: &[[String; N]],
) -> std::io::Result<()> {
    let mut width = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; N]| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < N {
                text.extend(std::iter::repeat_n(' ', width[i] - cell.chars().count() + 2));
            }
        }
        text
    };
    writeln!(out, "{}", line(header))?;
    for row in rows {
        writeln!(out, "{}", line(row.each_ref().map(String::as_str)))?;
    }
    Ok(())
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
        assert_eq!(Clean("gpj.\u{202e}exe").to_string(), "gpj.\\u{202e}exe");
        assert_eq!(Clean("a\u{200b}b\u{feff}\u{7f}").to_string(), "a\\u{200b}b\\u{feff}\\x7f");
        assert_eq!(Clean("日本\u{e0041}").to_string(), "日本\\u{e0041}");
    }
}
