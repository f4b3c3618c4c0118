//! Installing and running like real software (DESIGN §10.7): completions and man pages
//! from the clap definitions, the built binary started from an empty folder, corporate
//! proxies (through a recording proxy), and the Grafana dashboard and alert rules checked
//! against what `/metrics` exports.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::CommandFactory;
use serde_json::Value;
use wiremock::MockServer;

use crate::helpers::*;
use crate::ops::process_env;

// ---- completions and man pages ------------------------------------------------------

/// Every subcommand's path, e.g. `["serve"]`, `["webhooks", "delete-all"]`, from the same
/// clap definitions the binary uses (so a subcommand added later is checked too).
fn subcommand_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: &[String], out: &mut Vec<Vec<String>>) {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            let mut path = prefix.to_vec();
            path.push(sub.get_name().to_owned());
            walk(sub, &path, out);
            out.push(path);
        }
    }
    let mut out = Vec::new();
    walk(&bot::cli::Cli::command(), &[], &mut out);
    out
}

/// The binary with nothing from the test's environment and an empty working folder: the
/// generated files need no configuration.
fn bare(dir: &Path, args: &[&str]) -> Bot {
    Bot::new(args.iter().copied()).dir(dir)
}

async fn stdout_of(cmd: Bot) -> String {
    let shown = format!("{cmd:?}");
    let out = cmd.output().await;
    assert!(
        out.status.success(),
        "{} exited {:?}: {}",
        shown,
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Generating completions or a man page reads no configuration: a broken `.env` in the
/// working directory stops `serve`, not these.
#[tokio::test]
async fn completions_and_man_work_beside_a_broken_env_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "THIS LINE IS NOT A VARIABLE\n").unwrap();
    let script = stdout_of(bare(dir.path(), &["completions", "bash"])).await;
    assert!(script.contains("complete -F _webex__chatbot"), "{script}");
    let page = stdout_of(bare(dir.path(), &["man"])).await;
    assert!(page.contains(".TH"), "{page}");
    let serve = bare(dir.path(), &["serve"]).output().await;
    assert_eq!(
        serve.status.code(),
        Some(2),
        "serve still refuses the broken .env"
    );
}

#[tokio::test]
async fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let paths = subcommand_paths();
    for must in [
        "serve",
        "chat",
        "doctor",
        "webhooks",
        "users",
        "dev",
        "completions",
        "man",
    ] {
        assert!(paths.iter().any(|p| p == &[must]), "no {must} in {paths:?}");
    }
    for (shell, marker) in [
        ("bash", "complete -F _webex__chatbot"),
        ("zsh", "#compdef webex-chatbot"),
        ("fish", "complete -c webex-chatbot"),
    ] {
        let script = stdout_of(bare(dir.path(), &["completions", shell])).await;
        assert!(
            script.contains(marker),
            "{shell}: no {marker:?} in\n{script}"
        );
        for path in &paths {
            let name = path.last().unwrap();
            assert!(
                script.contains(name.as_str()),
                "the {shell} completion does not offer {}",
                path.join(" ")
            );
        }
    }
    // The bash script is valid bash (bash is on every machine that runs these tests).
    let script = stdout_of(bare(dir.path(), &["completions", "bash"])).await;
    let file = dir.path().join("webex-chatbot.bash");
    std::fs::write(&file, &script).unwrap();
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );

    let wrong = bare(dir.path(), &["completions", "cmd.exe"]).output().await;
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("bash"));
}

