//! The provider-neutral conversation: what the bot asks, what it gets back, and what a
//! health probe reports.

use serde::Serialize;

use crate::ProviderKind;

/// Who spoke a turn. The system prompt is not a turn: it is [`ChatRequest::system`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Role {
    #[default]
    User,
    Assistant,
}

/// One turn of the conversation.
///
/// A user turn may carry images (sent in each provider's own image format) and the
/// results of the tools the model asked for in the assistant turn before it; an
/// assistant turn may carry the tool calls the model made. Each provider maps these to
/// its own shapes (OpenAI `tool` messages, Anthropic `tool_result` blocks, Gemini
/// `functionResponse` parts, Ollama `tool` messages).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
    pub images: Vec<Image>,
    pub tool_calls: Vec<ToolCall>,
    pub tool_results: Vec<ToolResult>,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            ..Message::default()
        }
    }

    pub fn user(content: impl Into<String>) -> Self {
        Message::new(Role::User, content)
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Message::new(Role::Assistant, content)
    }

    /// The assistant turn of an answer that asked for tool calls, with the text it wrote
    /// before them (often empty).
    pub fn assistant_calls(content: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        Message {
            tool_calls,
            ..Message::assistant(content)
        }
    }

    /// The user turn that answers the tool calls of the assistant turn before it.
    pub fn tool_results(tool_results: Vec<ToolResult>) -> Self {
        Message {
            tool_results,
            ..Message::user("")
        }
    }
}

impl ToolResult {
    /// What `call` returned.
    pub fn ok(call: &ToolCall, content: impl Into<String>) -> Self {
        ToolResult {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content: content.into(),
            is_error: false,
        }
    }

    /// Why `call` failed, timed out or was denied.
    pub fn error(call: &ToolCall, content: impl Into<String>) -> Self {
        ToolResult {
            is_error: true,
            ..ToolResult::ok(call, content)
        }
    }
}

/// An image the user sent, as raw bytes; providers encode it (base64) themselves.
#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    /// `image/png`, `image/jpeg`, `image/gif` or `image/webp`.
    pub media_type: String,
    pub data: bytes::Bytes,
}

/// A tool the model may call: its name, what it does and a JSON Schema (an object
/// schema) of its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A call the model asked for. `id` is the provider's call id (providers without one
/// get a generated id) and is echoed in the matching [`ToolResult`].
#[derive(Clone, Debug, PartialEq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// The arguments as a JSON object. When a model wrote arguments that are not a JSON
    /// object (OpenAI-style APIs pass them as a string the model wrote), they are kept as
    /// that string, so the tool runner can answer with an error result and the model can
    /// try again.
    pub arguments: serde_json::Value,
}

/// What a tool call returned, sent back in the next user turn.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolResult {
    pub call_id: String,
    /// The tool's name (Gemini and Ollama match results by name).
    pub name: String,
    pub content: String,
    /// The call failed, timed out or was denied: `content` says why.
    pub is_error: bool,
}

/// Tokens one LLM call used, from the provider's own usage fields, and who counted them
/// (the fallback's calls count against the fallback).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Usage {
    pub provider: ProviderKind,
    pub model: String,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The fallback answered (its prices apply, not the primary's).
    pub fallback: bool,
}

/// One item of a streamed answer, in order: text deltas, then (at most once each, after
/// the text) the tool calls the model asked for and the call's usage.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamEvent {
    Text(String),
    ToolCalls(Vec<ToolCall>),
    Usage(Usage),
}

/// A chat completion request, oldest turn first.
#[derive(Clone, Debug, Default)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub messages: Vec<Message>,
    /// Overrides the primary provider's model for this call (a personality's model).
    /// The fallback always uses its own configured model.
    pub model: Option<String>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    /// Tools the model may call; empty = none offered.
    pub tools: Vec<ToolSpec>,
}

/// A finished answer and who gave it.
#[derive(Clone, Debug)]
pub struct ChatResponse {
    pub content: String,
    pub provider: ProviderKind,
    pub model: String,
    /// The primary failed and the fallback answered.
    pub used_fallback: bool,
    /// Tool calls the model asked for (then `content` may be empty).
    pub tool_calls: Vec<ToolCall>,
    /// The provider's token counts, when it reported them.
    pub usage: Option<Usage>,
}

/// What [`crate::Llm::probe`] found for each configured provider.
#[derive(Clone, Debug, Serialize)]
pub struct HealthReport {
    pub primary: ProbeResult,
    pub fallback: Option<ProbeResult>,
}

impl HealthReport {
    /// Every configured provider answered its model list.
    pub fn all_reachable(&self) -> bool {
        self.primary.reachable && self.fallback.as_ref().is_none_or(|f| f.reachable)
    }
}

/// One provider's probe through its model-list endpoint.
#[derive(Clone, Debug, Serialize)]
pub struct ProbeResult {
    pub provider: &'static str,
    pub model: String,
    /// The model list was fetched and read: the provider is up and accepts the key.
    pub reachable: bool,
    /// Whether the configured model is in that list; `None` when the list was not read.
    pub model_available: Option<bool>,
    pub latency_ms: u64,
    /// Why the probe failed; short and free of secrets.
    pub error: Option<String>,
}
