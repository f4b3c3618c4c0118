//! The slow fake LLM: streams a script in each provider's documented format, logging what
//! it was asked.

use super::*;

/// The wire format a fake streams in.
pub use crate::helpers::LlmKind as Kind;

/// What a slow fake LLM answers: `pieces` one every `every`; with `fail_after`, an error
/// instead of the rest after that many pieces.
#[derive(Clone, Debug)]
pub struct Script {
    pub kind: Kind,
    pub pieces: Vec<String>,
    pub every: Duration,
    pub fail_after: Option<usize>,
}

impl Script {
    pub fn new(kind: Kind, text: &str, pieces: usize, every: Duration) -> Script {
        Script {
            kind,
            pieces: chunks(text, pieces),
            every,
            fail_after: None,
        }
    }
    pub fn answer(&self) -> String {
        self.pieces.concat()
    }
}

/// `text` in `n` pieces of about equal length (on char boundaries).
pub(super) fn chunks(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(n.max(1)).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[derive(Default, Debug)]
pub struct LlmLog {
    pub requests: Vec<Value>,
    pub last_piece_at: Option<Instant>,
}

#[derive(Clone)]
pub(super) struct Fake {
    pub(super) script: Arc<Mutex<Script>>,
    pub(super) log: Arc<Mutex<LlmLog>>,
}

/// A fake LLM server that streams its script slowly, checking requests like the real API
/// (path, key header, `stream`, messages).
pub struct SlowLlm {
    pub uri: String,
    pub log: Arc<Mutex<LlmLog>>,
    pub(super) script: Arc<Mutex<Script>>,
}

impl SlowLlm {
    pub async fn start(script: Script) -> SlowLlm {
        let fake = Fake {
            script: Arc::new(Mutex::new(script)),
            log: Arc::default(),
        };
        let uri = serve_axum(Router::new().fallback(answer).with_state(fake.clone())).await;
        SlowLlm {
            uri,
            log: fake.log,
            script: fake.script,
        }
    }

    pub fn set_script(&self, script: Script) {
        *self.script.lock().unwrap() = script;
    }

    /// The bot's LLM settings for this fake.
    pub fn env(&self, spawn: Spawn) -> Spawn {
        let kind = self.script.lock().unwrap().kind;
        let spawn = spawn
            .env("LLM_PROVIDER", kind.provider())
            .env("LLM_BASE_URL", &format!("{}{}", self.uri, kind.prefix()));
        if kind == Kind::Ollama {
            spawn
        } else {
            spawn.env("LLM_API_KEY", KEY)
        }
    }

    pub fn last_piece_at(&self) -> Option<Instant> {
        self.log.lock().unwrap().last_piece_at
    }
}

pub(super) fn refuse(status: StatusCode, message: &str) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"error": {"message": message}}).to_string(),
        ))
        .unwrap()
}

pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

pub(super) async fn answer(
    State(fake): State<Fake>,
    method: axum::http::Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let script = fake.script.lock().unwrap().clone();
    if method != axum::http::Method::POST {
        return refuse(StatusCode::NOT_FOUND, "no such endpoint");
    }
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "invalid JSON");
    };
    let path = uri.path();
    // Ollama without streaming: the whole answer at once, after the time it takes.
    if script.kind == Kind::Ollama && path == "/api/chat" && body["stream"] == json!(false) {
        fake.log.lock().unwrap().requests.push(body);
        let pieces = u32::try_from(script.pieces.len()).unwrap();
        tokio::time::sleep(script.every * pieces).await;
        fake.log.lock().unwrap().last_piece_at = Some(Instant::now());
        let whole = json!({"model": "llama3.1:8b", "created_at": "2026-12-07T10:00:00Z",
            "message": {"role": "assistant", "content": script.answer()},
            "done": true, "done_reason": "stop"});
        return Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(Body::from(whole.to_string()))
            .unwrap();
    }
    let ok = match script.kind {
        Kind::Ollama => path == "/api/chat" && body["stream"] == json!(true),
        Kind::OpenAi => {
            path == "/v1/chat/completions"
                && header(&headers, "authorization") == Some(&format!("Bearer {KEY}"))
                && body["stream"] == json!(true)
        }
        Kind::Anthropic => {
            path == "/v1/messages"
                && header(&headers, "x-api-key") == Some(KEY)
                && header(&headers, "anthropic-version").is_some()
                && body["stream"] == json!(true)
                && body["max_tokens"].is_u64()
        }
        Kind::Gemini => {
            path.starts_with("/v1beta/models/")
                && path.ends_with(":streamGenerateContent")
                && uri.query() == Some("alt=sse")
                && header(&headers, "x-goog-api-key") == Some(KEY)
                && body["contents"].is_array()
        }
    };
    // Every API but Gemini (model in the path) wants a model and a non-empty list of
    // messages with known roles and text content.
    let messages_ok = match script.kind {
        Kind::Gemini => body["contents"]
            .as_array()
            .is_some_and(|c| !c.is_empty() && c.iter().all(|t| t["parts"].is_array())),
        _ => {
            body["model"].as_str().is_some_and(|m| !m.is_empty())
                && body["messages"].as_array().is_some_and(|m| {
                    !m.is_empty()
                        && m.iter().all(|x| {
                            matches!(x["role"].as_str(), Some("system" | "user" | "assistant"))
                                && (x["content"].is_string() || x["content"].is_array())
                        })
                })
        }
    };
    if !ok || !messages_ok {
        return refuse(StatusCode::BAD_REQUEST, "bad request");
    }
    fake.log.lock().unwrap().requests.push(body);
    let (head, pieces, tail, error) = frames(&script);
    let every = script.every;
    let log = fake.log.clone();
    let count = pieces.len();
    let mut frames: Vec<(bool, String)> = vec![(false, head)];
    frames.extend(pieces.into_iter().map(|p| (true, p)));
    match error {
        Some(error) => frames.push((true, error)),
        None => frames.push((false, tail)),
    }
    let stream = futures_util::stream::unfold((frames, 0usize), move |(frames, i)| {
        let log = log.clone();
        async move {
            let (is_piece, frame) = frames.get(i)?.clone();
            if is_piece {
                // The fake's pace: a piece every `every`.
                tokio::time::sleep(every).await;
                if i == count {
                    log.lock().unwrap().last_piece_at = Some(Instant::now());
                }
            }
            Some((Ok::<_, Infallible>(Bytes::from(frame)), (frames, i + 1)))
        }
    });
    let content_type = match script.kind {
        Kind::Ollama => "application/x-ndjson",
        _ => "text/event-stream",
    };
    Response::builder()
        .status(200)
        .header("content-type", content_type)
        .body(Body::from_stream(stream))
        .unwrap()
}

