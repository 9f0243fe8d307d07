//! A write-progress watchdog: ends a connection whose written bytes stay unacknowledged for
//! longer than a deadline.
//!
//! Keepalive never probes while data is in flight, so a peer that vanished in the middle of an
//! SSE stream (heartbeats queued, nothing acknowledged) is only dropped by `TCP_USER_TIMEOUT` —
//! which exists on Linux alone — or by the kernel's retransmission limit after 15 minutes or
//! more. And a peer that keeps acknowledging but stops reading (its receive window closed) holds
//! the stream open for as long as it likes. The watchdog closes both holes from user space, on
//! every platform that can count a socket's unacknowledged bytes (see
//! [`platform`]): it counts the bytes the application writes, asks the kernel
//! how many are still queued (`SIOCOUTQ` on Linux), and takes *written − queued* as the bytes the
//! peer has acknowledged. When that number has not moved for `deadline` while bytes are queued,
//! the connection is ended with a reset and counted.
//!
//! It costs nothing on an idle connection: the queue is only looked at after a write, eight
//! times per deadline at most (once a second at most), until it is empty again. A slow reader
//! that acknowledges anything within the deadline is left alone.
//!
//! Use it through [`TunedListener::with_watchdog`](crate::TunedListener::with_watchdog), which
//! wraps every accepted connection (and so every SSE handler served through it), or wrap a
//! stream from your own accept loop with [`TunedStream::new`](crate::TunedStream::new).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use socket2::SockRef;
use tokio::time::{Instant, Sleep};

use crate::platform;

/// The watchdog's setting and its tally, shared by every connection it watches (cheap to clone).
///
/// For an accept loop of your own, wrap each accepted stream; a stream that stalls then fails
/// its reads and writes with `TimedOut`, and hyper (or your code) closes it:
///
/// ```
/// use std::time::Duration;
/// use webui_doctor_server::{KeepaliveConfig, TunedStream, Watchdog};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> std::io::Result<()> {
/// let watchdog = Watchdog::new(Duration::from_secs(30));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// let _client = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
/// let (stream, _) = listener.accept().await?;
/// let stream = TunedStream::new(stream, &KeepaliveConfig::default(), Some(&watchdog));
/// // ... serve `stream` with hyper; later:
/// assert_eq!(watchdog.ended(), 0);
/// # drop(stream); Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Watchdog {
    deadline: Duration,
    /// Connections ended, shared by every clone.
    ended: Arc<AtomicU64>,
    /// With [`Watchdog::with_min_rate`]: the bytes per second a reader must acknowledge, judged
    /// over this window, while bytes wait.
    min_rate: Option<(u64, Duration)>,
}

impl Watchdog {
    /// Ends a connection once its written bytes have gone unacknowledged for `deadline`.
    /// Deadlines under 100 ms are raised to 100 ms.
    pub fn new(deadline: Duration) -> Watchdog {
        Watchdog { deadline: deadline.max(Duration::from_millis(100)), ended: Arc::default(), min_rate: None }
    }

    /// Also ends a connection whose peer acknowledges fewer than `bytes_per_second` over any
    /// `window` during which bytes waited to be sent the whole time, and at least that many
    /// waited at its start: a reader that trickles a large response holds its buffers no longer
    /// than that. 0 (or a zero window) turns it off. An idle connection, or one with only a few
    /// bytes queued (heartbeats), is left to the stall deadline.
    pub fn with_min_rate(mut self, bytes_per_second: u64, window: Duration) -> Watchdog {
        self.min_rate = (bytes_per_second > 0 && !window.is_zero()).then_some((bytes_per_second, window));
        self
    }

    /// The deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Connections the watchdog has ended so far (by this watchdog and every clone of it): read it
    /// into your metrics when they are scraped.
    pub fn ended(&self) -> u64 {
        self.ended.load(Ordering::Relaxed)
    }

    /// Whether this platform can count a socket's unacknowledged bytes (and so whether the
    /// watchdog can work here): tried once, on a fresh socket.
    pub fn supported() -> bool {
        static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *SUPPORTED.get_or_init(|| {
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))
                .is_ok_and(|s| platform::outgoing_queue(&SockRef::from(&s)).is_ok())
        })
    }

    /// How often a connection with queued bytes is looked at: eight times per deadline, between
    /// 50 ms and 1 s. A stall is seen at most one tick late (the deadline plus an eighth); an idle
    /// connection's queue is empty at the first look after a write, and it is not looked at again.
    fn tick(&self) -> Duration {
        let shortest = self.min_rate.map_or(self.deadline, |(_, window)| window.min(self.deadline));
        (shortest / 8).clamp(Duration::from_millis(50), Duration::from_secs(1))
    }
}

