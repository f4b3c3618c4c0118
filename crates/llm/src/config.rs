//! Which provider to call and how: the kinds, their defaults, one provider's settings and
//! the limits shared by every call.

use std::{fmt, str::FromStr, time::Duration};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// The LLM services this crate speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    Ollama,
    Anthropic,
    OpenAi,
    Gemini,
    Xai,
    /// Any server that speaks OpenAI's Chat Completions (vLLM, LM Studio, llama.cpp, …).
    OpenAiCompatible,
}

const ACCEPTED: &str = "ollama, anthropic, openai, gemini, xai, openai-compatible";

impl ProviderKind {
    /// Every kind, in the order the documentation lists them.
    pub const ALL: [ProviderKind; 6] = [
        ProviderKind::Ollama,
        ProviderKind::Anthropic,
        ProviderKind::OpenAi,
        ProviderKind::Gemini,
        ProviderKind::Xai,
        ProviderKind::OpenAiCompatible,
    ];

    /// The name used in `LLM_PROVIDER`.
    pub fn as_str(&self) -> &'static str {
        match self {
            ProviderKind::Ollama => "ollama",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::OpenAi => "openai",
            ProviderKind::Gemini => "gemini",
            ProviderKind::Xai => "xai",
            ProviderKind::OpenAiCompatible => "openai-compatible",
        }
    }

    /// Cloud services refuse every call without a key; local servers usually need none.
    pub fn requires_api_key(&self) -> bool {
        matches!(
            self,
            ProviderKind::Anthropic
                | ProviderKind::OpenAi
                | ProviderKind::Gemini
                | ProviderKind::Xai
        )
    }

    /// The model used when none is configured.
    ///
    /// `openai-compatible` servers name their models freely, so its default `"default"` is
    /// only a placeholder that servers serving a single model (llama.cpp) accept; set
    /// `LLM_MODEL` for the others.
    pub fn default_model(&self) -> &'static str {
        match self {
            ProviderKind::Ollama => "llama3.1:8b",
            ProviderKind::Anthropic => "claude-sonnet-4-5-20250929",
            ProviderKind::OpenAi => "gpt-4o-mini",
            ProviderKind::Gemini => "gemini-2.5-flash",
            ProviderKind::Xai => "grok-3-mini",
            ProviderKind::OpenAiCompatible => "default",
        }
    }

    /// The official endpoint; `None` for `openai-compatible`, which has no official one.
    pub fn default_base_url(&self) -> Option<&'static str> {
        match self {
            ProviderKind::Ollama => Some("http://localhost:11434"),
            ProviderKind::Anthropic => Some("https://api.anthropic.com"),
            ProviderKind::OpenAi => Some("https://api.openai.com/v1"),
            ProviderKind::Gemini => Some("https://generativelanguage.googleapis.com/v1beta"),
            ProviderKind::Xai => Some("https://api.x.ai/v1"),
            ProviderKind::OpenAiCompatible => None,
        }
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `LLM_PROVIDER` named no known provider.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown LLM provider {given:?}; expected one of: {ACCEPTED}")]
pub struct UnknownProvider {
    given: String,
}

impl FromStr for ProviderKind {
    type Err = UnknownProvider;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        ProviderKind::ALL
            .into_iter()
            .find(|kind| kind.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| UnknownProvider {
                given: wanted.to_owned(),
            })
    }
}

/// A provider configuration that cannot work.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("an API key is required for {0}")]
    MissingApiKey(ProviderKind),
    #[error("a base URL is required for {0}")]
    MissingBaseUrl(ProviderKind),
    /// Added beyond the agreed API: a base URL that cannot carry a path (e.g. `mailto:`).
    #[error("the base URL for {0} must be an http:// or https:// URL")]
    InvalidBaseUrl(ProviderKind),
}

