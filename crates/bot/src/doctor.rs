//! `webex-chatbot doctor`: pre- and post-deployment checks, one line each with the fix to
//! apply on failure. Every check runs even when others fail (a missing token is a failed
//! check, not a configuration error), so one run shows everything that is wrong.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use secrecy::ExposeSecret;
use serde::Serialize;

use crate::config::{Config, Mode};
use crate::error::AppError;
use crate::personality::Personalities;
use crate::{registration, startup};

/// A certificate closer than this to its expiry fails (certbot renews at 30 days left).
const EXPIRY_MARGIN_DAYS: i64 = 14;
/// No network check may hold the report up longer than this.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(20);
const SECS_PER_DAY: i64 = 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "PASS",
            Status::Fail => "FAIL",
            Status::Skip => "SKIP",
        }
    }
}

/// One check's result; `fix` says what to do when it failed.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
    /// `tool-server` checks: the server's name and the tools it listed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ToolLine>>,
}

/// One tool a server listed, for `doctor --json`.
#[derive(Clone, Debug, Serialize)]
pub struct ToolLine {
    pub name: String,
    pub description: String,
    /// Listed in the server's `confirm`.
    pub confirm: bool,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
            server: None,
            tools: None,
        }
    }

    fn skip(name: &'static str, detail: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Skip,
            detail: detail.into(),
            fix: None,
            server: None,
            tools: None,
        }
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
            server: None,
            tools: None,
        }
    }
}

/// `webex-chatbot doctor [--json] [--external]`: prints the report, exit 1 if a check failed.
pub async fn run(config: Config, json: bool, external: bool) -> Result<(), AppError> {
    let checks = checks(&config, external).await;
    if json {
        let text = serde_json::to_string_pretty(&checks)
            .map_err(|e| AppError::Runtime(anyhow::anyhow!("cannot encode the report: {e}")))?;
        println!("{text}");
    } else {
        print!("{}", render(&checks));
    }
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if failed > 0 {
        return Err(AppError::Runtime(anyhow::anyhow!(
            "doctor: {failed} check(s) failed"
        )));
    }
    Ok(())
}

/// The text report: `STATUS  name: detail`, the fix indented under a failure, a summary.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        out.push_str(&format!("{}  {}: {}\n", c.status.label(), c.name, c.detail));
        if let (Status::Fail, Some(fix)) = (c.status, &c.fix) {
            out.push_str(&format!("      fix: {fix}\n"));
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "\n{} passed, {} failed, {} skipped\n",
        count(Status::Pass),
        count(Status::Fail),
        count(Status::Skip)
    ));
    out
}

/// Runs every check; the network ones concurrently. The order of the report is fixed.
pub async fn checks(config: &Config, external: bool) -> Vec<Check> {
    let http = match startup::http_client() {
        Ok(http) => http,
        Err(e) => {
            return vec![Check::fail(
                "http-client",
                format!("{e:#}"),
                "the system's TLS setup is broken; reinstall ca-certificates",
            )];
        }
    };
    let webex = async {
        let (token, client) = tokio::time::timeout(NETWORK_TIMEOUT, check_token(config, &http))
            .await
            .unwrap_or_else(|_| (timed_out("token"), None));
        let webhook = match client {
            Some(client) => timed("webhook", check_webhook(config, &client)).await,
            None => Check::skip("webhook", "needs a valid WEBEX_BOT_TOKEN (see token)"),
        };
        (token, webhook)
    };
    let ((token, webhook), llm, external, database, tools) = futures_util::join!(
        webex,
        check_llm(config, &http),
        timed("external", check_external(config, &http, external)),
        timed("database", check_database(config)),
        check_tools(config, &http),
    );
    let (llm, llm_fallback) = llm;
    let (env_file, _) = crate::config::env_file_path();
    let env_file = if env_file.is_relative() {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("."))
            .join(env_file)
    } else {
        env_file
    };
    vec![
        token,
        llm,
        llm_fallback,
        check_proxy_webex(config),
        check_proxy_llm(config),
        webhook,
        check_webhook_secret(config),
        external,
        check_tls(config, now_unix()),
        check_env_file(&env_file),
        database,
        check_personalities(config),
        check_admins(config),
        check_log_folder(config),
        check_metrics(config),
    ]
    .into_iter()
    .chain(tools)
    .collect()
}

