//! The webhook leader among replicas (a PostgreSQL advisory lock; on SQLite the one process).

use super::*;

/// Takes the leader lock of the connection's schema without waiting; re-entrant per
/// session, so call it only while not holding the lock.
async fn try_advisory_lock(conn: &mut AnyConnection) -> Result<bool> {
    let row = sqlx::query(dialect::TRY_LEADER_LOCK)
        .bind(dialect::LEADER_LOCK_KEY)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row.try_get("locked")?)
}

impl Store {
    /// Whether this process is (or has just become) the leader among the replicas sharing
    /// the database: the one that maintains the webhook registration. Call it periodically:
    /// a follower takes over when the leader's lock is gone, and a leader learns here that
    /// it lost its session.
    ///
    /// PostgreSQL: a session-level `pg_try_advisory_lock` held on a dedicated connection
    /// for the life of the process. A leader that dies, or whose connection breaks, loses
    /// the lock with its session. SQLite: there is one process, and it leads.
    pub async fn try_lead(&self) -> Result<bool> {
        if self.backend.processes() == Processes::One {
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
            conn.execute(dialect::search_path(schema)).await?;
        }
        Ok(conn)
    }
}
