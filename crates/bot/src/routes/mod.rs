//! HTTP endpoints: `POST /webhook`, `GET /health`, `GET /metrics`.

mod health;
mod metrics;
mod webhook;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderValue, StatusCode, Version, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;

use crate::state::AppState;

/// Webex documents no size for webhook bodies; real ones are about 1 kB. 1 MiB is generous
/// and keeps a flood of large bodies from costing memory.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A request body must be complete this long after its headers: a client that trickles
/// (or stops sending) its body gets `408` and the connection is closed.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The router, separate from the server so tests can call it directly.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/webhook", post(webhook::receive))
        .route("/health", get(health::health))
        .route("/metrics", get(metrics::metrics))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(read_body_in_time))
        .with_state(state)
}

/// Reads the whole body (at most [`MAX_BODY_BYTES`]) within [`BODY_TIMEOUT`] of the
/// headers, then hands the request on with the body in memory. Late: `408` and the
/// connection closes; too big: `413`.
async fn read_body_in_time(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let version = parts.version;
    let read = async {
        let mut stream = body.into_data_stream();
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
            if bytes.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    };
    match tokio::time::timeout(BODY_TIMEOUT, read).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(status)) => refuse(status, version),
        Err(_) => {
            tracing::debug!("request body not complete in time: 408");
            refuse(StatusCode::REQUEST_TIMEOUT, version)
        }
    }
}

/// An error answer after which the connection is closed: the rest of the body (if any ever
/// comes) is not read.
fn refuse(status: StatusCode, version: Version) -> Response {
    let text = match status {
        StatusCode::REQUEST_TIMEOUT => "request body not complete in time\n",
        StatusCode::PAYLOAD_TOO_LARGE => "request body over 1 MiB\n",
        _ => "cannot read the request body\n",
    };
    let mut response = (status, text).into_response();
    // HTTP/1 only: HTTP/2 has no Connection header (its streams end on their own).
    if version <= Version::HTTP_11 {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
