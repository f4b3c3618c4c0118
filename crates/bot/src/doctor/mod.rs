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

mod host;
mod providers;
mod proxy;
mod tools;
mod webex_api;

use host::*;
use providers::*;
use proxy::*;
use tools::*;
use webex_api::*;

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

/// A `/health` answer is a few hundred bytes; anything past this is not one.
const EXTERNAL_BODY_LIMIT: usize = 64 * 1024;

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
