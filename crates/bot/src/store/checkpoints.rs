//! SQLite checkpoints on a connection of their own.

use super::*;

/// How often the SQLite WAL is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// SQLite: copies the WAL back into the database file from a connection of its own, so the
/// fsyncs of a checkpoint never hold up the one connection that records webhooks and
/// serves the workers (a checkpoint there stalled acknowledgements for tens of
/// milliseconds on a slow disk). A `PASSIVE` checkpoint takes no lock that writers wait
/// for. Ends when the store is closed.
pub(super) async fn checkpoint_loop(url: String, lite: Arc<Lite>) {
    let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<AnyConnection> = None;
    let mut failing = false;
    while !lite.is_closed() {
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
