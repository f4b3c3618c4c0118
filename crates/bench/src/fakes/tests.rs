//! The fakes' own tests: ids, pieces, and the fake Webex and Ollama over HTTP.

use super::*;

#[test]
fn ids_round_trip() {
    let id = message_id(42, 7);
    assert_eq!(parse_id(&format!("Echo: bench {id}")), Some((42, 7)));
    assert_eq!(parse_id("nothing"), None);
}

#[test]
fn only_a_text_ending_the_answer_is_finished() {
    assert_eq!(
        finished_answer("Echo: bench BENCH-3-4 [end]\n"),
        Some((3, 4))
    );
    assert_eq!(finished_answer("Echo: bench BENCH-3-4 …"), None);
    assert_eq!(finished_answer("Echo: bench BENCH-3-4 [en …"), None);
    assert_eq!(finished_answer("[end]"), None);
}

#[test]
fn pieces_cover_the_text() {
    let text = "Echo: bench BENCH-12-12 [end] é";
    let p = pieces(text, 10);
    assert_eq!(p.len(), 10);
    assert_eq!(p.concat(), text);
    assert_eq!(pieces("abc", 10).len(), 3);
    assert!(pieces("", 10).is_empty());
}

struct Client {
    http: reqwest::Client,
    webex: String,
    tracker: Arc<Tracker>,
}

async fn fakes(total: usize, delay: Duration) -> (Client, String) {
    fakes_editing(total, delay, MAX_EDITS).await
}

async fn fakes_editing(total: usize, delay: Duration, max_edits: u32) -> (Client, String) {
    let tracker = Tracker::new(total);
    let (webex, ollama) = start(tracker.clone(), delay, max_edits, None)
        .await
        .unwrap();
    let http = reqwest::Client::new();
    (
        Client {
            http,
            webex,
            tracker,
        },
        ollama,
    )
}

impl Client {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.webex))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn post(&self, room: usize, text: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::POST,
            "/messages",
            TOKEN,
            Some(json!({"roomId": room_id(room), "markdown": text})),
        )
        .await
    }

    async fn put(&self, id: &str, room: usize, text: &str) -> u16 {
        self.call(
            reqwest::Method::PUT,
            &format!("/messages/{id}"),
            TOKEN,
            Some(json!({"roomId": room_id(room), "markdown": text})),
        )
        .await
        .0
    }

    async fn delete(&self, id: &str) -> u16 {
        self.call(
            reqwest::Method::DELETE,
            &format!("/messages/{id}"),
            TOKEN,
            None,
        )
        .await
        .0
    }
}

