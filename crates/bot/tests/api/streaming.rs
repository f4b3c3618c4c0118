//! Answers streamed into one edited message (DESIGN §10.2), against a fake LLM that
//! streams slowly in each provider's documented format and the strict fake Webex (10
//! edits per message, no edits of cards or files).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const KEY: &str = "llm-key-SECRET-5a1";
const MARKER: &str = " …";
const EDIT_MS: u64 = 400;

/// The wire format a fake streams in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ollama,
    OpenAi,
    Anthropic,
    Gemini,
}

impl Kind {
    fn provider(self) -> &'static str {
        match self {
            Kind::Ollama => "ollama",
            Kind::OpenAi => "openai",
            Kind::Anthropic => "anthropic",
            Kind::Gemini => "gemini",
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            Kind::Ollama | Kind::Anthropic => "",
            Kind::OpenAi => "/v1",
            Kind::Gemini => "/v1beta",
        }
    }
}

/// What a slow fake LLM answers: `pieces` one every `every`; with `fail_after`, an error
/// instead of the rest after that many pieces.
#[derive(Clone, Debug)]
pub struct Script {
    pub kind: Kind,
    pub pieces: Vec<String>,
    pub every: Duration,
    pub fail_after: Option<usize>,
}

impl Script {
    pub fn new(kind: Kind, text: &str, pieces: usize, every: Duration) -> Script {
        Script {
            kind,
            pieces: chunks(text, pieces),
            every,
            fail_after: None,
        }
    }
    pub fn answer(&self) -> String {
        self.pieces.concat()
    }
}

