//! Where the values come from and how they are read: the `.env` file, the [`Source`] of
//! variables, the [`Reader`] every section parses with (empty = unset), and
//! [`ConfigError`], which names the variable.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;

use secrecy::SecretString;
use url::Url;

/// A configuration problem: which variable, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {reason}")]
pub struct ConfigError {
    pub var: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub fn new(var: &'static str, reason: impl Into<String>) -> Self {
        Self {
            var,
            reason: reason.into(),
        }
    }
}

/// The settings file this process reads: `ENV_FILE` when set, else `.env` in the working
/// directory (never one in a parent folder). `doctor` checks the mode of the same file.
pub fn env_file_path() -> (PathBuf, bool) {
    match std::env::var_os("ENV_FILE").filter(|v| !v.is_empty()) {
        Some(path) => (PathBuf::from(path), true),
        None => (PathBuf::from(".env"), false),
    }
}

/// Loads [`env_file_path`] into the environment; real environment variables win (nothing
/// is overridden). A missing `.env` is fine, a missing `ENV_FILE` is a configuration
/// error naming it. Errors never quote the file's lines (they may hold secrets).
pub fn load_env_file() -> Result<(), ConfigError> {
    let (path, named) = env_file_path();
    let var = if named { "ENV_FILE" } else { ".env" };
    match dotenvy::from_path(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.not_found() && !named => Ok(()),
        Err(dotenvy::Error::LineParse(_, index)) => Err(ConfigError::new(
            var,
            format!(
                "cannot parse {} (at character {index} of a line; expected NAME=value lines)",
                path.display()
            ),
        )),
        Err(dotenvy::Error::Io(e)) => Err(ConfigError::new(
            var,
            format!("cannot read {}: {e}", path.display()),
        )),
        Err(e) => Err(ConfigError::new(
            var,
            format!("cannot load {}: {e}", path.display()),
        )),
    }
}

/// Where configuration values come from; the process environment in production, a map in tests.
pub trait Source {
    fn get(&self, name: &str) -> Option<String>;
}

/// The process environment (after `.env` was loaded into it).
pub struct ProcessEnv;

impl Source for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        HashMap::get(self, name).cloned()
    }
}

/// Reads variables, treating empty values as unset (an `.env` line `FOO=` means "not set").
pub(super) struct Reader<'a>(pub(super) &'a dyn Source);

impl Reader<'_> {
    pub(super) fn opt(&self, var: &str) -> Option<String> {
        self.0
            .get(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn parse<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.opt(var) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|e| ConfigError::new(var, format!("invalid value {raw:?}: {e}"))),
        }
    }

    pub(super) fn positive<T>(&self, var: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + Default,
        T::Err: std::fmt::Display,
    {
        let value = self.parse(var, default)?;
        if value <= T::default() {
            return Err(ConfigError::new(var, "must be greater than 0"));
        }
        Ok(value)
    }

    pub(super) fn secret(&self, var: &str) -> Option<SecretString> {
        self.opt(var).map(SecretString::from)
    }

    pub(super) fn url(&self, var: &'static str) -> Result<Option<Url>, ConfigError> {
        self.opt(var)
            .map(|raw| parse_http_url(var, &raw))
            .transpose()
    }

    pub(super) fn bool(&self, var: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.opt(var).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(
                    var,
                    format!("expected true or false, got {v:?}"),
                )),
            },
        }
    }

    pub(super) fn list(&self, var: &str) -> Vec<String> {
        self.opt(var)
            .map(|raw| {
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    }
}

pub(super) fn parse_http_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| ConfigError::new(var, format!("not a URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(var, "must start with http:// or https://"));
    }
    Ok(url)
}

/// A built-in default; the unit tests parse every one of them.
#[allow(clippy::expect_used)]
pub(super) fn default_url(literal: &'static str) -> Url {
    Url::parse(literal).expect("built-in default URLs are valid")
}
