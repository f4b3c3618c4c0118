//! One store suite, run against SQLite always and PostgreSQL when `TEST_DATABASE_URL` is
//! set (each test in its own schema, so tests run in parallel on one database).

use std::time::Duration;

use bot::domain::{ConversationKey, Email, Role, Turn};
use bot::store::{Backend, Enqueued, Finish, NewEvent, Store, StoreOptions};

use crate::eventually::eventually;

/// A fresh SQLite store, and a fresh PostgreSQL one when the server is configured.
pub async fn stores() -> Vec<(String, Store, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Store::connect(&StoreOptions {
        url: format!("sqlite://{}/nested/folder/bot.db", dir.path().display()),
        max_connections: 4,
        pg_schema: None,
    })
    .await
    .unwrap();
    let mut all = vec![("sqlite".to_owned(), sqlite, Some(dir))];
    if let Some(pg) = postgres_store().await {
        all.push(("postgres".to_owned(), pg, None));
    }
    all
}

pub async fn postgres_store() -> Option<Store> {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        static SAID: std::sync::Once = std::sync::Once::new();
        SAID.call_once(|| {
            crate::helpers::say_skipped(
                "TEST_DATABASE_URL is not set: PostgreSQL store tests skipped",
            )
        });
        return None;
    };
    let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
    Some(
        Store::connect(&StoreOptions {
            url,
            max_connections: 4,
            pg_schema: Some(schema),
        })
        .await
        .expect("TEST_DATABASE_URL is set but PostgreSQL is unreachable"),
    )
}

/// A SQLite store in this file.
async fn sqlite_store_at(path: &std::path::Path) -> Store {
    Store::connect(&StoreOptions {
        url: format!("sqlite://{}", path.display()),
        max_connections: 1,
        pg_schema: None,
    })
    .await
    .unwrap()
}

/// Records events with these message ids in one room, in order.
async fn enqueue_all(store: &Store, room_id: &str, ids: &[&str]) {
    for id in ids {
        store
            .enqueue(&NewEvent {
                message_id: id,
                room_id,
                payload: "{}",
                kind: bot::store::EventKind::Message,
            })
            .await
            .unwrap();
    }
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}

