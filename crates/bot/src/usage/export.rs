//! `webex-chatbot usage export [--since YYYY-MM-DD] [--format csv|json]`: one row per day,
//! person, space, provider and model to stdout, read through a read-only connection so it
//! runs while `serve` holds the database (SQLite included: it takes no owner lock).

use std::io::Write;

use anyhow::Context;

use crate::config::Config;
use crate::error::AppError;
use crate::store::{UsageReader, UsageRow};

/// The CSV header, fixed by DESIGN §10.6.
pub const CSV_HEADER: &str =
    "day,person,space,provider,model,prompt_tokens,completion_tokens,total_tokens,cost";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Comma-separated, with a header line
    #[default]
    Csv,
    /// A JSON array of objects with the CSV's columns as fields
    Json,
}

/// Checks `--since`: a date `YYYY-MM-DD`.
pub fn parse_since(raw: &str) -> Result<String, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw.trim(), format)
        .map(super::day)
        .map_err(|_| format!("--since: expected a date as YYYY-MM-DD, got {raw:?}"))
}

/// The subcommand: opens `DATABASE_URL` read-only and writes the rows to stdout.
pub(crate) async fn run(
    config: &Config,
    since: Option<String>,
    format: Format,
) -> Result<(), AppError> {
    let since = since
        .as_deref()
        .map(parse_since)
        .transpose()
        .map_err(AppError::Usage)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    export(
        &config.database_url,
        None,
        since.as_deref(),
        format,
        &mut out,
    )
    .await?;
    out.flush().context("cannot write to stdout")?;
    Ok(())
}

/// Writes the usage rows of the database at `url` (in `pg_schema` on PostgreSQL) from
/// `since` on to `out`.
pub async fn export(
    url: &str,
    pg_schema: Option<&str>,
    since: Option<&str>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let reader = UsageReader::open(url, pg_schema)
        .await
        .context("DATABASE_URL: cannot open the database read-only")?;
    let result = write_rows(&reader, since, format, out).await;
    reader.close().await;
    result
}

async fn write_rows(
    reader: &UsageReader,
    since: Option<&str>,
    format: Format,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    let mut first = true;
    match format {
        Format::Csv => writeln!(out, "{CSV_HEADER}")?,
        Format::Json => write!(out, "[")?,
    }
    let written = reader
        .for_each_row(since, |row| {
            let line = match format {
                Format::Csv => csv_line(&row),
                Format::Json => {
                    let separator = if first { "\n" } else { ",\n" };
                    format!("{separator}{}", json_object(&row))
                }
            };
            first = false;
            match format {
                Format::Csv => writeln!(out, "{line}"),
                Format::Json => write!(out, "{line}"),
            }
        })
        .await
        .context("cannot read the usage (has `serve` of this version run on this database?)")?;
    written.context("cannot write to stdout")?;
    if format == Format::Json {
        writeln!(out, "{}]", if first { "" } else { "\n" })?;
    }
    Ok(())
}

fn csv_line(row: &UsageRow) -> String {
    let t = &row.totals;
    [
        csv_field(&row.day),
        csv_field(&row.person),
        csv_field(&row.space),
        csv_field(&row.provider),
        csv_field(&row.model),
        t.prompt_tokens.to_string(),
        t.completion_tokens.to_string(),
        t.tokens().to_string(),
        decimal_cost(t.cost_nanos),
    ]
    .join(",")
}

fn json_object(row: &UsageRow) -> String {
    let t = &row.totals;
    let text = |s: &str| serde_json::Value::from(s).to_string();
    format!(
        "{{\"day\":{},\"person\":{},\"space\":{},\"provider\":{},\"model\":{},\"prompt_tokens\":{},\"completion_tokens\":{},\"total_tokens\":{},\"cost\":{}}}",
        text(&row.day),
        text(&row.person),
        text(&row.space),
        text(&row.provider),
        text(&row.model),
        t.prompt_tokens,
        t.completion_tokens,
        t.tokens(),
        decimal_cost(t.cost_nanos)
    )
}

/// RFC 4180: a field with a comma, quote or line break is quoted, quotes doubled.
fn csv_field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// Billionths as an exact decimal with at least two places: `3030000000` → `3.03`.
pub(crate) fn decimal_cost(nanos: i64) -> String {
    let nanos = nanos.max(0);
    let fraction = format!("{:09}", nanos % 1_000_000_000);
    let fraction = fraction.trim_end_matches('0');
    let fraction = format!("{fraction:0<2}");
    format!("{}.{fraction}", nanos / 1_000_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Totals;

    fn row(model: &str, cost_nanos: i64) -> UsageRow {
        UsageRow {
            day: "2026-03-09".into(),
            person: "alice@example.com".into(),
            space: "ROOM-1".into(),
            provider: "openai-compatible".into(),
            model: model.into(),
            totals: Totals {
                prompt_tokens: 1200,
                completion_tokens: 34,
                cost_nanos,
            },
        }
    }

    #[test]
    fn csv_lines_quote_what_needs_it() {
        assert_eq!(
            csv_line(&row("llama3.1:8b", 3_030_000_000)),
            "2026-03-09,alice@example.com,ROOM-1,openai-compatible,llama3.1:8b,1200,34,1234,3.03"
        );
        assert_eq!(
            csv_line(&row("a,\"b\"", 0)),
            "2026-03-09,alice@example.com,ROOM-1,openai-compatible,\"a,\"\"b\"\"\",1200,34,1234,0.00"
        );
    }

    #[test]
    fn json_objects_carry_the_same_fields() {
        let value: serde_json::Value =
            serde_json::from_str(&json_object(&row("m\"x", 70))).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"day": "2026-03-09", "person": "alice@example.com", "space": "ROOM-1",
                "provider": "openai-compatible", "model": "m\"x", "prompt_tokens": 1200,
                "completion_tokens": 34, "total_tokens": 1234, "cost": 0.00000007})
        );
    }

    #[test]
    fn costs_are_exact_decimals() {
        assert_eq!(decimal_cost(0), "0.00");
        assert_eq!(decimal_cost(70), "0.00000007");
        assert_eq!(decimal_cost(5_000_000), "0.005");
        assert_eq!(decimal_cost(12_340_000_000), "12.34");
        assert_eq!(decimal_cost(1_000_000_000), "1.00");
    }

    #[test]
    fn since_must_be_a_date() {
        assert_eq!(parse_since("2026-03-01").unwrap(), "2026-03-01");
        assert_eq!(parse_since(" 2026-03-01 ").unwrap(), "2026-03-01");
        for bad in [
            "2026-3-1",
            "yesterday",
            "2026-02-30",
            "",
            "2026-03-01T00:00",
        ] {
            let err = parse_since(bad).unwrap_err();
            assert!(err.starts_with("--since"), "{bad}: {err}");
        }
    }
}
