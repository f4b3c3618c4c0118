//! The LLM providers (`LLM_…`, `LLM_FALLBACK_…`) and what their tokens cost
//! (`LLM_PRICE_…`, `LLM_FALLBACK_PRICE_…`, DESIGN §10.6).

use std::str::FromStr;

use super::env::{ConfigError, Reader, default_url};

/// Prices per million tokens of the primary provider and of the fallback.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Prices {
    pub primary: Price,
    pub fallback: Price,
}

/// What a million tokens cost, in whatever currency the operator bills in.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Price {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// The primary provider: `LLM_PROVIDER` (default `ollama`) and its model, key and URL.
pub(super) fn primary(r: &Reader<'_>) -> Result<llm::ProviderConfig, ConfigError> {
    provider_config(
        r,
        "LLM_PROVIDER",
        Some("ollama"),
        "LLM_MODEL",
        "LLM_API_KEY",
        "LLM_BASE_URL",
    )?
    .ok_or_else(|| ConfigError::new("LLM_PROVIDER", "missing"))
}

/// The fallback provider, when `LLM_FALLBACK_PROVIDER` is set.
pub(super) fn fallback(r: &Reader<'_>) -> Result<Option<llm::ProviderConfig>, ConfigError> {
    provider_config(
        r,
        "LLM_FALLBACK_PROVIDER",
        None,
        "LLM_FALLBACK_MODEL",
        "LLM_FALLBACK_API_KEY",
        "LLM_FALLBACK_BASE_URL",
    )
}

fn provider_config(
    r: &Reader<'_>,
    kind_var: &'static str,
    kind_default: Option<&str>,
    model_var: &'static str,
    key_var: &'static str,
    url_var: &'static str,
) -> Result<Option<llm::ProviderConfig>, ConfigError> {
    let Some(raw_kind) = r.opt(kind_var).or(kind_default.map(str::to_owned)) else {
        return Ok(None);
    };
    let kind = llm::ProviderKind::from_str(&raw_kind)
        .map_err(|e| ConfigError::new(kind_var, e.to_string()))?;
    let mut base_url = r.url(url_var)?;
    // OLLAMA_URL is the plan's name for the Ollama server; LLM_BASE_URL still wins.
    if base_url.is_none() && kind == llm::ProviderKind::Ollama {
        base_url = Some(
            r.url("OLLAMA_URL")?
                .unwrap_or_else(|| default_url("http://localhost:11434")),
        );
    }
    let config = llm::ProviderConfig {
        kind,
        base_url,
        api_key: r.secret(key_var),
        model: r.opt(model_var),
    };
    config.validate().map_err(|e| match e {
        llm::ConfigError::MissingApiKey(_) => ConfigError::new(
            key_var,
            format!("required when {kind_var}={}", kind.as_str()),
        ),
        llm::ConfigError::MissingBaseUrl(_) => ConfigError::new(
            url_var,
            format!("required when {kind_var}={}", kind.as_str()),
        ),
        other => ConfigError::new(url_var, other.to_string()),
    })?;
    Ok(Some(config))
}

impl Prices {
    pub(super) fn read(r: &Reader<'_>) -> Result<Prices, ConfigError> {
        Ok(Prices {
            primary: Price {
                input_per_mtok: price(r, "LLM_PRICE_INPUT_PER_MTOK")?,
                output_per_mtok: price(r, "LLM_PRICE_OUTPUT_PER_MTOK")?,
            },
            fallback: Price {
                input_per_mtok: price(r, "LLM_FALLBACK_PRICE_INPUT_PER_MTOK")?,
                output_per_mtok: price(r, "LLM_FALLBACK_PRICE_OUTPUT_PER_MTOK")?,
            },
        })
    }
}

/// A price per million tokens: a number, 0 or more (default 0).
fn price(r: &Reader<'_>, var: &'static str) -> Result<f64, ConfigError> {
    let value: f64 = r.parse(var, 0.0)?;
    if !value.is_finite() || value < 0.0 {
        return Err(ConfigError::new(
            var,
            format!("must be a price per million tokens, 0 or more, got {value}"),
        ));
    }
    Ok(value)
}
