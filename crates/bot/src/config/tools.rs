//! Tools over MCP (DESIGN §10.5): `TOOLS_CONFIG` and its limits.

use std::path::PathBuf;
use std::time::Duration;

use super::env::{ConfigError, Reader};

/// `TOOLS_CONFIG` (the servers file, read at startup), `TOOLS_MAX_ROUNDS`,
/// `TOOLS_CONFIRM_TIMEOUT_SECS`, `TOOLS_LOG_ARGUMENTS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolSettings {
    /// `None`: no tools.
    pub config: Option<PathBuf>,
    /// Rounds of tool calls in one answer; then the model answers without tools.
    pub max_rounds: usize,
    /// How long an approval card waits for a click before the call counts as denied.
    pub confirm_timeout: Duration,
    /// Record the arguments of each call in full (else only their SHA-256).
    pub log_arguments: bool,
}

impl ToolSettings {
    pub(super) fn read(r: &Reader<'_>) -> Result<ToolSettings, ConfigError> {
        Ok(ToolSettings {
            config: r.opt("TOOLS_CONFIG").map(PathBuf::from),
            max_rounds: r.positive("TOOLS_MAX_ROUNDS", 5usize)?,
            confirm_timeout: Duration::from_secs(r.positive("TOOLS_CONFIRM_TIMEOUT_SECS", 600u64)?),
            log_arguments: r.bool("TOOLS_LOG_ARGUMENTS", false)?,
        })
    }
}
