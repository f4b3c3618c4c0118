//! Operations: the `webhooks` subcommands against a fake Webex, `/metrics` after real
//! traffic, and graceful shutdown of the real binary (SIGTERM with work in flight).
//! Also the process environment and the stateful fake webhook API `dev.rs` and `doctor.rs` use.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::matchers::path_regex;
use wiremock::{Mock, MockServer};

use crate::helpers::*;

// ---- helpers shared with dev.rs and doctor.rs ---------------------------------------

/// The stateful fake webhook API lives with the rest of the fake Webex (helpers/webhooks.rs).
pub use crate::helpers::{FakeWebhooks, hook};

/// What every bot process in these tests gets: a store in `dir`, the shipped
/// personalities, no log file, the fakes.
pub fn process_env(dir: &Path, webex: &MockServer, llm: &MockServer) -> Vec<(String, String)> {
    [
        ("WEBEX_BOT_TOKEN", TOKEN.to_owned()),
        ("WEBEX_API_URL", webex.uri()),
        ("OLLAMA_URL", llm.uri()),
        ("WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("ADMIN_EMAILS", ALICE.to_owned()),
        (
            "DATABASE_URL",
            format!("sqlite://{}/data/bot.db", dir.display()),
        ),
        ("PERSONALITIES_DIR", personalities_dir()),
        ("LOG_FILE", String::new()),
        ("LOG_LEVEL", "debug".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

// ---- webex-chatbot webhooks list|register|delete-all ------------------------------------

const PUBLIC: &str = "https://bot.example.com";
const TARGET: &str = "https://bot.example.com/webhook";

async fn webhooks_cmd(
    dir: &Path,
    webex: &MockServer,
    args: &[&str],
    extra: &[(&str, &str)],
) -> std::process::Output {
    Bot::new(["webhooks"])
        .args(args)
        .dir(dir)
        .env("WEBEX_BOT_TOKEN", TOKEN)
        .env("WEBEX_API_URL", webex.uri())
        .env("WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env("PERSONALITIES_DIR", personalities_dir())
        .env("LOG_FILE", "")
        .envs(extra.iter().copied())
        .output()
        .await
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn webhooks_list_shows_every_webhook_and_marks_this_bots() {
    let dir = tempfile::tempdir().unwrap();
    let webex = MockServer::start().await;
    let fake = FakeWebhooks::with(vec![
        hook("WH-OURS", "webex-chatbot", TARGET, "active"),
        hook("WH-SAME-URL", "renamed", TARGET, "inactive"),
        hook(
            "WH-CRM",
            "crm-sync",
            "https://crm.example.com/hook",
            "active",
        ),
    ]);
    fake.mount(&webex).await;

    let out = webhooks_cmd(dir.path(), &webex, &["list"], &[("BOT_PUBLIC_URL", PUBLIC)]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "WH-OURS\tactive\tmessages/created\twebex-chatbot\thttps://bot.example.com/webhook\t(this bot)",
            "WH-SAME-URL\tinactive\tmessages/created\trenamed\thttps://bot.example.com/webhook\t(this bot)",
            "WH-CRM\tactive\tmessages/created\tcrm-sync\thttps://crm.example.com/hook",
        ]
    );

    // The list is read-only.
    assert_eq!(fake.list().len(), 3);
    let empty = MockServer::start().await;
    FakeWebhooks::default().mount(&empty).await;
    let out = webhooks_cmd(dir.path(), &empty, &["list"], &[]).await;
    assert!(out.status.success());
    assert_eq!(text(&out.stdout), "no webhooks\n");
}

#[tokio::test]
async fn webhooks_register_creates_one_webhook_per_event_and_removes_stale_ones() {
    let dir = tempfile::tempdir().unwrap();
    let webex = MockServer::start().await;
    let fake = FakeWebhooks::with(vec![
        hook(
            "WH-OLD",
            "webex-chatbot",
            "https://old.example.com/webhook",
            "active",
        ),
        hook(
            "WH-CRM",
            "crm-sync",
            "https://crm.example.com/hook",
            "active",
        ),
    ]);
    fake.mount(&webex).await;

    let out = webhooks_cmd(
        dir.path(),
        &webex,
        &["register"],
        &[("BOT_PUBLIC_URL", "https://bot.example.com/")],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let registered = "registered WH-1 -> https://bot.example.com/webhook (messages/created)\n\
         registered WH-2 -> https://bot.example.com/webhook (attachmentActions/created)\n\
         registered WH-3 -> https://bot.example.com/webhook (memberships/created)\n";
    assert_eq!(text(&out.stdout), registered);
    let hooks = fake.list();
    let ids: Vec<&str> = hooks.iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        ["WH-CRM", "WH-1", "WH-2", "WH-3"],
        "the stale one is gone, the foreign one kept"
    );
    for (created, (resource, event)) in hooks[1..].iter().zip(BOT_SUBSCRIPTIONS) {
        assert_eq!(created["name"], "webex-chatbot");
        assert_eq!(created["targetUrl"], TARGET);
        assert_eq!(created["resource"], resource);
        assert_eq!(created["event"], event);
        assert_eq!(created["secret"], WEBHOOK_SECRET);
        assert!(created.get("filter").is_none());
    }

    // Again: the active webhooks are kept and updated, not duplicated.
    let out = webhooks_cmd(
        dir.path(),
        &webex,
        &["register"],
        &[("BOT_PUBLIC_URL", PUBLIC)],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), registered);
    assert_eq!(fake.list().len(), 4);
    let puts = webex
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "PUT")
        .count();
    assert_eq!(puts, 3);
}

/// `delete-all` deletes every webhook the token owns, whatever its name or URL, across
/// pages, without a prompt or `BOT_PUBLIC_URL`, and prints each one it deleted.
#[tokio::test]
async fn webhooks_delete_all_deletes_every_webhook_of_the_token_across_pages() {
    let dir = tempfile::tempdir().unwrap();
    let webex = MockServer::start().await;
    let fake = FakeWebhooks::with(vec![
        hook(
            "WH-OLD",
            "webex-chatbot",
            "https://old.example.com/webhook",
            "active",
        ),
        hook("WH-SAME-URL", "renamed", TARGET, "inactive"),
        hook(
            "WH-CRM",
            "crm-sync",
            "https://crm.example.com/hook",
            "active",
        ),
    ])
    .paged(2);
    fake.mount(&webex).await;

    let out = webhooks_cmd(dir.path(), &webex, &["delete-all"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "WH-OLD\twebex-chatbot\thttps://old.example.com/webhook\n\
         WH-SAME-URL\trenamed\thttps://bot.example.com/webhook\n\
         WH-CRM\tcrm-sync\thttps://crm.example.com/hook\n"
    );
    assert!(fake.list().is_empty(), "{:?}", fake.list());
    let lists = webex
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "GET")
        .count();
    assert_eq!(lists, 2, "both pages were read");

    // Nothing left: still exit 0, nothing printed.
    let out = webhooks_cmd(dir.path(), &webex, &["delete-all"], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
}

#[tokio::test]
async fn webhooks_errors_have_the_documented_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let webex = MockServer::start().await;
    FakeWebhooks::default().mount(&webex).await;

    // register without BOT_PUBLIC_URL: configuration, exit 2, naming the variable.
    let out = webhooks_cmd(dir.path(), &webex, &["register"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("BOT_PUBLIC_URL"),
        "{}",
        text(&out.stderr)
    );

    // No token: exit 2 naming WEBEX_BOT_TOKEN, and Webex is never called.
    let out = webhooks_cmd(dir.path(), &webex, &["list"], &[("WEBEX_BOT_TOKEN", "")]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("WEBEX_BOT_TOKEN"),
        "{}",
        text(&out.stderr)
    );
    assert!(webex.received_requests().await.unwrap().is_empty());

    // A token Webex refuses: runtime failure, exit 1, with Webex's answer and no token.
    let refusing = MockServer::start().await;
    Mock::given(path_regex("^/webhooks"))
        .respond_with(webex_error_body(
            401,
            "The request requires a valid access token set in the Authorization request header.",
        ))
        .mount(&refusing)
        .await;
    for action in ["list", "register", "delete-all"] {
        let out = webhooks_cmd(
            dir.path(),
            &refusing,
            &[action],
            &[("BOT_PUBLIC_URL", PUBLIC)],
        )
        .await;
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{action}: {stderr}");
        assert!(stderr.contains("401"), "{action}: {stderr}");
        assert!(!stderr.contains(TOKEN), "{action}: the token leaked");
    }
}

// ---- /metrics ----------------------------------------------------------------------

/// `name{labels}` → value, from the Prometheus text exposition.
fn samples(text: &str) -> std::collections::HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let (key, value) = l.rsplit_once(' ')?;
            Some((key.to_owned(), value.parse().ok()?))
        })
        .collect()
}

async fn scrape(app: &TestApp) -> (String, String) {
    let res = app
        .http
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    (content_type, res.text().await.unwrap())
}

#[tokio::test]
async fn metrics_count_answered_unapproved_and_duplicate_events() {
    let app = TestApp::spawn(Spawn::default()).await;
    app.approve(ALICE).await;
    let answered = direct_message("M-metrics-1", "ROOM-metrics-1", ALICE, "hello metrics");
    app.deliver(&answered).await;
    assert_eq!(app.wait_handled("M-metrics-1").await, "answered");
    let stranger = direct_message("M-metrics-2", "ROOM-metrics-2", "mallory@example.com", "hi");
    app.deliver(&stranger).await;
    assert_eq!(app.wait_handled("M-metrics-2").await, "ignored");
    // Webex redelivers the first one.
    assert_eq!(app.post_event(&event_for(&answered)).await.status(), 200);

    let (content_type, text) = scrape(&app).await;
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    for declaration in [
        "# TYPE webex_chatbot_events_received counter",
        "# TYPE webex_chatbot_events_ignored counter",
        "# TYPE webex_chatbot_events_processed counter",
        "# TYPE webex_chatbot_replies_sent counter",
        "# TYPE webex_chatbot_llm_latency_seconds histogram",
        "# TYPE webex_chatbot_queue_depth gauge",
        "# TYPE webex_chatbot_llm_calls_in_flight gauge",
    ] {
        assert!(
            text.contains(declaration),
            "{declaration} missing in:\n{text}"
        );
    }
    let s = samples(&text);
    let expect = [
        ("webex_chatbot_events_received_total", 3.0),
        (
            r#"webex_chatbot_events_ignored_total{reason="duplicate"}"#,
            1.0,
        ),
        (
            r#"webex_chatbot_events_ignored_total{reason="unapproved"}"#,
            1.0,
        ),
        (
            r#"webex_chatbot_events_processed_total{outcome="answered"}"#,
            1.0,
        ),
        (
            r#"webex_chatbot_events_processed_total{outcome="ignored"}"#,
            1.0,
        ),
        ("webex_chatbot_replies_sent_total", 1.0),
        ("webex_chatbot_llm_latency_seconds_count", 1.0),
        (
            r#"webex_chatbot_llm_latency_seconds_bucket{le="+Inf"}"#,
            1.0,
        ),
        ("webex_chatbot_queue_depth", 0.0),
        ("webex_chatbot_llm_calls_in_flight", 0.0),
    ];
    for (key, value) in expect {
        assert_eq!(s.get(key), Some(&value), "{key} in:\n{text}");
    }
    // The histogram's buckets are cumulative and end at +Inf.
    let buckets: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with("webex_chatbot_llm_latency_seconds_bucket{"))
        .map(|l| l.rsplit_once(' ').unwrap().1.parse().unwrap())
        .collect();
    assert!(buckets.len() >= 10, "{text}");
    assert!(buckets.windows(2).all(|w| w[0] <= w[1]), "{buckets:?}");
    assert!(s["webex_chatbot_llm_latency_seconds_sum"] > 0.0);
    // Nothing that was ignored reached the LLM or Webex.
    assert_eq!(app.llm_requests().await.len(), 1);
    assert_eq!(app.replies().await.len(), 1);
}

