//! Mercury, the websocket Webex pushes events over to a registered [`Device`]: the
//! connection (handshake, authorization, pings, acknowledgements) and the translation of
//! its frames into events with REST ids, the ones a webhook would have carried.
//!
//! Mercury is not in Webex's public REST reference: the shapes here follow what the
//! official JS SDK sends and receives, and every field is read defensively. What to do with
//! an event (record it, when to reconnect) is the caller's.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use url::Url;

use crate::device::Device;
use crate::ids::{PersonId, RoomId, is_uuid, rest_id};

/// Asked of Mercury on every connection: JSON text frames, a buffer-state event once the
/// socket is authorized, HTTP-like statuses in close frames.
const SOCKET_QUERY: [(&str, &str); 3] = [
    ("outboundWireFormat", "text"),
    ("bufferStates", "true"),
    ("aliasHttpStatus", "true"),
];
/// How long a close handshake may take before the socket is just dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------
// Frames: what Mercury sends, translated without side effects
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Envelope {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    data: Option<EnvelopeData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeData {
    event_type: Option<String>,
    activity: Option<Activity>,
}

#[derive(Deserialize)]
struct Activity {
    id: Option<String>,
    verb: Option<String>,
    actor: Option<Actor>,
    /// `add`: the person added (`id`/`entryUUID`).
    object: Option<Actor>,
    target: Option<Target>,
    parent: Option<Parent>,
    published: Option<String>,
}

#[derive(Deserialize)]
struct Actor {
    id: Option<String>,
    #[serde(rename = "entryUUID")]
    entry_uuid: Option<String>,
}

impl Actor {
    /// The person's uuid: `entryUUID` where Mercury gives it (the SDKs read that), else `id`.
    fn uuid(&self) -> Option<&str> {
        self.entry_uuid
            .as_deref()
            .filter(|u| is_uuid(u))
            .or(self.id.as_deref())
    }
}

#[derive(Deserialize)]
struct Target {
    id: Option<String>,
    /// `ONE_ON_ONE` for a direct space.
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct Parent {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// What an [`Event`] is, in webhook terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A `post` (`messages`/`created`): [`Event::id`] is the message id.
    Message,
    /// A `cardAction` (`attachmentActions`/`created`): the attachment action id.
    CardAction,
    /// An `add` of the bot itself to a group space (`memberships`/`created`): the
    /// membership id.
    Membership,
}

/// Why a conversation activity is not an [`Event`] for the bot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The bot's own post or card action.
    OwnMessage,
    /// An activity the bot does not act on (edits, read receipts, leaves, someone else
    /// added, the bot added to a direct space …).
    OtherEvent,
    /// Ids missing or not uuids.
    Malformed,
}

/// A new message, submitted card or the bot's arrival in a space, with REST ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// The Mercury envelope id, to acknowledge once the event is safe.
    pub envelope_id: String,
    pub kind: EventKind,
    /// The REST id of the resource: a message id (`GET /messages/{id}`), an attachment
    /// action id (`GET /attachment/actions/{id}`) or a membership id.
    pub id: String,
    pub room_id: RoomId,
    /// When Webex says it happened (RFC 3339), as Mercury gave it.
    pub published: Option<String>,
    /// Ids only, as JSON, for an operator (source, envelope and activity ids, verb, actor,
    /// published, and the REST ids under `data`): the activity's content is encrypted, and
    /// what is needed of it is fetched by REST anyway.
    pub summary: String,
}

/// What one text frame from Mercury means.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// An event for the bot: handle it, then acknowledge it.
    Event(Event),
    /// A conversation activity the bot does not act on; acknowledge it at once.
    Skipped { ack: Option<String>, reason: Skip },
    /// Mercury's own events (buffer state, registration status …); acknowledge at once.
    Control {
        ack: Option<String>,
        event_type: String,
    },
    /// The answer to a ping.
    Pong,
    /// Not JSON or not an envelope.
    Malformed,
}

