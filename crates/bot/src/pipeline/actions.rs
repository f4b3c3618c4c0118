//! A submitted card (`attachmentActions`/`created`, DESIGN §10.3): fetch the action
//! (`GET /attachment/actions/{id}`) and the card's message, check the person who clicked
//! like the sender of a message (never the bot or another bot; admins and approved people
//! only, everyone else silently ignored), then [`dispatch`] by the `action` of the
//! button's data. The answer goes to the card's room and thread.

use serde_json::Value;

use super::commands::Services;
use super::reply::Poster;
use super::{Context, Disposition, access, ignored, post_failure, reply, webex_failure};
use crate::cards;
use crate::commands::Command;
use crate::domain::{ConversationKey, Email, IgnoreReason, Outcome};
use crate::store::{PendingEvent, Vote};
use crate::strings;

/// Webex (the action, the card, who clicked) and the metrics come with `post`; access and
/// the commands' handles with `services`.
pub(super) async fn handle(
    services: &Services<'_>,
    post: Poster<'_>,
    event: &PendingEvent,
) -> Disposition {
    let metrics = post.metrics;
    let action = match post.webex.get_attachment_action(&event.message_id).await {
        Ok(action) => action,
        Err(e) if e.is_not_found() => return ignored(metrics, IgnoreReason::MessageGone),
        Err(e) => return webex_failure(e, "fetching the card action"),
    };
    let Some(person_id) = action.person_id.clone() else {
        return ignored(metrics, IgnoreReason::Malformed);
    };
    if post.bot.id.same_person(person_id.as_str()) {
        return ignored(metrics, IgnoreReason::OwnMessage);
    }
    // The card's message: its room type, its thread, and whether the bot posted it.
    let card = match post.webex.get_message(&action.message_id).await {
        Ok(card) => card,
        Err(e) if e.is_not_found() => return ignored(metrics, IgnoreReason::MessageGone),
        Err(e) => return webex_failure(e, "fetching the card's message"),
    };
    let ours = card
        .person_id
        .as_ref()
        .is_some_and(|p| post.bot.id.same_person(p.as_str()));
    if !ours {
        tracing::info!("ignored: a card the bot did not post");
        return ignored(metrics, IgnoreReason::OtherEvent);
    }
    // Actions carry a person id only: the email (what access is decided by) is Webex's.
    let person = match post.webex.get_person(&person_id).await {
        Ok(person) => person,
        Err(e) if e.is_not_found() => return ignored(metrics, IgnoreReason::NoSenderEmail),
        Err(e) => return webex_failure(e, "looking up who clicked"),
    };
    let Some(sender) = person.emails.iter().find_map(|e| Email::parse(e).ok()) else {
        return ignored(metrics, IgnoreReason::NoSenderEmail);
    };
    if sender.is_bot() || person.person_type.as_deref() == Some("bot") {
        return ignored(metrics, IgnoreReason::BotSender);
    }
    let rights = match access::rights_of(services.access, services.store, &sender).await {
        Ok(Some(rights)) => rights,
        Ok(None) => {
            tracing::info!(sender = %sender, "ignored: card submitted by someone not approved");
            return ignored(metrics, IgnoreReason::Unapproved);
        }
        Err(e) => {
            return Disposition::Retry {
                cause: anyhow::Error::new(e).context("checking access"),
            };
        }
    };
    // A card of unknown room type is a group space's, as for messages.
    let group = !matches!(card.room_type, Some(webex::RoomType::Direct));
    let conversation = if group {
        let root = card.parent_id.as_ref().unwrap_or(&card.id);
        ConversationKey::thread(card.room_id.as_str(), root.as_str())
    } else {
        ConversationKey::direct(card.room_id.as_str())
    };
    let ctx = Context {
        sender,
        person_id: person_id.as_str().to_owned(),
        rights,
        group,
        conversation,
        target: reply::Target {
            room_id: card.room_id.clone(),
            parent_id: card.parent_id.clone(),
            group,
        },
        images: Vec::new(),
        notice: None,
    };
    dispatch(services, post, reply::Progress::of(event), &ctx, &action).await
}

