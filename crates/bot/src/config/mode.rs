//! How the bot receives events from Webex: `MODE` (a webhook, or a websocket to Mercury).

use super::env::{ConfigError, Reader};

/// How the bot receives events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Webhook,
    Websocket,
}

/// `MODE`: `webhook` (default) or `websocket`.
pub(super) fn mode(r: &Reader<'_>) -> Result<Mode, ConfigError> {
    match r.opt("MODE").map(|v| v.to_ascii_lowercase()) {
        None => Ok(Mode::Webhook),
        Some(v) if v == "webhook" => Ok(Mode::Webhook),
        Some(v) if v == "websocket" => Ok(Mode::Websocket),
        Some(v) => Err(ConfigError::new(
            "MODE",
            format!("{v:?} is not one of webhook, websocket"),
        )),
    }
}
