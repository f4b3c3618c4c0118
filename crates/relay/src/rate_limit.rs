//! Per-source-address rate limit, checked before any body is read or hashed, so a flood
//! costs the relay a map lookup and never reaches the bot.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How often idle addresses are dropped from the limiter's map.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub(crate) struct Limiter {
    inner: Arc<DefaultKeyedRateLimiter<IpAddr>>,
}

impl Limiter {
    /// `per_second` sustained, with a burst of the same size: Webex sends webhooks in
    /// short bursts when a busy space is active.
    pub(crate) fn new(per_second: NonZeroU32) -> Limiter {
        Limiter {
            inner: Arc::new(RateLimiter::keyed(Quota::per_second(per_second))),
        }
    }

    /// `Err(wait)` when `peer` is over its quota.
    fn check(&self, peer: IpAddr) -> Result<(), Duration> {
        self.inner
            .check_key(&client_key(peer))
            .map_err(|not_until| not_until.wait_time_from(self.inner.clock().now()))
    }

    /// Keeps memory bounded by the number of recently active addresses.
    pub(crate) fn spawn_pruner(&self) -> tokio::task::JoinHandle<()> {
        let inner = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(PRUNE_EVERY);
            loop {
                ticker.tick().await;
                let Some(limiter) = inner.upgrade() else {
                    return;
                };
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        })
    }
}

/// IPv4 as is; IPv6 by its /64, since one host usually owns a whole /64 and could
/// otherwise rotate addresses to dodge the limit. IPv4-mapped IPv6 counts as IPv4.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

pub(crate) async fn middleware(
    State(limiter): State<Option<Limiter>>,
    request: Request,
    next: Next,
) -> Response {
    // No peer address means the router runs without a socket (router-level tests).
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip());
    let (Some(limiter), Some(peer)) = (limiter, peer) else {
        return next.run(request).await;
    };
    match limiter.check(peer) {
        Ok(()) => next.run(request).await,
        Err(wait) => {
            // DEBUG, not WARN: one line per refused request would let a flood fill the disk.
            tracing::debug!(%peer, path = request.uri().path(), "rate limited");
            let retry_after = wait.as_secs_f64().ceil().max(1.0).to_string();
            let mut response =
                (StatusCode::TOO_MANY_REQUESTS, "too many requests\n").into_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_keys() {
        let cases: &[(&str, &str)] = &[
            ("192.0.2.7", "192.0.2.7"),
            ("::ffff:192.0.2.7", "192.0.2.7"),
            ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
            ("2001:db8:1:2::1", "2001:db8:1:2::"),
            ("::1", "::"),
        ];
        for (ip, key) in cases {
            let ip: IpAddr = ip.parse().unwrap();
            let key: IpAddr = key.parse().unwrap();
            assert_eq!(client_key(ip), key, "{ip}");
        }
    }

    #[test]
    fn burst_then_limited_per_address() {
        let limiter = Limiter::new(NonZeroU32::new(3).unwrap());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..3 {
            assert!(limiter.check(a).is_ok());
        }
        let wait = limiter.check(a).unwrap_err();
        assert!(wait <= Duration::from_secs(1), "{wait:?}");
        assert!(limiter.check(b).is_ok());
    }
}
