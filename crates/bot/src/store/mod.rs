//! The store: the durable inbox, room leases, approved users, per-space settings and
//! conversation turns, on SQLite (default) or PostgreSQL.
//!
//! One code path serves both backends: runtime queries with `$n` placeholders and SQL both
//! dialects accept (`ON CONFLICT`), run by `sql` (PostgreSQL through sqlx's `AnyPool`,
//! SQLite through rusqlite on the calling thread). Where they
//! cannot be the same (connection settings, the clock in SQL, steps of several statements
//! in one round trip, one process or many, the migrations), the difference is in
//! `dialect.rs`; how a statement runs on each, in `sql.rs` (and the webhook insert, which
//! inserts a group per statement on PostgreSQL and per event on SQLite, in `ingest.rs`).
//!
//! Several replicas may share one PostgreSQL database. Everything they must agree on goes
//! through it: the inbox (deduplication), room leases (timed with the database's clock, so
//! clock skew between replicas cannot make two of them own a room) and the leadership for
//! the webhook registration (a session-level advisory lock, see [`Store::try_lead`]).
//!
//! Layout: this file opens the store and holds what every part shares (the types, where
//! connections come from); `sql` (queries, rows, connections and transactions on either
//! backend); `dialect` (every SQLite/PostgreSQL difference); `ingest` (group-committed inserts of
//! incoming events), `inbox` (the next event of a room, attempts, saved answers, the done
//! mark), `leases` (room leases), `leader` (webhook leadership), `feedback` (answers with
//! feedback buttons and the votes on them), `users`, `spaces` (personality per space),
//! `memory` (conversation turns), `usage` (tokens per day, person, space and model;
//! message counts for limits), `websocket_cursor`,
//! `checkpoints` (SQLite WAL) and `owner_lock` (one `serve` per SQLite file).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row as _};
use tokio::sync::{mpsc, oneshot};

use crate::domain::{ConversationKey, Email, Role, Turn};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Unsupported(&'static str),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("the database did not answer within {0:?}")]
    Timeout(Duration),
    #[error("cannot record the event: {0}")]
    Ingest(String),
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How to open the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
    /// PostgreSQL only: work inside this schema (created if missing). Tests give each
    /// test its own schema so they can run in parallel on one database.
    pub pg_schema: Option<String>,
}

/// What an inbox event is (DESIGN §10.3): each kind has its own id space (message ids,
/// attachment action ids, membership ids), all deduplicated in the one `message_id` column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `messages`/`created`: the id is a message id.
    #[default]
    Message,
    /// `attachmentActions`/`created`: a submitted card; the id is the attachment action id.
    CardAction,
    /// `memberships`/`created` for the bot itself in a group space: the id is the
    /// membership's (plus its creation time, so a bot removed and added again is greeted again).
    Membership,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Message => "message",
            EventKind::CardAction => "card_action",
            EventKind::Membership => "membership",
        }
    }

    /// Unknown values (a newer version's) read as messages, as rows from before the column.
    pub fn from_db(s: &str) -> EventKind {
        match s {
            "card_action" => EventKind::CardAction,
            "membership" => EventKind::Membership,
            _ => EventKind::Message,
        }
    }
}

/// A webhook event as it enters the inbox.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    /// The event's own id: a message id, an attachment action id, a membership key (see
    /// [`EventKind`]). Deduplication is by this id.
    pub message_id: &'a str,
    pub room_id: &'a str,
    /// What arrived, for an operator looking at the row: a webhook's `data` object (rows
    /// of earlier versions hold the whole envelope), or the websocket's own summary. The
    /// workers read only `message_id`, `room_id` and `kind`, so either shape is handled.
    pub payload: &'a str,
    pub kind: EventKind,
}

