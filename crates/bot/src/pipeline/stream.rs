//! An answer that appears while the model writes (DESIGN §10.2): when the whole answer is
//! not there `STREAM_FIRST_POST_MS` after the call started, its beginning (or the
//! personality's `thinking` text) is posted, then that message is edited as it grows.
//!
//! Webex allows 10 edits per message. The schedule spends at most 8 on unfinished
//! versions, each at least `STREAM_EDIT_MS` after the previous write and each gap 1.5
//! times the one before (1.5 s, 2.25 s, 3.4 s … with the default: the 8 cover about a
//! minute of writing, so a slow model does not run out of edits halfway), then one for the
//! finished answer, also at least `STREAM_EDIT_MS` after the previous write. The tenth is
//! kept for an attempt after a crash that must write the finished answer into the message.
//! An unfinished version is the beginning of the answer plus ` …`; nothing is written when
//! no new text came since the last write.
//!
//! Exactly once across crashes: the streamed message's id is recorded right after it is
//! posted (before any edit), and the finished answer is saved with the lease confirmation
//! before the final edit. An attempt after a crash that finds the id and no saved answer
//! deletes the unfinished message and answers afresh; with a saved answer it writes the
//! first part into the message (or, if that edit fails, deletes it and posts the whole
//! answer) and posts the rest. See docs/architecture.md.

use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::time::{Instant, sleep_until};

use super::reply::Poster;
use super::{Answering, Context, Disposition, reply, webex_failure};
use crate::chat::Prepared;
use crate::domain::Outcome;
use crate::store::Store;
use crate::strings;
use crate::tools::rounds::Delta;

/// Unfinished versions written at most; the finished one makes 9 edits, and one of
/// Webex's 10 is left for an attempt after a crash.
const MAX_UNFINISHED_EDITS: u32 = 8;
/// Each gap between unfinished versions is this much longer than the one before.
const GROWTH: f64 = 1.5;
/// Follows every unfinished version (DESIGN: a marker of at most 40 characters).
pub(crate) const MARKER: &str = " …";

/// The least time from the `n`-th unfinished edit's predecessor to it (n from 0).
fn gap(edit_every: Duration, n: u32) -> Duration {
    edit_every.mul_f64(GROWTH.powi(i32::try_from(n).unwrap_or(i32::MAX)))
}

/// What an unfinished answer shows: its beginning (mentions made inert) with the marker,
/// cut to fit one message; the thinking text while it has no words yet.
fn unfinished(text: &str, thinking: &str) -> String {
    let safe = webex::mention::neutralize_mentions(text);
    let safe = safe.trim_end();
    if safe.trim().is_empty() {
        return thinking.to_owned();
    }
    let limit = webex::split::MAX_MESSAGE_BYTES - MARKER.len();
    if safe.len() <= limit {
        return format!("{safe}{MARKER}");
    }
    // Past one message: its first part as far as it goes (where the finished answer's
    // first part will end, so the last edit does not jump back), still a beginning.
    let first = webex::split::split_markdown(safe, limit)
        .into_iter()
        .next()
        .unwrap_or_default();
    let mut end = first.len().min(limit);
    while !safe.is_char_boundary(end) {
        end -= 1;
    }
    if safe.starts_with(first.as_str()) {
        format!("{first}{MARKER}")
    } else {
        // The split closed a code block or escaped a fence: cut plainly instead.
        format!("{}{MARKER}", &safe[..end])
    }
}

