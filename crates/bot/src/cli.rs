//! The command line (README, "Commands"): one subcommand per job, all configured from the environment.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::commands::{self, Command};
use crate::config::{Config, ProcessEnv};
use crate::domain::{ConversationKey, Email, Role, Turn};
use crate::error::AppError;
use crate::startup::{self, App};
use crate::{chat, memory, personality, strings, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "webex-chatbot",
    version,
    about = "A self-hosted Webex bot that answers people with a large language model",
    long_about = "A self-hosted Webex bot that answers people with a large language model.\n\n\
        Every setting is an environment variable (see docs/configuration.md); a .env file in the \
        working directory (or the file ENV_FILE names) is read too, and real environment \
        variables win.\n\n\
        Exit codes: 0 ok, 1 runtime failure, 2 bad configuration."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Cmd,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Run the bot: HTTP(S) server, webhook registration, event processing
    Serve,
    /// Talk to the configured personality and LLM in the terminal (no Webex needed); reads
    /// standard input line by line
    Chat {
        /// Personality to start with (default: DEFAULT_PERSONALITY)
        #[arg(long, short)]
        personality: Option<String>,
    },
    /// Inspect and fix this bot's webhooks
    Webhooks {
        #[command(subcommand)]
        action: WebhooksCmd,
    },
    /// Manage approved users in the database, without the server
    Users {
        #[command(subcommand)]
        action: UsersCmd,
    },
    /// Token usage recorded in the database (works while `serve` runs)
    Usage {
        #[command(subcommand)]
        action: UsageCmd,
    },
    /// Check the deployment (token, LLM, webhook, TLS files, .env mode, database,
    /// personalities, admins, log folder); exit 1 if any check fails
    Doctor {
        /// Print a JSON array of {name, status, detail, fix} instead of lines
        #[arg(long)]
        json: bool,
        /// Also call BOT_PUBLIC_URL/health from this machine, the way Webex reaches the bot
        #[arg(long)]
        external: bool,
    },
    /// Development: attach to (or start) an ngrok tunnel for BIND_ADDR's port, register the
    /// webhook on it, serve, and remove the webhook on exit
    Dev {
        /// ngrok's local API (the tunnel list)
        #[arg(long, env = "NGROK_API_URL", default_value = crate::dev::DEFAULT_NGROK_API)]
        ngrok_api: url::Url,
        /// Only attach to a running tunnel; never start ngrok
        #[arg(long)]
        no_start: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCmd {
    /// List the webhooks of this bot's token
    List,
    /// Register BOT_PUBLIC_URL/webhook for messages, card submits and memberships (removing
    /// stale ones of this bot)
    Register,
    /// Delete every webhook this token owns, whatever its name or URL (no prompt); prints
    /// each deleted one: id, name, target URL
    DeleteAll,
}

#[derive(Debug, Subcommand)]
pub enum UsersCmd {
    /// Admins (ADMIN_EMAILS) and approved users
    List,
    /// Approve someone
    Add { email: String },
    /// Withdraw someone's approval
    Remove { email: String },
    /// Approve everyone in a JSON file: an array of emails, or {"users": [...]}
    Import { file: PathBuf },
    /// Print the approved users as a JSON array of emails
    Export,
}

#[derive(Debug, Subcommand)]
pub enum UsageCmd {
    /// Print one row per day, person, space, provider and model to stdout, with tokens and
    /// cost; opens the database read-only
    Export {
        /// Only days from this one on (YYYY-MM-DD, UTC)
        #[arg(long, value_name = "YYYY-MM-DD")]
        since: Option<String>,
        /// csv (header day,person,space,provider,model,prompt_tokens,completion_tokens,total_tokens,cost) or json
        #[arg(long, value_enum, default_value_t = crate::usage::export::Format::Csv)]
        format: crate::usage::export::Format,
    },
}

pub async fn run(cli: Cli) -> Result<(), AppError> {
    let config = Config::from_source(&ProcessEnv)?;
    let serving = matches!(cli.command, Cmd::Serve | Cmd::Dev { .. });
    let _guard = telemetry::init(&telemetry::LogSettings {
        level: if serving {
            config.log_level
        } else {
            config.log_level.max(tracing::Level::WARN)
        },
        format: config.log_format,
        file: if serving {
            config.log_file.as_deref()
        } else {
            None
        },
        stderr: !serving,
    })
    .map_err(|e| AppError::Usage(format!("configuration error: {e:#}")))?;
    match cli.command {
        Cmd::Serve => serve(config).await,
        Cmd::Chat { personality } => console_chat(config, personality).await,
        Cmd::Webhooks { action } => webhooks(config, action).await,
        Cmd::Users { action } => users(config, action).await,
        Cmd::Usage {
            action: UsageCmd::Export { since, format },
        } => crate::usage::export::run(&config, since, format).await,
        Cmd::Doctor { json, external } => crate::doctor::run(config, json, external).await,
        Cmd::Dev {
            ngrok_api,
            no_start,
        } => crate::dev::run(config, ngrok_api, no_start).await,
    }
}

async fn serve(config: Config) -> Result<(), AppError> {
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        bind = %config.bind_addr,
        provider = config.llm.kind.as_str(),
        model = config.llm.model(),
        "starting webex-chatbot"
    );
    let app = App::build(config).await?;
    tracing::info!(port = app.port(), "listening");
    app.run_until_stopped().await?;
    Ok(())
}

async fn webhooks(config: Config, action: WebhooksCmd) -> Result<(), AppError> {
    let client = startup::webex_client(&config, startup::http_client()?)?;
    let target = config
        .bot_public_url
        .as_ref()
        .map(crate::registration::target_url);
    match action {
        WebhooksCmd::List => {
            let hooks = client
                .list_webhooks()
                .await
                .context("cannot list webhooks")?;
            if hooks.is_empty() {
                println!("no webhooks");
            }
            for w in hooks {
                let mine = w.name == crate::registration::WEBHOOK_NAME
                    || Some(&w.target_url) == target.as_ref();
                println!(
                    "{}\t{}\t{}/{}\t{}\t{}{}",
                    w.id,
                    w.status.as_deref().unwrap_or("?"),
                    w.resource,
                    w.event,
                    w.name,
                    w.target_url,
                    if mine { "\t(this bot)" } else { "" }
                );
            }
        }
        WebhooksCmd::Register => {
            let url = config.bot_public_url.as_ref().ok_or_else(|| {
                AppError::Usage(
                    "configuration error: BOT_PUBLIC_URL: required to register a webhook".into(),
                )
            })?;
            let webhooks =
                crate::registration::register_each(&client, url, config.webhook_secret.as_ref())
                    .await
                    .context("cannot register the webhooks")?;
            // One line per webhook: one for each event the bot handles.
            for w in webhooks {
                println!(
                    "registered {} -> {} ({}/{})",
                    w.id, w.target_url, w.resource, w.event
                );
            }
        }
        WebhooksCmd::DeleteAll => {
            let deleted = crate::registration::delete_every(&client)
                .await
                .context("cannot delete webhooks")?;
            // One line per deleted webhook on stdout; the count on stderr.
            for w in &deleted {
                println!("{}\t{}\t{}", w.id, w.name, w.target_url);
            }
            eprintln!("deleted {} webhook(s)", deleted.len());
        }
    }
    Ok(())
}

fn parse_email_arg(raw: &str) -> Result<Email, AppError> {
    Email::parse(raw).map_err(|_| AppError::Usage(format!("{raw:?} is not a valid email address")))
}

/// Reads the original plan's `approved_users.json`: `["a@x.com", …]` or `{"users": [...]}`.
pub fn parse_users_file(text: &str) -> Result<Vec<Email>, String> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum UsersFile {
        List(Vec<String>),
        Object { users: Vec<String> },
    }
    let parsed: UsersFile = serde_json::from_str(text).map_err(|e| {
        format!("expected a JSON array of emails or an object with a \"users\" array ({e})")
    })?;
    let raw = match parsed {
        UsersFile::List(v) | UsersFile::Object { users: v } => v,
    };
    let mut bad = Vec::new();
    let mut emails = Vec::new();
    for r in raw {
        match Email::parse(&r) {
            Ok(e) => emails.push(e),
            Err(_) => bad.push(r),
        }
    }
    if !bad.is_empty() {
        return Err(format!("invalid email address(es): {}", bad.join(", ")));
    }
    emails.sort();
    emails.dedup();
    Ok(emails)
}

