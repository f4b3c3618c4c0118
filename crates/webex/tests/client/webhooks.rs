//! Webhooks: listed page by page (never off-host), created, updated and deleted.

use super::*;

fn webhook(id: &str, status: &str) -> Value {
    json!({
        "id": id,
        "name": "webex-chatbot",
        "targetUrl": "https://bot.example.com/webhook",
        "resource": "messages",
        "event": "created",
        "orgId": "OTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh",
        "createdBy": "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9mNWIz",
        "appId": "Y2lzY29zcGFyazovL3VzL0FQUExJQ0FUSU9OL0My",
        "ownedBy": "creator",
        "status": status,
        "created": "2026-11-20T09:00:00.000Z",
    })
}

#[tokio::test]
async fn list_webhooks_follows_link_pages() {
    let server = MockServer::start().await;
    let next = format!("{}/v1/webhooks?max=100&cursor=page2", server.uri());
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .and(query_param("max", "100"))
        .and(query_param("cursor", "page2"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"items": [webhook("w3", "inactive")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .and(query_param("max", "100"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", format!(r#"<{next}>; rel="next""#).as_str())
                .set_body_json(
                    json!({"items": [webhook("w1", "active"), webhook("w2", "active")]}),
                ),
        )
        .expect(1)
        .mount(&server)
        .await;

    let hooks = client(&server).list_webhooks().await.unwrap();
    let ids: Vec<&str> = hooks.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, vec!["w1", "w2", "w3"]);
    assert_eq!(hooks[2].status.as_deref(), Some("inactive"));
    assert!(!hooks[2].is_active());
    assert_eq!(hooks[0].target_url, "https://bot.example.com/webhook");
}

#[tokio::test]
async fn list_webhooks_never_follows_a_link_to_another_host() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": []})))
        .expect(0)
        .mount(&elsewhere)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/webhooks"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header(
                    "Link",
                    format!(r#"<{}/v1/webhooks?cursor=x>; rel="next""#, elsewhere.uri()).as_str(),
                )
                .set_body_json(json!({"items": [webhook("w1", "active")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server).list_webhooks().await.unwrap_err();
    assert!(matches!(err, Error::InvalidUrl(_)), "{err:?}");
}

#[tokio::test]
async fn create_webhook_posts_the_documented_fields() {
    let server = MockServer::start().await;
    let mut answer = webhook("w1", "active");
    answer["secret"] = json!("s3cret-value");
    Mock::given(method("POST"))
        .and(path("/v1/webhooks"))
        .and(bearer_token(TOKEN))
        .and(JsonContentType)
        .and(body_partial_json(json!({
            "name": "webex-chatbot",
            "targetUrl": "https://bot.example.com/webhook",
            "resource": "messages",
            "event": "created",
            "secret": "s3cret-value",
        })))
        .and(BodyKeys(&[
            "name",
            "targetUrl",
            "resource",
            "event",
            "secret",
        ]))
        .respond_with(ResponseTemplate::new(200).set_body_json(answer))
        .expect(1)
        .mount(&server)
        .await;
    let created = client(&server)
        .create_webhook(&NewWebhook {
            name: "webex-chatbot".into(),
            target_url: "https://bot.example.com/webhook".into(),
            resource: "messages".into(),
            event: "created".into(),
            filter: None,
            secret: Some("s3cret-value".into()),
        })
        .await
        .unwrap();
    assert_eq!(created.id.as_str(), "w1");
    assert!(!format!("{created:?}").contains("s3cret-value"));
}

#[tokio::test]
async fn update_webhook_reactivates() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path("/v1/webhooks/w1"))
        .and(bearer_token(TOKEN))
        .and(JsonContentType)
        .and(body_json(json!({
            "name": "webex-chatbot",
            "targetUrl": "https://bot.example.com/webhook",
            "secret": "s3cret-value",
            "status": "active",
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(webhook("w1", "active")))
        .expect(1)
        .mount(&server)
        .await;
    let updated = client(&server)
        .update_webhook(
            &WebhookId::new("w1"),
            &UpdateWebhook {
                name: "webex-chatbot".into(),
                target_url: "https://bot.example.com/webhook".into(),
                secret: Some("s3cret-value".into()),
                status: Some("active".into()),
            },
        )
        .await
        .unwrap();
    assert!(updated.is_active());
}

#[tokio::test]
async fn delete_webhook_expects_204() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/v1/webhooks/w1"))
        .and(bearer_token(TOKEN))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .delete_webhook(&WebhookId::new("w1"))
        .await
        .unwrap();
}
