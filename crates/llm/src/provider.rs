//! The trait every provider implements ([`Wire`]: its route and JSON shapes) and the
//! engine they all share: HTTP through the one client (chat calls to a plain `http://`
//! provider through the lean one of [`crate::h1`]), status mapping, the one 429 retry,
//! stream reading and model listing. Nothing here knows any provider's JSON.

use std::{collections::VecDeque, future::Future, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::{
    Client, RequestBuilder, Response, StatusCode,
    header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue},
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::{
    ChatRequest, ConfigError, LlmError, ProviderConfig, ProviderKind, ToolCall, TransportError,
    error::{from_status, provider_message, shorten},
    h1::{self, Lean},
    providers::{Anthropic, Gemini, Ollama, OpenAiStyle},
    sse::{Frame, FrameDecoder, Framing},
    wire::{arguments_from_text, generated_call_id},
};

/// Without a `Retry-After`, a 429 is retried after this long.
const RATE_LIMIT_DEFAULT_WAIT: Duration = Duration::from_secs(1);
/// A 429 asking for a longer wait is not retried: the fallback (if any) is quicker.
const RATE_LIMIT_MAX_WAIT: Duration = Duration::from_secs(10);

/// A provider's wire format: where it lives, how it authenticates, its request body and
/// its answer shapes.
pub(crate) trait Wire: Send + Sync {
    fn route(&self) -> &Route;
    fn chat_url(&self, _model: &str, _stream: bool) -> Url {
        self.route().chat.clone()
    }
    fn chat_body(&self, req: &ChatRequest, model: &str, stream: bool) -> Body;
    /// A whole (non-streamed) answer, or why there is none.
    fn parse_answer(&self, body: &[u8]) -> Result<Answer, String>;
    fn framing(&self) -> Framing {
        Framing::Sse
    }
    /// One frame of a streamed answer.
    fn parse_step(&self, frame: &Frame) -> Result<Step, LlmError>;
    /// The model names in the model-list answer.
    fn parse_models(&self, body: &[u8]) -> Result<Vec<String>, String>;
    /// A refusal of the key that does not use 401/403.
    fn is_key_rejection(&self, _status: reqwest::StatusCode, _body: &[u8]) -> bool {
        false
    }
    /// Whether `model` is among `names` (providers spell names differently).
    fn lists(&self, names: &[String], model: &str) -> bool {
        names.iter().any(|name| name == model)
    }
}

/// An encoded request body.
pub(crate) type Body = serde_json::Result<Vec<u8>>;

/// Where a provider's endpoints are and how it takes its key.
pub(crate) struct Route {
    pub(crate) chat: Url,
    pub(crate) models: Url,
    pub(crate) auth: Auth,
    /// Sent with every call (API versions).
    pub(crate) headers: &'static [(&'static str, &'static str)],
    pub(crate) key: Option<SecretString>,
}

pub(crate) enum Auth {
    /// `Authorization: Bearer KEY`.
    Bearer,
    /// The bare key in a header of its own.
    Header(HeaderName),
}

impl Route {
    fn authorize(&self, request: RequestBuilder) -> RequestBuilder {
        request.headers(self.header_map())
    }

    /// The headers every call sends: API versions and the key.
    fn header_map(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in self.headers {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        let Some(key) = &self.key else {
            return headers;
        };
        let (name, value) = match self.auth {
            Auth::Bearer => (
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", key.expose_secret()),
            ),
            Auth::Header(ref name) => (name.clone(), key.expose_secret().to_owned()),
        };
        match HeaderValue::from_str(&value) {
            Ok(mut value) => {
                // Keeps the key out of any debug output of the request.
                value.set_sensitive(true);
                headers.insert(name, value);
            }
            Err(_) => {
                // The provider then answers 401, which says more than a local error would.
                tracing::warn!(header = %name, "the API key has characters not allowed in a header; sent without it");
            }
        }
        headers
    }
}

/// A whole answer as a provider gave it.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Answer {
    pub(crate) text: String,
    pub(crate) usage: Counts,
    /// The calls the model asked for, in order (then `text` may be empty).
    pub(crate) tool_calls: Vec<ToolCall>,
}

impl Answer {
    pub(crate) fn text(text: impl Into<String>) -> Self {
        Answer {
            text: text.into(),
            ..Answer::default()
        }
    }
}

/// Token counts as a provider reported them; a stream may report them in pieces
/// (Anthropic: prompt tokens first, completion tokens at the end), merged by
/// [`Counts::merge`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) prompt: Option<u64>,
    pub(crate) completion: Option<u64>,
}

