//! Configuration: the environment (plus `.env`), parsed once at startup into [`Config`].
//!
//! Every problem is a [`ConfigError`] naming the variable, so `main` can exit with status 2
//! before anything is bound or contacted. Secrets are `SecretString` and never printed.
//!
//! A file per part: `env` (the `.env` file, the variables' [`Source`], the reader and
//! its parsing helpers), then the sections: `mode` (`MODE`), `providers` (the LLMs and their
//! prices), `access` (admins, approved domains), `store` (database, memory age), `reply`
//! (parts, streaming), `files`, `tools`, `limits`, `server` (logs, TLS). This file
//! assembles them.

mod access;
mod env;
mod files;
mod limits;
mod mode;
mod providers;
mod reply;
mod server;
mod store;
#[cfg(test)]
mod tests;
mod tools;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::domain::Email;
pub use access::Access;
pub use env::{ConfigError, ProcessEnv, Source, env_file_path, load_env_file};
use env::{Reader, default_url};
pub use files::{Files, Stt};
pub use limits::Limits;
pub use mode::Mode;
pub use providers::{Price, Prices};
pub use reply::Streaming;
pub use server::{LogFormat, TlsConfig};
pub use tools::ToolSettings;

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

impl Config {
    /// Parses the whole configuration. Variables that only some subcommands need (the bot
    /// token) are checked by [`Config::require_token`].
    pub fn from_source(source: &dyn Source) -> Result<Config, ConfigError> {
        let r = Reader(source);
        // Read in this order, so that of several problems the same one is reported first.
        let llm = providers::primary(&r)?;
        let llm_fallback = providers::fallback(&r)?;
        let admin_emails = access::admin_emails(&r)?;
        let approved_domains = access::approved_domains(&r);
        let log_level = server::log_level(&r)?;
        let log_file = server::log_file(&r);
        let log_format = server::log_format(&r)?;
        let bot_public_url = r.url("BOT_PUBLIC_URL")?;
        let tls = server::tls(&r)?;
        let database_url = store::database_url(&r)?;
        let mode = mode::mode(&r)?;

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
            max_reply_parts: reply::max_reply_parts(&r)?,
            streaming: Streaming::read(&r)?,
            mode,
            webex_u2c_url: r
                .url("WEBEX_U2C_URL")?
                .unwrap_or_else(|| default_url(webex::device::DEFAULT_U2C_URL)),
            webex_wdm_url: r.url("WEBEX_WDM_URL")?,
            shutdown_timeout: Duration::from_secs(r.parse("SHUTDOWN_TIMEOUT_SECS", 30u64)?),
            webhook_check: Duration::from_secs(r.positive("WEBHOOK_CHECK_SECS", 300u64)?),
            memory_max_age: store::memory_max_age(&r)?,
            files: Files::read(&r)?,
            tools: ToolSettings::read(&r)?,
            feedback_buttons: r.bool("FEEDBACK_BUTTONS", false)?,
            limits: Limits::read(&r)?,
            prices: Prices::read(&r)?,
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

    /// Who may talk to the bot besides the approved users in the store.
    pub fn access(&self) -> Access<'_> {
        Access {
            admin_emails: &self.admin_emails,
            approved_domains: &self.approved_domains,
        }
    }

    /// Whether this email is one of `ADMIN_EMAILS`.
    pub fn is_admin(&self, email: &Email) -> bool {
        self.access().is_admin(email)
    }
}
