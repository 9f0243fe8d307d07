//! webui-doctor's dashboard server (`webui-doctor serve`): the page, its SSE stream, the JSON
//! API, `/metrics`, access control — built on the reusable half of the crate ([`TunedStream`],
//! [`Watchdog`], [`sse`](webui_doctor_server::sse)). It knows nothing of how sockets are inspected; the caller
//! hands it a [`SnapshotProvider`].
//!
//! The shape: one accept loop ([`Server::run`]) that owns the
//! listener, bounds connections with a semaphore and applies socket options in one place
//! ([`TunedStream::new`]); one task per connection, served by hyper's HTTP/1 connection (not
//! `axum::serve`, which exposes no header read timeout, and not hyper-util's HTTP/1+2 `auto`
//! builder, whose connections cost 8 KiB more each: 206 against 127 MiB for 10,000 SSE
//! streams; browsers never speak cleartext HTTP/2 anyway); and one shutdown signal, a
//! [`CancellationToken`], that stops the accept loop and ends every SSE stream, so graceful
//! shutdown is not held open by streams that never finish on their own.

mod auth;
mod clients;
mod guard;
mod handoff;
mod hub;
mod metrics;
mod reads;
mod routes;
pub mod web_config;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use self::metrics::ServerMetrics;
use webui_doctor_server::limit::{self, ConnectionLimiter};
use webui_doctor_server::tuning::{self, KeepaliveConfig, OptionOutcome};
use webui_doctor_server::{TunedStream, Watchdog};

/// Everything `webui-doctor serve` can set.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The options every accepted connection gets.
    pub keepalive: KeepaliveConfig,
    /// End a connection whose written bytes stay unacknowledged this long (the SSE stream to a
    /// client that stopped reading, or vanished where `TCP_USER_TIMEOUT` does not exist); `None`
    /// for no watchdog.
    pub watchdog: Option<Duration>,
    /// SSE `: keepalive` comment after this long without an event.
    pub heartbeat: Duration,
    /// How often the watched selection is read and pushed to every SSE client.
    pub snapshot_period: Duration,
    /// A connection that has not sent a complete request header by then is closed.
    pub header_timeout: Duration,
    /// A request body (the log-in form) that has not arrived whole by then ends the connection.
    pub body_timeout: Duration,
    /// Connections open at once; past it, 503.
    pub max_connections: usize,
    /// Requests and SSE streams in flight at once from one client address (`/healthz` aside);
    /// past it, 503. Connections from one address are capped at twice this.
    pub max_connections_per_ip: usize,
    /// SSE streams open at once; past it, 503.
    pub max_sse_clients: usize,
    /// Without a token, `Host` names served besides the listening address, `localhost`,
    /// `127.0.0.1` and `[::1]` (a DNS-rebinding page sends its own name and gets 403).
    pub allowed_hosts: Vec<String>,
    /// Required as `Authorization: Bearer TOKEN` (or a log-in session cookie) on every route but
    /// `/healthz`. Mandatory when `listen` is not a loopback address.
    pub token: Option<String>,
    /// How long a log-in session lasts.
    pub session_lifetime: Duration,
    /// How long graceful shutdown waits for connections before it closes them.
    pub shutdown_grace: Duration,
    /// An exporter-toolkit web configuration file (TLS, basic auth, response headers): see
    /// [`web_config`]. Re-read when it changes.
    pub web_config: Option<std::path::PathBuf>,
    /// Serve plain HTTP on a non-loopback address (otherwise refused without TLS).
    pub allow_plain_http: bool,
    /// The slowest a reader may acknowledge a response, in bytes per second, judged over
    /// `body_timeout` while bytes wait to be sent: a slower one is cut. 0: no floor.
    pub min_send_rate: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            keepalive: KeepaliveConfig::default(),
            watchdog: Some(Duration::from_secs(30)),
            heartbeat: Duration::from_secs(30),
            snapshot_period: Duration::from_secs(2),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 4096,
            max_connections_per_ip: 64,
            max_sse_clients: 1024,
            allowed_hosts: Vec::new(),
            token: None,
            session_lifetime: Duration::from_secs(12 * 3600),
            shutdown_grace: Duration::from_secs(5),
            min_send_rate: 16 * 1024,
            web_config: None,
            allow_plain_http: false,
        }
    }
}

