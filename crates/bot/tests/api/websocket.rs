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

// ---------------------------------------------------------------------------------------
// Fake Mercury
// ---------------------------------------------------------------------------------------

enum Cmd {
    Send(Value),
    Close,
}

#[derive(Default)]
struct Log {
    /// Path and query of every handshake.
    handshakes: Vec<String>,
    /// Connections whose first frame was a valid authorization.
    authorized: usize,
    bad_auth: usize,
    /// Every frame the bot sent after authorizing.
    received: Vec<Value>,
    /// The envelope id of every frame sent to the bot.
    sent: Vec<String>,
}

impl Log {
    /// Envelopes sent to the bot and not (yet) acknowledged with their id.
    fn unacked(&self) -> Vec<String> {
        self.sent
            .iter()
            .filter(|id| {
                !self
                    .received
                    .iter()
                    .any(|f| f["type"] == "ack" && f["messageId"] == id.as_str())
            })
            .cloned()
            .collect()
    }
}

/// One websocket server speaking just enough Mercury: it expects the authorization frame
/// first (closing with 4401 otherwise), sends a buffer-state event, answers pings with
/// pongs, records everything, and sends what the test asks. Handshakes on a path holding
/// `reject_404` are refused with 404, as Mercury does for an unknown device.
struct FakeMercury {
    addr: SocketAddr,
    commands: mpsc::UnboundedSender<Cmd>,
    log: Arc<Mutex<Log>>,
}

impl FakeMercury {
    async fn start(reject_404: Option<&'static str>) -> FakeMercury {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (commands, mut rx) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Log::default()));
        let log2 = log.clone();
        tokio::spawn(async move {
            // One connection at a time, like one bot with one device.
            while let Ok((tcp, _)) = listener.accept().await {
                let log3 = log2.clone();
                // The error type is tungstenite's own, sized as it is.
                #[allow(clippy::result_large_err)]
                let callback =
                    move |req: &Request, res: Response| -> Result<Response, ErrorResponse> {
                        let target = req.uri().to_string();
                        log3.lock().unwrap().handshakes.push(target.clone());
                        if reject_404.is_some_and(|r| target.contains(r)) {
                            let mut refused = ErrorResponse::new(Some("device not found".into()));
                            *refused.status_mut() =
                                tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
                            return Err(refused);
                        }
                        Ok(res)
                    };
                let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await else {
                    continue;
                };
                serve_connection(ws, &mut rx, &log2).await;
            }
        });
        FakeMercury {
            addr,
            commands,
            log,
        }
    }

    fn url(&self, device: &str) -> String {
        format!(
            "ws://{}/v1/apps/wx2/registrations/{device}/messages",
            self.addr
        )
    }

    fn send(&self, event: &Value) {
        self.commands.send(Cmd::Send(event.clone())).unwrap();
    }

    fn close(&self) {
        self.commands.send(Cmd::Close).unwrap();
    }

