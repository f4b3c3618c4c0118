//! The floor: the least a bot must do to answer a message, as a yardstick for
//! webex-chatbot's CPU per answer (`--mode floor`, docs/performance.md "The floor").
//!
//! It runs as its own process (this binary, `webex-bench floor-bot`, started by the
//! benchmark like the real bot, with the same environment) and does, per message, only
//! what the contract cannot do without, with the libraries the bot uses:
//!
//! - the webhook: axum on hyper, the HMAC check, the JSON parse, one SQLite insert and
//!   its commit (WAL, `synchronous=NORMAL`, the bot's settings) before the 200;
//! - the answer: `GET /messages/{id}` from Webex, one `POST /api/chat` to Ollama, one
//!   `POST /messages` to Webex, each over a kept-alive HTTP/1.1 connection (hyper's own
//!   client connections, no pool library), then one SQLite update and its commit.
//!
//! All on one thread (a current-thread runtime): no task ever wakes another thread. It
//! has none of the bot's features: no per-room order or lease, no access rules, no
//! history, personality, usage or limits, no streaming, no retries, no logging. What it
//! costs per message is the price of the I/O itself on this machine: the loopback TCP
//! of four HTTP exchanges and two SQLite commits, and the parsing around them.
//!
//! Three knobs add one of the bot's design choices at a time, to price each against the
//! floor (`webex-bench --mode floor --floor-…`, passed on in the environment):
//! `FLOOR_WORKERS` (a multi-thread runtime with that many workers, as the bot's, instead
//! of one thread), `FLOOR_CLIENT=reqwest` (the calls through reqwest, as the bot's Webex
//! calls, instead of hyper's bare connections) and `FLOOR_COMMITS` (that many more
//! SQLite commits per answer, the bot's lease, history and usage rows).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, bail, ensure};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::routing::{get, post};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

/// The argument that makes `webex-bench` the floor bot.
pub const ARG: &str = "floor-bot";

/// Answers larger than this are an error (the fakes' are a few hundred bytes).
const MAX_BODY: usize = 1 << 20;

/// What the floor bot reads from the environment the benchmark gives the bot.
pub struct Config {
    pub bind: SocketAddr,
    pub webex_url: String,
    pub ollama_url: String,
    pub token: String,
    pub secret: String,
    pub model: String,
    pub database: std::path::PathBuf,
    /// Runtime workers; 0 is the current thread alone.
    pub workers: usize,
    /// The calls go through reqwest instead of hyper's bare connections.
    pub reqwest: bool,
    /// SQLite commits per answer beyond the done mark.
    pub extra_commits: usize,
}

impl Config {
    pub fn from_env() -> anyhow::Result<Config> {
        Config::from_vars(|name| std::env::var(name).ok())
    }

    /// The configuration from the variables `var` finds.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> anyhow::Result<Config> {
        let required = |name: &str| var(name).with_context(|| format!("{name} is not set"));
        let count = |name: &str| match var(name) {
            None => Ok(0),
            Some(v) => v
                .parse()
                .with_context(|| format!("{name}={v} is not a count")),
        };
        let url = required("DATABASE_URL")?;
        let Some(path) = url.strip_prefix("sqlite://") else {
            bail!("DATABASE_URL must be sqlite://PATH, not {url}");
        };
        Ok(Config {
            bind: required("BIND_ADDR")?.parse().context("BIND_ADDR")?,
            webex_url: required("WEBEX_API_URL")?,
            ollama_url: required("OLLAMA_URL")?,
            token: required("WEBEX_BOT_TOKEN")?,
            secret: required("WEBHOOK_SECRET")?,
            model: var("OLLAMA_MODEL").unwrap_or_else(|| "llama3.1:8b".into()),
            database: path.into(),
            workers: count("FLOOR_WORKERS")?,
            reqwest: match var("FLOOR_CLIENT").as_deref() {
                None | Some("hyper") => false,
                Some("reqwest") => true,
                Some(other) => bail!("FLOOR_CLIENT must be hyper or reqwest, not {other}"),
            },
            extra_commits: count("FLOOR_COMMITS")?,
        })
    }
}

/// Runs the floor bot on this thread (or `FLOOR_WORKERS`) until the process is killed.
pub fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    runtime(config.workers)?.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        serve(listener, config).await
    })
}

