//! `webex-relay` binary: crypto provider → command line (`--help`, `completions`, `man`) →
//! `.env` → config → logs → serve.
//! Exit codes: 0 stopped by a signal, 1 runtime failure, 2 bad configuration.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tls::install_crypto_provider();
    let cli = relay::cli::Cli::parse();
    if let Some(command) = &cli.command {
        // Generated from the definitions alone: no configuration, no logs.
        return match relay::cli::generate(command) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("webex-relay: {error}");
                ExitCode::from(1)
            }
        };
    }

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
