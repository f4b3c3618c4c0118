//! Webex REST resources as serde types: what the client sends and receives.
//! Decoding is lenient (unknown fields ignored, missing lists empty) because Webex adds
//! fields without notice; secrets never appear in `Debug` output.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::ids::{MessageId, PersonId, RoomId, WebhookId};

/// The kind of space a message was posted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomType {
    Direct,
    Group,
    /// A room type this crate does not know yet; kept so decoding never fails on it.
    #[serde(other)]
    Other,
}

impl RoomType {
    pub(crate) fn from_wire(s: &str) -> Self {
        match s {
            "direct" => RoomType::Direct,
            "group" => RoomType::Group,
            _ => RoomType::Other,
        }
    }
}

/// A person or bot (`GET /people/me`, `GET /people/{id}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    pub id: PersonId,
    #[serde(default, deserialize_with = "null_as_default")]
    pub emails: Vec<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nick_name: Option<String>,
    /// `person`, `bot` or `appuser`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub person_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
}

/// A message as `GET /messages/{id}` (and `POST`/`PUT`) answer it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: MessageId,
    pub room_id: RoomId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_type: Option<RoomType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<MessageId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<PersonId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_email: Option<String>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub mentioned_people: Vec<PersonId>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub mentioned_groups: Vec<String>,
    /// Content URLs (`…/contents/{id}`), downloaded with the bearer token.
    #[serde(default, deserialize_with = "null_as_default")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// Body of `POST /messages`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewMessage {
    pub room_id: RoomId,
    /// Must be the thread's root message: Webex rejects a reply to a reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<MessageId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub markdown: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl NewMessage {
    /// A markdown message into `room_id`, outside any thread.
    pub fn markdown(room_id: RoomId, markdown: impl Into<String>) -> Self {
        Self {
            room_id,
            parent_id: None,
            markdown: Some(markdown.into()),
            text: None,
        }
    }

    /// The same message as a reply in the thread rooted at `parent_id`.
    pub fn in_thread(mut self, parent_id: Option<MessageId>) -> Self {
        self.parent_id = parent_id;
        self
    }
}

/// The content type Webex requires of an Adaptive Card attachment.
pub const ADAPTIVE_CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";

/// Body of `POST /messages` with one Adaptive Card (Webex takes one card per message).
/// `markdown` is the fallback clients without cards show, and what notifications say;
/// Webex requires it (or `text`) beside the card. A message with a card cannot be edited.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewCardMessage {
    pub room_id: RoomId,
    /// The thread's root message, as for [`NewMessage`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<MessageId>,
    pub markdown: String,
    /// Always exactly one: see [`NewCardMessage::new`].
    pub attachments: [CardAttachment; 1],
}

/// One `attachments` entry: `{"contentType": "application/vnd.microsoft.card.adaptive", "content": {…}}`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardAttachment {
    pub content_type: &'static str,
    /// The card itself (`{"type": "AdaptiveCard", "version": "1.3", …}`).
    pub content: serde_json::Value,
}

impl NewCardMessage {
    /// A card with its markdown fallback into `room_id`, in the thread rooted at `parent_id`.
    pub fn new(
        room_id: RoomId,
        parent_id: Option<MessageId>,
        markdown: impl Into<String>,
        card: serde_json::Value,
    ) -> Self {
        Self {
            room_id,
            parent_id,
            markdown: markdown.into(),
            attachments: [CardAttachment {
                content_type: ADAPTIVE_CARD_CONTENT_TYPE,
                content: card,
            }],
        }
    }
}

/// A submitted card (`GET /attachment/actions/{id}`): who submitted which card, and the
/// inputs, into which Webex merges the `data` of the `Action.Submit` that was clicked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentAction {
    pub id: String,
    /// `submit`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub action_type: Option<String>,
    /// The message that carries the card.
    pub message_id: MessageId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person_id: Option<PersonId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<RoomId>,
    #[serde(default, deserialize_with = "null_as_default")]
    pub inputs: serde_json::Map<String, serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// A registered webhook (`GET /webhooks`, `POST /webhooks`, `PUT /webhooks/{id}`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: WebhookId,
    #[serde(default, deserialize_with = "null_as_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub target_url: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub resource: String,
    #[serde(default, deserialize_with = "null_as_default")]
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// `active` or `inactive` (Webex disables a webhook after repeated failed deliveries).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

impl Webhook {
    pub fn is_active(&self) -> bool {
        self.status.as_deref().is_none_or(|s| s == "active")
    }
}

/// Body of `POST /webhooks`.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NewWebhook {
    pub name: String,
    pub target_url: String,
    pub resource: String,
    pub event: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Body of `PUT /webhooks/{id}`; `status: Some("active")` re-enables a disabled webhook.
#[derive(Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateWebhook {
    pub name: String,
    pub target_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The `{"items": [...]}` wrapper of list answers.
#[derive(Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub(crate) struct Items<T> {
    #[serde(default = "Vec::new", deserialize_with = "null_as_default")]
    pub(crate) items: Vec<T>,
}

fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "[REDACTED]")
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("target_url", &self.target_url)
            .field("resource", &self.resource)
            .field("event", &self.event)
            .field("filter", &self.filter)
            .field("secret", &redacted(&self.secret))
            .field("status", &self.status)
            .field("created", &self.created)
            .finish()
    }
}

