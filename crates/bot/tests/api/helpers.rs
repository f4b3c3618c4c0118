//! Test harness: the real app on port 0 against a fake Webex and a fake Ollama, each
//! checking requests the way the real service documents them.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bot::config::Config;
use bot::{App, AppState, BuildOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub use crate::eventually::{eventually, eventually_some};
pub use crate::harness::{Bot, BotProcess};

pub const TOKEN: &str = "test-token-SECRET-7f3a";
pub const WEBHOOK_SECRET: &str = "hook-secret-SECRET-91bc";
pub const ADMIN: &str = "admin@example.com";
pub const ALICE: &str = "alice@example.com";
/// The bot's id in the fixtures (decodes to ciscospark://us/PEOPLE/249f74d9-…).
pub const BOT_ID: &str =
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";
pub const BOT_UUID: &str = "249f74d9-db8a-43ca-896b-879ed240ac53";

/// The Webex fixture `name` from `crates/webex/tests/fixtures` (the repository's one copy,
/// shared with the Webex client's tests), read and parsed once.
pub fn fixture(name: &str) -> Value {
    static LOADED: OnceLock<Mutex<HashMap<String, Value>>> = OnceLock::new();
    let mut loaded = LOADED.get_or_init(Mutex::default).lock().unwrap();
    loaded
        .entry(name.to_owned())
        .or_insert_with(|| {
            let path = format!(
                "{}/../webex/tests/fixtures/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .clone()
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tls::install_crypto_provider();
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug,sqlx=warn,hyper=warn")
                .with_test_writer()
                .try_init();
        }
    });
}

/// The answer the fake LLM gives for a request body.
pub type Answerer = Arc<dyn Fn(&Value) -> ResponseTemplate + Send + Sync>;

/// Fake Ollama `/api/chat`: rejects what Ollama would (no model, bad roles, no messages),
/// answers `{"message": {"role": "assistant", "content": …}, "done": true}`, plain or as a
/// one-line stream. Slow streams with many chunks are in `streaming.rs`.
struct OllamaChat(Answerer);

impl Respond for OllamaChat {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "invalid JSON"}));
        };
        let model_ok = body["model"].as_str().is_some_and(|m| !m.is_empty());
        let messages_ok = body["messages"].as_array().is_some_and(|m| {
            !m.is_empty()
                && m.iter().all(|x| {
                    matches!(x["role"].as_str(), Some("system" | "user" | "assistant"))
                        && x["content"].is_string()
                        && ollama_images_ok(&x["images"])
                })
        });
        // `stream` must be said (Ollama streams when it is left out). A streamed answer is
        // NDJSON lines; the one-line answer below is also a valid stream (content and
        // `done: true` on one line), so each answerer serves both forms.
        if !model_ok || !messages_ok || !body["stream"].is_boolean() {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "bad request"}));
        }
        (self.0)(&body)
    }
}

/// Ollama's `images`: absent, or a list of base64 strings (no data-URL prefix) that decode.
fn ollama_images_ok(images: &Value) -> bool {
    use base64::Engine as _;
    match images {
        Value::Null => true,
        Value::Array(list) => list.iter().all(|i| {
            i.as_str().is_some_and(|s| {
                !s.is_empty() && base64::engine::general_purpose::STANDARD.decode(s).is_ok()
            })
        }),
        _ => false,
    }
}

pub fn ollama_answer(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "model": "llama3.1:8b",
        "created_at": "2026-11-27T10:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": true,
        "done_reason": "stop"
    }))
}

/// Echoes the last user message, so tests can see what the LLM was asked.
pub fn echo_answerer() -> Answerer {
    Arc::new(|body: &Value| {
        let last = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_owned();
        ollama_answer(&format!("Echo: {last}"))
    })
}

/// What a fake Webex knows beyond its mocks, kept per fake server (by its address): the
/// messages the bot posted (for listing, editing, deleting), how often each was edited,
/// and the messages the test mounted with their room types (for listing like Webex does).
#[derive(Default)]
struct FakeWebexState {
    /// Messages the fake accepted from the bot, oldest first.
    posted: Vec<Value>,
    /// Messages created so far (ids stay unique after deletions).
    created: u64,
    /// Edits per posted message id.
    edits: HashMap<String, u32>,
    /// Messages the test mounted with [`mount_message`], oldest first.
    mounted: Vec<Value>,
    /// Room id -> `direct` | `group`, from the mounted messages.
    room_types: HashMap<String, String>,
    /// Every post and edit the fake accepted, in order, with when it arrived.
    writes: Vec<Write>,
    /// Submitted cards by attachment action id (`GET /attachment/actions/{id}`).
    actions: HashMap<String, Value>,
    /// People by id (`GET /people/{id}`).
    people: HashMap<String, Value>,
}

/// A post or an edit the fake Webex accepted.
#[derive(Clone, Debug)]
pub struct Write {
    pub at: std::time::Instant,
    /// `POST` or `PUT`.
    pub method: &'static str,
    pub message_id: String,
    pub room_id: String,
    pub parent_id: Option<String>,
    pub text: String,
}

type FakeWebexStates = Mutex<HashMap<String, Arc<Mutex<FakeWebexState>>>>;

fn fake_states() -> &'static FakeWebexStates {
    static STATES: OnceLock<FakeWebexStates> = OnceLock::new();
    STATES.get_or_init(Default::default)
}

/// The state of the fake Webex at `origin` (`http://127.0.0.1:PORT`).
fn fake_state(origin: &str) -> Arc<Mutex<FakeWebexState>> {
    fake_states()
        .lock()
        .unwrap()
        .entry(origin.trim_end_matches('/').to_owned())
        .or_default()
        .clone()
}

/// The fake server a request was sent to, as `MockServer::uri` names it (wiremock's
/// `request.url` says `localhost` for every server; the `Host` header has the port).
fn origin_of(request: &Request) -> String {
    let host = request
        .headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

pub fn webex_error_body(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "message": message,
        "errors": [{"description": message}],
        "trackingId": format!("ROUTER_FAKE_{status}")
    }))
}

