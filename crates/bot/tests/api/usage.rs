//! Usage, limits and costs (DESIGN §10.6, docs/usage.md): the tokens the fake providers
//! report are recorded per person, space, provider, model and day and priced; `usage`
//! and `usage all` report them; limits refuse without an LLM call and reset on a clock the
//! test moves, across restarts and replicas; `usage export` reads them while `serve` runs.

use std::sync::Arc;
use std::time::Duration;

use bot::usage::Clock;
use bot::usage::export::Format;
use serde_json::{Value, json};
use time::macros::datetime;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;

const BOB: &str = "bob@example.com";
/// What the fake Ollama reports for every answer.
const PROMPT: u64 = 26;
const COMPLETION: u64 = 9;

/// Echoes the question like [`echo_answerer`], with Ollama's counts: `prompt_eval_count`
/// and `eval_count` (the same line serves a whole answer and a one-line stream).
fn counting_answerer() -> Answerer {
    Arc::new(|body: &Value| {
        let last = last_message(body);
        ResponseTemplate::new(200).set_body_json(json!({
            "model": body["model"], "created_at": "2026-03-09T10:00:00Z",
            "message": {"role": "assistant", "content": format!("Echo: {last}")},
            "done": true, "done_reason": "stop", "total_duration": 1,
            "prompt_eval_count": PROMPT, "eval_count": COMPLETION
        }))
    })
}

fn clock_at(at: time::OffsetDateTime) -> Clock {
    Clock::manual(at)
}

async fn counting_app(clock: &Clock, env: &[(&str, &str)]) -> TestApp {
    let mut spawn = Spawn::default().answer(counting_answerer()).clock(clock);
    for (k, v) in env {
        spawn = spawn.env(k, v);
    }
    let app = TestApp::spawn(spawn).await;
    app.approve(ALICE).await;
    app.approve(BOB).await;
    app
}

/// Delivers a message, waits until it is handled and returns its outcome and the text of
/// the bot's newest message.
async fn ask(app: &TestApp, message: &Value) -> (String, String) {
    app.deliver(message).await;
    let outcome = app.wait_handled(message["id"].as_str().unwrap()).await;
    let last = posted_messages(&app.webex)
        .last()
        .and_then(|m| m["markdown"].as_str().map(str::to_owned))
        .unwrap_or_default();
    (outcome, last)
}

/// `/metrics` has the series `series` at `value`.
async fn assert_metric(app: &TestApp, series: &str, value: f64) {
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, series), Some(value), "{series}: {metrics}");
}

fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test]
async fn ollama_tokens_are_recorded_priced_and_reported_by_usage() {
    let clock = clock_at(datetime!(2026-03-09 10:00 UTC));
    // 26 prompt tokens at 1000 a million + 9 at 2000 a million = 0.044 a call.
    let app = counting_app(
        &clock,
        &[
            ("LLM_PRICE_INPUT_PER_MTOK", "1000"),
            ("LLM_PRICE_OUTPUT_PER_MTOK", "2000"),
        ],
    )
    .await;

    // A streamed answer in a direct space, a whole one in a group space (the group
    // answer is also streamed; REPLY_STREAMING=false is the next test's).
    let (outcome, _) = ask(&app, &direct_message("U-1", "ROOM-A", ALICE, "one")).await;
    assert_eq!(outcome, "answered");
    let (outcome, _) = ask(&app, &group_message("U-2", "ROOM-G", ALICE, "two")).await;
    assert_eq!(outcome, "answered");
    // Yesterday's call counts for the month, not for today.
    clock.set(datetime!(2026-03-10 09:00 UTC));
    ask(&app, &direct_message("U-3", "ROOM-A", ALICE, "three")).await;

    let (outcome, answer) = ask(&app, &direct_message("U-4", "ROOM-A", ALICE, "usage")).await;
    assert_eq!(outcome, "command");
    assert_eq!(
        answer,
        "**Your usage**\n\
         - Today (2026-03-10 UTC): 35 tokens (26 prompt + 9 completion), cost 0.04\n\
         - This month (March 2026): 105 tokens (78 prompt + 27 completion), cost 0.13"
    );
    // Bob has asked nothing.
    let (_, answer) = ask(&app, &direct_message("U-5", "ROOM-B", BOB, "/usage")).await;
    assert!(
        answer.contains("Today (2026-03-10 UTC): 0 tokens (0 prompt + 0 completion), cost 0.00"),
        "{answer}"
    );

    assert_metric(
        &app,
        r#"webex_chatbot_llm_tokens_total{provider="ollama",model="llama3.1:8b",kind="prompt"}"#,
        78.0,
    )
    .await;
    assert_metric(&app, r#"webex_chatbot_llm_tokens_total{provider="ollama",model="llama3.1:8b",kind="completion"}"#, 27.0).await;

    // One row per day, person and space: the export shows them.
    assert_eq!(
        export_in_process(&app.env_value("DATABASE_URL"), None, None, Format::Csv).await,
        "day,person,space,provider,model,prompt_tokens,completion_tokens,total_tokens,cost\n\
         2026-03-09,alice@example.com,ROOM-A,ollama,llama3.1:8b,26,9,35,0.044\n\
         2026-03-09,alice@example.com,ROOM-G,ollama,llama3.1:8b,26,9,35,0.044\n\
         2026-03-10,alice@example.com,ROOM-A,ollama,llama3.1:8b,26,9,35,0.044\n"
    );
    app.stop().await;
}

#[tokio::test]
async fn whole_answers_are_counted_too_and_an_apology_records_nothing() {
    let clock = clock_at(datetime!(2026-03-09 10:00 UTC));
    let app = counting_app(&clock, &[("REPLY_STREAMING", "false")]).await;
    ask(&app, &direct_message("W-1", "ROOM-A", ALICE, "one")).await;
    let request = &app.llm_requests().await[0];
    assert_eq!(request["stream"], json!(false));

    // The LLM fails: an apology, and nothing more is counted.
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": "boom"})))
        .with_priority(1)
        .mount(&app.llm)
        .await;
    let (outcome, _) = ask(&app, &direct_message("W-2", "ROOM-A", ALICE, "two")).await;
    assert_eq!(outcome, "llm_error");
    let usage = app
        .state
        .store
        .usage_of(ALICE, "2026-03-01", "2026-03-09")
        .await
        .unwrap();
    assert_eq!(usage.today.prompt_tokens, 26);
    assert_eq!(usage.today.completion_tokens, 9);
    app.stop().await;
}

/// Fake OpenAI-compatible server: refuses `stream_options` without `stream: true` (as
/// the API does) and reports usage in a stream only when `stream_options.include_usage`
/// asks, in one last chunk with empty `choices` before `[DONE]`.
struct CompatibleServer;

impl Respond for CompatibleServer {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let bad = |m: &str| {
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": m, "type": "invalid_request_error"}}))
        };
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return bad("body is not JSON");
        };
        if body["model"] != json!("served-model") || !body["messages"].is_array() {
            return bad("model and messages are required");
        }
        let stream = body["stream"] == json!(true);
        let options = body.get("stream_options");
        if options.is_some() && !stream {
            return bad("The 'stream_options' parameter is only allowed when 'stream' is enabled.");
        }
        let usage = json!({"prompt_tokens": 31, "completion_tokens": 12, "total_tokens": 43});
        if !stream {
            return ResponseTemplate::new(200).set_body_json(json!({
                "id": "c1", "object": "chat.completion", "created": 1, "model": "served-model",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "Compatible answer"}, "finish_reason": "stop"}],
                "usage": usage
            }));
        }
        let include = options.is_some_and(|o| o["include_usage"] == json!(true));
        let chunk = |choices: Value, usage: Value| {
            let mut chunk = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                "model": "served-model", "choices": choices});
            if include {
                chunk["usage"] = usage;
            }
            format!("data: {chunk}\n\n")
        };
        let mut sse = chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": "Compatible "}, "finish_reason": null}]),
            Value::Null,
        ) + &chunk(
            json!([{"index": 0, "delta": {"content": "answer"}, "finish_reason": "stop"}]),
            Value::Null,
        );
        if include {
            sse += &chunk(json!([]), usage);
        }
        sse += "data: [DONE]\n\n";
        ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream")
    }
}

