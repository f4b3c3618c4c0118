//! Running a parsed [`Command`] for one sender: permissions, the store, the answer text.

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
    if ctx.group && matches!(command, Command::ListUsers | Command::Status) {
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
            let mut lines = vec!["**Personalities**".to_owned()];
            for p in set.iter() {
                let marker = if p.name == current { " (current)" } else { "" };
                lines.push(format!("- `{}`{marker}: {}", p.name, p.description));
            }
            if can_switch {
                lines.push(String::new());
                lines.push("Switch with `personality NAME`.".to_owned());
            }
            lines.join("\n")
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
            let mut lines = vec!["**Admins** (ADMIN_EMAILS)".to_owned()];
            lines.extend(state.config.admin_emails.iter().map(|e| format!("- {e}")));
            if !state.config.approved_domains.is_empty() {
                lines.push(String::new());
                lines.push("**Approved domains** (APPROVED_DOMAINS)".to_owned());
                lines.extend(
                    state
                        .config
                        .approved_domains
                        .iter()
                        .map(|d| format!("- @{d}")),
                );
            }
            lines.push(String::new());
            lines.push(format!("**Approved users** ({})", users.len()));
            if users.is_empty() {
                lines.push("- none yet: add one with `add user EMAIL`".to_owned());
            }
            lines.extend(users.iter().map(|u| format!("- {}", u.email)));
            lines.join("\n")
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
    })
}

async fn status(state: &AppState) -> anyhow::Result<String> {
    let report = state.probe.report(&state.llm).await;
    let counts = state.store.counts().await?;
    let uptime = std::time::Duration::from_secs(state.started.elapsed().as_secs());
    let mut lines = vec![
        format!("**webex-chatbot {}**", env!("CARGO_PKG_VERSION")),
        format!("- Uptime: {}", humanize(uptime)),
        probe_line("AI", &report.primary),
    ];
    if let Some(fallback) = &report.fallback {
        lines.push(probe_line("Fallback AI", fallback));
    }
    lines.push(format!(
        "- Approved users: {} (+{} admins)",
        counts.approved_users,
        state.config.admin_emails.len()
    ));
    lines.push(format!(
        "- Conversations remembered: {}",
        counts.conversations
    ));
    lines.push(format!(
        "- Messages handled: {} (waiting: {})",
        counts.processed_events, counts.pending_events
    ));
    Ok(lines.join("\n"))
}

fn probe_line(label: &str, p: &llm::ProbeResult) -> String {
    if p.reachable {
        format!(
            "- {label}: {} `{}`, reachable ({} ms)",
            p.provider, p.model, p.latency_ms
        )
    } else {
        format!("- {label}: {} `{}`, **unreachable**", p.provider, p.model)
    }
}

fn humanize(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}