/// `TOOLS_CONFIG`, when set: the file, the personalities' `tools` entries, then each server
/// started (stdio) or reached (HTTP) and its tools listed, all servers at once.
async fn check_tools(config: &Config, http: &reqwest::Client) -> Vec<Check> {
    const NAME: &str = "tools";
    // Without TOOLS_CONFIG there is nothing to check (and no line: tools are optional).
    let Some(path) = &config.tools.config else {
        return Vec::new();
    };
    let servers = match crate::tools::config::load(path) {
        Ok(servers) => servers,
        Err(e) => {
            return vec![Check::fail(
                NAME,
                e,
                "fix TOOLS_CONFIG's file (docs/tools.md shows the format), or unset TOOLS_CONFIG",
            )];
        }
    };
    // Personalities that name servers the file does not have.
    let mut unknown: Vec<String> = Vec::new();
    if let Ok((set, _)) =
        Personalities::load(&config.personalities_dir, &config.default_personality)
    {
        for p in set.iter() {
            for entry in &p.tools {
                let server = entry
                    .split_once('/')
                    .map_or(entry.as_str(), |(s, _)| s)
                    .trim();
                if !servers.iter().any(|s| s.name == server) {
                    unknown.push(format!("{} ({entry})", p.name));
                }
            }
        }
    }
    let summary = if unknown.is_empty() {
        Check::pass(
            NAME,
            format!("{} server(s) in {}", servers.len(), path.display()),
        )
    } else {
        Check::fail(
            NAME,
            format!(
                "personalities name servers that {} does not have: {}",
                path.display(),
                unknown.join(", ")
            ),
            "add those servers to TOOLS_CONFIG's file, or fix the personalities' tools entries",
        )
    };
    let probes = servers.iter().map(|server| async move {
        const NAME: &str = "tool-server";
        let what = format!(
            "{} ({} {})",
            server.name,
            server.transport.kind(),
            server.transport.describe()
        );
        let mut check = match crate::tools::probe(server, http).await {
            Ok(tools) => {
                let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
                let mut check = Check::pass(
                    NAME,
                    format!("{what}: {} tool(s): {}", names.len(), names.join(", ")),
                );
                check.tools = Some(
                    tools
                        .iter()
                        .map(|t| ToolLine {
                            name: t.name.clone(),
                            description: t.description.clone(),
                            confirm: server.confirm.contains(&t.name),
                        })
                        .collect(),
                );
                check
            }
            Err(e) => Check::fail(
                NAME,
                format!("{what}: {e:#}"),
                "check the server's command and args (stdio) or url and headers (HTTP) in TOOLS_CONFIG's file; run the command by hand to see its errors",
            ),
        };
        check.server = Some(server.name.clone());
        check
    });
    let mut checks = vec![summary];
    checks.extend(futures_util::future::join_all(probes).await);
    checks
}

/// Webhook mode needs `WEBHOOK_SECRET`; `ALLOW_UNSIGNED_WEBHOOKS=true` lets `serve` start
/// without it, but it is still a failed check: anyone could post events.
fn check_webhook_secret(config: &Config) -> Check {
    const NAME: &str = "webhook-secret";
    if config.mode == Mode::Websocket {
        return Check::skip(NAME, "MODE=websocket: no webhook is received");
    }
    let fix = "set WEBHOOK_SECRET to a long random string (e.g. `openssl rand -hex 32`), then `webex-chatbot webhooks register`";
    match (&config.webhook_secret, config.allow_unsigned_webhooks) {
        (Some(_), _) => Check::pass(NAME, "WEBHOOK_SECRET is set: every webhook must be signed"),
        (None, true) => Check::fail(
            NAME,
            "ALLOW_UNSIGNED_WEBHOOKS=true and WEBHOOK_SECRET is not set: /webhook accepts unsigned requests from anyone",
            format!("{fix}, and remove ALLOW_UNSIGNED_WEBHOOKS"),
        ),
        (None, false) => Check::fail(
            NAME,
            "WEBHOOK_SECRET is not set: `serve` refuses to start in webhook mode",
            format!("{fix} (or use MODE=websocket)"),
        ),
    }
}

/// `/metrics` is open unless `METRICS_TOKEN` is set; optional, so never a failure.
fn check_metrics(config: &Config) -> Check {
    const NAME: &str = "metrics";
    match &config.metrics_token {
        Some(_) => Check::pass(
            NAME,
            "METRICS_TOKEN is set: /metrics requires Authorization: Bearer <token>",
        ),
        None => Check::skip(
            NAME,
            "METRICS_TOKEN is not set: /metrics answers anyone who reaches the port (set it, or keep the port private)",
        ),
    }
}

async fn timed(name: &'static str, check: impl Future<Output = Check>) -> Check {
    tokio::time::timeout(NETWORK_TIMEOUT, check)
        .await
        .unwrap_or_else(|_| timed_out(name))
}

