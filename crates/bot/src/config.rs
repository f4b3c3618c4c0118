//! Configuration: the environment (plus `.env`), parsed once at startup into [`Config`].
//!
//! Every problem is a [`ConfigError`] naming the variable, so `main` can exit with status 2
//! before anything is bound or contacted. Secrets are `SecretString` and never printed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::domain::Email;

/// A configuration problem: which variable, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

/// The settings file this process reads: `ENV_FILE` when set, else `.env` in the working
/// directory (never one in a parent folder). `doctor` checks the mode of the same file.
pub fn env_file_path() -> (PathBuf, bool) {
    match std::env::var_os("ENV_FILE").filter(|v| !v.is_empty()) {
        Some(path) => (PathBuf::from(path), true),
        None => (PathBuf::from(".env"), false),
    }
}

/// Loads [`env_file_path`] into the environment; real environment variables win (nothing
/// is overridden). A missing `.env` is fine, a missing `ENV_FILE` is a configuration
/// error naming it. Errors never quote the file's lines (they may hold secrets).
pub fn load_env_file() -> Result<(), ConfigError> {
    let (path, named) = env_file_path();
    let var = if named { "ENV_FILE" } else { ".env" };
    match dotenvy::from_path(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.not_found() && !named => Ok(()),
        Err(dotenvy::Error::LineParse(_, index)) => Err(ConfigError::new(
            var,
            format!(
                "cannot parse {} (at character {index} of a line; expected NAME=value lines)",
                path.display()
            ),
        )),
        Err(dotenvy::Error::Io(e)) => Err(ConfigError::new(
            var,
            format!("cannot read {}: {e}", path.display()),
        )),
        Err(e) => Err(ConfigError::new(
            var,
            format!("cannot load {}: {e}", path.display()),
        )),
    }
}

/// How the bot receives events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Webhook,
    Websocket,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// Everything the bot reads from its environment. `Debug` shows no secret: they are
/// `SecretString`, whose `Debug` prints `[REDACTED]`.
#[derive(Clone, Debug)]
pub struct Config {
    pub webex_token: Option<SecretString>,
    pub webex_bot_id: Option<String>,
    pub webex_api_url: Url,
    /// `WEBEX_TIMEOUT_SECS`: one try of one Webex REST call.
    pub webex_timeout: Duration,
    pub llm: llm::ProviderConfig,
    pub llm_fallback: Option<llm::ProviderConfig>,
    pub llm_timeout: Duration,
    pub llm_max_concurrency: usize,
    pub llm_show_thinking: bool,
    pub admin_emails: Vec<Email>,
    pub approved_domains: Vec<String>,
    pub log_level: tracing::Level,
    pub log_file: Option<PathBuf>,
    pub log_format: LogFormat,
    pub bot_public_url: Option<Url>,
    pub webhook_secret: Option<SecretString>,
    /// `ALLOW_UNSIGNED_WEBHOOKS=true`: `serve` runs in webhook mode without `WEBHOOK_SECRET`
    /// (local experiments only).
    pub allow_unsigned_webhooks: bool,
    pub relay_api_key: Option<SecretString>,
    /// When set, `/metrics` requires `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    pub bind_addr: SocketAddr,
    /// Open connections served at once (plain or TLS); more wait to be accepted.
    pub max_connections: usize,
    pub tls: Option<TlsConfig>,
    pub database_url: String,
    pub database_max_connections: u32,
    pub personalities_dir: PathBuf,
    pub default_personality: String,
    pub memory_max_turns: usize,
    pub memory_max_chars: usize,
    /// `MAX_REPLY_PARTS`: messages one answer may take; a longer one is cut.
    pub max_reply_parts: usize,
    /// `REPLY_STREAMING`, `STREAM_FIRST_POST_MS`, `STREAM_EDIT_MS` (DESIGN §10.2).
    pub streaming: Streaming,
    pub mode: Mode,
    /// `MODE=websocket`: where the device service is looked up (`WEBEX_U2C_URL`), or the
    /// device service itself (`WEBEX_WDM_URL`, which skips the lookup).
    pub webex_u2c_url: Url,
    pub webex_wdm_url: Option<Url>,
    pub shutdown_timeout: Duration,
    /// `WEBHOOK_CHECK_SECS`: how often the webhook leader re-reads the bot's webhooks.
    pub webhook_check: Duration,
    /// `MEMORY_MAX_AGE_DAYS`: conversations untouched this long are deleted; `None` = never.
    pub memory_max_age: Option<Duration>,
    /// Tools over MCP (DESIGN §10.5): `TOOLS_CONFIG` and its limits.
    pub tools: ToolSettings,
    /// `FEEDBACK_BUTTONS`: a 👍/👎 card after each LLM answer (DESIGN §10.3).
    pub feedback_buttons: bool,
    /// `USER_DAILY_TOKENS`, `USER_MESSAGES_PER_MINUTE`, `SPACE_DAILY_TOKENS` (DESIGN §10.6).
    pub limits: Limits,
    /// `LLM_PRICE_…` and `LLM_FALLBACK_PRICE_…`: what a call costs (DESIGN §10.6).
    pub prices: Prices,
    /// Files, images and voice notes (DESIGN §10.4).
    pub files: Files,
}

