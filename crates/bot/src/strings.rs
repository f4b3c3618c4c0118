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
        "- `usage`: your tokens and their cost today and this month".to_owned(),
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
        lines.push(
            "- `usage all`: the top 10 people and spaces this month (direct spaces)".to_owned(),
        );
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

// ---- files, images and voice notes (DESIGN §10.4) ---------------------------------------

/// The question of a message that is only a file.
pub const SUMMARIZE_FILE: &str = "Summarize this file.";
/// The question of a message that is only an image.
pub const DESCRIBE_IMAGE: &str = "Describe this image.";

/// What the bot reads, for the answer to an unsupported file.
fn supported_kinds(can_hear: bool) -> String {
    let voice = if can_hear { ", voice notes" } else { "" };
    format!(
        "text files (plain text, JSON, CSV, YAML, markdown, source code), PDF and Word (.docx) documents, images (PNG, JPEG, GIF, WebP){voice}"
    )
}

pub fn unsupported_file(name: &str, content_type: &str, can_hear: bool) -> String {
    format!(
        "*I cannot read {name} ({content_type}). I can read {}.*",
        supported_kinds(can_hear)
    )
}

/// A file Webex did not hand out (`label` is "The file" or "File 2").
pub fn file_not_read(label: &str, outcome: &webex::Download, max_bytes: u64) -> String {
    match outcome {
        webex::Download::Gone => {
            format!("*{label} is gone: it was deleted, or removed by Webex's malware scan.*")
        }
        webex::Download::Unscannable => {
            format!("*{label} could not be scanned for malware by Webex, so I cannot open it.*")
        }
        webex::Download::StillScanning => format!(
            "*{label} is still being scanned for malware by Webex: send it again in a minute.*"
        ),
        webex::Download::TooLarge { .. } => format!(
            "*{label} is larger than {}, the most I read: I did not open it.*",
            size(max_bytes)
        ),
        webex::Download::File(_) => String::new(),
    }
}

pub fn file_download_failed(label: &str) -> String {
    format!("*{label} could not be downloaded from Webex.*")
}

pub fn too_many_files(max: usize, sent: usize) -> String {
    format!("*I read only the first {max} of the {sent} files.*")
}

pub fn file_unreadable(name: &str, reason: &str) -> String {
    format!("*I could not read {name}: {reason}.*")
}

pub fn file_cut(name: &str, max_chars: usize) -> String {
    format!("*{name} is long: I read only its first {max_chars} characters.*")
}

/// Told to the person when the model cannot see images.
pub fn cannot_see_images(name: &str) -> String {
    format!("*This model cannot see images, so I did not look at {name}.*")
}

/// Told to the model in that case, so it does not pretend to have seen it.
pub fn image_not_shown(name: &str) -> String {
    format!("[The user sent the image {name}, but you cannot see images: say so if it matters.]")
}

/// The line that stands for an image in the question and in the history.
pub fn image_line(name: &str) -> String {
    format!("[image: {name}]")
}

pub fn cannot_hear(name: &str) -> String {
    format!("*I cannot listen to voice notes here ({name}): no transcription service is set up.*")
}

pub fn nothing_heard(name: &str) -> String {
    format!("*I heard no words in {name}.*")
}

pub fn transcription_failed(name: &str) -> String {
    format!("*I could not transcribe {name}: the transcription service failed.*")
}

/// A transcript added to a typed question.
pub fn voice_note(name: &str, transcript: &str) -> String {
    format!("[voice note {name}, transcribed]\n{transcript}")
}

/// Bytes as people read them (10485760 → "10 MiB").
fn size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

// ---- cards and space events (DESIGN §10.3) -------------------------------------------

pub const PERSONALITY_CARD_TITLE: &str = "Personalities";
pub const PERSONALITY_CARD_LABEL: &str = "Personality of this space";
pub const PERSONALITY_CARD_BUTTON: &str = "Switch";

/// One entry of the personality card's choice.
pub fn personality_choice(name: &str, description: &str) -> String {
    format!("{name}: {description}")
}

/// The personality card was submitted without a choice.
pub const PERSONALITY_NOT_CHOSEN: &str = "Pick a personality in the list first, then press Switch.";

/// The feedback card (`FEEDBACK_BUTTONS`).
pub const FEEDBACK_QUESTION: &str = "Was this answer helpful?";
/// Beside the feedback card, for clients that show no cards.
pub const FEEDBACK_FALLBACK: &str = "Was this answer helpful? Rate it with the 👍 / 👎 buttons.";

/// Posted when the bot is added to a group space and the personality has no `greeting`.
pub const DEFAULT_GREETING: &str = "Hi, I'm an AI assistant. To ask me something here, @mention me; type `help` after the mention to see what I can do.";

