//! Fake providers that refuse what the real APIs refuse and answer in their documented
//! shapes, plain and streamed. One responder per API family handles every path.
// A refusal travels as `Err(ResponseTemplate)` so checks can use `?`; its size does not
// matter in a test fake.
#![allow(clippy::result_large_err)]

use std::sync::Arc;

use llm::{ChatRequest, Llm, Message, Options, ProviderConfig, ProviderKind};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, ResponseTemplate, matchers::any};

use crate::tool_fakes::{self, Move, Script};

pub const KEY: &str = "test-key-123";
/// A Gemini model that checks thought signatures, which the Gemini fake also serves.
pub const GEMINI_3: &str = "gemini-3-pro-preview";

/// The model a per-request override asks for, which each fake also serves.
pub fn override_model(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Ollama => "qwen3:4b",
        ProviderKind::Anthropic => "claude-opus-4-1-20250805",
        ProviderKind::OpenAi => "gpt-4.1",
        ProviderKind::Gemini => "gemini-2.5-pro",
        ProviderKind::Xai => "grok-4",
        ProviderKind::OpenAiCompatible => "my-served-model",
    }
}

/// The path the provider's base URL ends in.
pub fn prefix(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Ollama | ProviderKind::Anthropic => "",
        ProviderKind::Gemini => "/v1beta",
        ProviderKind::OpenAi | ProviderKind::Xai | ProviderKind::OpenAiCompatible => "/v1",
    }
}

pub fn needs_key(kind: ProviderKind) -> bool {
    kind.requires_api_key()
}

struct Cfg {
    kind: ProviderKind,
    models: Vec<String>,
    pieces: Vec<String>,
    /// What the model does when it is offered tools.
    script: Script,
    usage: Tokens,
}

impl Cfg {
    /// The scripted model's move: the text pieces of an answer, or the calls to make.
    fn decide(
        &self,
        offered: &[String],
        results: Option<Vec<String>>,
    ) -> Result<Vec<String>, Vec<(String, Value)>> {
        match tool_fakes::decide(&self.script, offered, results) {
            Move::Call(calls) => Err(calls),
            Move::Answer(text) => Ok(tool_fakes::answer_pieces(&text)),
            Move::Plain => Ok(self.pieces.clone()),
        }
    }
}

/// Token counts a fake reports for every answer, in its provider's own usage fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tokens {
    pub prompt: u64,
    pub completion: u64,
}

/// What each fake reports, different for every provider so a count cannot come from the
/// wrong one.
pub fn known_usage(kind: ProviderKind) -> Tokens {
    let (prompt, completion) = match kind {
        ProviderKind::Ollama => (26, 9),
        ProviderKind::Anthropic => (42, 15),
        ProviderKind::OpenAi => (31, 12),
        ProviderKind::Gemini => (53, 18),
        ProviderKind::Xai => (64, 21),
        ProviderKind::OpenAiCompatible => (75, 24),
    };
    Tokens { prompt, completion }
}

/// The counts the fixed helpers below report (tests that script whole answers).
const DEFAULT_USAGE: Tokens = Tokens {
    prompt: 5,
    completion: 3,
};

pub struct Fake {
    pub server: MockServer,
    pub kind: ProviderKind,
}

impl Fake {
    /// A fake answering "Hello there!" in three pieces.
    pub async fn start(kind: ProviderKind) -> Fake {
        Fake::answering(kind, &["Hello", " there", "!"]).await
    }

    pub async fn answering(kind: ProviderKind, pieces: &[&str]) -> Fake {
        Fake::with_script(kind, pieces, Script::default()).await
    }

    /// A fake whose model calls the tools of `script` it is offered, and answers
    /// "Results: …" with the results it gets back.
    pub async fn calling(kind: ProviderKind, script: Script) -> Fake {
        Fake::with_script(kind, &["Hello", " there", "!"], script).await
    }

    async fn with_script(kind: ProviderKind, pieces: &[&str], script: Script) -> Fake {
        let server = MockServer::start().await;
        let mut models = vec![
            kind.default_model().to_owned(),
            override_model(kind).to_owned(),
            "o3-mini".to_owned(),
        ];
        if kind == ProviderKind::Gemini {
            models.push(GEMINI_3.to_owned());
        }
        let cfg = Arc::new(Cfg {
            kind,
            models,
            pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
            script,
            usage: known_usage(kind),
        });
        // Low priority: tests mount scripted failures above it.
        Mock::given(any())
            .respond_with(move |req: &Request| respond(&cfg, req))
            .with_priority(100)
            .mount(&server)
            .await;
        Fake { server, kind }
    }

    pub fn base(&self) -> String {
        format!("{}{}", self.server.uri(), prefix(self.kind))
    }

