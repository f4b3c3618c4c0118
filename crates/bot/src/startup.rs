//! Building and running the server: `App::build(config)` connects the store, learns who the
//! bot is, binds the listener, registers the webhook; `run_until_stopped` serves until
//! SIGTERM/SIGINT (or a test's token) and then drains work in flight.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::Config;
use crate::dispatcher;
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::personality::Personalities;
use crate::rooms::Rooms;
use crate::state::{AppState, BotIdentity, Inner, WebhookStatus};
use crate::store::{Store, StoreOptions};

/// One shared HTTP client for Webex and the LLM providers (one connection pool each host).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(llm::USER_AGENT)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .context("cannot build the HTTP client")
}

/// The Webex client for `WEBEX_API_URL` with the bot token and the default retry policy.
pub fn webex_client(config: &Config, http: reqwest::Client) -> Result<webex::Client, AppError> {
    webex_client_with(config, http, webex::RetryPolicy::default())
}

pub fn webex_client_with(
    config: &Config,
    http: reqwest::Client,
    retry: webex::RetryPolicy,
) -> Result<webex::Client, AppError> {
    let token = config.require_token()?.clone();
    Ok(webex::Client::new(
        http,
        webex::ClientConfig {
            base_url: config.webex_api_url.clone(),
            token,
            retry,
        },
    )
    .with_timeout(config.webex_timeout))
}

pub fn llm_client(config: &Config, http: reqwest::Client) -> Result<llm::Llm, AppError> {
    llm::Llm::new(
        http,
        config.llm.clone(),
        config.llm_fallback.clone(),
        llm::Options {
            timeout: config.llm_timeout,
            max_concurrency: config.llm_max_concurrency,
            show_thinking: config.llm_show_thinking,
        },
    )
    .map_err(|e| AppError::bad_config(format!("LLM_PROVIDER: {e}")))
}

pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    open_store_in(config, None).await
}

/// The store, in a PostgreSQL schema of its own when `pg_schema` is set (tests).
async fn open_store_in(config: &Config, pg_schema: Option<String>) -> anyhow::Result<Store> {
    Store::connect(&StoreOptions {
        url: config.database_url.clone(),
        max_connections: config.database_max_connections,
        pg_schema,
    })
    .await
    .context("DATABASE_URL: cannot open the database")
}

/// Loads the personalities, logging each bad file; a missing default is a config error.
pub fn load_personalities(config: &Config) -> Result<Personalities, AppError> {
    let (set, errors) = Personalities::load(&config.personalities_dir, &config.default_personality)
        .map_err(|e| AppError::bad_config(e.to_string()))?;
    for e in &errors {
        tracing::error!(path = %e.path.display(), reason = %e.reason, "personality file skipped");
    }
    Ok(set)
}

/// Knobs tests turn; production uses the defaults.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    pub webex_retry: webex::RetryPolicy,
    /// Cancel to stop the server (tests); SIGTERM/SIGINT always work too.
    pub stop: CancellationToken,
    /// How often the TLS files are checked for a renewal.
    pub tls_watch: Duration,
    /// PostgreSQL: work in this schema (created if missing), so tests can run apps side by
    /// side on one database, and several apps on one schema as replicas.
    pub pg_schema: Option<String>,
    /// How long a room lease lasts without renewal (how soon a dead replica's rooms move).
    pub lease_ttl: Duration,
    /// How often `/metrics`' store-derived gauges are recounted from the database.
    pub metrics_refresh: Duration,
    /// Runs before each event is handled (tests make a worker panic with it).
    pub fault_hook: Option<crate::rooms::FaultHook>,
    /// How long an LLM probe's report is reused by `/health` and `status`.
    pub probe_cache: Duration,
    /// The clock usage days and limits are counted in (tests set one).
    pub clock: crate::usage::Clock,
    /// How file downloads wait for Webex's malware scan (`423`).
    pub download_policy: webex::DownloadPolicy,
    /// Where PDF and DOCX text is extracted: a child process of this binary by default
    /// (tests name the binary, since theirs is the test runner).
    pub extractor: Option<crate::attachments::Isolation>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        Self {
            webex_retry: webex::RetryPolicy::default(),
            stop: CancellationToken::new(),
            tls_watch: Duration::from_secs(30),
            pg_schema: None,
            lease_ttl: crate::lease::LEASE_TTL,
            metrics_refresh: crate::metrics::REFRESH_INTERVAL,
            fault_hook: None,
            probe_cache: crate::probe::PROBE_CACHE,
            clock: crate::usage::Clock::system(),
            download_policy: webex::DownloadPolicy::default(),
            extractor: None,
        }
    }
}

