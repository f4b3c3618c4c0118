//! Failover to the fallback, timeouts and the one 429 retry.

use std::time::{Duration, Instant};

use llm::{Llm, LlmError, Options, ProviderConfig, ProviderKind};
use wiremock::ResponseTemplate;

use crate::fakes::{Fake, collect, conversation, openai_error};

fn with_timeout(timeout: Duration) -> Options {
    Options {
        timeout,
        ..Options::default()
    }
}

fn pair(primary: ProviderConfig, fallback: &Fake, timeout: Duration) -> Llm {
    Llm::new(
        reqwest::Client::new(),
        primary,
        Some(fallback.config()),
        with_timeout(timeout),
    )
    .unwrap()
}

/// A base URL nothing listens on: its port stays bound, never listening, until the tests
/// end, so no other test's server can be given it meanwhile.
fn closed_port_config(kind: ProviderKind) -> ProviderConfig {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    std::mem::forget(socket);
    ProviderConfig {
        base_url: Some(format!("http://127.0.0.1:{port}/v1").parse().unwrap()),
        ..ProviderConfig::new(kind)
    }
}

#[tokio::test]
async fn fallback_answers_when_the_primary_returns_503() {
    let primary = Fake::start(ProviderKind::OpenAiCompatible).await;
    primary
        .script(openai_error(
            503,
            "The server is overloaded",
            "server_error",
        ))
        .await;
    let fallback = Fake::answering(ProviderKind::Anthropic, &["From ", "fallback"]).await;
    let llm = pair(primary.config(), &fallback, Duration::from_secs(5));

    let answer = llm.chat(conversation()).await.unwrap();
    assert_eq!(answer.content, "From fallback");
    assert_eq!(answer.provider, ProviderKind::Anthropic);
    assert_eq!(answer.model, "claude-sonnet-4-5-20250929");
    assert!(answer.used_fallback);

    let streamed = collect(llm.chat_stream(conversation()).await.unwrap()).await;
    assert_eq!(streamed.unwrap(), "From fallback");
}

#[tokio::test]
async fn the_request_model_override_is_not_sent_to_the_fallback() {
    let primary = Fake::start(ProviderKind::Ollama).await;
    primary.script(ResponseTemplate::new(500)).await;
    let fallback = Fake::start(ProviderKind::Gemini).await;
    let llm = pair(primary.config(), &fallback, Duration::from_secs(5));
    let request = llm::ChatRequest {
        model: Some("qwen3:4b".into()),
        ..conversation()
    };
    let answer = llm.chat(request).await.unwrap();
    assert_eq!(answer.model, "gemini-2.5-flash");
    assert_eq!(primary.chat_bodies().await[0]["model"], "qwen3:4b");
}

