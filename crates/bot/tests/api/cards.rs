//! Cards, buttons and space events (DESIGN §10.3) against the strict fake Webex: `help` and
//! `personality list` answer with a card, clicks are fetched from `GET /attachment/actions`
//! and obey the typed command's rules, feedback buttons follow answers and count each
//! person's vote once, the bot greets a group space it is added to, cards are never edited.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::streaming::{Kind, Script, SlowLlm};

const ALICE_ID: &str = "P-ALICE";
const ADMIN_ID: &str = "P-ADMIN";
const BOB_ID: &str = "P-BOB";
const BOB: &str = "bob@example.com";

async fn app_with(spawn: Spawn) -> TestApp {
    let app = TestApp::spawn(spawn).await;
    app.approve(ALICE).await;
    mount_person(&app.webex, ALICE_ID, ALICE);
    mount_person(&app.webex, ADMIN_ID, ADMIN);
    mount_person(&app.webex, BOB_ID, BOB);
    app
}

/// Waits until the fake Webex holds `n` cards from the bot; returns them.
async fn wait_cards(app: &TestApp, n: usize) -> Vec<Value> {
    assert!(
        eventually(Duration::from_secs(10), || async {
            posted_cards(&app.webex).len() >= n
        })
        .await,
        "expected {n} cards, got {:?}",
        posted_messages(&app.webex)
    );
    posted_cards(&app.webex)
}

/// Delivers a click and waits until it is handled; returns the outcome.
async fn click(
    app: &TestApp,
    action_id: &str,
    card: &Value,
    person: &str,
    inputs: Value,
) -> String {
    let event = submit_card(&app.webex, action_id, card, person, inputs);
    let res = app.post_event(&event).await;
    assert_eq!(res.status(), 200);
    app.wait_handled(action_id).await
}

fn card_of(message: &Value) -> &Value {
    &message["attachments"][0]["content"]
}

#[tokio::test]
async fn help_and_personality_list_answer_with_a_card_and_the_typed_answer_as_fallback() {
    let app = app_with(Spawn::default()).await;
    app.deliver(&direct_message("M-help", "ROOM-D", ALICE, "help"))
        .await;
    app.wait_handled("M-help").await;
    app.deliver(&direct_message(
        "M-list",
        "ROOM-D",
        ALICE,
        "personality list",
    ))
    .await;
    app.wait_handled("M-list").await;

    let replies = app.replies().await;
    assert_eq!(replies.len(), 2, "{replies:?}");
    for reply in &replies {
        // What Webex takes: one card of the right type, version ≤ 1.3, ≤ 5 actions, a fallback.
        assert_eq!(bot::cards::validate_message(reply), Ok(()), "{reply:#}");
        assert_eq!(reply["roomId"], "ROOM-D");
    }
    let help = &replies[0];
    assert!(help["markdown"].as_str().unwrap().contains("`help`"));
    assert!(
        help["markdown"]
            .as_str()
            .unwrap()
            .contains("`personality NAME`")
    );
    let facts = card_of(help).to_string();
    assert!(facts.contains("personality list"), "{facts}");

    let list = &replies[1];
    let fallback = list["markdown"].as_str().unwrap();
    assert!(fallback.contains("`engineer`"), "{fallback}");
    let card = card_of(list);
    let choice = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "Input.ChoiceSet")
        .expect("a choice");
    assert_eq!(choice["id"], "personality");
    assert_eq!(choice["value"], "default", "the current one is selected");
    let names: Vec<&str> = choice["choices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["value"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"engineer") && names.contains(&"default"),
        "{names:?}"
    );
    assert_eq!(card["actions"][0]["type"], "Action.Submit");
    assert_eq!(
        card["actions"][0]["data"],
        json!({"action": "set_personality"})
    );
    app.stop().await;
}

