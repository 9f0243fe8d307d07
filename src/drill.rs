//! `verify --drill`: make a client vanish without a FIN and measure how long the server takes to
//! notice. An nftables rule drops the server's packets to that one client (the 4-tuple, in a
//! set whose element expires by itself), so the server's keepalive probes and retransmissions go
//! unanswered exactly as they would for a crashed or unplugged client. The rule is on the input
//! hook: the server's packets leave it and are lost on the way, as on a real network. (Dropped
//! on the output hook, the send fails locally and TCP arms its zero-window probe timer instead
//! of retransmitting, which is not what a vanished client looks like.)
//!
//! Cleanup is the point of this module: the rule and the connection are removed on every exit
//! path — normal end, error, a closed stdout, SIGINT, SIGTERM, SIGHUP (the terminal closed) and
//! SIGQUIT (a handler turns each into a flag the watch loop polls). After SIGKILL nothing runs, so the set element carries a timeout and expires on its
//! own, and the next drill deletes tables left by processes that no longer exist.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::{DrillError, Error, Result};
use crate::model::{TcpState, TimerKind};
use crate::os;
use crate::query::Query;
use crate::verify::{Probe, find_server_socket};

/// Every drill's table starts with this, followed by the drilling process's pid.
pub const TABLE_PREFIX: &str = "webui_doctor_drill_";

/// Where Debian, Fedora, Arch and Alpine install `nft`. It is never looked up through `PATH`:
/// a drill runs as root, and the caller's `PATH` is the caller's choice, not the system's.
const NFT_PATHS: [&str; 4] = ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft", "/bin/nft"];

/// `nft` by absolute path, with a cleared environment (its locale and its own lookups are the
/// system's defaults, whatever the caller exported). Refused under set-uid, as a backstop to
/// `main`'s refusal.
fn nft_command() -> Result<Command, DrillError> {
    if os::privileged_by_exec() {
        return Err(DrillError::SetUid);
    }
    let path = NFT_PATHS.iter().find(|p| std::path::Path::new(p).is_file()).ok_or_else(|| {
        DrillError::NftMissing(io::Error::new(io::ErrorKind::NotFound, format!("not in {}", NFT_PATHS.join(", "))))
    })?;
    let mut command = Command::new(path);
    command.env_clear();
    Ok(command)
}

fn nft(script: &str) -> Result<(), DrillError> {
    let mut child = nft_command()?
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(DrillError::NftMissing)?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(script.as_bytes()).map_err(DrillError::NftIo)?;
    }
    let out = child.wait_with_output().map_err(DrillError::NftIo)?;
    if !out.status.success() {
        return Err(DrillError::NftRefused(String::from_utf8_lossy(&out.stderr).trim().to_owned()));
    }
    Ok(())
}

/// Deletes drill tables whose process is gone (left behind by a SIGKILL).
pub fn remove_stale_tables() {
    let Ok(mut nft) = nft_command() else { return };
    let Ok(out) = nft.args(["list", "tables", "inet"]).output() else { return };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Some(name) = line.trim().strip_prefix("table inet ") else { continue };
        let Some(pid) = name.strip_prefix(TABLE_PREFIX).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists()
            && let Ok(mut nft) = nft_command()
        {
            let _ = nft.args(["delete", "table", "inet", name]).status();
        }
    }
}

/// The blackhole for one 4-tuple; removed on drop.
pub struct Blackhole {
    table: String,
}