impl Counts {
    /// Later reports replace earlier ones, field by field.
    pub(crate) fn merge(&mut self, later: Counts) {
        self.prompt = later.prompt.or(self.prompt);
        self.completion = later.completion.or(self.completion);
    }

    /// The public usage, when the provider reported any count.
    pub(crate) fn usage(
        self,
        provider: ProviderKind,
        model: &str,
        fallback: bool,
    ) -> Option<crate::Usage> {
        (self.prompt.is_some() || self.completion.is_some()).then(|| crate::Usage {
            provider,
            model: model.to_owned(),
            prompt_tokens: self.prompt.unwrap_or(0),
            completion_tokens: self.completion.unwrap_or(0),
            fallback,
        })
    }
}

/// What one stream frame contributed.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Step {
    pub(crate) text: String,
    /// Pieces of tool calls, assembled across frames by the [`StepReader`].
    pub(crate) calls: Vec<CallPiece>,
    /// Token counts this frame reported.
    pub(crate) usage: Counts,
    /// The answer is whole: the body may end from here on.
    pub(crate) complete: bool,
    /// Nothing useful follows: stop reading.
    pub(crate) last: bool,
}

impl Step {
    pub(crate) fn text(text: impl Into<String>) -> Self {
        Step {
            text: text.into(),
            ..Step::default()
        }
    }

    pub(crate) fn nothing() -> Self {
        Step::default()
    }

    pub(crate) fn complete(mut self) -> Self {
        self.complete = true;
        self
    }

    pub(crate) fn last(mut self) -> Self {
        self.complete = true;
        self.last = true;
        self
    }
}

/// A tool call as a stream frame carries it.
#[derive(Debug, PartialEq)]
pub(crate) enum CallPiece {
    /// Part of the call at `index`: OpenAI-style deltas and Anthropic blocks send the id
    /// and name first, then the arguments' JSON text in fragments. Without an index (some
    /// compatible servers), a new id starts a call and anything else continues the last.
    Fragment {
        index: Option<u64>,
        id: Option<String>,
        name: Option<String>,
        arguments: String,
    },
    /// A whole call (Gemini, Ollama).
    Whole(ToolCall),
}

/// The tool calls of one stream, assembled from their pieces in the order they started.
#[derive(Debug, Default)]
struct CallAssembler {
    calls: Vec<PartialCall>,
}

#[derive(Debug)]
struct PartialCall {
    index: Option<u64>,
    id: String,
    name: String,
    arguments: PartialArguments,
}

#[derive(Debug)]
enum PartialArguments {
    Text(String),
    Whole(serde_json::Value),
}

impl CallAssembler {
    fn push(&mut self, piece: CallPiece) {
        let (index, id, name, fragment) = match piece {
            CallPiece::Whole(call) => {
                self.calls.push(PartialCall {
                    index: None,
                    id: call.id,
                    name: call.name,
                    arguments: PartialArguments::Whole(call.arguments),
                });
                return;
            }
            CallPiece::Fragment {
                index,
                id,
                name,
                arguments,
            } => (index, id, name, arguments),
        };
        let existing = match index {
            Some(index) => self.calls.iter().position(|c| c.index == Some(index)),
            None => {
                let last = self.calls.len().checked_sub(1);
                let new_id = id
                    .as_deref()
                    .is_some_and(|id| last.is_some_and(|at| self.calls[at].id != id));
                if new_id { None } else { last }
            }
        };
        let Some(at) = existing else {
            self.calls.push(PartialCall {
                index,
                id: id.unwrap_or_default(),
                name: name.unwrap_or_default(),
                arguments: PartialArguments::Text(fragment),
            });
            return;
        };
        let call = &mut self.calls[at];
        // Ids and names come whole, once; servers that repeat them do not make them longer.
        if let Some(id) = id.filter(|_| call.id.is_empty()) {
            call.id = id;
        }
        if let Some(name) = name.filter(|_| call.name.is_empty()) {
            call.name = name;
        }
        if let PartialArguments::Text(text) = &mut call.arguments {
            text.push_str(&fragment);
        }
    }

    fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The whole calls: arguments parsed, ids made up where the stream gave none.
    fn finish(&mut self) -> Result<Vec<ToolCall>, String> {
        std::mem::take(&mut self.calls)
            .into_iter()
            .map(|call| {
                if call.name.is_empty() {
                    return Err("a streamed tool call without a name".to_owned());
                }
                Ok(ToolCall {
                    id: if call.id.is_empty() {
                        generated_call_id()
                    } else {
                        call.id
                    },
                    name: call.name,
                    arguments: match call.arguments {
                        PartialArguments::Text(text) => arguments_from_text(&text),
                        PartialArguments::Whole(value) => value,
                    },
                })
            })
            .collect()
    }
}

/// One configured provider, ready to call.
pub(crate) struct Provider {
    config: ProviderConfig,
    wire: Arc<dyn Wire>,
    http: Client,
    /// For a provider at a plain `http://` address: each waiting call holds only its
    /// socket (see [`h1`]).
    lean: Option<Arc<Lean>>,
    /// What every chat call sends besides the body's length.
    chat_headers: HeaderMap,
}

impl Provider {
    pub(crate) fn new(http: Client, config: ProviderConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let base = config
            .resolved_base_url()
            .ok_or(ConfigError::MissingBaseUrl(config.kind))?;
        let key = config.key().cloned();
        let wire: Arc<dyn Wire> = match config.kind {
            ProviderKind::Ollama => Arc::new(Ollama::new(&base, key)),
            ProviderKind::Anthropic => Arc::new(Anthropic::new(&base, key)),
            ProviderKind::Gemini => Arc::new(Gemini::new(&base, key)),
            kind @ (ProviderKind::OpenAi | ProviderKind::Xai | ProviderKind::OpenAiCompatible) => {
                Arc::new(OpenAiStyle::new(kind, &base, key))
            }
        };
        let lean = Lean::for_url(
            &wire.route().chat,
            HeaderValue::from_static(crate::USER_AGENT),
        )
        .map(Arc::new);
        let mut chat_headers = wire.route().header_map();
        chat_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(Provider {
            config,
            wire,
            http,
            lean,
            chat_headers,
        })
    }

    pub(crate) fn kind(&self) -> ProviderKind {
        self.config.kind
    }

    pub(crate) fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The model for one call: the request's override, else the configured one.
    pub(crate) fn model_for(&self, requested: Option<&str>) -> String {
        match requested.map(str::trim) {
            Some(model) if !model.is_empty() => model.to_owned(),
            _ => self.config.model().to_owned(),
        }
    }

