//! The enterprise setup end to end: Webex → relay over HTTPS → bot over HTTPS that
//! requires a client certificate from the internal CA.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum_server::Handle;
use bytes::Bytes;
use tls::{ServerTls, TlsFiles};

use crate::helpers::{
    API_KEY, BODY, Ca, Files, RelayProcess, SECRET, config, sign, spawn_app_with_client,
};

#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<(HeaderMap, Bytes)>>>);

impl Received {
    fn take(&self) -> Vec<(HeaderMap, Bytes)> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A stand-in for webex-chatbot: HTTPS with mandatory client certificates, built on the
/// same `tls::serve` the real bot uses.
async fn fake_bot(files: TlsFiles) -> (SocketAddr, Received, Handle<SocketAddr>) {
    let received = Received::default();
    let log = received.clone();
    let router = Router::new()
        .route(
            "/webhook",
            post(move |headers: HeaderMap, body: Bytes| {
                let log = log.clone();
                async move {
                    log.0.lock().unwrap().push((headers, body));
                    "ok"
                }
            }),
        )
        .route("/health", get(|| async { r#"{"status":"ok"}"# }));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tls = ServerTls::load(files).await.unwrap();
    let handle = Handle::new();
    tokio::spawn(tls::serve(listener, router, Some(tls), handle.clone()));
    (addr, received, handle)
}

fn vars<'a>(pairs: impl Iterator<Item = &'a (&'static str, String)>) -> Vec<(&'a str, &'a str)> {
    pairs.map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn relay_over_https_forwards_to_an_mtls_bot() {
    let internal_ca = Ca::new("internal CA");
    let public_ca = Ca::new("public CA");
    let files = Files::new();

    let bot_leaf = internal_ca.server("bot.internal");
    let (bot_addr, received, bot_handle) = fake_bot(TlsFiles {
        cert: files.write("bot.pem", &bot_leaf.cert).into(),
        key: files.write("bot-key.pem", &bot_leaf.key).into(),
        client_ca: Some(files.write("internal-ca.pem", &internal_ca.pem).into()),
    })
    .await;

    let relay_leaf = public_ca.server("relay.example.com");
    let relay_client = internal_ca.client("webex-relay");
    let bot_url = format!("https://localhost:{}", bot_addr.port());
    let ssl = [
        ("SSL_CERT_PATH", files.write("relay.pem", &relay_leaf.cert)),
        (
            "SSL_KEY_PATH",
            files.write("relay-key.pem", &relay_leaf.key),
        ),
        (
            "INTERNAL_CA_PATH",
            files.write("internal-ca.pem", &internal_ca.pem),
        ),
    ];
    let client_cert = [
        (
            "INTERNAL_CLIENT_CERT_PATH",
            files.write("relay-client.pem", &relay_client.cert),
        ),
        (
            "INTERNAL_CLIENT_KEY_PATH",
            files.write("relay-client-key.pem", &relay_client.key),
        ),
    ];
    let webex = || {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(public_ca.pem.as_bytes()).unwrap()])
            .build()
            .unwrap()
    };

    // With the client certificate: forwarded, headers intact, bot healthy.
    let overrides = vars(ssl.iter().chain(&client_cert));
    let relay =
        spawn_app_with_client(config(&bot_url, &overrides), webex(), "https://localhost").await;

    let response = relay.post_signed(BODY).await;
    assert_eq!(response.status(), 200);
    let got = received.take();
    assert_eq!(got.len(), 1);
    let (headers, body) = &got[0];
    assert_eq!(body.as_ref(), BODY.as_bytes());
    assert_eq!(headers["x-relay-key"], API_KEY);
    assert_eq!(
        headers["x-spark-signature"],
        sign(SECRET, BODY.as_bytes()).as_str()
    );
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(relay.health().await["status"], "ok");
    relay.stop().await;

    // Without it, the bot refuses the handshake: nothing arrives, Webex gets 502.
    let overrides = vars(ssl.iter());
    let relay =
        spawn_app_with_client(config(&bot_url, &overrides), webex(), "https://localhost").await;
    assert_eq!(relay.post_signed(BODY).await.status(), 502);
    let health = relay.health().await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["bot"]["reachable"], false);
    relay.stop().await;

    // Without INTERNAL_CA_PATH the bot's certificate is not trusted at all.
    let overrides = vars(ssl[..2].iter().chain(&client_cert));
    let relay =
        spawn_app_with_client(config(&bot_url, &overrides), webex(), "https://localhost").await;
    assert_eq!(relay.post_signed(BODY).await.status(), 502);
    relay.stop().await;

    assert!(received.take().is_empty());
    bot_handle.graceful_shutdown(Some(Duration::from_secs(1)));
}

/// INTERNAL_CA_PATH pins the bot's CA: a bot certificate from any other CA is refused,
/// even one the system trusts. The relay runs as a process with `SSL_CERT_FILE` naming
/// the other CA, which is how rustls-native-certs (and so the system roots reqwest used
/// next to INTERNAL_CA_PATH before it was pinned) learns what the system trusts.
#[tokio::test]
async fn internal_ca_path_pins_the_bot_ca_over_the_system_roots() {
    let internal_ca = Ca::new("internal CA");
    let other_ca = Ca::new("some public CA");
    let files = Files::new();
    let internal_ca_path = files.write("internal-ca.pem", &internal_ca.pem);
    let system_roots = files.write("system-roots.pem", &other_ca.pem);

    // A server in the bot's name with a certificate the system trusts, not the internal CA.
    let impostor = other_ca.server("bot.internal");
    let (bot_addr, received, bot_handle) = fake_bot(TlsFiles {
        cert: files.write("impostor.pem", &impostor.cert).into(),
        key: files.write("impostor-key.pem", &impostor.key).into(),
        client_ca: None,
    })
    .await;
    let bot_url = format!("https://localhost:{}", bot_addr.port());
    let post_signed = |relay: &RelayProcess| {
        reqwest::Client::new()
            .post(relay.url("/webhook"))
            .header("content-type", "application/json")
            .header("x-spark-signature", sign(SECRET, BODY.as_bytes()))
            .body(BODY)
            .send()
    };

    // Control: without INTERNAL_CA_PATH the system roots apply, and they trust it.
    let relay = RelayProcess::start(
        files.dir(),
        &bot_url,
        &[("SSL_CERT_FILE", system_roots.as_str())],
    )
    .await;
    let status = post_signed(&relay).await.unwrap().status();
    assert_eq!(status, 200, "{}", relay.log());
    assert_eq!(received.take().len(), 1);
    drop(relay);

    // Pinned to the internal CA: the handshake fails, nothing (no relay key, no body)
    // reaches the impostor, Webex gets 502 and /health says the bot is unreachable.
    let relay = RelayProcess::start(
        files.dir(),
        &bot_url,
        &[
            ("SSL_CERT_FILE", system_roots.as_str()),
            ("INTERNAL_CA_PATH", internal_ca_path.as_str()),
        ],
    )
    .await;
    let status = post_signed(&relay).await.unwrap().status();
    assert_eq!(status, 502, "{}", relay.log());
    let health: serde_json::Value = reqwest::get(relay.url("/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["bot"]["reachable"], false, "{health}");
    drop(relay);

    assert!(
        received.take().is_empty(),
        "the relay talked to the impostor"
    );
    bot_handle.graceful_shutdown(Some(Duration::from_secs(1)));
}
