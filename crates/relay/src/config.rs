//! The relay's configuration: environment variables (and `.env`) parsed once, before
//! anything binds, into a typed struct. Every problem names its variable.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use tls::TlsFiles;
use url::Url;

/// Defaults, also quoted by `--help` and docs/relay.md.
pub const DEFAULT_BIND_ADDR: &str = "0.0.0.0:8443";
pub const DEFAULT_RATE_LIMIT: u32 = 20;
pub const DEFAULT_FORWARD_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;

/// An API key this short is guessable; accepted, but worth a warning.
const SHORT_API_KEY: usize = 32;

/// Everything the relay needs to run. Secrets stay wrapped: `Debug` shows them redacted.
#[derive(Debug, Clone)]
pub struct Config {
    /// `BIND_ADDR`: where Webex (or the load balancer) connects.
    pub bind_addr: SocketAddr,
    /// `INTERNAL_BOT_URL`: base URL of the bot; webhooks go to `<it>/webhook`.
    pub internal_bot_url: Url,
    /// `RELAY_API_KEY`: sent to the bot as `X-Relay-Key`.
    pub relay_api_key: SecretString,
    /// `WEBEX_WEBHOOK_SECRET`: verifies `X-Spark-Signature`.
    pub webhook_secret: SecretString,
    /// `SSL_CERT_PATH` + `SSL_KEY_PATH`: HTTPS when set.
    pub tls: Option<TlsFiles>,
    /// `INTERNAL_CA_PATH`: the only CA trusted for the bot's certificate (the system roots
    /// are not used when it is set).
    pub internal_ca: Option<PathBuf>,
    /// `INTERNAL_CLIENT_CERT_PATH` + `INTERNAL_CLIENT_KEY_PATH`: the relay's certificate
    /// for mTLS to the bot.
    pub internal_client_cert: Option<ClientCertFiles>,
    /// `RELAY_RATE_LIMIT`: requests per second per source address; `None` = off (`0`).
    pub rate_limit: Option<NonZeroU32>,
    /// `RELAY_FORWARD_TIMEOUT_SECS`: one forward to the bot, end to end.
    pub forward_timeout: Duration,
    /// `RELAY_MAX_BODY_BYTES`: larger webhook bodies get 413.
    pub max_body_bytes: usize,
    /// `LOG_LEVEL`.
    pub log_level: tracing::Level,
}

/// The relay's client certificate for the bot.
#[derive(Debug, Clone)]
pub struct ClientCertFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// One bad variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarError {
    pub var: &'static str,
    pub reason: String,
}

impl fmt::Display for VarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.var, self.reason)
    }
}

/// Every bad variable at once, so one restart fixes them all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError(pub Vec<VarError>);

impl ConfigError {
    pub fn new(var: &'static str, reason: impl Into<String>) -> ConfigError {
        ConfigError(vec![VarError {
            var,
            reason: reason.into(),
        }])
    }

