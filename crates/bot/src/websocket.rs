//! `MODE=websocket`: Webex events over its Mercury websocket, so the bot needs no public URL.
//! The protocol (device registration, the socket, frames into events with REST ids) is
//! `webex::device` and `webex::mercury`; this module keeps a connection up (reconnecting
//! with backoff), records each event through the same step as a webhook delivery, and
//! after each (re)connection catches up by REST on what was sent while no socket was up.

use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use secrecy::SecretString;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use webex::device::{Device, DeviceService};
use webex::mercury::{self, Connection, Frame, Received, SocketError};

use crate::domain::IgnoreReason;
use crate::state::{AppState, WebhookStatus};
use crate::store::{Enqueued, EventKind, NewEvent, Store, StoreError, now_ms};

/// A ping goes out this often; a socket that sent nothing (not even the pong) by the next
/// ping is dead and is replaced.
const PING_EVERY: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Reconnection delays double from the first to the last, each randomized down to half.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(32);
/// A connection that stayed up this long resets the backoff; a shorter one (say, Mercury
/// closing it as "replaced" by another process with the same device) keeps growing it.
const STABLE_AFTER: Duration = Duration::from_secs(60);
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

// ---------------------------------------------------------------------------------------
// Connection: keep one up, reconnect with backoff
// ---------------------------------------------------------------------------------------

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

fn set_status(webhook: &Mutex<WebhookStatus>, status: &str) {
    if let Ok(mut w) = webhook.lock() {
        *w = WebhookStatus {
            note: Some(HEALTH_NOTE.into()),
            websocket: Some(status.into()),
            ..WebhookStatus::default()
        };
    }
}

/// `POST devices` refused with 401/403 is almost always the token.
fn token_hint(e: &webex::Error) -> &'static str {
    if matches!(e.status(), Some(401 | 403)) {
        " (is WEBEX_BOT_TOKEN valid?)"
    } else {
        ""
    }
}

/// Registers (or reuses) the device, then keeps a Mercury connection until shutdown, and
/// deletes the device. Errors before the first connection (no device) are fatal, like a
/// webhook registration failure is in webhook mode.
pub(crate) async fn start(state: &AppState, http: reqwest::Client) -> anyhow::Result<()> {
    set_status(&state.webhook, "connecting");
    let token = state.config.require_token()?.clone();
    let wdm = DeviceService::discover(
        http,
        token.clone(),
        state.config.webex_wdm_url.as_ref(),
        &state.config.webex_u2c_url,
    )
    .await;
    let device = match wdm.device().await {
        Ok(device) => device,
        Err(e) => {
            let hint = token_hint(&e);
            return Err(anyhow::Error::new(e).context(format!(
                "MODE=websocket: cannot register the bot's device with Webex{hint}"
            )));
        }
    };
    let span = tracing::info_span!("websocket");
    state
        .tasks
        .spawn(listen(state.clone(), wdm, device, token).instrument(span));
    Ok(())
}

async fn listen(state: AppState, wdm: DeviceService, mut device: Device, token: SecretString) {
    let stop = state.shutdown.clone();
    let cursor = Cursor::new(state.store.clone(), state.bot.id.clone());
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
                        let hint = token_hint(&e);
                        tracing::error!(error = %e, hint, "cannot register the device")
                    }
                }
            }
            Err(e) => tracing::warn!(error = format!("{e:#}"), "websocket connection failed"),
        }
        set_status(&state.webhook, "disconnected");
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
    set_status(&state.webhook, "stopped");
    wdm.delete(&device).await;
}

