//! Approvals of `confirm` tools (DESIGN §10.5): before such a call the bot posts a card in
//! the question's thread (the tool, its arguments, Approve and Deny) and waits for the
//! decision, which only [`decide`] takes: the card-click handler calls it for the person who
//! clicked. The pending approval is a row in the store, so a click handled by any replica
//! decides it; the waiting call re-reads the row every second (at once when the decision
//! was taken in this process). Deny, or `TOOLS_CONFIRM_TIMEOUT_SECS` without a click: the
//! call is denied and the model is told so.
//!
//! Nothing a tool returns or the model writes can approve a call: text is never read as a
//! decision, only `decide` sets one, and it checks who is deciding.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::{Asker, Offered, Runner, ToolSet, record};
use crate::store::{Store, StoreError, ToolApproval};
use crate::strings;

/// The `action` of the card's submit buttons.
pub const CARD_ACTION: &str = "tool_approval";
/// How often a waiting call re-reads its approval row (decisions taken on other replicas).
const POLL: Duration = Duration::from_secs(1);
/// Characters of the pretty-printed arguments shown on the card.
const SHOWN_ARGUMENT_CHARS: usize = 1500;

/// How the wait for an approval ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    Approved,
    Denied,
    /// No decision within `TOOLS_CONFIRM_TIMEOUT_SECS`.
    Expired,
    /// The approval could not be asked for (the store or Webex failed): not approved.
    Unasked,
}

/// A decision [`decide`] took, and of which call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decided {
    pub approved: bool,
    pub server: String,
    pub tool: String,
}

/// Why [`decide`] took no decision.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("no such approval")]
    Unknown,
    /// Neither the person who asked the question nor an admin.
    #[error("only the person who asked or an admin may decide")]
    NotAllowed,
    /// Decided before (a second click, another person, or the wait ran out): the first
    /// decision stands. `decision` is `approve`, `deny` or `expired`.
    #[error("already decided: {decision}")]
    AlreadyDecided { decision: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl DecideError {
    /// The short answer for the person who clicked.
    pub fn answer(&self) -> String {
        match self {
            DecideError::Unknown => strings::APPROVAL_UNKNOWN.to_owned(),
            DecideError::NotAllowed => strings::APPROVAL_NOT_YOURS.to_owned(),
            DecideError::AlreadyDecided { decision } => strings::approval_already(decision),
            DecideError::Store(_) => strings::APPROVAL_FAILED.to_owned(),
        }
    }
}

impl Decided {
    /// The short answer for the person who clicked.
    pub fn answer(&self) -> String {
        strings::approval_decided(&format!("{}/{}", self.server, self.tool), self.approved)
    }
}

/// What deciding an approval needs: the approval rows, and the calls waiting for a
/// decision (woken at once on this replica). A `&AppState` gives them (`From` in `state`).
#[derive(Clone, Copy)]
pub struct Approvals<'a> {
    pub store: &'a Store,
    pub tools: &'a ToolSet,
}

/// Takes the decision of a click on an approval card: `person_id` clicked, and is an admin
/// when `person_is_admin`. Only the person who asked the question or an admin may decide,
/// and only once; the call waiting for it goes on at once on this replica, within a second
/// on another.
pub async fn decide<'a>(
    approvals: impl Into<Approvals<'a>>,
    approval_id: &str,
    person_id: &str,
    person_is_admin: bool,
    approve: bool,
) -> Result<Decided, DecideError> {
    let Approvals { store, tools } = approvals.into();
    let Some(row) = store.tool_approval(approval_id).await? else {
        return Err(DecideError::Unknown);
    };
    let asker = webex::PersonId::new(row.asker_person_id.clone());
    if !person_is_admin && !asker.same_person(person_id) {
        tracing::info!(
            approval = approval_id,
            "approval click by someone who may not decide"
        );
        return Err(DecideError::NotAllowed);
    }
    if let Some(decision) = row.decision {
        return Err(DecideError::AlreadyDecided { decision });
    }
    let decision = if approve { "approve" } else { "deny" };
    if !store
        .decide_tool_approval(approval_id, decision, Some(person_id))
        .await?
    {
        // Someone (or the timeout) decided between the read and the write.
        let decision = store
            .tool_approval(approval_id)
            .await?
            .and_then(|r| r.decision)
            .unwrap_or_default();
        return Err(DecideError::AlreadyDecided { decision });
    }
    tracing::info!(approval = approval_id, server = %row.server, tool = %row.tool, decision, "tool call decided");
    tools.wake_approvals();
    Ok(Decided {
        approved: approve,
        server: row.server,
        tool: row.tool,
    })
}

