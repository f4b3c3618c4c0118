//! Several stores on one database: one leader at a time, leases that follow their owners,
//! migrations run once.

use super::*;

/// Two handles on one fresh database (SQLite file, or PostgreSQL schema), as two replicas
/// (or two lives of one process) have.
async fn store_pairs() -> Vec<(
    String,
    Store,
    Store,
    StoreOptions,
    Option<tempfile::TempDir>,
)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = StoreOptions {
        url: format!("sqlite://{}/bot.db", dir.path().display()),
        max_connections: 2,
        pg_schema: None,
    };
    let mut all = vec![(
        "sqlite".to_owned(),
        Store::connect(&sqlite).await.unwrap(),
        Store::connect(&sqlite).await.unwrap(),
        sqlite,
        Some(dir),
    )];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        let pg = StoreOptions {
            url,
            max_connections: 2,
            pg_schema: Some(format!("t_{}", uuid::Uuid::new_v4().simple())),
        };
        all.push((
            "postgres".to_owned(),
            Store::connect(&pg).await.unwrap(),
            Store::connect(&pg).await.unwrap(),
            pg,
            None,
        ));
    }
    all
}

#[tokio::test]
async fn one_leader_at_a_time_and_a_follower_takes_over() {
    for (name, first, second, options, _dir) in store_pairs().await {
        // PostgreSQL elects one leader among the processes sharing the schema; SQLite has
        // one process, which always leads. Every other step is the same on both.
        let exclusive = first.backend() == Backend::Postgres;
        assert!(first.try_lead().await.unwrap(), "{name}");
        assert!(
            first.try_lead().await.unwrap(),
            "{name}: a leader stays leader"
        );
        assert_eq!(second.try_lead().await.unwrap(), !exclusive, "{name}");
        assert_eq!(
            second.try_lead().await.unwrap(),
            !exclusive,
            "{name}: still not while the leader lives"
        );
        // The leader goes (its process stops or dies): the follower takes over.
        first.close().await;
        assert!(second.try_lead().await.unwrap(), "{name}: takes over");
        assert!(second.try_lead().await.unwrap(), "{name}");

        // A leader whose session breaks steps down, and a replica waiting takes over.
        let third = Store::connect(&options).await.unwrap();
        assert_eq!(third.try_lead().await.unwrap(), !exclusive, "{name}");
        if exclusive {
            terminate_leader_session(&options).await;
            assert!(
                third.try_lead().await.unwrap(),
                "{name}: the lock went with the session"
            );
            assert!(
                !second.try_lead().await.unwrap(),
                "{name}: the old leader learns it lost"
            );
        }

        // Schemas on one database elect their leaders separately.
        if let Some(other) = postgres_store().await.filter(|_| exclusive) {
            assert!(other.try_lead().await.unwrap(), "{name}: another schema");
        }
    }
}

/// Ends the database session that holds the leader lock of `options`' schema, as a network
/// failure or a database restart would, and waits until it is gone.
async fn terminate_leader_session(options: &StoreOptions) {
    use sqlx::Connection;
    let schema = options.pg_schema.clone().unwrap();
    let mut admin = sqlx::PgConnection::connect(&options.url).await.unwrap();
    let ended: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory' \
         AND objsubid = 2 AND classid::text::bigint = 2003133048 \
         AND objid::text::bigint = (hashtext($1)::bigint & 4294967295) \
         AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .bind(schema)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(ended, vec![(true,)], "one leader session ended");
}

