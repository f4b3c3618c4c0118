//! The MCP servers of `TOOLS_CONFIG`, kept connected: one supervisor task per server starts
//! it (stdio) or connects (Streamable HTTP), lists its tools, refreshes the list when the
//! server says it changed, and starts or connects again with backoff when it dies. A server
//! that cannot start is logged and retried; it never stops the bot.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::{ClientHandler, ServiceExt};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::{MAX_EXPOSED_NAME, SEPARATOR, ServerConfig, Transport};

/// Environment a stdio server inherits from the bot, besides its own `env` table:
/// enough to find programs and write files, nothing that could hold a secret.
const BASIC_ENV: &[&str] = &[
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR",
];
/// Waits between attempts to start or reach a server: 1 s doubling to 60 s; back to 1 s
/// after a connection that lived a minute.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);
/// Characters of a stdio server's stderr line kept in the (DEBUG) log.
const STDERR_LINE_CHARS: usize = 300;

/// One tool as a server lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct ToolInfo {
    pub name: String,
    pub description: String,
    /// The JSON Schema (an object schema) of its arguments.
    pub schema: serde_json::Value,
}

/// A tool offered to the model in one conversation.
#[derive(Clone, Debug, PartialEq)]
pub struct Offered {
    /// `<server>__<tool>`: what the model sees and calls.
    pub exposed: String,
    pub server: String,
    pub tool: String,
    pub description: String,
    pub schema: serde_json::Value,
    /// Listed in the server's `confirm`: each call waits for an approval click.
    pub confirm: bool,
}

impl Offered {
    pub fn spec(&self) -> llm::ToolSpec {
        llm::ToolSpec {
            name: self.exposed.clone(),
            description: self.description.clone(),
            parameters: self.schema.clone(),
        }
    }
}

/// How a call ended, before it is recorded.
#[derive(Clone, Debug, PartialEq)]
pub enum CallResult {
    /// The tool's text output (`is_error`: the tool itself reported an error).
    Done { text: String, is_error: bool },
    /// No answer within the server's `timeout_secs`.
    TimedOut(Duration),
    /// The server is not connected, or the call failed in the protocol.
    Failed(String),
}

/// Every configured server, connected or being connected. Cheap to clone.
#[derive(Clone, Default)]
pub struct ToolSet {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    servers: Vec<Arc<Server>>,
    stop: CancellationToken,
    /// For Streamable HTTP servers.
    http: reqwest::Client,
    /// Woken when an approval is decided in this process (see `approval`).
    decided: tokio::sync::Notify,
}

struct Server {
    config: ServerConfig,
    /// The connection while it is up.
    live: Mutex<Option<Live>>,
}

#[derive(Clone)]
struct Live {
    peer: Peer<RoleClient>,
    tools: Arc<Vec<ToolInfo>>,
}

impl Server {
    fn live(&self) -> Option<Live> {
        self.live.lock().ok().and_then(|l| l.clone())
    }

    fn set(&self, live: Option<Live>) {
        if let Ok(mut slot) = self.live.lock() {
            *slot = live;
        }
    }

    fn set_tools(&self, tools: Vec<ToolInfo>) {
        if let Ok(mut slot) = self.live.lock()
            && let Some(live) = slot.as_mut()
        {
            live.tools = Arc::new(tools);
        }
    }
}