async fn compatible_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(CompatibleServer)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/models"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [{"id": "served-model", "object": "model"}]}),
        ))
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn an_sse_provider_reports_streamed_usage_end_to_end() {
    let server = compatible_server().await;
    let clock = clock_at(datetime!(2026-03-09 10:00 UTC));
    let base = format!("{}/v1", server.uri());
    let app = counting_app(
        &clock,
        &[
            ("LLM_PROVIDER", "openai-compatible"),
            ("LLM_BASE_URL", &base),
            ("LLM_MODEL", "served-model"),
        ],
    )
    .await;
    let (outcome, answer) = ask(&app, &direct_message("S-1", "ROOM-S", ALICE, "hi")).await;
    assert_eq!(
        (outcome.as_str(), answer.as_str()),
        ("answered", "Compatible answer")
    );
    let asked = requests_to(&server, "POST", "/v1/chat/completions").await;
    assert_eq!(asked[0]["stream_options"], json!({"include_usage": true}));

    let usage = app
        .state
        .store
        .usage_of(ALICE, "2026-03-01", "2026-03-09")
        .await
        .unwrap();
    assert_eq!(
        (usage.today.prompt_tokens, usage.today.completion_tokens),
        (31, 12)
    );
    assert_metric(&app, r#"webex_chatbot_llm_tokens_total{provider="openai-compatible",model="served-model",kind="prompt"}"#, 31.0).await;
    app.stop().await;
}

#[tokio::test]
async fn fallback_calls_count_against_the_fallback_at_its_price() {
    let fallback = compatible_server().await;
    let clock = clock_at(datetime!(2026-03-09 10:00 UTC));
    let base = format!("{}/v1", fallback.uri());
    let app = counting_app(
        &clock,
        &[
            ("REPLY_STREAMING", "false"),
            ("LLM_FALLBACK_PROVIDER", "openai-compatible"),
            ("LLM_FALLBACK_BASE_URL", &base),
            ("LLM_FALLBACK_MODEL", "served-model"),
            ("LLM_PRICE_INPUT_PER_MTOK", "1000"),
            ("LLM_PRICE_OUTPUT_PER_MTOK", "1000"),
            ("LLM_FALLBACK_PRICE_INPUT_PER_MTOK", "100"),
            ("LLM_FALLBACK_PRICE_OUTPUT_PER_MTOK", "500"),
        ],
    )
    .await;
    // The primary (Ollama) fails; the fallback answers.
    Mock::given(method("POST"))
        .and(path("/api/chat"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"error": "busy"})))
        .with_priority(1)
        .mount(&app.llm)
        .await;
    let (_, answer) = ask(&app, &direct_message("F-1", "ROOM-F", ALICE, "hi")).await;
    assert_eq!(answer, "Compatible answer");

    let out = export_in_process(&app.env_value("DATABASE_URL"), None, None, Format::Json).await;
    let rows: Value = serde_json::from_str(&out).unwrap();
    // 31 × 100 / 10⁶ + 12 × 500 / 10⁶ = 0.0031 + 0.006.
    assert_eq!(
        rows,
        json!([{"day": "2026-03-09", "person": ALICE, "space": "ROOM-F",
            "provider": "openai-compatible", "model": "served-model", "prompt_tokens": 31,
            "completion_tokens": 12, "total_tokens": 43, "cost": 0.0091}])
    );
    app.stop().await;
}