pub struct App {
    state: AppState,
    listener: std::net::TcpListener,
    port: u16,
    tls: Option<tls::ServerTls>,
    stop: CancellationToken,
    tls_watch: Duration,
    metrics_refresh: Duration,
    /// SQLite: this process owns the database while it holds this (see [`crate::store::OwnerLock`]).
    owner_lock: Option<crate::store::OwnerLock>,
}

impl App {
    pub async fn build(config: Config) -> Result<App, AppError> {
        Self::build_with(config, BuildOptions::default()).await
    }

    pub async fn build_with(config: Config, options: BuildOptions) -> Result<App, AppError> {
        let personalities = load_personalities(&config)?;
        let tls = match &config.tls {
            None => None,
            Some(t) => Some(
                tls::ServerTls::load(tls::TlsFiles {
                    cert: t.cert.clone(),
                    key: t.key.clone(),
                    client_ca: t.client_ca.clone(),
                })
                .await
                .map_err(|e| AppError::bad_config(format!("TLS_CERT_PATH/TLS_KEY_PATH: {e}")))?,
            ),
        };
        let http = http_client()?;
        let metrics = Metrics::new();
        let observer_metrics = metrics.webex_api_errors.clone();
        let webex = webex_client_with(&config, http.clone(), options.webex_retry.clone())?
            .with_download_policy(options.download_policy.clone())
            .with_error_observer(Arc::new(move |status| {
                observer_metrics
                    .get_or_create(&crate::metrics::StatusLabel { status })
                    .inc();
            }));
        let llm = llm_client(&config, http.clone())?;
        // A bad TOOLS_CONFIG stops the start (exit 2); servers that do not start are retried.
        let tools = crate::tools::from_config(&config.tools, http.clone())?;
        let attachments = crate::attachments::Setup {
            isolation: options
                .extractor
                .clone()
                .unwrap_or_else(crate::attachments::Isolation::current_exe),
            extract_timeout: crate::attachments::EXTRACT_TIMEOUT,
            stt_timeout: config.llm_timeout,
            http,
        };
        // Before anything is opened or bound: a webhook server without a secret would take
        // orders from anyone who finds its URL.
        if config.check_webhook_secret()? {
            tracing::warn!(
                "ALLOW_UNSIGNED_WEBHOOKS=true and WEBHOOK_SECRET is not set: POST /webhook accepts UNSIGNED requests, so anyone who can reach it can make this bot read and answer messages. For local experiments only: set WEBHOOK_SECRET before going live"
            );
        }
        // SQLite: one `serve` owns the database, so what an earlier life held is ours.
        let owner_lock = crate::store::OwnerLock::acquire(&config.database_url)
            .map_err(|e| AppError::bad_config(format!("DATABASE_URL: {e}")))?;
        let store = open_store_in(&config, options.pg_schema.clone()).await?;
        if owner_lock.is_some() {
            // Every lease and backoff is an earlier life's (kill -9, a restart on any port):
            // take its rooms back at once instead of waiting for the leases to expire.
            match store.take_back_all().await {
                Ok((0, 0)) => {}
                Ok((leases, events)) => tracing::info!(
                    leases,
                    events,
                    "took back the room leases and retry waits of an earlier run"
                ),
                Err(e) => {
                    return Err(AppError::Runtime(anyhow::Error::new(e).context(
                        "DATABASE_URL: cannot take back the room leases of an earlier run",
                    )));
                }
            }
        }

        let me = webex.me().await.context(
            "WEBEX_BOT_TOKEN: cannot look up the bot with GET /people/me (is the token valid?)",
        )?;
        let bot_id = match &config.webex_bot_id {
            Some(id) => webex::PersonId::new(id.clone()),
            None => me.id.clone(),
        };
        tracing::info!(bot_id = %bot_id, bot_name = %me.display_name, "bot identity");

        let listener = std::net::TcpListener::bind(config.bind_addr)
            .with_context(|| format!("BIND_ADDR: cannot listen on {}", config.bind_addr))?;
        listener
            .set_nonblocking(true)
            .context("cannot configure the listener")?;
        let port = listener
            .local_addr()
            .context("listener has no address")?
            .port();
        let instance_id = instance_id(port);

        let usage = crate::usage::Ledger::new(
            store.clone(),
            options.clock,
            config.prices,
            config.limits,
            &metrics,
        );
        usage.init_series(&llm);
        let metrics = Arc::new(metrics);
        // What every answer's tool loop runs with: built once, shared by the answers.
        let runner = Arc::new(crate::tools::Runner {
            llm: llm.clone(),
            usage: usage.clone(),
            tools: tools.clone(),
            store: store.clone(),
            webex: webex.clone(),
            metrics: metrics.clone(),
            max_rounds: config.tools.max_rounds,
            confirm_timeout: config.tools.confirm_timeout,
            log_arguments: config.tools.log_arguments,
        });
        let state = AppState::new(Inner {
            bot: BotIdentity {
                id: bot_id,
                display_name: me.display_name,
            },
            personalities: ArcSwap::from_pointee(personalities),
            started: Instant::now(),
            webhook: Mutex::new(WebhookStatus::default()),
            probe: crate::probe::LlmProbe::new(options.probe_cache),
            rooms: Rooms::new(options.lease_ttl).with_fault_hook(options.fault_hook),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            instance_id,
            tools,
            usage,
            runner,
            attachments,
            config,
            webex,
            llm,
            store,
            metrics,
        });
        state.tools.start();
        Ok(App {
            state,
            listener,
            port,
            tls,
            stop: options.stop,
            tls_watch: options.tls_watch,
            metrics_refresh: options.metrics_refresh,
            owner_lock,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Registers the webhook (when `BOT_PUBLIC_URL` is set), processes pending events,
    /// serves until a stop signal, then drains work in flight.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let App {
            state,
            listener,
            tls,
            stop,
            tls_watch,
            metrics_refresh,
            owner_lock,
            ..
        } = self;
        let handle = axum_server::Handle::<SocketAddr>::new();
        let (server, _front_runtime) = serve_on_own_thread(
            listener,
            crate::routes::router(state.clone()),
            tls.clone(),
            handle.clone(),
            state.config.max_connections,
        )?;
        // Counted before the first scrape, then every `metrics_refresh`.
        let gauges = tokio::spawn(crate::metrics::refresh_store_gauges(
            state.store.clone(),
            metrics_refresh,
        ));

        match state.config.mode {
            crate::config::Mode::Webhook => register_webhook(&state).await?,
            crate::config::Mode::Websocket => {
                crate::websocket::start(&state, http_client()?).await?
            }
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let sweeper = tokio::spawn(dispatcher::sweeper(state.clone()));
        let leadership = tokio::spawn(keep_leadership(state.clone()));
        let webhook_check = tokio::spawn(keep_webhook_active(state.clone()));
        let memory = tokio::spawn(forget_old_conversations(state.clone()));
        let reloader = tokio::spawn(reload_on_sighup(state.clone(), tls.clone()));
        let tls_watch = tls.as_ref().map(|t| t.watch(tls_watch));
        let watchdog = tokio::spawn(watchdog());

        tokio::select! {
            () = stop.cancelled() => tracing::info!("stop requested"),
            () = terminate_signal() => tracing::info!("SIGTERM/SIGINT received"),
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
        shutdown(&state, &handle).await;
        // After the drain: answers in flight may still call tools.
        state.tools.stop();
        for task in [
            sweeper,
            leadership,
            webhook_check,
            memory,
            reloader,
            watchdog,
            gauges,
        ] {
            task.abort();
        }
        if let Some(t) = tls_watch {
            t.abort();
        }
        match tokio::time::timeout(Duration::from_secs(5), server).await {
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "server stopped with an error"),
            Ok(_) => {}
            Err(_) => tracing::warn!("server did not stop in time"),
        }
        state.store.close().await;
        drop(owner_lock);
        tracing::info!("stopped");
        Ok(())
    }
}

/// Serves HTTP on a thread with a runtime of its own, at most `max_connections` open
/// connections at once (`MAX_CONNECTIONS`; more wait to be accepted). Under load the
/// workers keep the main runtime's threads busy; on its own thread (scheduled by the
/// kernel like any other) a webhook is read, verified, recorded and acknowledged without
/// queueing behind them.
///
/// Returns when the server stopped, and a guard: the thread's runtime lives until the
/// guard is dropped, because what it started (pooled connections opened by `/health`
/// checks, the store's ingest loop) may still be used by the workers while they drain.
fn serve_on_own_thread(
    listener: std::net::TcpListener,
    router: axum::Router,
    tls: Option<tls::ServerTls>,
    handle: axum_server::Handle<SocketAddr>,
    max_connections: usize,
) -> anyhow::Result<(
    tokio::sync::oneshot::Receiver<std::io::Result<()>>,
    tokio::sync::oneshot::Sender<()>,
)> {
    let (done, stopped) = tokio::sync::oneshot::channel();
    let (keep, release) = tokio::sync::oneshot::channel::<()>();
    // Held by a task of the main runtime: if that runtime goes away (in tests, a simulated
    // crash), this thread stops serving too instead of acknowledging work nobody does.
    let (lifeline, main_gone) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _lifeline = lifeline;
        std::future::pending::<()>().await;
    });
    std::thread::Builder::new()
        .name("http-front".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = done.send(Err(e));
                    return;
                }
            };
            let served = runtime.block_on(async {
                tokio::select! {
                    served = tls::serve_with(
                        listener,
                        router,
                        tls,
                        handle,
                        tls::ServeOptions { max_connections: Some(max_connections) },
                    ) => served,
                    _ = main_gone => Ok(()),
                }
            });
            let _ = done.send(served);
            let _ = runtime.block_on(release);
        })
        .context("cannot start the HTTP thread")?;
    Ok((stopped, keep))
}