async fn users(config: Config, action: UsersCmd) -> Result<(), AppError> {
    let store = startup::open_store(&config).await?;
    let result = users_action(&config, &store, action).await;
    store.close().await;
    result
}

async fn users_action(
    config: &Config,
    store: &crate::store::Store,
    action: UsersCmd,
) -> Result<(), AppError> {
    let by = "cli";
    match action {
        UsersCmd::List => {
            for admin in &config.admin_emails {
                println!("{admin}\tadmin");
            }
            for domain in &config.approved_domains {
                println!("@{domain}\tapproved domain");
            }
            for user in store.approved_users().await.context("cannot read users")? {
                println!("{}\tapproved", user.email);
            }
        }
        UsersCmd::Add { email } => {
            let email = parse_email_arg(&email)?;
            if store
                .add_user(&email, Some(by))
                .await
                .context("cannot add the user")?
            {
                tracing::info!(user = %email, by, "user approved");
                println!("approved {email}");
            } else {
                println!("{email} was already approved");
            }
        }
        UsersCmd::Remove { email } => {
            let email = parse_email_arg(&email)?;
            if config.is_admin(&email) {
                return Err(AppError::Runtime(anyhow::anyhow!(
                    "{email} is an admin from ADMIN_EMAILS; remove it there instead"
                )));
            }
            if store
                .remove_user(&email)
                .await
                .context("cannot remove the user")?
            {
                tracing::info!(user = %email, by, "user removed");
                println!("removed {email}");
            } else {
                println!("{email} was not approved");
            }
        }
        UsersCmd::Import { file } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let emails = parse_users_file(&text).map_err(|e| {
                AppError::Runtime(anyhow::anyhow!("{}: {e}; nothing imported", file.display()))
            })?;
            let added = store
                .add_users(&emails, by)
                .await
                .context("cannot import users")?;
            println!("imported {} user(s), {added} new", emails.len());
        }
        UsersCmd::Export => {
            let users = store.approved_users().await.context("cannot read users")?;
            let emails: Vec<&str> = users.iter().map(|u| u.email.as_str()).collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&emails).context("cannot encode users")?
            );
        }
    }
    Ok(())
}