/// The text a message body carries, checked the way Webex checks it: `text` or
/// `markdown` required, at most 7439 bytes.
fn checked_text(body: &Value) -> Result<&str, &'static str> {
    let Some(text) = body["markdown"].as_str().or(body["text"].as_str()) else {
        return Err("text or markdown required");
    };
    if text.len() > 7439 {
        return Err(
            "Message length limited to 7439 characters before encryption and 10000 characters after encryption",
        );
    }
    Ok(text)
}

/// Fake Webex `POST /messages`: bearer token, JSON with `roomId` and `markdown`/`text`
/// under 7439 bytes (else 400, like Webex), at most one card in `attachments` (of the
/// Adaptive Card content type, version ≤ 1.3, ≤ 5 actions: `bot::cards::validate_message`);
/// answers with the created message.
struct CreateMessage;

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

impl Respond for CreateMessage {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return webex_error_body(400, "bad JSON");
        };
        let Some(room) = body["roomId"].as_str() else {
            return webex_error_body(400, "roomId required");
        };
        let text = match checked_text(&body) {
            Ok(text) => text,
            Err(refusal) => return webex_error_body(400, refusal),
        };
        // What Webex refuses of a card: more than one, another content type, a content that
        // is not an Adaptive Card; and (stricter than Webex, which would show the fallback)
        // anything past version 1.3 or more than 5 actions.
        if body.get("attachments").is_some()
            && let Err(problems) = bot::cards::validate_message(&body)
        {
            return webex_error_body(400, &format!("invalid card: {}", problems.join("; ")));
        }
        let state = fake_state(&origin_of(request));
        let mut state = state.lock().unwrap();
        state.created += 1;
        let n = state.created;
        let mut created = json!({
            "id": format!("REPLY-{n}"),
            "roomId": room,
            "markdown": text,
            "personId": BOT_ID,
            "personEmail": "helpbot@webex.bot",
            "created": now_rfc3339()
        });
        if let Some(parent) = body["parentId"].as_str() {
            created["parentId"] = json!(parent);
        }
        for key in ["attachments", "files"] {
            if body[key].is_array() {
                created[key] = body[key].clone();
            }
        }
        state.writes.push(Write {
            at: std::time::Instant::now(),
            method: "POST",
            message_id: format!("REPLY-{n}"),
            room_id: room.to_owned(),
            parent_id: body["parentId"].as_str().map(str::to_owned),
            text: text.to_owned(),
        });
        state.posted.push(created.clone());
        ResponseTemplate::new(200).set_body_json(created)
    }
}

/// Fake `GET /messages?roomId=…[&parentId=…][&mentionedPeople=me]&max=…`, as strict as
/// Webex is with a bot: a direct room lists fully (newest first); a group room (or one the
/// fake does not know) answers `403 Failed to get activity` unless `mentionedPeople=me`,
/// and then lists only the messages that mention the bot, never the bot's own replies.
struct ListMessages;

fn created_of(m: &Value) -> String {
    m["created"].as_str().unwrap_or_default().to_owned()
}

impl Respond for ListMessages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let query: HashMap<String, String> = request.url.query_pairs().into_owned().collect();
        let Some(room) = query.get("roomId") else {
            return webex_error_body(400, "roomId required");
        };
        let max: usize = query.get("max").and_then(|m| m.parse().ok()).unwrap_or(50);
        let state = fake_state(&origin_of(request));
        let state = state.lock().unwrap();
        let direct = state.room_types.get(room).is_some_and(|t| t == "direct");
        let mentioned_me = query
            .get("mentionedPeople")
            .is_some_and(|p| p == "me" || p == BOT_ID);
        if !direct && !mentioned_me {
            return webex_error_body(403, "Failed to get activity");
        }
        let mut items: Vec<Value> = state
            .mounted
            .iter()
            .chain(state.posted.iter())
            .filter(|m| m["roomId"] == json!(room))
            .filter(|m| {
                query
                    .get("parentId")
                    .is_none_or(|p| m["parentId"] == json!(p))
            })
            .filter(|m| {
                let by_bot = m["personId"] == json!(BOT_ID);
                let mentions_bot = m["mentionedPeople"]
                    .as_array()
                    .is_some_and(|people| people.iter().any(|p| p == BOT_ID || p == BOT_UUID));
                if mentioned_me {
                    mentions_bot && !by_bot
                } else {
                    true
                }
            })
            .cloned()
            .collect();
        items.sort_by_key(|m| std::cmp::Reverse(created_of(m)));
        items.truncate(max);
        ResponseTemplate::new(200).set_body_json(json!({ "items": items }))
    }
}

/// The `{id}` of `/messages/{id}`.
fn message_id_in_path(request: &Request) -> String {
    request
        .url
        .path()
        .trim_start_matches("/messages/")
        .to_owned()
}

/// Fake `PUT /messages/{id}`: only the bot's own messages, body `roomId` plus
/// `text`/`markdown` (same limits as a post), at most 10 edits per message (the 11th is a
/// 400, like Webex), never a message with files or a card.
struct EditMessage;

impl Respond for EditMessage {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = message_id_in_path(request);
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return webex_error_body(400, "bad JSON");
        };
        let Some(room) = body["roomId"].as_str() else {
            return webex_error_body(400, "roomId required");
        };
        let text = match checked_text(&body) {
            Ok(text) => text.to_owned(),
            Err(refusal) => return webex_error_body(400, refusal),
        };
        let state = fake_state(&origin_of(request));
        let mut state = state.lock().unwrap();
        let Some(index) = state.posted.iter().position(|m| m["id"] == json!(id)) else {
            return webex_error_body(404, "The requested resource could not be found.");
        };
        if state.posted[index]["roomId"] != json!(room) {
            return webex_error_body(400, "roomId does not match the message");
        }
        if state.posted[index]["attachments"].is_array() || state.posted[index]["files"].is_array()
        {
            return webex_error_body(400, "Messages with files or cards cannot be edited");
        }
        let edits = state.edits.entry(id.clone()).or_default();
        if *edits >= 10 {
            return webex_error_body(400, "Message edit limit reached");
        }
        *edits += 1;
        let parent_id = state.posted[index]["parentId"].as_str().map(str::to_owned);
        state.writes.push(Write {
            at: std::time::Instant::now(),
            method: "PUT",
            message_id: id.clone(),
            room_id: room.to_owned(),
            parent_id,
            text: text.clone(),
        });
        let message = &mut state.posted[index];
        message["markdown"] = json!(text);
        message["updated"] = json!(now_rfc3339());
        ResponseTemplate::new(200).set_body_json(message.clone())
    }
}

