//! `GET /metrics`: Prometheus text format. Reads only values held in memory (no database
//! query per scrape); with `METRICS_TOKEN` set it needs `Authorization: Bearer <token>`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use crate::state::AppState;

/// Whether the request may read the metrics: always without `METRICS_TOKEN`, else only with
/// `Authorization: Bearer <token>` (compared in constant time).
fn authorized(token: Option<&SecretString>, headers: &HeaderMap) -> bool {
    let Some(expected) = token else {
        return true;
    };
    // The scheme is case-insensitive (RFC 9110); the token is not.
    let Some(presented) = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        .filter(|v| v.len() >= 7 && v[..7].eq_ignore_ascii_case(b"bearer "))
        .map(|v| &v[7..])
    else {
        return false;
    };
    presented.ct_eq(expected.expose_secret().as_bytes()).into()
}

pub async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !authorized(state.config.metrics_token.as_ref(), &headers) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "METRICS_TOKEN is set: send Authorization: Bearer <token>\n",
        )
            .into_response();
    }
    state.metrics.queue_depth.set(state.store.pending_events());
    let webhook_status = state.webhook.lock().ok().and_then(|w| w.status.clone());
    state.metrics.set_webhook_status(webhook_status.as_deref());
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
        .into_response()
}
