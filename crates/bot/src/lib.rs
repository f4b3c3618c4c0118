//! webex-chatbot: a self-hosted Webex bot that answers people with a large language model.
//!
//! # Layout
//!
//! Modules in the order a message flows through them:
//!
//! - [`config`]: the environment (and `.env`) parsed once into a typed [`config::Config`].
//! - `startup`: [`App::build`] wires the store, the Webex client, the LLM and the listener;
//!   `run_until_stopped` serves and shuts down gracefully.
//! - `routes`: `POST /webhook` verifies the signature (and relay key) on the raw bytes,
//!   records the event durably in the store's inbox and answers 200; `/health`, `/metrics`.
//! - `record`: the record step every arrival shares (inbox, dedup, wake a worker).
//! - `dispatcher`: one worker per room (arrival order within a conversation, rooms in
//!   parallel) plus a sweeper for pending work; `rooms`: which rooms have a worker here;
//!   `lease`: the worker's hold on its room across replicas.
//! - `pipeline`: one event end to end: fetch the message → sender checks and mention
//!   stripping → `access` → [`commands`] (parse, then run) or `chat` → `reply` (split
//!   under the size limit, threaded) → store the turns. One error boundary per message.
//!   A submitted card (`pipeline/actions.rs`) and the bot's arrival in a space
//!   (`pipeline/greeting.rs`) are events of their own kinds through the same inbox.
//! - [`cards`]: the Adaptive Cards (`help`, `personality list`, feedback) and their 1.3 check.
//! - [`attachments`]: a message's files, after access and before the route: downloaded,
//!   read (text, PDF and DOCX in a child process, images, voice notes) into the user turn.
//! - `chat`, [`personality`], [`memory`]: the system prompt and trimmed history for the LLM.
//! - [`usage`]: the tokens of every LLM call per day, person, space and model, their cost,
//!   the limits checked before the LLM is asked (`pipeline`'s limit stage), `usage export`.
//! - [`store`]: SQLite or PostgreSQL through one code path, a file per concern: ingest,
//!   inbox/dedup, leases, leader, approved users, per-space personality, conversation turns.
//! - [`tools`]: tools over MCP: the servers of `TOOLS_CONFIG`, the loop that runs the
//!   model's tool calls, approval cards for `confirm` tools, the record of every call.
//! - `probe`: the LLM's health for `/health` and `status`, cached a few seconds.
//! - `registration`: keeps one active webhook per handled event at `BOT_PUBLIC_URL/webhook`.
//! - `websocket`: `MODE=websocket` instead of a webhook: keeps a Mercury connection up
//!   (the protocol is `webex::device` and `webex::mercury`), records each new message, card
//!   submit or space arrival like a webhook delivery, and catches up after reconnects.
//! - [`cli`]: the subcommands (`serve`, `chat`, `webhooks`, `users`, `usage`, `doctor`, `dev`);
//!   `doctor` (deployment checks) and `dev` (ngrok tunnel + serve) live in their own modules.
//!
//! Webex wire types and HTTP live in the `webex` crate, provider formats in `llm`.

pub mod attachments;
pub mod cards;
mod chat;
pub mod cli;
pub mod commands;
pub mod config;
mod dev;
mod dispatcher;
mod doctor;
pub mod domain;
pub mod error;
mod lease;
pub mod memory;
mod metrics;
pub mod personality;
mod pipeline;
mod probe;
mod record;
mod registration;
mod rooms;
mod routes;
mod startup;
mod state;
pub mod store;
mod strings;
pub mod telemetry;
pub mod tools;
pub mod usage;
mod websocket;

pub use error::AppError;
pub use rooms::FaultHook;
pub use routes::{MAX_BODY_BYTES, router};
pub use startup::{App, BuildOptions};
pub use state::AppState;
