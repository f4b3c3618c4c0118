//! Option B end to end: Webex → webex-relay (HTTPS) → webex-chatbot (HTTPS, mutual TLS)
//! → reply at the fake Webex; and the bot's certificate replaced on disk without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ca::{Ca, Leaf};
use crate::helpers::*;

const RELAY_KEY: &str = "relay-key-SECRET-e2e";

/// Writes by rename, the way certbot replaces files.
fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

fn client(ca: &Ca, identity: Option<&Leaf>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .tls_certs_only([ca.reqwest_root()])
        .timeout(Duration::from_secs(5));
    if let Some(leaf) = identity {
        let pem = format!("{}{}", leaf.cert, leaf.key);
        builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

async fn wait_https(client: &reqwest::Client, url: &str) {
    assert!(
        eventually(Duration::from_secs(5), || async {
            client
                .get(url)
                .send()
                .await
                .is_ok_and(|r| r.status() == 200)
        })
        .await,
        "{url} did not answer"
    );
}

#[tokio::test]
async fn signed_webhook_through_the_https_relay_reaches_the_mtls_bot_and_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let internal = Ca::new("internal CA");
    let public = Ca::new("public CA");
    let bot_leaf = internal.server("bot");
    let relay_client = internal.client("relay");
    let relay_server = public.server("relay.example.com");
    let internal_ca = write(d, "internal-ca.pem", &internal.pem);

    let bot = TestApp::spawn(
        Spawn::default()
            .env(
                "TLS_CERT_PATH",
                write(d, "bot.pem", &bot_leaf.cert).to_str().unwrap(),
            )
            .env(
                "TLS_KEY_PATH",
                write(d, "bot.key", &bot_leaf.key).to_str().unwrap(),
            )
            .env("TLS_CLIENT_CA_PATH", internal_ca.to_str().unwrap())
            .env("RELAY_API_KEY", RELAY_KEY),
    )
    .await;
    bot.approve(ALICE).await;
    let bot_url = format!("https://localhost:{}", bot.port);

    // The bot requires a client certificate: without one the handshake is refused.
    let anonymous = client(&internal, None);
    assert!(
        anonymous
            .get(format!("{bot_url}/health"))
            .send()
            .await
            .is_err()
    );
    wait_https(
        &client(&internal, Some(&relay_client)),
        &format!("{bot_url}/health"),
    )
    .await;

    let env: HashMap<&str, String> = [
        ("INTERNAL_BOT_URL", bot_url.clone()),
        ("RELAY_API_KEY", RELAY_KEY.to_owned()),
        ("WEBEX_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        (
            "SSL_CERT_PATH",
            write(d, "relay.pem", &relay_server.cert)
                .display()
                .to_string(),
        ),
        (
            "SSL_KEY_PATH",
            write(d, "relay.key", &relay_server.key)
                .display()
                .to_string(),
        ),
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
        ("INTERNAL_CA_PATH", internal_ca.display().to_string()),
        (
            "INTERNAL_CLIENT_CERT_PATH",
            write(d, "relay-client.pem", &relay_client.cert)
                .display()
                .to_string(),
        ),
        (
            "INTERNAL_CLIENT_KEY_PATH",
            write(d, "relay-client.key", &relay_client.key)
                .display()
                .to_string(),
        ),
    ]
    .into_iter()
    .collect();
    let config = relay::Config::from_lookup(|k| env.get(k).cloned()).unwrap();
    let relay_app = relay::App::build(config).await.unwrap();
    let relay_url = format!("https://localhost:{}", relay_app.port());
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay_app.run_until(async move {
        let _ = stop_rx.await;
    }));
    let webex_side = client(&public, None);
    wait_https(&webex_side, &format!("{relay_url}/health")).await;

    // A bad signature stops at the relay: 401 and the bot sees nothing.
    let message = fixture("message-direct.json");
    mount_message(&bot.webex, &message).await;
    let body = serde_json::to_vec(&event_for(&message)).unwrap();
    let bad = webex_side
        .post(format!("{relay_url}/webhook"))
        .header("x-spark-signature", webex::signature::sign(b"wrong", &body))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let id = message["id"].as_str().unwrap();
    assert!(bot.state.store.event_outcome(id).await.unwrap().is_none());

    // The signed webhook goes relay → bot (mTLS, relay key) → LLM → reply.
    let good = webex_side
        .post(format!("{relay_url}/webhook"))
        .header(
            "x-spark-signature",
            webex::signature::sign(WEBHOOK_SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    assert_eq!(bot.wait_handled(id).await, "answered");
    let replies = bot.replies().await;
    assert_eq!(replies.len(), 1);
    assert_eq!(
        replies[0]["markdown"],
        format!("Echo: {}", message["text"].as_str().unwrap())
    );

    let _ = stop_tx.send(());
    relay_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn replaced_certificate_files_are_served_to_new_connections_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    let old = old_ca.server("bot");
    let cert = write(d, "bot.pem", &old.cert);
    let key = write(d, "bot.key", &old.key);
    let bot = TestApp::spawn(
        Spawn::default()
            .env("TLS_CERT_PATH", cert.to_str().unwrap())
            .env("TLS_KEY_PATH", key.to_str().unwrap()),
    )
    .await;
    let health = format!("https://localhost:{}/health", bot.port);
    wait_https(&client(&old_ca, None), &health).await;
    assert!(client(&new_ca, None).get(&health).send().await.is_err());

    // Renewal: new files land by rename; the server notices without a restart.
    let new = new_ca.server("bot");
    write(d, "bot.key", &new.key);
    write(d, "bot.pem", &new.cert);
    wait_https(&client(&new_ca, None), &health).await;
    assert!(client(&old_ca, None).get(&health).send().await.is_err());
    assert!(
        bot.state.started.elapsed() > Duration::ZERO,
        "same process, no restart"
    );
}
