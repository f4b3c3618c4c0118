//! The store and what it keeps: `DATABASE_URL`, `MEMORY_MAX_AGE_DAYS`.

use std::time::Duration;

use super::env::{ConfigError, Reader};

/// `DATABASE_URL` (default `sqlite://data/bot.db`): SQLite or PostgreSQL.
pub(super) fn database_url(r: &Reader<'_>) -> Result<String, ConfigError> {
    let database_url = r
        .opt("DATABASE_URL")
        .unwrap_or_else(|| "sqlite://data/bot.db".to_owned());
    if !(database_url.starts_with("sqlite:")
        || database_url.starts_with("postgres://")
        || database_url.starts_with("postgresql://"))
    {
        return Err(ConfigError::new(
            "DATABASE_URL",
            "must start with sqlite:// or postgres://",
        ));
    }
    Ok(database_url)
}

/// `MEMORY_MAX_AGE_DAYS` (default 90, fractions allowed, `0` = never).
pub(super) fn memory_max_age(r: &Reader<'_>) -> Result<Option<Duration>, ConfigError> {
    const VAR: &str = "MEMORY_MAX_AGE_DAYS";
    let days: f64 = r.parse(VAR, 90.0)?;
    if !days.is_finite() || days < 0.0 {
        return Err(ConfigError::new(
            VAR,
            format!("must be a number of days, 0 or more (0 = never), got {days}"),
        ));
    }
    if days == 0.0 {
        return Ok(None);
    }
    Duration::try_from_secs_f64(days * 86_400.0)
        .map(Some)
        .map_err(|e| ConfigError::new(VAR, format!("too large: {e}")))
}
