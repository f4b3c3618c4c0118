//! Checks that ask Webex: the token, the webhooks, the public URL as Webex reaches it, and the webhook secret.

use super::*;

/// Webhook mode needs `WEBHOOK_SECRET`; `ALLOW_UNSIGNED_WEBHOOKS=true` lets `serve` start
/// without it, but it is still a failed check: anyone could post events.
pub(super) fn check_webhook_secret(config: &Config) -> Check {
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

pub(super) async fn check_token(
    config: &Config,
    http: &reqwest::Client,
) -> (Check, Option<webex::Client>) {
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

pub(super) async fn check_webhook(config: &Config, client: &webex::Client) -> Check {
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

/// `--external`: `BOT_PUBLIC_URL/health` as Webex would reach it. That is this bot's
/// `/health` (Option A) or the relay's (Option B); both answer 200 even when degraded, so
/// the JSON `status` decides, not the HTTP code alone.
pub(super) async fn check_external(
    config: &Config,
    http: &reqwest::Client,
    external: bool,
) -> Check {
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
pub(super) async fn read_limited(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
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
