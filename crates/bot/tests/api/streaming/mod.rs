//! Answers streamed into one edited message (DESIGN §10.2), against a fake LLM that
//! streams slowly in each provider's documented format and the strict fake Webex (10
//! edits per message, no edits of cards or files).

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde_json::{Value, json};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

mod answers;
mod crashes;
mod edit_limits;
mod slow_llm;

pub use slow_llm::*;

const KEY: &str = "llm-key-SECRET-5a1";
const MARKER: &str = " …";
const EDIT_MS: u64 = 400;
// ---- checks ---------------------------------------------------------------------------

fn stream_env(spawn: Spawn) -> Spawn {
    spawn
        .env("REPLY_STREAMING", "true")
        .env("STREAM_FIRST_POST_MS", "300")
        .env("STREAM_EDIT_MS", &EDIT_MS.to_string())
}

/// The writes of the first message the bot posted, in order.
fn writes_of_first_message(writes: &[Write]) -> Vec<Write> {
    let Some(first) = writes.first() else {
        return Vec::new();
    };
    writes
        .iter()
        .filter(|w| w.message_id == first.message_id)
        .cloned()
        .collect()
}

/// DESIGN §10.2 for one streamed message: at most 10 edits, each at least `STREAM_EDIT_MS`
/// after the previous write, every version before the last a beginning of `answer` (plus a
/// marker) or the thinking text, and the last one `last` (the answer, or its first part).
fn assert_streamed(message: &[Write], answer: &str, last: &str, thinking: &str) {
    assert!(message.len() >= 2, "posted and edited: {message:?}");
    assert_eq!(message[0].method, "POST");
    let edits = message.iter().filter(|w| w.method == "PUT").count();
    assert!(edits <= 10, "{edits} edits");
    for pair in message.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(EDIT_MS),
            "writes {gap:?} apart: {:?} then {:?}",
            pair[0].text,
            pair[1].text
        );
    }
    assert_eq!(message.last().unwrap().text, last);
    for w in &message[..message.len() - 1] {
        if w.text == thinking {
            continue;
        }
        let beginning = w.text.strip_suffix(MARKER).unwrap_or(&w.text);
        assert!(
            w.text.len() - beginning.len() <= 40,
            "marker too long: {:?}",
            w.text
        );
        assert!(
            answer.starts_with(beginning),
            "{:?} is not a beginning of the answer",
            w.text
        );
    }
}

fn long_answer(words: usize) -> String {
    (0..words)
        .map(|i| format!("word{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

async fn streaming_app(llm: &SlowLlm, spawn: Spawn) -> TestApp {
    let app = TestApp::spawn(llm.env(stream_env(spawn))).await;
    app.approve(ALICE).await;
    app
}
