//! One server loop for both binaries: plain HTTP or TLS on an already-bound listener,
//! with the peer address available to handlers and graceful shutdown through a handle.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum_server::Handle;
use axum_server::tls_rustls::RustlsAcceptor;

use tokio::sync::Semaphore;

use crate::ServerTls;
use crate::limit::{LimitedListener, PeerAddr};

/// A client that has not finished its request headers by then is cut off, so idle or
/// slow-loris connections cannot pin sockets on an internet-facing port.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// How [`serve_with`] serves beyond the defaults.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServeOptions {
    /// Connections open at once; beyond it new ones wait to be accepted until one closes
    /// (they are not refused). `None`: no limit of ours.
    pub max_connections: Option<usize>,
}

/// Serve `router` on `listener` (already bound; tests bind port 0), over TLS when `tls` is
/// `Some`, plain HTTP otherwise, with `ConnectInfo<SocketAddr>` available to handlers.
/// Returns when `handle.graceful_shutdown(..)` completes.
pub async fn serve(
    listener: std::net::TcpListener,
    router: Router,
    tls: Option<ServerTls>,
    handle: Handle<SocketAddr>,
) -> std::io::Result<()> {
    serve_with(listener, router, tls, handle, ServeOptions::default()).await
}

/// [`serve`] with [`ServeOptions`]. `handle` controls shutdown and counts connections as
/// usual; its `listening()` is not notified (the listener is bound before this is called).
pub async fn serve_with(
    listener: std::net::TcpListener,
    router: Router,
    tls: Option<ServerTls>,
    handle: Handle<SocketAddr>,
    options: ServeOptions,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = LimitedListener::new(
        tokio::net::TcpListener::from_std(listener)?,
        options.max_connections.unwrap_or(Semaphore::MAX_PERMITS),
    );
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let mut server = axum_server::Server::<PeerAddr>::from_listener(listener)
        .handle(Handle::<PeerAddr>::with_control(handle.control()))
        .first_request_timeout(HEADER_READ_TIMEOUT)
        .accept_error_handler(|peer, error| {
            // Handshake failures (no client certificate, wrong CA, port scanners) are the
            // client's problem; debug keeps them out of normal logs but findable.
            tracing::debug!(peer = ?peer.map(|p| p.0), %error, "connection rejected before HTTP");
        });
    server
        .http_builder()
        .http1()
        .header_read_timeout(HEADER_READ_TIMEOUT);
    match tls {
        Some(tls) => {
            server
                .acceptor(RustlsAcceptor::new(tls.rustls_config()))
                .serve(service)
                .await
        }
        None => server.serve(service).await,
    }
}
