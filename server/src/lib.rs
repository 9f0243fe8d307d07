//! # webui-doctor-server
//!
//! Dead connections pile up on long-running servers: a client that crashes or vanishes without a
//! FIN leaves its socket `ESTABLISHED` forever (or `CLOSE-WAIT`, once the app stops reading),
//! holding a task, a file descriptor and memory. The fix is TCP keepalive with short timings on
//! every accepted socket, plus `TCP_USER_TIMEOUT`, because keepalive never probes while data sits
//! unacknowledged. This crate puts that fix into any tokio server in one line, and adds what
//! socket options cannot do everywhere: a write-progress watchdog.
//!
//! What it offers, each usable on its own:
//!
//! - [`TunedListener`]: an [`axum::serve::Listener`] that tunes every connection it accepts;
//!   [`tune`] does the same for your own accept loop; [`KeepaliveConfig`] and [`OptionOutcome`]
//!   ([`tuning`]) say what to set and what took effect.
//! - [`limit`]: a connection limiter (a total, a share per client address, a 503 past either),
//!   for `TunedListener` ([`TunedListener::with_limiter`]) or your own loop.
//! - [`watchdog`]: ends connections whose written bytes stop being acknowledged.
//! - [`sse`]: heartbeats and shutdown for long streams; [`platform`]: which option exists where.
//!
//! Its public API names only std, tokio, axum and socket2 types: counts are plain numbers
//! ([`ListenerStats`], [`Watchdog::ended`]) for whatever metrics library you use.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use webui_doctor_server::{KeepaliveConfig, TunedListener};
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let app = Router::new().route("/", get(|| async { "hello" }));
//! axum::serve(TunedListener::bind("0.0.0.0:8080", KeepaliveConfig::default()).await?, app).await
//! # }
//! ```
//!
//! With the default [`KeepaliveConfig`] (idle 10 s, interval 5 s, 3 probes, user timeout 25 s) a
//! peer that vanishes is dropped after about 25 s, idle or not. Measured on Linux 6.18 with the
//! `axum_sse` example at 2 s / 1 s / 3 (see the crate README): an idle stream's vanished client
//! was dropped after ~5 s, one with heartbeats in flight and a 5 s user timeout after ~6.5 s.

#![deny(missing_docs)]

pub mod limit;
mod listener;
pub mod platform;
pub mod sse;
pub mod tuning;
pub mod watchdog;

pub use limit::ConnectionLimiter;
pub use listener::{ListenerStats, TunedListener, TunedStream};
pub use tokio_util::sync::CancellationToken;
pub use tuning::{KeepaliveConfig, OptionOutcome, SocketOption, tune};
pub use watchdog::Watchdog;
