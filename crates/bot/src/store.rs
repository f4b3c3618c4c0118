//! The store: the durable inbox, room leases, approved users, per-space settings and
//! conversation turns, on SQLite (default) or PostgreSQL.
//!
//! One code path serves both backends: runtime queries through sqlx's `AnyPool` with `$n`
//! placeholders and SQL both dialects accept (`ON CONFLICT`, `RETURNING`). Only the
//! migrations differ (`migrations/sqlite`, `migrations/postgres`), and only in the types of
//! auto-increment keys.
//!
//! Several replicas may share one PostgreSQL database. Everything they must agree on goes
//! through it: the inbox (deduplication), room leases (timed with the database's clock, so
//! clock skew between replicas cannot make two of them own a room) and the leadership for
//! the webhook registration (a session-level advisory lock, see [`Store::try_lead`]).

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::collections::HashSet;
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Connection, Executor, Row};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::domain::{ConversationKey, Email, Role, Turn};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// How to open the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
    /// PostgreSQL only: work inside this schema (created if missing). Tests give each
    /// test its own schema so they can run in parallel on one database.
    pub pg_schema: Option<String>,
}

/// A webhook event as it enters the inbox.
#[derive(Clone, Debug)]
pub struct NewEvent<'a> {
    pub message_id: &'a str,
    pub room_id: &'a str,
    /// What arrived, for an operator looking at the row: a webhook's `data` object (rows
    /// of earlier versions hold the whole envelope), or the websocket's own summary. The
    /// workers read only `message_id` and `room_id`, so either shape is handled.
    pub payload: &'a str,
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
    pub message_id: String,
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

/// The first key of the two-key advisory lock that elects the webhook leader (`webx`); the
/// second is a hash of the schema, so schemas sharing a database elect separately.
const LEADER_LOCK_KEY: i32 = 0x7765_6278;

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    /// SQLite: everything but `enqueue` takes turns here before asking the pool for its one
    /// connection, so at most one such statement is ever queued in the pool and an incoming
    /// event's insert waits behind that one only, not behind every busy room.
    turns: Option<Arc<Semaphore>>,
    /// `enqueue`'s group commit: see [`ingest_loop`].
    ingest: mpsc::Sender<IngestJob>,
    /// The loop's end of the queue until the first `enqueue` starts it (see there).
    ingest_start: Arc<std::sync::Mutex<Option<IngestLoop>>>,
    /// The pool `ingest_loop` inserts through (the main pool on SQLite).
    ingest_pool: AnyPool,
    backend: Backend,
    /// What a dedicated (non-pool) connection needs: the URL and the schema.
    url: String,
    pg_schema: Option<String>,
    /// PostgreSQL: the connection that holds (or keeps trying for) the leader lock. Outside
    /// the pool, because the pool recycles connections and the lock lives with the session.
    leader: Arc<tokio::sync::Mutex<Option<LeaderSession>>>,
    /// Pending events, for `/metrics` without a query per scrape (see [`PendingCount`]).
    pending: Arc<PendingCount>,
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

/// `sqlite://data/bot.db` → `data/bot.db`; `None` for in-memory databases.
fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// SQLite: the advisory lock on `<database file>.lock` that makes one `serve` process the
/// database's owner, held as long as this value lives (the OS drops it when the process
/// dies, `kill -9` included). Other subcommands do not take it.
#[derive(Debug)]
pub struct OwnerLock {
    _file: std::fs::File,
    path: std::path::PathBuf,
}

