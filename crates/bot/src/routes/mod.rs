//! HTTP endpoints: `POST /webhook`, `GET /health`, `GET /metrics`.

mod health;
mod metrics;
mod webhook;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::state::AppState;

/// Webex documents no size for webhook bodies; real ones are about 1 kB. 1 MiB is generous
/// and keeps a flood of large bodies from costing memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The router, separate from the server so tests can call it directly.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhook", post(webhook::receive))
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
pub(crate) use health::llm_report;
