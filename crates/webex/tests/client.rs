//! The Webex client against a fake Webex (wiremock) that checks each request the way
//! Webex documents it: method, path, bearer token, JSON body fields.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use serde_json::{Value, json};
use webex::{
    Client, ClientConfig, Error, MessageId, NewMessage, NewWebhook, PersonId, RetryPolicy, RoomId,
    UpdateWebhook, WebhookId,
};
use wiremock::matchers::{
    bearer_token, body_json, body_partial_json, header, method, path, query_param,
};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

const TOKEN: &str = "test-token-ZmFrZQ";
const ME: &str = include_str!("fixtures/people-me.json");
const DIRECT: &str = include_str!("fixtures/message-direct.json");
const DESKTOP: &str = include_str!("fixtures/message-group-mention-desktop.json");
const ERROR_429: &str = include_str!("fixtures/error-429.json");
const MESSAGE_ID: &str =
    "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvYzNkNGU1ZjYtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk";
const ROOM_ID: &str =
    "Y2lzY29zcGFyazovL3VzL1JPT00vZDFlMmYzYTQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0";

fn fixture(json: &str) -> Value {
    serde_json::from_str(json).unwrap()
}

/// A client for `server`, with the API root at `{server}{prefix}`.
fn client_at(server: &MockServer, prefix: &str) -> Client {
    Client::new(
        reqwest::Client::new(),
        ClientConfig {
            base_url: format!("{}{prefix}", server.uri()).parse().unwrap(),
            token: SecretString::from(TOKEN),
            retry: RetryPolicy::fast_for_tests(),
        },
    )
}

fn client(server: &MockServer) -> Client {
    client_at(server, "/v1")
}

/// Requests that carry a JSON body must say so.
struct JsonContentType;

impl Match for JsonContentType {
    fn matches(&self, request: &Request) -> bool {
        request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    }
}

/// A request without a body (GET and DELETE send none).
struct NoBody;

impl Match for NoBody {
    fn matches(&self, request: &Request) -> bool {
        request.body.is_empty()
    }
}

/// The JSON body has exactly these top-level keys (so `None` fields are left out).
struct BodyKeys(&'static [&'static str]);

impl Match for BodyKeys {
    fn matches(&self, request: &Request) -> bool {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
            return false;
        };
        let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = self.0.to_vec();
        want.sort_unstable();
        keys == want
    }
}

#[tokio::test]
async fn me_fetches_people_me_with_the_bearer_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/people/me"))
        .and(bearer_token(TOKEN))
        .and(header("accept", "application/json"))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ME)))
        .expect(1)
        .mount(&server)
        .await;

    let me = client(&server).me().await.unwrap();
    assert_eq!(me.display_name, "HelpBot");
    assert_eq!(me.person_type.as_deref(), Some("bot"));
    assert_eq!(me.emails, vec!["helpbot@webex.bot"]);
    assert!(me.id.same_person("249f74d9-db8a-43ca-896b-879ed240ac53"));
}

#[tokio::test]
async fn base_url_with_or_without_trailing_slash_or_prefix() {
    for prefix in ["", "/", "/v1", "/v1/"] {
        let server = MockServer::start().await;
        let want = if prefix.contains("v1") {
            "/v1/people/me"
        } else {
            "/people/me"
        };
        Mock::given(method("GET"))
            .and(path(want))
            .and(bearer_token(TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ME)))
            .expect(1)
            .mount(&server)
            .await;
        client_at(&server, prefix).me().await.unwrap();
    }
}

#[tokio::test]
async fn get_person_puts_the_id_in_the_path() {
    let server = MockServer::start().await;
    let id = fixture(ME)["id"].as_str().unwrap().to_owned();
    Mock::given(method("GET"))
        .and(path(format!("/v1/people/{id}")))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ME)))
        .expect(1)
        .mount(&server)
        .await;
    let person = client(&server)
        .get_person(&PersonId::new(id.clone()))
        .await
        .unwrap();
    assert_eq!(person.id.as_str(), id);
}

#[tokio::test]
async fn get_message_retries_a_lagging_404() {
    let server = MockServer::start().await;
    let route = format!("/v1/messages/{MESSAGE_ID}");
    Mock::given(method("GET"))
        .and(path(&route))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"message": "The requested resource could not be found."})),
        )
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(&route))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(DIRECT)))
        .expect(1)
        .mount(&server)
        .await;

    let message = client(&server)
        .get_message(&MessageId::new(MESSAGE_ID))
        .await
        .unwrap();
    assert_eq!(message.id.as_str(), MESSAGE_ID);
    assert_eq!(message.person_email.as_deref(), Some("alice@example.com"));
}

