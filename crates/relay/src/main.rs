//! `webex-relay` binary: crypto provider → `--help` → `.env` → config → logs → serve.
//! Exit codes: 0 stopped by a signal, 1 runtime failure, 2 bad configuration.

use std::process::ExitCode;

use clap::Parser;

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

Signals: SIGHUP reloads the TLS certificate (also picked up by itself within 30 s),
SIGTERM/SIGINT finish requests in flight and stop.
Exit codes: 0 stopped, 1 runtime failure, 2 bad configuration.
See docs/relay.md.";

/// Webex webhook relay for a DMZ: verifies X-Spark-Signature and forwards verified
/// webhooks to the internal webex-chatbot.
#[derive(Parser)]
#[command(name = "webex-relay", version, after_long_help = CONFIG_HELP, after_help = "Run with --help for the environment variables.")]
struct Cli {
    /// Check the configuration (variables, certificate files) and exit without serving.
    #[arg(long)]
    check_config: bool,
}

fn main() -> ExitCode {
    tls::install_crypto_provider();
    let cli = Cli::parse();

    // `.env` of the working directory only: `dotenvy::dotenv()` would also search the
    // parent folders and read a file nobody meant for this service.
    if let Err(error) = dotenvy::from_path(".env")
        && !error.not_found()
    {
        eprintln!("webex-relay: configuration error:\n.env: {error}");
        return ExitCode::from(2);
    }
    let config = match relay::Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("webex-relay: configuration error:\n{error}");
            return ExitCode::from(2);
        }
    };
    relay::telemetry::init(config.log_level);

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("webex-relay: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    runtime.block_on(async move {
        if cli.check_config {
            return match relay::check(&config).await {
                Ok(()) => {
                    println!("configuration OK");
                    ExitCode::SUCCESS
                }
                Err(error) => startup_failed(&error),
            };
        }
        let app = match relay::App::build(config).await {
            Ok(app) => app,
            Err(error) => return startup_failed(&error),
        };
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                tracing::error!(error = format!("{error:#}"), "webex-relay failed");
                eprintln!("webex-relay: {error:#}");
                ExitCode::from(1)
            }
        }
    })
}

fn startup_failed(error: &relay::StartupError) -> ExitCode {
    let code = error.exit_code();
    if code == 2 {
        eprintln!("webex-relay: configuration error:\n{error}");
    } else {
        eprintln!("webex-relay: {error}");
    }
    ExitCode::from(code)
}
