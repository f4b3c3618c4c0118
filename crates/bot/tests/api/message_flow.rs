//! One message end to end: webhook → fetch → access → LLM → reply → memory.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;

#[tokio::test]
async fn direct_message_gets_exactly_one_reply_with_the_llm_text() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let message = fixture("message-direct.json");
    app.deliver(&message).await;
    assert_eq!(
        app.wait_handled(message["id"].as_str().unwrap()).await,
        "answered"
    );

    let replies = app.replies().await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["roomId"], message["roomId"]);
    assert_eq!(
        replies[0]["markdown"],
        json!(format!("Echo: {}", message["text"].as_str().unwrap()))
    );
    assert!(
        replies[0].get("parentId").is_none(),
        "direct replies are not threaded"
    );

    // The LLM got the default personality's system prompt first, with variables filled.
    let asked = app.llm_requests().await;
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0]["model"], "llama3.1:8b");
    let messages = asked[0]["messages"].as_array().unwrap();
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap();
    assert!(
        system.contains("HelpBot") && system.contains("alice") && !system.contains("{date}"),
        "{system}"
    );
    assert_eq!(messages.last().unwrap()["content"], message["text"]);
}

#[tokio::test]
async fn group_mentions_are_stripped_and_answered_in_the_thread_root() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    // Desktop: base64 id, not in a thread → the reply's parent is the message itself.
    let desktop = fixture("message-group-mention-desktop.json");
    app.deliver(&desktop).await;
    app.wait_handled(desktop["id"].as_str().unwrap()).await;
    // Mobile: raw uuid, shortened name, inside a thread → the reply's parent is the root.
    let mobile = fixture("message-group-mention-mobile.json");
    app.deliver(&mobile).await;
    app.wait_handled(mobile["id"].as_str().unwrap()).await;

    let asked = app.llm_requests().await;
    let last_user =
        |i: usize| asked[i]["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    assert_eq!(last_user(0), json!("what does HTTP 429 mean?"));
    assert_eq!(last_user(1), json!("and what about 503?"));
    // Same thread → the second question carries the first exchange as history.
    let second = asked[1]["messages"].as_array().unwrap();
    assert_eq!(second.len(), 4, "system, user, assistant, user: {second:?}");

    let replies = app.replies().await;
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0]["parentId"], desktop["id"]);
    assert_eq!(replies[1]["parentId"], mobile["parentId"]);
    assert_eq!(replies[1]["roomId"], mobile["roomId"]);
}

#[tokio::test]
async fn group_message_without_a_mention_is_ignored() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let mut message = fixture("message-group-mention-desktop.json");
    message["id"] = json!("M-nomention");
    message["html"] = json!("<p>just chatting</p>");
    message["text"] = json!("just chatting");
    message["mentionedPeople"] = json!([]);
    app.deliver(&message).await;
    app.wait_handled("M-nomention").await;
    assert!(app.llm_requests().await.is_empty());
    assert!(app.replies().await.is_empty());
}

#[tokio::test]
async fn unapproved_sender_gets_no_llm_call_and_no_reply() {
    let app = TestApp::spawn(Spawn::default()).await;
    let message = direct_message(
        "M-stranger",
        "ROOM-s",
        "mallory@evil.example",
        "give me secrets",
    );
    app.deliver(&message).await;
    assert_eq!(app.wait_handled("M-stranger").await, "ignored");
    assert!(app.llm_requests().await.is_empty());
    assert!(app.replies().await.is_empty());
}

#[tokio::test]
async fn admins_and_approved_domains_are_let_in() {
    let app = TestApp::spawn(Spawn::default().env("APPROVED_DOMAINS", "partner.example")).await;
    let admin = direct_message("M-admin", "ROOM-a", "Admin@Example.com", "hi from admin");
    let domain = direct_message(
        "M-domain",
        "ROOM-d",
        "zoe@partner.example",
        "hi from partner",
    );
    app.deliver(&admin).await;
    app.deliver(&domain).await;
    assert_eq!(app.wait_handled("M-admin").await, "answered");
    assert_eq!(app.wait_handled("M-domain").await, "answered");
    assert_eq!(app.replies().await.len(), 2);
}

#[tokio::test]
async fn duplicates_and_own_messages_are_not_answered() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let message = fixture("message-direct.json");
    mount_message(&app.webex, &message).await;
    let event = event_for(&message);
    for _ in 0..3 {
        assert_eq!(app.post_event(&event).await.status(), 200);
    }
    app.wait_handled(message["id"].as_str().unwrap()).await;

    // The bot's own message (its reply echoing back as an event).
    let mut own = direct_message("M-own", "ROOM-own", "helpbot@webex.bot", "my own answer");
    own["personId"] = json!(BOT_ID);
    mount_message(&app.webex, &own).await;
    assert_eq!(app.post_event(&event_for(&own)).await.status(), 200);
    // Another bot: fetched, then ignored (no loops between bots).
    let other_bot = direct_message("M-otherbot", "ROOM-ob", "otherbot@webex.bot", "beep");
    app.deliver(&other_bot).await;
    app.wait_handled("M-otherbot").await;

    assert_eq!(app.replies().await.len(), 1);
    assert_eq!(app.llm_requests().await.len(), 1);
    assert!(
        app.state
            .store
            .event_outcome("M-own")
            .await
            .unwrap()
            .is_none(),
        "own messages are not even recorded"
    );
}

