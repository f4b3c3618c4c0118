//! Anthropic's Messages API: `POST /v1/messages` with `x-api-key` and a pinned
//! `anthropic-version`, SSE events ending in `message_stop`, `GET /v1/models`.

use reqwest::header::HeaderName;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    ChatRequest, LlmError, ProviderKind,
    provider::{Answer, Auth, Body, Counts, Route, Step, Wire},
    sse::Frame,
    wire::{alternating_turns, decode, endpoint, ids_under_data, system_prompt},
};

const VERSION: &str = "2023-06-01";
// A constant, so a malformed name fails the build rather than a call.
const KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");
/// The API refuses a request without `max_tokens`.
const DEFAULT_MAX_TOKENS: u32 = 1024;
/// The list is paged (20 by default); one large page is enough for a probe.
const MODEL_PAGE: &str = "1000";
const KIND: ProviderKind = ProviderKind::Anthropic;

pub(crate) struct Anthropic {
    route: Route,
}

impl Anthropic {
    pub(crate) fn new(base: &Url, key: Option<SecretString>) -> Self {
        let mut models = endpoint(base, &["v1", "models"]);
        models.query_pairs_mut().append_pair("limit", MODEL_PAGE);
        Anthropic {
            route: Route {
                chat: endpoint(base, &["v1", "messages"]),
                models,
                auth: Auth::Header(KEY_HEADER),
                headers: &[("anthropic-version", VERSION)],
                key,
            },
        }
    }
}

#[derive(Serialize)]
struct MessagesBody<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    messages: Vec<Turn>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    stream: bool,
}

#[derive(Serialize)]
struct Turn {
    role: &'static str,
    content: String,
}

#[derive(Deserialize)]
struct MessageAnswer {
    content: Vec<Block>,
    usage: Option<WireUsage>,
}

/// `usage` of a message (and of `message_start`), and the cumulative `usage` of a
/// `message_delta`. Tokens read from or written to the prompt cache are input tokens too.
#[derive(Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

fn counts(usage: Option<WireUsage>) -> Counts {
    let Some(u) = usage else {
        return Counts::default();
    };
    let inputs = [
        u.input_tokens,
        u.cache_creation_input_tokens,
        u.cache_read_input_tokens,
    ];
    Counts {
        prompt: inputs
            .iter()
            .any(Option::is_some)
            .then(|| inputs.iter().flatten().sum()),
        completion: u.output_tokens,
    }
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    delta: Option<EventDelta>,
    error: Option<EventError>,
    /// `message_start`: the message so far, with the input tokens.
    message: Option<StartedMessage>,
    /// `message_delta`: the output tokens so far.
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct StartedMessage {
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct EventDelta {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
}

#[derive(Deserialize)]
struct EventError {
    #[serde(rename = "type")]
    kind: String,
    message: String,
}

/// An `error` event arrives after the 200, so its type stands in for the status.
fn stream_error(error: EventError) -> LlmError {
    let message = error.message;
    match error.kind.as_str() {
        "authentication_error" => LlmError::Auth {
            provider: KIND,
            status: 401,
        },
        "permission_error" => LlmError::Auth {
            provider: KIND,
            status: 403,
        },
        "rate_limit_error" => LlmError::RateLimited {
            provider: KIND,
            retry_after: None,
        },
        "invalid_request_error" | "not_found_error" | "request_too_large" => LlmError::BadRequest {
            provider: KIND,
            status: 400,
            message,
        },
        "overloaded_error" => LlmError::Server {
            provider: KIND,
            status: 529,
            message,
        },
        _ => LlmError::Server {
            provider: KIND,
            status: 500,
            message,
        },
    }
}

impl Wire for Anthropic {
    fn route(&self) -> &Route {
        &self.route
    }

    fn chat_body(&self, req: &ChatRequest, model: &str, stream: bool) -> Body {
        let messages = alternating_turns(&req.messages, "assistant")
            .into_iter()
            .map(|(role, content)| Turn { role, content })
            .collect();
        serde_json::to_vec(&MessagesBody {
            model,
            max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            system: system_prompt(req),
            messages,
            temperature: req.temperature,
            stream,
        })
    }

    fn parse_answer(&self, body: &[u8]) -> Result<Answer, String> {
        let answer: MessageAnswer = decode(body)?;
        let texts: Vec<String> = answer
            .content
            .into_iter()
            .filter(|block| block.kind == "text")
            .filter_map(|block| block.text)
            .collect();
        if texts.is_empty() {
            return Err("the answer has no text block".to_owned());
        }
        Ok(Answer {
            usage: counts(answer.usage),
            ..Answer::text(texts.concat())
        })
    }

    fn parse_step(&self, frame: &Frame) -> Result<Step, LlmError> {
        let event: Event =
            decode(frame.data.as_bytes()).map_err(|reason| LlmError::malformed(KIND, reason))?;
        match event.kind.as_str() {
            "content_block_delta" => {
                let text = event
                    .delta
                    .filter(|d| d.kind.as_deref() == Some("text_delta"))
                    .and_then(|d| d.text)
                    .unwrap_or_default();
                Ok(Step::text(text))
            }
            "message_start" => Ok(Step {
                usage: counts(event.message.and_then(|m| m.usage)),
                ..Step::nothing()
            }),
            "message_delta" => Ok(Step {
                usage: counts(event.usage),
                ..Step::nothing()
            }),
            "message_stop" => Ok(Step::nothing().last()),
            "error" => Err(match event.error {
                Some(error) => stream_error(error),
                None => LlmError::malformed(KIND, "an error event without details"),
            }),
            // content_block_start/stop, ping, and event types added later carry no answer
            // text.
            _ => Ok(Step::nothing()),
        }
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<String>, String> {
        ids_under_data(body)
    }
}