impl ToolSet {
    /// The servers, not started yet (see [`ToolSet::start`]); `http` serves the
    /// Streamable HTTP ones.
    pub fn new(servers: Vec<ServerConfig>, http: reqwest::Client) -> ToolSet {
        ToolSet {
            inner: Arc::new(Inner {
                servers: servers
                    .into_iter()
                    .map(|config| {
                        Arc::new(Server {
                            config,
                            live: Mutex::new(None),
                        })
                    })
                    .collect(),
                stop: CancellationToken::new(),
                http,
                decided: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Wakes every call waiting for an approval here, to re-read its row.
    pub(crate) fn wake_approvals(&self) {
        self.inner.decided.notify_waiters();
    }

    pub(crate) fn approval_woken(&self) -> tokio::sync::futures::Notified<'_> {
        self.inner.decided.notified()
    }

    pub fn is_empty(&self) -> bool {
        self.inner.servers.is_empty()
    }

    /// The configured servers, in the file's (alphabetical) order.
    pub fn servers(&self) -> impl Iterator<Item = &ServerConfig> {
        self.inner.servers.iter().map(|s| &s.config)
    }

    pub fn server(&self, name: &str) -> Option<&ServerConfig> {
        self.servers().find(|s| s.name == name)
    }

    /// Starts one supervisor per server.
    pub fn start(&self) {
        for server in &self.inner.servers {
            let server = server.clone();
            let http = self.inner.http.clone();
            let stop = self.inner.stop.clone();
            tokio::spawn(supervise(server, http, stop));
        }
    }

    /// Stops the supervisors; stdio servers are killed as their connections drop.
    pub fn stop(&self) {
        self.inner.stop.cancel();
    }

    /// Whether a server is connected now (tests wait for it).
    pub fn is_connected(&self, server: &str) -> bool {
        self.inner
            .servers
            .iter()
            .any(|s| s.config.name == server && s.live().is_some())
    }

    /// The tools a personality's `tools = ["server", "server/tool"]` offers, of the servers
    /// connected now, in a stable order. Names that are not `server` or `server/tool` of a
    /// configured server offer nothing.
    pub fn offered(&self, selection: &[String]) -> Vec<Offered> {
        let mut picked: BTreeMap<String, Offered> = BTreeMap::new();
        for entry in selection {
            let (server_name, tool_name) = match entry.split_once('/') {
                Some((s, t)) => (s.trim(), Some(t.trim())),
                None => (entry.trim(), None),
            };
            let Some(server) = self
                .inner
                .servers
                .iter()
                .find(|s| s.config.name == server_name)
            else {
                continue;
            };
            let Some(live) = server.live() else { continue };
            for tool in live.tools.iter() {
                if tool_name.is_some_and(|t| t != tool.name) {
                    continue;
                }
                let Some(exposed) = exposed_name(server_name, &tool.name) else {
                    continue;
                };
                picked.entry(exposed.clone()).or_insert_with(|| Offered {
                    exposed,
                    server: server_name.to_owned(),
                    tool: tool.name.clone(),
                    description: tool.description.clone(),
                    schema: tool.schema.clone(),
                    confirm: server.config.confirm.contains(&tool.name),
                });
            }
        }
        picked.into_values().collect()
    }

    /// Calls one tool within its server's timeout.
    pub async fn call(
        &self,
        server: &str,
        tool: &str,
        arguments: &serde_json::Value,
    ) -> CallResult {
        let Some(server) = self.inner.servers.iter().find(|s| s.config.name == server) else {
            return CallResult::Failed(format!("no MCP server named {server:?}"));
        };
        let Some(live) = server.live() else {
            return CallResult::Failed(format!(
                "the MCP server {:?} is not connected right now",
                server.config.name
            ));
        };
        call_on(&live.peer, tool, arguments, server.config.timeout).await
    }
}

/// `<server>__<tool>`, when it is a name every provider accepts.
pub fn exposed_name(server: &str, tool: &str) -> Option<String> {
    let name = format!("{server}{SEPARATOR}{tool}");
    let ok = name.len() <= MAX_EXPOSED_NAME
        && !tool.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    ok.then_some(name)
}

async fn call_on(
    peer: &Peer<RoleClient>,
    tool: &str,
    arguments: &serde_json::Value,
    timeout: Duration,
) -> CallResult {
    let mut params = CallToolRequestParams::new(tool.to_owned());
    match arguments {
        serde_json::Value::Object(map) => params = params.with_arguments(map.clone()),
        serde_json::Value::Null => {}
        _ => return CallResult::Failed("the arguments are not a JSON object".into()),
    }
    match tokio::time::timeout(timeout, peer.call_tool(params)).await {
        Err(_) => CallResult::TimedOut(timeout),
        Ok(Err(e)) => CallResult::Failed(format!("the call failed: {e}")),
        Ok(Ok(result)) => {
            let mut parts: Vec<String> = Vec::new();
            for block in &result.content {
                match block.as_text() {
                    Some(text) => parts.push(text.text.clone()),
                    None => parts.push("[non-text content omitted]".into()),
                }
            }
            if parts.is_empty()
                && let Some(structured) = &result.structured_content
            {
                parts.push(structured.to_string());
            }
            CallResult::Done {
                text: parts.join("\n"),
                is_error: result.is_error.unwrap_or(false),
            }
        }
    }
}

/// Tells the supervisor that the server's tool list changed.
#[derive(Clone)]
struct Handler {
    changed: mpsc::UnboundedSender<()>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: rmcp::service::NotificationContext<RoleClient>) {
        let _ = self.changed.send(());
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::default()
    }
}

type Running = RunningService<RoleClient, Handler>;

/// `doctor`: starts (stdio) or connects to (HTTP) one server, lists its tools, and closes
/// the connection again (a stdio child is stopped), all within the server's timeout.
pub async fn probe(config: &ServerConfig, http: &reqwest::Client) -> anyhow::Result<Vec<ToolInfo>> {
    let (tx, _rx) = mpsc::unbounded_channel();
    let (running, tools) = open(config, http, Handler { changed: tx }).await?;
    let _ = tokio::time::timeout(config.timeout, running.cancel()).await;
    Ok(tools)
}

async fn open(
    config: &ServerConfig,
    http: &reqwest::Client,
    handler: Handler,
) -> anyhow::Result<(Running, Vec<ToolInfo>)> {
    let work = async {
        let running = match &config.transport {
            Transport::Stdio { command, args, env } => {
                let (transport, stderr) = spawn_child(&config.name, command, args, env)?;
                if let Some(stderr) = stderr {
                    tokio::spawn(log_stderr(config.name.clone(), stderr));
                }
                handler.serve(transport).await?
            }
            Transport::Http { url, headers } => {
                use rmcp::transport::StreamableHttpClientTransport;
                use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
                let mut map = HashMap::new();
                for (name, value) in headers {
                    let name = http::HeaderName::from_bytes(name.as_bytes())?;
                    let mut value = http::HeaderValue::from_str(value.expose_secret())?;
                    value.set_sensitive(true);
                    map.insert(name, value);
                }
                let transport = StreamableHttpClientTransport::with_client(
                    http.clone(),
                    StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(map),
                );
                handler.serve(transport).await?
            }
        };
        let tools = list_tools(running.peer()).await?;
        Ok::<_, anyhow::Error>((running, tools))
    };
    match tokio::time::timeout(config.timeout, work).await {
        Ok(result) => result,
        Err(_) => anyhow::bail!("no answer within {:?}", config.timeout),
    }
}

fn spawn_child(
    name: &str,
    command: &Path,
    args: &[String],
    env: &BTreeMap<String, secrecy::SecretString>,
) -> anyhow::Result<(
    rmcp::transport::TokioChildProcess,
    Option<tokio::process::ChildStderr>,
)> {
    let mut cmd = tokio::process::Command::new(command);
    cmd.args(args).env_clear();
    for key in BASIC_ENV {
        if let Some(value) = std::env::var_os(key) {
            cmd.env(key, value);
        }
    }
    cmd.envs(env.iter().map(|(k, v)| (k, v.expose_secret())));
    rmcp::transport::TokioChildProcess::builder(cmd)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot start {} for the MCP server {name:?}: {e}",
                command.display()
            )
        })
}

