//! Lean fake Webex and Ollama servers (axum). Unlike wiremock they keep no request log:
//! the only state is one slot per benchmark message and one per message the bot created
//! (atomics), so they cost the bot's measurements almost nothing.
//!
//! The fake Webex is as strict as Webex on what the bot sends: the bearer token, JSON
//! bodies with `roomId` and `markdown`/`text` of at most 7439 bytes, edits only of its own
//! messages in their own room and at most 10 per message, deletes only of messages that
//! exist. The fake Ollama answers whole or, when asked to stream (Ollama's default), in
//! NDJSON pieces spread over the delay.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

mod ollama;
mod tracker;
mod webex;

use ollama::*;
pub use tracker::*;
use webex::*;

pub const BOT_ID: &str =
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";
pub const EMAIL_DOMAIN: &str = "bench.example";
/// The bot's token; the fake Webex answers 401 to any other.
pub const TOKEN: &str = "bench-token";
/// The only model the fake Ollama has (the bot's default for Ollama).
const MODEL: &str = "llama3.1:8b";
/// Webex refuses a message text longer than this many UTF-8 bytes.
const MAX_MESSAGE_BYTES: usize = 7439;
/// Webex refuses the 11th edit of a message.
pub const MAX_EDITS: u32 = 10;
/// Every fake LLM answer ends with this: a text is a finished answer only when it ends so,
/// so an unfinished streamed version (a beginning of the answer) never counts as a reply.
pub const ANSWER_END: &str = "[end]";
/// A streamed fake LLM answer comes in this many pieces (fewer if it is shorter).
const PIECES: usize = 10;

/// Serves `router` on a fresh loopback port until the runtime ends; returns its base URL.
pub async fn serve(router: Router) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(url)
}

/// Starts the fake Webex and the fake Ollama; returns their base URLs.
pub async fn start(
    tracker: Arc<Tracker>,
    llm_delay: Duration,
    max_edits: u32,
    file: Option<FileSpec>,
) -> anyhow::Result<(String, String)> {
    let fake = Fake {
        tracker,
        file,
        llm_delay,
        max_edits: max_edits.min(MAX_EDITS),
    };
    let webex = Router::new()
        .route("/people/me", get(people_me))
        .route(
            "/messages/{id}",
            get(get_message).put(edit_message).delete(delete_message),
        )
        .route("/messages", post(post_message))
        .route("/contents/{id}", get(get_content))
        .with_state(fake.clone());
    let ollama = Router::new()
        .route("/api/tags", get(tags))
        .route("/api/chat", post(chat))
        // Images arrive base64 in the request: larger than axum's default 2 MB.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .with_state(fake);
    Ok((serve(webex).await?, serve(ollama).await?))
}

/// A trivial `POST /webhook` → 200, to measure the generator alone.
pub fn trivial() -> Router {
    Router::new().route("/webhook", post(|| async { "ok\n" }))
}

#[cfg(test)]
mod tests;
