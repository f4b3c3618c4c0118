//! The process's life on its database and its webhook: one `serve` owns a SQLite file and
//! takes back an earlier life's work at once, the webhook is kept active, `.env` is read
//! from one place only, `webhooks delete-all` removes everything.

use std::time::{Duration, Instant};

use wiremock::Mock;
use wiremock::matchers::{method, path};

use crate::helpers::*;
use crate::ops::*;

fn with_port(env: &[(String, String)], port: u16) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| k != "BIND_ADDR")
        .cloned()
        .collect();
    env.push(("BIND_ADDR".into(), format!("127.0.0.1:{port}")));
    env
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_serve_on_the_same_sqlite_file_exits_2_and_other_subcommands_still_work() {
    let InFlight {
        dir,
        webex: _webex,
        llm: _llm,
        env,
        port,
        bot: mut first,
    } = answer_in_flight(
        "owner",
        Duration::from_secs(30),
        ("M-own", "ROOM-own", "who owns the database?"),
        &[],
    )
    .await;

    let mut second = Bot::new(["serve"])
        .dir(dir.path())
        .name("second")
        .envs(with_port(&env, free_port()))
        .spawn();
    let status = second.wait_exit(Duration::from_secs(15)).await;
    let output = second.output();
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{output}");
    assert!(
        output.contains("DATABASE_URL"),
        "names the variable: {output}"
    );
    assert!(
        output.contains("in use by another process"),
        "says why: {output}"
    );

    // `users` does not take the lock: it works while `serve` runs.
    let mut users = Bot::new(["users", "add", "bob@example.com"])
        .dir(dir.path())
        .name("users")
        .envs(env.clone())
        .spawn();
    let status = users.wait_exit(Duration::from_secs(15)).await;
    assert!(status.is_some_and(|s| s.success()), "{}", users.output());
    let mut list = Bot::new(["users", "list"])
        .dir(dir.path())
        .name("list")
        .envs(env.clone())
        .spawn();
    let status = list.wait_exit(Duration::from_secs(15)).await;
    assert!(status.is_some_and(|s| s.success()), "{}", list.output());
    assert!(
        list.output().contains("bob@example.com\tapproved"),
        "{}",
        list.output()
    );

    // The first one is still serving.
    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(first.try_wait().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kill_9_a_restart_on_another_port_answers_the_pending_question_within_10_s() {
    let InFlight {
        dir,
        webex,
        llm,
        env,
        port: _,
        bot: mut first,
    } = answer_in_flight(
        "first",
        Duration::from_secs(60),
        ("M-takeback", "ROOM-takeback", "still waiting"),
        &[("LLM_TIMEOUT_SECS", "120")],
    )
    .await;
    first.kill_9(); // the room lease stays in the database
    assert!(requests_to(&webex, "POST", "/messages").await.is_empty());

    llm.reset().await;
    mount_ollama(&llm, echo_answerer()).await;
    let port = free_port();
    let mut second = Bot::new(["serve"])
        .dir(dir.path())
        .name("second")
        .envs(with_port(&env, port))
        .spawn();
    second.wait_ready(port).await;
    let healthy = Instant::now();
    assert!(
        eventually(Duration::from_secs(10), || async {
            !requests_to(&webex, "POST", "/messages").await.is_empty()
        })
        .await,
        "not answered within 10 s of /health: {}",
        second.output()
    );
    assert!(healthy.elapsed() < Duration::from_secs(10));
    // Deliberate: no second answer within 300 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replies = requests_to(&webex, "POST", "/messages").await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["markdown"], "Echo: still waiting");
}

// ---- the webhook check (WEBHOOK_CHECK_SECS) ------------------------------------------

async fn webhook_health(app: &TestApp) -> serde_json::Value {
    app.health().await["webhook"].clone()
}

fn is_rfc3339(v: &serde_json::Value) -> bool {
    v.as_str().is_some_and(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
    })
}

#[tokio::test]
async fn the_leader_sets_an_inactive_webhook_active_again_and_recreates_a_deleted_one() {
    let webex = wiremock::MockServer::start().await;
    mount_webex_basics(&webex).await;
    let fake = FakeWebhooks::default();
    fake.mount(&webex).await;
    let app = TestApp::spawn_with_webex(
        webex,
        Spawn::default()
            .env("BOT_PUBLIC_URL", "https://bot.example.com")
            .env("WEBHOOK_CHECK_SECS", "1"),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            webhook_health(&app).await["registered"] == true
        })
        .await
    );
    let health = webhook_health(&app).await;
    assert_eq!(health["signed"], true, "{health}");
    assert_eq!(health["status"], "active", "{health}");
    assert!(is_rfc3339(&health["checked_at"]), "{health}");
    // One webhook per handled event, all at BOT_PUBLIC_URL/webhook with the secret.
    assert_eq!(fake.list().len(), 3, "{:?}", fake.list());
    let of = |resource: &str| {
        fake.list()
            .into_iter()
            .find(|h| h["resource"] == resource)
            .unwrap_or_else(|| panic!("no {resource} webhook: {:?}", fake.list()))
    };
    let messages_id = of("messages")["id"].as_str().unwrap().to_owned();
    assert_eq!(health["id"], messages_id.as_str(), "{health}");
    let id = of("attachmentActions")["id"].as_str().unwrap().to_owned();

    // Webex disables one after failed deliveries: /health shows the worst status until the
    // next check sets it active again.
    fake.set_status(&id, "inactive");
    let first_check = health["checked_at"].clone();
    assert!(
        eventually(Duration::from_secs(4), || async {
            of("attachmentActions")["status"] == "active"
        })
        .await,
        "the webhook was not set active again: {:?}",
        fake.list()
    );
    let puts: Vec<serde_json::Value> =
        requests_to(&app.webex, "PUT", &format!("/webhooks/{id}")).await;
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(puts[0]["status"], "active");
    assert_eq!(puts[0]["name"], "webex-chatbot");
    assert_eq!(puts[0]["targetUrl"], "https://bot.example.com/webhook");
    assert_eq!(puts[0]["secret"], WEBHOOK_SECRET);
    let health = webhook_health(&app).await;
    assert_eq!(health["status"], "active", "{health}");
    assert_ne!(health["checked_at"], first_check, "{health}");
    assert!(is_rfc3339(&health["checked_at"]), "{health}");

    // Deleted behind the bot's back: the next check creates it again.
    let memberships = of("memberships")["id"].as_str().unwrap().to_owned();
    fake.remove(&memberships);
    assert!(
        eventually(Duration::from_secs(4), || async { fake.list().len() == 3 }).await,
        "the webhook was not created again"
    );
    let again = of("memberships");
    assert_ne!(again["id"], memberships.as_str());
    assert_eq!(again["event"], "created");
    assert_eq!(again["targetUrl"], "https://bot.example.com/webhook");
    assert_eq!(again["secret"], WEBHOOK_SECRET);
    // Three webhooks stay three: the checks in between changed nothing (deliberately
    // given 1.5 s of checks to go wrong).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.list().len(), 3, "{:?}", fake.list());
    assert_eq!(
        requests_to(&app.webex, "PUT", &format!("/webhooks/{id}"))
            .await
            .len(),
        1
    );
    assert_eq!(webhook_health(&app).await["id"], messages_id.as_str());
}

