//! What one client address may hold, so that no address locks out another or the operator:
//!
//! - **Requests and streams in flight** are capped per address (`max_connections_per_ip`):
//!   an SSE stream holds its slot for as long as it streams, a request until its body is sent.
//!   `/healthz` never takes one, so a health check always answers, however many streams the
//!   address holds.
//! - **Connections** per address are capped at twice that, a backstop against idle sockets
//!   (hyper's header timeout closes those too); past it, 503 at accept. The cap is the server
//!   crate's [`ConnectionLimiter`](webui_doctor_server::ConnectionLimiter); at it, an idle
//!   unauthenticated connection makes room ([`Clients::make_room`]).
//! - **With a token, connections that have not authenticated** are few per address
//!   (`UNAUTHENTICATED`): past it, the oldest such connection is closed to make room. Idle
//!   unauthenticated keep-alive connections can then never crowd out a `Bearer` request, which
//!   always finds a slot.
//! - **Failed log-ins** (a wrong form token or `Bearer` token) are counted per address: past
//!   `LOGIN_FAILURES` within `LOGIN_WINDOW`, 429 with `Retry-After` until the window ends.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// Connections not yet authenticated kept per address (with a token).
pub const UNAUTHENTICATED: usize = 8;

/// Failed log-ins allowed per address within [`LOGIN_WINDOW`].
pub const LOGIN_FAILURES: u32 = 10;

/// How long failed log-ins are remembered.
pub const LOGIN_WINDOW: Duration = Duration::from_secs(60);

/// Addresses whose log-in failures are kept at once; past it, the oldest window is forgotten.
const MAX_TRACKED: usize = 4096;

/// Which connection a request came on: put in each request's extensions by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ConnTag {
    pub peer: std::net::SocketAddr,
    pub id: u64,
    /// The connection speaks TLS.
    pub tls: bool,
}

#[derive(Default)]
struct Entry {
    connections: usize,
    requests: usize,
    /// Connections not yet authenticated, oldest first.
    unauthenticated: VecDeque<Unauthenticated>,
}

struct Unauthenticated {
    id: u64,
    /// Closes the connection.
    close: CancellationToken,
    /// A request is in flight on it (then it is not the one closed to make room).
    busy: bool,
    /// Since when it has been idle: connected, or its last response sent.
    idle_since: Instant,
}

/// How long a connection must have been idle before it may be closed to make room: one just
/// made is about to send its request (20 log-in forms sent at once are all let through).
const GRACE: Duration = Duration::from_millis(500);

#[derive(Default)]
struct Failures {
    since: Option<Instant>,
    count: u32,
}

/// The per-address book.
pub struct Clients {
    max_requests: usize,
    track_unauthenticated: bool,
    entries: Mutex<HashMap<IpAddr, Entry>>,
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

/// Why a connection or request was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl Clients {
    pub fn new(max_requests: usize, track_unauthenticated: bool) -> Arc<Clients> {
        Arc::new(Clients {
            max_requests: max_requests.max(1),
            track_unauthenticated,
            entries: Mutex::default(),
            failures: Mutex::default(),
        })
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a connection the limiter admitted; `close` ends it if it is evicted as the oldest
    /// unauthenticated one.
    pub fn connect(self: &Arc<Clients>, tag: ConnTag, close: CancellationToken) -> ConnSlot {
        let mut entries = self.entries();
        let e = entries.entry(tag.peer.ip()).or_default();
        e.connections += 1;
        if self.track_unauthenticated {
            let now = Instant::now();
            e.unauthenticated.push_back(Unauthenticated { id: tag.id, close, busy: false, idle_since: now });
            // The oldest idle ones make room; one with a request in flight is left to finish.
            while e.unauthenticated.len() > UNAUTHENTICATED && e.evict(GRACE) {}
        }
        ConnSlot { clients: self.clone(), tag }
    }

    /// `ip` is at its connection cap: closes its oldest idle unauthenticated connection, if it has
    /// one (true), so that a new connection can take its place.
    pub fn make_room(&self, ip: IpAddr) -> bool {
        self.entries().get_mut(&ip).is_some_and(|e| e.evict(Duration::ZERO))
    }

    /// The connection authenticated: it no longer counts as unauthenticated.
    pub fn authenticated(&self, tag: ConnTag) {
        if let Some(e) = self.entries().get_mut(&tag.peer.ip()) {
            e.unauthenticated.retain(|u| u.id != tag.id);
        }
    }

    /// A request or stream slot for `tag`'s address, held until the returned slot is dropped.
    pub fn request(self: &Arc<Clients>, tag: ConnTag) -> Result<RequestSlot, Full> {
        let mut entries = self.entries();
        let e = entries.entry(tag.peer.ip()).or_default();
        if e.requests >= self.max_requests {
            return Err(Full);
        }
        e.requests += 1;
        e.mark(tag.id, true);
        Ok(RequestSlot { clients: self.clone(), tag })
    }

    /// Seconds until `ip` may try to log in again, when it has failed too often.
    pub fn locked_out(&self, ip: IpAddr) -> Option<u64> {
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let f = failures.get(&ip)?;
        let since = f.since?;
        let left = LOGIN_WINDOW.checked_sub(since.elapsed())?;
        (f.count >= LOGIN_FAILURES).then(|| left.as_secs().max(1))
    }

    /// Counts a failed log-in from `ip`; returns the count in the current window.
    pub fn failed_login(&self, ip: IpAddr) -> u32 {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_TRACKED && !failures.contains_key(&ip) {
            failures.retain(|_, f| f.since.is_some_and(|s| s.elapsed() < LOGIN_WINDOW));
            if failures.len() >= MAX_TRACKED
                && let Some(oldest) = failures.iter().min_by_key(|(_, f)| f.since).map(|(ip, _)| *ip)
            {
                failures.remove(&oldest);
            }
        }
        let f = failures.entry(ip).or_default();
        if f.since.is_none_or(|s| s.elapsed() >= LOGIN_WINDOW) {
            *f = Failures { since: Some(Instant::now()), count: 0 };
        }
        f.count += 1;
        f.count
    }

    fn release(&self, tag: ConnTag, connection: bool) {
        let mut entries = self.entries();
        let ip = tag.peer.ip();
        let Some(e) = entries.get_mut(&ip) else { return };
        if connection {
            e.connections = e.connections.saturating_sub(1);
            e.unauthenticated.retain(|u| u.id != tag.id);
        } else {
            e.requests = e.requests.saturating_sub(1);
            e.mark(tag.id, false);
        }
        if e.connections == 0 && e.requests == 0 {
            entries.remove(&ip);
        }
    }
}

impl Entry {
    fn mark(&mut self, id: u64, busy: bool) {
        if let Some(u) = self.unauthenticated.iter_mut().find(|u| u.id == id) {
            u.busy = busy;
            u.idle_since = Instant::now();
        }
    }

