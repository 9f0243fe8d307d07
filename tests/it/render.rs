//! The output shapes, pinned: table, summary, JSON and Prometheus text for a fixed set of
//! sockets (decoded from a /proc/net/tcp fixture, so the values are deterministic).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use webui_doctor::analysis::{Report, Summary};
use webui_doctor::diagnose::Facts;
use webui_doctor::filter::Filter;
use webui_doctor::model::{Attribution, Family, Idle, KeepaliveSysctls, Process, Snapshot, Source};
use webui_doctor::render;
use webui_doctor::render::table::{Columns, Style};
use webui_doctor::source::procfs;

use crate::util::*;

const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2253 00000000:0000 0A 00000000:00000003 00:00000000 00000000  1000        0 1001 1
   1: 0100007F:2253 0100007F:A1B2 01 00000000:00000000 02:000003B6 00000000  1000        1 1002 1
   2: 0100007F:2253 0100007F:A1B4 08 00000000:00000005 00:00000000 00000000  1000        0 1003 1
   3: 0100007F:A1B6 0100007F:2253 06 00000000:00000000 03:00000BB8 00000000     0        0 0 3
   4: 0100007F:2253 0100007F:A1B8 01 000000B4:00000000 01:00000014 00000003  1000        0 1004 1
";
const TCP6: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:0050 00000000000000000000000001000000:C350 01 00000000:00000000 00:00000000 00000000     0        0 2001 1
";

fn snapshot() -> Snapshot {
    let mut sockets = Vec::new();
    for (text, family) in [(TCP, Family::Inet), (TCP6, Family::Inet6)] {
        procfs::parse_table(
            text.as_bytes(),
            Path::new("tcp"),
            family,
            100,
            &Filter::default(),
            Default::default(),
            &mut sockets,
        )
        .unwrap();
    }
    sockets[1].idle = Some(Idle { last_recv_ms: 123_000, last_send_ms: 9_500 });
    sockets[2].idle = Some(Idle { last_recv_ms: 7_380_000, last_send_ms: 7_380_000 });
    for s in sockets.iter_mut().filter(|s| s.inode >= 1001 && s.inode < 2000) {
        s.process = Some(Process { pid: 4242, comm: "python3".into() });
    }
    Snapshot {
        source: Source::Procfs,
        taken_at: UNIX_EPOCH + Duration::from_secs(1_764_000_000),
        sockets,
        unavailable: Vec::new(),
        processes: Vec::new(),
        queues: Vec::new(),
    }
}

fn report<'a>(snapshot: &'a Snapshot, filter: &'a Filter) -> Report<'a> {
    Report {
        summary: Summary::of(&snapshot.sockets),
        findings: webui_doctor::diagnose::diagnose(
            &snapshot.sockets,
            &Facts {
                sysctls: Some(KeepaliveSysctls { time_s: 7200, intvl_s: 75, probes: 9 }),
                listening: webui_doctor::analysis::listening_ports(&snapshot.sockets),
                processes_joined: true,
                processes: Vec::new(),
                ..Facts::default()
            },
        ),
        snapshot,
        filter,
        netns: None,
        groups: None,
        namespaces_skipped: None,
        tcpext: None,
        cures: Vec::new(),
        attribution: Some(Attribution {
            unattributed: 1,
            denied_processes: 2,
            sockopts_unread: None,
            sockopts_skipped_net_cls: None,
        }),
    }
}

fn text(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    f(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn table_shape() {
    let (snap, filter) = (snapshot(), Filter::default());
    let r = report(&snap, &filter);
    insta::assert_snapshot!(
        "table",
        text(|o| render::table::write(o, &r, Style::PLAIN, Columns { processes: true, ..Columns::default() }))
    );
}

#[test]
fn json_shape() {
    let (snap, filter) = (snapshot(), Filter::default());
    let r = report(&snap, &filter);
    insta::assert_snapshot!("json", text(|o| render::json::write(o, &r)));
}

#[test]
fn prometheus_shape() {
    let snap = snapshot();
    let listening = webui_doctor::analysis::listening_ports(&snap.sockets);
    let by_port = Summary::by_port(&snap.sockets, &listening);
    let metrics = render::prometheus::SocketMetrics::new(by_port, snap.source);
    insta::assert_snapshot!("prometheus", text(|o| render::prometheus::write(o, metrics)));
}

#[test]
fn summary_equals_a_brute_force_count() {
    let snap = snapshot();
    let summary = Summary::of(&snap.sockets);
    for (state, n) in summary.by_state.iter() {
        assert_eq!(n, snap.sockets.iter().filter(|s| s.state == state).count(), "{state:?}");
    }
    assert_eq!(summary.total, snap.sockets.len());
    assert_eq!(summary.keepalive.established, 3);
    assert_eq!(summary.keepalive.armed, 1);
}

#[test]
fn colour_only_on_a_terminal_without_no_color() {
    let (snap, filter) = (snapshot(), Filter::default());
    let r = report(&snap, &filter);
    let coloured = text(|o| render::table::write(o, &r, Style { tty: true, colour: true }, Columns::default()));
    assert!(coloured.contains("\x1b["), "{coloured}");
    let plain = text(|o| render::table::write(o, &r, Style { tty: true, colour: false }, Columns::default()));
    assert!(!plain.contains('\x1b'), "{plain}");
}

/// On a real pseudo-terminal (`script`), CLOSE-WAIT is coloured; `NO_COLOR=1` turns it off.
#[test]
fn no_color_is_honoured_on_a_real_terminal() {
    if !require(Path::new("/usr/bin/script").exists(), "script (util-linux)") {
        return;
    }
    let f = Fixture::new(false);
    let cmdline = format!("{} sockets --port {}", env!("CARGO_BIN_EXE_webui-doctor"), f.port);
    let on_tty = |no_color: bool| {
        let mut c = Command::new("script");
        c.args(["-qec", &cmdline, "/dev/null"]).env("TERM", "xterm").env_remove("NO_COLOR");
        if no_color {
            c.env("NO_COLOR", "1");
        }
        let out = c.output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = on_tty(false);
    assert!(coloured.contains("CLOSE-WAIT") && coloured.contains("\x1b["), "{coloured:?}");
    let plain = on_tty(true);
    assert!(plain.contains("CLOSE-WAIT") && !plain.contains('\x1b'), "{plain:?}");
    // And piped, never.
    let piped = stdout(&run(&["sockets", "--port", &f.port.to_string()]));
    assert!(!piped.contains('\x1b'));
}