fn timed_out(name: &'static str) -> Check {
    Check::fail(
        name,
        format!("no answer within {}s", NETWORK_TIMEOUT.as_secs()),
        "check the network path (firewall, proxy: HTTPS_PROXY/NO_PROXY)",
    )
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn date(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

/// Few, short retries: a doctor run should answer in seconds, not minutes.
fn doctor_retry() -> webex::RetryPolicy {
    webex::RetryPolicy {
        max_retries: 1,
        base_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(1),
        default_retry_after: Duration::from_secs(1),
        max_retry_after: Duration::from_secs(2),
        not_found_retries: 0,
        not_found_delay: Duration::from_millis(0),
    }
}

// ---- Proxies -------------------------------------------------------------------

/// The proxy variables, in the order reqwest (through hyper-util's matcher) reads them.
const PROXY_VARS: [(&str, &str); 3] = [
    ("HTTPS_PROXY", "https_proxy"),
    ("HTTP_PROXY", "http_proxy"),
    ("ALL_PROXY", "all_proxy"),
];

/// How a call to `url` leaves this machine: `direct`, or `via scheme://host:port`. Asks
/// the very matcher reqwest builds its clients with, so the answer is what `serve` does.
/// The proxy's user name and password are never part of the answer.
pub(crate) fn proxy_route(url: &url::Url) -> String {
    let Ok(uri) = url.as_str().parse::<axum::http::Uri>() else {
        return "direct".to_owned();
    };
    match hyper_util::client::proxy::matcher::Matcher::from_system().intercept(&uri) {
        None => "direct".to_owned(),
        Some(intercept) => format!("via {}", proxy_address(intercept.uri())),
    }
}

/// `scheme://host:port` of a proxy URI, without credentials or path.
fn proxy_address(uri: &axum::http::Uri) -> String {
    let scheme = uri.scheme_str().unwrap_or("http");
    let port = uri.port_u16().unwrap_or(match scheme {
        "https" => 443,
        "socks5" | "socks5h" => 1080,
        _ => 80,
    });
    format!("{scheme}://{}:{port}", uri.host().unwrap_or("?"))
}

/// A proxy variable that is set but that reqwest cannot read (it then goes direct,
/// silently). Names the variable only: its value may hold a password.
fn unreadable_proxy_var() -> Option<&'static str> {
    PROXY_VARS.iter().find_map(|(upper, lower)| {
        let (name, value) = [upper, lower]
            .into_iter()
            .find_map(|name| std::env::var(name).ok().map(|v| (*name, v)))?;
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        let matcher = hyper_util::client::proxy::matcher::Matcher::builder()
            .all(value.to_owned())
            .build();
        let probe = axum::http::Uri::from_static("http://example.com/");
        matcher.intercept(&probe).is_none().then_some(name)
    })
}

fn proxy_check(name: &'static str, routes: &[(&str, &url::Url)]) -> Check {
    let detail = routes
        .iter()
        .map(|(what, url)| {
            format!(
                "{what} {}: {}",
                url.as_str().trim_end_matches('/'),
                proxy_route(url)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    match unreadable_proxy_var() {
        Some(var) => Check::fail(
            name,
            format!("{var} is set but is not a proxy URL, so it is ignored; {detail}"),
            format!(
                "set {var} to the proxy's URL, e.g. http://proxy.example.com:3128 (credentials: http://user:password@proxy.example.com:3128), or unset it"
            ),
        ),
        None => Check::pass(name, detail),
    }
}

/// The route of the Webex REST calls (`WEBEX_API_URL`).
fn check_proxy_webex(config: &Config) -> Check {
    proxy_check("proxy-webex", &[("Webex", &config.webex_api_url)])
}

/// The route of the LLM calls (the provider's URL, and the fallback's when there is one).
fn check_proxy_llm(config: &Config) -> Check {
    let primary = config.llm.resolved_base_url();
    let fallback = config
        .llm_fallback
        .as_ref()
        .and_then(llm::ProviderConfig::resolved_base_url);
    let mut routes = Vec::new();
    if let Some(url) = &primary {
        routes.push(("LLM", url));
    }
    if let Some(url) = &fallback {
        routes.push(("LLM fallback", url));
    }
    if routes.is_empty() {
        return Check::skip("proxy-llm", "the LLM has no URL (see llm)");
    }
    proxy_check("proxy-llm", &routes)
}

// ---- Webex ---------------------------------------------------------------------

async fn check_token(config: &Config, http: &reqwest::Client) -> (Check, Option<webex::Client>) {
    const NAME: &str = "token";
    // The only way this fails is a missing token.
    let Ok(client) = crate::startup::webex_client_with(config, http.clone(), doctor_retry()) else {
        return (
            Check::fail(
                NAME,
                "WEBEX_BOT_TOKEN is not set",
                "set WEBEX_BOT_TOKEN to the bot's access token (developer.webex.com → My Webex Apps → your bot)",
            ),
            None,
        );
    };
    match client.me().await {
        Ok(me) if me.person_type.as_deref() == Some("bot") => {
            let email = me.emails.first().map(String::as_str).unwrap_or("no email");
            (
                Check::pass(
                    NAME,
                    format!("valid; the bot is {} ({email})", me.display_name),
                ),
                Some(client),
            )
        }
        Ok(me) => (
            Check::fail(
                NAME,
                format!(
                    "the token belongs to {} ({}), a {}, not a bot",
                    me.display_name,
                    me.emails.first().map(String::as_str).unwrap_or("no email"),
                    me.person_type
                        .as_deref()
                        .unwrap_or("account of unknown type")
                ),
                "create a bot at developer.webex.com/my-apps/new/bot and use its token (a personal token expires within hours and the bot would answer as you)",
            ),
            None,
        ),
        Err(e) if e.status() == Some(401) => (
            Check::fail(
                NAME,
                format!("Webex refused the token: {e}"),
                "the token is wrong or was regenerated: copy the bot's current access token from developer.webex.com into WEBEX_BOT_TOKEN",
            ),
            None,
        ),
        Err(e) => (
            Check::fail(
                NAME,
                format!(
                    "GET {}/people/me failed: {}",
                    config.webex_api_url.as_str().trim_end_matches('/'),
                    error_chain(&e)
                ),
                "check the network path to Webex (firewall, HTTPS_PROXY) and WEBEX_API_URL",
            ),
            None,
        ),
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

async fn check_webhook(config: &Config, client: &webex::Client) -> Check {
    const NAME: &str = "webhook";
    if config.mode == Mode::Websocket {
        return Check::skip(NAME, "MODE=websocket: no webhook is used");
    }
    let Some(public_url) = &config.bot_public_url else {
        return Check::skip(
            NAME,
            "BOT_PUBLIC_URL is not set, so this bot registers no webhook",
        );
    };
    let target = registration::target_url(public_url);
    let existing = match client.list_webhooks().await {
        Ok(list) => list,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot list webhooks: {}", error_chain(&e)),
                "check the network path to Webex and the token",
            );
        }
    };
    let plan = registration::plan(&existing, &target);
    let register =
        "run `webex-chatbot webhooks register` (or restart the service: it registers at startup)";
    let inactive = registration::SUBSCRIPTIONS
        .iter()
        .zip(&plan.keep)
        .filter(|(_, keep)| keep.is_none())
        .find_map(|((resource, event), _)| {
            existing
                .iter()
                .find(|w| {
                    w.target_url == target
                        && w.resource == *resource
                        && w.event == *event
                        && !w.is_active()
                })
                .map(|w| (w, format!("{resource}/{event}")))
        });
    if let Some((w, which)) = inactive {
        return Check::fail(
            NAME,
            format!(
                "webhook {} at {target} is {} ({which}; Webex disables a webhook after many failed deliveries)",
                w.id,
                w.status.as_deref().unwrap_or("inactive")
            ),
            format!(
                "make {target} reachable from the internet (`webex-chatbot doctor --external`), then {register}"
            ),
        );
    }
    let missing: Vec<String> = registration::SUBSCRIPTIONS
        .iter()
        .zip(&plan.keep)
        .filter(|(_, keep)| keep.is_none())
        .map(|((resource, event), _)| format!("{resource}/{event}"))
        .collect();
    if missing.len() == registration::SUBSCRIPTIONS.len() {
        return Check::fail(
            NAME,
            format!("no active webhook points at {target}"),
            register,
        );
    }
    if !missing.is_empty() {
        return Check::fail(
            NAME,
            format!(
                "no active webhook for {} points at {target} (the bot needs one for each of messages, attachmentActions and memberships)",
                missing.join(", ")
            ),
            register,
        );
    }
    let kept: Vec<webex::WebhookId> = plan.keep.iter().flatten().cloned().collect();
    let ids: Vec<String> = kept.iter().map(ToString::to_string).collect();
    let ids = ids.join(", ");
    if !plan.delete.is_empty() {
        let others: Vec<String> = existing
            .iter()
            .filter(|w| plan.delete.contains(&w.id))
            .map(|w| format!("{} ({}/{}) -> {}", w.id, w.resource, w.event, w.target_url))
            .collect();
        return Check::fail(
            NAME,
            format!(
                "{ids} point at {target}, but {} more webhook(s) of this bot exist ({}): Webex delivers every event to each",
                others.len(),
                others.join(", ")
            ),
            "`webex-chatbot webhooks register` keeps one per event and deletes the others",
        );
    }
    let secret_differs = existing
        .iter()
        .filter(|w| kept.contains(&w.id))
        .filter_map(|w| w.secret.as_deref().map(|secret| (w, secret)))
        .find(|(_, registered)| {
            config
                .webhook_secret
                .as_ref()
                .is_some_and(|ours| *registered != ours.expose_secret())
        });
    if let Some((w, _)) = secret_differs {
        return Check::fail(
            NAME,
            format!(
                "{} ({}/{}) points at {target} but was registered with another secret than WEBHOOK_SECRET: every delivery is refused with 401",
                w.id, w.resource, w.event
            ),
            "`webex-chatbot webhooks register` updates the secret",
        );
    }
    Check::pass(
        NAME,
        format!(
            "{ids} are active and point at {target} (messages, attachmentActions, memberships)"
        ),
    )
}

/// A `/health` answer is a few hundred bytes; anything past this is not one.
const EXTERNAL_BODY_LIMIT: usize = 64 * 1024;

/// `--external`: `BOT_PUBLIC_URL/health` as Webex would reach it. That is this bot's
/// `/health` (Option A) or the relay's (Option B); both answer 200 even when degraded, so
/// the JSON `status` decides, not the HTTP code alone.
async fn check_external(config: &Config, http: &reqwest::Client, external: bool) -> Check {
    const NAME: &str = "external";
    let Some(public_url) = &config.bot_public_url else {
        return Check::skip(NAME, "BOT_PUBLIC_URL is not set");
    };
    let url = format!("{}/health", public_url.as_str().trim_end_matches('/'));
    if !external {
        return Check::skip(NAME, format!("pass --external to call {url} from here"));
    }
    let started = Instant::now();
    let response = match http.get(&url).timeout(Duration::from_secs(10)).send().await {
        Ok(response) => response,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot reach {url}: {}", error_chain(&e)),
                "check DNS, the firewall (port open to the internet), that the service runs, and that the certificate is publicly trusted (Webex refuses self-signed ones)",
            );
        }
    };
    let elsewhere = "BOT_PUBLIC_URL must lead to this bot (or its relay): check the reverse proxy or port forwarding";
    if response.status() != reqwest::StatusCode::OK {
        return Check::fail(
            NAME,
            format!("{url} answered HTTP {}", response.status().as_u16()),
            elsewhere,
        );
    }
    let body = match read_limited(response, EXTERNAL_BODY_LIMIT).await {
        Ok(body) => body,
        Err(reason) => {
            return Check::fail(NAME, format!("{url} answered 200 but {reason}"), elsewhere);
        }
    };
    let ms = started.elapsed().as_millis();
    let health: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let status = health
        .as_ref()
        .and_then(|h| h.get("status"))
        .and_then(serde_json::Value::as_str);
    // The relay's /health has a `bot` object: what it saw of this bot's /health.
    let relay_bot = health.as_ref().and_then(|h| h.get("bot"));
    match (status, relay_bot) {
        (Some("ok"), _) => Check::pass(NAME, format!("{url} answered 200 in {ms} ms, status ok")),
        (Some("degraded"), Some(bot)) => {
            let saw = match bot.get("status").and_then(serde_json::Value::as_u64) {
                Some(code) => format!("the bot's /health answered it HTTP {code}"),
                None => "it cannot reach the bot".to_owned(),
            };
            Check::fail(
                NAME,
                format!("{url} (the relay) answered 200 but status degraded: {saw}"),
                "from the relay host, check INTERNAL_BOT_URL, the firewall between relay and bot, INTERNAL_CA_PATH and the relay's client certificate (`journalctl -u webex-relay`, `webex-relay --check-config`)",
            )
        }
        (Some("degraded"), None) => Check::fail(
            NAME,
            format!("{url} answered 200 but status degraded"),
            "the bot reports its LLM or database unreachable: see the llm and database checks",
        ),
        (Some(other), _) => Check::fail(
            NAME,
            format!("{url} answered 200 but status {other:?}, neither ok nor degraded"),
            elsewhere,
        ),
        (None, _) => Check::fail(
            NAME,
            format!(
                "{url} answered 200 but not with the health report of webex-chatbot or webex-relay (no JSON status)"
            ),
            elsewhere,
        ),
    }
}

/// The body, or why it is not a health report: too large, or cut off.
async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(format!("with a body over {limit} bytes"));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(format!("its body broke off: {}", error_chain(&e))),
        }
    }
}

