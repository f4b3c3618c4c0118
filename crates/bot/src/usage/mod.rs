//! Who used how much (DESIGN §10.6, docs/usage.md): the tokens of every LLM call recorded
//! per UTC day, person, space, provider and model with their cost; the limits checked
//! before a question goes to the LLM; the `usage` reports; `usage export`.
//!
//! [`Ledger::record`] is called once per LLM call (a tool round is a call of its own), with
//! the counts the provider reported. Limits are read from the shared store, so they hold
//! across replicas and restarts.

mod clock;
pub mod export;
mod limits;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use time::{Date, OffsetDateTime};

use crate::config::{Limits, Price, Prices};
use crate::domain::Email;
use crate::metrics::{LimitLabel, Metrics, TokenLabels};
use crate::store::{PersonUsage, Ranked, Store, StoreError, Totals, UsageRecord};

pub use clock::Clock;
pub(crate) use limits::{Limit, Refusal};

/// Whose an LLM call is: the person who asked and the space they asked in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Who<'a> {
    pub person: &'a Email,
    /// The room id.
    pub space: &'a str,
}

/// How many people and spaces `usage all` lists.
pub(crate) const TOP: i64 = 10;

/// Records usage and checks limits against the store, on its clock. Cheap to clone (the
/// store and the metric families are handles).
#[derive(Clone)]
pub struct Ledger {
    store: Store,
    clock: Clock,
    prices: Prices,
    limits: Limits,
    tokens: Family<TokenLabels, Counter>,
    limit_hits: Family<LimitLabel, Counter>,
}

/// A person's `usage`: their totals and the dates they cover.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    /// `YYYY-MM-DD`, UTC.
    pub today: String,
    /// The month, e.g. `March 2026`.
    pub month: String,
    pub usage: PersonUsage,
}

/// `usage all`: the month's top people and spaces.
#[derive(Clone, Debug)]
pub(crate) struct Ranking {
    pub month: String,
    pub people: Vec<(String, Totals)>,
    pub spaces: Vec<(String, Totals)>,
}

impl Ledger {
    pub(crate) fn new(
        store: Store,
        clock: Clock,
        prices: Prices,
        limits: Limits,
        metrics: &Metrics,
    ) -> Ledger {
        Ledger {
            store,
            clock,
            prices,
            limits,
            tokens: metrics.llm_tokens.clone(),
            limit_hits: metrics.limit_hits.clone(),
        }
    }

