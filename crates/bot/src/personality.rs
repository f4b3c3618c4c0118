//! Personalities: `NAME.toml` files in `PERSONALITIES_DIR` giving a system prompt and
//! optional model settings. A bad file is reported with its path and reason; the others load.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

#[derive(Clone, Debug, PartialEq)]
pub struct Personality {
    pub name: String,
    pub description: String,
    pub system_prompt: String,
    pub temperature: Option<f32>,
    pub model: Option<String>,
    pub max_tokens: Option<u32>,
    /// The first text of a streamed answer, shown until the model's words arrive.
    pub thinking: Option<String>,
    /// Posted when the bot is added to a group space (DESIGN §10.3).
    pub greeting: Option<String>,
    /// `false`: this personality's model cannot see images (DESIGN §10.4).
    pub vision: Option<bool>,
    /// MCP servers or `server/tool` names offered to the model (DESIGN §10.5).
    pub tools: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalityFile {
    description: String,
    system_prompt: String,
    temperature: Option<f32>,
    model: Option<String>,
    max_tokens: Option<u32>,
    thinking: Option<String>,
    greeting: Option<String>,
    vision: Option<bool>,
    #[serde(default)]
    tools: Vec<String>,
}

/// A text field that, when present, must say something.
fn non_empty(field: &str, value: Option<String>) -> Result<Option<String>, String> {
    match value {
        Some(v) if v.trim().is_empty() => {
            Err(format!("{field} is empty (leave it out for the default)"))
        }
        other => Ok(other),
    }
}

/// A file that could not be loaded, and why.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    pub reason: String,
}

/// Why no usable set of personalities could be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read the personalities folder {}: {source}", path.display())]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "DEFAULT_PERSONALITY: no valid personality named {name:?} in {} (found: {found})",
        dir.display()
    )]
    MissingDefault {
        name: String,
        dir: PathBuf,
        found: String,
    },
}

/// Parses one personality file's text. `name` is the file stem.
pub fn parse(name: &str, text: &str) -> Result<Personality, String> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err("the file name must use only letters, digits, '-' and '_'".into());
    }
    let file: PersonalityFile = toml::from_str(text).map_err(|e| {
        e.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    })?;
    if file.description.trim().is_empty() {
        return Err("description is empty".into());
    }
    if file.system_prompt.trim().is_empty() {
        return Err("system_prompt is empty".into());
    }
    if let Some(t) = file.temperature
        && !(0.0..=2.0).contains(&t)
    {
        return Err(format!("temperature {t} is outside 0.0 to 2.0"));
    }
    if file.max_tokens == Some(0) {
        return Err("max_tokens must be greater than 0".into());
    }
    if file.model.as_deref().is_some_and(|m| m.trim().is_empty()) {
        return Err("model is empty (leave it out to use LLM_MODEL)".into());
    }
    if let Some(thinking) = &file.thinking
        && thinking.len() > 1000
    {
        return Err("thinking is longer than 1000 bytes".into());
    }
    if file.tools.iter().any(|t| t.trim().is_empty()) {
        return Err("tools has an empty name".into());
    }
    Ok(Personality {
        name: name.to_ascii_lowercase(),
        description: file.description.trim().to_owned(),
        system_prompt: file.system_prompt,
        temperature: file.temperature,
        model: file.model,
        max_tokens: file.max_tokens,
        thinking: non_empty("thinking", file.thinking)?,
        greeting: non_empty("greeting", file.greeting)?,
        vision: file.vision,
        tools: file.tools,
    })
}

/// The personalities shipped in `personalities/`, built into the binary so `serve` runs
/// from any folder; files in `PERSONALITIES_DIR` add to them and override them by name.
const BUILT_IN: [(&str, &str); 5] = [
    (
        "default",
        include_str!("../../../personalities/default.toml"),
    ),
    (
        "engineer",
        include_str!("../../../personalities/engineer.toml"),
    ),
    (
        "summarizer",
        include_str!("../../../personalities/summarizer.toml"),
    ),
    (
        "teacher",
        include_str!("../../../personalities/teacher.toml"),
    ),
    ("writer", include_str!("../../../personalities/writer.toml")),
];

/// The loaded set, with the default one guaranteed present.
#[derive(Clone, Debug)]
pub struct Personalities {
    by_name: BTreeMap<String, Arc<Personality>>,
    default: Arc<Personality>,
}

impl Personalities {
    /// The built-in personalities, then every `*.toml` in `dir` on top (a file overrides a
    /// built-in of its name). A missing `dir` leaves the built-ins; bad files are returned
    /// beside the set; a missing default (or a folder that cannot be read) is an error.
    pub fn load(
        dir: &Path,
        default_name: &str,
    ) -> Result<(Personalities, Vec<FileError>), LoadError> {
        let mut by_name = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, text) in BUILT_IN {
            match parse(name, text) {
                Ok(p) => {
                    by_name.insert(p.name.clone(), Arc::new(p));
                }
                Err(reason) => errors.push(FileError {
                    path: PathBuf::from(format!("(built in) {name}.toml")),
                    reason,
                }),
            }
        }
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(source) => {
                return Err(LoadError::Folder {
                    path: dir.to_owned(),
                    source,
                });
            }
        };
        paths.sort();

        for path in paths {
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let loaded = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| parse(&name, &text));
            match loaded {
                Ok(p) => {
                    by_name.insert(p.name.clone(), Arc::new(p));
                }
                Err(reason) => errors.push(FileError { path, reason }),
            }
        }
        Self::from_map(by_name, default_name, dir).map(|set| (set, errors))
    }

    fn from_map(
        by_name: BTreeMap<String, Arc<Personality>>,
        default_name: &str,
        dir: &Path,
    ) -> Result<Personalities, LoadError> {
        let default = by_name
            .get(&default_name.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| LoadError::MissingDefault {
                name: default_name.to_owned(),
                dir: dir.to_owned(),
                found: if by_name.is_empty() {
                    "none".to_owned()
                } else {
                    by_name.keys().cloned().collect::<Vec<_>>().join(", ")
                },
            })?;
        Ok(Personalities { by_name, default })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Personality>> {
        self.by_name.get(&name.to_ascii_lowercase())
    }

    pub fn default_personality(&self) -> &Arc<Personality> {
        &self.default
    }

    /// The named personality, or the default when the name is unknown (a file was removed
    /// after a space chose it).
    pub fn resolve(&self, name: Option<&str>) -> &Arc<Personality> {
        name.and_then(|n| self.get(n)).unwrap_or(&self.default)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Personality>> {
        self.by_name.values()
    }
}

/// Values for the prompt variables `{date}`, `{bot_name}`, `{user_name}`.
pub struct PromptVars<'a> {
    pub date: &'a str,
    pub bot_name: &'a str,
    pub user_name: &'a str,
}

