//! `GET /health`: always 200 while the relay runs; "degraded" when the bot is not healthy.

use std::time::Duration;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{closed_port, config, spawn_app};

async fn bot_health(status: u16, delay: Duration) -> MockServer {
    let bot = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(
            ResponseTemplate::new(status)
                .set_body_json(serde_json::json!({"status": "ok"}))
                .set_delay(delay),
        )
        .mount(&bot)
        .await;
    bot
}

#[tokio::test]
async fn ok_when_the_bot_is_healthy() {
    let bot = bot_health(200, Duration::ZERO).await;
    let app = spawn_app(config(&bot.uri(), &[])).await;

    let health = app.health().await;

    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["bot"]["reachable"], true);
    assert_eq!(health["bot"]["status"], 200);
    assert!(health["bot"]["latency_ms"].is_u64(), "{health}");
    app.stop().await;
}

#[tokio::test]
async fn degraded_when_the_bot_is_down() {
    let app = spawn_app(config(&format!("http://127.0.0.1:{}", closed_port()), &[])).await;

    let health = app.health().await;

    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["bot"]["reachable"], false);
    assert!(health["bot"]["status"].is_null(), "{health}");
    app.stop().await;
}

#[tokio::test]
async fn degraded_when_the_bot_answers_an_error() {
    let bot = bot_health(503, Duration::ZERO).await;
    let app = spawn_app(config(&bot.uri(), &[])).await;

    let health = app.health().await;

    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["bot"]["reachable"], true);
    assert_eq!(health["bot"]["status"], 503);
    app.stop().await;
}

#[tokio::test]
async fn a_hanging_bot_does_not_hang_health() {
    let bot = bot_health(200, Duration::from_secs(30)).await;
    let app = spawn_app(config(&bot.uri(), &[])).await;

    let started = std::time::Instant::now();
    let health = app.health().await;

    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["bot"]["reachable"], false);
    app.stop().await;
}
