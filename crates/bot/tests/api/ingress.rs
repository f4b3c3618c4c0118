//! The front door: `WEBHOOK_SECRET` required in webhook mode, what the inbox keeps of a
//! webhook, the body deadline (408), `MAX_CONNECTIONS`, and `/metrics` (no table scan
//! per scrape, `METRICS_TOKEN`).

use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::{Connection, Row};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::*;
use crate::ops::process_env;

// ---- WEBHOOK_SECRET ----------------------------------------------------------------

fn serve_env(dir: &std::path::Path, port: u16) -> Vec<(String, String)> {
    // No fakes are needed: the check comes before anything is contacted.
    let unreachable = format!("http://127.0.0.1:{}", free_port());
    vec![
        ("WEBEX_BOT_TOKEN".into(), TOKEN.into()),
        ("WEBEX_API_URL".into(), unreachable.clone()),
        ("OLLAMA_URL".into(), unreachable),
        (
            "DATABASE_URL".into(),
            format!("sqlite://{}/data/bot.db", dir.display()),
        ),
        ("PERSONALITIES_DIR".into(), personalities_dir()),
        ("LOG_FILE".into(), String::new()),
        ("BIND_ADDR".into(), format!("127.0.0.1:{port}")),
    ]
}

#[tokio::test]
async fn serve_in_webhook_mode_without_a_secret_exits_2_naming_it_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    for (name, secret) in [("unset", None), ("empty", Some("")), ("blank", Some("  "))] {
        let mut env = serve_env(dir.path(), port);
        if let Some(secret) = secret {
            env.push(("WEBHOOK_SECRET".into(), secret.into()));
        }
        let mut bot = Bot::new(["serve"])
            .dir(dir.path())
            .name(name)
            .envs(env.clone())
            .spawn();
        let status = bot.wait_exit(Duration::from_secs(20)).await;
        let output = bot.output();
        assert_eq!(status.and_then(|s| s.code()), Some(2), "{name}: {output}");
        assert!(output.contains("WEBHOOK_SECRET"), "{name}: {output}");
        assert!(
            output.contains("ALLOW_UNSIGNED_WEBHOOKS"),
            "{name}: {output}"
        );
        // Refused before the database was opened or the port bound.
        assert!(!dir.path().join("data/bot.db").exists(), "{name}");
        std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allow_unsigned_webhooks_starts_with_a_loud_warning_and_accepts_unsigned_events() {
    let dir = tempfile::tempdir().unwrap();
    let webex = wiremock::MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = wiremock::MockServer::start().await;
    mount_ollama(&llm, echo_answerer()).await;
    let port = free_port();
    let mut env = process_env(dir.path(), &webex, &llm);
    env.retain(|(k, _)| k != "WEBHOOK_SECRET");
    env.push(("ALLOW_UNSIGNED_WEBHOOKS".into(), "true".into()));
    env.push(("BIND_ADDR".into(), format!("127.0.0.1:{port}")));
    let mut bot = Bot::new(["serve"])
        .dir(dir.path())
        .name("unsigned")
        .envs(env.clone())
        .spawn();
    bot.wait_ready(port).await;
    let output = bot.output();
    let warning = output
        .lines()
        .find(|l| l.contains("ALLOW_UNSIGNED_WEBHOOKS=true"))
        .unwrap_or_else(|| panic!("no warning about ALLOW_UNSIGNED_WEBHOOKS: {output}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("UNSIGNED"), "{warning}");

    // It does what it warns about: an unsigned event is answered.
    let message = direct_message("M-unsigned", "ROOM-unsigned", ALICE, "hi");
    mount_message(&webex, &message).await;
    let status = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhook"))
        .body(serde_json::to_vec(&event_for(&message)).unwrap())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    assert!(
        eventually(Duration::from_secs(10), || async {
            !requests_to(&webex, "POST", "/messages").await.is_empty()
        })
        .await,
        "{}",
        bot.output()
    );
}

// ---- what the inbox keeps -------------------------------------------------------------

async fn side_connection(app: &TestApp) -> sqlx::SqliteConnection {
    let url = format!("sqlite://{}/data/bot.db", app.dir.path().display());
    sqlx::SqliteConnection::connect(&url).await.unwrap()
}

#[tokio::test]
async fn the_inbox_keeps_only_the_webhooks_data_object() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let message = direct_message("M-data-only", "ROOM-data-only", ALICE, "hello");
    let event = event_for(&message);
    assert!(event["targetUrl"].is_string() && event["name"].is_string());
    app.deliver(&message).await;
    assert_eq!(app.wait_handled("M-data-only").await, "answered");

    let mut side = side_connection(&app).await;
    let row = sqlx::query("SELECT payload FROM inbox WHERE message_id = 'M-data-only'")
        .fetch_one(&mut side)
        .await
        .unwrap();
    let payload: String = row.get("payload");
    let stored: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(stored, event["data"], "{payload}");
    for envelope_field in [
        "targetUrl",
        "name",
        "createdBy",
        "orgId",
        "appId",
        "ownedBy",
    ] {
        assert!(
            !payload.contains(envelope_field),
            "{envelope_field} in {payload}"
        );
    }
}

#[tokio::test]
async fn an_event_stored_whole_by_the_previous_version_is_still_answered() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let message = direct_message(
        "M-old-row",
        "ROOM-old-row",
        ALICE,
        "from before the upgrade",
    );
    mount_message(&app.webex, &message).await;
    // A row as the previous version wrote it: the whole envelope.
    let mut side = side_connection(&app).await;
    sqlx::query(
        "INSERT INTO inbox (message_id, room_id, payload, received_at) VALUES ($1, $2, $3, $4)",
    )
    .bind("M-old-row")
    .bind("ROOM-old-row")
    .bind(event_for(&message).to_string())
    .bind(bot::store::now_ms())
    .execute(&mut side)
    .await
    .unwrap();
    side.close().await.unwrap();
    // The sweeper finds it like any pending event left by a restart.
    assert_eq!(app.wait_handled("M-old-row").await, "answered");
    assert_eq!(app.replies().await.len(), 1);
}

// ---- 408: a body not complete in time ---------------------------------------------------

/// Reads what the server sends until it closes the connection (or `limit` passes).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
        }
    }
}

