//! The MCP test server (the example `mcp-test-server`) over stdio and Streamable HTTP:
//! listing, calls, restarts, refreshes and a bad tools file.

use super::*;

/// The test server's binary, built by `cargo test` with the crate's examples.
pub(super) fn server_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/api-… → target/debug/examples/mcp-test-server
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/mcp-test-server");
    assert!(
        bin.exists(),
        "{} is missing: `cargo build -p webex-chatbot --example mcp-test-server` (plain `cargo test` builds it)",
        bin.display()
    );
    bin
}

/// A `[servers.NAME]` entry for the stdio test server, plus `extra` TOML lines.
pub(super) fn stdio_server(name: &str, extra: &str) -> String {
    format!(
        "[servers.{name}]\ncommand = {:?}\n{extra}\n",
        server_bin().display().to_string()
    )
}

/// The test server over Streamable HTTP, killed when dropped.
pub(super) struct HttpServer {
    pub(super) child: std::process::Child,
    pub(super) url: String,
}

impl HttpServer {
    pub(super) fn start(required_header: Option<&str>) -> HttpServer {
        use std::io::BufRead;
        let mut cmd = std::process::Command::new(server_bin());
        cmd.args(["--http", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped());
        if let Some(h) = required_header {
            cmd.args(["--require-header", h]);
        }
        let mut child = cmd.spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        HttpServer { child, url }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(super) fn tool_set(toml: &str) -> ToolSet {
    let servers = tools::config::parse(toml).unwrap();
    let set = ToolSet::new(servers, reqwest::Client::new());
    set.start();
    set
}

/// The stdio test server as `test` (`extra` TOML lines in its entry), connected.
pub(super) async fn test_server(extra: &str) -> ToolSet {
    let set = tool_set(&stdio_server("test", extra));
    wait_connected(&set, "test").await;
    set
}

pub(super) async fn wait_connected(set: &ToolSet, server: &str) {
    assert!(
        eventually(Duration::from_secs(10), || async {
            set.is_connected(server)
        })
        .await,
        "the MCP server {server} did not connect"
    );
}

pub(super) fn text_of(result: CallResult) -> String {
    match result {
        CallResult::Done {
            text,
            is_error: false,
        } => text,
        other => panic!("expected a result, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stdio_server_lists_its_tools_and_answers_calls() {
    let set = test_server("timeout_secs = 1\nconfirm = [\"shout\"]").await;

    let all = set.offered(&["test".to_owned()]);
    let names: Vec<&str> = all.iter().map(|o| o.exposed.as_str()).collect();
    for want in [
        "test__add",
        "test__echo",
        "test__slow",
        "test__fail",
        "test__die",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    let add = all.iter().find(|o| o.tool == "add").unwrap();
    assert_eq!(add.schema["type"], "object");
    assert!(add.schema["properties"]["a"].is_object(), "{}", add.schema);
    assert!(!add.confirm);
    assert!(all.iter().find(|o| o.tool == "shout").unwrap().confirm);
    // One tool of a server, and nothing for a server that is not configured.
    let one = set.offered(&["test/add".to_owned(), "nowhere".to_owned()]);
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].exposed, "test__add");

    assert_eq!(
        text_of(set.call("test", "add", &json!({"a": 2, "b": 3})).await),
        "5"
    );
    assert_eq!(
        text_of(set.call("test", "echo", &json!({"text": "héllo"})).await),
        "héllo"
    );
    assert_eq!(
        set.call("test", "fail", &json!({"message": "no such ticket"}))
            .await,
        CallResult::Done {
            text: "no such ticket".into(),
            is_error: true
        }
    );
    // A hanging tool is given up after the server's timeout_secs; the server goes on.
    assert_eq!(
        set.call("test", "slow", &json!({"seconds": 30})).await,
        CallResult::TimedOut(Duration::from_secs(1))
    );
    assert_eq!(
        text_of(
            set.call("test", "echo", &json!({"text": "still here"}))
                .await
        ),
        "still here"
    );
    assert!(matches!(
        set.call("test", "echo", &json!("not an object")).await,
        CallResult::Failed(_)
    ));
    set.stop();
}

#[tokio::test]
async fn a_stdio_server_gets_only_its_env_table_and_the_basics() {
    // The test process has cargo's variables; a server that inherited the environment
    // would list them.
    assert!(std::env::var_os("CARGO_MANIFEST_DIR").is_some());
    let set = test_server("env = { TICKETS_URL = \"https://tickets.internal\" }").await;
    let listed = text_of(set.call("test", "env", &json!({})).await);
    let names: Vec<&str> = listed.lines().collect();
    assert!(names.contains(&"TICKETS_URL"), "{names:?}");
    let allowed = [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LC_ALL",
        "LC_CTYPE",
        "TZ",
        "TMPDIR",
        "TICKETS_URL",
    ];
    for name in names {
        assert!(allowed.contains(&name), "the server inherited {name}");
    }
    set.stop();
}

#[tokio::test]
async fn a_server_that_dies_is_started_again() {
    let set = test_server("").await;
    // The process exits in the middle of the call: an error, not a hang.
    assert!(matches!(
        set.call("test", "die", &json!({})).await,
        CallResult::Failed(_)
    ));
    let text = eventually_some(Duration::from_secs(10), || async {
        match set.call("test", "echo", &json!({"text": "back"})).await {
            CallResult::Done { text, .. } => Some(text),
            _ => None,
        }
    })
    .await
    .expect("the server was not started again");
    assert_eq!(text, "back");
    set.stop();
}

#[tokio::test]
async fn the_tool_list_is_refreshed_when_the_server_says_it_changed() {
    let set = test_server("").await;
    let has_extra = |set: &ToolSet| {
        set.offered(&["test".to_owned()])
            .iter()
            .any(|o| o.exposed == "test__extra")
    };
    assert!(!has_extra(&set));
    assert_eq!(text_of(set.call("test", "grow", &json!({})).await), "grown");
    assert!(
        eventually(Duration::from_secs(10), || async { has_extra(&set) }).await,
        "the new tool was not listed after notifications/tools/list_changed"
    );
    set.stop();
}

#[tokio::test]
async fn a_server_that_cannot_start_is_retried_and_the_rest_work() {
    let toml = format!(
        "[servers.broken]\ncommand = \"/nonexistent/mcp-server\"\n\n{}",
        stdio_server("test", "")
    );
    let set = tool_set(&toml);
    wait_connected(&set, "test").await;
    assert!(!set.is_connected("broken"));
    assert!(set.offered(&["broken".to_owned()]).is_empty());
    assert!(matches!(
        set.call("broken", "echo", &json!({"text": "x"})).await,
        CallResult::Failed(_)
    ));
    assert_eq!(
        text_of(set.call("test", "add", &json!({"a": 1, "b": 1})).await),
        "2"
    );
    set.stop();
}

#[tokio::test]
async fn a_streamable_http_server_is_reached_with_its_headers() {
    let server = HttpServer::start(Some("authorization=Bearer wiki-SECRET"));
    let toml = format!(
        "[servers.wiki]\nurl = {:?}\nheaders = {{ Authorization = \"Bearer wiki-SECRET\" }}\n",
        server.url
    );
    let set = tool_set(&toml);
    wait_connected(&set, "wiki").await;
    let offered = set.offered(&["wiki/echo".to_owned()]);
    assert_eq!(offered.len(), 1);
    assert_eq!(offered[0].exposed, "wiki__echo");
    assert_eq!(
        text_of(
            set.call("wiki", "echo", &json!({"text": "over HTTP"}))
                .await
        ),
        "over HTTP"
    );
    set.stop();

    // Without the header the server refuses: the probe `doctor` runs says so.
    let bare = tools::config::parse(&format!("[servers.wiki]\nurl = {:?}\n", server.url)).unwrap();
    let err = tools::probe(&bare[0], &reqwest::Client::new())
        .await
        .unwrap_err();
    assert!(!format!("{err:#}").is_empty());
}

#[tokio::test]
async fn a_bad_tools_file_stops_the_start_naming_tools_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tools.toml");
    std::fs::write(
        &file,
        "[servers.a]\ncommand = \"x\"\nurl = \"http://h/mcp\"\n",
    )
    .unwrap();
    for path in [file.display().to_string(), "/nonexistent/tools.toml".into()] {
        let settings = bot::config::ToolSettings {
            config: Some(path.into()),
            max_rounds: 5,
            confirm_timeout: Duration::from_secs(600),
            log_arguments: false,
        };
        let err = tools::from_config(&settings, reqwest::Client::new())
            .err()
            .unwrap();
        assert_eq!(err.var, "TOOLS_CONFIG");
    }
}
