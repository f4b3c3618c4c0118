//! Logging to stderr (journald picks it up under systemd) at `LOG_LEVEL`.
//! Log lines carry status, latency and peer address; never bodies, keys or secrets.
//! Colours only on a terminal: the journal and log files get plain text.

use std::io::IsTerminal as _;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
