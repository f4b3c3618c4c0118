//! Token usage (DESIGN §10.6): one row per UTC day, person, space, provider and model,
//! added to by every LLM call; the message counts of `USER_MESSAGES_PER_MINUTE`; and a
//! read-only reader for `usage export`, which runs beside `serve`.

use futures_util::TryStreamExt;

use super::*;

/// One LLM call's tokens and cost, added into its day's row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRecord<'a> {
    /// UTC, `YYYY-MM-DD`.
    pub day: &'a str,
    pub person: &'a str,
    pub space: &'a str,
    pub provider: &'a str,
    pub model: &'a str,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    /// Billionths of the price's currency unit.
    pub cost_nanos: i64,
}

/// Tokens and cost added up over some rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_nanos: i64,
}

impl Totals {
    pub fn tokens(&self) -> i64 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }

    fn read(row: &Row, prefix: &str) -> Result<Totals> {
        Ok(Totals {
            prompt_tokens: row.try_get(format!("{prefix}prompt").as_str())?,
            completion_tokens: row.try_get(format!("{prefix}completion").as_str())?,
            cost_nanos: row.try_get(format!("{prefix}cost").as_str())?,
        })
    }
}

/// A person's usage today and in the month so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersonUsage {
    pub today: Totals,
    pub month: Totals,
}

/// What today's daily limits are measured against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokensToday {
    pub person: i64,
    pub space: i64,
}

/// Who a ranking is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ranked {
    People,
    Spaces,
}

/// One row of `usage export`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageRow {
    pub day: String,
    pub person: String,
    pub space: String,
    pub provider: String,
    pub model: String,
    pub totals: Totals,
}

/// `SUM` as a BIGINT on both backends (PostgreSQL sums BIGINTs into NUMERIC, which the
/// `Any` driver cannot read).
macro_rules! sum {
    ($expr:literal) => {
        concat!("CAST(COALESCE(SUM(", $expr, "), 0) AS BIGINT)")
    };
}

/// How long a person's message counts are kept (only the current minute is read).
const MESSAGE_ROWS_KEPT_MINUTES: i64 = 60;

impl Store {
    /// Adds one LLM call to its row (created on the first call of the day).
    pub async fn record_usage(&self, record: &UsageRecord<'_>) -> Result<()> {
        query(
            "INSERT INTO usage_daily (day, person, space, provider, model, calls, \
               prompt_tokens, completion_tokens, cost_nanos) \
             VALUES ($1, $2, $3, $4, $5, 1, $6, $7, $8) \
             ON CONFLICT (day, person, space, provider, model) DO UPDATE SET \
               calls = usage_daily.calls + 1, \
               prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens, \
               completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens, \
               cost_nanos = usage_daily.cost_nanos + excluded.cost_nanos",
        )
        .bind(record.day)
        .bind(record.person)
        .bind(record.space)
        .bind(record.provider)
        .bind(record.model)
        .bind(record.prompt_tokens)
        .bind(record.completion_tokens)
        .bind(record.cost_nanos)
        .execute(&mut self.conn().await?)
        .await?;
        Ok(())
    }

    /// Tokens `person` (in every space) and `space` (everyone in it) used on `day`.
    pub async fn tokens_on(&self, day: &str, person: &str, space: &str) -> Result<TokensToday> {
        let row = query(concat!(
            "SELECT (SELECT ",
            sum!("prompt_tokens + completion_tokens"),
            " FROM usage_daily WHERE day = $1 AND person = $2) AS person_tokens, (SELECT ",
            sum!("prompt_tokens + completion_tokens"),
            " FROM usage_daily WHERE day = $1 AND space = $3) AS space_tokens"
        ))
        .bind(day)
        .bind(person)
        .bind(space)
        .fetch_one(&mut self.conn().await?)
        .await?;
        Ok(TokensToday {
            person: row.try_get("person_tokens")?,
            space: row.try_get("space_tokens")?,
        })
    }

