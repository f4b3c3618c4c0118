//! Posting an answer: split under Webex's size limit, in order, resuming after the parts an
//! earlier attempt already posted. Each part is posted only after the store confirms it is
//! still this worker's to post (room lease held, event pending, part not yet recorded), so a
//! replica that lost the room does not answer in it.
//!
//! Webex has no idempotency keys: an attempt that died after Webex accepted a part but before
//! the store recorded it would repeat that part. So in a direct space a later attempt first
//! looks at the room's newest messages and skips the part when the bot already posted exactly
//! it since the event arrived. In a group space Webex lets a bot list only the messages that
//! mention it (`mentionedPeople=me`), never its own replies, so no such look is possible
//! there: the part is posted again (once per crash at most). A look that fails is "not known
//! to be posted" too: a question is never dropped because the check could not be made.
//!
//! Everything posted is made inert first ([`webex::mention::neutralize_mentions`]: the LLM
//! cannot ping a space) and cut at `MAX_REPLY_PARTS` messages.

use crate::lease::RoomLease;
use crate::metrics::Metrics;
use crate::state::BotIdentity;
use crate::store::Store;

/// What posting into a room needs: Webex, the room's lease (confirmed before each part),
/// the store (parts recorded as posted), the metrics, who the bot is (to find its own
/// messages) and `MAX_REPLY_PARTS`.
#[derive(Clone, Copy)]
pub(crate) struct Poster<'a> {
    pub webex: &'a webex::Client,
    pub lease: &'a RoomLease,
    pub store: &'a Store,
    pub metrics: &'a Metrics,
    pub bot: &'a BotIdentity,
    pub max_parts: usize,
}

#[derive(Debug)]
pub enum PostError {
    Webex(webex::Error),
    /// The room's lease is gone (or the event was handled elsewhere): the replica that
    /// holds the room now finishes the event.
    LeaseLost,
}

/// How far an earlier attempt got.
#[derive(Clone, Copy, Debug)]
pub struct Progress {
    pub seq: i64,
    /// Parts the store has recorded as posted.
    pub already_sent: i64,
    /// Set when an earlier attempt ran: it may have posted the next part without recording
    /// it. The value is when the event arrived (unix ms): only later messages can be ours.
    pub check_since_ms: Option<i64>,
    /// A fresh LLM answer: keep it with the event before its first part is posted.
    pub save_answer: bool,
}

impl Progress {
    /// How far the earlier attempts at `event` got.
    pub fn of(event: &crate::store::PendingEvent) -> Progress {
        Progress {
            seq: event.seq,
            already_sent: event.parts_sent,
            check_since_ms: (event.attempts > 1).then_some(event.received_at),
            save_answer: false,
        }
    }
}

/// Messages of the room looked at when checking for a part an earlier attempt posted.
const RECENT_MESSAGES: u32 = 20;
/// Clock skew allowed between this host and Webex when comparing creation times.
const SKEW_MS: i64 = 120_000;

/// Whether the bot is known to have posted `part` in this room or thread since `since_ms`.
/// `false` when it cannot be known: in a group space, or when Webex does not answer.
async fn already_posted(
    webex: &webex::Client,
    bot: &BotIdentity,
    target: &Target,
    part: &str,
    since_ms: i64,
) -> bool {
    if target.group {
        return false;
    }
    let recent = match webex
        .list_messages(&target.room_id, target.parent_id.as_ref(), RECENT_MESSAGES)
        .await
    {
        Ok(recent) => recent,
        Err(e) => {
            tracing::warn!(error = %e, "cannot check whether an earlier attempt posted the answer; posting it");
            return false;
        }
    };
    let part = part.trim();
    recent.iter().any(|m| {
        let by_bot = m
            .person_id
            .as_ref()
            .is_some_and(|p| bot.id.same_person(p.as_str()));
        let recent_enough = m
            .created
            .as_deref()
            .and_then(|c| {
                time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok()
            })
            .is_none_or(|t| {
                i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
                    >= since_ms - SKEW_MS
            });
        let same = m.markdown.as_deref().map(str::trim) == Some(part)
            || m.text.as_deref().map(str::trim) == Some(part);
        by_bot && recent_enough && same
    })
}