/// Fake `DELETE /messages/{id}`: the bot's own messages; 204, then gone.
struct DeleteMessage;

impl Respond for DeleteMessage {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = message_id_in_path(request);
        let state = fake_state(&origin_of(request));
        let mut state = state.lock().unwrap();
        let before = state.posted.len();
        state.posted.retain(|m| m["id"] != json!(id));
        if state.posted.len() == before {
            return webex_error_body(404, "The requested resource could not be found.");
        }
        ResponseTemplate::new(204)
    }
}

/// Every post and edit the fake Webex at `webex` accepted, in order.
pub fn webex_writes(webex: &MockServer) -> Vec<Write> {
    fake_state(&webex.uri()).lock().unwrap().writes.clone()
}

/// The messages the fake Webex at `webex` holds from the bot now (after edits and
/// deletions), oldest first.
pub fn posted_messages(webex: &MockServer) -> Vec<Value> {
    fake_state(&webex.uri()).lock().unwrap().posted.clone()
}

pub async fn mount_webex_basics(webex: &MockServer) {
    // wiremock hands out pooled servers: forget what an earlier test left at this address.
    *fake_state(&webex.uri()).lock().unwrap() = FakeWebexState::default();
    Mock::given(method("GET"))
        .and(path("/people/me"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture("people-me.json")))
        .mount(webex)
        .await;
    Mock::given(method("POST"))
        .and(path("/messages"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(CreateMessage)
        .mount(webex)
        .await;
    Mock::given(method("GET"))
        .and(path("/messages"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ListMessages)
        .mount(webex)
        .await;
    Mock::given(method("PUT"))
        .and(messages_path())
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .respond_with(EditMessage)
        .mount(webex)
        .await;
    Mock::given(method("DELETE"))
        .and(messages_path())
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(DeleteMessage)
        .mount(webex)
        .await;
    // Below every test's own mocks (wiremock: 1 is the highest priority, 5 the default).
    Mock::given(method("GET"))
        .and(messages_path())
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(GetMessage)
        .with_priority(10)
        .mount(webex)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/attachment/actions/[^/]+$"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(GetAttachmentAction)
        .mount(webex)
        .await;
    Mock::given(method("GET"))
        .and(path_regex(r"^/people/[^/]+$"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(GetPerson)
        .with_priority(10)
        .mount(webex)
        .await;
    Mock::given(path_regex(r"^/webhooks(/[^/]+)?$"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(FakeWebhooks::default())
        .with_priority(10)
        .mount(webex)
        .await;
}

/// Fake `GET /messages/{id}` for what no test mounted itself: the bot's own posts (a card
/// a click names, with the room type the fake learned) and the mounted messages; else 404.
struct GetMessage;

impl Respond for GetMessage {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = message_id_in_path(request);
        let state = fake_state(&origin_of(request));
        let state = state.lock().unwrap();
        let found = state
            .posted
            .iter()
            .chain(state.mounted.iter())
            .find(|m| m["id"] == json!(id))
            .cloned();
        match found {
            Some(mut message) => {
                if message["roomType"].is_null()
                    && let Some(kind) = message["roomId"]
                        .as_str()
                        .and_then(|room| state.room_types.get(room))
                {
                    message["roomType"] = json!(kind);
                }
                ResponseTemplate::new(200).set_body_json(message)
            }
            None => webex_error_body(404, "The requested resource could not be found."),
        }
    }
}

/// Fake `GET /attachment/actions/{id}`: the submitted cards [`click`] created, as Webex
/// answers them (`id`, `type`, `messageId`, `inputs`, `personId`, `roomId`, `created`);
/// 404 for an id it does not know.
struct GetAttachmentAction;

impl Respond for GetAttachmentAction {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request
            .url
            .path()
            .trim_start_matches("/attachment/actions/")
            .to_owned();
        let state = fake_state(&origin_of(request));
        let state = state.lock().unwrap();
        match state.actions.get(&id) {
            Some(action) => ResponseTemplate::new(200).set_body_json(action.clone()),
            None => webex_error_body(404, "The requested resource could not be found."),
        }
    }
}

/// Fake `GET /people/{id}`: the people [`mount_person`] added; 404 for others.
struct GetPerson;

impl Respond for GetPerson {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request.url.path().trim_start_matches("/people/").to_owned();
        let state = fake_state(&origin_of(request));
        let state = state.lock().unwrap();
        match state.people.get(&id) {
            Some(person) => ResponseTemplate::new(200).set_body_json(person.clone()),
            None => webex_error_body(404, "The requested resource could not be found."),
        }
    }
}

/// Makes `GET /people/{id}` answer with a person of this email.
pub fn mount_person(webex: &MockServer, id: &str, email: &str) {
    let person = json!({
        "id": id, "emails": [email], "displayName": email.split('@').next().unwrap_or(email),
        "type": if email.ends_with("@webex.bot") { "bot" } else { "person" },
        "orgId": "ORG"
    });
    fake_state(&webex.uri())
        .lock()
        .unwrap()
        .people
        .insert(id.to_owned(), person);
}

/// Someone submits a card the bot posted: the fake Webex learns the attachment action
/// (`inputs` already merged with the button's data, as Webex does) and the test gets the
/// `attachmentActions`/`created` webhook to deliver.
pub fn submit_card(
    webex: &MockServer,
    action_id: &str,
    card: &Value,
    person_id: &str,
    inputs: Value,
) -> Value {
    let action = json!({
        "id": action_id,
        "type": "submit",
        "messageId": card["id"],
        "inputs": inputs,
        "personId": person_id,
        "roomId": card["roomId"],
        "created": now_rfc3339(),
    });
    fake_state(&webex.uri())
        .lock()
        .unwrap()
        .actions
        .insert(action_id.to_owned(), action.clone());
    let mut event = fixture("webhook-messages-created.json");
    event["resource"] = json!("attachmentActions");
    event["name"] = json!("webex-chatbot");
    event["actorId"] = json!(person_id);
    event["data"] = json!({
        "id": action_id, "type": "submit", "messageId": card["id"], "personId": person_id,
        "roomId": card["roomId"], "created": action["created"],
    });
    event
}

/// The `memberships`/`created` webhook for `person_id` added to `room` (`group`|`direct`).
pub fn membership_event(
    membership_id: &str,
    room: &str,
    room_type: &str,
    person_id: &str,
    email: &str,
) -> Value {
    let mut event = fixture("webhook-messages-created.json");
    event["resource"] = json!("memberships");
    event["data"] = json!({
        "id": membership_id, "roomId": room, "roomType": room_type, "personId": person_id,
        "personEmail": email, "personDisplayName": "x", "personOrgId": "ORG",
        "isModerator": false, "isMonitor": false, "created": now_rfc3339(),
    });
    event
}

/// The messages with a card the fake Webex accepted from the bot, oldest first.
pub fn posted_cards(webex: &MockServer) -> Vec<Value> {
    posted_messages(webex)
        .into_iter()
        .filter(|m| m["attachments"].is_array())
        .collect()
}

/// Makes `GET /messages/{id}` answer with this message.
pub async fn mount_message(webex: &MockServer, message: &Value) {
    let id = message["id"].as_str().unwrap();
    {
        let state = fake_state(&webex.uri());
        let mut state = state.lock().unwrap();
        if let (Some(room), Some(kind)) = (message["roomId"].as_str(), message["roomType"].as_str())
        {
            state.room_types.insert(room.to_owned(), kind.to_owned());
        }
        state.mounted.push(message.clone());
    }
    Mock::given(method("GET"))
        .and(path(format!("/messages/{id}")))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(message.clone()))
        .mount(webex)
        .await;
}

pub async fn mount_ollama(llm: &MockServer, answerer: Answerer) {
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(OllamaChat(answerer))
        .mount(llm)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/tags"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"models": [{"name": "llama3.1:8b", "model": "llama3.1:8b"}]}),
            ),
        )
        .mount(llm)
        .await;
}

/// A `messages`/`created` webhook for a message (the envelope of the fixture, with ids).
pub fn event_for(message: &Value) -> Value {
    let mut event = fixture("webhook-messages-created.json");
    event["data"] = json!({
        "id": message["id"],
        "roomId": message["roomId"],
        "roomType": message["roomType"],
        "personId": message["personId"],
        "personEmail": message["personEmail"],
        "created": message["created"],
    });
    event
}

/// A direct message from `email` with this text and a unique id.
pub fn direct_message(id: &str, room: &str, email: &str, text: &str) -> Value {
    let mut m = fixture("message-direct.json");
    m["id"] = json!(id);
    m["roomId"] = json!(room);
    m["personEmail"] = json!(email);
    m["text"] = json!(text);
    m["markdown"] = json!(text);
    m
}

/// A group-space message from `email` that @mentions the bot (desktop form), with a
/// unique id, not in a thread.
pub fn group_message(id: &str, room: &str, email: &str, text: &str) -> Value {
    let mut m = fixture("message-group-mention-desktop.json");
    m["id"] = json!(id);
    m["roomId"] = json!(room);
    m["personEmail"] = json!(email);
    m["text"] = json!(format!("HelpBot {text}"));
    m["markdown"] = json!(format!("HelpBot {text}"));
    m["html"] = json!(format!(
        "<p><spark-mention data-object-type=\"person\" data-object-id=\"{BOT_ID}\">HelpBot</spark-mention> {text}</p>"
    ));
    m["created"] = json!(now_rfc3339());
    m
}

pub struct Spawn {
    pub env: Vec<(String, String)>,
    pub answerer: Answerer,
    pub mount_webex: bool,
    pub knobs: Knobs,
}

impl Default for Spawn {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            answerer: echo_answerer(),
            mount_webex: true,
            knobs: Knobs::default(),
        }
    }
}