/// One provider's settings; `None` fields fall back to the kind's defaults.
#[derive(Clone)]
pub struct ProviderConfig {
    pub kind: ProviderKind,
    pub base_url: Option<Url>,
    pub api_key: Option<SecretString>,
    pub model: Option<String>,
}

impl ProviderConfig {
    /// A configuration that uses every default of `kind`.
    pub fn new(kind: ProviderKind) -> Self {
        ProviderConfig {
            kind,
            base_url: None,
            api_key: None,
            model: None,
        }
    }

    /// Checks what can be checked without calling the provider.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.kind.requires_api_key() && self.key().is_none() {
            return Err(ConfigError::MissingApiKey(self.kind));
        }
        let base = self
            .resolved_base_url()
            .ok_or(ConfigError::MissingBaseUrl(self.kind))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ConfigError::InvalidBaseUrl(self.kind));
        }
        Ok(())
    }

    /// The configured model, or the kind's default when none (or a blank one) is set.
    pub fn model(&self) -> &str {
        match self.model.as_deref().map(str::trim) {
            Some(model) if !model.is_empty() => model,
            _ => self.kind.default_model(),
        }
    }

    /// The configured base URL, or the kind's official one.
    pub fn resolved_base_url(&self) -> Option<Url> {
        match &self.base_url {
            Some(url) => Some(url.clone()),
            None => self
                .kind
                .default_base_url()
                .and_then(|s| Url::parse(s).ok()),
        }
    }

    /// The API key, unless it is missing or blank.
    pub(crate) fn key(&self) -> Option<&SecretString> {
        self.api_key
            .as_ref()
            .filter(|key| !key.expose_secret().trim().is_empty())
    }
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("kind", &self.kind)
            .field("base_url", &self.base_url.as_ref().map(Url::as_str))
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .finish()
    }
}

/// Limits shared by every call of one [`crate::Llm`].
#[derive(Clone, Debug)]
pub struct Options {
    /// One provider call, end to end (time spent queueing for a permit not counted).
    pub timeout: Duration,
    /// Calls in flight at once; the rest queue. Zero is treated as one.
    pub max_concurrency: usize,
    /// Keep `<think>…</think>` blocks of reasoning models in answers.
    pub show_thinking: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: Duration::from_secs(120),
            max_concurrency: 4,
            show_thinking: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_from_their_names_trimmed_and_case_insensitive() {
        for kind in ProviderKind::ALL {
            assert_eq!(kind.as_str().parse::<ProviderKind>(), Ok(kind));
            let shouted = format!("  {}\n", kind.as_str().to_uppercase());
            assert_eq!(shouted.parse::<ProviderKind>(), Ok(kind));
        }
    }

    #[test]
    fn unknown_kind_names_the_accepted_values() {
        let err = "openai_compatible".parse::<ProviderKind>().err();
        let text = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(text.contains("openai_compatible"), "{text}");
        assert!(text.contains(ACCEPTED), "{text}");
    }

    #[test]
    fn debug_never_shows_the_key() {
        let mut config = ProviderConfig::new(ProviderKind::OpenAi);
        config.api_key = Some(SecretString::from("sk-very-secret"));
        let shown = format!("{config:?}");
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn blank_model_and_key_count_as_missing() {
        let mut config = ProviderConfig::new(ProviderKind::Gemini);
        config.model = Some("  ".into());
        config.api_key = Some(SecretString::from(" "));
        assert_eq!(config.model(), "gemini-2.5-flash");
        assert!(matches!(
            config.validate(),
            Err(ConfigError::MissingApiKey(ProviderKind::Gemini))
        ));
    }

    #[test]
    fn base_url_must_be_http() {
        let mut config = ProviderConfig::new(ProviderKind::Ollama);
        config.base_url = Url::parse("mailto:someone@example.com").ok();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::InvalidBaseUrl(ProviderKind::Ollama))
        ));
        config.base_url = Url::parse("ftp://example.com/").ok();
        assert!(config.validate().is_err());
    }
}
