//! How one recorded event is handled (docs/architecture.md): fetch → sender checks → access →
//! command, or limits → chat → reply → store. This is the one error boundary per message: every
//! failure ends as a logged outcome, a retry later, or an apology; never a panic upward.
//!
//! Only [`handle`] and `run`, the composition point, see the whole [`AppState`]; each stage
//! takes the handles it needs, handed out here: posting takes a [`reply::Poster`] (Webex,
//! the room's lease, the store, metrics, `MAX_REPLY_PARTS`), access the access settings and
//! the store, the limits the usage ledger, the commands their [`commands::Services`], the
//! attachments a `Reading`, the LLM an [`Answering`] (the request's parts, the tool loop's
//! [`crate::tools::Runner`], the streaming settings, the poster).

pub(crate) mod access;
pub(crate) mod actions;
pub(crate) mod commands;
mod feedback;
mod greeting;
mod limits;
pub(crate) mod reply;
mod sender;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::chat;
use crate::config::Streaming;
use crate::domain::{ConversationKey, Email, IgnoreReason, Outcome, Role, Turn};
use crate::lease::RoomLease;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::store::{EventKind, Finish, NextIn, PendingEvent, Store};
use crate::strings;
use reply::Poster;
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

/// The room's next step, taken in the round trip that marked an event done
/// ([`Store::finish_then_next`]): what [`Store::next_event`] would have answered, and when
/// it was sent (the lease was renewed then).
pub struct Next {
    pub sent: Instant,
    pub event: Option<PendingEvent>,
}

/// Handles one event, taken by [`crate::store::Store::take_next`], to a durable end state
/// (done, or pending with a retry time), or leaves it untouched when the room's lease is
/// lost on the way. When it marks the event done it also takes the room's next step where
/// the store can in the same round trip (not while shutting down): `Some` then.
pub async fn handle(state: &AppState, lease: &RoomLease, event: PendingEvent) -> Option<Next> {
    let span = tracing::info_span!("event", message_id = %event.message_id, seq = event.seq);
    async {
        // `take_next` counted this attempt.
        let attempt = event.attempts;
        let keep = crate::memory::messages_to_keep(state.config.memory_max_turns);
        let next_in = (!state.shutdown.is_cancelled()).then_some(NextIn {
            room_id: &event.room_id,
            owner: &state.instance_id,
            ttl: lease.ttl,
        });
        let disposition = if attempt > MAX_ATTEMPTS {
            Disposition::Failed {
                outcome: Outcome::GaveUp,
                cause: anyhow::anyhow!("{MAX_ATTEMPTS} attempts failed"),
            }
        } else {
            run(state, lease, &event).await
        };
        // The done mark, boxed (see `run`): with the outcome's turns, if any.
        let done = |outcome, turns| {
            Box::pin(finish(
                &state.store,
                &state.metrics,
                keep,
                event.seq,
                outcome,
                turns,
                next_in,
            ))
        };
        let stored = match disposition {
            Disposition::Done { outcome, turns } => {
                tracing::info!(outcome = outcome.as_str(), "event handled");
                done(outcome, turns).await
            }
            Disposition::Retry { cause } => {
                let delay = retry_delay(attempt);
                tracing::warn!(
                    error = format!("{cause:#}"),
                    attempt,
                    retry_in_s = delay.as_secs(),
                    "temporary failure; will retry"
                );
                state.store.postpone(event.seq, delay).await.map(|()| None)
            }
            Disposition::Failed { outcome, cause } => {
                tracing::error!(
                    error = format!("{cause:#}"),
                    outcome = outcome.as_str(),
                    "event failed"
                );
                done(outcome, None).await
            }
            Disposition::LeaseLost => {
                tracing::warn!(
                    "room lease lost before posting; the replica holding the room handles the event"
                );
                Ok(None)
            }
        };
        stored.unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot store the event's outcome; it will be retried");
            None
        })
    }
    .instrument(span)
    .await
}

/// Counts the outcome and marks the event done with its turns (the conversation's history
/// kept to `keep_messages`). Finding it already finished means another worker that held
/// the room before this one recorded it (and its turns) first.
/// With `next`, the room's next step is taken in the same round trip where the store can.
async fn finish(
    store: &Store,
    metrics: &Metrics,
    keep_messages: usize,
    seq: i64,
    outcome: Outcome,
    turns: Option<(ConversationKey, Vec<Turn>)>,
    next: Option<NextIn<'_>>,
) -> Result<Option<Next>, crate::store::StoreError> {
    metrics.processed(outcome);
    let finish = Finish {
        outcome: outcome.as_str(),
        turns: turns.as_ref().map(|(k, t)| (k, t.as_slice())),
        keep_messages,
    };
    let sent = Instant::now();
    let finished = store.finish_then_next(seq, finish, next).await?;
    if !finished.done {
        tracing::warn!(
            "event was already finished by another worker; its turns are not stored twice"
        );
    }
    Ok(finished.next.map(|event| Next { sent, event }))
}