/// The line `status` gives the feedback votes.
pub fn feedback_line(up: i64, down: i64) -> String {
    format!("- Feedback on answers: {up} 👍, {down} 👎")
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A cost in billionths, with two decimals (no currency: prices are in the operator's).
pub fn cost(nanos: i64) -> String {
    format!("{:.2}", nanos as f64 / 1e9)
}

fn totals_line(label: &str, t: &crate::store::Totals) -> String {
    format!(
        "- {label}: {} tokens ({} prompt + {} completion), cost {}",
        thousands(t.tokens()),
        thousands(t.prompt_tokens),
        thousands(t.completion_tokens),
        cost(t.cost_nanos)
    )
}

/// `usage`: the asker's tokens and cost today and this month, and their limits.
pub fn usage_report(report: &crate::usage::Report, limits: &crate::config::Limits) -> String {
    let u = &report.usage;
    let mut lines = vec![
        "**Your usage**".to_owned(),
        totals_line(&format!("Today ({} UTC)", report.today), &u.today),
        totals_line(&format!("This month ({})", report.month), &u.month),
    ];
    if limits.user_daily_tokens > 0 {
        lines.push(format!(
            "- Daily limit: {} of {} tokens used; it resets at 00:00 UTC",
            thousands(u.today.tokens()),
            thousands(i64::try_from(limits.user_daily_tokens).unwrap_or(i64::MAX))
        ));
    }
    if limits.user_messages_per_minute > 0 {
        lines.push(format!(
            "- At most {} questions a minute",
            limits.user_messages_per_minute
        ));
    }
    lines.join("\n")
}

/// `usage all` (admins, direct spaces): the month's top people and spaces.
pub fn usage_ranking(ranking: &crate::usage::Ranking) -> String {
    if ranking.people.is_empty() {
        return format!("No LLM usage recorded in {} yet.", ranking.month);
    }
    let list = |title: &str, entries: &[(String, crate::store::Totals)], code: bool| {
        let mut lines = vec![String::new(), format!("**{title}**")];
        for (i, (who, t)) in entries.iter().enumerate() {
            let who = if code {
                format!("`{who}`")
            } else {
                who.clone()
            };
            lines.push(format!(
                "{}. {who}: {} tokens, cost {}",
                i + 1,
                thousands(t.tokens()),
                cost(t.cost_nanos)
            ));
        }
        lines
    };
    let mut lines = vec![format!("**Usage in {} (UTC)**", ranking.month)];
    lines.extend(list(
        &format!("Top {} people", ranking.people.len()),
        &ranking.people,
        false,
    ));
    lines.extend(list(
        &format!("Top {} spaces (room ids)", ranking.spaces.len()),
        &ranking.spaces,
        true,
    ));
    lines.join("\n")
}

/// A question refused by a usage limit: which one, and when it resets.
pub fn limit_reached(refusal: &crate::usage::Refusal) -> String {
    use crate::usage::Limit;
    let allowed = thousands(i64::try_from(refusal.allowed).unwrap_or(i64::MAX));
    let wait = refusal.wait().as_secs();
    let within = if wait < 60 {
        format!("{wait} s")
    } else {
        // Rounded up: "in 0 min" would be wrong.
        let minutes = wait.div_ceil(60);
        if minutes < 60 {
            format!("{minutes} min")
        } else {
            format!("{} h {} min", minutes / 60, minutes % 60)
        }
    };
    let at = refusal.resets_at;
    match refusal.limit {
        Limit::UserDailyTokens => format!(
            "You have reached your daily limit of {allowed} tokens. It resets at 00:00 UTC (in {within})."
        ),
        Limit::SpaceDailyTokens => format!(
            "This space has reached its daily limit of {allowed} tokens. It resets at 00:00 UTC (in {within})."
        ),
        Limit::UserMessagesPerMinute => format!(
            "You have sent {allowed} questions this minute, the most I take. Ask again from {:02}:{:02} UTC (in {within}).",
            at.hour(),
            at.minute()
        ),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_separated() {
        let cases = [
            (0, "0"),
            (999, "999"),
            (1000, "1,000"),
            (1_234_567, "1,234,567"),
            (-12_345, "-12,345"),
        ];
        for (n, want) in cases {
            assert_eq!(thousands(n), want);
        }
        assert_eq!(cost(3_030_000_000), "3.03");
        assert_eq!(cost(4_999_999), "0.00");
        assert_eq!(cost(5_000_001), "0.01");
    }

    #[test]
    fn limit_answers_say_when_they_reset() {
        use crate::usage::{Limit, Refusal};
        use time::macros::datetime;
        let refusal = |limit, allowed, resets_at| Refusal {
            limit,
            allowed,
            resets_at,
            now: datetime!(2026-03-09 21:44:30 UTC),
        };
        assert_eq!(
            limit_reached(&refusal(
                Limit::UserDailyTokens,
                50_000,
                datetime!(2026-03-10 0:00 UTC)
            )),
            "You have reached your daily limit of 50,000 tokens. It resets at 00:00 UTC (in 2 h 16 min)."
        );
        assert_eq!(
            limit_reached(&refusal(
                Limit::SpaceDailyTokens,
                1_000,
                datetime!(2026-03-10 0:00 UTC)
            )),
            "This space has reached its daily limit of 1,000 tokens. It resets at 00:00 UTC (in 2 h 16 min)."
        );
        assert_eq!(
            limit_reached(&refusal(
                Limit::UserMessagesPerMinute,
                3,
                datetime!(2026-03-09 21:45 UTC)
            )),
            "You have sent 3 questions this minute, the most I take. Ask again from 21:45 UTC (in 30 s)."
        );
    }
}
