//! `webex-chatbot`: configuration → telemetry → build → run (see the library for the rest).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Started as the PDF/DOCX extractor (a child of the bot): nothing else runs.
    if let Some(code) = bot::attachments::child_main() {
        return code;
    }
    tls::install_crypto_provider();
    // `.env` in the working directory only (or ENV_FILE); real environment variables win.
    if let Err(e) = bot::config::load_env_file()
        && !needs_no_configuration()
    {
        let e = bot::AppError::from(e);
        eprintln!("webex-chatbot: {e}");
        return ExitCode::from(e.exit_code());
    }
    let cli = bot::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(bot::cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webex-chatbot: {e}");
            tracing::error!(error = %e, "exiting");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `completions` and `man` print what the command line is, whatever the configuration: a
/// broken `.env` in the working directory must not stop them.
fn needs_no_configuration() -> bool {
    let command = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    matches!(command.as_deref(), Some("completions" | "man"))
}