fn ignored(metrics: &Metrics, reason: IgnoreReason) -> Disposition {
    tracing::info!(reason = reason.as_str(), "event ignored");
    metrics.ignored(reason);
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

/// Where the stages get their handles: each takes what it needs from here, never the
/// whole state.
fn poster<'a>(state: &'a AppState, lease: &'a RoomLease) -> Poster<'a> {
    Poster {
        webex: &state.webex,
        lease,
        store: &state.store,
        metrics: &state.metrics,
        bot: &state.bot,
        max_parts: state.config.max_reply_parts,
    }
}

fn services(state: &AppState) -> commands::Services<'_> {
    commands::Services {
        store: &state.store,
        personalities: &state.personalities,
        access: state.config.access(),
        usage: &state.usage,
        tools: &state.tools,
        llm: &state.llm,
        probe: &state.probe,
        started: state.started,
    }
}

fn prompting(state: &AppState) -> chat::Prompting<'_> {
    chat::Prompting {
        store: &state.store,
        personalities: &state.personalities,
        bot_name: &state.bot.display_name,
        memory_max_turns: state.config.memory_max_turns,
        memory_max_chars: state.config.memory_max_chars,
        vision: state.config.files.vision,
        tools: &state.tools,
    }
}

fn answering<'a>(state: &'a AppState, post: Poster<'a>) -> Answering<'a> {
    Answering {
        prompting: prompting(state),
        runner: state.runner.clone(),
        streaming: state.config.streaming,
        post,
    }
}

fn reading(state: &AppState) -> Reading<'_> {
    Reading {
        webex: &state.webex,
        settings: &state.config.files,
        setup: &state.attachments,
        prompting: prompting(state),
    }
}

/// The attachments stage's handles: Webex (the downloads), the file settings, how files
/// are read, and the personality (whether its model sees images).
struct Reading<'a> {
    webex: &'a webex::Client,
    settings: &'a crate::config::Files,
    setup: &'a crate::attachments::Setup,
    prompting: chat::Prompting<'a>,
}

/// The LLM stage's handles: how the request is made, the tool loop it runs with, how the
/// answer is streamed, and where it is posted.
pub(crate) struct Answering<'a> {
    pub prompting: chat::Prompting<'a>,
    pub runner: Arc<crate::tools::Runner>,
    pub streaming: Streaming,
    pub post: Poster<'a>,
}

