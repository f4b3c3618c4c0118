//! `POST /webhook` refuses what it must, before anything is recorded or fetched.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn bad_missing_signature_malformed_and_oversized_bodies_are_refused() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let message = direct_message("M-auth-1", "ROOM-auth", ALICE, "hello");
    mount_message(&app.webex, &message).await;
    let body = serde_json::to_vec(&event_for(&message)).unwrap();

    // Missing signature.
    assert_eq!(app.post_raw(body.clone(), None).await.status(), 401);
    // Signed with the wrong secret.
    let wrong = webex::signature::sign(b"not-the-secret", &body);
    assert_eq!(app.post_raw(body.clone(), Some(&wrong)).await.status(), 401);
    // Signature of a different body (the body was tampered with).
    let sig = webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &body);
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    assert_eq!(app.post_raw(tampered, Some(&sig)).await.status(), 401);
    // Garbage signature.
    assert_eq!(app.post_raw(body.clone(), Some("zz")).await.status(), 401);

    // Signed but not a webhook JSON object.
    for bad in [&b"not json"[..], b"[1,2,3]", b"{\"resource\": 5}", b"{}"] {
        let sig = webex::signature::sign(WEBHOOK_SECRET.as_bytes(), bad);
        assert_eq!(
            app.post_raw(bad.to_vec(), Some(&sig)).await.status(),
            400,
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }

    // 2 MiB body: 413, whatever the signature.
    let big = vec![b' '; 2 * 1024 * 1024];
    let sig = webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &big);
    assert_eq!(app.post_raw(big, Some(&sig)).await.status(), 413);

    // None of it was recorded, fetched or answered (deliberately given 300 ms to go wrong).
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        app.state
            .store
            .event_outcome("M-auth-1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        requests_to(&app.webex, "GET", "/messages/M-auth-1")
            .await
            .is_empty()
    );
    assert!(app.replies().await.is_empty());
    assert!(app.llm_requests().await.is_empty());

    // And the correctly signed one goes through.
    assert_eq!(
        app.post_raw(body, Some(&sig_of(&message))).await.status(),
        200
    );
    app.wait_handled("M-auth-1").await;
    assert_eq!(app.replies().await.len(), 1);
}

fn sig_of(message: &serde_json::Value) -> String {
    let body = serde_json::to_vec(&event_for(message)).unwrap();
    webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &body)
}

#[tokio::test]
async fn with_allow_unsigned_and_no_secret_unsigned_webhooks_are_accepted() {
    let app = TestApp::spawn(
        Spawn::default()
            .env("WEBHOOK_SECRET", "")
            .env("ALLOW_UNSIGNED_WEBHOOKS", "true"),
    )
    .await;
    app.approve(ALICE).await;
    let message = direct_message("M-nosecret", "ROOM-ns", ALICE, "hi");
    mount_message(&app.webex, &message).await;
    let res = app
        .post_raw(serde_json::to_vec(&event_for(&message)).unwrap(), None)
        .await;
    assert_eq!(res.status(), 200);
    app.wait_handled("M-nosecret").await;
}

#[tokio::test]
async fn relay_key_is_checked_when_present() {
    let app = TestApp::spawn(Spawn::default().env("RELAY_API_KEY", "relay-key-SECRET")).await;
    app.approve(ALICE).await;
    let message = direct_message("M-relay", "ROOM-relay", ALICE, "hi");
    mount_message(&app.webex, &message).await;
    let body = serde_json::to_vec(&event_for(&message)).unwrap();
    let sig = webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &body);
    let send = |key: Option<&'static str>| {
        let mut request = app
            .http
            .post(format!("{}/webhook", app.address))
            .header("x-spark-signature", sig.clone())
            .body(body.clone());
        if let Some(key) = key {
            request = request.header("x-relay-key", key);
        }
        request.send()
    };
    // Wrong, empty and missing keys are all refused, correctly signed or not.
    assert_eq!(send(Some("wrong-key")).await.unwrap().status(), 401);
    assert_eq!(send(Some("")).await.unwrap().status(), 401);
    assert_eq!(send(None).await.unwrap().status(), 401);
    // Almost right: the key with a byte more or less.
    assert_eq!(send(Some("relay-key-SECRET!")).await.unwrap().status(), 401);
    assert_eq!(send(Some("relay-key-SECRE")).await.unwrap().status(), 401);
    assert!(
        app.state
            .store
            .event_outcome("M-relay")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(send(Some("relay-key-SECRET")).await.unwrap().status(), 200);
    app.wait_handled("M-relay").await;
}

#[tokio::test]
async fn other_resources_are_acknowledged_and_ignored() {
    let app = TestApp::spawn(Spawn::default()).await;
    let mut event = fixture("webhook-messages-created.json");
    event["resource"] = json!("memberships");
    let res = app.post_event(&event).await;
    assert_eq!(res.status(), 200);
    let data_id = event["data"]["id"].as_str().unwrap();
    assert!(
        app.state
            .store
            .event_outcome(data_id)
            .await
            .unwrap()
            .is_none()
    );
}
