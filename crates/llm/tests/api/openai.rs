//! OpenAI Chat Completions and the two presets that share it: xAI and compatible servers.

use llm::{ChatRequest, Options, ProviderConfig, ProviderKind};
use secrecy::SecretString;
use serde_json::json;

use crate::fakes::{Fake, KEY, collect, conversation, header};

fn expected_messages() -> serde_json::Value {
    json!([
        {"role": "system", "content": "You are a test bot."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ])
}

#[tokio::test]
async fn openai_request_uses_bearer_and_max_completion_tokens() {
    let fake = Fake::start(ProviderKind::OpenAi).await;
    fake.llm().chat(conversation()).await.unwrap();

    let request = &fake.requests().await[0];
    assert_eq!(request.url.path(), "/v1/chat/completions");
    assert_eq!(
        header(request, "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(header(request, "content-type"), Some("application/json"));
    assert_eq!(
        fake.chat_bodies().await[0],
        json!({
            "model": "gpt-4o-mini",
            "messages": expected_messages(),
            "stream": false,
            "temperature": 0.2,
            "max_completion_tokens": 256,
        })
    );
}

#[tokio::test]
async fn openai_reasoning_models_accept_the_token_limit() {
    // The fake, like the API, refuses `max_tokens` for o-series models.
    let fake = Fake::start(ProviderKind::OpenAi).await;
    let request = ChatRequest {
        model: Some("o3-mini".into()),
        ..conversation()
    };
    let answer = fake.llm().chat(request).await.unwrap();
    assert_eq!(answer.model, "o3-mini");
}

#[tokio::test]
async fn xai_request_uses_max_tokens_and_grok_default() {
    let fake = Fake::start(ProviderKind::Xai).await;
    let text = collect(fake.llm().chat_stream(conversation()).await.unwrap()).await;
    assert_eq!(text.unwrap(), "Hello there!");

    let request = &fake.requests().await[0];
    assert_eq!(request.url.path(), "/v1/chat/completions");
    assert_eq!(
        header(request, "authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(
        fake.chat_bodies().await[0],
        json!({
            "model": "grok-3-mini",
            "messages": expected_messages(),
            "stream": true,
            "stream_options": {"include_usage": true},
            "temperature": 0.2,
            "max_tokens": 256,
        })
    );
}

#[tokio::test]
async fn compatible_server_without_key_gets_no_authorization_header() {
    let fake = Fake::start(ProviderKind::OpenAiCompatible).await;
    fake.llm().chat(conversation()).await.unwrap();
    let request = &fake.requests().await[0];
    assert_eq!(header(request, "authorization"), None);
    assert_eq!(fake.chat_bodies().await[0]["model"], json!("default"));
    assert_eq!(fake.chat_bodies().await[0]["max_tokens"], json!(256));
}

#[tokio::test]
async fn compatible_server_with_key_gets_bearer_and_trailing_slash_is_fine() {
    let fake = Fake::start(ProviderKind::OpenAiCompatible).await;
    let config = ProviderConfig {
        kind: ProviderKind::OpenAiCompatible,
        base_url: Some(format!("{}/", fake.base()).parse().unwrap()),
        api_key: Some(SecretString::from("local-key")),
        model: None,
    };
    let llm = llm::Llm::new(reqwest::Client::new(), config, None, Options::default()).unwrap();
    llm.chat(conversation()).await.unwrap();
    let request = &fake.requests().await[0];
    assert_eq!(request.url.path(), "/v1/chat/completions");
    assert_eq!(header(request, "authorization"), Some("Bearer local-key"));
}

#[tokio::test]
async fn unset_sampling_fields_are_left_out() {
    let fake = Fake::start(ProviderKind::OpenAi).await;
    let request = ChatRequest {
        temperature: None,
        max_tokens: None,
        system: None,
        ..conversation()
    };
    fake.llm().chat(request).await.unwrap();
    let body = &fake.chat_bodies().await[0];
    let mut keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["messages", "model", "stream"]);
    assert_eq!(body["messages"][0]["role"], json!("user"));
}
