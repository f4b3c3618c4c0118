//! The record step every arrival shares (a webhook, a websocket event, a catch-up after a
//! reconnect): the event goes into the durable inbox, deduplicated by message id, and a
//! worker for its room is woken. Not recorded means not acknowledged: the sender (Webex,
//! Mercury, the next catch-up) delivers it again.

use crate::state::AppState;
use crate::store::{Enqueued, EventKind, NewEvent, StoreError};

/// The queue an event waits in: its room's, except for card clicks, which have a queue of
/// their own beside the room's. An answer waiting for an approval click (a `confirm` tool,
/// DESIGN §10.5) holds its room's worker until the click is decided, so the click must not
/// wait behind it. Clicks need no order against messages: a card exists before its click,
/// and a click's answer goes to the card's room and thread, read from Webex.
pub(crate) fn lane(kind: EventKind, room_id: &str) -> std::borrow::Cow<'_, str> {
    match kind {
        EventKind::CardAction => format!("{room_id}#clicks").into(),
        _ => room_id.into(),
    }
}

/// Records `event`; `via` names the way it came, for the log.
pub(crate) async fn record(
    state: &AppState,
    event: &NewEvent<'_>,
    via: &'static str,
) -> Result<Enqueued, StoreError> {
    let lane = lane(event.kind, event.room_id);
    let event = &NewEvent {
        message_id: event.message_id,
        room_id: &lane,
        payload: event.payload,
        kind: event.kind,
    };
    let recorded = state.store.enqueue(event).await;
    match &recorded {
        Ok(Enqueued::New) => {
            tracing::info!(
                message_id = event.message_id,
                room_id = event.room_id,
                kind = event.kind.as_str(),
                via,
                "event accepted"
            );
            crate::dispatcher::notify(state, event.room_id);
        }
        Ok(Enqueued::Duplicate) => {
            tracing::info!(
                message_id = event.message_id,
                via,
                "ignored: duplicate delivery"
            );
            state
                .metrics
                .ignored(crate::domain::IgnoreReason::Duplicate);
        }
        Err(e) => {
            tracing::error!(error = %e, message_id = event.message_id, via, "cannot record the event");
        }
    }
    recorded
}

/// The id an event is deduplicated by. A membership id names a person and a room, so it
/// repeats when the bot is removed and added again: its creation time makes each arrival
/// its own event, while redeliveries of one arrival stay the same.
pub(crate) fn inbox_key(kind: EventKind, id: &str, created: Option<&str>) -> String {
    match (kind, created) {
        (EventKind::Membership, Some(created)) => format!("{id}@{created}"),
        _ => id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_have_a_lane_of_their_own() {
        assert_eq!(lane(EventKind::Message, "R"), "R");
        assert_eq!(lane(EventKind::Membership, "R"), "R");
        assert_eq!(lane(EventKind::CardAction, "R"), "R#clicks");
    }

    #[test]
    fn inbox_keys() {
        assert_eq!(inbox_key(EventKind::Message, "M", Some("t")), "M");
        assert_eq!(inbox_key(EventKind::CardAction, "A", Some("t")), "A");
        assert_eq!(inbox_key(EventKind::Membership, "MB", Some("t")), "MB@t");
        assert_eq!(inbox_key(EventKind::Membership, "MB", None), "MB");
    }
}