/// Why a provider could not answer.
#[derive(Debug)]
pub enum ProviderError {
    /// The request's parameters were wrong: HTTP 400 with this message.
    BadRequest(String),
    /// The request asks for something this server does not serve: HTTP 403 with this message.
    Forbidden(String),
    /// Reading the sockets failed: HTTP 500 with this message.
    Internal(String),
}

/// Where the server's data comes from. Calls may block (they read the kernel), so the server
/// runs them on tokio's blocking pool.
pub trait SnapshotProvider: Send + Sync + 'static {
    /// `/api/snapshot`: a JSON document for these query parameters.
    fn snapshot(&self, query: &[(String, String)]) -> Result<String, ProviderError>;
    /// The watched selection, as one line of JSON: sent to every SSE client each period.
    fn watched(&self) -> Result<String, ProviderError>;
    /// The socket gauges in Prometheus text format; the server appends its own counters.
    fn metrics(&self) -> Result<String, ProviderError>;
}

/// Why the server could not start.
#[derive(Debug)]
pub enum StartError {
    /// A non-loopback address without a token.
    TokenRequired(SocketAddr),
    /// The address could not be bound.
    Bind(SocketAddr, io::Error),
    /// A token shorter than [`MIN_TOKEN_BYTES`]: guessable.
    WeakToken(usize),
    /// A non-loopback address without TLS, and plain HTTP was not allowed.
    PlainHttp(SocketAddr),
    /// The web configuration file could not be used.
    WebConfig(crate::dashboard::web_config::WebConfigError),
}

/// The shortest access token accepted (16 bytes: 128 bits if random).
pub const MIN_TOKEN_BYTES: usize = 16;

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::TokenRequired(addr) => write!(
                f,
                "refusing to listen on {addr} without an access token or basic_auth_users: it is not a loopback address"
            ),
            StartError::PlainHttp(addr) => write!(
                f,
                "refusing to serve plain HTTP on {addr}: it is not a loopback address (give a web configuration file with tls_server_config, or allow plain HTTP explicitly)"
            ),
            StartError::WebConfig(e) => write!(f, "web configuration: {e}"),
            StartError::Bind(addr, _) => write!(f, "cannot listen on {addr}"),
            StartError::WeakToken(n) => {
                write!(
                    f,
                    "the access token is {n} bytes; at least {MIN_TOKEN_BYTES} are required (try: openssl rand -hex 32)"
                )
            }
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Bind(_, e) => Some(e),
            StartError::WebConfig(e) => Some(e),
            StartError::TokenRequired(_) | StartError::WeakToken(_) | StartError::PlainHttp(_) => None,
        }
    }
}

/// Shared by every request handler.
#[derive(Clone)]
pub(crate) struct AppState {
    pub provider: Arc<dyn SnapshotProvider>,
    pub token: Option<Arc<auth::Secret>>,
    pub metrics: ServerMetrics,
    pub hub: hub::Hub,
    pub config: Arc<Config>,
    /// What the keepalive options did on a probe socket at start.
    pub probe: Arc<Vec<OptionOutcome>>,
    /// The caller's shutdown signal, set by [`Server::run`] before anything uses it.
    pub shutdown: CancellationToken,
    /// Ends connections whose written bytes stop being acknowledged (counted in metrics).
    pub watchdog: Option<Watchdog>,
    pub sse_permits: Arc<Semaphore>,
    /// Provider calls for requests: bounded, shared between identical requests, and never
    /// multiplied by clients that hang up (see `reads`).
    pub reads: Arc<reads::Reads>,
    /// Log-in sessions (the cookie carries a session id, never the token).
    pub sessions: Arc<auth::Sessions>,
    /// The `Host` values served without a token (the bound port included).
    pub hosts: Arc<guard::AllowedHosts>,
    /// What each client address holds (connections, requests, unauthenticated connections,
    /// failed log-ins).
    pub clients: Arc<clients::Clients>,
    /// The web configuration file, kept current.
    pub web: Option<Arc<crate::dashboard::web_config::Reloading>>,
}