/// `BuildOptions` a test may turn beyond the environment.
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    pub pg_schema: Option<String>,
    pub lease_ttl: Option<Duration>,
    pub metrics_refresh: Option<Duration>,
    pub fault_hook: Option<bot::FaultHook>,
    pub probe_cache: Option<Duration>,
    /// The clock usage and limits are counted in (shared by replicas made from this).
    pub clock: Option<bot::usage::Clock>,
}

impl Knobs {
    // `..defaults` keeps this building when `BuildOptions` grows a field.
    #[allow(clippy::needless_update)]
    fn options(&self, stop: &CancellationToken) -> BuildOptions {
        let defaults = BuildOptions::default();
        BuildOptions {
            webex_retry: webex::RetryPolicy::fast_for_tests(),
            stop: stop.clone(),
            tls_watch: Duration::from_millis(200),
            pg_schema: self.pg_schema.clone(),
            lease_ttl: self.lease_ttl.unwrap_or(defaults.lease_ttl),
            metrics_refresh: self.metrics_refresh.unwrap_or(defaults.metrics_refresh),
            fault_hook: self.fault_hook.clone(),
            probe_cache: self.probe_cache.unwrap_or(defaults.probe_cache),
            clock: self.clock.clone().unwrap_or(defaults.clock.clone()),
            download_policy: webex::DownloadPolicy::fast_for_tests(),
            // The test runner is not the bot: the bot's binary extracts PDF/DOCX text.
            extractor: Some(bot::attachments::Isolation::Child(
                env!("CARGO_BIN_EXE_webex-chatbot").into(),
            )),
            ..defaults
        }
    }
}

