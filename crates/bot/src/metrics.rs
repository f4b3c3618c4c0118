//! Prometheus metrics, one registry per app (so tests can run several apps in one process).
//!
//! A scrape never queries the database: gauges that come from the store are kept by the
//! store as its rows change and recounted by [`refresh_store_gauges`] every few seconds.

use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// How often the store-derived gauges are recounted from the database (the count also
/// picks up other replicas' work on a shared PostgreSQL).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: &'static str,
}

/// `webex_chatbot_tool_calls_total{server,tool,outcome}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ToolCallLabels {
    pub server: String,
    pub tool: String,
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ValueLabel {
    pub value: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookStatusLabel {
    pub status: &'static str,
}

/// The values of `webex_chatbot_webhook_status`'s `status` label.
pub const WEBHOOK_STATUSES: [&str; 4] = ["active", "inactive", "missing", "unknown"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: u16,
}

/// `webex_chatbot_llm_tokens_total{provider,model,kind}` (`kind`: `prompt` | `completion`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    pub provider: &'static str,
    pub model: String,
    pub kind: &'static str,
}

/// `webex_chatbot_limit_hits_total{limit}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    pub limit: &'static str,
}

/// A labelled family as registered: listed on `/metrics` (`# HELP`, `# TYPE`) from the
/// start, before its first series. prometheus-client leaves an empty family out of the
/// text altogether, so a family whose labels only use names (a tool server's tools, a
/// status code) would be missing until its first sample, and a scrape could not tell it
/// from one the bot does not export.
#[derive(Debug)]
struct Listed<M>(M);

impl<M: EncodeMetric> EncodeMetric for Listed<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }

    fn is_empty(&self) -> bool {
        false
    }
}

