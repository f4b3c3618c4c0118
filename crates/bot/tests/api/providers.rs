//! The bot with other providers than Ollama, a fallback, and reasoning models.

use std::sync::Arc;

use serde_json::{Value, json};
use wiremock::matchers::{header, header_exists, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;

/// Fake Anthropic Messages API: refuses what the real one refuses.
struct AnthropicMessages;

impl Respond for AnthropicMessages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let roles_ok = messages
            .iter()
            .enumerate()
            .all(|(i, m)| m["role"] == if i % 2 == 0 { "user" } else { "assistant" });
        if !body["max_tokens"].is_u64()
            || !body["system"].is_string()
            || messages.is_empty()
            || !roles_ok
        {
            return ResponseTemplate::new(400).set_body_json(json!({
                "type": "error", "error": {"type": "invalid_request_error", "message": "bad request"}
            }));
        }
        if body["stream"] == json!(true) {
            // The documented event flow of a streamed answer.
            let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
            let sse = [
                event(
                    "message_start",
                    json!({"type": "message_start", "message": {"id": "msg_01",
                    "type": "message", "role": "assistant", "model": body["model"], "content": [],
                    "stop_reason": null, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
                ),
                event(
                    "content_block_start",
                    json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
                ),
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": "Claude "}}),
                ),
                event(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": 0,
                    "delta": {"type": "text_delta", "text": "says hi"}}),
                ),
                event(
                    "content_block_stop",
                    json!({"type": "content_block_stop", "index": 0}),
                ),
                event(
                    "message_delta",
                    json!({"type": "message_delta",
                    "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}}),
                ),
                event("message_stop", json!({"type": "message_stop"})),
            ]
            .concat();
            return ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream");
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "text", "text": "Claude says hi"}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 3}
        }))
    }
}

/// Fake OpenAI-compatible chat completions answering `text`, plain or streamed (SSE
/// chunks ending in `[DONE]`) as the request's `stream` asks.
struct OpenAiCompletions(&'static str);

impl Respond for OpenAiCompletions {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        if !body["messages"].is_array() || !body["model"].is_string() {
            return ResponseTemplate::new(400).set_body_json(
                json!({"error": {"message": "bad request", "type": "invalid_request_error"}}),
            );
        }
        if body["stream"] == json!(true) {
            let chunk = |delta: Value, finish: Option<&str>| {
                let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
                    "created": 1, "model": body["model"],
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
                format!("data: {chunk}\n\n")
            };
            let sse = chunk(json!({"role": "assistant", "content": ""}), None)
                + &chunk(json!({"content": self.0}), None)
                + &chunk(json!({}), Some("stop"))
                + "data: [DONE]\n\n";
            return ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream");
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.0}, "finish_reason": "stop"}]
        }))
    }
}

#[tokio::test]
async fn anthropic_answers_through_the_bot() {
    let anthropic = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "anthropic-key-SECRET"))
        .and(header_exists("anthropic-version"))
        .respond_with(AnthropicMessages)
        .expect(1)
        .mount(&anthropic)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .and(header("x-api-key", "anthropic-key-SECRET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "data": [{"type": "model", "id": "claude-sonnet-4-5-20250929", "display_name": "Claude Sonnet 4.5"}],
            "has_more": false
        })))
        .mount(&anthropic)
        .await;
    let app = TestApp::spawn(
        Spawn::default()
            .env("LLM_PROVIDER", "anthropic")
            .env("LLM_API_KEY", "anthropic-key-SECRET")
            .env("LLM_BASE_URL", &anthropic.uri()),
    )
    .await;
    app.approve(ALICE).await;
    let message = fixture("message-direct.json");
    app.deliver(&message).await;
    assert_eq!(
        app.wait_handled(message["id"].as_str().unwrap()).await,
        "answered"
    );
    assert_eq!(app.replies().await[0]["markdown"], "Claude says hi");
    let health = app.health().await;
    assert_eq!(health["llm"]["provider"], "anthropic", "{health}");
    assert_eq!(health["llm"]["reachable"], true, "{health}");
    anthropic.verify().await;
}

#[tokio::test]
async fn the_fallback_answers_when_the_primary_fails_and_health_reports_both() {
    let fallback = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(OpenAiCompletions("fallback here"))
        .expect(1)
        .mount(&fallback)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"object": "list", "data": [{"id": "local", "object": "model"}]}),
            ),
        )
        .mount(&fallback)
        .await;
    let app = TestApp::spawn(
        Spawn::default()
            .answer(Arc::new(|_: &Value| {
                ResponseTemplate::new(503).set_body_json(json!({"error": "overloaded"}))
            }))
            .env("LLM_FALLBACK_PROVIDER", "openai-compatible")
            .env("LLM_FALLBACK_BASE_URL", &format!("{}/v1", fallback.uri()))
            .env("LLM_FALLBACK_MODEL", "local"),
    )
    .await;
    app.approve(ALICE).await;
    let message = fixture("message-direct.json");
    app.deliver(&message).await;
    assert_eq!(
        app.wait_handled(message["id"].as_str().unwrap()).await,
        "answered"
    );
    assert_eq!(app.replies().await[0]["markdown"], "fallback here");
    let health = app.health().await;
    assert_eq!(health["llm"]["provider"], "ollama", "{health}");
    assert_eq!(
        health["llm"]["fallback"]["provider"], "openai-compatible",
        "{health}"
    );
    assert_eq!(health["llm"]["fallback"]["reachable"], true, "{health}");
    fallback.verify().await;
}

#[tokio::test]
async fn reasoning_blocks_are_neither_posted_nor_stored() {
    let app = TestApp::spawn(Spawn::default().answer(Arc::new(|_: &Value| {
        ollama_answer("<think>The user wants X. Let me reason.</think>\n\nThe answer is 42.")
    })))
    .await;
    app.approve(ALICE).await;
    let message = fixture("message-direct.json");
    app.deliver(&message).await;
    app.wait_handled(message["id"].as_str().unwrap()).await;
    assert_eq!(app.replies().await[0]["markdown"], "The answer is 42.");
    let conversation = bot::domain::ConversationKey::direct(message["roomId"].as_str().unwrap());
    let history = app.state.store.history(&conversation, 10).await.unwrap();
    assert_eq!(history[1].content, "The answer is 42.");
}

#[tokio::test]
async fn show_thinking_keeps_reasoning_blocks() {
    let app = TestApp::spawn(
        Spawn::default()
            .env("LLM_SHOW_THINKING", "true")
            .answer(Arc::new(|_: &Value| ollama_answer("<think>hmm</think>42"))),
    )
    .await;
    app.approve(ALICE).await;
    let message = fixture("message-direct.json");
    app.deliver(&message).await;
    app.wait_handled(message["id"].as_str().unwrap()).await;
    assert!(
        app.replies().await[0]["markdown"]
            .as_str()
            .unwrap()
            .contains("<think>hmm</think>")
    );
}
