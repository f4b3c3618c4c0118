//! Which rooms have a worker in this process (`true`: new work arrived while it ran), so
//! a room never gets a second one, and the settings every worker gets (lease length, the
//! test fault hook, the runtime to run on).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::lease::LEASE_TTL;

/// Called with each event's message id right before it is handled: a test's way to make
/// a worker fail where it stands (a panic), as a bug would.
#[derive(Clone)]
pub struct FaultHook(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for FaultHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaultHook")
    }
}

/// Which rooms have a worker in this process, and what those workers are given.
pub struct Rooms {
    /// Rooms with a worker in this process; `true` = new work arrived while it ran.
    active: Mutex<HashMap<String, bool>>,
    lease_ttl: Duration,
    fault: Option<FaultHook>,
    /// The runtime workers run on (the one the dispatcher was made on): webhooks are
    /// received on a thread of their own, and their workers must not run there.
    runtime: Option<tokio::runtime::Handle>,
}

impl Default for Rooms {
    fn default() -> Self {
        Self::new(LEASE_TTL)
    }
}

impl Rooms {
    pub fn new(lease_ttl: Duration) -> Self {
        Self {
            active: Mutex::new(HashMap::new()),
            // Below a few hundred milliseconds the renewals could not keep up.
            lease_ttl: lease_ttl.max(Duration::from_millis(300)),
            fault: None,
            runtime: tokio::runtime::Handle::try_current().ok(),
        }
    }

    pub fn with_fault_hook(mut self, fault: Option<FaultHook>) -> Self {
        self.fault = fault;
        self
    }

    /// Registers a worker for the room unless one runs: `true` when the caller must
    /// start it, `false` when the running one was told to look again.
    pub(crate) fn claim(&self, room_id: &str) -> bool {
        let Ok(mut active) = self.active.lock() else {
            return false;
        };
        if let Some(rerun) = active.get_mut(room_id) {
            *rerun = true;
            return false;
        }
        active.insert(room_id.to_owned(), false);
        true
    }

    /// Forgets the room's worker (it ended without [`Rooms::finish_or_rerun`]).
    pub(crate) fn forget(&self, room_id: &str) {
        if let Ok(mut active) = self.active.lock() {
            active.remove(room_id);
        }
    }

    pub(crate) fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    pub(crate) fn fault(&self) -> Option<&FaultHook> {
        self.fault.as_ref()
    }

    /// The runtime workers run on (the one `Rooms` was made on), if any.
    pub(crate) fn runtime(&self) -> Option<&tokio::runtime::Handle> {
        self.runtime.as_ref()
    }

    /// Called by a worker that found no more work: true when it should look again because
    /// an event arrived meanwhile, false when it has been removed and may stop.
    pub(crate) fn finish_or_rerun(&self, room_id: &str) -> bool {
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