/// The current thread alone for 0 workers, else a multi-thread runtime of that many.
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    match workers {
        0 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
}

/// Serves `/webhook` and `/health` on `listener`, on the runtime it is called on.
pub async fn serve(listener: tokio::net::TcpListener, config: Config) -> anyhow::Result<()> {
    let floor = Arc::new(Floor::open(config)?);
    let app = Router::new()
        .route("/webhook", post(webhook))
        .route("/health", get(|| async { "ok\n" }))
        .with_state(floor);
    axum::serve(listener, app).await?;
    Ok(())
}

/// An HTTP origin the floor bot calls: where to connect, and the base of its paths.
struct Origin {
    addr: String,
    host: HeaderValue,
    base: String,
    /// Idle kept-alive connections.
    idle: Mutex<Vec<SendRequest<Body>>>,
    /// With `FLOOR_CLIENT=reqwest`: the client calls go through, and its origin URL.
    reqwest: Option<(reqwest::Client, String)>,
}

impl Origin {
    fn new(url: &str, reqwest: Option<&reqwest::Client>) -> anyhow::Result<Origin> {
        let uri: axum::http::Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        ensure!(
            uri.scheme_str() == Some("http"),
            "{url}: only http:// is served"
        );
        let authority = uri.authority().context("URL without a host")?;
        let port = authority.port_u16().unwrap_or(80);
        Ok(Origin {
            addr: format!("{}:{port}", authority.host()),
            host: HeaderValue::from_str(authority.as_str())?,
            base: uri.path().trim_end_matches('/').to_owned(),
            idle: Mutex::new(Vec::new()),
            reqwest: reqwest.map(|client| (client.clone(), url.trim_end_matches('/').to_owned())),
        })
    }

    /// Sends a request for `path` (relative to the origin's base) on a kept connection, or
    /// a new one; the answer's status and whole body. No retry: a failed call fails its
    /// message.
    async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(header::HeaderName, &HeaderValue)],
        body: Bytes,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        if let Some((client, url)) = &self.reqwest {
            let mut request = client.request(method, format!("{url}{path}"));
            for (name, value) in headers {
                request = request.header(name, *value);
            }
            let response = request.body(body).send().await?;
            return Ok((response.status(), response.bytes().await?));
        }
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header(header::HOST, &self.host)
            .body(Body::from(body))?;
        for (name, value) in headers {
            request.headers_mut().insert(name, (*value).clone());
        }
        let mut sender = match self.checkout() {
            Some(sender) => sender,
            None => self.connect().await?,
        };
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = axum::body::to_bytes(Body::new(response.into_body()), MAX_BODY).await?;
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sender);
        Ok((status, body))
    }

    fn checkout(&self) -> Option<SendRequest<Body>> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        while let Some(sender) = idle.pop() {
            if sender.is_ready() {
                return Some(sender);
            }
        }
        None
    }

    async fn connect(&self) -> anyhow::Result<SendRequest<Body>> {
        let stream = tokio::net::TcpStream::connect(&self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // The connection's task runs on this same thread, like everything else.
        tokio::spawn(connection);
        Ok(sender)
    }
}

struct Floor {
    webex: Origin,
    ollama: Origin,
    authorization: HeaderValue,
    json: HeaderValue,
    secret: Vec<u8>,
    model: String,
    db: Mutex<rusqlite::Connection>,
    extra_commits: usize,
}

