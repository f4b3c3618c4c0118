//! A worker's hold on a room across replicas: taken with the room's first event, renewed
//! with every next event and every third of its TTL while one event takes longer, counted
//! as held only until two thirds of the TTL after the last renewal that succeeded, and
//! confirmed in the store right before every post (see docs/scaling.md). [`LeaseKeeper`]
//! releases the lease however the worker ends.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use crate::store::Store;

/// How long a room lease lasts without renewal; a replica that dies loses its rooms after this.
pub const LEASE_TTL: Duration = Duration::from_secs(30);

/// Lets a worker's lease go however the worker ends. A worker that did not release its
/// lease in the store on the way out (a panic) has it released here, in the background, so
/// the room does not wait for the lease to expire. (The renewals run inside the worker's
/// own task, [`RoomLease::keep_renewed`], so they stop with it, panic included.)
pub(crate) struct LeaseKeeper<'a> {
    pub(crate) lease: &'a RoomLease,
    pub(crate) released: bool,
}

impl Drop for LeaseKeeper<'_> {
    fn drop(&mut self) {
        self.lease.let_go();
        if self.released {
            return;
        }
        let store = self.lease.store.clone();
        let room_id = self.lease.room_id.clone();
        let owner = self.lease.owner.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = store.release_room(&room_id, &owner).await {
                    tracing::warn!(error = %e, "cannot release the room lease; it expires by itself");
                }
            });
        }
    }
}

/// This worker's hold on a room. Renewed in the background; [`RoomLease::confirm_post`]
/// renews it right before the irreversible step, posting a reply.
pub(crate) struct RoomLease {
    store: Store,
    room_id: String,
    owner: String,
    pub(crate) ttl: Duration,
    /// Past this instant the lease may be about to expire in the store: let the room go.
    held_until: Mutex<Instant>,
    lost: AtomicBool,
}

impl RoomLease {
    /// A lease not held yet: the worker takes it with the room's first event.
    pub(crate) fn new(store: Store, room_id: &str, owner: &str, ttl: Duration) -> Self {
        RoomLease {
            store,
            room_id: room_id.to_owned(),
            owner: owner.to_owned(),
            ttl,
            held_until: Mutex::new(Instant::now()),
            lost: AtomicBool::new(false),
        }
    }

    /// How long after a renewal is sent the lease counts as held here: a third of the TTL
    /// less than the store grants, so this replica stops before another may start.
    fn usable(ttl: Duration) -> Duration {
        ttl - ttl / 3
    }

    /// Whether this worker may still act for the room (no store round trip).
    pub(crate) fn is_held(&self) -> bool {
        !self.lost.load(Ordering::SeqCst) && Instant::now() < self.deadline()
    }

    /// Until when the lease counts as held here.
    fn deadline(&self) -> Instant {
        self.held_until
            .lock()
            .map_or_else(|_| Instant::now(), |until| *until)
    }

    pub(crate) fn let_go(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Renews the lease in the store; on success it counts as held for another stretch.
    async fn renew(&self) -> Result<bool, crate::store::StoreError> {
        let sent = Instant::now();
        let renewed = self
            .store
            .renew_room(&self.room_id, &self.owner, self.ttl)
            .await?;
        if renewed {
            self.extend(sent);
        }
        Ok(renewed)
    }

    pub(crate) fn extend(&self, renewal_sent: Instant) {
        if let Ok(mut until) = self.held_until.lock() {
            *until = (*until).max(renewal_sent + Self::usable(self.ttl));
        }
    }

    /// Makes sure posting part `part` of event `seq`'s answer is still this worker's job
    /// (the room is still ours, the event still pending, that part not posted by another
    /// worker), renewing the lease, and first keeps the answer with the event when `save`
    /// is given. False, and the room is let go, when it is not or when that cannot be
    /// confirmed in time.
    pub(crate) async fn confirm_post(&self, seq: i64, part: i64, save: Option<&str>) -> bool {
        if !self.is_held() {
            self.let_go();
            return false;
        }
        let sent = Instant::now();
        let confirmed = tokio::time::timeout_at(
            self.deadline(),
            self.store
                .confirm_post(&self.room_id, &self.owner, self.ttl, seq, part, save),
        )
        .await;
        match confirmed {
            Ok(Ok(true)) => {
                self.extend(sent);
                return true;
            }
            Ok(Ok(false)) => {
                tracing::warn!(room_id = %self.room_id, "room lease lost, or the event handled elsewhere")
            }
            Ok(Err(e)) => {
                tracing::warn!(room_id = %self.room_id, error = %e, "cannot confirm the room lease")
            }
            Err(_) => {
                tracing::warn!(room_id = %self.room_id, "the room lease could not be confirmed in time")
            }
        }
        self.let_go();
        false
    }

    /// Renews every third of the TTL; ends only when the lease is gone. The worker polls it
    /// beside the event it handles (in its own task, so no task per room waits beside
    /// it); the store round trip is boxed, so what waits with every event is a timer.
    pub(crate) async fn keep_renewed(&self) {
        let every = self.ttl / 3;
        loop {
            tokio::time::sleep(every).await;
            if self.lost.load(Ordering::SeqCst) {
                return;
            }
            let deadline = self.deadline();
            match tokio::time::timeout_at(deadline, Box::pin(self.renew())).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => {
                    tracing::warn!(room_id = %self.room_id, "room lease lost to another replica");
                    self.let_go();
                    return;
                }
                Ok(Err(e)) => {
                    tracing::warn!(room_id = %self.room_id, error = %e, "cannot renew the room lease");
                }
                Err(_) => {}
            }
            if !self.is_held() {
                tracing::warn!(room_id = %self.room_id, "the room lease was not renewed in time; letting the room go");
                self.let_go();
                return;
            }
        }
    }
}
