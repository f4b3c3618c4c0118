//! The fake Ollama `/api/chat` (wiremock) and its answerers.

use super::*;

/// The answer the fake LLM gives for a request body.
pub type Answerer = Arc<dyn Fn(&Value) -> ResponseTemplate + Send + Sync>;

/// Fake Ollama `/api/chat`: rejects what Ollama would (no model, bad roles, no messages),
/// answers `{"message": {"role": "assistant", "content": …}, "done": true}`, plain or as a
/// one-line stream. Slow streams with many chunks are in `streaming/slow_llm.rs`.
pub(super) struct OllamaChat(Answerer);

impl Respond for OllamaChat {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "invalid JSON"}));
        };
        let model_ok = body["model"].as_str().is_some_and(|m| !m.is_empty());
        let messages_ok = body["messages"].as_array().is_some_and(|m| {
            !m.is_empty()
                && m.iter().all(|x| {
                    matches!(x["role"].as_str(), Some("system" | "user" | "assistant"))
                        && x["content"].is_string()
                        && ollama_images_ok(&x["images"])
                })
        });
        // `stream` must be said (Ollama streams when it is left out). A streamed answer is
        // NDJSON lines; the one-line answer below is also a valid stream (content and
        // `done: true` on one line), so each answerer serves both forms.
        if !model_ok || !messages_ok || !body["stream"].is_boolean() {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "bad request"}));
        }
        (self.0)(&body)
    }
}

/// Ollama's `images`: absent, or a list of base64 strings (no data-URL prefix) that decode.
pub(super) fn ollama_images_ok(images: &Value) -> bool {
    use base64::Engine as _;
    match images {
        Value::Null => true,
        Value::Array(list) => list.iter().all(|i| {
            i.as_str().is_some_and(|s| {
                !s.is_empty() && base64::engine::general_purpose::STANDARD.decode(s).is_ok()
            })
        }),
        _ => false,
    }
}

pub fn ollama_answer(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "model": "llama3.1:8b",
        "created_at": "2026-11-27T10:00:00Z",
        "message": {"role": "assistant", "content": content},
        "done": true,
        "done_reason": "stop"
    }))
}

/// The content of the last message of an LLM request (the question, in these tests).
pub fn last_message(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// Echoes the last user message, so tests can see what the LLM was asked.
pub fn echo_answerer() -> Answerer {
    Arc::new(|body: &Value| ollama_answer(&format!("Echo: {}", last_message(body))))
}

pub async fn mount_ollama(llm: &MockServer, answerer: Answerer) {
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(OllamaChat(answerer))
        .mount(llm)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/tags"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"models": [{"name": "llama3.1:8b", "model": "llama3.1:8b"}]}),
            ),
        )
        .mount(llm)
        .await;
}
