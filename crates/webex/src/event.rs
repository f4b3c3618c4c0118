//! Webhook deliveries (the envelope Webex POSTs to the bot), parsed after the signature
//! check. Only `resource`, `event` and `data` are required; everything else is optional
//! because Webex adds fields and other resources carry different `data`.

use serde_json::{Map, Value};

use crate::ids::{PersonId, RoomId, WebhookId};
use crate::types::RoomType;

/// A webhook delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookEvent {
    /// The webhook that fired.
    pub id: Option<WebhookId>,
    pub name: Option<String>,
    /// `messages`, `memberships`, `attachmentActions`, …
    pub resource: String,
    /// `created`, `updated`, `deleted`, …
    pub event: String,
    /// Who caused the event.
    pub actor_id: Option<PersonId>,
    pub data: EventData,
}

/// The `data` of a delivery: metadata only, never message text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventData {
    /// The id of the resource (for `messages`, the message id to fetch).
    pub id: Option<String>,
    pub room_id: Option<RoomId>,
    pub room_type: Option<RoomType>,
    pub person_id: Option<PersonId>,
    pub person_email: Option<String>,
    pub created: Option<String>,
    /// `attachmentActions`: the message that carries the card that was submitted.
    pub message_id: Option<String>,
}

/// Why a webhook body was rejected.
#[derive(Debug, thiserror::Error)]
#[error("invalid webhook body: {0}")]
pub struct EventParseError(Problem);

#[derive(Debug, thiserror::Error)]
enum Problem {
    #[error("not JSON ({0})")]
    Json(#[source] serde_json::Error),
    #[error("not a JSON object")]
    NotObject,
    #[error("`{field}` is missing or not {expected}")]
    Field {
        field: &'static str,
        expected: &'static str,
    },
}

impl WebhookEvent {
    /// Fails (never panics) unless the body is a JSON object with string `resource`,
    /// `event` and an object `data`. Unknown fields are ignored, and optional fields of
    /// an unexpected type read as absent rather than failing the delivery.
    pub fn parse(body: &[u8]) -> Result<WebhookEvent, EventParseError> {
        let value: Value =
            serde_json::from_slice(body).map_err(|e| EventParseError(Problem::Json(e)))?;
        let Value::Object(envelope) = value else {
            return Err(EventParseError(Problem::NotObject));
        };
        let required = |field: &'static str| {
            string(&envelope, field).ok_or(EventParseError(Problem::Field {
                field,
                expected: "a string",
            }))
        };
        let resource = required("resource")?;
        let event = required("event")?;
        let Some(Value::Object(data)) = envelope.get("data") else {
            return Err(EventParseError(Problem::Field {
                field: "data",
                expected: "an object",
            }));
        };
        Ok(WebhookEvent {
            id: string(&envelope, "id").map(WebhookId::new),
            name: string(&envelope, "name"),
            resource,
            event,
            actor_id: string(&envelope, "actorId").map(PersonId::new),
            data: EventData {
                id: string(data, "id"),
                room_id: string(data, "roomId").map(RoomId::new),
                room_type: string(data, "roomType").map(|t| RoomType::from_wire(&t)),
                person_id: string(data, "personId").map(PersonId::new),
                person_email: string(data, "personEmail"),
                created: string(data, "created"),
                message_id: string(data, "messageId"),
            },
        })
    }

    /// A new message was posted.
    pub fn is_message_created(&self) -> bool {
        self.resource == "messages" && self.event == "created"
    }

    /// A card was submitted (`Action.Submit`); the inputs come from
    /// `GET /attachment/actions/{data.id}`.
    pub fn is_attachment_action_created(&self) -> bool {
        self.resource == "attachmentActions" && self.event == "created"
    }

    /// Someone (perhaps the bot itself) was added to a space.
    pub fn is_membership_created(&self) -> bool {
        self.resource == "memberships" && self.event == "created"
    }
}