    pub fn config(&self) -> ProviderConfig {
        ProviderConfig {
            kind: self.kind,
            base_url: Some(self.base().parse().unwrap()),
            api_key: needs_key(self.kind).then(|| SecretString::from(KEY)),
            model: None,
        }
    }

    pub fn llm(&self) -> Llm {
        self.llm_with(|_| {})
    }

    /// An `Llm` for this fake with its configuration changed first.
    pub fn llm_with(&self, change: impl FnOnce(&mut ProviderConfig)) -> Llm {
        let mut config = self.config();
        change(&mut config);
        Llm::new(reqwest::Client::new(), config, None, options()).unwrap()
    }

    pub async fn requests(&self) -> Vec<Request> {
        self.server.received_requests().await.unwrap_or_default()
    }

    /// JSON bodies of the chat calls received, in order.
    pub async fn chat_bodies(&self) -> Vec<Value> {
        self.requests()
            .await
            .iter()
            .filter(|r| r.method.as_str() == "POST")
            .map(|r| r.body_json().unwrap())
            .collect()
    }

    /// Mounts a scripted answer for the chat endpoint above the validating responder.
    pub async fn script(&self, template: ResponseTemplate) {
        self.script_times(template, None).await;
    }

    /// The same for the first chat call only.
    pub async fn script_once(&self, template: ResponseTemplate) {
        self.script_times(template, Some(1)).await;
    }

    async fn script_times(&self, template: ResponseTemplate, times: Option<u64>) {
        let mock = Mock::given(wiremock::matchers::method("POST")).respond_with(template);
        let mock = match times {
            Some(n) => mock.up_to_n_times(n),
            None => mock,
        };
        mock.with_priority(1).mount(&self.server).await;
    }
}

pub fn options() -> Options {
    Options {
        timeout: std::time::Duration::from_secs(5),
        ..Options::default()
    }
}

/// A system prompt, a three-turn history, temperature and a token limit.
pub fn conversation() -> ChatRequest {
    ChatRequest {
        system: Some("You are a test bot.".into()),
        messages: vec![
            Message::user("first question"),
            Message::assistant("first answer"),
            Message::user("second question"),
        ],
        model: None,
        temperature: Some(0.2),
        max_tokens: Some(256),
        tools: Vec::new(),
    }
}

pub fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

fn respond(cfg: &Cfg, req: &Request) -> ResponseTemplate {
    let result = match cfg.kind {
        ProviderKind::Ollama => ollama(cfg, req),
        ProviderKind::Anthropic => anthropic(cfg, req),
        ProviderKind::Gemini => gemini(cfg, req),
        ProviderKind::OpenAi | ProviderKind::Xai | ProviderKind::OpenAiCompatible => {
            openai(cfg, req)
        }
    };
    result.unwrap_or_else(|refusal| refusal)
}

type Answer = Result<ResponseTemplate, ResponseTemplate>;

fn json_body(
    req: &Request,
    refuse: impl Fn(&str) -> ResponseTemplate,
) -> Result<Value, ResponseTemplate> {
    if !header(req, "content-type").is_some_and(|c| c.starts_with("application/json")) {
        return Err(refuse("Content-Type must be application/json"));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(body) if body.is_object() => Ok(body),
        _ => Err(refuse("the body is not a JSON object")),
    }
}

fn check(ok: bool, refusal: impl FnOnce() -> ResponseTemplate) -> Result<(), ResponseTemplate> {
    if ok { Ok(()) } else { Err(refusal()) }
}

fn field_in(body: &Value, name: &str, allowed: &[&str]) -> Option<String> {
    body.as_object()?
        .keys()
        .find(|k| !allowed.contains(&k.as_str()))
        .map(|k| format!("{name}: unknown field {k}"))
}

fn stream_flag(body: &Value, default: bool) -> Result<bool, String> {
    match body.get("stream") {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err("stream: must be a boolean".into()),
    }
}

fn temperature_ok(body: &Value, max: f64) -> bool {
    match body.get("temperature") {
        None => true,
        Some(t) => t.as_f64().is_some_and(|t| (0.0..=max).contains(&t)),
    }
}

/// Standard base64 that decodes to at least one byte, as every provider requires of image
/// data.
fn base64_ok(data: &str) -> bool {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .is_ok_and(|bytes| !bytes.is_empty())
}

/// The image types every provider documents (Gemini also takes HEIC/HEIF).
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

// ---------------------------------------------------------------- OpenAI style

