//! Startup registers exactly one webhook at BOT_PUBLIC_URL/webhook and cleans stale ones.

use serde_json::json;
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn startup_registers_the_webhook_and_removes_stale_ones() {
    let webex = wiremock::MockServer::start().await;
    mount_webex_basics(&webex).await;
    let auth = format!("Bearer {TOKEN}");
    let hook = |id: &str, name: &str, target: &str, status: &str| {
        json!({"id": id, "name": name, "targetUrl": target, "resource": "messages", "event": "created",
               "status": status, "created": "2026-11-01T00:00:00.000Z"})
    };
    Mock::given(method("GET"))
        .and(path("/webhooks"))
        .and(header("authorization", auth.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [
            hook("STALE-URL", "webex-chatbot", "https://old.example.com/webhook", "active"),
            hook("INACTIVE", "webex-chatbot", "https://bot.example.com/webhook", "inactive"),
            hook("FOREIGN", "crm-sync", "https://crm.example.com/hook", "active"),
        ]})))
        .expect(1)
        .mount(&webex)
        .await;
    for id in ["STALE-URL", "INACTIVE"] {
        Mock::given(method("DELETE"))
            .and(path(format!("/webhooks/{id}")))
            .and(header("authorization", auth.as_str()))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&webex)
            .await;
    }
    Mock::given(method("DELETE"))
        .and(path("/webhooks/FOREIGN"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&webex)
        .await;
    Mock::given(method("POST"))
        .and(path("/webhooks"))
        .and(header("authorization", auth.as_str()))
        .and(body_partial_json(json!({
            "name": "webex-chatbot",
            "targetUrl": "https://bot.example.com/webhook",
            "resource": "messages",
            "event": "created",
            "secret": WEBHOOK_SECRET,
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(hook(
            "NEW",
            "webex-chatbot",
            "https://bot.example.com/webhook",
            "active",
        )))
        .expect(1)
        .mount(&webex)
        .await;

    // Spawn against this prepared fake Webex.
    let app = TestApp::spawn_with_webex(
        webex,
        Spawn::default().env("BOT_PUBLIC_URL", "https://bot.example.com/"),
    )
    .await;
    let health = registered_health(&app).await;
    assert_eq!(health["webhook"]["registered"], true, "{health}");
    assert_eq!(health["webhook"]["id"], "NEW");
    assert_eq!(
        health["webhook"]["target_url"],
        "https://bot.example.com/webhook"
    );
    app.webex.verify().await;
}

#[tokio::test]
async fn an_active_matching_webhook_is_kept_and_updated() {
    let webex = wiremock::MockServer::start().await;
    mount_webex_basics(&webex).await;
    Mock::given(method("GET"))
        .and(path("/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [
            {"id": "GOOD", "name": "webex-chatbot", "targetUrl": "https://bot.example.com/webhook",
             "resource": "messages", "event": "created", "status": "active"}
        ]})))
        .mount(&webex)
        .await;
    Mock::given(method("PUT"))
        .and(path("/webhooks/GOOD"))
        .and(body_partial_json(json!({
            "name": "webex-chatbot", "targetUrl": "https://bot.example.com/webhook",
            "secret": WEBHOOK_SECRET, "status": "active"
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "GOOD", "name": "webex-chatbot", "targetUrl": "https://bot.example.com/webhook",
            "resource": "messages", "event": "created", "status": "active"})))
        .expect(1)
        .mount(&webex)
        .await;
    Mock::given(method("POST"))
        .and(path("/webhooks"))
        .respond_with(ResponseTemplate::new(500))
        .expect(0)
        .mount(&webex)
        .await;
    Mock::given(method("DELETE"))
        .respond_with(ResponseTemplate::new(204))
        .expect(0)
        .mount(&webex)
        .await;

    let app = TestApp::spawn_with_webex(
        webex,
        Spawn::default().env("BOT_PUBLIC_URL", "https://bot.example.com"),
    )
    .await;
    assert_eq!(registered_health(&app).await["webhook"]["id"], "GOOD");
    app.webex.verify().await;
}

/// `/health` once startup's registration (which runs after the port is bound) is done.
async fn registered_health(app: &TestApp) -> serde_json::Value {
    for _ in 0..250 {
        let health = app.health().await;
        if health["webhook"]["registered"] == true {
            return health;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    app.health().await
}