/// Fills in the prompt variables; other braces are left alone.
pub fn render(prompt: &str, vars: &PromptVars<'_>) -> String {
    prompt
        .replace("{date}", vars.date)
        .replace("{bot_name}", vars.bot_name)
        .replace("{user_name}", vars.user_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let ok = "description = \"d\"\nsystem_prompt = \"p\"\ntemperature = 0.5\nmodel = \"m\"\nmax_tokens = 10\n";
        let p = parse("Eng", ok).unwrap();
        assert_eq!(p.name, "eng");
        assert_eq!(p.temperature, Some(0.5));
        assert_eq!(p.model.as_deref(), Some("m"));
        assert_eq!(p.max_tokens, Some(10));
        assert_eq!(p.thinking, None);

        // The optional stage-2 fields of DESIGN §7 are accepted.
        let full = "description = \"d\"\nsystem_prompt = \"p\"\ngreeting = \"Hi! @mention me and type help.\"\nthinking = \"Thinking…\"\nvision = false\ntools = [\"tickets\", \"wiki/search\"]\n";
        let p = parse("full", full).unwrap();
        assert_eq!(p.thinking.as_deref(), Some("Thinking…"));
        assert_eq!(
            p.greeting.as_deref(),
            Some("Hi! @mention me and type help.")
        );
        assert_eq!(p.vision, Some(false));
        assert_eq!(
            p.tools,
            vec!["tickets".to_owned(), "wiki/search".to_owned()]
        );

        let bad: &[(&str, &str, &str)] = &[
            ("x", "description = \"d\"", "system_prompt"),
            ("x", "system_prompt = \"p\"", "description"),
            (
                "x",
                "description = \"\"\nsystem_prompt = \"p\"",
                "description is empty",
            ),
            (
                "x",
                "description = \"d\"\nsystem_prompt = \"p\"\ntemperature = 3.0",
                "temperature",
            ),
            (
                "x",
                "description = \"d\"\nsystem_prompt = \"p\"\nmax_tokens = 0",
                "max_tokens",
            ),
            (
                "x",
                "description = \"d\"\nsystem_prompt = \"p\"\ntemprature = 0.1",
                "temprature",
            ),
            (
                "x",
                "description = \"d\"\nsystem_prompt = \"p\"\nmax_tokens = -1",
                "max_tokens",
            ),
            ("x", "description = \"d\nsystem_prompt = \"p\"", ""),
            (
                "x",
                "description = \"d\"\nsystem_prompt = \"p\"\nthinking = \" \"",
                "thinking is empty",
            ),
            (
                "x",
                "description = \"d\"\nsystem_prompt = \"p\"\nvision = \"no\"",
                "vision",
            ),
            (
                "bad name",
                "description = \"d\"\nsystem_prompt = \"p\"",
                "file name",
            ),
        ];
        for (name, text, needle) in bad {
            let err = parse(name, text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn render_fills_variables() {
        let vars = PromptVars {
            date: "2026-11-27",
            bot_name: "HelpBot",
            user_name: "Alice",
        };
        assert_eq!(
            render("{bot_name} helps {user_name} on {date} {other}", &vars),
            "HelpBot helps Alice on 2026-11-27 {other}"
        );
    }

    #[test]
    fn shipped_personalities_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../personalities");
        let (set, errors) = Personalities::load(&dir, "default").unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        assert!(set.iter().count() >= 4);
        assert_eq!(set.default_personality().name, "default");
    }

    #[test]
    fn a_bad_file_does_not_stop_the_others() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("default.toml"),
            "description = \"d\"\nsystem_prompt = \"p\"",
        )
        .unwrap();
        std::fs::write(dir.path().join("broken.toml"), "description = ").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let (set, errors) = Personalities::load(dir.path(), "default").unwrap();
        // The five built in, the folder's `default` in place of the built-in one.
        assert_eq!(set.iter().count(), 5);
        assert_eq!(set.default_personality().system_prompt, "p");
        assert_eq!(errors.len(), 1);
        assert!(errors[0].to_string().contains("broken.toml"));
        let missing = Personalities::load(dir.path(), "pirate").unwrap_err();
        // No folder at all: the built-ins.
        let (set, errors) = Personalities::load(&dir.path().join("absent"), "teacher").unwrap();
        assert!(errors.is_empty());
        assert_eq!(set.default_personality().name, "teacher");
        assert!(
            missing.to_string().contains("DEFAULT_PERSONALITY"),
            "{missing}"
        );
    }
}