/// One message of a Chat Completions request, as the API validates it.
fn openai_message(m: &Value) -> Result<(), String> {
    let role = m["role"].as_str().unwrap_or("");
    if !["system", "developer", "user", "assistant", "tool"].contains(&role) {
        return Err(format!("invalid role '{role}'"));
    }
    tool_fakes::openai_tool_message(m)?;
    match &m["content"] {
        Value::String(_) => Ok(()),
        Value::Null if m.get("tool_calls").is_some() => Ok(()),
        Value::Array(parts) if !parts.is_empty() => {
            parts.iter().try_for_each(|part| openai_part(role, part))
        }
        _ => Err("content: must be a string or a non-empty array of content parts".into()),
    }
}

fn openai_part(role: &str, part: &Value) -> Result<(), String> {
    match part["type"].as_str() {
        Some("text") if part["text"].is_string() => Ok(()),
        Some("image_url") => {
            if role != "user" {
                return Err("Image URLs are only allowed for messages with role 'user'".into());
            }
            let url = part["image_url"]["url"].as_str().unwrap_or("");
            let data_url = url
                .strip_prefix("data:")
                .and_then(|rest| rest.split_once(";base64,"));
            match data_url {
                Some((mime, data)) if IMAGE_TYPES.contains(&mime) && base64_ok(data) => Ok(()),
                Some(_) => Err(
                    "Invalid image data: a data URL must be data:<image type>;base64,<data>".into(),
                ),
                None if url.starts_with("https://") => Ok(()),
                None => Err("image_url.url: must be a URL or a base64 data URL".into()),
            }
        }
        _ => Err("content part: invalid type or missing field".into()),
    }
}

pub fn openai_error(status: u16, message: &str, kind: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

fn openai(cfg: &Cfg, req: &Request) -> Answer {
    let bad = |m: &str| openai_error(400, m, "invalid_request_error");
    if needs_key(cfg.kind) {
        let expected = format!("Bearer {KEY}");
        check(
            header(req, "authorization") == Some(expected.as_str()),
            || openai_error(401, "Incorrect API key provided.", "invalid_request_error"),
        )?;
    }
    match (req.method.as_str(), req.url.path()) {
        ("GET", "/v1/models") => Ok(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": cfg.models.iter().map(|m| json!({"id": m, "object": "model", "created": 1, "owned_by": "system"})).collect::<Vec<_>>(),
        }))),
        ("POST", "/v1/chat/completions") => {
            let body = json_body(req, bad)?;
            let model = body["model"].as_str().ok_or_else(|| bad("you must provide a model parameter"))?;
            check(cfg.models.iter().any(|m| m == model), || {
                openai_error(404, &format!("The model `{model}` does not exist or you do not have access to it."), "invalid_request_error")
            })?;
            let messages = body["messages"].as_array().filter(|m| !m.is_empty()).ok_or_else(|| bad("messages: must be a non-empty array"))?;
            for (i, m) in messages.iter().enumerate() {
                openai_message(m).map_err(|e| bad(&format!("messages[{i}]: {e}")))?;
            }
            let offered = tool_fakes::openai_tools(&body).map_err(|e| bad(&e))?;
            let results = tool_fakes::openai_turns(messages).map_err(|e| bad(&e))?;
            check(temperature_ok(&body, 2.0), || bad("temperature: must be between 0 and 2"))?;
            let reasoning = model.starts_with('o') || model.starts_with("gpt-5");
            check(!(reasoning && body.get("max_tokens").is_some()), || {
                bad("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.")
            })?;
            let stream = stream_flag(&body, false).map_err(|m| bad(&m))?;
            let include_usage = match body.get("stream_options") {
                None | Some(Value::Null) => false,
                Some(_) if !stream => {
                    return Err(bad("The 'stream_options' parameter is only allowed when 'stream' is enabled."));
                }
                Some(options) => {
                    if let Some(unknown) = field_in(options, "stream_options", &["include_usage", "include_obfuscation"]) {
                        return Err(bad(&unknown));
                    }
                    match options.get("include_usage") {
                        None => false,
                        Some(Value::Bool(b)) => *b,
                        Some(_) => return Err(bad("stream_options.include_usage: must be a boolean")),
                    }
                }
            };
            let pieces = match cfg.decide(&offered, results) {
                Ok(pieces) => pieces,
                Err(calls) => return Ok(tool_fakes::openai_calls(model, &cfg.script, &calls, stream)),
            };
            Ok(if stream {
                let usage = include_usage.then_some(cfg.usage);
                ResponseTemplate::new(200).set_body_raw(openai_sse_with(&pieces, usage), "text/event-stream")
            } else {
                ResponseTemplate::new(200).set_body_json(openai_completion_with(model, &pieces.concat(), cfg.usage))
            })
        }
        _ => Err(openai_error(404, "Unknown request URL", "invalid_request_error")),
    }
}

pub fn openai_completion(model: &str, text: &str) -> Value {
    openai_completion_with(model, text, DEFAULT_USAGE)
}

