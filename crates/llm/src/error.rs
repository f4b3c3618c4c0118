//! One error type for every provider, and the mapping from HTTP answers to it. Messages
//! are short and never carry keys or prompt text, so the bot may log them as they are.

use std::time::Duration;

use reqwest::{StatusCode, header::HeaderMap};

use crate::ProviderKind;

/// Why an exchange with a provider failed: reqwest's error, or the lean HTTP/1.1 client's
/// for providers at a plain `http://` address. Neither carries the URL, which may hold
/// credentials a user put in `LLM_BASE_URL`.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct TransportError(Box<dyn std::error::Error + Send + Sync>);

impl From<reqwest::Error> for TransportError {
    fn from(err: reqwest::Error) -> Self {
        TransportError(Box::new(err.without_url()))
    }
}

impl From<crate::h1::Error> for TransportError {
    fn from(err: crate::h1::Error) -> Self {
        TransportError(Box::new(err))
    }
}

/// Why a chat call failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// The provider refused the key (HTTP 401 or 403).
    #[error("{provider} rejected the credentials (HTTP {status})")]
    Auth { provider: ProviderKind, status: u16 },
    /// HTTP 429, still there after the one retry this crate makes.
    #[error("{provider} is rate limiting requests")]
    RateLimited {
        provider: ProviderKind,
        retry_after: Option<Duration>,
    },
    /// The chat endpoint answered 404: the model is unknown (or not pulled, for Ollama).
    #[error("{provider} has no model named {model:?}")]
    ModelNotFound {
        provider: ProviderKind,
        model: String,
    },
    /// No complete answer within the configured timeout.
    #[error("{provider} did not answer within {after:?}")]
    Timeout {
        provider: ProviderKind,
        after: Duration,
    },
    /// The provider failed (HTTP 5xx). For an error reported inside a stream that began
    /// with 200, `status` is the one the provider documents for that error type, else 500.
    #[error("{provider} failed with HTTP {status}: {message}")]
    Server {
        provider: ProviderKind,
        status: u16,
        message: String,
    },
    /// The provider refused the request (another 4xx); `message` is the provider's own.
    #[error("{provider} rejected the request with HTTP {status}: {message}")]
    BadRequest {
        provider: ProviderKind,
        status: u16,
        message: String,
    },
    /// No connection, or it broke before the answer was read.
    #[error("{provider} could not be reached")]
    Unreachable {
        provider: ProviderKind,
        source: TransportError,
    },
    /// An answer that is not what the provider documents: not JSON, missing fields, no
    /// text, a stream that stops before its end marker.
    #[error("{provider} sent an unusable answer: {reason}")]
    Malformed {
        provider: ProviderKind,
        reason: String,
    },
}

impl LlmError {
    /// Another provider might succeed where this one failed: worth calling the fallback.
    pub fn is_failover_worthy(&self) -> bool {
        matches!(
            self,
            LlmError::Timeout { .. }
                | LlmError::Server { .. }
                | LlmError::Unreachable { .. }
                | LlmError::RateLimited { .. }
        )
    }

    /// The provider the failed call went to.
    pub fn provider(&self) -> ProviderKind {
        match self {
            LlmError::Auth { provider, .. }
            | LlmError::RateLimited { provider, .. }
            | LlmError::ModelNotFound { provider, .. }
            | LlmError::Timeout { provider, .. }
            | LlmError::Server { provider, .. }
            | LlmError::BadRequest { provider, .. }
            | LlmError::Unreachable { provider, .. }
            | LlmError::Malformed { provider, .. } => *provider,
        }
    }

    pub(crate) fn unreachable(provider: ProviderKind, source: impl Into<TransportError>) -> Self {
        LlmError::Unreachable {
            provider,
            source: source.into(),
        }
    }

    pub(crate) fn malformed(provider: ProviderKind, reason: impl Into<String>) -> Self {
        LlmError::Malformed {
            provider,
            reason: reason.into(),
        }
    }
}

/// Maps a non-success answer of a chat endpoint.
pub(crate) fn from_status(
    provider: ProviderKind,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
) -> LlmError {
    let code = status.as_u16();
    match code {
        401 | 403 => LlmError::Auth {
            provider,
            status: code,
        },
        404 => LlmError::ModelNotFound {
            provider,
            model: model.to_owned(),
        },
        429 => LlmError::RateLimited {
            provider,
            retry_after: retry_after(headers),
        },
        500..=599 => LlmError::Server {
            provider,
            status: code,
            message: provider_message(body, status),
        },
        _ => LlmError::BadRequest {
            provider,
            status: code,
            message: provider_message(body, status),
        },
    }
}

