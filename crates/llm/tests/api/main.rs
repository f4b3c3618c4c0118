//! Integration tests: the crate against fake providers that check headers, paths and
//! bodies as the real APIs document them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fakes;

mod anthropic;
mod common;
mod concurrency;
mod config;
mod failover;
mod gemini;
mod images;
mod malformed;
mod ollama;
mod openai;
mod probe;
mod thinking;
mod tool_fakes;
mod tools;
mod usage;
