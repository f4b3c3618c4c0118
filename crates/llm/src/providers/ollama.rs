//! Ollama's native API: `POST /api/chat` answering in NDJSON, `GET /api/tags` for models.

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::{
    ChatRequest, LlmError, ProviderKind,
    provider::{Answer, Auth, Body, Counts, Route, Step, Wire},
    sse::{Frame, Framing},
    wire::{SamplingNames, decode, endpoint, names_under_models, role_content_body},
};

const SAMPLING: SamplingNames = SamplingNames {
    temperature: "temperature",
    max_tokens: "num_predict",
};

pub(crate) struct Ollama {
    route: Route,
}

impl Ollama {
    /// Plain Ollama needs no key; one is sent as a bearer token, for Ollama behind an
    /// authenticating proxy.
    pub(crate) fn new(base: &Url, key: Option<SecretString>) -> Self {
        Ollama {
            route: Route {
                chat: endpoint(base, &["api", "chat"]),
                models: endpoint(base, &["api", "tags"]),
                auth: Auth::Bearer,
                headers: &[],
                key,
            },
        }
    }
}

/// A whole answer and each NDJSON line share this shape.
#[derive(Deserialize)]
struct ChatChunk {
    message: Option<ChunkMessage>,
    #[serde(default)]
    done: bool,
    error: Option<String>,
    /// Token counts, in the whole answer and in the last line of a stream (`done: true`);
    /// `prompt_eval_count` is left out when the whole prompt came from Ollama's cache.
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
}

impl ChatChunk {
    fn counts(&self) -> Counts {
        Counts {
            prompt: self.prompt_eval_count,
            completion: self.eval_count,
        }
    }
}

#[derive(Deserialize)]
struct ChunkMessage {
    #[serde(default)]
    content: String,
}

impl Wire for Ollama {
    fn route(&self) -> &Route {
        &self.route
    }

    fn chat_body(&self, req: &ChatRequest, model: &str, stream: bool) -> Body {
        role_content_body(req, model, stream, SAMPLING, Some("options"))
    }

    fn parse_answer(&self, body: &[u8]) -> Result<Answer, String> {
        let chunk: ChatChunk = decode(body)?;
        if let Some(error) = chunk.error {
            return Err(format!("error in the answer: {error}"));
        }
        let usage = chunk.counts();
        chunk
            .message
            .map(|m| Answer {
                usage,
                ..Answer::text(m.content)
            })
            .ok_or_else(|| "the answer has no message".to_owned())
    }

    fn framing(&self) -> Framing {
        Framing::Ndjson
    }

    fn parse_step(&self, frame: &Frame) -> Result<Step, LlmError> {
        let kind = ProviderKind::Ollama;
        let chunk: ChatChunk =
            decode(frame.data.as_bytes()).map_err(|reason| LlmError::malformed(kind, reason))?;
        if let Some(message) = chunk.error {
            // Ollama reports a failure mid-stream as a line of its own, after the 200.
            return Err(LlmError::Server {
                provider: kind,
                status: 500,
                message,
            });
        }
        let usage = chunk.counts();
        let step = Step {
            usage,
            ..Step::text(chunk.message.map(|m| m.content).unwrap_or_default())
        };
        Ok(if chunk.done { step.last() } else { step })
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<String>, String> {
        names_under_models(body)
    }

    /// Ollama reads a name without a tag as `:latest`.
    fn lists(&self, names: &[String], model: &str) -> bool {
        let tagged = if model.contains(':') {
            model.to_owned()
        } else {
            format!("{model}:latest")
        };
        names.iter().any(|name| *name == tagged || name == model)
    }
}
