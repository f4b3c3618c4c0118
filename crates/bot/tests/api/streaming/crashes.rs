//! kill -9 mid-stream, an attempt after a crash before the final edit, and the console
//! printing as it streams.

use super::*;

/// `kill -9` while an answer streams, then a restart: the reader ends with one complete
/// answer (the unfinished message is deleted), never two answers or a half one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_leaves_one_complete_answer() {
    let script = Script::new(
        Kind::Ollama,
        &long_answer(80),
        20,
        Duration::from_millis(150),
    );
    let answer = script.answer();
    let llm = SlowLlm::start(script).await;
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    for group in [false, true] {
        let id = format!("M-kill-stream-{group}");
        let room = format!("ROOM-kill-stream-{group}");
        let message = if group {
            group_message(&id, &room, ALICE, "stream please")
        } else {
            direct_message(&id, &room, ALICE, "stream please")
        };
        mount_message(&webex, &message).await;
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let start = || {
            Bot::new(["serve"])
                .dir(dir.path())
                .env("WEBEX_BOT_TOKEN", TOKEN)
                .env("WEBEX_API_URL", webex.uri())
                .env("LLM_PROVIDER", "ollama")
                .env("OLLAMA_URL", &llm.uri)
                .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
                .env("ADMIN_EMAILS", ALICE)
                .env("BIND_ADDR", format!("127.0.0.1:{port}"))
                .env(
                    "DATABASE_URL",
                    format!("sqlite://{}/bot.db", dir.path().display()),
                )
                .env("PERSONALITIES_DIR", personalities_dir())
                .env("LOG_FILE", "")
                .env("STREAM_FIRST_POST_MS", "300")
                .env("STREAM_EDIT_MS", EDIT_MS.to_string())
        };
        let mut bot = start().name("first").spawn();
        bot.wait_listening(port).await;
        assert_eq!(post_signed(port, &event_for(&message)).await, 200);
        // Wait for the first edit: the message exists and is being written.
        assert!(
            eventually(Duration::from_secs(10), || async {
                webex_writes(&webex)
                    .iter()
                    .any(|w| w.method == "PUT" && w.room_id == room)
            })
            .await,
            "no edit seen"
        );
        bot.kill_9();
        let mut second = start().name("second").spawn();
        second.wait_listening(port).await;
        let in_room = || {
            posted_messages(&webex)
                .into_iter()
                .filter(|m| m["roomId"] == json!(room))
                .collect::<Vec<Value>>()
        };
        assert!(
            eventually(Duration::from_secs(30), || async {
                let in_room = in_room();
                in_room.len() == 1 && in_room[0]["markdown"] == json!(answer)
            })
            .await,
            "group={group}: not one complete answer: {:?}",
            in_room()
        );
        // And it stays that way: deliberately no late duplicate within 500 ms.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let in_room = posted_messages(&webex)
            .into_iter()
            .filter(|m| m["roomId"] == json!(room))
            .count();
        assert_eq!(in_room, 1, "group={group}");
    }
}

/// `webex-chatbot chat` prints the answer as it streams: its first words are on stdout
/// before the model has finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_prints_the_answer_as_it_streams() {
    use std::io::Read as _;
    let script = Script::new(
        Kind::Ollama,
        &long_answer(40),
        10,
        Duration::from_millis(200),
    );
    let answer = script.answer();
    let llm = SlowLlm::start(script).await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Bot::new(["chat"])
        .dir(dir.path())
        .env("LLM_PROVIDER", "ollama")
        .env("OLLAMA_URL", &llm.uri)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/bot.db", dir.path().display()),
        )
        .env("PERSONALITIES_DIR", personalities_dir())
        .env("LOG_FILE", "")
        .stdin("talk to me\n")
        .pipe_stdout()
        .spawn();
    let mut stdout = child.take_stdout();
    let first_words = answer.split(' ').next().unwrap().to_owned();
    let reader = std::thread::spawn(move || {
        let mut seen = Vec::new();
        let mut first_at = None;
        let mut buf = [0u8; 256];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.extend_from_slice(&buf[..n]);
                    if first_at.is_none() && String::from_utf8_lossy(&seen).contains(&first_words) {
                        first_at = Some(Instant::now());
                    }
                }
            }
        }
        (String::from_utf8_lossy(&seen).into_owned(), first_at)
    });
    let (out, first_at) = tokio::task::spawn_blocking(move || reader.join().unwrap())
        .await
        .unwrap();
    assert!(
        child.wait_exit(Duration::from_secs(30)).await.is_some(),
        "chat did not exit at the end of its input: {}",
        child.stderr()
    );
    assert!(out.contains(&answer), "{out}");
    let first_at = first_at.expect("the answer was printed");
    let last_piece = llm.last_piece_at().unwrap();
    assert!(
        first_at < last_piece,
        "the first words came only after the model finished"
    );
}

/// An attempt after a crash between saving the finished answer and its final edit: the
/// answer is written into the streamed message (one edit), not posted a second time.
#[tokio::test]
async fn an_attempt_after_a_crash_writes_the_saved_answer_into_the_streamed_message() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    // Webex holds the unfinished message of an earlier life.
    let unfinished: Value = reqwest::Client::new()
        .post(format!("{}/messages", app.webex.uri()))
        .bearer_auth(TOKEN)
        .json(&json!({"roomId": "ROOM-resume", "markdown": "The saved …"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let streamed = unfinished["id"].as_str().unwrap().to_owned();
    // The inbox holds the event with its saved answer and that message's id.
    let message = direct_message("M-resume", "ROOM-resume", ALICE, "finish it");
    mount_message(&app.webex, &message).await;
    let store = &app.state.store;
    let payload = serde_json::to_string(&event_for(&message)["data"]).unwrap();
    store
        .enqueue(&bot::store::NewEvent {
            message_id: "M-resume",
            room_id: "ROOM-resume",
            payload: &payload,
            kind: bot::store::EventKind::Message,
        })
        .await
        .unwrap();
    let seq = store
        .next_pending("ROOM-resume")
        .await
        .unwrap()
        .unwrap()
        .seq;
    store
        .postpone(seq, Duration::from_secs(3600))
        .await
        .unwrap();
    store.save_reply(seq, "The saved answer.").await.unwrap();
    store
        .set_stream_message(seq, Some(&streamed))
        .await
        .unwrap();
    // A restart takes the event up again (and makes it due at once).
    let app = app.restart().await;
    assert_eq!(app.wait_handled("M-resume").await, "answered");
    let posted = posted_messages(&app.webex);
    assert_eq!(posted.len(), 1, "{posted:?}");
    assert_eq!(posted[0]["id"], json!(streamed));
    assert_eq!(posted[0]["markdown"], json!("The saved answer."));
    let edits = requests_to(&app.webex, "PUT", &format!("/messages/{streamed}")).await;
    assert_eq!(edits.len(), 1);
    assert!(
        app.llm_requests().await.is_empty(),
        "the LLM is not asked again"
    );
}
