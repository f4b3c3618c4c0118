//! The MCP servers of `TOOLS_CONFIG`: each started or connected, its tools listed.

use super::*;

/// `TOOLS_CONFIG`, when set: the file, the personalities' `tools` entries, then each server
/// started (stdio) or reached (HTTP) and its tools listed, all servers at once.
pub(super) async fn check_tools(config: &Config, http: &reqwest::Client) -> Vec<Check> {
    const NAME: &str = "tools";
    // Without TOOLS_CONFIG there is nothing to check (and no line: tools are optional).
    let Some(path) = &config.tools.config else {
        return Vec::new();
    };
    let servers = match crate::tools::config::load(path) {
        Ok(servers) => servers,
        Err(e) => {
            return vec![Check::fail(
                NAME,
                e,
                "fix TOOLS_CONFIG's file (docs/tools.md shows the format), or unset TOOLS_CONFIG",
            )];
        }
    };
    // Personalities that name servers the file does not have.
    let mut unknown: Vec<String> = Vec::new();
    if let Ok((set, _)) =
        Personalities::load(&config.personalities_dir, &config.default_personality)
    {
        for p in set.iter() {
            for entry in &p.tools {
                let server = entry
                    .split_once('/')
                    .map_or(entry.as_str(), |(s, _)| s)
                    .trim();
                if !servers.iter().any(|s| s.name == server) {
                    unknown.push(format!("{} ({entry})", p.name));
                }
            }
        }
    }
    let summary = if unknown.is_empty() {
        Check::pass(
            NAME,
            format!("{} server(s) in {}", servers.len(), path.display()),
        )
    } else {
        Check::fail(
            NAME,
            format!(
                "personalities name servers that {} does not have: {}",
                path.display(),
                unknown.join(", ")
            ),
            "add those servers to TOOLS_CONFIG's file, or fix the personalities' tools entries",
        )
    };
    let probes = servers.iter().map(|server| async move {
        const NAME: &str = "tool-server";
        let what = format!(
            "{} ({} {})",
            server.name,
            server.transport.kind(),
            server.transport.describe()
        );
        let mut check = match crate::tools::probe(server, http).await {
            Ok(tools) => {
                let names: Vec<&str> = tools.iter().map(|t| t.name.as_str()).collect();
                let mut check = Check::pass(
                    NAME,
                    format!("{what}: {} tool(s): {}", names.len(), names.join(", ")),
                );
                check.tools = Some(
                    tools
                        .iter()
                        .map(|t| ToolLine {
                            name: t.name.clone(),
                            description: t.description.clone(),
                            confirm: server.confirm.contains(&t.name),
                        })
                        .collect(),
                );
                check
            }
            Err(e) => Check::fail(
                NAME,
                format!("{what}: {e:#}"),
                "check the server's command and args (stdio) or url and headers (HTTP) in TOOLS_CONFIG's file; run the command by hand to see its errors",
            ),
        };
        check.server = Some(server.name.clone());
        check
    });
    let mut checks = vec![summary];
    checks.extend(futures_util::future::join_all(probes).await);
    checks
}
