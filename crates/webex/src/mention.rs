//! Mentions of the bot: detecting them and stripping them from the message text.
//! The `<spark-mention>` elements in `html` say who was mentioned and with which display
//! text (people shorten the pill, mobile clients use raw uuids), so they are read with a
//! small tolerant scanner rather than trusted to a fixed spelling.

use crate::Message;
use crate::ids::PersonId;

/// True when the message mentions the bot: `mentioned_people` contains the bot (either id
/// form), or `html` has a `<spark-mention data-object-type="person" data-object-id=…>` of
/// the bot (base64 id or raw uuid; attributes in any order; single or double quotes).
pub fn mentions(message: &Message, bot_id: &PersonId) -> bool {
    message
        .mentioned_people
        .iter()
        .any(|person| bot_id.same_person(person.as_str()))
        || message
            .html
            .as_deref()
            .is_some_and(|html| !bot_mentions(html, bot_id).is_empty())
}

/// The message text with the bot's mention removed, trimmed.
///
/// The bot's mention elements in `html` give the display text actually used (e.g.
/// "Help" for "HelpBot"); that text is removed where the mention stands in `text` and a
/// "," or ":" left dangling at that edge is tidied away. When there is no such element
/// (or its text cannot be found), a leading `bot_display_name` (case-insensitive, or its
/// first word) is removed instead. Mentions of other people stay.
pub fn strip_bot_mention(message: &Message, bot_id: &PersonId, bot_display_name: &str) -> String {
    let text = message.text.as_deref().unwrap_or_default();
    if let Some(html) = message.html.as_deref()
        && let Some(stripped) = strip_html_mentions(text, html, bot_id)
    {
        return stripped;
    }
    strip_leading_name(text, bot_display_name).unwrap_or_else(|| text.trim().to_owned())
}

fn strip_html_mentions(text: &str, html: &str, bot_id: &PersonId) -> Option<String> {
    let mut out = text.to_owned();
    let mut removed = false;
    // Last first, so the positions of earlier mentions in `out` stay valid.
    for mention in bot_mentions(html, bot_id).iter().rev() {
        let display = mention.text.trim();
        if display.is_empty() {
            continue;
        }
        // Which occurrence of the display text in `text` is this mention: count the
        // ones before it in the html's plain text (a sentence may contain the word too).
        let before = plain_text(html.get(..mention.start).unwrap_or_default());
        let nth = find_all(&before, display).len();
        let found = find_all(&out, display);
        let Some(&at) = found.get(nth).or(found.first()) else {
            continue;
        };
        out = remove_range(&out, at, at + display.len());
        removed = true;
    }
    removed.then(|| out.trim().to_owned())
}

fn strip_leading_name(text: &str, name: &str) -> Option<String> {
    let name = name.trim();
    let first_word = name.split_whitespace().next().unwrap_or_default();
    let trimmed = text.trim_start();
    let body = trimmed.strip_prefix('@').unwrap_or(trimmed);
    [name, first_word]
        .into_iter()
        .filter(|candidate| !candidate.is_empty())
        .find_map(|candidate| {
            let head = body.get(..candidate.len())?;
            let rest = &body[candidate.len()..];
            let at_word_end = !rest.chars().next().is_some_and(char::is_alphanumeric);
            (head.to_lowercase() == candidate.to_lowercase() && at_word_end)
                .then(|| remove_range(body, 0, candidate.len()).trim().to_owned())
        })
}

/// Removes `s[start..end]` and mends the seam: one space between words, no space before
/// punctuation, and no "," or ":" dangling where the mention opened or closed the text.
fn remove_range(s: &str, start: usize, end: usize) -> String {
    let left = s.get(..start).unwrap_or_default().trim_end();
    let right = s.get(end..).unwrap_or_default().trim_start();
    let dangling = |c: char| c == ',' || c == ':' || c.is_whitespace();
    if left.is_empty() {
        return right.trim_start_matches(dangling).to_owned();
    }
    if right.is_empty() {
        return left.trim_end_matches(dangling).to_owned();
    }
    let glue = if right.starts_with([',', '.', ':', ';', '!', '?', ')']) {
        ""
    } else {
        " "
    };
    format!("{left}{glue}{right}")
}