/// The card-click handler's whole job for an approval card: the submitted `inputs` (the
/// button's data: `approval` and `decision`) decided for `person_id`, and the short text to
/// answer the click with. `Err` only when the store failed (try the click again later).
pub async fn on_click<'a>(
    approvals: impl Into<Approvals<'a>>,
    inputs: &serde_json::Map<String, Value>,
    person_id: &str,
    person_is_admin: bool,
) -> Result<String, StoreError> {
    let id = inputs.get("approval").and_then(Value::as_str).unwrap_or("");
    let approve = match inputs.get("decision").and_then(Value::as_str) {
        Some("approve") => true,
        Some("deny") => false,
        _ => return Ok(strings::APPROVAL_UNKNOWN.to_owned()),
    };
    match decide(approvals, id, person_id, person_is_admin, approve).await {
        Ok(decided) => Ok(decided.answer()),
        Err(DecideError::Store(e)) => Err(e),
        Err(other) => Ok(other.answer()),
    }
}

/// Asks for an approval of `tool` with `arguments` and waits for the decision.
pub(crate) async fn ask(runner: &Runner, asker: &Asker, tool: &Offered, arguments: &Value) -> Wait {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let row = ToolApproval {
        id: id.clone(),
        room_id: asker.room_id.as_str().to_owned(),
        asker_person_id: asker.person_id.clone(),
        asker_email: asker.email.as_str().to_owned(),
        server: tool.server.clone(),
        tool: tool.tool.clone(),
        arguments_sha256: record::digest(arguments),
        created_at: crate::store::now_ms(),
        decision: None,
        decided_by: None,
    };
    if let Err(e) = runner.store.insert_tool_approval(&row).await {
        tracing::warn!(error = %e, "cannot record the approval request; the call is not made");
        return Wait::Unasked;
    }
    let timeout = runner.confirm_timeout;
    let shown = format!("{}/{}", tool.server, tool.tool);
    let (markdown, card) = card(&id, &shown, arguments, asker.email.as_str(), timeout);
    if let Err(e) = post_card(runner, asker, &markdown, card).await {
        tracing::warn!(error = %e, "cannot post the approval card; the call is not made");
        let _ = runner
            .store
            .decide_tool_approval(&id, "expired", None)
            .await;
        return Wait::Unasked;
    }
    tracing::info!(approval = %id, server = %tool.server, tool = %tool.tool, "waiting for an approval click");
    wait(runner, &id, Instant::now() + timeout).await
}

/// Waits for the row's decision until `deadline`, then marks it expired (unless a decision
/// came in that very moment: then that one counts).
async fn wait(runner: &Runner, id: &str, deadline: Instant) -> Wait {
    loop {
        // Registered before the read, so a decision right after it still wakes us.
        let woken = runner.tools.approval_woken();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match runner.store.tool_approval(id).await {
            Ok(Some(row)) => match row.decision.as_deref() {
                Some("approve") => return Wait::Approved,
                Some("deny") => return Wait::Denied,
                Some(_) => return Wait::Expired,
                None => {}
            },
            Ok(None) => return Wait::Unasked,
            Err(e) => tracing::warn!(error = %e, "cannot read the approval; still waiting"),
        }
        let now = Instant::now();
        if now >= deadline {
            match runner.store.decide_tool_approval(id, "expired", None).await {
                Ok(true) => return Wait::Expired,
                // A decision got in first: read it on the next turn.
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot mark the approval expired");
                    return Wait::Expired;
                }
            }
        }
        tokio::select! {
            () = woken => {}
            () = tokio::time::sleep(POLL.min(deadline - now)) => {}
        }
    }
}

