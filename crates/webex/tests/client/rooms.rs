//! Rooms by activity and a room's messages, as the websocket catch-up reads them.

use super::*;

fn room(id: &str, kind: &str, last_activity: &str) -> Value {
    json!({"id": id, "title": "t", "type": kind, "isLocked": false,
           "lastActivity": last_activity, "created": "2026-01-01T00:00:00.000Z"})
}

#[tokio::test]
async fn list_rooms_by_activity_follows_pages_until_a_refused_room() {
    let server = MockServer::start().await;
    let next = format!(
        "{}/v1/rooms?sortBy=lastactivity&max=3&cursor=page2",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/v1/rooms"))
        .and(query_param("cursor", "page2"))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [
            room("r3", "group", "2026-11-20T09:00:03.000Z"),
            room("old", "direct", "2026-11-01T00:00:00.000Z"),
            room("older", "direct", "2026-10-01T00:00:00.000Z"),
        ]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/rooms"))
        .and(query_param("sortBy", "lastactivity"))
        .and(query_param("max", "3"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", format!(r#"<{next}>; rel="next""#).as_str())
                .set_body_json(json!({"items": [
                    room("r1", "direct", "2026-11-20T09:00:05.000Z"),
                    room("r2", "direct", "2026-11-20T09:00:04.000Z"),
                ]})),
        )
        .expect(2)
        .mount(&server)
        .await;
    let listing = client(&server)
        .list_rooms_by_activity(2, |r| r.last_activity.as_deref() > Some("2026-11-10"))
        .await
        .unwrap();
    // Two rooms is the bound, and a third one was wanted: not complete.
    let ids: Vec<&str> = listing.items.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r1", "r2"]);
    assert!(!listing.complete);
    assert_eq!(listing.items[0].room_type, Some(webex::RoomType::Direct));

    let listing = client(&server)
        .list_rooms_by_activity(2, |r| {
            r.last_activity.as_deref() > Some("2026-11-20T09:00:04.5")
        })
        .await
        .unwrap();
    assert_eq!(listing.items.len(), 1);
    assert!(listing.complete, "stopped at the first older room");
}

#[tokio::test]
async fn list_room_messages_asks_for_mentions_and_reads_every_page() {
    let server = MockServer::start().await;
    let message = |id: &str| {
        let mut m = fixture(DESKTOP);
        m["id"] = json!(id);
        m
    };
    let next = format!(
        "{}/v1/messages?roomId=R&mentionedPeople=me&max=51&beforeMessage=m2",
        server.uri()
    );
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("beforeMessage", "m2"))
        .and(query_param("mentionedPeople", "me"))
        .and(bearer_token(TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [message("m3")]})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("roomId", "R"))
        .and(query_param("mentionedPeople", "me"))
        .and(query_param("max", "51"))
        .and(bearer_token(TOKEN))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("Link", format!(r#"<{next}>; rel="next""#).as_str())
                .set_body_json(json!({"items": [message("m1"), message("m2")]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let listing = client(&server)
        .list_room_messages(&RoomId::new("R"), true, 50, |_| true)
        .await
        .unwrap();
    let ids: Vec<&str> = listing.items.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["m1", "m2", "m3"]);
    assert!(listing.complete);
}

#[tokio::test]
async fn list_room_messages_in_a_direct_room_does_not_filter_mentions() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/messages"))
        .and(query_param("roomId", ROOM_ID))
        .and(query_param("max", "100"))
        .and(bearer_token(TOKEN))
        .and(NoMentionFilter)
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [fixture(DIRECT)]})))
        .expect(1)
        .mount(&server)
        .await;
    let listing = client(&server)
        .list_room_messages(&RoomId::new(ROOM_ID), false, 500, |_| true)
        .await
        .unwrap();
    assert_eq!(listing.items.len(), 1);
    assert!(listing.complete);
}

struct NoMentionFilter;

impl Match for NoMentionFilter {
    fn matches(&self, request: &Request) -> bool {
        request
            .url
            .query_pairs()
            .all(|(k, _)| k != "mentionedPeople")
    }
}
