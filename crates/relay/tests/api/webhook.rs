//! `POST /webhook` and the 404 surface, against a wiremock bot over plain HTTP.

use std::time::{Duration, Instant};

use wiremock::matchers::{any, body_bytes, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    API_KEY, BODY, Files, RelayProcess, SECRET, closed_port, config, sign, spawn_app,
};

/// A bot that accepts exactly the forwarded request Webex's relay should produce.
async fn bot_expecting(body: &str, status: u16, times: u64) -> MockServer {
    let bot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/webhook"))
        .and(header("content-type", "application/json"))
        .and(header(
            "x-spark-signature",
            sign(SECRET, body.as_bytes()).as_str(),
        ))
        .and(header("x-relay-key", API_KEY))
        .and(body_bytes(body.as_bytes().to_vec()))
        .respond_with(ResponseTemplate::new(status))
        .expect(times)
        .mount(&bot)
        .await;
    bot
}

/// A bot that must not be called at all.
async fn bot_never_called() -> MockServer {
    let bot = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&bot)
        .await;
    bot
}

#[tokio::test]
async fn signed_webhook_is_forwarded_byte_for_byte() {
    let bot = bot_expecting(BODY, 200, 1).await;
    let app = spawn_app(config(&bot.uri(), &[])).await;

    let response = app.post_signed(BODY).await;

    assert_eq!(response.status(), 200);
    app.stop().await;
    bot.verify().await;
}

#[tokio::test]
async fn body_is_not_reserialised() {
    // Whitespace, key order and escapes must survive: the bot re-verifies the signature.
    let body = "{ \"b\": 1,\n  \"a\": \"caf\\u00e9 \u{2603}\" }\n";
    let bot = bot_expecting(body, 200, 1).await;
    let app = spawn_app(config(&bot.uri(), &[])).await;

    assert_eq!(app.post_signed(body).await.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn bot_status_is_passed_back() {
    for status in [202, 400, 401, 500, 503] {
        let bot = bot_expecting(BODY, status, 1).await;
        let app = spawn_app(config(&bot.uri(), &[])).await;
        assert_eq!(app.post_signed(BODY).await.status(), status);
        app.stop().await;
    }
}

#[tokio::test]
async fn bad_or_missing_signature_is_401_and_nothing_is_forwarded() {
    let bot = bot_never_called().await;
    let app = spawn_app(config(&bot.uri(), &[])).await;

    let wrong_secret = sign("another-secret", BODY.as_bytes());
    let other_body = sign(SECRET, b"{}");
    let good = sign(SECRET, BODY.as_bytes());
    let truncated = &good[..20];
    let cases: &[Option<&str>] = &[
        None,
        Some(""),
        Some(&wrong_secret),
        Some(&other_body),
        Some(truncated),
        Some("not-hex-at-all"),
        Some("sha1=0000"),
    ];
    for signature in cases {
        let response = app.post_webhook(BODY, *signature).await;
        assert_eq!(response.status(), 401, "signature {signature:?}");
    }
    // The right signature over a body altered in transit.
    let response = app
        .post_webhook(&BODY.replace("alice", "mallory"), Some(&good))
        .await;
    assert_eq!(response.status(), 401);

    app.stop().await;
    bot.verify().await;
}

#[tokio::test]
async fn bot_down_is_502() {
    let app = spawn_app(config(&format!("http://127.0.0.1:{}", closed_port()), &[])).await;
    assert_eq!(app.post_signed(BODY).await.status(), 502);
    app.stop().await;
}

#[tokio::test]
async fn bot_hanging_is_504_within_the_timeout() {
    let bot = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/webhook"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&bot)
        .await;
    let app = spawn_app(config(&bot.uri(), &[("RELAY_FORWARD_TIMEOUT_SECS", "0.5")])).await;

    let started = Instant::now();
    let response = app.post_signed(BODY).await;
    let elapsed = started.elapsed();

    assert_eq!(response.status(), 504);
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(2500), "{elapsed:?}");
    app.stop().await;
}

#[tokio::test]
async fn everything_else_is_404() {
    let bot = bot_never_called().await;
    let app = spawn_app(config(&bot.uri(), &[])).await;

    let signature = sign(SECRET, BODY.as_bytes());
    let cases = [
        ("GET", "/"),
        ("GET", "/webhook"),
        ("PUT", "/webhook"),
        ("DELETE", "/webhook"),
        ("POST", "/webhook/"),
        ("POST", "/webhook/extra"),
        ("POST", "/health"),
        ("POST", "/"),
        ("GET", "/metrics"),
        ("GET", "/admin"),
        ("GET", "/../etc/passwd"),
    ];
    for (verb, target) in cases {
        let response = app
            .client
            .request(verb.parse().unwrap(), app.url(target))
            .header("x-spark-signature", &signature)
            .body(BODY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{verb} {target}");
    }

    app.stop().await;
    bot.verify().await;
}

#[tokio::test]
async fn body_over_the_limit_is_413_and_not_forwarded() {
    let at_limit = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 - 10));
    assert_eq!(at_limit.len(), 1024);
    let bot = bot_expecting(&at_limit, 200, 1).await;
    let app = spawn_app(config(&bot.uri(), &[("RELAY_MAX_BODY_BYTES", "1024")])).await;

    assert_eq!(app.post_signed(&at_limit).await.status(), 200);

    let over = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024));
    assert_eq!(app.post_signed(&over).await.status(), 413);

    // Without Content-Length (chunked), the limit still holds.
    let chunks: Vec<Result<String, std::io::Error>> = vec![Ok(over.clone()), Ok(over.clone())];
    let response = app
        .client
        .post(app.url("/webhook"))
        .header(
            "x-spark-signature",
            sign(SECRET, format!("{over}{over}").as_bytes()),
        )
        .body(reqwest::Body::wrap_stream(tokio_stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    app.stop().await;
    bot.verify().await;
}

#[tokio::test]
async fn rate_limit_is_per_source_address_and_says_when_to_retry() {
    let bot = bot_never_called().await;
    let app = spawn_app(config(&bot.uri(), &[("RELAY_RATE_LIMIT", "2")])).await;

    // Unsigned requests: the limit applies before the signature is even looked at.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let response = app.post_webhook(BODY, None).await;
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").cloned();
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(&statuses[..2], &[401, 401], "{statuses:?}");
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    let retry_after: u64 = retry_after.unwrap().to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry_after), "{retry_after}");

    // The quota refills: half a second later one more request gets through.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(app.post_webhook(BODY, None).await.status(), 401);

    app.stop().await;
    bot.verify().await;
}

