//! Answers that are not what the provider documents end as `Malformed`, never a panic.

use llm::{LlmError, ProviderKind};
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::fakes::{
    Fake, anthropic_event, anthropic_pieces, collect, conversation, gemini_candidate, ollama_line,
    openai_chunk, strings,
};

fn is_malformed(result: &Result<impl std::fmt::Debug, LlmError>, kind: ProviderKind) -> bool {
    matches!(result, Err(LlmError::Malformed { provider, .. }) if *provider == kind)
}

async fn chat_with(kind: ProviderKind, answer: ResponseTemplate) -> Result<String, LlmError> {
    let fake = Fake::start(kind).await;
    fake.script(answer).await;
    fake.llm().chat(conversation()).await.map(|a| a.content)
}

async fn stream_with(kind: ProviderKind, body: String, mime: &str) -> Result<String, LlmError> {
    let fake = Fake::start(kind).await;
    fake.script(ResponseTemplate::new(200).set_body_raw(body, mime))
        .await;
    match fake.llm().chat_stream(conversation()).await {
        Ok(stream) => collect(stream).await,
        Err(err) => Err(err),
    }
}

#[tokio::test]
async fn bodies_that_are_not_json_or_lack_the_answer() {
    let bodies = [
        ResponseTemplate::new(200).set_body_raw("<html>maintenance</html>", "text/html"),
        ResponseTemplate::new(200).set_body_raw("{\"choices\": [", "application/json"),
        ResponseTemplate::new(200).set_body_json(json!({})),
        ResponseTemplate::new(200).set_body_json(json!([1, 2])),
        ResponseTemplate::new(200),
    ];
    for kind in ProviderKind::ALL {
        for body in bodies.clone() {
            let result = chat_with(kind, body).await;
            assert!(is_malformed(&result, kind), "{kind}: {result:?}");
        }
    }
}

#[tokio::test]
async fn fields_of_the_wrong_shape() {
    let cases = [
        (ProviderKind::OpenAi, json!({"choices": []})),
        (
            ProviderKind::OpenAi,
            json!({"choices": [{"message": {"role": "assistant", "content": null}}]}),
        ),
        (
            ProviderKind::Xai,
            json!({"choices": [{"message": {"content": 42}}]}),
        ),
        (ProviderKind::Anthropic, json!({"content": []})),
        // A call is an answer, but not one without its input object.
        (
            ProviderKind::Anthropic,
            json!({"content": [{"type": "tool_use", "id": "t", "name": "n", "input": "x"}]}),
        ),
        (
            ProviderKind::OpenAi,
            json!({"choices": [{"message": {"content": null, "tool_calls": [{"id": "c", "type": "function"}]}}]}),
        ),
        (
            ProviderKind::Gemini,
            json!({"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]}, "finishReason": "STOP"}]}),
        ),
        (
            ProviderKind::Ollama,
            json!({"message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"arguments": {}}}]}, "done": true}),
        ),
        (ProviderKind::Gemini, json!({"candidates": []})),
        (
            ProviderKind::Gemini,
            json!({"candidates": [{"finishReason": "SAFETY"}]}),
        ),
        (ProviderKind::Ollama, json!({"done": true})),
        (ProviderKind::Ollama, json!({"message": "not an object"})),
    ];
    for (kind, body) in cases {
        let result = chat_with(kind, ResponseTemplate::new(200).set_body_json(&body)).await;
        assert!(is_malformed(&result, kind), "{kind} {body}: {result:?}");
    }
}

#[tokio::test]
async fn empty_answers() {
    for kind in ProviderKind::ALL {
        let fake = Fake::answering(kind, &[""]).await;
        let result = fake.llm().chat(conversation()).await;
        assert!(is_malformed(&result, kind), "{kind}: {result:?}");
        let result = fake.llm().chat_stream(conversation()).await.map(|_| ());
        assert!(is_malformed(&result, kind), "{kind} streamed: {result:?}");
    }
}

#[tokio::test]
async fn streams_that_stop_before_their_end() {
    let cases = [
        (
            ProviderKind::OpenAi,
            openai_chunk(json!({"content": "Hel"}), None),
            "text/event-stream",
        ),
        (
            ProviderKind::Anthropic,
            anthropic_event(
                "message_start",
                json!({"type": "message_start", "message": {}}),
            ) + &anthropic_pieces(&strings(&["Hel"])),
            "text/event-stream",
        ),
        (
            ProviderKind::Gemini,
            format!("data: {}\r\n\r\n", gemini_candidate("Hel", None)),
            "text/event-stream",
        ),
        (
            ProviderKind::Ollama,
            ollama_line("llama3.1:8b", "Hel", false),
            "application/x-ndjson",
        ),
    ];
    for (kind, body, mime) in cases {
        let fake = Fake::start(kind).await;
        fake.script(ResponseTemplate::new(200).set_body_raw(body, mime))
            .await;
        let mut stream = fake.llm().chat_stream(conversation()).await.unwrap();
        use futures_util::StreamExt;
        assert_eq!(
            stream.next().await.unwrap().unwrap(),
            llm::StreamEvent::Text("Hel".into()),
            "{kind}"
        );
        let end = stream.next().await.unwrap();
        assert!(is_malformed(&end, kind), "{kind}: {end:?}");
    }
}

#[tokio::test]
async fn garbage_inside_a_stream() {
    let cases = [
        (
            ProviderKind::OpenAi,
            "data: {not json}\n\n",
            "text/event-stream",
        ),
        (
            ProviderKind::Xai,
            "data: {\"choices\": 7}\n\n",
            "text/event-stream",
        ),
        (
            ProviderKind::Anthropic,
            "event: content_block_delta\ndata: [1,2\n\n",
            "text/event-stream",
        ),
        (
            ProviderKind::Gemini,
            "data: \"just a string\"\n\n",
            "text/event-stream",
        ),
        (
            ProviderKind::Ollama,
            "not json at all\n",
            "application/x-ndjson",
        ),
        (ProviderKind::Gemini, "", "text/event-stream"),
    ];
    for (kind, body, mime) in cases {
        let result = stream_with(kind, body.to_owned(), mime).await;
        assert!(is_malformed(&result, kind), "{kind} {body:?}: {result:?}");
    }
}

#[tokio::test]
async fn a_gemini_stream_without_alt_sse_framing_is_malformed() {
    // What the API sends when `alt=sse` is missing: one JSON array, no SSE lines.
    let body = json!([gemini_candidate("Hi", Some("STOP"))]).to_string();
    let result = stream_with(ProviderKind::Gemini, body, "application/json").await;
    assert!(is_malformed(&result, ProviderKind::Gemini), "{result:?}");
}

#[tokio::test]
async fn errors_reported_inside_a_200_stream() {
    let cases = [
        (
            ProviderKind::Ollama,
            "{\"error\":\"out of memory\"}\n",
            "application/x-ndjson",
            "out of memory",
        ),
        (
            ProviderKind::OpenAi,
            "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n",
            "text/event-stream",
            "boom",
        ),
        (
            ProviderKind::Gemini,
            "data: {\"error\":{\"code\":503,\"message\":\"overloaded\",\"status\":\"UNAVAILABLE\"}}\n\n",
            "text/event-stream",
            "overloaded",
        ),
    ];
    for (kind, body, mime, expected) in cases {
        let result = stream_with(kind, body.to_owned(), mime).await;
        assert!(
            matches!(&result, Err(LlmError::Server { provider, message, .. }) if *provider == kind && message == expected),
            "{kind}: {result:?}"
        );
    }
}
