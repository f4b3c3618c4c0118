//! Shared state of a running bot: a cheap-`Clone` handle around one `Arc`.

use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::personality::Personalities;
use crate::rooms::Rooms;
use crate::store::Store;

/// Who the bot is on Webex (from `GET /people/me`).
#[derive(Clone, Debug)]
pub struct BotIdentity {
    pub id: webex::PersonId,
    pub display_name: String,
}

/// What startup did about the webhook, for `/health`.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct WebhookStatus {
    pub registered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_url: Option<String>,
    /// `active`, `inactive` or `missing` as last seen on Webex; `/health` says `unknown`
    /// when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// When Webex's webhooks were last read (RFC 3339); `null` when never.
    pub checked_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `MODE=websocket`: the socket's state (`connecting`, `connected`, `disconnected`,
    /// `stopped`); there is no webhook then, and `status` stays `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub websocket: Option<String>,
}

pub struct Inner {
    pub config: Config,
    pub webex: webex::Client,
    pub llm: llm::Llm,
    pub store: Store,
    pub metrics: Arc<Metrics>,
    pub bot: BotIdentity,
    pub personalities: ArcSwap<Personalities>,
    pub started: Instant,
    pub webhook: Mutex<WebhookStatus>,
    pub probe: crate::probe::LlmProbe,
    pub rooms: Rooms,
    /// Cancelled when shutdown begins: workers finish the event in hand and stop.
    pub shutdown: CancellationToken,
    /// Every background task that handles events, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// This process's name in room leases (unique per start).
    pub instance_id: String,
    /// The MCP servers of `TOOLS_CONFIG` (DESIGN §10.5); empty without it.
    pub tools: crate::tools::ToolSet,
    /// Token accounting and limits (DESIGN §10.6).
    pub usage: crate::usage::Ledger,
    /// What the tool loop of every answer runs with (the handles above and the tool
    /// settings), built once at startup.
    pub(crate) runner: Arc<crate::tools::Runner>,
    /// How files are read (extraction isolation, transcription client).
    pub attachments: crate::attachments::Setup,
}

#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

/// What deciding a tool approval needs, from the running bot (tests and the card-click
/// stage decide through [`crate::tools::decide`]).
impl<'a> From<&'a AppState> for crate::tools::Approvals<'a> {
    fn from(state: &'a AppState) -> Self {
        crate::tools::Approvals {
            store: &state.store,
            tools: &state.tools,
        }
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