fn string(object: &Map<String, Value>, key: &str) -> Option<String> {
    match object.get(key) {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIXTURE: &str = include_str!("../tests/fixtures/webhook-messages-created.json");

    #[test]
    fn parses_fixture() {
        let event = WebhookEvent::parse(FIXTURE.as_bytes()).unwrap();
        assert!(event.is_message_created());
        assert_eq!(event.name.as_deref(), Some("webex-chatbot"));
        assert_eq!(
            event.data.id.as_deref(),
            Some(
                "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk"
            )
        );
        assert_eq!(event.data.room_type, Some(RoomType::Group));
        assert_eq!(
            event.data.person_email.as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(event.actor_id, event.data.person_id);
        assert!(event.id.is_some());
    }

    #[test]
    fn shape_table() {
        // Ok((resource, event)) or Err(part of the error text).
        type Want = Result<(&'static str, &'static str), &'static str>;
        let cases: &[(&str, Want)] = &[
            (
                r#"{"resource":"messages","event":"created","data":{}}"#,
                Ok(("messages", "created")),
            ),
            (
                r#"{"resource":"memberships","event":"created","data":{"id":5,"roomType":"team","extra":[1]},"new":true}"#,
                Ok(("memberships", "created")),
            ),
            ("", Err("not JSON")),
            ("{", Err("not JSON")),
            ("[1,2]", Err("not a JSON object")),
            ("\"messages\"", Err("not a JSON object")),
            (r#"{"event":"created","data":{}}"#, Err("`resource`")),
            (
                r#"{"resource":1,"event":"created","data":{}}"#,
                Err("`resource`"),
            ),
            (r#"{"resource":"messages","data":{}}"#, Err("`event`")),
            (
                r#"{"resource":"messages","event":"created"}"#,
                Err("`data`"),
            ),
            (
                r#"{"resource":"messages","event":"created","data":"x"}"#,
                Err("`data`"),
            ),
            (
                r#"{"resource":"messages","event":"created","data":null}"#,
                Err("`data`"),
            ),
        ];
        for (body, want) in cases {
            match (WebhookEvent::parse(body.as_bytes()), want) {
                (Ok(event), Ok((resource, ev))) => {
                    assert_eq!(
                        (event.resource.as_str(), event.event.as_str()),
                        (*resource, *ev)
                    );
                }
                (Err(err), Err(needle)) => {
                    let shown = err.to_string();
                    assert!(shown.contains(needle), "{body:?}: {shown}");
                }
                (got, want) => panic!("{body:?}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn wrongly_typed_optional_fields_read_as_absent() {
        let event = WebhookEvent::parse(
            br#"{"resource":"messages","event":"deleted","actorId":7,"data":{"id":5,"roomType":"team"}}"#,
        )
        .unwrap();
        assert!(!event.is_message_created());
        assert_eq!(event.actor_id, None);
        assert_eq!(event.data.id, None);
        assert_eq!(event.data.room_type, Some(RoomType::Other));
    }

    #[test]
    fn card_submits_and_memberships_are_recognised() {
        let submit = WebhookEvent::parse(
            br#"{"resource":"attachmentActions","event":"created","data":{"id":"A","type":"submit","messageId":"M","personId":"P","roomId":"R","created":"2026-12-07T10:00:00.000Z"}}"#,
        )
        .unwrap();
        assert!(submit.is_attachment_action_created());
        assert!(!submit.is_message_created() && !submit.is_membership_created());
        assert_eq!(submit.data.message_id.as_deref(), Some("M"));
        let added = WebhookEvent::parse(
            br#"{"resource":"memberships","event":"created","data":{"id":"MB","roomId":"R","roomType":"group","personId":"P","personEmail":"bot@webex.bot","isModerator":false}}"#,
        )
        .unwrap();
        assert!(added.is_membership_created());
        assert_eq!(added.data.room_type, Some(RoomType::Group));
        assert_eq!(added.data.message_id, None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = WebhookEvent::parse(&body);
        }

        #[test]
        fn parse_never_panics_on_json_like(body in r#"[{}\[\]",:a-z0-9 ]{0,200}"#) {
            let _ = WebhookEvent::parse(body.as_bytes());
        }
    }
}
