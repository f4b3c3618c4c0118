//! Each call as Webex documents it: people, base URLs, messages (create, edit, delete,
//! list), cards and attachment actions.

use super::*;

#[tokio::test]
async fn me_fetches_people_me_with_the_bearer_token() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/people/me"))
        .and(bearer_token(TOKEN))
        .and(header("accept", "application/json"))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ME)))
        .expect(1)
        .mount(&server)
        .await;

    let me = client(&server).me().await.unwrap();
    assert_eq!(me.display_name, "HelpBot");
    assert_eq!(me.person_type.as_deref(), Some("bot"));
    assert_eq!(me.emails, vec!["helpbot@webex.bot"]);
    assert!(me.id.same_person("249f74d9-db8a-43ca-896b-879ed240ac53"));
}

#[tokio::test]
async fn base_url_with_or_without_trailing_slash_or_prefix() {
    for prefix in ["", "/", "/v1", "/v1/"] {
        let server = MockServer::start().await;
        let want = if prefix.contains("v1") {
            "/v1/people/me"
        } else {
            "/people/me"
        };
        Mock::given(method("GET"))
            .and(path(want))
            .and(bearer_token(TOKEN))
            .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ME)))
            .expect(1)
            .mount(&server)
            .await;
        client_at(&server, prefix).me().await.unwrap();
    }
}

#[tokio::test]
async fn get_person_puts_the_id_in_the_path() {
    let server = MockServer::start().await;
    let id = fixture(ME)["id"].as_str().unwrap().to_owned();
    Mock::given(method("GET"))
        .and(path(format!("/v1/people/{id}")))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(ME)))
        .expect(1)
        .mount(&server)
        .await;
    let person = client(&server)
        .get_person(&PersonId::new(id.clone()))
        .await
        .unwrap();
    assert_eq!(person.id.as_str(), id);
}

#[tokio::test]
async fn create_message_sends_room_thread_and_markdown() {
    let server = MockServer::start().await;
    let parent = fixture(DESKTOP)["id"].as_str().unwrap().to_owned();
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(bearer_token(TOKEN))
        .and(JsonContentType)
        .and(body_json(
            json!({"roomId": ROOM_ID, "parentId": parent, "markdown": "**429** means *slow down*"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(DIRECT)))
        .expect(1)
        .mount(&server)
        .await;
    let msg = NewMessage::markdown(RoomId::new(ROOM_ID), "**429** means *slow down*")
        .in_thread(Some(MessageId::new(parent)));
    client(&server).create_message(&msg).await.unwrap();
}

#[tokio::test]
async fn edit_message_puts_room_and_markdown() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(format!("/v1/messages/{MESSAGE_ID}")))
        .and(bearer_token(TOKEN))
        .and(JsonContentType)
        .and(body_json(json!({"roomId": ROOM_ID, "markdown": "edited"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(DIRECT)))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .edit_message(&MessageId::new(MESSAGE_ID), &RoomId::new(ROOM_ID), "edited")
        .await
        .unwrap();
}

#[tokio::test]
async fn delete_message_expects_204() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path(format!("/v1/messages/{MESSAGE_ID}")))
        .and(bearer_token(TOKEN))
        .and(NoBody)
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    client(&server)
        .delete_message(&MessageId::new(MESSAGE_ID))
        .await
        .unwrap();
}

#[tokio::test]
async fn list_messages_asks_for_one_room_or_thread() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("roomId", ROOM_ID))
        .and(query_param("parentId", MESSAGE_ID))
        .and(query_param("max", "50"))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [fixture(DIRECT)]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("roomId", ROOM_ID))
        .and(query_param("max", "100"))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": []})))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server);
    let room = RoomId::new(ROOM_ID);
    let thread = c
        .list_messages(&room, Some(&MessageId::new(MESSAGE_ID)), 50)
        .await
        .unwrap();
    assert_eq!(thread.len(), 1);
    assert_eq!(thread[0].id.as_str(), MESSAGE_ID);
    // `max` is clamped to what Webex accepts.
    assert!(c.list_messages(&room, None, 500).await.unwrap().is_empty());
}

#[tokio::test]
async fn create_card_message_posts_one_adaptive_card_with_its_fallback() {
    let server = MockServer::start().await;
    let card = json!({"type": "AdaptiveCard", "version": "1.3",
        "body": [{"type": "TextBlock", "text": "Hi"}]});
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(bearer_token(TOKEN))
        .and(JsonContentType)
        .and(body_json(json!({
            "roomId": ROOM_ID,
            "markdown": "Hi",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}]
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(fixture(DIRECT)))
        .expect(1)
        .mount(&server)
        .await;
    let msg = webex::NewCardMessage::new(RoomId::new(ROOM_ID), None, "Hi", card.clone());
    client(&server).create_card_message(&msg).await.unwrap();
}

#[tokio::test]
async fn get_attachment_action_reads_the_inputs_and_retries_a_lagging_404() {
    let server = MockServer::start().await;
    let id = "Y2lzY29zcGFyazovL3VzL0FUVEFDSE1FTlRfQUNUSU9OLzEyMw";
    let route = format!("/v1/attachment/actions/{id}");
    Mock::given(method("GET"))
        .and(path(&route))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"message": "not found"})))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(&route))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": id, "type": "submit", "messageId": MESSAGE_ID, "personId": "P", "roomId": ROOM_ID,
            "inputs": {"action": "feedback", "value": "up"}, "created": "2026-12-07T10:00:00.000Z"
        })))
        .expect(1)
        .mount(&server)
        .await;
    let action = client(&server).get_attachment_action(id).await.unwrap();
    assert_eq!(action.message_id.as_str(), MESSAGE_ID);
    assert_eq!(action.inputs["action"], "feedback");
    assert_eq!(action.room_id.as_ref().map(RoomId::as_str), Some(ROOM_ID));
}
