//! Users, spaces, history and the chat context; forgetting old conversations.

use super::*;

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
