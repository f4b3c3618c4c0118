//! `Spawn` and `TestApp`: the real app in-process on port 0 against the fakes, plus what
//! tests of a bot process need (a free port, signed webhooks).

use super::*;

pub struct Spawn {
    pub env: Vec<(String, String)>,
    pub answerer: Answerer,
    pub mount_webex: bool,
    pub knobs: Knobs,
}

impl Default for Spawn {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            answerer: echo_answerer(),
            mount_webex: true,
            knobs: Knobs::default(),
        }
    }
}

/// `BuildOptions` a test may turn beyond the environment.
#[derive(Clone, Debug, Default)]
pub struct Knobs {
    pub pg_schema: Option<String>,
    pub lease_ttl: Option<Duration>,
    pub metrics_refresh: Option<Duration>,
    pub fault_hook: Option<bot::FaultHook>,
    pub probe_cache: Option<Duration>,
    /// The clock usage and limits are counted in (shared by replicas made from this).
    pub clock: Option<bot::usage::Clock>,
}

impl Knobs {
    // `..defaults` keeps this building when `BuildOptions` grows a field.
    #[allow(clippy::needless_update)]
    pub(super) fn options(&self, stop: &CancellationToken) -> BuildOptions {
        let defaults = BuildOptions::default();
        BuildOptions {
            webex_retry: webex::RetryPolicy::fast_for_tests(),
            stop: stop.clone(),
            tls_watch: Duration::from_millis(200),
            pg_schema: self.pg_schema.clone(),
            lease_ttl: self.lease_ttl.unwrap_or(defaults.lease_ttl),
            metrics_refresh: self.metrics_refresh.unwrap_or(defaults.metrics_refresh),
            fault_hook: self.fault_hook.clone(),
            probe_cache: self.probe_cache.unwrap_or(defaults.probe_cache),
            clock: self.clock.clone().unwrap_or(defaults.clock.clone()),
            download_policy: webex::DownloadPolicy::fast_for_tests(),
            // The test runner is not the bot: the bot's binary extracts PDF/DOCX text.
            extractor: Some(bot::attachments::Isolation::Child(
                env!("CARGO_BIN_EXE_webex-chatbot").into(),
            )),
            ..defaults
        }
    }
}

/// `TEST_DATABASE_URL`, or `None` after saying that `test` is skipped.
pub fn test_database_url(test: &str) -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL").ok();
    if url.is_none() {
        say_skipped(&format!(
            "TEST_DATABASE_URL is not set: {test} skipped (it needs PostgreSQL)"
        ));
    }
    url
}

/// A schema name no other test uses.
pub fn fresh_schema() -> String {
    format!("t_{}", uuid::Uuid::new_v4().simple())
}

impl Spawn {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.to_owned(), v.to_owned()));
        self
    }
    pub fn answer(mut self, answerer: Answerer) -> Self {
        self.answerer = answerer;
        self
    }
    /// The app on PostgreSQL at `url`, in `schema` (created if missing).
    pub fn postgres(mut self, url: &str, schema: &str) -> Self {
        self.knobs.pg_schema = Some(schema.to_owned());
        self.env("DATABASE_URL", url)
    }
    /// Room leases of this length (how soon a dead replica's rooms move).
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.knobs.lease_ttl = Some(ttl);
        self
    }
    /// `/metrics`' store-derived gauges recounted this often (default 5 s).
    pub fn metrics_refresh(mut self, every: Duration) -> Self {
        self.knobs.metrics_refresh = Some(every);
        self
    }
    /// Reuses an LLM probe's report for `keep` (5 s by default).
    pub fn probe_cache(mut self, keep: Duration) -> Self {
        self.knobs.probe_cache = Some(keep);
        self
    }
    /// Counts usage days and limit windows on `clock` (a manual one the test moves).
    pub fn clock(mut self, clock: &bot::usage::Clock) -> Self {
        self.knobs.clock = Some(clock.clone());
        self
    }
    /// Runs `hook` with each event's message id before the event is handled.
    pub fn fault_hook(mut self, hook: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.knobs.fault_hook = Some(bot::FaultHook(Arc::new(hook)));
        self
    }
    /// `MODE=websocket` with the device service (WDM) at `wdm_url`, skipping discovery.
    pub fn websocket(self, wdm_url: &str) -> Self {
        self.env("MODE", "websocket").env("WEBEX_WDM_URL", wdm_url)
    }
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub webex: MockServer,
    pub llm: MockServer,
    pub state: AppState,
    pub http: reqwest::Client,
    pub(super) stop: CancellationToken,
    pub(super) server: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub dir: Arc<tempfile::TempDir>,
    pub(super) env: HashMap<String, String>,
    pub(super) knobs: Knobs,
}

