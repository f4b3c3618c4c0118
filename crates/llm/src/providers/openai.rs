//! OpenAI Chat Completions, which xAI and OpenAI-compatible servers (vLLM, LM Studio,
//! llama.cpp, Ollama's `/v1`) also speak: `POST /chat/completions`, SSE ending in
//! `data: [DONE]`, `GET /models`. The three differ only in the preset below.

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use crate::{
    ChatRequest, LlmError, ProviderKind,
    provider::{Answer, Auth, Body, Counts, Route, Step, Wire},
    sse::Frame,
    wire::{SamplingNames, decode, endpoint, ids_under_data, role_content_body},
};

pub(crate) struct OpenAiStyle {
    kind: ProviderKind,
    route: Route,
    sampling: SamplingNames,
}

impl OpenAiStyle {
    pub(crate) fn new(kind: ProviderKind, base: &Url, key: Option<SecretString>) -> Self {
        let max_tokens = match kind {
            // OpenAI deprecated `max_tokens` here, and its reasoning models refuse it.
            ProviderKind::OpenAi => "max_completion_tokens",
            // xAI and the compatible servers all take `max_tokens`; not all of them know
            // `max_completion_tokens` yet.
            _ => "max_tokens",
        };
        OpenAiStyle {
            kind,
            route: Route {
                chat: endpoint(base, &["chat", "completions"]),
                models: endpoint(base, &["models"]),
                auth: Auth::Bearer,
                headers: &[],
                key,
            },
            sampling: SamplingNames {
                temperature: "temperature",
                max_tokens,
            },
        }
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
    usage: Option<WireUsage>,
}

/// `usage` of a completion, and of the last chunk of a stream asked for it with
/// `stream_options.include_usage` (`null` in the chunks before).
#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

fn counts(usage: Option<WireUsage>) -> Counts {
    usage.map_or_else(Counts::default, |u| Counts {
        prompt: u.prompt_tokens,
        completion: u.completion_tokens,
    })
}

#[derive(Deserialize)]
struct Choice {
    message: ChoiceMessage,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    error: Option<ChunkError>,
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    delta: Delta,
    finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
struct Delta {
    content: Option<String>,
}

#[derive(Deserialize)]
struct ChunkError {
    message: String,
}

impl Wire for OpenAiStyle {
    fn route(&self) -> &Route {
        &self.route
    }

    fn chat_body(&self, req: &ChatRequest, model: &str, stream: bool) -> Body {
        let body = role_content_body(req, model, stream, self.sampling, None)?;
        if !stream {
            return Ok(body);
        }
        // A stream reports no usage unless asked; then its last chunk (empty `choices`)
        // carries it. The API refuses `stream_options` without `stream: true`.
        let mut body: serde_json::Value = serde_json::from_slice(&body)?;
        body["stream_options"] = serde_json::json!({"include_usage": true});
        serde_json::to_vec(&body)
    }

    fn parse_answer(&self, body: &[u8]) -> Result<Answer, String> {
        let completion: Completion = decode(body)?;
        let usage = counts(completion.usage);
        let choice = completion
            .choices
            .into_iter()
            .next()
            .ok_or("the answer has no choices")?;
        choice
            .message
            .content
            .map(|text| Answer {
                usage,
                ..Answer::text(text)
            })
            .ok_or_else(|| "the answer has no text content".to_owned())
    }

    fn parse_step(&self, frame: &Frame) -> Result<Step, LlmError> {
        if frame.data.trim() == "[DONE]" {
            return Ok(Step::nothing().last());
        }
        let chunk: Chunk = decode(frame.data.as_bytes())
            .map_err(|reason| LlmError::malformed(self.kind, reason))?;
        if let Some(error) = chunk.error {
            return Err(LlmError::Server {
                provider: self.kind,
                status: 500,
                message: error.message,
            });
        }
        let usage = counts(chunk.usage);
        // Only the first choice is asked for (`n` is never set); the final chunk may carry
        // usage alone, with no choices at all.
        let Some(choice) = chunk.choices.into_iter().next() else {
            return Ok(Step {
                usage,
                ..Step::nothing()
            });
        };
        let step = Step {
            usage,
            ..Step::text(choice.delta.content.unwrap_or_default())
        };
        Ok(if choice.finish_reason.is_some() {
            step.complete()
        } else {
            step
        })
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<String>, String> {
        ids_under_data(body)
    }
}
