//! `POST /webhook`: verify the Webex signature on the raw bytes, then forward those exact
//! bytes to the bot and answer Webex with the bot's status.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use secrecy::ExposeSecret;

use crate::bot::{ForwardError, SIGNATURE_HEADER};
use crate::log_throttle::Throttle;
use crate::state::AppState;

/// A webhook whose `X-Spark-Signature` matched its body. Extracting one is the only way
/// to reach the forwarding code, so nothing unverified can be forwarded.
pub(crate) struct VerifiedWebhook {
    body: Bytes,
    signature: HeaderValue,
    peer: Option<IpAddr>,
}

/// The source address in log lines; "-" when the router runs without a socket.
struct Peer(Option<IpAddr>);

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => ip.fmt(f),
            None => f.write_str("-"),
        }
    }
}

// One WARN/ERROR line per reason per 10 s; `suppressed` in a line counts those of its
// kind left out since the previous one.
static NO_SIGNATURE: Throttle = Throttle::new();
static TOO_LARGE: Throttle = Throttle::new();
static BAD_SIGNATURE: Throttle = Throttle::new();
static BOT_REFUSED: Throttle = Throttle::new();
static BOT_TIMEOUT: Throttle = Throttle::new();
static BOT_UNREACHABLE: Throttle = Throttle::new();

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        "missing or invalid X-Spark-Signature\n",
    )
        .into_response()
}

impl FromRequest<AppState> for VerifiedWebhook {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        // Checked before the body is read: an unsigned request costs no buffering.
        let Some(signature) = request.headers().get(SIGNATURE_HEADER).cloned() else {
            if let Some(suppressed) = NO_SIGNATURE.allow() {
                tracing::warn!(peer = %Peer(peer), suppressed, "webhook rejected: no X-Spark-Signature");
            }
            return Err(unauthorized());
        };
        // A client dribbling its body would otherwise hold a connection for as long as it
        // likes; reading the body gets the same budget as forwarding it.
        let read = Bytes::from_request(request, state);
        let body = match tokio::time::timeout(state.bot().forward_timeout(), read).await {
            Ok(Ok(body)) => body,
            Ok(Err(rejection)) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                if let Some(suppressed) = TOO_LARGE.allow() {
                    tracing::warn!(peer = %Peer(peer), suppressed, "webhook rejected: body over RELAY_MAX_BODY_BYTES");
                }
                return Err(rejection.into_response());
            }
            Ok(Err(rejection)) => {
                tracing::debug!(peer = %Peer(peer), error = %rejection.body_text(), "webhook body not received");
                return Err(rejection.into_response());
            }
            Err(_elapsed) => {
                tracing::debug!(peer = %Peer(peer), "webhook body not received in time");
                return Err((
                    StatusCode::REQUEST_TIMEOUT,
                    "request body not received in time\n",
                )
                    .into_response());
            }
        };
        let valid = signature.to_str().is_ok_and(|header| {
            webex::signature::verify(
                state.webhook_secret().expose_secret().as_bytes(),
                &body,
                header,
            )
        });
        if !valid {
            if let Some(suppressed) = BAD_SIGNATURE.allow() {
                tracing::warn!(peer = %Peer(peer), bytes = body.len(), suppressed, "webhook rejected: bad X-Spark-Signature");
            }
            return Err(unauthorized());
        }
        Ok(VerifiedWebhook {
            body,
            signature,
            peer,
        })
    }
}

pub(crate) async fn webhook(State(state): State<AppState>, webhook: VerifiedWebhook) -> Response {
    let started = Instant::now();
    let bytes = webhook.body.len();
    let peer = webhook.peer;
    let result = state.bot().forward(webhook.body, webhook.signature).await;
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match result {
        Ok(status) => {
            if status == StatusCode::UNAUTHORIZED {
                if let Some(suppressed) = BOT_REFUSED.allow() {
                    tracing::warn!(
                        status = status.as_u16(),
                        latency_ms,
                        bytes,
                        peer = %Peer(peer),
                        suppressed,
                        "webhook forwarded; the bot refused it: check that RELAY_API_KEY and the webhook secret match on both sides"
                    );
                }
            } else {
                tracing::info!(status = status.as_u16(), latency_ms, bytes, peer = %Peer(peer), "webhook forwarded");
            }
            status.into_response()
        }
        Err(error @ ForwardError::Timeout(_)) => {
            if let Some(suppressed) = BOT_TIMEOUT.allow() {
                tracing::error!(status = 504, latency_ms, bytes, peer = %Peer(peer), %error, suppressed, "webhook not forwarded");
            }
            (StatusCode::GATEWAY_TIMEOUT, "internal bot timed out\n").into_response()
        }
        Err(error @ ForwardError::Unreachable(_)) => {
            if let Some(suppressed) = BOT_UNREACHABLE.allow() {
                tracing::error!(status = 502, latency_ms, bytes, peer = %Peer(peer), %error, suppressed, "webhook not forwarded");
            }
            (StatusCode::BAD_GATEWAY, "internal bot unreachable\n").into_response()
        }
    }
}