/// The name roff prints for a command's page: `webex\-chatbot\-webhooks\-list`.
fn roff_name(path: &[String]) -> String {
    std::iter::once("webex-chatbot")
        .chain(path.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join("-")
        .replace('-', "\\-")
}

#[tokio::test]
async fn the_man_page_is_roff_and_names_every_subcommand() {
    let dir = tempfile::tempdir().unwrap();
    let page = stdout_of(bare(dir.path(), &["man"])).await;
    assert!(
        page.lines().any(|l| l.starts_with(".TH webex-chatbot 1")),
        "not a roff page with a title:\n{page}"
    );
    assert!(page.contains(".SH NAME") && page.contains(".SH SUBCOMMANDS"));
    for path in subcommand_paths().iter().filter(|p| p.len() == 1) {
        let reference = format!("{}(1)", roff_name(path));
        assert!(page.contains(&reference), "no {reference} in\n{page}");
    }
    // The environment and the exit codes are in the description.
    assert!(page.contains("Exit codes"), "{page}");
}

#[tokio::test]
async fn man_out_dir_writes_one_page_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man/man1");
    let listed = stdout_of(bare(dir.path(), &["man", "--out-dir"]).arg(&out)).await;
    let mut expected: BTreeSet<String> = subcommand_paths()
        .iter()
        .map(|p| format!("webex-chatbot-{}.1", p.join("-")))
        .collect();
    expected.insert("webex-chatbot.1".to_owned());
    let written: BTreeSet<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(written, expected);
    // Each written file is printed, and each is a page titled after its command.
    let printed: BTreeSet<PathBuf> = listed.lines().map(PathBuf::from).collect();
    assert_eq!(printed.len(), expected.len(), "{listed}");
    for name in &expected {
        assert!(
            printed.contains(&out.join(name)),
            "{name} not printed: {listed}"
        );
        let page = std::fs::read_to_string(out.join(name)).unwrap();
        let title = format!(".TH {} 1", name.trim_end_matches(".1"));
        assert!(page.contains(&title), "{name}: no {title:?}");
    }
    let delete_all =
        std::fs::read_to_string(out.join("webex-chatbot-webhooks-delete-all.1")).unwrap();
    assert!(delete_all.contains("every webhook"), "{delete_all}");
}

