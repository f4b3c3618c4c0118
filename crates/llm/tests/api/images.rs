//! Images in each provider's own format: Ollama `images`, OpenAI-style `image_url` data
//! URLs, Anthropic `image` blocks, Gemini `inline_data` parts. A turn without images keeps
//! its plain text shape, and streamed requests carry the same body.

use base64::Engine;
use llm::{ChatRequest, Image, Message, ProviderKind};
use serde_json::{Value, json};

use crate::fakes::{Fake, KEY, collect};

/// The 8-byte PNG signature and a few bytes more: what matters is that the bytes arrive
/// intact, base64-encoded.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";
const JPEG: &[u8] = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn image(media_type: &str, data: &'static [u8]) -> Image {
    Image {
        media_type: media_type.into(),
        data: bytes::Bytes::from_static(data),
    }
}

/// An earlier text exchange, then a question with two images.
fn with_images() -> ChatRequest {
    ChatRequest {
        messages: vec![
            Message::user("hi"),
            Message::assistant("hello"),
            Message {
                images: vec![image("image/png", PNG), image("image/jpeg", JPEG)],
                ..Message::user("What is in these?")
            },
        ],
        ..ChatRequest::default()
    }
}

/// The last message (or content) of the request body, as each provider nests it.
fn last_turn(kind: ProviderKind, body: &Value) -> Value {
    let list = match kind {
        ProviderKind::Gemini => &body["contents"],
        _ => &body["messages"],
    };
    list.as_array().and_then(|l| l.last()).cloned().unwrap()
}

fn expected_last_turn(kind: ProviderKind) -> Value {
    match kind {
        ProviderKind::Ollama => json!({
            "role": "user", "content": "What is in these?", "images": [b64(PNG), b64(JPEG)],
        }),
        ProviderKind::Anthropic => json!({"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": b64(JPEG)}},
            {"type": "text", "text": "What is in these?"},
        ]}),
        ProviderKind::Gemini => json!({"role": "user", "parts": [
            {"inline_data": {"mime_type": "image/png", "data": b64(PNG)}},
            {"inline_data": {"mime_type": "image/jpeg", "data": b64(JPEG)}},
            {"text": "What is in these?"},
        ]}),
        ProviderKind::OpenAi | ProviderKind::Xai | ProviderKind::OpenAiCompatible => {
            json!({"role": "user", "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{}", b64(PNG))}},
                {"type": "image_url", "image_url": {"url": format!("data:image/jpeg;base64,{}", b64(JPEG))}},
            ]})
        }
    }
}