/// The dashboard server: bound by [`Server::bind`], served by [`Server::run`].
///
/// ```no_run
/// use std::sync::Arc;
/// use webui_doctor_server::CancellationToken;
/// use webui_doctor::dashboard::{Config, ProviderError, Server, SnapshotProvider};
///
/// /// Serves fixed documents: a real provider reads the kernel's socket tables.
/// struct Fixed;
///
/// impl SnapshotProvider for Fixed {
///     fn snapshot(&self, _query: &[(String, String)]) -> Result<String, ProviderError> {
///         Ok(r#"{"sockets": []}"#.into())
///     }
///     fn watched(&self) -> Result<String, ProviderError> {
///         Ok(r#"{"summary": {"total": 0}}"#.into())
///     }
///     fn metrics(&self) -> Result<String, ProviderError> {
///         Ok(String::new())
///     }
/// }
///
/// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let server = Server::bind(Config::default(), Arc::new(Fixed))?;
/// println!("listening on http://{}", server.local_addr()?);
/// server.run(CancellationToken::new()).await?;
/// # Ok(()) }
/// ```
pub struct Server {
    listener: TcpListener,
    state: AppState,
}

/// The most a request head may take; larger heads get `431 Request Header Fields Too Large`.
pub(crate) const MAX_REQUEST_HEAD: usize = 64 * 1024;

/// The listen backlog: large enough for a burst of thousands of dashboard clients.
const BACKLOG: u32 = 4096;

