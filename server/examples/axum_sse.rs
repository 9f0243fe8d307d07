//! A minimal axum app with an SSE route, served through `TunedListener`: every accepted
//! connection gets the keepalive fix and the write-progress watchdog.
//!
//!     cargo run -p webui-doctor-server --example axum_sse -- 127.0.0.1:3000
//!     curl -N http://127.0.0.1:3000/events
//!
//! Flags (all optional): `--idle S --interval S --count N` (keepalive; default 10/5/3),
//! `--user-timeout S` (default idle + interval × count; 0 leaves the kernel default),
//! `--watchdog S` (default 30; 0 for none), `--every S` (seconds between events, default 1),
//! `--pad BYTES` (extra bytes per event, default 0), `--heartbeat S` (`: keepalive` after this
//! long without an event, default 15).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::response::sse::Event;
use axum::routing::get;
use futures_util::StreamExt;
use tokio_stream::wrappers::IntervalStream;
use webui_doctor_server::{CancellationToken, KeepaliveConfig, TunedListener, sse};

struct Options {
    addr: SocketAddr,
    keepalive: KeepaliveConfig,
    watchdog: Duration,
    every: Duration,
    pad: usize,
    heartbeat: Duration,
}

fn options() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().ok_or("usage: axum_sse ADDR:PORT [flags]")?;
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let (mut idle, mut interval, mut count) = (10.0, 5.0, 3u32);
    let (mut user_timeout, mut watchdog, mut every, mut pad, mut heartbeat) = (None, 30.0, 1.0, 0usize, 15.0);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let secs = || value.parse::<f64>().map_err(|e| format!("{flag} {value}: {e}")).map(|s| s.max(0.0));
        match flag.as_str() {
            "--idle" => idle = secs()?,
            "--interval" => interval = secs()?,
            "--count" => count = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?,
            "--user-timeout" => user_timeout = Some(secs()?),
            "--watchdog" => watchdog = secs()?,
            "--every" => every = secs()?,
            "--pad" => pad = value.parse().map_err(|e| format!("{flag} {value}: {e}"))?,
            "--heartbeat" => heartbeat = secs()?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    let mut keepalive = KeepaliveConfig::new(Duration::from_secs_f64(idle), Duration::from_secs_f64(interval), count);
    if let Some(t) = user_timeout {
        keepalive.user_timeout = (t > 0.0).then(|| Duration::from_secs_f64(t));
    }
    Ok(Options {
        addr,
        keepalive,
        watchdog: Duration::from_secs_f64(watchdog),
        every: Duration::from_secs_f64(every.max(0.001)),
        pad,
        heartbeat: Duration::from_secs_f64(heartbeat.max(0.001)),
    })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let o = options().unwrap_or_else(|e| {
        eprintln!("axum_sse: {e}");
        std::process::exit(2);
    });
    let shutdown = CancellationToken::new();
    let (every, pad, heartbeat) = (o.every, o.pad, o.heartbeat);
    let events = {
        let shutdown = shutdown.clone();
        move || {
            let ticks = IntervalStream::new(tokio::time::interval(every)).enumerate().map(move |(i, _)| {
                Ok::<_, Infallible>(Event::default().event("tick").data(format!("{i} {}", "x".repeat(pad))))
            });
            std::future::ready(sse::stream(ticks, heartbeat, shutdown.clone()))
        }
    };
    let app = Router::new().route("/", get(|| async { "hello\n" })).route("/events", get(events));

    // The one line: every accepted connection gets the options (and the watchdog).
    let mut listener = TunedListener::bind(o.addr, o.keepalive).await?;
    if !o.watchdog.is_zero() {
        listener = listener.with_watchdog(o.watchdog);
    }
    eprintln!("axum_sse: listening on http://{}", listener.local_addr()?);
    let stats = listener.stats();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = tokio::signal::ctrl_c().await;
            shutdown.cancel();
        })
        .await?;
    eprintln!("axum_sse: {} connections, {} ended by the watchdog", stats.accepted(), stats.watchdog_ended());
    Ok(())
}
