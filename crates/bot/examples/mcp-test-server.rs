//! The MCP server the tool tests run: a small real server built on rmcp's server side.
//!
//! `mcp-test-server` speaks MCP over stdin/stdout; `mcp-test-server --http 127.0.0.1:0`
//! serves Streamable HTTP at `/mcp` and prints `listening on http://ADDR/mcp` on stdout.
//! `--require-header NAME=VALUE` (HTTP) refuses requests without that header (401).
//!
//! Tools: `echo` (text back), `add` (a + b), `slow` (sleeps `seconds`: hangs past a
//! timeout), `fail` (an error result), `die` (the process exits at once), `env` (the names
//! of its environment variables, to show what a stdio server inherits), `shout` (stands
//! for a tool an operator puts under `confirm`; answers its text in capitals), `grow`
//! (adds the tool `extra` to the list and sends `notifications/tools/list_changed`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rmcp::handler::server::tool::ToolCallContext;
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler, ServiceExt, schemars, tool, tool_router};

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct EchoArgs {
    /// The text to send back.
    text: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct AddArgs {
    a: i64,
    b: i64,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct SlowArgs {
    /// How long to sleep before answering.
    seconds: u64,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
struct FailArgs {
    /// What the error says.
    message: String,
}

#[derive(Debug, Clone)]
struct TestServer {
    tool_router: ToolRouter<Self>,
    /// `grow` was called: `extra` is listed.
    grown: Arc<AtomicBool>,
}

#[tool_router]
impl TestServer {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
            grown: Arc::default(),
        }
    }

    #[tool(description = "Adds the tool extra and says the tool list changed")]
    async fn grow(&self, peer: Peer<RoleServer>) -> String {
        self.grown.store(true, Ordering::SeqCst);
        tokio::spawn(async move {
            let _ = peer.notify_tool_list_changed().await;
        });
        "grown".to_owned()
    }

    #[tool(description = "Listed only after grow")]
    fn extra(&self) -> String {
        "extra".to_owned()
    }

    #[tool(description = "Returns the text it is given")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }

    #[tool(description = "Adds two integers")]
    fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> String {
        a.saturating_add(b).to_string()
    }

    #[tool(description = "Sleeps for the given number of seconds, then answers")]
    async fn slow(&self, Parameters(SlowArgs { seconds }): Parameters<SlowArgs>) -> String {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        format!("slept {seconds} s")
    }

    #[tool(description = "Always fails with the given message")]
    fn fail(&self, Parameters(FailArgs { message }): Parameters<FailArgs>) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(message)])
    }

    #[tool(description = "Exits the server process at once")]
    fn die(&self) -> String {
        std::process::exit(3)
    }

    #[tool(description = "Lists the names of the server's environment variables")]
    fn env(&self) -> String {
        let mut names: Vec<String> = std::env::vars_os()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        names.sort();
        names.join("\n")
    }

    #[tool(description = "Answers the text in capitals")]
    fn shout(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text.to_uppercase()
    }
}

impl ServerHandler for TestServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_instructions("A test server for webex-chatbot's tool tests")
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.tool_router
            .call(ToolCallContext::new(self, request, context))
            .await
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let grown = self.grown.load(Ordering::SeqCst);
        Ok(ListToolsResult {
            tools: self
                .tool_router
                .list_all()
                .into_iter()
                .filter(|t| grown || t.name != "extra")
                .collect(),
            ..Default::default()
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match flag("--http") {
        None => {
            let running = TestServer::new().serve(rmcp::transport::stdio()).await?;
            running.waiting().await?;
        }
        Some(addr) => serve_http(&addr, flag("--require-header")).await?,
    }
    Ok(())
}

async fn serve_http(addr: &str, required: Option<String>) -> anyhow::Result<()> {
    use rmcp::transport::streamable_http_server::{
        StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
    };
    use std::sync::Arc;

    let service = StreamableHttpService::new(
        || Ok(TestServer::new()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let mut router = axum::Router::new().nest_service("/mcp", service);
    if let Some(required) = required {
        let (name, value) = required
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--require-header takes NAME=VALUE"))?;
        let (name, value) = (name.to_ascii_lowercase(), value.to_owned());
        router = router.layer(axum::middleware::from_fn(
            move |request: axum::extract::Request, next: axum::middleware::Next| {
                let ok = request
                    .headers()
                    .get(name.as_str())
                    .is_some_and(|v| v.as_bytes() == value.as_bytes());
                async move {
                    if ok {
                        next.run(request).await
                    } else {
                        axum::response::IntoResponse::into_response(
                            axum::http::StatusCode::UNAUTHORIZED,
                        )
                    }
                }
            },
        ));
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("listening on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, router).await?;
    Ok(())
}