#[tokio::test]
async fn inbox_deduplicates_and_keeps_order() {
    for (name, store, _dir) in stores().await {
        let ev = |id: &'static str, room: &'static str| NewEvent {
            message_id: id,
            room_id: room,
            payload: "{}",
            kind: bot::store::EventKind::Message,
        };
        assert_eq!(
            store.enqueue(&ev("m1", "r1")).await.unwrap(),
            Enqueued::New,
            "{name}"
        );
        assert_eq!(
            store.enqueue(&ev("m1", "r1")).await.unwrap(),
            Enqueued::Duplicate,
            "{name}"
        );
        assert_eq!(
            store.enqueue(&ev("m2", "r1")).await.unwrap(),
            Enqueued::New,
            "{name}"
        );
        assert_eq!(
            store.enqueue(&ev("m3", "r2")).await.unwrap(),
            Enqueued::New,
            "{name}"
        );
        assert_eq!(store.pending_rooms().await.unwrap(), ["r1", "r2"], "{name}");

        let first = store.next_pending("r1").await.unwrap().unwrap();
        assert_eq!(first.message_id, "m1", "{name}");
        let attempts = |e: Option<bot::store::PendingEvent>| e.map(|e| (e.seq, e.attempts));
        assert_eq!(
            attempts(store.take_next("r1").await.unwrap()),
            Some((first.seq, 1)),
            "{name}"
        );
        assert_eq!(
            attempts(store.take_next("r1").await.unwrap()),
            Some((first.seq, 2)),
            "{name}"
        );
        store.save_reply(first.seq, "answer").await.unwrap();
        store.set_parts_sent(first.seq, 1).await.unwrap();
        store.set_parts_sent(first.seq, 0).await.unwrap(); // only ever grows
        let again = store.next_pending("r1").await.unwrap().unwrap();
        assert_eq!(
            (again.reply.as_deref(), again.parts_sent, again.attempts),
            (Some("answer"), 1, 2),
            "{name}"
        );

        let conv = ConversationKey::direct("r1");
        let turns = [
            Turn {
                role: Role::User,
                content: "q".into(),
            },
            Turn {
                role: Role::Assistant,
                content: "a".into(),
            },
        ];
        let finish = || Finish {
            outcome: "answered",
            turns: Some((&conv, &turns)),
            keep_messages: 40,
        };
        assert!(store.finish(first.seq, finish()).await.unwrap(), "{name}");
        // A worker that held the room before and finishes late changes nothing: no second
        // set of turns, no new attempt, no progress going backwards.
        assert!(!store.finish(first.seq, finish()).await.unwrap(), "{name}");
        assert_ne!(
            attempts(store.take_next("r1").await.unwrap()).map(|(seq, _)| seq),
            Some(first.seq),
            "{name}: a finished event is not taken again"
        );
        store.save_reply(first.seq, "late").await.unwrap();
        store
            .postpone(first.seq, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(
            store.next_pending("r1").await.unwrap().unwrap().message_id,
            "m2",
            "{name}"
        );
        assert_eq!(store.history(&conv, 10).await.unwrap(), turns, "{name}");
        assert_eq!(
            store.event_outcome("m1").await.unwrap(),
            Some(("done".into(), Some("answered".into()))),
            "{name}"
        );
        // Still a duplicate after it was handled.
        assert_eq!(
            store.enqueue(&ev("m1", "r1")).await.unwrap(),
            Enqueued::Duplicate,
            "{name}"
        );

        // Postponed events are not due, and keep later ones of the room waiting.
        let second = store.next_pending("r1").await.unwrap().unwrap();
        store
            .postpone(second.seq, Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(store.pending_rooms().await.unwrap(), ["r2"], "{name}");

        let counts = store.counts().await.unwrap();
        assert_eq!(
            (
                counts.pending_events,
                counts.processed_events,
                counts.conversations
            ),
            (2, 1, 1),
            "{name}"
        );
        // Recently handled ids are kept by pruning.
        assert_eq!(
            store.prune_inbox(Duration::from_secs(3600)).await.unwrap(),
            0,
            "{name}"
        );
    }
}

#[tokio::test]
async fn room_leases_exclude_other_owners_until_expiry() {
    for (name, store, _dir) in stores().await {
        let ttl = Duration::from_secs(30);
        assert!(store.claim_room("r", "a", ttl).await.unwrap(), "{name}");
        assert!(
            store.claim_room("r", "a", ttl).await.unwrap(),
            "{name}: re-claim by the owner"
        );
        assert!(!store.claim_room("r", "b", ttl).await.unwrap(), "{name}");
        assert!(store.renew_room("r", "a", ttl).await.unwrap(), "{name}");
        assert!(!store.renew_room("r", "b", ttl).await.unwrap(), "{name}");
        store.release_room("r", "a").await.unwrap();
        assert!(
            store
                .claim_room("r", "b", Duration::from_millis(1))
                .await
                .unwrap(),
            "{name}"
        );
        // The 1 ms lease expires (the expiry is what is under test).
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(
            store.claim_room("r", "a", ttl).await.unwrap(),
            "{name}: an expired lease is taken over"
        );
        assert!(
            !store.renew_room("r", "b", ttl).await.unwrap(),
            "{name}: the old owner lost it"
        );
    }
}

#[tokio::test]
async fn users_spaces_and_history() {
    for (name, store, _dir) in stores().await {
        assert!(
            store
                .add_user(&email("Bob@Example.com"), Some("admin@example.com"))
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !store
                .add_user(&email("bob@example.com"), None)
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            store.is_approved(&email("BOB@example.com")).await.unwrap(),
            "{name}"
        );
        assert_eq!(
            store
                .add_users(&[email("c@example.com"), email("bob@example.com")], "cli")
                .await
                .unwrap(),
            1,
            "{name}"
        );
        let users: Vec<String> = store
            .approved_users()
            .await
            .unwrap()
            .iter()
            .map(|u| u.email.to_string())
            .collect();
        assert_eq!(users, ["bob@example.com", "c@example.com"], "{name}");
        assert!(
            store.remove_user(&email("bob@example.com")).await.unwrap(),
            "{name}"
        );
        assert!(
            !store.remove_user(&email("bob@example.com")).await.unwrap(),
            "{name}"
        );

        assert_eq!(store.personality_for("room").await.unwrap(), None, "{name}");
        store
            .set_personality("room", "engineer", "a@example.com")
            .await
            .unwrap();
        store
            .set_personality("room", "writer", "a@example.com")
            .await
            .unwrap();
        assert_eq!(
            store.personality_for("room").await.unwrap().as_deref(),
            Some("writer"),
            "{name}"
        );

        let conv = ConversationKey::thread("room", "root");
        for i in 0..5 {
            let turns = [
                Turn {
                    role: Role::User,
                    content: format!("q{i}"),
                },
                Turn {
                    role: Role::Assistant,
                    content: format!("a{i}"),
                },
            ];
            store.append_turns(&conv, &turns, 4).await.unwrap();
        }
        let history: Vec<String> = store
            .history(&conv, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.content)
            .collect();
        assert_eq!(
            history,
            ["q3", "a3", "q4", "a4"],
            "{name}: only the newest are kept"
        );
        assert_eq!(store.history(&conv, 2).await.unwrap().len(), 2, "{name}");
        assert_eq!(store.clear_history(&conv).await.unwrap(), 4, "{name}");
        assert!(
            store.history(&conv, 100).await.unwrap().is_empty(),
            "{name}"
        );
        store.ping().await.unwrap();
        store.check_writable().await.unwrap();
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        url: format!("sqlite://{}/bot.db", dir.path().display()),
        max_connections: 2,
        pg_schema: None,
    };
    let store = Store::connect(&options).await.unwrap();
    store
        .add_user(&email("keep@example.com"), None)
        .await
        .unwrap();
    store.close().await;
    let store = Store::connect(&options).await.unwrap();
    assert!(store.is_approved(&email("keep@example.com")).await.unwrap());

    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let options = StoreOptions {
            url,
            max_connections: 2,
            pg_schema: Some(schema),
        };
        let pg = Store::connect(&options).await.unwrap();
        pg.add_user(&email("keep@example.com"), None).await.unwrap();
        pg.close().await;
        let pg = Store::connect(&options).await.unwrap();
        assert!(pg.is_approved(&email("keep@example.com")).await.unwrap());
    }
}

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

#[tokio::test]
async fn database_max_connections_sizes_the_postgres_pool_and_sqlite_uses_one() {
    // SQLite has one writer; one connection queues statements fairly (see store.rs).
    let app = crate::helpers::TestApp::spawn(
        crate::helpers::Spawn::default().env("DATABASE_MAX_CONNECTIONS", "3"),
    )
    .await;
    assert_eq!(app.state.store.max_connections(), 1);
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let options = StoreOptions {
        url,
        max_connections: 3,
        pg_schema: Some(format!("t_{}", uuid::Uuid::new_v4().simple())),
    };
    assert_eq!(Store::connect(&options).await.unwrap().max_connections(), 3);
}

#[tokio::test]
async fn an_older_binary_starts_on_a_database_with_a_newer_migration() {
    // A rollback: the database has a migration this binary does not know.
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        url: format!("sqlite://{}/bot.db", dir.path().display()),
        max_connections: 1,
        pg_schema: None,
    };
    let store = Store::connect(&options).await.unwrap();
    store.close().await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}/bot.db", dir.path().display()))
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let store = Store::connect(&options).await.unwrap();
    store.ping().await.unwrap();
}

