//! The tool side of the fake providers: tool declarations and tool turns checked the way
//! each API checks them, and a scripted model that calls the tools it is offered, then
//! answers with what their results said. Answers come whole or streamed, in each API's
//! documented shapes (OpenAI-style and Anthropic calls in fragments, Gemini and Ollama
//! calls whole).

use base64::Engine;
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use crate::fakes::{
    anthropic_event, gemini_candidate, ollama_line, openai_chunk, openai_completion, strings,
};

/// What the scripted model writes before its calls, and the calls it makes.
#[derive(Clone, Debug, Default)]
pub struct Script {
    pub preamble: String,
    pub calls: Vec<(String, Value)>,
}

/// The scripted model's move for one request.
pub enum Move {
    /// Call these tools (the ones offered among the script's).
    Call(Vec<(String, Value)>),
    /// The conversation ends with tool results: answer with them.
    Answer(String),
    /// No tools in play: the fake's ordinary answer.
    Plain,
}

pub fn decide(script: &Script, offered: &[String], results: Option<Vec<String>>) -> Move {
    if let Some(results) = results {
        return Move::Answer(format!("Results: {}", results.join("; ")));
    }
    let calls: Vec<(String, Value)> = script
        .calls
        .iter()
        .filter(|(name, _)| offered.contains(name))
        .cloned()
        .collect();
    if calls.is_empty() {
        Move::Plain
    } else {
        Move::Call(calls)
    }
}

/// `^[a-zA-Z0-9_-]{1,64}$`, the OpenAI and Anthropic rule for tool names.
fn plain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Gemini's rule: starts with a letter or underscore; letters, digits, `_ . : -`; at most
/// 64 characters.
fn gemini_name(name: &str) -> bool {
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    first_ok
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

fn object_schema(schema: &Value) -> bool {
    schema.is_object() && schema["type"] == "object"
}

/// A made-up call id, as the APIs make them.
fn call_id(prefix: &str, i: usize) -> String {
    format!("{prefix}{i:03}abc")
}

/// The thought signature the fake Gemini gives a call: opaque bytes, base64.
pub fn signature_of(name: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("thought-of-{name}"))
}

/// JSON text cut into fragments of a few bytes, as streamed arguments arrive.
fn fragments(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(7).map(|c| c.iter().collect()).collect()
}

// ---------------------------------------------------------------- OpenAI style

