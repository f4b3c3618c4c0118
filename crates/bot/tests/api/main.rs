//! Integration tests: one binary, the real app against fake Webex and fake LLM servers.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod architecture;
mod ca;
mod cards;
mod cli;
mod commands;
mod dev;
mod doctor;
mod eventually;
mod faults;
mod files;
mod harness;
mod helpers;
mod ingress;
mod install;
mod leases;
mod lifecycle;
mod message_flow;
mod ops;
mod process;
mod properties;
mod providers;
mod real_webex;
mod registration;
mod replicas;
mod store;
mod streaming;
mod tls_relay;
mod tools;
mod usage;
mod webhook_auth;
mod websocket;
