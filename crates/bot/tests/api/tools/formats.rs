//! Each provider's tool-call format in the fake LLMs: what a request shows (the offered
//! tools, the results of earlier calls) and how a call or an answer is said, streamed or not.

use super::*;

/// Ollama `/api/chat`: roles system/user/assistant/tool; an assistant's `tool_calls` are
/// `{function: {name, arguments: {…}}}`; a `tool` message (content, `tool_name`) answers
/// the calls of the assistant message before it.
pub(super) fn ollama_seen(body: &Value) -> Result<Seen, String> {
    if body["model"].as_str().is_none_or(str::is_empty) {
        return Err("model is required".into());
    }
    let tools = function_tools(body)?;
    let messages = body["messages"].as_array().ok_or("messages: required")?;
    if messages.is_empty() {
        return Err("messages: empty".into());
    }
    let mut called: Vec<String> = Vec::new();
    let mut results = Vec::new();
    let mut rounds = 0;
    for m in messages {
        if !m["content"].is_string() {
            return Err("content: must be a string".into());
        }
        match m["role"].as_str() {
            Some("tool") => {
                let name = m["tool_name"].as_str().unwrap_or("");
                let Some(at) = called.iter().position(|c| c == name) else {
                    return Err(format!("a tool message for {name:?} answers no call"));
                };
                called.remove(at);
                let content = m["content"].as_str().unwrap_or("").to_owned();
                let error = content.starts_with("Error: ");
                results.push((content, error));
            }
            Some(role @ ("system" | "user" | "assistant")) => {
                if !results.is_empty() {
                    rounds += 1;
                }
                results.clear();
                called.clear();
                if role == "assistant"
                    && let Some(calls) = m.get("tool_calls")
                {
                    for call in calls.as_array().ok_or("tool_calls: must be an array")? {
                        let name = call["function"]["name"].as_str().unwrap_or("");
                        if name.is_empty() || !call["function"]["arguments"].is_object() {
                            return Err(
                                "tool_calls: function.name and arguments (an object)".into()
                            );
                        }
                        called.push(name.to_owned());
                    }
                }
            }
            other => return Err(format!("unknown role {other:?}")),
        }
    }
    if !results.is_empty() {
        rounds += 1;
    }
    Ok(Seen {
        tools,
        results,
        rounds,
    })
}

pub(super) fn ollama_line(message: Value, done: bool) -> Value {
    let mut line = json!({"model": "llama3.1:8b", "created_at": "2026-12-07T10:00:00Z",
        "message": message, "done": done});
    if done {
        line["done_reason"] = json!("stop");
    }
    line
}

pub(super) fn ollama_calls(calls: &[(String, Value)]) -> Value {
    json!(
        calls
            .iter()
            .map(|(name, args)| json!({"function": {"name": name, "arguments": args}}))
            .collect::<Vec<_>>()
    )
}

pub(super) fn ollama_say(say: Say, stream: bool) -> Response {
    let (text, calls) = match say {
        Say::Call(text, calls) => (text, Some(calls)),
        Say::Text(text) => (text, None),
    };
    if !stream {
        let mut message = json!({"role": "assistant", "content": text});
        if let Some(calls) = &calls {
            message["tool_calls"] = ollama_calls(calls);
        }
        return json_response(ollama_line(message, true));
    }
    let mut lines = Vec::new();
    for piece in pieces(&text) {
        lines.push(ollama_line(
            json!({"role": "assistant", "content": piece}),
            false,
        ));
    }
    if let Some(calls) = &calls {
        lines.push(ollama_line(
            json!({"role": "assistant", "content": "", "tool_calls": ollama_calls(calls)}),
            false,
        ));
    }
    lines.push(ollama_line(
        json!({"role": "assistant", "content": ""}),
        true,
    ));
    let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
    stream_response("application/x-ndjson", body)
}

/// Text cut in a few pieces, as streams deliver it.
pub(super) fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(4).map(|c| c.iter().collect()).collect()
}

