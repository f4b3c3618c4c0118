//! Anthropic's Messages API: `POST /v1/messages` with `x-api-key` and a pinned
//! `anthropic-version`, SSE events ending in `message_stop`, `GET /v1/models`.

use reqwest::header::HeaderName;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::{
    ChatRequest, LlmError, ProviderKind, Role, ToolCall, ToolSpec,
    provider::{Answer, Auth, Body, CallPiece, Counts, Route, Step, Wire},
    sse::Frame,
    wire::{
        Turn, alternating_turns, arguments_object, base64, decode, endpoint, ids_under_data,
        object_schema, system_prompt,
    },
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
    messages: Vec<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    stream: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
}

/// A turn as a message: a plain `content` string when it is only text, else content
/// blocks in the order the API asks for: `tool_result` blocks first, then images (before
/// the text, as Anthropic recommends), the text, and the assistant's `tool_use` blocks.
fn message(turn: Turn<'_>) -> Value {
    let role = match turn.role {
        Role::User => "user",
        Role::Assistant => "assistant",
    };
    if turn.is_plain() {
        return json!({"role": role, "content": turn.text});
    }
    let results = turn.tool_results.iter().map(|result| {
        let mut block = json!({"type": "tool_result", "tool_use_id": result.call_id, "is_error": result.is_error});
        // `content` is optional, and an empty one says nothing.
        if !result.content.is_empty() {
            block["content"] = json!(result.content);
        }
        block
    });
    let images = turn.images.iter().map(|image| {
        json!({"type": "image", "source": {
            "type": "base64", "media_type": image.media_type, "data": base64(image),
        }})
    });
    // The API refuses empty text blocks.
    let text = (!turn.text.is_empty()).then(|| json!({"type": "text", "text": turn.text}));
    let calls = turn.tool_calls.iter().map(|call| {
        json!({"type": "tool_use", "id": call.id, "name": call.name, "input": arguments_object(call)})
    });
    let blocks: Vec<Value> = results.chain(images).chain(text).chain(calls).collect();
    json!({"role": role, "content": blocks})
}

fn tool(spec: &ToolSpec) -> Value {
    json!({"name": spec.name, "description": spec.description, "input_schema": object_schema(&spec.parameters)})
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
    /// `tool_use` blocks: the call.
    id: Option<String>,
    name: Option<String>,
    input: Option<Value>,
}

impl Block {
    fn into_call(self) -> Result<ToolCall, String> {
        match (self.id, self.name, self.input) {
            (Some(id), Some(name), Some(arguments @ Value::Object(_))) => Ok(ToolCall {
                id,
                name,
                arguments,
            }),
            _ => Err("a tool_use block without id, name or object input".to_owned()),
        }
    }
}

#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type")]
    kind: String,
    /// The content block a `content_block_*` event is about.
    index: Option<u64>,
    /// `content_block_start`: the block, with a `tool_use`'s id and name.
    content_block: Option<StartedBlock>,
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
struct StartedBlock {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct EventDelta {
    #[serde(rename = "type")]
    kind: Option<String>,
    text: Option<String>,
    /// `input_json_delta`: a fragment of a `tool_use`'s input as JSON text.
    partial_json: Option<String>,
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
        let messages = alternating_turns(&req.messages)
            .into_iter()
            .map(message)
            .collect();
        serde_json::to_vec(&MessagesBody {
            model,
            max_tokens: req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            system: system_prompt(req),
            messages,
            temperature: req.temperature,
            stream,
            tools: req.tools.iter().map(tool).collect(),
        })
    }

    fn parse_answer(&self, body: &[u8]) -> Result<Answer, String> {
        let answer: MessageAnswer = decode(body)?;
        let mut texts = Vec::new();
        let mut tool_calls = Vec::new();
        for block in answer.content {
            match block.kind.as_str() {
                "text" => texts.extend(block.text),
                "tool_use" => tool_calls.push(block.into_call()?),
                // thinking, redacted_thinking, and block types added later.
                _ => {}
            }
        }
        if texts.is_empty() && tool_calls.is_empty() {
            return Err("the answer has no text block".to_owned());
        }
        Ok(Answer {
            tool_calls,
            usage: counts(answer.usage),
            ..Answer::text(texts.concat())
        })
    }

    fn parse_step(&self, frame: &Frame) -> Result<Step, LlmError> {
        let event: Event =
            decode(frame.data.as_bytes()).map_err(|reason| LlmError::malformed(KIND, reason))?;
        match event.kind.as_str() {
            "content_block_delta" => {
                let Some(delta) = event.delta else {
                    return Ok(Step::nothing());
                };
                match delta.kind.as_deref() {
                    Some("text_delta") => Ok(Step::text(delta.text.unwrap_or_default())),
                    Some("input_json_delta") => Ok(Step {
                        calls: vec![CallPiece::Fragment {
                            index: event.index,
                            id: None,
                            name: None,
                            arguments: delta.partial_json.unwrap_or_default(),
                        }],
                        ..Step::nothing()
                    }),
                    // thinking_delta, signature_delta, and deltas added later.
                    _ => Ok(Step::nothing()),
                }
            }
            "content_block_start" => match event.content_block {
                // The input comes in the deltas that follow; the start carries `{}`.
                Some(block) if block.kind == "tool_use" => Ok(Step {
                    calls: vec![CallPiece::Fragment {
                        index: event.index,
                        id: block.id,
                        name: block.name,
                        arguments: String::new(),
                    }],
                    ..Step::nothing()
                }),
                _ => Ok(Step::nothing()),
            },
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
            // content_block_stop, ping, and event types added later carry no answer.
            _ => Ok(Step::nothing()),
        }
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<String>, String> {
        ids_under_data(body)
    }
}
