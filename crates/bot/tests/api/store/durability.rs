//! SQLite's WAL checkpoints, and failed finishes that leave nothing behind.

use super::*;

/// SQLite: the WAL is copied back into the database file by the store's own checkpointer,
/// not by the connection that records webhooks (which now checkpoints only far past
/// SQLite's default). Read with `immutable=1`, which ignores the WAL, the database file
/// itself soon holds a recorded event.
#[tokio::test]
async fn sqlite_wal_is_checkpointed_in_the_background() {
    use sqlx::{Connection, Row};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.db");
    let store = sqlite_store_at(&path).await;
    store
        .enqueue(&NewEvent {
            message_id: "wal-1",
            room_id: "r",
            payload: "{}",
            kind: bot::store::EventKind::Message,
        })
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(10), || async {
            let mut file_only = sqlx::SqliteConnection::connect(&format!(
                "sqlite://{}?immutable=true",
                path.display()
            ))
            .await
            .unwrap();
            let in_file: i64 = sqlx::query("SELECT COUNT(*) AS n FROM inbox")
                .fetch_one(&mut file_only)
                .await
                .map_or(0, |r| r.get("n"));
            file_only.close().await.unwrap();
            in_file == 1
        })
        .await,
        "the event never reached the database file"
    );
}

/// SQLite runs the done mark, the turns and the pruning as one inline transaction: when a
/// statement in it fails, nothing of it is kept and the connection is usable afterwards
/// (no transaction left open on it).
#[tokio::test]
async fn a_failed_finish_keeps_nothing_and_leaves_no_transaction_open() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bot.db");
    let store = sqlite_store_at(&path).await;
    store
        .enqueue(&NewEvent {
            message_id: "f1",
            room_id: "rf",
            payload: "{}",
            kind: bot::store::EventKind::Message,
        })
        .await
        .unwrap();
    let event = store.take_next("rf").await.unwrap().unwrap();
    let conversation = ConversationKey::direct("rf");
    let turns = question_and_answer("q", "a");
    let finish = || Finish {
        outcome: "answered",
        turns: Some((&conversation, &turns[..])),
        keep_messages: 10,
    };
    let mut side = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("ALTER TABLE turns RENAME TO turns_away")
        .execute(&mut side)
        .await
        .unwrap();
    assert!(store.finish(event.seq, finish()).await.is_err());
    sqlx::query("ALTER TABLE turns_away RENAME TO turns")
        .execute(&mut side)
        .await
        .unwrap();
    side.close().await.unwrap();

    // The done mark was rolled back with the failed insert; the event is still pending.
    assert_eq!(
        store.event_outcome("f1").await.unwrap(),
        Some(("pending".into(), None))
    );
    // Committed work after it really is committed: seen from a fresh connection.
    assert!(store.finish(event.seq, finish()).await.unwrap());
    store.close().await;
    let reopened = sqlite_store_at(&path).await;
    assert_eq!(
        reopened.event_outcome("f1").await.unwrap(),
        Some(("done".into(), Some("answered".into())))
    );
    assert_eq!(
        reopened.history(&conversation, 10).await.unwrap(),
        turns.to_vec()
    );
}