impl Server {
    /// Binds the listener and checks the configuration; nothing is served until [`Server::run`].
    pub fn bind(config: Config, provider: Arc<dyn SnapshotProvider>) -> Result<Server, StartError> {
        let web = match &config.web_config {
            Some(path) => {
                Some(Arc::new(crate::dashboard::web_config::Reloading::new(path).map_err(StartError::WebConfig)?))
            }
            None => None,
        };
        let (tls, basic) =
            web.as_ref().map(|w| w.current()).map_or((false, false), |c| (c.tls().is_some(), c.basic_auth()));
        if !config.listen.ip().is_loopback() {
            if config.token.is_none() && !basic {
                return Err(StartError::TokenRequired(config.listen));
            }
            if !tls && !config.allow_plain_http {
                return Err(StartError::PlainHttp(config.listen));
            }
        }
        if let Some(t) = &config.token
            && t.len() < MIN_TOKEN_BYTES
        {
            return Err(StartError::WeakToken(t.len()));
        }
        let listener = listen(config.listen).map_err(|e| StartError::Bind(config.listen, e))?;
        let probe = tuning::probe(&config.keepalive).unwrap_or_default();
        let port = listener.local_addr().map_err(|e| StartError::Bind(config.listen, e))?.port();
        let watchdog = config
            .watchdog
            .map(|deadline| Watchdog::new(deadline).with_min_rate(config.min_send_rate, config.body_timeout));
        let metrics = ServerMetrics::new(watchdog.clone());
        let state = AppState {
            provider,
            metrics,
            watchdog,
            hub: hub::Hub::new(),
            sse_permits: Arc::new(Semaphore::new(config.max_sse_clients)),
            reads: Arc::new(reads::Reads::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
                config.snapshot_period,
            )),
            sessions: Arc::new(auth::Sessions::new(config.session_lifetime)),
            hosts: Arc::new(guard::AllowedHosts::new(config.listen.ip(), port, &config.allowed_hosts)),
            clients: clients::Clients::new(config.max_connections_per_ip, config.token.is_some() || basic),
            web,
            token: config.token.as_deref().map(|t| Arc::new(auth::Secret::new(t))),
            config: Arc::new(config),
            probe: Arc::new(probe),
            shutdown: CancellationToken::new(), // replaced by the caller's in `run`
        };
        Ok(Server { listener, state })
    }

    /// The address the server is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Whether connections are served over TLS (the web configuration's `tls_server_config`).
    pub fn tls(&self) -> bool {
        self.state.web.as_ref().is_some_and(|w| w.current().tls().is_some())
    }

    /// What the keepalive options did on a probe socket: logged once at start.
    pub fn keepalive_probe(&self) -> &[OptionOutcome] {
        &self.state.probe
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, ends every SSE stream and
    /// waits up to `shutdown_grace` for open connections.
    pub async fn run(self, shutdown: CancellationToken) -> io::Result<()> {
        let Server { listener, mut state } = self;
        // One token for everything: the accept loop, the hub and every SSE stream use the caller's.
        state.shutdown = shutdown;
        let inner = state.shutdown.clone();
        tokio::spawn(hub::run(state.hub.clone(), state.provider.clone(), state.config.snapshot_period, inner.clone()));

        let router = routes::router(state.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        // `half_close` stays off: with it on, a client's FIN on an idle SSE stream left the server
        // socket in CLOSE-WAIT until the next heartbeat write.
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(state.config.header_timeout)
            .half_close(false)
            // Bounds the read buffer; a head that still arrives whole in one read is refused by the
            // `limit_head` middleware, so the limit holds either way.
            .max_buf_size(MAX_REQUEST_HEAD);
        let builder = Arc::new(builder);
        let graceful = GracefulShutdown::new();
        // Connections in total and per address (twice the request cap: a backstop against idle
        // sockets; see `clients`).
        let limiter =
            ConnectionLimiter::new(state.config.max_connections, 2 * state.config.max_connections_per_ip.max(1));
        let next_id = AtomicU64::new(0);
        let metrics = state.metrics.clone();
        let keepalive = state.config.keepalive;
        let watchdog = state.watchdog.clone();

        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = inner.cancelled() => break,
            };
            metrics.accepted.inc();
            // The TLS setting in force for this connection (a renewed certificate is picked up
            // here, by the next connection).
            let tls = state.web.as_ref().and_then(|w| w.current().tls());
            let tag = clients::ConnTag { peer, id: next_id.fetch_add(1, Ordering::Relaxed), tls: tls.is_some() };
            let permit = match limiter.acquire_or_make_room(peer.ip(), || state.clients.make_room(peer.ip())) {
                Ok(permit) => permit,
                Err(why) => {
                    metrics.rejected.get_or_create(&metrics::RejectLabel { reason: why.reason() }).inc();
                    // Over TLS, only the close: a plain-text 503 would not be understood.
                    if !tag.tls {
                        tokio::spawn(limit::reject(stream));
                    }
                    continue;
                }
            };
            let evicted = CancellationToken::new();
            let ip_slot = state.clients.connect(tag, evicted.clone());
            let stream = TunedStream::new(stream, &keepalive, watchdog.as_ref()).with_permit(permit);
            for outcome in stream.outcomes() {
                if !outcome.ok() {
                    metrics
                        .option_failures
                        .get_or_create(&metrics::OptionLabel { option: outcome.option.name() })
                        .inc();
                }
            }
            metrics.open.inc();
            // Every request learns which connection it came on (the per-address limits and the
            // log-in rate limit need it).
            let router = router.clone();
            // A plain connection's SSE stream leaves hyper once its head is ready (see `handoff`).
            let (slot, handed) = handoff::Slot::new();
            let slot = (!tag.tls).then_some(slot);
            let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(tag);
                request.extensions_mut().insert(axum::extract::ConnectInfo(tag.peer));
                let handing = slot.as_ref().and_then(handoff::Slot::claim).filter(|_| handoff::eligible(&request));
                let response = tower_service::Service::call(&mut router.clone(), request);
                async move {
                    let response: axum::response::Response = response.await?;
                    let Some(handing) = handing else { return Ok::<_, std::convert::Infallible>(response) };
                    match handoff::offer(handing, response) {
                        // The connection's task sends it now; hyper never polls this again.
                        None => std::future::pending().await,
                        Some(response) => Ok(response),
                    }
                }
            });
            let watcher = graceful.watcher();
            let builder = builder.clone();
            let metrics = metrics.clone();
            let handshake = state.config.header_timeout;
            let stopping = inner.clone();
            tokio::spawn(async move {
                let served = async {
                    match tls {
                        None => serve_plain(&builder, watcher, stream, service, handed, handshake, stopping).await,
                        // Boxed: a rustls session is kilobytes, and inline it would size every
                        // plain connection's task as well (at 10,000 SSE clients that was ~4 KiB
                        // each).
                        Some(config) => {
                            Box::pin(async move {
                                // The handshake is bounded like a request head: a client that
                                // never finishes it holds its slot no longer.
                                let accept = tokio_rustls::TlsAcceptor::from(config).accept(stream);
                                match tokio::time::timeout(handshake, accept).await {
                                    Ok(Ok(tls)) => serve(&builder, watcher, tls, service).await,
                                    Ok(Err(e)) => {
                                        tracing::debug!("TLS handshake with {peer} failed: {e}");
                                        Ok(())
                                    }
                                    Err(_) => Ok(()),
                                }
                            })
                            .await
                        }
                    }
                };
                tokio::select! {
                    result = served => {
                        if let Err(e) = result
                            && is_timeout(&*e)
                        {
                            metrics.peers_timed_out.inc();
                        }
                    }
                    // Closed to make room for a newer unauthenticated connection.
                    _ = evicted.cancelled() => {
                        metrics.rejected.get_or_create(&metrics::RejectLabel { reason: "unauthenticated_evicted" }).inc();
                    }
                }
                metrics.open.dec();
                drop(ip_slot);
            });
        }
        drop(listener);
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(state.config.shutdown_grace) => {
                tracing::warn!("connections still open after {:?}; closing them", state.config.shutdown_grace);
            }
        }
        Ok(())
    }
}

