//! `webex-chatbot dev` as a process: ngrok's local API and ngrok itself are faked (a
//! wiremock server and a shell script on PATH), Webex and Ollama too.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::ops::{FakeWebhooks, process_env};

const TUNNEL: &str = "https://f00d-203-0-113-7.ngrok-free.app";

fn tunnels(port: u16) -> Value {
    json!({"tunnels": [
        {"name": "other", "public_url": "https://other.ngrok-free.app", "proto": "https",
         "config": {"addr": "http://localhost:9", "inspect": true}},
        {"name": "command_line (http)", "public_url": "http://f00d-203-0-113-7.ngrok-free.app",
         "proto": "http", "config": {"addr": format!("http://localhost:{port}"), "inspect": true}},
        {"name": "command_line", "public_url": TUNNEL, "proto": "https",
         "config": {"addr": format!("http://localhost:{port}"), "inspect": true}}
    ], "uri": "/api/tunnels"})
}

async fn mount_tunnels(api: &MockServer, port: u16) {
    Mock::given(method("GET"))
        .and(path("/api/tunnels"))
        .respond_with(ResponseTemplate::new(200).set_body_json(tunnels(port)))
        .mount(api)
        .await;
}

/// A folder to use as PATH: empty, or holding a fake `ngrok` script.
fn path_dir(root: &Path, ngrok_script: Option<&str>) -> String {
    let dir = root.join("bin");
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(script) = ngrok_script {
        let file = dir.join("ngrok");
        std::fs::write(&file, script).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir.display().to_string()
}

struct Fakes {
    webex: MockServer,
    llm: MockServer,
    hooks: FakeWebhooks,
}

async fn fakes() -> Fakes {
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let hooks = FakeWebhooks::default();
    hooks.mount(&webex).await;
    let llm = MockServer::start().await;
    mount_ollama(&llm, echo_answerer()).await;
    Fakes { webex, llm, hooks }
}

fn dev_env(dir: &Path, f: &Fakes, port: u16, path: String) -> Vec<(String, String)> {
    let mut env = process_env(dir, &f.webex, &f.llm);
    env.push(("BIND_ADDR".into(), format!("127.0.0.1:{port}")));
    env.push(("PATH".into(), path));
    env
}

/// The first of the bot's webhooks, once all three (messages, card submits, memberships)
/// are registered.
async fn wait_for_webhook(hooks: &FakeWebhooks, bot: &mut BotProcess) -> Value {
    let registered = eventually(Duration::from_secs(10), || {
        let exited = bot.try_wait().map(|status| (status, bot.output()));
        async move {
            if let Some((status, output)) = exited {
                panic!("dev exited ({status}): {output}");
            }
            hooks.list().len() >= BOT_SUBSCRIPTIONS.len()
        }
    })
    .await;
    assert!(registered, "no webhook was registered: {}", bot.output());
    let list = hooks.list();
    let events: Vec<(&str, &str)> = list
        .iter()
        .map(|h| {
            (
                h["resource"].as_str().unwrap(),
                h["event"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(events, BOT_SUBSCRIPTIONS);
    list[0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_uses_the_running_tunnel_and_removes_its_webhook_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let f = fakes().await;
    let port = free_port();
    let api = MockServer::start().await;
    mount_tunnels(&api, port).await;
    // An empty PATH: attaching to a running tunnel must not need the ngrok binary.
    let env = dev_env(dir.path(), &f, port, path_dir(dir.path(), None));
    let api_url = format!("{}/api/tunnels", api.uri());
    let mut bot = Bot::new(["dev", "--ngrok-api", &api_url])
        .dir(dir.path())
        .name("dev")
        .envs(env.clone())
        .spawn();

    let registered = wait_for_webhook(&f.hooks, &mut bot).await;
    assert_eq!(registered["targetUrl"], format!("{TUNNEL}/webhook"));
    assert_eq!(registered["name"], "webex-chatbot");
    assert_eq!(registered["secret"], WEBHOOK_SECRET);
    bot.wait_ready(port).await;

    // It serves: a webhook arriving through the tunnel gets its answer.
    let message = direct_message("M-dev", "ROOM-dev", ALICE, "hello through the tunnel");
    mount_message(&f.webex, &message).await;
    assert_eq!(post_signed(port, &event_for(&message)).await, 200);
    assert!(
        eventually(Duration::from_secs(10), || async {
            !requests_to(&f.webex, "POST", "/messages").await.is_empty()
        })
        .await,
        "{}",
        bot.output()
    );

    bot.sigterm();
    let status = bot.wait_exit(Duration::from_secs(15)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        bot.output()
    );
    assert!(f.hooks.list().is_empty(), "the dev webhook was left behind");
    let stdout = bot.output();
    assert!(stdout.contains(TUNNEL), "{stdout}");
    assert!(stdout.contains("deleted 3 webhook(s)"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_starts_ngrok_when_none_runs_and_stops_it_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let f = fakes().await;
    let port = free_port();
    let api_port = free_port();
    let marker = dir.path().join("ngrok-started");
    // Records its arguments and pid, then stays up like ngrok does.
    let script = format!(
        "#!/bin/sh\necho \"$$ $*\" > {}\nexec /bin/sleep 600\n",
        marker.display()
    );
    let env = dev_env(dir.path(), &f, port, path_dir(dir.path(), Some(&script)));
    let api_url = format!("http://127.0.0.1:{api_port}/api/tunnels");
    let mut bot = Bot::new(["dev", "--ngrok-api", &api_url])
        .dir(dir.path())
        .name("dev")
        .envs(env.clone())
        .spawn();

    // Nothing answered at the API, so dev started "ngrok"; its API comes up a moment later.
    assert!(
        eventually(Duration::from_secs(10), || async { marker.exists() }).await,
        "ngrok was not started: {}",
        bot.output()
    );
    let started = std::fs::read_to_string(&marker).unwrap();
    let (pid, args) = started.trim().split_once(' ').unwrap();
    assert_eq!(args, format!("http {port} --log stdout"));
    let listener = std::net::TcpListener::bind(("127.0.0.1", api_port)).unwrap();
    let api = MockServer::builder().listener(listener).start().await;
    mount_tunnels(&api, port).await;

    let registered = wait_for_webhook(&f.hooks, &mut bot).await;
    assert_eq!(registered["targetUrl"], format!("{TUNNEL}/webhook"));
    bot.wait_ready(port).await;

    bot.sigterm();
    let status = bot.wait_exit(Duration::from_secs(15)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        bot.output()
    );
    assert!(f.hooks.list().is_empty());
    // The ngrok it started is gone too.
    let alive = std::process::Command::new("kill")
        .args(["-0", pid])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(!alive, "the ngrok child {pid} still runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_without_ngrok_or_a_tunnel_exits_1_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let f = fakes().await;
    let port = free_port();
    let closed = free_port();
    let env = dev_env(dir.path(), &f, port, path_dir(dir.path(), None));
    let api_url = format!("http://127.0.0.1:{closed}/api/tunnels");

    let mut bot = Bot::new(["dev", "--ngrok-api", &api_url])
        .dir(dir.path())
        .name("dev")
        .envs(env.clone())
        .spawn();
    let status = bot.wait_exit(Duration::from_secs(15)).await;
    let output = bot.output();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{output}");
    for hint in [
        "not on PATH",
        "https://ngrok.com/download",
        "ngrok config add-authtoken",
        "MODE=websocket",
        &format!("ngrok http {port}"),
    ] {
        assert!(output.contains(hint), "missing {hint:?}: {output}");
    }
    assert!(f.hooks.list().is_empty());

    // --no-start never looks for ngrok and says how to start the tunnel.
    let mut bot = Bot::new(["dev", "--no-start", "--ngrok-api", &api_url])
        .dir(dir.path())
        .name("nostart")
        .envs(env.clone())
        .spawn();
    let status = bot.wait_exit(Duration::from_secs(15)).await;
    let output = bot.output();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{output}");
    assert!(output.contains(&format!("ngrok http {port}")), "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_reports_an_ngrok_that_fails_and_an_agent_without_our_tunnel() {
    let dir = tempfile::tempdir().unwrap();
    let f = fakes().await;
    let port = free_port();
    let closed = free_port();
    // ngrok without an authtoken prints an error and exits 1.
    let script = "#!/bin/sh\necho 'ERROR:  authentication failed: Usage of ngrok requires a verified account and authtoken.' >&2\nexit 1\n";
    let env = dev_env(dir.path(), &f, port, path_dir(dir.path(), Some(script)));
    let api_url = format!("http://127.0.0.1:{closed}/api/tunnels");
    let mut bot = Bot::new(["dev", "--ngrok-api", &api_url])
        .dir(dir.path())
        .name("dev")
        .envs(env.clone())
        .spawn();
    let status = bot.wait_exit(Duration::from_secs(15)).await;
    let output = bot.output();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{output}");
    assert!(output.contains("authentication failed"), "{output}");
    assert!(output.contains("ngrok config add-authtoken"), "{output}");

    // An agent runs, but its tunnels go elsewhere: dev does not start a second one.
    let api = MockServer::start().await;
    mount_tunnels(&api, port + 1).await;
    let api_url = format!("{}/api/tunnels", api.uri());
    let mut bot = Bot::new(["dev", "--ngrok-api", &api_url])
        .dir(dir.path())
        .name("other")
        .envs(env.clone())
        .spawn();
    let status = bot.wait_exit(Duration::from_secs(15)).await;
    let output = bot.output();
    assert_eq!(status.and_then(|s| s.code()), Some(1), "{output}");
    assert!(
        output.contains(&format!("no https tunnel to port {port}")),
        "{output}"
    );
    assert!(
        !output.contains("authentication failed"),
        "ngrok was not started: {output}"
    );
    assert!(f.hooks.list().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_without_a_webhook_secret_signs_its_webhook_with_a_random_one() {
    let dir = tempfile::tempdir().unwrap();
    let f = fakes().await;
    let port = free_port();
    let api = MockServer::start().await;
    mount_tunnels(&api, port).await;
    let mut env = dev_env(dir.path(), &f, port, path_dir(dir.path(), None));
    env.retain(|(k, _)| k != "WEBHOOK_SECRET");
    let api_url = format!("{}/api/tunnels", api.uri());
    let mut bot = Bot::new(["dev", "--ngrok-api", &api_url])
        .dir(dir.path())
        .name("dev")
        .envs(env.clone())
        .spawn();

    let registered = wait_for_webhook(&f.hooks, &mut bot).await;
    let secret = registered["secret"].as_str().unwrap_or_default().to_owned();
    assert!(
        secret.len() >= 32,
        "registered without a real secret: {registered}"
    );
    bot.wait_ready(port).await;

    // Deliveries are checked against the same secret: unsigned or otherwise signed ones
    // are refused, the ones Webex signs with it are answered.
    let message = direct_message("M-dev-secret", "ROOM-dev-secret", ALICE, "hi");
    mount_message(&f.webex, &message).await;
    let body = serde_json::to_vec(&event_for(&message)).unwrap();
    let post = |signature: Option<String>| {
        let mut request = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{port}/webhook"))
            .body(body.clone());
        if let Some(signature) = signature {
            request = request.header("x-spark-signature", signature);
        }
        request.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    let ours = webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &body);
    assert_eq!(post(Some(ours)).await.unwrap().status(), 401);
    let signed = webex::signature::sign(secret.as_bytes(), &body);
    assert_eq!(post(Some(signed)).await.unwrap().status(), 200);

    // It says so, without the value.
    let output = bot.output();
    assert!(output.contains("random secret"), "{output}");
    assert!(!output.contains(&secret), "the secret was logged: {output}");
    bot.sigterm();
    let status = bot.wait_exit(Duration::from_secs(15)).await;
    assert!(status.is_some_and(|s| s.success()), "{}", bot.output());
}
