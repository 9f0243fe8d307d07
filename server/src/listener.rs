//! [`TunedListener`]: a tokio `TcpListener` that puts the keepalive fix on every connection it
//! accepts, for `axum::serve` (it implements [`axum::serve::Listener`]) or any accept loop.
//!
//! ```no_run
//! use axum::{Router, routing::get};
//! use webui_doctor_server::{KeepaliveConfig, TunedListener};
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let app = Router::new().route("/", get(|| async { "hello" }));
//! axum::serve(TunedListener::bind("127.0.0.1:3000", KeepaliveConfig::default()).await?, app).await
//! # }
//! ```

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

use crate::limit::{self, ConnectionLimiter, ConnectionPermit, Rejected};
use crate::tuning::{self, KeepaliveConfig, OptionOutcome, SocketOption};
use crate::watchdog::{Progress, Watchdog};

/// A TCP listener whose accepted connections all carry the keepalive fix (each option set on
/// its own; see [`tune`](crate::tune)) and, with [`with_watchdog`](TunedListener::with_watchdog),
/// a write-progress watchdog.
///
/// ```
/// use std::time::Duration;
/// use webui_doctor_server::{KeepaliveConfig, TunedListener};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// let config = KeepaliveConfig::new(Duration::from_secs(2), Duration::from_secs(1), 3);
/// let mut listener = TunedListener::bind("127.0.0.1:0", config).await?.with_watchdog(Duration::from_secs(30));
/// let addr = listener.local_addr()?;
/// let _client = tokio::net::TcpStream::connect(addr).await?;
/// let (stream, _peer) = axum::serve::Listener::accept(&mut listener).await;
/// assert_eq!(listener.stats().accepted(), 1);
/// # #[cfg(target_os = "linux")]
/// assert!(stream.outcomes().iter().all(|o| o.ok()));
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct TunedListener {
    listener: TcpListener,
    config: KeepaliveConfig,
    watchdog: Option<Watchdog>,
    limiter: Option<ConnectionLimiter>,
    stats: ListenerStats,
}

impl TunedListener {
    /// Binds a tokio `TcpListener` to `addr` and tunes what it accepts with `config`.
    pub async fn bind(addr: impl ToSocketAddrs, config: KeepaliveConfig) -> io::Result<TunedListener> {
        Ok(TunedListener::from_listener(TcpListener::bind(addr).await?, config))
    }

    /// Tunes what an existing listener accepts (one you bound with your own backlog, say).
    pub fn from_listener(listener: TcpListener, config: KeepaliveConfig) -> TunedListener {
        TunedListener { listener, config, watchdog: None, limiter: None, stats: ListenerStats::default() }
    }

    /// Ends any connection whose written bytes stay unacknowledged for `deadline` (see
    /// [`watchdog`](crate::watchdog)); counted in [`ListenerStats::watchdog_ended`].
    pub fn with_watchdog(mut self, deadline: Duration) -> TunedListener {
        let watchdog = Watchdog::new(deadline);
        *self.stats.inner.watchdog.lock().unwrap_or_else(|p| p.into_inner()) = Some(watchdog.clone());
        self.watchdog = Some(watchdog);
        self
    }

    /// Admits connections through `limiter` (see [`limit`](crate::limit)): one past its total or
    /// its per-address cap gets a 503 and is closed, never handed to the server; counted in
    /// [`ListenerStats::rejected_by`].
    pub fn with_limiter(mut self, limiter: ConnectionLimiter) -> TunedListener {
        self.limiter = Some(limiter);
        self
    }

    /// What the listener has done so far; a handle that stays current (cheap to clone).
    pub fn stats(&self) -> ListenerStats {
        self.stats.clone()
    }