/// Where an answer goes: the room, and the thread root in group spaces.
#[derive(Clone, Debug)]
pub struct Target {
    pub room_id: webex::RoomId,
    pub parent_id: Option<webex::MessageId>,
    /// A group space (or one of unknown type): the bot cannot list its own replies there.
    pub group: bool,
}

impl Poster<'_> {
    /// The messages an answer is posted as: mentions made inert, split under Webex's limit,
    /// cut at `MAX_REPLY_PARTS`. The same text always gives the same parts (an attempt after
    /// a crash resumes by part index).
    pub fn parts_of(&self, markdown: &str) -> Vec<String> {
        let safe = webex::mention::neutralize_mentions(markdown);
        let (parts, cut) = webex::split::split_markdown_at_most(
            &safe,
            webex::split::MAX_MESSAGE_BYTES,
            self.max_parts,
            crate::strings::ANSWER_CUT,
        );
        if cut {
            tracing::warn!(
                parts = parts.len(),
                "answer longer than MAX_REPLY_PARTS messages; cut"
            );
        }
        parts
    }

    pub async fn post(
        &self,
        progress: Progress,
        target: &Target,
        markdown: &str,
    ) -> Result<(), PostError> {
        let seq = progress.seq;
        let parts = self.parts_of(markdown);
        let count = parts.len();
        let mut save = progress.save_answer;
        let already = usize::try_from(progress.already_sent).unwrap_or(0);
        for (index, part) in parts.into_iter().enumerate().skip(already) {
            if index == already
                && let Some(since) = progress.check_since_ms
                && already_posted(self.webex, self.bot, target, &part, since).await
            {
                tracing::info!(
                    part = index,
                    "an earlier attempt posted this part; not repeating it"
                );
                let sent = i64::try_from(index + 1).unwrap_or(i64::MAX);
                if let Err(e) = self.store.set_parts_sent(seq, sent).await {
                    tracing::warn!(error = %e, "cannot record the posted part");
                }
                continue;
            }
            let message = webex::NewMessage {
                room_id: target.room_id.clone(),
                parent_id: target.parent_id.clone(),
                markdown: Some(part),
                text: None,
            };
            let part = i64::try_from(index).unwrap_or(i64::MAX);
            let keep_answer = std::mem::take(&mut save).then_some(markdown);
            if !self.lease.confirm_post(seq, part, keep_answer).await {
                return Err(PostError::LeaseLost);
            }
            self.webex
                .create_message(&message)
                .await
                .map_err(PostError::Webex)?;
            self.metrics.replies_sent.inc();
            // The last part is recorded by the caller marking the event done right after (one
            // statement less per message); if that fails, the next attempt's look at the
            // room's recent messages finds the part.
            if index + 1 == count {
                break;
            }
            let sent = i64::try_from(index + 1).unwrap_or(i64::MAX);
            if let Err(e) = self.store.set_parts_sent(seq, sent).await {
                // Only matters if we also crash now: a retry would repeat this part.
                tracing::warn!(error = %e, "cannot record the posted part");
            }
        }
        Ok(())
    }

    /// Posts one card with its markdown fallback (a whole answer in one message: `help`,
    /// `personality list`, the feedback buttons) under the same rules as [`Self::post`]: the lease
    /// is confirmed first, and an attempt after an earlier one first looks for the fallback
    /// among the room's recent messages (direct spaces). `Ok(None)`: an earlier attempt
    /// posted it. Cards are never edited afterwards: Webex refuses edits of messages with
    /// attachments.
    pub async fn post_card(
        &self,
        progress: Progress,
        target: &Target,
        card: &crate::cards::CardMessage,
    ) -> Result<Option<webex::Message>, PostError> {
        let message = card.to_message(target.room_id.clone(), target.parent_id.clone());
        let part = progress.already_sent;
        if let Some(since) = progress.check_since_ms
            && already_posted(self.webex, self.bot, target, &message.markdown, since).await
        {
            tracing::info!(
                part,
                "an earlier attempt posted this card; not repeating it"
            );
            return Ok(None);
        }
        if !self.lease.confirm_post(progress.seq, part, None).await {
            return Err(PostError::LeaseLost);
        }
        let posted = self
            .webex
            .create_card_message(&message)
            .await
            .map_err(PostError::Webex)?;
        self.metrics.replies_sent.inc();
        Ok(Some(posted))
    }
}