#[tokio::test]
async fn fallback_answers_when_the_primary_hangs() {
    let primary = Fake::start(ProviderKind::Ollama).await;
    primary
        .script(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .await;
    let fallback = Fake::start(ProviderKind::OpenAi).await;
    let timeout = Duration::from_millis(300);
    let llm = pair(primary.config(), &fallback, timeout);

    let started = Instant::now();
    let answer = llm.chat(conversation()).await.unwrap();
    assert!(answer.used_fallback);
    assert!(
        started.elapsed() < timeout + Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    let stream = llm.chat_stream(conversation()).await.unwrap();
    assert_eq!(collect(stream).await.unwrap(), "Hello there!");
}

#[tokio::test]
async fn a_hanging_provider_times_out_within_the_timeout() {
    let fake = Fake::start(ProviderKind::Gemini).await;
    fake.script(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .await;
    let timeout = Duration::from_millis(400);
    let llm = Llm::new(
        reqwest::Client::new(),
        fake.config(),
        None,
        with_timeout(timeout),
    )
    .unwrap();

    for streaming in [false, true] {
        let started = Instant::now();
        let err = if streaming {
            llm.chat_stream(conversation()).await.err().unwrap()
        } else {
            llm.chat(conversation()).await.unwrap_err()
        };
        let elapsed = started.elapsed();
        assert!(
            matches!(err, LlmError::Timeout { provider: ProviderKind::Gemini, after } if after == timeout),
            "{err:?}"
        );
        assert!(
            elapsed >= timeout && elapsed < timeout + Duration::from_millis(500),
            "{elapsed:?}"
        );
        assert!(err.is_failover_worthy());
    }
}

/// Sends the response head and one NDJSON line, then keeps the connection open silently:
/// a stall wiremock cannot script.
async fn stalling_ollama() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = vec![0u8; 64 * 1024];
        let _ = socket.read(&mut request).await.unwrap();
        let line = crate::fakes::ollama_line("llama3.1:8b", "first words", false);
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n";
        let chunk = format!("{head}{:x}\r\n{line}\r\n", line.len());
        socket.write_all(chunk.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
    (base, server)
}

#[tokio::test]
async fn the_timeout_bounds_a_stream_that_stalls_after_its_first_delta() {
    use futures_util::StreamExt;
    let (base, server) = stalling_ollama().await;
    let config = ProviderConfig {
        base_url: Some(base.parse().unwrap()),
        ..ProviderConfig::new(ProviderKind::Ollama)
    };
    let timeout = Duration::from_millis(400);
    let llm = Llm::new(reqwest::Client::new(), config, None, with_timeout(timeout)).unwrap();

    let started = Instant::now();
    let mut stream = llm.chat_stream(conversation()).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        llm::StreamEvent::Text("first words".into())
    );
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(
        matches!(err, LlmError::Timeout { after, .. } if after == timeout),
        "{err:?}"
    );
    assert!(started.elapsed() < timeout + Duration::from_millis(500));
    assert!(stream.next().await.is_none());
    assert_eq!(
        llm.in_flight(),
        0,
        "the permit is given back when the stream fails"
    );
    server.abort();
}

#[tokio::test]
async fn fallback_answers_when_the_primary_is_unreachable() {
    let fallback = Fake::start(ProviderKind::Xai).await;
    let llm = pair(
        closed_port_config(ProviderKind::OpenAiCompatible),
        &fallback,
        Duration::from_secs(5),
    );
    let answer = llm.chat(conversation()).await.unwrap();
    assert!(answer.used_fallback);
    assert_eq!(answer.provider, ProviderKind::Xai);
}

#[tokio::test]
async fn unreachable_without_fallback_is_unreachable() {
    let llm = Llm::new(
        reqwest::Client::new(),
        closed_port_config(ProviderKind::Ollama),
        None,
        Options::default(),
    )
    .unwrap();
    let err = llm.chat(conversation()).await.unwrap_err();
    assert!(
        matches!(
            err,
            LlmError::Unreachable {
                provider: ProviderKind::Ollama,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept for logs"
    );
}

#[tokio::test]
async fn auth_errors_and_bad_requests_do_not_fail_over() {
    let primary = Fake::start(ProviderKind::Anthropic).await;
    let fallback = Fake::start(ProviderKind::Ollama).await;
    for refusal in [401, 400, 404] {
        primary.server.reset().await;
        primary.script(ResponseTemplate::new(refusal)).await;
        let llm = pair(primary.config(), &fallback, Duration::from_secs(5));
        let err = llm.chat(conversation()).await.unwrap_err();
        assert!(!err.is_failover_worthy(), "{refusal}: {err:?}");
        assert_eq!(err.provider(), ProviderKind::Anthropic);
    }
    assert!(fallback.requests().await.is_empty());
}

#[tokio::test]
async fn when_both_fail_the_fallbacks_error_is_returned() {
    let primary = Fake::start(ProviderKind::OpenAi).await;
    primary.script(ResponseTemplate::new(502)).await;
    let fallback = Fake::start(ProviderKind::Ollama).await;
    fallback.script(ResponseTemplate::new(503)).await;
    let llm = pair(primary.config(), &fallback, Duration::from_secs(5));
    let err = llm.chat(conversation()).await.unwrap_err();
    assert!(
        matches!(
            err,
            LlmError::Server {
                provider: ProviderKind::Ollama,
                status: 503,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_stream_that_breaks_after_its_first_delta_does_not_fail_over() {
    use futures_util::StreamExt;
    let primary = Fake::start(ProviderKind::Ollama).await;
    let truncated = crate::fakes::ollama_line("llama3.1:8b", "Half an ans", false);
    primary
        .script(ResponseTemplate::new(200).set_body_raw(truncated, "application/x-ndjson"))
        .await;
    let fallback = Fake::start(ProviderKind::OpenAi).await;
    let llm = pair(primary.config(), &fallback, Duration::from_secs(5));

    let mut stream = llm.chat_stream(conversation()).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        llm::StreamEvent::Text("Half an ans".into())
    );
    assert!(matches!(
        stream.next().await.unwrap(),
        Err(LlmError::Malformed { .. })
    ));
    assert!(stream.next().await.is_none());
    assert!(fallback.requests().await.is_empty());
}

#[tokio::test]
async fn rate_limit_with_retry_after_zero_is_retried_once() {
    for streaming in [false, true] {
        let fake = Fake::start(ProviderKind::OpenAi).await;
        fake.script_once(ResponseTemplate::new(429).insert_header("retry-after", "0"))
            .await;
        let text = if streaming {
            collect(fake.llm().chat_stream(conversation()).await.unwrap())
                .await
                .unwrap()
        } else {
            fake.llm().chat(conversation()).await.unwrap().content
        };
        assert_eq!(text, "Hello there!");
        assert_eq!(fake.requests().await.len(), 2);
    }
}

#[tokio::test]
async fn rate_limit_without_retry_after_waits_a_second() {
    let fake = Fake::start(ProviderKind::Anthropic).await;
    fake.script_once(ResponseTemplate::new(429)).await;
    let started = Instant::now();
    fake.llm().chat(conversation()).await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(fake.requests().await.len(), 2);
}

#[tokio::test]
async fn a_long_retry_after_is_not_waited_for_and_fails_over() {
    let primary = Fake::start(ProviderKind::Gemini).await;
    primary
        .script(ResponseTemplate::new(429).insert_header("retry-after", "60"))
        .await;
    let alone = Llm::new(
        reqwest::Client::new(),
        primary.config(),
        None,
        Options::default(),
    )
    .unwrap();
    let err = alone.chat(conversation()).await.unwrap_err();
    assert!(
        matches!(err, LlmError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(60)),
        "{err:?}"
    );
    assert_eq!(primary.requests().await.len(), 1);

    let fallback = Fake::start(ProviderKind::Ollama).await;
    let answer = pair(primary.config(), &fallback, Duration::from_secs(5))
        .chat(conversation())
        .await
        .unwrap();
    assert!(answer.used_fallback);
}

#[tokio::test]
async fn a_second_429_after_the_retry_fails_over() {
    let primary = Fake::start(ProviderKind::Xai).await;
    primary
        .script(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .await;
    let fallback = Fake::start(ProviderKind::Ollama).await;
    let answer = pair(primary.config(), &fallback, Duration::from_secs(5))
        .chat(conversation())
        .await
        .unwrap();
    assert!(answer.used_fallback);
    assert_eq!(primary.requests().await.len(), 2);
}