impl Floor {
    fn open(config: Config) -> anyhow::Result<Floor> {
        if let Some(dir) = config.database.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = rusqlite::Connection::open(&config.database)?;
        db.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
             CREATE TABLE IF NOT EXISTS inbox (message_id TEXT PRIMARY KEY, room_id TEXT NOT NULL, \
             payload BLOB NOT NULL, done INTEGER NOT NULL DEFAULT 0, \
             commits INTEGER NOT NULL DEFAULT 0);",
        )?;
        let reqwest = config.reqwest.then(reqwest::Client::new);
        Ok(Floor {
            webex: Origin::new(&config.webex_url, reqwest.as_ref())?,
            ollama: Origin::new(&config.ollama_url, reqwest.as_ref())?,
            authorization: HeaderValue::from_str(&format!("Bearer {}", config.token))?,
            json: HeaderValue::from_static("application/json"),
            secret: config.secret.into_bytes(),
            model: config.model,
            db: Mutex::new(db),
            extra_commits: config.extra_commits,
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, rusqlite::Connection> {
        self.db.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records the event; whether it was new.
    fn record(&self, id: &str, room: &str, payload: &[u8]) -> rusqlite::Result<bool> {
        let db = self.db();
        let mut insert = db.prepare_cached(
            "INSERT INTO inbox (message_id, room_id, payload) VALUES (?1, ?2, ?3) \
             ON CONFLICT (message_id) DO NOTHING",
        )?;
        Ok(insert.execute(rusqlite::params![id, room, payload])? == 1)
    }

    /// Reads the message, asks the LLM, posts its answer, marks the event done.
    async fn answer(&self, id: &str) -> anyhow::Result<()> {
        let auth = [(header::AUTHORIZATION, &self.authorization)];
        let (status, body) = self
            .webex
            .call(Method::GET, &format!("/messages/{id}"), &auth, Bytes::new())
            .await?;
        ensure!(status == StatusCode::OK, "GET /messages/{id}: {status}");
        let message: Value = serde_json::from_slice(&body)?;
        let (Some(text), Some(room)) = (message["text"].as_str(), message["roomId"].as_str())
        else {
            bail!("GET /messages/{id}: no text or roomId");
        };
        let chat = json!({
            "model": self.model,
            "messages": [{"role": "user", "content": text}],
            "stream": false,
        });
        let (status, body) = self
            .ollama
            .call(
                Method::POST,
                "/api/chat",
                &[(header::CONTENT_TYPE, &self.json)],
                Bytes::from(chat.to_string()),
            )
            .await?;
        ensure!(status == StatusCode::OK, "POST /api/chat: {status}");
        let answer: Value = serde_json::from_slice(&body)?;
        let Some(content) = answer["message"]["content"].as_str() else {
            bail!("POST /api/chat: no message.content");
        };
        let reply = json!({"roomId": room, "markdown": content});
        let (status, _) = self
            .webex
            .call(
                Method::POST,
                "/messages",
                &[
                    (header::AUTHORIZATION, &self.authorization),
                    (header::CONTENT_TYPE, &self.json),
                ],
                Bytes::from(reply.to_string()),
            )
            .await?;
        ensure!(status == StatusCode::OK, "POST /messages: {status}");
        let db = self.db();
        // The extra commits first: done means all of them are.
        for _ in 0..self.extra_commits {
            db.prepare_cached("UPDATE inbox SET commits = commits + 1 WHERE message_id = ?1")?
                .execute([id])?;
        }
        db.prepare_cached("UPDATE inbox SET done = 1 WHERE message_id = ?1")?
            .execute([id])?;
        Ok(())
    }
}

/// `POST /webhook`: verify, parse, record, 200; the answer runs after, on this thread.
async fn webhook(
    State(floor): State<Arc<Floor>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let signature = headers
        .get("x-spark-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !webex::signature::verify(&floor.secret, &body, signature) {
        return (StatusCode::UNAUTHORIZED, "invalid signature\n");
    }
    let Ok(event) = webex::WebhookEvent::parse(&body) else {
        return (StatusCode::BAD_REQUEST, "not a webhook\n");
    };
    if !event.is_message_created() {
        return (StatusCode::OK, "ignored\n");
    }
    let (Some(id), Some(room)) = (event.data.id.as_deref(), event.data.room_id.as_ref()) else {
        return (StatusCode::BAD_REQUEST, "no data.id or data.roomId\n");
    };
    match floor.record(id, room.as_str(), &body) {
        Ok(true) => {}
        Ok(false) => return (StatusCode::OK, "duplicate\n"),
        Err(_) => return (StatusCode::SERVICE_UNAVAILABLE, "cannot record\n"),
    }
    let id = id.to_owned();
    tokio::spawn(async move {
        if let Err(e) = floor.answer(&id).await {
            eprintln!("{id}: {e:#}");
        }
    });
    (StatusCode::OK, "accepted\n")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::*;
    use crate::fakes;

    /// The benchmark's environment, as `run_once` gives it, with the floor's knobs.
    fn vars(knobs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let mut vars: HashMap<&str, &str> = HashMap::from([
            ("DATABASE_URL", "sqlite:///tmp/run/data/bot.db"),
            ("BIND_ADDR", "127.0.0.1:8080"),
            ("WEBEX_API_URL", "http://127.0.0.1:9000"),
            ("OLLAMA_URL", "http://127.0.0.1:9001"),
            ("WEBEX_BOT_TOKEN", "t"),
            ("WEBHOOK_SECRET", "s"),
        ]);
        vars.extend(knobs.iter().copied());
        Config::from_vars(|name| vars.get(name).map(|v| (*v).to_owned()))
    }

    #[test]
    fn the_knobs_are_read_and_checked() {
        let plain = vars(&[]).unwrap();
        assert_eq!(
            (plain.workers, plain.reqwest, plain.extra_commits),
            (0, false, 0)
        );
        assert_eq!(plain.database, std::path::Path::new("/tmp/run/data/bot.db"));
        let all = vars(&[
            ("FLOOR_WORKERS", "2"),
            ("FLOOR_CLIENT", "reqwest"),
            ("FLOOR_COMMITS", "3"),
        ])
        .unwrap();
        assert_eq!((all.workers, all.reqwest, all.extra_commits), (2, true, 3));
        assert!(vars(&[("FLOOR_CLIENT", "curl")]).is_err());
        assert!(vars(&[("FLOOR_WORKERS", "two")]).is_err());
        assert!(vars(&[("DATABASE_URL", "postgres://db")]).is_err());
    }

    #[test]
    fn workers_make_a_runtime_of_that_many_threads() {
        assert_eq!(runtime(0).unwrap().metrics().num_workers(), 1);
        assert_eq!(
            runtime(0).unwrap().handle().runtime_flavor(),
            tokio::runtime::RuntimeFlavor::CurrentThread
        );
        assert_eq!(runtime(2).unwrap().metrics().num_workers(), 2);
    }

    #[tokio::test]
    async fn a_message_is_recorded_answered_and_marked_done() {
        one_message(false, 0).await;
    }

    #[tokio::test]
    async fn through_reqwest_with_more_commits_too() {
        one_message(true, 3).await;
    }

    /// One webhook through the floor bot: acknowledged, answered at the fake Webex with the
    /// fake LLM's answer, marked done; a second delivery of it is a duplicate; a bad
    /// signature is refused.
    async fn one_message(reqwest: bool, extra_commits: usize) {
        let tracker = fakes::Tracker::new(1);
        let (webex_url, ollama_url) = fakes::start(tracker.clone(), Duration::ZERO, 10, None)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("data/floor.db");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/webhook", listener.local_addr().unwrap());
        let config = Config {
            bind: listener.local_addr().unwrap(),
            webex_url,
            ollama_url,
            token: fakes::TOKEN.into(),
            secret: "s3cret".into(),
            model: "llama3.1:8b".into(),
            database: database.clone(),
            workers: 0,
            reqwest,
            extra_commits,
        };
        tokio::spawn(serve(listener, config));

        let body = crate::load::body(0, 3);
        let http = reqwest::Client::new();
        let send = |signature: String| {
            http.post(&url)
                .header("content-type", "application/json")
                .header("x-spark-signature", signature)
                .body(body.clone())
                .send()
        };
        let bad = send("00".repeat(20)).await.unwrap();
        assert_eq!(bad.status(), 401);
        let good = webex::signature::sign(b"s3cret", &body);
        let first = send(good.clone()).await.unwrap();
        assert_eq!(first.status(), 200);
        assert_eq!(first.text().await.unwrap(), "accepted\n");

        let mut waited = 0;
        while tracker.replied() < 1 {
            assert!(waited < 500, "no reply reached the fake Webex");
            tokio::time::sleep(Duration::from_millis(20)).await;
            waited += 1;
        }
        assert_eq!(tracker.replies[0].load(Ordering::Relaxed), 1);
        assert_eq!(tracker.refused.load(Ordering::Relaxed), 0);

        let again = send(good).await.unwrap();
        assert_eq!(again.text().await.unwrap(), "duplicate\n");
        let db = rusqlite::Connection::open(&database).unwrap();
        let mut waited = 0;
        loop {
            let (done, commits): (i64, i64) = db
                .query_row("SELECT done, commits FROM inbox", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .unwrap();
            if done == 1 {
                assert_eq!(commits, i64::try_from(extra_commits).unwrap());
                break;
            }
            assert!(waited < 500, "the event was not marked done");
            std::thread::sleep(Duration::from_millis(20));
            waited += 1;
        }
    }
}
