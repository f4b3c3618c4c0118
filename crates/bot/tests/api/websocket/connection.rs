//! Messages over the socket answered once and acknowledged; reconnects; devices reused,
//! registered again and deleted.

use super::*;

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
