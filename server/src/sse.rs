//! Server-Sent Events for long streams: a heartbeat comment during silence (so proxies and the
//! kernel's keepalive see a live connection, and a vanished client is found by the next write)
//! and an end on shutdown (an open stream would otherwise hold graceful shutdown forever).
//!
//! ```
//! use std::time::Duration;
//! use axum::response::sse::Event;
//! use futures_util::stream;
//! use webui_doctor_server::{CancellationToken, sse};
//!
//! async fn events(shutdown: CancellationToken) -> impl axum::response::IntoResponse {
//!     let ticks = stream::iter(0..3).map(|i| Ok::<_, std::convert::Infallible>(Event::default().data(i.to_string())));
//!     sse::stream(ticks, Duration::from_secs(15), shutdown)
//! }
//! # use futures_util::StreamExt;
//! ```

use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// `events` as an SSE response: `: keepalive` after `heartbeat` without an event, and the
/// stream ended when `shutdown` is cancelled. Serve it through a
/// [`TunedListener`](crate::TunedListener) with a watchdog and a client that stops reading is
/// ended too.
pub fn stream<S, E>(
    events: S,
    heartbeat: Duration,
    shutdown: CancellationToken,
) -> Sse<impl Stream<Item = Result<Event, E>>>
where
    S: Stream<Item = Result<Event, E>> + Send + 'static,
    E: Into<axum::BoxError>,
{
    Sse::new(events.take_until(shutdown.cancelled_owned()))
        .keep_alive(KeepAlive::new().interval(heartbeat).text("keepalive"))
}
