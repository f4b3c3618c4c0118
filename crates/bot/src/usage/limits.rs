//! The limits (`USER_DAILY_TOKENS`, `USER_MESSAGES_PER_MINUTE`, `SPACE_DAILY_TOKENS`),
//! checked before a question goes to the LLM. Daily limits count the tokens recorded
//! today (UTC) and reset at midnight UTC; the message limit counts this minute's messages
//! and resets at the next minute. A question that is let through may take a person or
//! space past a daily limit: the limit stops the next one.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Ledger, Who, day, minute};
use crate::config::Limits;
use crate::metrics::LimitLabel;
use crate::store::{StoreError, TokensToday};

/// A limit a question ran into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Limit {
    UserDailyTokens,
    UserMessagesPerMinute,
    SpaceDailyTokens,
}

impl Limit {
    /// The `limit` label of `webex_chatbot_limit_hits_total`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Limit::UserDailyTokens => "user_daily_tokens",
            Limit::UserMessagesPerMinute => "user_messages_per_minute",
            Limit::SpaceDailyTokens => "space_daily_tokens",
        }
    }
}

/// Why a question gets no answer now, and when it would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub limit: Limit,
    /// The configured limit (tokens a day, or messages a minute).
    pub allowed: u64,
    pub resets_at: OffsetDateTime,
    pub now: OffsetDateTime,
}

impl Refusal {
    fn new(limit: Limit, limits: &Limits, now: OffsetDateTime) -> Refusal {
        let (allowed, resets_at) = match limit {
            Limit::UserDailyTokens => (limits.user_daily_tokens, next_midnight(now)),
            Limit::SpaceDailyTokens => (limits.space_daily_tokens, next_midnight(now)),
            Limit::UserMessagesPerMinute => (limits.user_messages_per_minute, next_minute(now)),
        };
        Refusal {
            limit,
            allowed,
            resets_at,
            now,
        }
    }

    /// How long until the limit resets.
    pub fn wait(&self) -> Duration {
        Duration::try_from(self.resets_at - self.now).unwrap_or_default()
    }
}

/// The daily limit today's counts are at or past, the person's first; `0` = no limit.
fn daily_limit_reached(limits: &Limits, used: TokensToday) -> Option<Limit> {
    let reached = |limit: u64, used: i64| limit > 0 && u64::try_from(used).unwrap_or(0) >= limit;
    if reached(limits.user_daily_tokens, used.person) {
        Some(Limit::UserDailyTokens)
    } else if reached(limits.space_daily_tokens, used.space) {
        Some(Limit::SpaceDailyTokens)
    } else {
        None
    }
}

fn next_midnight(now: OffsetDateTime) -> OffsetDateTime {
    let tomorrow = now.date().next_day().unwrap_or(now.date());
    tomorrow.midnight().assume_utc()
}

fn next_minute(now: OffsetDateTime) -> OffsetDateTime {
    let start = OffsetDateTime::from_unix_timestamp(minute(now) * 60).unwrap_or(now);
    start + Duration::from_secs(60)
}

impl Ledger {
    /// Whether `who` may ask the LLM now (call it for people who are not admins). Counts
    /// `message_id` as one of the person's messages of this minute (once, however often
    /// the event is attempted) when the daily limits let it through. `None`: go ahead.
    pub(crate) async fn check(
        &self,
        who: Who<'_>,
        message_id: &str,
    ) -> Result<Option<Refusal>, StoreError> {
        let limits = self.limits;
        let now = self.clock.now();
        let mut reached = None;
        if limits.user_daily_tokens > 0 || limits.space_daily_tokens > 0 {
            let used = self
                .store
                .tokens_on(&day(now.date()), who.person.as_str(), who.space)
                .await?;
            reached = daily_limit_reached(&limits, used);
        }
        if reached.is_none() && limits.user_messages_per_minute > 0 {
            let sent = self
                .store
                .count_message(message_id, who.person.as_str(), minute(now))
                .await?;
            if u64::try_from(sent).unwrap_or(0) > limits.user_messages_per_minute {
                reached = Some(Limit::UserMessagesPerMinute);
            }
        }
        Ok(reached.map(|limit| {
            self.limit_hits
                .get_or_create(&LimitLabel {
                    limit: limit.as_str(),
                })
                .inc();
            Refusal::new(limit, &limits, now)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn limits(user: u64, per_minute: u64, space: u64) -> Limits {
        Limits {
            user_daily_tokens: user,
            user_messages_per_minute: per_minute,
            space_daily_tokens: space,
        }
    }

    #[test]
    fn daily_limits_table() {
        let used = |person, space| TokensToday { person, space };
        let cases = [
            // No limits set: never reached.
            (limits(0, 0, 0), used(1_000_000, 1_000_000), None),
            (limits(100, 0, 0), used(99, 5_000), None),
            (
                limits(100, 0, 0),
                used(100, 0),
                Some(Limit::UserDailyTokens),
            ),
            (limits(0, 0, 500), used(400, 499), None),
            (
                limits(0, 0, 500),
                used(0, 500),
                Some(Limit::SpaceDailyTokens),
            ),
            // Both reached: the person's own limit is the one named.
            (
                limits(100, 0, 500),
                used(150, 900),
                Some(Limit::UserDailyTokens),
            ),
            (
                limits(100, 0, 500),
                used(50, 900),
                Some(Limit::SpaceDailyTokens),
            ),
        ];
        for (limits, used, want) in cases {
            assert_eq!(
                daily_limit_reached(&limits, used),
                want,
                "{limits:?} {used:?}"
            );
        }
    }

    #[test]
    fn refusals_say_when_the_limit_resets() {
        let now = datetime!(2026-03-31 22:15:20 UTC);
        let all = limits(1000, 3, 5000);
        let daily = Refusal::new(Limit::UserDailyTokens, &all, now);
        assert_eq!(daily.resets_at, datetime!(2026-04-01 00:00 UTC));
        assert_eq!(daily.allowed, 1000);
        assert_eq!(daily.wait(), Duration::from_secs(6280));
        let space = Refusal::new(Limit::SpaceDailyTokens, &all, now);
        assert_eq!(space.allowed, 5000);
        let minute = Refusal::new(Limit::UserMessagesPerMinute, &all, now);
        assert_eq!(minute.resets_at, datetime!(2026-03-31 22:16 UTC));
        assert_eq!(minute.allowed, 3);
        assert_eq!(minute.wait(), Duration::from_secs(40));
    }
}