/// `TOOLS_CONFIG` (the servers file, read at startup), `TOOLS_MAX_ROUNDS`,
/// `TOOLS_CONFIRM_TIMEOUT_SECS`, `TOOLS_LOG_ARGUMENTS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolSettings {
    /// `None`: no tools.
    pub config: Option<PathBuf>,
    /// Rounds of tool calls in one answer; then the model answers without tools.
    pub max_rounds: usize,
    /// How long an approval card waits for a click before the call counts as denied.
    pub confirm_timeout: Duration,
    /// Record the arguments of each call in full (else only their SHA-256).
    pub log_arguments: bool,
}

/// Usage limits; `0` = none. Admins are exempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Tokens (prompt + completion) one person may use per UTC day, in all spaces.
    pub user_daily_tokens: u64,
    /// Messages one person may send to the LLM per minute.
    pub user_messages_per_minute: u64,
    /// Tokens one space may use per UTC day, everyone in it together.
    pub space_daily_tokens: u64,
}

/// Prices per million tokens of the primary provider and of the fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Prices {
    pub primary: Price,
    pub fallback: Price,
}

/// What a million tokens cost, in whatever currency the operator bills in.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// What the bot does with a message's files.
#[derive(Clone, Debug)]
pub struct Files {
    /// `MAX_FILE_BYTES`: a larger file is never read past this.
    pub max_bytes: u64,
    /// `FILE_MAX_CHARS`: a file's text is cut to this many characters.
    pub max_chars: usize,
    /// `LLM_VISION`: the model sees images (a personality's `vision` overrides it).
    pub vision: bool,
    /// `STT_BASE_URL` and friends: voice notes are transcribed when set.
    pub stt: Option<Stt>,
}

/// An OpenAI-compatible transcription service.
#[derive(Clone, Debug)]
pub struct Stt {
    /// `STT_BASE_URL`, usually ending in `/v1`.
    pub base_url: Url,
    /// `STT_MODEL`.
    pub model: String,
    /// `STT_API_KEY`.
    pub api_key: Option<SecretString>,
}

/// How answers are streamed into one edited message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streaming {
    pub enabled: bool,
    /// An answer not complete this long after the LLM call started is posted as it stands.
    pub first_post: Duration,
    /// The least time between two writes of the streamed message.
    pub edit_every: Duration,
}

/// Where configuration values come from; the process environment in production, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment (after `.env` was loaded into it).
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// Reads variables, treating empty values as unset (an `.env` line `FOO=` means "not set").
struct Reader<'a>(&'a dyn Source);

impl Reader<'_> {
    fn opt(&self, var: &str) -> Option<String> {
        self.0
            .get(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn parse<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.opt(var) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| ConfigError::new(var, format!("invalid value {raw:?}: {e}"))),
        }
    }

    fn positive<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Default,
        T::Err: std::fmt::Display,
    {
        let value = self.parse(var, default)?;
        if value <= T::default() {
            return Err(ConfigError::new(var, "must be greater than 0"));
        }
        Ok(value)
    }

    fn secret(&self, var: &str) -> Option<SecretString> {
        self.opt(var).map(SecretString::from)
    }

    fn url(&self, var: &'static str) -> Result<Option<Url>, ConfigError> {
        self.opt(var)
            .map(|raw| parse_http_url(var, &raw))
            .transpose()
    }

    fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.opt(var).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    var,
                    format!("expected true or false, got {v:?}"),
                )),
            },
        }
    }

    fn list(&self, var: &str) -> Vec<String> {
        self.opt(var)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn parse_http_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::new(var, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(var, "must start with http:// or https://"));
    }
    Ok(url)
}

