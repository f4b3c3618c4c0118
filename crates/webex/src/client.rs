//! The Webex REST client: people, messages and webhooks, with the retries Webex asks
//! for (429/423 after `Retry-After`, 5xx and connection errors with backoff, a lagging
//! 404 on a fresh message). Logs method, path, status and tracking id, never bodies.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, LINK, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde::de::DeserializeOwned;
use url::Url;

use crate::error::Error;
use crate::ids::{MessageId, PersonId, RoomId, WebhookId};
use crate::retry::RetryPolicy;
use crate::types::{
    AttachmentAction, Items, Listing, Message, NewCardMessage, NewMessage, NewWebhook, Person,
    Room, UpdateWebhook, Webhook,
};

/// Where and how to reach Webex.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The API root, e.g. `https://webexapis.com/v1`, with or without a trailing `/`.
    pub base_url: Url,
    pub token: SecretString,
    pub retry: RetryPolicy,
}

/// A Webex REST client. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

type ErrorObserver = Arc<dyn Fn(u16) + Send + Sync>;

#[derive(Clone)]
struct Inner {
    http: reqwest::Client,
    base_url: Url,
    token: SecretString,
    retry: RetryPolicy,
    /// How long one try may take, from connecting to the end of the answer's body.
    timeout: Duration,
    observer: Option<ErrorObserver>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.base_url.as_str())
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

/// One try's limit when [`Client::with_timeout`] is not called (`WEBEX_TIMEOUT_SECS`'s default).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Webex pages lists 100 at a time; this bounds a runaway `Link` chain.
const MAX_PAGES: usize = 1000;

/// One request as the retry loop needs it.
struct Call {
    method: Method,
    url: Url,
    body: Option<Vec<u8>>,
    /// Retry 404 (only for fetching a message a webhook just announced).
    retry_not_found: bool,
    context: &'static str,
}