impl OwnerLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Takes the lock of the SQLite database at `url`; `Ok(None)` for PostgreSQL and
    /// in-memory SQLite, where there is no file to own.
    pub fn acquire(url: &str) -> std::result::Result<Option<OwnerLock>, OwnerLockError> {
        if !url.starts_with("sqlite:") {
            return Ok(None);
        }
        let Some(db) = sqlite_path(url) else {
            return Ok(None);
        };
        let path = std::path::PathBuf::from(format!("{db}.lock"));
        let io = |source| OwnerLockError::Io {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(OwnerLock { _file: file, path })),
            Err(std::fs::TryLockError::WouldBlock) => Err(OwnerLockError::InUse(path)),
            Err(std::fs::TryLockError::Error(source)) => Err(io(source)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OwnerLockError {
    #[error(
        "the database is in use by another process (another `serve` holds the lock {0}); \
         stop it first, or give this one another DATABASE_URL"
    )]
    InUse(std::path::PathBuf),
    #[error("cannot lock the database ({path}): {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// Connections reserved for recording incoming events (`Store::enqueue`).
const INGEST_CONNECTIONS: u32 = 2;
/// Most events recorded by one insert. Four parameters each: far below SQLite's limit.
const INGEST_BATCH: usize = 256;

/// A connection of the pool, and on SQLite the turn that goes with it.
struct Held {
    conn: PoolConnection<Any>,
    _turn: Option<OwnedSemaphorePermit>,
}

impl Deref for Held {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for Held {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

/// How often the SQLite WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// SQLite: copies the WAL back into the database file from a connection of its own, so the
/// fsyncs of a checkpoint never hold up the one connection that records webhooks and
/// serves the workers (a checkpoint there stalled acknowledgements for tens of
/// milliseconds on a slow disk). A `PASSIVE` checkpoint takes no lock that writers wait
/// for. Ends when the store is closed.
async fn checkpoint_loop(url: String, pool: AnyPool) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<AnyConnection> = None;
    let mut failing = false;
    while !pool.is_closed() {
        tick.tick().await;
        let result = match conn.as_mut() {
            Some(conn) => conn
                .execute("PRAGMA wal_checkpoint(PASSIVE)")
                .await
                .map(|_| ()),
            None => AnyConnection::connect(&url).await.map(|c| conn = Some(c)),
        };
        match result {
            Ok(()) => failing = false,
            Err(e) => {
                // Said once per streak; the main connection checkpoints by itself meanwhile.
                if !failing {
                    tracing::warn!(error = %e, "cannot checkpoint the SQLite WAL; retrying");
                }
                failing = true;
                conn = None;
            }
        }
    }
    if let Some(conn) = conn {
        let _ = conn.close().await;
    }
}

/// What `ingest_loop` needs, kept until the first `enqueue` starts it.
type IngestLoop = (AnyPool, mpsc::Receiver<IngestJob>);

/// A connection running a transaction written inline in one multi-statement round trip.
/// Dropped before that ended (the task was cancelled mid-way), the transaction may still
/// be open: the connection is then closed, which rolls it back, instead of going back to
/// the pool where later statements would run inside it.
struct InlineTx {
    held: Held,
    ended: bool,
}

impl Drop for InlineTx {
    fn drop(&mut self) {
        if !self.ended {
            self.held.conn.close_on_drop();
        }
    }
}

/// An event waiting for the next group commit, and who waits for the outcome.
struct IngestJob {
    message_id: String,
    room_id: String,
    payload: String,
    received_at: i64,
    done: oneshot::Sender<std::result::Result<Enqueued, String>>,
}

/// Records incoming events in groups: every event that arrived while the previous insert
/// ran goes into the next one, a single statement (so a single commit) for all of them.
/// Under load this is what keeps acknowledgements fast; alone, an event is inserted at
/// once. Each waiter learns whether its event was new; when the insert fails they all do,
/// nothing is kept, and each webhook is answered 503.
async fn ingest_loop(pool: AnyPool, mut jobs: mpsc::Receiver<IngestJob>) {
    let mut batch = Vec::with_capacity(INGEST_BATCH);
    while jobs.recv_many(&mut batch, INGEST_BATCH).await > 0 {
        match insert_events(&pool, &batch).await {
            Ok(mut new) => {
                for job in batch.drain(..) {
                    // The first of two deliveries in one batch is the new one.
                    let outcome = if new.remove(&job.message_id) {
                        Enqueued::New
                    } else {
                        Enqueued::Duplicate
                    };
                    let _ = job.done.send(Ok(outcome));
                }
            }
            Err(e) => {
                let reason = e.to_string();
                for job in batch.drain(..) {
                    let _ = job.done.send(Err(reason.clone()));
                }
            }
        }
    }
}

/// One `INSERT … ON CONFLICT DO NOTHING RETURNING` for the batch; the message ids that were
/// new. A message id twice in the batch is inserted once.
async fn insert_events(pool: &AnyPool, batch: &[IngestJob]) -> Result<HashSet<String>> {
    let mut seen = HashSet::with_capacity(batch.len());
    let rows: Vec<&IngestJob> = batch
        .iter()
        .filter(|job| seen.insert(job.message_id.as_str()))
        .collect();
    let mut sql =
        String::from("INSERT INTO inbox (message_id, room_id, payload, received_at) VALUES ");
    for i in 0..rows.len() {
        let n = i * 4;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("(${}, ${}, ${}, ${})", n + 1, n + 2, n + 3, n + 4));
    }
    sql.push_str(" ON CONFLICT (message_id) DO NOTHING RETURNING message_id");
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for job in &rows {
        query = query
            .bind(job.message_id.as_str())
            .bind(job.room_id.as_str())
            .bind(job.payload.as_str())
            .bind(job.received_at);
    }
    let inserted = query.fetch_all(pool).await?;
    inserted
        .iter()
        .map(|r| r.try_get::<String, _>("message_id").map_err(Into::into))
        .collect()
}

fn pool_options(backend: Backend, schema: Option<String>, max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max.max(1))
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _meta| {
            let schema = schema.clone();
            Box::pin(async move {
                match backend {
                    // WAL: readers never block the writer; NORMAL sync is durable against
                    // process crashes (kill -9), which is what "acknowledged is never
                    // lost" needs, at a fraction of FULL's fsync cost.
                    Backend::Sqlite => {
                        // Checkpoints (and their fsyncs) run on a connection of their own
                        // (`checkpoint_loop`); this one only falls back to them if the WAL
                        // grows far past SQLite's default of 1,000 pages.
                        conn.execute(
                            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
                             PRAGMA busy_timeout=10000; PRAGMA foreign_keys=ON; \
                             PRAGMA wal_autocheckpoint=20000;",
                        )
                        .await?;
                    }
                    Backend::Postgres => {
                        if let Some(schema) = schema {
                            conn.execute(sqlx::AssertSqlSafe(format!(
                                "SET search_path TO \"{schema}\""
                            )))
                            .await?;
                        }
                    }
                }
                Ok(())
            })
        })
}