/// Routes a submitted card by the `action` of its button's data: the one place that knows
/// every card action. A new card adds an arm here.
pub(crate) async fn dispatch(
    services: &Services<'_>,
    post: Poster<'_>,
    progress: reply::Progress,
    ctx: &Context,
    action: &webex::AttachmentAction,
) -> Disposition {
    let inputs = &action.inputs;
    match inputs.get("action").and_then(Value::as_str) {
        Some(cards::SET_PERSONALITY) => {
            set_personality(services, post, progress, ctx, inputs).await
        }
        Some(cards::FEEDBACK) => feedback(post, ctx, action).await,
        Some(crate::tools::CARD_ACTION) => {
            tool_approval(services, post, progress, ctx, inputs).await
        }
        other => {
            tracing::debug!(action = ?other, "card action the bot does not know; nothing done");
            Disposition::Done {
                outcome: Outcome::Ignored,
                turns: None,
            }
        }
    }
}

/// The personality card's Switch: the same command, the same rules, as typing
/// `personality NAME` (in a group space only admins may switch).
async fn set_personality(
    services: &Services<'_>,
    post: Poster<'_>,
    progress: reply::Progress,
    ctx: &Context,
    inputs: &serde_json::Map<String, Value>,
) -> Disposition {
    let chosen = inputs
        .get(cards::PERSONALITY_INPUT)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|name| !name.is_empty());
    let answer = match chosen {
        None => strings::PERSONALITY_NOT_CHOSEN.to_owned(),
        Some(name) => {
            let command = Command::PersonalitySet(name.to_lowercase());
            tracing::info!(command = command.name(), sender = %ctx.sender, "card command");
            match super::commands::run(services, ctx, command).await {
                Ok(answer) => answer,
                Err(e) => {
                    return Disposition::Retry {
                        cause: e.context("running the card's command"),
                    };
                }
            }
        }
    };
    match post.post(progress, &ctx.target, &answer).await {
        Ok(()) => Disposition::Done {
            outcome: Outcome::Command,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the card's answer"),
    }
}

/// An approval card's Approve or Deny (DESIGN §10.5): decided by `tools::on_click` (only
/// the asker or an admin, once); the answer says what was decided, or why nothing was.
async fn tool_approval(
    services: &Services<'_>,
    post: Poster<'_>,
    progress: reply::Progress,
    ctx: &Context,
    inputs: &serde_json::Map<String, Value>,
) -> Disposition {
    let admin = ctx.rights == access::Rights::Admin;
    let answer = match crate::tools::on_click(
        crate::tools::Approvals {
            store: services.store,
            tools: services.tools,
        },
        inputs,
        &ctx.person_id,
        admin,
    )
    .await
    {
        Ok(answer) => answer,
        Err(e) => {
            return Disposition::Retry {
                cause: anyhow::Error::new(e).context("deciding the tool approval"),
            };
        }
    };
    match post.post(progress, &ctx.target, &answer).await {
        Ok(()) => Disposition::Done {
            outcome: Outcome::Command,
            turns: None,
        },
        Err(e) => post_failure(e, "posting the approval's answer"),
    }
}

/// A 👍/👎 click: stored with the answer it rates, one vote per person and card (the latest
/// click wins), counted in `webex_chatbot_feedback_total`. No message is posted.
async fn feedback(
    post: Poster<'_>,
    ctx: &Context,
    action: &webex::AttachmentAction,
) -> Disposition {
    let value = match action.inputs.get("value").and_then(Value::as_str) {
        Some("up") => "up",
        Some("down") => "down",
        other => {
            tracing::debug!(value = ?other, "feedback with a value the bot does not know; nothing done");
            return Disposition::Done {
                outcome: Outcome::Ignored,
                turns: None,
            };
        }
    };
    let at = action
        .created
        .as_deref()
        .and_then(|c| {
            time::OffsetDateTime::parse(c, &time::format_description::well_known::Rfc3339).ok()
        })
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        .unwrap_or_else(crate::store::now_ms);
    let vote = post
        .store
        .record_vote(action.message_id.as_str(), ctx.sender.as_str(), value, at)
        .await;
    match vote {
        Ok(Vote::Counted) => {
            tracing::info!(value, sender = %ctx.sender, "feedback recorded");
            post.metrics.feedback_vote(value);
        }
        Ok(Vote::Unchanged) => tracing::info!(value, "feedback repeated; counted once"),
        Ok(Vote::UnknownCard) => {
            tracing::info!("feedback on a card the bot has no answer for; not recorded");
        }
        Err(e) => {
            return Disposition::Retry {
                cause: anyhow::Error::new(e).context("recording the feedback"),
            };
        }
    }
    Disposition::Done {
        outcome: Outcome::Feedback,
        turns: None,
    }
}