#[tokio::test]
async fn man_out_dir_that_cannot_be_made_fails_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("file"), "").unwrap();
    let out = bare(dir.path(), &["man", "--out-dir", "file/man1"])
        .output()
        .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("file/man1"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

// ---- the built binary from an empty folder --------------------------------------------

/// `cargo install` puts the binary anywhere: started from a folder with no
/// `personalities/`, no `.env` and no `data/`, it creates its database there, serves
/// `/health`, and stops cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_runs_from_an_empty_folder_and_serves_health() {
    let dir = tempfile::tempdir().unwrap();
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = MockServer::start().await;
    mount_ollama(&llm, echo_answerer()).await;
    let port = free_port();
    // Only what an operator must set; every path is the default, relative to the folder.
    let env: Vec<(String, String)> = [
        ("WEBEX_BOT_TOKEN", TOKEN.to_owned()),
        ("WEBEX_API_URL", webex.uri()),
        ("OLLAMA_URL", llm.uri()),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("BIND_ADDR", format!("127.0.0.1:{port}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // Its output goes to files in another folder: the working folder stays empty.
    let logs = tempfile::tempdir().unwrap();
    let mut bot = Bot::new(["serve"])
        .dir(dir.path())
        .output_dir(logs.path())
        .envs(env)
        .spawn();
    let healthy = eventually(Duration::from_secs(30), || async {
        reqwest::get(format!("http://127.0.0.1:{port}/health"))
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(healthy, "no /health: {}", bot.output());
    let health: Value = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["database"]["ok"], true, "{health}");
    assert_eq!(health["llm"]["reachable"], true, "{health}");
    assert!(
        dir.path().join("data/bot.db").is_file(),
        "no database in the folder"
    );
    assert!(
        !dir.path().join("personalities").exists(),
        "personalities were created"
    );
    bot.sigterm();
    let stopped = bot.wait_exit(Duration::from_secs(20)).await;
    assert!(
        stopped.is_some(),
        "still running after SIGTERM: {}",
        bot.output()
    );
    assert_eq!(stopped.and_then(|s| s.code()), Some(0), "{}", bot.output());
}

// ---- proxies ----------------------------------------------------------------------------

/// What the recording proxy saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    /// `GET http://127.0.0.1:4321/people/me` (absolute form) or `CONNECT host:443`.
    line: String,
    /// The `Proxy-Authorization` header, if any.
    auth: Option<String>,
}

/// A small HTTP forward proxy: records every request line (absolute-form requests and
/// CONNECT), forwards plain-HTTP requests to their origin the way a real proxy does
/// (origin-form, without the proxy's own headers), and refuses CONNECT with 502 (the tests
/// only need to see that an HTTPS call was sent to it).
struct RecordingProxy {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

#[derive(Clone)]
struct ProxyState {
    seen: Arc<Mutex<Vec<Seen>>>,
    upstream: reqwest::Client,
}

impl RecordingProxy {
    async fn start() -> RecordingProxy {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            seen: seen.clone(),
            upstream: reqwest::Client::builder().no_proxy().build().unwrap(),
        };
        let url = serve_axum(axum::Router::new().fallback(proxy).with_state(state)).await;
        RecordingProxy { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn lines(&self) -> Vec<String> {
        self.seen().into_iter().map(|s| s.line).collect()
    }

    /// The port, for the `scheme://host:port` that `doctor` reports.
    fn address(&self) -> &str {
        &self.url
    }
}

/// Hop-by-hop headers and the proxy's own: never forwarded.
const NOT_FORWARDED: [&str; 9] = [
    "host",
    "connection",
    "proxy-connection",
    "proxy-authorization",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

async fn proxy(State(state): State<ProxyState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let auth = parts
        .headers
        .get("proxy-authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let line = format!("{} {}", parts.method, parts.uri);
    state.seen.lock().unwrap().push(Seen { line, auth });
    if parts.method == Method::CONNECT {
        return (StatusCode::BAD_GATEWAY, "no tunnels here").into_response();
    }
    // A proxy is sent the absolute form: a path alone means the client did not use it
    // as a proxy.
    if parts.uri.scheme().is_none() || parts.uri.authority().is_none() {
        return (StatusCode::BAD_REQUEST, "not a proxy request").into_response();
    }
    let body = axum::body::to_bytes(body, 16 << 20).await.unwrap();
    let mut headers = HeaderMap::new();
    for (name, value) in &parts.headers {
        if !NOT_FORWARDED.contains(&name.as_str()) && name.as_str() != "content-length" {
            headers.append(name.clone(), value.clone());
        }
    }
    let answer = state
        .upstream
        .request(parts.method, parts.uri.to_string())
        .headers(headers)
        .body(body)
        .send()
        .await;
    let answer = match answer {
        Ok(answer) => answer,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    let mut response = Response::builder().status(answer.status().as_u16());
    for (name, value) in answer.headers() {
        if !NOT_FORWARDED.contains(&name.as_str()) && name.as_str() != "content-length" {
            response = response.header(name.as_str(), value.as_bytes());
        }
    }
    // Streamed through as it arrives (streamed LLM answers).
    response
        .body(Body::from_stream(answer.bytes_stream()))
        .unwrap()
}

const PROXY_PASSWORD: &str = "proxy-pass-SECRET-40c2";

/// `http://proxyuser:PASSWORD@127.0.0.1:PORT`
fn with_credentials(proxy: &RecordingProxy) -> String {
    proxy
        .url
        .replace("http://", &format!("http://proxyuser:{PROXY_PASSWORD}@"))
}

/// The Basic credentials the proxy must receive.
fn expected_proxy_auth() -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("proxyuser:{PROXY_PASSWORD}"))
    )
}

/// With `HTTP_PROXY`/`HTTPS_PROXY` set, the bot's Webex calls and its LLM calls go through
/// the proxy, with the proxy's credentials, and the password appears in no log line even
/// at DEBUG; `NO_PROXY` sends them direct.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webex_and_llm_calls_go_through_the_proxy_and_its_password_is_never_logged() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = RecordingProxy::start().await;
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = MockServer::start().await;
    mount_ollama(&llm, echo_answerer()).await;
    let port = free_port();
    let mut env = process_env(dir.path(), &webex, &llm);
    env.push(("BIND_ADDR".into(), format!("127.0.0.1:{port}")));
    env.push(("HTTP_PROXY".into(), with_credentials(&proxy)));
    env.push(("HTTPS_PROXY".into(), with_credentials(&proxy)));
    let mut bot = Bot::new(["serve"])
        .dir(dir.path())
        .name("proxied")
        .envs(env.clone())
        .spawn();
    bot.wait_ready(port).await;

    let message = direct_message("proxy-1", "room-proxy", ALICE, "hello through the proxy");
    mount_message(&webex, &message).await;
    assert_eq!(post_signed(port, &event_for(&message)).await, 200);
    let answered = eventually(Duration::from_secs(20), || async {
        !requests_to(&webex, "POST", "/messages").await.is_empty()
    })
    .await;
    assert!(answered, "no reply: {}", bot.output());

    let webex_at = webex.uri();
    let llm_at = llm.uri();
    let lines = proxy.lines();
    for wanted in [
        format!("GET {webex_at}/people/me"),
        format!("GET {webex_at}/messages/proxy-1"),
        format!("POST {webex_at}/messages"),
        format!("POST {llm_at}/api/chat"),
    ] {
        assert!(
            lines.iter().any(|l| l == &wanted),
            "the proxy did not see {wanted:?}: {lines:#?}"
        );
    }
    for seen in proxy.seen() {
        assert_eq!(
            seen.auth.as_deref(),
            Some(expected_proxy_auth().as_str()),
            "{seen:?}"
        );
    }
    // The origins got the requests without the proxy's credentials.
    for request in webex
        .received_requests()
        .await
        .unwrap()
        .iter()
        .chain(llm.received_requests().await.unwrap().iter())
    {
        assert!(
            !request.headers.contains_key("proxy-authorization"),
            "{request:?}"
        );
    }
    bot.sigterm();
    bot.wait_exit(Duration::from_secs(20)).await;
    let output = bot.output();
    assert!(
        !output.contains(PROXY_PASSWORD),
        "the proxy password is in the logs:\n{output}"
    );

    // NO_PROXY: the same calls go direct.
    let before = proxy.lines().len();
    env.push(("NO_PROXY".into(), "127.0.0.1,localhost".into()));
    let mut direct = Bot::new(["serve"])
        .dir(dir.path())
        .name("direct")
        .envs(env.clone())
        .spawn();
    direct.wait_ready(port).await;
    let message = direct_message("proxy-2", "room-proxy", ALICE, "hello directly");
    mount_message(&webex, &message).await;
    assert_eq!(post_signed(port, &event_for(&message)).await, 200);
    let answered = eventually(Duration::from_secs(20), || async {
        requests_to(&webex, "POST", "/messages").await.len() >= 2
    })
    .await;
    assert!(answered, "no reply: {}", direct.output());
    assert_eq!(
        proxy.lines()[before..],
        [] as [String; 0],
        "NO_PROXY hosts went through the proxy"
    );
}

async fn doctor_json(dir: &Path, env: &[(String, String)]) -> (Vec<Value>, String) {
    let out = Bot::new(["doctor", "--json"])
        .dir(dir)
        .envs(env.iter().cloned())
        .output()
        .await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not a JSON report ({e}): {stdout} {stderr}"));
    (report, format!("{stdout}{stderr}"))
}

fn check<'a>(report: &'a [Value], name: &str) -> &'a Value {
    report
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no {name} check in {report:?}"))
}

/// `doctor` names, for the Webex URL and the LLM URL, the proxy each call goes through
/// (`scheme://host:port`, never the credentials) or `direct`; the calls themselves do go
/// there (an HTTPS provider as CONNECT); a proxy variable reqwest cannot read fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_the_proxy_of_each_call_and_never_its_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let proxy = RecordingProxy::start().await;
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = MockServer::start().await;
    let mut env = process_env(dir.path(), &webex, &llm);
    env.retain(|(k, _)| k != "OLLAMA_URL");
    env.extend(
        [
            ("LLM_PROVIDER", "openai".to_owned()),
            ("LLM_API_KEY", "sk-test-SECRET-0a1b".to_owned()),
            ("HTTP_PROXY", with_credentials(&proxy)),
            ("HTTPS_PROXY", with_credentials(&proxy)),
        ]
        .map(|(k, v)| (k.to_owned(), v)),
    );

    let (report, output) = doctor_json(dir.path(), &env).await;
    let via = format!("via {}", proxy.address());
    let webex_route = check(&report, "proxy-webex");
    assert_eq!(webex_route["status"], "PASS", "{webex_route}");
    assert_eq!(
        webex_route["detail"],
        format!("Webex {}: {via}", webex.uri()),
        "{webex_route}"
    );
    let llm_route = check(&report, "proxy-llm");
    assert_eq!(llm_route["status"], "PASS", "{llm_route}");
    assert_eq!(
        llm_route["detail"],
        format!("LLM https://api.openai.com/v1: {via}"),
        "{llm_route}"
    );
    // The token check reached the fake Webex through the proxy; the LLM probe asked the
    // proxy for a tunnel to OpenAI (refused here, so that check fails).
    assert_eq!(check(&report, "token")["status"], "PASS");
    let lines = proxy.lines();
    assert!(
        lines.contains(&format!("GET {}/people/me", webex.uri())),
        "{lines:?}"
    );
    assert!(
        lines.contains(&"CONNECT api.openai.com:443".to_owned()),
        "{lines:?}"
    );
    assert!(!output.contains(PROXY_PASSWORD), "{output}");
    assert!(!output.contains("proxyuser"), "{output}");

    // NO_PROXY takes the local Webex out; OpenAI still goes through the proxy.
    let mut no_proxy = env.clone();
    no_proxy.push(("NO_PROXY".into(), "127.0.0.1".into()));
    let (report, _) = doctor_json(dir.path(), &no_proxy).await;
    assert_eq!(
        check(&report, "proxy-webex")["detail"],
        format!("Webex {}: direct", webex.uri())
    );
    assert!(
        check(&report, "proxy-llm")["detail"]
            .as_str()
            .unwrap()
            .ends_with(&via)
    );

    // No proxy at all: both direct.
    let plain: Vec<(String, String)> = env
        .iter()
        .filter(|(k, _)| !k.ends_with("_PROXY"))
        .cloned()
        .collect();
    let (report, _) = doctor_json(dir.path(), &plain).await;
    assert!(
        check(&report, "proxy-webex")["detail"]
            .as_str()
            .unwrap()
            .ends_with(": direct")
    );

    // A value reqwest cannot read is ignored by it (the calls go direct): a failed check
    // that names the variable and not its value.
    let mut bad = plain.clone();
    bad.push((
        "HTTPS_PROXY".into(),
        format!("http://proxyuser:{PROXY_PASSWORD}@bad host:3128"),
    ));
    let (report, output) = doctor_json(dir.path(), &bad).await;
    let route = check(&report, "proxy-llm");
    assert_eq!(route["status"], "FAIL", "{route}");
    assert!(
        route["detail"].as_str().unwrap().contains("HTTPS_PROXY"),
        "{route}"
    );
    assert!(route["fix"].as_str().unwrap().contains("HTTPS_PROXY"));
    assert!(!output.contains(PROXY_PASSWORD), "{output}");
}

// ---- dashboard and alert rules ------------------------------------------------------------

fn repo_file(path: &str) -> String {
    let file = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// `webex_chatbot_*` names in `text`, as PromQL would read them.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("webex_chatbot_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    names
}

/// The exported families and the series names each one has, from `/metrics`' `# TYPE`
/// lines (a labelled family without samples yet still has its `# TYPE` line).
fn exported_families(metrics: &str) -> Vec<(String, BTreeSet<String>)> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (family, kind) = l.split_once(' ').unwrap();
            let series: BTreeSet<String> = match kind {
                "counter" => [format!("{family}_total")].into(),
                "histogram" => ["bucket", "sum", "count"]
                    .iter()
                    .map(|s| format!("{family}_{s}"))
                    .collect(),
                "gauge" | "unknown" => [family.to_owned()].into(),
                other => panic!("unexpected metric type {other} for {family}"),
            };
            (family.to_owned(), series)
        })
        .collect()
}

