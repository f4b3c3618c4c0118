//! The fake device service (WDM) on wiremock: listing, creating and deleting the bot's
//! device.

use super::*;

pub(super) fn device(wdm_base: &str, id: &str, mercury: &FakeMercury, name: &str) -> Value {
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
pub(super) async fn mount_device_list(wdm: &MockServer, prefix: &str, devices: Vec<Value>) {
    Mock::given(method("GET"))
        .and(path(format!("{prefix}/devices")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"devices": devices})))
        .mount(wdm)
        .await;
}

/// `POST {base}/devices`: exactly the registration body, else 400; answers `created`.
pub(super) async fn mount_device_create(
    wdm: &MockServer,
    prefix: &str,
    created: Value,
    times: u64,
) {
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

pub(super) async fn mount_device_delete(wdm: &MockServer, prefix: &str, id: &str, times: u64) {
    Mock::given(method("DELETE"))
        .and(path(format!("{prefix}/devices/{id}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(204))
        .expect(times)
        .mount(wdm)
        .await;
}

/// A new device on an empty fake WDM at its root, and the app in websocket mode on it.
pub(super) async fn spawn_with_new_device(mercury: &FakeMercury) -> (TestApp, MockServer) {
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
pub(super) async fn mount_direct(
    app: &TestApp,
    message_uuid: &str,
    room_uuid: &str,
    text: &str,
) -> String {
    let id = rest_id("MESSAGE", message_uuid);
    let message = direct_message(&id, &rest_id("ROOM", room_uuid), ADMIN, text);
    mount_message(&app.webex, &message).await;
    id
}