/// Waits until `deadline`, or forever without one.
async fn until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Answers `question` by streaming; `progress` is this attempt's, with no answer saved.
pub(super) async fn answer(
    answering: &Answering<'_>,
    progress: reply::Progress,
    ctx: &Context,
    question: &str,
    prepared: Prepared,
) -> Disposition {
    let cfg = answering.streaming;
    let post = answering.post;
    let thinking = prepared
        .thinking
        .clone()
        .unwrap_or_else(|| strings::THINKING.to_owned());
    let thinking = thinking.as_str();
    let started = Instant::now();
    let observe = || {
        post.metrics
            .llm_latency
            .observe(started.elapsed().as_secs_f64());
    };
    // Opening the stream may itself take until the first words (providers answer their
    // headers late): the first-post timer runs from the call's start all the same. With
    // tools, the stream runs the model's calls between rounds (`tools::rounds`).
    // Notes about a message's files come first, in every version of the answer.
    let notice = prepared
        .notice
        .as_ref()
        .map(|n| format!("{n}\n\n"))
        .unwrap_or_default();
    let (mut stream, _driver) = drive(crate::chat::answer_stream(
        answering.runner.clone(),
        prepared,
        ctx.asker(),
    ));
    let mut message: Option<Streamed> = None;
    let mut text = notice.clone();
    // The text so far came before tool calls: the next text replaces it (until then it
    // stays shown while the tools run).
    let mut restart = false;
    let mut first_text = true;
    let first_post = started + cfg.first_post;
    // New text since the message was last written.
    let mut dirty = false;
    loop {
        let deadline = match &message {
            None => Some(first_post),
            Some(m) if dirty && m.can_edit_unfinished() => {
                Some(m.last_write + gap(cfg.edit_every, m.edits))
            }
            Some(_) => None,
        };
        let failure = tokio::select! {
            biased;
            item = stream.recv() => match item {
                Some(Ok(Delta::Restart)) => {
                    restart = text.len() > notice.len();
                    continue;
                }
                Some(Ok(Delta::Text(delta))) => {
                    if restart && !delta.is_empty() {
                        restart = false;
                        text.truncate(notice.len());
                    }
                    if first_text && !delta.is_empty() {
                        first_text = false;
                        post.metrics
                            .llm_first_token
                            .observe(started.elapsed().as_secs_f64());
                    }
                    dirty |= !delta.is_empty();
                    text.push_str(&delta);
                    continue;
                }
                Some(Err(e)) => e,
                None => break,
            },
            () = until(deadline) => {
                dirty = false;
                let version = unfinished(&text, thinking);
                match &mut message {
                    None => match Box::pin(Streamed::post(post, cfg.edit_every, progress.seq, ctx, version)).await {
                        Ok(posted) => message = Some(posted),
                        Err(disposition) => return disposition,
                    },
                    Some(m) => {
                        if version != m.shown
                            && let Err(lost) = Box::pin(m.edit(post, version, None)).await
                        {
                            return lost;
                        }
                    }
                }
                continue;
            }
        };
        // The LLM failed (opening, or midway).
        observe();
        return match message {
            None => Box::pin(super::apologise(post, progress, ctx, failure)).await,
            Some(m) => {
                tracing::warn!(error = %failure, "LLM failed mid-answer; the message becomes the apology");
                Box::pin(m.apologise(post, progress, ctx)).await
            }
        };
    }
    observe();
    if restart {
        // The last round ended in tool calls and no answer followed.
        text.truncate(notice.len());
    }
    let Some(message) = message else {
        // Whole before the first post: posted once, unedited.
        if text[notice.len()..].trim().is_empty() {
            tracing::warn!("the LLM's answer is empty; apologising");
            return Box::pin(super::post_apology(post, progress, ctx)).await;
        }
        let fresh = reply::Progress {
            already_sent: 0,
            save_answer: true,
            ..progress
        };
        return Box::pin(super::answered(post, fresh, ctx, question, text)).await;
    };
    if text[notice.len()..].trim().is_empty() {
        tracing::warn!("the LLM's answer is empty; the message becomes the apology");
        return Box::pin(message.apologise(post, progress, ctx)).await;
    }
    // Boxed, like every post and edit above: see `super::run`.
    Box::pin(message.finish(post, progress, ctx, question, text)).await
}

/// Runs the answer's stream (the LLM rounds and the tool calls between them, which use
/// the store) on a task of its own, handing its items over a channel. Polled only from the
/// loop above, it would stand still half-way through a store call whenever the loop posts
/// or edits (which needs the store too, to confirm the lease) and wait on itself until the
/// lease ran out. The task ends with the stream, or is aborted when the returned handle is
/// dropped (the answer is over or given up).
fn drive(
    mut stream: crate::tools::rounds::DeltaStream,
) -> (
    tokio::sync::mpsc::Receiver<Result<Delta, llm::LlmError>>,
    tokio_util::task::AbortOnDropHandle<()>,
) {
    use tracing::Instrument as _;
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    let task = tokio::spawn(
        async move {
            while let Some(item) = stream.next().await {
                if tx.send(item).await.is_err() {
                    break;
                }
            }
        }
        .in_current_span(),
    );
    (rx, tokio_util::task::AbortOnDropHandle::new(task))
}

