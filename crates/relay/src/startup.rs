//! Wiring: config → TLS + bot client → bound listener → router → serve until a signal.
//! `App::build` does everything that can fail on bad configuration before serving.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum_server::Handle;
use tls::{ServerTls, TlsError, TlsFiles};

use crate::bot::Bot;
use crate::config::{Config, ConfigError};
use crate::rate_limit::{self, Limiter};
use crate::routes;
use crate::state::AppState;

/// certbot renews in place; a poll this slow costs nothing and catches it within a minute.
const TLS_WATCH_INTERVAL: Duration = Duration::from_secs(30);

/// Why the relay could not start. Bad configuration exits with 2, the rest with 1.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl StartupError {
    /// The process exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            StartupError::Config(_) => 2,
            StartupError::Bind { .. } => 1,
        }
    }
}

/// Everything built from the configuration except the listener.
struct Parts {
    tls: Option<ServerTls>,
    state: AppState,
    limiter: Option<Limiter>,
    max_body_bytes: usize,
}

async fn prepare(config: &Config) -> Result<Parts, ConfigError> {
    let tls = match &config.tls {
        Some(files) => Some(
            ServerTls::load(files.clone())
                .await
                .map_err(|e| tls_error(files, &e))?,
        ),
        None => None,
    };
    let bot = Bot::new(config)?;
    Ok(Parts {
        tls,
        state: AppState::new(bot, config.webhook_secret.clone()),
        limiter: config.rate_limit.map(Limiter::new),
        max_body_bytes: config.max_body_bytes,
    })
}

fn tls_error(files: &TlsFiles, error: &TlsError) -> ConfigError {
    let var = if error.path() == files.key {
        "SSL_KEY_PATH"
    } else {
        "SSL_CERT_PATH"
    };
    ConfigError::new(var, error.to_string())
}

/// Checks the whole configuration (TLS files, CA, client certificate) without binding:
/// `webex-relay --check-config`, safe to run next to a live relay.
pub async fn check(config: &Config) -> Result<(), StartupError> {
    prepare(config).await?;
    Ok(())
}

fn router(parts: &Parts) -> Router {
    Router::new()
        .route(
            "/webhook",
            post(routes::webhook).layer(DefaultBodyLimit::max(parts.max_body_bytes)),
        )
        .route("/health", get(routes::health))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::not_found)
        .with_state(parts.state.clone())
        .layer(axum::middleware::from_fn_with_state(
            parts.limiter.clone(),
            rate_limit::middleware,
        ))
}

/// A relay ready to serve: configuration checked, listener bound.
pub struct App {
    listener: std::net::TcpListener,
    local_addr: SocketAddr,
    router: Router,
    tls: Option<ServerTls>,
    limiter: Option<Limiter>,
    handle: Handle<SocketAddr>,
    grace: Duration,
}

impl App {
    /// Loads TLS files, builds the bot client, binds `BIND_ADDR` (port 0 in tests).
    pub async fn build(config: Config) -> Result<App, StartupError> {
        let parts = prepare(&config).await?;
        let listener =
            std::net::TcpListener::bind(config.bind_addr).map_err(|source| StartupError::Bind {
                addr: config.bind_addr,
                source,
            })?;
        let local_addr = listener.local_addr().map_err(|source| StartupError::Bind {
            addr: config.bind_addr,
            source,
        })?;
        for warning in config.warnings() {
            tracing::warn!("{warning}");
        }
        tracing::info!(
            addr = %local_addr,
            https = parts.tls.is_some(),
            bot = %parts.state.bot().webhook_url(),
            rate_limit = config.rate_limit.map(|n| n.get()),
            max_body_bytes = config.max_body_bytes,
            "webex-relay listening"
        );
        Ok(App {
            listener,
            local_addr,
            router: router(&parts),
            tls: parts.tls,
            limiter: parts.limiter,
            handle: Handle::new(),
            // In-flight forwards may take the whole forward timeout; let them finish.
            grace: parts.state.bot().forward_timeout() + Duration::from_secs(1),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// Serves until SIGTERM or SIGINT, then drains in-flight requests. SIGHUP reloads the
    /// TLS certificate; the files are also polled every 30 s for certbot renewals.
    /// Under systemd (`Type=notify`) it reports READY=1 (the listener is already bound, so
    /// connections queue from here on), STOPPING=1, and pings the watchdog when
    /// `WatchdogSec=` is set; without systemd these are no-ops.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let signals = Signals::register().context("cannot install signal handlers")?;
        let tls = self.tls.clone();
        let watchdog = tokio::spawn(watchdog());
        let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
        let result = self
            .run_until(async move {
                signals.wait_for_stop(tls).await;
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
            })
            .await;
        watchdog.abort();
        result
    }

    /// Serves until `stop` completes, then drains in-flight requests. No signal handling:
    /// for tests and embedding.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let watcher = self.tls.as_ref().map(|tls| tls.watch(TLS_WATCH_INTERVAL));
        let pruner = self.limiter.as_ref().map(Limiter::spawn_pruner);
        let handle = self.handle.clone();
        let grace = self.grace;
        let stopper = tokio::spawn(async move {
            stop.await;
            tracing::info!("shutting down: finishing requests in flight");
            handle.graceful_shutdown(Some(grace));
        });

        let result = tls::serve(self.listener, self.router, self.tls, self.handle).await;

        for task in [watcher, pruner, Some(stopper)].into_iter().flatten() {
            task.abort();
        }
        result.context("server failed")?;
        tracing::info!("stopped");
        Ok(())
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

#[cfg(unix)]
struct Signals {
    hangup: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    /// Registered before serving, so a SIGTERM during startup is not lost.
    fn register() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            hangup: signal(SignalKind::hangup())?,
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    async fn wait_for_stop(mut self, tls: Option<ServerTls>) {
        loop {
            tokio::select! {
                _ = self.hangup.recv() => reload(tls.as_ref()).await,
                _ = self.terminate.recv() => return,
                _ = self.interrupt.recv() => return,
            }
        }
    }
}

#[cfg(unix)]
async fn reload(tls: Option<&ServerTls>) {
    let Some(tls) = tls else {
        tracing::info!("SIGHUP: no TLS configured, nothing to reload");
        return;
    };
    match tls.reload().await {
        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
        Err(error) => {
            tracing::error!(%error, "SIGHUP: TLS reload failed; keeping the previous certificate")
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn register() -> std::io::Result<Signals> {
        Ok(Signals)
    }

    async fn wait_for_stop(self, _tls: Option<ServerTls>) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
