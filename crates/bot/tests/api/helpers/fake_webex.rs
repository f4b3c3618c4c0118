//! The fake Webex messages API (wiremock): strict on what the bot sends, with per-server
//! state for listing, editing and deleting the bot's messages.

use super::*;

/// What a fake Webex knows beyond its mocks, kept per fake server (by its address): the
/// messages the bot posted (for listing, editing, deleting), how often each was edited,
/// and the messages the test mounted with their room types (for listing like Webex does).
#[derive(Default)]
pub(super) struct FakeWebexState {
    /// Messages the fake accepted from the bot, oldest first.
    pub(super) posted: Vec<Value>,
    /// Messages created so far (ids stay unique after deletions).
    pub(super) created: u64,
    /// Edits per posted message id.
    pub(super) edits: HashMap<String, u32>,
    /// Messages the test mounted with [`mount_message`], oldest first.
    pub(super) mounted: Vec<Value>,
    /// Room id -> `direct` | `group`, from the mounted messages.
    pub(super) room_types: HashMap<String, String>,
    /// Every post and edit the fake accepted, in order, with when it arrived.
    pub(super) writes: Vec<Write>,
    /// Submitted cards by attachment action id (`GET /attachment/actions/{id}`).
    pub(super) actions: HashMap<String, Value>,
    /// People by id (`GET /people/{id}`).
    pub(super) people: HashMap<String, Value>,
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

pub(super) type FakeWebexStates = Mutex<HashMap<String, Arc<Mutex<FakeWebexState>>>>;

pub(super) fn fake_states() -> &'static FakeWebexStates {
    static STATES: OnceLock<FakeWebexStates> = OnceLock::new();
    STATES.get_or_init(Default::default)
}

/// The state of the fake Webex at `origin` (`http://127.0.0.1:PORT`).
pub(super) fn fake_state(origin: &str) -> Arc<Mutex<FakeWebexState>> {
    fake_states()
        .lock()
        .unwrap()
        .entry(origin.trim_end_matches('/').to_owned())
        .or_default()
        .clone()
}

/// The fake server a request was sent to, as `MockServer::uri` names it (wiremock's
/// `request.url` says `localhost` for every server; the `Host` header has the port).
pub(super) fn origin_of(request: &Request) -> String {
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
pub(super) fn checked_text(body: &Value) -> Result<&str, &'static str> {
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
pub(super) struct CreateMessage;

pub(super) fn now_rfc3339() -> String {
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
pub(super) struct ListMessages;

pub(super) fn created_of(m: &Value) -> String {
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
pub(super) fn message_id_in_path(request: &Request) -> String {
    request
        .url
        .path()
        .trim_start_matches("/messages/")
        .to_owned()
}

/// Fake `PUT /messages/{id}`: only the bot's own messages, body `roomId` plus
/// `text`/`markdown` (same limits as a post), at most 10 edits per message (the 11th is a
/// 400, like Webex), never a message with files or a card.
pub(super) struct EditMessage;

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
pub(super) struct DeleteMessage;

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
pub(super) struct GetMessage;

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
pub(super) struct GetAttachmentAction;

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
pub(super) struct GetPerson;

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
