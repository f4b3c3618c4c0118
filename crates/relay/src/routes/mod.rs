//! The relay's whole HTTP surface: `/webhook`, `/health`, and 404 for everything else,
//! so the relay can never be used as an open proxy into the internal network.

mod health;
mod webhook;

use axum::http::StatusCode;

pub(crate) use health::health;
pub(crate) use webhook::webhook;

pub(crate) async fn not_found() -> StatusCode {
    StatusCode::NOT_FOUND
}