// ---- LLM -------------------------------------------------------------------------

async fn check_llm(config: &Config, http: &reqwest::Client) -> (Check, Check) {
    let llm = match startup::llm_client(config, http.clone()) {
        Ok(llm) => llm,
        Err(e) => {
            let fail = || Check::fail("llm", e.to_string(), "fix the LLM_* variables");
            return (
                fail(),
                Check::skip("llm-fallback", "the LLM client could not be built"),
            );
        }
    };
    let report = llm.probe().await;
    let primary = probe_check("llm", &config.llm, &report.primary, "LLM");
    let fallback = match (&config.llm_fallback, &report.fallback) {
        (Some(cfg), Some(result)) => probe_check("llm-fallback", cfg, result, "LLM_FALLBACK"),
        _ => Check::skip("llm-fallback", "LLM_FALLBACK_PROVIDER is not set"),
    };
    (primary, fallback)
}

fn probe_check(
    name: &'static str,
    cfg: &llm::ProviderConfig,
    result: &llm::ProbeResult,
    prefix: &str,
) -> Check {
    let ollama = cfg.kind == llm::ProviderKind::Ollama;
    let at = cfg
        .base_url
        .as_ref()
        .map(|u| format!(" at {}", u.as_str().trim_end_matches('/')))
        .unwrap_or_default();
    let what = format!("{}{at}", result.provider);
    if !result.reachable {
        let fix = if ollama {
            let var = if prefix == "LLM" {
                "OLLAMA_URL (or LLM_BASE_URL)".to_owned()
            } else {
                format!("{prefix}_BASE_URL")
            };
            format!(
                "start Ollama (`systemctl start ollama` or `ollama serve`), or point {var} at it"
            )
        } else {
            format!(
                "check {prefix}_API_KEY, the network path (HTTPS_PROXY) and {prefix}_BASE_URL if set"
            )
        };
        return Check::fail(
            name,
            format!(
                "{what} is not reachable: {}",
                result.error.as_deref().unwrap_or("no answer")
            ),
            fix,
        );
    }
    match result.model_available {
        Some(false) => Check::fail(
            name,
            format!(
                "{what} answers, but model {} is not available",
                result.model
            ),
            if ollama {
                format!(
                    "`ollama pull {}` on the Ollama host, or set {prefix}_MODEL to an installed model (`ollama list`)",
                    result.model
                )
            } else {
                format!("set {prefix}_MODEL to a model this key can use (docs/llm-providers.md)")
            },
        ),
        Some(true) => Check::pass(
            name,
            format!(
                "{what} answers in {} ms; model {} is available",
                result.latency_ms, result.model
            ),
        ),
        None => Check::pass(
            name,
            format!(
                "{what} answers in {} ms (model {} not checked)",
                result.latency_ms, result.model
            ),
        ),
    }
}