/// OpenAI Chat Completions: `tool` messages (with `tool_call_id`) answer the `tool_calls`
/// of the assistant message right before them, every call before anything else is said.
pub(super) fn openai_seen(body: &Value) -> Result<Seen, String> {
    if !body["model"].is_string() {
        return Err("model is required".into());
    }
    let tools = function_tools(body)?;
    let messages = body["messages"].as_array().ok_or("messages: required")?;
    let mut open: Vec<String> = Vec::new();
    let mut results = Vec::new();
    let mut rounds = 0;
    for m in messages {
        if m["role"] == "tool" {
            let id = m["tool_call_id"].as_str().unwrap_or("");
            let Some(at) = open.iter().position(|o| o == id) else {
                return Err("messages with role 'tool' must be a response to a preceeding message with 'tool_calls'".into());
            };
            open.remove(at);
            let content = m["content"].as_str().ok_or("tool content: a string")?;
            results.push((content.to_owned(), content.starts_with("Error: ")));
            continue;
        }
        if !open.is_empty() {
            return Err(format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id': {}",
                open.join(", ")
            ));
        }
        if !results.is_empty() {
            rounds += 1;
        }
        results.clear();
        match m["role"].as_str() {
            Some("system" | "user") => {
                if !m["content"].is_string() && !m["content"].is_array() {
                    return Err("content: required".into());
                }
            }
            Some("assistant") => {
                if let Some(calls) = m.get("tool_calls") {
                    let calls = calls
                        .as_array()
                        .filter(|c| !c.is_empty())
                        .ok_or("tool_calls: a non-empty array")?;
                    for call in calls {
                        let ok = call["id"].is_string()
                            && call["type"] == "function"
                            && call["function"]["name"].is_string()
                            && call["function"]["arguments"].is_string();
                        if !ok {
                            return Err("tool_calls: id, type 'function', function.name and arguments (a string)".into());
                        }
                        open.push(call["id"].as_str().unwrap_or("").to_owned());
                    }
                } else if !m["content"].is_string() {
                    return Err("assistant content: required without tool_calls".into());
                }
            }
            other => return Err(format!("unknown role {other:?}")),
        }
    }
    if !open.is_empty() {
        return Err("tool_calls without responses".into());
    }
    if !results.is_empty() {
        rounds += 1;
    }
    Ok(Seen {
        tools,
        results,
        rounds,
    })
}

pub(super) fn openai_say(say: Say, stream: bool) -> Response {
    let (text, calls) = match say {
        Say::Call(text, calls) => (text, calls),
        Say::Text(text) => (text, Vec::new()),
    };
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    if !stream {
        let mut message = json!({"role": "assistant",
            "content": if text.is_empty() { Value::Null } else { json!(text) }});
        if !calls.is_empty() {
            message["tool_calls"] =
                json!(
                calls
                    .iter()
                    .enumerate()
                    .map(|(i, (name, args))| json!({"id": format!("call_{i}"), "type": "function",
                        "function": {"name": name, "arguments": args.to_string()}}))
                    .collect::<Vec<_>>()
            );
        }
        return json_response(json!({"id": "chatcmpl-1", "object": "chat.completion",
            "created": 1_765_000_000, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}}));
    }
    let chunk = |delta: Value, finish: Value| {
        let c = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk",
            "created": 1_765_000_000, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
        format!("data: {c}\n\n")
    };
    let mut body = chunk(json!({"role": "assistant", "content": ""}), Value::Null);
    for piece in pieces(&text) {
        body.push_str(&chunk(json!({"content": piece}), Value::Null));
    }
    for (i, (name, args)) in calls.iter().enumerate() {
        body.push_str(&chunk(
            json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
                "function": {"name": name, "arguments": ""}}]}),
            Value::Null,
        ));
        for piece in pieces(&args.to_string()) {
            body.push_str(&chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                Value::Null,
            ));
        }
    }
    body.push_str(&chunk(json!({}), json!(finish)));
    body.push_str("data: [DONE]\n\n");
    stream_response("text/event-stream", body)
}