impl Store {
    /// Opens (creating a SQLite file and its folder on first run) and migrates the store.
    pub async fn connect(options: &StoreOptions) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if options.url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let mut url = options.url.clone();
        if backend == Backend::Sqlite {
            if let Some(path) = sqlite_path(&url)
                && let Some(dir) = Path::new(path).parent()
                && !dir.as_os_str().is_empty()
            {
                std::fs::create_dir_all(dir).map_err(|source| StoreError::Folder {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            if !url.contains("mode=") {
                url.push_str(if url.contains('?') {
                    "&mode=rwc"
                } else {
                    "?mode=rwc"
                });
            }
        }
        if let Some(schema) = &options.pg_schema {
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await?;
            // Serialized: concurrent `CREATE SCHEMA IF NOT EXISTS` of one name can fail on
            // the catalog's unique index (replicas starting together).
            pool.execute(sqlx::AssertSqlSafe(format!(
                "BEGIN; SELECT pg_advisory_xact_lock(hashtext('webex-chatbot schema')); \
                 CREATE SCHEMA IF NOT EXISTS \"{schema}\"; COMMIT;"
            )))
            .await?;
            pool.close().await;
        }
        // SQLite has one writer at a time, and a connection that finds the database locked
        // sleeps in SQLite's busy handler (up to 100 ms a try): with several connections a
        // webhook's insert could wait behind the workers for a second. One connection
        // queues every statement fairly in the pool instead.
        let max = match backend {
            Backend::Sqlite => 1,
            Backend::Postgres => options.max_connections,
        };
        let pool = pool_options(backend, options.pg_schema.clone(), max)
            .connect(&url)
            .await?;
        // On PostgreSQL webhook acknowledgements get connections of their own, so a 200
        // never queues behind the workers' traffic (hundreds of rooms at once). On SQLite
        // they share the one connection, and everything else takes turns (`Held`).
        let (ingest_pool, turns) = match backend {
            Backend::Sqlite => (pool.clone(), Some(Arc::new(Semaphore::new(1)))),
            Backend::Postgres => (
                pool_options(backend, options.pg_schema.clone(), INGEST_CONNECTIONS)
                    .connect(&url)
                    .await?,
                None,
            ),
        };
        if backend == Backend::Sqlite && sqlite_path(&url).is_some() {
            tokio::spawn(checkpoint_loop(url.clone(), pool.clone()));
        }
        let (ingest, jobs) = mpsc::channel(4 * INGEST_BATCH);
        let ingest_start = Arc::new(std::sync::Mutex::new(Some((ingest_pool.clone(), jobs))));
        let store = Store {
            pool,
            turns,
            ingest,
            ingest_start,
            ingest_pool,
            backend,
            url,
            pg_schema: options.pg_schema.clone(),
            leader: Arc::new(tokio::sync::Mutex::new(None)),
            pending: Arc::new(PendingCount::default()),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        let mut migrator = match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        // Migrations only add; a previous binary started on a newer database (a rollback)
        // must not refuse to run because it does not know the newest migration.
        migrator.set_ignore_missing(true);
        migrator.run(&self.pool).await?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool size (`DATABASE_MAX_CONNECTIONS`).
    pub fn max_connections(&self) -> u32 {
        self.pool.options().get_max_connections()
    }

    /// Closes the pool and the leader session; a leader's lock goes with it, so a follower
    /// takes over at its next try.
    pub async fn close(&self) {
        if let Some(session) = self.leader.lock().await.take() {
            let _ = session.conn.close().await;
        }
        self.ingest_pool.close().await;
        self.pool.close().await;
    }

    /// The database's clock in milliseconds since the epoch, as an SQL expression. Leases are
    /// timed with it, so replicas whose clocks disagree still agree on when a lease expires.
    fn now_sql(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)",
            Backend::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
        }
    }

    /// `sql` with `{now}` replaced by [`Self::now_sql`].
    fn timed(&self, sql: &'static str) -> AssertSqlSafe<String> {
        AssertSqlSafe(sql.replace("{now}", self.now_sql()))
    }

    /// A real round trip, for `/health`: a write lock on SQLite is not needed to answer.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1")
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// Whether the migrations are all applied and a write succeeds (for `doctor`).
    pub async fn check_writable(&self) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("INSERT INTO room_leases (room_id, owner, expires_at) VALUES ($1, $2, $3)")
            .bind("doctor-write-check")
            .bind("doctor")
            .bind(0i64)
            .execute(&mut *tx)
            .await?;
        tx.rollback().await?;
        Ok(())
    }

    // ---- inbox -------------------------------------------------------------------

    /// Records an event durably. A message id seen before (redelivery, another replica)
    /// is a `Duplicate` and changes nothing.
    ///
    /// Events are inserted in groups by one loop ([`ingest_loop`]), started by the first
    /// call on that caller's runtime: in `serve` the webhook front end's own thread, so an
    /// acknowledgement never waits for the busy workers' runtime to get round to it.
    pub async fn enqueue(&self, ev: &NewEvent<'_>) -> Result<Enqueued> {
        if let Ok(mut start) = self.ingest_start.lock()
            && let Some((pool, jobs)) = start.take()
        {
            tokio::spawn(ingest_loop(pool, jobs));
        }
        let (done, outcome) = oneshot::channel();
        let job = IngestJob {
            message_id: ev.message_id.to_owned(),
            room_id: ev.room_id.to_owned(),
            payload: ev.payload.to_owned(),
            received_at: now_ms(),
            done,
        };
        let stopped = || StoreError::Ingest("the store is shutting down".to_owned());
        self.ingest.send(job).await.map_err(|_| stopped())?;
        let enqueued = outcome
            .await
            .map_err(|_| stopped())?
            .map_err(StoreError::Ingest)?;
        if enqueued == Enqueued::New {
            self.pending.add(1);
        }
        Ok(enqueued)
    }

    /// Pending events as last counted and kept current since (no query; for `/metrics`).
    pub fn pending_events(&self) -> i64 {
        self.pending.value.load(Ordering::SeqCst).max(0)
    }

    /// Counts the pending events in the database (one indexed count) and keeps the number
    /// for [`Store::pending_events`], unless this process changed it meanwhile (then the
    /// next count settles it; two racing counts in a row: the second is kept).
    pub async fn recount_pending(&self) -> Result<i64> {
        let before = self.pending.changes.load(Ordering::SeqCst);
        let row = sqlx::query("SELECT COUNT(*) AS pending FROM inbox WHERE state = 'pending'")
            .fetch_one(&mut *self.conn().await?)
            .await?;
        let counted: i64 = row.try_get("pending")?;
        let raced = self.pending.changes.load(Ordering::SeqCst) != before;
        if !raced || self.pending.raced.load(Ordering::SeqCst) {
            self.pending.value.store(counted, Ordering::SeqCst);
        }
        self.pending.raced.store(raced, Ordering::SeqCst);
        Ok(counted)
    }

    /// A connection for anything but `enqueue`; on SQLite after waiting for its turn.
    async fn conn(&self) -> Result<Held> {
        let turn = match &self.turns {
            Some(turns) => Some(
                turns
                    .clone()
                    .acquire_owned()
                    .await
                    .map_err(|_| sqlx::Error::PoolClosed)?,
            ),
            None => None,
        };
        Ok(Held {
            conn: self.pool.acquire().await?,
            _turn: turn,
        })
    }

    /// Rooms with events due now, oldest first.
    pub async fn pending_rooms(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(self.timed(
            "SELECT room_id, MIN(seq) AS first FROM inbox WHERE state = 'pending' AND not_before <= {now} \
             GROUP BY room_id ORDER BY first",
        ))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("room_id").map_err(Into::into))
            .collect()
    }

