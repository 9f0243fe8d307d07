//! `verify` and `verify --drill` output: the text a person reads as the drill runs, and the one
//! JSON document a script reads at the end.

use std::io::{self, Write};

use serde::Serialize;

use crate::drill::{DrillReport, ProbeEvent};
use crate::render::Clean;
use crate::units::{human_ms, long_duration};
use crate::verify::{Check, CheckName, Found, VerifyReport};

/// The server socket, its timer, its options and one line per check.
pub fn write_report(out: &mut impl Write, r: &VerifyReport) -> io::Result<()> {
    let owner = r.process.as_ref().map(|p| format!(", {} pid {}", Clean(&p.comm), p.pid)).unwrap_or_default();
    writeln!(out, "server {} (accepted socket inode {}{owner}), client {}", r.server, r.inode, r.client)?;
    match r.timer {
        Some(t) => writeln!(out, "timer: {} in {}", t.kind.name(), human_ms(t.expires_ms))?,
        None => writeln!(out, "timer: none")?,
    }
    match (&r.options, &r.options_error) {
        (Some(o), _) => writeln!(
            out,
            "options (read from the server's socket): SO_KEEPALIVE={} TCP_NODELAY={} TCP_KEEPIDLE={}s \
             TCP_KEEPINTVL={}s TCP_KEEPCNT={} TCP_USER_TIMEOUT={}ms",
            u8::from(o.so_keepalive),
            u8::from(o.tcp_nodelay),
            o.keepidle_s,
            o.keepintvl_s,
            o.keepcnt,
            o.user_timeout_ms
        )?,
        (None, Some(e)) => {
            writeln!(out, "options: not readable ({}); judging from the timer", Clean(e))?;
            if let Some(idle) = r.inferred_idle_s {
                writeln!(out, "keepalive idle time inferred from the timer: about {idle} s")?;
            }
        }
        (None, None) => {}
    }
    for c in &r.checks {
        let mark = match c.ok {
            Some(true) => "ok  ",
            Some(false) => "FAIL",
            None => "??  ",
        };
        writeln!(out, "{mark} {}: {}", c.check, message(c))?;
    }
    Ok(())
}

/// The line before the drill starts.
pub fn write_drill_start(out: &mut impl Write, r: &VerifyReport, timeout_ms: u64) -> io::Result<()> {
    writeln!(
        out,
        "drill: dropping the server's packets to {}; watching {} for up to {}",
        r.client,
        r.server,
        long_duration(timeout_ms)
    )?;
    out.flush()
}

/// One probe or retransmission as it is seen.
pub fn write_event(out: &mut impl Write, e: &ProbeEvent) -> io::Result<()> {
    writeln!(out, "  +{:.2}s {} {} unanswered", e.at_ms as f64 / 1000.0, e.timer, e.count)?;
    out.flush()
}

/// How the drill ended.
pub fn write_drill_end(out: &mut impl Write, d: &DrillReport) -> io::Result<()> {
    match (d.interrupted, d.dropped_after_ms) {
        (true, _) => writeln!(out, "drill: interrupted; the rule and the connection were removed"),
        (false, Some(ms)) => {
            writeln!(out, "drill: the server dropped the connection after {:.2} s", ms as f64 / 1000.0)
        }
        (false, None) => writeln!(out, "drill: NOT dropped within {}", long_duration(d.timeout_ms)),
    }
}

/// The verdict line.
pub fn write_verdict(out: &mut impl Write, ok: bool) -> io::Result<()> {
    writeln!(out, "{}", if ok { "PASS" } else { "FAIL" })
}

/// The one-line reason for a failed verification, for stderr: which checks failed (their
/// messages are on stdout already) and whether the drill's client was dropped.
pub fn failure_line(r: &VerifyReport, drill: Option<&DrillReport>) -> Option<String> {
    let mut reasons: Vec<String> = Vec::new();
    let failed: Vec<&str> = r.checks.iter().filter(|c| c.ok == Some(false)).map(|c| c.check.name()).collect();
    if !failed.is_empty() {
        reasons.push(format!("failed checks: {}", failed.join(", ")));
    }
    if let Some(d) = drill.filter(|d| d.dropped_after_ms.is_none() && !d.interrupted) {
        reasons.push(format!("the server did not drop the vanished client within {}", long_duration(d.timeout_ms)));
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// `verify --format json`: the report's fields, the drill (or null) and one verdict.
pub fn write_json(
    out: &mut impl Write,
    r: &VerifyReport,
    drill: Option<&DrillReport>,
    cures: &[crate::cure::Attached],
    ok: bool,
) -> io::Result<()> {
    #[derive(Serialize)]
    struct Doc<'a> {
        #[serde(flatten)]
        verify: &'a VerifyReport,
        #[serde(serialize_with = "serialize_checks")]
        checks: &'a [Check],
        drill: Option<&'a DrillReport>,
        /// The kernel cures (`fix --persist`) covering the port.
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        cures: &'a [crate::cure::Attached],
        ok: bool,
    }
    super::json::to_writer_pretty(&mut *out, &Doc { verify: r, checks: &r.checks, drill, cures, ok })?;
    writeln!(out)
}

/// Serializes the checks as JSON writes them: `check`, `ok`, `message`.
fn serialize_checks<S: serde::Serializer>(checks: &&[Check], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Out {
        check: CheckName,
        ok: Option<bool>,
        message: String,
    }
    s.collect_seq(checks.iter().map(|c| Out { check: c.check, ok: c.ok, message: message(c) }))
}

/// What a check found, in a sentence.
pub fn message(c: &Check) -> String {
    match c.found {
        Found::Unknown => {
            let what = if c.check == CheckName::MaxDetect { "worst-case detection time" } else { c.check.name() };
            format!("{what}: unknown, the socket options could not be read")
        }
        Found::Keepalive { on: true, .. } => "SO_KEEPALIVE is on".into(),
        Found::Keepalive { on: false, port } => format!(
            "SO_KEEPALIVE is off: a client that vanishes without a FIN is never dropped. `webui-doctor fix --port \
             {port}` puts keepalive on the running server"
        ),
        Found::Timer { armed: true, .. } => {
            "the keepalive timer is armed (options not readable; judged from the timer)".into()
        }
        Found::Timer { armed: false, port } => format!(
            "no keepalive timer is armed on the server's socket. `webui-doctor fix --port {port}` puts keepalive on \
             the running server"
        ),
        Found::Value { have, want } => {
            let unit = match c.check {
                CheckName::Idle | CheckName::Interval => " s",
                CheckName::UserTimeout => " ms",
                _ => "",
            };
            format!("{} is {have}{unit} (expected {want}{unit})", c.check)
        }
        Found::Detect { detect: d, retries2, max_ms } => {
            let idle = match d.idle_ms {
                Some(ms) => format!("is dropped after {} on an idle connection", long_duration(ms)),
                None => "is never dropped on an idle connection (keepalive off),".to_owned(),
            };
            let busy = match d.busy_ms {
                Some(ms) => format!("after {} with data in flight", long_duration(ms)),
                None => format!(
                    "after about {} with data in flight (no TCP_USER_TIMEOUT: net.ipv4.tcp_retries2 {retries2} decides)",
                    long_duration(d.retries_ms)
                ),
            };
            format!("a dead peer {idle} and {busy} (at most {} allowed)", long_duration(max_ms))
        }
    }
}
