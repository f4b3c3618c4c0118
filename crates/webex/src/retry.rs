//! When and how long to wait before retrying a Webex request: `Retry-After` for 429/423,
//! exponential backoff with full jitter for 5xx and connection errors, and a short
//! doubling delay for the 404 a message fetch can get right after its webhook.

use std::time::Duration;

/// Retry settings of a [`Client`](crate::Client).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after a 429/423/5xx answer or a connection error (not counting the first try).
    pub max_retries: u32,
    /// First backoff ceiling for 5xx and connection errors; doubles each retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Wait after a 429/423 without a usable `Retry-After` (the official SDK uses 15 s).
    pub default_retry_after: Duration,
    /// Cap on a server-requested wait, so one answer cannot stall a worker for hours.
    pub max_retry_after: Duration,
    /// Retries of a 404 on `GET /messages/{id}` (the REST side can lag the webhook).
    pub not_found_retries: u32,
    /// First wait after such a 404; doubles each time.
    pub not_found_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            default_retry_after: Duration::from_secs(15),
            max_retry_after: Duration::from_secs(120),
            not_found_retries: 3,
            not_found_delay: Duration::from_millis(400),
        }
    }
}

impl RetryPolicy {
    /// The same retry counts with millisecond delays, for tests against fake servers.
    pub fn fast_for_tests() -> Self {
        Self {
            max_retries: 5,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(10),
            default_retry_after: Duration::from_millis(5),
            max_retry_after: Duration::from_millis(10),
            not_found_retries: 3,
            not_found_delay: Duration::from_millis(1),
        }
    }

    /// Full jitter: uniformly random in `[0, min(max_delay, base_delay * 2^retry)]`,
    /// so clients that failed together do not retry together.
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self
            .base_delay
            .saturating_mul(2_u32.saturating_pow(retry))
            .min(self.max_delay);
        let millis = u64::try_from(ceiling.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rand::random_range(0..=millis))
    }

    /// The wait a 429/423 asks for: `Retry-After` in seconds, else the default; capped.
    pub(crate) fn retry_after(&self, header: Option<&str>) -> Duration {
        header
            .and_then(|value| value.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            .map_or(self.default_retry_after, |secs| {
                Duration::try_from_secs_f64(secs).unwrap_or(self.max_retry_after)
            })
            .min(self.max_retry_after)
    }

    pub(crate) fn not_found_wait(&self, retry: u32) -> Duration {
        self.not_found_delay
            .saturating_mul(2_u32.saturating_pow(retry))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_the_ceiling() {
        let policy = RetryPolicy::default();
        for retry in 0..40 {
            let ceiling = (policy.base_delay * 2_u32.saturating_pow(retry)).min(policy.max_delay);
            for _ in 0..20 {
                assert!(policy.backoff(retry) <= ceiling);
            }
        }
    }

    #[test]
    fn retry_after_parsing() {
        let policy = RetryPolicy::default();
        let cases: &[(Option<&str>, Duration)] = &[
            (Some("0"), Duration::ZERO),
            (Some("7"), Duration::from_secs(7)),
            (Some(" 3 "), Duration::from_secs(3)),
            (Some("1.5"), Duration::from_millis(1500)),
            (Some("100000"), Duration::from_secs(120)),
            (Some("1e300"), Duration::from_secs(120)),
            (Some("-1"), Duration::from_secs(15)),
            (Some("NaN"), Duration::from_secs(15)),
            (
                Some("Wed, 21 Oct 2015 07:28:00 GMT"),
                Duration::from_secs(15),
            ),
            (None, Duration::from_secs(15)),
        ];
        for (header, want) in cases {
            assert_eq!(policy.retry_after(*header), *want, "{header:?}");
        }
    }

    #[test]
    fn not_found_wait_doubles() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.not_found_wait(0), Duration::from_millis(400));
        assert_eq!(policy.not_found_wait(1), Duration::from_millis(800));
        assert_eq!(policy.not_found_wait(2), Duration::from_millis(1600));
    }
}