/// Translates one text frame for the bot `bot`. Pure: the caller records, acknowledges
/// and logs.
pub fn translate(text: &str, bot: &PersonId) -> Frame {
    let Ok(envelope) = serde_json::from_str::<Envelope>(text) else {
        return Frame::Malformed;
    };
    if envelope.kind.as_deref() == Some("pong") {
        return Frame::Pong;
    }
    let ack = envelope.id.filter(|id| !id.is_empty());
    let Some(data) = envelope.data else {
        return Frame::Malformed;
    };
    let event_type = data.event_type.unwrap_or_default();
    if event_type != "conversation.activity" {
        return Frame::Control { ack, event_type };
    }
    let skipped = |reason| Frame::Skipped {
        ack: ack.clone(),
        reason,
    };
    let Some(activity) = data.activity else {
        return skipped(Skip::Malformed);
    };
    // `share` is a message with files (DESIGN §10.4): the same REST message as a post.
    let verb = match activity.verb.as_deref() {
        Some(v @ ("post" | "share")) => v.to_owned(),
        // A submitted card (the SDKs' `attachmentActions` `created`).
        Some("cardAction") => return card_action(activity, ack, bot),
        // Someone added to a space (the SDKs' `memberships` `created`).
        Some("add") => return membership(activity, ack, bot),
        _ => return skipped(Skip::OtherEvent),
    };
    // An edit is a post whose parent is the edited message; webhook mode does not answer
    // edits either (it subscribes to messages/created only).
    if activity
        .parent
        .as_ref()
        .is_some_and(|p| p.kind.as_deref() == Some("edit"))
    {
        return skipped(Skip::OtherEvent);
    }
    let actor = actor_uuid(&activity);
    if !actor.is_empty() && bot.same_person(&actor) {
        return skipped(Skip::OwnMessage);
    }
    let (Some(activity_id), Some(room_uuid), Some(envelope_id)) = (
        activity.id.filter(|id| is_uuid(id)),
        activity.target.and_then(|t| t.id).filter(|id| is_uuid(id)),
        ack.clone(),
    ) else {
        return skipped(Skip::Malformed);
    };
    let message_id = rest_id("MESSAGE", &activity_id);
    let room_id = rest_id("ROOM", &room_uuid);
    let summary = json!({
        "source": "websocket",
        "envelopeId": envelope_id,
        "activityId": activity_id,
        "verb": verb,
        "actorId": actor,
        "published": activity.published,
        "data": {"id": message_id, "roomId": room_id},
    })
    .to_string();
    Frame::Event(Event {
        envelope_id,
        kind: EventKind::Message,
        id: message_id,
        room_id: RoomId::new(room_id),
        published: activity.published,
        summary,
    })
}

fn actor_uuid(activity: &Activity) -> String {
    activity
        .actor
        .as_ref()
        .and_then(Actor::uuid)
        .unwrap_or_default()
        .to_owned()
}

/// A `cardAction` activity: its id is the attachment action's (`ATTACHMENT_ACTION`), its
/// parent the card's message, its target the room; the inputs are read by REST, as in
/// webhook mode.
fn card_action(activity: Activity, ack: Option<String>, bot: &PersonId) -> Frame {
    let skipped = |reason| Frame::Skipped {
        ack: ack.clone(),
        reason,
    };
    let actor = actor_uuid(&activity);
    if !actor.is_empty() && bot.same_person(&actor) {
        return skipped(Skip::OwnMessage);
    }
    let (Some(action_uuid), Some(room_uuid), Some(envelope_id)) = (
        activity.id.filter(|id| is_uuid(id)),
        activity.target.and_then(|t| t.id).filter(|id| is_uuid(id)),
        ack.clone(),
    ) else {
        return skipped(Skip::Malformed);
    };
    let action_id = rest_id("ATTACHMENT_ACTION", &action_uuid);
    let room_id = rest_id("ROOM", &room_uuid);
    let card_message = activity
        .parent
        .and_then(|p| p.id)
        .filter(|id| is_uuid(id))
        .map(|id| rest_id("MESSAGE", &id));
    let summary = json!({
        "source": "websocket",
        "envelopeId": envelope_id,
        "activityId": action_uuid,
        "verb": "cardAction",
        "actorId": actor,
        "published": activity.published,
        "data": {"id": action_id, "roomId": room_id, "messageId": card_message},
    })
    .to_string();
    Frame::Event(Event {
        envelope_id,
        kind: EventKind::CardAction,
        id: action_id,
        room_id: RoomId::new(room_id),
        published: activity.published,
        summary,
    })
}

