//! Running a parsed [`Command`] for one sender: permissions, the store, the answer text.

use std::time::Instant;

use arc_swap::ArcSwap;

use crate::cards::{self, CardMessage};
use crate::commands::Command;
use crate::config::Access;
use crate::domain::Email;
use crate::personality::Personalities;
use crate::pipeline::Context;
use crate::pipeline::access::Rights;
use crate::probe::LlmProbe;
use crate::store::Store;
use crate::strings;
use crate::tools::ToolSet;
use crate::usage::Ledger;

/// What the commands read and change: the store (history, personalities chosen, approved
/// users, counts), the personalities, the access settings, the usage ledger, the tool
/// servers, and for `status` the LLM, its cached health and when the bot started.
pub(crate) struct Services<'a> {
    pub store: &'a Store,
    pub personalities: &'a ArcSwap<Personalities>,
    pub access: Access<'a>,
    pub usage: &'a Ledger,
    pub tools: &'a ToolSet,
    pub llm: &'a llm::Llm,
    pub probe: &'a LlmProbe,
    pub started: Instant,
}

pub(crate) async fn run(
    services: &Services<'_>,
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
            let forgotten = services.store.clear_history(&ctx.conversation).await?;
            tracing::info!(sender = %ctx.sender, forgotten, "conversation reset");
            if forgotten == 0 {
                strings::RESET_EMPTY.to_owned()
            } else {
                strings::RESET_DONE.to_owned()
            }
        }
        Command::Personality => {
            let chosen = services.store.personality_for(room).await?;
            let set = services.personalities.load();
            let p = set.resolve(chosen.as_deref());
            strings::current_personality(&p.name, &p.description)
        }
        Command::PersonalityList => {
            let chosen = services.store.personality_for(room).await?;
            let set = services.personalities.load();
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
            let set = services.personalities.load();
            match set.get(&name) {
                None => {
                    let names: Vec<String> = set.iter().map(|p| format!("`{}`", p.name)).collect();
                    strings::unknown_personality(&name, &names.join(", "))
                }
                Some(p) => {
                    services
                        .store
                        .set_personality(room, &p.name, ctx.sender.as_str())
                        .await?;
                    tracing::info!(sender = %ctx.sender, personality = %p.name, "personality switched");
                    strings::personality_switched(&p.name, &p.description)
                }
            }
        }
        Command::ListUsers => {
            let users = services.store.approved_users().await?;
            let admins: Vec<&str> = services
                .access
                .admin_emails
                .iter()
                .map(|e| e.as_str())
                .collect();
            let approved: Vec<&str> = users.iter().map(|u| u.email.as_str()).collect();
            strings::user_list(&admins, services.access.approved_domains, &approved)
        }
        Command::AddUser(raw) => match Email::parse(&raw) {
            Err(_) => strings::invalid_email(&raw),
            Ok(email) => {
                if services
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
            Ok(email) if services.access.is_admin(&email) => {
                strings::cannot_remove_admin(email.as_str())
            }
            Ok(email) => {
                if services.store.remove_user(&email).await? {
                    tracing::info!(by = %ctx.sender, user = %email, "user removed");
                    strings::user_removed(email.as_str())
                } else {
                    strings::user_not_approved(email.as_str())
                }
            }
        },
        Command::Status => status(services).await?,
        Command::Tools => tools(services, room).await?,
        Command::Usage => {
            let report = services.usage.report(&ctx.sender).await?;
            strings::usage_report(&report, &services.usage.limits())
        }
        Command::UsageAll => strings::usage_ranking(&services.usage.ranking().await?),
    })
}

/// The tools this space's personality offers, of the servers connected now.
async fn tools(services: &Services<'_>, room: &str) -> anyhow::Result<String> {
    let chosen = services.store.personality_for(room).await?;
    let set = services.personalities.load();
    let personality = set.resolve(chosen.as_deref());
    if personality.tools.is_empty() || services.tools.is_empty() {
        return Ok(strings::NO_TOOLS.to_owned());
    }
    let offered = services.tools.offered(&personality.tools);
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
        if services.tools.server(server).is_some()
            && !services.tools.is_connected(server)
            && !unreachable.iter().any(|u| u == server)
        {
            unreachable.push(server.to_owned());
        }
    }
    Ok(strings::tools_list(&listed, &unreachable))
}

async fn status(services: &Services<'_>) -> anyhow::Result<String> {
    let report = services.probe.report(services.llm).await;
    let counts = services.store.counts().await?;
    let mut text = strings::status(
        services.started.elapsed(),
        &report,
        &counts,
        services.access.admin_emails.len(),
    );
    let feedback = services.store.feedback_counts().await?;
    text.push('\n');
    text.push_str(&strings::feedback_line(feedback.up, feedback.down));
    Ok(text)
}

/// The card some commands answer with (DESIGN §10.3), `answer` (what [`run`] gave) as its
/// fallback: `help` and `personality list`. `None` for every other command, and for those
/// two when `run` refused them.
pub(crate) async fn card(
    services: &Services<'_>,
    ctx: &Context,
    command: &Command,
    answer: &str,
) -> anyhow::Result<Option<CardMessage>> {
    Ok(match command {
        Command::Help => Some(cards::help(answer)),
        Command::PersonalityList => {
            let chosen = services
                .store
                .personality_for(ctx.target.room_id.as_str())
                .await?;
            let set = services.personalities.load();
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