/// The environment of a test app against these fakes, with a SQLite file under `dir`.
pub fn base_env(
    webex: &MockServer,
    llm: &MockServer,
    dir: &std::path::Path,
) -> HashMap<String, String> {
    [
        ("WEBEX_BOT_TOKEN", TOKEN.to_owned()),
        ("WEBEX_API_URL", webex.uri()),
        ("LLM_PROVIDER", "ollama".to_owned()),
        ("OLLAMA_URL", llm.uri()),
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/data/bot.db", dir.display()),
        ),
        ("PERSONALITIES_DIR", personalities_dir()),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("ADMIN_EMAILS", ADMIN.to_owned()),
        ("LOG_FILE", String::new()),
        ("LLM_TIMEOUT_SECS", "5".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS", "5".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

pub fn personalities_dir() -> String {
    format!("{}/../../personalities", env!("CARGO_MANIFEST_DIR"))
}

impl TestApp {
    pub async fn spawn(spawn: Spawn) -> TestApp {
        let webex = MockServer::start().await;
        if spawn.mount_webex {
            mount_webex_basics(&webex).await;
        }
        Self::spawn_with_webex(webex, spawn).await
    }

    /// Spawns against a fake Webex the test has prepared itself.
    pub async fn spawn_with_webex(webex: MockServer, spawn: Spawn) -> TestApp {
        init_logs();
        let llm = MockServer::start().await;
        mount_ollama(&llm, spawn.answerer).await;
        let dir = Arc::new(tempfile::tempdir().unwrap());
        let mut env = base_env(&webex, &llm, dir.path());
        for (k, v) in spawn.env {
            env.insert(k, v);
        }
        Self::start(webex, llm, dir, env, spawn.knobs).await
    }

    pub(super) async fn start(
        webex: MockServer,
        llm: MockServer,
        dir: Arc<tempfile::TempDir>,
        env: HashMap<String, String>,
        knobs: Knobs,
    ) -> TestApp {
        let config = Config::from_source(&env).expect("test configuration is valid");
        let stop = CancellationToken::new();
        let options = knobs.options(&stop);
        let app = App::build_with(config, options).await.expect("app builds");
        let port = app.port();
        let state = app.state().clone();
        let server = tokio::spawn(app.run_until_stopped());
        let address = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        // Ready once /health answers (the webhook registration has run by then or soon).
        // HTTPS apps are probed by their tests, which know the CA.
        if !env.contains_key("TLS_CERT_PATH") {
            eventually(Duration::from_secs(2), || async {
                http.get(format!("{address}/health")).send().await.is_ok()
            })
            .await;
        }
        TestApp {
            address,
            port,
            webex,
            llm,
            state,
            http,
            stop,
            server,
            dir,
            env,
            knobs,
        }
    }

    /// A variable of this app's environment (`DATABASE_URL`, …); empty when unset.
    pub fn env_value(&self, name: &str) -> String {
        self.env.get(name).cloned().unwrap_or_default()
    }

    /// Stops gracefully and starts a new app on the same database and fakes.
    pub async fn restart(self) -> TestApp {
        let TestApp {
            webex,
            llm,
            dir,
            env,
            stop,
            server,
            knobs,
            ..
        } = self;
        stop.cancel();
        server.await.unwrap().unwrap();
        Self::start(webex, llm, dir, env, knobs).await
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.server.await.unwrap().unwrap();
    }

    pub async fn post_raw(&self, body: Vec<u8>, signature: Option<&str>) -> reqwest::Response {
        post_webhook(&self.http, &self.address, body, signature).await
    }

    /// Posts a correctly signed webhook.
    pub async fn post_event(&self, event: &Value) -> reqwest::Response {
        post_signed_event(&self.http, &self.address, event).await
    }

    /// Mounts the message, posts its webhook, expects 200.
    pub async fn deliver(&self, message: &Value) {
        mount_message(&self.webex, message).await;
        let res = self.post_event(&event_for(message)).await;
        assert_eq!(
            res.status(),
            200,
            "webhook not accepted: {:?}",
            res.text().await
        );
    }

    /// Waits until the event of this message id is handled (done) in the store.
    pub async fn wait_handled(&self, message_id: &str) -> String {
        eventually_some(Duration::from_secs(10), || async {
            match self.state.store.event_outcome(message_id).await.unwrap() {
                Some((state, outcome)) if state == "done" => Some(outcome.unwrap_or_default()),
                _ => None,
            }
        })
        .await
        .unwrap_or_else(|| panic!("event {message_id} was not handled in time"))
    }

    pub async fn replies(&self) -> Vec<Value> {
        requests_to(&self.webex, "POST", "/messages").await
    }

    pub async fn llm_requests(&self) -> Vec<Value> {
        requests_to(&self.llm, "POST", "/api/chat").await
    }

    pub async fn wait_replies(&self, n: usize) -> Vec<Value> {
        match eventually_some(Duration::from_secs(10), || async {
            Some(self.replies().await).filter(|r| r.len() >= n)
        })
        .await
        {
            Some(replies) => replies,
            None => panic!("expected {n} replies, got {:?}", self.replies().await),
        }
    }

    pub async fn approve(&self, email: &str) {
        let email = bot::domain::Email::parse(email).unwrap();
        self.state
            .store
            .add_user(&email, Some("test"))
            .await
            .unwrap();
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        self.http
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn health(&self) -> Value {
        self.http
            .get(format!("{}/health", self.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

/// A loopback port that was free a moment ago (for a bot process to bind).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `POST {address}/webhook` with a JSON body and, when given, `X-Spark-Signature`.
pub async fn post_webhook(
    http: &reqwest::Client,
    address: &str,
    body: Vec<u8>,
    signature: Option<&str>,
) -> reqwest::Response {
    let mut req = http
        .post(format!("{address}/webhook"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(sig) = signature {
        req = req.header("x-spark-signature", sig);
    }
    req.send().await.unwrap()
}

/// Posts `event` as a webhook signed with [`WEBHOOK_SECRET`] to the bot at `address`.
pub async fn post_signed_event(
    http: &reqwest::Client,
    address: &str,
    event: &Value,
) -> reqwest::Response {
    let body = serde_json::to_vec(event).unwrap();
    let sig = webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &body);
    post_webhook(http, address, body, Some(&sig)).await
}

/// Posts a correctly signed webhook to a bot process on `port`; returns the status.
pub async fn post_signed(port: u16, event: &Value) -> u16 {
    post_signed_with(port, event, None).await
}

/// [`post_signed`] with `X-Relay-Key` (for a bot with `RELAY_API_KEY` set).
pub async fn post_signed_with(port: u16, event: &Value, relay_key: Option<&str>) -> u16 {
    let body = serde_json::to_vec(event).unwrap();
    let sig = webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &body);
    let mut request = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/webhook"))
        .header("x-spark-signature", sig)
        .body(body);
    if let Some(key) = relay_key {
        request = request.header("x-relay-key", key);
    }
    request.send().await.unwrap().status().as_u16()
}
