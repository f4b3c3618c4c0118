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
async fn active_matching_webhooks_are_kept_and_updated() {
    let webex = wiremock::MockServer::start().await;
    mount_webex_basics(&webex).await;
    let target = "https://bot.example.com/webhook";
    let hooks = bot_hooks("GOOD", target, "active");
    Mock::given(method("GET"))
        .and(path("/webhooks"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": hooks})))
        .mount(&webex)
        .await;
    for h in &hooks {
        Mock::given(method("PUT"))
            .and(path(format!("/webhooks/{}", h["id"].as_str().unwrap())))
            .and(body_partial_json(json!({
                "name": "webex-chatbot", "targetUrl": target,
                "secret": WEBHOOK_SECRET, "status": "active"
            })))
            .respond_with(ResponseTemplate::new(200).set_body_json(h.clone()))
            .expect(1)
            .mount(&webex)
            .await;
    }
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
    let health = registered_health(&app).await;
    assert_eq!(health["webhook"]["id"], "GOOD-1", "{health}");
    assert_eq!(health["webhook"]["status"], "active", "{health}");
    app.webex.verify().await;
}

#[tokio::test]
async fn a_restart_registers_no_webhook_twice() {
    let webex = wiremock::MockServer::start().await;
    mount_webex_basics(&webex).await;
    // An earlier version registered only the messages webhook.
    let target = "https://bot.example.com/webhook";
    let fake = FakeWebhooks::with(vec![hook("OLD-1", "webex-chatbot", target, "active")]);
    fake.mount(&webex).await;
    let app = TestApp::spawn_with_webex(
        webex,
        Spawn::default().env("BOT_PUBLIC_URL", "https://bot.example.com"),
    )
    .await;
    registered_health(&app).await;
    let events = |list: &[serde_json::Value]| {
        let mut events: Vec<(String, String, String)> = list
            .iter()
            .map(|h| {
                assert_eq!(h["targetUrl"], target, "{h}");
                assert_eq!(h["secret"], WEBHOOK_SECRET, "{h}");
                assert_eq!(h["name"], "webex-chatbot", "{h}");
                (
                    h["resource"].as_str().unwrap().to_owned(),
                    h["event"].as_str().unwrap().to_owned(),
                    h["id"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        events.sort();
        events
    };
    let first = events(&fake.list());
    let kinds: Vec<(&str, &str)> = first
        .iter()
        .map(|(r, e, _)| (r.as_str(), e.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("attachmentActions", "created"),
            ("memberships", "created"),
            ("messages", "created")
        ]
    );
    assert!(
        first.iter().any(|(_, _, id)| id == "OLD-1"),
        "the existing one is kept"
    );
    // Restarted (twice): the same three webhooks, none added.
    let app = app.restart().await;
    registered_health(&app).await;
    let app = app.restart().await;
    registered_health(&app).await;
    assert_eq!(events(&fake.list()), first);
    app.stop().await;
}

/// `/health` once startup's registration (which runs after the port is bound) is done.
async fn registered_health(app: &TestApp) -> serde_json::Value {
    eventually(std::time::Duration::from_secs(5), || async {
        app.health().await["webhook"]["registered"] == true
    })
    .await;
    app.health().await
}
