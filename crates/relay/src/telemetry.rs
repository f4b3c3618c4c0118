//! Logging to stderr (journald picks it up under systemd) at `LOG_LEVEL`.
//! Log lines carry status, latency and peer address; never bodies, keys or secrets.

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
}
