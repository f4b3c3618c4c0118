//! The process's life on its database and its webhook: one `serve` owns a SQLite file and
//! takes back an earlier life's work at once, the webhook is kept active, `.env` is read
//! from one place only, `webhooks delete-all` removes everything.

use std::time::{Duration, Instant};

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

    let mut second = BotProcess::spawn(
        dir.path(),
        "second",
        &["serve"],
        &with_port(&env, free_port()),
    );
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
    let mut users = BotProcess::spawn(
        dir.path(),
        "users",
        &["users", "add", "bob@example.com"],
        &env,
    );
    let status = users.wait_exit(Duration::from_secs(15)).await;
    assert!(status.is_some_and(|s| s.success()), "{}", users.output());
    let mut list = BotProcess::spawn(dir.path(), "list", &["users", "list"], &env);
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
    assert!(first.child.try_wait().unwrap().is_none());
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
    first.child.kill().unwrap(); // SIGKILL: the room lease stays in the database
    first.child.wait().unwrap();
    assert!(requests_to(&webex, "POST", "/messages").await.is_empty());

    llm.reset().await;
    mount_ollama(&llm, echo_answerer()).await;
    let port = free_port();
    let mut second = BotProcess::spawn(dir.path(), "second", &["serve"], &with_port(&env, port));
    wait_healthy(port, &mut second).await;
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
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replies = requests_to(&webex, "POST", "/messages").await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["markdown"], "Echo: still waiting");
}
