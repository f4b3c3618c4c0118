//! Token usage from each provider's own fields, whole and streamed, and whose it is when
//! the fallback answers.

use std::time::Duration;

use llm::{ChatRequest, Llm, Options, ProviderKind, Usage};
use serde_json::json;
use wiremock::ResponseTemplate;

use crate::fakes::{
    Fake, Tokens, anthropic_event, anthropic_pieces, conversation, known_usage, ollama_line_with,
    openai_error, override_model, strings, usage_events,
};

fn expected(kind: ProviderKind, model: &str, tokens: Tokens, fallback: bool) -> Usage {
    Usage {
        provider: kind,
        model: model.to_owned(),
        prompt_tokens: tokens.prompt,
        completion_tokens: tokens.completion,
        fallback,
    }
}

#[tokio::test]
async fn every_provider_reports_its_counts_in_a_whole_answer() {
    for kind in ProviderKind::ALL {
        let fake = Fake::start(kind).await;
        let answer = fake.llm().chat(conversation()).await.unwrap();
        assert_eq!(
            answer.usage,
            Some(expected(
                kind,
                kind.default_model(),
                known_usage(kind),
                false
            )),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn every_provider_reports_its_counts_once_at_the_end_of_a_stream() {
    for kind in ProviderKind::ALL {
        let fake = Fake::start(kind).await;
        let stream = fake.llm().chat_stream(conversation()).await.unwrap();
        let (usage, text_after) = usage_events(stream).await;
        assert_eq!(
            usage,
            [expected(
                kind,
                kind.default_model(),
                known_usage(kind),
                false
            )],
            "{kind}"
        );
        assert_eq!(text_after, 0, "{kind}: usage comes after the text");
    }
}

#[tokio::test]
async fn the_usage_names_the_model_that_answered() {
    for kind in ProviderKind::ALL {
        let fake = Fake::start(kind).await;
        let request = ChatRequest {
            model: Some(override_model(kind).into()),
            ..conversation()
        };
        let answer = fake.llm().chat(request.clone()).await.unwrap();
        assert_eq!(
            answer.usage.map(|u| u.model).as_deref(),
            Some(override_model(kind)),
            "{kind}"
        );
        let (usage, _) = usage_events(fake.llm().chat_stream(request).await.unwrap()).await;
        assert_eq!(usage[0].model, override_model(kind), "{kind}");
    }
}

#[tokio::test]
async fn openai_style_streams_ask_for_usage_and_whole_answers_do_not() {
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::Xai,
        ProviderKind::OpenAiCompatible,
    ] {
        let fake = Fake::start(kind).await;
        fake.llm().chat(conversation()).await.unwrap();
        let _ = usage_events(fake.llm().chat_stream(conversation()).await.unwrap()).await;
        let bodies = fake.chat_bodies().await;
        // The API refuses `stream_options` without `stream: true` (the fake too).
        assert!(bodies[0].get("stream_options").is_none(), "{kind}");
        assert_eq!(
            bodies[1]["stream_options"],
            json!({"include_usage": true}),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn a_server_that_reports_no_usage_gives_none() {
    let fake = Fake::start(ProviderKind::OpenAiCompatible).await;
    fake.script(ResponseTemplate::new(200).set_body_json(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "default",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "No counts"}, "finish_reason": "stop"}]
    })))
    .await;
    let answer = fake.llm().chat(conversation()).await.unwrap();
    assert_eq!(answer.content, "No counts");
    assert_eq!(answer.usage, None);

    // A stream without the usage chunk (a server that ignores `stream_options`).
    let fake = Fake::start(ProviderKind::OpenAiCompatible).await;
    let body = crate::fakes::openai_sse(&strings(&["No ", "counts"]));
    fake.script(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .await;
    let (usage, _) = usage_events(fake.llm().chat_stream(conversation()).await.unwrap()).await;
    assert!(usage.is_empty(), "{usage:?}");
}

#[tokio::test]
async fn anthropic_counts_cached_prompt_tokens_as_prompt_tokens() {
    let fake = Fake::start(ProviderKind::Anthropic).await;
    fake.script(ResponseTemplate::new(200).set_body_json(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Cached"}], "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 7, "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000, "output_tokens": 11}
    })))
    .await;
    let usage = fake
        .llm()
        .chat(conversation())
        .await
        .unwrap()
        .usage
        .unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (2107, 11));
}

