//! Answers streamed into one edited message in every provider format: fast answers, long
//! answers, refused edits, failures mid-answer, thinking, streaming off.

use super::*;

/// In every provider's format: the first post comes while the model still writes, the
/// message is edited (at most 10 times, `STREAM_EDIT_MS` apart, always a beginning of the
/// answer) and ends as exactly the model's answer; history keeps the finished text.
#[tokio::test]
async fn answers_stream_into_one_message_in_every_provider_format() {
    for kind in [Kind::Ollama, Kind::OpenAi, Kind::Anthropic, Kind::Gemini] {
        let script = Script::new(kind, &long_answer(60), 20, Duration::from_millis(150));
        let answer = script.answer();
        let llm = SlowLlm::start(script).await;
        let app = streaming_app(&llm, Spawn::default()).await;
        let id = format!("M-stream-{kind:?}");
        let message = direct_message(&id, &format!("ROOM-stream-{kind:?}"), ALICE, "write a lot");
        app.deliver(&message).await;
        assert_eq!(app.wait_handled(&id).await, "answered", "{kind:?}");

        let writes = webex_writes(&app.webex);
        let first_post = writes[0].at;
        let last_piece = llm.last_piece_at().expect("the fake streamed");
        assert!(
            first_post < last_piece,
            "{kind:?}: the first post came only after the model finished"
        );
        let message = writes_of_first_message(&writes);
        assert_streamed(&message, &answer, &answer, "…");
        let posted = posted_messages(&app.webex);
        assert_eq!(posted.len(), 1, "{kind:?}: one message");
        assert_eq!(posted[0]["markdown"], json!(answer), "{kind:?}");

        // History has the finished text: the next question carries it.
        let next = direct_message(
            &format!("{id}-2"),
            &format!("ROOM-stream-{kind:?}"),
            ALICE,
            "again",
        );
        app.deliver(&next).await;
        app.wait_handled(&format!("{id}-2")).await;
        let asked = llm.log.lock().unwrap().requests.last().cloned().unwrap();
        let text = asked.to_string();
        assert!(
            text.contains(&answer),
            "{kind:?}: history has the whole answer"
        );

        let metrics = app.metrics().await;
        assert!(
            metrics.contains("webex_chatbot_llm_first_token_seconds_count 2"),
            "{metrics}"
        );
        assert!(
            !metrics.contains("webex_chatbot_stream_edits_total 0"),
            "{metrics}"
        );
        app.stop().await;
    }
}

/// A fast answer (whole before `STREAM_FIRST_POST_MS`) is posted once, never edited; the
/// personality's `thinking` text shows while a slow one has no words yet.
#[tokio::test]
async fn a_fast_answer_is_posted_once_and_a_silent_start_shows_the_thinking_text() {
    let llm = SlowLlm::start(Script::new(
        Kind::Ollama,
        "Quick answer.",
        3,
        Duration::from_millis(10),
    ))
    .await;
    let app = streaming_app(&llm, Spawn::default()).await;
    app.deliver(&direct_message("M-fast", "ROOM-fast", ALICE, "quick?"))
        .await;
    assert_eq!(app.wait_handled("M-fast").await, "answered");
    let writes = webex_writes(&app.webex);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "POST");
    assert_eq!(writes[0].text, "Quick answer.");

    // The first piece only after 700 ms: the first post is the thinking text.
    llm.set_script(Script::new(
        Kind::Ollama,
        "Slow start, then words.",
        2,
        Duration::from_millis(700),
    ));
    app.deliver(&direct_message("M-silent", "ROOM-silent", ALICE, "slow?"))
        .await;
    assert_eq!(app.wait_handled("M-silent").await, "answered");
    let writes: Vec<Write> = webex_writes(&app.webex)
        .into_iter()
        .filter(|w| w.room_id == "ROOM-silent")
        .collect();
    assert_eq!(writes[0].text, "…");
    assert_streamed(
        &writes,
        "Slow start, then words.",
        "Slow start, then words.",
        "…",
    );
}

/// Past 7439 bytes the streamed message ends as the first part and the rest follows as
/// new messages, in order, in the same thread (a group space here).
#[tokio::test]
async fn a_long_streamed_answer_ends_as_the_first_part_and_the_rest_follows_in_the_thread() {
    let script = Script::new(
        Kind::Ollama,
        &long_answer(2500),
        12,
        Duration::from_millis(100),
    );
    let answer = script.answer();
    assert!(answer.len() > 2 * 7439);
    let llm = SlowLlm::start(script).await;
    let app = streaming_app(&llm, Spawn::default()).await;
    let message = group_message("M-long-stream", "ROOM-long-stream", ALICE, "write a book");
    app.deliver(&message).await;
    assert_eq!(app.wait_handled("M-long-stream").await, "answered");

    let parts = webex::split::split_markdown(&answer, 7439);
    assert!(parts.len() >= 3);
    let posted = posted_messages(&app.webex);
    let texts: Vec<&str> = posted
        .iter()
        .map(|m| m["markdown"].as_str().unwrap())
        .collect();
    assert_eq!(texts, parts.iter().map(String::as_str).collect::<Vec<_>>());
    for m in &posted {
        assert_eq!(m["parentId"], json!("M-long-stream"), "in the thread");
    }
    let writes = webex_writes(&app.webex);
    assert_streamed(&writes_of_first_message(&writes), &answer, &parts[0], "…");
}

