//! `users` and `chat` subcommands as processes, on the same store the server uses.

use assert_cmd::prelude::*;
use predicates::prelude::*;
use serde_json::Value;
use wiremock::MockServer;

use crate::helpers::*;

fn cmd(dir: &std::path::Path) -> Bot {
    Bot::binary()
        .dir(dir)
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/data/bot.db", dir.display()),
        )
        .env("PERSONALITIES_DIR", personalities_dir())
        .env("ADMIN_EMAILS", ADMIN)
        .env("LOG_FILE", "")
}

#[tokio::test]
async fn users_subcommands_share_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    cmd(d)
        .args(["users", "add", "Bob@Example.com"])
        .output()
        .await
        .assert()
        .success()
        .stdout(predicate::str::contains("approved bob@example.com"));
    cmd(d)
        .args(["users", "add", "bob@example.com"])
        .output()
        .await
        .assert()
        .success()
        .stdout(predicate::str::contains("already"));
    cmd(d)
        .args(["users", "add", "not-an-email"])
        .output()
        .await
        .assert()
        .code(2)
        .stderr(predicate::str::contains("not a valid email"));

    std::fs::write(
        d.join("array.json"),
        r#"["carol@example.com", "dave@example.com"]"#,
    )
    .unwrap();
    cmd(d)
        .args(["users", "import", "array.json"])
        .output()
        .await
        .assert()
        .success()
        .stdout(predicate::str::contains("imported 2"));
    std::fs::write(
        d.join("object.json"),
        r#"{"users": ["erin@example.com", "carol@example.com"]}"#,
    )
    .unwrap();
    cmd(d)
        .args(["users", "import", "object.json"])
        .output()
        .await
        .assert()
        .success()
        .stdout(predicate::str::contains("1 new"));

    // A malformed file: clear error, nothing changed (not even its valid entries).
    std::fs::write(d.join("bad.json"), r#"["frank@example.com", "oops"]"#).unwrap();
    cmd(d)
        .args(["users", "import", "bad.json"])
        .output()
        .await
        .assert()
        .code(1)
        .stderr(predicate::str::contains("oops"));
    std::fs::write(d.join("broken.json"), "{not json").unwrap();
    cmd(d)
        .args(["users", "import", "broken.json"])
        .output()
        .await
        .assert()
        .code(1)
        .stderr(predicate::str::contains("broken.json"));
    cmd(d)
        .args(["users", "import", "missing.json"])
        .output()
        .await
        .assert()
        .code(1);

    let out = cmd(d).args(["users", "export"]).output().await;
    assert!(out.status.success());
    let exported: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        exported,
        [
            "bob@example.com",
            "carol@example.com",
            "dave@example.com",
            "erin@example.com"
        ]
    );

    cmd(d)
        .args(["users", "remove", ADMIN])
        .output()
        .await
        .assert()
        .code(1)
        .stderr(predicate::str::contains("ADMIN_EMAILS"));
    cmd(d)
        .args(["users", "remove", "dave@example.com"])
        .output()
        .await
        .assert()
        .success()
        .stdout(predicate::str::contains("removed"));
    cmd(d)
        .args(["users", "list"])
        .output()
        .await
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("{ADMIN}\tadmin")))
        .stdout(predicate::str::contains("bob@example.com\tapproved"))
        .stdout(predicate::str::contains("dave@example.com").not());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_reads_lines_from_stdin_with_memory_and_commands() {
    let llm = MockServer::start().await;
    mount_ollama(&llm, echo_answerer()).await;
    let dir = tempfile::tempdir().unwrap();
    let uri = llm.uri();
    let out = cmd(dir.path())
        .args(["chat", "--personality", "teacher"])
        .env("OLLAMA_URL", uri)
        .stdin("hello there\npersonality\n\nsecond question\nreset\nafter reset\npersonality writer\nlast one\n")
        .output()
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Echo: hello there"), "{stdout}");
    assert!(stdout.contains("**teacher**"), "{stdout}");
    assert!(stdout.contains("forgotten"), "{stdout}");

    let asked = requests_to(&llm, "POST", "/api/chat").await;
    assert_eq!(asked.len(), 4);
    let roles = |r: &Value| r["messages"].as_array().unwrap().len();
    assert_eq!(roles(&asked[0]), 2, "system + question");
    assert_eq!(roles(&asked[1]), 4, "memory carried the first exchange");
    assert_eq!(roles(&asked[2]), 2, "reset cleared it");
    assert!(
        asked[0]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("patient teacher")
    );
    assert!(
        asked[3]["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("writing assistant")
    );
}