/// Webhooks arriving together are recorded by one insert: each learns whether its event
/// was new, and a message id delivered twice at once is recorded once.
#[tokio::test]
async fn concurrent_enqueues_are_grouped_and_deduplicated() {
    for (name, store, _dir) in stores().await {
        let ids: Vec<String> = (0..300).map(|i| format!("g{}", i % 150)).collect();
        let outcomes = futures_util::future::join_all(ids.iter().map(|id| {
            let store = store.clone();
            async move {
                store
                    .enqueue(&NewEvent {
                        message_id: id,
                        room_id: "rg",
                        payload: "{}",
                        kind: bot::store::EventKind::Message,
                    })
                    .await
                    .unwrap()
            }
        }))
        .await;
        // Each id was delivered twice: exactly one of the two is new.
        for i in 0..150 {
            let new = [outcomes[i], outcomes[i + 150]]
                .iter()
                .filter(|o| **o == Enqueued::New)
                .count();
            assert_eq!(new, 1, "{name}: g{i} recorded once");
        }
        assert_eq!(store.counts().await.unwrap().pending_events, 150, "{name}");
    }
}

/// `take_next` returns the room's oldest pending event with the attempt counted, nothing
/// while that event backs off (later ones wait behind it), and `release_room_if_idle`
/// keeps the lease exactly while the oldest pending event is due.
#[tokio::test]
async fn take_next_counts_the_attempt_and_release_if_idle_waits_for_due_work() {
    for (name, store, _dir) in stores().await {
        let ttl = Duration::from_secs(30);
        enqueue_all(&store, "rt", &["t1", "t2"]).await;
        assert!(store.claim_room("rt", "me", ttl).await.unwrap());
        assert!(
            !store.release_room_if_idle("rt", "me").await.unwrap(),
            "{name}: due work keeps the lease"
        );
        let first = store.take_next("rt").await.unwrap().unwrap();
        assert_eq!(
            (first.message_id.as_str(), first.attempts),
            ("t1", 1),
            "{name}"
        );
        let again = store.take_next("rt").await.unwrap().unwrap();
        assert_eq!(
            (again.seq, again.attempts),
            (first.seq, 2),
            "{name}: same event until finished"
        );

        // Backing off: nothing is due, not even the later event, and the room is released.
        store
            .postpone(first.seq, Duration::from_secs(60))
            .await
            .unwrap();
        assert!(store.take_next("rt").await.unwrap().is_none(), "{name}");
        assert!(
            store.release_room_if_idle("rt", "me").await.unwrap(),
            "{name}"
        );
        assert_eq!(store.room_owner("rt").await.unwrap(), None, "{name}");

        // Another owner's lease is never released.
        assert!(store.claim_room("rt", "other", ttl).await.unwrap());
        assert!(
            !store.release_room_if_idle("rt", "me").await.unwrap(),
            "{name}"
        );
        assert_eq!(
            store.room_owner("rt").await.unwrap().as_deref(),
            Some("other")
        );

        // Nothing pending at all.
        assert!(
            store.take_next("empty-room").await.unwrap().is_none(),
            "{name}"
        );
    }
}