/// Byte offsets of `needle` in `haystack` as a whole word, falling back to any match and
/// then to an ASCII-case-insensitive one, so that a pill "Al" does not match "Also".
fn find_all(haystack: &str, needle: &str) -> Vec<usize> {
    let exact: Vec<usize> = haystack.match_indices(needle).map(|(i, _)| i).collect();
    let words: Vec<usize> = exact
        .iter()
        .copied()
        .filter(|&i| is_word_boundary(haystack, i, i + needle.len()))
        .collect();
    if !words.is_empty() {
        return words;
    }
    if !exact.is_empty() {
        return exact;
    }
    // ASCII lowercasing keeps byte offsets, so they index the original text.
    haystack
        .to_ascii_lowercase()
        .match_indices(&needle.to_ascii_lowercase())
        .map(|(i, _)| i)
        .collect()
}

fn is_word_boundary(s: &str, start: usize, end: usize) -> bool {
    let before = s.get(..start).and_then(|b| b.chars().next_back());
    let after = s.get(end..).and_then(|a| a.chars().next());
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

/// One `<spark-mention>` element.
#[derive(Debug, Default)]
struct MentionElement {
    /// Byte offset of the element's `<` in the html.
    start: usize,
    object_type: Option<String>,
    object_id: Option<String>,
    /// The display text, entities decoded.
    text: String,
}

fn bot_mentions(html: &str, bot_id: &PersonId) -> Vec<MentionElement> {
    spark_mentions(html)
        .into_iter()
        .filter(|m| {
            m.object_type
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case("person"))
                && m.object_id
                    .as_deref()
                    .is_some_and(|id| bot_id.same_person(id.trim()))
        })
        .collect()
}

const OPEN_TAG: &str = "<spark-mention";
const CLOSE_TAG: &str = "</spark-mention";

fn spark_mentions(html: &str) -> Vec<MentionElement> {
    // ASCII lowercasing keeps byte offsets, so positions found in `lower` index `html`.
    let lower = html.to_ascii_lowercase();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(rel) = lower.get(from..).and_then(|rest| rest.find(OPEN_TAG)) {
        let start = from + rel;
        let after_name = start + OPEN_TAG.len();
        // `<spark-mentionx` is another tag.
        if !html[after_name..]
            .chars()
            .next()
            .is_some_and(|c| c.is_whitespace() || c == '>' || c == '/')
        {
            from = after_name;
            continue;
        }
        let (mut element, tag_end, self_closing) = parse_attributes(html, after_name);
        element.start = start;
        from = tag_end;
        if !self_closing {
            let inner_end = lower[tag_end..]
                .find(CLOSE_TAG)
                .map_or(html.len(), |i| tag_end + i);
            element.text = plain_text(&html[tag_end..inner_end]);
            from = lower[inner_end..]
                .find('>')
                .map_or(html.len(), |i| inner_end + i + 1);
        }
        found.push(element);
    }
    found
}

/// Reads `name=value` pairs up to the tag's `>`; returns the element, the offset after
/// the tag and whether it was self-closing. Tolerates any quoting and a missing `>`.
fn parse_attributes(html: &str, mut pos: usize) -> (MentionElement, usize, bool) {
    let mut element = MentionElement::default();
    let bytes = html.as_bytes();
    let skip_space = |mut p: usize| {
        while bytes.get(p).is_some_and(u8::is_ascii_whitespace) {
            p += 1;
        }
        p
    };
    loop {
        pos = skip_space(pos);
        match bytes.get(pos) {
            None => return (element, html.len(), true),
            Some(b'>') => return (element, pos + 1, false),
            Some(b'/') if bytes.get(pos + 1) == Some(&b'>') => return (element, pos + 2, true),
            Some(b'/') => {
                pos += 1;
                continue;
            }
            Some(_) => {}
        }
        let name_start = pos;
        while bytes
            .get(pos)
            .is_some_and(|b| !b.is_ascii_whitespace() && !matches!(b, b'=' | b'>' | b'/'))
        {
            pos += 1;
        }
        let name = html[name_start..pos].to_ascii_lowercase();
        pos = skip_space(pos);
        let mut value = String::new();
        if bytes.get(pos) == Some(&b'=') {
            pos = skip_space(pos + 1);
            let value_end;
            match bytes.get(pos) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let open = pos + 1;
                    value_end = html[open..]
                        .find(char::from(quote))
                        .map_or(html.len(), |i| open + i);
                    value = decode_entities(&html[open..value_end]);
                    pos = (value_end + 1).min(html.len());
                }
                _ => {
                    let open = pos;
                    while bytes
                        .get(pos)
                        .is_some_and(|b| !b.is_ascii_whitespace() && *b != b'>')
                    {
                        pos += 1;
                    }
                    value_end = pos;
                    value = decode_entities(&html[open..value_end]);
                }
            }
        }
        match name.as_str() {
            "data-object-type" => element.object_type = Some(value),
            "data-object-id" => element.object_id = Some(value),
            _ => {}
        }
    }
}