/// An attempt after a crash mid-stream, before the answer was saved: the unfinished
/// message is deleted (and forgotten) so the new attempt's answer is the only one.
pub(super) async fn discard(
    webex: &webex::Client,
    store: &Store,
    seq: i64,
    message_id: &str,
) -> Result<(), Disposition> {
    let id = webex::MessageId::new(message_id.to_owned());
    match webex.delete_message(&id).await {
        Ok(()) => tracing::info!("deleted the unfinished message of an earlier attempt"),
        Err(e) if e.is_not_found() => {}
        Err(e) => {
            return Err(webex_failure(
                e,
                "deleting an earlier attempt's unfinished message",
            ));
        }
    }
    store
        .set_stream_message(seq, None)
        .await
        .map_err(|e| Disposition::Retry {
            cause: anyhow::Error::new(e).context("forgetting the unfinished message"),
        })
}

/// An attempt after a crash after the answer was saved and before its first part was
/// recorded: the final edit may or may not have happened; it is written (again).
pub(super) async fn resume(
    post: Poster<'_>,
    edit_every: Duration,
    progress: reply::Progress,
    ctx: &Context,
    question: &str,
    answer: String,
    message_id: &str,
) -> Disposition {
    let message = Streamed {
        id: webex::MessageId::new(message_id.to_owned()),
        target: ctx.target.clone(),
        seq: progress.seq,
        shown: String::new(),
        // Unknown; only the finished version is written now.
        edits: MAX_UNFINISHED_EDITS,
        last_write: Instant::now() - edit_every,
        edit_every,
        failed: false,
    };
    message.finish(post, progress, ctx, question, answer).await
}

/// The message an answer is being streamed into.
struct Streamed {
    id: webex::MessageId,
    target: reply::Target,
    seq: i64,
    /// What the message shows now.
    shown: String,
    /// Edits Webex accepted.
    edits: u32,
    last_write: Instant,
    /// `STREAM_EDIT_MS`: the least time between two writes.
    edit_every: Duration,
    /// An edit was refused: no more edits; the finished answer is posted whole.
    failed: bool,
}

impl Streamed {
    /// Posts the first version and records its id before any edit.
    async fn post(
        post: Poster<'_>,
        edit_every: Duration,
        seq: i64,
        ctx: &Context,
        first: String,
    ) -> Result<Streamed, Disposition> {
        if !post.lease.confirm_post(seq, 0, None).await {
            return Err(Disposition::LeaseLost);
        }
        let new = webex::NewMessage {
            room_id: ctx.target.room_id.clone(),
            parent_id: ctx.target.parent_id.clone(),
            markdown: Some(first.clone()),
            text: None,
        };
        let posted = post
            .webex
            .create_message(&new)
            .await
            .map_err(|e| webex_failure(e, "posting the start of a streamed answer"))?;
        post.metrics.replies_sent.inc();
        if let Err(e) = post
            .store
            .set_stream_message(seq, Some(posted.id.as_str()))
            .await
        {
            // Only matters if we also crash now: the unfinished message would stay.
            tracing::warn!(error = %e, "cannot record the streamed message");
        }
        Ok(Streamed {
            id: posted.id,
            target: ctx.target.clone(),
            seq,
            shown: first,
            edits: 0,
            last_write: Instant::now(),
            edit_every,
            failed: false,
        })
    }

    fn can_edit_unfinished(&self) -> bool {
        !self.failed && self.edits < MAX_UNFINISHED_EDITS
    }

