//! Tools over MCP (DESIGN §10.5) end to end: a real MCP server process (the example
//! `mcp-test-server`, over stdio and Streamable HTTP), fake LLMs that call tools in each
//! provider's own format and check the results come back in the next request, and
//! approvals decided the way the card-click handler decides them (`bot::tools::decide`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use bot::tools::{self, CallResult, DecideError, Decided, ToolSet};
use serde_json::{Value, json};

use crate::helpers::*;

mod approval;
mod doctor;
mod fake_llm;
mod formats;
mod process;
mod rounds;
/// Alice's person id in the direct-message fixture.
mod servers;

use fake_llm::*;
use formats::*;
use rounds::*;
use servers::*;

const ALICE_ID: &str =
    "Y2lzY29zcGFyazovL3VzL1BFT1BMRS85MmIzZGQ5YS02NzVkLTRhNDEtOGMxZS0xMjM0NTY3ODkwYWI";
const KEY: &str = "llm-key-SECRET-5e1d";
