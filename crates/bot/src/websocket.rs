//! `MODE=websocket`: Webex events over its Mercury websocket, so the bot needs no public URL.
//! Each new message goes into the same durable inbox as a webhook delivery and is handled by
//! the same dispatcher; this module only keeps a device registered and a socket alive.
//!
//! Device (WDM) and Mercury are not in Webex's public REST reference: the shapes below follow
//! what the official JS SDK sends, and every field is read defensively.

use std::time::Duration;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use futures_util::{SinkExt as _, StreamExt as _};
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use url::Url;

use crate::domain::IgnoreReason;
use crate::state::{AppState, WebhookStatus};
use crate::store::{Enqueued, EventKind, NewEvent, now_ms};

/// This bot's device name: found and reused at every start, so restarts do not pile up
/// registrations (Webex refuses a user with too many).
pub(crate) const DEVICE_NAME: &str = "webex-chatbot";
/// Where the device service is when the catalog cannot say.
const DEFAULT_WDM_URL: &str = "https://wdm-a.wbx2.com/wdm/api/v1";
/// Asked of Mercury on every connection: JSON text frames, a buffer-state event once the
/// socket is authorized, HTTP-like statuses in close frames.
const SOCKET_QUERY: [(&str, &str); 3] = [
    ("outboundWireFormat", "text"),
    ("bufferStates", "true"),
    ("aliasHttpStatus", "true"),
];
/// A ping goes out this often; a socket that sent nothing (not even the pong) by the next
/// ping is dead and is replaced.
const PING_EVERY: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);
/// Reconnection delays double from the first to the last, each randomized down to half.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(32);
/// A connection that stayed up this long resets the backoff; a shorter one (say, Mercury
/// closing it as "replaced" by another process with the same device) keeps growing it.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// The device is deleted on shutdown, within the shutdown budget.
const DELETE_TIMEOUT: Duration = Duration::from_secs(5);
const HEALTH_NOTE: &str = "websocket mode: no webhook";
/// A catch-up fetches what was sent from this long before the last event the socket
/// delivered: covers clock skew between this host and Webex, and the time between two
/// saves of the cursor.
const CATCH_UP_MARGIN: Duration = Duration::from_secs(120);
/// A catch-up looks at most at this many rooms (the most recently active) …
const CATCH_UP_MAX_ROOMS: usize = 100;
/// … and at most at this many messages of each (the newest).
const CATCH_UP_MAX_MESSAGES: usize = 50;
/// A failed catch-up is tried again after this long while the socket stays up (doubling
/// up to [`CATCH_UP_RETRY_MAX`]), and anyway at the next connection.
const CATCH_UP_RETRY_FIRST: Duration = Duration::from_secs(30);
const CATCH_UP_RETRY_MAX: Duration = Duration::from_secs(600);
/// While the socket delivers, the cursor is saved at most this often (and when the
/// connection ends).
const CURSOR_SAVE_EVERY: Duration = Duration::from_secs(10);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

// ---------------------------------------------------------------------------------------
// Device registration (WDM)
// ---------------------------------------------------------------------------------------

/// A registered device, as WDM answers it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Device {
    /// The device itself (`DELETE` it to unregister).
    pub url: String,
    pub web_socket_url: String,
    #[serde(default)]
    pub name: Option<String>,
}

impl Device {
    /// The device id for logs (the last segment of its url), never the socket URL.
    fn id(&self) -> &str {
        self.url.rsplit('/').find(|s| !s.is_empty()).unwrap_or("?")
    }
}

#[derive(Deserialize)]
struct DeviceList {
    #[serde(default)]
    devices: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Catalog {
    #[serde(default)]
    service_links: std::collections::HashMap<String, serde_json::Value>,
}

/// This bot's device among those WDM lists: the first whose name is ours and that carries
/// the two urls. Entries that do not parse are skipped, not fatal.
pub(crate) fn pick_device(devices: Vec<serde_json::Value>) -> Option<Device> {
    devices
        .into_iter()
        .filter_map(|d| serde_json::from_value::<Device>(d).ok())
        .find(|d| d.name.as_deref() == Some(DEVICE_NAME))
}

/// The body of `POST {wdm}/devices`.
pub(crate) fn device_body() -> serde_json::Value {
    json!({
        "deviceName": DEVICE_NAME,
        "deviceType": "DESKTOP",
        "localizedModel": "rust",
        "model": "rust",
        "name": DEVICE_NAME,
        "systemName": DEVICE_NAME,
        "systemVersion": env!("CARGO_PKG_VERSION"),
    })
}

/// `base` + `/segment`, keeping every segment of `base` (which `Url::join` would not).
fn under(base: &Url, segment: &str) -> anyhow::Result<Url> {
    let joined = format!("{}/{segment}", base.as_str().trim_end_matches('/'));
    Url::parse(&joined).with_context(|| format!("invalid URL {joined}"))
}

/// The device service (WDM) for this bot's token.
struct Wdm {
    http: reqwest::Client,
    token: SecretString,
    base: Url,
}

impl Wdm {
    /// `WEBEX_WDM_URL` when set; else the catalog's `serviceLinks.wdm`; else the default.
    async fn discover(http: reqwest::Client, token: SecretString, state: &AppState) -> Wdm {
        let base = match &state.config.webex_wdm_url {
            Some(url) => url.clone(),
            None => match catalog_wdm(&http, &token, &state.config.webex_u2c_url).await {
                Ok(url) => url,
                Err(e) => {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        fallback = DEFAULT_WDM_URL,
                        "cannot look up the device service; using the default"
                    );
                    default_wdm()
                }
            },
        };
        tracing::info!(wdm = %base, "device service");
        Wdm { http, token, base }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .bearer_auth(self.token.expose_secret())
            .timeout(HTTP_TIMEOUT)
    }

    /// Reuses this bot's device when WDM lists one, else registers a new one.
    async fn device(&self) -> anyhow::Result<Device> {
        match self.find().await {
            Ok(Some(device)) => {
                tracing::info!(device_id = device.id(), "reusing this bot's device");
                return Ok(device);
            }
            Ok(None) => {}
            // Listing is only an optimisation; registering still works without it.
            Err(e) => tracing::warn!(error = format!("{e:#}"), "cannot list devices"),
        }
        self.register().await
    }

