//! A bound on open connections: the listener accepts a connection only while fewer than
//! the limit are open. Beyond it new connections wait in the kernel's accept queue (they
//! are not refused) until one closes, so a flood of idle sockets cannot exhaust the
//! process's file descriptors.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum_server::{AddrListener, Address};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The peer of a connection accepted by a [`LimitedListener`]. Handlers see it as the usual
/// `ConnectInfo<SocketAddr>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

impl Address for PeerAddr {
    type Stream = LimitedStream;
    type Listener = LimitedListener;
}

impl Connected<PeerAddr> for SocketAddr {
    fn connect_info(target: PeerAddr) -> Self {
        target.0
    }
}

/// A TCP listener that holds one permit per open connection.
#[derive(Debug)]
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl LimitedListener {
    /// `max` open connections at once (at least 1).
    pub fn new(inner: TcpListener, max: usize) -> Self {
        Self {
            inner,
            permits: Arc::new(Semaphore::new(max.clamp(1, Semaphore::MAX_PERMITS))),
        }
    }
}

impl AddrListener<LimitedStream, PeerAddr> for LimitedListener {
    async fn bind_to(addr: PeerAddr) -> io::Result<Self> {
        // The server is always given a bound listener (`serve` takes one); binding here
        // would have no limit to apply.
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("LimitedListener is created from a bound listener, not bound to {addr:?}"),
        ))
    }

    async fn accept_stream(&self) -> io::Result<(LimitedStream, PeerAddr)> {
        // First a free slot, then the connection: while every slot is taken nothing is
        // accepted at all.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| io::Error::other("the connection limit was closed"))?;
        let (stream, peer) = self.inner.accept().await?;
        Ok((
            LimitedStream {
                inner: stream,
                _permit: permit,
            },
            PeerAddr(peer),
        ))
    }

    fn get_local_addr(&self) -> io::Result<PeerAddr> {
        self.inner.local_addr().map(PeerAddr)
    }
}

/// A TCP connection that gives its slot back when it is dropped (closed).
#[derive(Debug)]
pub struct LimitedStream {
    inner: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
