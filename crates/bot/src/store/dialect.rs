//! Every difference between SQLite and PostgreSQL, in one place.
//!
//! The queries in the other files are written once, in SQL both accept: `$n` placeholders
//! (sqlx's `Any` driver passes them on to PostgreSQL; on SQLite `sql.rs` binds each `$n`
//! by its number), upserts
//! as `INSERT … ON CONFLICT (…) DO NOTHING` or `DO UPDATE SET c = excluded.c`, `RETURNING`,
//! `CAST(… AS BIGINT)` where a type must not depend on the backend. What cannot be written
//! once is here, as a property of [`Backend`]:
//!
//! - **Opening**: which backend a URL names ([`Backend::of_url`]); a SQLite URL's file
//!   and mode (created on first run by `serve`, read-only for `usage export`); the pool size (SQLite:
//!   one connection, PostgreSQL: the configured pool plus connections of their own for the
//!   webhook inserts); what each new connection sets ([`Backend::session_setup`]: SQLite's
//!   WAL pragmas, PostgreSQL's schema); read-only sessions for `usage export`; the schema a
//!   PostgreSQL test works in; the migrations folder (they differ only in the types of
//!   auto-increment keys).
//! - **The clock in SQL** ([`Backend::now_sql`]): leases are timed by the database's clock.
//! - **Round trips** ([`Backend::round_trips`]): three steps of the message path (the next
//!   event, the confirmation that saves an answer, the done mark with its turns) are one
//!   round trip of several statements on SQLite (the SQL is in [`sqlite`]) and separate
//!   statements on PostgreSQL, which takes one statement with parameters per round trip.
//! - **One process or many** ([`Backend::processes`]): a SQLite file is owned by one
//!   `serve` (a lock file, `owner_lock.rs`), which is also the webhook leader; replicas on
//!   PostgreSQL elect the leader with a session advisory lock (`leader.rs`).
//! - **Maintenance**: SQLite's WAL is checkpointed from a connection of its own
//!   (`checkpoints.rs`, started with the SQLite connection in `Store::connect`).

use sqlx::AssertSqlSafe;
use sqlx::migrate::Migrator;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How a step of several statements reaches the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RoundTrips {
    /// SQLite: the statements of a step go as one SQL text, run on the calling thread
    /// under one hold of the one connection (`sql.rs`): the transaction written inline,
    /// `changes()` making a statement depend on the one before, one commit.
    One,
    /// PostgreSQL: one statement per round trip, in a transaction where the step needs one.
    PerStatement,
}

/// Who may write to the database, and so who leads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Processes {
    /// SQLite: the one `serve` that holds the owner lock file; it leads.
    One,
    /// PostgreSQL: any number of replicas; the leader holds a session advisory lock.
    Many,
}

/// The first key of the two-key advisory lock that elects the webhook leader (`webx`); the
/// second is a hash of the schema, so schemas sharing a database elect separately.
pub(super) const LEADER_LOCK_KEY: i32 = 0x7765_6278;

/// PostgreSQL: takes the leader lock of the connection's schema without waiting (`locked`).
pub(super) const TRY_LEADER_LOCK: &str =
    "SELECT pg_try_advisory_lock($1, hashtext(current_schema())) AS locked";

