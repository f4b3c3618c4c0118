//! Replicas: more instances of the app sharing a test's fakes and database.

use super::*;

/// What one more replica needs: the environment (fakes, database) and the knobs (schema,
/// lease length) it shares with the others.
#[derive(Clone, Debug)]
pub struct ReplicaSpec {
    pub env: HashMap<String, String>,
    pub knobs: Knobs,
}

impl ReplicaSpec {
    /// Replicas against these fakes on PostgreSQL at `url`, in `schema`.
    pub fn postgres(webex: &MockServer, llm: &MockServer, url: &str, schema: &str) -> Self {
        let mut env = base_env(webex, llm, std::path::Path::new("/nonexistent"));
        env.insert("DATABASE_URL".to_owned(), url.to_owned());
        Self {
            env,
            knobs: Knobs {
                pg_schema: Some(schema.to_owned()),
                ..Knobs::default()
            },
        }
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.insert(k.to_owned(), v.to_owned());
        self
    }
}

impl TestApp {
    /// How to start another replica of this app: same fakes, database, schema and settings.
    pub fn replica_spec(&self) -> ReplicaSpec {
        ReplicaSpec {
            env: self.env.clone(),
            knobs: self.knobs.clone(),
        }
    }

    /// Another replica of this app (see [`Replica`]).
    pub async fn spawn_replica(&self) -> Replica {
        Replica::spawn(&self.replica_spec()).await
    }
}

/// An app on a runtime (and thread) of its own, so a test can end it the way a process
/// dies: [`Replica::kill`] drops every task at once, nothing is shut down gracefully, its
/// room leases stay in the store until they expire and its database sessions just close.
/// It keeps no handle on the app's state, so nothing of it outlives the kill.
pub struct Replica {
    pub address: String,
    pub port: u16,
    /// Its name in room leases.
    pub instance_id: String,
    pub http: reqwest::Client,
    pub(super) stop: CancellationToken,
    pub(super) server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub(super) runtime: Option<tokio::runtime::Runtime>,
}

impl Replica {
    pub async fn spawn(spec: &ReplicaSpec) -> Replica {
        init_logs();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("replica")
            .enable_all()
            .build()
            .unwrap();
        let config = Config::from_source(&spec.env).expect("test configuration is valid");
        let stop = CancellationToken::new();
        let options = spec.knobs.options(&stop);
        let (started, ready) = tokio::sync::oneshot::channel();
        let server = runtime.spawn(async move {
            let app = App::build_with(config, options).await?;
            let _ = started.send((app.port(), app.state().instance_id.clone()));
            app.run_until_stopped().await
        });
        let (port, instance_id) = match ready.await {
            Ok(started) => started,
            Err(_) => panic!("replica did not start: {:?}", server.await),
        };
        let address = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        eventually(Duration::from_secs(5), || async {
            http.get(format!("{address}/health")).send().await.is_ok()
        })
        .await;
        Replica {
            address,
            port,
            instance_id,
            http,
            stop,
            server: Some(server),
            runtime: Some(runtime),
        }
    }

    /// Ends it like `kill -9`: every task dropped where it stands.
    pub fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Stops it gracefully (SIGTERM): work in hand finishes, leases are released.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }

    /// Posts a correctly signed webhook.
    pub async fn post_event(&self, event: &Value) -> reqwest::Response {
        post_signed_event(&self.http, &self.address, event).await
    }

    pub async fn health(&self) -> Value {
        self.http
            .get(format!("{}/health", self.address))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        // A runtime cannot be dropped inside another one; this is allowed anywhere.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
