//! Ollama's native `/api/chat`: body fields, NDJSON streaming, no auth by default.

use llm::{ChatRequest, LlmError, Message, ProviderKind};
use secrecy::SecretString;
use serde_json::json;

use crate::fakes::{Fake, collect, conversation, header};

const KIND: ProviderKind = ProviderKind::Ollama;

#[tokio::test]
async fn plain_request_has_system_first_history_in_order_and_options() {
    let fake = Fake::start(KIND).await;
    fake.llm().chat(conversation()).await.unwrap();

    let requests = fake.requests().await;
    assert_eq!(requests[0].url.path(), "/api/chat");
    assert_eq!(header(&requests[0], "authorization"), None);
    assert_eq!(
        fake.chat_bodies().await[0],
        json!({
            "model": "llama3.1:8b",
            "messages": [
                {"role": "system", "content": "You are a test bot."},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
                {"role": "user", "content": "second question"},
            ],
            "stream": false,
            "options": {"temperature": 0.2, "num_predict": 256},
        })
    );
}

#[tokio::test]
async fn stream_request_says_so_and_reads_ndjson() {
    let fake = Fake::answering(KIND, &["a", "b", "c"]).await;
    let text = collect(fake.llm().chat_stream(conversation()).await.unwrap()).await;
    assert_eq!(text.unwrap(), "abc");
    assert_eq!(fake.chat_bodies().await[0]["stream"], json!(true));
}

#[tokio::test]
async fn options_are_left_out_when_nothing_is_set() {
    let fake = Fake::start(KIND).await;
    let request = ChatRequest {
        messages: vec![Message::user("hi")],
        ..ChatRequest::default()
    };
    fake.llm().chat(request).await.unwrap();
    let body = &fake.chat_bodies().await[0];
    assert_eq!(body.get("options"), None);
    assert_eq!(body["messages"], json!([{"role": "user", "content": "hi"}]));
}

#[tokio::test]
async fn missing_model_maps_to_model_not_found() {
    let fake = Fake::start(KIND).await;
    let llm = fake.llm_with(|c| c.model = Some("llama3.3:70b".into()));
    let err = llm.chat(conversation()).await.unwrap_err();
    assert!(matches!(err, LlmError::ModelNotFound { ref model, .. } if model == "llama3.3:70b"));
    assert_eq!(
        err.to_string(),
        "ollama has no model named \"llama3.3:70b\""
    );
}

#[tokio::test]
async fn a_configured_key_is_sent_as_bearer() {
    let fake = Fake::start(KIND).await;
    let llm = fake.llm_with(|c| c.api_key = Some(SecretString::from("proxy-key")));
    llm.chat(conversation()).await.unwrap();
    assert_eq!(
        header(&fake.requests().await[0], "authorization"),
        Some("Bearer proxy-key")
    );
}