    fn acks(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .received
            .iter()
            .filter(|f| f["type"] == "ack")
            .map(|f| f["messageId"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    fn handshakes(&self) -> Vec<String> {
        self.log.lock().unwrap().handshakes.clone()
    }

    async fn wait_until(&self, what: &str, done: impl Fn(&Log) -> bool) {
        assert!(
            eventually(Duration::from_secs(10), || {
                let now = done(&self.log.lock().unwrap());
                async move { now }
            })
            .await,
            "fake Mercury: timed out waiting for {what}"
        );
    }

    async fn wait_authorized(&self, n: usize) {
        self.wait_until(&format!("{n} authorized connection(s)"), |l| {
            l.authorized >= n
        })
        .await;
    }

    async fn wait_ack(&self, envelope_id: &str) {
        self.wait_until(&format!("an ack of {envelope_id}"), |l| {
            l.received
                .iter()
                .any(|f| f["type"] == "ack" && f["messageId"] == envelope_id)
        })
        .await;
    }
}

async fn serve_connection(
    mut ws: tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    rx: &mut mpsc::UnboundedReceiver<Cmd>,
    log: &Arc<Mutex<Log>>,
) {
    let first = match ws.next().await {
        Some(Ok(Message::Text(t))) => serde_json::from_str::<Value>(&t).unwrap_or(Value::Null),
        _ => return,
    };
    let authorized = first["type"] == "authorization"
        && first["id"].as_str().is_some_and(|id| !id.is_empty())
        && first["data"]["token"] == format!("Bearer {TOKEN}");
    if !authorized {
        log.lock().unwrap().bad_auth += 1;
        let _ = ws
            .close(Some(CloseFrame {
                code: 4401.into(),
                reason: "authorization failed".into(),
            }))
            .await;
        return;
    }
    log.lock().unwrap().authorized += 1;
    let buffer_state = json!({"id": new_uuid(), "data": {"eventType": "mercury.buffer_state",
        "bufferState": {"conversation": "UNAVAILABLE", "locus": "UNAVAILABLE"}}});
    log.lock()
        .unwrap()
        .sent
        .push(buffer_state["id"].as_str().unwrap().to_owned());
    if ws
        .send(Message::text(buffer_state.to_string()))
        .await
        .is_err()
    {
        return;
    }
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(Cmd::Send(event)) => {
                    if let Some(id) = event["id"].as_str() {
                        log.lock().unwrap().sent.push(id.to_owned());
                    }
                    if ws.send(Message::text(event.to_string())).await.is_err() {
                        return;
                    }
                }
                Some(Cmd::Close) | None => {
                    let _ = ws.close(None).await;
                    // Read until the bot answers the close, so it sees a clean close.
                    while let Some(Ok(_)) = ws.next().await {}
                    return;
                }
            },
            frame = ws.next() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let frame: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                    if frame["type"] == "ping" {
                        let pong = json!({"type": "pong", "id": frame["id"]});
                        let _ = ws.send(Message::text(pong.to_string())).await;
                    }
                    log.lock().unwrap().received.push(frame);
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fake device service (WDM)
// ---------------------------------------------------------------------------------------

fn device(wdm_base: &str, id: &str, mercury: &FakeMercury, name: &str) -> Value {
    json!({
        "url": format!("{wdm_base}/devices/{id}"),
        "webSocketUrl": mercury.url(id),
        "name": name,
        "deviceType": "DESKTOP",
        "services": {"conversationServiceUrl": "https://conv-a.wbx2.com/conversation/api/v1"},
        "creationTime": "2026-11-20T09:00:00.000Z"
    })
}

/// `GET {base}/devices` answers with these devices.
async fn mount_device_list(wdm: &MockServer, prefix: &str, devices: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/devices")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"devices": devices})))
        .mount(wdm)
        .await;
}

/// `POST {base}/devices`: exactly the registration body, else 400; answers `created`.
async fn mount_device_create(wdm: &MockServer, prefix: &str, created: Value, times: u64) {
    let created = Arc::new(created);
    Mock::given(method("POST"))
        .and(path(format!("{prefix}/devices")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(move |req: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
            let expected = json!({
                "deviceName": "webex-chatbot",
                "deviceType": "DESKTOP",
                "localizedModel": "rust",
                "model": "rust",
                "name": "webex-chatbot",
                "systemName": "webex-chatbot",
                "systemVersion": env!("CARGO_PKG_VERSION"),
            });
            if body != expected {
                return ResponseTemplate::new(400)
                    .set_body_json(json!({"message": format!("unexpected device body {body}")}));
            }
            ResponseTemplate::new(200).set_body_json((*created).clone())
        })
        .expect(times)
        .mount(wdm)
        .await;
}

async fn mount_device_delete(wdm: &MockServer, prefix: &str, id: &str, times: u64) {
    Mock::given(method("DELETE"))
        .and(path(format!("{prefix}/devices/{id}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(times)
        .mount(wdm)
        .await;
}

/// A new device on an empty fake WDM at its root, and the app in websocket mode on it.
async fn spawn_with_new_device(mercury: &FakeMercury) -> (TestApp, MockServer) {
    let wdm = MockServer::start().await;
    mount_device_list(&wdm, "", vec![]).await;
    mount_device_create(
        &wdm,
        "",
        device(&wdm.uri(), "DEV-1", mercury, "webex-chatbot"),
        1,
    )
    .await;
    mount_device_delete(&wdm, "", "DEV-1", 1).await;
    let app = TestApp::spawn(Spawn::default().websocket(&wdm.uri())).await;
    mercury.wait_authorized(1).await;
    (app, wdm)
}

/// Mounts a direct message from the admin with ids made from these uuids.
async fn mount_direct(app: &TestApp, message_uuid: &str, room_uuid: &str, text: &str) -> String {
    let id = rest_id("MESSAGE", message_uuid);
    let message = direct_message(&id, &rest_id("ROOM", room_uuid), ADMIN, text);
    mount_message(&app.webex, &message).await;
    id
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn websocket_message_is_answered_once_and_acknowledged() {
    let mercury = FakeMercury::start(None).await;
    // Discovery: U2C's catalog names the device service, under a path prefix.
    let u2c = MockServer::start().await;
    let wdm = MockServer::start().await;
    let wdm_base = format!("{}/wdm/api/v1", wdm.uri());
    Mock::given(method("GET"))
        .and(path("/u2c/api/v1/catalog"))
        .and(query_param("format", "hostmap"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "serviceLinks": {"wdm": wdm_base, "conversation": "https://conv-a.wbx2.com/conversation/api/v1"},
            "hostCatalog": {}
        })))
        .expect(1)
        .mount(&u2c)
        .await;
    mount_device_list(&wdm, "/wdm/api/v1", vec![]).await;
    mount_device_create(
        &wdm,
        "/wdm/api/v1",
        device(&wdm_base, "DEV-1", &mercury, "webex-chatbot"),
        1,
    )
    .await;
    mount_device_delete(&wdm, "/wdm/api/v1", "DEV-1", 1).await;
    let app = TestApp::spawn(
        Spawn::default()
            .env("MODE", "websocket")
            .env("WEBEX_U2C_URL", &format!("{}/u2c/api/v1", u2c.uri())),
    )
    .await;
    mercury.wait_authorized(1).await;

    // The REST ids of the fixture message are the base64 of the activity's uuids.
    let message_uuid = "c3d4e5f6-43bd-11e6-8ae9-dd5b3dfc565d";
    let room_uuid = "d1e2f3a4-43f1-3b58-9147-f14bb0c4d154";
    let message = {
        let mut m = fixture("message-direct.json");
        m["personEmail"] = json!(ADMIN);
        m
    };
    assert_eq!(message["id"], rest_id("MESSAGE", message_uuid));
    assert_eq!(message["roomId"], rest_id("ROOM", room_uuid));
    mount_message(&app.webex, &message).await;
    mercury.send(&post_event("ENV-1", message_uuid, room_uuid, ALICE_UUID));

    let replies = app.wait_replies(1).await;
    assert_eq!(replies[0]["roomId"], message["roomId"]);
    assert_eq!(
        replies[0]["markdown"],
        format!("Echo: {}", message["text"].as_str().unwrap())
    );
    mercury.wait_ack("ENV-1").await;
    // Acknowledged only once recorded.
    let id = message["id"].as_str().unwrap();
    assert!(app.state.store.event_outcome(id).await.unwrap().is_some());
    assert_eq!(app.wait_handled(id).await, "answered");

    let handshake = &mercury.handshakes()[0];
    assert!(
        handshake.starts_with("/v1/apps/wx2/registrations/DEV-1/messages?")
            && handshake.contains("outboundWireFormat=text")
            && handshake.contains("bufferStates=true")
            && handshake.contains("aliasHttpStatus=true"),
        "{handshake}"
    );
    let health = app.health().await;
    assert_eq!(health["webhook"]["registered"], false);
    assert_eq!(health["webhook"]["note"], "websocket mode: no webhook");
    assert_eq!(health["webhook"]["websocket"], "connected");
    assert_eq!(
        health["webhook"]["status"], "unknown",
        "no webhook in this mode"
    );
    // No webhook was registered on Webex.
    assert!(
        requests_to(&app.webex, "POST", "/webhooks")
            .await
            .is_empty()
    );

    // Deliberate: nothing more within 300 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.replies().await.len(), 1);
    app.stop().await;
    wdm.verify().await;
    u2c.verify().await;
}

#[tokio::test]
async fn the_same_websocket_event_twice_is_answered_once() {
    let mercury = FakeMercury::start(None).await;
    let (app, _wdm) = spawn_with_new_device(&mercury).await;
    let (message_uuid, room_uuid) = (new_uuid(), new_uuid());
    let id = mount_direct(&app, &message_uuid, &room_uuid, "hello twice").await;

    // Mercury redelivers with the same envelope; a second envelope for the same activity
    // (another device buffer) must not count either.
    let event = post_event("ENV-A", &message_uuid, &room_uuid, ALICE_UUID);
    mercury.send(&event);
    mercury.send(&event);
    mercury.send(&post_event("ENV-B", &message_uuid, &room_uuid, ALICE_UUID));
    mercury
        .wait_until("three acks", |l| {
            l.received.iter().filter(|f| f["type"] == "ack").count() >= 3
        })
        .await;
    assert_eq!(app.wait_handled(&id).await, "answered");
    app.wait_replies(1).await;
    // Deliberate: nothing more within 300 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.replies().await.len(), 1);
    let fetched = app
        .webex
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.method.as_str() == "GET" && r.url.path() == format!("/messages/{id}"))
        .count();
    assert_eq!(fetched, 1, "the duplicate never reached the pipeline");
    let acks = mercury.acks();
    assert_eq!(acks.iter().filter(|a| *a == "ENV-A").count(), 2);
    assert!(acks.contains(&"ENV-B".to_owned()));
    app.stop().await;
}

#[tokio::test]
async fn the_bots_own_post_is_acknowledged_and_not_fetched() {
    let mercury = FakeMercury::start(None).await;
    let (app, _wdm) = spawn_with_new_device(&mercury).await;
    let message_uuid = new_uuid();
    mercury.send(&post_event("ENV-OWN", &message_uuid, &new_uuid(), BOT_UUID));
    mercury.wait_ack("ENV-OWN").await;
    let id = rest_id("MESSAGE", &message_uuid);
    assert!(app.state.store.event_outcome(&id).await.unwrap().is_none());
    assert!(
        app.webex
            .received_requests()
            .await
            .unwrap()
            .iter()
            .all(|r| !r.url.path().starts_with("/messages/")),
        "own message must not be fetched"
    );
    app.stop().await;
}

#[tokio::test]
async fn the_bot_reconnects_after_mercury_closes_the_socket() {
    let mercury = FakeMercury::start(None).await;
    let (app, wdm) = spawn_with_new_device(&mercury).await;

    let (m1, room) = (new_uuid(), new_uuid());
    let id1 = mount_direct(&app, &m1, &room, "before the drop").await;
    mercury.send(&post_event("ENV-1", &m1, &room, ALICE_UUID));
    assert_eq!(app.wait_handled(&id1).await, "answered");

    mercury.close();
    mercury.wait_authorized(2).await;
    assert_eq!(
        app.health().await["webhook"]["websocket"],
        "connected",
        "reconnected"
    );

    let m2 = new_uuid();
    let id2 = mount_direct(&app, &m2, &room, "after the drop").await;
    mercury.send(&post_event("ENV-2", &m2, &room, ALICE_UUID));
    assert_eq!(app.wait_handled(&id2).await, "answered");
    let replies = app.wait_replies(2).await;
    assert_eq!(replies[1]["markdown"], "Echo: after the drop");
    mercury.wait_ack("ENV-2").await;
    // The same device both times: reconnecting does not register again.
    let handshakes = mercury.handshakes();
    assert!(handshakes.len() >= 2 && handshakes.iter().all(|h| h.contains("/DEV-1/")));
    assert_eq!(mercury.log.lock().unwrap().bad_auth, 0);
    app.stop().await;
    wdm.verify().await;
}

#[tokio::test]
async fn an_existing_device_is_reused_and_deleted_on_shutdown() {
    let mercury = FakeMercury::start(None).await;
    let wdm = MockServer::start().await;
    mount_device_list(
        &wdm,
        "",
        vec![
            device(&wdm.uri(), "SOMEONE-ELSE", &mercury, "python-spark-client"),
            device(&wdm.uri(), "OURS", &mercury, "webex-chatbot"),
        ],
    )
    .await;
    mount_device_create(&wdm, "", json!({}), 0).await;
    mount_device_delete(&wdm, "", "OURS", 1).await;
    mount_device_delete(&wdm, "", "SOMEONE-ELSE", 0).await;
    let app = TestApp::spawn(Spawn::default().websocket(&wdm.uri())).await;
    mercury.wait_authorized(1).await;
    assert!(mercury.handshakes()[0].contains("/OURS/"));

    app.stop().await;
    // Deleted before `stop` returned: shutdown waits for it.
    wdm.verify().await;
}

#[tokio::test]
async fn a_404_handshake_registers_the_device_again() {
    // Mercury no longer knows the listed device: the bot deletes it, registers a new one
    // and connects there.
    let mercury = FakeMercury::start(Some("/STALE/")).await;
    let wdm = MockServer::start().await;
    mount_device_list(
        &wdm,
        "",
        vec![device(&wdm.uri(), "STALE", &mercury, "webex-chatbot")],
    )
    .await;
    mount_device_create(
        &wdm,
        "",
        device(&wdm.uri(), "FRESH", &mercury, "webex-chatbot"),
        1,
    )
    .await;
    mount_device_delete(&wdm, "", "STALE", 1).await;
    mount_device_delete(&wdm, "", "FRESH", 1).await;
    let app = TestApp::spawn(Spawn::default().websocket(&wdm.uri())).await;
    mercury.wait_authorized(1).await;
    let handshakes = mercury.handshakes();
    assert!(handshakes[0].contains("/STALE/"), "{handshakes:?}");
    assert!(
        handshakes.last().unwrap().contains("/FRESH/"),
        "{handshakes:?}"
    );

    let (m, room) = (new_uuid(), new_uuid());
    let id = mount_direct(&app, &m, &room, "on the new device").await;
    mercury.send(&post_event("ENV-1", &m, &room, ALICE_UUID));
    assert_eq!(app.wait_handled(&id).await, "answered");
    app.stop().await;
    wdm.verify().await;
}

// ---------------------------------------------------------------------------------------
// Catching up after a disconnect or a restart
// ---------------------------------------------------------------------------------------

fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn ago(secs: i64) -> String {
    rfc3339(time::OffsetDateTime::now_utc() - time::Duration::seconds(secs))
}

fn error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "message": message,
        "errors": [{"description": message}],
        "trackingId": "FAKE_T"
    }))
}

#[derive(Default)]
struct Chat {
    /// `{id, type, lastActivity}`.
    rooms: Vec<Value>,
    /// Every message, the bot's replies included, oldest first.
    messages: Vec<Value>,
    /// `GET /rooms` answers 503 while set.
    rooms_down: bool,
    /// `GET /rooms` requests so far.
    rooms_asked: usize,
    posted: u64,
}

/// A fake Webex for the rooms and messages a bot sees, as strict as the real one: bearer
/// token on everything; `GET /rooms` sorted by `lastActivity` (newest first) only with
/// `sortBy=lastactivity`, paged with `Link: rel="next"`; `GET /messages` needs `roomId`,
/// answers `403 Failed to get activity` for a group room without `mentionedPeople=me`,
/// and with it lists only the messages that mention the bot and never the bot's own;
/// `POST /messages` adds the bot's reply to the room.
#[derive(Clone, Default)]
struct FakeWebex(Arc<Mutex<Chat>>);

impl FakeWebex {
    async fn mount(&self) -> MockServer {
        let server = MockServer::start().await;
        Mock::given(any())
            .respond_with(self.clone())
            .mount(&server)
            .await;
        server
    }