async fn connect_and_serve(
    state: &AppState,
    device: &Device,
    token: &SecretString,
    cursor: &Cursor,
    stop: &CancellationToken,
) -> anyhow::Result<Ended> {
    let mut connection = tokio::select! {
        () = stop.cancelled() => return Ok(Ended::Stopped),
        opened = Connection::open(device, token, CONNECT_TIMEOUT) => match opened {
            Ok(connection) => connection,
            Err(SocketError::DeviceGone) => return Ok(Ended::DeviceGone),
            Err(e) => return Err(e.into()),
        },
    };
    tracing::info!("websocket connected");
    set_status(&state.webhook, "connected");

    let connected_at = Instant::now();
    cursor.connected();
    // What was sent while no socket was up is fetched by REST while this one serves.
    let catching_up = stop.child_token();
    let (served, ()) = tokio::join!(
        async {
            let served = serve(state, &mut connection, cursor, stop).await;
            catching_up.cancel();
            served
        },
        catch_up_until_done(state, cursor, &catching_up),
    );
    cursor.save_seen().await;
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
    connection: &mut Connection,
    cursor: &Cursor,
    stop: &CancellationToken,
) -> anyhow::Result<Option<String>> {
    let mut pings = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_traffic = Instant::now();
    let mut last_ping: Option<Instant> = None;
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => {
                connection.close().await;
                return Ok(None);
            }
            _ = pings.tick() => {
                if !alive(last_traffic, last_ping) {
                    connection.close().await;
                    return Ok(Some("no pong".into()));
                }
                last_ping = Some(Instant::now());
                connection.ping().await?;
                continue;
            }
            received = connection.next() => received,
        };
        last_traffic = Instant::now();
        if received.delivered() {
            // The socket was up until now: everything sent before reached it.
            cursor.saw().await;
        }
        match received {
            // 4401/4403: the token was refused; reconnecting is still right (it may be a
            // passing fault), and the reason lands in the log.
            Received::Closed(why) | Received::Lost(why) => return Ok(Some(why)),
            Received::Text(text) => handle_frame(state, connection, &text).await?,
            // Websocket pings are answered by the socket itself; both count as traffic.
            Received::Other => {}
        }
    }
}

/// The inbox's kind of a Mercury event.
fn inbox_kind(kind: mercury::EventKind) -> EventKind {
    match kind {
        mercury::EventKind::Message => EventKind::Message,
        mercury::EventKind::CardAction => EventKind::CardAction,
        mercury::EventKind::Membership => EventKind::Membership,
    }
}

/// Why a skipped Mercury activity was ignored, as the metrics count it.
fn ignore_reason(skip: mercury::Skip) -> IgnoreReason {
    match skip {
        mercury::Skip::OwnMessage => IgnoreReason::OwnMessage,
        mercury::Skip::OtherEvent => IgnoreReason::OtherEvent,
        mercury::Skip::Malformed => IgnoreReason::Malformed,
    }
}

/// The inbox key and kind of an event, as a webhook delivery of it would have them (a
/// membership's key carries its time, see `record::inbox_key`).
fn inbox_entry(event: &mercury::Event) -> (String, EventKind) {
    let kind = inbox_kind(event.kind);
    let key = crate::record::inbox_key(kind, &event.id, event.published.as_deref());
    (key, kind)
}

/// Records an event in the inbox, through the step webhook deliveries take.
async fn record_event(state: &AppState, event: &mercury::Event) -> Result<Enqueued, StoreError> {
    let (key, kind) = inbox_entry(event);
    let new = NewEvent {
        message_id: &key,
        room_id: event.room_id.as_str(),
        payload: &event.summary,
        kind,
    };
    crate::record::record(state, &new, "websocket").await
}