pub struct Metrics {
    registry: Registry,
    pub events_received: Counter,
    pub events_ignored: Family<ReasonLabel, Counter>,
    pub events_processed: Family<OutcomeLabel, Counter>,
    pub replies_sent: Counter,
    pub llm_latency: Histogram,
    pub webex_api_errors: Family<StatusLabel, Counter>,
    pub queue_depth: Gauge,
    pub llm_in_flight: Gauge,
    pub llm_queued: Gauge,
    /// Streamed answers (DESIGN §10.2): time to the first text, edits, failed edits.
    pub llm_first_token: Histogram,
    pub stream_edits: Counter,
    pub stream_edit_failures: Counter,
    /// Tool calls over MCP (DESIGN §10.5), by server, tool and outcome.
    pub tool_calls: Family<ToolCallLabels, Counter>,
    /// Feedback buttons (DESIGN §10.3): votes counted, by `up`/`down`; the same vote again
    /// by the same person on the same card is not counted, a changed one is.
    pub feedback: Family<ValueLabel, Counter>,
    /// Usage and limits (DESIGN §10.6).
    pub llm_tokens: Family<TokenLabels, Counter>,
    pub limit_hits: Family<LimitLabel, Counter>,
    /// 1 for the webhook's status as last seen on Webex, 0 for the others (set per scrape
    /// from `/health.webhook.status`; `unknown` in websocket mode and on follower replicas).
    pub webhook_status: Family<WebhookStatusLabel, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("webex_chatbot");
        let events_received = Counter::default();
        let events_ignored = Family::<ReasonLabel, Counter>::default();
        let events_processed = Family::<OutcomeLabel, Counter>::default();
        let replies_sent = Counter::default();
        // 50 ms … ~200 s: local models answer in under a second, big cloud ones in minutes.
        let llm_latency = Histogram::new(exponential_buckets(0.05, 2.0, 13));
        let webex_api_errors = Family::<StatusLabel, Counter>::default();
        let queue_depth = Gauge::default();
        let llm_in_flight = Gauge::default();
        let llm_queued = Gauge::default();
        let llm_first_token = Histogram::new(exponential_buckets(0.05, 2.0, 13));
        let stream_edits = Counter::default();
        let stream_edit_failures = Counter::default();
        let tool_calls = Family::<ToolCallLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls the model asked for, by server, tool and outcome (ok, error, timeout, denied)",
            Listed(tool_calls.clone()),
        );
        let feedback = Family::<ValueLabel, Counter>::default();
        // Both votes from the start, so a dashboard shows 0 rather than nothing.
        for value in ["up", "down"] {
            let _ = feedback.get_or_create(&ValueLabel { value });
        }
        registry.register(
            "feedback",
            "Feedback button votes on LLM answers, by value (up or down); a repeated vote is counted once",
            Listed(feedback.clone()),
        );
        let llm_tokens = Family::<TokenLabels, Counter>::default();
        let limit_hits = Family::<LimitLabel, Counter>::default();
        registry.register(
            "llm_tokens",
            "Tokens of LLM calls as the providers reported them, by provider, model and kind (prompt or completion)",
            Listed(llm_tokens.clone()),
        );
        registry.register(
            "limit_hits",
            "Questions refused without an LLM call because a usage limit was reached, by limit",
            Listed(limit_hits.clone()),
        );
        let webhook_status = Family::<WebhookStatusLabel, Gauge>::default();
        registry.register(
            "webhook_status",
            "1 for the status of this bot's webhook as last seen on Webex (active, inactive, missing, unknown), 0 for the others",
            Listed(webhook_status.clone()),
        );
        registry.register(
            "llm_first_token_seconds",
            "Time from the start of a streamed LLM call to its first text, queue wait included",
            llm_first_token.clone(),
        );
        registry.register(
            "stream_edits",
            "Edits of streamed answers accepted by Webex",
            stream_edits.clone(),
        );
        registry.register(
            "stream_edit_failures",
            "Edits of streamed answers Webex refused (the answer was then posted whole)",
            stream_edit_failures.clone(),
        );
        registry.register(
            "events_received",
            "Webhook events accepted by /webhook",
            events_received.clone(),
        );
        registry.register(
            "events_ignored",
            "Events deliberately not answered, by reason",
            Listed(events_ignored.clone()),
        );
        registry.register(
            "events_processed",
            "Events handled to the end, by outcome",
            Listed(events_processed.clone()),
        );
        registry.register(
            "replies_sent",
            "Messages posted to Webex",
            replies_sent.clone(),
        );
        registry.register(
            "llm_latency_seconds",
            "Duration of LLM calls, queue wait included",
            llm_latency.clone(),
        );
        registry.register(
            "webex_api_errors",
            "Non-2xx answers from the Webex API, by status (retried ones included)",
            Listed(webex_api_errors.clone()),
        );
        registry.register(
            "queue_depth",
            "Events acknowledged and not yet handled",
            queue_depth.clone(),
        );
        registry.register(
            "llm_calls_in_flight",
            "LLM calls running now",
            llm_in_flight.clone(),
        );
        registry.register(
            "llm_calls_queued",
            "LLM calls waiting for a slot (LLM_MAX_CONCURRENCY)",
            llm_queued.clone(),
        );
        Self {
            registry,
            events_received,
            events_ignored,
            events_processed,
            replies_sent,
            llm_latency,
            webex_api_errors,
            queue_depth,
            llm_in_flight,
            llm_queued,
            llm_first_token,
            stream_edits,
            stream_edit_failures,
            tool_calls,
            feedback,
            llm_tokens,
            limit_hits,
            webhook_status,
        }
    }

    /// Marks `status` (`active`, `inactive`, `missing`; anything else is `unknown`) as the
    /// webhook's, every other value 0, so each series is always there for alert rules.
    pub fn set_webhook_status(&self, status: Option<&str>) {
        let current = match status {
            Some(s) if WEBHOOK_STATUSES.contains(&s) => s,
            _ => "unknown",
        };
        for status in WEBHOOK_STATUSES {
            self.webhook_status
                .get_or_create(&WebhookStatusLabel { status })
                .set(i64::from(status == current));
        }
    }

    pub fn tool_call(&self, server: &str, tool: &str, outcome: &'static str) {
        self.tool_calls
            .get_or_create(&ToolCallLabels {
                server: server.to_owned(),
                tool: tool.to_owned(),
                outcome,
            })
            .inc();
    }

    pub fn ignored(&self, reason: crate::domain::IgnoreReason) {
        self.events_ignored
            .get_or_create(&ReasonLabel {
                reason: reason.as_str(),
            })
            .inc();
    }

    pub fn processed(&self, outcome: crate::domain::Outcome) {
        self.events_processed
            .get_or_create(&OutcomeLabel {
                outcome: outcome.as_str(),
            })
            .inc();
    }

    /// A feedback vote was counted (`up` or `down`).
    pub fn feedback_vote(&self, value: &'static str) {
        self.feedback.get_or_create(&ValueLabel { value }).inc();
    }

    pub fn webex_error(&self, status: u16) {
        self.webex_api_errors
            .get_or_create(&StatusLabel { status })
            .inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Recounts the store-derived gauges (pending events) at start and then every `every`,
/// off the scrape path. Runs until aborted at shutdown.
pub async fn refresh_store_gauges(store: crate::store::Store, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tick.tick().await;
        match store.recount_pending().await {
            Ok(_) => failing = false,
            Err(e) => {
                // Said once per streak: the gauges keep their last values meanwhile.
                if !failing {
                    tracing::warn!(error = %e, "cannot count the pending events for /metrics");
                }
                failing = true;
            }
        }
    }
}
