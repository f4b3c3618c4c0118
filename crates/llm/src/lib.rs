//! Provider-neutral LLM chat for the bot: one [`Llm`] in front of Ollama, Anthropic,
//! OpenAI, Gemini, xAI or any OpenAI-compatible server, with an optional fallback.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use llm::{ChatRequest, Llm, Message, Options, ProviderConfig, ProviderKind};
//!
//! let llm = Llm::new(
//!     reqwest::Client::new(),
//!     ProviderConfig::new(ProviderKind::Ollama),
//!     None,
//!     Options::default(),
//! )?;
//! let answer = llm
//!     .chat(ChatRequest {
//!         system: Some("You are terse.".into()),
//!         messages: vec![Message::user("Hi!")],
//!         ..ChatRequest::default()
//!     })
//!     .await?;
//! println!("{} ({} {})", answer.content, answer.provider, answer.model);
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! In the order a call flows through them:
//!
//! - `config`: provider kinds and their defaults, [`ProviderConfig`], [`Options`].
//! - `types`: [`ChatRequest`] in, [`ChatResponse`] or a [`ChatStream`] out; probe reports.
//! - [`Llm`] (this file): concurrency permit → primary → fallback → thinking removed.
//! - `limiter`: the permits and the queue count.
//! - `provider`: the `Wire` trait each provider implements, and the engine they share
//!   (HTTP, status mapping, 429 retry, stream reading with tool calls joined from their
//!   fragments, model lists).
//! - `providers/`: the wire formats: `ollama`, `openai` (also xAI and compatible
//!   servers), `anthropic`, `gemini`.
//! - `wire`: building blocks those formats share (bodies, sampling names, turns with
//!   their images, tool calls and results, tool arguments).
//! - `sse`: splits streamed bodies into SSE events or NDJSON lines.
//! - `stream`: assembles the public stream (deadline, thinking filter, tool calls and
//!   usage after the text, permit).
//! - `thinking`: removes `<think>…</think>`, whole or chunk by chunk.
//! - `error`: [`LlmError`] and the HTTP status mapping.

mod config;
mod error;
mod h1;
mod limiter;
mod provider;
mod providers;
mod sse;
mod stream;
mod thinking;
mod types;
mod wire;

use std::{pin::Pin, sync::Arc, time::Duration};

use futures_util::Stream;
use tokio::{sync::OwnedSemaphorePermit, time::Instant};

pub use config::{ConfigError, Options, ProviderConfig, ProviderKind, UnknownProvider};
pub use error::{LlmError, TransportError};
pub use thinking::strip_thinking;
pub use types::{
    ChatRequest, ChatResponse, HealthReport, Image, Message, ProbeResult, Role, StreamEvent,
    ToolCall, ToolResult, ToolSpec, Usage,
};

/// What the bot's HTTP calls say they are: its reqwest client and the lean client of chat
/// calls to a plain `http://` provider both send it (the workspace shares one version).
pub const USER_AGENT: &str = concat!("webex-chatbot/", env!("CARGO_PKG_VERSION"));

use limiter::Limiter;
use provider::Provider;
use stream::Opened;

/// One answer as it is written: text deltas in order, then the tool calls and usage
/// (see [`StreamEvent`]). Ends after the last event, or after one error.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

/// A probe is a health check: it must not take as long as a completion may.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The chat client the bot holds: cheap to clone, shared by every task.
#[derive(Clone)]
pub struct Llm {
    inner: Arc<Inner>,
}

struct Inner {
    primary: Provider,
    fallback: Option<Provider>,
    options: Options,
    limiter: Limiter,
}

impl Llm {
    /// Validates both configurations; `http` is shared by every provider.
    pub fn new(
        http: reqwest::Client,
        primary: ProviderConfig,
        fallback: Option<ProviderConfig>,
        options: Options,
    ) -> Result<Llm, ConfigError> {
        let primary = Provider::new(http.clone(), primary)?;
        let fallback = fallback.map(|f| Provider::new(http, f)).transpose()?;
        Ok(Llm {
            inner: Arc::new(Inner {
                primary,
                fallback,
                limiter: Limiter::new(options.max_concurrency),
                options,
            }),
        })
    }

    /// Waits for a concurrency permit (a semaphore of `max_concurrency`: extra calls
    /// queue, never fail), then calls the primary with `timeout` (end to end, the queue
    /// wait not counted); on timeout, 5xx, connection failure or a lasting 429 of the
    /// primary, calls the fallback when configured (with its own model and `timeout`).
    /// A 429 with `Retry-After` up to 10 s (or none given: wait 1 s) is retried once.
    /// Removes `<think>…</think>` blocks unless `show_thinking`. An answer may be tool
    /// calls only ([`ChatResponse::tool_calls`], `content` empty); an answer with neither
    /// text nor tool calls → [`LlmError::Malformed`].
    pub async fn chat(&self, req: ChatRequest) -> Result<ChatResponse, LlmError> {
        let _permit = self.permit().await?;
        let primary = &self.inner.primary;
        let model = primary.model_for(req.model.as_deref());
        match self.answer(primary, &req, model, false).await {
            Err(err) if err.is_failover_worthy() => match &self.inner.fallback {
                Some(fallback) => {
                    tracing::warn!(error = %err, fallback = %fallback.kind(), "primary LLM failed, asking the fallback");
                    self.answer(fallback, &req, fallback.model_for(None), true)
                        .await
                }
                None => Err(err),
            },
            other => other,
        }
    }