    /// Closes the oldest unauthenticated connection idle for at least `grace`; false if none is.
    /// (Its slot is given back when its task ends.)
    fn evict(&mut self, grace: Duration) -> bool {
        let Some(at) = self.unauthenticated.iter().position(|u| !u.busy && u.idle_since.elapsed() >= grace) else {
            return false;
        };
        if let Some(oldest) = self.unauthenticated.remove(at) {
            oldest.close.cancel();
        }
        true
    }
}

/// A connection's place; given back on drop.
pub struct ConnSlot {
    clients: Arc<Clients>,
    tag: ConnTag,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.clients.release(self.tag, true);
    }
}

/// A request's place; given back on drop (with the response body, for a stream).
pub struct RequestSlot {
    clients: Arc<Clients>,
    tag: ConnTag,
}

impl Drop for RequestSlot {
    fn drop(&mut self) {
        self.clients.release(self.tag, false);
    }
}

/// A response body that holds its request's slot until it is done or dropped.
pub struct Holding<B> {
    inner: B,
    _slot: RequestSlot,
}

impl<B> Holding<B> {
    pub fn new(inner: B, slot: RequestSlot) -> Holding<B> {
        Holding { inner, _slot: slot }
    }
}

impl<B: http_body::Body + Unpin> http_body::Body for Holding<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(id: u64) -> ConnTag {
        ConnTag { peer: "127.0.0.1:1".parse().unwrap(), id, tls: false }
    }

    #[test]
    fn requests_are_capped_and_given_back() {
        let c = Clients::new(2, false);
        let a = c.request(tag(1)).unwrap();
        let _b = c.request(tag(2)).unwrap();
        assert_eq!(c.request(tag(3)).err(), Some(Full));
        let elsewhere = ConnTag { peer: "127.0.0.2:1".parse().unwrap(), id: 4, tls: false };
        assert!(c.request(elsewhere).is_ok(), "another address has its own");
        drop(a);
        assert!(c.request(tag(3)).is_ok());
    }

    #[test]
    fn the_oldest_unauthenticated_connection_makes_room() {
        let c = Clients::new(64, true);
        let token = |_| CancellationToken::new();
        let tokens: Vec<CancellationToken> = (0..=UNAUTHENTICATED).map(token).collect();
        let mut slots: Vec<ConnSlot> =
            tokens.iter().enumerate().map(|(i, t)| c.connect(tag(i as u64), t.clone())).collect();
        // Just made, they are about to send their requests: none is closed yet.
        assert!(tokens.iter().all(|t| !t.is_cancelled()));
        std::thread::sleep(GRACE);
        let kept = CancellationToken::new();
        slots.push(c.connect(tag(99), kept.clone()));
        assert!(tokens[0].is_cancelled() && tokens[1].is_cancelled(), "the oldest two made room");
        assert!(tokens[2..].iter().all(|t| !t.is_cancelled()));
        // An authenticated connection is never closed to make room.
        c.authenticated(tag(2));
        let more: Vec<CancellationToken> = (0..UNAUTHENTICATED).map(token).collect();
        for (i, t) in more.iter().enumerate() {
            slots.push(c.connect(tag(100 + i as u64), t.clone()));
        }
        assert!(!tokens[2].is_cancelled());
        assert!(tokens[3..].iter().all(CancellationToken::is_cancelled));
        // One with a request in flight is not closed; the next idle one is.
        let busy = c.request(tag(99)).unwrap();
        std::thread::sleep(GRACE);
        slots.push(c.connect(tag(200), CancellationToken::new()));
        assert!(!kept.is_cancelled() && more[0].is_cancelled(), "the oldest idle one, not the busy one");
        drop((slots, busy));
    }

    #[test]
    fn failed_logins_lock_out_for_the_window() {
        let c = Clients::new(4, true);
        let ip = "127.0.0.1".parse().unwrap();
        for n in 1..LOGIN_FAILURES {
            assert_eq!(c.failed_login(ip), n);
            assert_eq!(c.locked_out(ip), None);
        }
        c.failed_login(ip);
        assert!(c.locked_out(ip).is_some_and(|s| s <= LOGIN_WINDOW.as_secs()));
        assert_eq!(c.locked_out("127.0.0.2".parse().unwrap()), None);
    }
}