#[tokio::test]
async fn metrics_show_work_in_flight_while_the_llm_thinks() {
    let slow: Answerer =
        Arc::new(|_: &Value| ollama_answer("done").set_delay(Duration::from_millis(1500)));
    let app = TestApp::spawn(Spawn::default().answer(slow)).await;
    app.approve(ALICE).await;
    app.deliver(&direct_message("M-slow", "ROOM-slow", ALICE, "think hard"))
        .await;
    assert!(
        eventually(Duration::from_secs(5), || async {
            !app.llm_requests().await.is_empty()
        })
        .await
    );
    let s = samples(&scrape(&app).await.1);
    assert_eq!(s.get("webex_chatbot_queue_depth"), Some(&1.0));
    assert_eq!(s.get("webex_chatbot_llm_calls_in_flight"), Some(&1.0));

    app.wait_handled("M-slow").await;
    let s = samples(&scrape(&app).await.1);
    assert_eq!(s.get("webex_chatbot_queue_depth"), Some(&0.0));
    assert_eq!(s.get("webex_chatbot_llm_calls_in_flight"), Some(&0.0));
    assert_eq!(s.get("webex_chatbot_replies_sent_total"), Some(&1.0));
}

// ---- graceful shutdown of the real binary ------------------------------------------------

async fn slow_llm(delay: Duration) -> MockServer {
    let llm = MockServer::start().await;
    mount_ollama(
        &llm,
        Arc::new(move |body: &Value| {
            let last = last_message(body);
            ollama_answer(&format!("Echo: {last}")).set_delay(delay)
        }),
    )
    .await;
    llm
}