    fn room(&self, id: &str, kind: &str) {
        self.0.lock().unwrap().rooms.push(json!({
            "id": id, "title": "a space", "type": kind, "isLocked": false,
            "lastActivity": ago(3600), "created": ago(7200),
        }));
    }

    /// A message "sent" `secs_ago` in `room` (direct unless it is a group room), which
    /// becomes the room's last activity.
    fn say(&self, room: &str, email: &str, text: &str, secs_ago: i64, mention: bool) -> String {
        let id = rest_id("MESSAGE", &new_uuid());
        let mut chat = self.0.lock().unwrap();
        let kind = chat
            .rooms
            .iter()
            .find(|r| r["id"] == room)
            .map(|r| r["type"].as_str().unwrap().to_owned())
            .unwrap();
        let created = ago(secs_ago);
        let mut m = json!({
            "id": id, "roomId": room, "roomType": kind, "text": text, "markdown": text,
            "personId": rest_id("PEOPLE", &new_uuid()), "personEmail": email,
            "created": created,
        });
        if mention {
            m["text"] = json!(format!("HelpBot {text}"));
            m["html"] = json!(format!(
                "<p><spark-mention data-object-type=\"person\" data-object-id=\"{BOT_ID}\">HelpBot</spark-mention> {text}</p>"
            ));
            m["mentionedPeople"] = json!([BOT_ID]);
        }
        chat.messages.push(m);
        touch(&mut chat, room, &created);
        id
    }

