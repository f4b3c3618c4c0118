//! Running a parsed [`Command`] for one sender: permissions, the store, the answer text.

use crate::cards::{self, CardMessage};
use crate::commands::Command;
use crate::domain::Email;
use crate::pipeline::Context;
use crate::pipeline::access::Rights;
use crate::state::AppState;
use crate::strings;

pub(crate) async fn run(
    state: &AppState,
    ctx: &Context,
    command: Command,
) -> anyhow::Result<String> {
    let admin = ctx.rights == Rights::Admin;
    if command.admin_only() && !admin {
        tracing::info!(command = command.name(), sender = %ctx.sender, "refused: admin command from a non-admin");
        return Ok(strings::ADMIN_ONLY.to_owned());
    }
    if ctx.group
        && matches!(
            command,
            Command::ListUsers | Command::Status | Command::UsageAll
        )
    {
        tracing::info!(command = command.name(), sender = %ctx.sender, "refused in a group space");
        return Ok(strings::ASK_IN_DIRECT.to_owned());
    }
    let room = ctx.target.room_id.as_str();
    let can_switch = admin || !ctx.group;
    Ok(match command {
        Command::Help => strings::help(admin, can_switch),
        Command::Reset => {
            let forgotten = state.store.clear_history(&ctx.conversation).await?;
            tracing::info!(sender = %ctx.sender, forgotten, "conversation reset");
            if forgotten == 0 {
                strings::RESET_EMPTY.to_owned()
            } else {
                strings::RESET_DONE.to_owned()
            }
        }
        Command::Personality => {
            let chosen = state.store.personality_for(room).await?;
            let set = state.personalities.load();
            let p = set.resolve(chosen.as_deref());
            strings::current_personality(&p.name, &p.description)
        }
        Command::PersonalityList => {
            let chosen = state.store.personality_for(room).await?;
            let set = state.personalities.load();
            let current = set.resolve(chosen.as_deref()).name.clone();
            let entries: Vec<(&str, &str)> = set
                .iter()
                .map(|p| (p.name.as_str(), p.description.as_str()))
                .collect();
            strings::personality_list(&entries, &current, can_switch)
        }
        Command::PersonalitySet(name) => {
            if !can_switch {
                return Ok(strings::PERSONALITY_SWITCH_DENIED.to_owned());
            }
            let set = state.personalities.load();
            match set.get(&name) {
                None => {
                    let names: Vec<String> = set.iter().map(|p| format!("`{}`", p.name)).collect();
                    strings::unknown_personality(&name, &names.join(", "))
                }
                Some(p) => {
                    state
                        .store
                        .set_personality(room, &p.name, ctx.sender.as_str())
                        .await?;
                    tracing::info!(sender = %ctx.sender, personality = %p.name, "personality switched");
                    strings::personality_switched(&p.name, &p.description)
                }
            }
        }
        Command::ListUsers => {
            let users = state.store.approved_users().await?;
            let admins: Vec<&str> = state
                .config
                .admin_emails
                .iter()
                .map(|e| e.as_str())
                .collect();
            let approved: Vec<&str> = users.iter().map(|u| u.email.as_str()).collect();
            strings::user_list(&admins, &state.config.approved_domains, &approved)
        }
        Command::AddUser(raw) => match Email::parse(&raw) {
            Err(_) => strings::invalid_email(&raw),
            Ok(email) => {
                if state
                    .store
                    .add_user(&email, Some(ctx.sender.as_str()))
                    .await?
                {
                    tracing::info!(by = %ctx.sender, user = %email, "user approved");
                    strings::user_added(email.as_str())
                } else {
                    strings::user_already_approved(email.as_str())
                }
            }
        },
        Command::RemoveUser(raw) => match Email::parse(&raw) {
            Err(_) => strings::invalid_email(&raw),
            Ok(email) if state.config.is_admin(&email) => {
                strings::cannot_remove_admin(email.as_str())
            }
            Ok(email) => {
                if state.store.remove_user(&email).await? {
                    tracing::info!(by = %ctx.sender, user = %email, "user removed");
                    strings::user_removed(email.as_str())
                } else {
                    strings::user_not_approved(email.as_str())
                }
            }
        },
        Command::Status => status(state).await?,
        Command::Tools => tools(state, room).await?,
        Command::Usage => {
            let report = state.usage.report(&ctx.sender).await?;
            strings::usage_report(&report, &state.usage.limits())
        }
        Command::UsageAll => strings::usage_ranking(&state.usage.ranking().await?),
    })
}

/// The tools this space's personality offers, of the servers connected now.
async fn tools(state: &AppState, room: &str) -> anyhow::Result<String> {
    let chosen = state.store.personality_for(room).await?;
    let set = state.personalities.load();
    let personality = set.resolve(chosen.as_deref());
    if personality.tools.is_empty() || state.tools.is_empty() {
        return Ok(strings::NO_TOOLS.to_owned());
    }
    let offered = state.tools.offered(&personality.tools);
    let listed: Vec<(String, String, bool)> = offered
        .iter()
        .map(|o| {
            (
                format!("{}/{}", o.server, o.tool),
                o.description.clone(),
                o.confirm,
            )
        })
        .collect();
    let mut unreachable: Vec<String> = Vec::new();
    for entry in &personality.tools {
        let server = entry
            .split_once('/')
            .map_or(entry.as_str(), |(s, _)| s)
            .trim();
        if state.tools.server(server).is_some()
            && !state.tools.is_connected(server)
            && !unreachable.iter().any(|u| u == server)
        {
            unreachable.push(server.to_owned());
        }
    }
    Ok(strings::tools_list(&listed, &unreachable))
}

async fn status(state: &AppState) -> anyhow::Result<String> {
    let report = state.probe.report(&state.llm).await;
    let counts = state.store.counts().await?;
    let mut text = strings::status(
        state.started.elapsed(),
        &report,
        &counts,
        state.config.admin_emails.len(),
    );
    let feedback = state.store.feedback_counts().await?;
    text.push('\n');
    text.push_str(&strings::feedback_line(feedback.up, feedback.down));
    Ok(text)
}

/// The card some commands answer with (DESIGN §10.3), `answer` (what [`run`] gave) as its
/// fallback: `help` and `personality list`. `None` for every other command, and for those
/// two when `run` refused them.
pub(crate) async fn card(
    state: &AppState,
    ctx: &Context,
    command: &Command,
    answer: &str,
) -> anyhow::Result<Option<CardMessage>> {
    Ok(match command {
        Command::Help => Some(cards::help(answer)),
        Command::PersonalityList => {
            let chosen = state
                .store
                .personality_for(ctx.target.room_id.as_str())
                .await?;
            let set = state.personalities.load();
            let current = set.resolve(chosen.as_deref()).name.clone();
            let entries: Vec<(&str, &str)> = set
                .iter()
                .map(|p| (p.name.as_str(), p.description.as_str()))
                .collect();
            Some(cards::personality_list(answer, &entries, &current))
        }
        _ => None,
    })
}