    /// Counts `message_id` as a message of `person` in `minute` (once, however often it is
    /// checked) and returns how many messages of theirs that minute holds now. Forgets the
    /// person's counts older than an hour on the way.
    pub async fn count_message(&self, message_id: &str, person: &str, minute: i64) -> Result<i64> {
        let mut conn = self.conn().await?;
        query(
            "INSERT INTO usage_messages (message_id, person, minute) VALUES ($1, $2, $3) \
             ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(person)
        .bind(minute)
        .execute(&mut conn)
        .await?;
        query("DELETE FROM usage_messages WHERE person = $1 AND minute < $2")
            .bind(person)
            .bind(minute - MESSAGE_ROWS_KEPT_MINUTES)
            .execute(&mut conn)
            .await?;
        let row = query(
            "SELECT COUNT(*) AS messages FROM usage_messages WHERE person = $1 AND minute = $2",
        )
        .bind(person)
        .bind(minute)
        .fetch_one(&mut conn)
        .await?;
        row.try_get("messages")
    }

    /// `person`'s totals on `today` and from `month_start` to `today` (both `YYYY-MM-DD`).
    pub async fn usage_of(
        &self,
        person: &str,
        month_start: &str,
        today: &str,
    ) -> Result<PersonUsage> {
        let row = query(concat!(
            "SELECT ",
            sum!("CASE WHEN day = $1 THEN prompt_tokens ELSE 0 END"),
            " AS today_prompt, ",
            sum!("CASE WHEN day = $1 THEN completion_tokens ELSE 0 END"),
            " AS today_completion, ",
            sum!("CASE WHEN day = $1 THEN cost_nanos ELSE 0 END"),
            " AS today_cost, ",
            sum!("prompt_tokens"),
            " AS month_prompt, ",
            sum!("completion_tokens"),
            " AS month_completion, ",
            sum!("cost_nanos"),
            " AS month_cost \
             FROM usage_daily WHERE person = $2 AND day >= $3 AND day <= $1"
        ))
        .bind(today)
        .bind(person)
        .bind(month_start)
        .fetch_one(&mut self.conn().await?)
        .await?;
        Ok(PersonUsage {
            today: Totals::read(&row, "today_")?,
            month: Totals::read(&row, "month_")?,
        })
    }

    /// The `limit` people or spaces that used the most tokens from `from` to `to`
    /// (`YYYY-MM-DD`, both included), most first.
    pub async fn top_usage(
        &self,
        ranked: Ranked,
        from: &str,
        to: &str,
        limit: i64,
    ) -> Result<Vec<(String, Totals)>> {
        let sql = match ranked {
            Ranked::People => concat!(
                "SELECT person AS who, ",
                sum!("prompt_tokens"),
                " AS prompt, ",
                sum!("completion_tokens"),
                " AS completion, ",
                sum!("cost_nanos"),
                " AS cost FROM usage_daily WHERE day >= $1 AND day <= $2 GROUP BY person \
                 ORDER BY SUM(prompt_tokens + completion_tokens) DESC, person LIMIT $3"
            ),
            Ranked::Spaces => concat!(
                "SELECT space AS who, ",
                sum!("prompt_tokens"),
                " AS prompt, ",
                sum!("completion_tokens"),
                " AS completion, ",
                sum!("cost_nanos"),
                " AS cost FROM usage_daily WHERE day >= $1 AND day <= $2 GROUP BY space \
                 ORDER BY SUM(prompt_tokens + completion_tokens) DESC, space LIMIT $3"
            ),
        };
        let rows = query(sql)
            .bind(from)
            .bind(to)
            .bind(limit)
            .fetch_all(&mut self.conn().await?)
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("who")?, Totals::read(row, "")?)))
            .collect()
    }
}

/// `usage export`'s view of the database: read-only (SQLite `mode=ro` and `query_only`,
/// PostgreSQL `default_transaction_read_only`), no migrations and no owner lock, so it
/// runs while `serve` holds the database.
pub struct UsageReader {
    pool: AnyPool,
}

impl UsageReader {
    /// Opens the database at `url` read-only (in `pg_schema` on PostgreSQL, for tests).
    pub async fn open(url: &str, pg_schema: Option<&str>) -> Result<UsageReader> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url);
        let pool = reader_pool(&backend.read_only_url(url), backend, pg_schema).await?;
        Ok(UsageReader { pool })
    }

    /// Calls `each` with every row from `since` on (`YYYY-MM-DD`; all without it), by day,
    /// person, space, provider and model; stops at the first error of `each`.
    pub async fn for_each_row<E>(
        &self,
        since: Option<&str>,
        mut each: impl FnMut(UsageRow) -> std::result::Result<(), E>,
    ) -> Result<std::result::Result<(), E>> {
        let mut conn = self.pool.acquire().await?;
        let mut rows = sqlx::query(
            "SELECT day, person, space, provider, model, prompt_tokens, completion_tokens, \
               cost_nanos AS cost \
             FROM usage_daily WHERE day >= $1 ORDER BY day, person, space, provider, model",
        )
        .bind(since.unwrap_or(""))
        .fetch(&mut *conn);
        while let Some(row) = rows.try_next().await? {
            let row = UsageRow {
                day: row.try_get("day")?,
                person: row.try_get("person")?,
                space: row.try_get("space")?,
                provider: row.try_get("provider")?,
                model: row.try_get("model")?,
                totals: Totals {
                    prompt_tokens: row.try_get("prompt_tokens")?,
                    completion_tokens: row.try_get("completion_tokens")?,
                    cost_nanos: row.try_get("cost")?,
                },
            };
            if let Err(e) = each(row) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }

    pub async fn close(self) {
        self.pool.close().await;
    }
}

/// One connection that changes nothing, with a first query to prove it opened.
async fn reader_pool(url: &str, backend: Backend, pg_schema: Option<&str>) -> Result<AnyPool> {
    let schema = pg_schema.map(str::to_owned);
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            let schema = schema.clone();
            Box::pin(async move {
                for setup in backend.read_only_setup(schema.as_deref()) {
                    conn.execute(setup).await?;
                }
                Ok(())
            })
        })
        .connect(url)
        .await?;
    // SQLite opens lazily: read the schema now, so a database it cannot read fails here.
    if let Err(e) = sqlx::query("SELECT COUNT(*) AS n FROM usage_daily WHERE 1 = 0")
        .fetch_one(&pool)
        .await
    {
        pool.close().await;
        return Err(e.into());
    }
    Ok(pool)
}
