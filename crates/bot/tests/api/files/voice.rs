//! Voice notes: transcribed into the question, or a short answer without a transcription
//! service.

use super::*;

/// Fake `POST /v1/audio/transcriptions` (OpenAI's form): multipart with a `file` part
/// (file name and bytes) and a `model` field, the key as a bearer token.
struct Transcriptions {
    audio: Vec<u8>,
}

/// One part of a multipart/form-data body: field name, file name, bytes.
type Part = (String, Option<String>, Vec<u8>);

/// The parts of a multipart/form-data body.
fn multipart_parts(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .strip_prefix("multipart/form-data")?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut rest = text;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, delimiter.as_bytes())?;
    rest = &rest[start + delimiter.len()..];
    while !rest.starts_with(b"--") {
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        rest = &rest[head_end + 4..];
        let end = find(rest, format!("\r\n{delimiter}").as_bytes())?;
        let data = rest[..end].to_vec();
        rest = &rest[end + 2 + delimiter.len()..];
        let disposition = head.lines().find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-disposition: form-data")
        })?;
        let field = |key: &str| {
            disposition
                .split(';')
                .find_map(|p| p.trim().strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
        };
        parts.push((field("name")?, field("filename"), data));
    }
    Some(parts)
}

impl Respond for Transcriptions {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let content_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(parts) = multipart_parts(content_type, &request.body) else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": "expected multipart/form-data"}}));
        };
        let file = parts.iter().find(|p| p.0 == "file");
        let model = parts.iter().find(|p| p.0 == "model");
        match (file, model) {
            (Some((_, Some(name), data)), Some((_, None, model)))
                if !name.is_empty() && *data == self.audio && model == b"whisper-1" =>
            {
                ResponseTemplate::new(200)
                    .set_body_json(json!({"text": " What is the capital of France? "}))
            }
            _ => ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": "file and model are required"}})),
        }
    }
}

#[tokio::test]
async fn voice_notes_are_transcribed_and_the_transcript_is_the_question() {
    let stt = MockServer::start().await;
    let audio = b"OggS\0\x02fake-opus-voice-note".to_vec();
    Mock::given(method("POST"))
        .and(path("/v1/audio/transcriptions"))
        .and(header("authorization", "Bearer stt-key-SECRET"))
        .respond_with(Transcriptions {
            audio: audio.clone(),
        })
        .expect(1)
        .mount(&stt)
        .await;
    let app = approved_app(
        Spawn::default()
            .env("STT_BASE_URL", &format!("{}/v1", stt.uri()))
            .env("STT_API_KEY", "stt-key-SECRET"),
    )
    .await;
    let url = mount_file(
        &app.webex,
        "VOICE",
        FileServe::file("Voice note.ogg", "audio/ogg", audio),
    )
    .await;
    app.deliver(&direct_message_with_files("M-A1", "R-A", ALICE, "", &[url]))
        .await;
    assert_eq!(app.wait_handled("M-A1").await, "answered");
    assert_eq!(
        last_user_message(&app, 0).await["content"],
        "What is the capital of France?"
    );
    app.stop().await;
}

#[tokio::test]
async fn without_a_transcription_service_voice_notes_get_a_short_answer() {
    let app = approved_app(Spawn::default()).await;
    let url = mount_file(
        &app.webex,
        "VOICE",
        FileServe::file("note.m4a", "audio/mp4", b"\0\0\0\x20ftypM4A ".to_vec()),
    )
    .await;
    app.deliver(&direct_message_with_files("M-A2", "R-A", ALICE, "", &[url]))
        .await;
    assert_eq!(app.wait_handled("M-A2").await, "files_unread");
    let reply = reply_text(&app.wait_replies(1).await[0]);
    assert!(reply.contains("cannot listen to voice notes"), "{reply}");
    assert!(app.llm_requests().await.is_empty());
    app.stop().await;
}
