//! Google's Gemini API: `POST models/{model}:generateContent` (and
//! `:streamGenerateContent?alt=sse`) with the key in `x-goog-api-key`, never in the URL,
//! where it would end up in logs; `GET models` for the list.

use reqwest::{StatusCode, header::HeaderName};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{
    ChatRequest, LlmError, ProviderKind,
    provider::{Answer, Auth, Body, Counts, Route, Step, Wire},
    sse::Frame,
    wire::{
        Sampling, SamplingNames, alternating_turns, decode, endpoint, names_under_models,
        system_prompt,
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

pub(crate) struct Gemini {
    route: Route,
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
}

#[derive(Serialize)]
struct Content {
    role: &'static str,
    parts: [TextPart; 1],
}

#[derive(Serialize)]
struct TextPart {
    text: String,
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
struct AnswerPart {
    text: Option<String>,
    /// Thought summaries, only sent when asked for; never part of the answer.
    #[serde(default)]
    thought: bool,
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

    /// The answer text of the first candidate and whether it says it is finished; `None`
    /// when there is no candidate (a stream may send usage alone).
    fn into_text(self) -> Result<Option<(String, bool)>, String> {
        let candidate = self.candidates.and_then(|c| c.into_iter().next());
        let Some(candidate) = candidate else {
            return match self.prompt_feedback.and_then(|f| f.block_reason) {
                Some(reason) => Err(format!("the prompt was blocked ({reason})")),
                None => Ok(None),
            };
        };
        let text: String = candidate
            .content
            .map(|c| c.parts)
            .unwrap_or_default()
            .into_iter()
            .filter(|part| !part.thought)
            .filter_map(|part| part.text)
            .collect();
        match candidate.finish_reason {
            // SAFETY, RECITATION, …: the reason is all there is to report.
            Some(reason) if text.is_empty() && reason != "STOP" => {
                Err(format!("no text (finish reason {reason})"))
            }
            finish => Ok(Some((text, finish.is_some()))),
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
        let contents = alternating_turns(&req.messages, "model")
            .into_iter()
            .map(|(role, text)| Content {
                role,
                parts: [TextPart { text }],
            })
            .collect();
        serde_json::to_vec(&GenerateBody {
            contents,
            system_instruction: system_prompt(req).map(|text| Instruction {
                parts: [InstructionPart { text }],
            }),
            generation_config: Sampling::new(req, SAMPLING),
        })
    }

    fn parse_answer(&self, body: &[u8]) -> Result<Answer, String> {
        let answer: GenerateAnswer = decode(body)?;
        let usage = answer.usage();
        match answer.into_text()? {
            Some((text, _)) => Ok(Answer {
                usage,
                ..Answer::text(text)
            }),
            None => Err("the answer has no candidates".to_owned()),
        }
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
            .into_text()
            .map_err(|reason| LlmError::malformed(KIND, reason))?;
        let Some((text, finished)) = answer else {
            return Ok(Step {
                usage,
                ..Step::nothing()
            });
        };
        // No end marker: the chunk carrying `finishReason` is the last one with text.
        let step = Step {
            usage,
            ..Step::text(text)
        };
        Ok(if finished { step.complete() } else { step })
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
