//! Adaptive Cards the bot posts (docs/cards.md): typed, built here, checked by [`validate`]
//! against what Webex renders (version 1.3 and the elements of that version, at most five
//! actions in the whole card, a markdown fallback beside it).
//!
//! Every card travels with the markdown answer the typed command gives, as the fallback
//! clients without cards (and notifications) show; the card never carries anything the
//! fallback does not. Cards are never edited (Webex refuses edits of messages with
//! attachments): a change is a new message.

use serde::Serialize;
use serde_json::{Value, json};

use crate::strings;

/// The newest Adaptive Card version Webex renders.
pub const VERSION: &str = "1.3";
/// Webex shows at most this many actions in one card, top level, action sets and select
/// actions together.
pub const MAX_ACTIONS: usize = 5;
/// The `action` of the personality card's submit button; its input is `personality`.
pub const SET_PERSONALITY: &str = "set_personality";
/// The `id` of the personality card's choice.
pub const PERSONALITY_INPUT: &str = "personality";
/// The `action` of the feedback buttons; `value` is `up` or `down`.
pub const FEEDBACK: &str = "feedback";

/// A card element (the `body` of a card, or the `items` of a container).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Element {
    TextBlock {
        text: String,
        wrap: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        weight: Option<&'static str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        size: Option<&'static str>,
        #[serde(rename = "isSubtle", skip_serializing_if = "Option::is_none")]
        is_subtle: Option<bool>,
    },
    FactSet {
        facts: Vec<Fact>,
    },
    #[serde(rename = "Input.ChoiceSet")]
    ChoiceSet {
        id: &'static str,
        /// `compact` (a drop-down) or `expanded` (radio buttons).
        style: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        value: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        choices: Vec<Choice>,
    },
}

impl Element {
    /// Wrapped text; Adaptive Cards markdown (bold, italic, lists, links; no code spans).
    pub fn text(text: impl Into<String>) -> Element {
        Element::TextBlock {
            text: text.into(),
            wrap: true,
            weight: None,
            size: None,
            is_subtle: None,
        }
    }

    /// A bold heading.
    pub fn heading(text: impl Into<String>) -> Element {
        Element::TextBlock {
            text: text.into(),
            wrap: true,
            weight: Some("Bolder"),
            size: Some("Medium"),
            is_subtle: None,
        }
    }

