//! Domain types the bot reasons with: validated emails, conversation keys, chat roles.

use std::fmt;

/// An email address as Webex reports it, normalised to lowercase so that
/// `Alice@Example.com` and `alice@example.com` are the same person.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailError {
    #[error("not an email address")]
    Invalid,
}

impl Email {
    /// Accepts `local@domain.tld` (one `@`, no spaces, a dot in the domain); the check is
    /// deliberately simple: Webex already validated the address, this catches typos.
    pub fn parse(raw: &str) -> Result<Email, EmailError> {
        let s = raw.trim().to_lowercase();
        let (local, domain) = s.split_once('@').ok_or(EmailError::Invalid)?;
        let valid = !local.is_empty()
            && s.len() <= 254
            && !domain.contains('@')
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && !s
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || "<>(),;:\"[]\\".contains(c));
        if valid {
            Ok(Email(s))
        } else {
            Err(EmailError::Invalid)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map_or("", |(_, d)| d)
    }

    /// Bots (`@webex.bot`, and the legacy `@sparkbot.io`) are ignored to avoid bot-to-bot loops.
    pub fn is_bot(&self) -> bool {
        matches!(self.domain(), "webex.bot" | "sparkbot.io")
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who said a stored turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            _ => None,
        }
    }
}

/// One stored message of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Turn {
    pub role: Role,
    pub content: String,
}

/// The memory key of a conversation: the space for direct spaces, the space plus the
/// thread's root message in group spaces (each thread is its own conversation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConversationKey(String);

impl ConversationKey {
    pub fn direct(room_id: &str) -> Self {
        Self(room_id.to_owned())
    }

    pub fn thread(room_id: &str, root_message_id: &str) -> Self {
        Self(format!("{room_id}/{root_message_id}"))
    }

    /// The console chat's conversation (`webex-chatbot chat`).
    pub fn console(name: &str) -> Self {
        Self(format!("console/{name}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_parsing() {
        let ok = [
            ("alice@example.com", "alice@example.com"),
            ("  Alice@Example.COM ", "alice@example.com"),
            ("a.b+tag@sub.example.co.uk", "a.b+tag@sub.example.co.uk"),
        ];
        for (raw, want) in ok {
            assert_eq!(Email::parse(raw).unwrap().as_str(), want);
        }
        let bad = [
            "",
            "alice",
            "@example.com",
            "alice@",
            "alice@example",
            "a b@example.com",
            "alice@@example.com",
            "alice@.example.com",
            "alice@example.com.",
            "<alice@example.com>",
            "alice@exa..mple.com",
        ];
        for raw in bad {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be rejected");
        }
    }

    #[test]
    fn bot_emails() {
        assert!(Email::parse("helpbot@webex.bot").unwrap().is_bot());
        assert!(Email::parse("old@sparkbot.io").unwrap().is_bot());
        assert!(!Email::parse("alice@webex.com").unwrap().is_bot());
    }
}

/// How the handling of an event ended: kept with the event in the store and counted in
/// `webex_chatbot_events_processed_total{outcome}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The LLM answered and the answer was posted.
    Answered,
    /// A chat command was answered.
    Command,
    /// An empty message got the hint.
    Empty,
    /// Deliberately not answered (see [`IgnoreReason`]).
    Ignored,
    /// The LLM failed: the apology was posted.
    LlmError,
    /// Webex refused for good (not a 429 or 5xx).
    WebexError,
    /// Too many attempts failed.
    GaveUp,
    /// A feedback button's vote was recorded (DESIGN §10.3).
    Feedback,
    /// The bot was added to a group space and posted its greeting.
    Greeted,
    /// A usage limit was reached: the refusal was posted, the LLM not asked.
    Limited,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Command => "command",
            Outcome::Empty => "empty",
            Outcome::Ignored => "ignored",
            Outcome::LlmError => "llm_error",
            Outcome::WebexError => "webex_error",
            Outcome::GaveUp => "gave_up",
            Outcome::Feedback => "feedback",
            Outcome::Greeted => "greeted",
            Outcome::Limited => "limited",
        }
    }
}

/// Why an event is not answered: `webex_chatbot_events_ignored_total{reason}`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// The body is not a webhook object of a known shape.
    Malformed,
    /// A bad or missing signature (`X-Spark-Signature`).
    BadSignature,
    /// A bad or missing relay key (`X-Relay-Key`) when `RELAY_API_KEY` is set.
    BadRelayKey,
    /// Not an event the bot acts on (not `messages`, `attachmentActions` or `memberships`
    /// `created`; someone else's membership; a card action it does not know).
    OtherEvent,
    /// The bot's own message.
    OwnMessage,
    /// Recorded before (a redelivery, another replica, the socket and a catch-up).
    Duplicate,
    /// The message was deleted before it could be read.
    MessageGone,
    /// The sender has no email Webex reports.
    NoSenderEmail,
    /// Another bot (loops).
    BotSender,
    /// A group-space message that does not mention the bot.
    NotMentioned,
    /// Not an admin, not approved.
    Unapproved,
}

impl IgnoreReason {
    pub fn as_str(self) -> &'static str {
        match self {
            IgnoreReason::Malformed => "malformed",
            IgnoreReason::BadSignature => "bad_signature",
            IgnoreReason::BadRelayKey => "bad_relay_key",
            IgnoreReason::OtherEvent => "other_event",
            IgnoreReason::OwnMessage => "own_message",
            IgnoreReason::Duplicate => "duplicate",
            IgnoreReason::MessageGone => "message_gone",
            IgnoreReason::NoSenderEmail => "no_sender_email",
            IgnoreReason::BotSender => "bot_sender",
            IgnoreReason::NotMentioned => "not_mentioned",
            IgnoreReason::Unapproved => "unapproved",
        }
    }
}
