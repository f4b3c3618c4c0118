//! Shared test scaffolding: start the relay in-process on port 0, sign bodies the way
//! Webex does, and generate a small PKI for the HTTPS tests.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use relay::{App, Config};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const SECRET: &str = "webhook-secret-for-tests";
pub const API_KEY: &str = "relay-key-0123456789abcdef0123456789abcdef";

/// A realistic Webex `messages`/`created` webhook body.
pub const BODY: &str = r#"{"id":"Y2lzY29zcGFyazovL3VzL1dFQkhPT0svMQ","name":"bot","targetUrl":"https://relay.example.com/webhook","resource":"messages","event":"created","orgId":"O1","createdBy":"P1","appId":"A1","ownedBy":"creator","status":"active","created":"2025-01-01T00:00:00.000Z","actorId":"P2","data":{"id":"M1","roomId":"R1","roomType":"direct","personId":"P2","personEmail":"alice@example.com","created":"2025-01-01T00:00:01.000Z"}}"#;

/// `X-Spark-Signature` as Webex computes it: lowercase hex HMAC-SHA1 of the raw body.
/// Computed here independently of `webex::signature`, so the two check each other.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        tls::install_crypto_provider();
        if std::env::var_os("TEST_LOG").is_some() {
            relay::telemetry::init(tracing::Level::DEBUG);
        }
    });
}

/// The relay's environment for a test: the required variables plus `overrides`.
pub fn config(bot_url: &str, overrides: &[(&str, &str)]) -> Config {
    let mut env: HashMap<String, String> = [
        ("BIND_ADDR", "127.0.0.1:0"),
        ("INTERNAL_BOT_URL", bot_url),
        ("RELAY_API_KEY", API_KEY),
        ("WEBEX_WEBHOOK_SECRET", SECRET),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in overrides {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    Config::from_lookup(|name| env.get(name).cloned()).unwrap()
}

pub struct TestApp {
    /// `http://127.0.0.1:PORT` or `https://localhost:PORT`.
    pub base: String,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub async fn spawn_app(config: Config) -> TestApp {
    spawn_app_with_client(config, reqwest::Client::new(), "http://127.0.0.1").await
}

/// `client` must trust the relay's certificate when the config has one.
pub async fn spawn_app_with_client(config: Config, client: reqwest::Client, base: &str) -> TestApp {
    init();
    let app = App::build(config).await.unwrap();
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        base: format!("{base}:{}", addr.port()),
        client,
        stop: Some(stop),
        task,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post_webhook(&self, body: &str, signature: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/webhook"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("x-spark-signature", signature);
        }
        request.send().await.unwrap()
    }

    pub async fn post_signed(&self, body: &str) -> reqwest::Response {
        self.post_webhook(body, Some(&sign(SECRET, body.as_bytes())))
            .await
    }

    pub async fn health(&self) -> serde_json::Value {
        let response = self.client.get(self.url("/health")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// Graceful shutdown; the server task must end cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .expect("relay stops after graceful shutdown")
            .unwrap()
            .unwrap();
    }
}

/// A port free for a process to listen on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A port on which nothing listens.
///
/// The port stays bound (never listening) until the tests end: a port freed right after
/// binding may be handed to another test's server running at the same time, which then
/// answers (or hangs) where a refusal was expected.
pub fn closed_port() -> u16 {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    std::mem::forget(socket);
    port
}

// ---------------------------------------------------------------- certificates

/// The workspace's one test CA (`crates/bot/tests/api/ca.rs`).
pub use crate::ca::Ca;
/// The workspace's one `eventually` (`crates/bot/tests/api/eventually.rs`).
pub use crate::eventually::{eventually, eventually_some};

/// A temp dir of PEM files; paths come back as strings ready for the environment.
pub struct Files {
    dir: TempDir,
}

impl Files {
    pub fn new() -> Files {
        Files {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn write(&self, name: &str, contents: &str) -> String {
        let path: PathBuf = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

// ---------------------------------------------------------------- the binary

/// The `webex-relay` binary as a process on a free port, plain HTTP, with a clean
/// environment: the required variables plus `env`. stderr goes to a file in `dir`.
/// Killed when dropped.
pub struct RelayProcess {
    child: std::process::Child,
    pub base: String,
    log: PathBuf,
}

impl RelayProcess {
    /// Starts the relay and waits until it answers `/health`.
    pub async fn start(dir: &std::path::Path, bot_url: &str, env: &[(&str, &str)]) -> RelayProcess {
        let port = free_port();
        let log = dir.join(format!("relay-{port}.log"));
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_webex-relay"));
        command
            .env_clear()
            .current_dir(dir)
            .env("INTERNAL_BOT_URL", bot_url)
            .env("RELAY_API_KEY", API_KEY)
            .env("WEBEX_WEBHOOK_SECRET", SECRET)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"));
        for (k, v) in env {
            command.env(k, v);
        }
        let child = command
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let relay = RelayProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let client = reqwest::Client::new();
        let up = eventually(Duration::from_secs(10), || async {
            client.get(relay.url("/health")).send().await.is_ok()
        })
        .await;
        assert!(up, "relay did not come up: {}", relay.log());
        relay
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the relay has written to stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