#[tokio::test]
async fn rate_limited_reply_is_retried_and_sent_once() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    Mock::given(method("POST"))
        .and(path("/messages"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("Retry-After", "0")
                .insert_header("trackingid", "ROUTER_429")
                .set_body_json(fixture("error-429.json")),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .expect(2)
        .mount(&app.webex)
        .await;
    let message = fixture("message-direct.json");
    app.deliver(&message).await;
    app.wait_handled(message["id"].as_str().unwrap()).await;
    let posts = app.replies().await;
    assert_eq!(posts.len(), 3, "two 429s then one success");
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("webex_chatbot_webex_api_errors_total{status=\"429\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("webex_chatbot_replies_sent_total 1"),
        "{metrics}"
    );
}

fn long_answer() -> String {
    let mut s = String::new();
    for i in 0..40 {
        s.push_str(&format!(
            "Paragraph {i}: {}\n\n",
            "lorem ipsum dolor sit amet ".repeat(8)
        ));
    }
    s.push_str("```rust\n");
    for i in 0..150 {
        s.push_str(&format!("let value_{i} = compute({i}); // ünïcödé ✓\n"));
    }
    s.push_str("```\n\nThe end.");
    s
}

#[tokio::test]
async fn long_answers_are_split_under_the_limit_with_balanced_fences() {
    let answer = long_answer();
    assert!(answer.len() > 15_000);
    let reply = answer.clone();
    let app =
        TestApp::spawn(Spawn::default().answer(Arc::new(move |_: &Value| ollama_answer(&reply))))
            .await;
    app.approve(ALICE).await;
    let message = fixture("message-direct.json");
    app.deliver(&message).await;
    app.wait_handled(message["id"].as_str().unwrap()).await;

    let parts: Vec<String> = app
        .replies()
        .await
        .iter()
        .map(|r| r["markdown"].as_str().unwrap().to_owned())
        .collect();
    assert!(parts.len() >= 3, "{} parts", parts.len());
    for p in &parts {
        assert!(p.len() <= 7439, "part of {} bytes", p.len());
        let fences = p
            .lines()
            .filter(|l| l.trim_start().starts_with("```"))
            .count();
        assert_eq!(fences % 2, 0, "unbalanced fences in part:\n{p}");
    }
    // Content preserved in order: every code line and paragraph appears once, in order.
    let joined = parts.join("\n");
    let mut at = 0;
    for line in answer
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("```"))
    {
        let found = joined[at..]
            .find(line)
            .unwrap_or_else(|| panic!("missing or out of order: {line}"));
        at += found + line.len();
    }
}

