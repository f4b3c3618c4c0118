//! Lean fake Webex and Ollama servers (axum). Unlike wiremock they keep no request log:
//! the only state is one slot per benchmark message and one per message the bot created
//! (atomics), so they cost the bot's measurements almost nothing.
//!
//! The fake Webex is as strict as Webex on what the bot sends: the bearer token, JSON
//! bodies with `roomId` and `markdown`/`text` of at most 7439 bytes, edits only of its own
//! messages in their own room and at most 10 per message, deletes only of messages that
//! exist. The fake Ollama answers whole or, when asked to stream (Ollama's default), in
//! NDJSON pieces spread over the delay.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

pub const BOT_ID: &str =
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";
pub const EMAIL_DOMAIN: &str = "bench.example";
/// The bot's token; the fake Webex answers 401 to any other.
pub const TOKEN: &str = "bench-token";
/// The only model the fake Ollama has (the bot's default for Ollama).
const MODEL: &str = "llama3.1:8b";
/// Webex refuses a message text longer than this many UTF-8 bytes.
const MAX_MESSAGE_BYTES: usize = 7439;
/// Webex refuses the 11th edit of a message.
pub const MAX_EDITS: u32 = 10;
/// Every fake LLM answer ends with this: a text is a finished answer only when it ends so,
/// so an unfinished streamed version (a beginning of the answer) never counts as a reply.
pub const ANSWER_END: &str = "[end]";
/// A streamed fake LLM answer comes in this many pieces (fewer if it is shorter).
const PIECES: usize = 10;

/// A message the bot created on the fake Webex.
#[derive(Default)]
struct MessageSlot {
    /// Room number + 1 (0: the slot is unused).
    room: AtomicU64,
    /// When it was posted.
    post_ns: AtomicU64,
    /// Edits accepted.
    edits: AtomicU32,
    deleted: AtomicBool,
    /// Index + 1 of the benchmark message whose finished answer it holds (0: none).
    answer_of: AtomicU64,
}

/// Per-message timings and Webex call counts, written lock-free by the generator and the
/// fakes.
pub struct Tracker {
    pub start: Instant,
    /// Nanoseconds since `start` when the webhook was sent (0 = not sent).
    pub sent_ns: Vec<AtomicU64>,
    /// When the webhook was answered, and with which status.
    pub ack_ns: Vec<AtomicU64>,
    pub ack_status: Vec<AtomicU32>,
    /// When the finished answer to the message reached the fake Webex (in a post, or in
    /// the edit that finished a streamed message), and how many messages hold it.
    pub reply_ns: Vec<AtomicU64>,
    pub replies: Vec<AtomicU32>,
    /// When the reader first saw something of the answer: the post of the message that
    /// holds it (for a streamed answer: its first, unfinished version), or of an
    /// unfinished message deleted before it in the same room (the bot's fallback when an
    /// edit is refused).
    pub first_post_ns: Vec<AtomicU64>,
    /// Per room (up to `total` rooms): when the last unfinished message deleted there
    /// was posted (0: none waiting for its answer).
    deleted_unfinished_ns: Vec<AtomicU64>,
    /// `POST /messages`, `PUT /messages/{id}`, `DELETE /messages/{id}` calls received,
    /// accepted or not.
    pub posts: AtomicU64,
    pub puts: AtomicU64,
    pub deletes: AtomicU64,
    /// Webex calls the fake refused (4xx).
    pub refused: AtomicU64,
    /// The messages the bot created, by the number in their id.
    messages: Vec<MessageSlot>,
    next_message: AtomicU64,
    /// Posts past the last slot (accepted, not tracked; edits of them answer 404).
    pub untracked: AtomicU64,
    pub llm_in_flight: AtomicU64,
    pub llm_peak: AtomicU64,
}