    async fn find(&self) -> anyhow::Result<Option<Device>> {
        let url = under(&self.base, "devices")?;
        let res = self
            .request(reqwest::Method::GET, url.as_str())
            .send()
            .await
            .context("GET devices")?;
        let status = res.status();
        if !status.is_success() {
            anyhow::bail!("GET devices answered {status}");
        }
        let list: DeviceList = res.json().await.context("GET devices: unexpected body")?;
        Ok(pick_device(list.devices))
    }

    async fn register(&self) -> anyhow::Result<Device> {
        let url = under(&self.base, "devices")?;
        let res = self
            .request(reqwest::Method::POST, url.as_str())
            .json(&device_body())
            .send()
            .await
            .context("POST devices")?;
        let status = res.status();
        if !status.is_success() {
            let hint = if matches!(status.as_u16(), 401 | 403) {
                " (is WEBEX_BOT_TOKEN valid?)"
            } else {
                ""
            };
            anyhow::bail!("POST devices answered {status}{hint}");
        }
        let device: Device = res.json().await.context("POST devices: unexpected body")?;
        tracing::info!(device_id = device.id(), "device registered");
        Ok(device)
    }

    /// Best effort: a device left behind is reused by name at the next start.
    async fn delete(&self, device: &Device) {
        let result = self
            .request(reqwest::Method::DELETE, &device.url)
            .timeout(DELETE_TIMEOUT)
            .send()
            .await;
        match result {
            Ok(res) if res.status().is_success() || res.status().as_u16() == 404 => {
                tracing::info!(device_id = device.id(), "device deleted");
            }
            Ok(res) => {
                tracing::warn!(device_id = device.id(), status = %res.status(), "cannot delete the device");
            }
            Err(e) => {
                tracing::warn!(device_id = device.id(), error = %e, "cannot delete the device");
            }
        }
    }
}

/// A built-in default; the unit tests parse it.
#[allow(clippy::expect_used)]
fn default_wdm() -> Url {
    Url::parse(DEFAULT_WDM_URL).expect("the built-in WDM URL is valid")
}

async fn catalog_wdm(
    http: &reqwest::Client,
    token: &SecretString,
    u2c: &Url,
) -> anyhow::Result<Url> {
    let mut url = under(u2c, "catalog")?;
    url.query_pairs_mut().append_pair("format", "hostmap");
    let res = http
        .get(url)
        .bearer_auth(token.expose_secret())
        .timeout(HTTP_TIMEOUT)
        .send()
        .await
        .context("GET catalog")?;
    let status = res.status();
    if !status.is_success() {
        anyhow::bail!("GET catalog answered {status}");
    }
    let catalog: Catalog = res.json().await.context("GET catalog: unexpected body")?;
    let link = catalog
        .service_links
        .get("wdm")
        .and_then(|v| v.as_str())
        .context("the catalog has no serviceLinks.wdm")?;
    let url = Url::parse(link).context("serviceLinks.wdm is not a URL")?;
    if !matches!(url.scheme(), "https" | "http") {
        anyhow::bail!("serviceLinks.wdm is not an HTTP URL");
    }
    Ok(url)
}

// ---------------------------------------------------------------------------------------
// Frames: what Mercury sends, translated without side effects
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Envelope {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    data: Option<EventData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventData {
    event_type: Option<String>,
    activity: Option<Activity>,
}

#[derive(Deserialize)]
struct Activity {
    id: Option<String>,
    verb: Option<String>,
    actor: Option<Actor>,
    /// `add`: the person added (`id`/`entryUUID`).
    object: Option<Actor>,
    target: Option<Target>,
    parent: Option<Parent>,
    published: Option<String>,
}

#[derive(Deserialize)]
struct Actor {
    id: Option<String>,
    #[serde(rename = "entryUUID")]
    entry_uuid: Option<String>,
}

impl Actor {
    /// The person's uuid: `entryUUID` where Mercury gives it (the SDKs read that), else `id`.
    fn uuid(&self) -> Option<&str> {
        self.entry_uuid
            .as_deref()
            .filter(|u| is_uuid(u))
            .or(self.id.as_deref())
    }
}

#[derive(Deserialize)]
struct Target {
    id: Option<String>,
    /// `ONE_ON_ONE` for a direct space.
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Deserialize)]
struct Parent {
    id: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// A new message (or submitted card, or the bot's arrival in a space), ready for the inbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Incoming {
    /// The Mercury envelope id, acknowledged once the event is recorded.
    pub envelope_id: String,
    /// The REST id of the event: a message id (`GET /messages/{id}`), an attachment action
    /// id (`GET /attachment/actions/{id}`) or a membership key, as in webhook mode.
    pub message_id: String,
    pub kind: EventKind,
    /// The REST room id.
    pub room_id: String,
    /// What the inbox keeps for an operator: ids only (the activity's content is encrypted
    /// and the worker fetches the message by REST anyway).
    pub payload: String,
}

impl Incoming {
    pub(crate) fn as_new_event(&self) -> NewEvent<'_> {
        NewEvent {
            message_id: &self.message_id,
            room_id: &self.room_id,
            payload: &self.payload,
            kind: self.kind,
        }
    }
}

/// What one text frame from Mercury means for the bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A new message: record it, then acknowledge it.
    Message(Incoming),
    /// A conversation event the bot does not act on; acknowledged at once.
    Ignored {
        ack: Option<String>,
        reason: IgnoreReason,
    },
    /// Mercury's own events (buffer state, registration status …); acknowledged at once.
    Control {
        ack: Option<String>,
        event_type: String,
    },
    /// The answer to a ping.
    Pong,
    /// Not JSON or not an envelope: logged and dropped.
    Malformed,
}

/// `ciscospark://us/<KIND>/<uuid>` as Webex REST ids spell it: unpadded standard base64.
/// Only the US cluster is formed here (see docs/websocket.md).
pub(crate) fn rest_id(kind: &str, uuid: &str) -> String {
    STANDARD_NO_PAD.encode(format!("ciscospark://us/{kind}/{uuid}"))
}

/// The canonical 8-4-4-4-12 hex form: the only ids a REST id is made from.
fn is_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

