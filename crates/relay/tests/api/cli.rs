//! The `webex-relay` binary as an operator runs it: `--help`, exit codes for bad
//! configuration, `.env`, and signals (SIGHUP reload, SIGTERM clean stop).

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use predicates::prelude::*;

use crate::helpers::{
    API_KEY, Ca, Files, SECRET, closed_port, eventually, eventually_some, free_port,
};

fn relay(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::cargo::cargo_bin_cmd!("webex-relay");
    // A clean environment: nothing from the developer's shell or CI leaks in.
    cmd.env_clear()
        .current_dir(dir)
        .timeout(Duration::from_secs(30));
    cmd
}

fn required_env(cmd: &mut assert_cmd::Command) -> &mut assert_cmd::Command {
    cmd.env("INTERNAL_BOT_URL", "http://127.0.0.1:9")
        .env("RELAY_API_KEY", API_KEY)
        .env("WEBEX_WEBHOOK_SECRET", SECRET)
        .env("BIND_ADDR", "127.0.0.1:0")
}

#[test]
fn help_lists_every_variable() {
    let files = Files::new();
    let assert = relay(files.dir()).arg("--help").assert().success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).into_owned();
    for var in [
        "INTERNAL_BOT_URL",
        "RELAY_API_KEY",
        "WEBEX_WEBHOOK_SECRET",
        "SSL_CERT_PATH",
        "SSL_KEY_PATH",
        "BIND_ADDR",
        "INTERNAL_CA_PATH",
        "INTERNAL_CLIENT_CERT_PATH",
        "INTERNAL_CLIENT_KEY_PATH",
        "RELAY_RATE_LIMIT",
        "RELAY_FORWARD_TIMEOUT_SECS",
        "RELAY_MAX_BODY_BYTES",
        "LOG_LEVEL",
    ] {
        assert!(stdout.contains(var), "--help does not mention {var}");
    }
    relay(files.dir())
        .arg("--version")
        .assert()
        .success()
        .stdout(predicate::str::contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn missing_internal_bot_url_exits_2_naming_it() {
    let files = Files::new();
    relay(files.dir())
        .env("RELAY_API_KEY", API_KEY)
        .env("WEBEX_WEBHOOK_SECRET", SECRET)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("INTERNAL_BOT_URL"))
        .stderr(predicate::str::contains(API_KEY).not())
        .stderr(predicate::str::contains(SECRET).not());
}

#[test]
fn every_bad_variable_is_reported_at_once() {
    let files = Files::new();
    relay(files.dir())
        .env("INTERNAL_BOT_URL", "bot:8080")
        .env("RELAY_RATE_LIMIT", "lots")
        .env("SSL_CERT_PATH", "/etc/ssl/relay.pem")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("INTERNAL_BOT_URL"))
        .stderr(predicate::str::contains("RELAY_API_KEY"))
        .stderr(predicate::str::contains("WEBEX_WEBHOOK_SECRET"))
        .stderr(predicate::str::contains("RELAY_RATE_LIMIT"))
        .stderr(predicate::str::contains("SSL_KEY_PATH"));
}

#[test]
fn mismatched_ssl_certificate_and_key_exit_2() {
    let ca = Ca::new("CA");
    let files = Files::new();
    let cert = files.write("cert.pem", &ca.server("one").cert);
    let key = files.write("key.pem", &ca.server("two").key);
    required_env(&mut relay(files.dir()))
        .env("SSL_CERT_PATH", &cert)
        .env("SSL_KEY_PATH", &key)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("SSL_KEY_PATH"))
        .stderr(predicate::str::contains("does not match"))
        .stderr(predicate::str::contains(key.as_str()));
}

#[test]
fn unreadable_files_exit_2_naming_the_variable() {
    let files = Files::new();
    required_env(&mut relay(files.dir()))
        .env("SSL_CERT_PATH", "/nonexistent/cert.pem")
        .env("SSL_KEY_PATH", "/nonexistent/key.pem")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("SSL_CERT_PATH"))
        .stderr(predicate::str::contains("/nonexistent/cert.pem"));

    required_env(&mut relay(files.dir()))
        .env("INTERNAL_BOT_URL", "https://bot.internal:8080")
        .env("INTERNAL_CA_PATH", "/nonexistent/ca.pem")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("INTERNAL_CA_PATH"));

    let ca = Ca::new("CA");
    let cert = files.write("client.pem", &ca.client("relay").cert);
    let key = files.write("client-key.pem", &ca.client("other").key);
    required_env(&mut relay(files.dir()))
        .env("INTERNAL_BOT_URL", "https://bot.internal:8080")
        .env("INTERNAL_CLIENT_CERT_PATH", &cert)
        .env("INTERNAL_CLIENT_KEY_PATH", &key)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("INTERNAL_CLIENT_KEY_PATH"));
}

