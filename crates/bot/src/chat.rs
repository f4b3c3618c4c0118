//! Personality + memory → `ChatRequest` → provider. Shared by Webex conversations and the
//! console (`webex-chatbot chat`).

use crate::domain::{ConversationKey, Email, Role, Turn};
use crate::memory;
use arc_swap::ArcSwap;

use crate::personality::{self, Personalities, Personality, PromptVars};
use crate::store::{Store, StoreError};

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
/// question, the tools offered), the personality's `thinking` text for a streamed answer,
/// and the tools the personality offers (DESIGN §10.5).
pub(crate) struct Prepared {
    pub request: llm::ChatRequest,
    pub thinking: Option<String>,
    pub tools: Vec<crate::tools::Offered>,
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

/// What a Webex conversation's request is made of: the space's personality and history
/// (the store), the personalities, the bot's name, the memory limits and the tools.
#[derive(Clone, Copy)]
pub(crate) struct Prompting<'a> {
    pub store: &'a Store,
    pub personalities: &'a ArcSwap<Personalities>,
    pub bot_name: &'a str,
    /// `MEMORY_MAX_TURNS`, `MEMORY_MAX_CHARS`.
    pub memory_max_turns: usize,
    pub memory_max_chars: usize,
    /// `LLM_VISION`, for personalities that do not say.
    pub vision: bool,
    pub tools: &'a crate::tools::ToolSet,
}

impl Prompting<'_> {
    /// Whether the model of this room's personality sees images: its `vision`, else
    /// `LLM_VISION`.
    pub(crate) async fn vision(&self, room_id: &str) -> Result<bool, StoreError> {
        let chosen = self.store.personality_for(room_id).await?;
        let personalities = self.personalities.load();
        Ok(personalities
            .resolve(chosen.as_deref())
            .vision
            .unwrap_or(self.vision))
    }

    /// Builds the request for a question in a Webex conversation.
    pub(crate) async fn prepare(
        &self,
        room_id: &str,
        conversation: &ConversationKey,
        sender: &Email,
        question: &str,
    ) -> Result<Prepared, StoreError> {
        let keep = memory::messages_to_keep(self.memory_max_turns);
        let (chosen, history) = self.store.chat_context(room_id, conversation, keep).await?;
        let personalities = self.personalities.load();
        let personality = personalities.resolve(chosen.as_deref());
        let date = today();
        // Webex messages carry no display name; the email's local part is a fair stand-in
        // and needs no extra API call per message.
        let user_name = sender.as_str().split('@').next().unwrap_or_default();
        let vars = PromptVars {
            date: &date,
            bot_name: self.bot_name,
            user_name,
        };
        let mut request = build_request(
            personality,
            &vars,
            history,
            question,
            self.memory_max_turns,
            self.memory_max_chars,
        );
        let tools = self.tools.offered(&personality.tools);
        request.tools = tools.iter().map(crate::tools::Offered::spec).collect();
        tracing::debug!(personality = %personality.name, history = request.messages.len() - 1, tools = tools.len(), "asking the LLM");
        Ok(Prepared {
            request,
            thinking: personality.thinking.clone(),
            notice: None,
            tools,
        })
    }
}

/// Asks the LLM on behalf of a Webex conversation, for the whole answer at once, running
/// the tools the model calls in between (`tools::rounds`).
pub(crate) async fn answer(
    runner: std::sync::Arc<crate::tools::Runner>,
    prepared: Prepared,
    asker: crate::tools::Asker,
) -> Result<String, llm::LlmError> {
    let rounds = crate::tools::rounds::Rounds {
        runner,
        asker,
        offered: prepared.tools,
    };
    crate::tools::rounds::answer(rounds, prepared.request).await
}

/// The same, streamed: text as it comes, a restart after each round of tool calls.
pub(crate) fn answer_stream(
    runner: std::sync::Arc<crate::tools::Runner>,
    prepared: Prepared,
    asker: crate::tools::Asker,
) -> crate::tools::rounds::DeltaStream {
    let rounds = crate::tools::rounds::Rounds {
        runner,
        asker,
        offered: prepared.tools,
    };
    crate::tools::rounds::stream(rounds, prepared.request)
}