    fn set_rooms_down(&self, down: bool) {
        self.0.lock().unwrap().rooms_down = down;
    }

    /// Sets a room's last activity.
    fn touch(&self, room: &str, at: &str) {
        touch(&mut self.0.lock().unwrap(), room, at);
    }

    fn rooms_asked(&self) -> usize {
        self.0.lock().unwrap().rooms_asked
    }

    /// The bot's replies, in order.
    fn replies(&self) -> Vec<Value> {
        let chat = self.0.lock().unwrap();
        chat.messages
            .iter()
            .filter(|m| m["personId"] == BOT_ID)
            .cloned()
            .collect()
    }

    async fn wait_replies(&self, n: usize) -> Vec<Value> {
        match eventually_some(Duration::from_secs(20), || {
            let replies = Some(self.replies()).filter(|r| r.len() >= n);
            async move { replies }
        })
        .await
        {
            Some(replies) => replies,
            None => panic!("expected {n} replies within 20 s, got {:?}", self.replies()),
        }
    }
}

fn touch(chat: &mut Chat, room: &str, at: &str) {
    if let Some(r) = chat.rooms.iter_mut().find(|r| r["id"] == room) {
        r["lastActivity"] = json!(at);
    }
}

impl Respond for FakeWebex {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        let bearer = format!("Bearer {TOKEN}");
        if request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            != Some(bearer.as_str())
        {
            return error(
                401,
                "The request requires a valid access token set in the Authorization request header.",
            );
        }
        let query: std::collections::HashMap<String, String> =
            request.url.query_pairs().into_owned().collect();
        let path = request.url.path().to_owned();
        let mut chat = self.0.lock().unwrap();
        match (request.method.as_str(), path.as_str()) {
            ("GET", "/people/me") => {
                ResponseTemplate::new(200).set_body_json(fixture("people-me.json"))
            }
            ("GET", "/rooms") => {
                chat.rooms_asked += 1;
                if chat.rooms_down {
                    return error(503, "Service Unavailable");
                }
                let max: usize = match query.get("max").map(|m| m.parse()) {
                    None => 100,
                    Some(Ok(m)) if (1..=1000).contains(&m) => m,
                    Some(_) => return error(400, "max must be between 1 and 1000"),
                };
                let mut rooms = chat.rooms.clone();
                match query.get("sortBy").map(String::as_str) {
                    Some("lastactivity") => rooms.sort_by(|a, b| {
                        b["lastActivity"].as_str().cmp(&a["lastActivity"].as_str())
                    }),
                    None | Some("id") => {
                        rooms.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()))
                    }
                    Some("created") => {
                        rooms.sort_by(|a, b| b["created"].as_str().cmp(&a["created"].as_str()))
                    }
                    Some(_) => return error(400, "invalid sortBy"),
                }
                let from: usize = query
                    .get("offset")
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(0);
                let page: Vec<Value> = rooms.iter().skip(from).take(max).cloned().collect();
                let mut res = ResponseTemplate::new(200);
                if from + max < rooms.len() {
                    let mut next = request.url.clone();
                    let kept: Vec<(String, String)> = next
                        .query_pairs()
                        .into_owned()
                        .filter(|(k, _)| k != "offset")
                        .collect();
                    next.query_pairs_mut()
                        .clear()
                        .extend_pairs(kept)
                        .append_pair("offset", &(from + max).to_string());
                    res = res.insert_header("Link", format!(r#"<{next}>; rel="next""#).as_str());
                }
                res.set_body_json(json!({"items": page}))
            }
            ("GET", "/messages") => {
                let Some(room_id) = query.get("roomId") else {
                    return error(400, "roomId is required");
                };
                let Some(room) = chat.rooms.iter().find(|r| r["id"] == json!(room_id)) else {
                    return error(404, "Could not find a room with provided ID.");
                };
                if room["gone"] == true {
                    return error(404, "Could not find a room with provided ID.");
                }
                let group = room["type"] == "group";
                let mentioned = match query.get("mentionedPeople").map(String::as_str) {
                    None => false,
                    Some("me") => true,
                    Some(p) if p == BOT_ID => true,
                    Some(_) => return error(400, "Only the current user may be mentioned"),
                };
                if group && !mentioned {
                    return error(403, "Failed to get activity");
                }
                let max: usize = match query.get("max").map(|m| m.parse()) {
                    None => 50,
                    Some(Ok(m)) if m >= 1 && (!mentioned || m <= 100) => m,
                    Some(_) => return error(400, "invalid max"),
                };
                let mut items: Vec<Value> = chat
                    .messages
                    .iter()
                    .rev()
                    .filter(|m| m["roomId"] == json!(room_id))
                    .filter(|m| {
                        query
                            .get("parentId")
                            .is_none_or(|p| m["parentId"] == json!(p))
                    })
                    .filter(|m| {
                        !mentioned
                            || (m["personId"] != BOT_ID
                                && m["mentionedPeople"]
                                    .as_array()
                                    .is_some_and(|p| p.contains(&json!(BOT_ID))))
                    })
                    .cloned()
                    .collect();
                if let Some(before) = query.get("beforeMessage") {
                    let at = items
                        .iter()
                        .position(|m| m["id"] == json!(before))
                        .map_or(items.len(), |i| i + 1);
                    items.drain(..at);
                }
                let more = items.len() > max;
                items.truncate(max);
                let mut res = ResponseTemplate::new(200);
                if more && let Some(last) = items.last() {
                    let mut next = request.url.clone();
                    let kept: Vec<(String, String)> = next
                        .query_pairs()
                        .into_owned()
                        .filter(|(k, _)| k != "beforeMessage")
                        .collect();
                    next.query_pairs_mut()
                        .clear()
                        .extend_pairs(kept)
                        .append_pair("beforeMessage", last["id"].as_str().unwrap());
                    res = res.insert_header("Link", format!(r#"<{next}>; rel="next""#).as_str());
                }
                res.set_body_json(json!({"items": items}))
            }
            ("GET", p) if p.starts_with("/messages/") => {
                let id = &p["/messages/".len()..];
                match chat.messages.iter().find(|m| m["id"] == id) {
                    Some(m) => ResponseTemplate::new(200).set_body_json(m.clone()),
                    None => error(404, "Could not find a message with provided ID."),
                }
            }
            ("POST", "/messages") => {
                let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
                    return error(400, "bad JSON");
                };
                let text = body["markdown"].as_str().or(body["text"].as_str());
                let (Some(room_id), Some(text)) = (body["roomId"].as_str(), text) else {
                    return error(400, "roomId and text or markdown are required");
                };
                if text.len() > 7439 {
                    return error(400, "Message length limited to 7439 characters");
                }
                let Some(room) = chat.rooms.iter().find(|r| r["id"] == room_id) else {
                    return error(404, "Could not find a room with provided ID.");
                };
                let kind = room["type"].clone();
                chat.posted += 1;
                let created = ago(0);
                let mut m = json!({
                    "id": format!("REPLY-{}", chat.posted), "roomId": room_id, "roomType": kind,
                    "markdown": text, "text": text, "personId": BOT_ID,
                    "personEmail": "helpbot@webex.bot", "created": created,
                });
                if let Some(parent) = body["parentId"].as_str() {
                    m["parentId"] = json!(parent);
                }
                chat.messages.push(m.clone());
                touch(&mut chat, room_id, &created);
                ResponseTemplate::new(200).set_body_json(m)
            }
            _ => error(404, "The requested resource could not be found."),
        }
    }
}

/// A device service that keeps what it is told: `GET /devices` lists the registered
/// devices, `POST /devices` (exactly the registration body) adds one, `DELETE` removes it
/// (404 when there is no such device). Bearer token on everything.
#[derive(Clone)]
struct FakeWdm {
    devices: Arc<Mutex<Vec<Value>>>,
    registered: Arc<Mutex<usize>>,
    base: String,
    mercury: String,
}

impl Respond for FakeWdm {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
        if request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            != Some(format!("Bearer {TOKEN}").as_str())
        {
            return error(401, "unauthorized");
        }
        let mut devices = self.devices.lock().unwrap();
        let path = request.url.path();
        match (request.method.as_str(), path) {
            ("GET", "/devices") => {
                ResponseTemplate::new(200).set_body_json(json!({"devices": *devices}))
            }
            ("POST", "/devices") => {
                let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
                if body["name"] != "webex-chatbot" || body["deviceType"] != "DESKTOP" {
                    return error(400, "unexpected device body");
                }
                let mut n = self.registered.lock().unwrap();
                *n += 1;
                let id = format!("DEV-{n}");
                let created = json!({
                    "url": format!("{}/devices/{id}", self.base),
                    "webSocketUrl": format!("{}/v1/apps/wx2/registrations/{id}/messages", self.mercury),
                    "name": "webex-chatbot",
                    "deviceType": "DESKTOP",
                });
                devices.push(created.clone());
                ResponseTemplate::new(200).set_body_json(created)
            }
            ("DELETE", p) if p.starts_with("/devices/") => {
                let url = format!("{}{p}", self.base);
                match devices.iter().position(|d| d["url"] == json!(url)) {
                    Some(i) => {
                        devices.remove(i);
                        ResponseTemplate::new(204)
                    }
                    None => error(404, "device not found"),
                }
            }
            _ => error(404, "not found"),
        }
    }
}

