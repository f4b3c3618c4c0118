//! Cards and space events (DESIGN §10.3) arrive over the socket too.

use super::*;

#[tokio::test]
async fn a_card_submitted_over_the_socket_is_fetched_and_handled_once() {
    let mercury = FakeMercury::start(None).await;
    let (app, _wdm) = spawn_with_new_device(&mercury).await;
    let (message_uuid, room_uuid) = (new_uuid(), new_uuid());
    mount_direct(&app, &message_uuid, &room_uuid, "personality list").await;
    mercury.send(&post_event("ENV-L", &message_uuid, &room_uuid, ALICE_UUID));
    let card = eventually_some(Duration::from_secs(10), || async {
        posted_cards(&app.webex).into_iter().next()
    })
    .await
    .expect("the personality card");

    // The admin clicks Switch: Mercury says `cardAction`; the inputs come from REST.
    let action_uuid = new_uuid();
    let action_id = rest_id("ATTACHMENT_ACTION", &action_uuid);
    let admin_id = rest_id("PEOPLE", ALICE_UUID);
    mount_person(&app.webex, &admin_id, ADMIN);
    submit_card(
        &app.webex,
        &action_id,
        &card,
        &admin_id,
        json!({"action": "set_personality", "personality": "teacher"}),
    );
    let event = card_action_event("ENV-C", &action_uuid, &new_uuid(), &room_uuid, ALICE_UUID);
    mercury.send(&event);
    mercury.send(&event);
    mercury.wait_ack("ENV-C").await;
    assert_eq!(app.wait_handled(&action_id).await, "command");
    let replies = app.wait_replies(2).await;
    assert_eq!(replies[1]["roomId"], rest_id("ROOM", &room_uuid));
    assert!(
        replies[1]["markdown"]
            .as_str()
            .unwrap()
            .contains("**teacher**")
    );
    assert_eq!(
        app.state
            .store
            .personality_for(&rest_id("ROOM", &room_uuid))
            .await
            .unwrap()
            .as_deref(),
        Some("teacher")
    );
    // Deliberate: nothing more within 300 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.replies().await.len(),
        2,
        "the redelivery was not handled again"
    );
    assert_eq!(
        requests_to(
            &app.webex,
            "GET",
            &format!("/attachment/actions/{action_id}")
        )
        .await
        .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn the_bot_added_to_a_space_over_the_socket_greets_it() {
    let mercury = FakeMercury::start(None).await;
    let (app, _wdm) = spawn_with_new_device(&mercury).await;
    let room_uuid = new_uuid();
    // Someone else added, and the bot in a direct space: acknowledged, nothing said.
    mercury.send(&add_event("ENV-OTHER", ALICE_UUID, &room_uuid, "GROUP"));
    mercury.send(&add_event(
        "ENV-DIRECT",
        BOT_UUID,
        &new_uuid(),
        "ONE_ON_ONE",
    ));
    mercury.send(&add_event("ENV-BOT", BOT_UUID, &room_uuid, "GROUP"));
    mercury.wait_ack("ENV-OTHER").await;
    mercury.wait_ack("ENV-DIRECT").await;
    mercury.wait_ack("ENV-BOT").await;
    let replies = app.wait_replies(1).await;
    assert_eq!(replies[0]["roomId"], rest_id("ROOM", &room_uuid));
    assert!(replies[0]["markdown"].as_str().unwrap().contains("`help`"));
    // Deliberate: nothing more within 300 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.replies().await.len(), 1);
    app.stop().await;
}