/// Translates one text frame. Pure: the caller records, acknowledges and logs.
pub(crate) fn translate(text: &str, bot: &webex::PersonId) -> Frame {
    let Ok(envelope) = serde_json::from_str::<Envelope>(text) else {
        return Frame::Malformed;
    };
    if envelope.kind.as_deref() == Some("pong") {
        return Frame::Pong;
    }
    let ack = envelope.id.filter(|id| !id.is_empty());
    let Some(data) = envelope.data else {
        return Frame::Malformed;
    };
    let event_type = data.event_type.unwrap_or_default();
    if event_type != "conversation.activity" {
        return Frame::Control { ack, event_type };
    }
    let ignored = |reason| Frame::Ignored {
        ack: ack.clone(),
        reason,
    };
    let Some(activity) = data.activity else {
        return ignored(IgnoreReason::Malformed);
    };
    match activity.verb.as_deref() {
        Some("post") => {}
        // A submitted card (the SDKs' `attachmentActions` `created`).
        Some("cardAction") => return card_action(activity, ack, bot),
        // Someone added to a space (the SDKs' `memberships` `created`).
        Some("add") => return membership(activity, ack, bot),
        _ => return ignored(IgnoreReason::OtherEvent),
    }
    // An edit is a post whose parent is the edited message; webhook mode does not answer
    // edits either (it subscribes to messages/created only).
    if activity
        .parent
        .as_ref()
        .is_some_and(|p| p.kind.as_deref() == Some("edit"))
    {
        return ignored(IgnoreReason::OtherEvent);
    }
    let actor = activity
        .actor
        .as_ref()
        .and_then(Actor::uuid)
        .unwrap_or_default()
        .to_owned();
    if !actor.is_empty() && bot.same_person(&actor) {
        return ignored(IgnoreReason::OwnMessage);
    }
    let (Some(activity_id), Some(room_uuid), Some(envelope_id)) = (
        activity.id.filter(|id| is_uuid(id)),
        activity.target.and_then(|t| t.id).filter(|id| is_uuid(id)),
        ack.clone(),
    ) else {
        return ignored(IgnoreReason::Malformed);
    };
    let message_id = rest_id("MESSAGE", &activity_id);
    let room_id = rest_id("ROOM", &room_uuid);
    let payload = json!({
        "source": "websocket",
        "envelopeId": envelope_id,
        "activityId": activity_id,
        "verb": "post",
        "actorId": actor,
        "published": activity.published,
        "data": {"id": message_id, "roomId": room_id},
    })
    .to_string();
    Frame::Message(Incoming {
        envelope_id,
        message_id,
        kind: EventKind::Message,
        room_id,
        payload,
    })
}

/// A `cardAction` activity: its id is the attachment action's (`ATTACHMENT_ACTION`), its
/// parent the card's message, its target the room; the inputs are read by REST, as in
/// webhook mode.
fn card_action(activity: Activity, ack: Option<String>, bot: &webex::PersonId) -> Frame {
    let ignored = |reason| Frame::Ignored {
        ack: ack.clone(),
        reason,
    };
    let actor = activity
        .actor
        .as_ref()
        .and_then(Actor::uuid)
        .unwrap_or_default()
        .to_owned();
    if !actor.is_empty() && bot.same_person(&actor) {
        return ignored(IgnoreReason::OwnMessage);
    }
    let (Some(action_uuid), Some(room_uuid), Some(envelope_id)) = (
        activity.id.filter(|id| is_uuid(id)),
        activity.target.and_then(|t| t.id).filter(|id| is_uuid(id)),
        ack.clone(),
    ) else {
        return ignored(IgnoreReason::Malformed);
    };
    let action_id = rest_id("ATTACHMENT_ACTION", &action_uuid);
    let room_id = rest_id("ROOM", &room_uuid);
    let card_message = activity
        .parent
        .and_then(|p| p.id)
        .filter(|id| is_uuid(id))
        .map(|id| rest_id("MESSAGE", &id));
    let payload = json!({
        "source": "websocket",
        "envelopeId": envelope_id,
        "activityId": action_uuid,
        "verb": "cardAction",
        "actorId": actor,
        "published": activity.published,
        "data": {"id": action_id, "roomId": room_id, "messageId": card_message},
    })
    .to_string();
    Frame::Message(Incoming {
        envelope_id,
        message_id: action_id,
        kind: EventKind::CardAction,
        room_id,
        payload,
    })
}

/// An `add` activity: only the bot itself added to a group space is an event (the
/// greeting); anyone else joining, or a direct space, is not.
fn membership(activity: Activity, ack: Option<String>, bot: &webex::PersonId) -> Frame {
    let ignored = |reason| Frame::Ignored {
        ack: ack.clone(),
        reason,
    };
    let added = activity
        .object
        .as_ref()
        .and_then(Actor::uuid)
        .unwrap_or_default()
        .to_owned();
    if added.is_empty() || !bot.same_person(&added) {
        return ignored(IgnoreReason::OtherEvent);
    }
    let Some(target) = activity.target else {
        return ignored(IgnoreReason::Malformed);
    };
    if target.tags.iter().any(|t| t == "ONE_ON_ONE") {
        return ignored(IgnoreReason::OtherEvent);
    }
    let (Some(room_uuid), Some(envelope_id)) = (target.id.filter(|id| is_uuid(id)), ack.clone())
    else {
        return ignored(IgnoreReason::Malformed);
    };
    let room_id = rest_id("ROOM", &room_uuid);
    let membership_id = rest_id("MEMBERSHIP", &format!("{added}:{room_uuid}"));
    let key = crate::record::inbox_key(
        EventKind::Membership,
        &membership_id,
        activity.published.as_deref(),
    );
    let payload = json!({
        "source": "websocket",
        "envelopeId": envelope_id,
        "verb": "add",
        "published": activity.published,
        "data": {"id": membership_id, "roomId": room_id, "roomType": "group"},
    })
    .to_string();
    Frame::Message(Incoming {
        envelope_id,
        message_id: key,
        kind: EventKind::Membership,
        room_id,
        payload,
    })
}

// ---------------------------------------------------------------------------------------
// Connection: authorize, keep alive, reconnect
// ---------------------------------------------------------------------------------------

/// `webSocketUrl` with the query Mercury expects.
pub(crate) fn socket_url(web_socket_url: &str) -> anyhow::Result<Url> {
    let mut url = Url::parse(web_socket_url).context("webSocketUrl is not a URL")?;
    if !matches!(url.scheme(), "wss" | "ws") {
        anyhow::bail!("webSocketUrl is not a websocket URL");
    }
    let present: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    {
        let mut query = url.query_pairs_mut();
        for (k, v) in SOCKET_QUERY {
            if !present.iter().any(|p| p == k) {
                query.append_pair(k, v);
            }
        }
    }
    Ok(url)
}