/// `TEST_DATABASE_URL`, or `None` after saying that `test` is skipped.
pub fn test_database_url(test: &str) -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL").ok();
    if url.is_none() {
        say_skipped(&format!(
            "TEST_DATABASE_URL is not set: {test} skipped (it needs PostgreSQL)"
        ));
    }
    url
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

impl Spawn {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn answer(mut self, answerer: Answerer) -> Self {
        self.answerer = answerer;
        self
    }
    /// The app on PostgreSQL at `url`, in `schema` (created if missing).
    pub fn postgres(mut self, url: &str, schema: &str) -> Self {
        self.knobs.pg_schema = Some(schema.to_owned());
        self.env("DATABASE_URL", url)
    }
    /// Room leases of this length (how soon a dead replica's rooms move).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.knobs.lease_ttl = Some(ttl);
        self
    }
    /// `/metrics`' store-derived gauges recounted this often (default 5 s).
    pub fn metrics_refresh(mut self, every: Duration) -> Self {
        self.knobs.metrics_refresh = Some(every);
        self
    }
    /// Reuses an LLM probe's report for `keep` (5 s by default).
    pub fn probe_cache(mut self, keep: Duration) -> Self {
        self.knobs.probe_cache = Some(keep);
        self
    }
    /// Counts usage days and limit windows on `clock` (a manual one the test moves).
    pub fn clock(mut self, clock: &bot::usage::Clock) -> Self {
        self.knobs.clock = Some(clock.clone());
        self
    }
    /// Runs `hook` with each event's message id before the event is handled.
    pub fn fault_hook(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.knobs.fault_hook = Some(bot::FaultHook(Arc::new(hook)));
        self
    }
    /// `MODE=websocket` with the device service (WDM) at `wdm_url`, skipping discovery.
    pub fn websocket(self, wdm_url: &str) -> Self {
        self.env("MODE", "websocket").env("WEBEX_WDM_URL", wdm_url)
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub webex: MockServer,
    pub llm: MockServer,
    pub state: AppState,
    pub http: reqwest::Client,
    stop: CancellationToken,
    server: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub dir: Arc<tempfile::TempDir>,
    env: HashMap<String, String>,
    knobs: Knobs,
}

