//! `POST /webhook`: verify → record durably → 200. The work happens after the answer.
//! Three events are recorded (DESIGN §10.3): `messages`, `attachmentActions` (a submitted
//! card) and `memberships` (the bot added to a group space), each `created`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::config::Config;
use crate::state::AppState;
use crate::store::{Enqueued, EventKind, NewEvent};

pub const SIGNATURE_HEADER: &str = "x-spark-signature";
pub const RELAY_KEY_HEADER: &str = "x-relay-key";

/// Why a request is refused before anything is recorded.
#[derive(Debug, PartialEq, Eq)]
enum Rejection {
    BadRelayKey,
    BadSignature,
}

fn check_auth(config: &Config, headers: &HeaderMap, body: &[u8]) -> Result<(), Rejection> {
    // With RELAY_API_KEY set every request must carry it: the bot then takes only what the
    // relay forwards (a missing header is refused like a wrong one). Without it, a request
    // that claims to come from a relay is refused: no relay was configured to send one.
    match (&config.relay_api_key, headers.get(RELAY_KEY_HEADER)) {
        (None, None) => {}
        (None, Some(_)) | (Some(_), None) => return Err(Rejection::BadRelayKey),
        (Some(expected), Some(key)) => {
            let matches: bool = key
                .as_bytes()
                .ct_eq(expected.expose_secret().as_bytes())
                .into();
            if !matches {
                return Err(Rejection::BadRelayKey);
            }
        }
    }
    if let Some(secret) = &config.webhook_secret {
        let signature = headers
            .get(SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !webex::signature::verify(secret.expose_secret().as_bytes(), body, signature) {
            return Err(Rejection::BadSignature);
        }
    }
    Ok(())
}

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if let Err(rejection) = check_auth(&state.config, &headers, &body) {
        tracing::warn!(?rejection, "webhook refused");
        state.metrics.ignored(match rejection {
            Rejection::BadRelayKey => crate::domain::IgnoreReason::BadRelayKey,
            Rejection::BadSignature => crate::domain::IgnoreReason::BadSignature,
        });
        return (StatusCode::UNAUTHORIZED, "invalid signature or relay key\n");
    }
    let event = match webex::WebhookEvent::parse(&body) {
        Ok(event) => event,
        Err(e) => {
            tracing::warn!(error = %e, "malformed webhook body");
            state
                .metrics
                .ignored(crate::domain::IgnoreReason::Malformed);
            return (
                StatusCode::BAD_REQUEST,
                "body is not a Webex webhook JSON object\n",
            );
        }
    };
    state.metrics.events_received.inc();

    let Some(kind) = kind_of(&event) else {
        tracing::debug!(resource = %event.resource, event = %event.event, "ignored: not an event the bot handles");
        state
            .metrics
            .ignored(crate::domain::IgnoreReason::OtherEvent);
        return (StatusCode::OK, "ignored\n");
    };
    let (Some(id), Some(room_id)) = (event.data.id.as_deref(), event.data.room_id.as_ref()) else {
        state
            .metrics
            .ignored(crate::domain::IgnoreReason::Malformed);
        return (
            StatusCode::BAD_REQUEST,
            "event without data.id and data.roomId\n",
        );
    };
    let by_bot = event
        .data
        .person_id
        .as_ref()
        .is_some_and(|p| state.bot.id.same_person(p.as_str()));
    match kind {
        // The bot's own replies (and its own clicks, were there any) come back as events:
        // drop them before they cost a write.
        EventKind::Message | EventKind::CardAction if by_bot => {
            state
                .metrics
                .ignored(crate::domain::IgnoreReason::OwnMessage);
            return (StatusCode::OK, "ignored\n");
        }
        // Only the bot's own arrival in a group space is greeted; people joining a space
        // the bot is in, and the direct space someone opens with it, are not.
        EventKind::Membership
            if !by_bot || event.data.room_type == Some(webex::RoomType::Direct) =>
        {
            state
                .metrics
                .ignored(crate::domain::IgnoreReason::OtherEvent);
            return (StatusCode::OK, "ignored\n");
        }
        _ => {}
    }
    let key = crate::record::inbox_key(kind, id, event.data.created.as_deref());

    // Only the `data` object is kept (ids, room, sender, time): the envelope's webhook
    // name, target URL and creator are not needed to answer.
    let payload = data_object(&body);
    let event = NewEvent {
        message_id: &key,
        room_id: room_id.as_str(),
        payload: &payload,
        kind,
    };
    match crate::record::record(&state, &event, "webhook").await {
        Ok(Enqueued::New) => (StatusCode::OK, "accepted\n"),
        Ok(Enqueued::Duplicate) => (StatusCode::OK, "duplicate\n"),
        // Not recorded means not acknowledged: Webex delivers it again later.
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "cannot record the event, retry later\n",
        ),
    }
}

/// The inbox kind of a webhook the bot handles; `None` for every other resource and event.
fn kind_of(event: &webex::WebhookEvent) -> Option<EventKind> {
    if event.is_message_created() {
        Some(EventKind::Message)
    } else if event.is_attachment_action_created() {
        Some(EventKind::CardAction)
    } else if event.is_membership_created() {
        Some(EventKind::Membership)
    } else {
        None
    }
}

/// The `data` object of a webhook body, as JSON text (`{}` if it cannot be read, which
/// `WebhookEvent::parse` has already ruled out).
fn data_object(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|mut v| v.get_mut("data").map(serde_json::Value::take))
        .map(|data| data.to_string())
        .unwrap_or_else(|| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_data_object_is_kept() {
        let body = br#"{"id":"WH","name":"webex-chatbot","targetUrl":"https://bot.example.com/webhook","resource":"messages","event":"created","createdBy":"P","data":{"id":"M","roomId":"R","personEmail":"a@example.com"}}"#;
        let kept: serde_json::Value = serde_json::from_str(&data_object(body)).unwrap();
        assert_eq!(
            kept,
            serde_json::json!({"id":"M","roomId":"R","personEmail":"a@example.com"})
        );
        assert_eq!(data_object(b"not json"), "{}");
    }

    #[test]
    fn events_the_bot_handles() {
        let parse = |resource: &str, event: &str| {
            webex::WebhookEvent::parse(
                format!(r#"{{"resource":"{resource}","event":"{event}","data":{{}}}}"#).as_bytes(),
            )
            .unwrap()
        };
        let table = [
            ("messages", "created", Some(EventKind::Message)),
            ("attachmentActions", "created", Some(EventKind::CardAction)),
            ("memberships", "created", Some(EventKind::Membership)),
            ("messages", "deleted", None),
            ("memberships", "deleted", None),
            ("rooms", "created", None),
        ];
        for (resource, event, want) in table {
            assert_eq!(kind_of(&parse(resource, event)), want, "{resource}/{event}");
        }
    }
}