pub fn openai_completion_with(model: &str, text: &str, usage: Tokens) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "finish_reason": "stop"}],
        "usage": openai_usage(usage)
    })
}

fn openai_usage(usage: Tokens) -> Value {
    json!({
        "prompt_tokens": usage.prompt, "completion_tokens": usage.completion,
        "total_tokens": usage.prompt + usage.completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}
    })
}

pub fn openai_chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {chunk}\n\n")
}

/// A role chunk, one chunk a piece, the finish chunk, `[DONE]`.
pub fn openai_sse(pieces: &[String]) -> String {
    openai_sse_with(pieces, None)
}

/// The same; with `usage` (the request set `stream_options.include_usage`) every chunk
/// has `"usage": null` and one more chunk with empty `choices` carries the counts before
/// `[DONE]`, as the API documents.
pub fn openai_sse_with(pieces: &[String], usage: Option<Tokens>) -> String {
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut chunk = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        });
        if usage.is_some() {
            chunk["usage"] = Value::Null;
        }
        format!("data: {chunk}\n\n")
    };
    let mut body = chunk(json!({"role": "assistant", "content": ""}), None);
    for piece in pieces {
        body += &chunk(json!({"content": piece}), None);
    }
    body += &chunk(json!({}), Some("stop"));
    if let Some(usage) = usage {
        let last = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [], "usage": openai_usage(usage)
        });
        body += &format!("data: {last}\n\n");
    }
    body + "data: [DONE]\n\n"
}

// ---------------------------------------------------------------- Anthropic

pub fn anthropic_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"type": "error", "error": {"type": kind, "message": message}}))
}

fn anthropic(cfg: &Cfg, req: &Request) -> Answer {
    let bad = |m: &str| anthropic_error(400, "invalid_request_error", m);
    check(header(req, "x-api-key") == Some(KEY), || {
        anthropic_error(401, "authentication_error", "invalid x-api-key")
    })?;
    check(
        header(req, "anthropic-version") == Some("2023-06-01"),
        || bad("anthropic-version: header is required"),
    )?;
    match (req.method.as_str(), req.url.path()) {
        ("GET", "/v1/models") => Ok(ResponseTemplate::new(200).set_body_json(json!({
            "data": cfg.models.iter().map(|m| json!({"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"})).collect::<Vec<_>>(),
            "has_more": false, "first_id": cfg.models.first(), "last_id": cfg.models.last(),
        }))),
        ("POST", "/v1/messages") => {
            let body = json_body(req, bad)?;
            if let Some(unknown) = field_in(&body, "body", &["model", "max_tokens", "system", "messages", "temperature", "stream", "top_p", "top_k", "stop_sequences", "metadata", "tools", "tool_choice"]) {
                return Err(bad(&unknown));
            }
            let model = body["model"].as_str().ok_or_else(|| bad("model: Field required"))?;
            check(body["max_tokens"].as_u64().is_some_and(|n| n >= 1), || bad("max_tokens: Field required"))?;
            check(body.get("system").is_none_or(|s| s.is_string() || s.is_array()), || bad("system: Input should be a valid string"))?;
            let messages = body["messages"].as_array().filter(|m| !m.is_empty()).ok_or_else(|| bad("messages: Field required"))?;
            let mut previous = "";
            for (i, m) in messages.iter().enumerate() {
                let role = m["role"].as_str().unwrap_or("");
                check(role == "user" || role == "assistant", || {
                    bad(&format!("messages.{i}.role: Input should be 'user' or 'assistant'"))
                })?;
                check(i > 0 || role == "user", || bad("messages: first message must use the \"user\" role"))?;
                check(role != previous, || {
                    bad(&format!("messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" roles in a row"))
                })?;
                anthropic_content(role, &m["content"]).map_err(|e| bad(&format!("messages.{i}.content: {e}")))?;
                previous = role;
            }
            let offered = tool_fakes::anthropic_tools(&body).map_err(|e| bad(&e))?;
            let results = tool_fakes::anthropic_turns(messages).map_err(|e| bad(&e))?;
            check(temperature_ok(&body, 1.0), || bad("temperature: range: 0..1"))?;
            check(cfg.models.iter().any(|m| m == model), || anthropic_error(404, "not_found_error", &format!("model: {model}")))?;
            let stream = stream_flag(&body, false).map_err(|m| bad(&m))?;
            let pieces = match cfg.decide(&offered, results) {
                Ok(pieces) => pieces,
                Err(calls) => return Ok(tool_fakes::anthropic_calls(model, &cfg.script, &calls, stream)),
            };
            Ok(if stream {
                ResponseTemplate::new(200).set_body_raw(anthropic_sse_with(model, &pieces, cfg.usage), "text/event-stream")
            } else {
                ResponseTemplate::new(200).set_body_json(anthropic_message_with(model, &[("text", &pieces.concat())], cfg.usage))
            })
        }
        _ => Err(anthropic_error(404, "not_found_error", "Not found")),
    }
}

/// The content of one message: a string, or content blocks the API knows.
fn anthropic_content(role: &str, content: &Value) -> Result<(), String> {
    match content {
        Value::String(_) => Ok(()),
        Value::Array(blocks) if !blocks.is_empty() => blocks
            .iter()
            .try_for_each(|block| anthropic_block(role, block)),
        Value::Array(_) => Err("messages: all messages must have non-empty content".into()),
        _ => Err("Input should be a valid string or a valid list".into()),
    }
}

fn anthropic_block(role: &str, block: &Value) -> Result<(), String> {
    match block["type"].as_str() {
        Some("text") => match block["text"].as_str() {
            Some(text) if !text.is_empty() => Ok(()),
            _ => Err("text content blocks must be non-empty".into()),
        },
        Some("image") => {
            if role != "user" {
                return Err("image blocks are only allowed in user messages".into());
            }
            let source = &block["source"];
            if source["type"] != "base64" {
                return Err("source.type: Input should be 'base64', 'url' or 'file'".into());
            }
            let media_type = source["media_type"].as_str().unwrap_or("");
            if !IMAGE_TYPES.contains(&media_type) {
                return Err("source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'".into());
            }
            if !source["data"].as_str().is_some_and(base64_ok) {
                return Err("source.data: invalid base64 data".into());
            }
            Ok(())
        }
        Some("tool_use" | "tool_result") => tool_fakes::anthropic_tool_block(role, block),
        Some(other) => Err(format!(
            "Input tag '{other}' found using 'type' does not match any of the expected tags"
        )),
        None => Err("type: Field required".into()),
    }
}

/// A message with the given `(type, text)` content blocks.
pub fn anthropic_message(model: &str, blocks: &[(&str, &str)]) -> Value {
    anthropic_message_with(model, blocks, DEFAULT_USAGE)
}

pub fn anthropic_message_with(model: &str, blocks: &[(&str, &str)], usage: Tokens) -> Value {
    let content: Vec<Value> = blocks
        .iter()
        .map(|(kind, text)| match *kind {
            "thinking" => json!({"type": "thinking", "thinking": text, "signature": "sig"}),
            _ => json!({"type": kind, "text": text}),
        })
        .collect();
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": usage.prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": usage.completion}
    })
}