#[tokio::test]
async fn a_body_not_complete_10_s_after_its_headers_gets_408_and_the_connection_closes() {
    let app = TestApp::spawn(Spawn::default()).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let started = Instant::now();
    stream
        .write_all(
            b"POST /webhook HTTP/1.1\r\nHost: bot\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"id\":",
        )
        .await
        .unwrap();
    // A few more bytes 4 s later (the trickle under test): it does not extend the deadline.
    tokio::time::sleep(Duration::from_secs(4)).await;
    stream.write_all(b" \"x\"").await.unwrap();
    let (answer, closed) = read_until_closed(&mut stream, Duration::from_secs(12)).await;
    let elapsed = started.elapsed();
    assert!(
        answer.starts_with("HTTP/1.1 408"),
        "after {elapsed:?}: {answer:?}"
    );
    assert!(
        closed,
        "the connection stayed open after the 408: {answer:?}"
    );
    assert!(
        elapsed >= Duration::from_millis(9_500) && elapsed < Duration::from_secs(12),
        "408 after {elapsed:?}"
    );
    // A body that does arrive in time is read as usual (here: a signed event).
    let message = direct_message("M-in-time", "ROOM-in-time", ALICE, "hi");
    assert_eq!(app.post_event(&event_for(&message)).await.status(), 200);
}

// ---- MAX_CONNECTIONS ----------------------------------------------------------------

/// Sends one keep-alive `GET /metrics` on `stream` and reads its answer's status line.
async fn get_metrics(stream: &mut TcpStream) -> String {
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bot\r\n\r\n")
        .await
        .unwrap();
    read_response_head(stream).await
}

/// Reads one HTTP/1.1 response with a Content-Length body; returns its status line.
async fn read_response_head(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed before a whole answer: {got:?}");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap())
                })
                .unwrap_or(0);
            if got.len() >= end + 4 + length {
                return text.lines().next().unwrap_or_default().to_owned();
            }
        }
    }
}