/// `/health`'s webhook note on a replica that does not maintain the registration.
const FOLLOWER_NOTE: &str =
    "another replica maintains the webhook registration (this one takes over if it goes away)";

/// Registers the webhook at startup, if this replica is the leader (PostgreSQL advisory
/// lock; on SQLite the one process is). Followers only serve: see [`keep_leadership`].
async fn register_webhook(state: &AppState) -> anyhow::Result<()> {
    let status = match &state.config.bot_public_url {
        None => {
            tracing::warn!(
                "BOT_PUBLIC_URL is not set: no webhook was registered; Webex delivers only to a webhook registered elsewhere (see `webex-chatbot webhooks register`)"
            );
            WebhookStatus {
                note: Some("BOT_PUBLIC_URL not set; no webhook registered".into()),
                ..WebhookStatus::default()
            }
        }
        Some(url) => {
            let leader =
                state.store.try_lead().await.context(
                    "cannot take part in the leader election for the webhook registration",
                )?;
            if leader {
                crate::registration::register(
                    &state.webex,
                    url,
                    state.config.webhook_secret.as_ref(),
                )
                .await
                .context("cannot register the webhook with Webex")?
            } else {
                tracing::info!(
                    "another replica maintains the webhook registration; this one serves and takes over if that one goes away"
                );
                follower_status()
            }
        }
    };
    if let Ok(mut w) = state.webhook.lock() {
        *w = status;
    }
    Ok(())
}