impl Tracker {
    pub fn new(total: usize) -> Arc<Tracker> {
        let slots = || (0..total).map(|_| AtomicU64::new(0)).collect::<Vec<_>>();
        // One message per answer, with room for apologies, long answers in parts and
        // streamed messages deleted and posted again.
        let messages = total.saturating_mul(4).saturating_add(1024);
        Arc::new(Tracker {
            start: Instant::now(),
            sent_ns: slots(),
            ack_ns: slots(),
            ack_status: (0..total).map(|_| AtomicU32::new(0)).collect(),
            reply_ns: slots(),
            replies: (0..total).map(|_| AtomicU32::new(0)).collect(),
            first_post_ns: slots(),
            deleted_unfinished_ns: slots(),
            posts: AtomicU64::new(0),
            puts: AtomicU64::new(0),
            deletes: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            messages: (0..messages).map(|_| MessageSlot::default()).collect(),
            next_message: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
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

    /// Benchmark messages with at least one finished answer.
    pub fn replied(&self) -> usize {
        self.replies
            .iter()
            .filter(|r| r.load(Ordering::Relaxed) > 0)
            .count()
    }

    /// Messages the bot left on the fake Webex that hold no finished answer (an
    /// unfinished streamed version never completed nor deleted, an apology, a stray
    /// post), plus the untracked ones.
    pub fn stray(&self) -> u64 {
        let created = usize::try_from(self.next_message.load(Ordering::Acquire))
            .unwrap_or(usize::MAX)
            .min(self.messages.len());
        let left = self.messages[..created]
            .iter()
            .filter(|m| {
                m.room.load(Ordering::Acquire) != 0
                    && !m.deleted.load(Ordering::Relaxed)
                    && m.answer_of.load(Ordering::Relaxed) == 0
            })
            .count() as u64;
        left + self.untracked.load(Ordering::Relaxed)
    }

    /// Edits the fake Webex accepted, over all messages.
    pub fn edits(&self) -> u64 {
        self.messages
            .iter()
            .map(|m| u64::from(m.edits.load(Ordering::Relaxed)))
            .sum()
    }

    /// The message `REPLY-{n}` if the bot created it here.
    fn message(&self, id: &str) -> Option<&MessageSlot> {
        let n: usize = id.strip_prefix("REPLY-")?.parse().ok()?;
        let slot = self.messages.get(n)?;
        (slot.room.load(Ordering::Acquire) != 0).then_some(slot)
    }

    /// `text` now stands in `slot`: if it is a finished answer, the slot holds it (once).
    fn credit(&self, slot: &MessageSlot, text: &str, now: u64) {
        let Some((idx, room)) = finished_answer(text).filter(|(idx, _)| *idx < self.replies.len())
        else {
            return;
        };
        if slot
            .answer_of
            .compare_exchange(0, idx as u64 + 1, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let posted = slot.post_ns.load(Ordering::Relaxed);
        // An unfinished message of this answer, deleted before this one was posted.
        let deleted = self
            .deleted_unfinished_ns
            .get(room)
            .map_or(0, |d| d.swap(0, Ordering::Relaxed));
        let first = if deleted >= self.sent_ns[idx].load(Ordering::Relaxed) && deleted > 0 {
            deleted.min(posted)
        } else {
            posted
        };
        if self.replies[idx].fetch_add(1, Ordering::Relaxed) == 0 {
            self.reply_ns[idx].store(now, Ordering::Relaxed);
            self.first_post_ns[idx].store(first, Ordering::Relaxed);
        }
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

/// The benchmark message a finished answer (one ending with [`ANSWER_END`]) is for.
fn finished_answer(text: &str) -> Option<(usize, usize)> {
    if text.trim_end().ends_with(ANSWER_END) {
        parse_id(text)
    } else {
        None
    }
}

pub fn room_id(room: usize) -> String {
    format!("ROOM-{room}")
}

/// `ROOM-{room}` → room.
fn parse_room(id: &str) -> Option<usize> {
    id.strip_prefix("ROOM-")?.parse().ok()
}

pub fn person_email(room: usize) -> String {
    format!("user{room}@{EMAIL_DOMAIN}")
}

/// A status and message Webex would refuse a call with.
type Refusal = (StatusCode, &'static str);

/// A file every benchmark message carries (files mode), served at `/contents/{id}`.
#[derive(Clone)]
pub struct FileSpec {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: Bytes,
}

impl FileSpec {
    /// `mib` MiB of plain text (no benchmark ids in it).
    pub fn text(mib: usize) -> Self {
        Self {
            name: "bench.log",
            content_type: "text/plain",
            bytes: Bytes::from("log line without ids\n".repeat(mib * 1024 * 1024 / 21 + 1))
                .slice(..mib * 1024 * 1024),
        }
    }

    /// `mib` MiB starting with the PNG signature (the bot sends it to the model as an image).
    pub fn image(mib: usize) -> Self {
        let mut bytes = vec![0x5Au8; mib * 1024 * 1024];
        bytes[..8].copy_from_slice(b"\x89PNG\r\n\x1a\n");
        Self {
            name: "bench.png",
            content_type: "image/png",
            bytes: Bytes::from(bytes),
        }
    }
}

#[derive(Clone)]
struct Fake {
    tracker: Arc<Tracker>,
    file: Option<FileSpec>,
    llm_delay: Duration,
    /// Edits accepted per message ([`MAX_EDITS`] like Webex; fewer to make the bot fall
    /// back to deleting the message and posting the whole answer).
    max_edits: u32,
}

fn json_response(value: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

impl Fake {
    /// A Webex error answer (counted as refused).
    fn refuse(&self, status: StatusCode, message: &str) -> Response {
        self.tracker.refused.fetch_add(1, Ordering::Relaxed);
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({
                "message": message,
                "errors": [{"description": message}],
                "trackingId": format!("BENCH_FAKE_{}", status.as_u16())
            })
            .to_string(),
        )
            .into_response()
    }

    /// Webex answers 401 without the bot's bearer token.
    fn check_auth(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let expected = format!("Bearer {TOKEN}");
        match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
            Some(Ok(v)) if v == expected => Ok(()),
            _ => Err((
                StatusCode::UNAUTHORIZED,
                "The request requires a valid access token set in the Authorization request header.",
            )),
        }
    }

    /// A message body as Webex checks it: JSON, `roomId`, `markdown` or `text` of at
    /// most 7439 bytes. Returns the room and the text.
    fn message_body(&self, headers: &HeaderMap, body: &[u8]) -> Result<(usize, String), Refusal> {
        self.check_auth(headers)?;
        let json_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_type {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            ));
        }
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return Err((StatusCode::BAD_REQUEST, "Invalid JSON"));
        };
        let Some(room) = v["roomId"].as_str() else {
            return Err((StatusCode::BAD_REQUEST, "roomId is required"));
        };
        let Some(room) = parse_room(room) else {
            return Err((StatusCode::NOT_FOUND, "Room not found"));
        };
        let Some(text) = v["markdown"].as_str().or(v["text"].as_str()) else {
            return Err((StatusCode::BAD_REQUEST, "text or markdown is required"));
        };
        if text.len() > MAX_MESSAGE_BYTES {
            return Err((
                StatusCode::BAD_REQUEST,
                "Message length limited to 7439 characters before encryption and 10000 characters after encryption",
            ));
        }
        Ok((room, text.to_owned()))
    }
}

fn message_json(id: &str, room: usize, text: &str) -> Value {
    json!({
        "id": id, "roomId": room_id(room), "roomType": "direct", "markdown": text,
        "personId": BOT_ID, "personEmail": "benchbot@webex.bot",
        "created": "2026-11-20T09:20:01.000Z"
    })
}

async fn people_me(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    if let Err((status, message)) = fake.check_auth(&headers) {
        return fake.refuse(status, message);
    }
    json_response(&json!({
        "id": BOT_ID, "emails": ["benchbot@webex.bot"], "displayName": "BenchBot",
        "nickName": "BenchBot", "type": "bot", "created": "2026-01-10T08:00:00.000Z"
    }))
}

/// `GET /messages/{id}`: synthesised from the id, a direct message from an approved domain.
async fn get_message(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err((status, message)) = fake.check_auth(&headers) {
        return fake.refuse(status, message);
    }
    let Some((_, room)) = parse_id(&id) else {
        return fake.refuse(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    };
    let mut message = json!({
        "id": id, "roomId": room_id(room), "roomType": "direct",
        "text": format!("bench {id}"), "personId": format!("PERSON-{room}"),
        "personEmail": person_email(room), "created": "2026-11-20T09:20:00.000Z"
    });
    if fake.file.is_some() {
        // On this fake's own host, as Webex lists `…/contents/{id}` on its API host.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        message["files"] = json!([format!("http://{host}/contents/{id}")]);
    }
    json_response(&message)
}

/// `GET /contents/{id}`: the files-mode file, with its name and type as Webex sends them.
async fn get_content(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    if let Err((status, message)) = fake.check_auth(&headers) {
        return fake.refuse(status, message);
    }
    let Some(file) = &fake.file else {
        return fake.refuse(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, file.content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", file.name),
            ),
        ],
        file.bytes.clone(),
    )
        .into_response()
}

/// `POST /messages`: a new message of the bot; a finished answer in it counts as a reply.
async fn post_message(State(fake): State<Fake>, headers: HeaderMap, body: Bytes) -> Response {
    let tracker = &fake.tracker;
    tracker.posts.fetch_add(1, Ordering::Relaxed);
    let now = tracker.now_ns();
    let (room, text) = match fake.message_body(&headers, &body) {
        Ok(checked) => checked,
        Err((status, message)) => return fake.refuse(status, message),
    };
    let n = tracker.next_message.fetch_add(1, Ordering::AcqRel);
    let id = format!("REPLY-{n}");
    match usize::try_from(n)
        .ok()
        .and_then(|n| tracker.messages.get(n))
    {
        Some(slot) => {
            slot.post_ns.store(now, Ordering::Relaxed);
            slot.room.store(room as u64 + 1, Ordering::Release);
            tracker.credit(slot, &text, now);
        }
        None => {
            tracker.untracked.fetch_add(1, Ordering::Relaxed);
        }
    }
    json_response(&message_json(&id, room, &text))
}

/// `PUT /messages/{id}`: an edit of a message the bot created here, in its own room, at
/// most 10 per message (the 11th is a 400, like Webex).
async fn edit_message(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let tracker = &fake.tracker;
    tracker.puts.fetch_add(1, Ordering::Relaxed);
    let now = tracker.now_ns();
    let (room, text) = match fake.message_body(&headers, &body) {
        Ok(checked) => checked,
        Err((status, message)) => return fake.refuse(status, message),
    };
    let Some(slot) = tracker
        .message(&id)
        .filter(|m| !m.deleted.load(Ordering::Relaxed))
    else {
        return fake.refuse(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    };
    if slot.room.load(Ordering::Acquire) != room as u64 + 1 {
        return fake.refuse(StatusCode::BAD_REQUEST, "roomId does not match the message");
    }
    if slot
        .edits
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |e| {
            (e < fake.max_edits).then_some(e + 1)
        })
        .is_err()
    {
        return fake.refuse(StatusCode::BAD_REQUEST, "Message edit limit reached");
    }
    tracker.credit(slot, &text, now);
    let mut message = message_json(&id, room, &text);
    message["updated"] = json!("2026-11-20T09:20:02.000Z");
    json_response(&message)
}

/// `DELETE /messages/{id}`: 204, then the message is gone (and no longer counts as a
/// reply).
async fn delete_message(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let tracker = &fake.tracker;
    tracker.deletes.fetch_add(1, Ordering::Relaxed);
    if let Err((status, message)) = fake.check_auth(&headers) {
        return fake.refuse(status, message);
    }
    let Some(slot) = tracker
        .message(&id)
        .filter(|m| !m.deleted.swap(true, Ordering::AcqRel))
    else {
        return fake.refuse(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    };
    let answer_of = slot.answer_of.load(Ordering::Acquire);
    if answer_of == 0
        && let Some(room) = usize::try_from(slot.room.load(Ordering::Acquire))
            .ok()
            .and_then(|r| r.checked_sub(1))
            .and_then(|r| tracker.deleted_unfinished_ns.get(r))
    {
        room.store(slot.post_ns.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    if let Some(replies) = usize::try_from(answer_of)
        .ok()
        .and_then(|a| a.checked_sub(1))
        .and_then(|idx| tracker.replies.get(idx))
    {
        replies.fetch_sub(1, Ordering::Relaxed);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn tags() -> Response {
    json_response(&json!({"models": [{"name": MODEL, "model": MODEL}]}))
}

/// One LLM call in flight, for the peak; ends when dropped (also when the bot hangs up
/// mid-stream).
struct InFlight(Arc<Tracker>);

impl InFlight {
    fn enter(tracker: &Arc<Tracker>) -> InFlight {
        let n = tracker.llm_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        tracker.llm_peak.fetch_max(n, Ordering::Relaxed);
        InFlight(tracker.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.llm_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn ollama_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": error }).to_string(),
    )
        .into_response()
}

/// `text` cut into at most `n` pieces of (nearly) equal length in characters.
fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.clamp(1, chars.len().max(1));
    (0..n)
        .map(|i| {
            chars[i * chars.len() / n..(i + 1) * chars.len() / n]
                .iter()
                .collect()
        })
        .filter(|piece: &String| !piece.is_empty())
        .collect()
}

/// One NDJSON line of an Ollama `/api/chat` stream.
fn ndjson_line(content: &str, done: bool) -> Bytes {
    let mut line = json!({
        "model": MODEL, "created_at": "2026-11-27T10:00:00Z",
        "message": {"role": "assistant", "content": content}, "done": done
    });
    if done {
        line["done_reason"] = json!("stop");
        line["eval_count"] = json!(PIECES);
    }
    Bytes::from(format!("{line}\n"))
}

/// `POST /api/chat`: echoes the last message (ending with [`ANSWER_END`]) after the
/// configured delay; streamed like Ollama (NDJSON, `stream` defaults to true) in
/// [`PIECES`] pieces spread over the delay, or whole with `"stream": false`.
async fn chat(State(fake): State<Fake>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return ollama_error(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    match v["model"].as_str() {
        Some(MODEL) => {}
        Some(other) => {
            return ollama_error(
                StatusCode::NOT_FOUND,
                &format!("model \"{other}\" not found, try pulling it first"),
            );
        }
        None => return ollama_error(StatusCode::BAD_REQUEST, "model is required"),
    }
    let Some(messages) = v["messages"].as_array() else {
        return ollama_error(StatusCode::BAD_REQUEST, "messages must be a list");
    };
    let last = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let answer = format!("Echo: {last} {ANSWER_END}");
    let stream = match &v["stream"] {
        Value::Null => true,
        Value::Bool(b) => *b,
        _ => return ollama_error(StatusCode::BAD_REQUEST, "stream must be a boolean"),
    };
    let in_flight = InFlight::enter(&fake.tracker);
    if !stream {
        if !fake.llm_delay.is_zero() {
            tokio::time::sleep(fake.llm_delay).await;
        }
        drop(in_flight);
        return json_response(&json!({
            "model": MODEL, "created_at": "2026-11-27T10:00:00Z",
            "message": {"role": "assistant", "content": answer},
            "done": true, "done_reason": "stop"
        }));
    }
    let pieces = pieces(&answer, PIECES);
    let count = u32::try_from(pieces.len()).unwrap_or(u32::MAX).max(1);
    let step = fake.llm_delay / count;
    let begin = tokio::time::Instant::now();
    // Piece k (from 0) at (k + 1) × delay / pieces; then the closing line.
    let lines = futures_util::stream::unfold(
        (0u32, pieces.into_iter(), Some(in_flight)),
        move |(k, mut pieces, in_flight)| async move {
            let in_flight = in_flight?;
            let line = match pieces.next() {
                Some(piece) => {
                    // No timer without a delay (a timer costs up to a millisecond a piece).
                    if !step.is_zero() {
                        tokio::time::sleep_until(begin + step * (k + 1)).await;
                    }
                    (ndjson_line(&piece, false), Some(in_flight))
                }
                None => {
                    drop(in_flight);
                    (ndjson_line("", true), None)
                }
            };
            Some((Ok::<_, Infallible>(line.0), (k + 1, pieces, line.1)))
        },
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}

/// Serves `router` on a fresh loopback port until the runtime ends; returns its base URL.
pub async fn serve(router: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

/// Starts the fake Webex and the fake Ollama; returns their base URLs.
pub async fn start(
    tracker: Arc<Tracker>,
    llm_delay: Duration,
    max_edits: u32,
    file: Option<FileSpec>,
) -> anyhow::Result<(String, String)> {
    let fake = Fake {
        tracker,
        file,
        llm_delay,
        max_edits: max_edits.min(MAX_EDITS),
    };
    let webex = Router::new()
        .route("/people/me", get(people_me))
        .route(
            "/messages/{id}",
            get(get_message).put(edit_message).delete(delete_message),
        )
        .route("/messages", post(post_message))
        .route("/contents/{id}", get(get_content))
        .with_state(fake.clone());
    let ollama = Router::new()
        .route("/api/tags", get(tags))
        .route("/api/chat", post(chat))
        // Images arrive base64 in the request: larger than axum's default 2 MB.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(fake);
    Ok((serve(webex).await?, serve(ollama).await?))
}

/// A trivial `POST /webhook` → 200, to measure the generator alone.
pub fn trivial() -> Router {
    Router::new().route("/webhook", post(|| async { "ok\n" }))
}

#[cfg(test)]
mod tests {
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
}
