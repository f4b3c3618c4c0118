//! How one recorded event is handled (docs/architecture.md): fetch → sender checks → access →
//! command, or limits → chat → reply → store. This is the one error boundary per message: every
//! failure ends as a logged outcome, a retry later, or an apology; never a panic upward.

pub(crate) mod access;
pub(crate) mod actions;
pub(crate) mod commands;
mod feedback;
mod greeting;
mod limits;
pub(crate) mod reply;
mod sender;
mod stream;

use std::time::Duration;

use tracing::Instrument;

use crate::chat;
use crate::domain::{ConversationKey, Email, IgnoreReason, Outcome, Role, Turn};
use crate::lease::RoomLease;
use crate::state::AppState;
use crate::store::{EventKind, Finish, PendingEvent};
use crate::strings;
use sender::Incoming;

/// Attempts before an event is given up (each after a crash, a Webex outage, …).
const MAX_ATTEMPTS: i64 = 8;

/// How an attempt ended.
#[derive(Debug)]
pub(crate) enum Disposition {
    /// Finished: store the outcome (and turns when the LLM answered).
    Done {
        outcome: Outcome,
        turns: Option<(ConversationKey, Vec<Turn>)>,
    },
    /// A temporary failure (Webex or the store down): try again after a delay.
    Retry { cause: anyhow::Error },
    /// A permanent failure: log it and give up on this event.
    Failed {
        outcome: Outcome,
        cause: anyhow::Error,
    },
    /// The room's lease was lost before posting: leave the event as it is to the replica
    /// that holds the room now.
    LeaseLost,
}

fn retry_delay(attempt: i64) -> Duration {
    // 5 s, 10 s, 20 s … capped at 5 minutes.
    let exp = u32::try_from(attempt.clamp(1, 7) - 1).unwrap_or(0);
    Duration::from_secs((5u64 << exp).min(300))
}

/// Handles one event, taken by [`crate::store::Store::take_next`], to a durable end state
/// (done, or pending with a retry time), or leaves it untouched when the room's lease is
/// lost on the way.
pub async fn handle(state: &AppState, lease: &RoomLease, event: PendingEvent) {
    let span = tracing::info_span!("event", message_id = %event.message_id, seq = event.seq);
    async {
        // `take_next` counted this attempt.
        let attempt = event.attempts;
        let disposition = if attempt > MAX_ATTEMPTS {
            Disposition::Failed {
                outcome: Outcome::GaveUp,
                cause: anyhow::anyhow!("{MAX_ATTEMPTS} attempts failed"),
            }
        } else {
            run(state, lease, &event).await
        };
        let stored = match disposition {
            Disposition::Done { outcome, turns } => {
                tracing::info!(outcome = outcome.as_str(), "event handled");
                finish(state, event.seq, outcome, turns).await
            }
            Disposition::Retry { cause } => {
                let delay = retry_delay(attempt);
                tracing::warn!(
                    error = format!("{cause:#}"),
                    attempt,
                    retry_in_s = delay.as_secs(),
                    "temporary failure; will retry"
                );
                state.store.postpone(event.seq, delay).await
            }
            Disposition::Failed { outcome, cause } => {
                tracing::error!(
                    error = format!("{cause:#}"),
                    outcome = outcome.as_str(),
                    "event failed"
                );
                finish(state, event.seq, outcome, None).await
            }
            Disposition::LeaseLost => {
                tracing::warn!(
                    "room lease lost before posting; the replica holding the room handles the event"
                );
                Ok(())
            }
        };
        if let Err(e) = stored {
            tracing::error!(error = %e, "cannot store the event's outcome; it will be retried");
        }
    }
    .instrument(span)
    .await;
}

/// Counts the outcome and marks the event done with its turns. Finding it already
/// finished means another worker that held the room before this one recorded it (and its
/// turns) first.
async fn finish(
    state: &AppState,
    seq: i64,
    outcome: Outcome,
    turns: Option<(ConversationKey, Vec<Turn>)>,
) -> Result<(), crate::store::StoreError> {
    state.metrics.processed(outcome);
    let finish = Finish {
        outcome: outcome.as_str(),
        turns: turns.as_ref().map(|(k, t)| (k, t.as_slice())),
        keep_messages: crate::memory::messages_to_keep(state.config.memory_max_turns),
    };
    let result = state.store.finish(seq, finish).await;
    if let Ok(false) = result {
        tracing::warn!(
            "event was already finished by another worker; its turns are not stored twice"
        );
    }
    result.map(|_| ())
}