/// `Retry-After` in seconds; the HTTP-date form is rare for APIs and treated as absent.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok()
}

const MESSAGE_LIMIT: usize = 300;

/// The human message of a provider's error body. Every provider here nests it the same
/// ways: `{"error": "…"}` (Ollama), `{"error": {"message": "…"}}` (OpenAI, Anthropic,
/// Gemini) or a top-level `message`.
pub(crate) fn provider_message(body: &[u8], status: StatusCode) -> String {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let from_json = json.as_ref().and_then(|v| {
        let error = v.get("error");
        error
            .and_then(|e| e.as_str())
            .or_else(|| {
                error
                    .and_then(|e| e.get("message"))
                    .and_then(|m| m.as_str())
            })
            .or_else(|| v.get("message").and_then(|m| m.as_str()))
            .map(str::to_owned)
    });
    let text = match from_json {
        Some(message) => message,
        None if json.is_none() && !looks_like_html(body) => {
            String::from_utf8_lossy(body).trim().to_owned()
        }
        None => String::new(),
    };
    if text.is_empty() {
        return status.canonical_reason().unwrap_or("no details").to_owned();
    }
    shorten(&text, MESSAGE_LIMIT)
}

fn looks_like_html(body: &[u8]) -> bool {
    body.iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'<')
}

/// Cuts `text` to at most `limit` characters, marking the cut.
pub(crate) fn shorten(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderValue, RETRY_AFTER};

    fn map(status: u16, body: &str) -> LlmError {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::IM_A_TEAPOT);
        from_status(
            ProviderKind::OpenAi,
            status,
            &HeaderMap::new(),
            body.as_bytes(),
            "m",
        )
    }

    #[test]
    fn statuses_map_to_variants() {
        assert!(matches!(map(401, ""), LlmError::Auth { status: 401, .. }));
        assert!(matches!(map(403, ""), LlmError::Auth { status: 403, .. }));
        assert!(matches!(map(404, ""), LlmError::ModelNotFound { model, .. } if model == "m"));
        assert!(matches!(
            map(429, ""),
            LlmError::RateLimited {
                retry_after: None,
                ..
            }
        ));
        assert!(matches!(map(503, ""), LlmError::Server { status: 503, .. }));
        assert!(matches!(map(529, ""), LlmError::Server { status: 529, .. }));
        assert!(matches!(
            map(400, ""),
            LlmError::BadRequest { status: 400, .. }
        ));
        assert!(matches!(
            map(422, ""),
            LlmError::BadRequest { status: 422, .. }
        ));
    }

    #[test]
    fn messages_come_from_each_providers_error_shape() {
        let cases = [
            (
                r#"{"error":"model \"x\" not found"}"#,
                "model \"x\" not found",
            ),
            (
                r#"{"error":{"message":"bad role","type":"invalid_request_error"}}"#,
                "bad role",
            ),
            (
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#,
                "max_tokens: Field required",
            ),
            (
                r#"{"error":{"code":400,"message":"Please use a valid role: user, model.","status":"INVALID_ARGUMENT"}}"#,
                "Please use a valid role: user, model.",
            ),
            ("plain words", "plain words"),
            ("<html><body>502</body></html>", "Bad Request"),
            ("", "Bad Request"),
        ];
        for (body, expected) in cases {
            assert_eq!(
                provider_message(body.as_bytes(), StatusCode::BAD_REQUEST),
                expected,
                "{body}"
            );
        }
    }

    #[test]
    fn long_messages_are_cut() {
        let long = "é".repeat(1000);
        let message = provider_message(long.as_bytes(), StatusCode::BAD_REQUEST);
        assert_eq!(message.chars().count(), MESSAGE_LIMIT + 1);
    }

    #[test]
    fn retry_after_reads_seconds() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("-1"));
        assert_eq!(retry_after(&headers), None);
    }

    #[test]
    fn failover_worthiness() {
        assert!(map(503, "").is_failover_worthy());
        assert!(map(429, "").is_failover_worthy());
        assert!(!map(401, "").is_failover_worthy());
        assert!(!map(404, "").is_failover_worthy());
        assert!(!map(400, "").is_failover_worthy());
        assert!(!LlmError::malformed(ProviderKind::Gemini, "x").is_failover_worthy());
    }
}