#[tokio::test]
async fn leases_follow_owners_and_the_owner_takes_back_every_lease() {
    for (name, store, _dir) in stores().await {
        let ttl = Duration::from_secs(30);
        assert!(store.claim_room("r1", "host:8080:aaaa", ttl).await.unwrap());
        assert!(store.claim_room("r2", "host:8080:aaaa", ttl).await.unwrap());
        assert!(store.claim_room("r3", "host:8081:bbbb", ttl).await.unwrap());
        assert!(store.claim_room("r4", "host_8080:cccc", ttl).await.unwrap());
        assert_eq!(
            store.room_owner("r1").await.unwrap().as_deref(),
            Some("host:8080:aaaa"),
            "{name}"
        );
        assert_eq!(store.room_owner("none").await.unwrap(), None, "{name}");
        // The database's one owner (SQLite) takes back every lease of earlier lives, and
        // makes every pending event due now.
        let backoff = NewEvent {
            message_id: "m-backoff",
            room_id: "r5",
            payload: "{}",
            kind: bot::store::EventKind::Message,
        };
        store.enqueue(&backoff).await.unwrap();
        let seq = store.next_pending("r5").await.unwrap().unwrap().seq;
        store.postpone(seq, Duration::from_secs(300)).await.unwrap();
        assert!(!store.next_pending("r5").await.unwrap().unwrap().due);
        assert_eq!(store.take_back_all().await.unwrap(), (4, 1), "{name}");
        assert!(
            store.next_pending("r5").await.unwrap().unwrap().due,
            "{name}"
        );
        store
            .finish(
                seq,
                Finish {
                    outcome: "answered",
                    turns: None,
                    keep_messages: 10,
                },
            )
            .await
            .unwrap();
        assert!(
            store.claim_room("r1", "host:8080:dddd", ttl).await.unwrap(),
            "{name}"
        );
        for room in ["r3", "r4"] {
            assert!(
                store.claim_room(room, "host:8080:dddd", ttl).await.unwrap(),
                "{name}"
            );
            store.release_room(room, "host:8080:dddd").await.unwrap();
        }
        // Posting is confirmed only while the room, the pending event and the part are ours.
        let payload = "{}";
        let ev = NewEvent {
            message_id: "m-post",
            room_id: "r1",
            payload,
            kind: bot::store::EventKind::Message,
        };
        store.enqueue(&ev).await.unwrap();
        let seq = store.next_pending("r1").await.unwrap().unwrap().seq;
        let confirm = |owner: &'static str, part: i64| {
            let store = store.clone();
            async move {
                store
                    .confirm_post("r1", owner, ttl, seq, part, None)
                    .await
                    .unwrap()
            }
        };
        assert!(confirm("host:8080:dddd", 0).await, "{name}");
        assert!(!confirm("host:8081:bbbb", 0).await, "{name}: not the owner");
        store.set_parts_sent(seq, 1).await.unwrap();
        assert!(
            !confirm("host:8080:dddd", 0).await,
            "{name}: part 0 already posted"
        );
        assert!(confirm("host:8080:dddd", 1).await, "{name}");
        let done = Finish {
            outcome: "answered",
            turns: None,
            keep_messages: 40,
        };
        assert!(store.finish(seq, done).await.unwrap());
        assert!(
            !confirm("host:8080:dddd", 1).await,
            "{name}: handled already"
        );

        // Expired leases have no owner.
        assert!(
            store
                .claim_room("r5", "x", Duration::from_millis(1))
                .await
                .unwrap()
        );
        // The 1 ms lease expires (the expiry is what is under test).
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(store.room_owner("r5").await.unwrap(), None, "{name}");
    }
}

#[tokio::test]
async fn replicas_starting_together_migrate_once() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!("TEST_DATABASE_URL is not set: replicas_starting_together_migrate_once skipped");
        return;
    };
    let options = StoreOptions {
        url,
        max_connections: 2,
        pg_schema: Some(format!("t_{}", uuid::Uuid::new_v4().simple())),
    };
    let (a, b, c) = tokio::join!(
        Store::connect(&options),
        Store::connect(&options),
        Store::connect(&options)
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    a.add_user(&email("one@example.com"), None).await.unwrap();
    assert!(b.is_approved(&email("one@example.com")).await.unwrap());
    assert!(c.is_approved(&email("one@example.com")).await.unwrap());
}
