//! `TOOLS_CONFIG`: the TOML file of MCP servers (DESIGN §10.5), read once at startup. Every
//! problem names the file, the server and the field; header values (tokens) never appear
//! in an error or in `Debug`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// `timeout_secs` when a server does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// What the model sees is `<server>__<tool>`; providers accept names of at most 64
/// characters from `[A-Za-z0-9_-]` (OpenAI's rule, the strictest of the four).
pub const SEPARATOR: &str = "__";
pub const MAX_EXPOSED_NAME: usize = 64;

/// One MCP server of the file.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub name: String,
    pub transport: Transport,
    /// One tool call, end to end (and the connection's handshake).
    pub timeout: Duration,
    /// Tools that need an approval click before each call.
    pub confirm: BTreeSet<String>,
}

#[derive(Clone, Debug)]
pub enum Transport {
    /// A child process speaking MCP on stdin/stdout. It gets `env` and a few basics
    /// (`PATH`, `HOME`, locale), nothing else of the bot's environment.
    Stdio {
        command: PathBuf,
        args: Vec<String>,
        /// Values may be tokens: kept out of `Debug` like header values.
        env: BTreeMap<String, SecretString>,
    },
    /// A Streamable HTTP endpoint, with extra headers on every request.
    Http {
        url: url::Url,
        headers: Vec<(String, SecretString)>,
    },
}

