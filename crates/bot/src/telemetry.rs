//! Logging: stdout (journald keeps it under systemd) and an optional size-rotated file
//! (`LOG_FILE`, 5 MB, 3 backups), as text or JSON. Message text and secrets are never
//! logged at INFO; ids and outcomes are fields.

use std::io::IsTerminal as _;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use file_rotate::{ContentLimit, FileRotate, compression::Compression, suffix::AppendCount};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, fmt};

use crate::config::LogFormat;

const ROTATE_BYTES: usize = 5 * 1024 * 1024;
const BACKUPS: usize = 3;
/// Log lines the file writer's queue holds before it drops lines (it never blocks a
/// request). The queue is allocated and touched whole at startup, 32 bytes a line:
/// tracing-appender's default of 128,000 lines cost 4 MB of resident memory from the start.
/// 8,192 lines are seconds of logging at the bot's full rate while the disk stalls.
const FILE_QUEUE_LINES: usize = 8192;

/// Keeps the file writer's background thread alive; dropping it flushes the log.
pub struct TelemetryGuard {
    _file: Option<WorkerGuard>,
}

pub struct LogSettings<'a> {
    pub level: tracing::Level,
    pub format: LogFormat,
    pub file: Option<&'a Path>,
    /// Console logs to stderr instead of stdout (subcommands whose stdout is their output).
    pub stderr: bool,
}

fn filter(level: tracing::Level) -> EnvFilter {
    // Our own crates at the chosen level; chatty dependencies only when something is wrong.
    // rmcp logs MCP messages (tool output, server notifications: untrusted text) at INFO and
    // DEBUG; the tool loop logs what is needed itself, cut.
    EnvFilter::new(format!(
        "{level},sqlx=warn,hyper=warn,hyper_util=warn,h2=warn,reqwest=warn,rustls=warn,tower_http=warn,rmcp=warn"
    ))
}

/// Opens the log file (creating its folder) so a wrong `LOG_FILE` is reported at startup.
fn open_rotating(path: &Path) -> anyhow::Result<FileRotate<AppendCount>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("LOG_FILE: cannot create the folder {}", dir.display()))?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("LOG_FILE: cannot write {}", path.display()))?;
    let mut file = FileRotate::new(
        path,
        AppendCount::new(BACKUPS),
        ContentLimit::BytesSurpassed(ROTATE_BYTES),
        Compression::None,
        None,
    );
    file.flush().ok();
    Ok(file)
}

/// Installs the global subscriber. Call once, early in `main`.
pub fn init(settings: &LogSettings<'_>) -> anyhow::Result<TelemetryGuard> {
    let json = settings.format == LogFormat::Json;
    // Colours only for a person at a terminal who did not ask for none (NO_COLOR); never
    // escape codes in the journal, a file or a pipe.
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let colour = |terminal: bool| terminal && !no_color;
    let stdout = match (json, settings.stderr) {
        (true, false) => fmt::layer().json().with_writer(std::io::stdout).boxed(),
        (true, true) => fmt::layer().json().with_writer(std::io::stderr).boxed(),
        (false, false) => fmt::layer()
            .with_ansi(colour(std::io::stdout().is_terminal()))
            .with_writer(std::io::stdout)
            .boxed(),
        (false, true) => fmt::layer()
            .with_ansi(colour(std::io::stderr().is_terminal()))
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let (file_layer, guard) = match settings.file {
        None => (None, None),
        Some(path) => {
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(FILE_QUEUE_LINES)
                .finish(open_rotating(path)?);
            let layer = if json {
                fmt::layer().json().with_writer(writer).boxed()
            } else {
                fmt::layer().with_ansi(false).with_writer(writer).boxed()
            };
            (Some(layer), Some(guard))
        }
    };
    tracing_subscriber::registry()
        .with(filter(settings.level))
        .with(stdout)
        .with(file_layer)
        .try_init()
        .context("a logger is already installed")?;
    Ok(TelemetryGuard { _file: guard })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_file_rotates_at_5_mb_and_keeps_3_backups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/bot_server.log");
        let mut file = open_rotating(&path).unwrap();
        let line = [b'x'; 1023];
        // 5 rotations' worth of 1 KiB lines.
        for _ in 0..(5 * 5 * 1024 + 10) {
            file.write_all(&line).unwrap();
            file.write_all(b"\n").unwrap();
        }
        file.flush().unwrap();
        for backup in 1..=BACKUPS {
            let b = dir.path().join(format!("logs/bot_server.log.{backup}"));
            let size = std::fs::metadata(&b).unwrap().len();
            assert!(
                size >= ROTATE_BYTES as u64 && size <= ROTATE_BYTES as u64 + 1024,
                "{b:?}: {size}"
            );
        }
        assert!(
            !dir.path().join("logs/bot_server.log.4").exists(),
            "only 3 backups are kept"
        );
        assert!(std::fs::metadata(&path).unwrap().len() <= ROTATE_BYTES as u64 + 1024);
    }

    #[test]
    fn an_unwritable_log_file_is_reported_naming_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "").unwrap();
        let err = open_rotating(&dir.path().join("file/bot.log"))
            .err()
            .unwrap();
        assert!(format!("{err:#}").contains("LOG_FILE"), "{err:#}");
    }
}