/// An `add` activity: only the bot itself added to a group space is an event (the
/// greeting); anyone else joining, or a direct space, is not.
fn membership(activity: Activity, ack: Option<String>, bot: &PersonId) -> Frame {
    let skipped = |reason| Frame::Skipped {
        ack: ack.clone(),
        reason,
    };
    let added = activity
        .object
        .as_ref()
        .and_then(Actor::uuid)
        .unwrap_or_default()
        .to_owned();
    if added.is_empty() || !bot.same_person(&added) {
        return skipped(Skip::OtherEvent);
    }
    let Some(target) = activity.target else {
        return skipped(Skip::Malformed);
    };
    if target.tags.iter().any(|t| t == "ONE_ON_ONE") {
        return skipped(Skip::OtherEvent);
    }
    let (Some(room_uuid), Some(envelope_id)) = (target.id.filter(|id| is_uuid(id)), ack.clone())
    else {
        return skipped(Skip::Malformed);
    };
    let room_id = rest_id("ROOM", &room_uuid);
    let membership_id = rest_id("MEMBERSHIP", &format!("{added}:{room_uuid}"));
    let summary = json!({
        "source": "websocket",
        "envelopeId": envelope_id,
        "verb": "add",
        "published": activity.published,
        "data": {"id": membership_id, "roomId": room_id, "roomType": "group"},
    })
    .to_string();
    Frame::Event(Event {
        envelope_id,
        kind: EventKind::Membership,
        id: membership_id,
        room_id: RoomId::new(room_id),
        published: activity.published,
        summary,
    })
}

// ---------------------------------------------------------------------------------------
// The connection
// ---------------------------------------------------------------------------------------

