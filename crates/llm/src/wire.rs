//! Building blocks of wire formats that several providers share: URLs, JSON decoding,
//! the OpenAI/Ollama body, sampling settings under each provider's names, turns that
//! alternate, and the two shapes of model lists.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use serde_json::{Value, json};
use url::Url;

use crate::{
    ChatRequest, Image, Message, Role, ToolCall, ToolResult, ToolSpec, error::shorten,
    provider::Body,
};

/// `base` with `segments` appended to its path, whatever its trailing slash.
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    // Only URLs that cannot carry a path fail here, and validation refuses those.
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Parses a provider's JSON answer, saying briefly what was wrong.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            format!("unexpected JSON: {}", shorten(&e.to_string(), 160))
        }
        serde_json::error::Category::Eof => "truncated JSON".to_owned(),
        _ => "not JSON".to_owned(),
    })
}

/// A provider's names for the sampling settings.
#[derive(Clone, Copy)]
pub(crate) struct SamplingNames {
    pub(crate) temperature: &'static str,
    pub(crate) max_tokens: &'static str,
}

/// The request's sampling settings under a provider's own names: a map of the ones set.
pub(crate) struct Sampling {
    names: SamplingNames,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
}

impl Sampling {
    pub(crate) fn new(req: &ChatRequest, names: SamplingNames) -> Self {
        Sampling {
            names,
            temperature: req.temperature,
            max_tokens: req.max_tokens,
        }
    }

    /// Providers that nest the settings want no empty object when none is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.temperature.is_none() && self.max_tokens.is_none()
    }
}

impl Serialize for Sampling {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        if let Some(temperature) = self.temperature {
            map.serialize_entry(self.names.temperature, &temperature)?;
        }
        if let Some(max_tokens) = self.max_tokens {
            map.serialize_entry(self.names.max_tokens, &max_tokens)?;
        }
        map.end()
    }
}

/// The `{model, messages, stream}` body OpenAI and Ollama share, with `tools` when any
/// are offered. They differ in their message shapes (built by each provider) and in where
/// the sampling settings go: at the top level, or nested under `nest_under`.
pub(crate) fn role_content_body(
    req: &ChatRequest,
    model: &str,
    stream: bool,
    messages: Vec<Value>,
    sampling: SamplingNames,
    nest_under: Option<&'static str>,
) -> Body {
    #[derive(Serialize)]
    struct RoleContentBody<'a> {
        model: &'a str,
        messages: Vec<Value>,
        stream: bool,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tools: Vec<Value>,
        #[serde(flatten)]
        sampling: Placed,
    }
    serde_json::to_vec(&RoleContentBody {
        model,
        messages,
        stream,
        tools: req.tools.iter().map(function_tool).collect(),
        sampling: Placed {
            sampling: Sampling::new(req, sampling),
            nest_under,
        },
    })
}

/// Sampling settings at the top level, or under one key when any is set.
struct Placed {
    sampling: Sampling,
    nest_under: Option<&'static str>,
}

impl Serialize for Placed {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.nest_under {
            None => self.sampling.serialize(serializer),
            Some(key) => {
                let mut map = serializer.serialize_map(None)?;
                if !self.sampling.is_empty() {
                    map.serialize_entry(key, &self.sampling)?;
                }
                map.end()
            }
        }
    }
}

/// A tool as OpenAI and Ollama declare it.
fn function_tool(tool: &ToolSpec) -> Value {
    json!({
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": object_schema(&tool.parameters),
        },
    })
}

/// The tool's argument schema as an object schema, which every provider requires: a
/// schema without `type` gets `"type": "object"`, anything else that is not an object
/// schema becomes one without properties.
pub(crate) fn object_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) if map.get("type").is_none_or(|t| t == "object") => {
            let mut map = map.clone();
            map.insert("type".to_owned(), json!("object"));
            if !map.contains_key("properties") {
                map.insert("properties".to_owned(), json!({}));
            }
            Value::Object(map)
        }
        _ => json!({"type": "object", "properties": {}}),
    }
}

