//! Anthropic's Messages API: headers, top-level system prompt, strict alternation,
//! `max_tokens` always, SSE events.

use llm::{ChatRequest, LlmError, Message, ProviderKind};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use crate::fakes::{
    Fake, KEY, anthropic_event, anthropic_message, anthropic_pieces, collect, conversation, header,
    strings,
};

const KIND: ProviderKind = ProviderKind::Anthropic;

#[tokio::test]
async fn request_has_headers_top_level_system_and_alternating_turns() {
    let fake = Fake::start(KIND).await;
    fake.llm().chat(conversation()).await.unwrap();

    let request = &fake.requests().await[0];
    assert_eq!(request.url.path(), "/v1/messages");
    assert_eq!(header(request, "x-api-key"), Some(KEY));
    assert_eq!(header(request, "anthropic-version"), Some("2023-06-01"));
    assert_eq!(header(request, "content-type"), Some("application/json"));
    assert_eq!(header(request, "authorization"), None);
    assert_eq!(
        fake.chat_bodies().await[0],
        json!({
            "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 256,
            "system": "You are a test bot.",
            "messages": [
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"},
            ],
            "temperature": 0.2,
            "stream": false,
        })
    );
}

#[tokio::test]
async fn max_tokens_defaults_to_1024_and_system_is_left_out_when_unset() {
    let fake = Fake::start(KIND).await;
    let request = ChatRequest {
        messages: vec![Message::user("hi")],
        ..ChatRequest::default()
    };
    collect(fake.llm().chat_stream(request).await.unwrap())
        .await
        .unwrap();
    let body = &fake.chat_bodies().await[0];
    assert_eq!(body["max_tokens"], json!(1024));
    assert_eq!(body["stream"], json!(true));
    assert_eq!(body.get("system"), None);
    assert_eq!(body.get("temperature"), None);
}

#[tokio::test]
async fn history_is_made_to_alternate_starting_with_the_user() {
    let fake = Fake::start(KIND).await;
    let request = ChatRequest {
        messages: vec![
            Message::assistant("an answer whose question fell out of memory"),
            Message::user("one"),
            Message::user("two"),
            Message::assistant("three"),
            Message::assistant("four"),
            Message::user("five"),
        ],
        ..conversation()
    };
    fake.llm().chat(request).await.unwrap();
    assert_eq!(
        fake.chat_bodies().await[0]["messages"],
        json!([
            {"role": "user", "content": "one\n\ntwo"},
            {"role": "assistant", "content": "three\n\nfour"},
            {"role": "user", "content": "five"},
        ])
    );
}

/// Proof that the fake refuses what the API refuses, so the passing tests mean something.
#[tokio::test]
async fn fake_refuses_what_the_api_refuses() {
    let fake = Fake::start(KIND).await;
    let url = format!("{}/v1/messages", fake.base());
    let good = json!({"model": "claude-sonnet-4-5-20250929", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});
    let with = |field: &str, value: Value| {
        let mut body = good.clone();
        body[field] = value;
        body
    };
    let without_max_tokens = {
        let mut body = good.clone();
        body.as_object_mut().unwrap().remove("max_tokens");
        body
    };
    let cases = [
        ("good", good.clone(), true, true, 200),
        ("no key", good.clone(), false, true, 401),
        ("no version", good.clone(), true, false, 400),
        ("no max_tokens", without_max_tokens, true, true, 400),
        (
            "system role",
            with(
                "messages",
                json!([{"role": "system", "content": "x"}, {"role": "user", "content": "hi"}]),
            ),
            true,
            true,
            400,
        ),
        (
            "starts with assistant",
            with(
                "messages",
                json!([{"role": "assistant", "content": "x"}, {"role": "user", "content": "hi"}]),
            ),
            true,
            true,
            400,
        ),
        (
            "two users in a row",
            with(
                "messages",
                json!([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]),
            ),
            true,
            true,
            400,
        ),
    ];
    let client = reqwest::Client::new();
    for (name, body, key, version, status) in cases {
        let mut request = client.post(&url).json(&body);
        if key {
            request = request.header("x-api-key", KEY);
        }
        if version {
            request = request.header("anthropic-version", "2023-06-01");
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{name}");
    }
}

#[tokio::test]
async fn provider_refusal_becomes_bad_request_with_its_message() {
    let fake = Fake::start(KIND).await;
    let request = ChatRequest {
        temperature: Some(1.5),
        ..conversation()
    };
    let err = fake.llm().chat(request).await.unwrap_err();
    assert!(
        matches!(&err, LlmError::BadRequest { status: 400, message, .. } if message == "temperature: range: 0..1"),
        "{err:?}"
    );
}

#[tokio::test]
async fn text_blocks_are_joined_and_thinking_blocks_skipped() {
    let fake = Fake::start(KIND).await;
    let blocks = [
        ("thinking", "let me think"),
        ("text", "Part one. "),
        ("text", "Part two."),
    ];
    fake.script(ResponseTemplate::new(200).set_body_json(anthropic_message("m", &blocks)))
        .await;
    assert_eq!(
        fake.llm().chat(conversation()).await.unwrap().content,
        "Part one. Part two."
    );
}

#[tokio::test]
async fn error_event_mid_stream_ends_the_stream_with_a_server_error() {
    use futures_util::StreamExt;
    let fake = Fake::start(KIND).await;
    let body = anthropic_pieces(&strings(&["Partial"]))
        + &anthropic_event(
            "error",
            json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
        );
    fake.script(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .await;

    let mut stream = fake.llm().chat_stream(conversation()).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        llm::StreamEvent::Text("Partial".into())
    );
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(
        matches!(err, LlmError::Server { status: 529, ref message, .. } if message == "Overloaded"),
        "{err:?}"
    );
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn non_text_deltas_are_ignored() {
    let fake = Fake::start(KIND).await;
    let body = anthropic_event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
    ) + &anthropic_pieces(&strings(&["Answer"]))
        + &anthropic_event("message_stop", json!({"type": "message_stop"}));
    fake.script(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .await;
    let text = collect(fake.llm().chat_stream(conversation()).await.unwrap()).await;
    assert_eq!(text.unwrap(), "Answer");
}
