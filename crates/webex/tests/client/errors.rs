//! Retries and errors: lagging 404s, rate limits and 423s, server errors, timeouts, and
//! error texts without the token.

use super::*;

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