#[tokio::test]
async fn every_provider_sends_images_in_its_own_format_streamed_or_not() {
    for kind in ProviderKind::ALL {
        let fake = Fake::start(kind).await;
        let llm = fake.llm();
        let answer = llm.chat(with_images()).await.unwrap();
        assert_eq!(answer.content, "Hello there!", "{kind}");
        let streamed = collect(llm.chat_stream(with_images()).await.unwrap()).await;
        assert_eq!(streamed.unwrap(), "Hello there!", "{kind}");

        let bodies = fake.chat_bodies().await;
        assert_eq!(
            last_turn(kind, &bodies[0]),
            expected_last_turn(kind),
            "{kind}"
        );
        // The earlier turns keep their plain text shape.
        let first = match kind {
            ProviderKind::Gemini => json!({"role": "user", "parts": [{"text": "hi"}]}),
            _ => json!({"role": "user", "content": "hi"}),
        };
        let list = if kind == ProviderKind::Gemini {
            "contents"
        } else {
            "messages"
        };
        assert_eq!(bodies[0][list][0], first, "{kind}");
        // Streamed and not, the body differs only in how the answer (and, in streams,
        // the usage) is asked for.
        let without_stream = |body: &Value| {
            let mut body = body.clone();
            let body_map = body.as_object_mut().unwrap();
            body_map.remove("stream");
            body_map.remove("stream_options");
            body
        };
        assert_eq!(
            without_stream(&bodies[0]),
            without_stream(&bodies[1]),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn an_image_without_text_sends_no_empty_text() {
    let request = ChatRequest {
        messages: vec![Message {
            images: vec![image("image/webp", PNG)],
            ..Message::user("")
        }],
        ..ChatRequest::default()
    };
    for kind in [ProviderKind::Anthropic, ProviderKind::Gemini] {
        let fake = Fake::start(kind).await;
        fake.llm().chat(request.clone()).await.unwrap();
        let turn = last_turn(kind, &fake.chat_bodies().await[0]);
        let parts = if kind == ProviderKind::Gemini {
            &turn["parts"]
        } else {
            &turn["content"]
        };
        assert_eq!(parts.as_array().map(Vec::len), Some(1), "{kind}: {turn}");
    }
}

#[tokio::test]
async fn images_of_consecutive_user_turns_are_kept_when_turns_are_joined() {
    let request = ChatRequest {
        messages: vec![
            Message {
                images: vec![image("image/png", PNG)],
                ..Message::user("first")
            },
            Message::user("second"),
        ],
        ..ChatRequest::default()
    };
    let fake = Fake::start(ProviderKind::Anthropic).await;
    fake.llm().chat(request).await.unwrap();
    assert_eq!(
        fake.chat_bodies().await[0]["messages"],
        json!([{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": b64(PNG)}},
            {"type": "text", "text": "first\n\nsecond"},
        ]}])
    );
}

/// Proof that the fakes refuse malformed images the way the APIs do.
#[tokio::test]
async fn fakes_refuse_malformed_images() {
    let png = b64(PNG);
    let cases: Vec<(ProviderKind, Value)> = vec![
        (
            ProviderKind::OpenAi,
            json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,%%%"}}]}),
        ),
        (
            ProviderKind::OpenAi,
            json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": format!("data:text/plain;base64,{png}")}}]}),
        ),
        (
            ProviderKind::OpenAi,
            json!({"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]}),
        ),
        (ProviderKind::OpenAi, json!({"role": "user", "content": []})),
        (
            ProviderKind::Anthropic,
            json!({"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": png}}]}),
        ),
        (
            ProviderKind::Anthropic,
            json!({"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "%%%"}}]}),
        ),
        (
            ProviderKind::Anthropic,
            json!({"role": "user", "content": [{"type": "text", "text": ""}]}),
        ),
        (
            ProviderKind::Gemini,
            json!({"role": "user", "parts": [{"text": "x", "inline_data": {"mime_type": "image/png", "data": png}}]}),
        ),
        (
            ProviderKind::Gemini,
            json!({"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "%%%"}}]}),
        ),
        (
            ProviderKind::Gemini,
            json!({"role": "user", "parts": [{"image": {"data": png}}]}),
        ),
        (
            ProviderKind::Ollama,
            json!({"role": "user", "content": "x", "images": ["%%%"]}),
        ),
        (
            ProviderKind::Ollama,
            json!({"role": "user", "content": "x", "images": "abc"}),
        ),
    ];
    let good: Vec<(ProviderKind, Value)> = vec![
        (
            ProviderKind::OpenAi,
            json!({"role": "user", "content": [{"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{png}")}}]}),
        ),
        (
            ProviderKind::Gemini,
            json!({"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": png}}]}),
        ),
        (
            ProviderKind::Gemini,
            json!({"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": png}}]}),
        ),
    ];
    let client = reqwest::Client::new();
    for (expected, list) in [(400, cases), (200, good)] {
        for (kind, turn) in list {
            let fake = Fake::start(kind).await;
            let model = kind.default_model();
            let (path, body) = match kind {
                ProviderKind::Gemini => (
                    format!("/models/{model}:generateContent"),
                    json!({"contents": [turn]}),
                ),
                ProviderKind::Anthropic => (
                    "/v1/messages".to_owned(),
                    json!({"model": model, "max_tokens": 10, "messages": [turn]}),
                ),
                ProviderKind::Ollama => (
                    "/api/chat".to_owned(),
                    json!({"model": model, "messages": [turn], "stream": false}),
                ),
                _ => (
                    "/chat/completions".to_owned(),
                    json!({"model": model, "messages": [turn]}),
                ),
            };
            let status = client
                .post(format!("{}{path}", fake.base()))
                .header("authorization", format!("Bearer {KEY}"))
                .header("x-api-key", KEY)
                .header("anthropic-version", "2023-06-01")
                .header("x-goog-api-key", KEY)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status.as_u16(), expected, "{kind} {turn}");
        }
    }
}
