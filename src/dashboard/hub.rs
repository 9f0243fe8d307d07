//! One snapshot per period, shared by every SSE client: a background task reads the watched
//! selection (on the blocking pool) and publishes it on a `watch` channel. It reads only while
//! someone is subscribed, and a new subscriber can wake it so its first event comes at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::SnapshotProvider;

#[derive(Debug)]
pub struct Frame {
    /// One line of JSON: the `data:` of an `event: snapshot`.
    pub json: Arc<str>,
    pub taken: Instant,
}

#[derive(Clone)]
pub struct Hub {
    tx: watch::Sender<Option<Arc<Frame>>>,
    wake: Arc<Notify>,
}

impl Hub {
    pub fn new() -> Hub {
        Hub { tx: watch::Sender::new(None), wake: Arc::new(Notify::new()) }
    }

    /// A receiver whose first `changed()` yields a snapshot no older than `period`.
    pub fn subscribe(&self, period: Duration) -> watch::Receiver<Option<Arc<Frame>>> {
        let mut rx = self.tx.subscribe();
        let fresh = rx.borrow().as_ref().is_some_and(|f| f.taken.elapsed() < period);
        if fresh {
            rx.mark_changed();
        } else {
            self.wake.notify_one();
        }
        rx
    }
}

pub async fn run(hub: Hub, provider: Arc<dyn SnapshotProvider>, period: Duration, shutdown: CancellationToken) {
    // A zero period would panic `interval`; nothing useful is faster than a millisecond anyway.
    let mut tick = tokio::time::interval(period.max(Duration::from_millis(1)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if hub.tx.receiver_count() == 0 {
                    continue;
                }
            }
            _ = hub.wake.notified() => {}
        }
        let p = provider.clone();
        match tokio::task::spawn_blocking(move || p.watched()).await {
            Ok(Ok(json)) => {
                hub.tx.send_replace(Some(Arc::new(Frame { json: json.into(), taken: Instant::now() })));
            }
            Ok(Err(e)) => tracing::warn!("snapshot failed: {e:?}"),
            Err(e) => tracing::error!("snapshot task failed: {e}"),
        }
        tick.reset();
    }
}
