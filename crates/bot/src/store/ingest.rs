//! Recording incoming events: one loop group-commits every event that arrives while an
//! insert runs.

use super::*;

/// An event waiting for the next group commit, and who waits for the outcome.
pub(super) struct IngestJob {
    pub(super) message_id: String,
    pub(super) room_id: String,
    pub(super) payload: String,
    pub(super) kind: EventKind,
    pub(super) received_at: i64,
    pub(super) done: oneshot::Sender<std::result::Result<Enqueued, String>>,
}

/// Records incoming events in groups: every event that arrived while the previous insert
/// ran goes into the next one, a single commit for all of them.
/// Under load this is what keeps acknowledgements fast; alone, an event is inserted at
/// once. Each waiter learns whether its event was new; when the insert fails they all do,
/// nothing is kept, and each webhook is answered 503.
pub(super) async fn ingest_loop(db: Db, mut jobs: mpsc::Receiver<IngestJob>) {
    let mut batch = Vec::with_capacity(INGEST_BATCH);
    while jobs.recv_many(&mut batch, INGEST_BATCH).await > 0 {
        match insert_events(&db, &batch).await {
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

/// The batch's events in one transaction; the message ids that were new. A message id
/// twice in the batch is inserted once.
///
/// PostgreSQL: one `INSERT … ON CONFLICT DO NOTHING RETURNING` for the batch. SQLite: one
/// prepared single-row insert per event, run on this thread, and one commit.
async fn insert_events(db: &Db, batch: &[IngestJob]) -> Result<HashSet<String>> {
    let mut seen = HashSet::with_capacity(batch.len());
    let rows: Vec<&IngestJob> = batch
        .iter()
        .filter(|job| seen.insert(job.message_id.as_str()))
        .collect();
    let mut conn = db.ingest_conn().await?;
    if let Conn::Lite { .. } = conn {
        let mut tx = conn.begin().await?;
        let mut new = HashSet::with_capacity(rows.len());
        for job in &rows {
            if bind_event(query(INSERT_ONE), job).execute(&mut tx).await? == 1 {
                new.insert(job.message_id.clone());
            }
        }
        tx.commit().await?;
        return Ok(new);
    }
    let mut sql = String::from(INSERT_INTO);
    for i in 0..rows.len() {
        let n = i * 5;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "(${}, ${}, ${}, ${}, ${})",
            n + 1,
            n + 2,
            n + 3,
            n + 4,
            n + 5
        ));
    }
    sql.push_str(ON_CONFLICT);
    let mut insert = query(sql);
    for job in &rows {
        insert = bind_event(insert, job);
    }
    insert
        .fetch_all(&mut conn)
        .await?
        .iter()
        .map(|r| r.try_get::<String>("message_id"))
        .collect()
}

const INSERT_INTO: &str =
    "INSERT INTO inbox (message_id, room_id, payload, received_at, kind) VALUES ";
const ON_CONFLICT: &str = " ON CONFLICT (message_id) DO NOTHING RETURNING message_id";
/// SQLite: one event; new when it changed a row. No `RETURNING`: SQLite gathers its rows
/// in a temporary table built and freed each time.
const INSERT_ONE: &str = "INSERT INTO inbox (message_id, room_id, payload, received_at, kind) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (message_id) DO NOTHING";

fn bind_event<'q>(insert: sql::Query<'q>, job: &'q IngestJob) -> sql::Query<'q> {
    insert
        .bind(job.message_id.as_str())
        .bind(job.room_id.as_str())
        .bind(job.payload.as_str())
        .bind(job.received_at)
        .bind(job.kind.as_str())
}