/// The chat context is the space's personality and the newest turns, oldest first, the
/// same as `personality_for` and `history` give separately.
#[tokio::test]
async fn chat_context_is_personality_and_history_in_one_read() {
    for (name, store, _dir) in stores().await {
        let conversation = ConversationKey::direct("rc");
        assert_eq!(
            store.chat_context("rc", &conversation, 10).await.unwrap(),
            (None, vec![]),
            "{name}"
        );
        let turns: Vec<Turn> = (0..6)
            .map(|i| Turn {
                role: if i % 2 == 0 {
                    Role::User
                } else {
                    Role::Assistant
                },
                content: format!("turn {i}"),
            })
            .collect();
        store
            .append_turns(&conversation, &turns, 100)
            .await
            .unwrap();
        store
            .set_personality("rc", "pirate", "a@example.com")
            .await
            .unwrap();
        let (personality, history) = store.chat_context("rc", &conversation, 4).await.unwrap();
        assert_eq!(personality.as_deref(), Some("pirate"), "{name}");
        assert_eq!(history, turns[2..].to_vec(), "{name}");
        assert_eq!(
            history,
            store.history(&conversation, 4).await.unwrap(),
            "{name}"
        );
    }
}

/// `next_event` takes the lease with the event and releases it when nothing is due; a
/// room leased by another owner gives nothing; the answer saved with the first
/// confirmation is what a later attempt finds.
#[tokio::test]
async fn next_event_holds_the_lease_while_work_is_due_and_releases_it_after() {
    for (name, store, _dir) in stores().await {
        let ttl = Duration::from_secs(30);
        enqueue_all(&store, "rn", &["n1", "n2"]).await;
        let first = store.next_event("rn", "me", ttl).await.unwrap().unwrap();
        assert_eq!(
            (first.message_id.as_str(), first.attempts),
            ("n1", 1),
            "{name}"
        );
        assert_eq!(store.room_owner("rn").await.unwrap().as_deref(), Some("me"));
        // Another owner cannot take the room meanwhile.
        assert!(
            store
                .next_event("rn", "other", ttl)
                .await
                .unwrap()
                .is_none(),
            "{name}"
        );

        // The answer is kept with the confirmation of its first part.
        assert!(
            store
                .confirm_post("rn", "me", ttl, first.seq, 0, Some("the answer"))
                .await
                .unwrap(),
            "{name}"
        );
        assert!(
            !store
                .confirm_post("rn", "other", ttl, first.seq, 0, Some("not mine"))
                .await
                .unwrap(),
            "{name}: another owner's confirmation fails"
        );
        let again = store.next_event("rn", "me", ttl).await.unwrap().unwrap();
        assert_eq!(
            (again.seq, again.attempts, again.reply.as_deref()),
            (first.seq, 2, Some("the answer")),
            "{name}: saved only with a confirmation that succeeded"
        );
        let finish = Finish {
            outcome: "answered",
            turns: None,
            keep_messages: 10,
        };
        assert!(store.finish(first.seq, finish).await.unwrap(), "{name}");
        let second = store.next_event("rn", "me", ttl).await.unwrap().unwrap();
        assert_eq!(second.message_id, "n2", "{name}");
        store
            .postpone(second.seq, Duration::from_secs(60))
            .await
            .unwrap();

        // Nothing due: released in the same step.
        assert!(
            store.next_event("rn", "me", ttl).await.unwrap().is_none(),
            "{name}"
        );
        assert_eq!(store.room_owner("rn").await.unwrap(), None, "{name}");
    }
}

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
    let turns = [
        Turn {
            role: Role::User,
            content: "q".into(),
        },
        Turn {
            role: Role::Assistant,
            content: "a".into(),
        },
    ];
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