impl Backend {
    /// `sqlite:…` is SQLite; anything else is handed to PostgreSQL.
    pub fn of_url(url: &str) -> Backend {
        if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        }
    }

    /// The URL `serve` opens: SQLite creates a missing database (`mode=rwc`) unless the
    /// URL names a mode.
    pub(super) fn read_write_url(self, url: &str) -> String {
        match self {
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        }
    }

    /// The URL a reader opens: SQLite with `mode=ro` instead of any other mode
    /// (`mode=rwc` would create a missing database); PostgreSQL's sessions are made
    /// read-only by [`Self::read_only_setup`].
    pub(super) fn read_only_url(self, url: &str) -> String {
        match self {
            Backend::Sqlite => {
                let (base, query) = url.split_once('?').unwrap_or((url, ""));
                let mut params: Vec<&str> = query
                    .split('&')
                    .filter(|p| !p.is_empty() && !p.starts_with("mode="))
                    .collect();
                params.push("mode=ro");
                format!("{base}?{}", params.join("&"))
            }
            Backend::Postgres => url.to_owned(),
        }
    }

    pub(super) fn migrator(self) -> Migrator {
        match self {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        }
    }

    /// The main pool's size for `DATABASE_MAX_CONNECTIONS`; on SQLite the pool that runs the
    /// migrations, before the store's one connection opens (`sql.rs`). SQLite has one writer at a
    /// time, and a connection that finds the database locked sleeps in SQLite's busy
    /// handler (up to 100 ms a try): with several connections a webhook's insert could wait
    /// behind the workers for a second. One connection queues every statement fairly.
    pub(super) fn pool_size(self, configured: u32) -> u32 {
        match self {
            Backend::Sqlite => 1,
            Backend::Postgres => configured,
        }
    }

    /// What every new connection runs first, if anything.
    pub(super) fn session_setup(self, schema: Option<&str>) -> Option<AssertSqlSafe<String>> {
        match self {
            // WAL: readers never block the writer; NORMAL sync is durable against process
            // crashes (kill -9), which is what "acknowledged is never lost" needs, at a
            // fraction of FULL's fsync cost. Checkpoints (and their fsyncs) run on a
            // connection of their own (`checkpoint_loop`); this one only falls back to them
            // if the WAL grows far past SQLite's default of 1,000 pages.
            Backend::Sqlite => Some(AssertSqlSafe(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                 PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; \
                 PRAGMA wal_autocheckpoint=20000;"
                    .to_owned(),
            )),
            Backend::Postgres => schema.map(search_path),
        }
    }

    /// What a read-only session (`usage export`, while `serve` runs) runs first.
    pub(super) fn read_only_setup(self, schema: Option<&str>) -> Vec<AssertSqlSafe<String>> {
        match self {
            // `serve` may be writing: wait for its lock rather than fail.
            Backend::Sqlite => vec![AssertSqlSafe(
                "PRAGMA busy_timeout=10000; PRAGMA query_only=ON;".to_owned(),
            )],
            Backend::Postgres => {
                let mut setup = vec![AssertSqlSafe(
                    "SET default_transaction_read_only = on".to_owned(),
                )];
                setup.extend(schema.map(search_path));
                setup
            }
        }
    }

    /// The database's clock in milliseconds since the epoch, as an SQL expression. Leases
    /// are timed with it, so replicas whose clocks disagree still agree on when a lease
    /// expires.
    pub(super) fn now_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// `sql` with `{now}` replaced by [`Self::now_sql`].
    pub(super) fn timed(self, sql: &str) -> String {
        sql.replace("{now}", self.now_sql())
    }

    pub(super) fn round_trips(self) -> RoundTrips {
        match self {
            Backend::Sqlite => RoundTrips::One,
            Backend::Postgres => RoundTrips::PerStatement,
        }
    }

    pub(super) fn processes(self) -> Processes {
        match self {
            Backend::Sqlite => Processes::One,
            Backend::Postgres => Processes::Many,
        }
    }
}

/// PostgreSQL: work inside `schema` (tests give each test its own).
pub(super) fn search_path(schema: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!("SET search_path TO \"{schema}\""))
}

/// PostgreSQL: creates `schema` if missing. Serialized: concurrent `CREATE SCHEMA IF NOT
/// EXISTS` of one name can fail on the catalog's unique index (replicas starting together).
pub(super) fn create_schema(schema: &str) -> AssertSqlSafe<String> {
    AssertSqlSafe(format!(
        "BEGIN; SELECT pg_advisory_xact_lock(hashtext('webex-chatbot schema')); \
         CREATE SCHEMA IF NOT EXISTS \"{schema}\"; COMMIT;"
    ))
}

