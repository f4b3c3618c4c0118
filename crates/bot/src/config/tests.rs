//! The configuration's unit tests: defaults, each section, errors naming the variable.

use std::collections::HashMap;
use std::time::Duration;

use super::*;
use crate::domain::Email;
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
