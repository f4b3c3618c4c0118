//! Ollama's native API: `POST /api/chat` answering in NDJSON, `GET /api/tags` for models.

use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::{
    ChatRequest, LlmError, ProviderKind, ToolCall,
    provider::{Answer, Auth, Body, CallPiece, Counts, Route, Step, Wire},
    sse::{Frame, Framing},
    wire::{
        SamplingNames, arguments_object, base64, decode, endpoint, generated_call_id,
        names_under_models, result_text, role_content_body, role_name, system_message,
    },
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
    #[serde(default)]
    tool_calls: Vec<WireCall>,
}

/// `{function: {name, arguments: {…}}}`, whole even when streamed. Newer versions add an
/// `id`; older ones give none, so one is made up.
#[derive(Deserialize)]
struct WireCall {
    id: Option<String>,
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

impl WireCall {
    fn into_call(self) -> ToolCall {
        ToolCall {
            id: self.id.unwrap_or_else(generated_call_id),
            name: self.function.name,
            arguments: self.function.arguments.unwrap_or_else(|| json!({})),
        }
    }
}

impl ChunkMessage {
    fn into_answer(self) -> Answer {
        Answer {
            tool_calls: self
                .tool_calls
                .into_iter()
                .map(WireCall::into_call)
                .collect(),
            ..Answer::text(self.content)
        }
    }
}

/// The system prompt, then each turn, its images (if any) as base64 in `images` and its
/// tool calls in `tool_calls`. Tool results become `tool` messages named by their tool,
/// ahead of the rest of their turn.
fn messages(req: &ChatRequest) -> Vec<Value> {
    let mut out: Vec<Value> = system_message(req).into_iter().collect();
    for message in &req.messages {
        out.extend(message.tool_results.iter().map(|result| {
            json!({"role": "tool", "content": result_text(result), "tool_name": result.name})
        }));
        let plain = message.images.is_empty() && message.tool_calls.is_empty();
        if !message.tool_results.is_empty() && plain && message.content.is_empty() {
            continue;
        }
        let mut turn = json!({"role": role_name(message.role), "content": message.content});
        if !message.images.is_empty() {
            turn["images"] = message.images.iter().map(base64).collect();
        }
        if !message.tool_calls.is_empty() {
            turn["tool_calls"] = message
                .tool_calls
                .iter()
                .map(|call| {
                    json!({"function": {"name": call.name, "arguments": arguments_object(call)}})
                })
                .collect();
        }
        out.push(turn);
    }
    out
}

impl Wire for Ollama {
    fn route(&self) -> &Route {
        &self.route
    }

    fn chat_body(&self, req: &ChatRequest, model: &str, stream: bool) -> Body {
        role_content_body(req, model, stream, messages(req), SAMPLING, Some("options"))
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
                ..m.into_answer()
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
        let step = match chunk.message {
            // Calls come whole, in one line.
            Some(message) => {
                let answer = message.into_answer();
                Step {
                    calls: answer
                        .tool_calls
                        .into_iter()
                        .map(CallPiece::Whole)
                        .collect(),
                    usage,
                    ..Step::text(answer.text)
                }
            }
            None => Step {
                usage,
                ..Step::nothing()
            },
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