/// The steps that are not the wait for the LLM (posting, the commands, the files, the
/// cards, a retried attempt's leftovers, the done mark) are boxed where they are awaited:
/// an `async fn`'s future is as large as its largest step, and a room's worker (its task
/// allocated once, for as long as it runs) would otherwise carry all of them while it
/// waits on the model, ~9 KB instead of ~4 KB (docs/performance.md, Memory).
async fn run(state: &AppState, lease: &RoomLease, event: &PendingEvent) -> Disposition {
    let post = poster(state, lease);
    match event.kind {
        EventKind::Message => {}
        EventKind::CardAction => {
            return Box::pin(actions::handle(&services(state), post, event)).await;
        }
        EventKind::Membership => {
            return Box::pin(greeting::post(&state.personalities, post, event)).await;
        }
    }
    let message = match fetch(&state.webex, &state.metrics, event).await {
        Ok(message) => message,
        Err(disposition) => return disposition,
    };

    let Incoming {
        sender,
        group,
        text,
    } = match sender::check(&state.bot, &message) {
        Ok(incoming) => incoming,
        Err(reason) => return ignored(&state.metrics, reason),
    };

    let rights = match admit(state.config.access(), &state.store, &state.metrics, &sender).await {
        Ok(rights) => rights,
        Err(disposition) => return disposition,
    };

    let mut ctx = Context::new(&message, sender, rights, group);

    // Attachments: only now, after access, are a message's files downloaded.
    let files = if message.files.is_empty() {
        None
    } else {
        match Box::pin(attachments(&reading(state), &ctx, &message.files, &text)).await {
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
    let streaming = state.config.streaming;
    let disposition = match Box::pin(resume(post, streaming, event, progress, &ctx, question)).await
    {
        Some(done) => done,
        None => match &files {
            // A message with files is a question about them (never a command).
            Some(gathered) if !gathered.ask_llm => {
                Box::pin(files_unread(post, progress, &ctx)).await
            }
            Some(_) => {
                let answering = answering(state, post);
                llm_answer(&state.usage, &answering, event, progress, &ctx, question).await
            }
            // Route: a command, the hint for an empty message, or the LLM.
            None => match crate::commands::parse(&text) {
                Some(command) => {
                    Box::pin(command_answer(
                        &services(state),
                        post,
                        progress,
                        &ctx,
                        command,
                    ))
                    .await
                }
                None if text.is_empty() => Box::pin(hint(post, progress, &ctx)).await,
                None => {
                    let answering = answering(state, post);
                    llm_answer(&state.usage, &answering, event, progress, &ctx, &text).await
                }
            },
        },
    };
    // `FEEDBACK_BUTTONS`: the 👍/👎 card follows an answer's last part.
    Box::pin(feedback::follow(
        state.config.feedback_buttons,
        post,
        event,
        &ctx,
        disposition,
    ))
    .await
}

/// The access stage for a message's sender: their rights, or the event ignored (someone
/// not approved) or retried (the store failed).
async fn admit(
    access: crate::config::Access<'_>,
    store: &Store,
    metrics: &Metrics,
    sender: &Email,
) -> Result<access::Rights, Disposition> {
    match access::rights_of(access, store, sender).await {
        Ok(Some(rights)) => Ok(rights),
        Ok(None) => {
            tracing::info!(sender = %sender, "ignored: sender is not approved");
            Err(ignored(metrics, IgnoreReason::Unapproved))
        }
        Err(e) => Err(Disposition::Retry {
            cause: anyhow::Error::new(e).context("checking access"),
        }),
    }
}

/// The event's message, from Webex (events carry ids only).
async fn fetch(
    webex: &webex::Client,
    metrics: &Metrics,
    event: &PendingEvent,
) -> Result<webex::Message, Disposition> {
    let message_id = webex::MessageId::new(event.message_id.clone());
    match webex.get_message(&message_id).await {
        Ok(m) => Ok(m),
        Err(e) if e.is_not_found() => Err(ignored(metrics, IgnoreReason::MessageGone)),
        Err(e) => Err(webex_failure(e, "fetching the message")),
    }
}

/// The LLM's answer, within the usage limits (a refusal instead when one is reached).
async fn llm_answer(
    usage: &crate::usage::Ledger,
    answering: &Answering<'_>,
    event: &PendingEvent,
    progress: reply::Progress,
    ctx: &Context,
    question: &str,
) -> Disposition {
    match limits::check(usage, ctx, &event.message_id).await {
        Ok(None) => chat_answer(answering, progress, ctx, question).await,
        Ok(Some(refusal)) => Box::pin(limits::refuse(answering.post, progress, ctx, refusal)).await,
        Err(e) => Disposition::Retry {
            cause: anyhow::Error::new(e).context("checking the usage limits"),
        },
    }
}

/// The attachments stage: the message's files as a user turn (see [`crate::attachments`]).
async fn attachments(
    reading: &Reading<'_>,
    ctx: &Context,
    files: &[String],
    text: &str,
) -> Result<crate::attachments::Gathered, Disposition> {
    let vision = reading
        .prompting
        .vision(ctx.target.room_id.as_str())
        .await
        .map_err(|e| Disposition::Retry {
            cause: anyhow::Error::new(e).context("reading the space's personality"),
        })?;
    crate::attachments::gather(
        reading.webex,
        reading.settings,
        reading.setup,
        files,
        text,
        vision,
    )
    .await
    .map_err(|e| webex_failure(e, "downloading a file"))
}

/// None of the message's files could be read and nothing else was asked: the notes
/// saying why are the answer, without an LLM call.
async fn files_unread(post: Poster<'_>, progress: reply::Progress, ctx: &Context) -> Disposition {
    let answer = ctx.notice.clone().unwrap_or_default();
    match post.post(progress, &ctx.target, &answer).await {
        Ok(()) => Disposition::Done {
            outcome: Outcome::FilesUnread,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the notes about the files"),
    }
}

async fn command_answer(
    services: &commands::Services<'_>,
    post: Poster<'_>,
    progress: reply::Progress,
    ctx: &Context,
    command: crate::commands::Command,
) -> Disposition {
    tracing::info!(command = command.name(), sender = %ctx.sender, "command");
    let card_for = command.clone();
    let answer = match commands::run(services, ctx, command).await {
        Ok(answer) => answer,
        Err(e) => {
            return Disposition::Retry {
                cause: e.context("running the command"),
            };
        }
    };
    // `help` and `personality list` answer with a card, the typed answer as its fallback.
    let card = match commands::card(services, ctx, &card_for, &answer).await {
        Ok(card) => card,
        Err(e) => {
            return Disposition::Retry {
                cause: e.context("building the command's card"),
            };
        }
    };
    let posted = match &card {
        Some(card) => post.post_card(progress, &ctx.target, card).await.map(drop),
        None => post.post(progress, &ctx.target, &answer).await,
    };
    match posted {
        Ok(()) => Disposition::Done {
            outcome: Outcome::Command,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the command answer"),
    }
}

async fn hint(post: Poster<'_>, progress: reply::Progress, ctx: &Context) -> Disposition {
    match post
        .post(progress, &ctx.target, strings::EMPTY_MESSAGE)
        .await
    {
        Ok(()) => Disposition::Done {
            outcome: Outcome::Empty,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the hint"),
    }
}

/// The LLM's answer: streamed into one edited message (`REPLY_STREAMING`), or whole.
async fn chat_answer(
    answering: &Answering<'_>,
    progress: reply::Progress,
    ctx: &Context,
    text: &str,
) -> Disposition {
    let prepared = match answering
        .prompting
        .prepare(
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
    if answering.streaming.enabled {
        return stream::answer(answering, progress, ctx, text, prepared).await;
    }
    let post = answering.post;
    let notice = prepared.notice.clone();
    let answer = match chat::answer(answering.runner.clone(), prepared, ctx.asker()).await {
        Ok(answer) => match notice {
            Some(notice) => format!("{notice}\n\n{answer}"),
            None => answer,
        },
        Err(e) => return Box::pin(apologise(post, progress, ctx, e)).await,
    };
    // Kept with the event right before its first part is posted (one round trip with the
    // lease check), so an attempt after a crash posts this answer instead of asking again.
    let fresh = reply::Progress {
        already_sent: 0,
        save_answer: true,
        ..progress
    };
    Box::pin(answered(post, fresh, ctx, text, answer)).await
}

/// What an earlier attempt left: a streamed message to finish or to remove, or a saved
/// answer still to post. `None`: nothing left, the question is answered afresh.
async fn resume(
    post: Poster<'_>,
    streaming: Streaming,
    event: &PendingEvent,
    progress: reply::Progress,
    ctx: &Context,
    text: &str,
) -> Option<Disposition> {
    if let Some(streamed) = &event.stream_message_id {
        match &event.reply {
            // Crashed after the answer was saved, before its first part was recorded.
            Some(answer) if event.parts_sent == 0 => {
                let answer = answer.clone();
                let edit_every = streaming.edit_every;
                return Some(
                    stream::resume(post, edit_every, progress, ctx, text, answer, streamed).await,
                );
            }
            // The first part is in the message: the rest is posted as usual below.
            Some(_) => {}
            // Crashed mid-stream: the unfinished message goes, the question is answered anew.
            None => {
                if let Err(disposition) =
                    stream::discard(post.webex, post.store, event.seq, streamed).await
                {
                    return Some(disposition);
                }
            }
        }
    }
    // An earlier attempt already has the LLM's answer: only the posting is left.
    if let Some(answer) = &event.reply {
        return Some(answered(post, progress, ctx, text, answer.clone()).await);
    }
    None
}

/// The LLM failed: the cause goes to the log, the person gets a short apology, nothing
/// is stored.
async fn apologise(
    post: Poster<'_>,
    progress: reply::Progress,
    ctx: &Context,
    error: llm::LlmError,
) -> Disposition {
    tracing::warn!(error = %error, "LLM failed; apologising");
    post_apology(post, progress, ctx).await
}

async fn post_apology(post: Poster<'_>, progress: reply::Progress, ctx: &Context) -> Disposition {
    match post
        .post(progress, &ctx.target, strings::LLM_UNAVAILABLE)
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
    post: Poster<'_>,
    progress: reply::Progress,
    ctx: &Context,
    question: &str,
    answer: String,
) -> Disposition {
    match post.post(progress, &ctx.target, &answer).await {
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