/// The nominal delay before reconnection attempt `n` (1-based): 1 s, 2 s, 4 s … 32 s.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(5);
    (BACKOFF_FIRST * 2u32.pow(exp)).min(BACKOFF_MAX)
}

/// Somewhere between half the nominal delay and all of it, so a fleet of bots that lost
/// Mercury together does not come back in one burst.
fn jittered(nominal: Duration) -> Duration {
    nominal.mul_f64(rand::random_range(0.5..=1.0))
}

/// Whether the socket is still alive at a ping tick: anything received since the last
/// ping (the pong, an event) counts.
pub(crate) fn alive(last_traffic: Instant, last_ping: Option<Instant>) -> bool {
    last_ping.is_none_or(|ping| last_traffic >= ping)
}

/// How one connection ended.
#[derive(Debug)]
enum Ended {
    /// Shutdown asked for it.
    Stopped,
    /// Closed by Mercury, by us after a missed pong, or broken, after being up `lasted`.
    Lost { lasted: Duration, why: String },
    /// The handshake answered 404: the device is gone, register again.
    DeviceGone,
}

fn set_status(state: &AppState, status: &str) {
    if let Ok(mut w) = state.webhook.lock() {
        *w = WebhookStatus {
            note: Some(HEALTH_NOTE.into()),
            websocket: Some(status.into()),
            ..WebhookStatus::default()
        };
    }
}

/// Registers (or reuses) the device, then keeps a Mercury connection until shutdown, and
/// deletes the device. Errors before the first connection (no device) are fatal, like a
/// webhook registration failure is in webhook mode.
pub(crate) async fn start(state: &AppState, http: reqwest::Client) -> anyhow::Result<()> {
    set_status(state, "connecting");
    let token = state.config.require_token()?.clone();
    let wdm = Wdm::discover(http, token.clone(), state).await;
    let device = wdm
        .device()
        .await
        .context("MODE=websocket: cannot register the bot's device with Webex")?;
    let span = tracing::info_span!("websocket");
    state
        .tasks
        .spawn(listen(state.clone(), wdm, device, token).instrument(span));
    Ok(())
}

async fn listen(state: AppState, wdm: Wdm, mut device: Device, token: SecretString) {
    let stop = state.shutdown.clone();
    let cursor = Cursor::default();
    let mut failures: u32 = 0;
    loop {
        match connect_and_serve(&state, &device, &token, &cursor, &stop).await {
            Ok(Ended::Stopped) => break,
            Ok(Ended::Lost { lasted, why }) => {
                tracing::warn!(reason = why, up_s = lasted.as_secs(), "websocket lost");
                if lasted >= STABLE_AFTER {
                    failures = 0;
                }
            }
            Ok(Ended::DeviceGone) => {
                tracing::warn!("the device is gone (404); registering again");
                wdm.delete(&device).await;
                match wdm.register().await {
                    Ok(fresh) => device = fresh,
                    Err(e) => {
                        tracing::error!(error = format!("{e:#}"), "cannot register the device")
                    }
                }
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "websocket connection failed"),
        }
        set_status(&state, "disconnected");
        failures = failures.saturating_add(1);
        let delay = jittered(backoff(failures));
        tracing::info!(
            attempt = failures,
            delay_ms = delay.as_millis(),
            "reconnecting"
        );
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
    }
    set_status(&state, "stopped");
    wdm.delete(&device).await;
}

async fn connect(device: &Device) -> anyhow::Result<Result<Socket, Ended>> {
    let url = socket_url(&device.web_socket_url)?;
    let connecting = tokio_tungstenite::connect_async(url.as_str());
    match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
        Err(_) => anyhow::bail!("no handshake within {}s", CONNECT_TIMEOUT.as_secs()),
        Ok(Ok((socket, _))) => Ok(Ok(socket)),
        Ok(Err(tungstenite::Error::Http(res))) if res.status().as_u16() == 404 => {
            Ok(Err(Ended::DeviceGone))
        }
        Ok(Err(tungstenite::Error::Http(res))) => {
            anyhow::bail!("handshake answered {}", res.status())
        }
        Ok(Err(e)) => Err(anyhow::Error::new(e).context("websocket handshake")),
    }
}

async fn send_json(socket: &mut Socket, value: &serde_json::Value) -> anyhow::Result<()> {
    socket
        .send(Message::text(value.to_string()))
        .await
        .context("websocket send")
}

async fn connect_and_serve(
    state: &AppState,
    device: &Device,
    token: &SecretString,
    cursor: &Cursor,
    stop: &CancellationToken,
) -> anyhow::Result<Ended> {
    let mut socket = tokio::select! {
        () = stop.cancelled() => return Ok(Ended::Stopped),
        connected = connect(device) => match connected? {
            Ok(socket) => socket,
            Err(ended) => return Ok(ended),
        },
    };
    let auth = json!({
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "authorization",
        "data": {"token": format!("Bearer {}", token.expose_secret())},
    });
    send_json(&mut socket, &auth).await?;
    tracing::info!("websocket connected");
    set_status(state, "connected");

    let connected_at = Instant::now();
    cursor.connected();
    // What was sent while no socket was up is fetched by REST while this one serves.
    let connection = stop.child_token();
    let (served, ()) = tokio::join!(
        async {
            let served = serve(state, &mut socket, cursor, stop).await;
            connection.cancel();
            served
        },
        catch_up_until_done(state, cursor, &connection),
    );
    cursor.save_seen(state).await;
    let why = match served {
        Ok(None) => return Ok(Ended::Stopped),
        Ok(Some(why)) => why,
        Err(e) => format!("{e:#}"),
    };
    Ok(Ended::Lost {
        lasted: connected_at.elapsed(),
        why,
    })
}

