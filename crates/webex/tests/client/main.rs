//! The Webex client against a fake Webex (wiremock) that checks each request the way
//! Webex documents it: method, path, bearer token, JSON body fields.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use secrecy::SecretString;
use serde_json::{Value, json};
use webex::{
    Client, ClientConfig, Error, MessageId, NewMessage, NewWebhook, PersonId, RetryPolicy, RoomId,
    UpdateWebhook, WebhookId,
};
use wiremock::matchers::{
    bearer_token, body_json, body_partial_json, header, method, path, query_param,
};
use wiremock::{Match, Mock, MockServer, Request, ResponseTemplate};

mod calls;
mod errors;
mod rooms;
mod webhooks;

const TOKEN: &str = "test-token-ZmFrZQ";
const ME: &str = include_str!("../fixtures/people-me.json");
const DIRECT: &str = include_str!("../fixtures/message-direct.json");
const DESKTOP: &str = include_str!("../fixtures/message-group-mention-desktop.json");
const ERROR_429: &str = include_str!("../fixtures/error-429.json");
const MESSAGE_ID: &str =
    "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvYzNkNGU1ZjYtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk";
const ROOM_ID: &str =
    "Y2lzY29zcGFyazovL3VzL1JPT00vZDFlMmYzYTQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0";

fn fixture(json: &str) -> Value {
    serde_json::from_str(json).unwrap()
}

/// A client for `server`, with the API root at `{server}{prefix}`.
fn client_at(server: &MockServer, prefix: &str) -> Client {
    Client::new(
        reqwest::Client::new(),
        ClientConfig {
            base_url: format!("{}{prefix}", server.uri()).parse().unwrap(),
            token: SecretString::from(TOKEN),
            retry: RetryPolicy::fast_for_tests(),
        },
    )
}

fn client(server: &MockServer) -> Client {
    client_at(server, "/v1")
}

/// Requests that carry a JSON body must say so.
struct JsonContentType;

impl Match for JsonContentType {
    fn matches(&self, request: &Request) -> bool {
        request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"))
    }
}

/// A request without a body (GET and DELETE send none).
struct NoBody;

impl Match for NoBody {
    fn matches(&self, request: &Request) -> bool {
        request.body.is_empty()
    }
}

/// The JSON body has exactly these top-level keys (so `None` fields are left out).
struct BodyKeys(&'static [&'static str]);

impl Match for BodyKeys {
    fn matches(&self, request: &Request) -> bool {
        let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
            return false;
        };
        let mut keys: Vec<&str> = body.keys().map(String::as_str).collect();
        keys.sort_unstable();
        let mut want = self.0.to_vec();
        want.sort_unstable();
        keys == want
    }
}
