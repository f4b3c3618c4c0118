//! Mention detection and stripping on arbitrary messages (any `html`, `text`, ids).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webex::{Message, MessageId, PersonId, RoomId};

const BOT_ID: &str = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    // Fields separated by NUL: text, html, display name, a mentioned person id.
    let mut fields = s.split('\0');
    let text = fields.next().unwrap_or_default().to_owned();
    let html = fields.next().map(str::to_owned);
    let name = fields.next().unwrap_or("HelpBot").to_owned();
    let mentioned: Vec<PersonId> = fields.next().map(PersonId::new).into_iter().collect();
    let message = Message {
        id: MessageId::new("M"),
        room_id: RoomId::new("R"),
        text: Some(text.clone()),
        html,
        mentioned_people: mentioned,
        ..Message::default()
    };
    let bot = PersonId::new(BOT_ID);
    let _ = webex::mention::mentions(&message, &bot);
    let stripped = webex::mention::strip_bot_mention(&message, &bot, &name);
    // Stripping only removes text: never longer than the trimmed original.
    assert!(stripped.len() <= text.trim().len(), "{stripped:?} grew from {text:?}");
    assert_eq!(stripped, stripped.trim());
});