/// Reads frames and pings until shutdown (`None`) or until the connection is lost (why).
async fn serve(
    state: &AppState,
    socket: &mut Socket,
    cursor: &Cursor,
    stop: &CancellationToken,
) -> anyhow::Result<Option<String>> {
    let mut pings = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_traffic = Instant::now();
    let mut last_ping: Option<Instant> = None;
    loop {
        let incoming = tokio::select! {
            () = stop.cancelled() => {
                let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
                return Ok(None);
            }
            _ = pings.tick() => {
                if !alive(last_traffic, last_ping) {
                    let _ = tokio::time::timeout(Duration::from_secs(2), socket.close(None)).await;
                    return Ok(Some("no pong".into()));
                }
                last_ping = Some(Instant::now());
                let ping = json!({"id": uuid::Uuid::new_v4().to_string(), "type": "ping"});
                send_json(socket, &ping).await?;
                continue;
            }
            incoming = socket.next() => incoming,
        };
        last_traffic = Instant::now();
        if matches!(incoming, Some(Ok(_))) {
            // The socket was up until now: everything sent before reached it.
            cursor.saw(state).await;
        }
        let text = match incoming {
            None => return Ok(Some("closed".into())),
            Some(Err(e)) => return Ok(Some(e.to_string())),
            Some(Ok(Message::Close(frame))) => {
                // 4401/4403: the token was refused; reconnecting is still right (it may be
                // a passing fault), and the reason lands in the log.
                let why = frame.map_or_else(
                    || "closed".to_owned(),
                    |f| format!("closed with {} {}", u16::from(f.code), f.reason),
                );
                return Ok(Some(why));
            }
            Some(Ok(Message::Text(text))) => text.to_string(),
            Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
            // Pings are answered by tungstenite itself; both count as traffic.
            Some(Ok(_)) => continue,
        };
        handle_frame(state, socket, &text).await?;
    }
}

async fn ack(socket: &mut Socket, envelope_id: &str) -> anyhow::Result<()> {
    send_json(socket, &json!({"type": "ack", "messageId": envelope_id})).await
}

/// Records a message event in the inbox and acknowledges it; acknowledges everything else.
async fn handle_frame(state: &AppState, socket: &mut Socket, text: &str) -> anyhow::Result<()> {
    match translate(text, &state.bot.id) {
        Frame::Message(incoming) => {
            state.metrics.events_received.inc();
            if crate::record::record(state, &incoming.as_new_event(), "websocket")
                .await
                .is_err()
            {
                // Not recorded means not acknowledged: Mercury may deliver it again.
                return Ok(());
            }
            ack(socket, &incoming.envelope_id).await
        }
        Frame::Ignored { ack: id, reason } => {
            state.metrics.events_received.inc();
            state.metrics.ignored(reason);
            tracing::debug!(reason = reason.as_str(), "websocket event ignored");
            match id {
                Some(id) => ack(socket, &id).await,
                None => Ok(()),
            }
        }
        Frame::Control {
            ack: id,
            event_type,
        } => {
            tracing::debug!(event_type, "mercury event");
            match id {
                Some(id) => ack(socket, &id).await,
                None => Ok(()),
            }
        }
        Frame::Pong => Ok(()),
        Frame::Malformed => {
            tracing::warn!(
                bytes = text.len(),
                "websocket frame is not a Mercury event; dropped"
            );
            Ok(())
        }
    }
}

// ---------------------------------------------------------------------------------------
// Catching up: what was sent while no socket was up
// ---------------------------------------------------------------------------------------

/// Where catching up starts: the last time the socket delivered anything, kept in the
/// store so a restart knows it too. It moves only when nothing before it is left unfetched:
/// during a connection, once that connection's catch-up succeeded.
#[derive(Default)]
struct Cursor {
    inner: std::sync::Mutex<CursorState>,
}

#[derive(Default)]
struct CursorState {
    /// When the socket last delivered a frame (ms since the epoch).
    seen: i64,
    /// Whether this connection's catch-up succeeded, so `seen` may be saved.
    caught_up: bool,
    last_save: Option<Instant>,
}

impl Cursor {
    fn with<T>(&self, f: impl FnOnce(&mut CursorState) -> T) -> T {
        match self.inner.lock() {
            Ok(mut guard) => f(&mut guard),
            Err(poisoned) => f(&mut poisoned.into_inner()),
        }
    }

    /// A new connection: nothing is saved until its catch-up succeeds.
    fn connected(&self) {
        self.with(|c| {
            c.seen = now_ms();
            c.caught_up = false;
        });
    }

    /// A frame arrived; saved now and then once caught up.
    async fn saw(&self, state: &AppState) {
        let now = now_ms();
        let due = self.with(|c| {
            c.seen = c.seen.max(now);
            let due = c.caught_up && c.last_save.is_none_or(|t| t.elapsed() >= CURSOR_SAVE_EVERY);
            if due {
                c.last_save = Some(Instant::now());
            }
            due.then_some(c.seen)
        });
        if let Some(at) = due {
            save_cursor(state, at).await;
        }
    }

    /// The catch-up that started at `started` succeeded: everything sent before then is
    /// in the inbox, and the socket delivers the rest.
    async fn caught_up(&self, state: &AppState, started: i64) {
        let at = self.with(|c| {
            c.seen = c.seen.max(started);
            c.caught_up = true;
            c.last_save = Some(Instant::now());
            c.seen
        });
        save_cursor(state, at).await;
    }

    /// The connection ended: saves the last frame's time if its catch-up succeeded.
    async fn save_seen(&self, state: &AppState) {
        let at = self.with(|c| c.caught_up.then_some(c.seen));
        if let Some(at) = at {
            save_cursor(state, at).await;
        }
    }
}

async fn save_cursor(state: &AppState, at: i64) {
    if let Err(e) = state
        .store
        .set_websocket_cursor(state.bot.id.as_str(), at)
        .await
    {
        // The older value stays: the next catch-up fetches a little more than needed.
        tracing::warn!(error = %e, "cannot save the websocket cursor");
    }
}

/// Runs the catch-up of one connection until it succeeds or the connection ends; a failed
/// one is tried again after a while, and anyway by the next connection.
async fn catch_up_until_done(state: &AppState, cursor: &Cursor, connection: &CancellationToken) {
    let mut delay = CATCH_UP_RETRY_FIRST;
    loop {
        let started = now_ms();
        let attempt = tokio::select! {
            () = connection.cancelled() => return,
            attempt = catch_up(state) => attempt,
        };
        match attempt {
            Ok(_) => {
                cursor.caught_up(state, started).await;
                return;
            }
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                retry_in_s = delay.as_secs(),
                "catching up on missed messages failed; the cursor stays where it was"
            ),
        }
        tokio::select! {
            () = connection.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(CATCH_UP_RETRY_MAX);
    }
}

