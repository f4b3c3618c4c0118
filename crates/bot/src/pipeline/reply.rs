//! Posting an answer: split under Webex's size limit, in order, resuming after the parts an
//! earlier attempt already posted. Each part is posted only after the store confirms it is
//! still this worker's to post (room lease held, event pending, part not yet recorded), so a
//! replica that lost the room does not answer in it.

use crate::dispatcher::RoomLease;
use crate::state::AppState;

#[derive(Debug)]
pub enum PostError {
    Webex(webex::Error),
    /// The room's lease is gone (or the event was handled elsewhere): the replica that
    /// holds the room now finishes the event.
    LeaseLost,
}

/// Where an answer goes: the room, and the thread root in group spaces.
#[derive(Clone, Debug)]
pub struct Target {
    pub room_id: webex::RoomId,
    pub parent_id: Option<webex::MessageId>,
}

pub async fn post(
    state: &AppState,
    lease: &RoomLease,
    seq: i64,
    already_sent: i64,
    target: &Target,
    markdown: &str,
) -> Result<(), PostError> {
    let parts = webex::split::split_markdown(markdown, webex::split::MAX_MESSAGE_BYTES);
    let already = usize::try_from(already_sent).unwrap_or(0);
    for (index, part) in parts.into_iter().enumerate().skip(already) {
        let message = webex::NewMessage {
            room_id: target.room_id.clone(),
            parent_id: target.parent_id.clone(),
            markdown: Some(part),
            text: None,
        };
        let part = i64::try_from(index).unwrap_or(i64::MAX);
        if !lease.confirm_post(seq, part).await {
            return Err(PostError::LeaseLost);
        }
        state
            .webex
            .create_message(&message)
            .await
            .map_err(PostError::Webex)?;
        state.metrics.replies_sent.inc();
        let sent = i64::try_from(index + 1).unwrap_or(i64::MAX);
        if let Err(e) = state.store.set_parts_sent(seq, sent).await {
            // Only matters if we also crash now: a retry would repeat this part.
            tracing::warn!(error = %e, "cannot record the posted part");
        }
    }
    Ok(())
}
