//! The inbox: deduplication and order, grouping of concurrent enqueues, attempts, and the
//! room leases held while work is due.

use super::*;

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
        let turns = question_and_answer("q", "a");
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

/// `finish_then_next`: the done mark with its turns and, where the backend does both in
/// one round trip (SQLite), the room's next step as `next_event` would answer it: the
/// next event with its attempt counted and the lease kept, then, with nothing due, the
/// lease released. On PostgreSQL only the done mark is stored and the worker asks itself.
#[tokio::test]
async fn the_done_mark_takes_the_rooms_next_step_in_the_same_round_trip_on_sqlite() {
    for (name, store, _dir) in stores().await {
        let one_trip = store.backend() == Backend::Sqlite;
        let ttl = Duration::from_secs(30);
        let next_in = bot::store::NextIn {
            room_id: "rf",
            owner: "me",
            ttl,
        };
        enqueue_all(&store, "rf", &["f1", "f2"]).await;
        let first = store.next_event("rf", "me", ttl).await.unwrap().unwrap();
        let conversation = ConversationKey::direct("rf");
        let turns = question_and_answer("question", "answer");
        let finish = |turns| Finish {
            outcome: "answered",
            turns,
            keep_messages: 10,
        };
        let finished = store
            .finish_then_next(
                first.seq,
                finish(Some((&conversation, &turns[..]))),
                Some(next_in),
            )
            .await
            .unwrap();
        assert!(finished.done, "{name}");
        assert_eq!(
            store.history(&conversation, 10).await.unwrap(),
            turns.to_vec(),
            "{name}: the turns are stored with the done mark"
        );
        assert_eq!(
            store.event_outcome("f1").await.unwrap(),
            Some(("done".into(), Some("answered".into()))),
            "{name}"
        );
        let second = if one_trip {
            let second = finished.next.expect("taken").expect("f2 is due");
            assert_eq!(
                (second.message_id.as_str(), second.attempts),
                ("f2", 1),
                "{name}"
            );
            second
        } else {
            assert!(finished.next.is_none(), "{name}: not taken");
            store.next_event("rf", "me", ttl).await.unwrap().unwrap()
        };
        assert_eq!(store.room_owner("rf").await.unwrap().as_deref(), Some("me"));

        // Without turns, and with nothing due after it: the lease goes with the done mark.
        let finished = store
            .finish_then_next(second.seq, finish(None), Some(next_in))
            .await
            .unwrap();
        assert!(finished.done, "{name}");
        if one_trip {
            assert!(matches!(finished.next, Some(None)), "{name}");
            assert_eq!(store.room_owner("rf").await.unwrap(), None, "{name}");
        } else {
            assert!(finished.next.is_none(), "{name}");
        }
        // An event already finished is not finished twice (and takes nothing either).
        let again = store
            .finish_then_next(second.seq, finish(None), None)
            .await
            .unwrap();
        assert!(!again.done && again.next.is_none(), "{name}");
        assert_eq!(store.counts().await.unwrap().pending_events, 0, "{name}");
    }
}