pub fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The documented event flow, with a ping in the middle as the API sends.
#[allow(dead_code)] // For tests that script a whole answer with the default counts.
pub fn anthropic_sse(model: &str, pieces: &[String]) -> String {
    anthropic_sse_with(model, pieces, DEFAULT_USAGE)
}

/// The input tokens come in `message_start` (with an early output count of 1), the
/// cumulative output tokens in `message_delta`, as the API sends them.
pub fn anthropic_sse_with(model: &str, pieces: &[String], usage: Tokens) -> String {
    let mut body = anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": usage.prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
    );
    body += &anthropic_event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    body += &anthropic_event("ping", json!({"type": "ping"}));
    body += &anthropic_pieces(pieces);
    body += &anthropic_event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    body += &anthropic_event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": usage.completion}}),
    );
    body + &anthropic_event("message_stop", json!({"type": "message_stop"}))
}

pub fn anthropic_pieces(pieces: &[String]) -> String {
    pieces
        .iter()
        .map(|p| anthropic_event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})))
        .collect()
}

// ---------------------------------------------------------------- Gemini

pub fn gemini_error(code: u16, status: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .set_body_json(json!({"error": {"code": code, "message": message, "status": status}}))
}

fn gemini(cfg: &Cfg, req: &Request) -> Answer {
    let bad = |m: &str| gemini_error(400, "INVALID_ARGUMENT", m);
    // The real API accepts `?key=`, but a key in a URL ends up in logs: refuse it here.
    check(!req.url.query_pairs().any(|(k, _)| k == "key"), || {
        bad("API keys in the query string are refused by this fake")
    })?;
    match header(req, "x-goog-api-key") {
        None => {
            return Err(gemini_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            ));
        }
        Some(key) if key != KEY => {
            return Err(ResponseTemplate::new(400).set_body_json(json!({"error": {
                "code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
            }})));
        }
        Some(_) => {}
    }
    let path = req.url.path();
    if req.method.as_str() == "GET" && path == "/v1beta/models" {
        return Ok(ResponseTemplate::new(200).set_body_json(json!({
            "models": cfg.models.iter().map(|m| json!({"name": format!("models/{m}"), "displayName": m, "supportedGenerationMethods": ["generateContent", "countTokens"]})).collect::<Vec<_>>(),
        })));
    }
    let Some((model, method)) = path
        .strip_prefix("/v1beta/models/")
        .and_then(|rest| rest.split_once(':'))
    else {
        return Err(gemini_error(404, "NOT_FOUND", "Not found"));
    };
    check(req.method.as_str() == "POST", || {
        gemini_error(404, "NOT_FOUND", "Not found")
    })?;
    check(
        method == "generateContent" || method == "streamGenerateContent",
        || gemini_error(404, "NOT_FOUND", "Not found"),
    )?;
    check(cfg.models.iter().any(|m| m == model), || {
        gemini_error(
            404,
            "NOT_FOUND",
            &format!(
                "models/{model} is not found for API version v1beta, or is not supported for {method}."
            ),
        )
    })?;
    let body = json_body(req, bad)?;
    if let Some(unknown) = field_in(
        &body,
        "",
        &[
            "contents",
            "systemInstruction",
            "system_instruction",
            "generationConfig",
            "generation_config",
            "safetySettings",
            "tools",
            "toolConfig",
            "cachedContent",
        ],
    ) {
        return Err(bad(&format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
        )));
    }
    let contents = body["contents"]
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("* GenerateContentRequest.contents: contents is not specified"))?;
    let mut previous = "";
    for content in contents {
        let role = content["role"].as_str().unwrap_or("");
        check(role == "user" || role == "model", || {
            bad("Please use a valid role: user, model.")
        })?;
        check(!previous.is_empty() || role == "user", || {
            bad("Please ensure that multiturn requests start with a user turn.")
        })?;
        check(role != previous, || {
            bad("Please ensure that multiturn requests alternate between user and model.")
        })?;
        let parts = content["parts"]
            .as_array()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                bad("* GenerateContentRequest.contents.parts: contents.parts must not be empty.")
            })?;
        for part in parts {
            gemini_part(role, part).map_err(|e| bad(&format!("contents.parts: {e}")))?;
        }
        previous = role;
    }
    if let Some(system) = body.get("systemInstruction") {
        check(
            system["parts"]
                .as_array()
                .is_some_and(|p| p.iter().all(|p| p["text"].is_string())),
            || bad("systemInstruction: parts must carry text"),
        )?;
        check(
            system
                .get("role")
                .is_none_or(|r| r == "user" || r == "system"),
            || bad("systemInstruction: invalid role"),
        )?;
    }
    if let Some(config) = body.get("generationConfig") {
        if let Some(unknown) = field_in(
            config,
            "generation_config",
            &[
                "temperature",
                "maxOutputTokens",
                "topP",
                "topK",
                "stopSequences",
                "candidateCount",
                "thinkingConfig",
            ],
        ) {
            return Err(bad(&format!(
                "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
            )));
        }
        check(temperature_ok(config, 2.0), || {
            bad("temperature must be between 0 and 2")
        })?;
    }
    let offered = tool_fakes::gemini_tools(&body).map_err(|e| bad(&e))?;
    let results = tool_fakes::gemini_turns(model, contents).map_err(|e| bad(&e))?;
    let sse = req.url.query_pairs().any(|(k, v)| k == "alt" && v == "sse");
    let pieces = match cfg.decide(&offered, results) {
        Ok(pieces) => pieces,
        Err(calls) => {
            let stream = method == "streamGenerateContent";
            return Ok(tool_fakes::gemini_calls(&cfg.script, &calls, stream && sse));
        }
    };
    let text = pieces.concat();
    let whole = gemini_candidate_with(&text, Some("STOP"), gemini_usage(cfg.usage, true));
    if method == "generateContent" {
        return Ok(ResponseTemplate::new(200).set_body_json(whole));
    }
    Ok(if sse {
        ResponseTemplate::new(200)
            .set_body_raw(gemini_sse_with(&pieces, cfg.usage), "text/event-stream")
    } else {
        // Without alt=sse the API streams one JSON array.
        ResponseTemplate::new(200).set_body_json(json!([whole]))
    })
}

