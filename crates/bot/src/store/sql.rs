//! Statements on either backend: what the store's queries are written against.
//!
//! A [`Query`] is SQL text with `$n` parameters and its arguments. It runs on a
//! [`Conn`] (a connection lent to one store call) or inside a [`Tx`] begun on one:
//!
//! - **PostgreSQL** through sqlx's `Any` driver and its pool;
//! - **SQLite** through rusqlite, on the calling thread: the store's one connection is
//!   behind an async mutex, and a statement is a function call made while holding it.
//!   sqlx's SQLite driver runs each connection on a thread of its own, and every
//!   statement was a hand-off to that thread and back: two context switches and more CPU
//!   than the statement itself (docs/performance.md). Nothing awaits while a SQLite
//!   statement runs, so a cancelled store call never leaves one half-done; a transaction
//!   dropped before its end is rolled back on the spot ([`Tx`]).
//!
//! Rows come back as [`Row`]s, read by column name with [`Row::try_get`] as with sqlx.

use std::borrow::Cow;
use std::sync::Arc;

use rusqlite::types::Value;
use sqlx::any::AnyRow;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AssertSqlSafe, Connection as _, Row as _};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Result, StoreError};

/// An argument of a [`Query`].
#[derive(Clone, Copy, Debug)]
pub(super) enum Arg<'q> {
    Int(i64),
    /// `None` is SQL `NULL` (typed as text for PostgreSQL).
    Text(Option<&'q str>),
}

pub(super) trait IntoArg<'q> {
    fn into_arg(self) -> Arg<'q>;
}

impl<'q> IntoArg<'q> for i64 {
    fn into_arg(self) -> Arg<'q> {
        Arg::Int(self)
    }
}

impl<'q> IntoArg<'q> for &'q str {
    fn into_arg(self) -> Arg<'q> {
        Arg::Text(Some(self))
    }
}

impl<'q> IntoArg<'q> for &'q String {
    fn into_arg(self) -> Arg<'q> {
        Arg::Text(Some(self.as_str()))
    }
}

impl<'q> IntoArg<'q> for Option<&'q str> {
    fn into_arg(self) -> Arg<'q> {
        Arg::Text(self)
    }
}

/// SQL text with `$n` parameters (`$1` is the first argument bound) and its arguments.
#[derive(Debug)]
pub(super) struct Query<'q> {
    sql: Cow<'q, str>,
    args: Vec<Arg<'q>>,
}

pub(super) fn query<'q>(sql: impl Into<Cow<'q, str>>) -> Query<'q> {
    Query {
        sql: sql.into(),
        args: Vec::new(),
    }
}

impl<'q> Query<'q> {
    pub(super) fn bind(mut self, arg: impl IntoArg<'q>) -> Self {
        self.args.push(arg.into_arg());
        self
    }

    /// Runs the statement; the number of rows it inserted, changed or deleted.
    pub(super) async fn execute(self, on: &mut impl Target) -> Result<u64> {
        match on.target() {
            On::Lite(conn) => Ok(lite::run(conn, &self.sql, &self.args, None)?),
            On::Pg(conn) => Ok(self.sqlx().execute(conn).await?.rows_affected()),
        }
    }

    pub(super) async fn fetch_all(self, on: &mut impl Target) -> Result<Vec<Row>> {
        match on.target() {
            On::Lite(conn) => {
                let mut rows = Vec::new();
                lite::run(conn, &self.sql, &self.args, Some(&mut rows))?;
                Ok(rows)
            }
            On::Pg(conn) => Ok(self
                .sqlx()
                .fetch_all(conn)
                .await?
                .into_iter()
                .map(Row::Any)
                .collect()),
        }
    }

    /// The first row, if any (the statement runs to its end either way).
    pub(super) async fn fetch_optional(self, on: &mut impl Target) -> Result<Option<Row>> {
        match on.target() {
            On::Lite(conn) => {
                let mut rows = Vec::new();
                lite::run(conn, &self.sql, &self.args, Some(&mut rows))?;
                Ok(rows.into_iter().next())
            }
            On::Pg(conn) => Ok(self.sqlx().fetch_optional(conn).await?.map(Row::Any)),
        }
    }