fn follower_status() -> WebhookStatus {
    WebhookStatus {
        note: Some(FOLLOWER_NOTE.into()),
        ..WebhookStatus::default()
    }
}

/// Every sweep interval: a follower tries to become the leader (the leader's lock went with
/// its process or connection) and registers the webhook when it does; the leader checks its
/// session is still alive.
async fn keep_leadership(state: AppState) {
    let Some(url) = state.config.bot_public_url.clone() else {
        return;
    };
    if state.config.mode != crate::config::Mode::Webhook {
        return;
    }
    let registered = |state: &AppState| state.webhook.lock().is_ok_and(|w| w.registered);
    let mut tick = tokio::time::interval(dispatcher::SWEEP_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match state.store.try_lead().await {
            Ok(true) if !registered(&state) => {
                tracing::info!("this replica now maintains the webhook registration");
                match crate::registration::register(
                    &state.webex,
                    &url,
                    state.config.webhook_secret.as_ref(),
                )
                .await
                {
                    Ok(status) => {
                        if let Ok(mut w) = state.webhook.lock() {
                            *w = status;
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "cannot register the webhook with Webex; trying again shortly")
                    }
                }
            }
            Ok(true) => {}
            Ok(false) => {
                if registered(&state) {
                    tracing::warn!(
                        "lost the webhook leadership (database session ended); another replica maintains the registration"
                    );
                    if let Ok(mut w) = state.webhook.lock() {
                        *w = follower_status();
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check the webhook leadership"),
        }
    }
}

/// Every `WEBHOOK_CHECK_SECS` the leader re-reads the bot's webhooks: one Webex set
/// `inactive` (after failed deliveries) is set active again, a missing one is created
/// again, and `/health.webhook` shows what the check saw.
async fn keep_webhook_active(state: AppState) {
    let Some(url) = state.config.bot_public_url.clone() else {
        return;
    };
    if state.config.mode != crate::config::Mode::Webhook {
        return;
    }
    let mut tick = tokio::time::interval(state.config.webhook_check);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Followers leave the registration to the leader (see `keep_leadership`).
        if !state.webhook.lock().is_ok_and(|w| w.registered) {
            continue;
        }
        let checked =
            crate::registration::check(&state.webex, &url, state.config.webhook_secret.as_ref())
                .await;
        let Ok(mut w) = state.webhook.lock() else {
            continue;
        };
        if !w.registered {
            // Leadership was lost while checking: the follower's status stays.
            continue;
        }
        match checked {
            Ok(status) => *w = status,
            Err(e) => {
                tracing::warn!(error = %e, "cannot check the webhook with Webex; trying again at the next check");
                w.status = Some("unknown".to_owned());
                w.checked_at = Some(crate::registration::now_rfc3339());
                w.note = Some(format!("the last check failed: {e}"));
            }
        }
    }
}

/// How often conversations older than `MEMORY_MAX_AGE_DAYS` are looked for.
const MEMORY_SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// `MEMORY_MAX_AGE_DAYS`: at start and then hourly, deletes the conversations nobody
/// touched for that long. Replicas may all do it; the deletes are the same.
async fn forget_old_conversations(state: AppState) {
    let Some(max_age) = state.config.memory_max_age else {
        return;
    };
    let mut tick = tokio::time::interval(MEMORY_SWEEP_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let age_ms = i64::try_from(max_age.as_millis()).unwrap_or(i64::MAX);
        let cutoff = crate::store::now_ms().saturating_sub(age_ms);
        match state
            .store
            .forget_conversations_untouched_since(cutoff)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                turns = n,
                max_age_days = max_age.as_secs_f64() / 86_400.0,
                "forgot conversations untouched longer than MEMORY_MAX_AGE_DAYS"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot forget old conversations; trying again in an hour")
            }
        }
    }
}

