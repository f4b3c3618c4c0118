//! The real `webex-chatbot` binary as a process: exit codes, `kill -9` recovery, and logs
//! that never contain a secret.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use wiremock::MockServer;

use crate::helpers::*;

/// The relay key of these processes: every webhook must carry it.
const RELAY_KEY: &str = "relay-key-SECRET-55";

/// Logs written to a pipe (the journal, a file, another program) carry no colour codes;
/// `NO_COLOR` turns them off at a terminal too.
#[tokio::test]
async fn logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let out = Bot::new(["serve"])
        .dir(dir.path())
        .env("WEBEX_BOT_TOKEN", "t")
        .env("PERSONALITIES_DIR", personalities_dir())
        .env("LOG_FILE", "")
        .output()
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("starting webex-chatbot"), "{stdout}");
    assert!(
        !stdout.contains('\u{1b}'),
        "escape codes in piped logs: {stdout:?}"
    );
}

/// The shipped personalities are built in: the bot runs from a folder without
/// `personalities/`, and a `PERSONALITIES_DIR` file overrides a built-in of its name.
#[tokio::test]
async fn shipped_personalities_are_built_in_and_a_folder_overrides_them() {
    let dir = tempfile::tempdir().unwrap();
    let run = async |personalities: Option<&Path>| {
        let out = Bot::new(["chat"])
            .dir(dir.path())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/bot.db", dir.path().display()),
            )
            .env("LOG_FILE", "")
            .envs(personalities.map(|p| ("PERSONALITIES_DIR", p)))
            .stdin("personality list\n")
            .output()
            .await;
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed = run(None).await;
    for name in ["default", "engineer", "summarizer", "teacher", "writer"] {
        assert!(listed.contains(&format!("`{name}`")), "{listed}");
    }
    let own = dir.path().join("mine");
    std::fs::create_dir(&own).unwrap();
    std::fs::write(
        own.join("teacher.toml"),
        "description = \"Our own teacher\"\nsystem_prompt = \"Teach.\"\n",
    )
    .unwrap();
    let listed = run(Some(&own)).await;
    assert!(listed.contains("`teacher`: Our own teacher"), "{listed}");
    assert!(listed.contains("`writer`"), "{listed}");
}

#[tokio::test]
async fn configuration_errors_exit_2_and_name_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "WEBEX_BOT_TOKEN"),
        (
            &[("WEBEX_BOT_TOKEN", "t"), ("LLM_PROVIDER", "anthropic")],
            "LLM_API_KEY",
        ),
        (
            &[("WEBEX_BOT_TOKEN", "t"), ("LLM_PROVIDER", "skynet")],
            "LLM_PROVIDER",
        ),
        (
            &[("WEBEX_BOT_TOKEN", "t"), ("LLM_TIMEOUT_SECS", "-1")],
            "LLM_TIMEOUT_SECS",
        ),
        (
            &[("WEBEX_BOT_TOKEN", "t"), ("DEFAULT_PERSONALITY", "nobody")],
            "DEFAULT_PERSONALITY",
        ),
    ];
    for (env, var) in cases {
        let out = Bot::new(["serve"])
            .dir(dir.path())
            .env("LOG_FILE", "")
            .env("PERSONALITIES_DIR", personalities_dir())
            .envs(env.iter().copied())
            .output()
            .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(var), "{env:?} should name {var}: {stderr}");
    }
}

fn start(dir: &Path, run: &str, port: u16, webex: &MockServer, llm: &MockServer) -> BotProcess {
    start_with(dir, run, port, webex, llm, Path::new(&personalities_dir()))
}

