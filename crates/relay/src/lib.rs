//! `webex-relay`: the DMZ relay. It receives Webex webhooks from the internet, verifies
//! their `X-Spark-Signature`, and forwards the exact bytes to the internal bot with an
//! API key. Nothing else: no database, no LLM, no other paths (everything else is 404).
//!
//! # Layout
//!
//! In the order a request flows through them:
//!
//! - [`cli`]: the command line (`--check-config`, `completions`, `man`)
//! - `config`: environment → [`Config`], every error naming its variable
//! - `telemetry`: [`telemetry::init`], logs to stderr at `LOG_LEVEL`
//! - `startup`: [`App::build`] (TLS files, bot client, listener) and
//!   [`App::run_until_stopped`] (signals: SIGHUP reloads TLS, SIGTERM/SIGINT drain and stop)
//! - `rate_limit`: per-source-address limit, before any body is read → 429
//! - `routes::webhook`: body limit → 413, signature → 401, forward → the bot's status,
//!   502 when the bot is unreachable, 504 on timeout; its WARN/ERROR lines go through
//!   `log_throttle` (one per reason per 10 s)
//! - `routes::health`: relay status plus a probe of the bot's `/health`
//! - `bot`: the one pooled HTTPS client to the bot (pinned internal CA, optional client certificate)

mod bot;
pub mod cli;
mod config;
mod log_throttle;
mod rate_limit;
mod routes;
mod startup;
mod state;
pub mod telemetry;

pub use config::{
    ClientCertFiles, Config, ConfigError, DEFAULT_BIND_ADDR, DEFAULT_FORWARD_TIMEOUT_SECS,
    DEFAULT_MAX_BODY_BYTES, DEFAULT_RATE_LIMIT, VarError,
};
pub use startup::{App, StartupError, check};
