//! The process itself: logs (`LOG_LEVEL`, `LOG_FILE`, `LOG_FORMAT`) and TLS on the
//! listener (`TLS_CERT_PATH`, `TLS_KEY_PATH`, `TLS_CLIENT_CA_PATH`).

use std::path::PathBuf;
use std::str::FromStr;

use super::env::{ConfigError, Reader};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Clone, Debug)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
}

/// `LOG_LEVEL` (default `INFO`).
pub(super) fn log_level(r: &Reader<'_>) -> Result<tracing::Level, ConfigError> {
    match r.opt("LOG_LEVEL") {
        None => Ok(tracing::Level::INFO),
        Some(raw) => parse_level(&raw),
    }
}

fn parse_level(raw: &str) -> Result<tracing::Level, ConfigError> {
    // "WARNING" is what Python's logging calls it; operators migrating from the plan use it.
    let normalized = match raw.to_ascii_uppercase().as_str() {
        "WARNING" => "WARN".to_owned(),
        "CRITICAL" | "FATAL" => "ERROR".to_owned(),
        other => other.to_owned(),
    };
    tracing::Level::from_str(&normalized).map_err(|_| {
        ConfigError::new(
            "LOG_LEVEL",
            format!("{raw:?} is not one of TRACE, DEBUG, INFO, WARN, ERROR"),
        )
    })
}

/// `LOG_FILE`: set to an empty value means "no file"; unset means the default path.
pub(super) fn log_file(r: &Reader<'_>) -> Option<PathBuf> {
    match r.0.get("LOG_FILE") {
        None => Some(PathBuf::from("logs/bot_server.log")),
        Some(v) if v.trim().is_empty() => None,
        Some(v) => Some(PathBuf::from(v.trim())),
    }
}

/// `LOG_FORMAT`: `text` (default) or `json`.
pub(super) fn log_format(r: &Reader<'_>) -> Result<LogFormat, ConfigError> {
    match r.opt("LOG_FORMAT").map(|v| v.to_ascii_lowercase()) {
        None => Ok(LogFormat::Text),
        Some(v) if v == "text" => Ok(LogFormat::Text),
        Some(v) if v == "json" => Ok(LogFormat::Json),
        Some(v) => Err(ConfigError::new(
            "LOG_FORMAT",
            format!("{v:?} is not one of text, json"),
        )),
    }
}

/// HTTPS on the listener: both the certificate and the key, or neither.
pub(super) fn tls(r: &Reader<'_>) -> Result<Option<TlsConfig>, ConfigError> {
    let tls = match (r.opt("TLS_CERT_PATH"), r.opt("TLS_KEY_PATH")) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(TlsConfig {
            cert: cert.into(),
            key: key.into(),
            client_ca: r.opt("TLS_CLIENT_CA_PATH").map(PathBuf::from),
        }),
        (Some(_), None) => {
            return Err(ConfigError::new(
                "TLS_KEY_PATH",
                "required when TLS_CERT_PATH is set",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                "TLS_CERT_PATH",
                "required when TLS_KEY_PATH is set",
            ));
        }
    };
    if tls.is_none() && r.opt("TLS_CLIENT_CA_PATH").is_some() {
        return Err(ConfigError::new(
            "TLS_CLIENT_CA_PATH",
            "needs TLS_CERT_PATH and TLS_KEY_PATH (client certificates need HTTPS)",
        ));
    }
    Ok(tls)
}
