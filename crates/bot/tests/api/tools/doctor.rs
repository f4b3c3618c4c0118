//! The `tools` chat command and `doctor` with tool servers.

use super::*;

#[tokio::test]
async fn the_tools_command_lists_this_spaces_tools() {
    let bot = with_tools(Kind::Ollama, adder())
        .confirm_shout()
        .offer(&["test/add", "test/shout", "missing/tool"])
        .start()
        .await;
    let app = &bot.app;
    assert_eq!(ask(app, "M-1", "ROOM-1", "tools").await, "command");
    let listed = last_posted(app);
    assert!(listed.contains("`test/add`: Adds two integers"), "{listed}");
    assert!(
        listed.contains("`test/shout`") && listed.contains("asks for approval"),
        "{listed}"
    );
    assert!(!listed.contains("test/echo"), "{listed}");
    // Another personality, no tools.
    assert_eq!(
        ask(app, "M-2", "ROOM-1", "personality plain").await,
        "command"
    );
    assert_eq!(ask(app, "M-3", "ROOM-1", "tools").await, "command");
    assert_eq!(
        last_posted(app),
        "This space's personality offers no tools."
    );
    assert!(bot.llm.requests().is_empty());
}

#[tokio::test]
async fn doctor_starts_each_server_and_lists_its_tools() {
    let dir = tempfile::tempdir().unwrap();
    let http = HttpServer::start(None);
    let file = dir.path().join("tools.toml");
    std::fs::write(
        &file,
        format!(
            "{}\n[servers.wiki]\nurl = {:?}\n\n[servers.broken]\ncommand = \"/nonexistent/mcp\"\n",
            stdio_server("test", "confirm = [\"shout\"]"),
            http.url
        ),
    )
    .unwrap();
    let run = async |json: bool| {
        Bot::new(["doctor"])
            .args(json.then_some("--json"))
            .dir(dir.path())
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TOOLS_CONFIG", &file)
            .env("LOG_FILE", "")
            .env(
                "DATABASE_URL",
                format!("sqlite://{}/bot.db", dir.path().display()),
            )
            .output()
            .await
    };
    let out = run(true).await;
    let report: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let servers: Vec<&Value> = report
        .iter()
        .filter(|c| c["name"] == "tool-server")
        .collect();
    assert_eq!(servers.len(), 3, "{report:#?}");
    let by = |name: &str| *servers.iter().find(|c| c["server"] == name).unwrap();
    let test = by("test");
    assert_eq!(test["status"], "PASS");
    let listed: Vec<&str> = test["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        listed.contains(&"echo") && listed.contains(&"shout"),
        "{listed:?}"
    );
    let shout = test["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "shout")
        .unwrap();
    assert_eq!(shout["confirm"], true);
    assert_eq!(by("wiki")["status"], "PASS");
    assert_eq!(by("broken")["status"], "FAIL");
    assert!(by("broken")["fix"].is_string());
    assert_eq!(out.status.code(), Some(1));

    let summary = report.iter().find(|c| c["name"] == "tools").unwrap();
    assert_eq!(summary["status"], "PASS", "{summary}");
    assert!(summary["detail"].as_str().unwrap().contains("3 server(s)"));

    let text = String::from_utf8(run(false).await.stdout).unwrap();
    assert!(text.contains("PASS  tool-server: test (stdio"), "{text}");
    assert!(text.contains("FAIL  tool-server: broken"), "{text}");

    // A bad file is one failed check naming the problem.
    std::fs::write(&file, "[servers.a]\ncommand = \"x\"\ncolour = \"red\"\n").unwrap();
    let report: Vec<Value> = serde_json::from_slice(&run(true).await.stdout).unwrap();
    let summary = report.iter().find(|c| c["name"] == "tools").unwrap();
    assert_eq!(summary["status"], "FAIL");
    assert!(
        summary["detail"].as_str().unwrap().contains("colour"),
        "{summary}"
    );
    assert!(!report.iter().any(|c| c["name"] == "tool-server"));
}
