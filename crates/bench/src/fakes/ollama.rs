//! The fake Ollama: `/api/tags` and `/api/chat`, whole or streamed as NDJSON pieces spread
//! over the delay.

use super::*;

pub(super) async fn tags() -> Response {
    json_response(&json!({"models": [{"name": MODEL, "model": MODEL}]}))
}

/// One LLM call in flight, for the peak; ends when dropped (also when the bot hangs up
/// mid-stream).
pub(super) struct InFlight(Arc<Tracker>);

impl InFlight {
    pub(super) fn enter(tracker: &Arc<Tracker>) -> InFlight {
        let n = tracker.llm_in_flight.fetch_add(1, Ordering::Relaxed) + 1;
        tracker.llm_peak.fetch_max(n, Ordering::Relaxed);
        InFlight(tracker.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.llm_in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) fn ollama_error(status: StatusCode, error: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        json!({ "error": error }).to_string(),
    )
        .into_response()
}

/// `text` cut into at most `n` pieces of (nearly) equal length in characters.
pub(super) fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = n.clamp(1, chars.len().max(1));
    (0..n)
        .map(|i| {
            chars[i * chars.len() / n..(i + 1) * chars.len() / n]
                .iter()
                .collect()
        })
        .filter(|piece: &String| !piece.is_empty())
        .collect()
}

/// One NDJSON line of an Ollama `/api/chat` stream.
pub(super) fn ndjson_line(content: &str, done: bool) -> Bytes {
    let mut line = json!({
        "model": MODEL, "created_at": "2026-11-27T10:00:00Z",
        "message": {"role": "assistant", "content": content}, "done": done
    });
    if done {
        line["done_reason"] = json!("stop");
        line["eval_count"] = json!(PIECES);
    }
    Bytes::from(format!("{line}\n"))
}

/// `POST /api/chat`: echoes the last message (ending with [`ANSWER_END`]) after the
/// configured delay; streamed like Ollama (NDJSON, `stream` defaults to true) in
/// [`PIECES`] pieces spread over the delay, or whole with `"stream": false`.
pub(super) async fn chat(State(fake): State<Fake>, body: Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return ollama_error(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    match v["model"].as_str() {
        Some(MODEL) => {}
        Some(other) => {
            return ollama_error(
                StatusCode::NOT_FOUND,
                &format!("model \"{other}\" not found, try pulling it first"),
            );
        }
        None => return ollama_error(StatusCode::BAD_REQUEST, "model is required"),
    }
    let Some(messages) = v["messages"].as_array() else {
        return ollama_error(StatusCode::BAD_REQUEST, "messages must be a list");
    };
    let last = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let answer = format!("Echo: {last} {ANSWER_END}");
    let stream = match &v["stream"] {
        Value::Null => true,
        Value::Bool(b) => *b,
        _ => return ollama_error(StatusCode::BAD_REQUEST, "stream must be a boolean"),
    };
    let in_flight = InFlight::enter(&fake.tracker);
    if !stream {
        if !fake.llm_delay.is_zero() {
            tokio::time::sleep(fake.llm_delay).await;
        }
        drop(in_flight);
        return json_response(&json!({
            "model": MODEL, "created_at": "2026-11-27T10:00:00Z",
            "message": {"role": "assistant", "content": answer},
            "done": true, "done_reason": "stop"
        }));
    }
    let pieces = pieces(&answer, PIECES);
    let count = u32::try_from(pieces.len()).unwrap_or(u32::MAX).max(1);
    let step = fake.llm_delay / count;
    let begin = tokio::time::Instant::now();
    // Piece k (from 0) at (k + 1) × delay / pieces; then the closing line.
    let lines = futures_util::stream::unfold(
        (0u32, pieces.into_iter(), Some(in_flight)),
        move |(k, mut pieces, in_flight)| async move {
            let in_flight = in_flight?;
            let line = match pieces.next() {
                Some(piece) => {
                    // No timer without a delay (a timer costs up to a millisecond a piece).
                    if !step.is_zero() {
                        tokio::time::sleep_until(begin + step * (k + 1)).await;
                    }
                    (ndjson_line(&piece, false), Some(in_flight))
                }
                None => {
                    drop(in_flight);
                    (ndjson_line("", true), None)
                }
            };
            Some((Ok::<_, Infallible>(line.0), (k + 1, pieces, line.1)))
        },
    );
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(lines),
    )
        .into_response()
}