    /// One whole answer (with the one 429 retry).
    pub(crate) async fn complete(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> Result<Answer, LlmError> {
        let kind = self.kind();
        retry_rate_limit(|| async {
            let response = self.post_chat(req, model, false).await?;
            let body = response
                .bytes()
                .await
                .map_err(|e| LlmError::unreachable(kind, e))?;
            self.wire
                .parse_answer(&body)
                .map_err(|reason| LlmError::malformed(kind, reason))
        })
        .await
    }

    /// Starts a streamed answer (with the one 429 retry); the status is already checked.
    pub(crate) async fn open(
        &self,
        req: &ChatRequest,
        model: &str,
    ) -> Result<StepReader, LlmError> {
        let response = retry_rate_limit(|| self.post_chat(req, model, true)).await?;
        Ok(StepReader::new(
            self.kind(),
            Arc::clone(&self.wire),
            response,
        ))
    }

    /// The provider's model names, or a short reason why they could not be read.
    pub(crate) async fn list_models(&self) -> Result<Vec<String>, String> {
        let route = self.wire.route();
        let request = route.authorize(self.http.get(route.models.clone()));
        let response = request
            .send()
            .await
            .map_err(|e| describe(&e.without_url()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| describe(&e.without_url()))?;
        if !status.is_success() {
            return Err(format!(
                "HTTP {}: {}",
                status.as_u16(),
                provider_message(&body, status)
            ));
        }
        self.wire.parse_models(&body)
    }

    pub(crate) fn lists(&self, names: &[String], model: &str) -> bool {
        self.wire.lists(names, model)
    }

    async fn post_chat(
        &self,
        req: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<Reply, LlmError> {
        let kind = self.kind();
        let body = self
            .wire
            .chat_body(req, model, stream)
            .map_err(|e| LlmError::malformed(kind, format!("could not encode the request: {e}")))?;
        let url = self.wire.chat_url(model, stream);
        let response = match &self.lean {
            Some(lean) => lean
                .post(&url, &self.chat_headers, body)
                .await
                .map(Reply::Lean)
                .map_err(|e| LlmError::unreachable(kind, e))?,
            None => self
                .http
                .post(url)
                .headers(self.chat_headers.clone())
                .body(body)
                .send()
                .await
                .map(Reply::Reqwest)
                .map_err(|e| LlmError::unreachable(kind, e))?,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let headers = response.headers().clone();
        // The error body only adds detail; losing it must not hide the status.
        let body = response.bytes().await.unwrap_or_default();
        if self.wire.is_key_rejection(status, &body) {
            return Err(LlmError::Auth {
                provider: kind,
                status: status.as_u16(),
            });
        }
        Err(from_status(kind, status, &headers, &body, model))
    }
}

/// An answer whose head was read, from either HTTP client.
pub(crate) enum Reply {
    Reqwest(Response),
    Lean(h1::Answer),
}

impl Reply {
    fn status(&self) -> StatusCode {
        match self {
            Reply::Reqwest(response) => response.status(),
            Reply::Lean(answer) => answer.status,
        }
    }

    fn headers(&self) -> &HeaderMap {
        match self {
            Reply::Reqwest(response) => response.headers(),
            Reply::Lean(answer) => &answer.headers,
        }
    }

    async fn bytes(self) -> Result<Bytes, TransportError> {
        match self {
            Reply::Reqwest(response) => Ok(response.bytes().await?),
            Reply::Lean(answer) => Ok(answer.body.bytes().await?),
        }
    }

    fn into_stream(self) -> ByteStream {
        match self {
            Reply::Reqwest(response) => Box::pin(
                response
                    .bytes_stream()
                    .map(|piece| piece.map_err(TransportError::from)),
            ),
            Reply::Lean(answer) => Box::pin(
                answer
                    .body
                    .into_stream()
                    .map(|piece| piece.map_err(TransportError::from)),
            ),
        }
    }
}

/// Calls once more after a 429 that asks for a short enough wait.
async fn retry_rate_limit<T, F, Fut>(mut call: F) -> Result<T, LlmError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, LlmError>>,
{
    match call().await {
        Err(LlmError::RateLimited {
            provider,
            retry_after,
        }) => {
            let wait = retry_after.unwrap_or(RATE_LIMIT_DEFAULT_WAIT);
            if wait > RATE_LIMIT_MAX_WAIT {
                return Err(LlmError::RateLimited {
                    provider,
                    retry_after,
                });
            }
            tracing::info!(%provider, wait_ms = wait.as_millis() as u64, "rate limited, retrying once");
            tokio::time::sleep(wait).await;
            call().await
        }
        other => other,
    }
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, TransportError>> + Send>>;

/// Reads a streamed answer as text pieces.
pub(crate) struct StepReader {
    provider: ProviderKind,
    wire: Arc<dyn Wire>,
    body: ByteStream,
    decoder: FrameDecoder,
    frames: VecDeque<Frame>,
    complete: bool,
    body_ended: bool,
    done: bool,
    usage: Counts,
    calls: CallAssembler,
}

impl StepReader {
    fn new(provider: ProviderKind, wire: Arc<dyn Wire>, response: Reply) -> Self {
        let decoder = FrameDecoder::new(wire.framing());
        StepReader {
            provider,
            wire,
            body: response.into_stream(),
            decoder,
            frames: VecDeque::new(),
            complete: false,
            body_ended: false,
            done: false,
            usage: Counts::default(),
            calls: CallAssembler::default(),
        }
    }

    /// The stream has sent (parts of) tool calls so far.
    pub(crate) fn has_tool_calls(&self) -> bool {
        !self.calls.is_empty()
    }

    /// The tool calls the stream sent, whole; call once it ended. A call whose pieces do
    /// not make one is `Malformed`.
    pub(crate) fn take_tool_calls(&mut self) -> Result<Vec<ToolCall>, LlmError> {
        self.calls
            .finish()
            .map_err(|reason| LlmError::malformed(self.provider, reason))
    }

    /// The token counts the stream has reported so far (all of them once it ended).
    pub(crate) fn usage(&self) -> Counts {
        self.usage
    }

    /// The next non-empty piece of text; `Ok(None)` once the answer is whole. Tool calls
    /// are gathered meanwhile (see [`StepReader::take_tool_calls`]). A body that ends
    /// before the provider's end marker is `Malformed`.
    pub(crate) async fn next_text(&mut self) -> Result<Option<String>, LlmError> {
        loop {
            if self.done {
                return Ok(None);
            }
            if let Some(frame) = self.frames.pop_front() {
                let step = self.wire.parse_step(&frame)?;
                self.complete |= step.complete;
                self.done = step.last;
                self.usage.merge(step.usage);
                for piece in step.calls {
                    self.calls.push(piece);
                }
                if !step.text.is_empty() {
                    return Ok(Some(step.text));
                }
                continue;
            }
            if self.body_ended {
                self.done = true;
                return if self.complete {
                    Ok(None)
                } else {
                    Err(LlmError::malformed(
                        self.provider,
                        "the stream ended before the answer was complete",
                    ))
                };
            }
            match self.body.next().await {
                Some(Ok(bytes)) => self.decoder.push(&bytes, &mut self.frames),
                Some(Err(e)) => {
                    self.done = true;
                    return Err(LlmError::unreachable(self.provider, e));
                }
                None => {
                    self.body_ended = true;
                    self.decoder.finish(&mut self.frames);
                }
            }
        }
    }
}

/// Error text with its causes, for probe results (which have no error chain).
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    shorten(&text, 300)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Chat calls to a plain `http://` provider take the lean client (a waiting call holds
    /// its socket only); HTTPS and URLs with credentials take reqwest.
    #[test]
    fn plain_http_providers_get_the_lean_client() {
        let provider = |url: &str| {
            let config = ProviderConfig {
                base_url: Some(url.parse().unwrap()),
                ..ProviderConfig::new(ProviderKind::OpenAiCompatible)
            };
            Provider::new(Client::new(), config).unwrap()
        };
        assert!(provider("http://127.0.0.1:8000/v1").lean.is_some());
        assert!(provider("http://vllm.lan:8000/v1").lean.is_some());
        assert!(provider("https://llm.example.com/v1").lean.is_none());
        assert!(provider("http://user:secret@llm.lan/v1").lean.is_none());
        // Both clients send the same headers; the lean one adds only host, length, agent.
        let sent = provider("http://127.0.0.1:8000/v1").chat_headers;
        assert_eq!(sent[CONTENT_TYPE], "application/json");
    }

    fn fragment(index: Option<u64>, id: Option<&str>, name: Option<&str>, args: &str) -> CallPiece {
        CallPiece::Fragment {
            index,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: args.to_owned(),
        }
    }

    #[test]
    fn fragments_are_joined_per_index_in_the_order_calls_started() {
        let mut calls = CallAssembler::default();
        calls.push(fragment(Some(3), Some("a"), Some("first"), ""));
        calls.push(fragment(Some(5), Some("b"), Some("second"), "{\"x\""));
        calls.push(fragment(Some(3), None, None, "{\"q\": "));
        calls.push(fragment(Some(5), None, Some("second"), ": 1}"));
        calls.push(fragment(Some(3), None, None, "\"rust\"}"));
        let whole = ToolCall {
            id: "w".into(),
            name: "third".into(),
            arguments: json!({"k": true}),
        };
        calls.push(CallPiece::Whole(whole.clone()));
        assert_eq!(
            calls.finish().unwrap(),
            vec![
                ToolCall {
                    id: "a".into(),
                    name: "first".into(),
                    arguments: json!({"q": "rust"}),
                },
                ToolCall {
                    id: "b".into(),
                    name: "second".into(),
                    arguments: json!({"x": 1}),
                },
                whole,
            ]
        );
        assert!(calls.is_empty());
    }

    #[test]
    fn without_an_index_a_new_id_starts_a_call() {
        let mut calls = CallAssembler::default();
        calls.push(fragment(None, Some("a"), Some("one"), "{}"));
        calls.push(fragment(None, Some("b"), Some("two"), "{\"n\""));
        calls.push(fragment(None, None, None, ":2}"));
        let done = calls.finish().unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(done[1].arguments, json!({"n": 2}));
    }

    #[test]
    fn a_call_without_a_name_is_refused_and_one_without_id_gets_one() {
        let mut calls = CallAssembler::default();
        calls.push(fragment(Some(0), None, None, "{}"));
        assert!(calls.finish().is_err());
        calls.push(fragment(Some(0), None, Some("f"), ""));
        let done = calls.finish().unwrap();
        assert!(done[0].id.starts_with("call_"));
        assert_eq!(done[0].arguments, json!({}));
    }
}