#[tokio::test]
async fn the_daily_token_limit_refuses_until_midnight_utc_and_admins_are_exempt() {
    let clock = clock_at(datetime!(2026-03-09 21:44:30 UTC));
    let app = counting_app(&clock, &[("USER_DAILY_TOKENS", "50")]).await;

    // 35 tokens, then 70: past the limit only after the second answer.
    for (i, text) in ["one", "two"].iter().enumerate() {
        let (outcome, _) = ask(
            &app,
            &direct_message(&format!("D-{i}"), "ROOM-A", ALICE, text),
        )
        .await;
        assert_eq!(outcome, "answered");
    }
    let (outcome, answer) = ask(&app, &direct_message("D-2", "ROOM-A", ALICE, "three")).await;
    assert_eq!(outcome, "limited");
    assert_eq!(
        answer,
        "You have reached your daily limit of 50 tokens. It resets at 00:00 UTC (in 2 h 16 min)."
    );
    // Elsewhere too: the limit is the person's, in every space.
    let (outcome, _) = ask(&app, &group_message("D-3", "ROOM-G", ALICE, "four")).await;
    assert_eq!(outcome, "limited");
    assert_eq!(
        app.llm_requests().await.len(),
        2,
        "no LLM call when limited"
    );
    // Commands still work.
    let (outcome, answer) = ask(&app, &direct_message("D-4", "ROOM-A", ALICE, "usage")).await;
    assert_eq!(outcome, "command");
    assert!(
        answer.contains("Daily limit: 70 of 50 tokens used"),
        "{answer}"
    );

    // Admins are exempt.
    for i in 0..3 {
        let (outcome, _) = ask(
            &app,
            &direct_message(&format!("D-admin-{i}"), "ROOM-ADMIN", ADMIN, "hello"),
        )
        .await;
        assert_eq!(outcome, "answered");
    }

    // A new UTC day.
    clock.set(datetime!(2026-03-10 00:00:01 UTC));
    let (outcome, _) = ask(&app, &direct_message("D-5", "ROOM-A", ALICE, "five")).await;
    assert_eq!(outcome, "answered");

    assert_metric(
        &app,
        r#"webex_chatbot_limit_hits_total{limit="user_daily_tokens"}"#,
        2.0,
    )
    .await;
    assert_metric(
        &app,
        r#"webex_chatbot_events_processed_total{outcome="limited"}"#,
        2.0,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_message_limit_resets_at_the_next_minute() {
    let clock = clock_at(datetime!(2026-03-09 10:00:10 UTC));
    let app = counting_app(&clock, &[("USER_MESSAGES_PER_MINUTE", "2")]).await;
    for i in 0..2 {
        let (outcome, _) = ask(
            &app,
            &direct_message(&format!("M-{i}"), "ROOM-A", ALICE, "hi"),
        )
        .await;
        assert_eq!(outcome, "answered");
    }
    let (outcome, answer) = ask(&app, &direct_message("M-2", "ROOM-A", ALICE, "hi")).await;
    assert_eq!(outcome, "limited");
    assert_eq!(
        answer,
        "You have sent 2 questions this minute, the most I take. Ask again from 10:01 UTC (in 50 s)."
    );
    // Commands are not questions: they neither count nor get refused.
    let (outcome, _) = ask(&app, &direct_message("M-3", "ROOM-A", ALICE, "help")).await;
    assert_eq!(outcome, "command");
    // Someone else has their own count.
    let (outcome, _) = ask(&app, &direct_message("M-4", "ROOM-B", BOB, "hi")).await;
    assert_eq!(outcome, "answered");

    clock.advance(Duration::from_secs(50));
    let (outcome, _) = ask(&app, &direct_message("M-5", "ROOM-A", ALICE, "hi")).await;
    assert_eq!(outcome, "answered");
    assert_metric(
        &app,
        r#"webex_chatbot_limit_hits_total{limit="user_messages_per_minute"}"#,
        1.0,
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn the_space_limit_is_shared_by_everyone_in_the_space() {
    let clock = clock_at(datetime!(2026-03-09 12:00 UTC));
    let app = counting_app(&clock, &[("SPACE_DAILY_TOKENS", "30")]).await;
    let (outcome, _) = ask(&app, &group_message("G-1", "ROOM-G", ALICE, "one")).await;
    assert_eq!(outcome, "answered");
    let (outcome, answer) = ask(&app, &group_message("G-2", "ROOM-G", BOB, "two")).await;
    assert_eq!(outcome, "limited");
    assert_eq!(
        answer,
        "This space has reached its daily limit of 30 tokens. It resets at 00:00 UTC (in 12 h 0 min)."
    );
    // Bob's own space is another space.
    let (outcome, _) = ask(&app, &direct_message("G-3", "ROOM-B", BOB, "three")).await;
    assert_eq!(outcome, "answered");
    app.stop().await;
}

#[tokio::test]
async fn limits_hold_across_a_restart() {
    let clock = clock_at(datetime!(2026-03-09 12:00 UTC));
    let app = counting_app(&clock, &[("USER_DAILY_TOKENS", "30")]).await;
    let (outcome, _) = ask(&app, &direct_message("R-1", "ROOM-A", ALICE, "one")).await;
    assert_eq!(outcome, "answered");
    let app = app.restart().await;
    let (outcome, _) = ask(&app, &direct_message("R-2", "ROOM-A", ALICE, "two")).await;
    assert_eq!(outcome, "limited");
    app.stop().await;
}

#[tokio::test]
async fn usage_all_ranks_people_and_spaces_for_admins_in_direct_spaces_only() {
    let clock = clock_at(datetime!(2026-03-20 12:00 UTC));
    let app = counting_app(&clock, &[("LLM_PRICE_OUTPUT_PER_MTOK", "1000")]).await;
    ask(&app, &direct_message("A-1", "ROOM-A", ALICE, "one")).await;
    ask(&app, &group_message("A-2", "ROOM-G", ALICE, "two")).await;
    ask(&app, &group_message("A-3", "ROOM-G", BOB, "three")).await;
    // Last month's calls are not this month's.
    clock.set(datetime!(2026-02-27 12:00 UTC));
    ask(&app, &direct_message("A-4", "ROOM-B", BOB, "old")).await;
    ask(&app, &direct_message("A-5", "ROOM-B", BOB, "old")).await;
    clock.set(datetime!(2026-03-20 12:30 UTC));

    let (_, answer) = ask(
        &app,
        &direct_message("A-6", "ROOM-ADMIN", ADMIN, "usage all"),
    )
    .await;
    assert_eq!(
        answer,
        "**Usage in March 2026 (UTC)**\n\
         \n\
         **Top 2 people**\n\
         1. alice@example.com: 70 tokens, cost 0.02\n\
         2. bob@example.com: 35 tokens, cost 0.01\n\
         \n\
         **Top 2 spaces (room ids)**\n\
         1. `ROOM-G`: 70 tokens, cost 0.02\n\
         2. `ROOM-A`: 35 tokens, cost 0.01"
    );
    let (outcome, answer) = ask(&app, &group_message("A-7", "ROOM-G", ADMIN, "usage all")).await;
    assert_eq!(outcome, "command");
    assert!(answer.contains("ask me in a direct space"), "{answer}");
    assert!(!answer.contains('@'), "{answer}");
    let (_, answer) = ask(&app, &direct_message("A-8", "ROOM-A", ALICE, "usage all")).await;
    assert_eq!(answer, "Sorry, only admins can do that.");

    // `help` lists both for admins, `usage` only for others.
    let (_, answer) = ask(&app, &direct_message("A-9", "ROOM-ADMIN", ADMIN, "help")).await;
    assert!(
        answer.contains("`usage`") && answer.contains("`usage all`"),
        "{answer}"
    );
    let (_, answer) = ask(&app, &direct_message("A-10", "ROOM-A", ALICE, "help")).await;
    assert!(
        answer.contains("`usage`") && !answer.contains("`usage all`"),
        "{answer}"
    );
    app.stop().await;
}

// ---- export ----------------------------------------------------------------------------

/// What `usage export` prints, from this process (`since` a YYYY-MM-DD day).
async fn export_in_process(
    db: &str,
    schema: Option<&str>,
    since: Option<&str>,
    format: Format,
) -> String {
    let mut out = Vec::new();
    bot::usage::export::export(db, schema, since, format, &mut out)
        .await
        .unwrap();
    String::from_utf8(out).unwrap()
}

/// `usage export ARGS` on `db`, which must succeed; what it printed.
async fn exported(dir: &std::path::Path, db: &str, args: &[&str]) -> String {
    let out = export_cmd(dir, db).args(args).output().await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn export_cmd(dir: &std::path::Path, db: &str) -> Bot {
    Bot::new(["usage", "export"])
        .dir(dir)
        .env("DATABASE_URL", db)
        .env("LOG_FILE", "")
}

#[tokio::test]
async fn usage_export_runs_beside_serve_on_sqlite_as_csv_and_json() {
    let clock = clock_at(datetime!(2026-03-30 09:00 UTC));
    let app = counting_app(&clock, &[("LLM_PRICE_INPUT_PER_MTOK", "1000")]).await;
    ask(&app, &direct_message("E-1", "ROOM-A", ALICE, "one")).await;
    clock.set(datetime!(2026-04-01 09:00 UTC));
    ask(&app, &direct_message("E-2", "ROOM-B", BOB, "two")).await;
    ask(&app, &direct_message("E-3", "ROOM-B", BOB, "three")).await;

    // The app holds the database's owner lock (`bot.db.lock`) like `serve`; the export
    // neither needs nor takes it.
    let db = app.env_value("DATABASE_URL");
    let dir = tempfile::tempdir().unwrap();
    let out = exported(dir.path(), &db, &[]).await;
    assert_eq!(
        out,
        "day,person,space,provider,model,prompt_tokens,completion_tokens,total_tokens,cost\n\
         2026-03-30,alice@example.com,ROOM-A,ollama,llama3.1:8b,26,9,35,0.026\n\
         2026-04-01,bob@example.com,ROOM-B,ollama,llama3.1:8b,52,18,70,0.052\n"
    );

    let out = exported(
        dir.path(),
        &db,
        &["--since", "2026-04-01", "--format", "json"],
    )
    .await;
    let rows: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        rows,
        json!([{"day": "2026-04-01", "person": BOB, "space": "ROOM-B", "provider": "ollama",
            "model": "llama3.1:8b", "prompt_tokens": 52, "completion_tokens": 18,
            "total_tokens": 70, "cost": 0.052}])
    );
    let out = exported(
        dir.path(),
        &db,
        &["--since", "2027-01-01", "--format", "json"],
    )
    .await;
    assert_eq!(out, "[]\n");

    // The app kept working meanwhile, and records after the export are seen by the next.
    let (outcome, _) = ask(&app, &direct_message("E-4", "ROOM-B", BOB, "four")).await;
    assert_eq!(outcome, "answered");
    let out = exported(dir.path(), &db, &["--since", "2026-04-01"]).await;
    assert!(
        out.ends_with("2026-04-01,bob@example.com,ROOM-B,ollama,llama3.1:8b,78,27,105,0.078\n")
    );
    let keep = app.dir.clone();
    app.stop().await;
    // And with `serve` stopped: the same rows.
    let out = exported(dir.path(), &db, &["--since", "2026-04-01"]).await;
    assert_eq!(out.lines().count(), 2);
    drop(keep);
}

#[tokio::test]
async fn usage_export_reads_a_database_nothing_has_open() {
    // `users add` creates the database and closes it cleanly: SQLite removes the WAL
    // files, and the export's read-only connection has to do without them.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/data/bot.db", dir.path().display());
    let status = Bot::new(["users", "add", ALICE])
        .dir(dir.path())
        .env("DATABASE_URL", &db)
        .env("LOG_FILE", "")
        .output()
        .await;
    assert!(status.status.success());
    assert!(!dir.path().join("data/bot.db-wal").exists());
    let out = exported(dir.path(), &db, &[]).await;
    assert_eq!(
        out,
        "day,person,space,provider,model,prompt_tokens,completion_tokens,total_tokens,cost\n"
    );
}

#[tokio::test]
async fn usage_export_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/data/bot.db", dir.path().display());
    let out = export_cmd(dir.path(), &db)
        .args(["--since", "March"])
        .output()
        .await;
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--since") && stderr.contains("YYYY-MM-DD"),
        "{stderr}"
    );

    let out = export_cmd(dir.path(), &db)
        .args(["--format", "xml"])
        .output()
        .await;
    assert_eq!(out.status.code(), Some(2));

    // No database there: a clear error, and none created (read-only).
    let out = export_cmd(dir.path(), &db).output().await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
    assert!(!dir.path().join("data/bot.db").exists());
}

// ---- replicas ------------------------------------------------------------------------------

#[tokio::test]
async fn replicas_on_postgres_share_the_limits_and_the_export() {
    let Some(url) = test_database_url("replicas_on_postgres_share_the_limits_and_the_export")
    else {
        return;
    };
    let schema = fresh_schema();
    let clock = clock_at(datetime!(2026-03-09 10:00:05 UTC));
    let app = TestApp::spawn(
        Spawn::default()
            .answer(counting_answerer())
            .clock(&clock)
            .postgres(&url, &schema)
            .env("USER_MESSAGES_PER_MINUTE", "2")
            .env("USER_DAILY_TOKENS", "100"),
    )
    .await;
    app.approve(ALICE).await;
    let other = app.spawn_replica().await;

    // Two questions through the first replica, a third through the other: refused there.
    ask(&app, &direct_message("P-1", "ROOM-P1", ALICE, "one")).await;
    ask(&app, &direct_message("P-2", "ROOM-P2", ALICE, "two")).await;
    let third = direct_message("P-3", "ROOM-P3", ALICE, "three");
    mount_message(&app.webex, &third).await;
    assert_eq!(other.post_event(&event_for(&third)).await.status(), 200);
    assert_eq!(app.wait_handled("P-3").await, "limited");

    // The next minute: 70 tokens so far, so one more question passes and takes the daily
    // count to 105; after it the daily limit holds on either replica.
    clock.advance(Duration::from_secs(60));
    let fourth = direct_message("P-4", "ROOM-P3", ALICE, "four");
    mount_message(&app.webex, &fourth).await;
    assert_eq!(other.post_event(&event_for(&fourth)).await.status(), 200);
    assert_eq!(app.wait_handled("P-4").await, "answered");
    let (outcome, answer) = ask(&app, &direct_message("P-5", "ROOM-P1", ALICE, "five")).await;
    assert_eq!(outcome, "limited");
    assert!(answer.contains("daily limit of 100 tokens"), "{answer}");
    assert_eq!(app.llm_requests().await.len(), 3);

    let csv = export_in_process(&url, Some(&schema), Some("2026-03-09"), Format::Csv).await;
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.contains("2026-03-09,alice@example.com,ROOM-P3,ollama,llama3.1:8b,26,9,35,0"));
    other.stop().await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_export_works_while_a_serve_process_owns_the_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = MockServer::start().await;
    mount_ollama(&llm, counting_answerer()).await;
    let port = free_port();
    let db = format!("sqlite://{}/data/bot.db", dir.path().display());
    // A `serve` process: it holds `bot.db.lock`.
    let mut serve = Bot::new(["serve"])
        .dir(dir.path())
        .env("WEBEX_BOT_TOKEN", TOKEN)
        .env("WEBEX_API_URL", webex.uri())
        .env("OLLAMA_URL", llm.uri())
        .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("ADMIN_EMAILS", ALICE)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", &db)
        .env("PERSONALITIES_DIR", personalities_dir())
        .env("LOG_FILE", "")
        .spawn();
    serve.wait_listening(port).await;
    assert!(dir.path().join("data/bot.db.lock").exists());

    let answered = async |n: usize| {
        assert!(
            eventually(Duration::from_secs(10), || async {
                requests_to(&webex, "POST", "/messages").await.len() >= n
            })
            .await,
            "expected {n} answers"
        );
    };
    for (n, id) in ["X-1", "X-2"].iter().enumerate() {
        let message = direct_message(id, "ROOM-X", ALICE, "hi");
        mount_message(&webex, &message).await;
        assert_eq!(post_signed(port, &event_for(&message)).await, 200);
        answered(n + 1).await;
        let out = exported(dir.path(), &db, &[]).await;
        let csv = out;
        let total = 35 * (n + 1);
        let want = format!(
            ",alice@example.com,ROOM-X,ollama,llama3.1:8b,{},{},{total},0.00\n",
            26 * (n + 1),
            9 * (n + 1)
        );
        assert!(csv.ends_with(&want), "{csv}");
    }
}
