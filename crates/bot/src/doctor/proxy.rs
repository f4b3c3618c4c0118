//! Which proxy each outgoing call takes (`HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`), never its credentials.

use super::*;

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
pub(super) fn proxy_address(uri: &axum::http::Uri) -> String {
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
pub(super) fn unreadable_proxy_var() -> Option<&'static str> {
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

pub(super) fn proxy_check(name: &'static str, routes: &[(&str, &url::Url)]) -> Check {
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
pub(super) fn check_proxy_webex(config: &Config) -> Check {
    proxy_check("proxy-webex", &[("Webex", &config.webex_api_url)])
}

/// The route of the LLM calls (the provider's URL, and the fallback's when there is one).
pub(super) fn check_proxy_llm(config: &Config) -> Check {
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
