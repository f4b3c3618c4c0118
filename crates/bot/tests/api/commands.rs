//! Chat commands through `/webhook`, with every permission case.

use serde_json::{Value, json};

use crate::helpers::*;

const BOB: &str = "bob@example.com";

/// Sends `text` as a direct message from `email` in `room` and returns the bot's answer.
async fn say(app: &TestApp, id: &str, room: &str, email: &str, text: &str) -> String {
    let before = app.replies().await.len();
    let message = direct_message(id, room, email, text);
    app.deliver(&message).await;
    app.wait_handled(id).await;
    let replies = app.replies().await;
    assert_eq!(replies.len(), before + 1, "one answer to {text:?}");
    replies.last().unwrap()["markdown"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The same in a group space, mentioning the bot.
async fn say_in_group(app: &TestApp, id: &str, email: &str, text: &str) -> String {
    let before = app.replies().await.len();
    let mut message = fixture("message-group-mention-desktop.json");
    message["id"] = json!(id);
    message["personEmail"] = json!(email);
    message["text"] = json!(format!("HelpBot {text}"));
    message["html"] = json!(format!(
        "<p><spark-mention data-object-type=\"person\" data-object-id=\"{BOT_ID}\">HelpBot</spark-mention> {text}</p>"
    ));
    app.deliver(&message).await;
    app.wait_handled(id).await;
    let replies = app.replies().await;
    assert_eq!(replies.len(), before + 1);
    replies.last().unwrap()["markdown"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn help_lists_what_each_person_may_use() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let user_help = say(&app, "h1", "R-h1", ALICE, "help").await;
    assert!(
        user_help.contains("reset") && user_help.contains("personality NAME"),
        "{user_help}"
    );
    assert!(
        !user_help.contains("add user") && !user_help.contains("status"),
        "{user_help}"
    );
    let admin_help = say(&app, "h2", "R-h2", ADMIN, "/HELP").await;
    assert!(
        admin_help.contains("add user")
            && admin_help.contains("list users")
            && admin_help.contains("status"),
        "{admin_help}"
    );
    let group_help = say_in_group(&app, "h3", ALICE, "help").await;
    assert!(
        !group_help.contains("personality NAME"),
        "non-admins cannot switch in groups: {group_help}"
    );
    assert!(
        app.llm_requests().await.is_empty(),
        "commands never reach the LLM"
    );
}

#[tokio::test]
async fn near_misses_go_to_the_llm() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let answer = say(&app, "nm1", "R-nm", ALICE, "help me write an email").await;
    assert_eq!(answer, "Echo: help me write an email");
    assert_eq!(app.llm_requests().await.len(), 1);
}

#[tokio::test]
async fn admin_commands_are_refused_to_users_without_leaking_data() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    app.approve(BOB).await;
    for (i, cmd) in [
        "list users",
        "add user eve@example.com",
        "remove user bob@example.com",
        "status",
    ]
    .iter()
    .enumerate()
    {
        let answer = say(&app, &format!("deny{i}"), "R-deny", ALICE, cmd).await;
        assert!(answer.contains("only admins"), "{cmd}: {answer}");
        assert!(
            !answer.contains(BOB) && !answer.contains(ADMIN),
            "{cmd}: {answer}"
        );
    }
    let eve = bot::domain::Email::parse("eve@example.com").unwrap();
    let bob = bot::domain::Email::parse(BOB).unwrap();
    assert!(!app.state.store.is_approved(&eve).await.unwrap());
    assert!(app.state.store.is_approved(&bob).await.unwrap());
}

#[tokio::test]
async fn admins_manage_users() {
    let app = TestApp::spawn(Spawn::default()).await;
    let added = say(&app, "u1", "R-u", ADMIN, "add user Carol@Example.com").await;
    assert!(added.contains("carol@example.com"), "{added}");
    let again = say(&app, "u2", "R-u", ADMIN, "add user carol@example.com").await;
    assert!(again.contains("already"), "{again}");
    let invalid = say(&app, "u3", "R-u", ADMIN, "add user carol").await;
    assert!(invalid.contains("not a valid email"), "{invalid}");
    let list = say(&app, "u4", "R-u", ADMIN, "list users").await;
    assert!(
        list.contains("carol@example.com") && list.contains(ADMIN),
        "{list}"
    );
    let admin_removal = say(&app, "u5", "R-u", ADMIN, &format!("remove user {ADMIN}")).await;
    assert!(
        admin_removal.contains("cannot be removed"),
        "{admin_removal}"
    );
    // Carol can talk now; after removal she is ignored.
    assert_eq!(
        say(&app, "u6", "R-carol", "carol@example.com", "hi").await,
        "Echo: hi"
    );
    let removed = say(&app, "u7", "R-u", ADMIN, "remove user carol@example.com").await;
    assert!(removed.contains("Removed"), "{removed}");
    let message = direct_message("u8", "R-carol", "carol@example.com", "still there?");
    app.deliver(&message).await;
    assert_eq!(app.wait_handled("u8").await, "ignored");
    let status = say(&app, "u9", "R-u", ADMIN, "status").await;
    assert!(
        status.contains(env!("CARGO_PKG_VERSION"))
            && status.contains("ollama")
            && status.contains("reachable"),
        "{status}"
    );
}

#[tokio::test]
async fn reset_forgets_the_conversation() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    say(&app, "r1", "R-reset", ALICE, "remember the number 42").await;
    assert!(
        say(&app, "r2", "R-reset", ALICE, "reset")
            .await
            .contains("forgotten")
    );
    assert!(
        say(&app, "r3", "R-reset", ALICE, "reset")
            .await
            .contains("nothing to forget")
    );
    say(&app, "r4", "R-reset", ALICE, "what number?").await;
    let last = app.llm_requests().await.last().unwrap().clone();
    let messages = last["messages"].as_array().unwrap();
    assert_eq!(
        messages.len(),
        2,
        "system + the new question only: {messages:?}"
    );
}