fn parse_level(raw: &str) -> Result<tracing::Level, ConfigError> {
    // "WARNING" is what Python's logging calls it; operators migrating from the plan use it.
    let normalized = match raw.to_ascii_uppercase().as_str() {
        "WARNING" => "WARN".to_owned(),
        "CRITICAL" | "FATAL" => "ERROR".to_owned(),
        other => other.to_owned(),
    };
    tracing::Level::from_str(&normalized).map_err(|_| {
        ConfigError::new(
            "LOG_LEVEL",
            format!("{raw:?} is not one of TRACE, DEBUG, INFO, WARN, ERROR"),
        )
    })
}

fn provider_config(
    r: &Reader<'_>,
    kind_var: &'static str,
    kind_default: Option<&str>,
    model_var: &'static str,
    key_var: &'static str,
    url_var: &'static str,
) -> Result<Option<llm::ProviderConfig>, ConfigError> {
    let Some(raw_kind) = r.opt(kind_var).or(kind_default.map(str::to_owned)) else {
        return Ok(None);
    };
    let kind = llm::ProviderKind::from_str(&raw_kind)
        .map_err(|e| ConfigError::new(kind_var, e.to_string()))?;
    let mut base_url = r.url(url_var)?;
    // OLLAMA_URL is the plan's name for the Ollama server; LLM_BASE_URL still wins.
    if base_url.is_none() && kind == llm::ProviderKind::Ollama {
        base_url = Some(
            r.url("OLLAMA_URL")?
                .unwrap_or_else(|| default_url("http://localhost:11434")),
        );
    }
    let config = llm::ProviderConfig {
        kind,
        base_url,
        api_key: r.secret(key_var),
        model: r.opt(model_var),
    };
    config.validate().map_err(|e| match e {
        llm::ConfigError::MissingApiKey(_) => ConfigError::new(
            key_var,
            format!("required when {kind_var}={}", kind.as_str()),
        ),
        llm::ConfigError::MissingBaseUrl(_) => ConfigError::new(
            url_var,
            format!("required when {kind_var}={}", kind.as_str()),
        ),
        other => ConfigError::new(url_var, other.to_string()),
    })?;
    Ok(Some(config))
}

/// A built-in default; the unit tests parse every one of them.
#[allow(clippy::expect_used)]
fn default_url(literal: &'static str) -> Url {
    Url::parse(literal).expect("built-in default URLs are valid")
}

/// A price per million tokens: a number, 0 or more (default 0).
fn price(r: &Reader<'_>, var: &'static str) -> Result<f64, ConfigError> {
    let value: f64 = r.parse(var, 0.0)?;
    if !value.is_finite() || value < 0.0 {
        return Err(ConfigError::new(
            var,
            format!("must be a price per million tokens, 0 or more, got {value}"),
        ));
    }
    Ok(value)
}

/// `MEMORY_MAX_AGE_DAYS` (default 90, fractions allowed, `0` = never).
fn memory_max_age(r: &Reader<'_>) -> Result<Option<Duration>, ConfigError> {
    const VAR: &str = "MEMORY_MAX_AGE_DAYS";
    let days: f64 = r.parse(VAR, 90.0)?;
    if !days.is_finite() || days < 0.0 {
        return Err(ConfigError::new(
            VAR,
            format!("must be a number of days, 0 or more (0 = never), got {days}"),
        ));
    }
    if days == 0.0 {
        return Ok(None);
    }
    Duration::try_from_secs_f64(days * 86_400.0)
        .map(Some)
        .map_err(|e| ConfigError::new(VAR, format!("too large: {e}")))
}