#[tokio::test]
async fn a_click_switches_the_personality_and_answers_in_the_cards_room_once() {
    let app = app_with(Spawn::default()).await;
    app.deliver(&direct_message(
        "M-list",
        "ROOM-D",
        ALICE,
        "personality list",
    ))
    .await;
    let card = wait_cards(&app, 1).await.remove(0);

    let inputs = json!({"action": "set_personality", "personality": "engineer"});
    assert_eq!(
        click(&app, "ACT-1", &card, ALICE_ID, inputs.clone()).await,
        "command"
    );
    let replies = app.wait_replies(2).await;
    let answer = &replies[1];
    assert_eq!(answer["roomId"], "ROOM-D");
    assert!(answer.get("parentId").is_none(), "{answer}");
    assert!(
        answer["markdown"]
            .as_str()
            .unwrap()
            .contains("**engineer**"),
        "{answer}"
    );
    assert_eq!(
        app.state
            .store
            .personality_for("ROOM-D")
            .await
            .unwrap()
            .as_deref(),
        Some("engineer")
    );
    // The action was read from Webex, with the bot's token.
    assert_eq!(
        requests_to(&app.webex, "GET", "/attachment/actions/ACT-1")
            .await
            .len(),
        1
    );

    // Webex delivers the same click again (and again after a restart): handled once.
    let again = submit_card(&app.webex, "ACT-1", &card, ALICE_ID, inputs.clone());
    let res = app.post_event(&again).await;
    assert_eq!(res.text().await.unwrap(), "duplicate\n");
    let app = app.restart().await;
    let res = app.post_event(&again).await;
    assert_eq!(res.text().await.unwrap(), "duplicate\n");
    // Deliberate: no late reply to the duplicates within 300 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.replies().await.len(), 2);

    // A submit without a choice gets a hint, nothing changes.
    let outcome = click(
        &app,
        "ACT-2",
        &card,
        ALICE_ID,
        json!({"action": "set_personality"}),
    )
    .await;
    assert_eq!(outcome, "command");
    let replies = app.wait_replies(3).await;
    assert!(
        replies[2]["markdown"]
            .as_str()
            .unwrap()
            .contains("Pick a personality")
    );
    app.stop().await;
}

#[tokio::test]
async fn in_a_group_space_only_admins_switch_by_click_and_answers_go_to_the_cards_thread() {
    let app = app_with(Spawn::default()).await;
    app.deliver(&group_message("M-g", "ROOM-G", ALICE, "personality list"))
        .await;
    let card = wait_cards(&app, 1).await.remove(0);
    assert_eq!(card["parentId"], "M-g", "the card is in the asker's thread");

    let inputs = json!({"action": "set_personality", "personality": "writer"});
    click(&app, "ACT-ALICE", &card, ALICE_ID, inputs.clone()).await;
    let replies = app.wait_replies(2).await;
    assert_eq!(replies[1]["roomId"], "ROOM-G");
    assert_eq!(replies[1]["parentId"], "M-g");
    assert!(
        replies[1]["markdown"]
            .as_str()
            .unwrap()
            .contains("only admins"),
        "{}",
        replies[1]
    );
    assert_eq!(
        app.state.store.personality_for("ROOM-G").await.unwrap(),
        None
    );

    click(&app, "ACT-ADMIN", &card, ADMIN_ID, inputs).await;
    let replies = app.wait_replies(3).await;
    assert_eq!(replies[2]["parentId"], "M-g");
    assert_eq!(
        app.state
            .store
            .personality_for("ROOM-G")
            .await
            .unwrap()
            .as_deref(),
        Some("writer")
    );
    app.stop().await;
}

#[tokio::test]
async fn clicks_of_strangers_unknown_actions_and_gone_actions_do_nothing() {
    let app = app_with(Spawn::default()).await;
    app.deliver(&direct_message(
        "M-list",
        "ROOM-D",
        ALICE,
        "personality list",
    ))
    .await;
    let card = wait_cards(&app, 1).await.remove(0);
    let switch = json!({"action": "set_personality", "personality": "engineer"});

    // Bob is not approved: silently ignored, no answer, nothing switched.
    assert_eq!(
        click(&app, "ACT-BOB", &card, BOB_ID, switch.clone()).await,
        "ignored"
    );
    // An action the bot does not know.
    assert_eq!(
        click(
            &app,
            "ACT-X",
            &card,
            ALICE_ID,
            json!({"action": "frobnicate"})
        )
        .await,
        "ignored"
    );
    // A webhook for an action Webex does not know (404).
    let mut event = submit_card(&app.webex, "ACT-GONE", &card, ALICE_ID, switch.clone());
    event["data"]["id"] = json!("ACT-UNKNOWN");
    assert_eq!(app.post_event(&event).await.status(), 200);
    assert_eq!(app.wait_handled("ACT-UNKNOWN").await, "ignored");
    // A click on a card the bot did not post.
    let foreign = direct_message("M-foreign", "ROOM-D", ALICE, "not a card");
    mount_message(&app.webex, &foreign).await;
    assert_eq!(
        click(&app, "ACT-F", &foreign, ALICE_ID, switch).await,
        "ignored"
    );

    // Deliberate: nothing more is posted within 200 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.replies().await.len(),
        1,
        "only the card: {:?}",
        app.replies().await
    );
    assert_eq!(
        app.state.store.personality_for("ROOM-D").await.unwrap(),
        None
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("webex_chatbot_events_ignored_total{reason=\"unapproved\"} 1"),
        "{metrics}"
    );
    app.stop().await;
}

