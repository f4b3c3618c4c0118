//! Keeps one webhook of this bot per event it handles, all pointing at
//! `BOT_PUBLIC_URL/webhook` with the secret (DESIGN §10.3): `messages`, `attachmentActions`
//! (card submits) and `memberships` (the bot added to a space), each `created`.
//!
//! Webex disables a webhook after 100 failed deliveries in 5 minutes and never re-enables
//! it, and an earlier deployment may have left webhooks with an old URL or secret: at
//! startup the matching ones are reconciled into one active, current webhook per event,
//! and the periodic check re-activates or re-creates each.

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::state::WebhookStatus;

/// The name this bot gives its webhooks; webhooks with this name are considered its own.
pub const WEBHOOK_NAME: &str = "webex-chatbot";

/// The events the bot registers a webhook for, as `(resource, event)`; the first is the
/// one `/health.webhook.id` names.
pub const SUBSCRIPTIONS: [(&str, &str); 3] = [
    ("messages", "created"),
    ("attachmentActions", "created"),
    ("memberships", "created"),
];

/// `BOT_PUBLIC_URL` + `/webhook`, whether or not the URL ends with a slash.
pub fn target_url(public_url: &Url) -> String {
    format!("{}/webhook", public_url.as_str().trim_end_matches('/'))
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Per subscription (in [`SUBSCRIPTIONS`] order): an active, matching webhook to keep
    /// (updated so its secret is current), or `None` to create one.
    pub keep: Vec<Option<webex::WebhookId>>,
    /// Stale webhooks of this bot (same name or same target) to delete: other URLs, other
    /// events, filters, inactive ones, duplicates.
    pub delete: Vec<webex::WebhookId>,
}

/// Whether `w` is the bot's webhook for `(resource, event)` at `target` (any status).
fn matches(w: &webex::Webhook, target: &str, (resource, event): (&str, &str)) -> bool {
    w.target_url == target
        && w.resource == resource
        && w.event == event
        && w.filter.as_deref().is_none_or(str::is_empty)
}

fn is_ours(w: &webex::Webhook, target: &str) -> bool {
    w.name == WEBHOOK_NAME || w.target_url == target
}

/// Decides what to do with the existing webhooks (pure, so it is table-tested).
pub fn plan(existing: &[webex::Webhook], target: &str) -> Plan {
    let mut plan = Plan {
        keep: vec![None; SUBSCRIPTIONS.len()],
        delete: Vec::new(),
    };
    for w in existing.iter().filter(|w| is_ours(w, target)) {
        let slot = SUBSCRIPTIONS
            .iter()
            .position(|s| matches(w, target, *s) && w.is_active());
        match slot {
            Some(i) if plan.keep[i].is_none() => plan.keep[i] = Some(w.id.clone()),
            _ => plan.delete.push(w.id.clone()),
        }
    }
    plan
}

/// Applies the plan: deletes stale webhooks, updates or creates one per subscription.
pub async fn register(
    client: &webex::Client,
    public_url: &Url,
    secret: Option<&SecretString>,
) -> Result<WebhookStatus, webex::Error> {
    Ok(registered(
        register_each(client, public_url, secret).await?,
        None,
    ))
}

/// [`register`], with the webhook of each subscription (in [`SUBSCRIPTIONS`] order).
pub async fn register_each(
    client: &webex::Client,
    public_url: &Url,
    secret: Option<&SecretString>,
) -> Result<Vec<webex::Webhook>, webex::Error> {
    let target = target_url(public_url);
    let existing = client.list_webhooks().await?;
    let plan = plan(&existing, &target);
    for id in &plan.delete {
        tracing::info!(webhook_id = %id, "deleting a stale webhook of this bot");
        client.delete_webhook(id).await?;
    }
    let secret = secret.map(|s| s.expose_secret().to_owned());
    let mut webhooks = Vec::with_capacity(SUBSCRIPTIONS.len());
    for (subscription, keep) in SUBSCRIPTIONS.iter().zip(&plan.keep) {
        let webhook = match keep {
            Some(id) => set_active(client, id, &target, secret.clone()).await?,
            None => create(client, &target, *subscription, secret.clone()).await?,
        };
        tracing::info!(
            webhook_id = %webhook.id,
            target_url = %webhook.target_url,
            resource = subscription.0,
            event = subscription.1,
            kept = keep.is_some(),
            "webhook registered"
        );
        webhooks.push(webhook);
    }
    tracing::info!(removed = plan.delete.len(), "webhooks registered");
    Ok(webhooks)
}