/// `webex-chatbot chat`: the same personality, memory and provider as in Webex, in a terminal.
/// Asks the LLM and prints the answer to stdout as it streams, ending with a newline;
/// returns the whole answer. Nothing is printed of an answer that fails before its
/// first text; one that fails midway ends its line and reports the error.
async fn print_streamed(
    llm: &llm::Llm,
    request: llm::ChatRequest,
) -> Result<String, llm::LlmError> {
    use futures_util::StreamExt as _;
    let mut stream = llm.chat_stream(request).await?;
    let mut answer = String::new();
    let mut out = std::io::stdout();
    while let Some(event) = stream.next().await {
        match event {
            Ok(llm::StreamEvent::ToolCalls(_) | llm::StreamEvent::Usage(_)) => {}
            Ok(llm::StreamEvent::Text(delta)) => {
                let _ = out.write_all(delta.as_bytes());
                let _ = out.flush();
                answer.push_str(&delta);
            }
            Err(e) => {
                if !answer.is_empty() {
                    println!();
                }
                return Err(e);
            }
        }
    }
    println!();
    if answer.trim().is_empty() {
        return Err(llm::LlmError::Malformed {
            provider: llm.primary().kind,
            reason: "the answer is empty".into(),
        });
    }
    Ok(answer)
}

