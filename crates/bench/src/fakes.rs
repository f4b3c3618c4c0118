//! Lean fake Webex and Ollama servers (axum). Unlike wiremock they keep no request log:
//! the only state is one slot per benchmark message (atomics), so they cost the bot's
//! measurements almost nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const BOT_ID: &str =
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";
pub const EMAIL_DOMAIN: &str = "bench.example";

/// Per-message timings, written lock-free by the generator and the fake Webex.
pub struct Tracker {
    pub start: Instant,
    /// Nanoseconds since `start` when the webhook was sent (0 = not sent).
    pub sent_ns: Vec<AtomicU64>,
    /// When the webhook was answered, and with which status.
    pub ack_ns: Vec<AtomicU64>,
    pub ack_status: Vec<AtomicU32>,
    /// When the first reply for the message reached the fake Webex, and how many came.
    pub reply_ns: Vec<AtomicU64>,
    pub replies: Vec<AtomicU32>,
    /// Replies whose text names no benchmark message.
    pub stray: AtomicU64,
    pub llm_in_flight: AtomicU64,
    pub llm_peak: AtomicU64,
}

impl Tracker {
    pub fn new(total: usize) -> Arc<Tracker> {
        let slots = |_| (0..total).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        Arc::new(Tracker {
            start: Instant::now(),
            sent_ns: slots(()),
            ack_ns: slots(()),
            ack_status: (0..total).map(|_| AtomicU32::new(0)).collect(),
            reply_ns: slots(()),
            replies: (0..total).map(|_| AtomicU32::new(0)).collect(),
            stray: AtomicU64::new(0),
            llm_in_flight: AtomicU64::new(0),
            llm_peak: AtomicU64::new(0),
        })
    }

    /// Nanoseconds since the start, never 0 (0 marks "not yet").
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    pub fn replied(&self) -> usize {
        self.replies
            .iter()
            .filter(|r| r.load(Ordering::Relaxed) > 0)
            .count()
    }
}

/// The message id of benchmark message `idx` in room `room`.
pub fn message_id(idx: usize, room: usize) -> String {
    format!("BENCH-{idx}-{room}")
}

/// `BENCH-{idx}-{room}` anywhere in `text` → (idx, room).
fn parse_id(text: &str) -> Option<(usize, usize)> {
    let rest = &text[text.find("BENCH-")? + 6..];
    let (idx, rest) = rest.split_once('-')?;
    let room: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((idx.parse().ok()?, room.parse().ok()?))
}

pub fn room_id(room: usize) -> String {
    format!("ROOM-{room}")
}

pub fn person_email(room: usize) -> String {
    format!("user{room}@{EMAIL_DOMAIN}")
}

#[derive(Clone)]
struct Fake {
    tracker: Arc<Tracker>,
    llm_delay: Duration,
    replies_seen: Arc<AtomicU64>,
}

fn json_response(value: &Value) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        value.to_string(),
    )
}

async fn people_me() -> (StatusCode, [(&'static str, &'static str); 1], String) {
    json_response(&json!({
        "id": BOT_ID, "emails": ["benchbot@webex.bot"], "displayName": "BenchBot",
        "nickName": "BenchBot", "type": "bot", "created": "2026-01-10T08:00:00.000Z"
    }))
}

/// `GET /messages/{id}`: synthesised from the id, a direct message from an approved domain.
async fn get_message(
    Path(id): Path<String>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let Some((_, room)) = parse_id(&id) else {
        return (
            StatusCode::NOT_FOUND,
            [("content-type", "application/json")],
            "{}".into(),
        );
    };
    json_response(&json!({
        "id": id, "roomId": room_id(room), "roomType": "direct",
        "text": format!("bench {id}"), "personId": format!("PERSON-{room}"),
        "personEmail": person_email(room), "created": "2026-11-20T09:20:00.000Z"
    }))
}

/// `POST /messages`: records when the reply for a benchmark message arrived.
async fn post_message(
    State(fake): State<Fake>,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let now = fake.tracker.now_ns();
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/json")],
            "{}".into(),
        );
    };
    let text = v["markdown"].as_str().or(v["text"].as_str()).unwrap_or("");
    match parse_id(text).filter(|(idx, _)| *idx < fake.tracker.replies.len()) {
        Some((idx, _)) => {
            if fake.tracker.replies[idx].fetch_add(1, Ordering::Relaxed) == 0 {
                fake.tracker.reply_ns[idx].store(now, Ordering::Relaxed);
            }
        }
        None => {
            fake.tracker.stray.fetch_add(1, Ordering::Relaxed);
        }
    }
    let n = fake.replies_seen.fetch_add(1, Ordering::Relaxed);
    json_response(&json!({
        "id": format!("REPLY-{n}"), "roomId": v["roomId"], "markdown": text,
        "personId": BOT_ID, "personEmail": "benchbot@webex.bot",
        "created": "2026-11-20T09:20:01.000Z"
    }))
}

async fn tags() -> (StatusCode, [(&'static str, &'static str); 1], String) {
    json_response(&json!({"models": [{"name": "llama3.1:8b", "model": "llama3.1:8b"}]}))
}

/// `POST /api/chat`: echoes the last message after the configured delay.
async fn chat(
    State(fake): State<Fake>,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let in_flight = fake.tracker.llm_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
    fake.tracker
        .llm_peak
        .fetch_max(in_flight, Ordering::Relaxed);
    let last = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| {
            v["messages"].as_array()?.last()?["content"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    if !fake.llm_delay.is_zero() {
        tokio::time::sleep(fake.llm_delay).await;
    }
    fake.tracker.llm_in_flight.fetch_sub(1, Ordering::Relaxed);
    json_response(&json!({
        "model": "llama3.1:8b", "created_at": "2026-11-27T10:00:00Z",
        "message": {"role": "assistant", "content": format!("Echo: {last}")},
        "done": true, "done_reason": "stop"
    }))
}

/// Serves `router` on a fresh loopback port until the runtime ends; returns its base URL.
pub async fn serve(router: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

/// Starts the fake Webex and the fake Ollama; returns their base URLs.
pub async fn start(tracker: Arc<Tracker>, llm_delay: Duration) -> anyhow::Result<(String, String)> {
    let fake = Fake {
        tracker,
        llm_delay,
        replies_seen: Arc::new(AtomicU64::new(0)),
    };
    let webex = Router::new()
        .route("/people/me", get(people_me))
        .route("/messages/{id}", get(get_message))
        .route("/messages", post(post_message))
        .with_state(fake.clone());
    let ollama = Router::new()
        .route("/api/tags", get(tags))
        .route("/api/chat", post(chat))
        .with_state(fake);
    Ok((serve(webex).await?, serve(ollama).await?))
}

/// A trivial `POST /webhook` → 200, to measure the generator alone.
pub fn trivial() -> Router {
    Router::new().route("/webhook", post(|| async { "ok\n" }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_round_trip() {
        let id = super::message_id(42, 7);
        assert_eq!(super::parse_id(&format!("Echo: bench {id}")), Some((42, 7)));
        assert_eq!(super::parse_id("nothing"), None);
    }
}