/// The environment of a test app against these fakes, with a SQLite file under `dir`.
pub fn base_env(
    webex: &MockServer,
    llm: &MockServer,
    dir: &std::path::Path,
) -> HashMap<String, String> {
    [
        ("WEBEX_BOT_TOKEN", TOKEN.to_owned()),
        ("WEBEX_API_URL", webex.uri()),
        ("LLM_PROVIDER", "ollama".to_owned()),
        ("OLLAMA_URL", llm.uri()),
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/data/bot.db", dir.display()),
        ),
        ("PERSONALITIES_DIR", personalities_dir()),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("ADMIN_EMAILS", ADMIN.to_owned()),
        ("LOG_FILE", String::new()),
        ("LLM_TIMEOUT_SECS", "5".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS", "5".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub fn personalities_dir() -> String {
    format!("{}/../../personalities", env!("CARGO_MANIFEST_DIR"))
}

impl TestApp {
    pub async fn spawn(spawn: Spawn) -> TestApp {
        let webex = MockServer::start().await;
        if spawn.mount_webex {
            mount_webex_basics(&webex).await;
        }
        Self::spawn_with_webex(webex, spawn).await
    }

    /// Spawns against a fake Webex the test has prepared itself.
    pub async fn spawn_with_webex(webex: MockServer, spawn: Spawn) -> TestApp {
        init_logs();
        let llm = MockServer::start().await;
        mount_ollama(&llm, spawn.answerer).await;
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut env = base_env(&webex, &llm, dir.path());
        for (k, v) in spawn.env {
            env.insert(k, v);
        }
        Self::start(webex, llm, dir, env, spawn.knobs).await
    }

    async fn start(
        webex: MockServer,
        llm: MockServer,
        dir: Arc<tempfile::TempDir>,
        env: HashMap<String, String>,
        knobs: Knobs,
    ) -> TestApp {
        let config = Config::from_source(&env).expect("test configuration is valid");
        let stop = CancellationToken::new();
        let options = knobs.options(&stop);
        let app = App::build_with(config, options).await.expect("app builds");
        let port = app.port();
        let state = app.state().clone();
        let server = tokio::spawn(app.run_until_stopped());
        let address = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        // Ready once /health answers (the webhook registration has run by then or soon).
        // HTTPS apps are probed by their tests, which know the CA.
        if !env.contains_key("TLS_CERT_PATH") {
            eventually(Duration::from_secs(2), || async {
                http.get(format!("{address}/health")).send().await.is_ok()
            })
            .await;
        }
        TestApp {
            address,
            port,
            webex,
            llm,
            state,
            http,
            stop,
            server,
            dir,
            env,
            knobs,
        }
    }

    /// A variable of this app's environment (`DATABASE_URL`, …); empty when unset.
    pub fn env_value(&self, name: &str) -> String {
        self.env.get(name).cloned().unwrap_or_default()
    }

    /// Stops gracefully and starts a new app on the same database and fakes.
    pub async fn restart(self) -> TestApp {
        let TestApp {
            webex,
            llm,
            dir,
            env,
            stop,
            server,
            knobs,
            ..
        } = self;
        stop.cancel();
        server.await.unwrap().unwrap();
        Self::start(webex, llm, dir, env, knobs).await
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
    }

    pub async fn post_raw(&self, body: Vec<u8>, signature: Option<&str>) -> reqwest::Response {
        let mut req = self
            .http
            .post(format!("{}/webhook", self.address))
            .header("content-type", "application/json")
            .body(body);
        if let Some(sig) = signature {
            req = req.header("x-spark-signature", sig);
        }
        req.send().await.unwrap()
    }

    /// Posts a correctly signed webhook.
    pub async fn post_event(&self, event: &Value) -> reqwest::Response {
        let body = serde_json::to_vec(event).unwrap();
        let sig = webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &body);
        self.post_raw(body, Some(&sig)).await
    }

    /// Mounts the message, posts its webhook, expects 200.
    pub async fn deliver(&self, message: &Value) {
        mount_message(&self.webex, message).await;
        let res = self.post_event(&event_for(message)).await;
        assert_eq!(
            res.status(),
            200,
            "webhook not accepted: {:?}",
            res.text().await
        );
    }

    /// Waits until the event of this message id is handled (done) in the store.
    pub async fn wait_handled(&self, message_id: &str) -> String {
        eventually_some(Duration::from_secs(10), || async {
            match self.state.store.event_outcome(message_id).await.unwrap() {
                Some((state, outcome)) if state == "done" => Some(outcome.unwrap_or_default()),
                _ => None,
            }
        })
        .await
        .unwrap_or_else(|| panic!("event {message_id} was not handled in time"))
    }

    pub async fn replies(&self) -> Vec<Value> {
        requests_to(&self.webex, "POST", "/messages").await
    }

    pub async fn llm_requests(&self) -> Vec<Value> {
        requests_to(&self.llm, "POST", "/api/chat").await
    }

    pub async fn wait_replies(&self, n: usize) -> Vec<Value> {
        match eventually_some(Duration::from_secs(10), || async {
            Some(self.replies().await).filter(|r| r.len() >= n)
        })
        .await
        {
            Some(replies) => replies,
            None => panic!("expected {n} replies, got {:?}", self.replies().await),
        }
    }

    pub async fn approve(&self, email: &str) {
        let email = bot::domain::Email::parse(email).unwrap();
        self.state
            .store
            .add_user(&email, Some("test"))
            .await
            .unwrap();
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn health(&self) -> Value {
        self.http
            .get(format!("{}/health", self.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

pub async fn requests_to(server: &MockServer, m: &str, p: &str) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == m && r.url.path() == p)
        .map(|r| serde_json::from_slice(&r.body).unwrap_or(Value::Null))
        .collect()
}

/// Wiremock matcher helper for paths with ids.
pub fn messages_path() -> wiremock::matchers::PathRegexMatcher {
    path_regex(r"^/messages/[^/]+$")
}

// ---- replicas ------------------------------------------------------------------------

/// What one more replica needs: the environment (fakes, database) and the knobs (schema,
/// lease length) it shares with the others.
#[derive(Clone, Debug)]
pub struct ReplicaSpec {
    pub env: HashMap<String, String>,
    pub knobs: Knobs,
}

impl ReplicaSpec {
    /// Replicas against these fakes on PostgreSQL at `url`, in `schema`.
    pub fn postgres(webex: &MockServer, llm: &MockServer, url: &str, schema: &str) -> Self {
        let mut env = base_env(webex, llm, std::path::Path::new("/nonexistent"));
        env.insert("DATABASE_URL".to_owned(), url.to_owned());
        Self {
            env,
            knobs: Knobs {
                pg_schema: Some(schema.to_owned()),
                ..Knobs::default()
            },
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.to_owned(), v.to_owned());
        self
    }
}

impl TestApp {
    /// How to start another replica of this app: same fakes, database, schema and settings.
    pub fn replica_spec(&self) -> ReplicaSpec {
        ReplicaSpec {
            env: self.env.clone(),
            knobs: self.knobs.clone(),
        }
    }

    /// Another replica of this app (see [`Replica`]).
    pub async fn spawn_replica(&self) -> Replica {
        Replica::spawn(&self.replica_spec()).await
    }
}

/// An app on a runtime (and thread) of its own, so a test can end it the way a process
/// dies: [`Replica::kill`] drops every task at once, nothing is shut down gracefully, its
/// room leases stay in the store until they expire and its database sessions just close.
/// It keeps no handle on the app's state, so nothing of it outlives the kill.
pub struct Replica {
    pub address: String,
    pub port: u16,
    /// Its name in room leases.
    pub instance_id: String,
    pub http: reqwest::Client,
    stop: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Replica {
    pub async fn spawn(spec: &ReplicaSpec) -> Replica {
        init_logs();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("replica")
            .enable_all()
            .build()
            .unwrap();
        let config = Config::from_source(&spec.env).expect("test configuration is valid");
        let stop = CancellationToken::new();
        let options = spec.knobs.options(&stop);
        let (started, ready) = tokio::sync::oneshot::channel();
        let server = runtime.spawn(async move {
            let app = App::build_with(config, options).await?;
            let _ = started.send((app.port(), app.state().instance_id.clone()));
            app.run_until_stopped().await
        });
        let (port, instance_id) = match ready.await {
            Ok(started) => started,
            Err(_) => panic!("replica did not start: {:?}", server.await),
        };
        let address = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        eventually(Duration::from_secs(5), || async {
            http.get(format!("{address}/health")).send().await.is_ok()
        })
        .await;
        Replica {
            address,
            port,
            instance_id,
            http,
            stop,
            server: Some(server),
            runtime: Some(runtime),
        }
    }

    /// Ends it like `kill -9`: every task dropped where it stands.
    pub fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Stops it gracefully (SIGTERM): work in hand finishes, leases are released.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// Posts a correctly signed webhook.
    pub async fn post_event(&self, event: &Value) -> reqwest::Response {
        let body = serde_json::to_vec(event).unwrap();
        let sig = webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &body);
        self.http
            .post(format!("{}/webhook", self.address))
            .header("content-type", "application/json")
            .header("x-spark-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn health(&self) -> Value {
        self.http
            .get(format!("{}/health", self.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // A runtime cannot be dropped inside another one; this is allowed anywhere.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Writes straight to the process's stderr: libtest captures `eprintln!` of passing tests,
/// and what this says (a skipped PostgreSQL test, a random test's seed) must be visible in
/// `cargo test`'s output.
pub fn say(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// Says that a test was skipped, and why.
pub fn say_skipped(message: &str) {
    say(message);
}

/// A loopback port that was free a moment ago (for a bot process to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Posts a correctly signed webhook to a bot process on `port`; returns the status.
pub async fn post_signed(port: u16, event: &Value) -> u16 {
    post_signed_with(port, event, None).await
}

/// [`post_signed`] with `X-Relay-Key` (for a bot with `RELAY_API_KEY` set).
pub async fn post_signed_with(port: u16, event: &Value, relay_key: Option<&str>) -> u16 {
    let body = serde_json::to_vec(event).unwrap();
    let sig = webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &body);
    let mut request = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhook"))
        .header("x-spark-signature", sig)
        .body(body);
    if let Some(key) = relay_key {
        request = request.header("x-relay-key", key);
    }
    request.send().await.unwrap().status().as_u16()
}

// ---- webhooks -------------------------------------------------------------------------

/// Webex's webhook API with state: `GET /webhooks` lists what `POST` created and
/// `DELETE` did not remove, in pages of `max` (or of the fake's page size) linked with
/// `Link: <…>; rel="next"`; `POST` and `PUT` refuse a body without the fields Webex
/// requires (OpenAPI: `name`, `targetUrl`, and `resource`, `event` for `POST`), and
/// `PUT`'s `status` can only be `active`.
#[derive(Clone, Default)]
pub struct FakeWebhooks {
    hooks: Arc<Mutex<Vec<Value>>>,
    next: Arc<AtomicU64>,
    page: Arc<AtomicU64>,
}

/// `resource` values `POST /webhooks` accepts (OpenAPI), plus the firehose `all`.
const WEBHOOK_RESOURCES: &[&str] = &[
    "attachmentActions",
    "dataSources",
    "memberships",
    "messages",
    "rooms",
    "meetings",
    "recordings",
    "convergedRecordings",
    "meetingParticipants",
    "meetingTranscripts",
    "telephony_calls",
    "telephony_conference",
    "telephony_mwi",
    "uc_counters",
    "serviceApp",
    "adminBatchJobs",
    "all",
];
/// `event` values `POST /webhooks` accepts (OpenAPI), plus `all`.
const WEBHOOK_EVENTS: &[&str] = &[
    "created",
    "updated",
    "deleted",
    "started",
    "ended",
    "joined",
    "left",
    "migrated",
    "authorized",
    "deauthorized",
    "statusChanged",
    "all",
];

/// The events the bot registers a webhook for (DESIGN §10.3).
pub const BOT_SUBSCRIPTIONS: [(&str, &str); 3] = [
    ("messages", "created"),
    ("attachmentActions", "created"),
    ("memberships", "created"),
];

/// A `messages`/`created` webhook as Webex lists it.
pub fn hook(id: &str, name: &str, target: &str, status: &str) -> Value {
    json!({"id": id, "name": name, "targetUrl": target, "resource": "messages",
           "event": "created", "status": status, "created": "2026-11-01T00:00:00.000Z"})
}

/// A webhook for `(resource, event)` as Webex lists it.
pub fn hook_for(
    id: &str,
    name: &str,
    target: &str,
    (resource, event): (&str, &str),
    status: &str,
) -> Value {
    let mut h = hook(id, name, target, status);
    h["resource"] = json!(resource);
    h["event"] = json!(event);
    h
}

/// The bot's three webhooks at `target` (ids `{prefix}-1` … `{prefix}-3`), each with the
/// secret.
pub fn bot_hooks(prefix: &str, target: &str, status: &str) -> Vec<Value> {
    BOT_SUBSCRIPTIONS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut h = hook_for(
                &format!("{prefix}-{}", i + 1),
                "webex-chatbot",
                target,
                *s,
                status,
            );
            h["secret"] = json!(WEBHOOK_SECRET);
            h
        })
        .collect()
}

impl FakeWebhooks {
    pub fn with(hooks: Vec<Value>) -> FakeWebhooks {
        let fake = FakeWebhooks::default();
        *fake.hooks.lock().unwrap() = hooks;
        fake
    }

    pub fn list(&self) -> Vec<Value> {
        self.hooks.lock().unwrap().clone()
    }

    /// Lists at most `n` webhooks a page, whatever `max` asks.
    pub fn paged(self, n: u64) -> FakeWebhooks {
        self.page.store(n, Ordering::SeqCst);
        self
    }

    /// What Webex does after failed deliveries (`inactive`).
    pub fn set_status(&self, id: &str, status: &str) {
        let mut hooks = self.hooks.lock().unwrap();
        let hook = hooks.iter_mut().find(|h| h["id"] == id).unwrap();
        hook["status"] = json!(status);
    }

    /// A webhook deleted behind the bot's back (by hand, another tool).
    pub fn remove(&self, id: &str) {
        self.hooks.lock().unwrap().retain(|h| h["id"] != id);
    }

    pub async fn mount(&self, webex: &MockServer) {
        Mock::given(path_regex(r"^/webhooks(/[^/]+)?$"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(self.clone())
            .mount(webex)
            .await;
    }
}

impl Respond for FakeWebhooks {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request
            .url
            .path()
            .strip_prefix("/webhooks/")
            .map(str::to_owned);
        let body = || serde_json::from_slice::<Value>(&request.body).ok();
        let mut hooks = self.hooks.lock().unwrap();
        match (request.method.as_str(), id) {
            ("GET", None) => {
                let query: std::collections::HashMap<String, String> =
                    request.url.query_pairs().into_owned().collect();
                let mut max: usize = match query.get("max").map(|m| m.parse()) {
                    None => 100,
                    Some(Ok(m)) if m > 0 => m,
                    Some(_) => return webex_error_body(400, "invalid max"),
                };
                let page = self.page.load(Ordering::SeqCst) as usize;
                if page > 0 {
                    max = max.min(page);
                }
                let from: usize = query
                    .get("cursor")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let items: Vec<Value> = hooks.iter().skip(from).take(max).cloned().collect();
                let mut response = ResponseTemplate::new(200);
                if from + max < hooks.len() {
                    // Absolute, like Webex's, on the host the client asked.
                    let host = request
                        .headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("localhost");
                    let next = format!("http://{host}/webhooks?max={max}&cursor={}", from + max);
                    response =
                        response.insert_header("Link", format!("<{next}>; rel=\"next\"").as_str());
                }
                response.set_body_json(json!({ "items": items }))
            }
            ("POST", None) => {
                let Some(body) = body() else {
                    return webex_error_body(400, "invalid JSON");
                };
                for field in ["name", "targetUrl", "resource", "event"] {
                    if !body[field].is_string() {
                        return webex_error_body(400, &format!("{field} is required"));
                    }
                }
                // The OpenAPI enums (firehose `all` too, which the file leaves out).
                if !WEBHOOK_RESOURCES.contains(&body["resource"].as_str().unwrap_or_default()) {
                    return webex_error_body(400, "resource is not a webhook resource");
                }
                if !WEBHOOK_EVENTS.contains(&body["event"].as_str().unwrap_or_default()) {
                    return webex_error_body(400, "event is not a webhook event");
                }
                let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
                let mut created = body.clone();
                created["id"] = json!(format!("WH-{n}"));
                created["status"] = json!("active");
                hooks.push(created.clone());
                ResponseTemplate::new(200).set_body_json(created)
            }
            ("PUT", Some(id)) => {
                let Some(body) = body() else {
                    return webex_error_body(400, "invalid JSON");
                };
                for field in ["name", "targetUrl"] {
                    if !body[field].is_string() {
                        return webex_error_body(400, &format!("{field} is required"));
                    }
                }
                if !body["status"].is_null() && body["status"] != "active" {
                    return webex_error_body(400, "status can only be set to active");
                }
                let Some(existing) = hooks.iter_mut().find(|h| h["id"] == id.as_str()) else {
                    return webex_error_body(404, "webhook not found");
                };
                for field in ["name", "targetUrl", "secret", "status"] {
                    if !body[field].is_null() {
                        existing[field] = body[field].clone();
                    }
                }
                ResponseTemplate::new(200).set_body_json(existing.clone())
            }
            ("DELETE", Some(id)) => {
                let before = hooks.len();
                hooks.retain(|h| h["id"] != id.as_str());
                if hooks.len() == before {
                    webex_error_body(404, "webhook not found")
                } else {
                    ResponseTemplate::new(204)
                }
            }
            _ => webex_error_body(405, "method not allowed"),
        }
    }
}
// ---- files (`/contents/{id}`) --------------------------------------------------------

/// How the fake Webex serves one `GET /contents/{id}`.
#[derive(Clone, Debug)]
pub enum FileServe {
    /// `200` with `Content-Disposition: attachment; filename="…"`, `Content-Type` and
    /// `Content-Length`.
    File {
        name: String,
        content_type: String,
        bytes: Vec<u8>,
    },
    /// The same without `Content-Length` (chunked), as a proxy may send it.
    Chunked {
        name: String,
        content_type: String,
        bytes: Vec<u8>,
    },
    /// `423` (still being scanned) `times` times, with `Retry-After` when given, then `then`.
    Scanning {
        times: usize,
        retry_after: Option<&'static str>,
        then: Box<FileServe>,
    },
    /// A bare status: `404`, `410` (removed as malware), `428` (cannot be scanned).
    Status(u16),
}

impl FileServe {
    pub fn file(name: &str, content_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        FileServe::File {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            bytes: bytes.into(),
        }
    }
}

/// Fake `GET /contents/{id}`: the bot token or `401`, then as `FileServe` says.
struct Contents {
    serve: FileServe,
    tries: Mutex<usize>,
}

impl Respond for Contents {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(format!("Bearer {TOKEN}").as_str()) {
            return webex_error_body(
                401,
                "The request requires a valid access token set in the Authorization request header.",
            );
        }
        let mut tries = self.tries.lock().unwrap();
        *tries += 1;
        let mut serve = &self.serve;
        let mut served_before = *tries - 1;
        loop {
            match serve {
                FileServe::Scanning {
                    times,
                    retry_after,
                    then,
                } => {
                    if served_before < *times {
                        let mut r = webex_error_body(423, "File is being scanned for malware");
                        if let Some(wait) = retry_after {
                            r = r.insert_header("retry-after", *wait);
                        }
                        return r;
                    }
                    served_before -= times;
                    serve = then;
                }
                FileServe::Status(status) => {
                    return webex_error_body(*status, "file not available");
                }
                FileServe::File {
                    name,
                    content_type,
                    bytes,
                } => {
                    return ResponseTemplate::new(200)
                        .insert_header(
                            "content-disposition",
                            format!("attachment; filename=\"{name}\"").as_str(),
                        )
                        .set_body_raw(bytes.clone(), content_type);
                }
                FileServe::Chunked {
                    name,
                    content_type,
                    bytes,
                } => {
                    return ResponseTemplate::new(200)
                        .insert_header(
                            "content-disposition",
                            format!("attachment; filename=\"{name}\"").as_str(),
                        )
                        // hyper then sends no Content-Length.
                        .insert_header("transfer-encoding", "chunked")
                        .set_body_raw(bytes.clone(), content_type);
                }
            }
        }
    }
}

/// Makes the fake Webex serve `/contents/{id}` as `serve` says; returns the file's URL
/// as a message's `files` lists it.
pub async fn mount_file(webex: &MockServer, id: &str, serve: FileServe) -> String {
    Mock::given(method("GET"))
        .and(path(format!("/contents/{id}")))
        .respond_with(Contents {
            serve,
            tries: Mutex::new(0),
        })
        .mount(webex)
        .await;
    format!("{}/contents/{id}", webex.uri())
}

/// How often the fake Webex was asked for `/contents/{id}`.
pub async fn file_requests(webex: &MockServer, id: &str) -> usize {
    webex
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == format!("/contents/{id}"))
        .count()
}

/// A direct message with files (URLs from [`mount_file`]) and this text.
pub fn direct_message_with_files(
    id: &str,
    room: &str,
    email: &str,
    text: &str,
    files: &[String],
) -> Value {
    let mut m = direct_message(id, room, email, text);
    if text.is_empty() {
        m.as_object_mut().unwrap().remove("text");
        m.as_object_mut().unwrap().remove("markdown");
    }
    m["files"] = json!(files);
    m
}
