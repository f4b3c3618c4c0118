//! Every text the bot says to people, in one place.

pub const LLM_UNAVAILABLE: &str =
    "Sorry, the AI service is unavailable right now. Please try again in a few minutes.";
/// The first text of a streamed answer when the personality sets no `thinking`.
pub const THINKING: &str = "…";
pub const ADMIN_ONLY: &str = "Sorry, only admins can do that.";
/// `list users` and `status` in a group space: everyone there would read the answer.
pub const ASK_IN_DIRECT: &str =
    "I only answer that in a direct space (it is not for everyone here): ask me in a direct space.";
/// The last line of an answer cut at `MAX_REPLY_PARTS` messages.
pub const ANSWER_CUT: &str = "*(The answer was cut here: it was too long to post in full.)*";
pub const RESET_DONE: &str = "Done: I have forgotten our conversation. Let's start fresh.";
pub const RESET_EMPTY: &str = "There was nothing to forget: this conversation has no history yet.";
pub const EMPTY_MESSAGE: &str = "Ask me anything, or type `help` to see what I can do.";

pub fn help(is_admin: bool, can_switch_personality: bool) -> String {
    let mut lines = vec![
        "**What I can do**".to_owned(),
        "Ask me anything in plain words and I will answer. In group spaces, mention me.".to_owned(),
        String::new(),
        "**Commands**".to_owned(),
        "- `help`: this list".to_owned(),
        "- `reset`: forget this conversation's history".to_owned(),
        "- `personality`: show the current personality".to_owned(),
        "- `personality list`: the available personalities".to_owned(),
        "- `tools`: the tools I can use in this space".to_owned(),
    ];
    if can_switch_personality {
        lines.push("- `personality NAME`: switch this space's personality".to_owned());
    }
    if is_admin {
        lines.push(String::new());
        lines.push("**Admin commands**".to_owned());
        lines.push("- `list users`: approved users and admins".to_owned());
        lines.push("- `add user EMAIL`: approve someone".to_owned());
        lines.push("- `remove user EMAIL`: withdraw someone's approval".to_owned());
        lines.push("- `status`: version, uptime, AI provider and counts".to_owned());
    }
    lines.join("\n")
}

pub fn current_personality(name: &str, description: &str) -> String {
    format!(
        "This space uses the **{name}** personality: {description}.\nType `personality list` to see the others."
    )
}

pub fn personality_switched(name: &str, description: &str) -> String {
    format!("Switched this space to **{name}**: {description}.")
}

pub fn unknown_personality(name: &str, available: &str) -> String {
    format!("There is no personality called `{name}`. Available: {available}.")
}

/// `personality list`: each personality with its description, the current one marked.
pub fn personality_list(entries: &[(&str, &str)], current: &str, can_switch: bool) -> String {
    let mut lines = vec!["**Personalities**".to_owned()];
    for (name, description) in entries {
        let marker = if *name == current { " (current)" } else { "" };
        lines.push(format!("- `{name}`{marker}: {description}"));
    }
    if can_switch {
        lines.push(String::new());
        lines.push("Switch with `personality NAME`.".to_owned());
    }
    lines.join("\n")
}

/// `list users` (direct spaces only): admins, approved domains, approved users.
pub fn user_list(admins: &[&str], domains: &[String], approved: &[&str]) -> String {
    let mut lines = vec!["**Admins** (ADMIN_EMAILS)".to_owned()];
    lines.extend(admins.iter().map(|e| format!("- {e}")));
    if !domains.is_empty() {
        lines.push(String::new());
        lines.push("**Approved domains** (APPROVED_DOMAINS)".to_owned());
        lines.extend(domains.iter().map(|d| format!("- @{d}")));
    }
    lines.push(String::new());
    lines.push(format!("**Approved users** ({})", approved.len()));
    if approved.is_empty() {
        lines.push("- none yet: add one with `add user EMAIL`".to_owned());
    }
    lines.extend(approved.iter().map(|e| format!("- {e}")));
    lines.join("\n")
}

/// The console's own line under `help`.
pub const CONSOLE_EXIT: &str = "Type `exit` (or end the input) to leave.";

/// A command the console cannot run (it has no Webex space, no approved users).
pub fn only_in_webex(command: &str) -> String {
    format!("`{command}` only works in Webex.")
}

pub const PERSONALITY_SWITCH_DENIED: &str =
    "Sorry, in group spaces only admins can switch the personality.";

pub fn user_added(email: &str) -> String {
    format!("Approved {email}: they can talk to me now.")
}

