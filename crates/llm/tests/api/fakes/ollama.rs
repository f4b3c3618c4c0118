//! The Ollama fake (`/api/chat`): its refusals, answers and NDJSON lines.

use super::*;

pub fn ollama_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"error": message}))
}

pub(super) fn ollama(cfg: &Cfg, req: &Request) -> Answer {
    match (req.method.as_str(), req.url.path()) {
        ("GET", "/api/tags") => Ok(ResponseTemplate::new(200).set_body_json(json!({
            "models": cfg.models.iter().map(|m| json!({"name": m, "model": m, "size": 1, "digest": "abc", "details": {"family": "llama"}})).collect::<Vec<_>>(),
        }))),
        ("POST", "/api/chat") => {
            let bad = |m: &str| ollama_error(400, m);
            let body: Value = serde_json::from_slice(&req.body).map_err(|_| bad("invalid request body"))?;
            let model = body["model"].as_str().ok_or_else(|| bad("model is required"))?;
            check(cfg.models.iter().any(|m| m == model), || {
                ollama_error(404, &format!("model \"{model}\" not found, try pulling it first"))
            })?;
            let messages = body["messages"].as_array().ok_or_else(|| bad("messages is required"))?;
            for m in messages {
                ollama_message(m).map_err(|e| bad(&e))?;
            }
            let offered = tool_fakes::ollama_tools(&body).map_err(|e| bad(&e))?;
            let results = tool_fakes::ollama_turns(messages);
            check(body.get("options").is_none_or(Value::is_object), || bad("options must be an object"))?;
            // Ollama streams unless told not to.
            let stream = stream_flag(&body, true).map_err(|m| bad(&m))?;
            let pieces = match cfg.decide(&offered, results) {
                Ok(pieces) => pieces,
                Err(calls) => return Ok(tool_fakes::ollama_calls(model, &cfg.script, &calls, stream)),
            };
            Ok(if stream {
                ResponseTemplate::new(200).set_body_raw(ollama_ndjson_with(model, &pieces, cfg.usage), "application/x-ndjson")
            } else {
                ResponseTemplate::new(200).set_body_json(ollama_answer_with(model, &pieces.concat(), cfg.usage))
            })
        }
        _ => Err(ResponseTemplate::new(404).set_body_string("404 page not found")),
    }
}

pub(super) fn ollama_message(m: &Value) -> Result<(), String> {
    let role = m["role"].as_str().unwrap_or("");
    if !["system", "user", "assistant", "tool"].contains(&role) {
        return Err("invalid role".into());
    }
    if !m["content"].is_string() {
        return Err("content must be a string".into());
    }
    tool_fakes::ollama_tool_message(m)?;
    match m.get("images") {
        None => Ok(()),
        Some(Value::Array(images)) if images.iter().all(|i| i.as_str().is_some_and(base64_ok)) => {
            Ok(())
        }
        Some(_) => Err("illegal base64 data in images".into()),
    }
}

#[allow(dead_code)] // For tests that script a whole answer with the default counts.
pub fn ollama_answer(model: &str, text: &str) -> Value {
    ollama_answer_with(model, text, DEFAULT_USAGE)
}

pub fn ollama_answer_with(model: &str, text: &str, usage: Tokens) -> Value {
    json!({
        "model": model, "created_at": "2025-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": text},
        "done_reason": "stop", "done": true, "total_duration": 1, "load_duration": 1,
        "prompt_eval_count": usage.prompt, "prompt_eval_duration": 1,
        "eval_count": usage.completion, "eval_duration": 1
    })
}

pub fn ollama_line(model: &str, text: &str, done: bool) -> String {
    ollama_line_with(model, text, done.then_some(DEFAULT_USAGE))
}

/// A stream line; the last one (`usage` given) is `done` and carries the statistics.
pub fn ollama_line_with(model: &str, text: &str, usage: Option<Tokens>) -> String {
    let mut line = json!({"model": model, "created_at": "2025-01-01T00:00:00Z", "message": {"role": "assistant", "content": text}, "done": usage.is_some()});
    if let Some(usage) = usage {
        line["done_reason"] = json!("stop");
        line["total_duration"] = json!(1);
        line["prompt_eval_count"] = json!(usage.prompt);
        line["eval_count"] = json!(usage.completion);
    }
    format!("{line}\n")
}

#[allow(dead_code)] // For tests that script a whole answer with the default counts.
pub fn ollama_ndjson(model: &str, pieces: &[String]) -> String {
    ollama_ndjson_with(model, pieces, DEFAULT_USAGE)
}

pub fn ollama_ndjson_with(model: &str, pieces: &[String], usage: Tokens) -> String {
    let mut body: String = pieces
        .iter()
        .map(|p| ollama_line_with(model, p, None))
        .collect();
    body += &ollama_line_with(model, "", Some(usage));
    body
}