impl Client {
    pub fn new(http: reqwest::Client, config: ClientConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                http,
                base_url: config.base_url,
                token: config.token,
                retry: config.retry,
                timeout: DEFAULT_TIMEOUT,
                observer: None,
            }),
        }
    }

    /// Limits each try of a request to `timeout` (connect, send, answer and its body). A
    /// `GET`/`PUT`/`DELETE` that times out is retried like a 5xx; a `POST` is not (Webex may
    /// have acted on it: the caller decides), and fails with [`Error::Transport`].
    pub fn with_timeout(self, timeout: Duration) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.timeout = timeout;
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Called with the HTTP status of every non-2xx answer (also those that are
    /// retried), for metrics.
    pub fn with_error_observer(self, observer: Arc<dyn Fn(u16) + Send + Sync>) -> Self {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        inner.observer = Some(observer);
        Self {
            inner: Arc::new(inner),
        }
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// `GET /people/me`: the bot itself.
    pub async fn me(&self) -> Result<Person, Error> {
        let url = self.url(&["people", "me"])?;
        self.json(Call::get(url, "people/me answer")).await
    }

    /// `GET /people/{id}`.
    pub async fn get_person(&self, id: &PersonId) -> Result<Person, Error> {
        let url = self.url(&["people", id.as_str()])?;
        self.json(Call::get(url, "people answer")).await
    }

    /// `GET /messages/{id}`. A 404 is retried `not_found_retries` times, because the
    /// REST side can lag the webhook that announced the message.
    pub async fn get_message(&self, id: &MessageId) -> Result<Message, Error> {
        let url = self.url(&["messages", id.as_str()])?;
        let mut call = Call::get(url, "message answer");
        call.retry_not_found = true;
        self.json(call).await
    }

    /// `GET /messages?roomId=…[&parentId=…]&max=…`: the newest messages of a room (or of
    /// one thread), newest first; one page. Used to check whether a reply already went
    /// out before posting it again after a crash.
    pub async fn list_messages(
        &self,
        room_id: &RoomId,
        parent_id: Option<&MessageId>,
        max: u32,
    ) -> Result<Vec<Message>, Error> {
        let mut url = self.url(&["messages"])?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("roomId", room_id.as_str());
            if let Some(parent) = parent_id {
                query.append_pair("parentId", parent.as_str());
            }
            query.append_pair("max", &max.clamp(1, 100).to_string());
        }
        let page: Items<Message> = self.json(Call::get(url, "message list")).await?;
        Ok(page.items)
    }

    /// `POST /messages`.
    pub async fn create_message(&self, msg: &NewMessage) -> Result<Message, Error> {
        let url = self.url(&["messages"])?;
        self.json(Call::with_body(Method::POST, url, msg, "message answer")?)
            .await
    }

    /// `POST /messages` with one Adaptive Card and its markdown fallback. Like every
    /// `POST`, not retried after a timeout (Webex may have posted it).
    pub async fn create_card_message(&self, msg: &NewCardMessage) -> Result<Message, Error> {
        let url = self.url(&["messages"])?;
        self.json(Call::with_body(Method::POST, url, msg, "message answer")?)
            .await
    }

    /// `GET /attachment/actions/{id}`: a submitted card's inputs. A 404 is retried like a
    /// fresh message's: the REST side can lag the webhook that announced the action.
    pub async fn get_attachment_action(&self, id: &str) -> Result<AttachmentAction, Error> {
        let url = self.url(&["attachment", "actions", id])?;
        let mut call = Call::get(url, "attachment action answer");
        call.retry_not_found = true;
        self.json(call).await
    }

    /// `PUT /messages/{id}` with `{roomId, markdown}`: edits one of the bot's messages
    /// (Webex allows 10 edits per message).
    pub async fn edit_message(
        &self,
        id: &MessageId,
        room_id: &RoomId,
        markdown: &str,
    ) -> Result<Message, Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Edit<'a> {
            room_id: &'a RoomId,
            markdown: &'a str,
        }
        let url = self.url(&["messages", id.as_str()])?;
        let body = Edit { room_id, markdown };
        self.json(Call::with_body(Method::PUT, url, &body, "message answer")?)
            .await
    }

    /// `DELETE /messages/{id}`.
    pub async fn delete_message(&self, id: &MessageId) -> Result<(), Error> {
        let url = self.url(&["messages", id.as_str()])?;
        self.send(Call::new(Method::DELETE, url, "message delete"))
            .await
            .map(drop)
    }

    /// `GET /webhooks?max=100`, following `Link: <…>; rel="next"` to the last page.
    pub async fn list_webhooks(&self) -> Result<Vec<Webhook>, Error> {
        let mut url = self.url(&["webhooks"])?;
        url.query_pairs_mut().append_pair("max", "100");
        let mut webhooks = Vec::new();
        let mut seen = HashSet::new();
        for _ in 0..MAX_PAGES {
            seen.insert(url.clone());
            let response = self.send(Call::get(url.clone(), "webhook list")).await?;
            let next = next_link(response.headers());
            let page: Items<Webhook> = decode(response, "webhook list").await?;
            webhooks.extend(page.items);
            let Some(next) = next else {
                return Ok(webhooks);
            };
            let next = url
                .join(&next)
                .map_err(|e| Error::InvalidUrl(format!("webhook list next link: {e}")))?;
            // The token goes with every request: never follow a link to another host.
            if next.origin() != self.inner.base_url.origin() {
                return Err(Error::InvalidUrl(format!(
                    "webhook list next link points to another host: {}",
                    next.origin().ascii_serialization()
                )));
            }
            if seen.contains(&next) {
                tracing::warn!(
                    path = next.path(),
                    "webhook list links back to a page already read"
                );
                return Ok(webhooks);
            }
            url = next;
        }
        tracing::warn!(pages = MAX_PAGES, "webhook list truncated");
        Ok(webhooks)
    }

    /// `POST /webhooks`.
    pub async fn create_webhook(&self, w: &NewWebhook) -> Result<Webhook, Error> {
        let url = self.url(&["webhooks"])?;
        self.json(Call::with_body(Method::POST, url, w, "webhook answer")?)
            .await
    }

    /// `PUT /webhooks/{id}`; `status: Some("active")` re-enables a disabled webhook.
    pub async fn update_webhook(
        &self,
        id: &WebhookId,
        w: &UpdateWebhook,
    ) -> Result<Webhook, Error> {
        let url = self.url(&["webhooks", id.as_str()])?;
        self.json(Call::with_body(Method::PUT, url, w, "webhook answer")?)
            .await
    }

    /// `DELETE /webhooks/{id}`.
    pub async fn delete_webhook(&self, id: &WebhookId) -> Result<(), Error> {
        let url = self.url(&["webhooks", id.as_str()])?;
        self.send(Call::new(Method::DELETE, url, "webhook delete"))
            .await
            .map(drop)
    }

    /// The base URL plus path segments, each percent-encoded (ids are base64 and may
    /// hold a `/`), whether or not the base ends with `/`.
    fn url(&self, segments: &[&str]) -> Result<Url, Error> {
        let mut url = self.inner.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| {
                Error::InvalidUrl(format!(
                    "{} cannot be a base URL",
                    self.inner.base_url.scheme()
                ))
            })?
            .pop_if_empty()
            .extend(segments);
        Ok(url)
    }

    async fn json<T: DeserializeOwned>(&self, call: Call) -> Result<T, Error> {
        let context = call.context;
        let response = self.send(call).await?;
        decode(response, context).await
    }

    /// Sends `call`, retrying as the policy says; returns the first 2xx answer.
    async fn send(&self, call: Call) -> Result<Response, Error> {
        let policy = &self.inner.retry;
        let path = call.url.path().to_owned();
        let method = call.method.clone();
        let mut retries = 0;
        let mut not_found_retries = 0;
        loop {
            let mut request = self
                .inner
                .http
                .request(call.method.clone(), call.url.clone())
                .bearer_auth(self.inner.token.expose_secret())
                .timeout(self.inner.timeout)
                .header(ACCEPT, "application/json");
            if let Some(body) = &call.body {
                request = request
                    .header(CONTENT_TYPE, "application/json")
                    .body(body.clone());
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(error)
                    if retries < policy.max_retries && is_transient(&call.method, &error) =>
                {
                    let wait = policy.backoff(retries);
                    retries += 1;
                    tracing::warn!(%method, path, retry = retries, wait_ms = millis(wait), error = %error, "Webex unreachable; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(error) => {
                    tracing::warn!(%method, path, error = %error, "Webex unreachable");
                    return Err(Error::Transport(error));
                }
            };
            let status = response.status();
            if status.is_success() {
                tracing::debug!(%method, path, status = status.as_u16(), "Webex request done");
                return Ok(response);
            }
            if let Some(observer) = &self.inner.observer {
                observer(status.as_u16());
            }
            let retry_after = header(response.headers(), RETRY_AFTER.as_str());
            let failure = Failure::read(response).await;
            let can_retry = retries < policy.max_retries;
            let wait = match status {
                StatusCode::TOO_MANY_REQUESTS | StatusCode::LOCKED if can_retry => {
                    retries += 1;
                    Some(policy.retry_after(retry_after.as_deref()))
                }
                StatusCode::INTERNAL_SERVER_ERROR
                | StatusCode::BAD_GATEWAY
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
                    if can_retry =>
                {
                    retries += 1;
                    Some(policy.backoff(retries - 1))
                }
                StatusCode::NOT_FOUND
                    if call.retry_not_found && not_found_retries < policy.not_found_retries =>
                {
                    not_found_retries += 1;
                    Some(policy.not_found_wait(not_found_retries - 1))
                }
                _ => None,
            };
            let tracking_id = failure.tracking_id.as_deref().unwrap_or_default();
            if let Some(wait) = wait {
                tracing::warn!(%method, path, status = status.as_u16(), tracking_id, wait_ms = millis(wait), "Webex request failed; retrying");
                tokio::time::sleep(wait).await;
                continue;
            }
            tracing::warn!(%method, path, status = status.as_u16(), tracking_id, "Webex request failed");
            return Err(if status == StatusCode::TOO_MANY_REQUESTS {
                Error::RateLimited {
                    retry_after: policy.retry_after(retry_after.as_deref()),
                    tracking_id: failure.tracking_id,
                }
            } else {
                Error::Http {
                    status: status.as_u16(),
                    message: failure
                        .message
                        .or_else(|| status.canonical_reason().map(str::to_owned))
                        .unwrap_or_default(),
                    tracking_id: failure.tracking_id,
                }
            });
        }
    }
}