/// `text` in `n` pieces of about equal length (on char boundaries).
fn chunks(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(n.max(1)).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[derive(Default, Debug)]
pub struct LlmLog {
    pub requests: Vec<Value>,
    pub last_piece_at: Option<Instant>,
}

#[derive(Clone)]
struct Fake {
    script: Arc<Mutex<Script>>,
    log: Arc<Mutex<LlmLog>>,
}

/// A fake LLM server that streams its script slowly, checking requests like the real API
/// (path, key header, `stream`, messages).
pub struct SlowLlm {
    pub uri: String,
    pub log: Arc<Mutex<LlmLog>>,
    script: Arc<Mutex<Script>>,
}

impl SlowLlm {
    pub async fn start(script: Script) -> SlowLlm {
        let fake = Fake {
            script: Arc::new(Mutex::new(script)),
            log: Arc::default(),
        };
        let app = Router::new().fallback(answer).with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        SlowLlm {
            uri,
            log: fake.log,
            script: fake.script,
        }
    }

    pub fn set_script(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }

    /// The bot's LLM settings for this fake.
    pub fn env(&self, spawn: Spawn) -> Spawn {
        let kind = self.script.lock().unwrap().kind;
        let spawn = spawn
            .env("LLM_PROVIDER", kind.provider())
            .env("LLM_BASE_URL", &format!("{}{}", self.uri, kind.prefix()));
        if kind == Kind::Ollama {
            spawn
        } else {
            spawn.env("LLM_API_KEY", KEY)
        }
    }

    pub fn last_piece_at(&self) -> Option<Instant> {
        self.log.lock().unwrap().last_piece_at
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"error": {"message": message}}).to_string(),
        ))
        .unwrap()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn answer(
    State(fake): State<Fake>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let script = fake.script.lock().unwrap().clone();
    if method != axum::http::Method::POST {
        return refuse(StatusCode::NOT_FOUND, "no such endpoint");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let path = uri.path();
    // Ollama without streaming: the whole answer at once, after the time it takes.
    if script.kind == Kind::Ollama && path == "/api/chat" && body["stream"] == json!(false) {
        fake.log.lock().unwrap().requests.push(body);
        let pieces = u32::try_from(script.pieces.len()).unwrap();
        tokio::time::sleep(script.every * pieces).await;
        fake.log.lock().unwrap().last_piece_at = Some(Instant::now());
        let whole = json!({"model": "llama3.1:8b", "created_at": "2026-12-07T10:00:00Z",
            "message": {"role": "assistant", "content": script.answer()},
            "done": true, "done_reason": "stop"});
        return Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(whole.to_string()))
            .unwrap();
    }
    let ok = match script.kind {
        Kind::Ollama => path == "/api/chat" && body["stream"] == json!(true),
        Kind::OpenAi => {
            path == "/v1/chat/completions"
                && header(&headers, "authorization") == Some(&format!("Bearer {KEY}"))
                && body["stream"] == json!(true)
        }
        Kind::Anthropic => {
            path == "/v1/messages"
                && header(&headers, "x-api-key") == Some(KEY)
                && header(&headers, "anthropic-version").is_some()
                && body["stream"] == json!(true)
                && body["max_tokens"].is_u64()
        }
        Kind::Gemini => {
            path.starts_with("/v1beta/models/")
                && path.ends_with(":streamGenerateContent")
                && uri.query() == Some("alt=sse")
                && header(&headers, "x-goog-api-key") == Some(KEY)
                && body["contents"].is_array()
        }
    };
    // Every API but Gemini (model in the path) wants a model and a non-empty list of
    // messages with known roles and text content.
    let messages_ok = match script.kind {
        Kind::Gemini => body["contents"]
            .as_array()
            .is_some_and(|c| !c.is_empty() && c.iter().all(|t| t["parts"].is_array())),
        _ => {
            body["model"].as_str().is_some_and(|m| !m.is_empty())
                && body["messages"].as_array().is_some_and(|m| {
                    !m.is_empty()
                        && m.iter().all(|x| {
                            matches!(x["role"].as_str(), Some("system" | "user" | "assistant"))
                                && (x["content"].is_string() || x["content"].is_array())
                        })
                })
        }
    };
    if !ok || !messages_ok {
        return refuse(StatusCode::BAD_REQUEST, "bad request");
    }
    fake.log.lock().unwrap().requests.push(body);
    let (head, pieces, tail, error) = frames(&script);
    let every = script.every;
    let log = fake.log.clone();
    let count = pieces.len();
    let mut frames: Vec<(bool, String)> = vec![(false, head)];
    frames.extend(pieces.into_iter().map(|p| (true, p)));
    match error {
        Some(error) => frames.push((true, error)),
        None => frames.push((false, tail)),
    }
    let stream = futures_util::stream::unfold((frames, 0usize), move |(frames, i)| {
        let log = log.clone();
        async move {
            let (is_piece, frame) = frames.get(i)?.clone();
            if is_piece {
                // The fake's pace: a piece every `every`.
                tokio::time::sleep(every).await;
                if i == count {
                    log.lock().unwrap().last_piece_at = Some(Instant::now());
                }
            }
            Some((Ok::<_, Infallible>(Bytes::from(frame)), (frames, i + 1)))
        }
    });
    let content_type = match script.kind {
        Kind::Ollama => "application/x-ndjson",
        _ => "text/event-stream",
    };
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .body(Body::from_stream(stream))
        .unwrap()
}

