//! The fake Webex: `people/me`, messages (get, post, edit, delete) and `contents`, as strict
//! as Webex on what the bot sends.

use super::*;

#[derive(Clone)]
pub(super) struct Fake {
    pub(super) tracker: Arc<Tracker>,
    pub(super) file: Option<FileSpec>,
    pub(super) llm_delay: Duration,
    /// Edits accepted per message ([`MAX_EDITS`] like Webex; fewer to make the bot fall
    /// back to deleting the message and posting the whole answer).
    pub(super) max_edits: u32,
}

pub(super) fn json_response(value: &Value) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

impl Fake {
    /// A Webex error answer (counted as refused).
    pub(super) fn refuse(&self, status: StatusCode, message: &str) -> Response {
        self.tracker.refused.fetch_add(1, Ordering::Relaxed);
        (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            json!({
                "message": message,
                "errors": [{"description": message}],
                "trackingId": format!("BENCH_FAKE_{}", status.as_u16())
            })
            .to_string(),
        )
            .into_response()
    }

    /// Webex answers 401 without the bot's bearer token.
    pub(super) fn check_auth(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let expected = format!("Bearer {TOKEN}");
        match headers.get(header::AUTHORIZATION).map(|v| v.to_str()) {
            Some(Ok(v)) if v == expected => Ok(()),
            _ => Err((
                StatusCode::UNAUTHORIZED,
                "The request requires a valid access token set in the Authorization request header.",
            )),
        }
    }

    /// A message body as Webex checks it: JSON, `roomId`, `markdown` or `text` of at
    /// most 7439 bytes. Returns the room and the text.
    pub(super) fn message_body(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(usize, String), Refusal> {
        self.check_auth(headers)?;
        let json_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json_type {
            return Err((
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json",
            ));
        }
        let Ok(v) = serde_json::from_slice::<Value>(body) else {
            return Err((StatusCode::BAD_REQUEST, "Invalid JSON"));
        };
        let Some(room) = v["roomId"].as_str() else {
            return Err((StatusCode::BAD_REQUEST, "roomId is required"));
        };
        let Some(room) = parse_room(room) else {
            return Err((StatusCode::NOT_FOUND, "Room not found"));
        };
        let Some(text) = v["markdown"].as_str().or(v["text"].as_str()) else {
            return Err((StatusCode::BAD_REQUEST, "text or markdown is required"));
        };
        if text.len() > MAX_MESSAGE_BYTES {
            return Err((
                StatusCode::BAD_REQUEST,
                "Message length limited to 7439 characters before encryption and 10000 characters after encryption",
            ));
        }
        Ok((room, text.to_owned()))
    }
}

pub(super) fn message_json(id: &str, room: usize, text: &str) -> Value {
    json!({
        "id": id, "roomId": room_id(room), "roomType": "direct", "markdown": text,
        "personId": BOT_ID, "personEmail": "benchbot@webex.bot",
        "created": "2026-11-20T09:20:01.000Z"
    })
}

pub(super) async fn people_me(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    if let Err((status, message)) = fake.check_auth(&headers) {
        return fake.refuse(status, message);
    }
    json_response(&json!({
        "id": BOT_ID, "emails": ["benchbot@webex.bot"], "displayName": "BenchBot",
        "nickName": "BenchBot", "type": "bot", "created": "2026-01-10T08:00:00.000Z"
    }))
}

/// `GET /messages/{id}`: synthesised from the id, a direct message from an approved domain.
pub(super) async fn get_message(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Err((status, message)) = fake.check_auth(&headers) {
        return fake.refuse(status, message);
    }
    let Some((_, room)) = parse_id(&id) else {
        return fake.refuse(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    };
    let mut message = json!({
        "id": id, "roomId": room_id(room), "roomType": "direct",
        "text": format!("bench {id}"), "personId": format!("PERSON-{room}"),
        "personEmail": person_email(room), "created": "2026-11-20T09:20:00.000Z"
    });
    if fake.file.is_some() {
        // On this fake's own host, as Webex lists `…/contents/{id}` on its API host.
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        message["files"] = json!([format!("http://{host}/contents/{id}")]);
    }
    json_response(&message)
}

/// `GET /contents/{id}`: the files-mode file, with its name and type as Webex sends them.
pub(super) async fn get_content(State(fake): State<Fake>, headers: HeaderMap) -> Response {
    if let Err((status, message)) = fake.check_auth(&headers) {
        return fake.refuse(status, message);
    }
    let Some(file) = &fake.file else {
        return fake.refuse(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    };
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, file.content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", file.name),
            ),
        ],
        file.bytes.clone(),
    )
        .into_response()
}