impl fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewWebhook")
            .field("name", &self.name)
            .field("target_url", &self.target_url)
            .field("resource", &self.resource)
            .field("event", &self.event)
            .field("filter", &self.filter)
            .field("secret", &redacted(&self.secret))
            .finish()
    }
}

impl fmt::Debug for UpdateWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdateWebhook")
            .field("name", &self.name)
            .field("target_url", &self.target_url)
            .field("secret", &redacted(&self.secret))
            .field("status", &self.status)
            .finish()
    }
}

/// `"field": null` decodes like a missing field instead of failing the whole message.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A room (space) as `GET /rooms` lists it; only what catching up needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub id: RoomId,
    /// `direct` or `group`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub room_type: Option<RoomType>,
    /// When the room last saw a message (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// What a bounded listing read, and whether it read everything that was asked for
/// (`complete: false` means it stopped at its bound with more left).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub complete: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIRECT: &str = include_str!("../tests/fixtures/message-direct.json");
    const DESKTOP: &str = include_str!("../tests/fixtures/message-group-mention-desktop.json");
    const MOBILE: &str = include_str!("../tests/fixtures/message-group-mention-mobile.json");
    const ME: &str = include_str!("../tests/fixtures/people-me.json");

    #[test]
    fn decodes_fixture_messages() {
        let direct: Message = serde_json::from_str(DIRECT).unwrap();
        assert_eq!(direct.room_type, Some(RoomType::Direct));
        assert_eq!(direct.person_email.as_deref(), Some("alice@example.com"));
        assert!(direct.mentioned_people.is_empty());
        assert!(direct.files.is_empty());
        assert_eq!(direct.parent_id, None);

        let desktop: Message = serde_json::from_str(DESKTOP).unwrap();
        assert_eq!(desktop.room_type, Some(RoomType::Group));
        assert_eq!(desktop.mentioned_people.len(), 1);

        let mobile: Message = serde_json::from_str(MOBILE).unwrap();
        assert_eq!(
            mobile.parent_id.as_ref().map(MessageId::as_str),
            Some(desktop.id.as_str())
        );
    }

    #[test]
    fn unknown_room_type_and_extra_fields_decode() {
        let json = r#"{"id":"m","roomId":"r","roomType":"team","attachments":[{"x":1}],
            "updated":"2026","mentionedPeople":null,"files":["https://x/contents/1"]}"#;
        let msg: Message = serde_json::from_str(json).unwrap();
        assert_eq!(msg.room_type, Some(RoomType::Other));
        assert!(msg.mentioned_people.is_empty());
        assert_eq!(msg.files.len(), 1);
    }

    #[test]
    fn decodes_person() {
        let me: Person = serde_json::from_str(ME).unwrap();
        assert_eq!(me.display_name, "HelpBot");
        assert_eq!(me.emails, vec!["helpbot@webex.bot".to_owned()]);
        assert_eq!(me.person_type.as_deref(), Some("bot"));
        assert!(me.org_id.is_some());
    }

    #[test]
    fn new_message_skips_none() {
        let msg = NewMessage::markdown(RoomId::new("r"), "**hi**");
        assert_eq!(
            serde_json::to_value(&msg).unwrap(),
            serde_json::json!({"roomId": "r", "markdown": "**hi**"})
        );
        let reply = msg.in_thread(Some(MessageId::new("p")));
        assert_eq!(serde_json::to_value(&reply).unwrap()["parentId"], "p");
    }

    #[test]
    fn a_card_message_has_one_adaptive_card_and_its_fallback() {
        let card = serde_json::json!({"type": "AdaptiveCard", "version": "1.3", "body": []});
        let msg = NewCardMessage::new(
            RoomId::new("r"),
            Some(MessageId::new("p")),
            "fallback",
            card.clone(),
        );
        assert_eq!(
            serde_json::to_value(&msg).unwrap(),
            serde_json::json!({"roomId": "r", "parentId": "p", "markdown": "fallback",
                "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]})
        );
    }

    #[test]
    fn decodes_an_attachment_action() {
        let json = r#"{"id":"A","type":"submit","messageId":"M","personId":"P","roomId":"R",
            "inputs":{"action":"set_personality","personality":"pirate"},"created":"2026-12-07T10:00:00.000Z","extra":1}"#;
        let action: AttachmentAction = serde_json::from_str(json).unwrap();
        assert_eq!(action.message_id.as_str(), "M");
        assert_eq!(action.inputs["personality"], "pirate");
        let bare: AttachmentAction =
            serde_json::from_str(r#"{"id":"A","messageId":"M","inputs":null}"#).unwrap();
        assert!(bare.inputs.is_empty());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let hook = Webhook {
            id: WebhookId::new("w"),
            name: "n".into(),
            target_url: "https://x".into(),
            resource: "messages".into(),
            event: "created".into(),
            filter: None,
            secret: Some("hunter2-secret".into()),
            status: Some("active".into()),
            created: None,
        };
        let new = NewWebhook {
            name: "n".into(),
            target_url: "https://x".into(),
            resource: "messages".into(),
            event: "created".into(),
            filter: None,
            secret: Some("hunter2-secret".into()),
        };
        let update = UpdateWebhook {
            name: "n".into(),
            target_url: "https://x".into(),
            secret: Some("hunter2-secret".into()),
            status: None,
        };
        for debug in [
            format!("{hook:?}"),
            format!("{new:?}"),
            format!("{update:?}"),
        ] {
            assert!(!debug.contains("hunter2"), "{debug}");
            assert!(debug.contains("REDACTED"), "{debug}");
        }
        assert!(hook.is_active());
    }
}
