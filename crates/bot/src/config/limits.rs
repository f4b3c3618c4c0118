//! Usage limits (`USER_DAILY_TOKENS`, `USER_MESSAGES_PER_MINUTE`, `SPACE_DAILY_TOKENS`,
//! DESIGN §10.6).

use super::env::{ConfigError, Reader};

/// Usage limits; `0` = none. Admins are exempt.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    /// Tokens (prompt + completion) one person may use per UTC day, in all spaces.
    pub user_daily_tokens: u64,
    /// Messages one person may send to the LLM per minute.
    pub user_messages_per_minute: u64,
    /// Tokens one space may use per UTC day, everyone in it together.
    pub space_daily_tokens: u64,
}

impl Limits {
    pub(super) fn read(r: &Reader<'_>) -> Result<Limits, ConfigError> {
        Ok(Limits {
            user_daily_tokens: r.parse("USER_DAILY_TOKENS", 0u64)?,
            user_messages_per_minute: r.parse("USER_MESSAGES_PER_MINUTE", 0u64)?,
            space_daily_tokens: r.parse("SPACE_DAILY_TOKENS", 0u64)?,
        })
    }
}
