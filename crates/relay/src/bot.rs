//! The internal bot as seen from the relay: one pooled HTTPS client (pinned internal CA,
//! optional client certificate) that forwards verified webhooks and probes `/health`.

use std::path::Path;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, StatusCode, header};
use bytes::Bytes;
use secrecy::ExposeSecret;
use url::Url;

use crate::config::{Config, ConfigError};

/// `/health` must answer a load balancer quickly even when the bot hangs.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// Fail fast on a dead host instead of spending the whole forward budget on SYNs.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub(crate) const RELAY_KEY_HEADER: &str = "x-relay-key";
pub(crate) const SIGNATURE_HEADER: &str = "x-spark-signature";

pub(crate) struct Bot {
    client: reqwest::Client,
    webhook_url: Url,
    health_url: Url,
    relay_key: HeaderValue,
    forward_timeout: Duration,
    health_timeout: Duration,
}

/// Why a forward produced no answer from the bot.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ForwardError {
    #[error("the bot did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the bot is unreachable: {0}")]
    Unreachable(String),
}

/// What `/health` reports about the bot.
#[derive(Debug, serde::Serialize)]
pub(crate) struct BotHealth {
    pub reachable: bool,
    pub status: Option<u16>,
    pub latency_ms: u64,
}

impl Bot {
    pub(crate) fn new(config: &Config) -> Result<Bot, ConfigError> {
        let mut relay_key = HeaderValue::from_str(config.relay_api_key.expose_secret())
            .map_err(|_| ConfigError::new("RELAY_API_KEY", "is not a valid header value"))?;
        // Keeps the key out of hyper's and reqwest's debug output.
        relay_key.set_sensitive(true);

        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("webex-relay/", env!("CARGO_PKG_VERSION")))
            // A redirect would carry the relay key to wherever the bot points; never follow.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(config.forward_timeout))
            // Below the bot's 30 s header-read timeout (tls::serve), which can close an idle
            // HTTP/1 keep-alive connection: a webhook must not race into a closing socket.
            .pool_idle_timeout(Duration::from_secs(20));
        if let Some(path) = &config.internal_ca {
            // Pinned: only this CA, not the system roots as well. Any public CA would
            // otherwise do for a certificate in the bot's name, and the relay key, the
            // signature and every webhook would go to whoever holds one.
            builder = builder.tls_certs_only(read_ca(path)?);
        }
        if let Some(files) = &config.internal_client_cert {
            builder = builder.identity(read_identity(&files.cert, &files.key)?);
        }
        let client = builder.build().map_err(|e| {
            ConfigError::new(
                "INTERNAL_BOT_URL",
                format!(
                    "cannot build an HTTP client for the bot: {}",
                    error_chain(&e)
                ),
            )
        })?;
        Ok(Bot {
            client,
            webhook_url: config.bot_webhook_url(),
            health_url: config.bot_health_url(),
            relay_key,
            forward_timeout: config.forward_timeout,
            health_timeout: HEALTH_TIMEOUT.min(config.forward_timeout),
        })
    }

    pub(crate) fn webhook_url(&self) -> &Url {
        &self.webhook_url
    }

    pub(crate) fn forward_timeout(&self) -> Duration {
        self.forward_timeout
    }

    /// Sends the verified body, byte for byte, with the original signature and the relay
    /// key; the bot re-verifies both. Returns the bot's status.
    pub(crate) async fn forward(
        &self,
        body: Bytes,
        signature: HeaderValue,
    ) -> Result<StatusCode, ForwardError> {
        let response = self
            .client
            .post(self.webhook_url.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(RELAY_KEY_HEADER, self.relay_key.clone())
            .body(body)
            .timeout(self.forward_timeout)
            .send()
            .await
            .map_err(|e| self.forward_error(&e))?;
        let status = response.status();
        // Drain the (small) answer so the connection goes back to the pool.
        let _ = response.bytes().await;
        Ok(status)
    }

    pub(crate) async fn health(&self) -> BotHealth {
        let started = Instant::now();
        let result = self
            .client
            .get(self.health_url.clone())
            .timeout(self.health_timeout)
            .send()
            .await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match result {
            Ok(response) => BotHealth {
                reachable: true,
                status: Some(response.status().as_u16()),
                latency_ms,
            },
            Err(error) => {
                tracing::debug!(error = %error_chain(&error), "bot health check failed");
                BotHealth {
                    reachable: false,
                    status: None,
                    latency_ms,
                }
            }
        }
    }

    fn forward_error(&self, error: &reqwest::Error) -> ForwardError {
        if error.is_timeout() {
            ForwardError::Timeout(self.forward_timeout)
        } else {
            ForwardError::Unreachable(error_chain(error))
        }
    }
}

fn read_ca(path: &Path) -> Result<Vec<reqwest::Certificate>, ConfigError> {
    let bad = |reason: String| {
        ConfigError::new("INTERNAL_CA_PATH", format!("{}: {reason}", path.display()))
    };
    let pem = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(error_chain(&e)))?;
    if certs.is_empty() {
        return Err(bad("no certificate in the file".to_owned()));
    }
    Ok(certs)
}

fn read_identity(cert: &Path, key: &Path) -> Result<reqwest::Identity, ConfigError> {
    // reqwest's own errors do not say which file is wrong, nor notice a key that
    // belongs to another certificate until the bot refuses the handshake.
    tls::check_key_matches(cert, key).map_err(|e| {
        let var = if e.path() == key {
            "INTERNAL_CLIENT_KEY_PATH"
        } else {
            "INTERNAL_CLIENT_CERT_PATH"
        };
        ConfigError::new(var, e.to_string())
    })?;
    let read = |var: &'static str, path: &Path| {
        std::fs::read(path)
            .map_err(|e| ConfigError::new(var, format!("cannot read {}: {e}", path.display())))
    };
    let mut pem = read("INTERNAL_CLIENT_CERT_PATH", cert)?;
    pem.push(b'\n');
    pem.extend(read("INTERNAL_CLIENT_KEY_PATH", key)?);
    reqwest::Identity::from_pem(&pem).map_err(|e| {
        ConfigError::new(
            "INTERNAL_CLIENT_CERT_PATH",
            format!(
                "{} with {}: {}",
                cert.display(),
                key.display(),
                error_chain(&e)
            ),
        )
    })
}

/// An error with its causes, "a: b: c": reqwest's top level alone rarely says why.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