async fn wait_for_llm_call(llm: &MockServer) {
    assert!(
        eventually(Duration::from_secs(10), || async {
            !requests_to(llm, "POST", "/api/chat").await.is_empty()
        })
        .await,
        "the LLM was never asked"
    );
}

/// A `serve` process with one question of ALICE's acknowledged and its LLM call in
/// flight (the LLM answers after `llm_delay`).
pub struct InFlight {
    pub dir: tempfile::TempDir,
    pub webex: MockServer,
    pub llm: MockServer,
    pub env: Vec<(String, String)>,
    pub port: u16,
    pub bot: BotProcess,
}

pub async fn answer_in_flight(
    name: &str,
    llm_delay: Duration,
    (message_id, room_id, text): (&str, &str, &str),
    extra_env: &[(&str, &str)],
) -> InFlight {
    let dir = tempfile::tempdir().unwrap();
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = slow_llm(llm_delay).await;
    let message = direct_message(message_id, room_id, ALICE, text);
    mount_message(&webex, &message).await;

    let port = free_port();
    let mut env = process_env(dir.path(), &webex, &llm);
    env.push(("BIND_ADDR".into(), format!("127.0.0.1:{port}")));
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let mut bot = Bot::new(["serve"])
        .dir(dir.path())
        .name(name)
        .envs(env.clone())
        .spawn();
    bot.wait_ready(port).await;
    assert_eq!(post_signed(port, &event_for(&message)).await, 200);
    wait_for_llm_call(&llm).await;
    InFlight {
        dir,
        webex,
        llm,
        env,
        port,
        bot,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_answer_in_flight_reach_webex_before_exiting() {
    // `_dir` and `_llm` stay bound: the process uses them until it exits.
    let InFlight {
        dir: _dir,
        webex,
        llm: _llm,
        env: _,
        port,
        mut bot,
    } = answer_in_flight(
        "drain",
        Duration::from_secs(2),
        ("M-drain", "ROOM-drain", "answer me before you go"),
        // A whole answer, one post (streamed answers have their own kill test).
        &[
            ("SHUTDOWN_TIMEOUT_SECS", "15"),
            ("REPLY_STREAMING", "false"),
        ],
    )
    .await;

    let stopping = Instant::now();
    bot.sigterm();
    let status = bot.wait_exit(Duration::from_secs(20)).await;
    let took = stopping.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        bot.output()
    );

    let replies = requests_to(&webex, "POST", "/messages").await;
    assert_eq!(replies.len(), 1, "{}", bot.output());
    assert_eq!(replies[0]["markdown"], "Echo: answer me before you go");
    assert!(
        took >= Duration::from_millis(500),
        "it waited for the LLM: {took:?}"
    );
    // New connections are refused once the process is gone.
    assert!(
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/health"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_leaves_the_event_pending_for_the_next_start() {
    let InFlight {
        dir,
        webex,
        llm,
        env,
        port,
        bot: mut first,
    } = answer_in_flight(
        "first",
        Duration::from_secs(10),
        ("M-later", "ROOM-later", "take your time"),
        &[
            ("SHUTDOWN_TIMEOUT_SECS", "1"),
            ("LLM_TIMEOUT_SECS", "60"),
            ("REPLY_STREAMING", "false"),
        ],
    )
    .await;

    let stopping = Instant::now();
    first.sigterm();
    let status = first.wait_exit(Duration::from_secs(10)).await;
    let took = stopping.elapsed();
    assert!(
        status.is_some_and(|s| s.success()),
        "{status:?}: {}",
        first.output()
    );
    assert!(
        took < Duration::from_secs(4),
        "SHUTDOWN_TIMEOUT_SECS=1 should stop within ~3 s, took {took:?}: {}",
        first.output()
    );
    assert!(requests_to(&webex, "POST", "/messages").await.is_empty());
    assert!(
        first.output().contains("stays pending"),
        "the shutdown says what happens to the work: {}",
        first.output()
    );

    // The next start answers the pending event, once, with a quick LLM.
    llm.reset().await;
    mount_ollama(&llm, echo_answerer()).await;
    let mut second = Bot::new(["serve"])
        .dir(dir.path())
        .name("second")
        .envs(env.clone())
        .spawn();
    second.wait_ready(port).await;
    assert!(
        eventually(Duration::from_secs(15), || async {
            !requests_to(&webex, "POST", "/messages").await.is_empty()
        })
        .await,
        "the pending event was not answered after the restart: {}",
        second.output()
    );
    // Deliberate: no second answer comes within 300 ms (a negative check).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let replies = requests_to(&webex, "POST", "/messages").await;
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert_eq!(replies[0]["markdown"], "Echo: take your time");
    second.sigterm();
    assert!(
        second
            .wait_exit(Duration::from_secs(10))
            .await
            .is_some_and(|s| s.success())
    );
}

// ---- systemd's notify protocol (Type=notify in deploy/systemd) ----------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_speaks_the_systemd_notify_protocol() {
    use std::os::unix::net::UnixDatagram;

    let dir = tempfile::tempdir().unwrap();
    let webex = MockServer::start().await;
    mount_webex_basics(&webex).await;
    let llm = MockServer::start().await;
    mount_ollama(&llm, echo_answerer()).await;
    // systemd's end of the socket: what the bot sends, in order.
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let received = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (received, done) = (received.clone(), done.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !done.load(Ordering::SeqCst) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let text = String::from_utf8_lossy(&buf[..n]).trim().to_owned();
                    received.lock().unwrap().push(text);
                }
            }
        })
    };
    let count = |what: &str| {
        received
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m.lines().any(|l| l == what))
            .count()
    };

    let port = free_port();
    let mut env = process_env(dir.path(), &webex, &llm);
    env.push(("BIND_ADDR".into(), format!("127.0.0.1:{port}")));
    env.push(("NOTIFY_SOCKET".into(), socket_path.display().to_string()));
    // WatchdogSec=0.4 → the bot pings every 0.2 s.
    env.push(("WATCHDOG_USEC".into(), "400000".into()));
    let mut bot = Bot::new(["serve"])
        .dir(dir.path())
        .name("notify")
        .envs(env.clone())
        .spawn();

    assert!(
        eventually(Duration::from_secs(15), || async { count("READY=1") == 1 }).await,
        "no READY=1: {}",
        bot.output()
    );
    // READY means serving: the port answers at once.
    let health = reqwest::get(format!("http://127.0.0.1:{port}/health"))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert!(
        eventually(Duration::from_secs(5), || async {
            count("WATCHDOG=1") >= 2
        })
        .await,
        "no watchdog pings: {:?}",
        received.lock().unwrap()
    );

    // systemctl reload = SIGHUP: RELOADING=1, then READY=1 again.
    bot.sighup();
    assert!(
        eventually(Duration::from_secs(5), || async {
            count("RELOADING=1") == 1 && count("READY=1") == 2
        })
        .await,
        "{:?}",
        received.lock().unwrap()
    );

    bot.sigterm();
    let status = bot.wait_exit(Duration::from_secs(15)).await;
    assert!(status.is_some_and(|s| s.success()), "{}", bot.output());
    assert!(
        eventually(Duration::from_secs(2), || async {
            count("STOPPING=1") == 1
        })
        .await,
        "{:?}",
        received.lock().unwrap()
    );
    done.store(true, Ordering::SeqCst);
    reader.join().unwrap();
}
