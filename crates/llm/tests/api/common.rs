//! Behaviour every provider shares, run against each fake in turn.

use llm::{ChatRequest, LlmError, Message, ProviderKind};
use secrecy::SecretString;

use crate::fakes::{Fake, collect, conversation, deltas, override_model};

#[tokio::test]
async fn plain_and_streamed_answers_agree_for_every_provider() {
    for kind in ProviderKind::ALL {
        let fake = Fake::start(kind).await;
        let llm = fake.llm();

        let answer = llm.chat(conversation()).await.unwrap();
        assert_eq!(answer.content, "Hello there!", "{kind}");
        assert_eq!(answer.provider, kind);
        assert_eq!(answer.model, kind.default_model());
        assert!(!answer.used_fallback);

        let streamed = collect(llm.chat_stream(conversation()).await.unwrap()).await;
        assert_eq!(streamed.unwrap(), "Hello there!", "{kind}");
        assert_eq!(
            llm.in_flight(),
            0,
            "{kind}: the finished stream gave its permit back"
        );
    }
}

#[tokio::test]
async fn stream_deltas_arrive_in_order_as_sent() {
    for kind in ProviderKind::ALL {
        let fake = Fake::answering(kind, &["one", " two", " three"]).await;
        let deltas = deltas(fake.llm().chat_stream(conversation()).await.unwrap()).await;
        assert_eq!(deltas, ["one", " two", " three"], "{kind}");
    }
}

#[tokio::test]
async fn per_request_model_overrides_the_configured_one() {
    for kind in ProviderKind::ALL {
        let fake = Fake::start(kind).await;
        let request = ChatRequest {
            model: Some(override_model(kind).into()),
            ..conversation()
        };
        let answer = fake.llm().chat(request.clone()).await.unwrap();
        assert_eq!(answer.model, override_model(kind), "{kind}");
        let streamed = collect(fake.llm().chat_stream(request).await.unwrap()).await;
        assert_eq!(streamed.unwrap(), "Hello there!", "{kind}");
    }
}

#[tokio::test]
async fn configured_model_is_used_when_no_override() {
    for kind in ProviderKind::ALL {
        let fake = Fake::start(kind).await;
        let llm = fake.llm_with(|c| c.model = Some(override_model(kind).into()));
        let answer = llm.chat(conversation()).await.unwrap();
        assert_eq!(answer.model, override_model(kind), "{kind}");
    }
}

#[tokio::test]
async fn wrong_key_is_an_auth_error_and_never_shown() {
    for kind in ProviderKind::ALL
        .into_iter()
        .filter(ProviderKind::requires_api_key)
    {
        let fake = Fake::start(kind).await;
        let llm = fake.llm_with(|c| c.api_key = Some(SecretString::from("wrong-secret-key")));

        let err = llm.chat(conversation()).await.unwrap_err();
        assert!(
            matches!(err, LlmError::Auth { provider, .. } if provider == kind),
            "{kind}: {err:?}"
        );
        assert!(!err.is_failover_worthy());
        assert!(!format!("{err} {err:?}").contains("wrong-secret-key"));

        let err = llm.chat_stream(conversation()).await.err().unwrap();
        assert!(matches!(err, LlmError::Auth { .. }), "{kind}: {err:?}");
    }
}

#[tokio::test]
async fn unknown_model_is_model_not_found() {
    for kind in ProviderKind::ALL {
        let fake = Fake::start(kind).await;
        let request = ChatRequest {
            model: Some("no-such-model".into()),
            ..conversation()
        };
        let err = fake.llm().chat(request.clone()).await.unwrap_err();
        assert!(
            matches!(&err, LlmError::ModelNotFound { provider, model } if *provider == kind && model == "no-such-model"),
            "{kind}: {err:?}"
        );
        let err = fake.llm().chat_stream(request).await.err().unwrap();
        assert!(
            matches!(err, LlmError::ModelNotFound { .. }),
            "{kind}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_single_user_message_without_system_prompt_works_everywhere() {
    for kind in ProviderKind::ALL {
        let fake = Fake::start(kind).await;
        let request = ChatRequest {
            messages: vec![Message::user("hi")],
            ..ChatRequest::default()
        };
        assert_eq!(
            fake.llm().chat(request).await.unwrap().content,
            "Hello there!",
            "{kind}"
        );
    }
}

#[tokio::test]
async fn error_messages_do_not_carry_the_prompt() {
    let fake = Fake::start(ProviderKind::Anthropic).await;
    let request = ChatRequest {
        system: Some("TOP SECRET SYSTEM PROMPT".into()),
        temperature: Some(1.5),
        ..conversation()
    };
    let err = fake.llm().chat(request).await.unwrap_err();
    assert!(
        matches!(err, LlmError::BadRequest { status: 400, .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("TOP SECRET"));
}