/// One part: exactly one kind of data (proto `oneof`), in either JSON spelling.
fn gemini_part(role: &str, part: &Value) -> Result<(), String> {
    let Some(fields) = part.as_object() else {
        return Err("a part must be an object".into());
    };
    let data: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|k| !["thought", "thoughtSignature", "thought_signature"].contains(k))
        .collect();
    let [kind] = data.as_slice() else {
        return Err(format!(
            "a part must hold exactly one kind of data, found {data:?}"
        ));
    };
    match *kind {
        "text" if part["text"].is_string() => Ok(()),
        "inline_data" | "inlineData" => {
            let blob = &part[*kind];
            let mime = blob.get("mime_type").or_else(|| blob.get("mimeType"));
            if !mime
                .and_then(Value::as_str)
                .is_some_and(|m| IMAGE_TYPES.contains(&m))
            {
                return Err("inline_data.mime_type: unsupported MIME type".into());
            }
            if !blob["data"].as_str().is_some_and(base64_ok) {
                return Err(
                    "inline_data.data: Invalid value (bytes), base64 decoding failed".into(),
                );
            }
            Ok(())
        }
        "functionCall" | "functionResponse" => tool_fakes::gemini_tool_part(role, kind, part),
        other => Err(format!(
            "Unknown name \"{other}\" at 'contents.parts': Cannot find field."
        )),
    }
}

