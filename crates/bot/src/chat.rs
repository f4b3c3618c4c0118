//! Personality + memory → `ChatRequest` → provider. Shared by Webex conversations and the
//! console (`webex-chatbot chat`).

use std::time::Instant;

use crate::domain::{ConversationKey, Email, Role, Turn};
use crate::memory;
use crate::personality::{self, Personality, PromptVars};
use crate::state::AppState;
use crate::store::StoreError;

/// Today's date for the `{date}` prompt variable (UTC, `YYYY-MM-DD`).
pub fn today() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}",
        now.year(),
        u8::from(now.month()),
        now.day()
    )
}

/// The request for one question: system prompt from the personality, the trimmed history,
/// the question last, and the personality's model settings.
pub fn build_request(
    personality: &Personality,
    vars: &PromptVars<'_>,
    history: Vec<Turn>,
    question: &str,
    max_turns: usize,
    max_chars: usize,
) -> llm::ChatRequest {
    let history = memory::fit(history, max_turns, max_chars, question.chars().count());
    let mut messages: Vec<llm::Message> = history
        .into_iter()
        .map(|t| {
            let role = match t.role {
                Role::User => llm::Role::User,
                Role::Assistant => llm::Role::Assistant,
            };
            llm::Message::new(role, t.content)
        })
        .collect();
    messages.push(llm::Message::user(question));
    llm::ChatRequest {
        system: Some(personality::render(&personality.system_prompt, vars)),
        messages,
        model: personality.model.clone(),
        temperature: personality.temperature,
        max_tokens: personality.max_tokens,
        tools: Vec::new(),
    }
}

/// What a Webex conversation asks the LLM: the request (personality, trimmed history,
/// question) and the personality's `thinking` text for a streamed answer.
pub(crate) struct Prepared {
    pub request: llm::ChatRequest,
    pub thinking: Option<String>,
    /// Lines shown before the answer (notes about a message's files).
    pub notice: Option<String>,
}

impl Prepared {
    /// The question's images go with its (last) user message; `notice` goes before the
    /// answer.
    pub fn with_files(mut self, images: Vec<llm::Image>, notice: Option<String>) -> Self {
        if let Some(question) = self.request.messages.last_mut() {
            question.images = images;
        }
        self.notice = notice;
        self
    }
}

/// Whether the model of this room's personality sees images: its `vision`, else
/// `LLM_VISION`.
pub(crate) async fn vision(state: &AppState, room_id: &str) -> Result<bool, StoreError> {
    let chosen = state.store.personality_for(room_id).await?;
    let personalities = state.personalities.load();
    Ok(personalities
        .resolve(chosen.as_deref())
        .vision
        .unwrap_or(state.config.files.vision))
}

/// Builds the request for a question in a Webex conversation.
pub(crate) async fn prepare(
    state: &AppState,
    room_id: &str,
    conversation: &ConversationKey,
    sender: &Email,
    question: &str,
) -> Result<Prepared, StoreError> {
    let keep = memory::messages_to_keep(state.config.memory_max_turns);
    let (chosen, history) = state
        .store
        .chat_context(room_id, conversation, keep)
        .await?;
    let personalities = state.personalities.load();
    let personality = personalities.resolve(chosen.as_deref());
    let date = today();
    // Webex messages carry no display name; the email's local part is a fair stand-in
    // and needs no extra API call per message.
    let user_name = sender.as_str().split('@').next().unwrap_or_default();
    let vars = PromptVars {
        date: &date,
        bot_name: &state.bot.display_name,
        user_name,
    };
    let request = build_request(
        personality,
        &vars,
        history,
        question,
        state.config.memory_max_turns,
        state.config.memory_max_chars,
    );
    tracing::debug!(personality = %personality.name, history = request.messages.len() - 1, "asking the LLM");
    Ok(Prepared {
        request,
        thinking: personality.thinking.clone(),
        notice: None,
    })
}

/// Asks the LLM on behalf of a Webex conversation, for the whole answer at once, and
/// records the call's tokens against `who`.
pub(crate) async fn answer(
    state: &AppState,
    who: crate::usage::Who<'_>,
    request: llm::ChatRequest,
) -> Result<String, llm::LlmError> {
    let started = Instant::now();
    let result = state.llm.chat(request).await;
    state
        .metrics
        .llm_latency
        .observe(started.elapsed().as_secs_f64());
    let response = result?;
    tracing::info!(
        provider = response.provider.as_str(),
        model = %response.model,
        fallback = response.used_fallback,
        latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "LLM answered"
    );
    if let Some(usage) = &response.usage {
        state.usage.record(who, usage).await;
    }
    Ok(response.content)
}