/// What one catch-up did.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct CaughtUp {
    pub rooms: usize,
    pub recorded: usize,
}

/// Fetches every message sent since the stored cursor (minus [`CATCH_UP_MARGIN`]) in the
/// rooms active since then, and records those the bot should answer in the inbox, where
/// the message id deduplicates them against what the socket delivered. With no cursor
/// (the very first start) there is nothing to catch up on: history is not answered.
async fn catch_up(state: &AppState) -> anyhow::Result<CaughtUp> {
    let Some(cursor) = state
        .store
        .websocket_cursor(state.bot.id.as_str())
        .await
        .context("reading the websocket cursor")?
    else {
        tracing::info!("first connection of this bot: no earlier messages are answered");
        return Ok(CaughtUp::default());
    };
    let since = cursor
        .last_event_at
        .saturating_sub(ms(CATCH_UP_MARGIN))
        .max(cursor.first_at);
    let rooms = state
        .webex
        .list_rooms_by_activity(CATCH_UP_MAX_ROOMS, |room| {
            at_or_after(room.last_activity.as_deref(), since)
        })
        .await
        .context("listing rooms")?;
    if !rooms.complete {
        tracing::warn!(
            max_rooms = CATCH_UP_MAX_ROOMS,
            "catch-up: more rooms were active than it looks at; older ones are skipped"
        );
    }
    let mut done = CaughtUp::default();
    for room in &rooms.items {
        let group = match room.room_type {
            Some(webex::RoomType::Direct) => false,
            Some(webex::RoomType::Group) => true,
            _ => continue,
        };
        done.rooms += 1;
        // A bot may list a group room only for the messages that mention it.
        let listed = state
            .webex
            .list_room_messages(&room.id, group, CATCH_UP_MAX_MESSAGES, |m| {
                at_or_after(m.created.as_deref(), since)
            })
            .await;
        let messages = match listed {
            Ok(messages) => messages,
            // Refused for this room for good (left, deleted …): asking again would not
            // help, and must not hold the cursor back for every other room.
            Err(e)
                if e.status()
                    .is_some_and(|s| (400..500).contains(&s) && s != 429) =>
            {
                tracing::warn!(
                    room_id = room.id.as_str(),
                    error = %e,
                    "catch-up: cannot list this room's messages; skipped"
                );
                continue;
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("listing the messages of room {}", room.id.as_str())));
            }
        };
        if !messages.complete {
            tracing::warn!(
                room_id = room.id.as_str(),
                max_messages = CATCH_UP_MAX_MESSAGES,
                "catch-up: more messages were sent in this room than it looks at; older ones are skipped"
            );
        }
        // Oldest first, so the room's questions are answered in order.
        for message in messages.items.iter().rev() {
            if let Some(reason) = skip_reason(message, group, &state.bot.id) {
                tracing::debug!(
                    message_id = message.id.as_str(),
                    reason,
                    "catch-up: not recorded"
                );
                continue;
            }
            if record(state, message).await? {
                done.recorded += 1;
            }
        }
    }
    tracing::info!(
        rooms = done.rooms,
        recorded = done.recorded,
        since_ms = since,
        "caught up on messages sent while the socket was down"
    );
    Ok(done)
}

/// Records one fetched message in the inbox; `true` when it was new.
async fn record(state: &AppState, message: &webex::Message) -> anyhow::Result<bool> {
    let payload = json!({
        "source": "websocket-catch-up",
        "data": {
            "id": message.id,
            "roomId": message.room_id,
            "roomType": message.room_type,
            "created": message.created,
        },
    })
    .to_string();
    let event = NewEvent::message(message.id.as_str(), message.room_id.as_str(), &payload);
    match crate::record::record(state, &event, "catch-up")
        .await
        .context("recording a missed message")?
    {
        Enqueued::New => {
            state.metrics.events_received.inc();
            Ok(true)
        }
        // Seen over the socket already, or by an earlier catch-up.
        Enqueued::Duplicate => Ok(false),
    }
}

/// Why a listed message is not for the bot, if it is not: its own, another bot's, or (in a
/// group room) one that does not mention it.
pub(crate) fn skip_reason(
    message: &webex::Message,
    group: bool,
    bot: &webex::PersonId,
) -> Option<&'static str> {
    if message
        .person_id
        .as_ref()
        .is_some_and(|p| bot.same_person(p.as_str()))
    {
        return Some("own_message");
    }
    if message
        .person_email
        .as_deref()
        .and_then(|e| crate::domain::Email::parse(e).ok())
        .is_some_and(|e| e.is_bot())
    {
        return Some("bot_sender");
    }
    if group && !webex::mention::mentions(message, bot) {
        return Some("not_mentioned");
    }
    None
}