#[tokio::test]
async fn webex_edits_and_deletes_like_webex() {
    let (c, _) = fakes(4, Duration::ZERO).await;
    // The token is checked on every call.
    let (status, _) = c
        .call(
            reqwest::Method::POST,
            "/messages",
            "wrong",
            Some(json!({"roomId": room_id(0), "markdown": "hi"})),
        )
        .await;
    assert_eq!(status, 401);
    let (status, posted) = c.post(0, "…").await;
    assert_eq!(status, 200);
    let id = posted["id"].as_str().unwrap().to_owned();
    let (status, _) = c
        .call(
            reqwest::Method::PUT,
            &format!("/messages/{id}"),
            "wrong",
            Some(json!({"roomId": room_id(0), "markdown": "x"})),
        )
        .await;
    assert_eq!(status, 401);
    // Body: roomId and text required, at most 7439 bytes, the message's own room.
    let (status, _) = c
        .call(
            reqwest::Method::PUT,
            &format!("/messages/{id}"),
            TOKEN,
            Some(json!({"markdown": "x"})),
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = c
        .call(
            reqwest::Method::PUT,
            &format!("/messages/{id}"),
            TOKEN,
            Some(json!({"roomId": room_id(0)})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(c.put(&id, 0, &"é".repeat(3720)).await, 400);
    assert_eq!(c.put(&id, 1, "x").await, 400);
    // Only messages it created.
    assert_eq!(c.put("REPLY-77", 0, "x").await, 404);
    assert_eq!(c.put("someone-else", 0, "x").await, 404);
    // Ten edits, then 400.
    for i in 0..10 {
        assert_eq!(c.put(&id, 0, &format!("v{i}")).await, 200, "edit {i}");
    }
    assert_eq!(c.put(&id, 0, "v10").await, 400);
    assert_eq!(c.tracker.edits(), 10);
    // Deleted once (204), then gone.
    assert_eq!(c.delete(&id).await, 204);
    assert_eq!(c.delete(&id).await, 404);
    assert_eq!(c.put(&id, 0, "x").await, 404);
    assert_eq!(c.delete("REPLY-99").await, 404);
    // Every call counted, refused or not.
    assert_eq!(c.tracker.posts.load(Ordering::Relaxed), 2);
    assert_eq!(c.tracker.puts.load(Ordering::Relaxed), 19);
    assert_eq!(c.tracker.deletes.load(Ordering::Relaxed), 3);
    assert_eq!(c.tracker.refused.load(Ordering::Relaxed), 12);
}

#[tokio::test]
async fn fewer_edits_when_asked_never_more_than_webex() {
    let (c, _) = fakes_editing(1, Duration::ZERO, 2).await;
    let (_, posted) = c.post(0, "…").await;
    let id = posted["id"].as_str().unwrap().to_owned();
    assert_eq!(c.put(&id, 0, "a").await, 200);
    assert_eq!(c.put(&id, 0, "b").await, 200);
    assert_eq!(c.put(&id, 0, "c").await, 400);
    let (c, _) = fakes_editing(1, Duration::ZERO, 50).await;
    let (_, posted) = c.post(0, "…").await;
    let id = posted["id"].as_str().unwrap().to_owned();
    for i in 0..10 {
        assert_eq!(c.put(&id, 0, &format!("v{i}")).await, 200);
    }
    assert_eq!(c.put(&id, 0, "v10").await, 400);
}

#[tokio::test]
async fn a_streamed_answer_counts_once_by_its_final_edit() {
    let (c, _) = fakes(3, Duration::ZERO).await;
    let finished = |idx: usize| format!("Echo: bench {} {ANSWER_END}", message_id(idx, idx));
    // Message 0: posted as "…", edited twice unfinished, then finished.
    let (_, posted) = c.post(0, "…").await;
    let id = posted["id"].as_str().unwrap().to_owned();
    assert_eq!(c.put(&id, 0, "Echo: bench BENCH-0-0 …").await, 200);
    assert_eq!(c.tracker.replied(), 0, "an unfinished version is no reply");
    assert_eq!(c.tracker.stray(), 1, "until it is finished");
    assert_eq!(c.put(&id, 0, "Echo: bench BENCH-0-0 [en …").await, 200);
    assert_eq!(c.tracker.replied(), 0);
    assert_eq!(c.put(&id, 0, &finished(0)).await, 200);
    assert_eq!(c.tracker.replied(), 1);
    assert_eq!(c.tracker.replies[0].load(Ordering::Relaxed), 1);
    let first_post = c.tracker.first_post_ns[0].load(Ordering::Relaxed);
    let reply = c.tracker.reply_ns[0].load(Ordering::Relaxed);
    assert!(first_post > 0 && first_post < reply, "{first_post} {reply}");
    // The same finished text written again into the same message: still one reply.
    assert_eq!(c.put(&id, 0, &finished(0)).await, 200);
    assert_eq!(c.tracker.replies[0].load(Ordering::Relaxed), 1);
    // Message 1: an edit refused, the partial deleted, the whole answer posted: one,
    // first seen when the partial was posted.
    let (_, posted) = c.post(1, "Echo: be …").await;
    let partial = posted["id"].as_str().unwrap().to_owned();
    let partial_at = c
        .tracker
        .message(&partial)
        .unwrap()
        .post_ns
        .load(Ordering::Relaxed);
    assert_eq!(c.delete(&partial).await, 204);
    c.post(1, &finished(1)).await;
    assert_eq!(c.tracker.replies[1].load(Ordering::Relaxed), 1);
    assert_eq!(
        c.tracker.first_post_ns[1].load(Ordering::Relaxed),
        partial_at
    );
    // Message 2: answered whole twice: a duplicate.
    c.post(2, &finished(2)).await;
    c.post(2, &finished(2)).await;
    assert_eq!(c.tracker.replies[2].load(Ordering::Relaxed), 2);
    assert_eq!(c.tracker.replied(), 3);
    assert_eq!(c.tracker.stray(), 0);
    // A finished answer deleted no longer counts.
    let (_, posted) = c.post(2, &finished(2)).await;
    assert_eq!(c.tracker.replies[2].load(Ordering::Relaxed), 3);
    assert_eq!(c.delete(posted["id"].as_str().unwrap()).await, 204);
    assert_eq!(c.tracker.replies[2].load(Ordering::Relaxed), 2);
    // A message with no finished answer left behind is stray.
    c.post(0, "Sorry, the model is unavailable.").await;
    assert_eq!(c.tracker.stray(), 1);
}

fn chat_body(stream: Option<bool>) -> Value {
    let mut body = json!({
        "model": MODEL,
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "bench BENCH-5-5"}]
    });
    if let Some(stream) = stream {
        body["stream"] = json!(stream);
    }
    body
}

#[tokio::test]
async fn ollama_streams_ndjson_pieces_over_the_delay() {
    let delay = Duration::from_millis(500);
    for stream in [Some(true), None] {
        let (c, ollama) = fakes(1, delay).await;
        let begin = Instant::now();
        let mut res = c
            .http
            .post(format!("{ollama}/api/chat"))
            .json(&chat_body(stream))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["content-type"], "application/x-ndjson");
        let mut body = Vec::new();
        let mut first_at = None;
        while let Some(chunk) = res.chunk().await.unwrap() {
            first_at.get_or_insert_with(|| begin.elapsed());
            body.extend_from_slice(&chunk);
        }
        let total = begin.elapsed();
        let first_at = first_at.unwrap();
        assert!(first_at < delay / 2, "first piece after {first_at:?}");
        assert!(total >= delay, "whole answer after {total:?}");
        let lines: Vec<Value> = std::str::from_utf8(&body)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), PIECES + 1);
        let (last, pieces) = lines.split_last().unwrap();
        for line in pieces {
            assert_eq!(line["done"], false);
            assert_eq!(line["model"], MODEL);
            assert_eq!(line["message"]["role"], "assistant");
            assert!(line["created_at"].is_string());
        }
        let text: String = pieces
            .iter()
            .map(|l| l["message"]["content"].as_str().unwrap())
            .collect();
        assert_eq!(text, format!("Echo: bench BENCH-5-5 {ANSWER_END}"));
        assert_eq!(last["done"], true);
        assert_eq!(last["done_reason"], "stop");
        assert_eq!(last["message"]["content"], "");
        assert_eq!(c.tracker.llm_peak.load(Ordering::Relaxed), 1);
        assert_eq!(c.tracker.llm_in_flight.load(Ordering::Relaxed), 0);
    }
}

