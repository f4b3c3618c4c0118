//! Google's Gemini API: `POST models/{model}:generateContent` (and
//! `:streamGenerateContent?alt=sse`) with the key in `x-goog-api-key`, never in the URL,
//! where it would end up in logs; `GET models` for the list.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Mutex, MutexGuard, PoisonError},
};

use reqwest::{StatusCode, header::HeaderName};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use url::Url;

use crate::{
    ChatRequest, LlmError, ProviderKind, Role, ToolCall, ToolSpec,
    provider::{Answer, Auth, Body, CallPiece, Counts, Route, Step, Wire},
    sse::Frame,
    wire::{
        Sampling, SamplingNames, Turn, alternating_turns, arguments_object, base64, decode,
        endpoint, generated_call_id, names_under_models, object_schema, system_prompt,
    },
};

const KIND: ProviderKind = ProviderKind::Gemini;
// A constant, so a malformed name fails the build rather than a call.
const KEY_HEADER: HeaderName = HeaderName::from_static("x-goog-api-key");
/// The list is paged (50 by default); one large page is enough for a probe.
const MODEL_PAGE: &str = "1000";
const SAMPLING: SamplingNames = SamplingNames {
    temperature: "temperature",
    max_tokens: "maxOutputTokens",
};

/// What Gemini 3 accepts as the signature of a function call whose own signature is not
/// known (the call was made by another provider, or before a restart); documented for
/// conversations moved in from elsewhere.
const UNKNOWN_SIGNATURE: &str = "skip_thought_signature_validator";
/// Signatures remembered, for the calls of conversations still running their tool loop.
const SIGNATURES_KEPT: usize = 1024;

pub(crate) struct Gemini {
    route: Route,
    signatures: Mutex<Signatures>,
}

/// The `thoughtSignature` of recent function calls by call id. Gemini 3 refuses a
/// conversation whose function calls come back without the signature it gave them, and
/// the neutral [`ToolCall`] has no room for it; the bot's next request in the same tool
/// loop names the call by id.
#[derive(Default)]
struct Signatures {
    by_id: HashMap<String, String>,
    order: VecDeque<String>,
}

impl Signatures {
    fn remember(&mut self, id: &str, signature: String) {
        if self.by_id.insert(id.to_owned(), signature).is_none() {
            self.order.push_back(id.to_owned());
        }
        while self.order.len() > SIGNATURES_KEPT {
            if let Some(oldest) = self.order.pop_front() {
                self.by_id.remove(&oldest);
            }
        }
    }
}

impl Gemini {
    pub(crate) fn new(base: &Url, key: Option<SecretString>) -> Self {
        let mut models = endpoint(base, &["models"]);
        models.query_pairs_mut().append_pair("pageSize", MODEL_PAGE);
        Gemini {
            route: Route {
                // The model and method are appended per call, see `chat_url`.
                chat: endpoint(base, &["models"]),
                models,
                auth: Auth::Header(KEY_HEADER),
                headers: &[],
                key,
            },
            signatures: Mutex::default(),
        }
    }

    fn signatures(&self) -> MutexGuard<'_, Signatures> {
        // A panic elsewhere cannot leave the map inconsistent: use it anyway.
        self.signatures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn remember(&self, calls: &mut [SignedCall]) {
        let mut signatures = self.signatures();
        for call in calls {
            if let Some(signature) = call.signature.take() {
                signatures.remember(&call.call.id, signature);
            }
        }
    }
}

/// The API names models `models/gemini-…`; people write either form.
fn bare(model: &str) -> &str {
    model.strip_prefix("models/").unwrap_or(model)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateBody<'a> {
    contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Instruction<'a>>,
    #[serde(skip_serializing_if = "Sampling::is_empty")]
    generation_config: Sampling,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Value>,
}

#[derive(Serialize)]
struct Content {
    role: &'static str,
    parts: Vec<Value>,
}