#[tokio::test]
async fn anthropic_stream_takes_the_last_cumulative_output_count() {
    // Server tools make several message_delta events, each with the total so far.
    let fake = Fake::start(ProviderKind::Anthropic).await;
    let body = anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5-20250929", "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 30, "output_tokens": 1}}}),
    ) + &anthropic_pieces(&strings(&["Two ", "deltas"]))
        + &anthropic_event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": null}, "usage": {"output_tokens": 6}}),
        )
        + &anthropic_event(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"input_tokens": 30, "output_tokens": 17}}),
        )
        + &anthropic_event("message_stop", json!({"type": "message_stop"}));
    fake.script(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .await;
    let (usage, _) = usage_events(fake.llm().chat_stream(conversation()).await.unwrap()).await;
    assert_eq!(
        (usage[0].prompt_tokens, usage[0].completion_tokens),
        (30, 17)
    );
}

#[tokio::test]
async fn ollama_with_a_cached_prompt_reports_only_the_output() {
    // Ollama leaves `prompt_eval_count` out when the whole prompt came from its cache.
    let fake = Fake::start(ProviderKind::Ollama).await;
    let mut last: serde_json::Value = serde_json::from_str(&ollama_line_with(
        "llama3.1:8b",
        "",
        Some(Tokens {
            prompt: 0,
            completion: 4,
        }),
    ))
    .unwrap();
    last.as_object_mut().unwrap().remove("prompt_eval_count");
    let body = ollama_line_with("llama3.1:8b", "Cached", None) + &format!("{last}\n");
    fake.script(ResponseTemplate::new(200).set_body_raw(body, "application/x-ndjson"))
        .await;
    let (usage, _) = usage_events(fake.llm().chat_stream(conversation()).await.unwrap()).await;
    assert_eq!((usage[0].prompt_tokens, usage[0].completion_tokens), (0, 4));
}

#[tokio::test]
async fn a_failed_stream_reports_no_usage() {
    // Cut before Ollama's last line: the error ends the stream, no usage follows it.
    let fake = Fake::start(ProviderKind::Ollama).await;
    let body = ollama_line_with("llama3.1:8b", "Half an ans", None);
    fake.script(ResponseTemplate::new(200).set_body_raw(body, "application/x-ndjson"))
        .await;
    use futures_util::StreamExt;
    let events: Vec<_> = fake
        .llm()
        .chat_stream(conversation())
        .await
        .unwrap()
        .collect()
        .await;
    assert!(events.last().unwrap().is_err(), "{events:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Ok(llm::StreamEvent::Usage(_)))),
        "{events:?}"
    );
}

#[tokio::test]
async fn the_fallbacks_calls_count_against_the_fallback() {
    let primary = Fake::start(ProviderKind::OpenAi).await;
    primary
        .script(openai_error(
            503,
            "The server is overloaded",
            "server_error",
        ))
        .await;
    let fallback = Fake::start(ProviderKind::Gemini).await;
    let llm = Llm::new(
        reqwest::Client::new(),
        primary.config(),
        Some(fallback.config()),
        Options {
            timeout: Duration::from_secs(5),
            ..Options::default()
        },
    )
    .unwrap();
    let want = expected(
        ProviderKind::Gemini,
        "gemini-2.5-flash",
        known_usage(ProviderKind::Gemini),
        true,
    );

    let answer = llm.chat(conversation()).await.unwrap();
    assert!(answer.used_fallback);
    assert_eq!(answer.usage, Some(want.clone()));

    let (usage, _) = usage_events(llm.chat_stream(conversation()).await.unwrap()).await;
    assert_eq!(usage, [want]);
}
