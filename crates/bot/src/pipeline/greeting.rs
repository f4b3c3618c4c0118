//! The bot was added to a group space (`memberships`/`created` for the bot itself, DESIGN
//! §10.3): it says hello with the space's personality's `greeting`, else a default that
//! says to @mention it and type `help`. Only such events reach the inbox (the webhook
//! route and the websocket drop everyone else's memberships and direct spaces).

use arc_swap::ArcSwap;

use super::{Disposition, post_failure, reply};
use crate::domain::Outcome;
use crate::personality::Personalities;
use crate::store::PendingEvent;
use crate::strings;

/// The space's personality comes from the store `post` holds.
pub(super) async fn post(
    personalities: &ArcSwap<Personalities>,
    post: reply::Poster<'_>,
    event: &PendingEvent,
) -> Disposition {
    let chosen = match post.store.personality_for(&event.room_id).await {
        Ok(chosen) => chosen,
        Err(e) => {
            return Disposition::Retry {
                cause: anyhow::Error::new(e).context("reading the space's personality"),
            };
        }
    };
    let greeting = {
        let set = personalities.load();
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
    match post
        .post(reply::Progress::of(event), &target, &greeting)
        .await
    {
        Ok(()) => Disposition::Done {
            outcome: Outcome::Greeted,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the greeting"),
    }
}