/// A stdio server's stderr, line by line at DEBUG (it may echo tool output).
async fn log_stderr(server: String, stderr: tokio::process::ChildStderr) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line: String = line.chars().take(STDERR_LINE_CHARS).collect();
        tracing::debug!(server = %server, line = %line, "MCP server stderr");
    }
}

async fn list_tools(peer: &Peer<RoleClient>) -> anyhow::Result<Vec<ToolInfo>> {
    let tools = peer.list_all_tools().await?;
    Ok(tools
        .into_iter()
        .map(|t| ToolInfo {
            name: t.name.to_string(),
            description: t.description.map(|d| d.to_string()).unwrap_or_default(),
            schema: serde_json::Value::Object((*t.input_schema).clone()),
        })
        .collect())
}

/// Keeps one server connected until `stop`.
async fn supervise(server: Arc<Server>, http: reqwest::Client, stop: CancellationToken) {
    let name = server.config.name.clone();
    let mut delay = FIRST_RETRY;
    loop {
        let (tx, mut changed) = mpsc::unbounded_channel();
        let opened = tokio::select! {
            () = stop.cancelled() => return,
            opened = open(&server.config, &http, Handler { changed: tx }) => opened,
        };
        match opened {
            Err(e) => {
                tracing::warn!(server = %name, error = format!("{e:#}"), retry_in_s = delay.as_secs(), "cannot start or reach the MCP server; will retry");
            }
            Ok((running, tools)) => {
                let since = Instant::now();
                let peer = running.peer().clone();
                tracing::info!(server = %name, transport = server.config.transport.kind(), tools = tools.len(), "MCP server connected");
                server.set(Some(Live {
                    peer: peer.clone(),
                    tools: Arc::new(tools),
                }));
                let waiting = running.waiting();
                tokio::pin!(waiting);
                loop {
                    tokio::select! {
                        () = stop.cancelled() => {
                            server.set(None);
                            return;
                        }
                        _ = &mut waiting => break,
                        Some(()) = changed.recv() => match list_tools(&peer).await {
                            Ok(tools) => {
                                tracing::info!(server = %name, tools = tools.len(), "MCP server's tool list refreshed");
                                server.set_tools(tools);
                            }
                            Err(e) => tracing::warn!(server = %name, error = %e, "cannot refresh the MCP server's tool list"),
                        },
                    }
                }
                server.set(None);
                if since.elapsed() >= MAX_RETRY {
                    delay = FIRST_RETRY;
                }
                tracing::warn!(server = %name, retry_in_s = delay.as_secs(), "MCP server connection ended; will start or connect again");
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RETRY);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposed_names_follow_the_providers_rules() {
        assert_eq!(
            exposed_name("wiki", "search").as_deref(),
            Some("wiki__search")
        );
        assert_eq!(exposed_name("wiki", "get.page"), None);
        assert_eq!(exposed_name("wiki", ""), None);
        assert_eq!(exposed_name("w", &"x".repeat(62)), None);
        assert_eq!(
            exposed_name("w", &"x".repeat(61)).map(|n| n.len()),
            Some(64)
        );
    }
}