#[tokio::test]
async fn health_shows_the_worst_webhook_status_when_one_cannot_be_fixed() {
    let webex = wiremock::MockServer::start().await;
    mount_webex_basics(&webex).await;
    let target = "https://bot.example.com/webhook";
    let mut hooks = bot_hooks("OLD", target, "active");
    hooks[2]["status"] = serde_json::json!("inactive");
    let fake = FakeWebhooks::with(hooks);
    // The memberships webhook (OLD-3) is inactive: startup's registration replaces it.
    fake.mount(&webex).await;
    let app = TestApp::spawn_with_webex(
        webex,
        Spawn::default()
            .env("BOT_PUBLIC_URL", "https://bot.example.com")
            .env("WEBHOOK_CHECK_SECS", "1"),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            webhook_health(&app).await["registered"] == true
        })
        .await
    );
    // Startup replaced the inactive one: three active webhooks, none duplicated.
    let list = fake.list();
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(list.iter().all(|h| h["status"] == "active"), "{list:?}");
    assert!(list.iter().all(|h| h["id"] != "OLD-3"), "{list:?}");
    let created = list
        .iter()
        .find(|h| h["resource"] == "memberships")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Now it is disabled again and Webex refuses to re-enable it: /health says inactive.
    Mock::given(method("PUT"))
        .and(path(format!("/webhooks/{created}")))
        .respond_with(webex_error_body(500, "down"))
        .with_priority(1)
        .mount(&app.webex)
        .await;
    fake.set_status(&created, "inactive");
    assert!(
        eventually(Duration::from_secs(8), || async {
            webhook_health(&app).await["status"] == "inactive"
        })
        .await,
        "{}",
        webhook_health(&app).await
    );
    let health = webhook_health(&app).await;
    assert!(
        health["note"]
            .as_str()
            .unwrap_or_default()
            .contains("memberships/created"),
        "{health}"
    );
}