/// The frames of a streamed answer in the script's format: what comes before the first
/// piece, one frame per piece, what ends a complete answer, and the error frame that
/// replaces the end when the script fails.
pub(super) fn frames(script: &Script) -> (String, Vec<String>, String, Option<String>) {
    let n = script.fail_after.unwrap_or(script.pieces.len());
    let pieces = &script.pieces[..n.min(script.pieces.len())];
    let sse = |data: Value| format!("data: {data}\n\n");
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    match script.kind {
        Kind::Ollama => {
            let line = |text: &str, done: bool| {
                let mut l = json!({"model": "llama3.1:8b", "created_at": "2026-12-07T10:00:00Z",
                    "message": {"role": "assistant", "content": text}, "done": done});
                if done {
                    l["done_reason"] = json!("stop");
                }
                format!("{l}\n")
            };
            (
                String::new(),
                pieces.iter().map(|p| line(p, false)).collect(),
                line("", true),
                script
                    .fail_after
                    .map(|_| format!("{}\n", json!({"error": "model runner crashed"}))),
            )
        }
        Kind::OpenAi => {
            let chunk = |delta: Value, finish: Option<&str>| {
                sse(json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                    "model": "gpt-4.1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}))
            };
            (
                chunk(json!({"role": "assistant", "content": ""}), None),
                pieces
                    .iter()
                    .map(|p| chunk(json!({"content": p}), None))
                    .collect(),
                chunk(json!({}), Some("stop")) + "data: [DONE]\n\n",
                script.fail_after.map(|_| {
                    sse(json!({"error": {"message": "server error", "type": "server_error"}}))
                }),
            )
        }
        Kind::Anthropic => (
            event(
                "message_start",
                json!({"type": "message_start", "message": {"id": "msg_1", "type": "message",
                    "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [],
                    "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": 5, "output_tokens": 1}}}),
            ) + &event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
            ),
            pieces
                .iter()
                .map(|p| {
                    event(
                        "content_block_delta",
                        json!({"type": "content_block_delta", "index": 0,
                            "delta": {"type": "text_delta", "text": p}}),
                    )
                })
                .collect(),
            event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": 0}),
            ) + &event(
                "message_delta",
                json!({"type": "message_delta", "delta": {"stop_reason": "end_turn",
                    "stop_sequence": null}, "usage": {"output_tokens": 3}}),
            ) + &event("message_stop", json!({"type": "message_stop"})),
            script.fail_after.map(|_| {
                event(
                    "error",
                    json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                )
            }),
        ),
        Kind::Gemini => {
            let candidate = |text: &str, finish: Option<&str>| {
                let mut c = json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
                if let Some(finish) = finish {
                    c["finishReason"] = json!(finish);
                }
                sse(json!({"candidates": [c], "modelVersion": "gemini-2.5-flash"}))
            };
            (
                String::new(),
                pieces.iter().map(|p| candidate(p, None)).collect(),
                candidate("", Some("STOP")),
                script.fail_after.map(|_| {
                    sse(json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}))
                }),
            )
        }
    }
}