/// `POST /messages`: a new message of the bot; a finished answer in it counts as a reply.
pub(super) async fn post_message(
    State(fake): State<Fake>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let tracker = &fake.tracker;
    tracker.posts.fetch_add(1, Ordering::Relaxed);
    let now = tracker.now_ns();
    let (room, text) = match fake.message_body(&headers, &body) {
        Ok(checked) => checked,
        Err((status, message)) => return fake.refuse(status, message),
    };
    let n = tracker.next_message.fetch_add(1, Ordering::AcqRel);
    let id = format!("REPLY-{n}");
    match usize::try_from(n)
        .ok()
        .and_then(|n| tracker.messages.get(n))
    {
        Some(slot) => {
            slot.post_ns.store(now, Ordering::Relaxed);
            slot.room.store(room as u64 + 1, Ordering::Release);
            tracker.credit(slot, &text, now);
        }
        None => {
            tracker.untracked.fetch_add(1, Ordering::Relaxed);
        }
    }
    json_response(&message_json(&id, room, &text))
}

/// `PUT /messages/{id}`: an edit of a message the bot created here, in its own room, at
/// most 10 per message (the 11th is a 400, like Webex).
pub(super) async fn edit_message(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let tracker = &fake.tracker;
    tracker.puts.fetch_add(1, Ordering::Relaxed);
    let now = tracker.now_ns();
    let (room, text) = match fake.message_body(&headers, &body) {
        Ok(checked) => checked,
        Err((status, message)) => return fake.refuse(status, message),
    };
    let Some(slot) = tracker
        .message(&id)
        .filter(|m| !m.deleted.load(Ordering::Relaxed))
    else {
        return fake.refuse(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    };
    if slot.room.load(Ordering::Acquire) != room as u64 + 1 {
        return fake.refuse(StatusCode::BAD_REQUEST, "roomId does not match the message");
    }
    if slot
        .edits
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |e| {
            (e < fake.max_edits).then_some(e + 1)
        })
        .is_err()
    {
        return fake.refuse(StatusCode::BAD_REQUEST, "Message edit limit reached");
    }
    tracker.credit(slot, &text, now);
    let mut message = message_json(&id, room, &text);
    message["updated"] = json!("2026-11-20T09:20:02.000Z");
    json_response(&message)
}

/// `DELETE /messages/{id}`: 204, then the message is gone (and no longer counts as a
/// reply).
pub(super) async fn delete_message(
    State(fake): State<Fake>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let tracker = &fake.tracker;
    tracker.deletes.fetch_add(1, Ordering::Relaxed);
    if let Err((status, message)) = fake.check_auth(&headers) {
        return fake.refuse(status, message);
    }
    let Some(slot) = tracker
        .message(&id)
        .filter(|m| !m.deleted.swap(true, Ordering::AcqRel))
    else {
        return fake.refuse(
            StatusCode::NOT_FOUND,
            "The requested resource could not be found.",
        );
    };
    let answer_of = slot.answer_of.load(Ordering::Acquire);
    if answer_of == 0
        && let Some(room) = usize::try_from(slot.room.load(Ordering::Acquire))
            .ok()
            .and_then(|r| r.checked_sub(1))
            .and_then(|r| tracker.deleted_unfinished_ns.get(r))
    {
        room.store(slot.post_ns.load(Ordering::Relaxed), Ordering::Relaxed);
    }
    if let Some(replies) = usize::try_from(answer_of)
        .ok()
        .and_then(|a| a.checked_sub(1))
        .and_then(|idx| tracker.replies.get(idx))
    {
        replies.fetch_sub(1, Ordering::Relaxed);
    }
    StatusCode::NO_CONTENT.into_response()
}
