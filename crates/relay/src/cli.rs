//! The command line: `webex-relay [--check-config]` serves (or checks); `completions` and
//! `man` print what packagers install, generated from these same definitions.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, Subcommand};

const CONFIG_HELP: &str = "\
Configuration comes from the environment, and from .env in the working directory
(real environment variables win):

  INTERNAL_BOT_URL            required  base URL of the bot, e.g. https://bot.internal:8080
  RELAY_API_KEY               required  sent to the bot as X-Relay-Key (same value as the bot's)
  WEBEX_WEBHOOK_SECRET        required  the webhook secret Webex signs with
  SSL_CERT_PATH, SSL_KEY_PATH           PEM certificate and key; HTTPS when both are set
  BIND_ADDR                   0.0.0.0:8443
  INTERNAL_CA_PATH                      the only CA trusted for the bot's certificate
                                        (system roots when unset)
  INTERNAL_CLIENT_CERT_PATH, INTERNAL_CLIENT_KEY_PATH
                                        client certificate for mTLS to the bot
  RELAY_RATE_LIMIT            20        requests per second per source address (0 = off)
  RELAY_FORWARD_TIMEOUT_SECS  10        one forward to the bot, end to end
  RELAY_MAX_BODY_BYTES        1048576   larger webhook bodies get 413
  LOG_LEVEL                   INFO      TRACE, DEBUG, INFO, WARN or ERROR
  HTTPS_PROXY, HTTP_PROXY, NO_PROXY     a proxy for the calls to the bot (usually list
                                        the bot's host in NO_PROXY instead)

Signals: SIGHUP reloads the TLS certificate (also picked up by itself within 30 s),
SIGTERM/SIGINT finish requests in flight and stop.
Exit codes: 0 stopped, 1 runtime failure, 2 bad configuration.
See docs/relay.md.";

/// Webex webhook relay for a DMZ: verifies X-Spark-Signature and forwards verified
/// webhooks to the internal webex-chatbot.
#[derive(Debug, Parser)]
#[command(
    name = "webex-relay",
    version,
    args_conflicts_with_subcommands = true,
    after_long_help = CONFIG_HELP,
    after_help = "Run with --help for the environment variables."
)]
pub struct Cli {
    /// Check the configuration (variables, certificate files) and exit without serving.
    #[arg(long)]
    pub check_config: bool,
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Print a completion script for a shell (bash, zsh or fish; elvish and powershell work too)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into a folder
    Man {
        /// Write webex-relay.1 and a page for each subcommand into this folder (created if
        /// missing) instead of printing
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
}

/// Runs `completions` or `man`, which need no configuration.
pub fn generate(command: &Cmd) -> std::io::Result<()> {
    match command {
        // Rendered into memory first: clap_complete panics on a failed write (a closed
        // pipe); writing the buffer reports it instead.
        Cmd::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut Cli::command(), "webex-relay", &mut script);
            print_all(&script)
        }
        Cmd::Man { out_dir: None } => {
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command()).render(&mut page)?;
            print_all(&page)
        }
        Cmd::Man { out_dir: Some(dir) } => {
            std::fs::create_dir_all(dir).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot create {}: {e}", dir.display()))
            })?;
            let mut command = Cli::command().disable_help_subcommand(true);
            // Building names the subcommands `webex-relay-man`, … (their pages' titles).
            command.build();
            for path in write_man_pages(command, dir)? {
                println!("{}", path.display());
            }
            Ok(())
        }
    }
}

fn print_all(bytes: &[u8]) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()
}

fn write_man_pages(command: clap::Command, dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        written.extend(write_man_pages(sub.clone(), dir)?);
    }
    written.push(clap_mangen::Man::new(command).generate_to(dir)?);
    Ok(written)
}
