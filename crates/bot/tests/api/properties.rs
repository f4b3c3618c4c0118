//! Properties of the pure parsers, the same invariants the fuzz targets check
//! (fuzz/fuzz_targets/{commands,personality}.rs), run in the normal test suite.

use bot::commands::{Command, parse};
use proptest::prelude::*;

/// The command grammar (README, "Commands"), written independently of the parser: the whole message,
/// trimmed, optional leading `/`, words separated by any whitespace, case-insensitive.
fn expected(text: &str) -> Option<Command> {
    let t = text.trim();
    let t = t.strip_prefix('/').unwrap_or(t);
    let words: Vec<&str> = t.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match lower.as_slice() {
        ["help"] => Some(Command::Help),
        ["reset"] => Some(Command::Reset),
        ["status"] => Some(Command::Status),
        ["personality"] => Some(Command::Personality),
        ["personality", "list"] => Some(Command::PersonalityList),
        ["personality", name]
            if name.len() <= 64
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') =>
        {
            Some(Command::PersonalitySet((*name).to_owned()))
        }
        ["list", "users"] => Some(Command::ListUsers),
        ["add", "user", _] => Some(Command::AddUser(words[2].to_owned())),
        ["remove", "user", _] => Some(Command::RemoveUser(words[2].to_owned())),
        _ => None,
    }
}

/// Texts near the grammar: command words in any case, with noise, slashes and spacing.
fn commandish() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("help".to_owned()),
        Just("HELP".to_owned()),
        Just("reset".to_owned()),
        Just("status".to_owned()),
        Just("Personality".to_owned()),
        Just("list".to_owned()),
        Just("users".to_owned()),
        Just("add".to_owned()),
        Just("remove".to_owned()),
        Just("user".to_owned()),
        Just("me".to_owned()),
        "[a-z0-9_@.-]{1,12}",
        "\\PC{1,6}",
    ];
    let sep = prop_oneof![
        Just(" "),
        Just("  "),
        Just("\t"),
        Just("\n"),
        Just("\u{a0}")
    ];
    (
        proptest::option::of(Just("/")),
        proptest::collection::vec((word, sep), 0..5),
        "[ \t\n]{0,2}",
    )
        .prop_map(|(slash, words, tail)| {
            let mut s = slash.unwrap_or("").to_owned();
            for (w, sep) in words {
                s.push_str(&w);
                s.push_str(sep);
            }
            s.push_str(&tail);
            s
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(5000))]

    #[test]
    fn commands_parse_never_panics(text in "\\PC{0,200}") {
        let _ = parse(&text);
    }

    #[test]
    fn commands_are_exactly_the_grammar(text in commandish()) {
        prop_assert_eq!(parse(&text), expected(&text), "text {:?}", text);
    }

    #[test]
    fn a_command_is_never_found_inside_a_longer_sentence(
        command in prop_oneof![Just("help"), Just("reset"), Just("status"), Just("list users")],
        rest in "[a-z]{1,10}( [a-z]{1,10}){0,3}",
    ) {
        prop_assert_eq!(parse(&format!("{command} me {rest}")), None);
        prop_assert_eq!(parse(&format!("please {command} {rest}")), None);
    }

    #[test]
    fn personality_parse_never_panics(text in "\\PC{0,400}", name in "\\PC{0,20}") {
        let _ = bot::personality::parse(&name, &text);
    }

    #[test]
    fn personality_parse_never_panics_on_toml_shapes(
        description in "\\PC{0,40}",
        prompt in "\\PC{0,80}",
        temperature in proptest::option::of(-5.0f64..5.0),
        max_tokens in proptest::option::of(any::<i64>()),
        model in proptest::option::of("\\PC{0,20}"),
    ) {
        let mut text = format!("description = {description:?}\nsystem_prompt = {prompt:?}\n");
        if let Some(t) = temperature { text.push_str(&format!("temperature = {t}\n")); }
        if let Some(m) = max_tokens { text.push_str(&format!("max_tokens = {m}\n")); }
        if let Some(m) = model { text.push_str(&format!("model = {m:?}\n")); }
        match bot::personality::parse("fuzz", &text) {
            Ok(p) => prop_assert_eq!(p.name, "fuzz"),
            Err(reason) => prop_assert!(!reason.is_empty()),
        }
    }
}