/// Records an event in the inbox and acknowledges it; acknowledges everything else.
async fn handle_frame(
    state: &AppState,
    connection: &mut Connection,
    text: &str,
) -> anyhow::Result<()> {
    match mercury::translate(text, &state.bot.id) {
        Frame::Event(event) => {
            state.metrics.events_received.inc();
            if record_event(state, &event).await.is_err() {
                // Not recorded means not acknowledged: Mercury may deliver it again.
                return Ok(());
            }
            connection.ack(&event.envelope_id).await?;
        }
        Frame::Skipped { ack, reason } => {
            let reason = ignore_reason(reason);
            state.metrics.events_received.inc();
            state.metrics.ignored(reason);
            tracing::debug!(reason = reason.as_str(), "websocket event ignored");
            if let Some(id) = ack {
                connection.ack(&id).await?;
            }
        }
        Frame::Control { ack, event_type } => {
            tracing::debug!(event_type, "mercury event");
            if let Some(id) = ack {
                connection.ack(&id).await?;
            }
        }
        Frame::Pong => {}
        Frame::Malformed => {
            tracing::warn!(
                bytes = text.len(),
                "websocket frame is not a Mercury event; dropped"
            );
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Catching up: what was sent while no socket was up
// ---------------------------------------------------------------------------------------

/// Where catching up starts: the last time the socket delivered anything, kept in the
/// store so a restart knows it too. It moves only when nothing before it is left unfetched:
/// during a connection, once that connection's catch-up succeeded.
struct Cursor {
    inner: std::sync::Mutex<CursorState>,
    /// Where it is kept, under the bot's id.
    store: Store,
    bot: webex::PersonId,
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
    fn new(store: Store, bot: webex::PersonId) -> Cursor {
        Cursor {
            inner: std::sync::Mutex::default(),
            store,
            bot,
        }
    }

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
    async fn saw(&self) {
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
            self.save(at).await;
        }
    }

    /// The catch-up that started at `started` succeeded: everything sent before then is
    /// in the inbox, and the socket delivers the rest.
    async fn caught_up(&self, started: i64) {
        let at = self.with(|c| {
            c.seen = c.seen.max(started);
            c.caught_up = true;
            c.last_save = Some(Instant::now());
            c.seen
        });
        self.save(at).await;
    }

    /// The connection ended: saves the last frame's time if its catch-up succeeded.
    async fn save_seen(&self) {
        let at = self.with(|c| c.caught_up.then_some(c.seen));
        if let Some(at) = at {
            self.save(at).await;
        }
    }

    async fn save(&self, at: i64) {
        if let Err(e) = self.store.set_websocket_cursor(self.bot.as_str(), at).await {
            // The older value stays: the next catch-up fetches a little more than needed.
            tracing::warn!(error = %e, "cannot save the websocket cursor");
        }
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
                cursor.caught_up(started).await;
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
    const MESSAGE_UUID: &str = "c3d4e5f6-43bd-11e6-8ae9-dd5b3dfc565d";
    const ROOM_UUID: &str = "d1e2f3a4-43f1-3b58-9147-f14bb0c4d154";

    fn frame(verb: &str, actor: &str, object: Value, tags: &[&str]) -> String {
        json!({
            "id": "env-1",
            "data": {"eventType": "conversation.activity", "activity": {
                "id": MESSAGE_UUID,
                "verb": verb,
                "actor": {"id": actor, "objectType": "person"},
                "object": object,
                "target": {"id": ROOM_UUID, "objectType": "conversation", "tags": tags},
                "published": "2026-11-20T09:20:00.000Z",
            }},
        })
        .to_string()
    }

    fn event(text: &str) -> mercury::Event {
        match mercury::translate(text, &webex::PersonId::new(BOT)) {
            Frame::Event(event) => event,
            other => panic!("not an event: {other:?}"),
        }
    }

    #[test]
    fn mercury_events_are_keyed_as_webhook_deliveries() {
        let post = event(&frame("post", ALICE_UUID, json!({}), &["ONE_ON_ONE"]));
        assert_eq!(
            inbox_entry(&post),
            (webex::rest_id("MESSAGE", MESSAGE_UUID), EventKind::Message)
        );
        let card = event(&frame("cardAction", ALICE_UUID, json!({}), &["ONE_ON_ONE"]));
        assert_eq!(
            inbox_entry(&card),
            (
                webex::rest_id("ATTACHMENT_ACTION", MESSAGE_UUID),
                EventKind::CardAction
            )
        );
        // A membership is keyed with its time, so a bot removed and added again is
        // greeted again.
        let added = event(&frame(
            "add",
            ALICE_UUID,
            json!({"id": BOT_UUID, "objectType": "person"}),
            &["GROUP"],
        ));
        let membership = webex::rest_id("MEMBERSHIP", &format!("{BOT_UUID}:{ROOM_UUID}"));
        assert_eq!(
            inbox_entry(&added),
            (
                format!("{membership}@2026-11-20T09:20:00.000Z"),
                EventKind::Membership
            )
        );
    }

    #[test]
    fn skipped_activities_count_under_their_reason() {
        assert_eq!(
            ignore_reason(mercury::Skip::OwnMessage),
            IgnoreReason::OwnMessage
        );
        assert_eq!(
            ignore_reason(mercury::Skip::OtherEvent),
            IgnoreReason::OtherEvent
        );
        assert_eq!(
            ignore_reason(mercury::Skip::Malformed),
            IgnoreReason::Malformed
        );
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
        let alice = webex::rest_id("PEOPLE", ALICE_UUID);
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