fn metric(text: &str, value: &str) -> u64 {
    let name = format!("webex_chatbot_feedback_total{{value=\"{value}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&name))
        .map_or(0, |n| n.trim().parse().unwrap())
}

#[tokio::test]
async fn feedback_buttons_follow_the_answer_and_each_persons_vote_counts_once() {
    let app = app_with(Spawn::default().env("FEEDBACK_BUTTONS", "true")).await;
    app.deliver(&group_message("M-q", "ROOM-G", ALICE, "what is TCP?"))
        .await;
    app.wait_handled("M-q").await;
    let posted = posted_messages(&app.webex);
    assert_eq!(posted.len(), 2, "{posted:?}");
    // The answer, then the card as its own message in the same room and thread.
    assert_eq!(posted[0]["markdown"], "Echo: what is TCP?");
    assert!(posted[0]["attachments"].is_null());
    let card = posted[1].clone();
    assert_eq!(card["roomId"], "ROOM-G");
    assert_eq!(card["parentId"], "M-q");
    assert_eq!(
        bot::cards::validate_message(&app.replies().await[1]),
        Ok(())
    );
    let data: Vec<&Value> = card_of(&card)["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["data"])
        .collect();
    assert_eq!(
        data,
        [
            &json!({"action": "feedback", "value": "up"}),
            &json!({"action": "feedback", "value": "down"})
        ]
    );
    // Stored with the answer it rates.
    assert_eq!(
        app.state
            .store
            .feedback_answer(card["id"].as_str().unwrap())
            .await
            .unwrap()
            .as_deref(),
        Some("Echo: what is TCP?")
    );

    let up = json!({"action": "feedback", "value": "up"});
    let down = json!({"action": "feedback", "value": "down"});
    assert_eq!(
        click(&app, "FB-1", &card, ALICE_ID, up.clone()).await,
        "feedback"
    );
    // The same vote twice by the same person: counted once.
    assert_eq!(
        click(&app, "FB-2", &card, ALICE_ID, up.clone()).await,
        "feedback"
    );
    let metrics = app.metrics().await;
    assert_eq!(metric(&metrics, "up"), 1, "{metrics}");
    // Changed: the latest wins.
    click(&app, "FB-3", &card, ALICE_ID, down.clone()).await;
    click(&app, "FB-4", &card, ADMIN_ID, up.clone()).await;
    // A stranger's vote is not counted.
    assert_eq!(click(&app, "FB-5", &card, BOB_ID, down).await, "ignored");
    let counts = app.state.store.feedback_counts().await.unwrap();
    assert_eq!((counts.up, counts.down), (1, 1));
    let metrics = app.metrics().await;
    assert_eq!(
        (metric(&metrics, "up"), metric(&metrics, "down")),
        (2, 1),
        "{metrics}"
    );
    // Clicks post nothing.
    assert_eq!(posted_messages(&app.webex).len(), 2);

    // Admins see the counts in `status`.
    app.deliver(&direct_message("M-status", "ROOM-A", ADMIN, "status"))
        .await;
    app.wait_handled("M-status").await;
    let status = app.replies().await.last().unwrap()["markdown"].clone();
    assert!(
        status
            .as_str()
            .unwrap()
            .contains("Feedback on answers: 1 👍, 1 👎"),
        "{status}"
    );
    // Commands get no feedback buttons.
    assert_eq!(posted_cards(&app.webex).len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn without_feedback_buttons_an_answer_is_alone() {
    let app = app_with(Spawn::default()).await;
    app.deliver(&direct_message("M-q", "ROOM-D", ALICE, "hello"))
        .await;
    app.wait_handled("M-q").await;
    // Deliberate: no card follows the answer within 200 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(posted_messages(&app.webex).len(), 1);
    assert!(posted_cards(&app.webex).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn the_feedback_card_follows_a_streamed_answer_and_no_card_is_ever_edited() {
    let answer = "Streamed answer, word by word, slowly enough to be edited a few times.";
    let llm = SlowLlm::start(Script::new(
        Kind::Ollama,
        answer,
        6,
        Duration::from_millis(250),
    ))
    .await;
    let spawn = llm.env(
        Spawn::default()
            .env("FEEDBACK_BUTTONS", "true")
            .env("REPLY_STREAMING", "true")
            .env("STREAM_FIRST_POST_MS", "200")
            .env("STREAM_EDIT_MS", "300"),
    );
    let app = app_with(spawn).await;
    app.deliver(&group_message("M-s", "ROOM-G", ALICE, "tell me slowly"))
        .await;
    app.wait_handled("M-s").await;
    let writes = webex_writes(&app.webex);
    let streamed = &writes[0].message_id;
    assert!(
        writes
            .iter()
            .any(|w| w.method == "PUT" && &w.message_id == streamed),
        "the answer was streamed: {writes:?}"
    );
    let posted = posted_messages(&app.webex);
    assert_eq!(posted.len(), 2, "{posted:?}");
    assert_eq!(posted[0]["markdown"], answer);
    assert_eq!(posted[1]["parentId"], "M-s");
    let card_id = posted[1]["id"].as_str().unwrap();
    assert!(posted[1]["attachments"].is_array());
    // The card came after the answer's last write, and was never edited.
    let card_write = writes.iter().position(|w| w.message_id == card_id).unwrap();
    assert_eq!(card_write, writes.len() - 1, "{writes:?}");
    assert!(
        !writes
            .iter()
            .any(|w| w.method == "PUT" && w.message_id == card_id),
        "{writes:?}"
    );
    app.stop().await;
}

#[tokio::test]
async fn added_to_a_group_space_the_bot_greets_once_and_ignores_other_memberships() {
    let app = app_with(Spawn::default()).await;
    let bot_added = membership_event("MB-1", "ROOM-NEW", "group", BOT_ID, "helpbot@webex.bot");
    let res = app.post_event(&bot_added).await;
    assert_eq!(res.status(), 200);
    let replies = app.wait_replies(1).await;
    assert_eq!(replies[0]["roomId"], "ROOM-NEW");
    assert!(replies[0].get("parentId").is_none());
    let greeting = replies[0]["markdown"].as_str().unwrap();
    assert!(
        greeting.contains("@mention") && greeting.contains("`help`"),
        "{greeting}"
    );
    // Redelivered: greeted once.
    assert_eq!(
        app.post_event(&bot_added).await.text().await.unwrap(),
        "duplicate\n"
    );
    // Someone else added, or the bot in a direct space: nothing recorded, nothing said.
    for event in [
        membership_event("MB-2", "ROOM-NEW", "group", ALICE_ID, ALICE),
        membership_event("MB-3", "ROOM-DIRECT", "direct", BOT_ID, "helpbot@webex.bot"),
    ] {
        let res = app.post_event(&event).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.text().await.unwrap(), "ignored\n");
    }
    // Deliberate: no greeting for these within 300 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.replies().await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn the_greeting_is_the_personalitys_own_when_it_has_one() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("default.toml"),
        "description = \"Greets\"\nsystem_prompt = \"You greet.\"\ngreeting = \"Ahoy! Mention me and say help.\"\n",
    )
    .unwrap();
    let app =
        app_with(Spawn::default().env("PERSONALITIES_DIR", dir.path().to_str().unwrap())).await;
    let event = membership_event("MB-9", "ROOM-P", "group", BOT_ID, "helpbot@webex.bot");
    assert_eq!(app.post_event(&event).await.status(), 200);
    let replies = app.wait_replies(1).await;
    assert_eq!(replies[0]["markdown"], "Ahoy! Mention me and say help.");
    app.stop().await;
}

#[tokio::test]
async fn the_fake_webex_refuses_cards_webex_refuses() {
    let app = app_with(Spawn::default()).await;
    let http = reqwest::Client::new();
    let card = json!({"type": "AdaptiveCard", "version": "1.3", "body": [{"type": "TextBlock", "text": "x"}]});
    let attachment =
        json!({"contentType": "application/vnd.microsoft.card.adaptive", "content": card});
    let cases = [
        json!({"roomId": "R", "markdown": "m", "attachments": [attachment, attachment]}),
        json!({"roomId": "R", "attachments": [attachment]}),
        json!({"roomId": "R", "markdown": "m", "attachments": [{"contentType": "text/html", "content": card}]}),
        json!({"roomId": "R", "markdown": "m", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
            "content": {"type": "AdaptiveCard", "version": "1.5", "body": []}}]}),
    ];
    for body in cases {
        let res = http
            .post(format!("{}/messages", app.webex.uri()))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
    }
    // Unknown attachment actions are 404, and the token is checked.
    let res = http
        .get(format!("{}/attachment/actions/NOPE", app.webex.uri()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = http
        .get(format!("{}/attachment/actions/NOPE", app.webex.uri()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "no route without the token");
    app.stop().await;
}

// ---- the store, on SQLite and (with TEST_DATABASE_URL) PostgreSQL ----------------------

#[tokio::test]
async fn the_inbox_keeps_each_events_kind_and_dedups_each_id_space() {
    use bot::store::{Enqueued, EventKind, NewEvent};
    for (name, store, _dir) in crate::store::stores().await {
        for (id, kind) in [
            ("M-1", EventKind::Message),
            ("ACT-1", EventKind::CardAction),
            ("MB-1@2026-12-07T10:00:00.000Z", EventKind::Membership),
        ] {
            let event = NewEvent {
                message_id: id,
                room_id: "ROOM",
                payload: "{}",
                kind,
            };
            assert_eq!(
                store.enqueue(&event).await.unwrap(),
                Enqueued::New,
                "{name}"
            );
            assert_eq!(
                store.enqueue(&event).await.unwrap(),
                Enqueued::Duplicate,
                "{name}: {id} again"
            );
        }
        let mut kinds = Vec::new();
        while let Some(event) = store
            .next_event("ROOM", "me", Duration::from_secs(30))
            .await
            .unwrap()
        {
            kinds.push((event.message_id.clone(), event.kind));
            let finish = bot::store::Finish {
                outcome: "command",
                turns: None,
                keep_messages: 10,
            };
            assert!(store.finish(event.seq, finish).await.unwrap());
        }
        assert_eq!(
            kinds,
            [
                ("M-1".to_owned(), EventKind::Message),
                ("ACT-1".to_owned(), EventKind::CardAction),
                (
                    "MB-1@2026-12-07T10:00:00.000Z".to_owned(),
                    EventKind::Membership
                ),
            ],
            "{name}"
        );
    }
}

#[tokio::test]
async fn one_vote_per_person_and_card_the_latest_click_wins() {
    use bot::domain::ConversationKey;
    use bot::store::{FeedbackAnswer, Vote};
    for (name, store, _dir) in crate::store::stores().await {
        let conversation = ConversationKey::direct("ROOM");
        store
            .save_feedback_answer(&FeedbackAnswer {
                card_message_id: "CARD",
                room_id: "ROOM",
                conversation: &conversation,
                question_message_id: "Q",
                answer: "the answer",
            })
            .await
            .unwrap();
        let vote = |person: &'static str, value: &'static str, at: i64| {
            let store = store.clone();
            async move { store.record_vote("CARD", person, value, at).await.unwrap() }
        };
        assert_eq!(vote("a@x.com", "up", 10).await, Vote::Counted, "{name}");
        assert_eq!(vote("a@x.com", "up", 20).await, Vote::Unchanged, "{name}");
        assert_eq!(vote("a@x.com", "down", 30).await, Vote::Counted, "{name}");
        // An older click delivered late changes nothing.
        assert_eq!(vote("a@x.com", "up", 25).await, Vote::Unchanged, "{name}");
        assert_eq!(vote("b@x.com", "up", 40).await, Vote::Counted, "{name}");
        assert_eq!(
            store
                .record_vote("OTHER", "a@x.com", "up", 50)
                .await
                .unwrap(),
            Vote::UnknownCard,
            "{name}"
        );
        let counts = store.feedback_counts().await.unwrap();
        assert_eq!((counts.up, counts.down), (1, 1), "{name}");
        assert_eq!(
            store.feedback_answer("CARD").await.unwrap().as_deref(),
            Some("the answer"),
            "{name}"
        );
    }
}
