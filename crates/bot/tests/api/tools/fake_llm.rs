//! Fake LLMs with tools: one server per provider that checks a request the way the real
//! API does and answers with what the test's model says.

use super::*;

pub(super) use crate::helpers::LlmKind as Kind;

/// What the fake model sees in a request, whatever the provider's format.
#[derive(Clone, Debug, Default)]
pub(super) struct Seen {
    /// The tool names offered.
    pub(super) tools: Vec<String>,
    /// The results that end the conversation (the answers to the model's last calls):
    /// `(content, is_error)`.
    pub(super) results: Vec<(String, bool)>,
    /// How many rounds of results the conversation holds.
    pub(super) rounds: usize,
}

/// The fake model's move.
pub(super) enum Say {
    /// Some text (shown while streaming), then calls.
    Call(String, Vec<(String, Value)>),
    Text(String),
}

pub(super) type Model = Arc<dyn Fn(&Seen) -> Say + Send + Sync>;

#[derive(Clone)]
pub(super) struct ToolLlm {
    pub(super) uri: String,
    pub(super) kind: Kind,
    pub(super) log: Arc<Mutex<Vec<Value>>>,
}

#[derive(Clone)]
pub(super) struct Fake {
    pub(super) kind: Kind,
    pub(super) model: Model,
    pub(super) log: Arc<Mutex<Vec<Value>>>,
}

impl ToolLlm {
    pub(super) async fn start(kind: Kind, model: Model) -> ToolLlm {
        let fake = Fake {
            kind,
            model,
            log: Arc::default(),
        };
        let uri = serve_axum(Router::new().fallback(answer).with_state(fake.clone())).await;
        ToolLlm {
            uri,
            kind,
            log: fake.log,
        }
    }

    pub(super) fn env(&self, spawn: Spawn) -> Spawn {
        let spawn = spawn.env("LLM_PROVIDER", self.kind.provider()).env(
            "LLM_BASE_URL",
            &format!("{}{}", self.uri, self.kind.prefix()),
        );
        match self.kind {
            Kind::Ollama => spawn,
            _ => spawn.env("LLM_API_KEY", KEY),
        }
    }

    pub(super) fn requests(&self) -> Vec<Value> {
        self.log.lock().unwrap().clone()
    }
}

pub(super) fn refuse(message: impl Into<String>) -> Response {
    let message = message.into();
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"error": {"message": message}}).to_string(),
        ))
        .unwrap()
}

pub(super) fn json_response(body: Value) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

pub(super) fn stream_response(content_type: &str, body: String) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .body(Body::from(body))
        .unwrap()
}

pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `^[a-zA-Z0-9_-]{1,64}$`: OpenAI's and Anthropic's rule for tool names (Ollama takes
/// the OpenAI shapes).
pub(super) fn plain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Gemini's rule: starts with a letter or `_`; letters, digits, `_ . : -`; ≤ 64.
pub(super) fn gemini_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
}

pub(super) async fn answer(
    State(fake): State<Fake>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != axum::http::Method::POST {
        return Response::builder().status(404).body(Body::empty()).unwrap();
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return refuse("invalid JSON");
    };
    let path = uri.path();
    let (seen, stream) = match fake.kind {
        Kind::Ollama => {
            if path != "/api/chat" || !body["stream"].is_boolean() {
                return refuse("POST /api/chat with stream");
            }
            (ollama_seen(&body), body["stream"] == json!(true))
        }
        Kind::OpenAi => {
            if path != "/v1/chat/completions"
                || header(&headers, "authorization") != Some(&format!("Bearer {KEY}"))
            {
                return refuse("POST /v1/chat/completions with the key");
            }
            (openai_seen(&body), body["stream"] == json!(true))
        }
        Kind::Anthropic => {
            if path != "/v1/messages"
                || header(&headers, "x-api-key") != Some(KEY)
                || header(&headers, "anthropic-version").is_none()
            {
                return refuse("POST /v1/messages with x-api-key and anthropic-version");
            }
            (anthropic_seen(&body), body["stream"] == json!(true))
        }
        Kind::Gemini => {
            let Some(call) = path.strip_prefix("/v1beta/models/") else {
                return refuse("POST /v1beta/models/{model}:generateContent");
            };
            if header(&headers, "x-goog-api-key") != Some(KEY) {
                return refuse("x-goog-api-key");
            }
            let stream = if call.ends_with(":streamGenerateContent") {
                if uri.query() != Some("alt=sse") {
                    return refuse("streamGenerateContent needs alt=sse here");
                }
                true
            } else if call.ends_with(":generateContent") {
                false
            } else {
                return refuse("unknown method");
            };
            (gemini_seen(&body), stream)
        }
    };
    let seen = match seen {
        Ok(seen) => seen,
        Err(why) => return refuse(why),
    };
    fake.log.lock().unwrap().push(body);
    let say = (fake.model)(&seen);
    match fake.kind {
        Kind::Ollama => ollama_say(say, stream),
        Kind::OpenAi => openai_say(say, stream),
        Kind::Anthropic => anthropic_say(say, stream),
        Kind::Gemini => gemini_say(say, stream),
    }
}

pub(super) fn object_schema(schema: &Value) -> bool {
    schema.is_object() && schema["type"] == "object"
}

/// OpenAI-style `tools` (Ollama takes the same shape).
pub(super) fn function_tools(body: &Value) -> Result<Vec<String>, String> {
    let Some(tools) = body.get("tools") else {
        return Ok(Vec::new());
    };
    let tools = tools.as_array().ok_or("tools: must be an array")?;
    let mut names = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        let function = &tool["function"];
        let name = function["name"].as_str().unwrap_or("");
        if tool["type"] != "function" || !plain_name(name) {
            return Err(format!("tools[{i}]: type 'function' and a valid name"));
        }
        if function
            .get("parameters")
            .is_some_and(|p| !object_schema(p))
        {
            return Err(format!("tools[{i}]: parameters must be an object schema"));
        }
        names.push(name.to_owned());
    }
    Ok(names)
}

/// The names of the tools a request offered, in any provider's format.
pub(super) fn offered_in(kind: Kind, body: &Value) -> Vec<String> {
    match kind {
        Kind::Ollama | Kind::OpenAi => function_tools(body).unwrap_or_default(),
        Kind::Anthropic => body["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .filter_map(|t| t["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
        Kind::Gemini => body["tools"]
            .as_array()
            .map(|t| {
                t.iter()
                    .flat_map(|t| {
                        t["functionDeclarations"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                    })
                    .filter_map(|f| f["name"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default(),
    }
}
