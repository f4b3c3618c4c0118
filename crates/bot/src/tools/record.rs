//! Every tool call is recorded (DESIGN §10.5): when, who, where, server/tool, outcome and
//! duration in the store; a count in `webex_chatbot_tool_calls_total{server,tool,outcome}`;
//! one INFO line without arguments or output. Arguments are kept only as a SHA-256 digest
//! unless `TOOLS_LOG_ARGUMENTS=true`.

use std::time::Duration;

use sha2::{Digest, Sha256};

use super::Asker;
use super::Runner;
use crate::store::ToolCallRecord;

/// How a call ended: the `outcome` label and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// The tool reported an error, the server failed or was not connected.
    Error,
    /// No answer within the server's `timeout_secs`.
    Timeout,
    /// A `confirm` tool that was denied, or not approved in time.
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Denied => "denied",
        }
    }
}

/// SHA-256 of the arguments' JSON text, lowercase hex.
pub fn digest(arguments: &serde_json::Value) -> String {
    let hash = Sha256::digest(arguments.to_string().as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Records one call; a failure to write is logged, never fatal to the answer.
pub(crate) async fn record(
    runner: &Runner,
    asker: &Asker,
    server: &str,
    tool: &str,
    arguments: &serde_json::Value,
    outcome: Outcome,
    took: Duration,
) {
    let duration_ms = i64::try_from(took.as_millis()).unwrap_or(i64::MAX);
    tracing::info!(
        server,
        tool,
        outcome = outcome.as_str(),
        duration_ms,
        person = %asker.email,
        "tool call"
    );
    runner.metrics.tool_call(server, tool, outcome.as_str());
    let row = ToolCallRecord {
        called_at: crate::store::now_ms() - duration_ms,
        person_email: asker.email.as_str().to_owned(),
        room_id: asker.room_id.as_str().to_owned(),
        server: server.to_owned(),
        tool: tool.to_owned(),
        outcome: outcome.as_str().to_owned(),
        duration_ms,
        arguments_sha256: digest(arguments),
        arguments: runner.log_arguments.then(|| arguments.to_string()),
    };
    if let Err(e) = runner.store.record_tool_call(&row).await {
        tracing::warn!(error = %e, server, tool, "cannot record the tool call");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_sha256_hex() {
        // sha256("{}")
        assert_eq!(
            digest(&serde_json::json!({})),
            "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_ne!(
            digest(&serde_json::json!({"a": 1})),
            digest(&serde_json::json!({"a": 2}))
        );
    }
}