#[tokio::test]
async fn health_shows_an_unsigned_webhook_and_unknown_status_without_a_public_url() {
    // Unsigned webhooks need ALLOW_UNSIGNED_WEBHOOKS=true: without it serve refuses to start.
    let app = TestApp::spawn(
        Spawn::default()
            .env("WEBHOOK_SECRET", "")
            .env("ALLOW_UNSIGNED_WEBHOOKS", "true"),
    )
    .await;
    let health = webhook_health(&app).await;
    assert_eq!(health["signed"], false, "{health}");
    assert_eq!(health["status"], "unknown", "{health}");
    assert!(health["checked_at"].is_null(), "{health}");
}

// ---- MEMORY_MAX_AGE_DAYS ---------------------------------------------------------------

#[tokio::test]
async fn a_start_forgets_conversations_older_than_memory_max_age_days_and_0_keeps_them() {
    use bot::domain::{ConversationKey, Role, Turn};
    let turn = Turn {
        role: Role::User,
        content: "remember me".to_owned(),
    };
    let conversation = ConversationKey::direct("ROOM-memory");
    // 0 = never: the conversation outlives a restart.
    let app = TestApp::spawn(Spawn::default().env("MEMORY_MAX_AGE_DAYS", "0")).await;
    app.state
        .store
        .append_turns(&conversation, std::slice::from_ref(&turn), 40)
        .await
        .unwrap();
    // The conversation ages 1.2 s (the age is what is under test).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let app = app.restart().await;
    // Deliberate: the start's pruning is given 300 ms to (wrongly) forget it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.state
            .store
            .history(&conversation, 40)
            .await
            .unwrap()
            .len(),
        1
    );
    app.stop().await;

    // 0.00001 days = 0.864 s: a start after that forgets it.
    let app = TestApp::spawn(Spawn::default().env("MEMORY_MAX_AGE_DAYS", "0.00001")).await;
    app.state
        .store
        .append_turns(&conversation, std::slice::from_ref(&turn), 40)
        .await
        .unwrap();
    // The conversation ages past 0.864 s (the age is what is under test).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let app = app.restart().await;
    assert!(
        eventually(Duration::from_secs(3), || async {
            app.state
                .store
                .history(&conversation, 40)
                .await
                .unwrap()
                .is_empty()
        })
        .await,
        "the old conversation was not forgotten at start"
    );
}

#[tokio::test]
async fn a_bad_memory_max_age_days_exits_2_naming_it() {
    for bad in ["-1", "ninety"] {
        let dir = tempfile::tempdir().unwrap();
        let out = Bot::new(["serve"])
            .dir(dir.path())
            .env("WEBEX_BOT_TOKEN", TOKEN)
            .env("LOG_FILE", "")
            .env("MEMORY_MAX_AGE_DAYS", bad)
            .output()
            .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {stderr}");
        assert!(stderr.contains("MEMORY_MAX_AGE_DAYS"), "{bad}: {stderr}");
        if bad == "-1" {
            assert!(
                stderr.contains("0 or more"),
                "says what is allowed: {stderr}"
            );
        }
    }
}

