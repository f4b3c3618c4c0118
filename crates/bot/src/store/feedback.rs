//! Feedback buttons (`FEEDBACK_BUTTONS`, DESIGN §10.3): the answers that got a 👍/👎 card,
//! and one vote per person and card, the latest click winning.

use super::*;

/// An answer that was followed by a feedback card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedbackAnswer<'a> {
    /// The feedback card's message id: a click names it (`messageId`).
    pub card_message_id: &'a str,
    pub room_id: &'a str,
    pub conversation: &'a ConversationKey,
    /// The question's message id (the inbox event that was answered).
    pub question_message_id: &'a str,
    /// The answer as the LLM gave it (before splitting).
    pub answer: &'a str,
}

/// What a click did to the stored votes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vote {
    /// A first vote by this person on this card, or a changed one.
    Counted,
    /// The same vote again, or an older click arriving after a newer one: nothing changed.
    Unchanged,
    /// The card is not a feedback card this bot posted (or it was forgotten).
    UnknownCard,
}

/// Votes as they stand (each person's latest per card).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FeedbackCounts {
    pub up: i64,
    pub down: i64,
}

impl Store {
    /// Records the answer a feedback card rates (once; a repeated post keeps the first).
    pub async fn save_feedback_answer(&self, a: &FeedbackAnswer<'_>) -> Result<()> {
        query(
            "INSERT INTO feedback_answers (card_message_id, room_id, conversation, question_message_id, answer, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (card_message_id) DO NOTHING",
        )
        .bind(a.card_message_id)
        .bind(a.room_id)
        .bind(a.conversation.as_str())
        .bind(a.question_message_id)
        .bind(a.answer)
        .bind(now_ms())
        .execute(&mut self.conn().await?)
        .await?;
        Ok(())
    }

    /// The answer a feedback card rates, if this bot posted that card.
    pub async fn feedback_answer(&self, card_message_id: &str) -> Result<Option<String>> {
        let row = query("SELECT answer FROM feedback_answers WHERE card_message_id = $1")
            .bind(card_message_id)
            .fetch_optional(&mut self.conn().await?)
            .await?;
        row.map(|r| r.try_get("answer")).transpose()
    }

    /// Records `person`'s vote (`up` or `down`) on a feedback card, clicked at `at_ms`. One
    /// vote per person and card: a later click replaces an earlier one, an older one (a
    /// delivery that arrived late) changes nothing, and the same value again is not a change.
    pub async fn record_vote(
        &self,
        card_message_id: &str,
        person: &str,
        value: &str,
        at_ms: i64,
    ) -> Result<Vote> {
        if self.feedback_answer(card_message_id).await?.is_none() {
            return Ok(Vote::UnknownCard);
        }
        let changed = query(
            "INSERT INTO feedback_votes (card_message_id, person, value, voted_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (card_message_id, person) DO UPDATE SET value = excluded.value, voted_at = excluded.voted_at \
             WHERE feedback_votes.voted_at <= excluded.voted_at AND feedback_votes.value <> excluded.value \
             RETURNING value",
        )
        .bind(card_message_id)
        .bind(person)
        .bind(value)
        .bind(at_ms)
        .fetch_all(&mut self.conn().await?)
        .await?;
        Ok(if changed.is_empty() {
            Vote::Unchanged
        } else {
            Vote::Counted
        })
    }

    /// Each person's latest vote per card, counted (for `status`).
    pub async fn feedback_counts(&self) -> Result<FeedbackCounts> {
        let row = query(
            "SELECT \
               (SELECT COUNT(*) FROM feedback_votes WHERE value = 'up') AS up, \
               (SELECT COUNT(*) FROM feedback_votes WHERE value = 'down') AS down",
        )
        .fetch_one(&mut self.conn().await?)
        .await?;
        Ok(FeedbackCounts {
            up: row.try_get("up")?,
            down: row.try_get("down")?,
        })
    }
}
