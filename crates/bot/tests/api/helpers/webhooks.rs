//! Webex's webhook API with state (`/webhooks`), paged like Webex pages it.

use super::*;

/// Webex's webhook API with state: `GET /webhooks` lists what `POST` created and
/// `DELETE` did not remove, in pages of `max` (or of the fake's page size) linked with
/// `Link: <…>; rel="next"`; `POST` and `PUT` refuse a body without the fields Webex
/// requires (OpenAPI: `name`, `targetUrl`, and `resource`, `event` for `POST`), and
/// `PUT`'s `status` can only be `active`.
#[derive(Clone, Default)]
pub struct FakeWebhooks {
    pub(super) hooks: Arc<Mutex<Vec<Value>>>,
    pub(super) next: Arc<AtomicU64>,
    pub(super) page: Arc<AtomicU64>,
}

/// `resource` values `POST /webhooks` accepts (OpenAPI), plus the firehose `all`.
pub(super) const WEBHOOK_RESOURCES: &[&str] = &[
    "attachmentActions",
    "dataSources",
    "memberships",
    "messages",
    "rooms",
    "meetings",
    "recordings",
    "convergedRecordings",
    "meetingParticipants",
    "meetingTranscripts",
    "telephony_calls",
    "telephony_conference",
    "telephony_mwi",
    "uc_counters",
    "serviceApp",
    "adminBatchJobs",
    "all",
];
/// `event` values `POST /webhooks` accepts (OpenAPI), plus `all`.
pub(super) const WEBHOOK_EVENTS: &[&str] = &[
    "created",
    "updated",
    "deleted",
    "started",
    "ended",
    "joined",
    "left",
    "migrated",
    "authorized",
    "deauthorized",
    "statusChanged",
    "all",
];

/// The events the bot registers a webhook for (DESIGN §10.3).
pub const BOT_SUBSCRIPTIONS: [(&str, &str); 3] = [
    ("messages", "created"),
    ("attachmentActions", "created"),
    ("memberships", "created"),
];

/// A `messages`/`created` webhook as Webex lists it.
pub fn hook(id: &str, name: &str, target: &str, status: &str) -> Value {
    json!({"id": id, "name": name, "targetUrl": target, "resource": "messages",
           "event": "created", "status": status, "created": "2026-11-01T00:00:00.000Z"})
}

/// A webhook for `(resource, event)` as Webex lists it.
pub fn hook_for(
    id: &str,
    name: &str,
    target: &str,
    (resource, event): (&str, &str),
    status: &str,
) -> Value {
    let mut h = hook(id, name, target, status);
    h["resource"] = json!(resource);
    h["event"] = json!(event);
    h
}

/// The bot's three webhooks at `target` (ids `{prefix}-1` … `{prefix}-3`), each with the
/// secret.
pub fn bot_hooks(prefix: &str, target: &str, status: &str) -> Vec<Value> {
    BOT_SUBSCRIPTIONS
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let mut h = hook_for(
                &format!("{prefix}-{}", i + 1),
                "webex-chatbot",
                target,
                *s,
                status,
            );
            h["secret"] = json!(WEBHOOK_SECRET);
            h
        })
        .collect()
}

impl FakeWebhooks {
    pub fn with(hooks: Vec<Value>) -> FakeWebhooks {
        let fake = FakeWebhooks::default();
        *fake.hooks.lock().unwrap() = hooks;
        fake
    }

    pub fn list(&self) -> Vec<Value> {
        self.hooks.lock().unwrap().clone()
    }

    /// Lists at most `n` webhooks a page, whatever `max` asks.
    pub fn paged(self, n: u64) -> FakeWebhooks {
        self.page.store(n, Ordering::SeqCst);
        self
    }

    /// What Webex does after failed deliveries (`inactive`).
    pub fn set_status(&self, id: &str, status: &str) {
        let mut hooks = self.hooks.lock().unwrap();
        let hook = hooks.iter_mut().find(|h| h["id"] == id).unwrap();
        hook["status"] = json!(status);
    }