impl FakeWdm {
    async fn start(mercury: &FakeMercury) -> (FakeWdm, MockServer) {
        let server = MockServer::start().await;
        let wdm = FakeWdm {
            devices: Arc::default(),
            registered: Arc::default(),
            base: server.uri(),
            mercury: format!("ws://{}", mercury.addr),
        };
        Mock::given(any())
            .respond_with(wdm.clone())
            .mount(&server)
            .await;
        (wdm, server)
    }

    fn devices(&self) -> usize {
        self.devices.lock().unwrap().len()
    }

    fn registered(&self) -> usize {
        *self.registered.lock().unwrap()
    }
}

/// The app in websocket mode against `webex`, with its device on a [`FakeWdm`].
async fn spawn_on(webex: &FakeWebex, mercury: &FakeMercury) -> (TestApp, FakeWdm, MockServer) {
    let (wdm, server) = FakeWdm::start(mercury).await;
    let app = TestApp::spawn_with_webex(
        webex.mount().await,
        Spawn {
            mount_webex: false,
            ..Spawn::default()
        }
        .websocket(&server.uri()),
    )
    .await;
    (app, wdm, server)
}

/// The stored cursor, once there is one.
async fn wait_cursor(app: &TestApp) -> bot::store::WebsocketCursor {
    eventually_some(Duration::from_secs(10), || async {
        app.state.store.websocket_cursor(BOT_ID).await.unwrap()
    })
    .await
    .expect("no websocket cursor was stored")
}

