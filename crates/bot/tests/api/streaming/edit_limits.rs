//! Webex's 10 edits per message: a long slow stream stays within them, and the fake Webex
//! refuses the 11th and edits of cards.

use super::*;

/// A model that writes for long (15 s), with short edit gaps (100 ms, growing 1.5× each):
/// unbounded, the schedule would make its 11th write after ~11 s; it stays within Webex's
/// 10 edits (8 unfinished versions at most, then the finished answer).
#[tokio::test]
async fn a_long_slow_stream_stays_within_ten_edits() {
    let script = Script::new(
        Kind::Ollama,
        &long_answer(300),
        300,
        Duration::from_millis(50),
    );
    let answer = script.answer();
    let llm = SlowLlm::start(script).await;
    let app = TestApp::spawn(
        llm.env(Spawn::default())
            .env("STREAM_FIRST_POST_MS", "100")
            .env("STREAM_EDIT_MS", "100")
            .env("LLM_TIMEOUT_SECS", "30"),
    )
    .await;
    app.approve(ALICE).await;
    app.deliver(&direct_message(
        "M-many-edits",
        "ROOM-many-edits",
        ALICE,
        "go on",
    ))
    .await;
    // The answer takes 15 s: past `wait_handled`'s bound.
    assert!(
        eventually(Duration::from_secs(40), || async {
            app.state.store.event_outcome("M-many-edits").await.unwrap()
                == Some(("done".into(), Some("answered".into())))
        })
        .await,
        "not answered"
    );
    let writes = webex_writes(&app.webex);
    let edits = writes.iter().filter(|w| w.method == "PUT").count();
    assert_eq!(
        edits, 9,
        "8 unfinished versions and the finished one: {writes:?}"
    );
    assert_eq!(posted_messages(&app.webex)[0]["markdown"], json!(answer));
}

/// The fake Webex is as strict as Webex about edits: the 11th edit of a message and any
/// edit of a message with a card are refused with a 400.
#[tokio::test]
async fn the_fake_webex_refuses_an_eleventh_edit_and_edits_of_cards() {
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let http = reqwest::Client::new();
    let post = |body: Value| {
        http.post(format!("{}/messages", webex.uri()))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
    };
    let plain: Value = post(json!({"roomId": "R", "markdown": "v0"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let card: Value = post(json!({"roomId": "R", "markdown": "card", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard", "version": "1.3", "body": []}}]}))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let edit = |id: &str, text: &str| {
        http.put(format!("{}/messages/{id}", webex.uri()))
            .bearer_auth(TOKEN)
            .json(&json!({"roomId": "R", "markdown": text}))
            .send()
    };
    for n in 1..=10 {
        let status = edit(plain["id"].as_str().unwrap(), &format!("v{n}"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "edit {n}");
    }
    assert_eq!(
        edit(plain["id"].as_str().unwrap(), "v11")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        edit(card["id"].as_str().unwrap(), "changed")
            .await
            .unwrap()
            .status(),
        400
    );
}
