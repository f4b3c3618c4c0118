//! Message and webhook builders from the Webex fixtures: direct and group messages, card
//! submissions and membership events.

use super::*;

/// Someone submits a card the bot posted: the fake Webex learns the attachment action
/// (`inputs` already merged with the button's data, as Webex does) and the test gets the
/// `attachmentActions`/`created` webhook to deliver.
pub fn submit_card(
    webex: &MockServer,
    action_id: &str,
    card: &Value,
    person_id: &str,
    inputs: Value,
) -> Value {
    let action = json!({
        "id": action_id,
        "type": "submit",
        "messageId": card["id"],
        "inputs": inputs,
        "personId": person_id,
        "roomId": card["roomId"],
        "created": now_rfc3339(),
    });
    fake_state(&webex.uri())
        .lock()
        .unwrap()
        .actions
        .insert(action_id.to_owned(), action.clone());
    let mut event = fixture("webhook-messages-created.json");
    event["resource"] = json!("attachmentActions");
    event["name"] = json!("webex-chatbot");
    event["actorId"] = json!(person_id);
    event["data"] = json!({
        "id": action_id, "type": "submit", "messageId": card["id"], "personId": person_id,
        "roomId": card["roomId"], "created": action["created"],
    });
    event
}

/// The `memberships`/`created` webhook for `person_id` added to `room` (`group`|`direct`).
pub fn membership_event(
    membership_id: &str,
    room: &str,
    room_type: &str,
    person_id: &str,
    email: &str,
) -> Value {
    let mut event = fixture("webhook-messages-created.json");
    event["resource"] = json!("memberships");
    event["data"] = json!({
        "id": membership_id, "roomId": room, "roomType": room_type, "personId": person_id,
        "personEmail": email, "personDisplayName": "x", "personOrgId": "ORG",
        "isModerator": false, "isMonitor": false, "created": now_rfc3339(),
    });
    event
}

/// A `messages`/`created` webhook for a message (the envelope of the fixture, with ids).
pub fn event_for(message: &Value) -> Value {
    let mut event = fixture("webhook-messages-created.json");
    event["data"] = json!({
        "id": message["id"],
        "roomId": message["roomId"],
        "roomType": message["roomType"],
        "personId": message["personId"],
        "personEmail": message["personEmail"],
        "created": message["created"],
    });
    event
}

/// A direct message from `email` with this text and a unique id.
pub fn direct_message(id: &str, room: &str, email: &str, text: &str) -> Value {
    let mut m = fixture("message-direct.json");
    m["id"] = json!(id);
    m["roomId"] = json!(room);
    m["personEmail"] = json!(email);
    m["text"] = json!(text);
    m["markdown"] = json!(text);
    m
}

/// A group-space message from `email` that @mentions the bot (desktop form), with a
/// unique id, not in a thread.
pub fn group_message(id: &str, room: &str, email: &str, text: &str) -> Value {
    let mut m = fixture("message-group-mention-desktop.json");
    m["id"] = json!(id);
    m["roomId"] = json!(room);
    m["personEmail"] = json!(email);
    m["text"] = json!(format!("HelpBot {text}"));
    m["markdown"] = json!(format!("HelpBot {text}"));
    m["html"] = json!(format!(
        "<p><spark-mention data-object-type=\"person\" data-object-id=\"{BOT_ID}\">HelpBot</spark-mention> {text}</p>"
    ));
    m["created"] = json!(now_rfc3339());
    m
}
