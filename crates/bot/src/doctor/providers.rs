//! The LLM providers' checks, through the same probe `/health` uses.

use super::*;

pub(super) async fn check_llm(config: &Config, http: &reqwest::Client) -> (Check, Check) {
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

pub(super) fn probe_check(
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