/// A turn as content: one text part when it is only text, else its parts: the
/// `functionResponse`s to the model's calls first, images as `inline_data` (the spelling of
/// Gemini's REST examples; the API also takes `inlineData`), the text if any, and the
/// model's `functionCall`s with their thought signatures.
fn content(turn: Turn<'_>, signatures: &Signatures) -> Content {
    let role = match turn.role {
        Role::User => "user",
        Role::Assistant => "model",
    };
    if turn.is_plain() {
        return Content {
            role,
            parts: vec![json!({"text": turn.text})],
        };
    }
    let results = turn.tool_results.iter().map(|result| {
        // The documented keys: `output`, or `error` for a failed call.
        let key = if result.is_error { "error" } else { "output" };
        json!({"functionResponse": {"name": result.name, "response": {key: result.content}}})
    });
    let images = turn.images.iter().map(
        |image| json!({"inline_data": {"mime_type": image.media_type, "data": base64(image)}}),
    );
    let text = (!turn.text.is_empty()).then(|| json!({"text": turn.text}));
    let calls = turn.tool_calls.iter().enumerate().map(|(i, call)| {
        let mut part = json!({"functionCall": {"name": call.name, "args": arguments_object(call)}});
        // Gemini 3 checks the first call of each step; the others may have none.
        let signature = match signatures.by_id.get(&call.id) {
            Some(signature) => Some(signature.as_str()),
            None => (i == 0).then_some(UNKNOWN_SIGNATURE),
        };
        if let Some(signature) = signature {
            part["thoughtSignature"] = json!(signature);
        }
        part
    });
    let parts = results.chain(images).chain(text).chain(calls).collect();
    Content { role, parts }
}

/// Function declarations take a subset of OpenAPI's schema: keys Gemini does not know
/// (`$schema`, `additionalProperties`, `const`, …) are refused, so they are dropped or
/// rewritten.
fn declaration(spec: &ToolSpec) -> Value {
    let mut declaration = json!({"name": spec.name, "description": spec.description});
    let parameters = gemini_schema(&object_schema(&spec.parameters));
    // An object without properties is refused: a tool without arguments declares none.
    if parameters.get("properties").is_some() {
        declaration["parameters"] = parameters;
    }
    declaration
}

/// Schema keys Gemini's `Schema` has.
const SCHEMA_KEYS: [&str; 17] = [
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

/// A JSON Schema in Gemini's subset: known keys only, one `type` (a `null` alternative
/// becomes `nullable`), `const` as a one-value `enum`, `oneOf` as `anyOf`, enums of
/// strings only, formats Gemini knows, `required` naming only declared properties, and
/// no empty `properties`.
fn gemini_schema(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return json!({});
    };
    let mut out = serde_json::Map::new();
    for (key, value) in map {
        match key.as_str() {
            "type" => match value {
                Value::String(_) => {
                    out.insert(key.clone(), value.clone());
                }
                Value::Array(types) => {
                    let all: Vec<&str> = types.iter().filter_map(Value::as_str).collect();
                    if let Some(first) = all.iter().find(|t| **t != "null") {
                        out.insert(key.clone(), json!(first));
                    }
                    if all.contains(&"null") {
                        out.insert("nullable".into(), json!(true));
                    }
                }
                _ => {}
            },
            "const" if value.is_string() => {
                out.insert("enum".into(), json!([value]));
            }
            "enum"
                if value
                    .as_array()
                    .is_some_and(|values| values.iter().all(Value::is_string)) =>
            {
                out.insert(key.clone(), value.clone());
            }
            // Numbers or mixed values: refused by Gemini, and the type still says enough.
            "enum" => {}
            "format" => {
                let known = ["enum", "date-time", "int32", "int64", "float", "double"];
                if value.as_str().is_some_and(|f| known.contains(&f)) {
                    out.insert(key.clone(), value.clone());
                }
            }
            "properties" => {
                if let Some(properties) = value.as_object().filter(|p| !p.is_empty()) {
                    let properties: serde_json::Map<String, Value> = properties
                        .iter()
                        .map(|(name, schema)| (name.clone(), gemini_schema(schema)))
                        .collect();
                    out.insert(key.clone(), Value::Object(properties));
                }
            }
            "items" => {
                out.insert(key.clone(), gemini_schema(value));
            }
            "anyOf" | "oneOf" => {
                if let Some(options) = value.as_array() {
                    out.insert("anyOf".into(), options.iter().map(gemini_schema).collect());
                }
            }
            key if SCHEMA_KEYS.contains(&key) => {
                out.insert(key.to_owned(), value.clone());
            }
            _ => {}
        }
    }
    let declared: Vec<String> = out
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    match out.get("required").and_then(Value::as_array) {
        Some(required) => {
            let required: Vec<Value> = required
                .iter()
                .filter(|name| {
                    name.as_str()
                        .is_some_and(|n| declared.iter().any(|d| d == n))
                })
                .cloned()
                .collect();
            if required.is_empty() {
                out.remove("required");
            } else {
                out.insert("required".into(), Value::Array(required));
            }
        }
        None => {
            out.remove("required");
        }
    }
    Value::Object(out)
}

