//! Migrations (idempotent; an older binary on a newer schema) and the connection pool.

use super::*;

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