/// One connection's progress: bytes written, bytes known acknowledged, and since when nothing
/// moved.
#[derive(Debug)]
pub(crate) struct Progress {
    watchdog: Watchdog,
    written: u64,
    acked: u64,
    /// Since when bytes have been queued without the acknowledged count moving.
    stalled_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    /// Set once the platform could not say: the connection is then not watched.
    off: bool,
    /// Set once the watchdog fired: every later read and write fails the same way.
    fired: Option<(u64, Duration)>,
    /// With a rate floor: since when bytes have waited without a break, and the acknowledged
    /// and queued counts then.
    window: Option<(Instant, u64, u64)>,
}

impl Progress {
    pub(crate) fn new(watchdog: Watchdog) -> Progress {
        Progress {
            watchdog,
            written: 0,
            acked: 0,
            stalled_since: None,
            timer: None,
            off: false,
            fired: None,
            window: None,
        }
    }

    /// `n` bytes went to the socket.
    pub(crate) fn wrote(&mut self, n: usize) {
        if n == 0 || self.off {
            return;
        }
        self.written += n as u64;
        let now = Instant::now();
        self.stalled_since.get_or_insert(now);
        if self.timer.is_none() {
            self.timer = Some(Box::pin(tokio::time::sleep_until(now + self.watchdog.tick())));
        }
    }

    /// Checks the queue whenever the timer is due; `Ready` with the error to fail the
    /// connection with once the deadline has passed without progress.
    pub(crate) fn poll_check(&mut self, cx: &mut Context<'_>, sock: SockRef<'_>) -> Poll<io::Error> {
        if let Some((queued, stalled)) = self.fired {
            return Poll::Ready(stalled_error(queued, stalled));
        }
        loop {
            let Some(timer) = self.timer.as_mut() else { return Poll::Pending };
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.timer = None;
            let queued = match platform::outgoing_queue(&sock) {
                Ok(q) => q as u64,
                Err(e) => {
                    tracing::debug!("write-progress watchdog off for this connection: {e}");
                    self.off = true;
                    return Poll::Pending;
                }
            };
            let now = Instant::now();
            let acked = self.written.saturating_sub(queued);
            if queued == 0 {
                self.acked = self.written;
                self.stalled_since = None;
                self.window = None;
                return Poll::Pending;
            }
            if acked > self.acked {
                self.acked = acked;
                self.stalled_since = Some(now);
            }
            let since = *self.stalled_since.get_or_insert(now);
            let stalled = now - since;
            // The rate floor: over each window in which bytes waited throughout, the peer must
            // have acknowledged at least rate x window.
            // Judged only when the backlog at the window's start was at least that much: a few
            // queued heartbeats to a vanished peer are the stall deadline's to judge.
            let mut too_slow = false;
            if let Some((rate, window)) = self.watchdog.min_rate {
                let (start, acked_then, queued_then) = *self.window.get_or_insert((now, self.acked, queued));
                if now - start >= window {
                    let floor = (u128::from(rate) * (now - start).as_millis() / 1000) as u64;
                    too_slow = queued_then >= floor && self.acked - acked_then < floor;
                    self.window = Some((now, self.acked, queued));
                }
            }
            if stalled >= self.watchdog.deadline || too_slow {
                // A reset on close: the queued bytes are dropped at once, not retried for
                // minutes by an orphaned socket.
                let _ = platform::reset_on_close(&sock);
                self.watchdog.ended.fetch_add(1, Ordering::Relaxed);
                self.fired = Some((queued, stalled));
                tracing::info!("write-progress watchdog: {queued} bytes unacknowledged for {stalled:?}; closing");
                return Poll::Ready(stalled_error(queued, stalled));
            }
            let mut next = (now + self.watchdog.tick()).min(since + self.watchdog.deadline);
            if let (Some((_, window)), Some((start, _, _))) = (self.watchdog.min_rate, self.window) {
                next = next.min(start + window);
            }
            self.timer = Some(Box::pin(tokio::time::sleep_until(next)));
        }
    }
}

fn stalled_error(queued: u64, stalled: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("write-progress watchdog: {queued} bytes unacknowledged for {:.1} s", stalled.as_secs_f64()),
    )
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The queue the watchdog reads is the kernel's: bytes a peer has not read and acknowledged
    /// are counted until it does.
    #[test]
    fn outgoing_queue_counts_what_the_peer_has_not_acknowledged() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server, _) = listener.accept().unwrap();
        assert_eq!(platform::outgoing_queue(&SockRef::from(&server)).unwrap(), 0);
        server.write_all(&[7; 1000]).unwrap();
        let mut buf = [0; 1000];
        client.read_exact(&mut buf).unwrap();
        // Loopback acknowledges at once; what is read is no longer queued.
        let start = std::time::Instant::now();
        while platform::outgoing_queue(&SockRef::from(&server)).unwrap() != 0 {
            assert!(start.elapsed() < Duration::from_secs(2), "the queue never drained");
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(Watchdog::supported());
    }
}