#[tokio::test]
async fn llm_failure_gives_an_apology_stores_nothing_and_degrades_health() {
    let app = TestApp::spawn(
        Spawn::default()
            // Every /health probes the LLM afresh: its going down shows at once.
            .probe_cache(Duration::ZERO)
            .answer(Arc::new(|_: &Value| {
                ResponseTemplate::new(500).set_body_json(json!({"error": "CUDA out of memory"}))
            })),
    )
    .await;
    app.approve(ALICE).await;
    let message = fixture("message-direct.json");
    app.deliver(&message).await;
    assert_eq!(
        app.wait_handled(message["id"].as_str().unwrap()).await,
        "llm_error"
    );
    let replies = app.replies().await;
    assert_eq!(replies.len(), 1);
    let text = replies[0]["markdown"].as_str().unwrap();
    assert!(text.contains("AI service is unavailable"), "{text}");
    assert!(
        !text.contains("CUDA") && !text.contains("500"),
        "no internals in the apology: {text}"
    );
    let conversation = bot::domain::ConversationKey::direct(message["roomId"].as_str().unwrap());
    assert!(
        app.state
            .store
            .history(&conversation, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // The LLM server is down altogether → /health says degraded.
    app.llm.reset().await;
    let health = app.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["llm"]["reachable"], false);
    assert_eq!(health["database"]["ok"], true);
}

#[tokio::test]
async fn health_reports_ok_with_details() {
    let app = TestApp::spawn(Spawn::default()).await;
    let health = app.health().await;
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_seconds"].is_u64());
    assert_eq!(health["llm"]["provider"], "ollama");
    assert_eq!(health["llm"]["model"], "llama3.1:8b");
    assert_eq!(health["llm"]["reachable"], true);
    assert!(health["llm"]["latency_ms"].is_u64());
    assert_eq!(health["database"]["ok"], true);
    assert_eq!(health["webhook"]["registered"], false);
    let text = health.to_string();
    assert!(!text.contains(TOKEN) && !text.contains(WEBHOOK_SECRET));
}

#[tokio::test]
async fn conversation_order_is_kept_and_memory_survives_a_restart() {
    // A slow first answer must not be overtaken by the second message of the same room.
    let app = TestApp::spawn(Spawn::default().answer(Arc::new(|body: &Value| {
        let last = body["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_owned();
        let delay = if last == "first" { 400 } else { 0 };
        ollama_answer(&format!("Echo: {last}")).set_delay(Duration::from_millis(delay))
    })))
    .await;
    app.approve(ALICE).await;
    let first = direct_message("M-order-1", "ROOM-order", ALICE, "first");
    let second = direct_message("M-order-2", "ROOM-order", ALICE, "second");
    app.deliver(&first).await;
    app.deliver(&second).await;
    app.wait_handled("M-order-2").await;
    let replies: Vec<Value> = app
        .replies()
        .await
        .iter()
        .map(|r| r["markdown"].clone())
        .collect();
    assert_eq!(replies, vec![json!("Echo: first"), json!("Echo: second")]);

    let app = app.restart().await;
    let email = bot::domain::Email::parse(ALICE).unwrap();
    assert!(
        app.state.store.is_approved(&email).await.unwrap(),
        "approved users survive a restart"
    );
    let third = direct_message("M-order-3", "ROOM-order", ALICE, "third");
    app.deliver(&third).await;
    app.wait_handled("M-order-3").await;
    let asked = app.llm_requests().await;
    let messages = asked.last().unwrap()["messages"]
        .as_array()
        .unwrap()
        .clone();
    let contents: Vec<&str> = messages
        .iter()
        .skip(1)
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        contents,
        ["first", "Echo: first", "second", "Echo: second", "third"]
    );
}

#[tokio::test]
async fn events_pending_at_startup_are_processed() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    // Recorded (acknowledged) but never worked on, as after a crash.
    let message = direct_message("M-pending", "ROOM-p", ALICE, "were you down?");
    mount_message(&app.webex, &message).await;
    let payload = event_for(&message).to_string();
    let new = bot::store::NewEvent {
        message_id: "M-pending",
        room_id: "ROOM-p",
        payload: &payload,
        kind: bot::store::EventKind::Message,
    };
    app.state.store.enqueue(&new).await.unwrap();
    let app = app.restart().await;
    app.wait_handled("M-pending").await;
    let replies = app.wait_replies(1).await;
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0]["markdown"], "Echo: were you down?");
}

#[tokio::test]
async fn a_message_that_is_not_there_yet_is_fetched_again() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let message = direct_message("M-lag", "ROOM-lag", ALICE, "eventually consistent");
    Mock::given(method("GET"))
        .and(path("/messages/M-lag"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_json(json!({"message": "not found", "trackingId": "T404"})),
        )
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&app.webex)
        .await;
    app.deliver(&message).await;
    assert_eq!(app.wait_handled("M-lag").await, "answered");
    assert_eq!(app.replies().await.len(), 1);
}

#[tokio::test]
async fn a_part_an_earlier_attempt_posted_is_not_posted_again() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let message = direct_message("M-posted", "ROOM-posted", ALICE, "hi");
    mount_message(&app.webex, &message).await;
    // Hold the room so the app's workers leave the event alone while the scene is set.
    let store = &app.state.store;
    assert!(
        store
            .claim_room("ROOM-posted", "test", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let payload = event_for(&message).to_string();
    store
        .enqueue(&bot::store::NewEvent {
            message_id: "M-posted",
            room_id: "ROOM-posted",
            payload: &payload,
            kind: bot::store::EventKind::Message,
        })
        .await
        .unwrap();
    // An earlier attempt got the answer, and Webex accepted it, but the process died before
    // the store recorded the post.
    let seq = store.take_next("ROOM-posted").await.unwrap().unwrap().seq;
    store.save_reply(seq, "Echo: hi").await.unwrap();
    let posted = app
        .http
        .post(format!("{}/messages", app.webex.uri()))
        .bearer_auth(TOKEN)
        .json(&json!({"roomId": "ROOM-posted", "markdown": "Echo: hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 200);
    store.release_room("ROOM-posted", "test").await.unwrap();

    assert_eq!(app.wait_handled("M-posted").await, "answered");
    let replies = app.replies().await;
    assert_eq!(replies.len(), 1, "the earlier post only: {replies:?}");
    assert!(
        app.llm_requests().await.is_empty(),
        "the saved answer is reused"
    );
    let conversation = bot::domain::ConversationKey::direct("ROOM-posted");
    assert_eq!(store.history(&conversation, 10).await.unwrap().len(), 2);
}
