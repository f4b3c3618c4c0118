//! The real bot process with tool servers: no secret reaches a server, and tool output
//! stays out of INFO logs.

use super::*;

/// The bot binary with secrets in its environment and LOG_LEVEL=debug: the stdio server
/// sees none of the bot's variables, and a tool's output never reaches an INFO line.
#[tokio::test]
async fn as_a_process_servers_get_no_secret_and_tool_output_stays_out_of_info_logs() {
    const MARKER: &str = "TOOL-OUTPUT-marker-8c1";
    let dir = tempfile::tempdir().unwrap();
    let webex = wiremock::MockServer::start().await;
    mount_webex_basics(&webex).await;
    let model = calls_then(
        &[
            ("test__env", json!({})),
            ("test__echo", json!({"text": MARKER})),
        ],
        |_| "Checked.".into(),
    );
    let llm = ToolLlm::start(Kind::Ollama, model).await;
    let file = dir.path().join("tools.toml");
    std::fs::write(&file, stdio_server("test", "")).unwrap();
    let folder = personalities(dir.path(), &["test"]);
    let port = free_port();
    let mut bot = Bot::new(["serve"])
        .dir(dir.path())
        .env("WEBEX_BOT_TOKEN", TOKEN)
        .env("WEBEX_API_URL", webex.uri())
        .env("LLM_PROVIDER", "ollama")
        .env("LLM_BASE_URL", &llm.uri)
        .env("LLM_API_KEY", KEY)
        .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("RELAY_API_KEY", "relay-key-SECRET-31")
        .env("ADMIN_EMAILS", ALICE)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/bot.db", dir.path().display()),
        )
        .env("PERSONALITIES_DIR", &folder)
        .env("TOOLS_CONFIG", &file)
        .env("REPLY_STREAMING", "false")
        .env("LOG_FILE", "")
        .env("LOG_LEVEL", "debug")
        .spawn();
    bot.wait_listening(port).await;
    // The server is up once the bot says so (tools are offered only while connected).
    assert!(
        eventually(Duration::from_secs(10), || async {
            bot.output().contains("MCP server connected")
        })
        .await,
        "{}",
        bot.output()
    );
    let message = direct_message("P-1", "ROOM-P", ALICE, "Check the tools");
    mount_message(&webex, &message).await;
    assert_eq!(
        post_signed_with(port, &event_for(&message), Some("relay-key-SECRET-31")).await,
        200
    );
    let answered = eventually(Duration::from_secs(10), || async {
        posted_messages(&webex)
            .iter()
            .any(|m| m["markdown"] == "Checked.")
    })
    .await;
    bot.kill_9();
    let logs = bot.output();
    assert!(answered, "no answer; logs: {logs}");

    // What the server's environment held came back to the model: none of the bot's.
    let requests = llm.requests();
    let results = requests[1].to_string();
    assert!(results.contains(MARKER), "{results}");
    for name in [
        "WEBEX_BOT_TOKEN",
        "LLM_API_KEY",
        "WEBHOOK_SECRET",
        "RELAY_API_KEY",
        "DATABASE_URL",
    ] {
        assert!(!results.contains(name), "the server saw {name}: {results}");
    }
    assert!(logs.contains("tool call"), "{logs}");
    for line in logs
        .lines()
        .filter(|l| l.contains(" INFO ") || l.contains(" WARN "))
    {
        assert!(
            !line.contains(MARKER),
            "tool output logged above DEBUG: {line}"
        );
    }
    for secret in [TOKEN, KEY, WEBHOOK_SECRET, "relay-key-SECRET-31"] {
        assert!(!logs.contains(secret), "a secret leaked into the logs");
    }
}
