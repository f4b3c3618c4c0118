//! `FEEDBACK_BUTTONS` (DESIGN §10.3): after an LLM answer's last part, whole or streamed,
//! a small 👍/👎 card as its own message in the same room and thread, and the answer it
//! rates kept with the card's id so a click is stored with it.
//!
//! The answer's parts are recorded as posted before the card goes out, so an attempt after
//! a crash (or another replica after a lost lease) posts the card and never the answer
//! again. The card is a courtesy: when Webex refuses it the answer still counts as
//! delivered and its turns are stored.

use super::{Context, Disposition, reply};
use crate::domain::Outcome;
use crate::lease::RoomLease;
use crate::state::AppState;
use crate::store::{FeedbackAnswer, PendingEvent};

/// Posts the feedback card after an answered event, when `FEEDBACK_BUTTONS` is on; passes
/// every other disposition through.
pub(super) async fn follow(
    state: &AppState,
    lease: &RoomLease,
    event: &PendingEvent,
    ctx: &Context,
    disposition: Disposition,
) -> Disposition {
    if !state.config.feedback_buttons {
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
        .find(|t| t.role == crate::domain::Role::Assistant)
        .map(|t| t.content.clone())
        .unwrap_or_default();
    let done = Disposition::Done {
        outcome: Outcome::Answered,
        turns: Some((conversation, turns)),
    };
    let parts = i64::try_from(reply::parts_of(state, &answer).len()).unwrap_or(i64::MAX);
    if let Err(e) = state.store.set_parts_sent(event.seq, parts).await {
        tracing::warn!(error = %e, "cannot record the answer as posted; no feedback card");
        return done;
    }
    let progress = reply::Progress {
        already_sent: parts,
        ..reply::Progress::of(event)
    };
    let card = crate::cards::feedback();
    match reply::post_card(state, lease, progress, &ctx.target, &card).await {
        Ok(Some(posted)) => {
            let Disposition::Done {
                turns: Some((conversation, _)),
                ..
            } = &done
            else {
                return done;
            };
            let kept = state
                .store
                .save_feedback_answer(&FeedbackAnswer {
                    card_message_id: posted.id.as_str(),
                    room_id: &event.room_id,
                    conversation,
                    question_message_id: &event.message_id,
                    answer: &answer,
                })
                .await;
            if let Err(e) = kept {
                tracing::warn!(error = %e, "cannot keep the answer of a feedback card; its votes will not be stored");
            }
            done
        }
        // An earlier attempt posted it (and kept its answer).
        Ok(None) => done,
        Err(reply::PostError::LeaseLost) => Disposition::LeaseLost,
        Err(reply::PostError::Webex(e)) => {
            tracing::warn!(error = %e, "Webex refused the feedback card; the answer stands without it");
            done
        }
    }
}