    /// Same, streaming: yields text deltas in order (think blocks removed across chunk
    /// boundaries unless `show_thinking`), then once each the tool calls the model asked
    /// for ([`StreamEvent::ToolCalls`]) and the usage. The permit is held until the stream
    /// ends or is dropped. Failover only before the first event; `timeout` bounds the
    /// whole stream.
    pub async fn chat_stream(&self, req: ChatRequest) -> Result<ChatStream, LlmError> {
        let permit = self.permit().await?;
        let primary = &self.inner.primary;
        let model = primary.model_for(req.model.as_deref());
        let opened = match (
            self.open(primary, &req, model, false).await,
            &self.inner.fallback,
        ) {
            (Err(err), Some(fallback)) if err.is_failover_worthy() => {
                tracing::warn!(error = %err, fallback = %fallback.kind(), "primary LLM failed, asking the fallback");
                self.open(fallback, &req, fallback.model_for(None), true)
                    .await?
            }
            (result, _) => result?,
        };
        Ok(stream::chat_stream(
            opened,
            permit,
            self.inner.options.show_thinking,
        ))
    }

    /// Cheap probe of each configured provider via its model-list endpoint (never a
    /// completion, and no concurrency permit): reachable, latency, and whether the
    /// configured model is listed. Waits at most `min(timeout, 10 s)`.
    pub async fn probe(&self) -> HealthReport {
        let limit = self.inner.options.timeout.min(PROBE_TIMEOUT);
        let primary = probe_one(&self.inner.primary, limit);
        let fallback = async {
            match &self.inner.fallback {
                Some(fallback) => Some(probe_one(fallback, limit).await),
                None => None,
            }
        };
        let (primary, fallback) = futures_util::future::join(primary, fallback).await;
        HealthReport { primary, fallback }
    }

    pub fn primary(&self) -> &ProviderConfig {
        self.inner.primary.config()
    }

    pub fn fallback(&self) -> Option<&ProviderConfig> {
        self.inner.fallback.as_ref().map(Provider::config)
    }

    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// Calls holding a permit now.
    pub fn in_flight(&self) -> usize {
        self.inner.limiter.in_flight()
    }

    /// Calls waiting for a permit.
    pub fn queued(&self) -> usize {
        self.inner.limiter.queued()
    }

    async fn permit(&self) -> Result<OwnedSemaphorePermit, LlmError> {
        self.inner.limiter.acquire().await.ok_or_else(|| {
            LlmError::malformed(
                self.inner.primary.kind(),
                "the concurrency limiter is closed",
            )
        })
    }

    /// One provider's whole answer within the timeout, thinking removed.
    async fn answer(
        &self,
        provider: &Provider,
        req: &ChatRequest,
        model: String,
        used_fallback: bool,
    ) -> Result<ChatResponse, LlmError> {
        let kind = provider.kind();
        let timeout = self.inner.options.timeout;
        let started = Instant::now();
        let answer = tokio::time::timeout(timeout, provider.complete(req, &model))
            .await
            .map_err(|_| LlmError::Timeout {
                provider: kind,
                after: timeout,
            })??;
        let content = if self.inner.options.show_thinking {
            answer.text.trim().to_owned()
        } else {
            strip_thinking(&answer.text)
        };
        // Tool calls are an answer too: the model wants their results before it writes.
        if content.is_empty() && answer.tool_calls.is_empty() {
            return Err(LlmError::malformed(kind, "the answer is empty"));
        }
        tracing::debug!(provider = %kind, %model, elapsed_ms = started.elapsed().as_millis() as u64, "LLM answered");
        Ok(ChatResponse {
            content,
            provider: kind,
            usage: answer.usage.usage(kind, &model, used_fallback),
            model,
            used_fallback,
            tool_calls: answer.tool_calls,
        })
    }

    /// Starts one provider's stream and waits for its first piece of text, all within
    /// the timeout, which then keeps running for the rest of the stream.
    async fn open(
        &self,
        provider: &Provider,
        req: &ChatRequest,
        model: String,
        used_fallback: bool,
    ) -> Result<Opened, LlmError> {
        let kind = provider.kind();
        let timeout = self.inner.options.timeout;
        let deadline = Instant::now() + timeout;
        let first = async {
            let mut reader = provider.open(req, &model).await?;
            let first = reader.next_text().await?;
            Ok::<_, LlmError>((reader, first))
        };
        match tokio::time::timeout_at(deadline, first).await {
            Err(_) => Err(LlmError::Timeout {
                provider: kind,
                after: timeout,
            }),
            Ok(Err(err)) => Err(err),
            // Tool calls and no text: the calls follow as the stream's one event.
            Ok(Ok((reader, None))) if reader.has_tool_calls() => Ok(Opened {
                reader,
                first: String::new(),
                provider: kind,
                model,
                used_fallback,
                deadline,
                timeout,
            }),
            Ok(Ok((_, None))) => Err(LlmError::malformed(kind, "the answer is empty")),
            Ok(Ok((reader, Some(first)))) => Ok(Opened {
                reader,
                first,
                provider: kind,
                model,
                used_fallback,
                deadline,
                timeout,
            }),
        }
    }
}

async fn probe_one(provider: &Provider, limit: Duration) -> ProbeResult {
    let started = Instant::now();
    let listed = tokio::time::timeout(limit, provider.list_models()).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let model = provider.config().model().to_owned();
    let (reachable, model_available, error) = match listed {
        Ok(Ok(names)) => (true, Some(provider.lists(&names, &model)), None),
        Ok(Err(reason)) => (false, None, Some(reason)),
        Err(_) => (false, None, Some(format!("no answer within {limit:?}"))),
    };
    ProbeResult {
        provider: provider.kind().as_str(),
        model,
        reachable,
        model_available,
        latency_ms,
        error,
    }
}
