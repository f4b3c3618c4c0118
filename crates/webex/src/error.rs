//! The one error type of the Webex client. Variants carry what an operator needs (HTTP
//! status, Webex's message, the tracking id Webex support asks for); none can contain
//! the token, because the token is only ever put in a request header.

use std::time::Duration;

/// What went wrong talking to Webex.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Webex answered with a non-2xx status that is not retried (or still failed after
    /// the retries ran out). `message` is Webex's own `{"message": …}` when present.
    #[error("Webex answered HTTP {status}: {message}{}", tracking_suffix(.tracking_id))]
    Http {
        status: u16,
        message: String,
        tracking_id: Option<String>,
    },
    /// Still rate limited (429) after all retries.
    #[error(
        "Webex rate limit still in force after retries (asked to wait {}s){}",
        .retry_after.as_secs(),
        tracking_suffix(.tracking_id)
    )]
    RateLimited {
        retry_after: Duration,
        tracking_id: Option<String>,
    },
    /// Connection error or timeout, after retries.
    #[error("could not reach Webex")]
    Transport(#[source] reqwest::Error),
    /// An answer (or a request body) that is not the JSON expected.
    #[error("unexpected JSON in {context}")]
    Decode {
        context: &'static str,
        #[source]
        source: serde_json::Error,
    },
    /// A base URL or link that cannot be used (not a base, or pointing elsewhere).
    #[error("invalid Webex URL: {0}")]
    InvalidUrl(String),
}

fn tracking_suffix(tracking_id: &Option<String>) -> String {
    tracking_id
        .as_deref()
        .map(|id| format!(" (tracking id {id})"))
        .unwrap_or_default()
}

impl Error {
    /// The HTTP status Webex answered with, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Http { status, .. } => Some(*status),
            Error::RateLimited { .. } => Some(429),
            Error::Transport(e) => e.status().map(|s| s.as_u16()),
            Error::Decode { .. } | Error::InvalidUrl(_) => None,
        }
    }

    /// Webex's tracking id for the failed request, to quote to Webex support.
    pub fn tracking_id(&self) -> Option<&str> {
        match self {
            Error::Http { tracking_id, .. } | Error::RateLimited { tracking_id, .. } => {
                tracking_id.as_deref()
            }
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_and_accessors() {
        let http = Error::Http {
            status: 400,
            message: "Message length limited to 7439 characters".into(),
            tracking_id: Some("ROUTER_1".into()),
        };
        assert_eq!(
            http.to_string(),
            "Webex answered HTTP 400: Message length limited to 7439 characters (tracking id ROUTER_1)"
        );
        assert_eq!(http.status(), Some(400));
        assert_eq!(http.tracking_id(), Some("ROUTER_1"));
        assert!(!http.is_not_found());

        let limited = Error::RateLimited {
            retry_after: Duration::from_secs(15),
            tracking_id: None,
        };
        assert_eq!(
            limited.to_string(),
            "Webex rate limit still in force after retries (asked to wait 15s)"
        );
        assert_eq!(limited.status(), Some(429));
        assert_eq!(limited.tracking_id(), None);

        let missing = Error::Http {
            status: 404,
            message: "not found".into(),
            tracking_id: None,
        };
        assert!(missing.is_not_found());
        assert_eq!(Error::InvalidUrl("x".into()).status(), None);
    }
}