/// Anthropic Messages: alternating user/assistant; an assistant's `tool_use` blocks are
/// answered by `tool_result` blocks (first) in the very next user message.
pub(super) fn anthropic_seen(body: &Value) -> Result<Seen, String> {
    if !body["max_tokens"].is_u64() || !body["model"].is_string() {
        return Err("model and max_tokens are required".into());
    }
    let mut tools = Vec::new();
    if let Some(list) = body.get("tools") {
        for (i, tool) in list.as_array().ok_or("tools: an array")?.iter().enumerate() {
            let name = tool["name"].as_str().unwrap_or("");
            if !plain_name(name) || !object_schema(&tool["input_schema"]) {
                return Err(format!("tools.{i}: name and input_schema (type object)"));
            }
            tools.push(name.to_owned());
        }
    }
    let messages = body["messages"].as_array().ok_or("messages: required")?;
    let mut open: Vec<String> = Vec::new();
    let mut results = Vec::new();
    let mut rounds = 0;
    for (i, m) in messages.iter().enumerate() {
        let want = if i % 2 == 0 { "user" } else { "assistant" };
        if m["role"] != want {
            return Err("messages: roles must alternate between user and assistant".into());
        }
        let blocks: Vec<Value> = match &m["content"] {
            Value::String(s) => vec![json!({"type": "text", "text": s})],
            Value::Array(blocks) if !blocks.is_empty() => blocks.clone(),
            _ => return Err(format!("messages.{i}.content: a string or blocks")),
        };
        if !results.is_empty() {
            rounds += 1;
        }
        results.clear();
        if want == "user" {
            let answered: Vec<&Value> = blocks
                .iter()
                .take_while(|b| b["type"] == "tool_result")
                .collect();
            if blocks
                .iter()
                .skip(answered.len())
                .any(|b| b["type"] == "tool_result")
            {
                return Err("tool_result blocks must come first in the user message".into());
            }
            for b in &answered {
                let id = b["tool_use_id"].as_str().unwrap_or("");
                let Some(at) = open.iter().position(|o| o == id) else {
                    return Err(format!("unexpected tool_use_id {id:?}"));
                };
                open.remove(at);
                let content = match &b["content"] {
                    Value::String(s) => s.clone(),
                    Value::Array(parts) => parts
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .collect::<Vec<_>>()
                        .join(""),
                    _ => return Err("tool_result content: a string or blocks".into()),
                };
                results.push((content, b["is_error"] == json!(true)));
            }
            if !open.is_empty() {
                return Err(format!(
                    "tool_use ids were found without tool_result blocks immediately after: {}",
                    open.join(", ")
                ));
            }
        } else {
            for b in &blocks {
                if b["type"] == "tool_use" {
                    let ok = b["id"].is_string() && b["name"].is_string() && b["input"].is_object();
                    if !ok {
                        return Err("tool_use: id, name and input (an object)".into());
                    }
                    open.push(b["id"].as_str().unwrap_or("").to_owned());
                }
            }
        }
    }
    if messages.last().is_none_or(|m| m["role"] != "user") {
        return Err("the last message must be the user's".into());
    }
    if !results.is_empty() {
        rounds += 1;
    }
    Ok(Seen {
        tools,
        results,
        rounds,
    })
}

pub(super) fn anthropic_say(say: Say, stream: bool) -> Response {
    let (text, calls) = match say {
        Say::Call(text, calls) => (text, calls),
        Say::Text(text) => (text, Vec::new()),
    };
    let stop = if calls.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    if !stream {
        let mut content = Vec::new();
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
        for (i, (name, args)) in calls.iter().enumerate() {
            content.push(json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": args}));
        }
        return json_response(
            json!({"id": "msg_1", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "content": content, "stop_reason": stop,
            "usage": {"input_tokens": 10, "output_tokens": 5}}),
        );
    }
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut body = event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
            "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
            "stop_reason": null, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
    );
    let mut index = 0;
    if !text.is_empty() {
        body.push_str(&event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ));
        for piece in pieces(&text) {
            body.push_str(&event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}}),
            ));
        }
        body.push_str(&event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ));
        index = 1;
    }
    for (i, (name, args)) in calls.iter().enumerate() {
        let at = index + i;
        body.push_str(&event(
            "content_block_start",
            json!({"type": "content_block_start", "index": at, "content_block":
                {"type": "tool_use", "id": format!("toolu_{i}"), "name": name, "input": {}}}),
        ));
        for piece in pieces(&args.to_string()) {
            body.push_str(&event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": at,
                    "delta": {"type": "input_json_delta", "partial_json": piece}}),
            ));
        }
        body.push_str(&event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": at}),
        ));
    }
    body.push_str(&event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop}, "usage": {"output_tokens": 5}}),
    ));
    body.push_str(&event("message_stop", json!({"type": "message_stop"})));
    stream_response("text/event-stream", body)
}