    /// The oldest pending event of a room, due or not: a later event must not overtake it.
    pub async fn next_pending(&self, room_id: &str) -> Result<Option<PendingEvent>> {
        let row = sqlx::query(self.timed(
            "SELECT seq, message_id, room_id, payload, received_at, attempts, not_before, reply, parts_sent, stream_message_id, \
             CAST(CASE WHEN not_before <= {now} THEN 1 ELSE 0 END AS BIGINT) AS due \
             FROM inbox WHERE room_id = $1 AND state = 'pending' ORDER BY seq LIMIT 1",
        ))
        .bind(room_id)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|r| pending_from_row(&r)).transpose()
    }

    /// The next event of a room for `owner`'s worker, taking (or keeping) the room's lease
    /// and counting the attempt: `Some` while the lease is held and the oldest pending event
    /// is due; `None` when the room is another owner's, or when nothing is due, in which
    /// case the lease is released in the same step. A worker calls it until `None`.
    ///
    /// SQLite: one round trip (claim; release if idle; take), the statements of which each
    /// stand on their own. PostgreSQL: the same steps as separate statements.
    pub async fn next_event(
        &self,
        room_id: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<Option<PendingEvent>> {
        if self.backend == Backend::Postgres {
            // A few rounds at most: only an event arriving between the take and the release
            // makes the release refuse while the lease is still ours.
            for _ in 0..3 {
                if !self.claim_room(room_id, owner, ttl).await? {
                    return Ok(None);
                }
                if let Some(event) = self.take_next(room_id).await? {
                    return Ok(Some(event));
                }
                if self.release_room_if_idle(room_id, owner).await? {
                    return Ok(None);
                }
            }
            return Ok(None);
        }
        let rows = sqlx::query(self.timed(
            "INSERT INTO room_leases (room_id, owner, expires_at) VALUES ($1, $2, {now} + $3) \
             ON CONFLICT (room_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE room_leases.expires_at < {now} OR room_leases.owner = excluded.owner; \
             DELETE FROM room_leases WHERE room_id = $1 AND owner = $2 AND NOT EXISTS \
             (SELECT 1 FROM inbox WHERE seq = \
               (SELECT seq FROM inbox WHERE room_id = $1 AND state = 'pending' ORDER BY seq LIMIT 1) \
              AND not_before <= {now}); \
             UPDATE inbox SET attempts = attempts + 1 \
             WHERE seq = (SELECT seq FROM inbox WHERE room_id = $1 AND state = 'pending' ORDER BY seq LIMIT 1) \
             AND not_before <= {now} \
             AND EXISTS (SELECT 1 FROM room_leases WHERE room_id = $1 AND owner = $2) \
             RETURNING seq, message_id, room_id, payload, received_at, attempts, not_before, reply, parts_sent, stream_message_id, \
             CAST(1 AS BIGINT) AS due",
        ))
        .bind(room_id)
        .bind(owner)
        .bind(ms(ttl))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        rows.first().map(pending_from_row).transpose()
    }

    /// Takes the oldest pending event of a room for an attempt, counting the attempt in the
    /// same statement: `None` when the room has nothing pending or its oldest event is
    /// not due yet (backing off after a failure; later events wait behind it to keep the
    /// order). The returned `attempts` includes this one. Counting before the work starts
    /// means an event that crashes the process every time is eventually given up.
    pub async fn take_next(&self, room_id: &str) -> Result<Option<PendingEvent>> {
        let row = sqlx::query(self.timed(
            "UPDATE inbox SET attempts = attempts + 1 \
             WHERE seq = (SELECT seq FROM inbox WHERE room_id = $1 AND state = 'pending' ORDER BY seq LIMIT 1) \
             AND not_before <= {now} \
             RETURNING seq, message_id, room_id, payload, received_at, attempts, not_before, reply, parts_sent, stream_message_id, \
             CAST(1 AS BIGINT) AS due",
        ))
        .bind(room_id)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        row.map(|r| pending_from_row(&r)).transpose()
    }

    pub async fn save_reply(&self, seq: i64, reply: &str) -> Result<()> {
        sqlx::query(
            "UPDATE inbox SET reply = $1, parts_sent = 0 WHERE seq = $2 AND state = 'pending'",
        )
        .bind(reply)
        .bind(seq)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Records (or forgets, with `None`) the message a streamed answer is written into.
    pub async fn set_stream_message(&self, seq: i64, message_id: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE inbox SET stream_message_id = $1 WHERE seq = $2 AND state = 'pending'")
            .bind(message_id)
            .bind(seq)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// Records how many parts of the answer are posted. Only ever grows: a late write from
    /// a worker that lost the room cannot make the next one post a part again.
    pub async fn set_parts_sent(&self, seq: i64, parts: i64) -> Result<()> {
        sqlx::query("UPDATE inbox SET parts_sent = $1 WHERE seq = $2 AND parts_sent < $1")
            .bind(parts)
            .bind(seq)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// Leaves the event pending but not before `delay` from now (Webex down, say), by the
    /// database's clock like every time the replicas compare.
    pub async fn postpone(&self, seq: i64, delay: Duration) -> Result<()> {
        sqlx::query(self.timed(
            "UPDATE inbox SET not_before = {now} + $1 WHERE seq = $2 AND state = 'pending'",
        ))
        .bind(ms(delay))
        .bind(seq)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    /// Marks the event handled and, in the same transaction, stores the conversation turns,
    /// so a crash leaves either both or neither. The state changes first and only from
    /// `pending`: an event that another worker already finished is left as it is (false),
    /// and its turns are not stored a second time.
    pub async fn finish(&self, seq: i64, finish: Finish<'_>) -> Result<bool> {
        let done = self.mark_done(seq, finish).await?;
        if done {
            self.pending.add(-1);
        }
        Ok(done)
    }

    async fn mark_done(&self, seq: i64, finish: Finish<'_>) -> Result<bool> {
        let now = now_ms();
        let turns = finish.turns.filter(|(_, turns)| !turns.is_empty());
        const DONE: &str = "UPDATE inbox SET state = 'done', outcome = $1, finished_at = $2, reply = NULL \
             WHERE seq = $3 AND state = 'pending' RETURNING seq";
        if self.backend == Backend::Sqlite {
            // One round trip, the transaction included: the done mark (whose RETURNING
            // says whether it applied), the turns only if it did (`changes()`), the
            // pruning. A transaction over several round trips would hold the one
            // connection while this task waits to be polled again between them.
            let mut sql = format!("BEGIN IMMEDIATE; {DONE};");
            if let Some((_, turns)) = turns {
                sql.push_str(" INSERT INTO turns (conversation, created_at, role, content) ");
                for i in 0..turns.len() {
                    let n = 6 + 2 * i;
                    if i > 0 {
                        sql.push_str(" UNION ALL ");
                    }
                    sql.push_str(&format!(
                        "SELECT $4, $2, ${n}, ${} WHERE changes() = 1",
                        n + 1
                    ));
                }
                sql.push_str(
                    "; DELETE FROM turns WHERE conversation = $4 AND id NOT IN \
                     (SELECT id FROM turns WHERE conversation = $4 ORDER BY id DESC LIMIT $5)",
                );
            }
            sql.push_str("; COMMIT");
            let mut query = sqlx::query(AssertSqlSafe(sql))
                .bind(finish.outcome)
                .bind(now)
                .bind(seq);
            if let Some((conversation, turns)) = turns {
                query = query
                    .bind(conversation.as_str())
                    .bind(i64::try_from(finish.keep_messages).unwrap_or(i64::MAX));
                for turn in turns {
                    query = query.bind(turn.role.as_str()).bind(turn.content.as_str());
                }
            }
            let mut tx = InlineTx {
                held: self.conn().await?,
                ended: false,
            };
            let done = query.fetch_all(&mut *tx.held).await;
            if done.is_err() {
                // A statement failed: the transaction may be open; end it here.
                let _ = tx.held.execute("ROLLBACK").await;
            }
            tx.ended = true;
            return Ok(!done?.is_empty());
        }
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let done = sqlx::query(DONE)
            .bind(finish.outcome)
            .bind(now)
            .bind(seq)
            .fetch_all(&mut *tx)
            .await?;
        if done.is_empty() {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some((conversation, turns)) = turns {
            // One statement for all the turns: `($1, $2, $3, $4), ($1, $2, $5, $6), …`.
            let mut sql =
                String::from("INSERT INTO turns (conversation, created_at, role, content) VALUES ");
            for i in 0..turns.len() {
                let n = 3 + 2 * i;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("($1, $2, ${n}, ${})", n + 1));
            }
            let mut insert = sqlx::query(AssertSqlSafe(sql))
                .bind(conversation.as_str())
                .bind(now);
            for turn in turns {
                insert = insert.bind(turn.role.as_str()).bind(turn.content.as_str());
            }
            insert.execute(&mut *tx).await?;
            prune_turns(&mut tx, conversation, finish.keep_messages).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Forgets finished events older than `keep` (at least 7 days: Webex redelivers).
    pub async fn prune_inbox(&self, keep: Duration) -> Result<u64> {
        let done = sqlx::query("DELETE FROM inbox WHERE state = 'done' AND finished_at < $1")
            .bind(now_ms().saturating_sub(ms(keep)))
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn event_outcome(
        &self,
        message_id: &str,
    ) -> Result<Option<(String, Option<String>)>> {
        let row = sqlx::query("SELECT state, outcome FROM inbox WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        row.map(|r| Ok((r.try_get("state")?, r.try_get("outcome")?)))
            .transpose()
    }

    // ---- room leases -----------------------------------------------------------

    /// Takes the room for `owner` unless another owner holds an unexpired lease. Expiry is
    /// judged by the database's clock.
    pub async fn claim_room(&self, room_id: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let done = sqlx::query(self.timed(
            "INSERT INTO room_leases (room_id, owner, expires_at) VALUES ($1, $2, {now} + $3) \
             ON CONFLICT (room_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at \
             WHERE room_leases.expires_at < {now} OR room_leases.owner = excluded.owner",
        ))
        .bind(room_id)
        .bind(owner)
        .bind(ms(ttl))
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends a lease this owner holds; false when it was lost (expired and taken, or
    /// released). Owners are unique per process start, so a lease still under this owner's
    /// name was not used by anybody else even if it expired a moment ago.
    pub async fn renew_room(&self, room_id: &str, owner: &str, ttl: Duration) -> Result<bool> {
        let done = sqlx::query(self.timed(
            "UPDATE room_leases SET expires_at = {now} + $1 WHERE room_id = $2 AND owner = $3",
        ))
        .bind(ms(ttl))
        .bind(room_id)
        .bind(owner)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Renews the lease right before part `part` of event `seq`'s answer is posted, and only
    /// if posting it is still this owner's job: the lease is this owner's, the event is
    /// pending, and no other worker recorded that part as posted. False otherwise.
    ///
    /// With `save`, the answer is also kept with the event when the confirmation succeeds
    /// (so an attempt after a crash posts it instead of asking the LLM again): on SQLite in
    /// the same round trip.
    pub async fn confirm_post(
        &self,
        room_id: &str,
        owner: &str,
        ttl: Duration,
        seq: i64,
        part: i64,
        save: Option<&str>,
    ) -> Result<bool> {
        const CONFIRM: &str = "UPDATE room_leases SET expires_at = {now} + $1 WHERE room_id = $2 AND owner = $3 \
             AND EXISTS (SELECT 1 FROM inbox WHERE seq = $4 AND state = 'pending' AND parts_sent <= $5) \
             RETURNING room_id";
        let confirm = self.timed(CONFIRM);
        let sql = match (save, self.backend) {
            // `changes()`: rows changed by the confirmation, the statement before.
            (Some(_), Backend::Sqlite) => AssertSqlSafe(format!(
                "{}; UPDATE inbox SET reply = $6, parts_sent = 0 \
                 WHERE seq = $4 AND state = 'pending' AND changes() = 1",
                confirm.0
            )),
            _ => confirm,
        };
        let mut query = sqlx::query(sql)
            .bind(ms(ttl))
            .bind(room_id)
            .bind(owner)
            .bind(seq)
            .bind(part);
        if let (Some(reply), Backend::Sqlite) = (save, self.backend) {
            query = query.bind(reply);
        }
        let confirmed = query.fetch_all(&mut *self.conn().await?).await?.len() == 1;
        if confirmed && let (Some(reply), Backend::Postgres) = (save, self.backend) {
            self.save_reply(seq, reply).await?;
        }
        Ok(confirmed)
    }

    pub async fn release_room(&self, room_id: &str, owner: &str) -> Result<()> {
        sqlx::query("DELETE FROM room_leases WHERE room_id = $1 AND owner = $2")
            .bind(room_id)
            .bind(owner)
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(())
    }

    /// Releases the room unless its oldest pending event is due: true when released,
    /// false when there is work to do (an event recorded while the room was held, perhaps
    /// by another replica) or the lease is not this owner's any more.
    pub async fn release_room_if_idle(&self, room_id: &str, owner: &str) -> Result<bool> {
        let done = sqlx::query(self.timed(
            "DELETE FROM room_leases WHERE room_id = $1 AND owner = $2 AND NOT EXISTS \
             (SELECT 1 FROM inbox WHERE seq = \
               (SELECT seq FROM inbox WHERE room_id = $1 AND state = 'pending' ORDER BY seq LIMIT 1) \
              AND not_before <= {now})",
        ))
        .bind(room_id)
        .bind(owner)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes back everything an earlier life of the process left held: deletes every room
    /// lease and makes every pending event due now (a retry backoff does not outlive a
    /// restart). Only for the database's one owner (SQLite, holding [`OwnerLock`]): no
    /// other process can be working on a room. Returns the leases released and the
    /// events made due.
    pub async fn take_back_all(&self) -> Result<(u64, u64)> {
        let mut conn = self.conn().await?;
        let leases = sqlx::query("DELETE FROM room_leases")
            .execute(&mut *conn)
            .await?
            .rows_affected();
        let events = sqlx::query(
            "UPDATE inbox SET not_before = 0 WHERE state = 'pending' AND not_before > 0",
        )
        .execute(&mut *conn)
        .await?
        .rows_affected();
        Ok((leases, events))
    }

    /// Who owns a room's lease, if it has not expired (by the database's clock).
    pub async fn room_owner(&self, room_id: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            self.timed("SELECT owner FROM room_leases WHERE room_id = $1 AND expires_at >= {now}"),
        )
        .bind(room_id)
        .fetch_optional(&mut *self.conn().await?)
        .await?;
        Ok(row.map(|r| r.try_get("owner")).transpose()?)
    }

    // ---- leadership ----------------------------------------------------------------

    /// Whether this process is (or has just become) the leader among the replicas sharing
    /// the database: the one that maintains the webhook registration. Call it periodically:
    /// a follower takes over when the leader's lock is gone, and a leader learns here that
    /// it lost its session.
    ///
    /// PostgreSQL: a session-level `pg_try_advisory_lock` held on a dedicated connection
    /// for the life of the process. A leader that dies, or whose connection breaks, loses
    /// the lock with its session. SQLite: there is one process, and it leads.
    pub async fn try_lead(&self) -> Result<bool> {
        if self.backend == Backend::Sqlite {
            return Ok(true);
        }
        let limit = Duration::from_secs(10);
        let mut slot = self.leader.lock().await;
        if let Some(session) = slot.as_mut() {
            // A live session keeps the lock; a failed (or hanging) round trip means the
            // session, and with it the lock, is gone or about to be.
            let alive = matches!(
                tokio::time::timeout(limit, session.conn.ping()).await,
                Ok(Ok(()))
            );
            if alive && session.leading {
                return Ok(true);
            }
            if alive {
                let leading = within(limit, try_advisory_lock(&mut session.conn)).await?;
                session.leading = leading;
                return Ok(leading);
            }
            *slot = None;
        }
        let mut conn = within(limit, self.dedicated_connection()).await?;
        let leading = within(limit, try_advisory_lock(&mut conn)).await?;
        *slot = Some(LeaderSession { conn, leading });
        Ok(leading)
    }

    /// A connection of its own (not from the pool), in the store's schema.
    async fn dedicated_connection(&self) -> Result<AnyConnection> {
        let mut conn = AnyConnection::connect(&self.url).await?;
        if let Some(schema) = &self.pg_schema {
            conn.execute(AssertSqlSafe(format!("SET search_path TO \"{schema}\"")))
                .await?;
        }
        Ok(conn)
    }

    // ---- approved users ------------------------------------------------------------

    pub async fn approved_users(&self) -> Result<Vec<ApprovedUser>> {
        let rows =
            sqlx::query("SELECT email, added_by, added_at FROM approved_users ORDER BY email")
                .fetch_all(&mut *self.conn().await?)
                .await?;
        rows.iter()
            .map(|r| {
                let raw: String = r.try_get("email")?;
                let email = Email::parse(&raw)
                    .map_err(|_| StoreError::Corrupt(format!("approved user {raw:?}")))?;
                Ok(ApprovedUser {
                    email,
                    added_by: r.try_get("added_by")?,
                    added_at: r.try_get("added_at")?,
                })
            })
            .collect()
    }

    pub async fn is_approved(&self, email: &Email) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM approved_users WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.is_some())
    }

    /// Adds a user; false when they were already approved.
    pub async fn add_user(&self, email: &Email, added_by: Option<&str>) -> Result<bool> {
        let done = sqlx::query(
            "INSERT INTO approved_users (email, added_by, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (email) DO NOTHING",
        )
        .bind(email.as_str())
        .bind(added_by)
        .bind(now_ms())
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Removes a user; false when they were not approved.
    pub async fn remove_user(&self, email: &Email) -> Result<bool> {
        let done = sqlx::query("DELETE FROM approved_users WHERE email = $1")
            .bind(email.as_str())
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Adds many users in one transaction: all or nothing. Returns how many were new.
    pub async fn add_users(&self, emails: &[Email], added_by: &str) -> Result<u64> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let mut added = 0;
        let now = now_ms();
        for email in emails {
            let done = sqlx::query(
                "INSERT INTO approved_users (email, added_by, added_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (email) DO NOTHING",
            )
            .bind(email.as_str())
            .bind(added_by)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            added += done.rows_affected();
        }
        tx.commit().await?;
        Ok(added)
    }

    // ---- spaces ------------------------------------------------------------------

    pub async fn personality_for(&self, room_id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT personality FROM space_settings WHERE room_id = $1")
            .bind(room_id)
            .fetch_optional(&mut *self.conn().await?)
            .await?;
        Ok(row.map(|r| r.try_get("personality")).transpose()?)
    }

    pub async fn set_personality(&self, room_id: &str, name: &str, by: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO space_settings (room_id, personality, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (room_id) DO UPDATE SET personality = excluded.personality, \
             updated_by = excluded.updated_by, updated_at = excluded.updated_at",
        )
        .bind(room_id)
        .bind(name)
        .bind(by)
        .bind(now_ms())
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }

    // ---- conversation memory -------------------------------------------------------

    /// The newest `limit` messages of a conversation, oldest first.
    pub async fn history(&self, conversation: &ConversationKey, limit: usize) -> Result<Vec<Turn>> {
        let rows = sqlx::query(
            "SELECT role, content FROM turns WHERE conversation = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(conversation.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut turns = rows
            .iter()
            .map(|r| {
                let role: String = r.try_get("role")?;
                Ok(Turn {
                    role: Role::parse(&role)
                        .ok_or_else(|| StoreError::Corrupt(format!("turn role {role:?}")))?,
                    content: r.try_get("content")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        turns.reverse();
        Ok(turns)
    }

    /// What answering in a space needs from the store, in one round trip: the space's
    /// personality (if one was chosen) and the newest `limit` messages of the
    /// conversation, oldest first.
    pub async fn chat_context(
        &self,
        room_id: &str,
        conversation: &ConversationKey,
        limit: usize,
    ) -> Result<(Option<String>, Vec<Turn>)> {
        let rows = sqlx::query(
            "SELECT CAST(0 AS BIGINT) AS kind, personality AS a, NULL AS b, CAST(0 AS BIGINT) AS id \
             FROM space_settings WHERE room_id = $1 \
             UNION ALL SELECT * FROM (SELECT CAST(1 AS BIGINT) AS kind, role AS a, content AS b, \
             CAST(id AS BIGINT) AS id FROM turns WHERE conversation = $2 ORDER BY id DESC LIMIT $3) AS recent",
        )
        .bind(room_id)
        .bind(conversation.as_str())
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *self.conn().await?)
        .await?;
        let mut personality = None;
        let mut turns = Vec::with_capacity(rows.len());
        for r in &rows {
            let a: String = r.try_get("a")?;
            if r.try_get::<i64, _>("kind")? == 0 {
                personality = Some(a);
                continue;
            }
            let role =
                Role::parse(&a).ok_or_else(|| StoreError::Corrupt(format!("turn role {a:?}")))?;
            turns.push((
                r.try_get::<i64, _>("id")?,
                Turn {
                    role,
                    content: r.try_get("b")?,
                },
            ));
        }
        turns.sort_by_key(|(id, _)| *id);
        Ok((personality, turns.into_iter().map(|(_, t)| t).collect()))
    }

    pub async fn clear_history(&self, conversation: &ConversationKey) -> Result<u64> {
        let done = sqlx::query("DELETE FROM turns WHERE conversation = $1")
            .bind(conversation.as_str())
            .execute(&mut *self.conn().await?)
            .await?;
        Ok(done.rows_affected())
    }

    /// Deletes the conversations (all their turns) whose newest turn is older than
    /// `cutoff_ms` (milliseconds since the epoch): `MEMORY_MAX_AGE_DAYS`. Returns how many
    /// turns were deleted.
    pub async fn forget_conversations_untouched_since(&self, cutoff_ms: i64) -> Result<u64> {
        let done = sqlx::query(
            "DELETE FROM turns WHERE conversation IN \
             (SELECT conversation FROM turns GROUP BY conversation HAVING MAX(created_at) < $1)",
        )
        .bind(cutoff_ms)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(done.rows_affected())
    }

    /// Appends turns outside the inbox (the console chat).
    pub async fn append_turns(
        &self,
        conversation: &ConversationKey,
        turns: &[Turn],
        keep_messages: usize,
    ) -> Result<()> {
        let mut conn = self.conn().await?;
        let mut tx = conn.begin().await?;
        let now = now_ms();
        for turn in turns {
            sqlx::query(
                "INSERT INTO turns (conversation, role, content, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(conversation.as_str())
            .bind(turn.role.as_str())
            .bind(turn.content.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        prune_turns(&mut tx, conversation, keep_messages).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn counts(&self) -> Result<Counts> {
        let row = sqlx::query(
            "SELECT \
               (SELECT COUNT(*) FROM approved_users) AS users, \
               (SELECT COUNT(*) FROM inbox WHERE state = 'pending') AS pending, \
               (SELECT COUNT(*) FROM inbox WHERE state = 'done') AS processed, \
               (SELECT COUNT(DISTINCT conversation) FROM turns) AS conversations",
        )
        .fetch_one(&mut *self.conn().await?)
        .await?;
        Ok(Counts {
            approved_users: row.try_get("users")?,
            pending_events: row.try_get("pending")?,
            processed_events: row.try_get("processed")?,
            conversations: row.try_get("conversations")?,
        })
    }

    // ---- websocket cursor ------------------------------------------------------------

    /// Where catching up after a websocket reconnect or a restart starts, if this bot ever
    /// connected.
    pub async fn websocket_cursor(&self, bot_id: &str) -> Result<Option<WebsocketCursor>> {
        let row =
            sqlx::query("SELECT last_event_at, first_at FROM websocket_cursor WHERE bot_id = $1")
                .bind(bot_id)
                .fetch_optional(&mut *self.conn().await?)
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(WebsocketCursor {
            last_event_at: row.try_get("last_event_at")?,
            first_at: row.try_get("first_at")?,
        }))
    }

    /// Records when the last websocket event arrived; the first call for a bot also records
    /// `at_ms` as its first connection.
    pub async fn set_websocket_cursor(&self, bot_id: &str, at_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO websocket_cursor (bot_id, last_event_at, first_at) VALUES ($1, $2, $2) \
             ON CONFLICT (bot_id) DO UPDATE SET last_event_at = excluded.last_event_at",
        )
        .bind(bot_id)
        .bind(at_ms)
        .execute(&mut *self.conn().await?)
        .await?;
        Ok(())
    }
}

async fn within<T>(
    limit: Duration,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| StoreError::Timeout(limit))?
}

/// Takes the leader lock of the connection's schema without waiting; re-entrant per
/// session, so call it only while not holding the lock.
async fn try_advisory_lock(conn: &mut AnyConnection) -> Result<bool> {
    let row = sqlx::query("SELECT pg_try_advisory_lock($1, hashtext(current_schema())) AS locked")
        .bind(LEADER_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get("locked")?)
}

async fn prune_turns(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    conversation: &ConversationKey,
    keep_messages: usize,
) -> Result<()> {
    // Keep the newest `keep_messages`; the subquery form works on both backends.
    sqlx::query(
        "DELETE FROM turns WHERE conversation = $1 AND id NOT IN \
         (SELECT id FROM turns WHERE conversation = $1 ORDER BY id DESC LIMIT $2)",
    )
    .bind(conversation.as_str())
    .bind(i64::try_from(keep_messages).unwrap_or(i64::MAX))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn pending_from_row(r: &AnyRow) -> Result<PendingEvent> {
    Ok(PendingEvent {
        seq: r.try_get("seq")?,
        message_id: r.try_get("message_id")?,
        room_id: r.try_get("room_id")?,
        payload: r.try_get("payload")?,
        received_at: r.try_get("received_at")?,
        attempts: r.try_get("attempts")?,
        not_before: r.try_get("not_before")?,
        reply: r.try_get("reply")?,
        parts_sent: r.try_get("parts_sent")?,
        stream_message_id: r.try_get("stream_message_id")?,
        due: r.try_get::<i64, _>("due")? != 0,
    })
}
