//! `MODE=websocket`: the device is found or registered on a fake WDM (wiremock), events
//! arrive over a fake Mercury socket, and each message goes through the same inbox,
//! pipeline and fake Webex as a webhook delivery.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use wiremock::matchers::{any, header, method, path, query_param};
use wiremock::{Mock, MockServer, Respond, ResponseTemplate};

use crate::helpers::*;

mod cards;
mod catch_up;
mod connection;
mod mercury;
mod wdm;

use mercury::*;
use wdm::*;

/// Alice's person uuid in the fixtures.
const ALICE_UUID: &str = "92b3dd9a-675d-4a41-8c1e-1234567890ab";

/// A REST id as Webex spells it for the US cluster.
fn rest_id(kind: &str, uuid: &str) -> String {
    base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(format!("ciscospark://us/{kind}/{uuid}"))
}

fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A Mercury `conversation.activity` post envelope, shaped like what the JS SDK receives
/// (content encrypted, ids as raw uuids).
fn post_event(envelope_id: &str, activity_id: &str, room_uuid: &str, actor_uuid: &str) -> Value {
    json!({
        "id": envelope_id,
        "data": {
            "eventType": "conversation.activity",
            "activity": {
                "id": activity_id,
                "objectType": "activity",
                "verb": "post",
                "url": format!("https://conv-a.wbx2.com/conversation/api/v1/activities/{activity_id}"),
                "published": "2026-11-20T09:20:00.000Z",
                "actor": {"id": actor_uuid, "objectType": "person", "type": "PERSON",
                          "emailAddress": ADMIN},
                "object": {"objectType": "comment", "displayName": "eyJhbGciOiJkaXIiLCJlbmMi…"},
                "target": {"id": room_uuid, "objectType": "conversation", "tags": ["ONE_ON_ONE"],
                           "url": format!("https://conv-a.wbx2.com/conversation/api/v1/conversations/{room_uuid}")},
                "encryptionKeyUrl": "kms://kms-cisco.wbx2.com/keys/1"
            }
        },
        "timestamp": 1_764_000_000_000u64,
        "trackingId": "MERCURY_T",
        "alertType": "full",
        "sequenceNumber": 2
    })
}

/// A Mercury `cardAction` envelope (what the JS SDK turns into `attachmentActions`
/// `created`): the activity id is the attachment action's, its parent the card's message;
/// the inputs are in the (encrypted) object and read by REST.
fn card_action_event(
    envelope_id: &str,
    action_uuid: &str,
    card_uuid: &str,
    room_uuid: &str,
    actor_uuid: &str,
) -> Value {
    json!({
        "id": envelope_id,
        "data": {
            "eventType": "conversation.activity",
            "activity": {
                "id": action_uuid,
                "objectType": "activity",
                "verb": "cardAction",
                "published": "2026-11-20T09:21:00.000Z",
                "actor": {"id": actor_uuid, "entryUUID": actor_uuid, "objectType": "person",
                          "type": "PERSON", "emailAddress": ADMIN},
                "object": {"objectType": "submit", "inputs": "eyJhbGciOiJkaXIi…encrypted"},
                "parent": {"id": card_uuid, "type": "cardAction"},
                "target": {"id": room_uuid, "objectType": "conversation", "tags": ["ONE_ON_ONE"],
                           "url": format!("https://conv-a.wbx2.com/conversation/api/v1/conversations/{room_uuid}")},
            }
        },
        "timestamp": 1_764_000_060_000u64,
        "trackingId": "MERCURY_C",
        "sequenceNumber": 3
    })
}

/// A Mercury `add` envelope (the SDKs' `memberships` `created`): `object` is the person
/// added, `target` the space.
fn add_event(envelope_id: &str, person_uuid: &str, room_uuid: &str, tag: &str) -> Value {
    json!({
        "id": envelope_id,
        "data": {
            "eventType": "conversation.activity",
            "activity": {
                "id": new_uuid(),
                "objectType": "activity",
                "verb": "add",
                "published": "2026-11-20T09:22:00.000Z",
                "actor": {"id": ALICE_UUID, "entryUUID": ALICE_UUID, "objectType": "person",
                          "emailAddress": ALICE},
                "object": {"id": person_uuid, "entryUUID": person_uuid, "objectType": "person",
                           "emailAddress": "helpbot@webex.bot"},
                "target": {"id": room_uuid, "objectType": "conversation", "tags": [tag],
                           "url": format!("https://conv-a.wbx2.com/conversation/api/v1/conversations/{room_uuid}")},
            }
        },
        "timestamp": 1_764_000_120_000u64,
        "trackingId": "MERCURY_M",
        "sequenceNumber": 4
    })
}
