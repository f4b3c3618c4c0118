//! Properties of the pure parsers, the same invariants the fuzz targets check
//! (fuzz/fuzz_targets/{commands,personality}.rs), run in the normal test suite.

use bot::commands::{Command, parse};
use proptest::prelude::*;

/// The command grammar as the README ("Commands") states it, as data: the words of each
/// command, `NAME` a personality name (letters, digits, `-`, `_`, at most 64), `EMAIL` any
/// one word (checked when the command runs, not when it is parsed).
const GRAMMAR: &[&str] = &[
    "help",
    "reset",
    "personality",
    "personality list",
    "personality NAME",
    "usage",
    "tools",
    "list users",
    "add user EMAIL",
    "remove user EMAIL",
    "status",
    "usage all",
];

/// What a text means by the grammar table: the whole message, trimmed, optional leading
/// `/`, words separated by any whitespace, in any case (a personality name is taken in
/// lower case, an email as written). A fixed word beats `NAME`
/// (`personality list` is the list, not a personality called "list").
fn expected(text: &str) -> Option<Command> {
    let t = text.trim();
    let words: Vec<&str> = t
        .strip_prefix('/')
        .unwrap_or(t)
        .split_whitespace()
        .collect();
    let fits = |rule: &str, placeholders: bool| {
        let pattern: Vec<&str> = rule.split(' ').collect();
        pattern.len() == words.len()
            && pattern.iter().zip(&words).all(|(p, w)| {
                let w = w.to_lowercase();
                match *p {
                    "NAME" => {
                        placeholders
                            && w.len() <= 64
                            && w.chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    }
                    "EMAIL" => placeholders,
                    keyword => w == keyword,
                }
            })
    };
    let rule = GRAMMAR
        .iter()
        .find(|r| fits(r, false))
        .or_else(|| GRAMMAR.iter().find(|r| fits(r, true)))?;
    let arg = || words.last().unwrap().to_string();
    Some(match *rule {
        "help" => Command::Help,
        "reset" => Command::Reset,
        "personality" => Command::Personality,
        "personality list" => Command::PersonalityList,
        "personality NAME" => Command::PersonalitySet(arg().to_lowercase()),
        "usage" => Command::Usage,
        "tools" => Command::Tools,
        "list users" => Command::ListUsers,
        "add user EMAIL" => Command::AddUser(arg()),
        "remove user EMAIL" => Command::RemoveUser(arg()),
        "status" => Command::Status,
        "usage all" => Command::UsageAll,
        other => panic!("a grammar rule without a command: {other}"),
    })
}

/// The table is the README's list, no more and no less.
#[test]
fn the_grammar_table_is_the_readmes_command_list() {
    let readme = include_str!("../../../../README.md");
    let start = readme
        .find("Commands (the whole")
        .expect("the README's command list");
    let paragraph = readme[start..].split("\n\n").next().unwrap();
    // After "(the whole message, optional leading `/`):", the commands in backticks.
    let (_, list) = paragraph.split_once("):").unwrap();
    let listed: Vec<&str> = list.split('`').skip(1).step_by(2).collect();
    assert_eq!(listed, GRAMMAR);
}

/// Texts near the grammar: command words in any case, with noise, slashes and spacing.
fn commandish() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        Just("help".to_owned()),
        Just("HELP".to_owned()),
        Just("reset".to_owned()),
        Just("status".to_owned()),
        Just("Tools".to_owned()),
        Just("usage".to_owned()),
        Just("ALL".to_owned()),
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
