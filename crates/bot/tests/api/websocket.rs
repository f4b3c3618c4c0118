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
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

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
        for _ in 0..500 {
            if done(&self.log.lock().unwrap()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fake Mercury: timed out waiting for {what}");
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
    assert_eq!(health["webhook"]["status"], "connected");
    // No webhook was registered on Webex.
    assert!(
        requests_to(&app.webex, "POST", "/webhooks")
            .await
            .is_empty()
    );

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
        app.health().await["webhook"]["status"],
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
