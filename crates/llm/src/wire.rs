//! Building blocks of wire formats that several providers share: URLs, JSON decoding,
//! the OpenAI/Ollama body, sampling settings under each provider's names, turns that
//! alternate, and the two shapes of model lists.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use url::Url;

use crate::{ChatRequest, Message, Role, error::shorten, provider::Body};

/// `base` with `segments` appended to its path, whatever its trailing slash.
pub(crate) fn endpoint(base: &Url, segments: &[&str]) -> Url {
    let mut url = base.clone();
    // Only URLs that cannot carry a path fail here, and validation refuses those.
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

/// Parses a provider's JSON answer, saying briefly what was wrong.
pub(crate) fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            format!("unexpected JSON: {}", shorten(&e.to_string(), 160))
        }
        serde_json::error::Category::Eof => "truncated JSON".to_owned(),
        _ => "not JSON".to_owned(),
    })
}

/// A provider's names for the sampling settings.
#[derive(Clone, Copy)]
pub(crate) struct SamplingNames {
    pub(crate) temperature: &'static str,
    pub(crate) max_tokens: &'static str,
}

/// The request's sampling settings under a provider's own names: a map of the ones set.
pub(crate) struct Sampling {
    names: SamplingNames,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
}

impl Sampling {
    pub(crate) fn new(req: &ChatRequest, names: SamplingNames) -> Self {
        Sampling {
            names,
            temperature: req.temperature,
            max_tokens: req.max_tokens,
        }
    }

    /// Providers that nest the settings want no empty object when none is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.temperature.is_none() && self.max_tokens.is_none()
    }
}

impl Serialize for Sampling {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        if let Some(temperature) = self.temperature {
            map.serialize_entry(self.names.temperature, &temperature)?;
        }
        if let Some(max_tokens) = self.max_tokens {
            map.serialize_entry(self.names.max_tokens, &max_tokens)?;
        }
        map.end()
    }
}

/// The `{model, messages, stream}` body OpenAI and Ollama share. They differ only in
/// where the sampling settings go: at the top level, or nested under `nest_under`.
pub(crate) fn role_content_body(
    req: &ChatRequest,
    model: &str,
    stream: bool,
    sampling: SamplingNames,
    nest_under: Option<&'static str>,
) -> Body {
    #[derive(Serialize)]
    struct RoleContentBody<'a> {
        model: &'a str,
        messages: Vec<RoleContent<'a>>,
        stream: bool,
        #[serde(flatten)]
        sampling: Placed,
    }
    serde_json::to_vec(&RoleContentBody {
        model,
        messages: role_content_messages(req),
        stream,
        sampling: Placed {
            sampling: Sampling::new(req, sampling),
            nest_under,
        },
    })
}

/// Sampling settings at the top level, or under one key when any is set.
struct Placed {
    sampling: Sampling,
    nest_under: Option<&'static str>,
}

impl Serialize for Placed {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self.nest_under {
            None => self.sampling.serialize(serializer),
            Some(key) => {
                let mut map = serializer.serialize_map(None)?;
                if !self.sampling.is_empty() {
                    map.serialize_entry(key, &self.sampling)?;
                }
                map.end()
            }
        }
    }
}

#[derive(Debug, Serialize)]
struct RoleContent<'a> {
    role: &'static str,
    content: &'a str,
}

/// The system prompt as the first message, then the turns as given.
fn role_content_messages(req: &ChatRequest) -> Vec<RoleContent<'_>> {
    let system = system_prompt(req).map(|content| RoleContent {
        role: "system",
        content,
    });
    let turns = req.messages.iter().map(|m| RoleContent {
        role: match m.role {
            Role::User => "user",
            Role::Assistant => "assistant",
        },
        content: &m.content,
    });
    system.into_iter().chain(turns).collect()
}

/// Model lists shaped `{"data": [{"id": …}]}` (OpenAI, Anthropic).
pub(crate) fn ids_under_data(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct List {
        data: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        id: String,
    }
    let list: List = decode(body)?;
    Ok(list.data.into_iter().map(|e| e.id).collect())
}

/// Model lists shaped `{"models": [{"name": …}]}` (Ollama, Gemini).
pub(crate) fn names_under_models(body: &[u8]) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct List {
        #[serde(default)]
        models: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        name: String,
    }
    let list: List = decode(body)?;
    Ok(list.models.into_iter().map(|e| e.name).collect())
}

/// The system prompt, unless it is missing or blank.
pub(crate) fn system_prompt(req: &ChatRequest) -> Option<&str> {
    req.system.as_deref().filter(|s| !s.trim().is_empty())
}

/// Turns that alternate and start with the user, as Anthropic and Gemini require:
/// leading assistant turns are dropped (a memory window may start mid-exchange) and
/// consecutive turns of one role are joined with a blank line. Roles come out under the
/// provider's names: `"user"` and `assistant`.
pub(crate) fn alternating_turns(
    messages: &[Message],
    assistant: &'static str,
) -> Vec<(&'static str, String)> {
    merged_turns(messages)
        .into_iter()
        .map(|(role, text)| match role {
            Role::User => ("user", text),
            Role::Assistant => (assistant, text),
        })
        .collect()
}

fn merged_turns(messages: &[Message]) -> Vec<(Role, String)> {
    let mut turns: Vec<(Role, String)> = Vec::new();
    let from_first_user = messages.iter().skip_while(|m| m.role != Role::User);
    for message in from_first_user {
        match turns.last_mut() {
            Some((role, text)) if *role == message.role => {
                text.push_str("\n\n");
                text.push_str(&message.content);
            }
            _ => turns.push((message.role, message.content.clone())),
        }
    }
    turns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternation_merges_and_drops_leading_assistant_turns() {
        let messages = vec![
            Message::assistant("orphan reply"),
            Message::user("a"),
            Message::user("b"),
            Message::assistant("c"),
            Message::assistant("d"),
            Message::user("e"),
        ];
        assert_eq!(
            alternating_turns(&messages, "model"),
            vec![
                ("user", "a\n\nb".to_owned()),
                ("model", "c\n\nd".to_owned()),
                ("user", "e".to_owned()),
            ]
        );
        assert!(alternating_turns(&[Message::assistant("x")], "assistant").is_empty());
    }

    #[test]
    fn endpoints_keep_the_base_path() {
        let cases = [
            (
                "https://api.openai.com/v1",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "https://api.openai.com/v1/",
                "https://api.openai.com/v1/chat/completions",
            ),
            (
                "http://localhost:11434",
                "http://localhost:11434/chat/completions",
            ),
        ];
        for (base, expected) in cases {
            let base = Url::parse(base).ok();
            let url = base.map(|b| endpoint(&b, &["chat", "completions"]).to_string());
            assert_eq!(url.as_deref(), Some(expected));
        }
    }

    #[test]
    fn decode_reasons_are_short() {
        assert_eq!(
            decode::<serde_json::Value>(b"<html>").err().as_deref(),
            Some("not JSON")
        );
        assert_eq!(
            decode::<serde_json::Value>(b"{\"a\":").err().as_deref(),
            Some("truncated JSON")
        );
    }
}