async fn console_chat(config: Config, start: Option<String>) -> Result<(), AppError> {
    let personalities = startup::load_personalities(&config)?;
    let mut current = match start {
        None => personalities.default_personality().clone(),
        Some(name) => personalities.get(&name).cloned().ok_or_else(|| {
            AppError::Usage(format!("--personality: no personality named {name:?}"))
        })?,
    };
    let llm = startup::llm_client(&config, startup::http_client()?)?;
    let store = startup::open_store(&config).await?;
    let conversation = ConversationKey::console("local");
    let keep = memory::messages_to_keep(config.memory_max_turns);
    let interactive = std::io::stdin().is_terminal();
    let user_name = std::env::var("USER").unwrap_or_else(|_| "you".to_owned());
    if interactive {
        println!(
            "Chatting with the '{}' personality via {} ({}). Commands: help, reset, personality [list|NAME], exit.",
            current.name,
            config.llm.kind.as_str(),
            config.llm.model()
        );
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            print!("> ");
            let _ = std::io::stdout().flush();
        }
        let Some(line) = lines.next() else { break };
        let line = line.context("cannot read standard input")?;
        let text = line.trim();
        if text.is_empty() {
            continue;
        }
        if matches!(
            text.to_lowercase().as_str(),
            "exit" | "quit" | "/exit" | "/quit"
        ) {
            break;
        }
        let reply = match commands::parse(text) {
            // The same answers as in Webex (a console user may switch the personality,
            // like anyone in a direct space); `exit` ends the console.
            Some(Command::Help) => Some(format!(
                "{}\n\n{}",
                strings::help(false, true),
                strings::CONSOLE_EXIT
            )),
            Some(Command::Reset) => {
                store
                    .clear_history(&conversation)
                    .await
                    .context("cannot reset")?;
                Some(strings::RESET_DONE.to_owned())
            }
            Some(Command::Personality) => Some(strings::current_personality(
                &current.name,
                &current.description,
            )),
            Some(Command::PersonalityList) => {
                let entries: Vec<(&str, &str)> = personalities
                    .iter()
                    .map(|p| (p.name.as_str(), p.description.as_str()))
                    .collect();
                Some(strings::personality_list(&entries, &current.name, true))
            }
            Some(Command::PersonalitySet(name)) => Some(match personalities.get(&name) {
                Some(p) => {
                    current = p.clone();
                    strings::personality_switched(&p.name, &p.description)
                }
                None => strings::unknown_personality(
                    &name,
                    &personalities
                        .iter()
                        .map(|p| p.name.clone())
                        .collect::<Vec<_>>()
                        .join(", "),
                ),
            }),
            Some(other) => Some(strings::only_in_webex(other.name())),
            None => {
                let history = store
                    .history(&conversation, keep)
                    .await
                    .context("cannot read history")?;
                let date = chat::today();
                let vars = personality::PromptVars {
                    date: &date,
                    bot_name: "webex-chatbot",
                    user_name: &user_name,
                };
                let request = chat::build_request(
                    &current,
                    &vars,
                    history,
                    text,
                    config.memory_max_turns,
                    config.memory_max_chars,
                );
                // The answer is printed as it streams; history keeps the finished text.
                match print_streamed(&llm, request).await {
                    Ok(answer) => {
                        let turns = [
                            Turn {
                                role: Role::User,
                                content: text.to_owned(),
                            },
                            Turn {
                                role: Role::Assistant,
                                content: answer,
                            },
                        ];
                        store
                            .append_turns(&conversation, &turns, keep)
                            .await
                            .context("cannot store the turn")?;
                        None
                    }
                    Err(e) => {
                        eprintln!("LLM error: {e}");
                        Some(strings::LLM_UNAVAILABLE.to_owned())
                    }
                }
            }
        };
        if let Some(reply) = reply {
            println!("{reply}");
        }
        if interactive {
            println!();
        }
    }
    store.close().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_file_forms() {
        let a = parse_users_file(r#"["Bob@example.com", "alice@example.com", "bob@example.com"]"#)
            .unwrap();
        assert_eq!(
            a.iter().map(Email::as_str).collect::<Vec<_>>(),
            ["alice@example.com", "bob@example.com"]
        );
        let b = parse_users_file(r#"{"users": ["carol@example.com"], "updated": "2024-01-01"}"#)
            .unwrap();
        assert_eq!(b.len(), 1);
        assert!(parse_users_file("{").is_err());
        assert!(parse_users_file(r#"{"people": []}"#).is_err());
        let err = parse_users_file(r#"["ok@example.com", "not-an-email"]"#).unwrap_err();
        assert!(err.contains("not-an-email"), "{err}");
    }
}