impl Blackhole {
    /// Drops packets from `server` to `client` for at most `lifetime` (the set element expires).
    pub fn install(server: SocketAddr, client: SocketAddr, lifetime: Duration) -> Result<Blackhole> {
        let table = format!("{TABLE_PREFIX}{}", std::process::id());
        let (set, element) = match (server, client) {
            (SocketAddr::V4(s), SocketAddr::V4(c)) => {
                ("blocked4", format!("{} . {} . {} . {}", s.ip(), s.port(), c.ip(), c.port()))
            }
            (SocketAddr::V6(s), SocketAddr::V6(c)) => {
                ("blocked6", format!("{} . {} . {} . {}", s.ip(), s.port(), c.ip(), c.port()))
            }
            _ => return Err(DrillError::MixedFamilies.into()),
        };
        let secs = lifetime.as_secs().max(1);
        nft(&format!(
            "table inet {table} {{\n\
               set blocked4 {{ type ipv4_addr . inet_service . ipv4_addr . inet_service; flags timeout; }}\n\
               set blocked6 {{ type ipv6_addr . inet_service . ipv6_addr . inet_service; flags timeout; }}\n\
               chain input {{\n\
                 type filter hook input priority 0; policy accept;\n\
                 ip saddr . tcp sport . ip daddr . tcp dport @blocked4 drop\n\
                 ip6 saddr . tcp sport . ip6 daddr . tcp dport @blocked6 drop\n\
               }}\n\
             }}\n\
             add element inet {table} {set} {{ {element} timeout {secs}s }}\n"
        ))?;
        Ok(Blackhole { table })
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        if let Ok(mut nft) = nft_command() {
            let _ =
                nft.args(["delete", "table", "inet", &self.table]).stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
    }
}

/// Something seen while watching the server's socket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProbeEvent {
    /// Milliseconds since the client vanished.
    pub at_ms: u64,
    /// `keepalive` (unanswered keepalive probes) or `retransmit` (unacknowledged data resent).
    pub timer: &'static str,
    /// The probe or retransmission count the kernel reports.
    pub count: u32,
}

/// What `--drill` measured.
#[derive(Debug, Clone, Serialize)]
pub struct DrillReport {
    /// The server's side of the connection.
    pub server: SocketAddr,
    /// Ours, the one made to vanish.
    pub client: SocketAddr,
    /// When the server dropped the connection, in milliseconds after the client vanished.
    pub dropped_after_ms: Option<u64>,
    /// How long it waited, in ms.
    pub timeout_ms: u64,
    /// Each probe or retransmission seen, in order.
    pub probes: Vec<ProbeEvent>,
    /// Set when a signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) ended the drill early.
    pub interrupted: bool,
}

/// Runs the drill on `probe`'s connection for at most `timeout`, calling `on_event` for each
/// probe as it is seen (an error from it, such as a closed stdout, ends the drill). `base` gives
/// the source and proc root to read with. The rule and the connection are gone when this returns.
pub fn run(
    probe: Probe,
    timeout: Duration,
    base: &Query,
    mut on_event: impl FnMut(&ProbeEvent) -> io::Result<()>,
) -> Result<DrillReport> {
    if !os::is_root() {
        return Err(DrillError::NotRoot.into());
    }
    os::catch_termination();
    remove_stale_tables();
    let server = probe.server.local.0;
    let client = probe.client_addr();
    let mut report = DrillReport {
        server,
        client,
        dropped_after_ms: None,
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        probes: Vec::new(),
        interrupted: false,
    };
    let result = (|| -> Result<()> {
        // The element outlives the drill only briefly: if this process is killed (SIGKILL, where no
        // cleanup runs), the block lifts itself a few seconds after the drill would have ended.
        let _rule = Blackhole::install(server, client, timeout + Duration::from_secs(5))?;
        let start = Instant::now();
        let mut last: Option<(TimerKind, u32)> = None;
        while start.elapsed() < timeout {
            if os::terminate_requested() {
                report.interrupted = true;
                return Ok(());
            }
            let at_ms = start.elapsed().as_millis() as u64;
            match find_server_socket(base, server, client)? {
                Some(s) if matches!(s.state, TcpState::Established | TcpState::CloseWait) => {
                    if let Some(t) = s.timer
                        && matches!(t.kind, TimerKind::Keepalive | TimerKind::Retransmit)
                        && t.probes > 0
                        && last != Some((t.kind, t.probes))
                    {
                        let event = ProbeEvent { at_ms, timer: t.kind.name(), count: t.probes };
                        on_event(&event).map_err(Error::Output)?;
                        report.probes.push(event);
                    }
                    last = s.timer.map(|t| (t.kind, t.probes));
                }
                _ => {
                    report.dropped_after_ms = Some(at_ms);
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    })();
    // The rule is gone (dropped above); now end our side with a RST, so neither side keeps a
    // connection or a TIME-WAIT entry.
    let _ = os::linger_zero(&probe.client);
    drop(probe);
    result.map(|()| report)
}