fn ignored(state: &AppState, reason: IgnoreReason) -> Disposition {
    tracing::info!(reason = reason.as_str(), "event ignored");
    state.metrics.ignored(reason);
    Disposition::Done {
        outcome: Outcome::Ignored,
        turns: None,
    }
}

/// Whether a Webex failure is worth trying again later.
fn webex_temporary(e: &webex::Error) -> bool {
    match e {
        webex::Error::RateLimited { .. } | webex::Error::Transport(_) => true,
        webex::Error::Http { status, .. } => *status >= 500 || *status == 423,
        _ => false,
    }
}

fn post_failure(e: reply::PostError, what: &'static str) -> Disposition {
    match e {
        reply::PostError::Webex(e) => webex_failure(e, what),
        reply::PostError::LeaseLost => Disposition::LeaseLost,
    }
}

fn webex_failure(e: webex::Error, what: &'static str) -> Disposition {
    let temporary = webex_temporary(&e);
    let cause = anyhow::Error::new(e).context(what);
    if temporary {
        Disposition::Retry { cause }
    } else {
        Disposition::Failed {
            outcome: Outcome::WebexError,
            cause,
        }
    }
}

async fn run(state: &AppState, lease: &RoomLease, event: &PendingEvent) -> Disposition {
    match event.kind {
        EventKind::Message => {}
        EventKind::CardAction => return actions::handle(state, lease, event).await,
        EventKind::Membership => return greeting::post(state, lease, event).await,
    }
    let message_id = webex::MessageId::new(event.message_id.clone());
    let message = match state.webex.get_message(&message_id).await {
        Ok(m) => m,
        Err(e) if e.is_not_found() => return ignored(state, IgnoreReason::MessageGone),
        Err(e) => return webex_failure(e, "fetching the message"),
    };

    let Incoming {
        sender,
        group,
        text,
    } = match sender::check(&state.bot, &message) {
        Ok(incoming) => incoming,
        Err(reason) => return ignored(state, reason),
    };

    let rights = match access::rights_of(state, &sender).await {
        Ok(Some(rights)) => rights,
        Ok(None) => {
            tracing::info!(sender = %sender, "ignored: sender is not approved");
            return ignored(state, IgnoreReason::Unapproved);
        }
        Err(e) => {
            return Disposition::Retry {
                cause: anyhow::Error::new(e).context("checking access"),
            };
        }
    };

    let mut ctx = Context::new(&message, sender, rights, group);

    // Attachments: only now, after access, are a message's files downloaded.
    let files = if message.files.is_empty() {
        None
    } else {
        match attachments(state, &ctx, &message.files, &text).await {
            Ok(gathered) => Some(gathered),
            Err(disposition) => return disposition,
        }
    };
    if let Some(gathered) = &files {
        ctx.images = gathered.images.clone();
        ctx.notice = gathered.notice();
    }
    let question = files
        .as_ref()
        .map_or(text.as_str(), |g| g.question.as_str());

    let progress = reply::Progress::of(event);
    let disposition = match resume(state, lease, event, progress, &ctx, question).await {
        Some(done) => done,
        None => match &files {
            // A message with files is a question about them (never a command).
            Some(gathered) if !gathered.ask_llm => files_unread(state, lease, progress, &ctx).await,
            Some(_) => llm_answer(state, lease, event, progress, &ctx, question).await,
            // Route: a command, the hint for an empty message, or the LLM.
            None => match crate::commands::parse(&text) {
                Some(command) => command_answer(state, lease, progress, &ctx, command).await,
                None if text.is_empty() => hint(state, lease, progress, &ctx).await,
                None => llm_answer(state, lease, event, progress, &ctx, &text).await,
            },
        },
    };
    // `FEEDBACK_BUTTONS`: the 👍/👎 card follows an answer's last part.
    feedback::follow(state, lease, event, &ctx, disposition).await
}

/// The LLM's answer, within the usage limits (a refusal instead when one is reached).
async fn llm_answer(
    state: &AppState,
    lease: &RoomLease,
    event: &PendingEvent,
    progress: reply::Progress,
    ctx: &Context,
    question: &str,
) -> Disposition {
    match limits::check(state, ctx, &event.message_id).await {
        Ok(None) => chat_answer(state, lease, progress, ctx, question).await,
        Ok(Some(refusal)) => limits::refuse(state, lease, progress, ctx, refusal).await,
        Err(e) => Disposition::Retry {
            cause: anyhow::Error::new(e).context("checking the usage limits"),
        },
    }
}

