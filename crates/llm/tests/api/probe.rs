//! The health probe: model lists only, never a completion.

use llm::{Llm, Options, ProviderConfig, ProviderKind};
use secrecy::SecretString;

use crate::fakes::{Fake, KEY, header};

#[tokio::test]
async fn every_provider_is_probed_through_its_model_list() {
    let expected_paths = [
        (ProviderKind::Ollama, "/api/tags"),
        (ProviderKind::Anthropic, "/v1/models"),
        (ProviderKind::OpenAi, "/v1/models"),
        (ProviderKind::Gemini, "/v1beta/models"),
        (ProviderKind::Xai, "/v1/models"),
        (ProviderKind::OpenAiCompatible, "/v1/models"),
    ];
    for (kind, path) in expected_paths {
        let fake = Fake::start(kind).await;
        let report = fake.llm().probe().await;
        let probe = &report.primary;
        assert_eq!(probe.provider, kind.as_str());
        assert_eq!(probe.model, kind.default_model());
        assert!(probe.reachable, "{kind}: {probe:?}");
        assert_eq!(probe.model_available, Some(true), "{kind}");
        assert_eq!(probe.error, None);
        assert!(report.fallback.is_none());

        let requests = fake.requests().await;
        assert_eq!(requests.len(), 1);
        assert_eq!(
            requests[0].method.as_str(),
            "GET",
            "{kind}: never a completion"
        );
        assert_eq!(requests[0].url.path(), path, "{kind}");
        if kind == ProviderKind::Anthropic {
            assert_eq!(header(&requests[0], "x-api-key"), Some(KEY));
        }
    }
}

#[tokio::test]
async fn a_model_that_is_not_listed_is_reported() {
    for kind in [
        ProviderKind::Ollama,
        ProviderKind::Gemini,
        ProviderKind::OpenAi,
    ] {
        let fake = Fake::start(kind).await;
        let llm = fake.llm_with(|c| c.model = Some("not-installed".into()));
        let probe = llm.probe().await.primary;
        assert!(probe.reachable);
        assert_eq!(probe.model_available, Some(false), "{kind}");
    }
}

#[tokio::test]
async fn refused_keys_and_closed_ports_are_unreachable_with_a_reason() {
    let fake = Fake::start(ProviderKind::Anthropic).await;
    let mut config = fake.config();
    config.api_key = Some(SecretString::from("wrong-secret"));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = ProviderConfig {
        base_url: Some(format!("http://127.0.0.1:{port}").parse().unwrap()),
        ..ProviderConfig::new(ProviderKind::Ollama)
    };

    let llm = Llm::new(
        reqwest::Client::new(),
        config,
        Some(closed),
        Options::default(),
    )
    .unwrap();
    let report = llm.probe().await;
    assert!(!report.all_reachable());

    let refused = &report.primary;
    assert!(!refused.reachable);
    assert_eq!(refused.model_available, None);
    let reason = refused.error.as_deref().unwrap_or_default();
    assert!(
        reason.contains("401") && reason.contains("invalid x-api-key"),
        "{reason}"
    );
    assert!(!reason.contains("wrong-secret"));

    let down = report.fallback.as_ref().unwrap();
    assert_eq!(down.provider, "ollama");
    assert!(!down.reachable);
    assert!(down.error.is_some());
}

#[tokio::test]
async fn the_report_serializes_for_the_health_endpoint() {
    let fake = Fake::start(ProviderKind::Ollama).await;
    let report = fake.llm().probe().await;
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["primary"]["provider"], "ollama");
    assert_eq!(json["primary"]["reachable"], true);
    assert_eq!(json["primary"]["model_available"], true);
    assert!(json["primary"]["latency_ms"].is_u64());
    assert!(json["fallback"].is_null());
}
