//! Test harness: the real app on port 0 against a fake Webex and a fake Ollama, each
//! checking requests the way the real service documents them.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bot::config::Config;
use bot::{App, AppState, BuildOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wiremock::matchers::{header, method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub use crate::eventually::{eventually, eventually_some};
pub use crate::harness::{Bot, BotProcess};

mod app;
mod contents;
mod fake_ollama;
mod fake_webex;
mod messages;
mod replicas;
mod webhooks;

pub use app::*;
pub use contents::*;
pub use fake_ollama::*;
pub use fake_webex::*;
pub use messages::*;
pub use replicas::*;
pub use webhooks::*;

pub const TOKEN: &str = "test-token-SECRET-7f3a";
pub const WEBHOOK_SECRET: &str = "hook-secret-SECRET-91bc";
pub const ADMIN: &str = "admin@example.com";
pub const ALICE: &str = "alice@example.com";
/// The bot's id in the fixtures (decodes to ciscospark://us/PEOPLE/249f74d9-…).
pub const BOT_ID: &str =
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";
pub const BOT_UUID: &str = "249f74d9-db8a-43ca-896b-879ed240ac53";

/// The Webex fixture `name` from `crates/webex/tests/fixtures` (the repository's one copy,
/// shared with the Webex client's tests), read and parsed once.
pub fn fixture(name: &str) -> Value {
    static LOADED: OnceLock<Mutex<HashMap<String, Value>>> = OnceLock::new();
    let mut loaded = LOADED.get_or_init(Mutex::default).lock().unwrap();
    loaded
        .entry(name.to_owned())
        .or_insert_with(|| {
            let path = format!(
                "{}/../webex/tests/fixtures/{name}",
                env!("CARGO_MANIFEST_DIR")
            );
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
        })
        .clone()
}

fn init_logs() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        tls::install_crypto_provider();
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter("debug,sqlx=warn,hyper=warn")
                .with_test_writer()
                .try_init();
        }
    });
}

/// Serves `app` on a free loopback port for the rest of the test; its base URL.
pub async fn serve_axum(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let uri = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    uri
}

/// Writes straight to the process's stderr: libtest captures `eprintln!` of passing tests,
/// and what this says (a skipped PostgreSQL test, a random test's seed) must be visible in
/// `cargo test`'s output.
pub fn say(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{message}");
}

/// Says that a test was skipped, and why.
pub fn say_skipped(message: &str) {
    say(message);
}

/// The LLM providers the fakes speak, with their API path prefixes (`/v1` for OpenAI,
/// `/v1beta` for Gemini).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LlmKind {
    Ollama,
    OpenAi,
    Anthropic,
    Gemini,
}

impl LlmKind {
    pub const ALL: [LlmKind; 4] = [
        LlmKind::Ollama,
        LlmKind::OpenAi,
        LlmKind::Anthropic,
        LlmKind::Gemini,
    ];

    pub fn provider(self) -> &'static str {
        match self {
            LlmKind::Ollama => "ollama",
            LlmKind::OpenAi => "openai",
            LlmKind::Anthropic => "anthropic",
            LlmKind::Gemini => "gemini",
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            LlmKind::Ollama | LlmKind::Anthropic => "",
            LlmKind::OpenAi => "/v1",
            LlmKind::Gemini => "/v1beta",
        }
    }
}
