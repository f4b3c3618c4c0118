//! `GET /health`: the relay is up (always 200) and whether the bot answers its own
//! `/health`. "degraded" rather than 5xx, so a load balancer keeps the relay in rotation
//! while the bot restarts: Webex then gets 502s it retries, not connection errors.

use axum::Json;
use axum::extract::State;

use crate::bot::BotHealth;
use crate::state::AppState;

#[derive(serde::Serialize)]
pub(crate) struct Health {
    status: &'static str,
    version: &'static str,
    uptime_seconds: u64,
    bot: BotHealth,
}

pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    let bot = state.bot().health().await;
    let healthy = bot.status.is_some_and(|s| (200..300).contains(&s));
    Json(Health {
        status: if healthy { "ok" } else { "degraded" },
        version: env!("CARGO_PKG_VERSION"),
        uptime_seconds: state.uptime().as_secs(),
        bot,
    })
}
