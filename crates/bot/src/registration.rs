//! Keeps exactly one webhook of this bot pointing at `BOT_PUBLIC_URL/webhook`.
//!
//! Webex disables a webhook after 100 failed deliveries in 5 minutes and never re-enables
//! it, and an earlier deployment may have left webhooks with an old URL or secret: at
//! startup the matching ones are reconciled into one active, current webhook.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::state::WebhookStatus;

/// The name this bot gives its webhook; webhooks with this name are considered its own.
pub const WEBHOOK_NAME: &str = "webex-chatbot";

/// `BOT_PUBLIC_URL` + `/webhook`, whether or not the URL ends with a slash.
pub fn target_url(public_url: &Url) -> String {
    format!("{}/webhook", public_url.as_str().trim_end_matches('/'))
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// An active, matching webhook to keep (updated so its secret is current).
    pub keep: Option<webex::WebhookId>,
    /// Stale webhooks of this bot (same name or same target) to delete.
    pub delete: Vec<webex::WebhookId>,
}

fn is_firehose_match(w: &webex::Webhook, target: &str) -> bool {
    w.target_url == target
        && w.resource == "messages"
        && w.event == "created"
        && w.filter.as_deref().is_none_or(str::is_empty)
        && w.status.as_deref().is_none_or(|s| s == "active")
}

/// Decides what to do with the existing webhooks (pure, so it is table-tested).
pub fn plan(existing: &[webex::Webhook], target: &str) -> Plan {
    let mut plan = Plan::default();
    for w in existing {
        let ours = w.name == WEBHOOK_NAME || w.target_url == target;
        if !ours {
            continue;
        }
        if plan.keep.is_none() && is_firehose_match(w, target) {
            plan.keep = Some(w.id.clone());
        } else {
            plan.delete.push(w.id.clone());
        }
    }
    plan
}

/// Applies the plan: deletes stale webhooks, updates or creates the one to keep.
pub async fn register(
    client: &webex::Client,
    public_url: &Url,
    secret: Option<&SecretString>,
) -> Result<WebhookStatus, webex::Error> {
    let target = target_url(public_url);
    let existing = client.list_webhooks().await?;
    let plan = plan(&existing, &target);
    for id in &plan.delete {
        tracing::info!(webhook_id = %id, "deleting a stale webhook of this bot");
        client.delete_webhook(id).await?;
    }
    let secret = secret.map(|s| s.expose_secret().to_owned());
    let webhook = match &plan.keep {
        Some(id) => set_active(client, id, &target, secret).await?,
        None => create(client, &target, secret).await?,
    };
    tracing::info!(
        webhook_id = %webhook.id,
        target_url = %webhook.target_url,
        kept = plan.keep.is_some(),
        removed = plan.delete.len(),
        "webhook registered"
    );
    Ok(registered(webhook, None))
}

/// The current time in RFC 3339, for `/health.webhook.checked_at`.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The periodic check (`WEBHOOK_CHECK_SECS`): re-reads the webhooks; this bot's webhook at
/// `BOT_PUBLIC_URL/webhook` that Webex set `inactive` is set `active` again, a missing one
/// is created again. The status says what the check saw and what it did.
pub async fn check(
    client: &webex::Client,
    public_url: &Url,
    secret: Option<&SecretString>,
) -> Result<WebhookStatus, webex::Error> {
    let target = target_url(public_url);
    let existing = client.list_webhooks().await?;
    let matching = |w: &&webex::Webhook| {
        w.target_url == target
            && w.resource == "messages"
            && w.event == "created"
            && w.filter.as_deref().is_none_or(str::is_empty)
    };
    let found = existing
        .iter()
        .filter(matching)
        .find(|w| w.is_active())
        .or_else(|| existing.iter().find(matching));
    let secret = secret.map(|s| s.expose_secret().to_owned());
    let (webhook, note) = match found {
        Some(w) if w.is_active() => (w.clone(), None),
        Some(w) => {
            tracing::warn!(webhook_id = %w.id, "Webex set the webhook inactive (failed deliveries); setting it active again");
            let updated = set_active(client, &w.id, &target, secret).await;
            let updated = match updated {
                Ok(updated) => updated,
                Err(e) => return Ok(unfixed(w, "inactive", "set it active again", &e)),
            };
            (
                updated,
                Some("Webex had set the webhook inactive; it was set active again".to_owned()),
            )
        }
        None => {
            tracing::warn!(target_url = %target, "the webhook is missing on Webex; creating it again");
            let created = create(client, &target, secret).await;
            let created = match created {
                Ok(created) => created,
                Err(e) => {
                    tracing::error!(error = %e, "cannot create the missing webhook; trying again at the next check");
                    return Ok(WebhookStatus {
                        registered: true,
                        target_url: Some(target),
                        status: Some("missing".to_owned()),
                        checked_at: Some(now_rfc3339()),
                        note: Some(format!(
                            "the webhook is missing on Webex and could not be created again: {e}"
                        )),
                        ..WebhookStatus::default()
                    });
                }
            };
            (
                created,
                Some("the webhook was missing on Webex; it was created again".to_owned()),
            )
        }
    };
    Ok(registered(webhook, note))
}

