//! `FEEDBACK_BUTTONS` (DESIGN §10.3): after an LLM answer's last part, whole or streamed,
//! a small 👍/👎 card as its own message in the same room and thread, and the answer it
//! rates kept with the card's id so a click is stored with it.
//!
//! The answer's parts are recorded as posted before the card goes out, so an attempt after
//! a crash (or another replica after a lost lease) posts the card and never the answer
//! again. The card is a courtesy: when Webex refuses it the answer still counts as
//! delivered and its turns are stored.

use super::{Context, Disposition, reply};
use crate::domain::{ConversationKey, Outcome, Role};
use crate::store::{FeedbackAnswer, PendingEvent};

/// Posts the feedback card after an answered event, when `FEEDBACK_BUTTONS` (`enabled`)
/// is on; passes every other disposition through.
pub(super) async fn follow(
    enabled: bool,
    post: reply::Poster<'_>,
    event: &PendingEvent,
    ctx: &Context,
    disposition: Disposition,
) -> Disposition {
    if !enabled {
        return disposition;
    }
    let Disposition::Done {
        outcome: Outcome::Answered,
        turns: Some((conversation, turns)),
    } = disposition
    else {
        return disposition;
    };
    let answer = turns
        .iter()
        .rev()
        .find(|t| t.role == Role::Assistant)
        .map(|t| t.content.clone())
        .unwrap_or_default();
    if let Some(lost) = post_card(post, event, ctx, &conversation, &answer).await {
        return lost;
    }
    Disposition::Done {
        outcome: Outcome::Answered,
        turns: Some((conversation, turns)),
    }
}

/// Posts the card and keeps the answer it rates; `Some` only when the room's lease was
/// lost (the replica that holds the room now posts it). Any other failure is logged.
async fn post_card(
    post: reply::Poster<'_>,
    event: &PendingEvent,
    ctx: &Context,
    conversation: &ConversationKey,
    answer: &str,
) -> Option<Disposition> {
    let parts = i64::try_from(post.parts_of(answer).len()).unwrap_or(i64::MAX);
    if let Err(e) = post.store.set_parts_sent(event.seq, parts).await {
        tracing::warn!(error = %e, "cannot record the answer as posted; no feedback card");
        return None;
    }
    let progress = reply::Progress {
        already_sent: parts,
        ..reply::Progress::of(event)
    };
    let card = crate::cards::feedback();
    let posted = match post.post_card(progress, &ctx.target, &card).await {
        Ok(Some(posted)) => posted,
        // An earlier attempt posted it (and kept its answer).
        Ok(None) => return None,
        Err(reply::PostError::LeaseLost) => return Some(Disposition::LeaseLost),
        Err(reply::PostError::Webex(e)) => {
            tracing::warn!(error = %e, "Webex refused the feedback card; the answer stands without it");
            return None;
        }
    };
    let kept = post
        .store
        .save_feedback_answer(&FeedbackAnswer {
            card_message_id: posted.id.as_str(),
            room_id: &event.room_id,
            conversation,
            question_message_id: &event.message_id,
            answer,
        })
        .await;
    if let Err(e) = kept {
        tracing::warn!(error = %e, "cannot keep the answer of a feedback card; its votes will not be stored");
    }
    None
}