/// The SQLite forms of the steps that are one round trip there ([`RoundTrips::One`]).
/// Their PostgreSQL forms are the separate statements in `inbox.rs` and `leases.rs`.
pub(super) mod sqlite {
    /// `sqlite://data/bot.db` → `data/bot.db`; `None` for in-memory databases and for
    /// URLs that are not SQLite's.
    pub(in crate::store) fn file_path(url: &str) -> Option<&str> {
        let rest = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))?;
        let path = rest.split('?').next().unwrap_or(rest);
        (!path.is_empty() && path != ":memory:").then_some(path)
    }

    /// `Store::next_event`: claim the room's lease; release it if nothing is due; take the
    /// oldest due event (counting the attempt) if the lease is ours, and read it if the
    /// count changed it (`changes()`: no `RETURNING`, whose rows SQLite gathers in a
    /// temporary table built and freed each time, see docs/performance.md). One transaction
    /// written inline: one commit (one set of WAL locks and frame writes) instead of one
    /// per statement. Parameters: room, owner, lease ms, numbered from `first` (1 alone,
    /// after the done mark's in [`finish_then_next`]); `{now}` as in `Backend::timed`.
    pub(in crate::store) fn next_event(first: usize) -> String {
        let (room, owner, ttl) = (first, first + 1, first + 2);
        format!(
            "BEGIN IMMEDIATE; INSERT INTO room_leases (room_id, owner, expires_at) VALUES (${room}, ${owner}, {{now}} + ${ttl}) \
             ON CONFLICT (room_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE room_leases.expires_at < {{now}} OR room_leases.owner = excluded.owner; \
             DELETE FROM room_leases WHERE room_id = ${room} AND owner = ${owner} AND NOT EXISTS \
             (SELECT 1 FROM inbox WHERE seq = \
               (SELECT seq FROM inbox WHERE room_id = ${room} AND state = 'pending' ORDER BY seq LIMIT 1) \
              AND not_before <= {{now}}); \
             UPDATE inbox SET attempts = attempts + 1 \
             WHERE seq = (SELECT seq FROM inbox WHERE room_id = ${room} AND state = 'pending' ORDER BY seq LIMIT 1) \
             AND not_before <= {{now}} \
             AND EXISTS (SELECT 1 FROM room_leases WHERE room_id = ${room} AND owner = ${owner}); \
             SELECT seq, message_id, kind, room_id, payload, received_at, attempts, not_before, reply, parts_sent, stream_message_id, \
             CAST(1 AS BIGINT) AS due FROM inbox \
             WHERE seq = (SELECT seq FROM inbox WHERE room_id = ${room} AND state = 'pending' ORDER BY seq LIMIT 1) \
             AND changes() = 1; COMMIT"
        )
    }

    /// `Store::finish_then_next`: the done mark with its turns ([`done_with_turns`]), its
    /// transaction committed, then the room's next step ([`next_event`]), whose parameters
    /// follow the turns'. The next step is a transaction of its own: if it fails, the
    /// answer stays recorded.
    pub(in crate::store) fn finish_then_next(done: &str, turns: usize) -> String {
        let first = if turns > 0 { 6 + 2 * turns } else { 4 };
        format!("{}; {}", done_with_turns(done, turns), next_event(first))
    }

    /// `Store::confirm_post` with an answer to keep: the confirmation `confirm`, then the
    /// answer saved only if it confirmed (`changes()`: rows changed by the statement
    /// before), in one transaction written inline. The answer is parameter 6.
    pub(in crate::store) fn confirm_and_save(confirm: &str) -> String {
        format!(
            "BEGIN IMMEDIATE; {confirm}; {CONFIRMED}; UPDATE inbox SET reply = $6, parts_sent = 0 \
             WHERE seq = $4 AND state = 'pending' AND changes() = 1; COMMIT"
        )
    }

    /// A row (one column) when the statement before changed one: what a `RETURNING` would
    /// say, without the temporary table SQLite builds for one. A `SELECT` leaves
    /// `changes()` as it was, so the statement after it can test the same.
    const CONFIRMED: &str = "SELECT CAST(1 AS BIGINT) AS changed WHERE changes() = 1";

    /// `Store::finish`: the done mark `done` (parameters 1-3; a row of one column follows
    /// if it applied), with `turns` turns the turns only if it did (conversation $4, kept
    /// messages $5, then role and content of each from $6) and the pruning, in a
    /// transaction written inline. A transaction over several round trips would hold the
    /// one connection while the task waits to be polled again between them.
    pub(in crate::store) fn done_with_turns(done: &str, turns: usize) -> String {
        let mut sql = format!("BEGIN IMMEDIATE; {done}; {CONFIRMED};");
        if turns > 0 {
            sql.push_str(" INSERT INTO turns (conversation, created_at, role, content) ");
            for i in 0..turns {
                let n = 6 + 2 * i;
                if i > 0 {
                    sql.push_str(" UNION ALL ");
                }
                sql.push_str(&format!(
                    "SELECT $4, $2, ${n}, ${} WHERE changes() = 1",
                    n + 1
                ));
            }
            sql.push_str("; ");
            sql.push_str(&crate::store::memory::prune_sql(4, 5));
        }
        sql.push_str("; COMMIT");
        sql
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend() {
        for (url, want) in [
            ("sqlite://data/bot.db", Backend::Sqlite),
            ("sqlite::memory:", Backend::Sqlite),
            ("postgres://u@h/db", Backend::Postgres),
            ("postgresql://u@h/db", Backend::Postgres),
        ] {
            assert_eq!(Backend::of_url(url), want, "{url}");
        }
    }

    #[test]
    fn sqlite_urls_get_their_mode() {
        let sqlite = Backend::Sqlite;
        assert_eq!(
            sqlite.read_write_url("sqlite://data/bot.db"),
            "sqlite://data/bot.db?mode=rwc"
        );
        assert_eq!(
            sqlite.read_write_url("sqlite://b.db?cache=shared"),
            "sqlite://b.db?cache=shared&mode=rwc"
        );
        assert_eq!(
            sqlite.read_write_url("sqlite://b.db?mode=ro"),
            "sqlite://b.db?mode=ro"
        );
        assert_eq!(
            sqlite.read_only_url("sqlite://data/bot.db"),
            "sqlite://data/bot.db?mode=ro"
        );
        assert_eq!(
            sqlite.read_only_url("sqlite:///var/lib/b.db?mode=rwc&cache=shared"),
            "sqlite:///var/lib/b.db?cache=shared&mode=ro"
        );
        let pg = "postgres://u@h/db?sslmode=require";
        assert_eq!(Backend::Postgres.read_write_url(pg), pg);
        assert_eq!(Backend::Postgres.read_only_url(pg), pg);
    }

    #[test]
    fn sqlite_files_are_found_in_urls() {
        for (url, want) in [
            ("sqlite://data/bot.db", Some("data/bot.db")),
            ("sqlite:data/bot.db?mode=rwc", Some("data/bot.db")),
            ("sqlite:///var/lib/b.db", Some("/var/lib/b.db")),
            ("sqlite::memory:", None),
            ("sqlite://", None),
            ("postgres://u@h/db", None),
        ] {
            assert_eq!(sqlite::file_path(url), want, "{url}");
        }
    }

    #[test]
    fn the_clock_replaces_every_placeholder() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            let sql = backend.timed("SELECT {now} + $1 WHERE x < {now}");
            assert!(!sql.contains("{now}"), "{sql}");
            assert_eq!(sql.matches(backend.now_sql()).count(), 2, "{sql}");
        }
    }

    #[test]
    fn the_next_step_after_a_done_mark_takes_the_parameters_after_its_own() {
        assert!(sqlite::next_event(1).contains("VALUES ($1, $2, {now} + $3)"));
        // No turns: the done mark's are $1-$3.
        let sql = sqlite::finish_then_next("UPDATE x", 0);
        assert!(
            sql.starts_with(
                "BEGIN IMMEDIATE; UPDATE x; SELECT CAST(1 AS BIGINT) AS changed WHERE changes() = 1;; \
                 COMMIT; BEGIN IMMEDIATE; INSERT INTO room_leases"
            ),
            "{sql}"
        );
        assert!(sql.contains("VALUES ($4, $5, {now} + $6)"), "{sql}");
        assert!(!sql.contains("$7"), "{sql}");
        // Two turns: $4-$9 are the conversation, the kept count and the turns.
        let sql = sqlite::finish_then_next("UPDATE x", 2);
        assert!(
            sql.contains("SELECT $4, $2, $8, $9 WHERE changes() = 1"),
            "{sql}"
        );
        assert!(sql.contains("VALUES ($10, $11, {now} + $12)"), "{sql}");
        assert!(sql.contains("room_id = $10 AND owner = $11"), "{sql}");
        assert!(!sql.contains("$13"), "{sql}");
        // The next step comes after the commit, never inside the done mark's transaction,
        // and is a transaction of its own.
        assert!(sql.find("COMMIT").unwrap() < sql.find("INSERT INTO room_leases").unwrap());
        assert!(sql.ends_with("; COMMIT"), "{sql}");
        assert_eq!(sql.matches("BEGIN IMMEDIATE").count(), 2, "{sql}");
    }

    #[test]
    fn the_multi_statement_steps_commit_once() {
        for sql in [sqlite::next_event(1), sqlite::confirm_and_save("UPDATE x")] {
            assert!(sql.starts_with("BEGIN IMMEDIATE; "), "{sql}");
            assert!(sql.ends_with("; COMMIT"), "{sql}");
            assert_eq!(sql.matches("COMMIT").count(), 1, "{sql}");
        }
    }

    #[test]
    fn the_inline_done_mark_binds_each_turn_and_commits() {
        let sql = sqlite::done_with_turns("UPDATE x", 2);
        assert!(sql.starts_with("BEGIN IMMEDIATE; UPDATE x;"), "{sql}");
        assert!(
            sql.contains("SELECT $4, $2, $6, $7 WHERE changes() = 1"),
            "{sql}"
        );
        assert!(
            sql.contains("SELECT $4, $2, $8, $9 WHERE changes() = 1"),
            "{sql}"
        );
        assert!(sql.ends_with("; COMMIT"), "{sql}");
        assert_eq!(
            sqlite::done_with_turns("UPDATE x", 0),
            "BEGIN IMMEDIATE; UPDATE x; SELECT CAST(1 AS BIGINT) AS changed WHERE changes() = 1;; COMMIT"
        );
        // The pruning keeps the newest $5 turns of conversation $4.
        assert!(
            sql.contains(
                "DELETE FROM turns WHERE conversation = $4 AND id <= (SELECT id FROM turns \
                 WHERE conversation = $4 ORDER BY id DESC LIMIT 1 OFFSET $5)"
            ),
            "{sql}"
        );
    }
}