impl Call {
    fn new(method: Method, url: Url, context: &'static str) -> Self {
        Self {
            method,
            url,
            body: None,
            retry_not_found: false,
            context,
        }
    }

    fn get(url: Url, context: &'static str) -> Self {
        Self::new(Method::GET, url, context)
    }

    fn with_body(
        method: Method,
        url: Url,
        body: &impl Serialize,
        context: &'static str,
    ) -> Result<Self, Error> {
        let body = serde_json::to_vec(body).map_err(|source| Error::Decode {
            context: "request body",
            source,
        })?;
        Ok(Self {
            body: Some(body),
            ..Self::new(method, url, context)
        })
    }
}

/// What a non-2xx answer says about itself.
pub(crate) struct Failure {
    message: Option<String>,
    tracking_id: Option<String>,
}

impl Failure {
    /// The error for a failed answer (`retry_after`: what a 429 asked for).
    pub(crate) fn into_error(self, status: StatusCode, retry_after: Duration) -> Error {
        if status == StatusCode::TOO_MANY_REQUESTS {
            Error::RateLimited {
                retry_after,
                tracking_id: self.tracking_id,
            }
        } else {
            Error::Http {
                status: status.as_u16(),
                message: self
                    .message
                    .or_else(|| status.canonical_reason().map(str::to_owned))
                    .unwrap_or_default(),
                tracking_id: self.tracking_id,
            }
        }
    }