/// Stop accepting, let work in flight finish for up to `SHUTDOWN_TIMEOUT_SECS`; what is
/// left stays pending in the store for the next start.
async fn shutdown(state: &AppState, handle: &axum_server::Handle<SocketAddr>) {
    handle.graceful_shutdown(Some(Duration::from_secs(2)));
    state.shutdown.cancel();
    state.tasks.close();
    let timeout = state.config.shutdown_timeout;
    if tokio::time::timeout(timeout, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_s = timeout.as_secs(),
            "work still in flight at shutdown; it stays pending and runs after the next start"
        );
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub(crate) async fn terminate_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// SIGHUP reloads the personalities and the TLS certificate without a restart.
async fn reload_on_sighup(state: AppState, tls: Option<tls::ServerTls>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Reloading]);
        tracing::info!("SIGHUP: reloading");
        reload_personalities(&state);
        if let Some(tls) = &tls {
            match tls.reload().await {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the old certificate")
                }
            }
        }
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    }
}

/// Reloads the personality folder; on any problem the old set stays.
pub fn reload_personalities(state: &AppState) {
    let config = &state.config;
    match Personalities::load(&config.personalities_dir, &config.default_personality) {
        Ok((set, errors)) if errors.is_empty() => {
            tracing::info!(count = set.iter().count(), "personalities reloaded");
            state.personalities.store(Arc::new(set));
        }
        Ok((_, errors)) => {
            for e in &errors {
                tracing::error!(path = %e.path.display(), reason = %e.reason, "bad personality file");
            }
            tracing::error!("personalities not reloaded: fix the files above; the old set stays");
        }
        Err(e) => tracing::error!(error = %e, "personalities not reloaded; the old set stays"),
    }
}

/// Pings systemd's watchdog at half its interval when `WatchdogSec=` is set.
async fn watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled().filter(|d| !d.is_zero()) else {
        return;
    };
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tick.tick().await;
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
    }
}

/// This process's name in room leases: `host:port:` and a random part unique to this start.
/// Host and port alone could be shared by two live replicas (cloned hosts with one
/// hostname, containers given the same hostname), and two owners with one name would both
/// hold a room.
fn instance_id(port: u16) -> String {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    format!("{}:{port}:{}", hostname(), &nonce[..12])
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".to_owned())
}