/// `POST /messages` with the card and its markdown fallback, in the question's thread.
async fn post_card(
    runner: &Runner,
    asker: &Asker,
    markdown: &str,
    card: Value,
) -> Result<(), webex::Error> {
    let message = webex::NewCardMessage::new(
        asker.room_id.clone(),
        asker.parent_id.clone(),
        markdown,
        card,
    );
    runner.webex.create_card_message(&message).await?;
    runner.metrics.replies_sent.inc();
    Ok(())
}

/// The approval card (Adaptive Card 1.3: the tool, who asked, the arguments, Approve and
/// Deny) and its markdown fallback. Arguments come from the model: they are cut, and the
/// fallback's mentions are made inert.
pub fn card(
    id: &str,
    tool: &str,
    arguments: &Value,
    asker: &str,
    timeout: Duration,
) -> (String, Value) {
    let pretty = serde_json::to_string_pretty(arguments).unwrap_or_else(|_| arguments.to_string());
    let shown = cut_chars(&pretty, SHOWN_ARGUMENT_CHARS);
    let minutes = timeout.as_secs().div_ceil(60).max(1);
    let submit = |title: &str, decision: &str| {
        json!({
            "type": "Action.Submit",
            "title": title,
            "data": {"action": CARD_ACTION, "approval": id, "decision": decision},
        })
    };
    let card = json!({
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.3",
        "body": [
            {"type": "TextBlock", "text": strings::APPROVAL_TITLE, "weight": "Bolder", "size": "Medium", "wrap": true},
            {"type": "FactSet", "facts": [
                {"title": "Tool", "value": tool},
                {"title": "Asked by", "value": asker},
            ]},
            {"type": "TextBlock", "text": "Arguments", "weight": "Bolder", "wrap": true},
            {"type": "TextBlock", "text": shown, "wrap": true, "fontType": "Monospace"},
            {"type": "TextBlock", "text": strings::approval_note(minutes), "wrap": true, "isSubtle": true},
        ],
        "actions": [submit("Approve", "approve"), submit("Deny", "deny")],
    });
    let fence = if shown.contains("```") { "~~~" } else { "```" };
    let markdown = format!(
        "**{}** `{tool}` (asked by {asker})\n{fence}json\n{shown}\n{fence}\n{}",
        strings::APPROVAL_TITLE,
        strings::approval_note(minutes)
    );
    let markdown = webex::mention::neutralize_mentions(&markdown).into_owned();
    (markdown, card)
}

fn cut_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}\n…", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_card_has_two_submit_buttons_with_the_approval_id() {
        let (markdown, card) = card(
            "abc",
            "tickets/create_ticket",
            &json!({"title": "Printer <@all> broken", "z_long": "x".repeat(5000)}),
            "alice@example.com",
            Duration::from_secs(600),
        );
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.3");
        let actions = card["actions"].as_array().unwrap();
        assert_eq!(actions.len(), 2);
        assert_eq!(actions[0]["title"], "Approve");
        assert_eq!(actions[1]["title"], "Deny");
        for (action, decision) in actions.iter().zip(["approve", "deny"]) {
            assert_eq!(action["type"], "Action.Submit");
            assert_eq!(
                action["data"],
                json!({"action": "tool_approval", "approval": "abc", "decision": decision})
            );
        }
        let shown = card["body"][3]["text"].as_str().unwrap();
        assert!(
            shown.chars().count() <= SHOWN_ARGUMENT_CHARS + 2,
            "arguments are cut"
        );
        assert!(
            shown.contains("\"title\": \"Printer"),
            "pretty-printed: {shown}"
        );
        assert!(!markdown.is_empty() && markdown.len() < 7439);
        assert!(markdown.contains("tickets/create_ticket"));
        assert!(!markdown.contains("<@"), "mentions are inert: {markdown}");
        assert!(markdown.contains("10 minutes"), "{markdown}");
    }
}