#[test]
fn port_in_use_exits_1() {
    let files = Files::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    required_env(&mut relay(files.dir()))
        .env("BIND_ADDR", taken.local_addr().unwrap().to_string())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("cannot listen"));
}

#[test]
fn dot_env_is_read_and_the_real_environment_wins() {
    let files = Files::new();
    files.write(
        ".env",
        &format!(
            "# relay settings\nINTERNAL_BOT_URL=https://bot.internal:8080\nRELAY_API_KEY={API_KEY}\nWEBEX_WEBHOOK_SECRET=\"{SECRET}\"\nLOG_LEVEL=loud\n"
        ),
    );
    relay(files.dir())
        .arg("--check-config")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("LOG_LEVEL"));
    relay(files.dir())
        .arg("--check-config")
        .env("LOG_LEVEL", "debug")
        .assert()
        .success()
        .stdout(predicate::str::contains("configuration OK"));
}

/// Only the working directory's `.env` is read, never one in a parent folder.
#[test]
fn dot_env_in_a_parent_folder_is_not_read() {
    let files = Files::new();
    files.write(
        ".env",
        &format!(
            "INTERNAL_BOT_URL=https://bot.internal:8080\nRELAY_API_KEY={API_KEY}\nWEBEX_WEBHOOK_SECRET={SECRET}\n"
        ),
    );
    let child = files.dir().join("service");
    std::fs::create_dir(&child).unwrap();
    relay(&child)
        .arg("--check-config")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("INTERNAL_BOT_URL"));
}

/// The binary over HTTPS: SIGHUP swaps the certificate for new connections, SIGTERM
/// stops cleanly with exit code 0.
#[tokio::test]
async fn sighup_reloads_the_certificate_and_sigterm_stops_cleanly() {
    let first_ca = Ca::new("first CA");
    let second_ca = Ca::new("second CA");
    let files = Files::new();
    let first = first_ca.server("relay");
    let cert = files.write("relay.pem", &first.cert);
    let key = files.write("relay-key.pem", &first.key);
    let port = free_port();
    let log = std::fs::File::create(files.dir().join("relay.log")).unwrap();

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_webex-relay"))
        .env_clear()
        .current_dir(files.dir())
        .env(
            "INTERNAL_BOT_URL",
            format!("http://127.0.0.1:{}", closed_port()),
        )
        .env("RELAY_API_KEY", API_KEY)
        .env("WEBEX_WEBHOOK_SECRET", SECRET)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("SSL_CERT_PATH", &cert)
        .env("SSL_KEY_PATH", &key)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let url = format!("https://localhost:{port}/health");
    let trusting = |ca: &Ca| {
        reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap()])
            .build()
            .unwrap()
    };

    let up = eventually(Duration::from_secs(10), || async {
        trusting(&first_ca).get(&url).send().await.is_ok()
    })
    .await;
    assert!(up, "relay did not come up");

    let second = second_ca.server("relay");
    files.write("relay.pem", &second.cert);
    files.write("relay-key.pem", &second.key);
    signal(child.id(), "-HUP");

    let reloaded = eventually(Duration::from_secs(5), || async {
        trusting(&second_ca).get(&url).send().await.is_ok()
    })
    .await;
    assert!(reloaded, "new connections still get the old certificate");
    assert!(trusting(&first_ca).get(&url).send().await.is_err());

    signal(child.id(), "-TERM");
    let status = eventually_some(Duration::from_secs(15), || {
        let exit = child.try_wait().unwrap();
        async move { exit }
    })
    .await;
    let Some(status) = status else {
        let _ = child.kill();
        panic!("relay did not stop after SIGTERM");
    };
    let log = std::fs::read_to_string(files.dir().join("relay.log")).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGHUP: TLS certificate reloaded"), "{log}");
    assert!(!log.contains(API_KEY) && !log.contains(SECRET), "{log}");
}

fn signal(pid: u32, which: &str) {
    let status = std::process::Command::new("kill")
        .args([which, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