/// Why a connection could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    /// The handshake answered 404: the device is gone; register a new one.
    #[error("the device is gone (the handshake answered 404)")]
    DeviceGone,
    #[error("invalid webSocketUrl: {0}")]
    InvalidUrl(&'static str),
    #[error("no handshake within {}s", .0.as_secs())]
    Timeout(Duration),
    #[error("handshake answered {0}")]
    Refused(u16),
    #[error("websocket handshake")]
    Handshake(#[source] tungstenite::Error),
    #[error("websocket send")]
    Send(#[source] tungstenite::Error),
}

/// `webSocketUrl` with the query Mercury expects (parameters already there are kept).
pub fn socket_url(web_socket_url: &str) -> Result<Url, SocketError> {
    let mut url = Url::parse(web_socket_url).map_err(|_| SocketError::InvalidUrl("not a URL"))?;
    if !matches!(url.scheme(), "wss" | "ws") {
        return Err(SocketError::InvalidUrl("not a websocket URL"));
    }
    let present: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in SOCKET_QUERY {
            if !present.iter().any(|p| p == k) {
                query.append_pair(k, v);
            }
        }
    }
    Ok(url)
}

/// What the socket delivered next.
#[derive(Debug)]
pub enum Received {
    /// A text (or binary, read as text) frame: pass it to [`translate`].
    Text(String),
    /// A websocket ping or pong (answered by the socket itself): traffic, nothing to do.
    Other,
    /// Mercury closed the connection (4401/4403: the token was refused), with why.
    Closed(String),
    /// The connection broke or ended without a close frame, with why.
    Lost(String),
}

impl Received {
    /// Whether the socket was up until now (everything sent before reached it).
    pub fn delivered(&self) -> bool {
        !matches!(self, Received::Lost(_))
    }
}

/// One authorized Mercury connection for a device.
pub struct Connection {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Connection {
    /// Opens the device's socket (the handshake within `timeout`) and authorizes it with
    /// the bot's token.
    pub async fn open(
        device: &Device,
        token: &SecretString,
        timeout: Duration,
    ) -> Result<Connection, SocketError> {
        let url = socket_url(&device.web_socket_url)?;
        let connecting = tokio_tungstenite::connect_async(url.as_str());
        let socket = match tokio::time::timeout(timeout, connecting).await {
            Err(_) => return Err(SocketError::Timeout(timeout)),
            Ok(Ok((socket, _))) => socket,
            Ok(Err(tungstenite::Error::Http(res))) if res.status().as_u16() == 404 => {
                return Err(SocketError::DeviceGone);
            }
            Ok(Err(tungstenite::Error::Http(res))) => {
                return Err(SocketError::Refused(res.status().as_u16()));
            }
            Ok(Err(e)) => return Err(SocketError::Handshake(e)),
        };
        let mut connection = Connection { socket };
        connection
            .send(&json!({
                "id": uuid::Uuid::new_v4().to_string(),
                "type": "authorization",
                "data": {"token": format!("Bearer {}", token.expose_secret())},
            }))
            .await?;
        Ok(connection)
    }

    async fn send(&mut self, value: &serde_json::Value) -> Result<(), SocketError> {
        self.socket
            .send(Message::text(value.to_string()))
            .await
            .map_err(SocketError::Send)
    }

    /// The next thing the socket delivered. Cancel-safe: nothing is lost when this
    /// future is dropped in a `select!`.
    pub async fn next(&mut self) -> Received {
        match self.socket.next().await {
            None => Received::Lost("closed".into()),
            Some(Err(e)) => Received::Lost(e.to_string()),
            Some(Ok(Message::Close(frame))) => Received::Closed(frame.map_or_else(
                || "closed".to_owned(),
                |f| format!("closed with {} {}", u16::from(f.code), f.reason),
            )),
            Some(Ok(Message::Text(text))) => Received::Text(text.to_string()),
            Some(Ok(Message::Binary(bytes))) => {
                Received::Text(String::from_utf8_lossy(&bytes).into_owned())
            }
            Some(Ok(_)) => Received::Other,
        }
    }

    /// Acknowledges the envelope `envelope_id`, so Mercury does not deliver it again.
    pub async fn ack(&mut self, envelope_id: &str) -> Result<(), SocketError> {
        self.send(&json!({"type": "ack", "messageId": envelope_id}))
            .await
    }

    /// Mercury's own ping (answered by a `pong` frame, [`Frame::Pong`]).
    pub async fn ping(&mut self) -> Result<(), SocketError> {
        self.send(&json!({"id": uuid::Uuid::new_v4().to_string(), "type": "ping"}))
            .await
    }

    /// Closes the connection, waiting briefly for the close handshake.
    pub async fn close(&mut self) {
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.socket.close(None)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const BOT: &str =
        "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";
    const BOT_UUID: &str = "249f74d9-db8a-43ca-896b-879ed240ac53";
    const ALICE_UUID: &str = "92b3dd9a-675d-4a41-8c1e-1234567890ab";
    // The ids of shared/fixtures/message-direct.json and what they decode to.
    const FIXTURE_MESSAGE: &str =
        "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvYzNkNGU1ZjYtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk";
    const FIXTURE_ROOM: &str =
        "Y2lzY29zcGFyazovL3VzL1JPT00vZDFlMmYzYTQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0";
    const MESSAGE_UUID: &str = "c3d4e5f6-43bd-11e6-8ae9-dd5b3dfc565d";
    const ROOM_UUID: &str = "d1e2f3a4-43f1-3b58-9147-f14bb0c4d154";

    fn post(activity: Value) -> String {
        json!({
            "id": "env-1",
            "data": {"eventType": "conversation.activity", "activity": activity},
            "timestamp": 1_764_000_000_000u64,
            "trackingId": "T",
        })
        .to_string()
    }

    fn activity(verb: &str, actor: &str) -> Value {
        json!({
            "id": MESSAGE_UUID,
            "objectType": "activity",
            "verb": verb,
            "actor": {"id": actor, "objectType": "person", "type": "PERSON", "emailAddress": "alice@example.com"},
            "object": {"objectType": "comment", "displayName": "eyJhbGciOi…encrypted"},
            "target": {"id": ROOM_UUID, "objectType": "conversation", "tags": ["ONE_ON_ONE"],
                       "url": format!("https://conv-a.wbx2.com/conversation/api/v1/conversations/{ROOM_UUID}")},
            "published": "2026-11-20T09:20:00.000Z",
        })
    }

    /// An `add` activity as Mercury sends it: the person added is the `object`.
    fn added(person: &str, tag: &str) -> Value {
        json!({
            "id": "5f0e9a1c-1111-4222-8333-944455556666",
            "objectType": "activity",
            "verb": "add",
            "actor": {"id": ALICE_UUID, "objectType": "person", "entryUUID": ALICE_UUID},
            "object": {"id": person, "objectType": "person", "entryUUID": person},
            "target": {"id": ROOM_UUID, "objectType": "conversation", "tags": [tag]},
            "published": "2026-11-20T09:20:00.000Z",
        })
    }

    #[test]
    fn a_file_share_becomes_an_event_like_a_post() {
        let bot = PersonId::new(BOT);
        let Frame::Event(event) = translate(&post(activity("share", ALICE_UUID)), &bot) else {
            panic!("not an event");
        };
        assert_eq!(event.kind, EventKind::Message);
        assert_eq!(event.id, FIXTURE_MESSAGE);
        let summary: Value = serde_json::from_str(&event.summary).unwrap();
        assert_eq!(summary["verb"], "share");
    }

    #[test]
    fn a_post_becomes_an_event_with_rest_ids() {
        let bot = PersonId::new(BOT);
        let Frame::Event(event) = translate(&post(activity("post", ALICE_UUID)), &bot) else {
            panic!("not an event");
        };
        assert_eq!(event.envelope_id, "env-1");
        assert_eq!(event.kind, EventKind::Message);
        assert_eq!(event.id, FIXTURE_MESSAGE);
        assert_eq!(event.room_id.as_str(), FIXTURE_ROOM);
        assert_eq!(event.published.as_deref(), Some("2026-11-20T09:20:00.000Z"));
        let summary: Value = serde_json::from_str(&event.summary).unwrap();
        assert_eq!(summary["source"], "websocket");
        assert_eq!(summary["verb"], "post");
        assert_eq!(summary["data"]["id"], FIXTURE_MESSAGE);
        assert_eq!(summary["data"]["roomId"], FIXTURE_ROOM);
        assert!(
            !event.summary.contains("encrypted"),
            "no content is kept: {}",
            event.summary
        );
    }

    #[test]
    fn a_card_action_becomes_an_event() {
        let bot = PersonId::new(BOT);
        let mut a = activity("cardAction", ALICE_UUID);
        a["parent"] = json!({"id": MESSAGE_UUID, "type": "cardAction"});
        a["id"] = json!("0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5");
        a["object"] = json!({"objectType": "submit", "inputs": {"action": "feedback"}});
        let Frame::Event(event) = translate(&post(a), &bot) else {
            panic!("not an event");
        };
        assert_eq!(event.kind, EventKind::CardAction);
        assert_eq!(
            event.id,
            rest_id("ATTACHMENT_ACTION", "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5")
        );
        assert_eq!(event.room_id.as_str(), FIXTURE_ROOM);
        let summary: Value = serde_json::from_str(&event.summary).unwrap();
        assert_eq!(summary["data"]["messageId"], FIXTURE_MESSAGE);
        assert!(
            !event.summary.contains("inputs"),
            "inputs are read by REST: {}",
            event.summary
        );
    }

    #[test]
    fn the_bot_added_to_a_group_space_becomes_an_event() {
        let bot = PersonId::new(BOT);
        let Frame::Event(event) = translate(&post(added(BOT_UUID, "GROUP")), &bot) else {
            panic!("not an event");
        };
        assert_eq!(event.kind, EventKind::Membership);
        assert_eq!(event.room_id.as_str(), FIXTURE_ROOM);
        assert_eq!(
            event.id,
            rest_id("MEMBERSHIP", &format!("{BOT_UUID}:{ROOM_UUID}"))
        );
        assert_eq!(event.published.as_deref(), Some("2026-11-20T09:20:00.000Z"));
    }

    #[test]
    fn frames_are_translated() {
        let bot = PersonId::new(BOT);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut a = activity("post", ALICE_UUID);
            f(&mut a);
            post(a)
        };
        let skipped = |reason| Frame::Skipped {
            ack: Some("env-1".into()),
            reason,
        };
        let cases: Vec<(&str, String, Frame)> = vec![
            ("not json", "hello".into(), Frame::Malformed),
            ("no data", json!({"id": "x"}).to_string(), Frame::Malformed),
            ("pong", json!({"type": "pong", "id": "p"}).to_string(), Frame::Pong),
            (
                "buffer state",
                json!({"id": "b", "data": {"eventType": "mercury.buffer_state"}}).to_string(),
                Frame::Control {
                    ack: Some("b".into()),
                    event_type: "mercury.buffer_state".into(),
                },
            ),
            (
                "other event type",
                json!({"id": "e", "data": {"eventType": "conversation.highlight"}}).to_string(),
                Frame::Control {
                    ack: Some("e".into()),
                    event_type: "conversation.highlight".into(),
                },
            ),
            ("acknowledge (read receipt)", post(activity("acknowledge", ALICE_UUID)), skipped(Skip::OtherEvent)),
            ("own card action", post(activity("cardAction", BOT_UUID)), skipped(Skip::OwnMessage)),
            ("someone else added", post(added(ALICE_UUID, "GROUP")), skipped(Skip::OtherEvent)),
            ("bot in a direct space", post(added(BOT_UUID, "ONE_ON_ONE")), skipped(Skip::OtherEvent)),
            ("leave", post(activity("leave", ALICE_UUID)), skipped(Skip::OtherEvent)),
            ("no activity", json!({"id": "env-1", "data": {"eventType": "conversation.activity"}}).to_string(), skipped(Skip::Malformed)),
            ("own post, raw uuid", post(activity("post", BOT_UUID)), skipped(Skip::OwnMessage)),
            ("own post, upper-case uuid", post(activity("post", &BOT_UUID.to_uppercase())), skipped(Skip::OwnMessage)),
            ("edit", with(&|a| a["parent"] = json!({"id": "x", "type": "edit"})), skipped(Skip::OtherEvent)),
            ("activity id not a uuid", with(&|a| a["id"] = json!("act-1")), skipped(Skip::Malformed)),
            ("no target", with(&|a| a["target"] = Value::Null), skipped(Skip::Malformed)),
            (
                "no envelope id",
                json!({"data": {"eventType": "conversation.activity", "activity": activity("post", ALICE_UUID)}}).to_string(),
                Frame::Skipped { ack: None, reason: Skip::Malformed },
            ),
        ];
        for (name, frame, want) in cases {
            assert_eq!(translate(&frame, &bot), want, "{name}");
        }
        // A reply in a thread is still a new message.
        let reply = with(&|a| a["parent"] = json!({"id": "root", "type": "reply"}));
        assert!(matches!(translate(&reply, &bot), Frame::Event(_)));
    }

    #[test]
    fn socket_url_adds_the_query_once() {
        let url =
            socket_url("wss://mercury-connection-a.wbx2.com/v1/apps/wx2/registrations/D/messages")
                .unwrap();
        assert_eq!(
            url.query(),
            Some("outboundWireFormat=text&bufferStates=true&aliasHttpStatus=true")
        );
        let url = socket_url("wss://m.example/x?bufferStates=true&a=b").unwrap();
        assert_eq!(
            url.query(),
            Some("bufferStates=true&a=b&outboundWireFormat=text&aliasHttpStatus=true")
        );
        assert!(socket_url("https://m.example/x").is_err());
        assert!(socket_url("not a url").is_err());
    }

    #[test]
    fn only_a_broken_connection_delivered_nothing() {
        assert!(Received::Text("{}".into()).delivered());
        assert!(Received::Other.delivered());
        assert!(Received::Closed("closed with 4401".into()).delivered());
        assert!(!Received::Lost("reset".into()).delivered());
    }
}