    pub(super) async fn fetch_one(self, on: &mut impl Target) -> Result<Row> {
        self.fetch_optional(on)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// SQLite only: SQL text of several statements separated by `;` (transactions written
    /// inline, `BEGIN IMMEDIATE; …; COMMIT`), each binding the arguments its `$n` name.
    /// Every row any of them returned, in order. A failed statement's transaction is
    /// rolled back before the error is returned.
    pub(super) async fn script(self, on: &mut impl Target) -> Result<Vec<Row>> {
        match on.target() {
            On::Lite(conn) => Ok(lite::script(conn, &self.sql, &self.args)?),
            On::Pg(_) => Err(StoreError::Unsupported(
                "a script of several statements is for SQLite only",
            )),
        }
    }

    fn sqlx(&self) -> sqlx::query::Query<'_, Any, sqlx::any::AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(&*self.sql));
        for arg in &self.args {
            query = match *arg {
                Arg::Int(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
            };
        }
        query
    }
}

/// A row of a result, by backend.
pub(super) enum Row {
    Any(AnyRow),
    Lite(LiteRow),
}

/// A SQLite row: its values, and the column names shared by the rows of one statement.
pub(super) struct LiteRow {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    pub(super) fn try_get<T: Get>(&self, column: &str) -> Result<T> {
        match self {
            Row::Any(row) => T::from_any(row, column),
            Row::Lite(row) => {
                let i = row
                    .columns
                    .iter()
                    .position(|c| c == column)
                    .ok_or_else(|| rusqlite::Error::InvalidColumnName(column.to_owned()))?;
                T::from_lite(&row.values[i])
                    .map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
            }
        }
    }

    /// How many columns the row has.
    pub(super) fn len(&self) -> usize {
        match self {
            Row::Any(row) => row.len(),
            Row::Lite(row) => row.values.len(),
        }
    }
}

/// A type a column is read as.
pub(super) trait Get: Sized {
    fn from_any(row: &AnyRow, column: &str) -> Result<Self>;
    fn from_lite(value: &Value) -> std::result::Result<Self, String>;
}

fn found(value: &Value) -> &'static str {
    match value {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    }
}

impl Get for i64 {
    fn from_any(row: &AnyRow, column: &str) -> Result<Self> {
        Ok(row.try_get(column)?)
    }
    fn from_lite(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Integer(v) => Ok(*v),
            other => Err(format!("expected an integer, found {}", found(other))),
        }
    }
}

impl Get for String {
    fn from_any(row: &AnyRow, column: &str) -> Result<Self> {
        Ok(row.try_get(column)?)
    }
    fn from_lite(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Text(v) => Ok(v.clone()),
            other => Err(format!("expected text, found {}", found(other))),
        }
    }
}

impl<T: Get> Get for Option<T>
where
    for<'r> Option<T>: sqlx::Decode<'r, Any> + sqlx::Type<Any>,
{
    fn from_any(row: &AnyRow, column: &str) -> Result<Self> {
        Ok(row.try_get(column)?)
    }
    fn from_lite(value: &Value) -> std::result::Result<Self, String> {
        match value {
            Value::Null => Ok(None),
            other => T::from_lite(other).map(Some),
        }
    }
}

/// Where a statement runs.
pub(super) enum On<'c> {
    Pg(&'c mut AnyConnection),
    Lite(&'c mut rusqlite::Connection),
}

/// A connection or a transaction a [`Query`] can run on.
pub(super) trait Target {
    fn target(&mut self) -> On<'_>;
}

/// A connection lent to one store call: a pooled PostgreSQL connection, or the one
/// SQLite connection held (with its turn, see [`Lite::turns`]).
pub(super) enum Conn {
    Pg(PoolConnection<Any>),
    Lite {
        conn: LiteGuard,
        _turn: Option<OwnedSemaphorePermit>,
    },
}

type LiteGuard =
    tokio::sync::OwnedMappedMutexGuard<Option<rusqlite::Connection>, rusqlite::Connection>;

impl Target for Conn {
    fn target(&mut self) -> On<'_> {
        match self {
            Conn::Pg(conn) => On::Pg(conn),
            Conn::Lite { conn, .. } => On::Lite(conn),
        }
    }
}