/// Every metric the Grafana dashboard and the alert rules query is one the bot exports,
/// and every exported family has a panel. A new metric needs a panel (and perhaps a rule)
/// in deploy/grafana/webex-chatbot.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_alert_rules_query_only_exported_metrics_and_cover_them_all() {
    let app = TestApp::spawn(Spawn::default()).await;
    // Every registered family is listed from the start, before its first sample (the tool
    // calls' with no tool server at all).
    let before = exported_families(&app.metrics().await);
    assert!(
        before.iter().any(|(f, _)| f == "webex_chatbot_tool_calls"),
        "{before:?}"
    );
    // Samples add series, never families: an answered message, an ignored one (a
    // stranger's) and a Webex error (a message Webex no longer has).
    app.deliver(&direct_message("m-1", "room-1", ADMIN, "hello"))
        .await;
    app.deliver(&direct_message(
        "m-2",
        "room-2",
        "stranger@elsewhere.example",
        "hi",
    ))
    .await;
    let gone = direct_message("m-3", "room-3", ADMIN, "deleted at once");
    assert_eq!(app.post_event(&event_for(&gone)).await.status(), 200);
    for id in ["m-1", "m-2", "m-3"] {
        app.wait_handled(id).await;
    }
    let metrics = app.metrics().await;
    for family in ["events_processed", "events_ignored", "webex_api_errors"] {
        assert!(
            metrics.contains(&format!("# TYPE webex_chatbot_{family} counter")),
            "{metrics}"
        );
    }
    let families = exported_families(&metrics);
    assert!(families.len() >= 10, "{metrics}");
    assert_eq!(families, before, "{metrics}");
    let series: BTreeSet<String> = families.iter().flat_map(|(_, s)| s.clone()).collect();

    let dashboard_text = repo_file("deploy/grafana/webex-chatbot.json");
    let dashboard: Value = serde_json::from_str(&dashboard_text).unwrap();
    assert_eq!(dashboard["uid"], "webex-chatbot");
    // The queries are where panels keep them: panels[].targets[].expr.
    let exprs: Vec<&str> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten())
        .map(|t| t["expr"].as_str().unwrap())
        .collect();
    assert!(exprs.len() >= families.len(), "{exprs:?}");
    let queried = metric_names(&dashboard_text);
    for name in &queried {
        assert!(
            series.contains(name),
            "the dashboard queries {name}, which /metrics does not export:\n{metrics}"
        );
    }
    for (family, names) in &families {
        assert!(
            exprs
                .iter()
                .any(|e| metric_names(e).iter().any(|n| names.contains(n))),
            "no dashboard panel shows {family}: add one to deploy/grafana/webex-chatbot.json"
        );
    }

    let rule_files: Vec<PathBuf> = std::fs::read_dir(format!(
        "{}/../../deploy/prometheus",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .map(|e| e.unwrap().path())
    .filter(|p| p.extension().is_some_and(|e| e == "yml"))
    .collect();
    assert!(!rule_files.is_empty());
    let mut ruled = BTreeSet::new();
    for file in &rule_files {
        let text = std::fs::read_to_string(file).unwrap();
        for name in metric_names(&text) {
            assert!(
                series.contains(&name),
                "{} queries {name}, which /metrics does not export",
                file.display()
            );
            ruled.insert(name);
        }
    }
    // The alerts the deployment guide promises.
    let rules = rule_files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<String>();
    for alert in [
        "WebexChatbotDown",
        "WebexChatbotWebhookNotActive",
        "WebexChatbotLlmErrors",
        "WebexChatbotQueueGrowing",
    ] {
        assert!(rules.contains(&format!("alert: {alert}")), "no {alert}");
    }
    assert!(ruled.contains("webex_chatbot_webhook_status"));
    app.stop().await;
}

/// `webex_chatbot_webhook_status` says what `/health.webhook.status` says, one series per
/// status, so an alert on `inactive`/`missing` always has a series to look at.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_status_gauge_follows_health() {
    let app = TestApp::spawn(Spawn::default()).await;
    let health = app.health().await;
    let status = health["webhook"]["status"].as_str().unwrap().to_owned();
    let metrics = app.metrics().await;
    for s in ["active", "inactive", "missing", "unknown"] {
        let line = format!(
            "webex_chatbot_webhook_status{{status=\"{s}\"}} {}",
            i32::from(s == status)
        );
        assert!(metrics.contains(&line), "no {line:?} in\n{metrics}");
    }
    app.stop().await;
}