    pub(crate) async fn read(response: Response) -> Self {
        let header_tracking_id = header(response.headers(), "trackingid");
        // The body is only mined for Webex's message and tracking id, never logged.
        let body: serde_json::Value = match response.bytes().await {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
            Err(_) => serde_json::Value::Null,
        };
        let field = |value: &serde_json::Value, key: &str| {
            value
                .get(key)
                .and_then(serde_json::Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let message = field(&body, "message").or_else(|| {
            body.get("errors")
                .and_then(|errors| errors.get(0))
                .and_then(|first| field(first, "description"))
        });
        Self {
            message,
            tracking_id: header_tracking_id.or_else(|| field(&body, "trackingId")),
        }
    }
}

async fn decode<T: DeserializeOwned>(
    response: Response,
    context: &'static str,
) -> Result<T, Error> {
    let bytes = response.bytes().await.map_err(Error::Transport)?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Decode { context, source })
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// Errors worth another try: the request may not have reached Webex, or timed out. A
/// `POST` is tried again only when it cannot have reached Webex (no connection): after a
/// timeout it may have been carried out, and repeating it would post a message twice.
fn is_transient(method: &Method, error: &reqwest::Error) -> bool {
    if method == Method::POST {
        return error.is_connect();
    }
    error.is_connect() || error.is_timeout() || error.is_request()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The target of `rel="next"` in `Link` headers (`<url>; rel="next", <url>; rel="prev"`).
fn next_link(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(|value| {
            let mut rest = value;
            while let Some(open) = rest.find('<') {
                let after = &rest[open + 1..];
                let close = after.find('>')?;
                let target = &after[..close];
                let params_end = after[close..].find('<').map_or(after.len(), |i| close + i);
                let params = &after[close + 1..params_end];
                let is_next = params.split(';').any(|param| {
                    param.split_once('=').is_some_and(|(key, value)| {
                        key.trim().eq_ignore_ascii_case("rel")
                            && value
                                .trim()
                                .trim_matches('"')
                                .split_whitespace()
                                .any(|rel| rel.eq_ignore_ascii_case("next"))
                    })
                });
                if is_next {
                    return Some(target.trim().to_owned());
                }
                rest = &after[params_end..];
            }
            None
        })
}

// Bounded listings for catching up on what a websocket missed.
impl Client {
    /// `GET /rooms?sortBy=lastactivity&max=…`: the bot's rooms, most recently active first,
    /// following `Link: rel="next"`. Reading stops at the first room `wanted` refuses (the
    /// list is sorted, so e.g. the first one older than a cutoff), or after `limit` rooms.
    pub async fn list_rooms_by_activity(
        &self,
        limit: usize,
        wanted: impl FnMut(&Room) -> bool,
    ) -> Result<Listing<Room>, Error> {
        let mut url = self.url(&["rooms"])?;
        url.query_pairs_mut()
            .append_pair("sortBy", "lastactivity")
            .append_pair("max", &page_size(limit, 1000));
        self.list_while(url, "room list", limit, wanted).await
    }

    /// `GET /messages?roomId=…[&mentionedPeople=me]&max=…`: a room's messages, newest first,
    /// following `Link: rel="next"`, until the first one `wanted` refuses or `limit` of
    /// them. In a group room a bot must ask with `mentioned_me` (Webex answers `403`
    /// otherwise) and then sees only the messages that mention it.
    pub async fn list_room_messages(
        &self,
        room_id: &RoomId,
        mentioned_me: bool,
        limit: usize,
        wanted: impl FnMut(&Message) -> bool,
    ) -> Result<Listing<Message>, Error> {
        let mut url = self.url(&["messages"])?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("roomId", room_id.as_str());
            if mentioned_me {
                query.append_pair("mentionedPeople", "me");
            }
            // Webex caps a page at 100 with `mentionedPeople`.
            query.append_pair("max", &page_size(limit, 100));
        }
        self.list_while(url, "message list", limit, wanted).await
    }

    /// Reads pages from `first` on while `wanted` holds, at most `limit` items.
    async fn list_while<T: DeserializeOwned>(
        &self,
        first: Url,
        context: &'static str,
        limit: usize,
        mut wanted: impl FnMut(&T) -> bool,
    ) -> Result<Listing<T>, Error> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        let mut url = first;
        for _ in 0..MAX_PAGES {
            seen.insert(url.clone());
            let response = self.send(Call::get(url.clone(), context)).await?;
            let next = next_link(response.headers());
            let page: Items<T> = decode(response, context).await?;
            for item in page.items {
                if !wanted(&item) {
                    return Ok(Listing {
                        items,
                        complete: true,
                    });
                }
                if items.len() >= limit {
                    return Ok(Listing {
                        items,
                        complete: false,
                    });
                }
                items.push(item);
            }
            let Some(next) = next else {
                return Ok(Listing {
                    items,
                    complete: true,
                });
            };
            let next = url
                .join(&next)
                .map_err(|e| Error::InvalidUrl(format!("{context} next link: {e}")))?;
            // The token goes with every request: never follow a link to another host.
            if next.origin() != self.inner.base_url.origin() {
                return Err(Error::InvalidUrl(format!(
                    "{context} next link points to another host: {}",
                    next.origin().ascii_serialization()
                )));
            }
            if seen.contains(&next) {
                tracing::warn!(
                    path = next.path(),
                    "{context} links back to a page already read"
                );
                return Ok(Listing {
                    items,
                    complete: true,
                });
            }
            url = next;
        }
        tracing::warn!(pages = MAX_PAGES, "{context} truncated");
        Ok(Listing {
            items,
            complete: false,
        })
    }
}

/// One more than `limit` (so a full listing shows whether more was left), within what
/// Webex accepts for `max`.
fn page_size(limit: usize, cap: usize) -> String {
    limit.saturating_add(1).clamp(1, cap).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn links(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for v in values {
            headers.append(LINK, HeaderValue::from_str(v).unwrap());
        }
        headers
    }

    #[test]
    fn next_link_table() {
        let cases: &[(&[&str], Option<&str>)] = &[
            (
                &[r#"<https://x/v1/webhooks?max=100&cursor=abc>; rel="next""#],
                Some("https://x/v1/webhooks?max=100&cursor=abc"),
            ),
            (
                &[r#"<https://x/p1>; rel="prev", <https://x/p3>; rel="next""#],
                Some("https://x/p3"),
            ),
            (
                &[
                    r#"<https://x/p1>; rel="prev""#,
                    r#"<https://x/p3>; rel=next"#,
                ],
                Some("https://x/p3"),
            ),
            (
                &[r#"<https://x/a,b>; title="x"; REL="Next""#],
                Some("https://x/a,b"),
            ),
            (&[r#"<https://x/p1>; rel="prev""#], None),
            (&["garbage"], None),
            (&["<unterminated; rel=next"], None),
            (&[], None),
        ];
        for (values, want) in cases {
            assert_eq!(next_link(&links(values)).as_deref(), *want, "{values:?}");
        }
    }

    #[test]
    fn urls_join_with_or_without_trailing_slash() {
        for base in [
            "http://h:1/v1",
            "http://h:1/v1/",
            "http://h:1",
            "http://h:1/",
        ] {
            let client = Client::new(
                reqwest::Client::new(),
                ClientConfig {
                    base_url: base.parse().unwrap(),
                    token: SecretString::from("t"),
                    retry: RetryPolicy::fast_for_tests(),
                },
            );
            let url = client.url(&["messages", "a/b+c="]).unwrap();
            let prefix = if base.contains("/v1") { "/v1" } else { "" };
            assert_eq!(url.path(), format!("{prefix}/messages/a%2Fb+c="), "{base}");
        }
        let odd = Client::new(
            reqwest::Client::new(),
            ClientConfig {
                base_url: "mailto:x@y".parse().unwrap(),
                token: SecretString::from("t"),
                retry: RetryPolicy::default(),
            },
        );
        assert!(matches!(odd.url(&["people"]), Err(Error::InvalidUrl(_))));
    }
}