impl Conn {
    /// Begins a transaction (on SQLite `BEGIN IMMEDIATE`: it writes, so it takes the
    /// write lock now rather than fail to upgrade a read lock later).
    pub(super) async fn begin(&mut self) -> Result<Tx<'_>> {
        match self {
            Conn::Pg(conn) => Ok(Tx::Pg(conn.begin().await?)),
            Conn::Lite { conn, .. } => {
                lite::run(conn, "BEGIN IMMEDIATE", &[], None)?;
                Ok(Tx::Lite(LiteTx { conn, open: true }))
            }
        }
    }
}

/// A transaction; dropped before [`Tx::commit`] it is rolled back.
pub(super) enum Tx<'c> {
    Pg(sqlx::Transaction<'c, Any>),
    Lite(LiteTx<'c>),
}

pub(super) struct LiteTx<'c> {
    conn: &'c mut rusqlite::Connection,
    open: bool,
}

impl LiteTx<'_> {
    fn end(&mut self, sql: &str) -> Result<()> {
        self.open = false;
        lite::run(self.conn, sql, &[], None)?;
        Ok(())
    }
}

impl Drop for LiteTx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = lite::run(self.conn, "ROLLBACK", &[], None);
        }
    }
}

impl Target for Tx<'_> {
    fn target(&mut self) -> On<'_> {
        match self {
            Tx::Pg(tx) => On::Pg(tx),
            Tx::Lite(tx) => On::Lite(tx.conn),
        }
    }
}

impl Tx<'_> {
    pub(super) async fn commit(self) -> Result<()> {
        match self {
            Tx::Pg(tx) => Ok(tx.commit().await?),
            Tx::Lite(mut tx) => tx.end("COMMIT"),
        }
    }

    pub(super) async fn rollback(self) -> Result<()> {
        match self {
            Tx::Pg(tx) => Ok(tx.rollback().await?),
            Tx::Lite(mut tx) => tx.end("ROLLBACK"),
        }
    }
}

/// The store's one SQLite connection.
pub(super) struct Lite {
    /// `None` once the store is closed.
    conn: Arc<tokio::sync::Mutex<Option<rusqlite::Connection>>>,
    /// Everything but the webhook inserts takes turns here before waiting for the
    /// connection, so an incoming event's insert waits behind one statement at most, not
    /// behind every busy room (the mutex is fair: first come, first served). Closed with
    /// the store.
    turns: Arc<Semaphore>,
}

/// Statements kept prepared. The store has fewer distinct statements than this, but the
/// done mark's text varies with the number of turns it stores.
const STATEMENT_CACHE: usize = 128;