/// Gemini generateContent: `user`/`model` turns of parts; a model turn's `functionCall`
/// parts are answered by as many `functionResponse` parts (same names) in the next user
/// turn.
pub(super) fn gemini_seen(body: &Value) -> Result<Seen, String> {
    let mut tools = Vec::new();
    if let Some(list) = body.get("tools") {
        for tool in list.as_array().ok_or("tools: an array")? {
            for f in tool["functionDeclarations"]
                .as_array()
                .ok_or("tools: functionDeclarations")?
            {
                let name = f["name"].as_str().unwrap_or("");
                if !gemini_name(name) {
                    return Err(format!("Invalid function name {name:?}"));
                }
                if let Some(p) = f.get("parameters")
                    && (p["type"] != "object" || p.get("additionalProperties").is_some())
                {
                    return Err(format!("{name}: parameters must be Gemini's object schema"));
                }
                tools.push(name.to_owned());
            }
        }
    }
    let contents = body["contents"].as_array().ok_or("contents: required")?;
    let mut called: Vec<String> = Vec::new();
    let mut results = Vec::new();
    let mut rounds = 0;
    for c in contents {
        let parts = c["parts"]
            .as_array()
            .filter(|p| !p.is_empty())
            .ok_or("contents.parts: must not be empty")?;
        if !results.is_empty() {
            rounds += 1;
        }
        results.clear();
        match c["role"].as_str() {
            Some("model") => {
                called = parts
                    .iter()
                    .filter_map(|p| p["functionCall"]["name"].as_str().map(str::to_owned))
                    .collect();
            }
            Some("user") => {
                let responses: Vec<&Value> = parts
                    .iter()
                    .filter(|p| p.get("functionResponse").is_some())
                    .collect();
                let names: Vec<String> = responses
                    .iter()
                    .filter_map(|p| p["functionResponse"]["name"].as_str().map(str::to_owned))
                    .collect();
                if names != called {
                    return Err(
                        "Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.".into(),
                    );
                }
                for p in responses {
                    let response = &p["functionResponse"]["response"];
                    let (value, error) = match (response.get("output"), response.get("error")) {
                        (Some(v), None) => (v, false),
                        (None, Some(v)) => (v, true),
                        _ => return Err("functionResponse.response: output or error".into()),
                    };
                    let text = value
                        .as_str()
                        .map_or_else(|| value.to_string(), str::to_owned);
                    results.push((text, error));
                }
                called.clear();
            }
            other => return Err(format!("unknown role {other:?}")),
        }
    }
    if !called.is_empty() {
        return Err("function calls without responses".into());
    }
    if !results.is_empty() {
        rounds += 1;
    }
    Ok(Seen {
        tools,
        results,
        rounds,
    })
}

pub(super) fn gemini_say(say: Say, stream: bool) -> Response {
    let (text, calls) = match say {
        Say::Call(text, calls) => (text, calls),
        Say::Text(text) => (text, Vec::new()),
    };
    let candidate = |parts: Vec<Value>, finish: Option<&str>| {
        let mut c = json!({"content": {"role": "model", "parts": parts}, "index": 0});
        if let Some(f) = finish {
            c["finishReason"] = json!(f);
        }
        json!({"candidates": [c], "modelVersion": "gemini-2.5-flash"})
    };
    let call_parts: Vec<Value> = calls
        .iter()
        .map(|(name, args)| json!({"functionCall": {"name": name, "args": args}}))
        .collect();
    if !stream {
        let mut parts = Vec::new();
        if !text.is_empty() {
            parts.push(json!({"text": text}));
        }
        parts.extend(call_parts);
        let mut body = candidate(parts, Some("STOP"));
        body["usageMetadata"] = json!({"promptTokenCount": 10, "candidatesTokenCount": 5});
        return json_response(body);
    }
    let mut body = String::new();
    for piece in pieces(&text) {
        body.push_str(&format!(
            "data: {}\r\n\r\n",
            candidate(vec![json!({"text": piece})], None)
        ));
    }
    if !call_parts.is_empty() {
        body.push_str(&format!("data: {}\r\n\r\n", candidate(call_parts, None)));
    }
    let mut last = candidate(vec![json!({"text": ""})], Some("STOP"));
    last["usageMetadata"] = json!({"promptTokenCount": 10, "candidatesTokenCount": 5});
    body.push_str(&format!("data: {last}\r\n\r\n"));
    stream_response("text/event-stream", body)
}