fn start_with(
    dir: &Path,
    run: &str,
    port: u16,
    webex: &MockServer,
    llm: &MockServer,
    personalities: &Path,
) -> BotProcess {
    Bot::new(["serve"])
        .dir(dir)
        .name(run)
        .env("WEBEX_BOT_TOKEN", TOKEN)
        .env("WEBEX_API_URL", webex.uri())
        .env("OLLAMA_URL", llm.uri())
        .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("RELAY_API_KEY", RELAY_KEY)
        .env("LLM_API_KEY", "llm-key-SECRET-66")
        .env("ADMIN_EMAILS", ALICE)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/data/bot.db", dir.display()),
        )
        .env("PERSONALITIES_DIR", personalities)
        .env("LOG_FILE", dir.join("logs/bot_server.log"))
        .env("LOG_LEVEL", "debug")
        .spawn()
}

/// A bot process killed (`kill -9`) while the LLM call for `message` was in flight, after
/// acknowledging it, and a second process started on the same database and port, with an
/// LLM that answers at once.
struct Restarted {
    dir: tempfile::TempDir,
    webex: MockServer,
    _llm: MockServer,
    port: u16,
    second: BotProcess,
}

async fn killed_during_the_llm_call_then_restarted(message: &Value) -> Restarted {
    let dir = tempfile::tempdir().unwrap();
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = MockServer::start().await;
    // First life: the LLM hangs, so the bot is killed mid-work.
    mount_ollama(
        &llm,
        std::sync::Arc::new(|_: &Value| {
            ollama_answer("too late").set_delay(Duration::from_secs(30))
        }),
    )
    .await;
    mount_message(&webex, message).await;

    let port = free_port();
    let mut first = start(dir.path(), "first", port, &webex, &llm);
    first.wait_ready(port).await;
    assert_eq!(
        post_signed_with(port, &event_for(message), Some(RELAY_KEY)).await,
        200
    );
    assert!(
        eventually(Duration::from_secs(5), || async {
            !requests_to(&llm, "POST", "/api/chat").await.is_empty()
        })
        .await,
        "the LLM was never asked"
    );
    first.kill_9();
    assert!(requests_to(&webex, "POST", "/messages").await.is_empty());

    // Second life: the LLM answers at once.
    llm.reset().await;
    mount_ollama(&llm, echo_answerer()).await;
    let mut second = start(dir.path(), "second", port, &webex, &llm);
    second.wait_ready(port).await;
    Restarted {
        dir,
        webex,
        _llm: llm,
        port,
        second,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_acknowledged_before_kill_9_is_answered_once_after_restart() {
    let question = "what is the QUESTION-TEXT-marker?";
    let message = direct_message("M-kill9", "ROOM-kill9", ALICE, question);
    let Restarted {
        dir,
        webex,
        port,
        second: _second,
        ..
    } = killed_during_the_llm_call_then_restarted(&message).await;
    eventually(Duration::from_secs(5), || async {
        !requests_to(&webex, "POST", "/messages").await.is_empty()
    })
    .await;
    let replies = requests_to(&webex, "POST", "/messages").await;
    // A redelivery of the same event after the restart changes nothing.
    assert_eq!(
        post_signed_with(port, &event_for(&message), Some(RELAY_KEY)).await,
        200
    );
    // Deliberate: no second reply within 500 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies_after = requests_to(&webex, "POST", "/messages").await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies_after.len(), 1, "{replies_after:?}");
    assert_eq!(replies[0]["markdown"], format!("Echo: {question}"));

    // No secret in any log output, even at DEBUG; no message text at INFO lines.
    drop(_second);
    let mut logs = String::new();
    for name in [
        "first.out",
        "first.err",
        "second.out",
        "second.err",
        "logs/bot_server.log",
    ] {
        logs.push_str(&std::fs::read_to_string(dir.path().join(name)).unwrap_or_default());
    }
    assert!(
        logs.contains("event accepted"),
        "logs were captured: {logs}"
    );
    for secret in [
        TOKEN,
        WEBHOOK_SECRET,
        "relay-key-SECRET-55",
        "llm-key-SECRET-66",
        "SECRET",
    ] {
        assert!(
            !logs.contains(secret),
            "a secret leaked into the logs: {secret}"
        );
    }
    for line in logs.lines().filter(|l| l.contains(" INFO ")) {
        assert!(
            !line.contains("QUESTION-TEXT-marker"),
            "message text logged at INFO: {line}"
        );
    }
}

async fn reply_texts(webex: &MockServer) -> Vec<String> {
    requests_to(webex, "POST", "/messages")
        .await
        .iter()
        .map(|r| r["markdown"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn ask(port: u16, webex: &MockServer, id: &str, text: &str) -> String {
    let before = reply_texts(webex).await.len();
    let message = direct_message(id, "ROOM-hup", ALICE, text);
    mount_message(webex, &message).await;
    assert_eq!(
        post_signed_with(port, &event_for(&message), Some(RELAY_KEY)).await,
        200
    );
    eventually_some(Duration::from_secs(5), || async {
        reply_texts(webex).await.get(before).cloned()
    })
    .await
    .unwrap_or_else(|| panic!("no answer to {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_personalities_and_a_bad_file_keeps_the_old_set() {
    let dir = tempfile::tempdir().unwrap();
    let personalities = dir.path().join("personalities");
    std::fs::create_dir(&personalities).unwrap();
    std::fs::write(
        personalities.join("default.toml"),
        "description = \"Plain\"\nsystem_prompt = \"You are plain.\"\n",
    )
    .unwrap();
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = MockServer::start().await;
    mount_ollama(&llm, echo_answerer()).await;
    let port = free_port();
    let mut bot = start_with(dir.path(), "hup", port, &webex, &llm, &personalities);
    bot.wait_ready(port).await;
    let reloads = |bot: &BotProcess, what: &str| bot.stdout().matches(what).count();

    let before = ask(port, &webex, "hup-1", "personality list").await;
    assert!(!before.contains("pirate"), "{before}");

    std::fs::write(
        personalities.join("pirate.toml"),
        "description = \"Talks like a pirate\"\nsystem_prompt = \"Arr.\"\n",
    )
    .unwrap();
    bot.sighup();
    assert!(
        eventually(Duration::from_secs(5), || async {
            reloads(&bot, "personalities reloaded") == 1
        })
        .await,
        "{}",
        bot.output()
    );
    let after = ask(port, &webex, "hup-2", "personality list").await;
    assert!(
        after.contains("pirate"),
        "SIGHUP picked up the new file: {after}"
    );

    // A broken new file: the reload is refused and the previous set stays.
    std::fs::write(personalities.join("broken.toml"), "description = ").unwrap();
    std::fs::remove_file(personalities.join("pirate.toml")).unwrap();
    bot.sighup();
    assert!(
        eventually(Duration::from_secs(5), || async {
            reloads(&bot, "personalities not reloaded") == 1
        })
        .await,
        "{}",
        bot.output()
    );
    let kept = ask(port, &webex, "hup-3", "personality list").await;
    assert!(
        kept.contains("pirate"),
        "the old set stays after a bad reload: {kept}"
    );
    let log = std::fs::read_to_string(dir.path().join("hup.out")).unwrap();
    assert!(
        log.contains("broken.toml"),
        "the bad file is named in the log"
    );
}

/// The same in a group space, where the attempt after the restart cannot list the room
/// (Webex refuses a bot without `mentionedPeople=me` and never shows it its replies): the
/// question is answered once, in its thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_question_acknowledged_before_kill_9_is_answered_once_after_restart() {
    let message = group_message("M-gkill9", "ROOM-gkill9", ALICE, "are you still there?");
    let Restarted {
        webex,
        second: _second,
        ..
    } = killed_during_the_llm_call_then_restarted(&message).await;
    eventually(Duration::from_secs(10), || async {
        posted_messages(&webex)
            .iter()
            .any(|m| m["markdown"] == "Echo: are you still there?")
    })
    .await;
    // Deliberate: no second reply within 500 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shown = posted_messages(&webex);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert_eq!(shown[0]["markdown"], "Echo: are you still there?");
    assert_eq!(shown[0]["parentId"], "M-gkill9");
}