/// The role name OpenAI and Ollama use.
pub(crate) fn role_name(role: Role) -> &'static str {
    match role {
        Role::User => "user",
        Role::Assistant => "assistant",
    }
}

/// The system prompt as a first `system` message, when there is one.
pub(crate) fn system_message(req: &ChatRequest) -> Option<Value> {
    system_prompt(req).map(|content| json!({"role": "system", "content": content}))
}

/// An image as base64, the encoding every provider takes.
pub(crate) fn base64(image: &Image) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(&image.data)
}

/// Model lists shaped `{"data": [{"id": …}]}` (OpenAI, Anthropic).
pub(crate) fn ids_under_data(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct List {
        data: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        id: String,
    }
    let list: List = decode(body)?;
    Ok(list.data.into_iter().map(|e| e.id).collect())
}

/// Model lists shaped `{"models": [{"name": …}]}` (Ollama, Gemini).
pub(crate) fn names_under_models(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        models: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        name: String,
    }
    let list: List = decode(body)?;
    Ok(list.models.into_iter().map(|e| e.name).collect())
}

/// The system prompt, unless it is missing or blank.
pub(crate) fn system_prompt(req: &ChatRequest) -> Option<&str> {
    req.system.as_deref().filter(|s| !s.trim().is_empty())
}

/// A tool call's arguments as the JSON object most providers require: arguments that are
/// not an object (a model that wrote invalid JSON, see [`ToolCall::arguments`]) are sent
/// as an empty object.
pub(crate) fn arguments_object(call: &ToolCall) -> Value {
    if call.arguments.is_object() {
        call.arguments.clone()
    } else {
        json!({})
    }
}

/// A tool call's arguments as the JSON text OpenAI-style APIs carry them in: what the model
/// wrote when it was not a JSON object, else the object encoded.
pub(crate) fn arguments_text(call: &ToolCall) -> String {
    match &call.arguments {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

/// Arguments a model wrote as JSON text: an object, `{}` for no text at all, else the
/// text itself (see [`ToolCall::arguments`]).
pub(crate) fn arguments_from_text(text: &str) -> Value {
    if text.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => value,
        _ => Value::String(text.to_owned()),
    }
}

/// A tool result for providers without an error flag (OpenAI-style, Ollama): an error
/// says so in its text.
pub(crate) fn result_text(result: &ToolResult) -> String {
    if result.is_error {
        format!("Error: {}", result.content)
    } else {
        result.content.clone()
    }
}

/// A fresh id for a tool call of a provider that gives none (Gemini, Ollama).
pub(crate) fn generated_call_id() -> String {
    format!("call_{}", uuid::Uuid::new_v4().simple())
}

/// One turn of a conversation whose turns alternate: the text of its messages joined with
/// a blank line, and their images, tool calls and tool results in order.
#[derive(Debug, PartialEq)]
pub(crate) struct Turn<'a> {
    pub(crate) role: Role,
    pub(crate) text: String,
    pub(crate) images: Vec<&'a Image>,
    pub(crate) tool_calls: Vec<&'a ToolCall>,
    pub(crate) tool_results: Vec<&'a ToolResult>,
}

impl Turn<'_> {
    /// Only text: sent exactly as before images and tools existed.
    pub(crate) fn is_plain(&self) -> bool {
        self.images.is_empty() && self.tool_calls.is_empty() && self.tool_results.is_empty()
    }
}