/// The frames of a streamed answer in the script's format: what comes before the first
/// piece, one frame per piece, what ends a complete answer, and the error frame that
/// replaces the end when the script fails.
fn frames(script: &Script) -> (String, Vec<String>, String, Option<String>) {
    let n = script.fail_after.unwrap_or(script.pieces.len());
    let pieces = &script.pieces[..n.min(script.pieces.len())];
    let sse = |data: Value| format!("data: {data}\n\n");
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    match script.kind {
        Kind::Ollama => {
            let line = |text: &str, done: bool| {
                let mut l = json!({"model": "llama3.1:8b", "created_at": "2026-12-07T10:00:00Z",
                    "message": {"role": "assistant", "content": text}, "done": done});
                if done {
                    l["done_reason"] = json!("stop");
                }
                format!("{l}\n")
            };
            (
                String::new(),
                pieces.iter().map(|p| line(p, false)).collect(),
                line("", true),
                script
                    .fail_after
                    .map(|_| format!("{}\n", json!({"error": "model runner crashed"}))),
            )
        }
        Kind::OpenAi => {
            let chunk = |delta: Value, finish: Option<&str>| {
                sse(json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                    "model": "gpt-4.1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
            };
            (
                chunk(json!({"role": "assistant", "content": ""}), None),
                pieces
                    .iter()
                    .map(|p| chunk(json!({"content": p}), None))
                    .collect(),
                chunk(json!({}), Some("stop")) + "data: [DONE]\n\n",
                script.fail_after.map(|_| {
                    sse(json!({"error": {"message": "server error", "type": "server_error"}}))
                }),
            )
        }
        Kind::Anthropic => (
            event(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                    "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [],
                    "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            ) + &event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
            ),
            pieces
                .iter()
                .map(|p| {
                    event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "text_delta", "text": p}}),
                    )
                })
                .collect(),
            event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ) + &event(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                    "stop_sequence": null}, "usage": {"output_tokens": 3}}),
            ) + &event("message_stop", json!({"type": "message_stop"})),
            script.fail_after.map(|_| {
                event(
                    "error",
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                )
            }),
        ),
        Kind::Gemini => {
            let candidate = |text: &str, finish: Option<&str>| {
                let mut c = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
                if let Some(finish) = finish {
                    c["finishReason"] = json!(finish);
                }
                sse(json!({"candidates": [c], "modelVersion": "gemini-2.5-flash"}))
            };
            (
                String::new(),
                pieces.iter().map(|p| candidate(p, None)).collect(),
                candidate("", Some("STOP")),
                script.fail_after.map(|_| {
                    sse(json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}))
                }),
            )
        }
    }
}

// ---- checks ---------------------------------------------------------------------------

fn stream_env(spawn: Spawn) -> Spawn {
    spawn
        .env("REPLY_STREAMING", "true")
        .env("STREAM_FIRST_POST_MS", "300")
        .env("STREAM_EDIT_MS", &EDIT_MS.to_string())
}

/// The writes of the first message the bot posted, in order.
fn writes_of_first_message(writes: &[Write]) -> Vec<Write> {
    let Some(first) = writes.first() else {
        return Vec::new();
    };
    writes
        .iter()
        .filter(|w| w.message_id == first.message_id)
        .cloned()
        .collect()
}

/// DESIGN §10.2 for one streamed message: at most 10 edits, each at least `STREAM_EDIT_MS`
/// after the previous write, every version before the last a beginning of `answer` (plus a
/// marker) or the thinking text, and the last one `last` (the answer, or its first part).
fn assert_streamed(message: &[Write], answer: &str, last: &str, thinking: &str) {
    assert!(message.len() >= 2, "posted and edited: {message:?}");
    assert_eq!(message[0].method, "POST");
    let edits = message.iter().filter(|w| w.method == "PUT").count();
    assert!(edits <= 10, "{edits} edits");
    for pair in message.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(EDIT_MS),
            "writes {gap:?} apart: {:?} then {:?}",
            pair[0].text,
            pair[1].text
        );
    }
    assert_eq!(message.last().unwrap().text, last);
    for w in &message[..message.len() - 1] {
        if w.text == thinking {
            continue;
        }
        let beginning = w.text.strip_suffix(MARKER).unwrap_or(&w.text);
        assert!(
            w.text.len() - beginning.len() <= 40,
            "marker too long: {:?}",
            w.text
        );
        assert!(
            answer.starts_with(beginning),
            "{:?} is not a beginning of the answer",
            w.text
        );
    }
}

fn long_answer(words: usize) -> String {
    (0..words)
        .map(|i| format!("word{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn streaming_app(llm: &SlowLlm, spawn: Spawn) -> TestApp {
    let app = TestApp::spawn(llm.env(stream_env(spawn))).await;
    app.approve(ALICE).await;
    app
}

// ---- tests ----------------------------------------------------------------------------

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

// ---- kill -9 mid-stream ----------------------------------------------------------------

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