/// The text of an html fragment: tags dropped, entities decoded.
fn plain_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        text.push_str(&rest[..lt]);
        rest = rest[lt..].find('>').map_or("", |gt| &rest[lt + gt + 1..]);
    }
    text.push_str(rest);
    decode_entities(&text)
}

fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let decoded = rest
            .get(1..)
            .and_then(|r| {
                r.find(';')
                    .filter(|&semi| semi <= 10)
                    .map(|semi| &r[..semi])
            })
            .and_then(|entity| Some((decode_entity(entity)?, entity.len() + 2)));
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &rest[len..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn decode_entity(entity: &str) -> Option<char> {
    match entity {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        _ => {
            let number = entity.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Makes text safe to post: Webex turns `<@all>`, `<@personEmail:…>`, `<@personId:…>`,
/// `<@groupMention…>` and `<spark-mention …>` in a message into real mentions, so an
/// answer the bot did not write itself (the LLM's) could ping a whole space. A zero-width
/// space after each such `<` leaves the words readable and the markup inert: the result
/// contains no `<@` and no `<spark-mention` in any letter case.
pub fn neutralize_mentions(text: &str) -> std::borrow::Cow<'_, str> {
    const TAG: &str = "spark-mention";
    let needs = |rest: &str| {
        rest.starts_with('@')
            || rest
                .get(..TAG.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(TAG))
    };
    if !text.match_indices('<').any(|(i, _)| needs(&text[i + 1..])) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        if needs(rest) {
            out.push('\u{200B}');
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn mentions_in_answers_are_neutralized() {
        let cases = [
            "<@all> please read",
            "ping <@personEmail:boss@example.com> now",
            "<@personId:Y2lzY29zcGFyazovL3VzL1BFT1BMRS8x|Boss>",
            "<@groupMention:all>",
            "<spark-mention data-object-type=\"groupMention\" data-group-type=\"all\">All</spark-mention>",
            "<SPARK-MENTION data-object-id=\"x\">X</SPARK-MENTION>",
            "<<@all>>",
        ];
        for case in cases {
            let out = neutralize_mentions(case);
            assert!(!out.contains("<@"), "{out:?}");
            assert!(
                !out.to_ascii_lowercase().contains("<spark-mention"),
                "{out:?}"
            );
            assert_eq!(out.replace('\u{200B}', ""), case, "the words stay");
        }
        let plain = "a < b and x<y, <b>bold</b>, email@example.com";
        assert!(matches!(
            neutralize_mentions(plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    proptest! {
        #[test]
        fn neutralized_text_never_mentions(text in ".{0,200}") {
            let out = neutralize_mentions(&text);
            prop_assert!(!out.contains("<@"));
            prop_assert!(!out.to_ascii_lowercase().contains("<spark-mention"));
            prop_assert_eq!(out.replace('\u{200B}', ""), text.replace('\u{200B}', ""));
        }
    }

    use super::*;
    use proptest::prelude::*;

    const BOT_B64: &str =
        "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";
    const BOT_UUID: &str = "249f74d9-db8a-43ca-896b-879ed240ac53";
    const ALICE_B64: &str =
        "Y2lzY29zcGFyazovL3VzL1BFT1BMRS85MmIzZGQ5YS02NzVkLTRhNDEtOGMxZS0xMjM0NTY3ODkwYWI";
    const DESKTOP: &str = include_str!("../tests/fixtures/message-group-mention-desktop.json");
    const MOBILE: &str = include_str!("../tests/fixtures/message-group-mention-mobile.json");
    const DIRECT: &str = include_str!("../tests/fixtures/message-direct.json");

    fn bot() -> PersonId {
        PersonId::new(BOT_B64)
    }

    fn fixture(json: &str) -> Message {
        serde_json::from_str(json).unwrap()
    }

    fn message(text: &str, html: Option<&str>, mentioned: &[&str]) -> Message {
        Message {
            text: Some(text.to_owned()),
            html: html.map(str::to_owned),
            mentioned_people: mentioned.iter().map(|id| PersonId::new(*id)).collect(),
            ..Message::default()
        }
    }

    fn pill(id: &str, name: &str) -> String {
        format!(
            r#"<spark-mention data-object-type="person" data-object-id="{id}">{name}</spark-mention>"#
        )
    }

    #[test]
    fn fixtures() {
        let desktop = fixture(DESKTOP);
        assert!(mentions(&desktop, &bot()));
        assert_eq!(
            strip_bot_mention(&desktop, &bot(), "HelpBot"),
            "what does HTTP 429 mean?"
        );

        let mobile = fixture(MOBILE);
        assert!(mentions(&mobile, &bot()));
        assert_eq!(
            strip_bot_mention(&mobile, &bot(), "HelpBot"),
            "and what about 503?"
        );
        // The raw-uuid form of the bot id works the same.
        assert_eq!(
            strip_bot_mention(&mobile, &PersonId::new(BOT_UUID), "HelpBot"),
            "and what about 503?"
        );

        let direct = fixture(DIRECT);
        assert!(!mentions(&direct, &bot()));
        assert_eq!(
            strip_bot_mention(&direct, &bot(), "HelpBot"),
            "Summarise the difference between TCP and UDP in three bullets."
        );
    }

    #[test]
    fn detection_table() {
        let bot_pill = pill(BOT_B64, "HelpBot");
        let uuid_pill_single_quotes = format!(
            "<spark-mention data-object-id='{}' data-object-type='person'>Help</spark-mention> hi",
            BOT_UUID.to_uppercase()
        );
        let all = r#"<spark-mention data-object-type="groupMention" data-group-type="all">All</spark-mention> standup"#;
        let alice = pill(ALICE_B64, "Alice");
        let wrong_type = format!(
            r#"<spark-mention data-object-type="team" data-object-id="{BOT_B64}">HelpBot</spark-mention>"#
        );
        let upper_tag = format!(
            r#"<SPARK-MENTION DATA-OBJECT-TYPE=person DATA-OBJECT-ID={BOT_UUID}>HelpBot</SPARK-MENTION>"#
        );
        let cases: &[(&str, Message, bool)] = &[
            (
                "mentionedPeople base64",
                message("x", None, &[BOT_B64]),
                true,
            ),
            (
                "mentionedPeople uuid",
                message("x", None, &[BOT_UUID]),
                true,
            ),
            ("html base64 only", message("x", Some(&bot_pill), &[]), true),
            (
                "html uuid, swapped attrs, single quotes",
                message("x", Some(&uuid_pill_single_quotes), &[]),
                true,
            ),
            (
                "html unquoted, upper case",
                message("x", Some(&upper_tag), &[]),
                true,
            ),
            (
                "@All is not the bot",
                message("All standup", Some(all), &[]),
                false,
            ),
            (
                "other person only",
                message("Alice hi", Some(&alice), &[ALICE_B64]),
                false,
            ),
            (
                "wrong object type",
                message("x", Some(&wrong_type), &[]),
                false,
            ),
            (
                "no html, no mentions",
                message("HelpBot hi", None, &[]),
                false,
            ),
            (
                "broken html",
                message("x", Some("<spark-mention data-object-id=\""), &[]),
                false,
            ),
        ];
        for (name, msg, want) in cases {
            assert_eq!(mentions(msg, &bot()), *want, "{name}");
        }
    }

    #[test]
    fn strip_table() {
        let p = |name: &str| pill(BOT_B64, name);
        let alice = pill(ALICE_B64, "Alice");
        let cases: Vec<(&str, Message, &str, &str)> = vec![
            (
                "mention in the middle",
                message(
                    "Hey HelpBot what is DNS?",
                    Some(&format!("<p>Hey {} what is DNS?</p>", p("HelpBot"))),
                    &[BOT_B64],
                ),
                "HelpBot",
                "Hey what is DNS?",
            ),
            (
                "comma after the mention",
                message(
                    "HelpBot, reset",
                    Some(&format!("<p>{}, reset</p>", p("HelpBot"))),
                    &[BOT_B64],
                ),
                "HelpBot",
                "reset",
            ),
            (
                "colon after the mention",
                message(
                    "Help: status",
                    Some(&format!("{}: status", p("Help"))),
                    &[BOT_B64],
                ),
                "HelpBot",
                "status",
            ),
            (
                "mention at the end",
                message(
                    "what is DNS, HelpBot",
                    Some(&format!("what is DNS, {}", p("HelpBot"))),
                    &[BOT_B64],
                ),
                "HelpBot",
                "what is DNS",
            ),
            (
                "mention in the middle before a comma",
                message(
                    "Thanks HelpBot, great",
                    Some(&format!("Thanks {}, great", p("HelpBot"))),
                    &[BOT_B64],
                ),
                "HelpBot",
                "Thanks, great",
            ),
            (
                "another person's mention stays",
                message(
                    "HelpBot ask Alice about it",
                    Some(&format!("<p>{} ask {alice} about it</p>", p("HelpBot"))),
                    &[BOT_B64, ALICE_B64],
                ),
                "HelpBot",
                "ask Alice about it",
            ),
            (
                "the display text also appears as a word before the mention",
                message(
                    "Help me Help with this",
                    Some(&format!("<p>Help me {} with this</p>", p("Help"))),
                    &[BOT_B64],
                ),
                "HelpBot",
                "Help me with this",
            ),
            (
                "short pill does not eat a longer word",
                message(
                    "Also Al look",
                    Some(&format!("Also {} look", p("Al"))),
                    &[BOT_B64],
                ),
                "Al Bot",
                "Also look",
            ),
            (
                "entities in the display text",
                message(
                    "Q&A Bot help",
                    Some(&format!("<p>{} help</p>", p("Q&amp;A Bot"))),
                    &[BOT_B64],
                ),
                "Q&A Bot",
                "help",
            ),
            (
                "@All is not removed",
                message(
                    "All HelpBot standup",
                    Some(&format!(
                        r#"<spark-mention data-object-type="groupMention" data-group-type="all">All</spark-mention> {} standup"#,
                        p("HelpBot")
                    )),
                    &[BOT_B64],
                ),
                "HelpBot",
                "All standup",
            ),
            (
                "no html: full name",
                message("HelpBot  help ", None, &[BOT_B64]),
                "HelpBot",
                "help",
            ),
            (
                "no html: case-insensitive",
                message("helpbot: status", None, &[]),
                "HelpBot",
                "status",
            ),
            (
                "no html: first word",
                message("Egg 5m tea", None, &[]),
                "Egg Timer",
                "5m tea",
            ),
            (
                "no html: full two-word name",
                message("Egg Timer 5m", None, &[]),
                "Egg Timer",
                "5m",
            ),
            (
                "no html: @name",
                message("@HelpBot help", None, &[]),
                "HelpBot",
                "help",
            ),
            (
                "no html: not a prefix word",
                message("HelpBotty hi", None, &[]),
                "HelpBot",
                "HelpBotty hi",
            ),
            (
                "no html: name elsewhere stays",
                message("ask HelpBot", None, &[]),
                "HelpBot",
                "ask HelpBot",
            ),
            ("no html: empty name", message(" hi ", None, &[]), "", "hi"),
            (
                "only the mention",
                message("HelpBot", Some(&p("HelpBot")), &[BOT_B64]),
                "HelpBot",
                "",
            ),
            (
                "html pill text missing from text falls back to the name",
                message("HelpBot hi", Some(&p("Somebody")), &[BOT_B64]),
                "HelpBot",
                "hi",
            ),
        ];
        for (name, msg, bot_name, want) in &cases {
            assert_eq!(strip_bot_mention(msg, &bot(), bot_name), *want, "{name}");
        }
        let no_text = Message::default();
        assert_eq!(strip_bot_mention(&no_text, &bot(), "HelpBot"), "");
    }

    #[test]
    fn entity_decoding() {
        assert_eq!(
            decode_entities("a &amp; b &lt;x&gt; &#39;q&#x27; &bogus; & &;"),
            "a & b <x> 'q' &bogus; & &;"
        );
        assert_eq!(plain_text("<p>Hi <b>there</b></p>&nbsp;"), "Hi there ");
    }

    proptest! {
        #[test]
        fn never_panics(
            text in "\\PC{0,80}",
            html in r#"(<spark-mention|data-object-(id|type)=|["'=<>/ ]|person|Help|&(amp|#x?[0-9a-f]{0,7});?|\PC){0,40}"#,
            name in "\\PC{0,12}",
        ) {
            let msg = message(&text, Some(&html), &[BOT_UUID]);
            let _ = mentions(&msg, &bot());
            let _ = strip_bot_mention(&msg, &bot(), &name);
            let _ = strip_bot_mention(&message(&text, None, &[]), &bot(), &name);
        }

        #[test]
        fn stripping_with_a_real_pill_removes_only_the_pill(
            before in "[a-z ]{0,20}",
            after in "[a-z ]{0,20}",
        ) {
            let html = format!("<p>{before}{}{after}</p>", pill(BOT_UUID, "HelpBot"));
            let text = format!("{before}HelpBot{after}");
            let stripped = strip_bot_mention(&message(&text, Some(&html), &[]), &bot(), "HelpBot");
            let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
            let mut want = words(&before);
            want.extend(words(&after));
            prop_assert_eq!(words(&stripped), want);
        }
    }
}