/// `MEMORY_MAX_AGE_DAYS`: a conversation whose newest turn is older than the cutoff is
/// deleted whole; one touched since is kept whole, however old its first turns.
#[tokio::test]
async fn conversations_untouched_since_the_cutoff_are_forgotten() {
    for (name, store, _dir) in stores().await {
        let turn = |text: &str| Turn {
            role: Role::User,
            content: text.to_owned(),
        };
        let old = ConversationKey::direct("room-old");
        let revived = ConversationKey::direct("room-revived");
        let fresh = ConversationKey::thread("room-fresh", "root");
        store
            .append_turns(&old, &[turn("a"), turn("b")], 40)
            .await
            .unwrap();
        store
            .append_turns(&revived, &[turn("c")], 40)
            .await
            .unwrap();
        // Turns written clearly before and after the cutoff (the scenario's clock).
        tokio::time::sleep(Duration::from_millis(20)).await;
        let cutoff = bot::store::now_ms();
        tokio::time::sleep(Duration::from_millis(20)).await;
        store
            .append_turns(&revived, &[turn("d")], 40)
            .await
            .unwrap();
        store.append_turns(&fresh, &[turn("e")], 40).await.unwrap();

        let deleted = store
            .forget_conversations_untouched_since(cutoff)
            .await
            .unwrap();
        assert_eq!(deleted, 2, "{name}");
        assert!(store.history(&old, 40).await.unwrap().is_empty(), "{name}");
        assert_eq!(
            store.history(&revived, 40).await.unwrap().len(),
            2,
            "{name}"
        );
        assert_eq!(store.history(&fresh, 40).await.unwrap().len(), 1, "{name}");
        // Again: nothing more to forget.
        assert_eq!(
            store
                .forget_conversations_untouched_since(cutoff)
                .await
                .unwrap(),
            0,
            "{name}"
        );
    }
}
