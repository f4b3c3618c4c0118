//! One store suite, run against SQLite always and PostgreSQL when `TEST_DATABASE_URL` is
//! set (each test in its own schema, so tests run in parallel on one database).

use std::time::Duration;

use bot::domain::{ConversationKey, Email, Role, Turn};
use bot::store::{Backend, Enqueued, Finish, NewEvent, Store, StoreOptions};

use crate::eventually::eventually;

mod data;
mod durability;
mod inbox;
mod leadership;
mod schema;

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

/// A user turn and the assistant's answer to it: what a finished event stores.
fn question_and_answer(question: &str, answer: &str) -> [Turn; 2] {
    [
        Turn {
            role: Role::User,
            content: question.into(),
        },
        Turn {
            role: Role::Assistant,
            content: answer.into(),
        },
    ]
}

fn email(s: &str) -> Email {
    Email::parse(s).unwrap()
}