impl Config {
    /// Parses the whole configuration. Variables that only some subcommands need (the bot
    /// token) are checked by [`Config::require_token`].
    pub fn from_source(source: &dyn Source) -> Result<Config, ConfigError> {
        let r = Reader(source);

        let llm = provider_config(
            &r,
            "LLM_PROVIDER",
            Some("ollama"),
            "LLM_MODEL",
            "LLM_API_KEY",
            "LLM_BASE_URL",
        )?
        .ok_or_else(|| ConfigError::new("LLM_PROVIDER", "missing"))?;
        let llm_fallback = provider_config(
            &r,
            "LLM_FALLBACK_PROVIDER",
            None,
            "LLM_FALLBACK_MODEL",
            "LLM_FALLBACK_API_KEY",
            "LLM_FALLBACK_BASE_URL",
        )?;

        let mut admin_emails = Vec::new();
        for raw in r.list("ADMIN_EMAILS") {
            let email = Email::parse(&raw)
                .map_err(|e| ConfigError::new("ADMIN_EMAILS", format!("{raw:?}: {e}")))?;
            admin_emails.push(email);
        }
        let approved_domains = r
            .list("APPROVED_DOMAINS")
            .into_iter()
            .map(|d| d.trim_start_matches('@').to_ascii_lowercase())
            .collect();

        let log_level = match r.opt("LOG_LEVEL") {
            None => tracing::Level::INFO,
            Some(raw) => parse_level(&raw)?,
        };
        // LOG_FILE set to an empty value means "no file"; unset means the default path.
        let log_file = match source.get("LOG_FILE") {
            None => Some(PathBuf::from("logs/bot_server.log")),
            Some(v) if v.trim().is_empty() => None,
            Some(v) => Some(PathBuf::from(v.trim())),
        };
        let log_format = match r.opt("LOG_FORMAT").map(|v| v.to_ascii_lowercase()) {
            None => LogFormat::Text,
            Some(v) if v == "text" => LogFormat::Text,
            Some(v) if v == "json" => LogFormat::Json,
            Some(v) => {
                return Err(ConfigError::new(
                    "LOG_FORMAT",
                    format!("{v:?} is not one of text, json"),
                ));
            }
        };

        let bot_public_url = r.url("BOT_PUBLIC_URL")?;
        let tls = match (r.opt("TLS_CERT_PATH"), r.opt("TLS_KEY_PATH")) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsConfig {
                cert: cert.into(),
                key: key.into(),
                client_ca: r.opt("TLS_CLIENT_CA_PATH").map(PathBuf::from),
            }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    "TLS_KEY_PATH",
                    "required when TLS_CERT_PATH is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    "TLS_CERT_PATH",
                    "required when TLS_KEY_PATH is set",
                ));
            }
        };
        if tls.is_none() && r.opt("TLS_CLIENT_CA_PATH").is_some() {
            return Err(ConfigError::new(
                "TLS_CLIENT_CA_PATH",
                "needs TLS_CERT_PATH and TLS_KEY_PATH (client certificates need HTTPS)",
            ));
        }

        let database_url = r
            .opt("DATABASE_URL")
            .unwrap_or_else(|| "sqlite://data/bot.db".to_owned());
        if !(database_url.starts_with("sqlite:")
            || database_url.starts_with("postgres://")
            || database_url.starts_with("postgresql://"))
        {
            return Err(ConfigError::new(
                "DATABASE_URL",
                "must start with sqlite:// or postgres://",
            ));
        }

        let mode = match r.opt("MODE").map(|v| v.to_ascii_lowercase()) {
            None => Mode::Webhook,
            Some(v) if v == "webhook" => Mode::Webhook,
            Some(v) if v == "websocket" => Mode::Websocket,
            Some(v) => {
                return Err(ConfigError::new(
                    "MODE",
                    format!("{v:?} is not one of webhook, websocket"),
                ));
            }
        };

        Ok(Config {
            webex_token: r.secret("WEBEX_BOT_TOKEN"),
            webex_bot_id: r.opt("WEBEX_BOT_ID"),
            webex_api_url: r
                .url("WEBEX_API_URL")?
                .unwrap_or_else(|| default_url("https://webexapis.com/v1")),
            webex_timeout: Duration::from_secs(r.positive("WEBEX_TIMEOUT_SECS", 30u64)?),
            llm,
            llm_fallback,
            llm_timeout: Duration::from_secs(r.positive("LLM_TIMEOUT_SECS", 120u64)?),
            llm_max_concurrency: r.positive("LLM_MAX_CONCURRENCY", 4usize)?,
            llm_show_thinking: r.bool("LLM_SHOW_THINKING", false)?,
            admin_emails,
            approved_domains,
            log_level,
            log_file,
            log_format,
            bot_public_url,
            webhook_secret: r.secret("WEBHOOK_SECRET"),
            allow_unsigned_webhooks: r.bool("ALLOW_UNSIGNED_WEBHOOKS", false)?,
            relay_api_key: r.secret("RELAY_API_KEY"),
            metrics_token: r.secret("METRICS_TOKEN"),
            bind_addr: r.parse("BIND_ADDR", SocketAddr::from(([0, 0, 0, 0], 8080)))?,
            max_connections: r.positive("MAX_CONNECTIONS", 1024usize)?,
            tls,
            database_url,
            database_max_connections: r.positive("DATABASE_MAX_CONNECTIONS", 10u32)?,
            personalities_dir: r
                .opt("PERSONALITIES_DIR")
                .unwrap_or_else(|| "personalities".to_owned())
                .into(),
            default_personality: r
                .opt("DEFAULT_PERSONALITY")
                .unwrap_or_else(|| "default".to_owned()),
            memory_max_turns: r.parse("MEMORY_MAX_TURNS", 20usize)?,
            memory_max_chars: r.positive("MEMORY_MAX_CHARS", 24_000usize)?,
            max_reply_parts: r.positive("MAX_REPLY_PARTS", 5usize)?,
            streaming: Streaming {
                enabled: r.bool("REPLY_STREAMING", true)?,
                first_post: Duration::from_millis(r.parse("STREAM_FIRST_POST_MS", 1000u64)?),
                edit_every: Duration::from_millis(r.positive("STREAM_EDIT_MS", 1500u64)?),
            },
            mode,
            webex_u2c_url: r
                .url("WEBEX_U2C_URL")?
                .unwrap_or_else(|| default_url(webex::device::DEFAULT_U2C_URL)),
            webex_wdm_url: r.url("WEBEX_WDM_URL")?,
            shutdown_timeout: Duration::from_secs(r.parse("SHUTDOWN_TIMEOUT_SECS", 30u64)?),
            webhook_check: Duration::from_secs(r.positive("WEBHOOK_CHECK_SECS", 300u64)?),
            memory_max_age: memory_max_age(&r)?,
            files: Files {
                max_bytes: r.positive("MAX_FILE_BYTES", 10_485_760u64)?,
                max_chars: r.positive("FILE_MAX_CHARS", 20_000usize)?,
                vision: r.bool("LLM_VISION", true)?,
                stt: r.url("STT_BASE_URL")?.map(|base_url| Stt {
                    base_url,
                    model: r.opt("STT_MODEL").unwrap_or_else(|| "whisper-1".to_owned()),
                    api_key: r.secret("STT_API_KEY"),
                }),
            },
            tools: ToolSettings {
                config: r.opt("TOOLS_CONFIG").map(PathBuf::from),
                max_rounds: r.positive("TOOLS_MAX_ROUNDS", 5usize)?,
                confirm_timeout: Duration::from_secs(
                    r.positive("TOOLS_CONFIRM_TIMEOUT_SECS", 600u64)?,
                ),
                log_arguments: r.bool("TOOLS_LOG_ARGUMENTS", false)?,
            },
            feedback_buttons: r.bool("FEEDBACK_BUTTONS", false)?,
            limits: Limits {
                user_daily_tokens: r.parse("USER_DAILY_TOKENS", 0u64)?,
                user_messages_per_minute: r.parse("USER_MESSAGES_PER_MINUTE", 0u64)?,
                space_daily_tokens: r.parse("SPACE_DAILY_TOKENS", 0u64)?,
            },
            prices: Prices {
                primary: Price {
                    input_per_mtok: price(&r, "LLM_PRICE_INPUT_PER_MTOK")?,
                    output_per_mtok: price(&r, "LLM_PRICE_OUTPUT_PER_MTOK")?,
                },
                fallback: Price {
                    input_per_mtok: price(&r, "LLM_FALLBACK_PRICE_INPUT_PER_MTOK")?,
                    output_per_mtok: price(&r, "LLM_FALLBACK_PRICE_OUTPUT_PER_MTOK")?,
                },
            },
        })
    }

    /// The bot token, for the subcommands that talk to Webex.
    pub fn require_token(&self) -> Result<&SecretString, ConfigError> {
        self.webex_token.as_ref().ok_or_else(|| {
            ConfigError::new(
                "WEBEX_BOT_TOKEN",
                "missing: set it to the bot's access token from developer.webex.com",
            )
        })
    }

    /// For `serve` and `dev` only (the other subcommands receive no webhooks): in webhook
    /// mode `WEBHOOK_SECRET` is required unless `ALLOW_UNSIGNED_WEBHOOKS=true`. Returns
    /// whether webhooks will be accepted unsigned (then the caller warns loudly).
    pub fn check_webhook_secret(&self) -> Result<bool, ConfigError> {
        if self.mode != Mode::Webhook || self.webhook_secret.is_some() {
            return Ok(false);
        }
        if self.allow_unsigned_webhooks {
            return Ok(true);
        }
        Err(ConfigError::new(
            "WEBHOOK_SECRET",
            "required in webhook mode: set it to a long random string (Webex signs every delivery with it), \
             or use MODE=websocket; ALLOW_UNSIGNED_WEBHOOKS=true accepts unsigned webhooks (local experiments only)",
        ))
    }

    /// Whether this email is one of `ADMIN_EMAILS`.
    pub fn is_admin(&self, email: &Email) -> bool {
        self.admin_emails.contains(email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults_follow_the_contract() {
        let c = Config::from_source(&env(&[])).unwrap();
        assert_eq!(c.llm.kind, llm::ProviderKind::Ollama);
        assert_eq!(
            c.llm.base_url.as_ref().unwrap().as_str(),
            "http://localhost:11434/"
        );
        assert_eq!(c.webex_api_url.as_str(), "https://webexapis.com/v1");
        assert_eq!(c.bind_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(c.database_url, "sqlite://data/bot.db");
        assert_eq!(c.llm_timeout, Duration::from_secs(120));
        assert_eq!(c.llm_max_concurrency, 4);
        assert_eq!(c.memory_max_turns, 20);
        assert_eq!(c.memory_max_chars, 24_000);
        assert_eq!(
            c.log_file.as_deref(),
            Some(std::path::Path::new("logs/bot_server.log"))
        );
        assert_eq!(c.log_level, tracing::Level::INFO);
        assert_eq!(c.mode, Mode::Webhook);
        assert_eq!(c.webex_u2c_url.as_str(), "https://u2c.wbx2.com/u2c/api/v1");
        assert!(c.webex_wdm_url.is_none());
        assert_eq!(c.shutdown_timeout, Duration::from_secs(30));
        assert_eq!(c.webhook_check, Duration::from_secs(300));
        assert_eq!(c.memory_max_age, Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(c.webex_timeout, Duration::from_secs(30));
        assert_eq!(c.max_reply_parts, 5);
        assert!(!c.feedback_buttons);
        assert_eq!(
            c.streaming,
            Streaming {
                enabled: true,
                first_post: Duration::from_millis(1000),
                edit_every: Duration::from_millis(1500),
            }
        );
        assert!(c.require_token().is_err());
        assert_eq!(c.max_connections, 1024);
        assert!(c.metrics_token.is_none());
        assert!(!c.allow_unsigned_webhooks);
        assert_eq!(c.files.max_bytes, 10_485_760);
        assert_eq!(c.files.max_chars, 20_000);
        assert!(c.files.vision);
        assert!(c.files.stt.is_none());
        assert_eq!(
            c.tools,
            ToolSettings {
                config: None,
                max_rounds: 5,
                confirm_timeout: Duration::from_secs(600),
                log_arguments: false,
            }
        );
        assert_eq!(c.limits, Limits::default());
        assert_eq!(c.prices, Prices::default());
    }

    #[test]
    fn limits_and_prices_are_read() {
        let c = Config::from_source(&env(&[
            ("USER_DAILY_TOKENS", "50000"),
            ("USER_MESSAGES_PER_MINUTE", "5"),
            ("SPACE_DAILY_TOKENS", "200000"),
            ("LLM_PRICE_INPUT_PER_MTOK", "3"),
            ("LLM_PRICE_OUTPUT_PER_MTOK", "15.5"),
            ("LLM_FALLBACK_PRICE_INPUT_PER_MTOK", "0.15"),
            ("LLM_FALLBACK_PRICE_OUTPUT_PER_MTOK", "0.6"),
        ]))
        .unwrap();
        assert_eq!(
            c.limits,
            Limits {
                user_daily_tokens: 50_000,
                user_messages_per_minute: 5,
                space_daily_tokens: 200_000,
            }
        );
        assert_eq!(c.prices.primary.input_per_mtok, 3.0);
        assert_eq!(c.prices.primary.output_per_mtok, 15.5);
        assert_eq!(c.prices.fallback.input_per_mtok, 0.15);
        assert_eq!(c.prices.fallback.output_per_mtok, 0.6);
    }

    #[test]
    fn file_settings() {
        let c = Config::from_source(&env(&[
            ("MAX_FILE_BYTES", "1024"),
            ("FILE_MAX_CHARS", "50"),
            ("LLM_VISION", "false"),
            ("STT_BASE_URL", "http://stt:8000/v1"),
            ("STT_API_KEY", "stt-SECRET-6"),
        ]))
        .unwrap();
        assert_eq!((c.files.max_bytes, c.files.max_chars), (1024, 50));
        assert!(!c.files.vision);
        let stt = c.files.stt.as_ref().unwrap();
        assert_eq!(stt.base_url.as_str(), "http://stt:8000/v1");
        assert_eq!(stt.model, "whisper-1");
        assert_eq!(
            stt.api_key.as_ref().unwrap().expose_secret(),
            "stt-SECRET-6"
        );
        assert!(!format!("{c:?}").contains("SECRET"));
        let c = Config::from_source(&env(&[("STT_MODEL", "large-v3")])).unwrap();
        assert!(c.files.stt.is_none(), "STT_MODEL alone turns nothing on");
    }

    #[test]
    fn webhook_mode_needs_a_secret_unless_unsigned_ones_are_allowed() {
        let err = Config::from_source(&env(&[]))
            .unwrap()
            .check_webhook_secret()
            .unwrap_err();
        assert_eq!(err.var, "WEBHOOK_SECRET");
        // An empty value is no secret either.
        let c = Config::from_source(&env(&[("WEBHOOK_SECRET", " ")])).unwrap();
        assert_eq!(c.check_webhook_secret().unwrap_err().var, "WEBHOOK_SECRET");
        let c = Config::from_source(&env(&[("WEBHOOK_SECRET", "s")])).unwrap();
        assert!(!c.check_webhook_secret().unwrap());
        let c = Config::from_source(&env(&[("ALLOW_UNSIGNED_WEBHOOKS", "true")])).unwrap();
        assert!(c.check_webhook_secret().unwrap());
        let c = Config::from_source(&env(&[("MODE", "websocket")])).unwrap();
        assert!(!c.check_webhook_secret().unwrap());
    }

    #[test]
    fn errors_name_the_variable() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("LLM_PROVIDER", "gpt")], "LLM_PROVIDER"),
            (&[("LLM_PROVIDER", "anthropic")], "LLM_API_KEY"),
            (&[("LLM_PROVIDER", "openai-compatible")], "LLM_BASE_URL"),
            (
                &[("LLM_FALLBACK_PROVIDER", "openai")],
                "LLM_FALLBACK_API_KEY",
            ),
            (&[("LLM_TIMEOUT_SECS", "soon")], "LLM_TIMEOUT_SECS"),
            (&[("LLM_MAX_CONCURRENCY", "0")], "LLM_MAX_CONCURRENCY"),
            (&[("LOG_LEVEL", "loud")], "LOG_LEVEL"),
            (&[("LOG_FORMAT", "xml")], "LOG_FORMAT"),
            (&[("TOOLS_MAX_ROUNDS", "0")], "TOOLS_MAX_ROUNDS"),
            (
                &[("TOOLS_CONFIRM_TIMEOUT_SECS", "soon")],
                "TOOLS_CONFIRM_TIMEOUT_SECS",
            ),
            (&[("TOOLS_LOG_ARGUMENTS", "maybe")], "TOOLS_LOG_ARGUMENTS"),
            (&[("BIND_ADDR", "everywhere")], "BIND_ADDR"),
            (&[("BOT_PUBLIC_URL", "bot.example.com")], "BOT_PUBLIC_URL"),
            (&[("OLLAMA_URL", "ftp://x")], "OLLAMA_URL"),
            (&[("ADMIN_EMAILS", "alice")], "ADMIN_EMAILS"),
            (&[("DATABASE_URL", "mysql://x")], "DATABASE_URL"),
            (&[("TLS_CERT_PATH", "a.pem")], "TLS_KEY_PATH"),
            (&[("MODE", "poll")], "MODE"),
            (&[("WEBEX_WDM_URL", "wdm.example.com")], "WEBEX_WDM_URL"),
            (&[("LLM_SHOW_THINKING", "maybe")], "LLM_SHOW_THINKING"),
            (&[("MAX_CONNECTIONS", "0")], "MAX_CONNECTIONS"),
            (&[("MAX_CONNECTIONS", "many")], "MAX_CONNECTIONS"),
            (
                &[("ALLOW_UNSIGNED_WEBHOOKS", "perhaps")],
                "ALLOW_UNSIGNED_WEBHOOKS",
            ),
            (&[("WEBHOOK_CHECK_SECS", "0")], "WEBHOOK_CHECK_SECS"),
            (&[("WEBHOOK_CHECK_SECS", "-5")], "WEBHOOK_CHECK_SECS"),
            (&[("WEBHOOK_CHECK_SECS", "often")], "WEBHOOK_CHECK_SECS"),
            (&[("MEMORY_MAX_AGE_DAYS", "-1")], "MEMORY_MAX_AGE_DAYS"),
            (&[("MEMORY_MAX_AGE_DAYS", "ninety")], "MEMORY_MAX_AGE_DAYS"),
            (&[("MEMORY_MAX_AGE_DAYS", "NaN")], "MEMORY_MAX_AGE_DAYS"),
            (&[("MEMORY_MAX_AGE_DAYS", "inf")], "MEMORY_MAX_AGE_DAYS"),
            (&[("WEBEX_TIMEOUT_SECS", "0")], "WEBEX_TIMEOUT_SECS"),
            (&[("MAX_REPLY_PARTS", "0")], "MAX_REPLY_PARTS"),
            (&[("REPLY_STREAMING", "sometimes")], "REPLY_STREAMING"),
            (&[("FEEDBACK_BUTTONS", "maybe")], "FEEDBACK_BUTTONS"),
            (&[("STREAM_FIRST_POST_MS", "-1")], "STREAM_FIRST_POST_MS"),
            (&[("STREAM_EDIT_MS", "0")], "STREAM_EDIT_MS"),
            (&[("USER_DAILY_TOKENS", "-1")], "USER_DAILY_TOKENS"),
            (&[("USER_DAILY_TOKENS", "lots")], "USER_DAILY_TOKENS"),
            (
                &[("USER_MESSAGES_PER_MINUTE", "2.5")],
                "USER_MESSAGES_PER_MINUTE",
            ),
            (&[("SPACE_DAILY_TOKENS", "1e6")], "SPACE_DAILY_TOKENS"),
            (
                &[("LLM_PRICE_INPUT_PER_MTOK", "-3")],
                "LLM_PRICE_INPUT_PER_MTOK",
            ),
            (
                &[("LLM_PRICE_OUTPUT_PER_MTOK", "$15")],
                "LLM_PRICE_OUTPUT_PER_MTOK",
            ),
            (
                &[("LLM_FALLBACK_PRICE_INPUT_PER_MTOK", "NaN")],
                "LLM_FALLBACK_PRICE_INPUT_PER_MTOK",
            ),
            (
                &[("LLM_FALLBACK_PRICE_OUTPUT_PER_MTOK", "inf")],
                "LLM_FALLBACK_PRICE_OUTPUT_PER_MTOK",
            ),
            (&[("MAX_FILE_BYTES", "0")], "MAX_FILE_BYTES"),
            (&[("MAX_FILE_BYTES", "10MB")], "MAX_FILE_BYTES"),
            (&[("FILE_MAX_CHARS", "0")], "FILE_MAX_CHARS"),
            (&[("LLM_VISION", "maybe")], "LLM_VISION"),
            (&[("STT_BASE_URL", "stt:8000")], "STT_BASE_URL"),
        ];
        for (pairs, var) in cases {
            let err = Config::from_source(&env(pairs)).unwrap_err();
            assert_eq!(err.var, *var, "for {pairs:?}: {err}");
        }
    }

    #[test]
    fn memory_max_age_takes_fractions_and_zero_means_never() {
        let age = |v: &str| {
            Config::from_source(&env(&[("MEMORY_MAX_AGE_DAYS", v)]))
                .unwrap()
                .memory_max_age
        };
        assert_eq!(age("0.5"), Some(Duration::from_secs(43_200)));
        assert_eq!(age("0"), None);
        assert_eq!(age("1"), Some(Duration::from_secs(86_400)));
    }

    #[test]
    fn values_are_read_and_secrets_stay_hidden() {
        let c = Config::from_source(&env(&[
            ("WEBEX_BOT_TOKEN", "tok-SECRET-1"),
            ("WEBHOOK_SECRET", "hook-SECRET-2"),
            ("LLM_PROVIDER", "Anthropic"),
            ("LLM_API_KEY", "key-SECRET-3"),
            ("RELAY_API_KEY", "relay-SECRET-4"),
            ("METRICS_TOKEN", "metrics-SECRET-5"),
            ("ADMIN_EMAILS", " Alice@Example.com, bob@example.com ,"),
            ("APPROVED_DOMAINS", "@Example.org"),
            ("LOG_LEVEL", "debug"),
            ("LOG_FILE", ""),
            ("OLLAMA_URL", "http://gpu:11434"),
        ]))
        .unwrap();
        assert_eq!(c.require_token().unwrap().expose_secret(), "tok-SECRET-1");
        assert_eq!(c.llm.kind, llm::ProviderKind::Anthropic);
        assert!(
            c.llm.base_url.is_none(),
            "OLLAMA_URL only applies to ollama"
        );
        assert!(c.is_admin(&Email::parse("ALICE@example.com").unwrap()));
        assert_eq!(c.approved_domains, vec!["example.org"]);
        assert_eq!(c.log_level, tracing::Level::DEBUG);
        assert!(c.log_file.is_none());
        let debug = format!("{c:?}");
        assert!(!debug.contains("SECRET"), "{debug}");
    }
}
