//! `GET /health`: always 200 with a JSON report; `status` is `degraded` when the LLM or the
//! database cannot be reached. The LLM probe is cached a few seconds (`crate::probe`).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::state::AppState;

pub(crate) async fn report(state: &AppState) -> Value {
    let (llm, database) = tokio::join!(state.probe.report(&state.llm), state.store.ping());
    let database_ok = database.is_ok();
    let degraded = !llm.primary.reachable || !database_ok;
    let webhook = state.webhook.lock().map(|w| w.clone()).unwrap_or_default();
    let mut webhook = serde_json::to_value(&webhook).unwrap_or_else(|_| json!({}));
    // `signed`: deliveries are verified with WEBHOOK_SECRET; `status` is `unknown` until
    // Webex was asked (or when there is no webhook to ask about).
    webhook["signed"] = Value::Bool(state.config.webhook_secret.is_some());
    if webhook["status"].is_null() {
        webhook["status"] = Value::String("unknown".to_owned());
    }
    let mut llm_json = serde_json::to_value(&llm.primary).unwrap_or(Value::Null);
    if let Some(fallback) = &llm.fallback {
        llm_json["fallback"] = serde_json::to_value(fallback).unwrap_or(Value::Null);
    }
    let mut database_json = json!({ "ok": database_ok, "backend": format!("{:?}", state.store.backend()).to_lowercase() });
    if let Err(e) = database {
        database_json["error"] = Value::String(e.to_string());
    }
    json!({
        "status": if degraded { "degraded" } else { "ok" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "llm": llm_json,
        "database": database_json,
        "webhook": webhook,
    })
}

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    Json(report(&state).await)
}
