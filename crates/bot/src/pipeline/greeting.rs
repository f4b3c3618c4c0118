//! The bot was added to a group space (`memberships`/`created` for the bot itself, DESIGN
//! §10.3): it says hello with the space's personality's `greeting`, else a default that
//! says to @mention it and type `help`. Only such events reach the inbox (the webhook
//! route and the websocket drop everyone else's memberships and direct spaces).

use super::{Disposition, post_failure, reply};
use crate::domain::Outcome;
use crate::lease::RoomLease;
use crate::state::AppState;
use crate::store::PendingEvent;
use crate::strings;

pub(super) async fn post(state: &AppState, lease: &RoomLease, event: &PendingEvent) -> Disposition {
    let chosen = match state.store.personality_for(&event.room_id).await {
        Ok(chosen) => chosen,
        Err(e) => {
            return Disposition::Retry {
                cause: anyhow::Error::new(e).context("reading the space's personality"),
            };
        }
    };
    let greeting = {
        let set = state.personalities.load();
        let personality = set.resolve(chosen.as_deref());
        personality
            .greeting
            .clone()
            .unwrap_or_else(|| strings::DEFAULT_GREETING.to_owned())
    };
    let target = reply::Target {
        room_id: webex::RoomId::new(event.room_id.clone()),
        parent_id: None,
        group: true,
    };
    tracing::info!(room_id = %event.room_id, "added to a space; greeting");
    match reply::post(state, lease, reply::Progress::of(event), &target, &greeting).await {
        Ok(()) => Disposition::Done {
            outcome: Outcome::Greeted,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the greeting"),
    }
}
