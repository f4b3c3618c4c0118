//! Command parsing: never panics, and only exact grammar matches are commands.
#![no_main]

use bot::commands::{Command, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(command) = parse(text) else {
        return;
    };
    let t = text.trim();
    let t = t.strip_prefix('/').unwrap_or(t);
    let words: Vec<String> = t.split_whitespace().map(str::to_lowercase).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let ok = match (&command, words.as_slice()) {
        (Command::Help, ["help"])
        | (Command::Reset, ["reset"])
        | (Command::Status, ["status"])
        | (Command::Personality, ["personality"])
        | (Command::PersonalityList, ["personality", "list"])
        | (Command::ListUsers, ["list", "users"]) => true,
        (Command::PersonalitySet(name), ["personality", w]) => name == w && *w != "list",
        (Command::AddUser(e), ["add", "user", w]) | (Command::RemoveUser(e), ["remove", "user", w]) => {
            e.to_lowercase() == *w
        }
        _ => false,
    };
    assert!(ok, "{text:?} parsed as {command:?}");
});