pub fn gemini_candidate(text: &str, finish: Option<&str>) -> Value {
    gemini_candidate_with(text, finish, gemini_usage(DEFAULT_USAGE, false))
}

pub fn gemini_candidate_with(text: &str, finish: Option<&str>, usage: Value) -> Value {
    let mut candidate =
        json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
    if let Some(finish) = finish {
        candidate["finishReason"] = json!(finish);
    }
    json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash"})
}

/// `usageMetadata` for `usage`; a thinking model's (`thinking`) splits the output into
/// candidate tokens and 4 thought tokens, counted apart as the API does.
pub fn gemini_usage(usage: Tokens, thinking: bool) -> Value {
    let thoughts = if thinking { 4.min(usage.completion) } else { 0 };
    let mut metadata = json!({
        "promptTokenCount": usage.prompt,
        "candidatesTokenCount": usage.completion - thoughts,
        "totalTokenCount": usage.prompt + usage.completion,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.prompt}]
    });
    if thinking {
        metadata["thoughtsTokenCount"] = json!(thoughts);
    }
    metadata
}

#[allow(dead_code)] // For tests that script a whole answer with the default counts.
pub fn gemini_answer(text: &str) -> Value {
    gemini_candidate(text, Some("STOP"))
}

/// One event a piece, CRLF-separated as the API sends them; the last carries finishReason.
#[allow(dead_code)] // For tests that script a whole answer with the default counts.
pub fn gemini_sse(pieces: &[String]) -> String {
    gemini_sse_with(pieces, DEFAULT_USAGE)
}

/// The same with `usage`: every chunk carries `usageMetadata`, the counts so far (the
/// prompt from the first chunk on), the last one complete.
pub fn gemini_sse_with(pieces: &[String], usage: Tokens) -> String {
    let last = pieces.len().saturating_sub(1);
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let so_far = if i == last {
                gemini_usage(usage, true)
            } else {
                json!({"promptTokenCount": usage.prompt, "totalTokenCount": usage.prompt + i as u64 + 1, "candidatesTokenCount": i as u64 + 1})
            };
            format!(
                "data: {}\r\n\r\n",
                gemini_candidate_with(p, (i == last).then_some("STOP"), so_far)
            )
        })
        .collect()
}

// ---------------------------------------------------------------- Ollama

pub fn ollama_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": message}))
}

fn ollama(cfg: &Cfg, req: &Request) -> Answer {
    match (req.method.as_str(), req.url.path()) {
        ("GET", "/api/tags") => Ok(ResponseTemplate::new(200).set_body_json(json!({
            "models": cfg.models.iter().map(|m| json!({"name": m, "model": m, "size": 1, "digest": "abc", "details": {"family": "llama"}})).collect::<Vec<_>>(),
        }))),
        ("POST", "/api/chat") => {
            let bad = |m: &str| ollama_error(400, m);
            let body: Value = serde_json::from_slice(&req.body).map_err(|_| bad("invalid request body"))?;
            let model = body["model"].as_str().ok_or_else(|| bad("model is required"))?;
            check(cfg.models.iter().any(|m| m == model), || {
                ollama_error(404, &format!("model \"{model}\" not found, try pulling it first"))
            })?;
            let messages = body["messages"].as_array().ok_or_else(|| bad("messages is required"))?;
            for m in messages {
                ollama_message(m).map_err(|e| bad(&e))?;
            }
            let offered = tool_fakes::ollama_tools(&body).map_err(|e| bad(&e))?;
            let results = tool_fakes::ollama_turns(messages);
            check(body.get("options").is_none_or(Value::is_object), || bad("options must be an object"))?;
            // Ollama streams unless told not to.
            let stream = stream_flag(&body, true).map_err(|m| bad(&m))?;
            let pieces = match cfg.decide(&offered, results) {
                Ok(pieces) => pieces,
                Err(calls) => return Ok(tool_fakes::ollama_calls(model, &cfg.script, &calls, stream)),
            };
            Ok(if stream {
                ResponseTemplate::new(200).set_body_raw(ollama_ndjson_with(model, &pieces, cfg.usage), "application/x-ndjson")
            } else {
                ResponseTemplate::new(200).set_body_json(ollama_answer_with(model, &pieces.concat(), cfg.usage))
            })
        }
        _ => Err(ResponseTemplate::new(404).set_body_string("404 page not found")),
    }
}