    /// A webhook deleted behind the bot's back (by hand, another tool).
    pub fn remove(&self, id: &str) {
        self.hooks.lock().unwrap().retain(|h| h["id"] != id);
    }

    pub async fn mount(&self, webex: &MockServer) {
        Mock::given(path_regex(r"^/webhooks(/[^/]+)?$"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(self.clone())
            .mount(webex)
            .await;
    }
}

impl Respond for FakeWebhooks {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let id = request
            .url
            .path()
            .strip_prefix("/webhooks/")
            .map(str::to_owned);
        let body = || serde_json::from_slice::<Value>(&request.body).ok();
        let mut hooks = self.hooks.lock().unwrap();
        match (request.method.as_str(), id) {
            ("GET", None) => {
                let query: std::collections::HashMap<String, String> =
                    request.url.query_pairs().into_owned().collect();
                let mut max: usize = match query.get("max").map(|m| m.parse()) {
                    None => 100,
                    Some(Ok(m)) if m > 0 => m,
                    Some(_) => return webex_error_body(400, "invalid max"),
                };
                let page = self.page.load(Ordering::SeqCst) as usize;
                if page > 0 {
                    max = max.min(page);
                }
                let from: usize = query
                    .get("cursor")
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(0);
                let items: Vec<Value> = hooks.iter().skip(from).take(max).cloned().collect();
                let mut response = ResponseTemplate::new(200);
                if from + max < hooks.len() {
                    // Absolute, like Webex's, on the host the client asked.
                    let host = request
                        .headers
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("localhost");
                    let next = format!("http://{host}/webhooks?max={max}&cursor={}", from + max);
                    response =
                        response.insert_header("Link", format!("<{next}>; rel=\"next\"").as_str());
                }
                response.set_body_json(json!({ "items": items }))
            }
            ("POST", None) => {
                let Some(body) = body() else {
                    return webex_error_body(400, "invalid JSON");
                };
                for field in ["name", "targetUrl", "resource", "event"] {
                    if !body[field].is_string() {
                        return webex_error_body(400, &format!("{field} is required"));
                    }
                }
                // The OpenAPI enums (firehose `all` too, which the file leaves out).
                if !WEBHOOK_RESOURCES.contains(&body["resource"].as_str().unwrap_or_default()) {
                    return webex_error_body(400, "resource is not a webhook resource");
                }
                if !WEBHOOK_EVENTS.contains(&body["event"].as_str().unwrap_or_default()) {
                    return webex_error_body(400, "event is not a webhook event");
                }
                let n = self.next.fetch_add(1, Ordering::SeqCst) + 1;
                let mut created = body.clone();
                created["id"] = json!(format!("WH-{n}"));
                created["status"] = json!("active");
                hooks.push(created.clone());
                ResponseTemplate::new(200).set_body_json(created)
            }
            ("PUT", Some(id)) => {
                let Some(body) = body() else {
                    return webex_error_body(400, "invalid JSON");
                };
                for field in ["name", "targetUrl"] {
                    if !body[field].is_string() {
                        return webex_error_body(400, &format!("{field} is required"));
                    }
                }
                if !body["status"].is_null() && body["status"] != "active" {
                    return webex_error_body(400, "status can only be set to active");
                }
                let Some(existing) = hooks.iter_mut().find(|h| h["id"] == id.as_str()) else {
                    return webex_error_body(404, "webhook not found");
                };
                for field in ["name", "targetUrl", "secret", "status"] {
                    if !body[field].is_null() {
                        existing[field] = body[field].clone();
                    }
                }
                ResponseTemplate::new(200).set_body_json(existing.clone())
            }
            ("DELETE", Some(id)) => {
                let before = hooks.len();
                hooks.retain(|h| h["id"] != id.as_str());
                if hooks.len() == before {
                    webex_error_body(404, "webhook not found")
                } else {
                    ResponseTemplate::new(204)
                }
            }
            _ => webex_error_body(405, "method not allowed"),
        }
    }
}