impl<'a> NewEvent<'a> {
    /// A `messages`/`created` event.
    pub fn message(message_id: &'a str, room_id: &'a str, payload: &'a str) -> Self {
        NewEvent {
            message_id,
            room_id,
            payload,
            kind: EventKind::Message,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enqueued {
    New,
    Duplicate,
}

/// An inbox event waiting to be handled.
#[derive(Clone, Debug)]
pub struct PendingEvent {
    pub seq: i64,
    /// The event's id (see [`NewEvent::message_id`]).
    pub message_id: String,
    pub kind: EventKind,
    pub room_id: String,
    pub payload: String,
    pub received_at: i64,
    pub attempts: i64,
    pub not_before: i64,
    /// The answer already computed by an earlier attempt (so a crash after the LLM answered
    /// does not ask again), and how many of its parts were already posted.
    pub reply: Option<String>,
    pub parts_sent: i64,
    /// The message a streamed answer is being written into (DESIGN §10.2), recorded right
    /// after it was posted and before its first edit, so a later attempt can finish or
    /// remove it.
    pub stream_message_id: Option<String>,
    /// Whether `not_before` has passed, by the database's clock.
    pub due: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovedUser {
    pub email: Email,
    pub added_by: Option<String>,
    pub added_at: i64,
}

/// Totals for `status` and `/metrics`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub approved_users: i64,
    pub pending_events: i64,
    pub processed_events: i64,
    pub conversations: i64,
}

/// Websocket mode's catch-up cursor (ms since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WebsocketCursor {
    /// When the socket last delivered an event (or a catch-up covered everything before).
    pub last_event_at: i64,
    /// When the bot first connected: nothing older is fetched.
    pub first_at: i64,
}

/// What to store when an event is finished.
pub struct Finish<'a> {
    pub outcome: &'a str,
    /// The user and assistant turns to append, and the conversation they belong to.
    pub turns: Option<(&'a ConversationKey, &'a [Turn])>,
    /// Keep at most this many stored messages per conversation (older ones are deleted).
    pub keep_messages: usize,
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[derive(Clone)]
pub struct Store {
    db: Db,
    /// `enqueue`'s group commit: see [`ingest_loop`].
    ingest: mpsc::Sender<IngestJob>,
    /// The loop's end of the queue until the first `enqueue` starts it (see there).
    ingest_start: Arc<std::sync::Mutex<Option<IngestLoop>>>,
    backend: Backend,
    /// The pool size (`DATABASE_MAX_CONNECTIONS`; 1 on SQLite).
    max_connections: u32,
    /// What a dedicated (non-pool) connection needs: the URL and the schema.
    url: String,
    pg_schema: Option<String>,
    /// PostgreSQL: the connection that holds (or keeps trying for) the leader lock. Outside
    /// the pool, because the pool recycles connections and the lock lives with the session.
    leader: Arc<tokio::sync::Mutex<Option<LeaderSession>>>,
    /// Pending events, for `/metrics` without a query per scrape (see [`PendingCount`]).
    pending: Arc<PendingCount>,
}

/// Where statements run.
#[derive(Clone)]
enum Db {
    /// PostgreSQL: the pool, and the connections of the webhook inserts, so a 200 never
    /// queues behind the workers' traffic (hundreds of rooms at once).
    Pg { pool: AnyPool, ingest: AnyPool },
    /// SQLite: one connection, used on the calling thread (see [`sql`]). SQLite has one
    /// writer at a time; the webhook inserts wait behind one statement at most
    /// ([`Lite::conn`]).
    Lite(Arc<Lite>),
}

impl Db {
    /// The connection for the webhook inserts.
    async fn ingest_conn(&self) -> Result<Conn> {
        match self {
            Db::Pg { ingest, .. } => Ok(Conn::Pg(Box::pin(ingest.acquire()).await?)),
            Db::Lite(lite) => lite.ingest_conn().await,
        }
    }
}

/// How many inbox events are pending, as far as this process knows: counted from the
/// database by [`Store::recount_pending`] (a background task, every few seconds), and kept
/// current in between by this process's own enqueues and finishes. Another replica's work
/// shows at the next count.
#[derive(Debug, Default)]
struct PendingCount {
    value: AtomicI64,
    /// Bumped by every local change, so a count that raced with one is not kept...
    changes: AtomicU64,
    /// ...unless the count before it raced too: under steady traffic every count may
    /// overlap an arrival, and one off by the few events of one query beats never
    /// correcting what this process cannot see (other replicas).
    raced: AtomicBool,
}

impl PendingCount {
    fn add(&self, delta: i64) {
        self.changes.fetch_add(1, Ordering::SeqCst);
        self.value.fetch_add(delta, Ordering::SeqCst);
    }
}

struct LeaderSession {
    conn: AnyConnection,
    leading: bool,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

mod checkpoints;
mod dialect;
mod feedback;
mod inbox;
mod ingest;
mod leader;
mod leases;
mod memory;
mod owner_lock;
mod spaces;
mod sql;
mod tools;
mod usage;
mod users;
mod websocket_cursor;

pub use dialect::Backend;
pub use feedback::{FeedbackAnswer, FeedbackCounts, Vote};
pub use inbox::{Finished, NextIn};
pub use owner_lock::{OwnerLock, OwnerLockError};
pub use tools::{ToolApproval, ToolCallRecord};
pub use usage::{PersonUsage, Ranked, TokensToday, Totals, UsageReader, UsageRecord, UsageRow};

use checkpoints::checkpoint_loop;
use dialect::sqlite::file_path as sqlite_path;
use dialect::{Processes, RoundTrips};
use ingest::{IngestJob, ingest_loop};
use memory::prune_turns;
use sql::{Conn, Lite, Row, query};

/// Connections reserved for recording incoming events (`Store::enqueue`).
const INGEST_CONNECTIONS: u32 = 2;
/// Most events recorded by one insert. Five parameters each: far below SQLite's limit.
const INGEST_BATCH: usize = 256;

/// What `ingest_loop` needs, kept until the first `enqueue` starts it.
type IngestLoop = (Db, mpsc::Receiver<IngestJob>);

fn pool_options(backend: Backend, schema: Option<String>, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            let schema = schema.clone();
            Box::pin(async move {
                if let Some(setup) = backend.session_setup(schema.as_deref()) {
                    conn.execute(setup).await?;
                }
                Ok(())
            })
        })
}

impl Store {
    /// Opens (creating a SQLite file and its folder on first run) and migrates the store.
    pub async fn connect(options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(&options.url);
        let url = backend.read_write_url(&options.url);
        let file = sqlite_path(&url);
        if backend == Backend::Sqlite && file.is_none() {
            return Err(StoreError::Unsupported(
                "SQLite in memory is not supported: DATABASE_URL must name a file",
            ));
        }
        if let Some(path) = file
            && let Some(dir) = Path::new(path).parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                path: dir.display().to_string(),
                source,
            })?;
        }
        if let Some(schema) = &options.pg_schema {
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await?;
            pool.execute(dialect::create_schema(schema)).await?;
            pool.close().await;
        }
        let max = backend.pool_size(options.max_connections);
        let pool = pool_options(backend, options.pg_schema.clone(), max)
            .connect(&url)
            .await?;
        migrate(backend, &pool).await?;
        let db = match (backend, file) {
            (Backend::Sqlite, Some(path)) => {
                // The migrations ran through sqlx; everything after runs on the calling
                // thread (`sql`).
                pool.close().await;
                let setup = backend.session_setup(None).map(|s| s.0).unwrap_or_default();
                let lite = Arc::new(Lite::open(path, &setup)?);
                tokio::spawn(checkpoint_loop(url.clone(), lite.clone()));
                Db::Lite(lite)
            }
            _ => {
                let ingest = pool_options(backend, options.pg_schema.clone(), INGEST_CONNECTIONS)
                    .connect(&url)
                    .await?;
                Db::Pg { pool, ingest }
            }
        };
        let (ingest, jobs) = mpsc::channel(4 * INGEST_BATCH);
        let ingest_start = Arc::new(std::sync::Mutex::new(Some((db.clone(), jobs))));
        let store = Store {
            db,
            ingest,
            ingest_start,
            backend,
            max_connections: max,
            url,
            pg_schema: options.pg_schema.clone(),
            leader: Arc::new(tokio::sync::Mutex::new(None)),
            pending: Arc::new(PendingCount::default()),
        };
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool size (`DATABASE_MAX_CONNECTIONS`; 1 on SQLite).
    pub fn max_connections(&self) -> u32 {
        self.max_connections
    }

    /// Closes the pool and the leader session; a leader's lock goes with it, so a follower
    /// takes over at its next try.
    pub async fn close(&self) {
        if let Some(session) = self.leader.lock().await.take() {
            let _ = session.conn.close().await;
        }
        match &self.db {
            Db::Pg { pool, ingest } => {
                ingest.close().await;
                pool.close().await;
            }
            Db::Lite(lite) => lite.close().await,
        }
    }

    /// `sql` with `{now}` replaced by the database's clock (see `dialect`).
    fn timed(&self, sql: &str) -> String {
        self.backend.timed(sql)
    }

    /// A real round trip, for `/health`: a write lock on SQLite is not needed to answer.
    pub async fn ping(&self) -> Result<()> {
        query("SELECT 1").execute(&mut self.conn().await?).await?;
        Ok(())
    }

    /// Whether the migrations are all applied and a write succeeds (for `doctor`).
    pub async fn check_writable(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        query("INSERT INTO room_leases (room_id, owner, expires_at) VALUES ($1, $2, $3)")
            .bind("doctor-write-check")
            .bind("doctor")
            .bind(0i64)
            .execute(&mut tx)
            .await?;
        tx.rollback().await?;
        Ok(())
    }

    /// A connection for anything but `enqueue`; on SQLite after waiting for its turn.
    async fn conn(&self) -> Result<Conn> {
        match &self.db {
            // Boxed: the pool's acquire future is ~1.3 KB, and every store call's future
            // (so every worker waiting on one) would carry it inline.
            Db::Pg { pool, .. } => Ok(Conn::Pg(Box::pin(pool.acquire()).await?)),
            Db::Lite(lite) => lite.conn().await,
        }
    }

    pub async fn counts(&self) -> Result<Counts> {
        let row = query(
            "SELECT \
               (SELECT COUNT(*) FROM approved_users) AS users, \
               (SELECT COUNT(*) FROM inbox WHERE state = 'pending') AS pending, \
               (SELECT COUNT(*) FROM inbox WHERE state = 'done') AS processed, \
               (SELECT COUNT(DISTINCT conversation) FROM turns) AS conversations",
        )
        .fetch_one(&mut self.conn().await?)
        .await?;
        Ok(Counts {
            approved_users: row.try_get("users")?,
            pending_events: row.try_get("pending")?,
            processed_events: row.try_get("processed")?,
            conversations: row.try_get("conversations")?,
        })
    }
}