/// The current time in RFC 3339, for `/health.webhook.checked_at`.
pub fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// How bad a webhook status is, for reporting the worst of several.
fn severity(status: &str) -> u8 {
    match status {
        "active" => 0,
        "unknown" => 1,
        "inactive" => 2,
        _ => 3,
    }
}

/// What one subscription's check saw and did.
struct Checked {
    webhook: Option<webex::Webhook>,
    /// `active`, `inactive` or `missing` after the check's fix (if the fix failed, what
    /// Webex still has).
    status: String,
    note: Option<String>,
}

/// The periodic check (`WEBHOOK_CHECK_SECS`): re-reads the webhooks; each of this bot's
/// webhooks at `BOT_PUBLIC_URL/webhook` that Webex set `inactive` is set `active` again, a
/// missing one is created again. The status is the worst the check left (`missing` over
/// `inactive` over `active`), with a note saying what it saw and did.
pub async fn check(
    client: &webex::Client,
    public_url: &Url,
    secret: Option<&SecretString>,
) -> Result<WebhookStatus, webex::Error> {
    let target = target_url(public_url);
    let existing = client.list_webhooks().await?;
    let secret = secret.map(|s| s.expose_secret().to_owned());
    let mut checked = Vec::with_capacity(SUBSCRIPTIONS.len());
    for subscription in SUBSCRIPTIONS {
        checked.push(check_one(client, &existing, &target, subscription, secret.clone()).await);
    }
    let worst = checked
        .iter()
        .map(|c| c.status.as_str())
        .max_by_key(|s| severity(s))
        .unwrap_or("active")
        .to_owned();
    let notes: Vec<String> = checked.iter().filter_map(|c| c.note.clone()).collect();
    let first = checked.into_iter().next().and_then(|c| c.webhook);
    Ok(WebhookStatus {
        registered: true,
        id: first.as_ref().map(|w| w.id.to_string()),
        target_url: Some(target),
        status: Some(worst),
        checked_at: Some(now_rfc3339()),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        websocket: None,
    })
}