#[tokio::test]
async fn get_message_gives_up_after_not_found_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/messages/{MESSAGE_ID}")))
        .respond_with(ResponseTemplate::new(404).insert_header("trackingid", "ROUTER_404"))
        .expect(1 + 3)
        .mount(&server)
        .await;
    let err = client(&server)
        .get_message(&MessageId::new(MESSAGE_ID))
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert_eq!(err.tracking_id(), Some("ROUTER_404"));
}

#[tokio::test]
async fn other_calls_do_not_retry_404() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/people/nobody"))
        .respond_with(ResponseTemplate::new(404))
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .get_person(&PersonId::new("nobody"))
        .await
        .unwrap_err();
    assert!(err.is_not_found());
    assert!(
        matches!(&err, Error::Http { message, .. } if message == "Not Found"),
        "{err:?}"
    );
}

#[tokio::test]
async fn rate_limit_is_retried_after_retry_after() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .insert_header("trackingid", "ROUTER_429")
                .set_body_json(fixture(ERROR_429)),
        )
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(DIRECT)))
        .expect(1)
        .mount(&server)
        .await;

    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorder = Arc::clone(&seen);
    let client = client(&server).with_error_observer(Arc::new(move |status| {
        recorder.lock().unwrap().push(status);
    }));
    let sent = client
        .create_message(&NewMessage::markdown(RoomId::new(ROOM_ID), "hi"))
        .await
        .unwrap();
    assert_eq!(sent.id.as_str(), MESSAGE_ID);
    assert_eq!(*seen.lock().unwrap(), vec![429, 429]);
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn persistent_rate_limit_becomes_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/people/me"))
        .respond_with(ResponseTemplate::new(429).set_body_json(fixture(ERROR_429)))
        .expect(1 + 5)
        .mount(&server)
        .await;
    let err = client(&server).me().await.unwrap_err();
    match &err {
        Error::RateLimited { tracking_id, .. } => {
            // No header: the tracking id comes from the body.
            assert_eq!(
                tracking_id.as_deref(),
                Some("ROUTER_6548A3F2-5B5E-01BB-0A3C-AC1F50110A3C")
            );
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert_eq!(err.status(), Some(429));
}

#[tokio::test]
async fn locked_423_is_retried_like_a_rate_limit() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/people/me"))
        .respond_with(ResponseTemplate::new(423).insert_header("Retry-After", "0"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/people/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ME)))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).me().await.unwrap();
}

#[tokio::test]
async fn server_errors_are_retried_with_backoff() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/people/me"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/people/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ME)))
        .expect(1)
        .mount(&server)
        .await;
    client(&server).me().await.unwrap();
}

#[tokio::test]
async fn persistent_server_error_becomes_http_after_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/people/me"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>bad gateway</html>"))
        .expect(1 + 5)
        .mount(&server)
        .await;
    let err = client(&server).me().await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert!(!err.to_string().contains("<html>"), "{err}");
}

#[tokio::test]
async fn bad_request_fails_at_once_with_status_message_and_tracking_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("trackingid", "ROUTER_HEADER_1")
                .set_body_json(json!({
                    "message": "Message length limited to 7439 characters before encryption and 10000 characters after encryption",
                    "errors": [{"description": "too long"}],
                    "trackingId": "ROUTER_BODY_1",
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server)
        .create_message(&NewMessage::markdown(RoomId::new(ROOM_ID), "x"))
        .await
        .unwrap_err();
    match &err {
        Error::Http {
            status,
            message,
            tracking_id,
        } => {
            assert_eq!(*status, 400);
            assert!(message.starts_with("Message length limited"), "{message}");
            assert_eq!(tracking_id.as_deref(), Some("ROUTER_HEADER_1"));
        }
        other => panic!("expected Http, got {other:?}"),
    }
    assert_eq!(err.tracking_id(), Some("ROUTER_HEADER_1"));
    assert!(err.to_string().contains("ROUTER_HEADER_1"));
}

#[tokio::test]
async fn error_text_never_contains_the_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(401).set_body_json(json!({"message": "The request requires a valid access token set in the Authorization request header."})))
        .mount(&server)
        .await;
    let client = client(&server);
    let err = client.me().await.unwrap_err();
    assert_eq!(err.status(), Some(401));
    assert!(!err.to_string().contains(TOKEN));
    assert!(!format!("{err:?}").contains(TOKEN));
    assert!(!format!("{client:?}").contains(TOKEN));

    // A transport error names the URL, which never holds the token either.
    let dead = Client::new(
        reqwest::Client::new(),
        ClientConfig {
            base_url: "http://127.0.0.1:9/v1".parse().unwrap(),
            token: SecretString::from(TOKEN),
            retry: RetryPolicy::fast_for_tests(),
        },
    );
    let err = dead.me().await.unwrap_err();
    assert!(matches!(err, Error::Transport(_)), "{err:?}");
    let chain = format!("{err} {:?}", std::error::Error::source(&err));
    assert!(!chain.contains(TOKEN), "{chain}");
}

