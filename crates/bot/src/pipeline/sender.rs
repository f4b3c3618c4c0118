//! Sender checks, before anything is asked of the store or the LLM: never the bot itself
//! or another bot (loops), a sender with an email, and in a group space (or one of unknown
//! type) only a message that mentions the bot, whose mention is then stripped.

use crate::domain::{Email, IgnoreReason};
use crate::state::BotIdentity;

/// A message worth answering, as far as its sender and mention go.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Incoming {
    pub sender: Email,
    /// A group space, or one whose type Webex did not say.
    pub group: bool,
    /// The text with the bot's mention removed, trimmed.
    pub text: String,
}

pub(crate) fn check(bot: &BotIdentity, message: &webex::Message) -> Result<Incoming, IgnoreReason> {
    if message
        .person_id
        .as_ref()
        .is_some_and(|p| bot.id.same_person(p.as_str()))
    {
        return Err(IgnoreReason::OwnMessage);
    }
    let sender = message
        .person_email
        .as_deref()
        .and_then(|e| Email::parse(e).ok())
        .ok_or(IgnoreReason::NoSenderEmail)?;
    if sender.is_bot() {
        return Err(IgnoreReason::BotSender);
    }
    // A message of unknown room type is treated as group: it needs a mention, and only
    // admins may switch the personality.
    let group = !matches!(message.room_type, Some(webex::RoomType::Direct));
    let mentioned = webex::mention::mentions(message, &bot.id);
    if group && !mentioned {
        return Err(IgnoreReason::NotMentioned);
    }
    let text = if mentioned {
        webex::mention::strip_bot_mention(message, &bot.id, &bot.display_name)
    } else {
        message.text.as_deref().unwrap_or("").trim().to_owned()
    };
    Ok(Incoming {
        sender,
        group,
        text,
    })
}

#[cfg(test)]
#[allow(clippy::type_complexity)]
mod tests {
    use super::*;

    const BOT: &str =
        "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";

    fn bot() -> BotIdentity {
        BotIdentity {
            id: webex::PersonId::new(BOT.to_owned()),
            display_name: "HelpBot".to_owned(),
        }
    }

    fn message(
        room_type: Option<&str>,
        email: &str,
        person: &str,
        mentions: bool,
    ) -> webex::Message {
        let mut m = serde_json::json!({
            "id": "M", "roomId": "R", "personId": person, "personEmail": email,
            "text": "HelpBot hello", "created": "2026-12-07T10:00:00Z"
        });
        if let Some(t) = room_type {
            m["roomType"] = serde_json::json!(t);
        }
        if mentions {
            m["mentionedPeople"] = serde_json::json!([BOT]);
            m["html"] = serde_json::json!(format!(
                "<p><spark-mention data-object-type=\"person\" data-object-id=\"{BOT}\">HelpBot</spark-mention> hello</p>"
            ));
        }
        serde_json::from_value(m).unwrap()
    }

    #[test]
    fn sender_checks_table() {
        let alice = "alice@example.com";
        let cases: &[(
            Option<&str>,
            &str,
            &str,
            bool,
            Result<(bool, &str), IgnoreReason>,
        )] = &[
            (
                Some("direct"),
                alice,
                "P-ALICE",
                false,
                Ok((false, "HelpBot hello")),
            ),
            (Some("direct"), alice, "P-ALICE", true, Ok((false, "hello"))),
            (Some("group"), alice, "P-ALICE", true, Ok((true, "hello"))),
            (
                Some("group"),
                alice,
                "P-ALICE",
                false,
                Err(IgnoreReason::NotMentioned),
            ),
            (
                None,
                alice,
                "P-ALICE",
                false,
                Err(IgnoreReason::NotMentioned),
            ),
            (None, alice, "P-ALICE", true, Ok((true, "hello"))),
            (
                Some("direct"),
                "helper@webex.bot",
                "P-OTHER-BOT",
                false,
                Err(IgnoreReason::BotSender),
            ),
            (
                Some("direct"),
                alice,
                BOT,
                false,
                Err(IgnoreReason::OwnMessage),
            ),
            (
                Some("direct"),
                "not an email",
                "P-X",
                false,
                Err(IgnoreReason::NoSenderEmail),
            ),
        ];
        for (room_type, email, person, mentions, want) in cases {
            let got = check(&bot(), &message(*room_type, email, person, *mentions))
                .map(|i| (i.group, i.text));
            let want = want.map(|(g, t)| (g, t.to_owned()));
            assert_eq!(got, want, "{room_type:?} {email} {person} {mentions}");
        }
    }
}
