//! Integration tests of webex-relay, one binary: the relay runs in-process on port 0
//! against fake bots (wiremock, or `tls::serve` for mTLS), and as a process for the CLI.
//! Set TEST_LOG=1 to see the relay's logs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The one test CA, shared with the bot's tests.
#[path = "../../../bot/tests/api/ca.rs"]
mod ca;
mod cli;
// The one `eventually`, shared with the bot's tests.
#[path = "../../../bot/tests/api/eventually.rs"]
mod eventually;
mod health;
mod helpers;
mod https;
mod install;
mod webhook;
