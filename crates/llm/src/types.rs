//! The provider-neutral conversation: what the bot asks, what it gets back, and what a
//! health probe reports.

use serde::Serialize;

use crate::ProviderKind;

/// Who spoke a turn. The system prompt is not a turn: it is [`ChatRequest::system`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

/// One turn of the conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message {
            role: Role::User,
            content: content.into(),
        }
    }

    pub fn assistant(content: impl Into<String>) -> Self {
        Message {
            role: Role::Assistant,
            content: content.into(),
        }
    }
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
}

/// A finished answer and who gave it.
#[derive(Clone, Debug)]
pub struct ChatResponse {
    pub content: String,
    pub provider: ProviderKind,
    pub model: String,
    /// The primary failed and the fallback answered.
    pub used_fallback: bool,
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
