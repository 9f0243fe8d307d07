//! The server crate as other services use it: its `axum_sse` and `hyper_loop` examples run as
//! real processes, their accepted sockets read back with `sockets -O`, their dead peers made
//! with nftables, and the write-progress watchdog against a client that stopped reading.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::serve::time_to_drop_of;
use crate::server::*;
use crate::util::*;

/// The example binary `name`, from this build's target directory (`cargo test --workspace`
/// builds the examples; `cargo test --test it` alone does not, so it is built here if missing).
fn example(name: &str) -> PathBuf {
    let debug = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    let path = debug.join("examples").join(name);
    if !path.exists() {
        let ok = Command::new(env!("CARGO"))
            .args(["build", "--quiet", "-p", "webui-doctor-server", "--example", name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "could not build the {name} example");
    }
    path
}

/// `axum_sse` on a free loopback port with `args`.
fn axum_sse(args: &[&str]) -> Serve {
    let mut c = Command::new(example("axum_sse"));
    c.arg("127.0.0.1:0").args(args);
    Serve::launch(c)
}

fn open_events(server: &Serve) -> (Http, u16) {
    Http::connect(server.addr).open("/events")
}

/// Every accepted connection carries all six options, as `sockets -O` reads them back from the
/// example's own socket.
#[test]
fn axum_sse_example_puts_all_six_options_on_each_connection() {
    let server = axum_sse(&[]);
    let (_stream, client_port) = open_events(&server);
    let v = json(&["sockets", "-O", "--sport", &server.port().to_string(), "--dport", &client_port.to_string()]);
    let s = &v["sockets"][0];
    assert_eq!(s["state"], "established", "{v:#}");
    let o = &s["sockopts"];
    assert_eq!(o["so_keepalive"], true, "{o}");
    assert_eq!(o["tcp_nodelay"], true, "{o}");
    assert_eq!((&o["keepidle_s"], &o["keepintvl_s"], &o["keepcnt"]), (&10.into(), &5.into(), &3.into()), "{o}");
    assert_eq!(o["user_timeout_ms"], 25_000, "{o}");
}

/// A vanished client of the example (its server's packets dropped on the way, no FIN): an idle
/// stream at keepalive 2/1/3 is dropped after 5 ± 1.5 s; with a heartbeat in flight every
/// second and a 5 s user timeout, within 8 s.
#[test]
fn axum_sse_example_drops_vanished_clients() {
    if !require(have_nft(), "root and nftables") {
        return;
    }
    let fast = ["--idle", "2", "--interval", "1", "--count", "3", "--watchdog", "0", "--heartbeat", "3600"];
    let idle = axum_sse(&[&fast[..], &["--every", "3600"]].concat());
    let beating = axum_sse(&[&fast[..], &["--every", "1", "--user-timeout", "5"]].concat());
    let other = std::thread::spawn(move || {
        let (dropped, send_q, _) = time_to_drop_of(&beating, || open_events(&beating), Duration::from_secs(8));
        (dropped, send_q)
    });
    let (dropped, _, state) = time_to_drop_of(&idle, || open_events(&idle), Duration::from_secs(8));
    let dropped = dropped.unwrap_or_else(|| panic!("the idle stream's dead peer is still {state} after 8 s"));
    eprintln!("axum_sse, idle stream: dead peer dropped after {:.2} s", dropped.as_secs_f64());
    assert!(
        dropped >= Duration::from_millis(3500) && dropped <= Duration::from_millis(6500),
        "dropped after {dropped:?}, not 5 ± 1.5 s"
    );
    let (in_flight, send_q) = other.join().unwrap();
    let in_flight = in_flight.expect("with heartbeats in flight the dead peer is dropped within 8 s");
    eprintln!(
        "axum_sse, heartbeats in flight: dead peer dropped after {:.2} s ({send_q} bytes queued at most)",
        in_flight.as_secs_f64()
    );
    assert!(send_q > 0, "nothing was in flight");
}

/// A client that stops reading (its receive window closes, yet it acknowledges every probe)
/// holds a stream open forever unless something watches the write progress: the watchdog (2 s)
/// ends it within its deadline + 1 s, and leaves a slow client that keeps reading alone. No
/// user timeout here, so nothing else could end it; without the watchdog it is still there.
#[test]
fn watchdog_ends_a_stalled_reader_and_spares_a_slow_one() {
    // 4 KB every 10 ms: a window closes in well under a second.
    let flood = ["--user-timeout", "0", "--every", "0.01", "--pad", "4000", "--heartbeat", "3600"];
    let watched = axum_sse(&[&flood[..], &["--watchdog", "2"]].concat());
    let unwatched = axum_sse(&[&flood[..], &["--watchdog", "0"]].concat());
    // Clients with a small receive buffer, so a window closes at once when its reader stops.
    let small = |server: &Serve| Http::small_window(server.addr).open("/events");
    let server_side = |server: &Serve, port: u16| server_socket(server.port(), port).map(|s| s["state"].clone());

    let (stalled, stalled_port) = small(&watched);
    let (control, control_port) = small(&unwatched);
    let (mut slow, slow_port) = small(&watched);
    let start = Instant::now();
    let mut ended = None;
    let mut slow_read = 0;
    while start.elapsed() < Duration::from_secs(6) {
        // The slow client reads 2 KB every 100 ms: 20 KB/s against the 400 KB/s offered.
        slow_read += slow.read_some(2048);
        if ended.is_none() && server_side(&watched, stalled_port).is_none_or(|s| s != "established") {
            ended = Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ended = ended.expect("the stalled stream was not ended within 6 s");
    eprintln!(
        "watchdog 2 s: stalled reader ended after {:.2} s; slow reader read {slow_read} bytes in 6 s",
        ended.as_secs_f64()
    );
    assert!(
        ended >= Duration::from_millis(1500),
        "ended after {ended:?}: sooner than the deadline, so not the watchdog"
    );
    assert!(ended <= Duration::from_secs(3), "ended after {ended:?}: later than the deadline + 1 s");
    assert_eq!(server_side(&watched, slow_port), Some("established".into()), "the slow reader was ended");
    assert!(slow_read > 50_000, "the slow client got {slow_read} bytes: it was not served");
    assert_eq!(server_side(&unwatched, control_port), Some("established".into()), "without the watchdog it stays");
    drop((stalled, control));
}

/// The bare hyper loop serves a request over a tuned connection.
#[test]
fn hyper_example_serves_over_a_tuned_connection() {
    let mut c = Command::new(example("hyper_loop"));
    c.arg("127.0.0.1:0");
    let server = Serve::launch(c);
    let mut http = Http::connect(server.addr);
    let r = http.get("/", &[]);
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "hello from a tuned connection\n");
    let client_port = http.stream().local_addr().unwrap().port();
    let inode =
        server_socket(server.port(), client_port).expect("the kept-alive connection")["inode"].as_u64().unwrap();
    let o = sockopts_of(server.pid(), inode);
    assert!(o.so_keepalive && o.tcp_nodelay, "{o:?}");
    assert_eq!((o.keepidle_s, o.keepintvl_s, o.keepcnt, o.user_timeout_ms), (10, 5, 3, 25_000));
}

/// The server crate's default user timeout (what an adopter's connections get) and the library's
/// keepalive rule (what `fix` sets and the findings judge by) are the same arithmetic, written
/// once in each crate so that neither depends on the other: they must agree everywhere, the
/// saturating ends included.
#[test]
fn the_server_crate_and_the_library_agree_on_the_keepalive_rule() {
    use webui_doctor::deadpeer::keepalive_ms;
    use webui_doctor_server::KeepaliveConfig;
    for idle in [1u32, 2, 10, 600, 7200, 32767] {
        for interval in [1u32, 5, 75, 32767] {
            for count in [1u32, 3, 9, 127] {
                let secs = |s: u32| Duration::from_secs(s.into());
                let server = KeepaliveConfig::new(secs(idle), secs(interval), count).user_timeout;
                let library = keepalive_ms(idle.into(), interval.into(), count.into());
                assert_eq!(server, Some(Duration::from_millis(library)), "{idle}/{interval}/{count}");
            }
        }
    }
}