#[tokio::test]
async fn beyond_max_connections_a_new_connection_waits_until_one_closes() {
    let mut app = TestApp::spawn(Spawn::default().env("MAX_CONNECTIONS", "2")).await;
    // The harness's client keeps its /health probe connection open: let it go.
    app.http = reqwest::Client::new();
    let mut first = eventually_some(Duration::from_secs(30), || async {
        let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
        tokio::time::timeout(Duration::from_millis(500), get_metrics(&mut stream))
            .await
            .is_ok()
            .then_some(stream)
    })
    .await
    .expect("the probe's connection was never released");
    let mut second = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    assert!(get_metrics(&mut second).await.starts_with("HTTP/1.1 200"));
    // Two idle keep-alive connections are open: the third is connected by the kernel but
    // not accepted, so its request gets no answer.
    let mut third = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let waiting = tokio::spawn(async move {
        let status = get_metrics(&mut third).await;
        (status, Instant::now())
    });
    // Deliberate: no answer within 1.5 s (a negative check).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!waiting.is_finished(), "answered beyond MAX_CONNECTIONS");
    // Both open connections still work meanwhile.
    assert!(get_metrics(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(get_metrics(&mut second).await.starts_with("HTTP/1.1 200"));
    let closed_at = Instant::now();
    drop(first);
    let (status, answered_at) = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiting connection was not served after one closed")
        .unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    assert!(answered_at >= closed_at);
}

// ---- /metrics --------------------------------------------------------------------------

fn queue_depth(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix("webex_chatbot_queue_depth "))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape_text(app: &TestApp) -> String {
    let res = app
        .http
        .get(format!("{}/metrics", app.address))
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

#[tokio::test]
async fn a_scrape_does_not_query_the_database_and_stays_correct_while_it_is_closed() {
    let slow: Answerer =
        std::sync::Arc::new(|_: &Value| ollama_answer("later").set_delay(Duration::from_secs(3)));
    let app = TestApp::spawn(Spawn::default().answer(slow)).await;
    app.approve(ALICE).await;
    app.deliver(&direct_message("M-q-1", "ROOM-q-1", ALICE, "one"))
        .await;
    app.deliver(&direct_message("M-q-2", "ROOM-q-2", ALICE, "two"))
        .await;
    // No scrape yet: the two pending events are known without one.
    app.state.store.close().await;
    let text = scrape_text(&app).await;
    assert_eq!(queue_depth(&text), Some(2.0), "{text}");
}

#[tokio::test]
async fn queue_depth_is_recounted_in_the_background_and_follows_this_process_at_once() {
    let app = TestApp::spawn(Spawn::default().metrics_refresh(Duration::from_millis(200))).await;
    assert_eq!(queue_depth(&scrape_text(&app).await), Some(0.0));
    // Another replica (or a restart's leftovers) adds pending events behind our back:
    // the background count sees them, the scrape does not look.
    let mut side = side_connection(&app).await;
    for id in ["M-other-1", "M-other-2", "M-other-3"] {
        sqlx::query(
            "INSERT INTO inbox (message_id, room_id, payload, received_at, not_before) \
             VALUES ($1, 'ROOM-other', '{}', 0, 9000000000000)",
        )
        .bind(id)
        .execute(&mut side)
        .await
        .unwrap();
    }
    side.close().await.unwrap();
    eventually(Duration::from_secs(5), || async {
        queue_depth(&scrape_text(&app).await) == Some(3.0)
    })
    .await;
    assert_eq!(queue_depth(&scrape_text(&app).await), Some(3.0));
}

#[tokio::test]
async fn metrics_token_requires_the_bearer_token() {
    let token = "metrics-token-SECRET-8c1";
    let app = TestApp::spawn(Spawn::default().env("METRICS_TOKEN", token)).await;
    let get = |auth: Option<String>| {
        let mut request = app.http.get(format!("{}/metrics", app.address));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        request.send()
    };
    for (case, auth) in [
        ("missing", None),
        ("wrong", Some(format!("Bearer {token}x"))),
        ("shorter", Some(format!("Bearer {}", &token[1..]))),
        ("empty", Some("Bearer ".to_owned())),
        ("not bearer", Some(format!("Basic {token}"))),
        ("bare token", Some(token.to_owned())),
    ] {
        let res = get(auth).await.unwrap();
        assert_eq!(res.status(), 401, "{case}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("webex_chatbot_"), "{case}: {body}");
        assert!(!body.contains(token), "{case}: {body}");
    }
    let res = get(Some(format!("Bearer {token}"))).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("webex_chatbot_queue_depth")
    );
    // The scheme's case does not matter (RFC 9110).
    let res = get(Some(format!("bearer {token}"))).await.unwrap();
    assert_eq!(res.status(), 200);
    // /health and /webhook are not behind it.
    assert_eq!(app.health().await["status"], "ok");
}

#[tokio::test]
async fn queue_depth_is_recounted_on_postgresql_too() {
    let Some(url) = test_database_url("queue_depth_is_recounted_on_postgresql_too") else {
        return;
    };
    let schema = fresh_schema();
    let app = TestApp::spawn(
        Spawn::default()
            .postgres(&url, &schema)
            .metrics_refresh(Duration::from_millis(200)),
    )
    .await;
    assert_eq!(queue_depth(&scrape_text(&app).await), Some(0.0));
    let mut side = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO \"{schema}\".inbox (message_id, room_id, payload, received_at, not_before) \
         VALUES ('M-pg-other', 'ROOM-pg-other', '{{}}', 0, 9000000000000)"
    )))
    .execute(&mut side)
    .await
    .unwrap();
    side.close().await.unwrap();
    eventually(Duration::from_secs(5), || async {
        queue_depth(&scrape_text(&app).await) == Some(1.0)
    })
    .await;
    assert_eq!(queue_depth(&scrape_text(&app).await), Some(1.0));
}