/// The attachments stage: the message's files as a user turn (see [`crate::attachments`]).
async fn attachments(
    state: &AppState,
    ctx: &Context,
    files: &[String],
    text: &str,
) -> Result<crate::attachments::Gathered, Disposition> {
    let vision = crate::chat::vision(state, ctx.target.room_id.as_str())
        .await
        .map_err(|e| Disposition::Retry {
            cause: anyhow::Error::new(e).context("reading the space's personality"),
        })?;
    crate::attachments::gather(
        &state.webex,
        &state.config.files,
        &state.attachments,
        files,
        text,
        vision,
    )
    .await
    .map_err(|e| webex_failure(e, "downloading a file"))
}

/// None of the message's files could be read and nothing else was asked: the notes
/// saying why are the answer, without an LLM call.
async fn files_unread(
    state: &AppState,
    lease: &RoomLease,
    progress: reply::Progress,
    ctx: &Context,
) -> Disposition {
    let answer = ctx.notice.clone().unwrap_or_default();
    match reply::post(state, lease, progress, &ctx.target, &answer).await {
        Ok(()) => Disposition::Done {
            outcome: Outcome::FilesUnread,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the notes about the files"),
    }
}

async fn command_answer(
    state: &AppState,
    lease: &RoomLease,
    progress: reply::Progress,
    ctx: &Context,
    command: crate::commands::Command,
) -> Disposition {
    tracing::info!(command = command.name(), sender = %ctx.sender, "command");
    let card_for = command.clone();
    let answer = match commands::run(state, ctx, command).await {
        Ok(answer) => answer,
        Err(e) => {
            return Disposition::Retry {
                cause: e.context("running the command"),
            };
        }
    };
    // `help` and `personality list` answer with a card, the typed answer as its fallback.
    let card = match commands::card(state, ctx, &card_for, &answer).await {
        Ok(card) => card,
        Err(e) => {
            return Disposition::Retry {
                cause: e.context("building the command's card"),
            };
        }
    };
    let posted = match &card {
        Some(card) => reply::post_card(state, lease, progress, &ctx.target, card)
            .await
            .map(drop),
        None => reply::post(state, lease, progress, &ctx.target, &answer).await,
    };
    match posted {
        Ok(()) => Disposition::Done {
            outcome: Outcome::Command,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the command answer"),
    }
}

async fn hint(
    state: &AppState,
    lease: &RoomLease,
    progress: reply::Progress,
    ctx: &Context,
) -> Disposition {
    match reply::post(state, lease, progress, &ctx.target, strings::EMPTY_MESSAGE).await {
        Ok(()) => Disposition::Done {
            outcome: Outcome::Empty,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the hint"),
    }
}

/// The LLM's answer: streamed into one edited message (`REPLY_STREAMING`), or whole.
async fn chat_answer(
    state: &AppState,
    lease: &RoomLease,
    progress: reply::Progress,
    ctx: &Context,
    text: &str,
) -> Disposition {
    let prepared = match chat::prepare(
        state,
        ctx.target.room_id.as_str(),
        &ctx.conversation,
        &ctx.sender,
        text,
    )
    .await
    {
        Ok(prepared) => prepared.with_files(ctx.images.clone(), ctx.notice.clone()),
        Err(e) => {
            return Disposition::Retry {
                cause: anyhow::Error::new(e).context("preparing the chat"),
            };
        }
    };
    if state.config.streaming.enabled {
        return stream::answer(state, lease, progress, ctx, text, prepared).await;
    }
    let notice = prepared.notice.clone();
    let answer = match chat::answer(state, prepared, ctx.asker()).await {
        Ok(answer) => match notice {
            Some(notice) => format!("{notice}\n\n{answer}"),
            None => answer,
        },
        Err(e) => return apologise(state, lease, progress, ctx, e).await,
    };
    // Kept with the event right before its first part is posted (one round trip with the
    // lease check), so an attempt after a crash posts this answer instead of asking again.
    let fresh = reply::Progress {
        already_sent: 0,
        save_answer: true,
        ..progress
    };
    answered(state, lease, fresh, ctx, text, answer).await
}

/// What an earlier attempt left: a streamed message to finish or to remove, or a saved
/// answer still to post. `None`: nothing left, the question is answered afresh.
async fn resume(
    state: &AppState,
    lease: &RoomLease,
    event: &PendingEvent,
    progress: reply::Progress,
    ctx: &Context,
    text: &str,
) -> Option<Disposition> {
    if let Some(streamed) = &event.stream_message_id {
        match &event.reply {
            // Crashed after the answer was saved, before its first part was recorded.
            Some(answer) if event.parts_sent == 0 => {
                return Some(
                    stream::resume(state, lease, progress, ctx, text, answer.clone(), streamed)
                        .await,
                );
            }
            // The first part is in the message: the rest is posted as usual below.
            Some(_) => {}
            // Crashed mid-stream: the unfinished message goes, the question is answered anew.
            None => {
                if let Err(disposition) = stream::discard(state, event.seq, streamed).await {
                    return Some(disposition);
                }
            }
        }
    }
    // An earlier attempt already has the LLM's answer: only the posting is left.
    if let Some(answer) = &event.reply {
        return Some(answered(state, lease, progress, ctx, text, answer.clone()).await);
    }
    None
}

/// The LLM failed: the cause goes to the log, the person gets a short apology, nothing
/// is stored.
async fn apologise(
    state: &AppState,
    lease: &RoomLease,
    progress: reply::Progress,
    ctx: &Context,
    error: llm::LlmError,
) -> Disposition {
    tracing::warn!(error = %error, "LLM failed; apologising");
    post_apology(state, lease, progress, ctx).await
}

async fn post_apology(
    state: &AppState,
    lease: &RoomLease,
    progress: reply::Progress,
    ctx: &Context,
) -> Disposition {
    match reply::post(
        state,
        lease,
        progress,
        &ctx.target,
        strings::LLM_UNAVAILABLE,
    )
    .await
    {
        Ok(()) => Disposition::Done {
            outcome: Outcome::LlmError,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the apology"),
    }
}

/// Posts the LLM's answer (from `progress` on) and keeps the exchange in the history.
async fn answered(
    state: &AppState,
    lease: &RoomLease,
    progress: reply::Progress,
    ctx: &Context,
    question: &str,
    answer: String,
) -> Disposition {
    match reply::post(state, lease, progress, &ctx.target, &answer).await {
        Ok(()) => Disposition::Done {
            outcome: Outcome::Answered,
            turns: Some((
                ctx.conversation.clone(),
                vec![
                    Turn {
                        role: Role::User,
                        content: question.to_owned(),
                    },
                    Turn {
                        role: Role::Assistant,
                        content: answer,
                    },
                ],
            )),
        },
        Err(e) => post_failure(e, "posting the answer"),
    }
}

/// What the later stages know about the message being handled.
#[derive(Debug)]
pub(crate) struct Context {
    pub sender: Email,
    /// The sender's Webex person id (empty when Webex gave none).
    pub person_id: String,
    pub rights: access::Rights,
    pub group: bool,
    pub conversation: ConversationKey,
    pub target: reply::Target,
    /// The message's images, for the model (attachments stage).
    pub images: Vec<llm::Image>,
    /// Notes about the message's files, shown before the answer.
    pub notice: Option<String>,
}

impl Context {
    /// Who asked, for the tool loop (approval cards go to the answer's thread).
    pub(crate) fn asker(&self) -> crate::tools::Asker {
        crate::tools::Asker {
            person_id: self.person_id.clone(),
            email: self.sender.clone(),
            room_id: self.target.room_id.clone(),
            parent_id: self.target.parent_id.clone(),
        }
    }

    /// Whose the LLM calls for this message are.
    pub(crate) fn who(&self) -> crate::usage::Who<'_> {
        crate::usage::Who {
            person: &self.sender,
            space: self.target.room_id.as_str(),
        }
    }

    /// Where the answer goes and which memory it belongs to: in a group space the thread
    /// of the message that asked (its root), one memory per thread; in a direct space the
    /// room (and the thread, if the message is in one).
    fn new(
        message: &webex::Message,
        sender: Email,
        rights: access::Rights,
        group: bool,
    ) -> Context {
        let thread_root = message
            .parent_id
            .clone()
            .unwrap_or_else(|| message.id.clone());
        let (conversation, parent) = if group {
            (
                ConversationKey::thread(message.room_id.as_str(), thread_root.as_str()),
                Some(thread_root),
            )
        } else {
            (
                ConversationKey::direct(message.room_id.as_str()),
                message.parent_id.clone(),
            )
        };
        Context {
            sender,
            person_id: message
                .person_id
                .as_ref()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            rights,
            group,
            conversation,
            target: reply::Target {
                room_id: message.room_id.clone(),
                parent_id: parent,
                group,
            },
            images: Vec::new(),
            notice: None,
        }
    }
}
