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

mod anthropic;
mod gemini;
mod ollama;
mod openai;
mod streams;

pub use anthropic::*;
pub use gemini::*;
pub use ollama::*;
pub use openai::*;
pub use streams::*;

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