    /// The options every accepted connection gets.
    pub fn config(&self) -> &KeepaliveConfig {
        &self.config
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts one connection and tunes it; errors are the caller's to handle (the
    /// [`Listener`](axum::serve::Listener) implementation retries them).
    /// With a limiter, connections it refuses are answered and closed here, and the next one is
    /// awaited.
    pub async fn accept_tuned(&self) -> io::Result<(TunedStream, SocketAddr)> {
        loop {
            let (stream, peer) = self.listener.accept().await?;
            let permit = match self.limiter.as_ref().map(|l| l.try_acquire(peer.ip())) {
                None => None,
                Some(Ok(permit)) => Some(permit),
                Some(Err(why)) => {
                    self.stats.rejected(why);
                    tokio::spawn(limit::reject(stream));
                    continue;
                }
            };
            let mut stream = TunedStream::new(stream, &self.config, self.watchdog.as_ref());
            stream.permit = permit;
            self.stats.record(stream.outcomes());
            return Ok((stream, peer));
        }
    }
}

impl axum::serve::Listener for TunedListener {
    type Io = TunedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TunedStream, SocketAddr) {
        loop {
            match self.accept_tuned().await {
                Ok(pair) => return pair,
                // The peer gave up before we took it: nothing to wait for.
                Err(e) if is_connection_error(&e) => continue,
                Err(e) => {
                    // Out of file descriptors, most likely: wait for some to close instead of
                    // spinning on the error (what axum does for its own TcpListener).
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

/// What a [`TunedListener`] has done: connections accepted, options that failed, what the last
/// connection got, and what the watchdog ended.
#[derive(Debug, Clone, Default)]
pub struct ListenerStats {
    inner: Arc<StatsInner>,
}

#[derive(Debug, Default)]
struct StatsInner {
    accepted: AtomicU64,
    failures: [AtomicU64; SocketOption::ALL.len()],
    last: Mutex<Vec<OptionOutcome>>,
    /// Refused by the limiter: over the total, over the per-address cap.
    rejected: [AtomicU64; 2],
    /// The watchdog, whose own count `watchdog_ended` reads (see `with_watchdog`).
    watchdog: Mutex<Option<Watchdog>>,
}

impl ListenerStats {
    fn rejected(&self, why: Rejected) {
        self.inner.rejected[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    fn record(&self, outcomes: &[OptionOutcome]) {
        self.inner.accepted.fetch_add(1, Ordering::Relaxed);
        for o in outcomes.iter().filter(|o| !o.ok()) {
            if let Some(i) = SocketOption::ALL.iter().position(|n| *n == o.option) {
                self.inner.failures[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut last = self.inner.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_slice() != outcomes {
            *last = outcomes.to_vec();
        }
    }

    /// Connections accepted.
    pub fn accepted(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    /// For each option, how many accepted connections it failed on.
    pub fn option_failures(&self) -> Vec<(SocketOption, u64)> {
        SocketOption::ALL.iter().zip(&self.inner.failures).map(|(n, c)| (*n, c.load(Ordering::Relaxed))).collect()
    }

    /// Each option's outcome on the last connection accepted (empty before the first).
    pub fn last_outcomes(&self) -> Vec<OptionOutcome> {
        self.inner.last.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Connections the watchdog ended.
    pub fn watchdog_ended(&self) -> u64 {
        self.inner.watchdog.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map_or(0, Watchdog::ended)
    }

    /// Connections the limiter refused with a 503, over the total and over the per-address cap.
    pub fn rejected_by(&self, why: Rejected) -> u64 {
        self.inner.rejected[why as usize].load(Ordering::Relaxed)
    }
}

/// An accepted, tuned connection: a tokio `TcpStream` with the outcome of each option, and the
/// watchdog's bookkeeping when there is one. Reads and writes go straight to the stream; once
/// the watchdog fires they fail with `TimedOut`, and the connection closes with a reset.
#[derive(Debug)]
pub struct TunedStream {
    stream: TcpStream,
    outcomes: Vec<OptionOutcome>,
    progress: Option<Progress>,
    /// The limiter's place for this connection, freed when the stream is dropped.
    permit: Option<ConnectionPermit>,
}

impl TunedStream {
    /// Tunes `stream` with `config` and, given a watchdog, watches its write progress: for
    /// accept loops of your own (hyper's, say).
    pub fn new(stream: TcpStream, config: &KeepaliveConfig, watchdog: Option<&Watchdog>) -> TunedStream {
        let outcomes = tuning::tune(&stream, config);
        TunedStream { stream, outcomes, progress: watchdog.cloned().map(Progress::new), permit: None }
    }

    /// Each option's outcome on this connection.
    pub fn outcomes(&self) -> &[OptionOutcome] {
        &self.outcomes
    }

    /// The tokio stream inside.
    pub fn get_ref(&self) -> &TcpStream {
        &self.stream
    }

    /// Holds `permit` for as long as this stream lives (for accept loops of your own that admit
    /// connections through a [`ConnectionLimiter`]).
    pub fn with_permit(mut self, permit: ConnectionPermit) -> TunedStream {
        self.permit = Some(permit);
        self
    }

    /// The tokio stream inside (the watchdog no longer watches it, and a limiter's place is
    /// freed).
    pub fn into_inner(self) -> TcpStream {
        self.stream
    }

    /// The watchdog's verdict, when it is due: an error to fail the connection with.
    fn check(&mut self, cx: &mut Context<'_>) -> Option<io::Error> {
        let progress = self.progress.as_mut()?;
        match progress.poll_check(cx, SockRef::from(&self.stream)) {
            Poll::Ready(e) => Some(e),
            Poll::Pending => None,
        }
    }

    fn wrote(&mut self, cx: &mut Context<'_>, result: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        if let (Poll::Ready(Ok(n)), Some(p)) = (&result, self.progress.as_mut()) {
            p.wrote(*n);
            // Polls the timer just armed, so this task is woken when it is due.
            if let Some(e) = self.check(cx) {
                return Poll::Ready(Err(e));
            }
        }
        result
    }
}

impl AsyncRead for TunedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        // hyper keeps a read pending on every connection, streaming or idle: that is where a
        // stalled stream's deadline comes due.
        if let Some(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TunedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        this.wrote(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.wrote(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}