async fn migrate(backend: Backend, pool: &AnyPool) -> Result<()> {
    let mut migrator = backend.migrator();
    // Migrations only add; a previous binary started on a newer database (a rollback)
    // must not refuse to run because it does not know the newest migration.
    migrator.set_ignore_missing(true);
    migrator.run(pool).await?;
    Ok(())
}

async fn within<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| StoreError::Timeout(limit))?
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sqlite(dir: &tempfile::TempDir) -> Store {
        Store::connect(&StoreOptions {
            url: format!("sqlite://{}/bot.db", dir.path().display()),
            max_connections: 5,
            pg_schema: None,
        })
        .await
        .unwrap()
    }

    async fn lease_owners(store: &Store) -> Vec<String> {
        query("SELECT owner FROM room_leases ORDER BY owner")
            .fetch_all(&mut store.conn().await.unwrap())
            .await
            .unwrap()
            .iter()
            .map(|r| r.try_get("owner").unwrap())
            .collect()
    }

    #[tokio::test]
    async fn the_one_sqlite_connection_is_lent_again_and_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir).await;
        assert!(matches!(store.db, Db::Lite(_)));
        for _ in 0..3 {
            store.ping().await.unwrap();
        }
        store.close().await;
        assert!(matches!(
            store.ping().await,
            Err(StoreError::Database(sqlx::Error::PoolClosed))
        ));
    }

    /// Every statement the SQLite connection started during the test below.
    static STARTED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

    /// On the workers' threads, a temporary table SQLite builds and frees per statement
    /// (for `RETURNING`, `NOT IN (… LIMIT n)`, a compound `SELECT`) fragments the malloc
    /// arenas between the buffers of the conversations waiting on the LLM: +11 MiB with
    /// 2,000 waiting (docs/performance.md, Memory). So a message's whole path, from the
    /// webhook's insert to the done mark with its turns, pruning and next step, must not
    /// build one: each statement it ran is explained, and none opens an ephemeral table.
    #[tokio::test]
    async fn the_message_path_builds_no_temporary_table_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir).await;
        let Db::Lite(lite) = &store.db else {
            panic!("not SQLite")
        };
        lite.trace(|sql| STARTED.lock().unwrap().push(sql.to_owned()))
            .await
            .unwrap();
        let ttl = Duration::from_secs(30);
        let conversation = ConversationKey::direct("R");
        for id in ["M1", "M2"] {
            let new = store.enqueue(&NewEvent::message(id, "R", "{}")).await;
            assert_eq!(new.unwrap(), Enqueued::New);
        }
        let event = store.next_event("R", "me", ttl).await.unwrap().unwrap();
        store.chat_context("R", &conversation, 10).await.unwrap();
        assert!(
            store
                .confirm_post("R", "me", ttl, event.seq, 0, Some("answer"))
                .await
                .unwrap()
        );
        store
            .record_usage(&UsageRecord {
                day: "2026-12-07",
                person: "p@example.com",
                space: "R",
                provider: "ollama",
                model: "m",
                prompt_tokens: 1,
                completion_tokens: 1,
                cost_nanos: 0,
            })
            .await
            .unwrap();
        let turns = [
            Turn {
                role: Role::User,
                content: "question".to_owned(),
            },
            Turn {
                role: Role::Assistant,
                content: "answer".to_owned(),
            },
        ];
        let finished = store
            .finish_then_next(
                event.seq,
                Finish {
                    outcome: "answered",
                    turns: Some((&conversation, &turns)),
                    keep_messages: 1,
                },
                Some(NextIn {
                    room_id: "R",
                    owner: "me",
                    ttl,
                }),
            )
            .await
            .unwrap();
        assert!(finished.done);
        assert!(matches!(finished.next, Some(Some(_))), "M2 is next");

        let started = std::mem::take(&mut *STARTED.lock().unwrap());
        assert!(started.len() >= 10, "{started:?}");
        let side = rusqlite::Connection::open(dir.path().join("bot.db")).unwrap();
        for sql in &started {
            let mut explain = side.prepare(&format!("EXPLAIN {sql}")).unwrap();
            // Parameters left unbound (NULL): the plan does not depend on them.
            let mut rows = explain.raw_query();
            let mut opcodes = Vec::<String>::new();
            while let Some(row) = rows.next().unwrap() {
                opcodes.push(row.get(1).unwrap());
            }
            assert!(
                !opcodes.iter().any(|op| op == "OpenEphemeral"),
                "builds a temporary table: {sql}"
            );
        }
    }

    #[tokio::test]
    async fn sqlite_in_memory_is_refused_with_a_clear_error() {
        let err = Store::connect(&StoreOptions {
            url: "sqlite::memory:".to_owned(),
            max_connections: 1,
            pg_schema: None,
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("must name a file"), "{err}");
    }

    #[tokio::test]
    async fn a_transaction_dropped_before_its_end_is_rolled_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir).await;
        {
            let mut conn = store.conn().await.unwrap();
            let mut tx = conn.begin().await.unwrap();
            query("INSERT INTO room_leases (room_id, owner, expires_at) VALUES ('R', 'half', 0)")
                .execute(&mut tx)
                .await
                .unwrap();
            // Dropped here, as when its task is cancelled before the commit.
        }
        // The next borrower is not inside that transaction: it can begin its own, and the
        // half-done insert is gone.
        let mut conn = store.conn().await.unwrap();
        conn.begin().await.unwrap().commit().await.unwrap();
        drop(conn);
        assert!(lease_owners(&store).await.is_empty());
    }

    #[tokio::test]
    async fn a_failed_script_leaves_no_transaction_and_nothing_written() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir).await;
        let failed = query(
            "BEGIN IMMEDIATE; \
             INSERT INTO room_leases (room_id, owner, expires_at) VALUES ($1, $2, 0); \
             INSERT INTO no_such_table VALUES ($1); COMMIT",
        )
        .bind("R")
        .bind("half")
        .script(&mut store.conn().await.unwrap())
        .await;
        assert!(failed.is_err());
        let rows = query(
            "BEGIN IMMEDIATE; \
             INSERT INTO room_leases (room_id, owner, expires_at) VALUES ($1, $2, 0) RETURNING owner; \
             COMMIT",
        )
        .bind("R")
        .bind("whole")
        .script(&mut store.conn().await.unwrap())
        .await
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(lease_owners(&store).await, ["whole"]);
    }

    #[tokio::test]
    async fn sqlite_parameters_bind_by_their_number_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(&dir).await;
        let row =
            query("SELECT $2 AS b, $1 AS a, $2 || $1 AS ba, CAST($3 AS BIGINT) AS n, $4 AS absent")
                .bind("one")
                .bind("two")
                .bind(3i64)
                .bind(None::<&str>)
                .fetch_one(&mut store.conn().await.unwrap())
                .await
                .unwrap();
        assert_eq!(row.try_get::<String>("a").unwrap(), "one");
        assert_eq!(row.try_get::<String>("b").unwrap(), "two");
        assert_eq!(row.try_get::<String>("ba").unwrap(), "twoone");
        assert_eq!(row.try_get::<i64>("n").unwrap(), 3);
        assert_eq!(row.try_get::<Option<String>>("absent").unwrap(), None);
        // A type that does not match is an error, not a panic.
        assert!(row.try_get::<i64>("a").is_err());
        assert!(row.try_get::<String>("missing").is_err());
        // Too few arguments is an error too.
        assert!(
            query("SELECT $2 AS b")
                .bind("one")
                .fetch_one(&mut store.conn().await.unwrap())
                .await
                .is_err()
        );
    }
}
