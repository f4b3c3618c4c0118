//! Configuration errors surface from `Llm::new`, before any call.

use llm::{ConfigError, Llm, Options, ProviderConfig, ProviderKind};
use secrecy::SecretString;

fn build(primary: ProviderConfig, fallback: Option<ProviderConfig>) -> Result<Llm, ConfigError> {
    Llm::new(
        reqwest::Client::new(),
        primary,
        fallback,
        Options::default(),
    )
}

#[test]
fn cloud_providers_need_a_key() {
    for kind in ProviderKind::ALL
        .into_iter()
        .filter(ProviderKind::requires_api_key)
    {
        let err = build(ProviderConfig::new(kind), None).err();
        assert!(
            matches!(err, Some(ConfigError::MissingApiKey(k)) if k == kind),
            "{kind}"
        );
        assert_eq!(
            err.map(|e| e.to_string()).as_deref(),
            Some(format!("an API key is required for {kind}").as_str())
        );
    }
}

#[test]
fn local_providers_do_not() {
    assert!(build(ProviderConfig::new(ProviderKind::Ollama), None).is_ok());
    let compatible = ProviderConfig {
        base_url: Some("http://localhost:8000/v1".parse().unwrap()),
        ..ProviderConfig::new(ProviderKind::OpenAiCompatible)
    };
    assert!(build(compatible, None).is_ok());
}

#[test]
fn openai_compatible_needs_a_base_url() {
    let err = build(ProviderConfig::new(ProviderKind::OpenAiCompatible), None).err();
    assert!(matches!(
        err,
        Some(ConfigError::MissingBaseUrl(ProviderKind::OpenAiCompatible))
    ));
    assert_eq!(
        err.map(|e| e.to_string()).as_deref(),
        Some("a base URL is required for openai-compatible")
    );
}

#[test]
fn the_fallback_is_validated_too() {
    let primary = ProviderConfig::new(ProviderKind::Ollama);
    let err = build(primary, Some(ProviderConfig::new(ProviderKind::Gemini))).err();
    assert!(matches!(
        err,
        Some(ConfigError::MissingApiKey(ProviderKind::Gemini))
    ));
}

#[test]
fn accessors_return_what_was_configured() {
    let fallback = ProviderConfig {
        api_key: Some(SecretString::from("k")),
        model: Some("claude-opus-4-1-20250805".into()),
        ..ProviderConfig::new(ProviderKind::Anthropic)
    };
    let llm = build(ProviderConfig::new(ProviderKind::Ollama), Some(fallback)).unwrap();
    assert_eq!(llm.primary().kind, ProviderKind::Ollama);
    assert_eq!(llm.primary().model(), "llama3.1:8b");
    assert_eq!(
        llm.fallback().map(ProviderConfig::model),
        Some("claude-opus-4-1-20250805")
    );
    assert_eq!((llm.in_flight(), llm.queued()), (0, 0));
}

#[test]
fn defaults_match_the_documentation() {
    let table = [
        (
            ProviderKind::Ollama,
            "llama3.1:8b",
            Some("http://localhost:11434"),
        ),
        (
            ProviderKind::Anthropic,
            "claude-sonnet-4-5-20250929",
            Some("https://api.anthropic.com"),
        ),
        (
            ProviderKind::OpenAi,
            "gpt-4o-mini",
            Some("https://api.openai.com/v1"),
        ),
        (
            ProviderKind::Gemini,
            "gemini-2.5-flash",
            Some("https://generativelanguage.googleapis.com/v1beta"),
        ),
        (
            ProviderKind::Xai,
            "grok-3-mini",
            Some("https://api.x.ai/v1"),
        ),
        (ProviderKind::OpenAiCompatible, "default", None),
    ];
    for (kind, model, base) in table {
        assert_eq!(kind.default_model(), model);
        assert_eq!(kind.default_base_url(), base);
    }
    let needs_key: Vec<_> = ProviderKind::ALL
        .into_iter()
        .filter(ProviderKind::requires_api_key)
        .collect();
    assert_eq!(
        needs_key,
        [
            ProviderKind::Anthropic,
            ProviderKind::OpenAi,
            ProviderKind::Gemini,
            ProviderKind::Xai
        ]
    );
}