fn system_prompt(request: &Value) -> String {
    request["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn personality_switch_changes_the_prompt_and_survives_a_restart() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let current = say(&app, "p1", "R-p", ALICE, "personality").await;
    assert!(current.contains("default"), "{current}");
    let list = say(&app, "p2", "R-p", ALICE, "personality list").await;
    for name in ["default", "engineer", "teacher", "writer"] {
        assert!(list.contains(name), "{list}");
    }
    let unknown = say(&app, "p3", "R-p", ALICE, "personality pirate").await;
    assert!(unknown.contains("no personality called"), "{unknown}");
    // A user may switch in a direct space.
    let switched = say(&app, "p4", "R-p", ALICE, "personality engineer").await;
    assert!(switched.contains("engineer"), "{switched}");
    say(&app, "p5", "R-p", ALICE, "review my code").await;
    let request = app.llm_requests().await.last().unwrap().clone();
    assert!(
        system_prompt(&request).contains("senior software engineer"),
        "{}",
        system_prompt(&request)
    );
    // The engineer personality sets temperature 0.3 and max_tokens 2048 → Ollama options.
    assert_eq!(request["options"]["num_predict"], 2048);
    assert!((request["options"]["temperature"].as_f64().unwrap() - 0.3).abs() < 1e-6);

    let app = app.restart().await;
    say(&app, "p6", "R-p", ALICE, "and now?").await;
    let request = app.llm_requests().await.last().unwrap().clone();
    assert!(
        system_prompt(&request).contains("senior software engineer"),
        "the choice survives a restart"
    );
}

#[tokio::test]
async fn in_group_spaces_only_admins_switch_personality() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let denied = say_in_group(&app, "g1", ALICE, "personality writer").await;
    assert!(denied.contains("only admins"), "{denied}");
    let ok = say_in_group(&app, "g2", ADMIN, "personality writer").await;
    assert!(ok.contains("writer"), "{ok}");
    let current = say_in_group(&app, "g3", ALICE, "personality").await;
    assert!(current.contains("writer"), "{current}");
}