impl Lite {
    /// Opens the SQLite file at `path` (migrated already) with the store's settings.
    pub(super) fn open(path: &str, setup: &str) -> Result<Lite> {
        let conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(setup)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Lite {
            conn: Arc::new(tokio::sync::Mutex::new(Some(conn))),
            turns: Arc::new(Semaphore::new(1)),
        })
    }

    /// The connection for anything but the webhook inserts, after waiting for its turn.
    pub(super) async fn conn(&self) -> Result<Conn> {
        let turn = self
            .turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| sqlx::Error::PoolClosed)?;
        Ok(Conn::Lite {
            conn: self.lock().await?,
            _turn: Some(turn),
        })
    }

    /// The connection for the webhook inserts: no turn to wait for.
    pub(super) async fn ingest_conn(&self) -> Result<Conn> {
        Ok(Conn::Lite {
            conn: self.lock().await?,
            _turn: None,
        })
    }

    async fn lock(&self) -> Result<LiteGuard> {
        tokio::sync::OwnedMutexGuard::try_map(self.conn.clone().lock_owned().await, Option::as_mut)
            .map_err(|_| StoreError::Database(sqlx::Error::PoolClosed))
    }

    pub(super) async fn close(&self) {
        self.turns.close();
        // Dropping the connection closes it (and checkpoints the WAL if it is the last).
        drop(self.conn.lock().await.take());
    }

    pub(super) fn is_closed(&self) -> bool {
        self.turns.is_closed()
    }

    /// Calls `each` with the text of every statement the connection starts.
    #[cfg(test)]
    pub(super) async fn trace(&self, each: fn(&str)) -> Result<()> {
        use rusqlite::trace::{TraceEvent, TraceEventCodes};
        // A plain function cannot capture `each`: it is kept for the callback.
        static EACH: std::sync::OnceLock<fn(&str)> = std::sync::OnceLock::new();
        fn callback(event: TraceEvent<'_>) {
            if let (TraceEvent::Stmt(_, sql), Some(each)) = (event, EACH.get()) {
                each(sql);
            }
        }
        let _ = EACH.set(each);
        self.lock()
            .await?
            .trace_v2(TraceEventCodes::SQLITE_TRACE_STMT, Some(callback));
        Ok(())
    }
}

/// SQLite's side: prepared (and cached) statements run on the calling thread.
mod lite {
    use std::sync::Arc;

    use rusqlite::types::Value;
    use rusqlite::{CachedStatement, Connection};

    use super::{Arg, LiteRow, Row};

    /// Binds each parameter of `stmt` by its `$n` name (plain `?`s in order).
    fn bind(stmt: &mut CachedStatement<'_>, args: &[Arg<'_>]) -> rusqlite::Result<()> {
        let count = stmt.parameter_count();
        for i in 1..=count {
            let n = match stmt.parameter_name(i) {
                Some(name) => name
                    .strip_prefix('$')
                    .and_then(|n| n.parse::<usize>().ok())
                    .ok_or_else(|| rusqlite::Error::InvalidParameterName(name.to_owned()))?,
                None => i,
            };
            let arg = n
                .checked_sub(1)
                .and_then(|n| args.get(n))
                .ok_or(rusqlite::Error::InvalidParameterCount(n, args.len()))?;
            match *arg {
                Arg::Int(v) => stmt.raw_bind_parameter(i, v)?,
                Arg::Text(v) => stmt.raw_bind_parameter(i, v)?,
            }
        }
        Ok(())
    }

    /// Runs one statement to its end, keeping its rows in `out` if given; the rows it
    /// inserted, changed or deleted.
    pub(super) fn run(
        conn: &Connection,
        sql: &str,
        args: &[Arg<'_>],
        out: Option<&mut Vec<Row>>,
    ) -> rusqlite::Result<u64> {
        let mut stmt = conn.prepare_cached(sql)?;
        bind(&mut stmt, args)?;
        let width = stmt.column_count();
        let columns: Option<Arc<[String]>> = match (&out, width) {
            (Some(_), 1..) => Some(stmt.column_names().into_iter().map(str::to_owned).collect()),
            _ => None,
        };
        let mut rows = stmt.raw_query();
        let mut out = out;
        while let Some(row) = rows.next()? {
            if let (Some(out), Some(columns)) = (out.as_deref_mut(), &columns) {
                let values = (0..width)
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                out.push(Row::Lite(LiteRow {
                    columns: columns.clone(),
                    values,
                }));
            }
        }
        drop(rows);
        Ok(conn.changes())
    }

    /// Runs statements separated by `;` in order; every row they returned. On an error
    /// inside a transaction the transaction is rolled back.
    pub(super) fn script(
        conn: &Connection,
        sql: &str,
        args: &[Arg<'_>],
    ) -> rusqlite::Result<Vec<Row>> {
        let mut rows = Vec::new();
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            if let Err(e) = run(conn, statement, args, Some(&mut rows)) {
                if !conn.is_autocommit() {
                    let _ = run(conn, "ROLLBACK", &[], None);
                }
                return Err(e);
            }
        }
        Ok(rows)
    }
}
