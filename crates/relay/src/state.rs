//! What every handler shares: the bot's forwarder, the webhook secret, the start time.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::SecretString;

use crate::bot::Bot;

/// Shared by every handler; cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Shared>,
}

struct Shared {
    bot: Bot,
    webhook_secret: SecretString,
    started: Instant,
}

impl AppState {
    pub(crate) fn new(bot: Bot, webhook_secret: SecretString) -> Self {
        AppState {
            inner: Arc::new(Shared {
                bot,
                webhook_secret,
                started: Instant::now(),
            }),
        }
    }

    pub(crate) fn bot(&self) -> &Bot {
        &self.inner.bot
    }

    pub(crate) fn webhook_secret(&self) -> &SecretString {
        &self.inner.webhook_secret
    }

    pub(crate) fn uptime(&self) -> Duration {
        self.inner.started.elapsed()
    }
}
