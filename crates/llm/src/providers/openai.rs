//! OpenAI Chat Completions, which xAI and OpenAI-compatible servers (vLLM, LM Studio,
//! llama.cpp, Ollama's `/v1`) also speak: `POST /chat/completions`, SSE ending in
//! `data: [DONE]`, `GET /models`. The three differ only in the preset below.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::{
    ChatRequest, LlmError, ProviderKind, ToolCall,
    provider::{Answer, Auth, Body, CallPiece, Counts, Route, Step, Wire},
    sse::Frame,
    wire::{
        SamplingNames, arguments_from_text, arguments_text, base64, decode, endpoint,
        ids_under_data, result_text, role_content_body, role_name, system_message,
    },
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
    #[serde(default)]
    tool_calls: Vec<WireCall>,
}

/// `{id, type: "function", function: {name, arguments: "<JSON text>"}}`.
#[derive(Deserialize)]
struct WireCall {
    id: String,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    /// JSON text; some compatible servers send the object itself.
    #[serde(default)]
    arguments: Value,
}

impl WireCall {
    fn into_call(self) -> ToolCall {
        let arguments = match self.function.arguments {
            Value::String(text) => arguments_from_text(&text),
            Value::Null => json!({}),
            other => other,
        };
        ToolCall {
            id: self.id,
            name: self.function.name,
            arguments,
        }
    }
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
    /// `null` from some compatible servers.
    tool_calls: Option<Vec<DeltaCall>>,
}

/// `{index, id?, type?, function: {name?, arguments?}}`: the first fragment of a call has
/// its id and name, the next ones pieces of its arguments.
#[derive(Deserialize)]
struct DeltaCall {
    index: Option<u64>,
    id: Option<String>,
    function: Option<DeltaFunction>,
}

#[derive(Deserialize)]
struct DeltaFunction {
    name: Option<String>,
    arguments: Option<String>,
}

impl DeltaCall {
    fn into_piece(self) -> CallPiece {
        let (name, arguments) = self
            .function
            .map(|f| (f.name, f.arguments.unwrap_or_default()))
            .unwrap_or_default();
        CallPiece::Fragment {
            index: self.index,
            id: self.id.filter(|id| !id.is_empty()),
            name: name.filter(|name| !name.is_empty()),
            arguments,
        }
    }
}

#[derive(Deserialize)]
struct ChunkError {
    message: String,
}

/// The system prompt, then each turn: a plain `content` string, or a content array of the
/// text and `image_url` data URLs when the turn has images. Tool results become `tool`
/// messages ahead of the rest of their turn, right after the assistant message whose
/// `tool_calls` they answer.
fn messages(req: &ChatRequest) -> Vec<Value> {
    let mut out: Vec<Value> = system_message(req).into_iter().collect();
    for message in &req.messages {
        let role = role_name(message.role);
        out.extend(message.tool_results.iter().map(|result| {
            json!({"role": "tool", "tool_call_id": result.call_id, "content": result_text(result)})
        }));
        if !message.tool_calls.is_empty() {
            let calls: Vec<Value> = message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({"id": call.id, "type": "function", "function": {
                        "name": call.name, "arguments": arguments_text(call),
                    }})
                })
                .collect();
            // `content` may be null when the message has tool calls, as the API answers it.
            let content = (!message.content.is_empty()).then_some(&message.content);
            out.push(json!({"role": role, "content": content, "tool_calls": calls}));
        } else if !message.images.is_empty() {
            let text = json!({"type": "text", "text": message.content});
            let images = message.images.iter().map(|image| {
                let url = format!("data:{};base64,{}", image.media_type, base64(image));
                json!({"type": "image_url", "image_url": {"url": url}})
            });
            let content: Vec<Value> = std::iter::once(text).chain(images).collect();
            out.push(json!({"role": role, "content": content}));
        } else if message.tool_results.is_empty() || !message.content.is_empty() {
            out.push(json!({"role": role, "content": message.content}));
        }
    }
    out
}

impl Wire for OpenAiStyle {
    fn route(&self) -> &Route {
        &self.route
    }

    fn chat_body(&self, req: &ChatRequest, model: &str, stream: bool) -> Body {
        let body = role_content_body(req, model, stream, messages(req), self.sampling, None)?;
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
        let message = choice.message;
        if message.content.is_none() && message.tool_calls.is_empty() {
            return Err("the answer has no text content".to_owned());
        }
        Ok(Answer {
            tool_calls: message
                .tool_calls
                .into_iter()
                .map(WireCall::into_call)
                .collect(),
            usage,
            ..Answer::text(message.content.unwrap_or_default())
        })
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
        let delta = choice.delta;
        let step = Step {
            calls: delta
                .tool_calls
                .unwrap_or_default()
                .into_iter()
                .map(DeltaCall::into_piece)
                .collect(),
            usage,
            ..Step::text(delta.content.unwrap_or_default())
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