#[derive(Serialize)]
struct Instruction<'a> {
    parts: [InstructionPart<'a>; 1],
}

#[derive(Serialize)]
struct InstructionPart<'a> {
    text: &'a str,
}

/// A whole answer and each streamed chunk share this shape.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateAnswer {
    candidates: Option<Vec<Candidate>>,
    prompt_feedback: Option<PromptFeedback>,
    error: Option<StreamError>,
    usage_metadata: Option<UsageMetadata>,
}

/// Token counts; a stream repeats them in its chunks, the last one complete. Thinking
/// models bill their thoughts as output but count them apart from the candidates.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
}

impl UsageMetadata {
    fn counts(&self) -> Counts {
        let output = [self.candidates_token_count, self.thoughts_token_count];
        Counts {
            prompt: self.prompt_token_count,
            completion: output
                .iter()
                .any(Option::is_some)
                .then(|| output.iter().flatten().sum()),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<CandidateContent>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<AnswerPart>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnswerPart {
    text: Option<String>,
    /// Thought summaries, only sent when asked for; never part of the answer.
    #[serde(default)]
    thought: bool,
    function_call: Option<FunctionCall>,
    thought_signature: Option<String>,
}

/// `{name, args}`, whole even when streamed; an `id` only in some APIs.
#[derive(Deserialize)]
struct FunctionCall {
    id: Option<String>,
    name: String,
    args: Option<Value>,
}

/// A call and the thought signature Gemini gave it.
struct SignedCall {
    call: ToolCall,
    signature: Option<String>,
}

/// What a whole answer or a streamed chunk holds.
struct Reply {
    text: String,
    calls: Vec<SignedCall>,
    /// It says why it ended: the last chunk of a stream.
    finished: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Deserialize)]
struct StreamError {
    #[serde(default)]
    code: u16,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorStatus,
}

#[derive(Deserialize)]
struct ErrorStatus {
    #[serde(default)]
    details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    reason: Option<String>,
}

impl GenerateAnswer {
    fn usage(&self) -> Counts {
        self.usage_metadata
            .as_ref()
            .map_or_else(Counts::default, UsageMetadata::counts)
    }

    /// The answer text and calls of the first candidate and whether it says it is
    /// finished; `None` when there is no candidate (a stream may send usage alone).
    fn into_reply(self) -> Result<Option<Reply>, String> {
        let candidate = self.candidates.and_then(|c| c.into_iter().next());
        let Some(candidate) = candidate else {
            return match self.prompt_feedback.and_then(|f| f.block_reason) {
                Some(reason) => Err(format!("the prompt was blocked ({reason})")),
                None => Ok(None),
            };
        };
        let mut text = String::new();
        let mut calls = Vec::new();
        let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
        for part in parts.into_iter().filter(|part| !part.thought) {
            if let Some(piece) = part.text {
                text.push_str(&piece);
            }
            if let Some(call) = part.function_call {
                calls.push(SignedCall {
                    call: ToolCall {
                        id: call.id.unwrap_or_else(generated_call_id),
                        name: call.name,
                        arguments: call.args.unwrap_or_else(|| json!({})),
                    },
                    signature: part.thought_signature,
                });
            }
        }
        match candidate.finish_reason {
            // SAFETY, RECITATION, MALFORMED_FUNCTION_CALL, …: the reason is all there is
            // to report.
            Some(reason) if text.is_empty() && calls.is_empty() && reason != "STOP" => {
                Err(format!("no text (finish reason {reason})"))
            }
            finish => Ok(Some(Reply {
                text,
                calls,
                finished: finish.is_some(),
            })),
        }
    }
}

impl Wire for Gemini {
    fn route(&self) -> &Route {
        &self.route
    }

    fn chat_url(&self, model: &str, stream: bool) -> Url {
        let method = if stream {
            "streamGenerateContent"
        } else {
            "generateContent"
        };
        let call = format!("{}:{method}", bare(model));
        let mut url = endpoint(&self.route.chat, &[&call]);
        if stream {
            url.query_pairs_mut().append_pair("alt", "sse");
        }
        url
    }

    fn chat_body(&self, req: &ChatRequest, _model: &str, _stream: bool) -> Body {
        let contents = {
            let signatures = self.signatures();
            alternating_turns(&req.messages)
                .into_iter()
                .map(|turn| content(turn, &signatures))
                .collect()
        };
        let declarations: Vec<Value> = req.tools.iter().map(declaration).collect();
        let tools = if declarations.is_empty() {
            Vec::new()
        } else {
            vec![json!({"functionDeclarations": declarations})]
        };
        serde_json::to_vec(&GenerateBody {
            contents,
            system_instruction: system_prompt(req).map(|text| Instruction {
                parts: [InstructionPart { text }],
            }),
            generation_config: Sampling::new(req, SAMPLING),
            tools,
        })
    }

    fn parse_answer(&self, body: &[u8]) -> Result<Answer, String> {
        let answer: GenerateAnswer = decode(body)?;
        let usage = answer.usage();
        let Some(mut reply) = answer.into_reply()? else {
            return Err("the answer has no candidates".to_owned());
        };
        self.remember(&mut reply.calls);
        Ok(Answer {
            tool_calls: reply.calls.into_iter().map(|c| c.call).collect(),
            usage,
            ..Answer::text(reply.text)
        })
    }

    fn parse_step(&self, frame: &Frame) -> Result<Step, LlmError> {
        let answer: GenerateAnswer =
            decode(frame.data.as_bytes()).map_err(|reason| LlmError::malformed(KIND, reason))?;
        if let Some(error) = answer.error {
            return Err(LlmError::Server {
                provider: KIND,
                status: if error.code >= 500 { error.code } else { 500 },
                message: error.message,
            });
        }
        let usage = answer.usage();
        let answer = answer
            .into_reply()
            .map_err(|reason| LlmError::malformed(KIND, reason))?;
        let Some(mut reply) = answer else {
            return Ok(Step {
                usage,
                ..Step::nothing()
            });
        };
        self.remember(&mut reply.calls);
        // No end marker: the chunk carrying `finishReason` is the last one with text.
        let step = Step {
            calls: reply
                .calls
                .into_iter()
                .map(|c| CallPiece::Whole(c.call))
                .collect(),
            usage,
            ..Step::text(reply.text)
        };
        Ok(if reply.finished {
            step.complete()
        } else {
            step
        })
    }

    fn parse_models(&self, body: &[u8]) -> Result<Vec<String>, String> {
        names_under_models(body)
    }

    fn lists(&self, names: &[String], model: &str) -> bool {
        names.iter().any(|name| bare(name) == bare(model))
    }

    /// A wrong key is a 400 whose details carry the reason `API_KEY_INVALID`.
    fn is_key_rejection(&self, status: StatusCode, body: &[u8]) -> bool {
        if status != StatusCode::BAD_REQUEST {
            return false;
        }
        let Ok(error) = serde_json::from_slice::<ErrorBody>(body) else {
            return false;
        };
        error
            .error
            .details
            .iter()
            .any(|detail| detail.reason.as_deref() == Some("API_KEY_INVALID"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemas_keep_only_what_gemini_knows() {
        let schema = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "mode": {"const": "fast"},
                "when": {"type": "string", "format": "date-time", "default": "now"},
                "site": {"type": "string", "format": "uri"},
                "level": {"type": "integer", "enum": [1, 2]},
                "tags": {"type": "array", "items": {"type": "string", "examples": ["a"]}},
                "filter": {"type": "object", "properties": {}},
                "either": {"oneOf": [{"type": "string"}, {"type": "null"}]},
            },
            "required": ["mode", "gone"],
        });
        assert_eq!(
            gemini_schema(&schema),
            json!({
                "type": "object",
                "properties": {
                    "mode": {"enum": ["fast"]},
                    "when": {"type": "string", "format": "date-time"},
                    "site": {"type": "string"},
                    "level": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "filter": {"type": "object"},
                    "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                },
                "required": ["mode"],
            })
        );
    }

    #[test]
    fn signatures_are_bounded() {
        let mut signatures = Signatures::default();
        for i in 0..SIGNATURES_KEPT + 10 {
            signatures.remember(&format!("call_{i}"), format!("sig{i}"));
        }
        assert_eq!(signatures.by_id.len(), SIGNATURES_KEPT);
        assert_eq!(signatures.order.len(), SIGNATURES_KEPT);
        assert!(!signatures.by_id.contains_key("call_0"));
        assert_eq!(
            signatures
                .by_id
                .get(&format!("call_{}", SIGNATURES_KEPT + 9)),
            Some(&format!("sig{}", SIGNATURES_KEPT + 9))
        );
    }
}
