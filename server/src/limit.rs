//! A connection limiter: at most so many connections open at once, and at most so many from one
//! client address, so that one address can neither exhaust the server's file descriptors nor
//! lock out the others. Past either cap, the connection gets `503 Service Unavailable` with
//! `Retry-After` and is closed, before any request is read.
//!
//! With [`TunedListener::with_limiter`](crate::TunedListener::with_limiter) it works under
//! `axum::serve` unchanged; an accept loop of its own calls [`ConnectionLimiter::try_acquire`]
//! for each accepted connection and keeps the [`ConnectionPermit`] for as long as the connection
//! lives:
//!
//! ```
//! use webui_doctor_server::limit::{ConnectionLimiter, Rejected};
//!
//! let limiter = ConnectionLimiter::new(1000, 2);
//! let client = "192.0.2.7".parse().unwrap();
//! let first = limiter.try_acquire(client).unwrap();
//! let _second = limiter.try_acquire(client).unwrap();
//! assert_eq!(limiter.try_acquire(client).unwrap_err(), Rejected::PerAddress);
//! drop(first); // the connection closed: its place is free again
//! assert!(limiter.try_acquire(client).is_ok());
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The server holds its total of connections.
    Total,
    /// This client address holds its share.
    PerAddress,
}

impl Rejected {
    /// A label for a metric or a log line: `max_connections` or `max_connections_per_ip`.
    pub fn reason(self) -> &'static str {
        match self {
            Rejected::Total => "max_connections",
            Rejected::PerAddress => "max_connections_per_ip",
        }
    }
}

/// Counts open connections, in total and per client address (cheap to clone: clones share the
/// counts).
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    total: usize,
    per_address: usize,
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    /// Only addresses with a connection open: the map is as large as the set of clients now.
    by_address: HashMap<IpAddr, usize>,
}

/// One admitted connection's place; dropping it frees the place.
#[derive(Debug)]
pub struct ConnectionPermit {
    inner: Arc<Inner>,
    address: IpAddr,
}

impl ConnectionLimiter {
    /// At most `total` connections open at once, and `per_address` from one client address
    /// (each at least 1).
    pub fn new(total: usize, per_address: usize) -> ConnectionLimiter {
        ConnectionLimiter {
            inner: Arc::new(Inner { total: total.max(1), per_address: per_address.max(1), open: Mutex::default() }),
        }
    }

    /// Admits a connection from `address`, or says which cap it would pass (the address's is
    /// judged first).
    pub fn try_acquire(&self, address: IpAddr) -> Result<ConnectionPermit, Rejected> {
        self.acquire_or_make_room(address, || false)
    }

    /// As [`try_acquire`](ConnectionLimiter::try_acquire), except that at the address's cap
    /// `make_room` is asked to close one of that address's connections (an idle one that never
    /// authenticated, say); when it says it did, the new connection is admitted at once, and the
    /// count stays one over the cap until the closed connection drops its permit.
    pub fn acquire_or_make_room(
        &self,
        address: IpAddr,
        make_room: impl FnOnce() -> bool,
    ) -> Result<ConnectionPermit, Rejected> {
        let mut open = self.inner.lock();
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if from_address >= self.inner.per_address && !make_room() {
            return Err(Rejected::PerAddress);
        }
        if open.total >= self.inner.total {
            return Err(Rejected::Total);
        }
        open.total += 1;
        *open.by_address.entry(address).or_default() += 1;
        Ok(ConnectionPermit { inner: self.inner.clone(), address })
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.inner.lock().total
    }

    /// Connections open now from `address`.
    pub fn open_from(&self, address: IpAddr) -> usize {
        self.inner.lock().by_address.get(&address).copied().unwrap_or(0)
    }

    /// The caps: (total, per address).
    pub fn caps(&self) -> (usize, usize) {
        (self.inner.total, self.inner.per_address)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, Open> {
        // The counts stay consistent whatever panicked while holding the lock: each change is
        // one statement.
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ConnectionPermit {
    /// The client address this place is held for.
    pub fn address(&self) -> IpAddr {
        self.address
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut open = self.inner.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_address.get_mut(&self.address) {
            *n -= 1;
            if *n == 0 {
                open.by_address.remove(&self.address);
            }
        }
    }
}

/// The response a refused connection gets.
pub const SERVICE_UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: 28\r\nconnection: close\r\nretry-after: 5\r\n\r\ntoo many connections, retry\n";

/// Writes [`SERVICE_UNAVAILABLE`] to a refused connection and closes it; errors are ignored (the
/// client may already be gone). Spawn it: a client that never reads must not stall an accept
/// loop.
pub async fn reject<S: AsyncWrite + Unpin>(mut stream: S) {
    let _ = stream.write_all(SERVICE_UNAVAILABLE).await;
    let _ = stream.shutdown().await;
}