/// A socket event for a message the fake Webex holds.
fn event_of(envelope_id: &str, message_id: &str, room_id: &str) -> Value {
    let uuid = |id: &str| {
        let raw = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(id)
            .unwrap();
        String::from_utf8(raw)
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    post_event(envelope_id, &uuid(message_id), &uuid(room_id), ALICE_UUID)
}

fn answered_texts(replies: &[Value]) -> Vec<String> {
    let mut texts: Vec<String> = replies
        .iter()
        .map(|r| r["markdown"].as_str().unwrap().to_owned())
        .collect();
    texts.sort();
    texts
}

#[tokio::test]
async fn messages_sent_while_the_socket_was_down_are_answered_once_after_the_reconnect() {
    let webex = FakeWebex::default();
    let direct = rest_id("ROOM", &new_uuid());
    let group = rest_id("ROOM", &new_uuid());
    let quiet = rest_id("ROOM", &new_uuid());
    webex.room(&direct, "direct");
    webex.room(&group, "group");
    webex.room(&quiet, "direct");
    // History from before the bot's first connection is never answered, not even when
    // it is within the catch-up margin.
    webex.say(&direct, ADMIN, "history", 30, false);
    webex.say(&quiet, ADMIN, "long ago", 3000, false);
    // The most recently active room answers 404 (deleted meanwhile): skipped, the rest
    // is still caught up on.
    let gone = rest_id("ROOM", &new_uuid());
    webex.room(&gone, "direct");
    webex.0.lock().unwrap().rooms.last_mut().unwrap()["gone"] = json!(true);
    let mercury = FakeMercury::start(None).await;
    let (app, wdm, _wdm_server) = spawn_on(&webex, &mercury).await;
    mercury.wait_authorized(1).await;
    let first = wait_cursor(&app).await;
    assert_eq!(first.first_at, first.last_event_at);

    // Over the socket while it is up.
    let live = webex.say(&direct, ADMIN, "live", 0, false);
    mercury.send(&event_of("ENV-LIVE", &live, &direct));
    assert_eq!(app.wait_handled(&live).await, "answered");
    mercury.wait_ack("ENV-LIVE").await;

    // Sent while the socket is down: Mercury never delivers these.
    let missed_direct = webex.say(&direct, ADMIN, "missed direct", 0, false);
    let missed_group = webex.say(&group, ADMIN, "missed mention", 0, true);
    let not_for_the_bot = webex.say(&group, ADMIN, "no mention", 0, false);
    let other_bot = webex.say(&direct, "otherbot@webex.bot", "from a bot", 0, false);
    // And one that arrives both ways: listed by the catch-up and delivered once the
    // socket is back.
    let both = webex.say(&direct, ADMIN, "both ways", 0, false);
    webex.touch(&gone, &ago(-1));
    mercury.close();
    mercury.wait_authorized(2).await;
    mercury.send(&event_of("ENV-BOTH", &both, &direct));

    let replies = webex.wait_replies(4).await;
    assert_eq!(app.wait_handled(&missed_direct).await, "answered");
    assert_eq!(app.wait_handled(&missed_group).await, "answered");
    assert_eq!(app.wait_handled(&both).await, "answered");
    mercury.wait_ack("ENV-BOTH").await;
    // Deliberate: nothing more within 500 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies_now = webex.replies();
    assert_eq!(
        answered_texts(&replies_now),
        [
            "Echo: both ways",
            "Echo: live",
            "Echo: missed direct",
            "Echo: missed mention"
        ],
        "each answered exactly once, nothing else: {replies:?}"
    );
    // The group answer went into the right room, in the thread of the question.
    let group_reply = replies_now
        .iter()
        .find(|r| r["roomId"] == json!(group))
        .unwrap();
    assert_eq!(group_reply["parentId"], json!(missed_group));
    for id in [&not_for_the_bot, &other_bot] {
        assert!(
            app.state.store.event_outcome(id).await.unwrap().is_none(),
            "never recorded"
        );
    }
    // Every envelope of both connections (buffer states, messages) acknowledged by its id.
    mercury
        .wait_until("every envelope acknowledged", |l| l.unacked().is_empty())
        .await;
    assert!(mercury.log.lock().unwrap().sent.len() >= 4);
    // The cursor moved past the catch-up.
    let after = wait_cursor(&app).await;
    assert!(after.last_event_at > first.last_event_at);
    assert_eq!(after.first_at, first.first_at);
    app.stop().await;
    assert_eq!(wdm.devices(), 0, "the device is deleted on shutdown");
}

#[tokio::test]
async fn a_restart_answers_what_was_sent_while_the_bot_was_stopped() {
    let webex = FakeWebex::default();
    let direct = rest_id("ROOM", &new_uuid());
    let group = rest_id("ROOM", &new_uuid());
    webex.room(&direct, "direct");
    webex.room(&group, "group");
    let mercury = FakeMercury::start(None).await;
    let (app, wdm, _wdm_server) = spawn_on(&webex, &mercury).await;
    mercury.wait_authorized(1).await;
    wait_cursor(&app).await;
    let live = webex.say(&direct, ADMIN, "before the restart", 0, false);
    mercury.send(&event_of("ENV-1", &live, &direct));
    assert_eq!(app.wait_handled(&live).await, "answered");

    // Never delivered over the socket: "sent" while the bot is down.
    let missed = webex.say(&direct, ADMIN, "while stopped", 0, false);
    let mention = webex.say(&group, ADMIN, "while stopped too", 0, true);
    let app = app.restart().await;
    mercury.wait_authorized(2).await;
    assert_eq!(app.wait_handled(&missed).await, "answered");
    assert_eq!(app.wait_handled(&mention).await, "answered");
    // Deliberate: nothing more within 500 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        answered_texts(&webex.replies()),
        [
            "Echo: before the restart",
            "Echo: while stopped",
            "Echo: while stopped too"
        ]
    );
    // One device at a time: the first life deleted its own before the second registered.
    assert_eq!((wdm.registered(), wdm.devices()), (2, 1));
    let handshakes = mercury.handshakes();
    assert!(handshakes[0].contains("/DEV-1/"), "{handshakes:?}");
    assert!(
        handshakes.last().unwrap().contains("/DEV-2/"),
        "{handshakes:?}"
    );
    app.stop().await;
    assert_eq!(wdm.devices(), 0, "the device is deleted on shutdown");
}

