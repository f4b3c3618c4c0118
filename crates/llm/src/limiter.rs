//! Caps the calls in flight: the rest wait their turn instead of failing, and both
//! numbers can be read for metrics.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub(crate) struct Limiter {
    permits: Arc<Semaphore>,
    size: usize,
    waiting: AtomicUsize,
}

impl Limiter {
    pub(crate) fn new(size: usize) -> Self {
        let size = size.max(1);
        Limiter {
            permits: Arc::new(Semaphore::new(size)),
            size,
            waiting: AtomicUsize::new(0),
        }
    }

    /// Waits for a permit. `None` only if the semaphore were closed, which nothing does.
    pub(crate) async fn acquire(&self) -> Option<OwnedSemaphorePermit> {
        let _waiting = Waiting::enter(&self.waiting);
        Arc::clone(&self.permits).acquire_owned().await.ok()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.size.saturating_sub(self.permits.available_permits())
    }

    pub(crate) fn queued(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

/// Counts a waiter until it gets its permit or gives up (its future is dropped).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn enter(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Waiting(counter)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn counts_holders_and_waiters_and_forgets_cancelled_waiters() {
        let limiter = Arc::new(Limiter::new(1));
        let held = limiter.acquire().await;
        assert!(held.is_some());
        assert_eq!((limiter.in_flight(), limiter.queued()), (1, 0));

        let waiter = tokio::spawn({
            let limiter = Arc::clone(&limiter);
            async move { limiter.acquire().await.is_some() }
        });
        while limiter.queued() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!((limiter.in_flight(), limiter.queued()), (1, 1));
        waiter.abort();
        let _ = waiter.await;
        assert_eq!(limiter.queued(), 0);

        drop(held);
        assert_eq!(limiter.in_flight(), 0);
    }

    #[test]
    fn zero_means_one() {
        assert_eq!(Limiter::new(0).permits.available_permits(), 1);
    }
}