/// Whether an RFC 3339 time is at or after `since_ms`; a missing or unreadable one counts
/// as after (fetching too much is harmless, the inbox deduplicates).
pub(crate) fn at_or_after(time: Option<&str>, since_ms: i64) -> bool {
    let Some(time) = time else {
        return true;
    };
    match time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339) {
        Ok(t) => {
            i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX) >= since_ms
        }
        Err(_) => true,
    }
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const BOT: &str =
        "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";
    const BOT_UUID: &str = "249f74d9-db8a-43ca-896b-879ed240ac53";
    const ALICE_UUID: &str = "92b3dd9a-675d-4a41-8c1e-1234567890ab";
    // The ids of shared/fixtures/message-direct.json and what they decode to.
    const FIXTURE_MESSAGE: &str =
        "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvYzNkNGU1ZjYtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk";
    const FIXTURE_ROOM: &str =
        "Y2lzY29zcGFyazovL3VzL1JPT00vZDFlMmYzYTQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0";
    const MESSAGE_UUID: &str = "c3d4e5f6-43bd-11e6-8ae9-dd5b3dfc565d";
    const ROOM_UUID: &str = "d1e2f3a4-43f1-3b58-9147-f14bb0c4d154";

    fn post(activity: Value) -> String {
        json!({
            "id": "env-1",
            "data": {"eventType": "conversation.activity", "activity": activity},
            "timestamp": 1_764_000_000_000u64,
            "trackingId": "T",
        })
        .to_string()
    }

    fn activity(verb: &str, actor: &str) -> Value {
        json!({
            "id": MESSAGE_UUID,
            "objectType": "activity",
            "verb": verb,
            "actor": {"id": actor, "objectType": "person", "type": "PERSON", "emailAddress": "alice@example.com"},
            "object": {"objectType": "comment", "displayName": "eyJhbGciOi…encrypted"},
            "target": {"id": ROOM_UUID, "objectType": "conversation", "tags": ["ONE_ON_ONE"],
                       "url": format!("https://conv-a.wbx2.com/conversation/api/v1/conversations/{ROOM_UUID}")},
            "published": "2026-11-20T09:20:00.000Z",
        })
    }

    /// An `add` activity as Mercury sends it: the person added is the `object`.
    fn added(person: &str, tag: &str) -> Value {
        json!({
            "id": "5f0e9a1c-1111-4222-8333-944455556666",
            "objectType": "activity",
            "verb": "add",
            "actor": {"id": ALICE_UUID, "objectType": "person", "entryUUID": ALICE_UUID},
            "object": {"id": person, "objectType": "person", "entryUUID": person},
            "target": {"id": ROOM_UUID, "objectType": "conversation", "tags": [tag]},
            "published": "2026-11-20T09:20:00.000Z",
        })
    }

    #[test]
    fn a_card_action_becomes_an_inbox_event() {
        let bot = webex::PersonId::new(BOT);
        let mut a = activity("cardAction", ALICE_UUID);
        a["parent"] = json!({"id": MESSAGE_UUID, "type": "cardAction"});
        a["id"] = json!("0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5");
        a["object"] = json!({"objectType": "submit", "inputs": {"action": "feedback"}});
        let Frame::Message(incoming) = translate(&post(a), &bot) else {
            panic!("not an event");
        };
        assert_eq!(incoming.kind, EventKind::CardAction);
        assert_eq!(
            incoming.message_id,
            rest_id("ATTACHMENT_ACTION", "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5")
        );
        assert_eq!(incoming.room_id, FIXTURE_ROOM);
        let payload: Value = serde_json::from_str(&incoming.payload).unwrap();
        assert_eq!(payload["data"]["messageId"], FIXTURE_MESSAGE);
        assert!(
            !incoming.payload.contains("inputs"),
            "inputs are read by REST: {}",
            incoming.payload
        );
    }

    #[test]
    fn the_bot_added_to_a_group_space_becomes_an_inbox_event() {
        let bot = webex::PersonId::new(BOT);
        let Frame::Message(incoming) = translate(&post(added(BOT_UUID, "GROUP")), &bot) else {
            panic!("not an event");
        };
        assert_eq!(incoming.kind, EventKind::Membership);
        assert_eq!(incoming.room_id, FIXTURE_ROOM);
        let membership = rest_id("MEMBERSHIP", &format!("{BOT_UUID}:{ROOM_UUID}"));
        assert_eq!(
            incoming.message_id,
            format!("{membership}@2026-11-20T09:20:00.000Z")
        );
    }

    #[test]
    fn rest_ids_match_the_fixtures() {
        assert_eq!(rest_id("MESSAGE", MESSAGE_UUID), FIXTURE_MESSAGE);
        assert_eq!(rest_id("ROOM", ROOM_UUID), FIXTURE_ROOM);
        assert_eq!(rest_id("PEOPLE", BOT_UUID), BOT);
    }

    #[test]
    fn a_post_becomes_an_inbox_event() {
        let bot = webex::PersonId::new(BOT);
        let Frame::Message(incoming) = translate(&post(activity("post", ALICE_UUID)), &bot) else {
            panic!("not a message");
        };
        assert_eq!(incoming.envelope_id, "env-1");
        let event = incoming.as_new_event();
        assert_eq!(event.message_id, FIXTURE_MESSAGE);
        assert_eq!(event.room_id, FIXTURE_ROOM);
        let payload: Value = serde_json::from_str(event.payload).unwrap();
        assert_eq!(payload["source"], "websocket");
        assert_eq!(payload["data"]["id"], FIXTURE_MESSAGE);
        assert!(
            !event.payload.contains("encrypted"),
            "no content is kept: {}",
            event.payload
        );
    }

    #[test]
    fn frames_are_translated() {
        let bot = webex::PersonId::new(BOT);
        let with = |f: &dyn Fn(&mut Value)| {
            let mut a = activity("post", ALICE_UUID);
            f(&mut a);
            post(a)
        };
        let ignored = |reason| Frame::Ignored {
            ack: Some("env-1".into()),
            reason,
        };
        let cases: Vec<(&str, String, Frame)> = vec![
            ("not json", "hello".into(), Frame::Malformed),
            ("no data", json!({"id": "x"}).to_string(), Frame::Malformed),
            ("pong", json!({"type": "pong", "id": "p"}).to_string(), Frame::Pong),
            (
                "buffer state",
                json!({"id": "b", "data": {"eventType": "mercury.buffer_state"}}).to_string(),
                Frame::Control {
                    ack: Some("b".into()),
                    event_type: "mercury.buffer_state".into(),
                },
            ),
            (
                "other event type",
                json!({"id": "e", "data": {"eventType": "conversation.highlight"}}).to_string(),
                Frame::Control {
                    ack: Some("e".into()),
                    event_type: "conversation.highlight".into(),
                },
            ),
            ("acknowledge (read receipt)", post(activity("acknowledge", ALICE_UUID)), ignored(IgnoreReason::OtherEvent)),
            ("file share", post(activity("share", ALICE_UUID)), ignored(IgnoreReason::OtherEvent)),
            ("own card action", post(activity("cardAction", BOT_UUID)), ignored(IgnoreReason::OwnMessage)),
            ("someone else added", post(added(ALICE_UUID, "GROUP")), ignored(IgnoreReason::OtherEvent)),
            ("bot in a direct space", post(added(BOT_UUID, "ONE_ON_ONE")), ignored(IgnoreReason::OtherEvent)),
            ("leave", post(activity("leave", ALICE_UUID)), ignored(IgnoreReason::OtherEvent)),
            ("no activity", json!({"id": "env-1", "data": {"eventType": "conversation.activity"}}).to_string(), ignored(IgnoreReason::Malformed)),
            ("own post, raw uuid", post(activity("post", BOT_UUID)), ignored(IgnoreReason::OwnMessage)),
            ("own post, upper-case uuid", post(activity("post", &BOT_UUID.to_uppercase())), ignored(IgnoreReason::OwnMessage)),
            ("edit", with(&|a| a["parent"] = json!({"id": "x", "type": "edit"})), ignored(IgnoreReason::OtherEvent)),
            ("activity id not a uuid", with(&|a| a["id"] = json!("act-1")), ignored(IgnoreReason::Malformed)),
            ("no target", with(&|a| a["target"] = Value::Null), ignored(IgnoreReason::Malformed)),
            (
                "no envelope id",
                json!({"data": {"eventType": "conversation.activity", "activity": activity("post", ALICE_UUID)}}).to_string(),
                Frame::Ignored { ack: None, reason: IgnoreReason::Malformed },
            ),
        ];
        for (name, frame, want) in cases {
            assert_eq!(translate(&frame, &bot), want, "{name}");
        }
        // A reply in a thread is still a new message.
        let reply = with(&|a| a["parent"] = json!({"id": "root", "type": "reply"}));
        assert!(matches!(translate(&reply, &bot), Frame::Message(_)));
    }

    #[test]
    fn socket_url_adds_the_query_once() {
        let url =
            socket_url("wss://mercury-connection-a.wbx2.com/v1/apps/wx2/registrations/D/messages")
                .unwrap();
        assert_eq!(
            url.query(),
            Some("outboundWireFormat=text&bufferStates=true&aliasHttpStatus=true")
        );
        let url = socket_url("wss://m.example/x?bufferStates=true&a=b").unwrap();
        assert_eq!(
            url.query(),
            Some("bufferStates=true&a=b&outboundWireFormat=text&aliasHttpStatus=true")
        );
        assert!(socket_url("https://m.example/x").is_err());
        assert!(socket_url("not a url").is_err());
    }

    #[test]
    fn backoff_doubles_to_32_seconds() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 32, 32, 32]);
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(32));
        for n in 1..=8 {
            let d = jittered(backoff(n));
            assert!(d >= backoff(n) / 2 && d <= backoff(n), "{d:?}");
        }
    }

    #[test]
    fn a_socket_is_dead_when_nothing_came_since_the_last_ping() {
        let t0 = Instant::now();
        let later = t0 + Duration::from_secs(1);
        assert!(alive(t0, None), "no ping sent yet");
        assert!(alive(later, Some(t0)), "pong after the ping");
        assert!(!alive(t0, Some(later)), "nothing since the ping");
    }

    #[test]
    fn our_device_is_found_by_name() {
        let dev = |name: &str, n: u8| json!({"url": format!("https://wdm/devices/{n}"), "webSocketUrl": format!("wss://m/{n}"), "name": name});
        let found = pick_device(vec![
            json!({"name": DEVICE_NAME}), // no urls: skipped
            dev("python-spark-client", 1),
            dev(DEVICE_NAME, 2),
            dev(DEVICE_NAME, 3),
        ])
        .unwrap();
        assert_eq!(found.url, "https://wdm/devices/2");
        assert_eq!(found.id(), "2");
        assert!(pick_device(vec![dev("other", 1)]).is_none());
        assert!(pick_device(vec![]).is_none());
    }

    #[test]
    fn urls_keep_their_path() {
        let u2c = Url::parse("https://u2c.wbx2.com/u2c/api/v1").unwrap();
        assert_eq!(
            under(&u2c, "catalog").unwrap().as_str(),
            "https://u2c.wbx2.com/u2c/api/v1/catalog"
        );
        let slash = Url::parse("http://127.0.0.1:9/wdm/").unwrap();
        assert_eq!(
            under(&slash, "devices").unwrap().as_str(),
            "http://127.0.0.1:9/wdm/devices"
        );
        assert_eq!(default_wdm().as_str(), DEFAULT_WDM_URL);
    }

    #[test]
    fn the_device_body_has_every_field() {
        let body = device_body();
        for key in [
            "deviceName",
            "deviceType",
            "localizedModel",
            "model",
            "name",
            "systemName",
            "systemVersion",
        ] {
            assert!(body[key].is_string(), "{key}");
        }
        assert_eq!(body["deviceType"], "DESKTOP");
        assert_eq!(body["name"], DEVICE_NAME);
    }
    #[test]
    fn listed_messages_for_someone_else_are_skipped() {
        let bot = webex::PersonId::new(BOT);
        let message = |person: &str, email: &str, mentioned: &[&str]| webex::Message {
            id: webex::MessageId::new("M"),
            room_id: webex::RoomId::new("R"),
            person_id: Some(webex::PersonId::new(person)),
            person_email: Some(email.to_owned()),
            mentioned_people: mentioned.iter().map(|p| webex::PersonId::new(*p)).collect(),
            ..webex::Message::default()
        };
        let alice = rest_id("PEOPLE", ALICE_UUID);
        let plain = message(&alice, "alice@example.com", &[]);
        assert_eq!(skip_reason(&plain, false, &bot), None);
        assert_eq!(skip_reason(&plain, true, &bot), Some("not_mentioned"));
        let mention = message(&alice, "alice@example.com", &[BOT]);
        assert_eq!(skip_reason(&mention, true, &bot), None);
        let own = message(BOT, "helpbot@webex.bot", &[]);
        assert_eq!(skip_reason(&own, false, &bot), Some("own_message"));
        let own_raw = message(BOT_UUID, "helpbot@webex.bot", &[]);
        assert_eq!(skip_reason(&own_raw, false, &bot), Some("own_message"));
        let other_bot = message(&alice, "Other@Webex.Bot", &[BOT]);
        assert_eq!(skip_reason(&other_bot, true, &bot), Some("bot_sender"));
    }

    #[test]
    fn times_compare_with_the_cursor() {
        // 2026-11-20T09:20:00Z
        let at = 1_795_166_400_000;
        assert!(at_or_after(Some("2026-11-20T09:20:00.000Z"), at));
        assert!(at_or_after(Some("2026-11-20T10:20:00.001+01:00"), at));
        assert!(!at_or_after(Some("2026-11-20T09:19:59.999Z"), at));
        // Unknown or unreadable: fetched (the inbox deduplicates).
        assert!(at_or_after(None, at));
        assert!(at_or_after(Some("yesterday"), at));
    }
}