    /// Creates the series an operator's alerts and dashboard read before the first event
    /// (at 0): every limit, and the prompt and completion tokens of each configured
    /// provider's model.
    pub(crate) fn init_series(&self, llm: &llm::Llm) {
        for limit in Limit::ALL {
            let _ = self.limit_hits.get_or_create(&LimitLabel {
                limit: limit.as_str(),
            });
        }
        for provider in std::iter::once(llm.primary()).chain(llm.fallback()) {
            for kind in ["prompt", "completion"] {
                let _ = self.tokens.get_or_create(&TokenLabels {
                    provider: provider.kind.as_str(),
                    model: provider.model().to_owned(),
                    kind,
                });
            }
        }
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Adds one LLM call's tokens (and its cost, at the price of the provider that
    /// answered: primary or fallback) to today's row of `who`, and to the metric. A store
    /// failure is logged, never passed on: the answer matters more than its accounting.
    pub(crate) async fn record(&self, who: Who<'_>, usage: &llm::Usage) {
        let provider = usage.provider.as_str();
        for (kind, count) in [
            ("prompt", usage.prompt_tokens),
            ("completion", usage.completion_tokens),
        ] {
            self.tokens
                .get_or_create(&TokenLabels {
                    provider,
                    model: usage.model.clone(),
                    kind,
                })
                .inc_by(count);
        }
        let price = if usage.fallback {
            self.prices.fallback
        } else {
            self.prices.primary
        };
        let day = day(self.clock.now().date());
        let record = UsageRecord {
            day: &day,
            person: who.person.as_str(),
            space: who.space,
            provider,
            model: &usage.model,
            prompt_tokens: clamp(usage.prompt_tokens),
            completion_tokens: clamp(usage.completion_tokens),
            cost_nanos: cost_nanos(price, usage.prompt_tokens, usage.completion_tokens),
        };
        if let Err(e) = self.store.record_usage(&record).await {
            tracing::warn!(error = %e, provider, model = %usage.model, prompt = usage.prompt_tokens, completion = usage.completion_tokens, "cannot record the LLM call's tokens");
        }
    }

    /// The asker's totals today and this month.
    pub(crate) async fn report(&self, person: &Email) -> Result<Report, StoreError> {
        let today = self.clock.now().date();
        let usage = self
            .store
            .usage_of(person.as_str(), &day(month_start(today)), &day(today))
            .await?;
        Ok(Report {
            today: day(today),
            month: month_name(today),
            usage,
        })
    }

    /// The top [`TOP`] people and spaces this month.
    pub(crate) async fn ranking(&self) -> Result<Ranking, StoreError> {
        let today = self.clock.now().date();
        let (from, to) = (day(month_start(today)), day(today));
        let people = self
            .store
            .top_usage(Ranked::People, &from, &to, TOP)
            .await?;
        let spaces = self
            .store
            .top_usage(Ranked::Spaces, &from, &to, TOP)
            .await?;
        Ok(Ranking {
            month: month_name(today),
            people,
            spaces,
        })
    }
}

/// `YYYY-MM-DD`.
pub(crate) fn day(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn month_start(date: Date) -> Date {
    date.replace_day(1).unwrap_or(date)
}

/// `March 2026`.
fn month_name(date: Date) -> String {
    format!("{} {}", date.month(), date.year())
}

/// Minutes since the epoch (the window of `USER_MESSAGES_PER_MINUTE`).
fn minute(at: OffsetDateTime) -> i64 {
    at.unix_timestamp().div_euclid(60)
}

fn clamp(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

/// What `prompt` and `completion` tokens cost at `price` (per million tokens), in
/// billionths of the price's unit: whole numbers add up without drift over millions of
/// calls, and a call of a few tokens at a cent per million still costs something.
pub(crate) fn cost_nanos(price: Price, prompt: u64, completion: u64) -> i64 {
    // tokens × price / 10⁶ units = tokens × price × 10³ nano-units.
    let nanos = (prompt as f64 * price.input_per_mtok + completion as f64 * price.output_per_mtok)
        * 1_000.0;
    if nanos.is_finite() && nanos > 0.0 {
        // `as` saturates at i64::MAX, far beyond any bill.
        nanos.round() as i64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_price_per_million_tokens() {
        let price = Price {
            input_per_mtok: 3.0,
            output_per_mtok: 15.0,
        };
        // 1,000,000 prompt tokens at 3 = 3 units; 2,000 completion tokens at 15 = 0.03.
        assert_eq!(cost_nanos(price, 1_000_000, 2_000), 3_030_000_000);
        assert_eq!(cost_nanos(price, 0, 0), 0);
        assert_eq!(cost_nanos(Price::default(), 5_000, 5_000), 0);
        let cheap = Price {
            input_per_mtok: 0.01,
            output_per_mtok: 0.0,
        };
        assert_eq!(cost_nanos(cheap, 7, 100), 70);
        assert_eq!(cost_nanos(price, u64::MAX, u64::MAX), i64::MAX);
    }

    #[test]
    fn days_months_and_minutes() {
        let at = time::macros::datetime!(2026-03-09 07:05:59 UTC);
        assert_eq!(day(at.date()), "2026-03-09");
        assert_eq!(day(month_start(at.date())), "2026-03-01");
        assert_eq!(month_name(at.date()), "March 2026");
        assert_eq!(minute(at), at.unix_timestamp() / 60);
        assert_eq!(
            minute(at) + 1,
            minute(time::macros::datetime!(2026-03-09 07:06:00 UTC))
        );
    }
}