// ---- Local files ---------------------------------------------------------------------

fn check_tls(config: &Config, now: i64) -> Check {
    const NAME: &str = "tls";
    let Some(tls) = &config.tls else {
        return Check::skip(
            NAME,
            "TLS_CERT_PATH/TLS_KEY_PATH are not set: plain HTTP (fine behind a TLS proxy or the relay)",
        );
    };
    let not_after = match tls::certificate_not_after(&tls.cert) {
        Ok(t) => t,
        Err(e) => {
            return Check::fail(
                NAME,
                e.to_string(),
                "TLS_CERT_PATH must be a PEM certificate chain (certbot: fullchain.pem) readable by the service user",
            );
        }
    };
    if let Err(e) = tls::check_key_matches(&tls.cert, &tls.key) {
        return Check::fail(
            NAME,
            e.to_string(),
            "TLS_KEY_PATH must be the private key of TLS_CERT_PATH (certbot: privkey.pem), readable by the service user",
        );
    }
    if let Some(ca) = &tls.client_ca
        && let Err(e) = std::fs::read(ca)
    {
        return Check::fail(
            NAME,
            format!("TLS_CLIENT_CA_PATH {}: {e}", ca.display()),
            "TLS_CLIENT_CA_PATH must be a readable PEM file of CA certificates",
        );
    }
    let days_left = (not_after - now).div_euclid(SECS_PER_DAY);
    let cert = tls.cert.display();
    if not_after <= now {
        return Check::fail(
            NAME,
            format!("{cert} expired on {}", date(not_after)),
            "renew it (`certbot renew`), then `systemctl reload webex-chatbot`",
        );
    }
    if days_left < EXPIRY_MARGIN_DAYS {
        return Check::fail(
            NAME,
            format!(
                "{cert} expires on {} (in {days_left} days)",
                date(not_after)
            ),
            "renew it (`certbot renew`), then `systemctl reload webex-chatbot`; check that the renewal timer runs (`systemctl list-timers certbot`)",
        );
    }
    Check::pass(
        NAME,
        format!(
            "{cert} valid until {} ({days_left} days), key matches",
            date(not_after)
        ),
    )
}