// ---- .env and ENV_FILE -------------------------------------------------------------------

async fn users_list(
    cwd: &std::path::Path,
    db: &std::path::Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    Bot::new(["users", "list"])
        .dir(cwd)
        .env("DATABASE_URL", format!("sqlite://{}/bot.db", db.display()))
        .env("PERSONALITIES_DIR", personalities_dir())
        .env("LOG_FILE", "")
        .envs(env.iter().copied())
        .output()
        .await
}

fn write_mode(path: &std::path::Path, text: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn env_is_read_from_the_working_directory_only_and_env_file_names_another() {
    let root = tempfile::tempdir().unwrap();
    let work = root.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let db = root.path().join("db");
    write_mode(
        &root.path().join(".env"),
        "ADMIN_EMAILS=parent@example.com\n",
        0o600,
    );
    let out_text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // A .env in the parent folder is not read.
    let out = users_list(&work, &db, &[]).await;
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(
        !out_text(&out).contains("parent@example.com"),
        "{}",
        out_text(&out)
    );

    // The working directory's .env is.
    write_mode(&work.join(".env"), "ADMIN_EMAILS=work@example.com\n", 0o600);
    let out = users_list(&work, &db, &[]).await;
    assert!(
        out_text(&out).contains("work@example.com\tadmin"),
        "{}",
        out_text(&out)
    );

    // ENV_FILE names the file to read instead (and the working directory's is not read).
    let other = root.path().join("bot.env");
    write_mode(&other, "ADMIN_EMAILS=envfile@example.com\n", 0o644);
    let other_s = other.display().to_string();
    let out = users_list(&work, &db, &[("ENV_FILE", &other_s)]).await;
    let text = out_text(&out);
    assert!(text.contains("envfile@example.com\tadmin"), "{text}");
    assert!(!text.contains("work@example.com"), "{text}");

    // Real environment variables still win.
    let out = users_list(
        &work,
        &db,
        &[("ENV_FILE", &other_s), ("ADMIN_EMAILS", "real@example.com")],
    )
    .await;
    let text = out_text(&out);
    assert!(text.contains("real@example.com\tadmin"), "{text}");
    assert!(!text.contains("envfile@example.com"), "{text}");

    // A missing ENV_FILE is a configuration error naming it.
    let missing = root.path().join("missing.env").display().to_string();
    let out = users_list(&work, &db, &[("ENV_FILE", &missing)]).await;
    assert_eq!(out.status.code(), Some(2), "{}", out_text(&out));
    assert!(out_text(&out).contains("ENV_FILE"), "{}", out_text(&out));

    // A broken line is named by file, never quoted (it may hold a secret).
    let broken = root.path().join("broken.env");
    write_mode(&broken, "WEBEX_BOT_TOKEN tok-SECRET-in-env\n", 0o600);
    let broken_s = broken.display().to_string();
    let out = users_list(&work, &db, &[("ENV_FILE", &broken_s)]).await;
    assert_eq!(out.status.code(), Some(2), "{}", out_text(&out));
    assert!(out_text(&out).contains("broken.env"), "{}", out_text(&out));
    assert!(!out_text(&out).contains("SECRET"), "{}", out_text(&out));

    // doctor checks the mode of the file that was read: ENV_FILE's (0644 here).
    let closed = format!("http://127.0.0.1:{}", free_port());
    let out = Bot::new(["doctor", "--json"])
        .dir(&work)
        .env("ENV_FILE", &other_s)
        .env("DATABASE_URL", format!("sqlite://{}/bot.db", db.display()))
        .env("PERSONALITIES_DIR", personalities_dir())
        .env("LOG_FILE", "")
        .env("WEBEX_API_URL", &closed)
        .env("OLLAMA_URL", &closed)
        .output()
        .await;
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out_text(&out)));
    let check = report
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "env-file")
        .unwrap()
        .clone();
    assert_eq!(check["status"], "FAIL", "{check}");
    assert!(
        check["detail"].as_str().unwrap().contains("bot.env"),
        "{check}"
    );
}