    /// Small, grey text.
    pub fn note(text: impl Into<String>) -> Element {
        Element::TextBlock {
            text: text.into(),
            wrap: true,
            weight: None,
            size: Some("Small"),
            is_subtle: Some(true),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fact {
    pub title: String,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Choice {
    pub title: String,
    pub value: String,
}

/// An action (a button).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Action {
    /// Fires `attachmentActions/created`; Webex merges `data` into the action's `inputs`.
    #[serde(rename = "Action.Submit")]
    Submit { title: String, data: Value },
}

/// A card: its body and top-level actions. Serialized as a version 1.3 `AdaptiveCard`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Card {
    pub body: Vec<Element>,
    pub actions: Vec<Action>,
}

impl Card {
    /// The card's JSON, the `content` of the message's one attachment.
    pub fn to_json(&self) -> Value {
        let mut card = json!({
            "type": "AdaptiveCard",
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "version": VERSION,
            "body": self.body,
        });
        if !self.actions.is_empty() {
            card["actions"] = json!(self.actions);
        }
        card
    }
}

/// A card with the markdown fallback that goes beside it.
#[derive(Clone, Debug, PartialEq)]
pub struct CardMessage {
    pub card: Card,
    pub markdown: String,
}

impl CardMessage {
    /// The `POST /messages` body into `room_id` (in the thread rooted at `parent_id`). The
    /// fallback is made inert like every answer (no mention can ping anyone). Debug builds
    /// assert the card passes [`validate_message`]: every card is built in this module, so
    /// one that Webex would refuse is a bug here.
    pub fn to_message(
        &self,
        room_id: webex::RoomId,
        parent_id: Option<webex::MessageId>,
    ) -> webex::NewCardMessage {
        let markdown = webex::mention::neutralize_mentions(&self.markdown);
        let message = webex::NewCardMessage::new(room_id, parent_id, markdown, self.card.to_json());
        debug_assert!(
            validate_message(&serde_json::to_value(&message).unwrap_or_default()).is_ok(),
            "a card Webex would refuse: {:?}",
            validate_message(&serde_json::to_value(&message).unwrap_or_default())
        );
        message
    }
}

// ---------------------------------------------------------------------------------------
// The cards
// ---------------------------------------------------------------------------------------

/// `help`: the typed answer's sections as headings, its command lines as facts.
pub fn help(markdown: &str) -> CardMessage {
    CardMessage {
        card: Card {
            body: elements_of(markdown),
            actions: Vec::new(),
        },
        markdown: markdown.to_owned(),
    }
}

/// `personality list`: every personality in a choice (the current one selected) and a
/// button that switches this space to the one chosen. The button is there for everyone:
/// who may switch is checked when it is clicked, as for the typed command.
pub fn personality_list(markdown: &str, entries: &[(&str, &str)], current: &str) -> CardMessage {
    let choices = entries
        .iter()
        .map(|(name, description)| Choice {
            title: strings::personality_choice(name, description),
            value: (*name).to_owned(),
        })
        .collect();
    CardMessage {
        card: Card {
            body: vec![
                Element::heading(strings::PERSONALITY_CARD_TITLE),
                Element::ChoiceSet {
                    id: PERSONALITY_INPUT,
                    style: "compact",
                    value: Some(current.to_owned()),
                    label: Some(strings::PERSONALITY_CARD_LABEL.to_owned()),
                    choices,
                },
            ],
            actions: vec![Action::Submit {
                title: strings::PERSONALITY_CARD_BUTTON.to_owned(),
                data: json!({"action": SET_PERSONALITY}),
            }],
        },
        markdown: markdown.to_owned(),
    }
}

/// The small 👍 / 👎 card after an LLM answer (`FEEDBACK_BUTTONS`).
pub fn feedback() -> CardMessage {
    let button = |title: &str, value: &str| Action::Submit {
        title: title.to_owned(),
        data: json!({"action": FEEDBACK, "value": value}),
    };
    CardMessage {
        card: Card {
            body: vec![Element::note(strings::FEEDBACK_QUESTION)],
            actions: vec![button("👍", "up"), button("👎", "down")],
        },
        markdown: strings::FEEDBACK_FALLBACK.to_owned(),
    }
}

/// Markdown answer → card elements: `**Heading**` lines become headings, `- `cmd`: what`
/// lines facts, everything else text. Code spans become bold: cards do not render them.
fn elements_of(markdown: &str) -> Vec<Element> {
    let mut elements = Vec::new();
    let mut facts: Vec<Fact> = Vec::new();
    let flush = |facts: &mut Vec<Fact>, elements: &mut Vec<Element>| {
        if !facts.is_empty() {
            elements.push(Element::FactSet {
                facts: std::mem::take(facts),
            });
        }
    };
    for line in markdown.lines() {
        let line = line.trim();
        if let Some(item) = line.strip_prefix("- ")
            && let Some((title, value)) = item.split_once(": ")
        {
            facts.push(Fact {
                title: title.replace('`', ""),
                value: unbacktick(value),
            });
            continue;
        }
        flush(&mut facts, &mut elements);
        if line.is_empty() {
            continue;
        }
        match line
            .strip_prefix("**")
            .and_then(|rest| rest.strip_suffix("**"))
        {
            Some(heading) if !heading.contains("**") => elements.push(Element::heading(heading)),
            _ => elements.push(Element::text(unbacktick(line))),
        }
    }
    flush(&mut facts, &mut elements);
    elements
}

/// `code` → **code**.
fn unbacktick(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, piece) in text.split('`').enumerate() {
        if i % 2 == 1 && !piece.is_empty() {
            out.push_str("**");
            out.push_str(piece);
            out.push_str("**");
        } else {
            out.push_str(piece);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Validation: what Webex accepts and renders
// ---------------------------------------------------------------------------------------

/// Element types of Adaptive Cards 1.3 (and before); newer ones (`Table`, …) are refused.
const ELEMENTS_1_3: &[&str] = &[
    "TextBlock",
    "Image",
    "Media",
    "RichTextBlock",
    "Container",
    "ColumnSet",
    "Column",
    "FactSet",
    "ImageSet",
    "ActionSet",
    "Input.Text",
    "Input.Number",
    "Input.Date",
    "Input.Time",
    "Input.Toggle",
    "Input.ChoiceSet",
];
/// Action types of 1.3 (`Action.Execute` is 1.4).
const ACTIONS_1_3: &[&str] = &[
    "Action.Submit",
    "Action.OpenUrl",
    "Action.ShowCard",
    "Action.ToggleVisibility",
];
/// Card properties of later versions (1.4: `refresh`, `authentication`; 1.6: `metadata`).
const CARD_PROPERTIES_AFTER_1_3: &[&str] = &["refresh", "authentication", "metadata"];
/// Action properties of later versions (1.5).
const ACTION_PROPERTIES_AFTER_1_3: &[&str] = &["isEnabled", "mode", "tooltip", "role"];

/// Checks a card's JSON against the Adaptive Card 1.3 rules Webex applies: `type`
/// `AdaptiveCard`, a `version` of at most 1.3, only 1.3 element and action types (and no
/// later properties), inputs with ids, submit data that is an object, and at most
/// [`MAX_ACTIONS`] actions in the whole card. Every problem found is listed.
pub fn validate(card: &Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let mut actions = 0;
    check_card(card, "card", &mut problems, &mut actions);
    if actions > MAX_ACTIONS {
        problems.push(format!(
            "{actions} actions in the card; Webex allows at most {MAX_ACTIONS} (top level, action sets and select actions together)"
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// Checks a whole `POST /messages` body that carries a card: exactly one attachment of
/// content type `application/vnd.microsoft.card.adaptive`, a valid card ([`validate`]),
/// and a non-empty `markdown` (or `text`) fallback.
pub fn validate_message(body: &Value) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    let fallback = body["markdown"]
        .as_str()
        .or_else(|| body["text"].as_str())
        .unwrap_or_default();
    if fallback.trim().is_empty() {
        problems.push("no markdown or text fallback beside the card".to_owned());
    }
    match body["attachments"].as_array().map(Vec::as_slice) {
        Some([attachment]) => {
            if attachment["contentType"] != webex::ADAPTIVE_CARD_CONTENT_TYPE {
                problems.push(format!(
                    "attachment contentType is {}, not {}",
                    attachment["contentType"],
                    webex::ADAPTIVE_CARD_CONTENT_TYPE
                ));
            }
            if let Err(card) = validate(&attachment["content"]) {
                problems.extend(card);
            }
        }
        Some(more) => problems.push(format!(
            "{} attachments; Webex takes exactly one card",
            more.len()
        )),
        None => problems.push("no attachments array".to_owned()),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// `major.minor` → whether it is at most 1.3.
fn version_ok(version: &str) -> bool {
    let mut parts = version.split('.');
    let major = parts.next().and_then(|m| m.parse::<u32>().ok());
    let minor = parts.next().map_or(Some(0), |m| m.parse::<u32>().ok());
    match (major, minor, parts.next()) {
        (Some(major), Some(minor), None) => (major, minor) <= (1, 3),
        _ => false,
    }
}

fn check_card(card: &Value, at: &str, problems: &mut Vec<String>, actions: &mut usize) {
    if !card.is_object() {
        problems.push(format!("{at}: not a JSON object"));
        return;
    }
    if card["type"] != "AdaptiveCard" {
        problems.push(format!("{at}: type is {}, not AdaptiveCard", card["type"]));
    }
    match card["version"].as_str() {
        Some(v) if version_ok(v) => {}
        Some(v) => problems.push(format!("{at}: version {v} is newer than {VERSION}")),
        // A card inside Action.ShowCard inherits the version.
        None if at != "card" => {}
        None => problems.push(format!("{at}: no version")),
    }
    for property in CARD_PROPERTIES_AFTER_1_3 {
        if !card[*property].is_null() {
            problems.push(format!("{at}: `{property}` is newer than {VERSION}"));
        }
    }
    check_elements(&card["body"], &format!("{at}.body"), problems, actions);
    check_actions(
        &card["actions"],
        &format!("{at}.actions"),
        problems,
        actions,
    );
    if let Some(select) = card.get("selectAction") {
        check_action(select, &format!("{at}.selectAction"), problems, actions);
    }
}

fn check_elements(list: &Value, at: &str, problems: &mut Vec<String>, actions: &mut usize) {
    match list {
        Value::Null => {}
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_element(item, &format!("{at}[{i}]"), problems, actions);
            }
        }
        _ => problems.push(format!("{at}: not an array")),
    }
}

fn check_element(element: &Value, at: &str, problems: &mut Vec<String>, actions: &mut usize) {
    let kind = element["type"].as_str().unwrap_or_default();
    // Columns may leave their type out inside a ColumnSet.
    let kind = if kind.is_empty() && at.contains(".columns[") {
        "Column"
    } else {
        kind
    };
    if !ELEMENTS_1_3.contains(&kind) {
        problems.push(format!(
            "{at}: element type {:?} is not an Adaptive Card {VERSION} element",
            element["type"]
        ));
        return;
    }
    if kind.starts_with("Input.") && element["id"].as_str().is_none_or(str::is_empty) {
        problems.push(format!("{at}: {kind} without an id"));
    }
    if kind == "Input.ChoiceSet" {
        let choices_ok = element["choices"].as_array().is_some_and(|choices| {
            choices
                .iter()
                .all(|c| c["title"].is_string() && c["value"].is_string())
        });
        if !choices_ok {
            problems.push(format!(
                "{at}: choices must each have a string title and value"
            ));
        }
    }
    if kind == "TextBlock" && !element["text"].is_string() {
        problems.push(format!("{at}: TextBlock without text"));
    }
    check_elements(&element["items"], &format!("{at}.items"), problems, actions);
    check_elements(
        &element["columns"],
        &format!("{at}.columns"),
        problems,
        actions,
    );
    if kind == "ActionSet" {
        check_actions(
            &element["actions"],
            &format!("{at}.actions"),
            problems,
            actions,
        );
    }
    if let Some(select) = element.get("selectAction") {
        check_action(select, &format!("{at}.selectAction"), problems, actions);
    }
}

fn check_actions(list: &Value, at: &str, problems: &mut Vec<String>, actions: &mut usize) {
    match list {
        Value::Null => {}
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check_action(item, &format!("{at}[{i}]"), problems, actions);
            }
        }
        _ => problems.push(format!("{at}: not an array")),
    }
}

fn check_action(action: &Value, at: &str, problems: &mut Vec<String>, actions: &mut usize) {
    *actions += 1;
    let kind = action["type"].as_str().unwrap_or_default();
    if !ACTIONS_1_3.contains(&kind) {
        problems.push(format!(
            "{at}: action type {:?} is not an Adaptive Card {VERSION} action",
            action["type"]
        ));
        return;
    }
    for property in ACTION_PROPERTIES_AFTER_1_3 {
        if !action[*property].is_null() {
            problems.push(format!("{at}: `{property}` is newer than {VERSION}"));
        }
    }
    match kind {
        "Action.Submit" if !(action["data"].is_null() || action["data"].is_object()) => {
            problems.push(format!(
                "{at}: Action.Submit data must be an object (Webex merges it into the inputs)"
            ));
        }
        "Action.OpenUrl" if !action["url"].is_string() => {
            problems.push(format!("{at}: Action.OpenUrl without a url"));
        }
        "Action.ShowCard" => check_card(&action["card"], &format!("{at}.card"), problems, actions),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries() -> Vec<(&'static str, &'static str)> {
        vec![
            ("default", "Friendly, concise assistant"),
            ("pirate", "Talks like a pirate"),
        ]
    }

    #[test]
    fn every_card_the_bot_builds_passes() {
        let cards = [
            help(&strings::help(true, true)),
            help(&strings::help(false, false)),
            personality_list(
                &strings::personality_list(&entries(), "pirate", true),
                &entries(),
                "pirate",
            ),
            feedback(),
        ];
        for card in cards {
            let message = card.to_message(webex::RoomId::new("R"), None);
            let body = serde_json::to_value(&message).unwrap();
            assert_eq!(validate_message(&body), Ok(()), "{body:#}");
            assert!(!card.markdown.trim().is_empty());
        }
    }

    #[test]
    fn the_personality_card_has_the_choice_and_the_submit() {
        let card = personality_list("fallback", &entries(), "pirate")
            .card
            .to_json();
        assert_eq!(card["version"], "1.3");
        let choice = &card["body"][1];
        assert_eq!(choice["type"], "Input.ChoiceSet");
        assert_eq!(choice["id"], "personality");
        assert_eq!(choice["value"], "pirate");
        assert_eq!(choice["choices"][1]["value"], "pirate");
        assert_eq!(card["actions"][0]["type"], "Action.Submit");
        assert_eq!(
            card["actions"][0]["data"],
            json!({"action": "set_personality"})
        );
    }

    #[test]
    fn the_feedback_card_has_two_buttons() {
        let card = feedback().card.to_json();
        let data: Vec<&Value> = card["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| &a["data"])
            .collect();
        assert_eq!(
            data,
            [
                &json!({"action": "feedback", "value": "up"}),
                &json!({"action": "feedback", "value": "down"})
            ]
        );
    }

    #[test]
    fn the_help_card_reads_like_the_typed_help() {
        let card = help("**Commands**\n- `help`: this list\n- `reset`: forget `it`\n\nJust text")
            .card
            .to_json();
        assert_eq!(card["body"][0]["text"], "Commands");
        assert_eq!(card["body"][0]["weight"], "Bolder");
        assert_eq!(card["body"][1]["type"], "FactSet");
        assert_eq!(
            card["body"][1]["facts"][1],
            json!({"title": "reset", "value": "forget **it**"})
        );
        assert_eq!(card["body"][2]["text"], "Just text");
        assert!(card.get("actions").is_none());
    }

    fn submit(n: usize) -> Value {
        json!({"type": "Action.Submit", "title": format!("b{n}"), "data": {"n": n}})
    }

    #[test]
    fn validation_table() {
        let ok = |card: Value| assert_eq!(validate(&card), Ok(()), "{card:#}");
        let bad = |card: Value, needle: &str| {
            let problems = validate(&card).expect_err(needle);
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle}: {problems:?}"
            );
        };
        let base = || json!({"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "TextBlock", "text": "x"}]});
        ok(base());
        for version in ["1.0", "1.2", "1", "1.3"] {
            let mut c = base();
            c["version"] = json!(version);
            ok(c);
        }
        for version in ["1.4", "1.5", "2.0", "x", "1.3.1", ""] {
            let mut c = base();
            c["version"] = json!(version);
            bad(c, "version");
        }
        let mut c = base();
        c.as_object_mut().unwrap().remove("version");
        bad(c, "no version");
        let mut c = base();
        c["type"] = json!("MessageCard");
        bad(c, "AdaptiveCard");
        // Newer elements, actions and properties.
        bad(
            json!({"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "Table", "rows": []}]}),
            "Table",
        );
        bad(
            json!({"type": "AdaptiveCard", "version": "1.3", "body": [], "actions": [{"type": "Action.Execute", "title": "x"}]}),
            "Action.Execute",
        );
        let mut c = base();
        c["refresh"] = json!({"action": {}});
        bad(c, "refresh");
        bad(
            json!({"type": "AdaptiveCard", "version": "1.3", "actions": [{"type": "Action.Submit", "title": "x", "isEnabled": false}]}),
            "isEnabled",
        );
        // Five actions pass, six fail, wherever they are.
        let mut c = base();
        c["actions"] = json!((0..5).map(submit).collect::<Vec<_>>());
        ok(c);
        let mut c = base();
        c["actions"] = json!((0..3).map(submit).collect::<Vec<_>>());
        c["body"] = json!([
            {"type": "ActionSet", "actions": [submit(3), submit(4)]},
            {"type": "Container", "items": [{"type": "TextBlock", "text": "x"}], "selectAction": submit(5)}
        ]);
        bad(c, "6 actions");
        let mut c = base();
        c["actions"] = json!([{"type": "Action.ShowCard", "title": "more", "card": {
            "type": "AdaptiveCard", "body": [{"type": "ColumnSet", "columns": [{"items": [
                {"type": "ActionSet", "actions": [submit(1), submit(2), submit(3), submit(4), submit(5)]}
            ]}]}]
        }}]);
        bad(c, "6 actions");
        // Inputs and submit data.
        bad(
            json!({"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "Input.Text"}]}),
            "without an id",
        );
        bad(
            json!({"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "Input.ChoiceSet", "id": "c", "choices": [{"title": 1}]}]}),
            "choices",
        );
        bad(
            json!({"type": "AdaptiveCard", "version": "1.3", "actions": [{"type": "Action.Submit", "title": "x", "data": "set"}]}),
            "data must be an object",
        );
    }

    #[test]
    fn message_validation_table() {
        let card = feedback().card.to_json();
        let attachment = json!({"contentType": webex::ADAPTIVE_CARD_CONTENT_TYPE, "content": card});
        assert_eq!(
            validate_message(&json!({"roomId": "R", "markdown": "m", "attachments": [attachment]})),
            Ok(())
        );
        let cases = [
            (
                json!({"roomId": "R", "attachments": [attachment]}),
                "fallback",
            ),
            (
                json!({"roomId": "R", "markdown": "  ", "attachments": [attachment]}),
                "fallback",
            ),
            (
                json!({"roomId": "R", "markdown": "m", "attachments": [attachment, attachment]}),
                "exactly one",
            ),
            (
                json!({"roomId": "R", "markdown": "m", "attachments": [{"contentType": "application/json", "content": card}]}),
                "contentType",
            ),
            (json!({"roomId": "R", "markdown": "m"}), "no attachments"),
        ];
        for (body, needle) in cases {
            let problems = validate_message(&body).expect_err(needle);
            assert!(
                problems.iter().any(|p| p.contains(needle)),
                "{needle}: {problems:?}"
            );
        }
    }
}