/// An edit Webex refuses: the unfinished message is deleted and the whole answer posted,
/// so the reader ends with the complete answer, once.
#[tokio::test]
async fn a_refused_edit_deletes_the_partial_message_and_posts_the_whole_answer() {
    let script = Script::new(
        Kind::OpenAi,
        &long_answer(40),
        10,
        Duration::from_millis(150),
    );
    let answer = script.answer();
    let llm = SlowLlm::start(script).await;
    let app = streaming_app(&llm, Spawn::default()).await;
    Mock::given(method("PUT"))
        .and(path_regex(r"^/messages/.+$"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "message": "Edit not allowed", "trackingId": "ROUTER_EDIT"
        })))
        .with_priority(1)
        .mount(&app.webex)
        .await;
    app.deliver(&direct_message(
        "M-edit-refused",
        "ROOM-edit-refused",
        ALICE,
        "go",
    ))
    .await;
    assert_eq!(app.wait_handled("M-edit-refused").await, "answered");
    let posted = posted_messages(&app.webex);
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0]["markdown"], json!(answer));
    let deletes = requests_to(&app.webex, "DELETE", "/messages/REPLY-1").await;
    assert_eq!(deletes.len(), 1, "the partial message was deleted");
}

/// The LLM fails mid-answer: the unfinished message becomes the apology; nothing stored.
#[tokio::test]
async fn an_llm_failure_mid_answer_turns_the_message_into_the_apology() {
    let mut script = Script::new(
        Kind::Ollama,
        &long_answer(40),
        10,
        Duration::from_millis(150),
    );
    script.fail_after = Some(5);
    let llm = SlowLlm::start(script).await;
    let app = streaming_app(&llm, Spawn::default()).await;
    app.deliver(&direct_message("M-midfail", "ROOM-midfail", ALICE, "go"))
        .await;
    assert_eq!(app.wait_handled("M-midfail").await, "llm_error");
    let posted = posted_messages(&app.webex);
    assert_eq!(posted.len(), 1, "{posted:?}");
    let apology = posted[0]["markdown"].as_str().unwrap();
    assert!(apology.contains("AI service"), "{apology}");
    let history = app
        .state
        .store
        .history(&bot::domain::ConversationKey::direct("ROOM-midfail"), 10)
        .await
        .unwrap();
    assert!(history.is_empty(), "nothing stored: {history:?}");
}

/// `<think>` blocks never show while streaming, and are not kept.
#[tokio::test]
async fn thinking_blocks_never_show_while_streaming() {
    let script = Script {
        kind: Kind::Ollama,
        pieces: vec![
            "<think>".into(),
            "secret reasoning ".into(),
            "more reasoning".into(),
            "</think>".into(),
            "The answer ".into(),
            "is 42.".into(),
        ],
        every: Duration::from_millis(200),
        fail_after: None,
    };
    let llm = SlowLlm::start(script).await;
    let app = streaming_app(&llm, Spawn::default()).await;
    app.deliver(&direct_message("M-think", "ROOM-think", ALICE, "meaning?"))
        .await;
    assert_eq!(app.wait_handled("M-think").await, "answered");
    for w in webex_writes(&app.webex) {
        assert!(
            !w.text.contains("reasoning") && !w.text.contains("think>"),
            "{:?}",
            w.text
        );
    }
    assert_eq!(
        posted_messages(&app.webex)[0]["markdown"],
        json!("The answer is 42.")
    );
}

/// With `REPLY_STREAMING=false` a slow answer is posted once, whole.
#[tokio::test]
async fn streaming_off_posts_the_whole_answer_once() {
    let script = Script::new(
        Kind::Ollama,
        &long_answer(30),
        6,
        Duration::from_millis(150),
    );
    let answer = script.answer();
    let llm = SlowLlm::start(script).await;
    let app =
        TestApp::spawn(llm.env(stream_env(Spawn::default()).env("REPLY_STREAMING", "false"))).await;
    app.approve(ALICE).await;
    app.deliver(&direct_message("M-nostream", "ROOM-nostream", ALICE, "go"))
        .await;
    assert_eq!(app.wait_handled("M-nostream").await, "answered");
    let writes = webex_writes(&app.webex);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert_eq!(writes[0].method, "POST");
    assert_eq!(writes[0].text, answer);
    assert_eq!(llm.log.lock().unwrap().requests[0]["stream"], json!(false));
    assert!(
        requests_to(&app.webex, "PUT", "/messages/REPLY-1")
            .await
            .is_empty()
    );
}
