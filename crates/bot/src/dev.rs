//! `webex-chatbot dev`: serve on a laptop through an ngrok tunnel. Attaches to a running
//! tunnel for `BIND_ADDR`'s port (ngrok's local API), or starts `ngrok http PORT`; then
//! serves with `BOT_PUBLIC_URL` set to the tunnel, and removes the webhook on the way out.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::config::{Config, Mode};
use crate::error::AppError;
use crate::startup::{self, App, BuildOptions};

/// Where the ngrok agent serves its local API unless told otherwise.
pub const DEFAULT_NGROK_API: &str = "http://127.0.0.1:4040/api/tunnels";
/// How long a freshly started ngrok gets to open its tunnel.
const START_TIMEOUT: Duration = Duration::from_secs(20);
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Lines of ngrok's output kept to explain a failed start.
const OUTPUT_LINES: usize = 20;

#[derive(Deserialize)]
struct TunnelList {
    #[serde(default)]
    tunnels: Vec<Tunnel>,
}

#[derive(Deserialize)]
struct Tunnel {
    #[serde(default)]
    public_url: String,
    #[serde(default)]
    proto: String,
    #[serde(default)]
    config: TunnelConfig,
}

#[derive(Default, Deserialize)]
struct TunnelConfig {
    #[serde(default)]
    addr: String,
}

/// The port an ngrok upstream address points at: `8080`, `localhost:8080`,
/// `http://localhost:8080`, `https://127.0.0.1:8443`, `http://localhost` (80).
pub fn upstream_port(addr: &str) -> Option<u16> {
    let addr = addr.trim();
    if let Ok(port) = addr.parse::<u16>() {
        return Some(port);
    }
    if addr.contains("://") {
        return Url::parse(addr).ok()?.port_or_known_default();
    }
    addr.rsplit_once(':')?.1.parse().ok()
}

/// The https public URL of a tunnel to `port`, from ngrok's `/api/tunnels` answer.
fn pick_tunnel(list: &TunnelList, port: u16) -> Option<Url> {
    list.tunnels
        .iter()
        .filter(|t| t.proto == "https" || t.public_url.starts_with("https://"))
        .filter(|t| upstream_port(&t.config.addr) == Some(port))
        .find_map(|t| Url::parse(&t.public_url).ok())
}

/// What the ngrok API said.
enum Lookup {
    Found(Url),
    /// The agent runs, but none of its tunnels leads to our port.
    NoTunnel(Vec<String>),
    /// Nothing answers: no agent runs (on that address).
    NoAgent(String),
}

async fn lookup(http: &reqwest::Client, api: &Url, port: u16) -> Lookup {
    let response = match http
        .get(api.clone())
        .timeout(Duration::from_secs(2))
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Lookup::NoAgent(e.to_string()),
    };
    let list: TunnelList = match response.error_for_status() {
        Ok(r) => match r.json().await {
            Ok(list) => list,
            Err(e) => return Lookup::NoAgent(format!("not an ngrok API answer ({e})")),
        },
        Err(e) => return Lookup::NoAgent(e.to_string()),
    };
    match pick_tunnel(&list, port) {
        Some(url) => Lookup::Found(url),
        None => Lookup::NoTunnel(
            list.tunnels
                .iter()
                .map(|t| format!("{} -> {}", t.public_url, t.config.addr))
                .collect(),
        ),
    }
}

/// An executable named `name` in one of `PATH`'s folders.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

fn no_ngrok_message(api: &Url, port: u16, why: &str) -> String {
    format!(
        "no ngrok agent answers at {api} ({why}) and `ngrok` is not on PATH.\n\
         Install ngrok from https://ngrok.com/download, then once: `ngrok config add-authtoken <token>` \
         (from https://dashboard.ngrok.com). Then run `webex-chatbot dev` again, or start `ngrok http {port}` yourself.\n\
         Without a public URL at all: MODE=websocket webex-chatbot serve"
    )
}

/// The ngrok process this command started, with the tail of its output.
struct Ngrok {
    child: Child,
    output: Arc<Mutex<VecDeque<String>>>,
}