fn check_env_file(path: &Path) -> Check {
    const NAME: &str = "env-file";
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Check::skip(
                NAME,
                format!(
                    "{} does not exist (settings come from the environment)",
                    path.display()
                ),
            );
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{}: {e}", path.display()),
                "make .env readable by the service user only",
            );
        }
    };
    env_mode_check(path, &meta)
}

#[cfg(unix)]
fn env_mode_check(path: &Path, meta: &std::fs::Metadata) -> Check {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Check::fail(
            "env-file",
            format!(
                "{} has mode {mode:03o}: other users can read the bot's secrets",
                path.display()
            ),
            format!("chmod 600 {}", path.display()),
        );
    }
    Check::pass(
        "env-file",
        format!("{} has mode {mode:03o}", path.display()),
    )
}

#[cfg(not(unix))]
fn env_mode_check(path: &Path, _meta: &std::fs::Metadata) -> Check {
    Check::skip(
        "env-file",
        format!("{}: file modes are a Unix check", path.display()),
    )
}

/// Where the database is, without credentials.
fn database_label(url: &str) -> String {
    if let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        return format!("sqlite {}", rest.split('?').next().unwrap_or(rest));
    }
    match url::Url::parse(url) {
        Ok(u) => format!(
            "postgres {}{}",
            u.host_str().unwrap_or("localhost"),
            u.path()
        ),
        Err(_) => "postgres".to_owned(),
    }
}