impl Transport {
    pub fn kind(&self) -> &'static str {
        match self {
            Transport::Stdio { .. } => "stdio",
            Transport::Http { .. } => "http",
        }
    }

    /// For logs and `doctor`: the command or the URL (no header, no env value).
    pub fn describe(&self) -> String {
        match self {
            Transport::Stdio { command, .. } => command.display().to_string(),
            Transport::Http { url, .. } => {
                let mut shown = url.clone();
                let _ = shown.set_password(None);
                let _ = shown.set_username("");
                shown.set_query(None);
                shown.to_string()
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    servers: BTreeMap<String, Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    timeout_secs: Option<f64>,
    #[serde(default)]
    confirm: Vec<String>,
}

/// A server name: what goes before `__` in the model's tool names.
pub fn valid_server_name(name: &str) -> bool {
    // Gemini wants tool names to start with a letter (or '_', which is kept out here).
    name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.len() <= 32
        && !name.contains(SEPARATOR)
        && !name.starts_with('_')
        && !name.ends_with('_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Reads and checks the file.
pub fn load(path: &Path) -> Result<Vec<ServerConfig>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks the file's text (errors without the path).
pub fn parse(text: &str) -> Result<Vec<ServerConfig>, String> {
    // toml's messages quote the offending line, which may hold a header token: give the
    // position and the reason only.
    let file: File = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|span| {
                let line = text[..span.start.min(text.len())].lines().count().max(1);
                format!(" (line {line})")
            })
            .unwrap_or_default();
        format!("not a valid tools file{at}: {}", e.message())
    })?;
    file.servers
        .into_iter()
        .map(|(name, entry)| server(name, entry))
        .collect()
}

fn server(name: String, entry: Entry) -> Result<ServerConfig, String> {
    if !valid_server_name(&name) {
        return Err(format!(
            "server {name:?}: a name is 1-32 letters, digits, '-' or '_', starting with a letter, without \"__\" and not ending with '_'"
        ));
    }
    let fail = |what: String| format!("server {name:?}: {what}");
    let timeout = match entry.timeout_secs {
        None => DEFAULT_TIMEOUT,
        Some(secs) if secs.is_finite() && secs > 0.0 && secs <= 86_400.0 => {
            Duration::from_secs_f64(secs)
        }
        Some(secs) => {
            return Err(fail(format!(
                "timeout_secs must be more than 0 and at most 86400, got {secs}"
            )));
        }
    };
    let transport = match (entry.command, entry.url) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "has both command (stdio) and url (HTTP): choose one".into(),
            ));
        }
        (None, None) => {
            return Err(fail(
                "needs command (a stdio server) or url (a Streamable HTTP server)".into(),
            ));
        }
        (Some(command), None) => {
            if command.trim().is_empty() {
                return Err(fail("command is empty".into()));
            }
            if !entry.headers.is_empty() {
                return Err(fail(
                    "headers are for HTTP servers (url); a stdio server takes env".into(),
                ));
            }
            if let Some(bad) = entry
                .env
                .keys()
                .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
            {
                return Err(fail(format!("env has an invalid name {bad:?}")));
            }
            Transport::Stdio {
                command: PathBuf::from(command),
                args: entry.args,
                env: entry
                    .env
                    .into_iter()
                    .map(|(k, v)| (k, SecretString::from(v)))
                    .collect(),
            }
        }
        (None, Some(raw)) => {
            if !entry.args.is_empty() || !entry.env.is_empty() {
                return Err(fail(
                    "args and env are for stdio servers (command); an HTTP server takes headers"
                        .into(),
                ));
            }
            let url = url::Url::parse(&raw).map_err(|e| fail(format!("url is not a URL ({e})")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(fail("url must start with http:// or https://".into()));
            }
            let mut headers = Vec::new();
            for (key, value) in entry.headers {
                if http::HeaderName::from_bytes(key.as_bytes()).is_err() {
                    return Err(fail(format!("headers: {key:?} is not a header name")));
                }
                if http::HeaderValue::from_str(&value).is_err() {
                    // Never the value: it is usually a token.
                    return Err(fail(format!("headers: the value of {key} is not valid")));
                }
                headers.push((key, SecretString::from(value)));
            }
            Transport::Http { url, headers }
        }
    };
    let mut confirm = BTreeSet::new();
    for tool in entry.confirm {
        if tool.trim().is_empty() {
            return Err(fail("confirm has an empty tool name".into()));
        }
        confirm.insert(tool);
    }
    Ok(ServerConfig {
        name,
        transport,
        timeout,
        confirm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_designs_example_parses() {
        let servers = parse(
            r#"
            [servers.tickets]
            command = "/usr/local/bin/tickets-mcp"
            args = ["--readonly"]
            env = { TICKETS_URL = "https://tickets.internal" }
            confirm = ["create_ticket"]
            timeout_secs = 30

            [servers.wiki]
            url = "https://wiki.internal/mcp"
            headers = { Authorization = "Bearer abc" }
            "#,
        )
        .unwrap();
        assert_eq!(servers.len(), 2);
        let tickets = &servers[0];
        assert_eq!(tickets.name, "tickets");
        assert!(tickets.confirm.contains("create_ticket"));
        assert_eq!(tickets.timeout, Duration::from_secs(30));
        match &tickets.transport {
            Transport::Stdio { command, args, env } => {
                assert_eq!(command, Path::new("/usr/local/bin/tickets-mcp"));
                assert_eq!(args, &["--readonly"]);
                use secrecy::ExposeSecret;
                assert_eq!(
                    env["TICKETS_URL"].expose_secret(),
                    "https://tickets.internal"
                );
                assert!(!format!("{tickets:?}").contains("tickets.internal"));
            }
            other => panic!("{other:?}"),
        }
        let wiki = &servers[1];
        assert_eq!(wiki.timeout, DEFAULT_TIMEOUT);
        assert!(matches!(&wiki.transport, Transport::Http { headers, .. } if headers.len() == 1));
        assert!(
            !format!("{wiki:?}").contains("abc"),
            "header values stay hidden"
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let cases = [
            ("[servers.a]\n", "needs command"),
            (
                "[servers.a]\ncommand = \"x\"\nurl = \"http://h/mcp\"\n",
                "both",
            ),
            (
                "[servers.a]\ncommand = \"x\"\ntimeout_secs = 0\n",
                "timeout_secs",
            ),
            (
                "[servers.a]\ncommand = \"x\"\ncolour = 1\n",
                "unknown field",
            ),
            ("[servers.a__b]\ncommand = \"x\"\n", "server \"a__b\""),
            ("[servers.\"a b\"]\ncommand = \"x\"\n", "server \"a b\""),
            ("[servers.1a]\ncommand = \"x\"\n", "starting with a letter"),
            ("[servers.a]\nurl = \"ftp://h\"\n", "http://"),
            (
                "[servers.a]\nurl = \"http://h\"\nenv = { A = \"1\" }\n",
                "stdio",
            ),
            (
                "[servers.a]\ncommand = \"x\"\nheaders = { A = \"1\" }\n",
                "HTTP",
            ),
            (
                "[servers.a]\ncommand = \"x\"\nconfirm = [\"\"]\n",
                "confirm",
            ),
            ("servers = 3", "line 1"),
        ];
        for (text, want) in cases {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
        let err = parse(
            "[servers.a]\nurl = \"http://h/mcp\"\nheaders = { Authorization = \"Bearer s3cret\\n\" }\n",
        )
        .unwrap_err();
        assert!(!err.contains("s3cret"), "{err}");
    }

    #[test]
    fn an_empty_file_has_no_servers() {
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn shown_urls_carry_no_credentials() {
        let t = Transport::Http {
            url: url::Url::parse("https://user:pw@wiki.internal/mcp?key=s3cret").unwrap(),
            headers: Vec::new(),
        };
        assert_eq!(t.describe(), "https://wiki.internal/mcp");
    }
}
