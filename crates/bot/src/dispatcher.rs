//! Turns recorded events into work: one worker per room at a time (messages of one
//! conversation in arrival order), rooms in parallel, and a sweeper that picks up events
//! left pending by a restart, a failed attempt or another replica that died.
//!
//! Across replicas a room is held through a lease row in the store; within this process a
//! map of active rooms avoids starting a second worker for a room.
//!
//! A worker stops touching its room before its lease can expire: the lease is renewed every
//! third of its TTL, counts as held only until two thirds of the TTL after the last renewal
//! that succeeded (measured from when that renewal was sent), and is confirmed in the store
//! right before every reply is posted. So by the time another replica may take the room
//! over, this one has stopped, unless the process freezes for a third of the TTL between
//! a confirmation and the post (see docs/scaling.md).

use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::lease::{LeaseKeeper, RoomLease};
use crate::pipeline;
use crate::rooms::Rooms;
use crate::state::AppState;

/// How often the sweeper looks for pending work nobody is doing.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// Handled message ids are remembered at least this long to drop redeliveries (at least 7 days, docs/architecture.md).
const DEDUP_KEEP: Duration = Duration::from_secs(8 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Makes sure a worker runs for this room. Cheap; called for every accepted event.
pub fn notify(state: &AppState, room_id: &str) {
    if state.shutdown.is_cancelled() || !state.rooms.claim(room_id) {
        return;
    }
    let state2 = state.clone();
    let room = room_id.to_owned();
    let worker = async move { room_worker(state2, room).await }.in_current_span();
    match state.rooms.runtime() {
        Some(runtime) => state.tasks.spawn_on(worker, runtime),
        None => state.tasks.spawn(worker),
    };
}

/// A room's entry in the active map while its worker runs. A worker that ends any other
/// way than through [`Rooms::finish_or_rerun`] (shutdown, or a panic that drops its
/// task) removes the entry on drop, so the room is not left looking busy forever and the
/// sweeper starts a new worker for what is still pending.
struct Registered<'a> {
    rooms: &'a Rooms,
    room_id: &'a str,
    /// `finish_or_rerun` already removed the entry (a newer worker may own the room now).
    removed: bool,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        self.rooms.forget(self.room_id);
    }
}

async fn room_worker(state: AppState, room_id: String) {
    let span = tracing::info_span!("room", room_id = %room_id);
    let mut registered = Registered {
        rooms: &state.rooms,
        room_id: &room_id,
        removed: false,
    };
    async {
        loop {
            match drain_room(&state, &room_id).await {
                Ok(()) => {}
                Err(e) => tracing::error!(error = %e, "room worker failed; the sweeper retries"),
            }
            if state.shutdown.is_cancelled() {
                break;
            }
            if !state.rooms.finish_or_rerun(&room_id) {
                registered.removed = true;
                break;
            }
        }
    }
    .instrument(span)
    .await;
}

/// Handles the room's pending events in order while holding its lease: each
/// [`Store::next_event`] takes (or renews) the lease with the event, and releases it when
/// nothing more is due, so a room with one message costs two such steps. Where the store
/// can, the step after an event is taken in the same round trip as its done mark
/// ([`Store::finish_then_next`]), so on SQLite that message costs one `next_event` only.
async fn drain_room(state: &AppState, room_id: &str) -> anyhow::Result<()> {
    let lease = RoomLease::new(
        state.store.clone(),
        room_id,
        &state.instance_id,
        state.rooms.lease_ttl(),
    );
    let mut keeper = LeaseKeeper {
        lease: &lease,
        released: false,
    };
    // The room's next step when the last event's done mark took it (`pipeline::Next`).
    let mut next: Option<pipeline::Next> = None;
    let result = loop {
        if state.shutdown.is_cancelled() {
            break Ok(());
        }
        let (sent, taken) = match next.take() {
            Some(next) => (next.sent, Ok(next.event)),
            None => {
                let sent = Instant::now();
                let taken = state
                    .store
                    .next_event(room_id, &state.instance_id, lease.ttl)
                    .await;
                (sent, taken)
            }
        };
        let event = match taken {
            Ok(Some(event)) => event,
            Ok(None) => {
                keeper.released = true;
                break Ok(());
            }
            Err(e) => break Err(e),
        };
        lease.extend(sent);
        if let Some(fault) = state.rooms.fault() {
            (fault.0)(&event.message_id);
        }
        // `next_event` renewed the lease; an event that takes longer than a third of its
        // TTL (a slow LLM, an approval) has it renewed on the way. If the lease is lost,
        // the event still runs to its end: it checks the lease before every post.
        let handled = pipeline::handle(state, &lease, event);
        tokio::pin!(handled);
        next = tokio::select! {
            biased;
            next = &mut handled => next,
            () = lease.keep_renewed() => handled.await,
        };
        // A next step taken with the done mark renewed the lease in the store (or
        // released it): it is handled at the top of the loop like `next_event`'s.
        if next.is_none() && !lease.is_held() {
            tracing::warn!("room lease no longer held; stopping before the next event");
            break Ok(());
        }
    };
    lease.let_go();
    if !keeper.released {
        keeper.released = true;
        if let Err(e) = state.store.release_room(room_id, &state.instance_id).await {
            tracing::warn!(error = %e, "cannot release the room lease; it expires by itself");
        }
    }
    Ok(result?)
}

/// Picks up pending events that no worker is on (startup, retries after backoff, rooms of
/// a replica that died) and prunes old dedup records.
pub async fn sweeper(state: AppState) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match state.store.pending_rooms().await {
            Ok(rooms) => {
                for room in rooms {
                    notify(&state, &room);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot look for pending events"),
        }
        if last_prune.is_none_or(|t| t.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            match state.store.prune_inbox(DEDUP_KEEP).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(pruned = n, "forgot old handled events"),
                Err(e) => tracing::warn!(error = %e, "cannot prune old events"),
            }
        }
    }
}