#[tokio::test]
async fn undecodable_answer_is_a_decode_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/people/me"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"emails\": []}"))
        .mount(&server)
        .await;
    let err = client(&server).me().await.unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err:?}");
}

#[tokio::test]
async fn create_message_sends_room_thread_and_markdown() {
    let server = MockServer::start().await;
    let parent = fixture(DESKTOP)["id"].as_str().unwrap().to_owned();
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(bearer_token(TOKEN))
        .and(JsonContentType)
        .and(body_json(
            json!({"roomId": ROOM_ID, "parentId": parent, "markdown": "**429** means *slow down*"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(DIRECT)))
        .expect(1)
        .mount(&server)
        .await;
    let msg = NewMessage::markdown(RoomId::new(ROOM_ID), "**429** means *slow down*")
        .in_thread(Some(MessageId::new(parent)));
    client(&server).create_message(&msg).await.unwrap();
}

#[tokio::test]
async fn edit_message_puts_room_and_markdown() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(format!("/v1/messages/{MESSAGE_ID}")))
        .and(bearer_token(TOKEN))
        .and(JsonContentType)
        .and(body_json(json!({"roomId": ROOM_ID, "markdown": "edited"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(DIRECT)))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .edit_message(&MessageId::new(MESSAGE_ID), &RoomId::new(ROOM_ID), "edited")
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_message_expects_204() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/messages/{MESSAGE_ID}")))
        .and(bearer_token(TOKEN))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .delete_message(&MessageId::new(MESSAGE_ID))
        .await
        .unwrap();
}

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

#[tokio::test]
async fn list_messages_asks_for_one_room_or_thread() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("roomId", ROOM_ID))
        .and(query_param("parentId", MESSAGE_ID))
        .and(query_param("max", "50"))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [fixture(DIRECT)]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("roomId", ROOM_ID))
        .and(query_param("max", "100"))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": []})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let room = RoomId::new(ROOM_ID);
    let thread = c
        .list_messages(&room, Some(&MessageId::new(MESSAGE_ID)), 50)
        .await
        .unwrap();
    assert_eq!(thread.len(), 1);
    assert_eq!(thread[0].id.as_str(), MESSAGE_ID);
    // `max` is clamped to what Webex accepts.
    assert!(c.list_messages(&room, None, 500).await.unwrap().is_empty());
}

/// `WEBEX_TIMEOUT_SECS`: a `GET` whose answer never comes is cut off and tried again like a
/// 5xx, so one lost answer cannot stall a room forever.
#[tokio::test]
async fn a_get_that_times_out_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/messages/{MESSAGE_ID}")))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture(DIRECT))
                .set_delay(std::time::Duration::from_secs(30)),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/messages/{MESSAGE_ID}")))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(DIRECT)))
        .mount(&server)
        .await;
    let client = client(&server).with_timeout(std::time::Duration::from_millis(300));
    let started = std::time::Instant::now();
    let message = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.get_message(&MessageId::new(MESSAGE_ID)),
    )
    .await
    .expect("the timeout cut the hanging try short")
    .unwrap();
    assert_eq!(message.id.as_str(), MESSAGE_ID);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