    /// Writes `version` into the message (after confirming the room's lease, saving
    /// `save` as the answer in the same step). A refused edit marks the message failed;
    /// only a lost lease is an error.
    async fn edit(
        &mut self,
        post: Poster<'_>,
        version: String,
        save: Option<&str>,
    ) -> Result<(), Disposition> {
        if !post.lease.confirm_post(self.seq, 0, save).await {
            return Err(Disposition::LeaseLost);
        }
        match post
            .webex
            .edit_message(&self.id, &self.target.room_id, &version)
            .await
        {
            Ok(_) => {
                post.metrics.stream_edits.inc();
                self.edits += 1;
                self.shown = version;
                self.last_write = Instant::now();
            }
            Err(e) => {
                tracing::warn!(error = %e, edits = self.edits, "Webex refused an edit of the streamed answer; it will be posted whole");
                post.metrics.stream_edit_failures.inc();
                self.failed = true;
            }
        }
        Ok(())
    }

    /// The finished answer: its first part written into the message, the rest posted
    /// after it; or, when the message cannot be edited, deleted and the whole answer
    /// posted.
    async fn finish(
        mut self,
        post: Poster<'_>,
        progress: reply::Progress,
        ctx: &Context,
        question: &str,
        answer: String,
    ) -> Disposition {
        let parts = post.parts_of(&answer);
        if !self.failed {
            sleep_until(self.last_write + self.edit_every).await;
            let first = parts.first().cloned().unwrap_or_default();
            if let Err(lost) = self.edit(post, first, Some(&answer)).await {
                return lost;
            }
        }
        let progress = if self.failed {
            self.remove(post).await;
            reply::Progress {
                already_sent: 0,
                save_answer: true,
                check_since_ms: None,
                ..progress
            }
        } else {
            if parts.len() > 1
                && let Err(e) = post.store.set_parts_sent(self.seq, 1).await
            {
                tracing::warn!(error = %e, "cannot record the posted part");
            }
            reply::Progress {
                already_sent: 1,
                save_answer: false,
                check_since_ms: None,
                ..progress
            }
        };
        super::answered(post, progress, ctx, question, answer).await
    }

    /// The LLM failed midway: the message becomes the apology (or, when it cannot be
    /// edited, is deleted and the apology posted).
    async fn apologise(
        mut self,
        post: Poster<'_>,
        progress: reply::Progress,
        ctx: &Context,
    ) -> Disposition {
        if !self.failed {
            sleep_until(self.last_write + self.edit_every).await;
            if let Err(lost) = self
                .edit(post, strings::LLM_UNAVAILABLE.to_owned(), None)
                .await
            {
                return lost;
            }
            if !self.failed {
                return Disposition::Done {
                    outcome: Outcome::LlmError,
                    turns: None,
                };
            }
        }
        self.remove(post).await;
        super::post_apology(post, progress, ctx).await
    }

    /// Deletes the unfinished message (best effort: the whole answer follows anyway).
    async fn remove(&self, post: Poster<'_>) {
        match post.webex.delete_message(&self.id).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => {}
            Err(e) => tracing::warn!(error = %e, "cannot delete the unfinished streamed message"),
        }
        if let Err(e) = post.store.set_stream_message(self.seq, None).await {
            tracing::warn!(error = %e, "cannot forget the streamed message");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_grow_and_cover_a_minute() {
        let every = Duration::from_millis(1500);
        assert_eq!(gap(every, 0), every);
        assert!(gap(every, 1) > gap(every, 0));
        let total: Duration = (0..MAX_UNFINISHED_EDITS).map(|n| gap(every, n)).sum();
        assert!(total > Duration::from_secs(60), "{total:?}");
    }

    #[test]
    fn unfinished_versions_are_beginnings_with_a_marker() {
        assert_eq!(unfinished("", "…"), "…");
        assert_eq!(unfinished("  \n", "Thinking"), "Thinking");
        assert_eq!(unfinished("Hello wor", "…"), "Hello wor …");
        assert_eq!(unfinished("Hello \n", "…"), "Hello …");
        assert_eq!(unfinished("Hi <@all", "…"), "Hi <\u{200B}@all …");
        let long = "é".repeat(5000);
        let version = unfinished(&long, "…");
        assert!(version.len() <= webex::split::MAX_MESSAGE_BYTES);
        assert!(long.starts_with(version.trim_end_matches(MARKER)));
    }
}