/// Creates the listening socket with a backlog sized for bursts.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// One connection served by hyper's HTTP/1 (`io` is the plain stream or its TLS session),
/// under graceful shutdown.
async fn serve<I, S>(
    builder: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    io: I,
    service: S,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::HttpService<hyper::body::Incoming> + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as http_body::Body>::Data: Send,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let conn = builder.serve_connection(TokioIo::new(io), service);
    Ok(watcher.watch(conn).await?)
}

/// A plain connection: served by hyper like any other until a route's stream is handed over,
/// then written by [`handoff::run`] on the socket hyper gives back. Graceful shutdown is asked
/// of hyper when `stopping` is cancelled (the token that stops the accept loop); `watcher` is
/// held to the end so the server's shutdown waits for this connection either way.
async fn serve_plain<S>(
    builder: &hyper::server::conn::http1::Builder,
    watcher: hyper_util::server::graceful::Watcher,
    io: TunedStream,
    service: S,
    mut handed: tokio::sync::oneshot::Receiver<handoff::Handoff>,
    head_timeout: Duration,
    stopping: CancellationToken,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
where
    S: hyper::service::HttpService<hyper::body::Incoming> + Unpin + Send + 'static,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as http_body::Body>::Data: Send,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    // hyper allocates its two 8 KiB buffers as soon as it serves a connection; a client that has
    // not sent its request yet (thousands of them, in a burst of connects) holds none until it
    // does. One that sends nothing within the head timeout is closed, as hyper would.
    // (A peek, not `readable()`: a new socket's readiness can be reported before any data.) A
    // shutdown closes it at once, as hyper closes a connection with no request in flight.
    let mut first = [0u8; 1];
    tokio::select! {
        peeked = tokio::time::timeout(head_timeout, io.get_ref().peek(&mut first)) => match peeked {
            Ok(peeked) => _ = peeked?,
            Err(_) => return Ok(()),
        },
        _ = stopping.cancelled() => return Ok(()),
    }
    let mut conn = builder.serve_connection(TokioIo::new(io), service);
    let mut draining = false;
    let mut open = true;
    let handoff = loop {
        tokio::select! {
            // The connection first: a handoff made while it is polled is taken in the same turn,
            // not one trip through the run queue later, with hyper's buffers still held (in a
            // burst, that trip is behind every other new connection).
            biased;
            served = &mut conn => {
                drop(watcher);
                return Ok(served?);
            }
            handoff = &mut handed, if open => match handoff {
                Ok(handoff) => break handoff,
                Err(_) => open = false,
            },
            _ = stopping.cancelled(), if !draining => {
                draining = true;
                std::pin::Pin::new(&mut conn).graceful_shutdown();
            }
        }
    };
    let io = conn.into_parts().io.into_inner();
    let streamed = handoff::run(io, handoff).await;
    drop(watcher);
    Ok(streamed?)
}

/// True when a connection ended because the kernel gave up on the peer (ETIMEDOUT): keepalive
/// probes or `TCP_USER_TIMEOUT` expired.
fn is_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>()
            && io.kind() == io::ErrorKind::TimedOut
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// Runs a server on its own multi-threaded runtime until SIGINT or SIGTERM; for callers that are
/// not async themselves. `ready` is called with the bound address once the server accepts. The
/// process-wide file limit is the caller's to set: every connection is a descriptor.
pub fn run_blocking(
    config: Config,
    provider: Arc<dyn SnapshotProvider>,
    ready: impl FnOnce(&Server),
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let server = Server::bind(config, provider)?;
        ready(&server);
        let shutdown = CancellationToken::new();
        tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                wait_for_signal().await;
                shutdown.cancel();
            }
        });
        server.run(shutdown).await?;
        Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
