//! The OpenAI-style fake (`/chat/completions`): its refusals, answers and SSE chunks.

use super::*;

/// One message of a Chat Completions request, as the API validates it.
pub(super) fn openai_message(m: &Value) -> Result<(), String> {
    let role = m["role"].as_str().unwrap_or("");
    if !["system", "developer", "user", "assistant", "tool"].contains(&role) {
        return Err(format!("invalid role '{role}'"));
    }
    tool_fakes::openai_tool_message(m)?;
    match &m["content"] {
        Value::String(_) => Ok(()),
        Value::Null if m.get("tool_calls").is_some() => Ok(()),
        Value::Array(parts) if !parts.is_empty() => {
            parts.iter().try_for_each(|part| openai_part(role, part))
        }
        _ => Err("content: must be a string or a non-empty array of content parts".into()),
    }
}

pub(super) fn openai_part(role: &str, part: &Value) -> Result<(), String> {
    match part["type"].as_str() {
        Some("text") if part["text"].is_string() => Ok(()),
        Some("image_url") => {
            if role != "user" {
                return Err("Image URLs are only allowed for messages with role 'user'".into());
            }
            let url = part["image_url"]["url"].as_str().unwrap_or("");
            let data_url = url
                .strip_prefix("data:")
                .and_then(|rest| rest.split_once(";base64,"));
            match data_url {
                Some((mime, data)) if IMAGE_TYPES.contains(&mime) && base64_ok(data) => Ok(()),
                Some(_) => Err(
                    "Invalid image data: a data URL must be data:<image type>;base64,<data>".into(),
                ),
                None if url.starts_with("https://") => Ok(()),
                None => Err("image_url.url: must be a URL or a base64 data URL".into()),
            }
        }
        _ => Err("content part: invalid type or missing field".into()),
    }
}

pub fn openai_error(status: u16, message: &str, kind: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}}),
    )
}

pub(super) fn openai(cfg: &Cfg, req: &Request) -> Answer {
    let bad = |m: &str| openai_error(400, m, "invalid_request_error");
    if needs_key(cfg.kind) {
        let expected = format!("Bearer {KEY}");
        check(
            header(req, "authorization") == Some(expected.as_str()),
            || openai_error(401, "Incorrect API key provided.", "invalid_request_error"),
        )?;
    }
    match (req.method.as_str(), req.url.path()) {
        ("GET", "/v1/models") => Ok(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list",
            "data": cfg.models.iter().map(|m| json!({"id": m, "object": "model", "created": 1, "owned_by": "system"})).collect::<Vec<_>>(),
        }))),
        ("POST", "/v1/chat/completions") => {
            let body = json_body(req, bad)?;
            let model = body["model"].as_str().ok_or_else(|| bad("you must provide a model parameter"))?;
            check(cfg.models.iter().any(|m| m == model), || {
                openai_error(404, &format!("The model `{model}` does not exist or you do not have access to it."), "invalid_request_error")
            })?;
            let messages = body["messages"].as_array().filter(|m| !m.is_empty()).ok_or_else(|| bad("messages: must be a non-empty array"))?;
            for (i, m) in messages.iter().enumerate() {
                openai_message(m).map_err(|e| bad(&format!("messages[{i}]: {e}")))?;
            }
            let offered = tool_fakes::openai_tools(&body).map_err(|e| bad(&e))?;
            let results = tool_fakes::openai_turns(messages).map_err(|e| bad(&e))?;
            check(temperature_ok(&body, 2.0), || bad("temperature: must be between 0 and 2"))?;
            let reasoning = model.starts_with('o') || model.starts_with("gpt-5");
            check(!(reasoning && body.get("max_tokens").is_some()), || {
                bad("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.")
            })?;
            let stream = stream_flag(&body, false).map_err(|m| bad(&m))?;
            let include_usage = match body.get("stream_options") {
                None | Some(Value::Null) => false,
                Some(_) if !stream => {
                    return Err(bad("The 'stream_options' parameter is only allowed when 'stream' is enabled."));
                }
                Some(options) => {
                    if let Some(unknown) = field_in(options, "stream_options", &["include_usage", "include_obfuscation"]) {
                        return Err(bad(&unknown));
                    }
                    match options.get("include_usage") {
                        None => false,
                        Some(Value::Bool(b)) => *b,
                        Some(_) => return Err(bad("stream_options.include_usage: must be a boolean")),
                    }
                }
            };
            let pieces = match cfg.decide(&offered, results) {
                Ok(pieces) => pieces,
                Err(calls) => return Ok(tool_fakes::openai_calls(model, &cfg.script, &calls, stream)),
            };
            Ok(if stream {
                let usage = include_usage.then_some(cfg.usage);
                ResponseTemplate::new(200).set_body_raw(openai_sse_with(&pieces, usage), "text/event-stream")
            } else {
                ResponseTemplate::new(200).set_body_json(openai_completion_with(model, &pieces.concat(), cfg.usage))
            })
        }
        _ => Err(openai_error(404, "Unknown request URL", "invalid_request_error")),
    }
}

pub fn openai_completion(model: &str, text: &str) -> Value {
    openai_completion_with(model, text, DEFAULT_USAGE)
}

pub fn openai_completion_with(model: &str, text: &str, usage: Tokens) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null}, "finish_reason": "stop"}],
        "usage": openai_usage(usage)
    })
}

pub(super) fn openai_usage(usage: Tokens) -> Value {
    json!({
        "prompt_tokens": usage.prompt, "completion_tokens": usage.completion,
        "total_tokens": usage.prompt + usage.completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}
    })
}

pub fn openai_chunk(delta: Value, finish: Option<&str>) -> String {
    let chunk = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
    });
    format!("data: {chunk}\n\n")
}

/// A role chunk, one chunk a piece, the finish chunk, `[DONE]`.
pub fn openai_sse(pieces: &[String]) -> String {
    openai_sse_with(pieces, None)
}

/// The same; with `usage` (the request set `stream_options.include_usage`) every chunk
/// has `"usage": null` and one more chunk with empty `choices` carries the counts before
/// `[DONE]`, as the API documents.
pub fn openai_sse_with(pieces: &[String], usage: Option<Tokens>) -> String {
    let chunk = |delta: Value, finish: Option<&str>| {
        let mut chunk = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        });
        if usage.is_some() {
            chunk["usage"] = Value::Null;
        }
        format!("data: {chunk}\n\n")
    };
    let mut body = chunk(json!({"role": "assistant", "content": ""}), None);
    for piece in pieces {
        body += &chunk(json!({"content": piece}), None);
    }
    body += &chunk(json!({}), Some("stop"));
    if let Some(usage) = usage {
        let last = json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [], "usage": openai_usage(usage)
        });
        body += &format!("data: {last}\n\n");
    }
    body + "data: [DONE]\n\n"
}
