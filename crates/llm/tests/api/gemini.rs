//! Gemini generateContent: key in a header, roles user/model, systemInstruction and
//! generationConfig, SSE streaming with `alt=sse`.

use llm::{ChatRequest, LlmError, Message, ProviderKind};
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::fakes::{Fake, KEY, collect, conversation, header};

const KIND: ProviderKind = ProviderKind::Gemini;

#[tokio::test]
async fn request_uses_header_key_model_path_and_gemini_fields() {
    let fake = Fake::start(KIND).await;
    fake.llm().chat(conversation()).await.unwrap();

    let request = &fake.requests().await[0];
    assert_eq!(
        request.url.path(),
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(request.url.query(), None);
    assert_eq!(header(request, "x-goog-api-key"), Some(KEY));
    assert_eq!(
        fake.chat_bodies().await[0],
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "first question"}]},
                {"role": "model", "parts": [{"text": "first answer"}]},
                {"role": "user", "parts": [{"text": "second question"}]},
            ],
            "systemInstruction": {"parts": [{"text": "You are a test bot."}]},
            "generationConfig": {"temperature": 0.2, "maxOutputTokens": 256},
        })
    );
}

#[tokio::test]
async fn stream_uses_stream_generate_content_with_alt_sse_and_no_key_in_url() {
    let fake = Fake::start(KIND).await;
    let request = ChatRequest {
        model: Some("models/gemini-2.5-pro".into()),
        ..conversation()
    };
    let text = collect(fake.llm().chat_stream(request).await.unwrap()).await;
    assert_eq!(text.unwrap(), "Hello there!");

    let request = &fake.requests().await[0];
    assert_eq!(
        request.url.path(),
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent"
    );
    assert_eq!(request.url.query(), Some("alt=sse"));
    assert!(!request.url.as_str().contains(KEY));
}

#[tokio::test]
async fn history_alternates_from_the_user_and_unset_fields_are_left_out() {
    let fake = Fake::start(KIND).await;
    let request = ChatRequest {
        messages: vec![
            Message::assistant("orphan"),
            Message::user("a"),
            Message::user("b"),
            Message::assistant("c"),
        ],
        ..ChatRequest::default()
    };
    fake.llm().chat(request).await.unwrap();
    assert_eq!(
        fake.chat_bodies().await[0],
        json!({"contents": [
            {"role": "user", "parts": [{"text": "a\n\nb"}]},
            {"role": "model", "parts": [{"text": "c"}]},
        ]})
    );
}

/// Proof that the fake refuses what the API refuses (and keys in URLs).
#[tokio::test]
async fn fake_refuses_what_the_api_refuses() {
    let fake = Fake::start(KIND).await;
    let url = format!("{}/models/gemini-2.5-flash:generateContent", fake.base());
    let turn = |role: &str| json!({"contents": [{"role": role, "parts": [{"text": "hi"}]}]});
    let client = reqwest::Client::new();
    let cases = [
        ("good", url.clone(), Some(KEY), turn("user"), 200),
        (
            "assistant role",
            url.clone(),
            Some(KEY),
            turn("assistant"),
            400,
        ),
        ("system role", url.clone(), Some(KEY), turn("system"), 400),
        ("no key", url.clone(), None, turn("user"), 403),
        (
            "key in query",
            format!("{url}?key={KEY}"),
            None,
            turn("user"),
            400,
        ),
        (
            "key in both",
            format!("{url}?key={KEY}"),
            Some(KEY),
            turn("user"),
            400,
        ),
    ];
    for (name, url, key, body, status) in cases {
        let mut request = client.post(url).json(&body);
        if let Some(key) = key {
            request = request.header("x-goog-api-key", key);
        }
        assert_eq!(
            request.send().await.unwrap().status().as_u16(),
            status,
            "{name}"
        );
    }
}

#[tokio::test]
async fn blocked_prompt_is_malformed_with_the_reason() {
    let fake = Fake::start(KIND).await;
    let blocked = json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}});
    fake.script(ResponseTemplate::new(200).set_body_json(blocked))
        .await;
    let err = fake.llm().chat(conversation()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Malformed { reason, .. } if reason.contains("SAFETY")),
        "{err:?}"
    );
}

#[tokio::test]
async fn thought_parts_are_not_part_of_the_answer() {
    let fake = Fake::start(KIND).await;
    let answer = json!({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "pondering", "thought": true},
        {"text": "The answer."},
    ]}, "finishReason": "STOP"}]});
    fake.script(ResponseTemplate::new(200).set_body_json(answer))
        .await;
    assert_eq!(
        fake.llm().chat(conversation()).await.unwrap().content,
        "The answer."
    );
}

#[tokio::test]
async fn usage_only_chunks_are_skipped_and_safety_stops_say_so() {
    let fake = Fake::start(KIND).await;
    let usage_only = json!({"usageMetadata": {"promptTokenCount": 5}});
    let body = format!(
        "data: {}\r\n\r\ndata: {usage_only}\r\n\r\ndata: {}\r\n\r\n",
        crate::fakes::gemini_candidate("Hi", None),
        crate::fakes::gemini_candidate(" you", Some("STOP")),
    );
    fake.script(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .await;
    let text = collect(fake.llm().chat_stream(conversation()).await.unwrap()).await;
    assert_eq!(text.unwrap(), "Hi you");

    let fake = Fake::start(KIND).await;
    let stopped = json!({"candidates": [{"finishReason": "SAFETY", "index": 0}]});
    fake.script(ResponseTemplate::new(200).set_body_json(stopped))
        .await;
    let err = fake.llm().chat(conversation()).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::Malformed { reason, .. } if reason.contains("SAFETY")),
        "{err:?}"
    );
}