/// `PUT /webhooks/{id}`: this bot's webhook at `target`, active.
async fn set_active(
    client: &webex::Client,
    id: &webex::WebhookId,
    target: &str,
    secret: Option<String>,
) -> Result<webex::Webhook, webex::Error> {
    client
        .update_webhook(
            id,
            &webex::UpdateWebhook {
                name: WEBHOOK_NAME.to_owned(),
                target_url: target.to_owned(),
                secret,
                status: Some("active".to_owned()),
            },
        )
        .await
}

/// `POST /webhooks`: this bot's `messages`/`created` webhook at `target`.
async fn create(
    client: &webex::Client,
    target: &str,
    secret: Option<String>,
) -> Result<webex::Webhook, webex::Error> {
    client
        .create_webhook(&webex::NewWebhook {
            name: WEBHOOK_NAME.to_owned(),
            target_url: target.to_owned(),
            resource: "messages".to_owned(),
            event: "created".to_owned(),
            filter: None,
            secret,
        })
        .await
}

/// What `/health.webhook` says of a webhook Webex has (or just accepted).
fn registered(webhook: webex::Webhook, note: Option<String>) -> WebhookStatus {
    WebhookStatus {
        registered: true,
        id: Some(webhook.id.to_string()),
        target_url: Some(webhook.target_url),
        status: webhook.status.or(Some("active".to_owned())),
        checked_at: Some(now_rfc3339()),
        note,
        websocket: None,
    }
}

/// What the check saw when it could not fix it.
fn unfixed(w: &webex::Webhook, status: &str, what: &str, e: &webex::Error) -> WebhookStatus {
    tracing::error!(error = %e, webhook_id = %w.id, "cannot {what}; trying again at the next check");
    WebhookStatus {
        registered: true,
        id: Some(w.id.to_string()),
        target_url: Some(w.target_url.clone()),
        status: Some(status.to_owned()),
        checked_at: Some(now_rfc3339()),
        note: Some(format!("could not {what}: {e}")),
        websocket: None,
    }
}

/// Deletes every webhook the token owns, whatever its name or target (all pages); returns
/// what was deleted.
pub async fn delete_every(client: &webex::Client) -> Result<Vec<webex::Webhook>, webex::Error> {
    let existing = client.list_webhooks().await?;
    let mut deleted = Vec::with_capacity(existing.len());
    for w in existing {
        match client.delete_webhook(&w.id).await {
            Ok(()) => deleted.push(w),
            // Gone already (another process deleted it meanwhile): nothing left to do.
            Err(e) if e.status() == Some(404) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// Deletes every webhook of this bot (by name or target); returns how many.
pub async fn delete_all(
    client: &webex::Client,
    target: Option<&str>,
) -> Result<usize, webex::Error> {
    let existing = client.list_webhooks().await?;
    let mut deleted = 0;
    for w in existing
        .iter()
        .filter(|w| w.name == WEBHOOK_NAME || Some(w.target_url.as_str()) == target)
    {
        client.delete_webhook(&w.id).await?;
        deleted += 1;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(id: &str, name: &str, target: &str, status: &str) -> webex::Webhook {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": name, "targetUrl": target, "resource": "messages",
            "event": "created", "status": status
        }))
        .unwrap()
    }

    #[test]
    fn target_url_joins_cleanly() {
        for raw in ["https://bot.example.com", "https://bot.example.com/"] {
            assert_eq!(
                target_url(&Url::parse(raw).unwrap()),
                "https://bot.example.com/webhook"
            );
        }
        assert_eq!(
            target_url(&Url::parse("https://example.com/bot/").unwrap()),
            "https://example.com/bot/webhook"
        );
    }

    #[test]
    fn plan_table() {
        let t = "https://bot.example.com/webhook";
        let ids = |p: &Plan| p.delete.iter().map(|i| i.to_string()).collect::<Vec<_>>();

        // Nothing there: create.
        assert_eq!(plan(&[], t), Plan::default());
        // One good webhook: keep it.
        let p = plan(&[hook("a", WEBHOOK_NAME, t, "active")], t);
        assert_eq!(p.keep.as_ref().map(|i| i.to_string()), Some("a".into()));
        assert!(p.delete.is_empty());
        // Inactive: replaced.
        let p = plan(&[hook("a", WEBHOOK_NAME, t, "inactive")], t);
        assert!(p.keep.is_none());
        assert_eq!(ids(&p), ["a"]);
        // Old URL under our name, a duplicate, and someone else's webhook.
        let p = plan(
            &[
                hook(
                    "old",
                    WEBHOOK_NAME,
                    "https://old.example.com/webhook",
                    "active",
                ),
                hook("a", "other-name", t, "active"),
                hook("dup", WEBHOOK_NAME, t, "active"),
                hook(
                    "foreign",
                    "crm-sync",
                    "https://crm.example.com/hook",
                    "active",
                ),
            ],
            t,
        );
        assert_eq!(p.keep.as_ref().map(|i| i.to_string()), Some("a".into()));
        assert_eq!(ids(&p), ["old", "dup"]);
    }
}