fn ollama_message(m: &Value) -> Result<(), String> {
    let role = m["role"].as_str().unwrap_or("");
    if !["system", "user", "assistant", "tool"].contains(&role) {
        return Err("invalid role".into());
    }
    if !m["content"].is_string() {
        return Err("content must be a string".into());
    }
    tool_fakes::ollama_tool_message(m)?;
    match m.get("images") {
        None => Ok(()),
        Some(Value::Array(images)) if images.iter().all(|i| i.as_str().is_some_and(base64_ok)) => {
            Ok(())
        }
        Some(_) => Err("illegal base64 data in images".into()),
    }
}

#[allow(dead_code)] // For tests that script a whole answer with the default counts.
pub fn ollama_answer(model: &str, text: &str) -> Value {
    ollama_answer_with(model, text, DEFAULT_USAGE)
}

pub fn ollama_answer_with(model: &str, text: &str, usage: Tokens) -> Value {
    json!({
        "model": model, "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": text},
        "done_reason": "stop", "done": true, "total_duration": 1, "load_duration": 1,
        "prompt_eval_count": usage.prompt, "prompt_eval_duration": 1,
        "eval_count": usage.completion, "eval_duration": 1
    })
}

pub fn ollama_line(model: &str, text: &str, done: bool) -> String {
    ollama_line_with(model, text, done.then_some(DEFAULT_USAGE))
}

/// A stream line; the last one (`usage` given) is `done` and carries the statistics.
pub fn ollama_line_with(model: &str, text: &str, usage: Option<Tokens>) -> String {
    let mut line = json!({"model": model, "created_at": "2025-01-01T00:00:00Z", "message": {"role": "assistant", "content": text}, "done": usage.is_some()});
    if let Some(usage) = usage {
        line["done_reason"] = json!("stop");
        line["total_duration"] = json!(1);
        line["prompt_eval_count"] = json!(usage.prompt);
        line["eval_count"] = json!(usage.completion);
    }
    format!("{line}\n")
}

#[allow(dead_code)] // For tests that script a whole answer with the default counts.
pub fn ollama_ndjson(model: &str, pieces: &[String]) -> String {
    ollama_ndjson_with(model, pieces, DEFAULT_USAGE)
}

pub fn ollama_ndjson_with(model: &str, pieces: &[String], usage: Tokens) -> String {
    let mut body: String = pieces
        .iter()
        .map(|p| ollama_line_with(model, p, None))
        .collect();
    body += &ollama_line_with(model, "", Some(usage));
    body
}

pub fn strings(pieces: &[&str]) -> Vec<String> {
    pieces.iter().map(|p| (*p).to_owned()).collect()
}

/// Every delta of a stream that must not fail.
pub async fn deltas(stream: llm::ChatStream) -> Vec<String> {
    use futures_util::StreamExt;
    stream
        .filter_map(|event| async move { text(event.unwrap()) })
        .collect()
        .await
}

/// The text of a stream event; `None` for tool calls and usage.
pub fn text(event: llm::StreamEvent) -> Option<String> {
    match event {
        llm::StreamEvent::Text(text) => Some(text),
        _ => None,
    }
}

/// Concatenates a stream, stopping at the first error.
pub async fn collect(stream: llm::ChatStream) -> Result<String, llm::LlmError> {
    use futures_util::TryStreamExt;
    stream
        .try_filter_map(|event| async move { Ok(text(event)) })
        .try_collect::<Vec<String>>()
        .await
        .map(|parts| parts.concat())
}

/// The usage events of a stream that must not fail, with how many text events came after
/// the first of them (none may: usage comes last).
pub async fn usage_events(stream: llm::ChatStream) -> (Vec<llm::Usage>, usize) {
    use futures_util::StreamExt;
    let events: Vec<llm::StreamEvent> = stream.map(|e| e.unwrap()).collect().await;
    let first = events
        .iter()
        .position(|e| matches!(e, llm::StreamEvent::Usage(_)))
        .unwrap_or(events.len());
    let text_after = events[first..]
        .iter()
        .filter(|e| matches!(e, llm::StreamEvent::Text(_)))
        .count();
    let usage = events
        .into_iter()
        .filter_map(|e| match e {
            llm::StreamEvent::Usage(u) => Some(u),
            _ => None,
        })
        .collect();
    (usage, text_after)
}