/// An error text with the database password (if any) masked.
fn redact_password(text: &str, url: &str) -> String {
    match url::Url::parse(url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        Some(pw) if !pw.is_empty() => text.replace(&pw, "***"),
        _ => text.to_owned(),
    }
}

async fn check_database(config: &Config) -> Check {
    const NAME: &str = "database";
    let label = database_label(&config.database_url);
    let sqlite = config.database_url.starts_with("sqlite:");
    let store = match startup::open_store(config).await {
        Ok(store) => store,
        Err(e) => {
            return Check::fail(
                NAME,
                format!(
                    "{label}: {}",
                    redact_password(&format!("{e:#}"), &config.database_url)
                ),
                if sqlite {
                    "the service user must be able to create and write the database file and its folder (run doctor as that user, from the service's working directory)"
                } else {
                    "check DATABASE_URL, that PostgreSQL runs, and that the role may create tables in the database"
                },
            );
        }
    };
    let writable = store.check_writable().await;
    store.close().await;
    match writable {
        Ok(()) => Check::pass(NAME, format!("{label}: reachable, migrated, writable")),
        Err(e) => Check::fail(
            NAME,
            format!(
                "{label} is not writable: {}",
                redact_password(&e.to_string(), &config.database_url)
            ),
            if sqlite {
                "give the service user write access to the database file, its -wal/-shm files and its folder"
            } else {
                "grant the role INSERT/UPDATE/DELETE on the bot's tables"
            },
        ),
    }
}

