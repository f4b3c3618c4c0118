//! Chat commands (README, "Commands"): parsing text into a [`Command`] is pure and table-tested;
//! running one is [`crate::pipeline::commands`].

/// A command, recognised only when the whole message is exactly one of these
/// (mention stripped, trimmed, case-insensitive, optional leading `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    Reset,
    Personality,
    PersonalityList,
    PersonalitySet(String),
    ListUsers,
    AddUser(String),
    RemoveUser(String),
    Status,
    /// The tools this space's personality offers (DESIGN §10.5).
    Tools,
    /// The asker's tokens and cost today and this month.
    Usage,
    /// The month's top people and spaces (admins, direct spaces).
    UsageAll,
}

impl Command {
    pub fn admin_only(&self) -> bool {
        matches!(
            self,
            Command::ListUsers
                | Command::AddUser(_)
                | Command::RemoveUser(_)
                | Command::Status
                | Command::UsageAll
        )
    }

    /// A short name for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Help => "help",
            Command::Reset => "reset",
            Command::Personality => "personality",
            Command::PersonalityList => "personality_list",
            Command::PersonalitySet(_) => "personality_set",
            Command::ListUsers => "list_users",
            Command::AddUser(_) => "add_user",
            Command::RemoveUser(_) => "remove_user",
            Command::Status => "status",
            Command::Tools => "tools",
            Command::Usage => "usage",
            Command::UsageAll => "usage_all",
        }
    }
}

fn is_personality_name(s: &str) -> bool {
    s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `None` means "not a command: ask the LLM".
pub fn parse(text: &str) -> Option<Command> {
    let text = text.trim();
    let text = text.strip_prefix('/').unwrap_or(text);
    let words: Vec<&str> = text.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match lower.as_slice() {
        ["help"] => Some(Command::Help),
        ["reset"] => Some(Command::Reset),
        ["status"] => Some(Command::Status),
        ["tools"] => Some(Command::Tools),
        ["usage"] => Some(Command::Usage),
        ["usage", "all"] => Some(Command::UsageAll),
        ["personality"] => Some(Command::Personality),
        ["personality", "list"] => Some(Command::PersonalityList),
        ["personality", name] if is_personality_name(name) => {
            Some(Command::PersonalitySet((*name).to_owned()))
        }
        ["list", "users"] => Some(Command::ListUsers),
        ["add", "user", _] => Some(Command::AddUser(words[2].to_owned())),
        ["remove", "user", _] => Some(Command::RemoveUser(words[2].to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases: &[(&str, Option<Command>)] = &[
            ("help", Some(Command::Help)),
            ("  HELP  ", Some(Command::Help)),
            ("/help", Some(Command::Help)),
            ("Reset", Some(Command::Reset)),
            ("/reset", Some(Command::Reset)),
            ("status", Some(Command::Status)),
            ("tools", Some(Command::Tools)),
            ("/Tools", Some(Command::Tools)),
            ("tools please", None),
            ("what tools do you have", None),
            ("personality", Some(Command::Personality)),
            ("personality list", Some(Command::PersonalityList)),
            ("Personality   LIST", Some(Command::PersonalityList)),
            (
                "personality Engineer",
                Some(Command::PersonalitySet("engineer".into())),
            ),
            (
                "/personality writer",
                Some(Command::PersonalitySet("writer".into())),
            ),
            ("list users", Some(Command::ListUsers)),
            ("LIST USERS", Some(Command::ListUsers)),
            (
                "add user bob@example.com",
                Some(Command::AddUser("bob@example.com".into())),
            ),
            (
                "add user Bob@Example.com",
                Some(Command::AddUser("Bob@Example.com".into())),
            ),
            (
                "remove user bob@example.com",
                Some(Command::RemoveUser("bob@example.com".into())),
            ),
            ("/remove user x", Some(Command::RemoveUser("x".into()))),
            ("usage", Some(Command::Usage)),
            ("/Usage", Some(Command::Usage)),
            ("usage all", Some(Command::UsageAll)),
            ("USAGE   All", Some(Command::UsageAll)),
            ("/usage all", Some(Command::UsageAll)),
            // Near misses: these are questions for the LLM.
            ("help me write an email", None),
            ("help?", None),
            ("can you help", None),
            ("reset the router please", None),
            ("status of the project", None),
            ("what is my status", None),
            ("personality test ideas", None),
            ("personality list please", None),
            ("personality is important", None),
            ("personality {evil}", None),
            ("list users in our team", None),
            ("list user", None),
            ("add user", None),
            ("add user bob to the meeting", None),
            ("remove user", None),
            ("add users bob@example.com", None),
            ("//help", None),
            ("", None),
            ("   ", None),
            ("helps", None),
            ("usage of the word whom", None),
            ("usage all of them", None),
            ("usage today", None),
            ("what is my usage", None),
            ("usages", None),
        ];
        for (text, want) in cases {
            assert_eq!(&parse(text), want, "{text:?}");
        }
    }

    #[test]
    fn admin_commands() {
        assert!(Command::Status.admin_only());
        assert!(Command::ListUsers.admin_only());
        assert!(Command::AddUser(String::new()).admin_only());
        assert!(Command::UsageAll.admin_only());
        assert!(!Command::Usage.admin_only());
        assert!(!Command::Help.admin_only());
        assert!(!Command::PersonalitySet(String::new()).admin_only());
    }
}
