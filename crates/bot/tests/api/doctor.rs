//! `webex-chatbot doctor` as a process against fake Webex and Ollama servers, with real
//! files (TLS certificates, `.env`, personalities, database, log folder) in a temp dir.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::ops::{FakeWebhooks, hook, process_env};

/// A self-signed certificate valid for `days` more days, and its key.
fn certificate(days: u64) -> (String, String) {
    let leaf = crate::ca::self_signed(days);
    (leaf.cert, leaf.key)
}

fn write(dir: &Path, name: &str, contents: &str, mode: u32) -> String {
    use std::os::unix::fs::PermissionsExt;
    let file = dir.join(name);
    if let Some(parent) = file.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&file, contents).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    file.display().to_string()
}

async fn doctor(
    dir: &Path,
    args: &[&str],
    env: &[(String, String)],
) -> (Option<i32>, String, String) {
    let out = Bot::new(["doctor"])
        .args(args)
        .dir(dir)
        .envs(env.iter().cloned())
        .output()
        .await;
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `doctor --json`: name → (status, detail, fix), in report order.
async fn doctor_json(
    dir: &Path,
    args: &[&str],
    env: &[(String, String)],
) -> (Option<i32>, Vec<Value>) {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = doctor(dir, &all, env).await;
    let report: Vec<Value> = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not a JSON report ({e}): {stdout} {stderr}"));
    (code, report)
}

fn by_name(report: &[Value]) -> BTreeMap<String, Value> {
    report
        .iter()
        .map(|c| (c["name"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

fn set(env: &mut Vec<(String, String)>, k: &str, v: &str) {
    env.retain(|(key, _)| key != k);
    env.push((k.to_owned(), v.to_owned()));
}

const ORDER: [&str; 15] = [
    "token",
    "llm",
    "llm-fallback",
    "proxy-webex",
    "proxy-llm",
    "webhook",
    "webhook-secret",
    "external",
    "tls",
    "env-file",
    "database",
    "personalities",
    "admins",
    "log-folder",
    "metrics",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_on_a_healthy_deployment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = MockServer::start().await;
    mount_ollama(&llm, echo_answerer()).await;
    // The bot as the internet sees it (BOT_PUBLIC_URL): /health answers 200.
    let public = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "ok"})))
        .expect(1)
        .mount(&public)
        .await;
    let target = format!("{}/webhook", public.uri());
    let mut hooks = bot_hooks("WH", &target, "active");
    hooks.push(hook(
        "WH-CRM",
        "crm-sync",
        "https://crm.example.com/hook",
        "active",
    ));
    FakeWebhooks::with(hooks).mount(&webex).await;
    let (cert, key) = certificate(90);
    let mut env = process_env(d, &webex, &llm);
    set(&mut env, "BOT_PUBLIC_URL", &public.uri());
    set(
        &mut env,
        "TLS_CERT_PATH",
        &write(d, "tls/cert.pem", &cert, 0o644),
    );
    set(
        &mut env,
        "TLS_KEY_PATH",
        &write(d, "tls/key.pem", &key, 0o600),
    );
    set(&mut env, "LOG_FILE", "logs/bot_server.log");
    set(&mut env, "METRICS_TOKEN", "metrics-token-SECRET-3d9");
    write(d, ".env", "# settings\nLOG_FORMAT=text\n", 0o600);

    let (code, report) = doctor_json(d, &["--external"], &env).await;
    let names: Vec<&str> = report.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ORDER);
    for check in &report {
        let expected = if check["name"] == "llm-fallback" {
            "SKIP"
        } else {
            "PASS"
        };
        assert_eq!(check["status"], expected, "{check}");
        assert!(check["fix"].is_null(), "{check}");
    }
    assert_eq!(code, Some(0), "{report:?}");
    let checks = by_name(&report);
    assert!(
        checks["token"]["detail"]
            .as_str()
            .unwrap()
            .contains("HelpBot")
    );
    assert!(
        checks["llm"]["detail"]
            .as_str()
            .unwrap()
            .contains("llama3.1:8b")
    );
    assert!(
        checks["webhook"]["detail"]
            .as_str()
            .unwrap()
            .contains("WH-1")
    );
    assert!(
        checks["tls"]["detail"]
            .as_str()
            .unwrap()
            .contains("key matches")
    );
    public.verify().await;

    // The same in text: one line per check, and the summary.
    let (code, stdout, _) = doctor(d, &[], &env).await;
    assert_eq!(code, Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    for (line, name) in lines.iter().zip(ORDER) {
        assert!(
            line.starts_with("PASS  ") || line.starts_with("SKIP  "),
            "{line}"
        );
        assert!(line[6..].starts_with(&format!("{name}: ")), "{line}");
    }
    assert!(
        stdout.contains("SKIP  external: pass --external"),
        "{stdout}"
    );
    assert!(
        stdout.ends_with("\n13 passed, 0 failed, 2 skipped\n"),
        "{stdout}"
    );
    assert!(!stdout.contains(TOKEN) && !stdout.contains(WEBHOOK_SECRET));
    assert!(!stdout.contains("metrics-token-SECRET"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_every_problem_with_its_fix_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let webex = MockServer::start().await;
    let nothing_listens = format!("http://127.0.0.1:{}", free_port());
    let (cert, key) = certificate(5);
    // A personalities folder with the default and one broken file.
    let personalities = d.join("personalities");
    std::fs::create_dir_all(&personalities).unwrap();
    std::fs::copy(
        Path::new(&personalities_dir()).join("default.toml"),
        personalities.join("default.toml"),
    )
    .unwrap();
    write(
        d,
        "personalities/pirate.toml",
        "description = \"Arr\"\n",
        0o644,
    );
    // A regular file where folders are expected: not writable, whoever runs the test.
    write(d, "blocker", "", 0o644);
    write(d, ".env", "LOG_FORMAT=text\n", 0o644);

    let env: Vec<(String, String)> = [
        ("WEBEX_API_URL", webex.uri()),
        ("OLLAMA_URL", nothing_listens),
        ("BOT_PUBLIC_URL", "https://bot.example.com".to_owned()),
        ("TLS_CERT_PATH", write(d, "cert.pem", &cert, 0o644)),
        ("TLS_KEY_PATH", write(d, "key.pem", &key, 0o600)),
        ("DATABASE_URL", "sqlite://blocker/bot.db".to_owned()),
        ("PERSONALITIES_DIR", personalities.display().to_string()),
        ("LOG_FILE", "blocker/bot_server.log".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    // A missing token is a failed check, not a configuration error (exit 2).
    let (code, stdout, stderr) = doctor(d, &[], &env).await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    for (line, fix) in [
        (
            "FAIL  token: WEBEX_BOT_TOKEN is not set",
            "set WEBEX_BOT_TOKEN",
        ),
        ("FAIL  llm: ollama at http://127.0.0.1:", "start Ollama"),
        ("SKIP  llm-fallback: ", ""),
        ("PASS  proxy-webex: Webex http://127.0.0.1:", ""),
        ("PASS  proxy-llm: LLM http://127.0.0.1:", ""),
        ("SKIP  webhook: needs a valid WEBEX_BOT_TOKEN", ""),
        (
            "FAIL  webhook-secret: WEBHOOK_SECRET is not set",
            "openssl rand -hex 32",
        ),
        ("SKIP  external: pass --external", ""),
        ("FAIL  tls: ", "certbot renew"),
        ("FAIL  env-file: ", "chmod 600"),
        ("FAIL  database: sqlite blocker/bot.db", "service user"),
        ("FAIL  personalities: 1 bad file(s): ", "fix or remove"),
        ("FAIL  admins: ADMIN_EMAILS is empty", "set ADMIN_EMAILS="),
        ("FAIL  log-folder: blocker", "LOG_FILE="),
        ("SKIP  metrics: METRICS_TOKEN is not set", ""),
    ] {
        let at = stdout
            .find(line)
            .unwrap_or_else(|| panic!("no line {line:?} in:\n{stdout}"));
        let rest = &stdout[at..];
        let mut lines = rest.lines();
        lines.next();
        if fix.is_empty() {
            assert!(
                !lines.next().unwrap_or("").starts_with("      fix:"),
                "{rest}"
            );
        } else {
            let fix_line = lines.next().unwrap_or("");
            assert!(
                fix_line.starts_with("      fix: ") && fix_line.contains(fix),
                "after {line:?} expected a fix with {fix:?}, got {fix_line:?}"
            );
        }
    }
    assert!(stdout.contains("expires on"), "{stdout}");
    assert!(stdout.contains("has mode 644"), "{stdout}");
    assert!(stdout.contains("pirate.toml"), "{stdout}");
    assert!(
        stdout.ends_with("\n2 passed, 9 failed, 4 skipped\n"),
        "{stdout}"
    );
    assert!(stderr.contains("9 check(s) failed"), "{stderr}");
    assert!(webex.received_requests().await.unwrap().is_empty());

    // --json carries the same, with null fixes where nothing failed.
    let (code, report) = doctor_json(d, &[], &env).await;
    assert_eq!(code, Some(1));
    let checks = by_name(&report);
    assert_eq!(checks["token"]["status"], "FAIL");
    assert_eq!(checks["personalities"]["status"], "FAIL");
    assert_eq!(checks["webhook"]["status"], "SKIP");
    assert!(checks["webhook"]["fix"].is_null());
    assert!(
        checks["env-file"]["fix"]
            .as_str()
            .unwrap()
            .contains("chmod 600")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_spots_a_person_token_a_missing_model_and_a_foreign_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let webex = MockServer::start().await;
    let mut me = fixture("people-me.json");
    me["type"] = json!("person");
    me["displayName"] = json!("Alice Example");
    me["emails"] = json!([ALICE]);
    Mock::given(method("GET"))
        .and(path("/people/me"))
        .respond_with(ResponseTemplate::new(200).set_body_json(me))
        .mount(&webex)
        .await;
    let llm = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/tags"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"models": [{"name": "qwen2.5:7b", "model": "qwen2.5:7b"}]})),
        )
        .mount(&llm)
        .await;
    let (cert, _) = certificate(60);
    let (_, other_key) = certificate(60);
    let mut env = process_env(d, &webex, &llm);
    set(
        &mut env,
        "TLS_CERT_PATH",
        &write(d, "cert.pem", &cert, 0o644),
    );
    set(
        &mut env,
        "TLS_KEY_PATH",
        &write(d, "key.pem", &other_key, 0o600),
    );

    let (code, report) = doctor_json(d, &[], &env).await;
    assert_eq!(code, Some(1));
    let checks = by_name(&report);
    let detail = |n: &str| checks[n]["detail"].as_str().unwrap().to_owned();
    let fix = |n: &str| checks[n]["fix"].as_str().unwrap_or_default().to_owned();
    assert_eq!(checks["token"]["status"], "FAIL");
    assert!(
        detail("token").contains("a person, not a bot"),
        "{}",
        detail("token")
    );
    assert!(fix("token").contains("developer.webex.com"));
    assert_eq!(checks["llm"]["status"], "FAIL");
    assert!(
        detail("llm").contains("llama3.1:8b is not available"),
        "{}",
        detail("llm")
    );
    assert!(
        fix("llm").contains("ollama pull llama3.1:8b"),
        "{}",
        fix("llm")
    );
    assert_eq!(checks["tls"]["status"], "FAIL");
    assert!(fix("tls").contains("TLS_KEY_PATH"), "{}", fix("tls"));
    assert_eq!(checks["database"]["status"], "PASS");
    assert_eq!(checks["webhook"]["status"], "SKIP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_webhook_webex_will_use() {
    let target = "https://bot.example.com/webhook";
    let with_secret = |mut h: Value, secret: &str| {
        h["secret"] = json!(secret);
        h
    };
    // The bot's three webhooks, the messages one (WH-1) changed by `f`.
    let three = |f: &dyn Fn(&mut Value)| {
        let mut hooks = bot_hooks("WH", target, "active");
        f(&mut hooks[0]);
        hooks
    };
    let cases: Vec<(&str, Vec<Value>, &str, &str)> = vec![
        (
            "none",
            vec![hook(
                "WH-CRM",
                "crm-sync",
                "https://crm.example.com/hook",
                "active",
            )],
            "no active webhook points at https://bot.example.com/webhook",
            "webhooks register",
        ),
        (
            "disabled by Webex",
            three(&|h| h["status"] = json!("inactive")),
            "WH-1 at https://bot.example.com/webhook is inactive",
            "--external",
        ),
        (
            "only the messages webhook (an earlier version's registration)",
            vec![with_secret(
                hook("WH-1", "webex-chatbot", target, "active"),
                WEBHOOK_SECRET,
            )],
            "no active webhook for attachmentActions/created, memberships/created",
            "webhooks register",
        ),
        (
            "a second one elsewhere",
            {
                let mut hooks = three(&|_| {});
                hooks.push(hook(
                    "WH-OLD",
                    "webex-chatbot",
                    "https://old.example.com/webhook",
                    "active",
                ));
                hooks
            },
            "WH-OLD (messages/created) -> https://old.example.com/webhook",
            "deletes the others",
        ),
        (
            "another secret",
            three(&|h| h["secret"] = json!("old-secret")),
            "another secret than WEBHOOK_SECRET",
            "updates the secret",
        ),
    ];
    for (case, hooks, detail, fix) in cases {
        let dir = tempfile::tempdir().unwrap();
        let webex = MockServer::start().await;
        mount_webex_basics(&webex).await;
        FakeWebhooks::with(hooks).mount(&webex).await;
        let llm = MockServer::start().await;
        mount_ollama(&llm, echo_answerer()).await;
        let mut env = process_env(dir.path(), &webex, &llm);
        set(&mut env, "BOT_PUBLIC_URL", "https://bot.example.com");

        let (code, report) = doctor_json(dir.path(), &[], &env).await;
        let checks = by_name(&report);
        let webhook = &checks["webhook"];
        assert_eq!(code, Some(1), "{case}: {report:?}");
        assert_eq!(webhook["status"], "FAIL", "{case}: {webhook}");
        assert!(
            webhook["detail"].as_str().unwrap().contains(detail),
            "{case}: {webhook}"
        );
        assert!(
            webhook["fix"].as_str().unwrap().contains(fix),
            "{case}: {webhook}"
        );
        assert!(
            !webhook.to_string().contains("old-secret"),
            "{case}: a secret was printed"
        );
        // Everything else is fine: the webhook is the only failure.
        let failed: Vec<&String> = checks
            .iter()
            .filter(|(_, c)| c["status"] == "FAIL")
            .map(|(n, _)| n)
            .collect();
        assert_eq!(failed, ["webhook"], "{case}: {report:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_fails_unsigned_webhooks_even_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let webex = MockServer::start().await;
    let llm = MockServer::start().await;
    let mut env = process_env(d, &webex, &llm);
    env.retain(|(k, _)| k != "WEBHOOK_SECRET");
    set(&mut env, "ALLOW_UNSIGNED_WEBHOOKS", "true");
    let (code, report) = doctor_json(d, &[], &env).await;
    assert_eq!(code, Some(1));
    let checks = by_name(&report);
    let check = &checks["webhook-secret"];
    assert_eq!(check["status"], "FAIL", "{check}");
    assert!(
        check["detail"]
            .as_str()
            .unwrap()
            .contains("ALLOW_UNSIGNED_WEBHOOKS=true"),
        "{check}"
    );
    assert!(
        check["fix"].as_str().unwrap().contains("WEBHOOK_SECRET"),
        "{check}"
    );

    // Websocket mode receives no webhooks: nothing to check.
    set(&mut env, "MODE", "websocket");
    let (_, report) = doctor_json(d, &[], &env).await;
    assert_eq!(by_name(&report)["webhook-secret"]["status"], "SKIP");
}

/// `--external` reads the JSON `status` of `BOT_PUBLIC_URL/health`, not only the HTTP code:
/// the relay answers 200 "degraded" when it cannot reach the bot, and that must fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_external_fails_on_a_degraded_relay_or_a_foreign_200() {
    tls::install_crypto_provider();
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = MockServer::start().await;
    mount_ollama(&llm, echo_answerer()).await;

    // The real webex-relay, in front of a bot address where nothing listens.
    let relay_env: BTreeMap<&str, String> = [
        (
            "INTERNAL_BOT_URL",
            format!("http://127.0.0.1:{}", free_port()),
        ),
        (
            "RELAY_API_KEY",
            "relay-key-0123456789abcdef0123456789ab".to_owned(),
        ),
        ("WEBEX_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("BIND_ADDR", "127.0.0.1:0".to_owned()),
    ]
    .into_iter()
    .collect();
    let relay_config = relay::Config::from_lookup(|k| relay_env.get(k).cloned()).unwrap();
    let relay_app = relay::App::build(relay_config).await.unwrap();
    let relay_url = format!("http://127.0.0.1:{}", relay_app.port());
    let (stop_relay, relay_stopped) = tokio::sync::oneshot::channel::<()>();
    let relay_task = tokio::spawn(relay_app.run_until(async move {
        let _ = relay_stopped.await;
    }));

    let dir = tempfile::tempdir().unwrap();
    let mut env = process_env(dir.path(), &webex, &llm);
    set(&mut env, "BOT_PUBLIC_URL", &relay_url);
    let (code, report) = doctor_json(dir.path(), &["--external"], &env).await;
    let external = by_name(&report)["external"].clone();
    assert_eq!(external["status"], "FAIL", "{external}");
    assert_eq!(code, Some(1), "{report:?}");
    let detail = external["detail"].as_str().unwrap();
    assert!(detail.contains("status degraded"), "{external}");
    assert!(detail.contains("cannot reach the bot"), "{external}");
    assert!(
        external["fix"]
            .as_str()
            .unwrap()
            .contains("INTERNAL_BOT_URL"),
        "{external}"
    );
    let _ = stop_relay.send(());
    relay_task.await.unwrap().unwrap();

    // Other 200 answers, each under a base path of one fake public server.
    let public = MockServer::start().await;
    let cases: [(&str, ResponseTemplate, &str, &str); 4] = [
        (
            "relay-ok",
            ResponseTemplate::new(200).set_body_json(json!({
                "status": "ok", "version": "0.1.0", "uptime_seconds": 5,
                "bot": {"reachable": true, "status": 200, "latency_ms": 3}
            })),
            "PASS",
            "status ok",
        ),
        (
            "bot-degraded",
            ResponseTemplate::new(200).set_body_json(json!({
                "status": "degraded", "llm": {"reachable": false}, "database": {"ok": true}
            })),
            "FAIL",
            "status degraded",
        ),
        (
            "welcome-page",
            ResponseTemplate::new(200)
                .set_body_string("<html><body>It works!</body></html>")
                .insert_header("content-type", "text/html"),
            "FAIL",
            "no JSON status",
        ),
        (
            "starting",
            ResponseTemplate::new(200).set_body_json(json!({"status": "starting"})),
            "FAIL",
            "neither ok nor degraded",
        ),
    ];
    for (case, answer, status, fragment) in cases {
        Mock::given(method("GET"))
            .and(path(format!("/{case}/health")))
            .respond_with(answer)
            .expect(1)
            .mount(&public)
            .await;
        set(
            &mut env,
            "BOT_PUBLIC_URL",
            &format!("{}/{case}", public.uri()),
        );
        let (_, report) = doctor_json(dir.path(), &["--external"], &env).await;
        let external = &by_name(&report)["external"];
        assert_eq!(external["status"], status, "{case}: {external}");
        assert!(
            external["detail"].as_str().unwrap().contains(fragment),
            "{case}: {external}"
        );
    }
    public.verify().await;
}