    /// Whether `var` is among the complaints.
    pub fn names(&self, var: &str) -> bool {
        self.0.iter().any(|e| e.var == var)
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl Config {
    /// Reads the process environment (load `.env` into it first).
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`; an empty value counts as unset, as `.env`
    /// templates often carry `NAME=` lines.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let non_empty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let mut p = Parser {
            lookup: &non_empty,
            errors: Vec::new(),
        };

        let bind_addr = p.parsed("BIND_ADDR", DEFAULT_BIND_ADDR, |v| {
            v.parse::<SocketAddr>()
                .map_err(|_| format!("{v:?} is not an address like 0.0.0.0:8443 or [::]:8443"))
        });
        let internal_bot_url = p
            .required("INTERNAL_BOT_URL")
            .and_then(|v| p.check("INTERNAL_BOT_URL", parse_bot_url(&v)));
        let relay_api_key = p
            .required("RELAY_API_KEY")
            .and_then(|v| p.check("RELAY_API_KEY", parse_api_key(v)));
        let webhook_secret = p.required("WEBEX_WEBHOOK_SECRET").map(SecretString::from);
        let tls = p
            .pair("SSL_CERT_PATH", "SSL_KEY_PATH")
            .map(|(cert, key)| TlsFiles {
                cert,
                key,
                client_ca: None,
            });
        let internal_ca = p.get("INTERNAL_CA_PATH").map(PathBuf::from);
        let internal_client_cert = p
            .pair("INTERNAL_CLIENT_CERT_PATH", "INTERNAL_CLIENT_KEY_PATH")
            .map(|(cert, key)| ClientCertFiles { cert, key });
        let rate_limit = p.parsed("RELAY_RATE_LIMIT", &DEFAULT_RATE_LIMIT.to_string(), |v| {
            v.parse::<u32>().map(NonZeroU32::new).map_err(|_| {
                format!(
                    "{v:?} is not a whole number of requests per second (0 turns the limit off)"
                )
            })
        });
        let forward_timeout = p.parsed(
            "RELAY_FORWARD_TIMEOUT_SECS",
            &DEFAULT_FORWARD_TIMEOUT_SECS.to_string(),
            |v| match v.parse::<f64>() {
                Ok(secs) if secs > 0.0 && secs <= 300.0 => Ok(Duration::from_secs_f64(secs)),
                _ => Err(format!(
                    "{v:?} is not a number of seconds between 0 and 300"
                )),
            },
        );
        let max_body_bytes = p.parsed(
            "RELAY_MAX_BODY_BYTES",
            &DEFAULT_MAX_BODY_BYTES.to_string(),
            |v| match v.parse::<usize>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("{v:?} is not a positive number of bytes")),
            },
        );
        let log_level = p.parsed("LOG_LEVEL", "INFO", parse_log_level);

        // mTLS and a private CA only mean something over https; silently ignoring them
        // would leave the operator believing the link is protected.
        if let Some(url) = &internal_bot_url
            && url.scheme() == "http"
        {
            for var in ["INTERNAL_CA_PATH", "INTERNAL_CLIENT_CERT_PATH"] {
                if (p.lookup)(var).is_some() {
                    p.error(
                        var,
                        "is set but INTERNAL_BOT_URL is http://; use https:// to the bot",
                    );
                }
            }
        }

        match (
            p.errors.is_empty(),
            bind_addr,
            internal_bot_url,
            relay_api_key,
            webhook_secret,
            rate_limit,
            forward_timeout,
            max_body_bytes,
            log_level,
        ) {
            (
                true,
                Some(bind_addr),
                Some(internal_bot_url),
                Some(relay_api_key),
                Some(webhook_secret),
                Some(rate_limit),
                Some(forward_timeout),
                Some(max_body_bytes),
                Some(log_level),
            ) => Ok(Config {
                bind_addr,
                internal_bot_url,
                relay_api_key,
                webhook_secret,
                tls,
                internal_ca,
                internal_client_cert,
                rate_limit,
                forward_timeout,
                max_body_bytes,
                log_level,
            }),
            _ => Err(ConfigError(p.errors)),
        }
    }

    /// `INTERNAL_BOT_URL/webhook`.
    pub fn bot_webhook_url(&self) -> Url {
        join(&self.internal_bot_url, "webhook")
    }

    /// `INTERNAL_BOT_URL/health`.
    pub fn bot_health_url(&self) -> Url {
        join(&self.internal_bot_url, "health")
    }

    /// Things that work but that an operator should hear about at startup.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.relay_api_key.expose_secret().len() < SHORT_API_KEY {
            warnings.push(format!(
                "RELAY_API_KEY is shorter than {SHORT_API_KEY} characters; generate one with `openssl rand -hex 32`"
            ));
        }
        if self.internal_bot_url.scheme() == "http" {
            warnings.push(
                "INTERNAL_BOT_URL is http://: the relay key and webhooks cross the network unencrypted".to_owned(),
            );
        }
        if self.tls.is_none() {
            warnings.push(
                "SSL_CERT_PATH/SSL_KEY_PATH not set: serving plain HTTP (Webex requires HTTPS, so a TLS proxy must sit in front)".to_owned(),
            );
        }
        if self.rate_limit.is_none() {
            warnings.push("RELAY_RATE_LIMIT=0: no per-address rate limit".to_owned());
        }
        warnings
    }
}

struct Parser<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<VarError>,
}

impl Parser<'_> {
    fn get(&self, var: &str) -> Option<String> {
        (self.lookup)(var)
    }

    fn error(&mut self, var: &'static str, reason: impl Into<String>) {
        self.errors.push(VarError {
            var,
            reason: reason.into(),
        });
    }

    fn required(&mut self, var: &'static str) -> Option<String> {
        let value = self.get(var);
        if value.is_none() {
            self.error(var, "is required but not set");
        }
        value
    }

    fn check<T>(&mut self, var: &'static str, result: Result<T, String>) -> Option<T> {
        result.map_err(|reason| self.error(var, reason)).ok()
    }

    fn parsed<T>(
        &mut self,
        var: &'static str,
        default: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let value = self.get(var).unwrap_or_else(|| default.to_owned());
        let result = parse(value.trim());
        self.check(var, result)
    }

    /// Two variables that only make sense together: both or neither.
    fn pair(&mut self, first: &'static str, second: &'static str) -> Option<(PathBuf, PathBuf)> {
        match (self.get(first), self.get(second)) {
            (Some(a), Some(b)) => Some((PathBuf::from(a), PathBuf::from(b))),
            (None, None) => None,
            (Some(_), None) => {
                self.error(second, format!("must be set together with {first}"));
                None
            }
            (None, Some(_)) => {
                self.error(first, format!("must be set together with {second}"));
                None
            }
        }
    }
}

fn parse_bot_url(value: &str) -> Result<Url, String> {
    let url = Url::parse(value.trim()).map_err(|e| {
        format!("{value:?} is not a URL ({e}); expected e.g. https://bot.internal:8080")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "scheme must be http or https, not {:?}",
            url.scheme()
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("has no host".to_owned());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "must not contain credentials; the relay authenticates with RELAY_API_KEY".to_owned(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not have a query or fragment; give the bot's base URL".to_owned());
    }
    Ok(url)
}

fn parse_api_key(value: String) -> Result<SecretString, String> {
    // It travels as an HTTP header value: visible ASCII only, so a stray quote or
    // newline from a .env file is caught here and not as a 401 from the bot.
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces (it is sent as a header)".to_owned());
    }
    Ok(SecretString::from(value))
}

fn parse_log_level(value: &str) -> Result<tracing::Level, String> {
    match value.to_ascii_uppercase().as_str() {
        "TRACE" => Ok(tracing::Level::TRACE),
        "DEBUG" => Ok(tracing::Level::DEBUG),
        "INFO" => Ok(tracing::Level::INFO),
        // WARNING: the original Python deployment's spelling.
        "WARN" | "WARNING" => Ok(tracing::Level::WARN),
        "ERROR" => Ok(tracing::Level::ERROR),
        _ => Err(format!(
            "{value:?} is not one of TRACE, DEBUG, INFO, WARN, ERROR"
        )),
    }
}

fn join(base: &Url, segment: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{segment}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let mut env: HashMap<String, String> = [
            ("INTERNAL_BOT_URL", "https://bot.internal:8080"),
            ("RELAY_API_KEY", "k3y-0123456789abcdef0123456789abcdef"),
            ("WEBEX_WEBHOOK_SECRET", "s3cret"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        for (k, v) in vars {
            env.insert((*k).to_owned(), (*v).to_owned());
        }
        Config::from_lookup(|name| env.get(name).cloned())
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.bind_addr, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(c.rate_limit, NonZeroU32::new(20));
        assert_eq!(c.forward_timeout, Duration::from_secs(10));
        assert_eq!(c.max_body_bytes, 1_048_576);
        assert_eq!(c.log_level, tracing::Level::INFO);
        assert!(c.tls.is_none() && c.internal_ca.is_none() && c.internal_client_cert.is_none());
        assert_eq!(
            c.bot_webhook_url().as_str(),
            "https://bot.internal:8080/webhook"
        );
        assert_eq!(
            c.bot_health_url().as_str(),
            "https://bot.internal:8080/health"
        );
    }

    #[test]
    fn bot_url_with_a_base_path_keeps_it() {
        for base in ["https://h/prefix", "https://h/prefix/"] {
            let c = config(&[("INTERNAL_BOT_URL", base)]).unwrap();
            assert_eq!(c.bot_webhook_url().as_str(), "https://h/prefix/webhook");
        }
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let c = config(&[]).unwrap();
        let debug = format!("{c:?}");
        assert!(!debug.contains("k3y-0123"), "{debug}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let cases: &[(&str, &str)] = &[
            ("INTERNAL_BOT_URL", "bot.internal:8080"),
            ("INTERNAL_BOT_URL", "ftp://bot"),
            ("INTERNAL_BOT_URL", "https://user:pw@bot"),
            ("INTERNAL_BOT_URL", "https://bot/?x=1"),
            ("RELAY_API_KEY", "has space"),
            ("RELAY_API_KEY", "\"quoted\nnewline\""),
            ("BIND_ADDR", "8443"),
            ("RELAY_RATE_LIMIT", "-1"),
            ("RELAY_RATE_LIMIT", "fast"),
            ("RELAY_FORWARD_TIMEOUT_SECS", "0"),
            ("RELAY_FORWARD_TIMEOUT_SECS", "1000"),
            ("RELAY_MAX_BODY_BYTES", "0"),
            ("RELAY_MAX_BODY_BYTES", "1MB"),
            ("LOG_LEVEL", "verbose"),
        ];
        for (var, value) in cases {
            let error = config(&[(var, value)]).unwrap_err();
            assert!(error.names(var), "{var}={value:?} → {error}");
            assert!(error.to_string().starts_with(var), "{error}");
        }
    }

    #[test]
    fn missing_required_variables_are_all_reported() {
        let error = Config::from_lookup(|_| None).unwrap_err();
        for var in ["INTERNAL_BOT_URL", "RELAY_API_KEY", "WEBEX_WEBHOOK_SECRET"] {
            assert!(error.names(var), "{error}");
        }
        let error = config(&[("WEBEX_WEBHOOK_SECRET", "  ")]).unwrap_err();
        assert!(error.names("WEBEX_WEBHOOK_SECRET"), "{error}");
    }

    #[test]
    fn paired_paths_must_come_together() {
        let error = config(&[("SSL_CERT_PATH", "/c.pem")]).unwrap_err();
        assert!(error.names("SSL_KEY_PATH"), "{error}");
        let error = config(&[("SSL_KEY_PATH", "/k.pem")]).unwrap_err();
        assert!(error.names("SSL_CERT_PATH"), "{error}");
        let error = config(&[("INTERNAL_CLIENT_KEY_PATH", "/k.pem")]).unwrap_err();
        assert!(error.names("INTERNAL_CLIENT_CERT_PATH"), "{error}");

        let c = config(&[
            ("SSL_CERT_PATH", "/c.pem"),
            ("SSL_KEY_PATH", "/k.pem"),
            ("INTERNAL_CLIENT_CERT_PATH", "/cc.pem"),
            ("INTERNAL_CLIENT_KEY_PATH", "/ck.pem"),
            ("INTERNAL_CA_PATH", "/ca.pem"),
        ])
        .unwrap();
        assert_eq!(c.tls.unwrap().key, PathBuf::from("/k.pem"));
        assert_eq!(
            c.internal_client_cert.unwrap().cert,
            PathBuf::from("/cc.pem")
        );
        assert_eq!(c.internal_ca, Some(PathBuf::from("/ca.pem")));
    }

    #[test]
    fn tls_options_for_the_bot_need_https() {
        let error = config(&[
            ("INTERNAL_BOT_URL", "http://bot:8080"),
            ("INTERNAL_CA_PATH", "/ca.pem"),
        ])
        .unwrap_err();
        assert!(error.names("INTERNAL_CA_PATH"), "{error}");
    }

    #[test]
    fn accepted_spellings() {
        let cases: &[(&str, &str)] = &[
            ("LOG_LEVEL", "debug"),
            ("LOG_LEVEL", "Warning"),
            ("LOG_LEVEL", "ERROR"),
            ("RELAY_RATE_LIMIT", "0"),
            ("RELAY_FORWARD_TIMEOUT_SECS", "0.5"),
            ("BIND_ADDR", "[::]:443"),
            ("INTERNAL_BOT_URL", "http://10.0.0.5:8080/"),
            ("SSL_CERT_PATH", ""),
        ];
        for (var, value) in cases {
            assert!(config(&[(var, value)]).is_ok(), "{var}={value:?}");
        }
        assert_eq!(
            config(&[("RELAY_RATE_LIMIT", "0")]).unwrap().rate_limit,
            None
        );
    }
}