/// Turns that alternate and start with the user, as Anthropic and Gemini require:
/// leading assistant turns are dropped (a memory window may start mid-exchange) and
/// consecutive turns of one role are joined.
pub(crate) fn alternating_turns(messages: &[Message]) -> Vec<Turn<'_>> {
    let mut turns: Vec<Turn<'_>> = Vec::new();
    let from_first_user = messages.iter().skip_while(|m| m.role != Role::User);
    for message in from_first_user {
        match turns.last_mut() {
            Some(turn) if turn.role == message.role => {
                if !message.content.is_empty() {
                    if !turn.text.is_empty() {
                        turn.text.push_str("\n\n");
                    }
                    turn.text.push_str(&message.content);
                }
            }
            _ => turns.push(Turn {
                role: message.role,
                text: message.content.clone(),
                images: Vec::new(),
                tool_calls: Vec::new(),
                tool_results: Vec::new(),
            }),
        }
        if let Some(turn) = turns.last_mut() {
            turn.images.extend(&message.images);
            turn.tool_calls.extend(&message.tool_calls);
            turn.tool_results.extend(&message.tool_results);
        }
    }
    turns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternation_merges_and_drops_leading_assistant_turns() {
        let messages = vec![
            Message::assistant("orphan reply"),
            Message::user("a"),
            Message::user("b"),
            Message::assistant("c"),
            Message::assistant("d"),
            Message::user("e"),
        ];
        let turns: Vec<(Role, String)> = alternating_turns(&messages)
            .into_iter()
            .map(|turn| (turn.role, turn.text))
            .collect();
        assert_eq!(
            turns,
            vec![
                (Role::User, "a\n\nb".to_owned()),
                (Role::Assistant, "c\n\nd".to_owned()),
                (Role::User, "e".to_owned()),
            ]
        );
        assert!(alternating_turns(&[Message::assistant("x")]).is_empty());
    }

    #[test]
    fn joined_turns_keep_images_calls_and_results_in_order() {
        let call = ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments: json!({}),
        };
        let image = Image {
            media_type: "image/png".into(),
            data: bytes::Bytes::from_static(b"png"),
        };
        let messages = vec![
            Message::user("q"),
            Message::assistant_calls("", vec![call.clone()]),
            Message::tool_results(vec![ToolResult::ok(&call, "r")]),
            Message {
                images: vec![image.clone()],
                ..Message::user("look")
            },
        ];
        let turns = alternating_turns(&messages);
        assert_eq!(turns.len(), 3);
        assert_eq!(turns[1].tool_calls, vec![&call]);
        assert!(!turns[1].is_plain());
        let last = &turns[2];
        assert_eq!(last.text, "look", "an empty text adds no blank line");
        assert_eq!(last.tool_results.len(), 1);
        assert_eq!(last.images, vec![&image]);
        assert!(turns[0].is_plain());
    }

    #[test]
    fn arguments_text_round_trips() {
        assert_eq!(arguments_from_text(""), json!({}));
        assert_eq!(arguments_from_text(" {\"a\": 1} "), json!({"a": 1}));
        assert_eq!(arguments_from_text("[1]"), json!("[1]"));
        assert_eq!(arguments_from_text("{\"a\""), json!("{\"a\""));
        let call = |arguments| ToolCall {
            id: "c".into(),
            name: "f".into(),
            arguments,
        };
        assert_eq!(arguments_text(&call(json!("{\"a\""))), "{\"a\"");
        assert_eq!(arguments_text(&call(json!({"a": 1}))), "{\"a\":1}");
        assert_eq!(arguments_object(&call(json!("x"))), json!({}));
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        let cases = [
            (
                "https://api.openai.com/v1",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1/",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "http://localhost:11434",
                "http://localhost:11434/chat/completions",
            ),
        ];
        for (base, expected) in cases {
            let base = Url::parse(base).ok();
            let url = base.map(|b| endpoint(&b, &["chat", "completions"]).to_string());
            assert_eq!(url.as_deref(), Some(expected));
        }
    }

    #[test]
    fn decode_reasons_are_short() {
        assert_eq!(
            decode::<serde_json::Value>(b"<html>").err().as_deref(),
            Some("not JSON")
        );
        assert_eq!(
            decode::<serde_json::Value>(b"{\"a\":").err().as_deref(),
            Some("truncated JSON")
        );
    }
}
