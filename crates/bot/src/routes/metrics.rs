//! `GET /metrics`: Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::state::AppState;

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Gauges are read at scrape time from their sources of truth.
    if let Ok(counts) = state.store.counts().await {
        state.metrics.queue_depth.set(counts.pending_events);
    }
    state
        .metrics
        .llm_in_flight
        .set(i64::try_from(state.llm.in_flight()).unwrap_or(i64::MAX));
    state
        .metrics
        .llm_queued
        .set(i64::try_from(state.llm.queued()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}