/// Without a delay the pieces come at once: no timer per piece (one costs up to a
/// millisecond, which capped the direct mode at ~95 streamed answers a second).
#[tokio::test]
async fn ollama_streams_at_once_without_a_delay() {
    let (c, ollama) = fakes(1, Duration::ZERO).await;
    let calls = 40;
    let begin = Instant::now();
    for _ in 0..calls {
        let body = c
            .http
            .post(format!("{ollama}/api/chat"))
            .json(&chat_body(Some(true)))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(body.iter().filter(|b| **b == b'\n').count(), PIECES + 1);
    }
    let each = begin.elapsed() / calls;
    assert!(
        each < Duration::from_millis(10),
        "{each:?} per streamed call"
    );
}

#[tokio::test]
async fn ollama_answers_whole_without_streaming_and_refuses_bad_requests() {
    let delay = Duration::from_millis(200);
    let (c, ollama) = fakes(1, delay).await;
    let begin = Instant::now();
    let res = c
        .http
        .post(format!("{ollama}/api/chat"))
        .json(&chat_body(Some(false)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    let v: Value = res.json().await.unwrap();
    assert!(begin.elapsed() >= delay);
    assert_eq!(
        v["message"]["content"],
        format!("Echo: bench BENCH-5-5 {ANSWER_END}")
    );
    assert_eq!(v["done"], true);
    let mut unknown = chat_body(Some(false));
    unknown["model"] = json!("nope");
    for (body, status) in [
        (unknown, 404),
        (json!({"messages": []}), 400),
        (json!({"model": MODEL}), 400),
    ] {
        let res = c
            .http
            .post(format!("{ollama}/api/chat"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{body}");
    }
}
