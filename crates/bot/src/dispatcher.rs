//! Turns recorded events into work: one worker per room at a time (messages of one
//! conversation in arrival order), rooms in parallel, and a sweeper that picks up events
//! left pending by a restart, a failed attempt or another replica that died.
//!
//! Across replicas a room is held through a lease row in the store; within this process a
//! map of active rooms avoids starting a second worker for a room.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tracing::Instrument;

use crate::pipeline;
use crate::state::AppState;

/// How long a room lease lasts without renewal; a replica that dies loses its rooms after this.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
const LEASE_RENEW: Duration = Duration::from_secs(10);
/// How often the sweeper looks for pending work nobody is doing.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(2);
/// Handled message ids are remembered at least this long to drop redeliveries (DESIGN: 7 days).
const DEDUP_KEEP: Duration = Duration::from_secs(8 * 24 * 3600);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

#[derive(Default)]
pub struct Dispatcher {
    /// Rooms with a worker in this process; `true` = new work arrived while it ran.
    active: Mutex<HashMap<String, bool>>,
}

impl Dispatcher {
    /// Makes sure a worker runs for this room. Cheap; called for every accepted event.
    pub fn notify(&self, state: &AppState, room_id: &str) {
        if state.shutdown.is_cancelled() {
            return;
        }
        let Ok(mut active) = self.active.lock() else {
            return;
        };
        if let Some(rerun) = active.get_mut(room_id) {
            *rerun = true;
            return;
        }
        active.insert(room_id.to_owned(), false);
        drop(active);
        let state2 = state.clone();
        let room = room_id.to_owned();
        state
            .tasks
            .spawn(async move { room_worker(state2, room).await }.in_current_span());
    }

    /// Called by a worker that found no more work: true when it should look again because
    /// an event arrived meanwhile, false when it has been removed and may stop.
    fn finish_or_rerun(&self, room_id: &str) -> bool {
        let Ok(mut active) = self.active.lock() else {
            return false;
        };
        match active.get_mut(room_id) {
            Some(rerun) if *rerun => {
                *rerun = false;
                true
            }
            _ => {
                active.remove(room_id);
                false
            }
        }
    }

    pub fn active_rooms(&self) -> usize {
        self.active.lock().map_or(0, |a| a.len())
    }
}

async fn room_worker(state: AppState, room_id: String) {
    let span = tracing::info_span!("room", room_id = %room_id);
    async {
        loop {
            match drain_room(&state, &room_id).await {
                Ok(()) => {}
                Err(e) => tracing::error!(error = %e, "room worker failed; the sweeper retries"),
            }
            if state.shutdown.is_cancelled() || !state.dispatcher.finish_or_rerun(&room_id) {
                break;
            }
        }
    }
    .instrument(span)
    .await;
    // A worker that stopped for shutdown or an error leaves itself registered; remove it.
    if let Ok(mut active) = state.dispatcher.active.lock()
        && state.shutdown.is_cancelled()
    {
        active.remove(&room_id);
    }
}

/// Handles the room's pending events in order while holding its lease.
async fn drain_room(state: &AppState, room_id: &str) -> anyhow::Result<()> {
    let owner = state.instance_id.as_str();
    if !state.store.claim_room(room_id, owner, LEASE_TTL).await? {
        tracing::debug!("room is being handled by another replica");
        return Ok(());
    }
    let renewer = {
        let state = state.clone();
        let room_id = room_id.to_owned();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(LEASE_RENEW);
            tick.tick().await;
            loop {
                tick.tick().await;
                match state
                    .store
                    .renew_room(&room_id, &state.instance_id, LEASE_TTL)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(room_id, "room lease lost");
                        break;
                    }
                    Err(e) => tracing::warn!(room_id, error = %e, "cannot renew the room lease"),
                }
            }
        })
    };
    let result = drain_claimed(state, room_id).await;
    renewer.abort();
    if let Err(e) = state.store.release_room(room_id, owner).await {
        tracing::warn!(error = %e, "cannot release the room lease; it expires by itself");
    }
    result
}

async fn drain_claimed(state: &AppState, room_id: &str) -> anyhow::Result<()> {
    while !state.shutdown.is_cancelled() {
        let Some(event) = state.store.next_pending(room_id).await? else {
            return Ok(());
        };
        if event.not_before > crate::store::now_ms() {
            // Backing off after a failure; later events wait behind it to keep the order.
            return Ok(());
        }
        pipeline::handle(state, event).await;
    }
    Ok(())
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
                    state.dispatcher.notify(&state, &room);
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