/// `tools`: each `{"type": "function", "function": {name, description?, parameters?}}`.
pub fn openai_tools(body: &Value) -> Result<Vec<String>, String> {
    let Some(tools) = body.get("tools") else {
        return Ok(Vec::new());
    };
    let tools = tools.as_array().ok_or("tools: must be an array")?;
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        if tool["type"] != "function" {
            return Err(format!("tools[{i}].type: must be 'function'"));
        }
        let function = &tool["function"];
        let name = function["name"].as_str().unwrap_or("");
        if !plain_name(name) {
            return Err(format!(
                "Invalid 'tools[{i}].function.name': string does not match pattern. Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
            ));
        }
        if function.get("description").is_some_and(|d| !d.is_string()) {
            return Err(format!("tools[{i}].function.description: must be a string"));
        }
        if function
            .get("parameters")
            .is_some_and(|p| !object_schema(p))
        {
            return Err(format!(
                "Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"'"
            ));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// A message's tool parts: an assistant's `tool_calls`, a `tool` message's id.
pub fn openai_tool_message(m: &Value) -> Result<(), String> {
    match m["role"].as_str() {
        Some("tool") => {
            if !m["tool_call_id"].is_string() {
                return Err("tool_call_id: required for role 'tool'".into());
            }
            if !m["content"].is_string() {
                return Err("content: must be a string".into());
            }
        }
        Some("assistant") if m.get("tool_calls").is_some() => {
            let calls = m["tool_calls"]
                .as_array()
                .filter(|c| !c.is_empty())
                .ok_or("tool_calls: must be a non-empty array")?;
            for call in calls {
                let ok = call["id"].is_string()
                    && call["type"] == "function"
                    && call["function"]["name"].is_string()
                    && call["function"]["arguments"].is_string();
                if !ok {
                    return Err("tool_calls: each needs id, type 'function' and function.name/arguments (a string)".into());
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// The order rules: `tool` messages answer the `tool_calls` of the assistant message right
/// before them, every call gets an answer before anything else is said. The contents of
/// the results that end the conversation, if it ends with them.
pub fn openai_turns(messages: &[Value]) -> Result<Option<Vec<String>>, String> {
    let mut open: Vec<String> = Vec::new();
    let mut last_results = Vec::new();
    for m in messages {
        let role = m["role"].as_str().unwrap_or("");
        if role == "tool" {
            let id = m["tool_call_id"].as_str().unwrap_or("");
            let Some(at) = open.iter().position(|o| o == id) else {
                return Err("Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.".into());
            };
            open.remove(at);
            last_results.push(m["content"].as_str().unwrap_or("").to_owned());
            continue;
        }
        if !open.is_empty() {
            return Err(format!(
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
                open.join(", ")
            ));
        }
        last_results.clear();
        if let Some(calls) = m["tool_calls"].as_array() {
            open = calls
                .iter()
                .filter_map(|c| c["id"].as_str().map(str::to_owned))
                .collect();
        }
    }
    if !open.is_empty() {
        return Err(format!(
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
            open.join(", ")
        ));
    }
    let ends_with_results = messages.last().is_some_and(|m| m["role"] == "tool");
    Ok(ends_with_results.then_some(last_results))
}

fn openai_call(i: usize, name: &str, arguments: &Value) -> Value {
    json!({"id": call_id("call_", i), "type": "function", "function": {"name": name, "arguments": arguments.to_string()}})
}

/// The calls, whole or as the documented stream of fragments: the first chunk of a call
/// has its index, id, type and name, the next ones pieces of its arguments.
pub fn openai_calls(
    model: &str,
    script: &Script,
    calls: &[(String, Value)],
    stream: bool,
) -> ResponseTemplate {
    if !stream {
        let mut completion = openai_completion(model, &script.preamble);
        let message = &mut completion["choices"][0]["message"];
        if script.preamble.is_empty() {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = calls
            .iter()
            .enumerate()
            .map(|(i, (name, arguments))| openai_call(i, name, arguments))
            .collect();
        completion["choices"][0]["finish_reason"] = json!("tool_calls");
        return ResponseTemplate::new(200).set_body_json(completion);
    }
    let mut body = openai_chunk(json!({"role": "assistant", "content": null}), None);
    if !script.preamble.is_empty() {
        body += &openai_chunk(json!({"content": script.preamble}), None);
    }
    for (i, (name, arguments)) in calls.iter().enumerate() {
        body += &openai_chunk(
            json!({"tool_calls": [{"index": i, "id": call_id("call_", i), "type": "function", "function": {"name": name, "arguments": ""}}]}),
            None,
        );
        for piece in fragments(&arguments.to_string()) {
            body += &openai_chunk(
                json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                None,
            );
        }
    }
    body += &openai_chunk(json!({}), Some("tool_calls"));
    body += "data: [DONE]\n\n";
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

// ---------------------------------------------------------------- Anthropic

/// `tools`: each `{name, description?, input_schema}` and nothing else.
pub fn anthropic_tools(body: &Value) -> Result<Vec<String>, String> {
    let Some(tools) = body.get("tools") else {
        return Ok(Vec::new());
    };
    let tools = tools
        .as_array()
        .ok_or("tools: Input should be a valid list")?;
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let Some(fields) = tool.as_object() else {
            return Err(format!("tools.{i}: Input should be an object"));
        };
        if let Some(unknown) = fields.keys().find(|k| {
            ![
                "name",
                "description",
                "input_schema",
                "cache_control",
                "type",
            ]
            .contains(&k.as_str())
        }) {
            return Err(format!(
                "tools.{i}.{unknown}: Extra inputs are not permitted"
            ));
        }
        let name = tool["name"].as_str().unwrap_or("");
        if !plain_name(name) {
            return Err(format!(
                "tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            ));
        }
        if !object_schema(&tool["input_schema"]) {
            return Err(format!(
                "tools.{i}.custom.input_schema.type: Field required"
            ));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// A `tool_use` (assistant) or `tool_result` (user) block.
pub fn anthropic_tool_block(role: &str, block: &Value) -> Result<(), String> {
    match block["type"].as_str() {
        Some("tool_use") => {
            if role != "assistant" {
                return Err("tool_use blocks are only allowed in assistant messages".into());
            }
            if !(block["id"].is_string() && block["name"].is_string() && block["input"].is_object())
            {
                return Err("tool_use: id, name and input (an object) are required".into());
            }
            Ok(())
        }
        Some("tool_result") => {
            if role != "user" {
                return Err("tool_result blocks are only allowed in user messages".into());
            }
            if !block["tool_use_id"].is_string() {
                return Err("tool_result.tool_use_id: Field required".into());
            }
            let content_ok = block
                .get("content")
                .is_none_or(|c| c.is_string() || c.is_array());
            let error_ok = block.get("is_error").is_none_or(Value::is_boolean);
            if !(content_ok && error_ok) {
                return Err(
                    "tool_result: content must be a string or a list, is_error a boolean".into(),
                );
            }
            Ok(())
        }
        _ => Err("not a tool block".into()),
    }
}

fn blocks(m: &Value) -> &[Value] {
    m["content"].as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// Every `tool_use` is answered by a `tool_result` in the very next message, whose results
/// come before anything else in it; a result answers a call of the message before. The
/// contents of the results in the last message, if it has any.
pub fn anthropic_turns(messages: &[Value]) -> Result<Option<Vec<String>>, String> {
    let mut open: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let results: Vec<&str> = blocks(m)
            .iter()
            .filter(|b| b["type"] == "tool_result")
            .filter_map(|b| b["tool_use_id"].as_str())
            .collect();
        if let Some(stray) = results.iter().find(|id| !open.iter().any(|o| o == *id)) {
            return Err(format!(
                "messages.{i}.content: unexpected `tool_use_id` found in `tool_result` blocks: {stray}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."
            ));
        }
        let missing: Vec<&String> = open
            .iter()
            .filter(|o| !results.contains(&o.as_str()))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "messages.{}: `tool_use` ids were found without `tool_result` blocks immediately after: {}. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
                i - 1,
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let leading = blocks(m)
            .iter()
            .take_while(|b| b["type"] == "tool_result")
            .count();
        if leading != results.len() {
            return Err(format!(
                "messages.{i}: tool_result blocks must come first in the content, before any other block"
            ));
        }
        open = blocks(m)
            .iter()
            .filter(|b| b["type"] == "tool_use")
            .filter_map(|b| b["id"].as_str().map(str::to_owned))
            .collect();
    }
    if !open.is_empty() {
        return Err("the last message has `tool_use` blocks without results".into());
    }
    let last = messages.last().map(blocks).unwrap_or(&[]);
    let results: Vec<String> = last
        .iter()
        .filter(|b| b["type"] == "tool_result")
        .map(|b| b["content"].as_str().unwrap_or("").to_owned())
        .collect();
    Ok((!results.is_empty()).then_some(results))
}

/// The calls as `tool_use` blocks (after the preamble's text block), `stop_reason`
/// `tool_use`; streamed: one `content_block_start` a block, arguments as `input_json_delta`
/// fragments, `content_block_stop`.
pub fn anthropic_calls(
    model: &str,
    script: &Script,
    calls: &[(String, Value)],
    stream: bool,
) -> ResponseTemplate {
    let offset = usize::from(!script.preamble.is_empty());
    if !stream {
        let mut content: Vec<Value> = Vec::new();
        if !script.preamble.is_empty() {
            content.push(json!({"type": "text", "text": script.preamble}));
        }
        for (i, (name, input)) in calls.iter().enumerate() {
            content.push(json!({"type": "tool_use", "id": call_id("toolu_", i), "name": name, "input": input}));
        }
        return ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_1", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": "tool_use", "stop_sequence": null,
            "usage": {"input_tokens": 5, "output_tokens": 3}
        }));
    }
    let mut body = anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
    );
    if !script.preamble.is_empty() {
        body += &anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        );
        body += &anthropic_event(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": script.preamble}}),
        );
        body += &anthropic_event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        );
    }
    for (i, (name, input)) in calls.iter().enumerate() {
        let index = i + offset;
        body += &anthropic_event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": call_id("toolu_", i), "name": name, "input": {}}}),
        );
        body += &anthropic_event("ping", json!({"type": "ping"}));
        for piece in fragments(&input.to_string()) {
            body += &anthropic_event(
                "content_block_delta",
                json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": piece}}),
            );
        }
        body += &anthropic_event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": index}),
        );
    }
    body += &anthropic_event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 3}}),
    );
    body += &anthropic_event("message_stop", json!({"type": "message_stop"}));
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

// ---------------------------------------------------------------- Gemini

/// Keys of Gemini's `Schema`: anything else is an unknown field.
const GEMINI_SCHEMA_KEYS: [&str; 17] = [
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "items",
    "minItems",
    "maxItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "anyOf",
];

fn gemini_schema(schema: &Value, at: &str) -> Result<(), String> {
    let fields = schema
        .as_object()
        .ok_or_else(|| format!("{at}: must be an object"))?;
    if let Some(unknown) = fields
        .keys()
        .find(|k| !GEMINI_SCHEMA_KEYS.contains(&k.as_str()))
    {
        return Err(format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\" at '{at}': Cannot find field."
        ));
    }
    if fields.get("type").is_some_and(|t| !t.is_string()) {
        return Err(format!(
            "{at}.type: must be one of STRING, NUMBER, INTEGER, BOOLEAN, ARRAY, OBJECT"
        ));
    }
    if let Some(properties) = fields.get("properties") {
        let properties = properties
            .as_object()
            .ok_or_else(|| format!("{at}.properties: must be an object"))?;
        if properties.is_empty() {
            return Err(format!(
                "* GenerateContentRequest.{at}.properties: should be non-empty for OBJECT type"
            ));
        }
        for (name, property) in properties {
            gemini_schema(property, &format!("{at}.properties[{name}].value"))?;
        }
    }
    if let Some(items) = fields.get("items") {
        gemini_schema(items, &format!("{at}.items"))?;
    }
    for option in fields
        .get("anyOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        gemini_schema(option, &format!("{at}.any_of"))?;
    }
    let enum_ok = fields.get("enum").is_none_or(|values| {
        values
            .as_array()
            .is_some_and(|v| v.iter().all(Value::is_string))
    });
    if !enum_ok {
        return Err(format!(
            "{at}.enum: Invalid value, enum values must be strings"
        ));
    }
    Ok(())
}

/// `tools`: each `{"functionDeclarations": [{name, description, parameters?}]}`.
pub fn gemini_tools(body: &Value) -> Result<Vec<String>, String> {
    let Some(tools) = body.get("tools") else {
        return Ok(Vec::new());
    };
    let tools = tools.as_array().ok_or("tools: must be a list")?;
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let declarations = tool
            .get("functionDeclarations")
            .or_else(|| tool.get("function_declarations"))
            .and_then(Value::as_array)
            .ok_or_else(|| format!("tools[{i}]: a tool needs functionDeclarations"))?;
        for (j, declaration) in declarations.iter().enumerate() {
            let at = format!("tools[{i}].function_declarations[{j}]");
            if let Some(unknown) = declaration.as_object().and_then(|d| {
                d.keys().find(|k| {
                    ![
                        "name",
                        "description",
                        "parameters",
                        "parametersJsonSchema",
                        "behavior",
                        "response",
                    ]
                    .contains(&k.as_str())
                })
            }) {
                return Err(format!(
                    "Invalid JSON payload received. Unknown name \"{unknown}\" at '{at}': Cannot find field."
                ));
            }
            let name = declaration["name"].as_str().unwrap_or("");
            if !gemini_name(name) {
                return Err(format!(
                    "* GenerateContentRequest.{at}.name: Invalid function name. Must start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:) or dashes (-), with a maximum length of 64."
                ));
            }
            if let Some(parameters) = declaration.get("parameters") {
                gemini_schema(parameters, &format!("{at}.parameters"))?;
            }
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// A `functionCall` (model) or `functionResponse` (user) part.
pub fn gemini_tool_part(role: &str, kind: &str, part: &Value) -> Result<(), String> {
    let inner = &part[kind];
    match kind {
        "functionCall" => {
            if role != "model" {
                return Err("functionCall parts are only allowed in model turns".into());
            }
            if !inner["name"].is_string() || inner.get("args").is_some_and(|a| !a.is_object()) {
                return Err("functionCall: name (a string) and args (an object) expected".into());
            }
        }
        _ => {
            if role != "user" {
                return Err("functionResponse parts belong in user turns".into());
            }
            if !inner["name"].is_string() || !inner["response"].is_object() {
                return Err(
                    "functionResponse: name (a string) and response (an object) expected".into(),
                );
            }
        }
    }
    Ok(())
}

fn parts(content: &Value) -> &[Value] {
    content["parts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// A function response turn comes right after the function call turn and answers each
/// call, by name; on Gemini 3 models the first call of each call turn carries its thought
/// signature (the one given, or the documented stand-in). The response texts of the last
/// turn, if it is one.
pub fn gemini_turns(model: &str, contents: &[Value]) -> Result<Option<Vec<String>>, String> {
    let mut open: Vec<String> = Vec::new();
    for content in contents {
        let responses: Vec<&Value> = parts(content)
            .iter()
            .filter_map(|p| p.get("functionResponse"))
            .collect();
        if !responses.is_empty() || !open.is_empty() {
            if responses.is_empty() {
                return Err("Please ensure that function call turn comes immediately before a function response turn.".into());
            }
            if open.is_empty() {
                return Err("Please ensure that function response turn comes immediately after a function call turn.".into());
            }
            let names: Vec<String> = responses
                .iter()
                .filter_map(|r| r["name"].as_str().map(str::to_owned))
                .collect();
            if names.len() != open.len() {
                return Err("Please ensure that the number of function response parts is equal to the number of function call parts of the function call turn.".into());
            }
            let mut sorted = (names, open.clone());
            sorted.0.sort();
            sorted.1.sort();
            if sorted.0 != sorted.1 {
                return Err("function response names must match the function call names".into());
            }
        }
        let calls: Vec<&Value> = parts(content)
            .iter()
            .filter(|p| p.get("functionCall").is_some())
            .collect();
        if let (true, Some(first)) = (model.starts_with("gemini-3"), calls.first()) {
            let name = first["functionCall"]["name"].as_str().unwrap_or("");
            let signature = first["thoughtSignature"].as_str();
            let known = signature == Some(signature_of(name).as_str())
                || signature == Some("skip_thought_signature_validator");
            if !known {
                return Err(format!(
                    "Function call is missing a thought_signature in functionCall parts. This is required for tools to work correctly, and missing thought_signature may lead to degraded model performance. Additional data, function call `{name}`"
                ));
            }
        }
        open = calls
            .iter()
            .filter_map(|p| p["functionCall"]["name"].as_str().map(str::to_owned))
            .collect();
    }
    let last = contents.last().map(parts).unwrap_or(&[]);
    let results: Vec<String> = last
        .iter()
        .filter_map(|p| p.get("functionResponse"))
        .map(|r| {
            let response = &r["response"];
            let text = response
                .get("output")
                .or_else(|| response.get("error"))
                .unwrap_or(response);
            text.as_str()
                .map_or_else(|| text.to_string(), str::to_owned)
        })
        .collect();
    Ok((!results.is_empty()).then_some(results))
}

/// The calls as `functionCall` parts, the first with a thought signature as Gemini 3
/// gives it; streamed: the preamble, then one chunk a call, the last with `finishReason`.
pub fn gemini_calls(script: &Script, calls: &[(String, Value)], stream: bool) -> ResponseTemplate {
    let part = |i: usize, (name, args): &(String, Value)| {
        let mut part = json!({"functionCall": {"name": name, "args": args}});
        if i == 0 {
            part["thoughtSignature"] = json!(signature_of(name));
        }
        part
    };
    let chunk = |parts: Vec<Value>, finish: bool| {
        let mut chunk = gemini_candidate("", finish.then_some("STOP"));
        chunk["candidates"][0]["content"]["parts"] = Value::Array(parts);
        chunk
    };
    if !stream {
        let mut all: Vec<Value> = Vec::new();
        if !script.preamble.is_empty() {
            all.push(json!({"text": script.preamble}));
        }
        all.extend(calls.iter().enumerate().map(|(i, c)| part(i, c)));
        return ResponseTemplate::new(200).set_body_json(chunk(all, true));
    }
    let mut body = String::new();
    if !script.preamble.is_empty() {
        body += &format!(
            "data: {}\r\n\r\n",
            chunk(vec![json!({"text": script.preamble})], false)
        );
    }
    for (i, call) in calls.iter().enumerate() {
        let last = i + 1 == calls.len();
        body += &format!("data: {}\r\n\r\n", chunk(vec![part(i, call)], last));
    }
    ResponseTemplate::new(200).set_body_raw(body, "text/event-stream")
}

// ---------------------------------------------------------------- Ollama

/// `tools`: as OpenAI's.
pub fn ollama_tools(body: &Value) -> Result<Vec<String>, String> {
    openai_tools(body)
}

/// An assistant's `tool_calls`: `[{function: {name, arguments: {…}}}]`; a `tool` message's
/// `tool_name`.
pub fn ollama_tool_message(m: &Value) -> Result<(), String> {
    if let Some(calls) = m.get("tool_calls") {
        let calls = calls
            .as_array()
            .ok_or("json: cannot unmarshal tool_calls")?;
        for call in calls {
            if !call["function"]["name"].is_string() {
                return Err("json: tool call without a function name".into());
            }
            if !call["function"]["arguments"].is_object() {
                return Err("json: cannot unmarshal string into Go struct field ToolCallFunction.tool_calls.function.arguments of type api.ToolCallFunctionArguments".into());
            }
        }
    }
    if m.get("tool_name").is_some_and(|n| !n.is_string()) {
        return Err("json: tool_name must be a string".into());
    }
    Ok(())
}

/// The contents of the `tool` messages that end the conversation, if it ends with them.
pub fn ollama_turns(messages: &[Value]) -> Option<Vec<String>> {
    let trailing: Vec<String> = messages
        .iter()
        .rev()
        .take_while(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or("").to_owned())
        .collect();
    (!trailing.is_empty()).then(|| trailing.into_iter().rev().collect())
}

/// The calls whole in `message.tool_calls`; streamed: the preamble, one line with the
/// calls, then the final line.
pub fn ollama_calls(
    model: &str,
    script: &Script,
    calls: &[(String, Value)],
    stream: bool,
) -> ResponseTemplate {
    let tool_calls: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(i, (name, arguments))| json!({"function": {"index": i, "name": name, "arguments": arguments}}))
        .collect();
    if !stream {
        return ResponseTemplate::new(200).set_body_json(json!({
            "model": model, "created_at": "2025-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": script.preamble, "tool_calls": tool_calls},
            "done_reason": "stop", "done": true, "total_duration": 1, "eval_count": 3
        }));
    }
    let mut body = String::new();
    if !script.preamble.is_empty() {
        body += &ollama_line(model, &script.preamble, false);
    }
    let line = json!({"model": model, "created_at": "2025-01-01T00:00:00Z", "message": {"role": "assistant", "content": "", "tool_calls": tool_calls}, "done": false});
    body += &format!("{line}\n");
    body += &ollama_line(model, "", true);
    ResponseTemplate::new(200).set_body_raw(body, "application/x-ndjson")
}

/// The answer to results, as pieces a stream sends.
pub fn answer_pieces(text: &str) -> Vec<String> {
    let cut = text.char_indices().nth(8).map_or(text.len(), |(at, _)| at);
    let (head, tail) = text.split_at(cut);
    strings(&[head, tail])
}