async fn check_one(
    client: &webex::Client,
    existing: &[webex::Webhook],
    target: &str,
    subscription: (&'static str, &'static str),
    secret: Option<String>,
) -> Checked {
    let name = format!("{}/{}", subscription.0, subscription.1);
    let matching = |w: &&webex::Webhook| matches(w, target, subscription);
    let found = existing
        .iter()
        .filter(matching)
        .find(|w| w.is_active())
        .or_else(|| existing.iter().find(matching));
    match found {
        Some(w) if w.is_active() => Checked {
            webhook: Some(w.clone()),
            status: "active".to_owned(),
            note: None,
        },
        Some(w) => {
            tracing::warn!(webhook_id = %w.id, webhook = name, "Webex set the webhook inactive (failed deliveries); setting it active again");
            match set_active(client, &w.id, target, secret).await {
                Ok(updated) => Checked {
                    status: updated
                        .status
                        .clone()
                        .unwrap_or_else(|| "active".to_owned()),
                    webhook: Some(updated),
                    note: Some(format!(
                        "Webex had set the {name} webhook inactive; it was set active again"
                    )),
                },
                Err(e) => {
                    tracing::error!(error = %e, webhook_id = %w.id, "cannot set the webhook active again; trying again at the next check");
                    Checked {
                        webhook: Some(w.clone()),
                        status: "inactive".to_owned(),
                        note: Some(format!(
                            "could not set the {name} webhook active again: {e}"
                        )),
                    }
                }
            }
        }
        None => {
            tracing::warn!(target_url = %target, webhook = name, "the webhook is missing on Webex; creating it again");
            match create(client, target, subscription, secret).await {
                Ok(created) => Checked {
                    status: created
                        .status
                        .clone()
                        .unwrap_or_else(|| "active".to_owned()),
                    webhook: Some(created),
                    note: Some(format!(
                        "the {name} webhook was missing on Webex; it was created again"
                    )),
                },
                Err(e) => {
                    tracing::error!(error = %e, "cannot create the missing webhook; trying again at the next check");
                    Checked {
                        webhook: None,
                        status: "missing".to_owned(),
                        note: Some(format!(
                            "the {name} webhook is missing on Webex and could not be created again: {e}"
                        )),
                    }
                }
            }
        }
    }
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

/// `POST /webhooks`: this bot's webhook for `(resource, event)` at `target`.
async fn create(
    client: &webex::Client,
    target: &str,
    (resource, event): (&str, &str),
    secret: Option<String>,
) -> Result<webex::Webhook, webex::Error> {
    client
        .create_webhook(&webex::NewWebhook {
            name: WEBHOOK_NAME.to_owned(),
            target_url: target.to_owned(),
            resource: resource.to_owned(),
            event: event.to_owned(),
            filter: None,
            secret,
        })
        .await
}

/// What `/health.webhook` says of the webhooks Webex has (or just accepted): the worst
/// status, the first subscription's id.
fn registered(webhooks: Vec<webex::Webhook>, note: Option<String>) -> WebhookStatus {
    let worst = webhooks
        .iter()
        .map(|w| w.status.clone().unwrap_or_else(|| "active".to_owned()))
        .max_by_key(|s| severity(s))
        .unwrap_or_else(|| "missing".to_owned());
    let first = webhooks.into_iter().next();
    WebhookStatus {
        registered: true,
        id: first.as_ref().map(|w| w.id.to_string()),
        target_url: first.map(|w| w.target_url),
        status: Some(worst),
        checked_at: Some(now_rfc3339()),
        note,
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

    fn sub(
        id: &str,
        target: &str,
        (resource, event): (&str, &str),
        status: &str,
    ) -> webex::Webhook {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": WEBHOOK_NAME, "targetUrl": target, "resource": resource,
            "event": event, "status": status
        }))
        .unwrap()
    }

    #[test]
    fn plan_table() {
        let t = "https://bot.example.com/webhook";
        let ids = |p: &Plan| p.delete.iter().map(|i| i.to_string()).collect::<Vec<_>>();
        let kept = |p: &Plan| {
            p.keep
                .iter()
                .map(|k| k.as_ref().map(|i| i.to_string()))
                .collect::<Vec<_>>()
        };
        let [messages, actions, memberships] = SUBSCRIPTIONS;

        // Nothing there: create all three.
        let p = plan(&[], t);
        assert_eq!(kept(&p), [None, None, None]);
        assert!(p.delete.is_empty());
        // One good webhook each: keep them.
        let p = plan(
            &[
                sub("m", t, messages, "active"),
                sub("a", t, actions, "active"),
                sub("b", t, memberships, "active"),
            ],
            t,
        );
        assert_eq!(
            kept(&p),
            [Some("m".into()), Some("a".into()), Some("b".into())]
        );
        assert!(p.delete.is_empty());
        // Inactive: replaced.
        let p = plan(&[hook("a", WEBHOOK_NAME, t, "inactive")], t);
        assert_eq!(kept(&p), [None, None, None]);
        assert_eq!(ids(&p), ["a"]);
        // Old URL under our name, a duplicate, an event the bot does not handle, someone
        // else's webhook.
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
                sub("rooms", t, ("rooms", "created"), "active"),
                sub("act", t, actions, "active"),
                sub("act-dup", t, actions, "active"),
                hook(
                    "foreign",
                    "crm-sync",
                    "https://crm.example.com/hook",
                    "active",
                ),
            ],
            t,
        );
        assert_eq!(kept(&p), [Some("a".into()), Some("act".into()), None]);
        assert_eq!(ids(&p), ["old", "dup", "rooms", "act-dup"]);
    }

    #[test]
    fn the_worst_status_is_reported() {
        let t = "https://bot.example.com/webhook";
        let [messages, actions, memberships] = SUBSCRIPTIONS;
        let status = registered(
            vec![
                sub("m", t, messages, "active"),
                sub("a", t, actions, "inactive"),
                sub("b", t, memberships, "active"),
            ],
            None,
        );
        assert_eq!(status.status.as_deref(), Some("inactive"));
        assert_eq!(status.id.as_deref(), Some("m"));
        assert!(severity("missing") > severity("inactive"));
        assert!(severity("inactive") > severity("active"));
    }
}