pub fn user_already_approved(email: &str) -> String {
    format!("{email} was already approved.")
}

pub fn user_removed(email: &str) -> String {
    format!("Removed {email}: they can no longer talk to me.")
}

pub fn user_not_approved(email: &str) -> String {
    format!("{email} is not on the approved list.")
}

pub fn cannot_remove_admin(email: &str) -> String {
    format!("{email} is an admin from ADMIN_EMAILS and cannot be removed here.")
}

pub fn invalid_email(raw: &str) -> String {
    format!("`{raw}` is not a valid email address.")
}

/// `status` (direct spaces only): version, uptime, the AI's reachability, counts.
pub fn status(
    uptime: std::time::Duration,
    ai: &llm::HealthReport,
    counts: &crate::store::Counts,
    admins: usize,
) -> String {
    let uptime = std::time::Duration::from_secs(uptime.as_secs());
    let mut lines = vec![
        format!("**webex-chatbot {}**", env!("CARGO_PKG_VERSION")),
        format!("- Uptime: {}", humanize(uptime)),
        probe_line("AI", &ai.primary),
    ];
    if let Some(fallback) = &ai.fallback {
        lines.push(probe_line("Fallback AI", fallback));
    }
    lines.push(format!(
        "- Approved users: {} (+{admins} admins)",
        counts.approved_users
    ));
    lines.push(format!(
        "- Conversations remembered: {}",
        counts.conversations
    ));
    lines.push(format!(
        "- Messages handled: {} (waiting: {})",
        counts.processed_events, counts.pending_events
    ));
    lines.join("\n")
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

// Tools over MCP (DESIGN §10.5).

/// The heading of an approval card.
pub const APPROVAL_TITLE: &str = "Approve this tool call?";

pub fn approval_note(minutes: u64) -> String {
    let unit = if minutes == 1 { "minute" } else { "minutes" };
    format!(
        "Only the person who asked, or an admin, can approve. Without a click in {minutes} {unit} the call is denied."
    )
}

pub const APPROVAL_UNKNOWN: &str = "I do not know that approval request any more.";
pub const APPROVAL_NOT_YOURS: &str =
    "Only the person who asked the question, or an admin, can approve or deny this call.";
pub const APPROVAL_FAILED: &str =
    "Sorry, I could not record that decision just now. Please click again.";

pub fn approval_already(decision: &str) -> String {
    let what = match decision {
        "approve" => "approved",
        "deny" => "denied",
        _ => "closed: no one decided in time",
    };
    format!("This call was already {what}; that stands.")
}

pub fn approval_decided(tool: &str, approved: bool) -> String {
    if approved {
        format!("Approved: running `{tool}`.")
    } else {
        format!("Denied: `{tool}` will not run.")
    }
}

/// Told to the model (an error result) when a `confirm` tool was not approved.
pub const TOOL_DENIED: &str =
    "The user denied this tool call, so it did not run. Do not try it again; answer without it.";
pub const TOOL_NOT_APPROVED_IN_TIME: &str = "No one approved this tool call in time, so it was denied and did not run. Do not try it again; answer without it.";
pub const TOOL_APPROVAL_UNAVAILABLE: &str =
    "This tool call needs an approval that could not be asked for right now, so it did not run.";
/// Added to the last request when the tool rounds are used up.
pub const TOOLS_EXHAUSTED: &str =
    "(No more tool calls are possible now. Answer the question with what you have.)";

pub const NO_TOOLS: &str = "This space's personality offers no tools.";

/// The `tools` command: `(server/tool, description, needs approval)`, and the configured
/// servers offered here that are not connected right now.
pub fn tools_list(tools: &[(String, String, bool)], unreachable: &[String]) -> String {
    let mut lines = vec!["**Tools in this space**".to_owned()];
    for (name, description, confirm) in tools {
        let description = description.lines().next().unwrap_or_default();
        let approval = if *confirm {
            " *(asks for approval)*"
        } else {
            ""
        };
        if description.is_empty() {
            lines.push(format!("- `{name}`{approval}"));
        } else {
            lines.push(format!("- `{name}`: {description}{approval}"));
        }
    }
    if tools.is_empty() {
        lines.push("None available right now.".to_owned());
    }
    if !unreachable.is_empty() {
        lines.push(String::new());
        lines.push(format!(
            "Not connected right now: {}.",
            unreachable
                .iter()
                .map(|s| format!("`{s}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    lines.join("\n")
}