/// How often the test apps' Webex client retries a 5xx (`RetryPolicy::fast_for_tests`).
const RETRIES: usize = 5;

#[tokio::test]
async fn a_failed_catch_up_keeps_the_cursor_and_is_done_at_the_next_connection() {
    let webex = FakeWebex::default();
    let direct = rest_id("ROOM", &new_uuid());
    webex.room(&direct, "direct");
    let mercury = FakeMercury::start(None).await;
    let (app, wdm, _wdm_server) = spawn_on(&webex, &mercury).await;
    mercury.wait_authorized(1).await;
    wait_cursor(&app).await;

    let missed = webex.say(&direct, ADMIN, "missed", 0, false);
    webex.set_rooms_down(true);
    mercury.close();
    mercury.wait_authorized(2).await;
    let kept = wait_cursor(&app).await;
    // The first connection had nothing to catch up on; this one asks, and fails (503
    // after the client's retries).
    eventually(Duration::from_secs(10), || {
        let asked = webex.rooms_asked();
        async move { asked > RETRIES }
    })
    .await;
    assert!(
        webex.rooms_asked() > RETRIES,
        "asked {} times",
        webex.rooms_asked()
    );
    // Events keep coming over the new socket, but its catch-up failed: the cursor must not
    // pass the messages not fetched.
    for n in 0..3 {
        let read = post_event(
            &format!("ENV-READ-{n}"),
            &new_uuid(),
            &new_uuid(),
            ALICE_UUID,
        );
        let mut read = read;
        read["data"]["activity"]["verb"] = json!("acknowledge");
        mercury.send(&read);
        mercury.wait_ack(&format!("ENV-READ-{n}")).await;
        // Deliberate: the read receipt is given 400 ms to (wrongly) trigger a catch-up.
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    assert!(
        app.state
            .store
            .event_outcome(&missed)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(wait_cursor(&app).await, kept, "the cursor did not move");

    webex.set_rooms_down(false);
    mercury.close();
    mercury.wait_authorized(3).await;
    assert_eq!(app.wait_handled(&missed).await, "answered");
    assert_eq!(answered_texts(&webex.replies()), ["Echo: missed"]);
    app.stop().await;
    assert_eq!(wdm.devices(), 0, "the device is deleted on shutdown");
}

#[tokio::test]
async fn the_websocket_cursor_is_kept_per_bot() {
    for (name, store, _dir) in crate::store::stores().await {
        assert_eq!(
            store.websocket_cursor("bot-a").await.unwrap(),
            None,
            "{name}"
        );
        store.set_websocket_cursor("bot-a", 1_000).await.unwrap();
        store.set_websocket_cursor("bot-a", 5_000).await.unwrap();
        store.set_websocket_cursor("bot-b", 7_000).await.unwrap();
        let a = store.websocket_cursor("bot-a").await.unwrap().unwrap();
        assert_eq!((a.last_event_at, a.first_at), (5_000, 1_000), "{name}");
        let b = store.websocket_cursor("bot-b").await.unwrap().unwrap();
        assert_eq!((b.last_event_at, b.first_at), (7_000, 7_000), "{name}");
    }
}

#[tokio::test]
async fn a_catch_up_reads_at_most_50_messages_of_a_room() {
    let webex = FakeWebex::default();
    let direct = rest_id("ROOM", &new_uuid());
    webex.room(&direct, "direct");
    let mercury = FakeMercury::start(None).await;
    let (app, wdm, _wdm_server) = spawn_on(&webex, &mercury).await;
    mercury.wait_authorized(1).await;
    wait_cursor(&app).await;

    let ids: Vec<String> = (0..51)
        .map(|n| webex.say(&direct, ADMIN, &format!("missed {n}"), 0, false))
        .collect();
    mercury.close();
    mercury.wait_authorized(2).await;
    webex.wait_replies(50).await;
    assert_eq!(app.wait_handled(&ids[50]).await, "answered");
    // Deliberate: nothing more within 500 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(webex.replies().len(), 50);
    // The oldest is past the bound (a WARN says so).
    assert!(
        app.state
            .store
            .event_outcome(&ids[0])
            .await
            .unwrap()
            .is_none()
    );
    app.stop().await;
    assert_eq!(wdm.devices(), 0);
}

#[tokio::test]
async fn a_catch_up_reads_at_most_the_100_most_recently_active_rooms() {
    let webex = FakeWebex::default();
    let rooms: Vec<String> = (0..101).map(|_| rest_id("ROOM", &new_uuid())).collect();
    for room in &rooms {
        webex.room(room, "direct");
    }
    let mercury = FakeMercury::start(None).await;
    let (app, wdm, _wdm_server) = spawn_on(&webex, &mercury).await;
    mercury.wait_authorized(1).await;
    wait_cursor(&app).await;

    // The first room's message is the oldest, so its room is the least recently active
    // (all are after the bot's first connection: a clock a little ahead).
    let mut ids = Vec::new();
    for (n, room) in rooms.iter().enumerate() {
        let secs_ago = -i64::try_from(n).unwrap();
        ids.push(webex.say(room, ADMIN, &format!("missed {n}"), secs_ago, false));
    }
    mercury.close();
    mercury.wait_authorized(2).await;
    webex.wait_replies(100).await;
    // Deliberate: nothing more within 500 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(webex.replies().len(), 100);
    // Past the bound (a WARN says so).
    assert!(
        app.state
            .store
            .event_outcome(&ids[0])
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(app.wait_handled(&ids[100]).await, "answered");
    app.stop().await;
    assert_eq!(wdm.devices(), 0);
}

// ---------------------------------------------------------------------------------------
// Cards and space events (DESIGN §10.3) arrive over the socket too
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_card_submitted_over_the_socket_is_fetched_and_handled_once() {
    let mercury = FakeMercury::start(None).await;
    let (app, _wdm) = spawn_with_new_device(&mercury).await;
    let (message_uuid, room_uuid) = (new_uuid(), new_uuid());
    mount_direct(&app, &message_uuid, &room_uuid, "personality list").await;
    mercury.send(&post_event("ENV-L", &message_uuid, &room_uuid, ALICE_UUID));
    let card = eventually_some(Duration::from_secs(10), || async {
        posted_cards(&app.webex).into_iter().next()
    })
    .await
    .expect("the personality card");

    // The admin clicks Switch: Mercury says `cardAction`; the inputs come from REST.
    let action_uuid = new_uuid();
    let action_id = rest_id("ATTACHMENT_ACTION", &action_uuid);
    let admin_id = rest_id("PEOPLE", ALICE_UUID);
    mount_person(&app.webex, &admin_id, ADMIN);
    submit_card(
        &app.webex,
        &action_id,
        &card,
        &admin_id,
        json!({"action": "set_personality", "personality": "teacher"}),
    );
    let event = card_action_event("ENV-C", &action_uuid, &new_uuid(), &room_uuid, ALICE_UUID);
    mercury.send(&event);
    mercury.send(&event);
    mercury.wait_ack("ENV-C").await;
    assert_eq!(app.wait_handled(&action_id).await, "command");
    let replies = app.wait_replies(2).await;
    assert_eq!(replies[1]["roomId"], rest_id("ROOM", &room_uuid));
    assert!(
        replies[1]["markdown"]
            .as_str()
            .unwrap()
            .contains("**teacher**")
    );
    assert_eq!(
        app.state
            .store
            .personality_for(&rest_id("ROOM", &room_uuid))
            .await
            .unwrap()
            .as_deref(),
        Some("teacher")
    );
    // Deliberate: nothing more within 300 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.replies().await.len(),
        2,
        "the redelivery was not handled again"
    );
    assert_eq!(
        requests_to(
            &app.webex,
            "GET",
            &format!("/attachment/actions/{action_id}")
        )
        .await
        .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn the_bot_added_to_a_space_over_the_socket_greets_it() {
    let mercury = FakeMercury::start(None).await;
    let (app, _wdm) = spawn_with_new_device(&mercury).await;
    let room_uuid = new_uuid();
    // Someone else added, and the bot in a direct space: acknowledged, nothing said.
    mercury.send(&add_event("ENV-OTHER", ALICE_UUID, &room_uuid, "GROUP"));
    mercury.send(&add_event(
        "ENV-DIRECT",
        BOT_UUID,
        &new_uuid(),
        "ONE_ON_ONE",
    ));
    mercury.send(&add_event("ENV-BOT", BOT_UUID, &room_uuid, "GROUP"));
    mercury.wait_ack("ENV-OTHER").await;
    mercury.wait_ack("ENV-DIRECT").await;
    mercury.wait_ack("ENV-BOT").await;
    let replies = app.wait_replies(1).await;
    assert_eq!(replies[0]["roomId"], rest_id("ROOM", &room_uuid));
    assert!(replies[0]["markdown"].as_str().unwrap().contains("`help`"));
    // Deliberate: nothing more within 300 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.replies().await.len(), 1);
    app.stop().await;
}