/// A `POST /messages` that times out is not sent again by the client: Webex may have
/// posted it, and the caller's recovery rules decide ("not known to be posted").
#[tokio::test]
async fn a_post_that_times_out_is_not_repeated() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(fixture(DIRECT))
                .set_delay(std::time::Duration::from_secs(30)),
        )
        .mount(&server)
        .await;
    let client = client(&server).with_timeout(std::time::Duration::from_millis(300));
    let message = NewMessage::markdown(RoomId::new(ROOM_ID), "hello");
    let err = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        client.create_message(&message),
    )
    .await
    .expect("the timeout cut the hanging post short")
    .unwrap_err();
    assert!(
        matches!(&err, Error::Transport(e) if e.is_timeout()),
        "{err:?}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

fn room(id: &str, kind: &str, last_activity: &str) -> Value {
    json!({"id": id, "title": "t", "type": kind, "isLocked": false,
           "lastActivity": last_activity, "created": "2026-01-01T00:00:00.000Z"})
}

#[tokio::test]
async fn list_rooms_by_activity_follows_pages_until_a_refused_room() {
    let server = MockServer::start().await;
    let next = format!(
        "{}/v1/rooms?sortBy=lastactivity&max=3&cursor=page2",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/v1/rooms"))
        .and(query_param("cursor", "page2"))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [
            room("r3", "group", "2026-11-20T09:00:03.000Z"),
            room("old", "direct", "2026-11-01T00:00:00.000Z"),
            room("older", "direct", "2026-10-01T00:00:00.000Z"),
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/rooms"))
        .and(query_param("sortBy", "lastactivity"))
        .and(query_param("max", "3"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", format!(r#"<{next}>; rel="next""#).as_str())
                .set_body_json(json!({"items": [
                    room("r1", "direct", "2026-11-20T09:00:05.000Z"),
                    room("r2", "direct", "2026-11-20T09:00:04.000Z"),
                ]})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let listing = client(&server)
        .list_rooms_by_activity(2, |r| r.last_activity.as_deref() > Some("2026-11-10"))
        .await
        .unwrap();
    // Two rooms is the bound, and a third one was wanted: not complete.
    let ids: Vec<&str> = listing.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2"]);
    assert!(!listing.complete);
    assert_eq!(listing.items[0].room_type, Some(webex::RoomType::Direct));

    let listing = client(&server)
        .list_rooms_by_activity(2, |r| {
            r.last_activity.as_deref() > Some("2026-11-20T09:00:04.5")
        })
        .await
        .unwrap();
    assert_eq!(listing.items.len(), 1);
    assert!(listing.complete, "stopped at the first older room");
}

#[tokio::test]
async fn list_room_messages_asks_for_mentions_and_reads_every_page() {
    let server = MockServer::start().await;
    let message = |id: &str| {
        let mut m = fixture(DESKTOP);
        m["id"] = json!(id);
        m
    };
    let next = format!(
        "{}/v1/messages?roomId=R&mentionedPeople=me&max=51&beforeMessage=m2",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("beforeMessage", "m2"))
        .and(query_param("mentionedPeople", "me"))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [message("m3")]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("roomId", "R"))
        .and(query_param("mentionedPeople", "me"))
        .and(query_param("max", "51"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", format!(r#"<{next}>; rel="next""#).as_str())
                .set_body_json(json!({"items": [message("m1"), message("m2")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let listing = client(&server)
        .list_room_messages(&RoomId::new("R"), true, 50, |_| true)
        .await
        .unwrap();
    let ids: Vec<&str> = listing.items.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2", "m3"]);
    assert!(listing.complete);
}

#[tokio::test]
async fn list_room_messages_in_a_direct_room_does_not_filter_mentions() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("roomId", ROOM_ID))
        .and(query_param("max", "100"))
        .and(bearer_token(TOKEN))
        .and(NoMentionFilter)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [fixture(DIRECT)]})))
        .expect(1)
        .mount(&server)
        .await;
    let listing = client(&server)
        .list_room_messages(&RoomId::new(ROOM_ID), false, 500, |_| true)
        .await
        .unwrap();
    assert_eq!(listing.items.len(), 1);
    assert!(listing.complete);
}

struct NoMentionFilter;

impl Match for NoMentionFilter {
    fn matches(&self, request: &Request) -> bool {
        request
            .url
            .query_pairs()
            .all(|(k, _)| k != "mentionedPeople")
    }
}

#[tokio::test]
async fn create_card_message_posts_one_adaptive_card_with_its_fallback() {
    let server = MockServer::start().await;
    let card = json!({"type": "AdaptiveCard", "version": "1.3",
        "body": [{"type": "TextBlock", "text": "Hi"}]});
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(bearer_token(TOKEN))
        .and(JsonContentType)
        .and(body_json(json!({
            "roomId": ROOM_ID,
            "markdown": "Hi",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(DIRECT)))
        .expect(1)
        .mount(&server)
        .await;
    let msg = webex::NewCardMessage::new(RoomId::new(ROOM_ID), None, "Hi", card.clone());
    client(&server).create_card_message(&msg).await.unwrap();
}

#[tokio::test]
async fn get_attachment_action_reads_the_inputs_and_retries_a_lagging_404() {
    let server = MockServer::start().await;
    let id = "Y2lzY29zcGFyazovL3VzL0FUVEFDSE1FTlRfQUNUSU9OLzEyMw";
    let route = format!("/v1/attachment/actions/{id}");
    Mock::given(method("GET"))
        .and(path(&route))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "not found"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(&route))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": id, "type": "submit", "messageId": MESSAGE_ID, "personId": "P", "roomId": ROOM_ID,
            "inputs": {"action": "feedback", "value": "up"}, "created": "2026-12-07T10:00:00.000Z"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let action = client(&server).get_attachment_action(id).await.unwrap();
    assert_eq!(action.message_id.as_str(), MESSAGE_ID);
    assert_eq!(action.inputs["action"], "feedback");
    assert_eq!(action.room_id.as_ref().map(RoomId::as_str), Some(ROOM_ID));
}