impl Ngrok {
    fn start(program: &Path, upstream: &str) -> Result<Ngrok, AppError> {
        let mut child = Command::new(program)
            .args(["http", upstream, "--log", "stdout"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| runtime(format!("cannot start {}: {e}", program.display())))?;
        let output = Arc::new(Mutex::new(VecDeque::new()));
        if let Some(out) = child.stdout.take() {
            tokio::spawn(keep_lines(out, output.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(keep_lines(err, output.clone()));
        }
        Ok(Ngrok { child, output })
    }

    fn output(&self) -> String {
        self.output
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

async fn keep_lines(stream: impl AsyncRead + Unpin, keep: Arc<Mutex<VecDeque<String>>>) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        tracing::debug!(target: "ngrok", "{line}");
        if let Ok(mut keep) = keep.lock() {
            if keep.len() == OUTPUT_LINES {
                keep.pop_front();
            }
            keep.push_back(line);
        }
    }
}

fn runtime(message: String) -> AppError {
    AppError::Runtime(anyhow::anyhow!(message))
}

/// Starts ngrok and waits until its API shows an https tunnel to `port`.
async fn start_tunnel(
    http: &reqwest::Client,
    api: &Url,
    port: u16,
    program: &Path,
    upstream: &str,
) -> Result<(Url, Ngrok), AppError> {
    println!("starting {} http {upstream}", program.display());
    let mut ngrok = Ngrok::start(program, upstream)?;
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = ngrok.child.try_wait() {
            // Let the readers catch the last lines.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(runtime(format!(
                "ngrok exited ({status}) before opening a tunnel:\n{}\n\
                 If it asks for an account: `ngrok config add-authtoken <token>` (https://dashboard.ngrok.com). \
                 Or use MODE=websocket webex-chatbot serve, which needs no public URL.",
                ngrok.output()
            )));
        }
        if let Lookup::Found(url) = lookup(http, api, port).await {
            return Ok((url, ngrok));
        }
        if Instant::now() >= deadline {
            let output = ngrok.output();
            ngrok.stop().await;
            return Err(runtime(format!(
                "ngrok started, but no https tunnel to port {port} appeared at {api} within {}s \
                 (if ngrok's API listens elsewhere, pass --ngrok-api or set NGROK_API_URL). ngrok said:\n{output}",
                START_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// `http://host:4040` and `http://host:4040/` mean the agent's `/api/tunnels`.
fn tunnels_url(api: &Url) -> Url {
    if api.path() == "/" || api.path().is_empty() {
        let mut url = api.clone();
        url.set_path("/api/tunnels");
        return url;
    }
    api.clone()
}

/// 32 random bytes, hex: a webhook secret for one `dev` run.
fn random_secret() -> secrecy::SecretString {
    let bytes: [u8; 32] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    secrecy::SecretString::from(hex)
}

/// Cancels `stop` on SIGTERM or SIGINT, from the first moment on, so no signal is lost
/// between finding the tunnel and serving.
fn stop_on_signal(stop: CancellationToken) {
    tokio::spawn(async move {
        crate::startup::terminate_signal().await;
        stop.cancel();
    });
}

/// `webex-chatbot dev [--ngrok-api URL] [--no-start]`.
pub async fn run(mut config: Config, api: Url, no_start: bool) -> Result<(), AppError> {
    config.require_token()?;
    if config.mode == Mode::Websocket {
        return Err(AppError::Usage(
            "configuration error: MODE: `dev` sets up a tunnel for MODE=webhook; with MODE=websocket run `webex-chatbot serve`".into(),
        ));
    }
    let port = config.bind_addr.port();
    if port == 0 {
        return Err(AppError::Usage(
            "configuration error: BIND_ADDR: `dev` needs a fixed port for the tunnel".into(),
        ));
    }
    let api = tunnels_url(&api);
    let upstream = if config.tls.is_some() {
        format!("https://localhost:{port}")
    } else {
        port.to_string()
    };
    let stop = CancellationToken::new();
    stop_on_signal(stop.clone());
    let http = startup::http_client()?;

    let (public_url, ngrok) = match lookup(&http, &api, port).await {
        Lookup::Found(url) => {
            println!("using the running ngrok tunnel {url} -> port {port}");
            (url, None)
        }
        Lookup::NoTunnel(others) => {
            return Err(runtime(format!(
                "the ngrok agent at {api} has no https tunnel to port {port} (its tunnels: {}).\n\
                 Start one with `ngrok http {port}`, or stop that agent and run `webex-chatbot dev` again \
                 (a free ngrok account runs one agent at a time).",
                if others.is_empty() {
                    "none".to_owned()
                } else {
                    others.join(", ")
                }
            )));
        }
        Lookup::NoAgent(why) if no_start => {
            return Err(runtime(format!(
                "no ngrok agent answers at {api} ({why}); start `ngrok http {port}` first, or run without --no-start"
            )));
        }
        Lookup::NoAgent(why) => {
            let Some(program) = find_on_path("ngrok") else {
                return Err(runtime(no_ngrok_message(&api, port, &why)));
            };
            let started = tokio::select! {
                started = start_tunnel(&http, &api, port, &program, &upstream) => started?,
                () = stop.cancelled() => return Ok(()),
            };
            println!("ngrok tunnel {} -> port {port}", started.0);
            (started.0, Some(started.1))
        }
    };

    let target = crate::registration::target_url(&public_url);
    println!("webhook: {target} (removed again when this command stops)");
    config.bot_public_url = Some(public_url);
    if config.webhook_secret.is_none() {
        // The tunnel is public: its webhook is signed even when no secret is configured.
        // Registered and verified with the same value; it lives as long as this command.
        config.webhook_secret = Some(random_secret());
        tracing::info!(
            "WEBHOOK_SECRET is not set: using a random secret for this tunnel's webhook (registered with Webex and checked on every delivery; not shown)"
        );
    }
    let options = BuildOptions {
        stop: stop.clone(),
        ..BuildOptions::default()
    };
    let built = tokio::select! {
        app = App::build_with(config.clone(), options) => app,
        () = stop.cancelled() => return Ok(()),
    };
    let app = match built {
        Ok(app) => app,
        Err(e) => {
            if let Some(ngrok) = ngrok {
                ngrok.stop().await;
            }
            return Err(e);
        }
    };
    tracing::info!(port = app.port(), "listening");
    let served = app.run_until_stopped().await.map_err(AppError::from);

    // Best effort: a webhook left behind points at a dead tunnel and Webex disables it.
    match startup::webex_client(&config, http) {
        Ok(client) => match crate::registration::delete_all(&client, Some(&target)).await {
            Ok(n) => {
                tracing::info!(deleted = n, target_url = %target, "dev webhook removed");
                println!("deleted {n} webhook(s)");
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not remove the dev webhook");
                eprintln!(
                    "could not remove the webhook: {e}; run `webex-chatbot webhooks delete-all`"
                );
            }
        },
        Err(e) => tracing::warn!(error = %e, "could not remove the dev webhook"),
    }
    if let Some(ngrok) = ngrok {
        ngrok.stop().await;
    }
    served
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_ports() {
        let cases = [
            ("8080", Some(8080)),
            ("localhost:8080", Some(8080)),
            ("http://localhost:8080", Some(8080)),
            ("https://127.0.0.1:8443", Some(8443)),
            ("http://localhost", Some(80)),
            ("https://localhost", Some(443)),
            ("[::1]:9000", Some(9000)),
            ("localhost", None),
            ("", None),
        ];
        for (addr, port) in cases {
            assert_eq!(upstream_port(addr), port, "{addr}");
        }
    }

    #[test]
    fn picks_the_https_tunnel_to_our_port() {
        let list: TunnelList = serde_json::from_value(serde_json::json!({"tunnels": [
            {"public_url": "http://a.ngrok.io", "proto": "http", "config": {"addr": "http://localhost:8080"}},
            {"public_url": "https://other.ngrok.io", "proto": "https", "config": {"addr": "http://localhost:9090"}},
            {"public_url": "https://a.ngrok.io", "proto": "https", "config": {"addr": "http://localhost:8080"}}
        ]}))
        .unwrap();
        assert_eq!(
            pick_tunnel(&list, 8080).unwrap().as_str(),
            "https://a.ngrok.io/"
        );
        assert!(pick_tunnel(&list, 7000).is_none());
    }

    #[test]
    fn random_secrets_are_long_and_differ() {
        use secrecy::ExposeSecret;
        let (a, b) = (random_secret(), random_secret());
        assert_eq!(a.expose_secret().len(), 64);
        assert_ne!(a.expose_secret(), b.expose_secret());
    }

    #[test]
    fn api_base_means_the_tunnel_list() {
        for raw in ["http://127.0.0.1:4040", "http://127.0.0.1:4040/"] {
            assert_eq!(
                tunnels_url(&Url::parse(raw).unwrap()).as_str(),
                DEFAULT_NGROK_API
            );
        }
        let custom = Url::parse("http://127.0.0.1:4041/api/tunnels").unwrap();
        assert_eq!(tunnels_url(&custom), custom);
    }
}
