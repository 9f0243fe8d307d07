//! Provider calls made for requests (`/api/snapshot`, `/metrics`). Each reads the kernel's
//! socket tables and, with `processes=1`, every process's fd table: the most expensive thing
//! this server does. Three rules keep a client from multiplying it:
//!
//! - **The permit belongs to the work, not to the request.** It moves into the blocking job and
//!   is released when the read finishes, so a client that hangs up does not free a slot while its
//!   read goes on. (With the permit held by the request future, 100 requests each closed after
//!   20 ms drove the server to 171 threads and 1,028 open files.)
//! - **Past the limit the answer is 503 at once**, instead of a queue of waiting requests.
//! - **Identical requests within one snapshot period share one read**: the result (or the read
//!   still under way) is kept per query for that long and every caller awaits the same one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::sync::Semaphore;

use super::{ProviderError, SnapshotProvider};

/// What a read gave, cheap to clone for every caller that shares it: a document is one buffer,
/// and every response that sends it holds a reference to it (120 stalled readers of a 7 MB
/// document hold 7 MB, not 840).
#[derive(Debug, Clone)]
pub enum Outcome {
    Ok(bytes::Bytes),
    BadRequest(Arc<str>),
    Forbidden(Arc<str>),
    Internal(Arc<str>),
}

/// No permit was free: the caller answers 503.
#[derive(Debug)]
pub struct Busy;

/// Reads kept at once for sharing; past it, reads still run but are not shared.
const MAX_KEPT: usize = 64;

type SharedRead = Shared<BoxFuture<'static, Outcome>>;

pub struct Reads {
    permits: Arc<Semaphore>,
    /// How long a result is shared with identical requests.
    period: Duration,
    kept: Mutex<HashMap<String, (Instant, SharedRead)>>,
}

impl Reads {
    pub fn new(concurrent: usize, period: Duration) -> Reads {
        Reads { permits: Arc::new(Semaphore::new(concurrent.max(1))), period, kept: Mutex::default() }
    }

    /// The outcome of `f` for `key`: shared with an identical read from the last period, else
    /// started now on the blocking pool if a permit is free, else `Busy`.
    pub async fn read<F>(&self, key: String, provider: Arc<dyn SnapshotProvider>, f: F) -> Result<Outcome, Busy>
    where
        F: FnOnce(&dyn SnapshotProvider) -> Result<String, ProviderError> + Send + 'static,
    {
        let shared = {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            // Forget finished reads older than a period; a read still running stays shared.
            kept.retain(|_, (at, read)| at.elapsed() <= self.period || read.peek().is_none());
            match kept.get(&key) {
                Some((_, read)) => read.clone(),
                None => {
                    let permit = self.permits.clone().try_acquire_owned().map_err(|_| Busy)?;
                    let job = tokio::task::spawn_blocking(move || {
                        let _permit = permit; // held until the read is done, whoever still waits
                        f(&*provider)
                    });
                    let read = async move {
                        match job.await {
                            Ok(Ok(body)) => Outcome::Ok(bytes::Bytes::from(body)),
                            Ok(Err(ProviderError::BadRequest(m))) => Outcome::BadRequest(m.into()),
                            Ok(Err(ProviderError::Forbidden(m))) => Outcome::Forbidden(m.into()),
                            Ok(Err(ProviderError::Internal(m))) => Outcome::Internal(m.into()),
                            Err(e) => Outcome::Internal(e.to_string().into()),
                        }
                    }
                    .boxed()
                    .shared();
                    if kept.len() < MAX_KEPT {
                        kept.insert(key, (Instant::now(), read.clone()));
                    }
                    read
                }
            }
        };
        Ok(shared.await)
    }
}
