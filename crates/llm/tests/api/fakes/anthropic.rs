//! The Anthropic fake (`/v1/messages`): its refusals, messages and SSE events.

use super::*;

pub fn anthropic_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_json(json!({"type": "error", "error": {"type": kind, "message": message}}))
}

pub(super) fn anthropic(cfg: &Cfg, req: &Request) -> Answer {
    let bad = |m: &str| anthropic_error(400, "invalid_request_error", m);
    check(header(req, "x-api-key") == Some(KEY), || {
        anthropic_error(401, "authentication_error", "invalid x-api-key")
    })?;
    check(
        header(req, "anthropic-version") == Some("2023-06-01"),
        || bad("anthropic-version: header is required"),
    )?;
    match (req.method.as_str(), req.url.path()) {
        ("GET", "/v1/models") => Ok(ResponseTemplate::new(200).set_body_json(json!({
            "data": cfg.models.iter().map(|m| json!({"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"})).collect::<Vec<_>>(),
            "has_more": false, "first_id": cfg.models.first(), "last_id": cfg.models.last(),
        }))),
        ("POST", "/v1/messages") => {
            let body = json_body(req, bad)?;
            if let Some(unknown) = field_in(&body, "body", &["model", "max_tokens", "system", "messages", "temperature", "stream", "top_p", "top_k", "stop_sequences", "metadata", "tools", "tool_choice"]) {
                return Err(bad(&unknown));
            }
            let model = body["model"].as_str().ok_or_else(|| bad("model: Field required"))?;
            check(body["max_tokens"].as_u64().is_some_and(|n| n >= 1), || bad("max_tokens: Field required"))?;
            check(body.get("system").is_none_or(|s| s.is_string() || s.is_array()), || bad("system: Input should be a valid string"))?;
            let messages = body["messages"].as_array().filter(|m| !m.is_empty()).ok_or_else(|| bad("messages: Field required"))?;
            let mut previous = "";
            for (i, m) in messages.iter().enumerate() {
                let role = m["role"].as_str().unwrap_or("");
                check(role == "user" || role == "assistant", || {
                    bad(&format!("messages.{i}.role: Input should be 'user' or 'assistant'"))
                })?;
                check(i > 0 || role == "user", || bad("messages: first message must use the \"user\" role"))?;
                check(role != previous, || {
                    bad(&format!("messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"{role}\" roles in a row"))
                })?;
                anthropic_content(role, &m["content"]).map_err(|e| bad(&format!("messages.{i}.content: {e}")))?;
                previous = role;
            }
            let offered = tool_fakes::anthropic_tools(&body).map_err(|e| bad(&e))?;
            let results = tool_fakes::anthropic_turns(messages).map_err(|e| bad(&e))?;
            check(temperature_ok(&body, 1.0), || bad("temperature: range: 0..1"))?;
            check(cfg.models.iter().any(|m| m == model), || anthropic_error(404, "not_found_error", &format!("model: {model}")))?;
            let stream = stream_flag(&body, false).map_err(|m| bad(&m))?;
            let pieces = match cfg.decide(&offered, results) {
                Ok(pieces) => pieces,
                Err(calls) => return Ok(tool_fakes::anthropic_calls(model, &cfg.script, &calls, stream)),
            };
            Ok(if stream {
                ResponseTemplate::new(200).set_body_raw(anthropic_sse_with(model, &pieces, cfg.usage), "text/event-stream")
            } else {
                ResponseTemplate::new(200).set_body_json(anthropic_message_with(model, &[("text", &pieces.concat())], cfg.usage))
            })
        }
        _ => Err(anthropic_error(404, "not_found_error", "Not found")),
    }
}

/// The content of one message: a string, or content blocks the API knows.
pub(super) fn anthropic_content(role: &str, content: &Value) -> Result<(), String> {
    match content {
        Value::String(_) => Ok(()),
        Value::Array(blocks) if !blocks.is_empty() => blocks
            .iter()
            .try_for_each(|block| anthropic_block(role, block)),
        Value::Array(_) => Err("messages: all messages must have non-empty content".into()),
        _ => Err("Input should be a valid string or a valid list".into()),
    }
}

pub(super) fn anthropic_block(role: &str, block: &Value) -> Result<(), String> {
    match block["type"].as_str() {
        Some("text") => match block["text"].as_str() {
            Some(text) if !text.is_empty() => Ok(()),
            _ => Err("text content blocks must be non-empty".into()),
        },
        Some("image") => {
            if role != "user" {
                return Err("image blocks are only allowed in user messages".into());
            }
            let source = &block["source"];
            if source["type"] != "base64" {
                return Err("source.type: Input should be 'base64', 'url' or 'file'".into());
            }
            let media_type = source["media_type"].as_str().unwrap_or("");
            if !IMAGE_TYPES.contains(&media_type) {
                return Err("source.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'".into());
            }
            if !source["data"].as_str().is_some_and(base64_ok) {
                return Err("source.data: invalid base64 data".into());
            }
            Ok(())
        }
        Some("tool_use" | "tool_result") => tool_fakes::anthropic_tool_block(role, block),
        Some(other) => Err(format!(
            "Input tag '{other}' found using 'type' does not match any of the expected tags"
        )),
        None => Err("type: Field required".into()),
    }
}

/// A message with the given `(type, text)` content blocks.
pub fn anthropic_message(model: &str, blocks: &[(&str, &str)]) -> Value {
    anthropic_message_with(model, blocks, DEFAULT_USAGE)
}

pub fn anthropic_message_with(model: &str, blocks: &[(&str, &str)], usage: Tokens) -> Value {
    let content: Vec<Value> = blocks
        .iter()
        .map(|(kind, text)| match *kind {
            "thinking" => json!({"type": "thinking", "thinking": text, "signature": "sig"}),
            _ => json!({"type": kind, "text": text}),
        })
        .collect();
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": usage.prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": usage.completion}
    })
}

pub fn anthropic_event(name: &str, data: Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// The documented event flow, with a ping in the middle as the API sends.
#[allow(dead_code)] // For tests that script a whole answer with the default counts.
pub fn anthropic_sse(model: &str, pieces: &[String]) -> String {
    anthropic_sse_with(model, pieces, DEFAULT_USAGE)
}

/// The input tokens come in `message_start` (with an early output count of 1), the
/// cumulative output tokens in `message_delta`, as the API sends them.
pub fn anthropic_sse_with(model: &str, pieces: &[String], usage: Tokens) -> String {
    let mut body = anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": usage.prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
    );
    body += &anthropic_event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    );
    body += &anthropic_event("ping", json!({"type": "ping"}));
    body += &anthropic_pieces(pieces);
    body += &anthropic_event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    );
    body += &anthropic_event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": usage.completion}}),
    );
    body + &anthropic_event("message_stop", json!({"type": "message_stop"}))
}

pub fn anthropic_pieces(pieces: &[String]) -> String {
    pieces
        .iter()
        .map(|p| anthropic_event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}})))
        .collect()
}