#[tokio::test]
async fn a_client_that_never_sends_its_body_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let bot = bot_never_called().await;
    let app = spawn_app(config(&bot.uri(), &[("RELAY_FORWARD_TIMEOUT_SECS", "0.5")])).await;

    let mut tcp = tokio::net::TcpStream::connect(app.url("").trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /webhook HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\nContent-Length: 100\r\nX-Spark-Signature: {}\r\n\r\n{{\"partial\":",
        sign(SECRET, BODY.as_bytes())
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut reply = vec![0; 64];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut reply))
        .await
        .expect("relay answers before the client gives up")
        .unwrap();
    let reply = String::from_utf8_lossy(&reply[..n]);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    app.stop().await;
    bot.verify().await;
}

/// Anyone on the internet can send bad requests: 1,000 of them write a few WARN lines,
/// not 1,000 (the binary as a process, its stderr counted, LOG_LEVEL=warn).
#[tokio::test]
async fn a_flood_of_bad_requests_writes_a_few_warn_lines() {
    // Probed at /health while the relay starts; no webhook may reach it.
    let bot = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&bot)
        .await;
    Mock::given(path("/webhook"))
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&bot)
        .await;
    let files = Files::new();
    let relay = RelayProcess::start(
        files.dir(),
        &bot.uri(),
        // No per-address limit, so every request reaches the signature check.
        &[("LOG_LEVEL", "warn"), ("RELAY_RATE_LIMIT", "0")],
    )
    .await;
    let client = reqwest::Client::new();
    let wrong_signature = sign("not-the-secret", BODY.as_bytes());

    let started = Instant::now();
    for batch in 0..50 {
        let mut requests = tokio::task::JoinSet::new();
        for i in 0..20 {
            let mut request = client
                .post(relay.url("/webhook"))
                .header("content-type", "application/json")
                .body(BODY);
            // Half with a wrong signature, half with none: two reasons, two throttles.
            if (batch * 20 + i) % 2 == 0 {
                request = request.header("x-spark-signature", wrong_signature.as_str());
            }
            requests.spawn(request.send());
        }
        while let Some(response) = requests.join_next().await {
            assert_eq!(response.unwrap().unwrap().status(), 401);
        }
    }
    let windows = started.elapsed().as_secs() / 10 + 1;

    // Lines reach the file asynchronously; give the last ones a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = relay.log();
    let rejected = log
        .lines()
        .filter(|line| line.contains("webhook rejected"))
        .count();
    assert!(
        (2..=usize::try_from(2 * windows).unwrap()).contains(&rejected),
        "{rejected} lines for 1,000 bad requests in {windows} window(s):\n{log}"
    );
    assert!(log.contains("bad X-Spark-Signature"), "{log}");
    assert!(log.contains("no X-Spark-Signature"), "{log}");
    // Not a terminal: no colour codes in a file or the journal.
    assert!(!log.contains('\u{1b}'), "{log}");
    assert!(!log.contains(SECRET) && !log.contains(API_KEY), "{log}");
    drop(relay);
    bot.verify().await;
}
