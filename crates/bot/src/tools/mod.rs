//! Tools over MCP (DESIGN §10.5, docs/tools.md): the servers of `TOOLS_CONFIG`, the tools a
//! personality offers, the loop that runs the model's calls, approvals of `confirm` tools
//! and the record of every call.
//!
//! Layout: `config` (the TOML file) → `manager` (servers kept connected, tool lists, one
//! call) → `rounds` (the loop in a whole or a streamed answer) → `approval` (cards and
//! [`decide`]) → `record` (store, metric, log).

pub mod approval;
pub mod config;
mod manager;
pub(crate) mod record;
pub(crate) mod rounds;

pub use approval::{Approvals, CARD_ACTION, DecideError, Decided, decide, on_click};
pub use manager::{CallResult, Offered, ToolInfo, ToolSet, exposed_name, probe};

use std::sync::Arc;
use std::time::Duration;

use crate::domain::Email;
use crate::metrics::Metrics;
use crate::store::Store;
use crate::usage::Ledger;

/// What the tool loop of one answer runs with, owned (a streamed answer's rounds run on a
/// task of their own): the LLM and the usage ledger its calls are counted in, the tool
/// servers, and what approval cards and the record of each call need.
pub(crate) struct Runner {
    pub llm: llm::Llm,
    pub usage: Ledger,
    pub tools: ToolSet,
    pub store: Store,
    pub webex: webex::Client,
    pub metrics: Arc<Metrics>,
    /// `TOOLS_MAX_ROUNDS`.
    pub max_rounds: usize,
    /// `TOOLS_CONFIRM_TIMEOUT_SECS`.
    pub confirm_timeout: Duration,
    /// `TOOLS_LOG_ARGUMENTS`.
    pub log_arguments: bool,
}

/// Who asked the question a tool call serves, and where: the approval card goes to that
/// thread, and only that person (or an admin) may approve.
#[derive(Clone, Debug)]
pub(crate) struct Asker {
    pub person_id: String,
    pub email: Email,
    pub room_id: webex::RoomId,
    /// The thread the answer goes to.
    pub parent_id: Option<webex::MessageId>,
}

impl Asker {
    /// Whose the LLM calls of the rounds are (usage, DESIGN §10.6).
    pub(crate) fn who(&self) -> crate::usage::Who<'_> {
        crate::usage::Who {
            person: &self.email,
            space: self.room_id.as_str(),
        }
    }
}

/// The servers of `TOOLS_CONFIG` (none when it is unset), not started yet. A file that
/// cannot be read or is wrong is a configuration error naming `TOOLS_CONFIG`.
pub fn from_config(
    settings: &crate::config::ToolSettings,
    http: reqwest::Client,
) -> Result<ToolSet, crate::config::ConfigError> {
    let servers = match &settings.config {
        None => Vec::new(),
        Some(path) => {
            config::load(path).map_err(|e| crate::config::ConfigError::new("TOOLS_CONFIG", e))?
        }
    };
    Ok(ToolSet::new(servers, http))
}