fn check_personalities(config: &Config) -> Check {
    const NAME: &str = "personalities";
    let dir = config.personalities_dir.display();
    match Personalities::load(&config.personalities_dir, &config.default_personality) {
        Err(e) => Check::fail(
            NAME,
            e.to_string(),
            format!(
                "PERSONALITIES_DIR ({dir}) must be a readable folder holding {}.toml (DEFAULT_PERSONALITY)",
                config.default_personality
            ),
        ),
        Ok((_, errors)) if !errors.is_empty() => Check::fail(
            NAME,
            format!(
                "{} bad file(s): {}",
                errors.len(),
                errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
            "fix or remove the files listed (format: description, system_prompt, optional temperature/model/max_tokens), then `systemctl reload webex-chatbot`",
        ),
        Ok((set, _)) => {
            let names: Vec<&str> = set.iter().map(|p| p.name.as_str()).collect();
            Check::pass(
                NAME,
                format!(
                    "{} in {dir} ({}); default: {}",
                    names.len(),
                    names.join(", "),
                    set.default_personality().name
                ),
            )
        }
    }
}

fn check_admins(config: &Config) -> Check {
    const NAME: &str = "admins";
    if config.admin_emails.is_empty() {
        return Check::fail(
            NAME,
            "ADMIN_EMAILS is empty: nobody can approve users or run admin commands in Webex",
            "set ADMIN_EMAILS=you@example.com (comma-separated for several)",
        );
    }
    let list: Vec<&str> = config.admin_emails.iter().map(|e| e.as_str()).collect();
    Check::pass(
        NAME,
        format!("{} admin(s): {}", list.len(), list.join(", ")),
    )
}

fn check_log_folder(config: &Config) -> Check {
    const NAME: &str = "log-folder";
    let Some(file) = &config.log_file else {
        return Check::skip(NAME, "LOG_FILE is empty: logs go to stdout (journald) only");
    };
    let folder = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let fix = format!(
        "create {} and give it to the service user (`install -d -o webex-chatbot -m 700 {}`), or set LOG_FILE= (empty) to log to journald only",
        folder.display(),
        folder.display()
    );
    if !folder.exists() {
        // Serving creates the folder; that works when its nearest existing parent is writable.
        let parent = folder
            .ancestors()
            .skip(1)
            .find(|p| !p.as_os_str().is_empty() && p.exists());
        let parent = parent.map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        return match probe_writable(&parent) {
            Ok(()) => Check::pass(
                NAME,
                format!(
                    "{} does not exist yet; serve creates it in {}",
                    folder.display(),
                    parent.display()
                ),
            ),
            Err(e) => Check::fail(
                NAME,
                format!(
                    "{} does not exist and {} is not writable: {e}",
                    folder.display(),
                    parent.display()
                ),
                fix,
            ),
        };
    }
    if let Err(e) = probe_writable(&folder) {
        return Check::fail(
            NAME,
            format!("{} is not writable: {e}", folder.display()),
            fix,
        );
    }
    if file.exists()
        && let Err(e) = std::fs::OpenOptions::new().append(true).open(file)
    {
        return Check::fail(
            NAME,
            format!("{} is not writable: {e}", file.display()),
            format!(
                "chown the log files in {} to the service user",
                folder.display()
            ),
        );
    }
    Check::pass(NAME, format!("{} is writable", folder.display()))
}

/// Creates and removes a file in `dir`: the only reliable test (modes, ACLs, read-only mounts).
fn probe_writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".webex-chatbot-doctor-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_is_shown_as_scheme_host_port_without_credentials() {
        for (uri, shown) in [
            (
                "http://user:s3cret@proxy.example.com:3128",
                "http://proxy.example.com:3128",
            ),
            ("http://proxy.example.com", "http://proxy.example.com:80"),
            (
                "https://user@proxy.example.com/path",
                "https://proxy.example.com:443",
            ),
            ("socks5h://10.0.0.1", "socks5h://10.0.0.1:1080"),
            ("http://[2001:db8::1]:8080", "http://[2001:db8::1]:8080"),
        ] {
            let uri: axum::http::Uri = uri.parse().unwrap();
            assert_eq!(proxy_address(&uri), shown);
        }
    }

    #[test]
    fn report_lines_and_summary() {
        let text = render(&[
            Check::pass("token", "valid"),
            Check::fail("llm", "down", "start it"),
            Check::skip("tls", "not set"),
        ]);
        assert_eq!(
            text,
            "PASS  token: valid\nFAIL  llm: down\n      fix: start it\nSKIP  tls: not set\n\n1 passed, 1 failed, 1 skipped\n"
        );
        let json = serde_json::to_value([Check::fail("llm", "down", "start it")]).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{"name": "llm", "status": "FAIL", "detail": "down", "fix": "start it"}])
        );
    }

    #[test]
    fn database_labels_never_show_credentials() {
        let cases = [
            ("sqlite://data/bot.db", "sqlite data/bot.db"),
            ("sqlite:data/bot.db?mode=rwc", "sqlite data/bot.db"),
            (
                "postgres://bot:pw-SECRET@db.internal:5432/bot",
                "postgres db.internal/bot",
            ),
        ];
        for (url, label) in cases {
            assert_eq!(database_label(url), label);
        }
        assert_eq!(
            redact_password(
                "cannot connect as bot:pw-SECRET",
                "postgres://bot:pw-SECRET@db/bot"
            ),
            "cannot connect as bot:***"
        );
    }

    #[cfg(unix)]
    #[test]
    fn env_file_modes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        assert_eq!(check_env_file(&path).status, Status::Skip);
        std::fs::write(&path, "A=1\n").unwrap();
        for (mode, status) in [
            (0o600, Status::Pass),
            (0o400, Status::Pass),
            (0o640, Status::Fail),
            (0o604, Status::Fail),
            (0o644, Status::Fail),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            let check = check_env_file(&path);
            assert_eq!(check.status, status, "mode {mode:o}: {check:?}");
        }
    }
}
