//! A lean HTTP/1.1 client for providers at a plain `http://` address: a local Ollama, a
//! compatible server on the LAN. Every call waiting for its answer holds its own
//! connection there (HTTP/1.1 has one request in flight per connection), and through
//! reqwest and hyper each such connection costs ~25 KB of buffers, a dispatch channel and
//! a task of its own while it waits. Here a waiting call holds its socket and nothing
//! else: the request is written from the caller's task, and the buffer for the answer is
//! allocated once the answer starts to arrive. HTTPS providers, URLs with credentials and
//! hosts with a proxy configured go through reqwest (see [`Lean::for_url`]); cloud
//! providers speak HTTP/2 there, where calls share a connection anyway.
//!
//! What it speaks: one request with a `Content-Length` body; an answer framed by
//! `Content-Length`, by `chunked` or by the connection's end (RFC 9112 §6.3), interim 1xx
//! answers skipped; keep-alive connections kept idle per host for the next call, and a
//! call that finds its kept connection closed by the server meanwhile is sent again on a
//! new one, as long as not one byte of an answer came back.

use std::{
    collections::{HashMap, VecDeque},
    io,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use bytes::{Buf, Bytes, BytesMut};
use futures_util::Stream;
use hyper_util::client::proxy::matcher::Matcher;
use reqwest::{
    StatusCode,
    header::{CONNECTION, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, TRANSFER_ENCODING},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};
use url::{Host, Url};

/// As reqwest's `connect_timeout` in the bot's client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A kept connection unused for this long is closed (as reqwest's `pool_idle_timeout`).
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections kept idle per host; more are closed when their answer is read.
const MAX_IDLE_PER_HOST: usize = 256;
/// The status line and headers of an answer.
const MAX_HEAD: usize = 64 * 1024;
const MAX_HEADERS: usize = 100;
/// One chunk-size line or trailer line of a chunked answer.
const MAX_LINE: usize = 4 * 1024;
/// A whole answer read at once ([`Body::bytes`]).
const MAX_BODY: usize = 32 * 1024 * 1024;
/// How much is read from the socket at a time.
const READ_SIZE: usize = 8 * 1024;

/// Why an exchange failed. Never carries the URL (it may hold credentials).
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error("cannot connect")]
    Connect(#[source] io::Error),
    #[error("connecting took longer than {0:?}")]
    ConnectTimeout(Duration),
    #[error("the connection failed")]
    Io(#[source] io::Error),
    #[error("the connection closed before the answer was complete")]
    Closed,
    #[error("not a valid HTTP/1.1 answer: {0}")]
    Invalid(&'static str),
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
}

/// The client: its idle connections, per host.
pub(crate) struct Lean {
    idle: Mutex<HashMap<Origin, VecDeque<Idle>>>,
    user_agent: HeaderValue,
}

struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// Where connections go: the URL's host and port.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Origin {
    host: Host<String>,
    port: u16,
}

impl Lean {
    /// A client for `url`, when this one can serve it: `http://`, no credentials in the
    /// URL, and no proxy for it in the environment (asked of the matcher reqwest builds
    /// its clients with from `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, so a call that
    /// would go through a proxy still does, through reqwest).
    pub(crate) fn for_url(url: &Url, user_agent: HeaderValue) -> Option<Lean> {
        let plain = url.scheme() == "http"
            && url.username().is_empty()
            && url.password().is_none()
            && url.host().is_some();
        let direct = || {
            url.as_str()
                .parse::<http::Uri>()
                .is_ok_and(|uri| Matcher::from_system().intercept(&uri).is_none())
        };
        (plain && direct()).then(|| Lean {
            idle: Mutex::new(HashMap::new()),
            user_agent,
        })
    }

    /// Sends `body` to `url` with `POST` and reads the answer's head; the body is read
    /// from the [`Answer`].
    pub(crate) async fn post(
        self: &Arc<Self>,
        url: &Url,
        headers: &HeaderMap,
        body: Vec<u8>,
    ) -> Result<Answer, Error> {
        let origin = Origin::of(url).ok_or(Error::Invalid("the URL has no host"))?;
        let request = self.encode(url, headers, &body);
        drop(body);
        if let Some(mut stream) = self.checkout(&origin) {
            // Kept until the answer starts: it may have to go again on a new connection.
            let answered = match send(&mut stream, &request).await {
                Ok(()) => read_head(stream).await,
                Err(failure) => Err(failure),
            };
            match answered {
                Ok(answer) => return Ok(self.answer(answer, origin)),
                // Closed by the server between calls: safe to send again.
                Err(Failure::Unanswered(_)) => {}
                Err(Failure::Other(err)) => return Err(err),
            }
        }
        let mut stream = connect(&origin).await?;
        let sent = send(&mut stream, &request).await;
        // Nothing holds the request while the model thinks.
        drop(request);
        let answered = match sent {
            Ok(()) => read_head(stream).await,
            Err(failure) => Err(failure),
        };
        match answered {
            Ok(answer) => Ok(self.answer(answer, origin)),
            Err(Failure::Unanswered(err) | Failure::Other(err)) => Err(err),
        }
    }

    fn encode(&self, url: &Url, headers: &HeaderMap, body: &[u8]) -> Vec<u8> {
        let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let host = url.host_str().unwrap_or_default();
        let mut out = Vec::with_capacity(256 + body.len());
        out.extend_from_slice(b"POST ");
        out.extend_from_slice(target.as_bytes());
        out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
        out.extend_from_slice(host.as_bytes());
        if let Some(port) = url.port() {
            out.extend_from_slice(format!(":{port}").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        let mut line = |name: &[u8], value: &[u8]| {
            out.extend_from_slice(name);
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        };
        line(b"user-agent", self.user_agent.as_bytes());
        line(b"accept", b"*/*");
        line(b"content-length", body.len().to_string().as_bytes());
        for (name, value) in headers {
            if name != CONTENT_LENGTH && name != reqwest::header::HOST {
                line(name.as_str().as_bytes(), value.as_bytes());
            }
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out
    }

    /// The newest kept connection to `origin` that the server has not closed meanwhile.
    fn checkout(&self, origin: &Origin) -> Option<TcpStream> {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.get_mut(origin)?;
        while let Some(conn) = kept.pop_back() {
            if conn.since.elapsed() >= IDLE_TIMEOUT {
                continue;
            }
            // Nothing may arrive on an idle connection: data or its end means it is done.
            match conn.stream.try_read(&mut [0; 1]) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Some(conn.stream),
                _ => continue,
            }
        }
        None
    }

    fn checkin(&self, origin: Origin, stream: TcpStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let kept = idle.entry(origin).or_default();
        while kept
            .front()
            .is_some_and(|c| c.since.elapsed() >= IDLE_TIMEOUT)
        {
            kept.pop_front();
        }
        if kept.len() < MAX_IDLE_PER_HOST {
            kept.push_back(Idle {
                stream,
                since: Instant::now(),
            });
        }
    }

    fn answer(self: &Arc<Self>, (head, stream, buf): Exchanged, origin: Origin) -> Answer {
        let framing = head.framing;
        let reusable = head.keep_alive && !matches!(framing, Framing::Close);
        Answer {
            status: head.status,
            headers: head.headers,
            body: Body {
                stream: Some(stream),
                buf,
                framing,
                reusable,
                home: Some((Arc::clone(self), origin)),
            },
        }
    }
}

impl Origin {
    fn of(url: &Url) -> Option<Origin> {
        Some(Origin {
            host: url.host()?.to_owned(),
            port: url.port_or_known_default()?,
        })
    }
}

async fn connect(origin: &Origin) -> Result<TcpStream, Error> {
    let connecting = async {
        match &origin.host {
            Host::Ipv4(ip) => TcpStream::connect(SocketAddr::from((*ip, origin.port))).await,
            Host::Ipv6(ip) => TcpStream::connect(SocketAddr::from((*ip, origin.port))).await,
            Host::Domain(name) => TcpStream::connect((name.as_str(), origin.port)).await,
        }
    };
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
        .await
        .map_err(|_| Error::ConnectTimeout(CONNECT_TIMEOUT))?
        .map_err(Error::Connect)?;
    stream.set_nodelay(true).map_err(Error::Io)?;
    Ok(stream)
}

/// An answer's head, its connection and what was read past the head.
type Exchanged = (Head, TcpStream, BytesMut);

enum Failure {
    /// The connection failed before one byte of an answer came back.
    Unanswered(Error),
    Other(Error),
}

async fn send(stream: &mut TcpStream, request: &[u8]) -> Result<(), Failure> {
    stream
        .write_all(request)
        .await
        .map_err(|e| Failure::Unanswered(Error::Io(e)))
}

/// Reads an answer's head.
async fn read_head(mut stream: TcpStream) -> Result<Exchanged, Failure> {
    // The wait for the model: the socket, and no buffer yet.
    if let Err(e) = stream.readable().await {
        return Err(Failure::Unanswered(Error::Io(e)));
    }
    let mut buf = BytesMut::with_capacity(READ_SIZE);
    let mut answered = false;
    loop {
        if buf.capacity() == buf.len() {
            buf.reserve(READ_SIZE);
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) if !answered => return Err(Failure::Unanswered(Error::Closed)),
            Ok(0) => return Err(Failure::Other(Error::Closed)),
            Ok(_) => answered = true,
            Err(e) if !answered => return Err(Failure::Unanswered(Error::Io(e))),
            Err(e) => return Err(Failure::Other(Error::Io(e))),
        }
        loop {
            match parse_head(&buf).map_err(Failure::Other)? {
                None if buf.len() >= MAX_HEAD => {
                    return Err(Failure::Other(Error::TooLarge(MAX_HEAD)));
                }
                None => break,
                Some((len, None)) => buf.advance(len),
                Some((len, Some(head))) => {
                    buf.advance(len);
                    return Ok((head, stream, buf));
                }
            }
        }
    }
}

/// The parts of an answer's head the caller needs.
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    keep_alive: bool,
}

/// A whole head at the start of `buf`: its length, and the head unless it was an interim
/// (1xx) answer; `None` while more is needed.
fn parse_head(buf: &[u8]) -> Result<Option<(usize, Option<Head>)>, Error> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut slots);
    let len = match parsed.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Error::Invalid("too many headers")),
        Err(_) => return Err(Error::Invalid("a malformed status line or header")),
    };
    let code = parsed.code.unwrap_or_default();
    let status = StatusCode::from_u16(code).map_err(|_| Error::Invalid("a bad status code"))?;
    if status.is_informational() {
        if code == 101 {
            return Err(Error::Invalid("a protocol switch nobody asked for"));
        }
        return Ok(Some((len, None)));
    }
    let mut headers = HeaderMap::with_capacity(parsed.headers.len());
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|_| Error::Invalid("a bad header name"))?;
        let value = HeaderValue::from_bytes(header.value)
            .map_err(|_| Error::Invalid("a bad header value"))?;
        headers.append(name, value);
    }
    let framing = framing(status, &headers)?;
    let keep_alive = parsed.version == Some(1) && !has_token(&headers, &CONNECTION, "close");
    Ok(Some((
        len,
        Some(Head {
            status,
            headers,
            framing,
            keep_alive,
        }),
    )))
}

/// How the answer's body ends (RFC 9112 §6.3).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Framing {
    /// This many bytes are left.
    Length(u64),
    Chunked(Chunk),
    /// Until the server closes the connection.
    Close,
}

/// What [`Body::step_framing`] could do with the buffer.
enum Progress {
    Advanced,
    /// A line of the framing is not whole yet.
    NeedsMore,
    /// Data, or not chunked: nothing to step through.
    Stuck,
}

/// Where a chunked body is.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

fn framing(status: StatusCode, headers: &HeaderMap) -> Result<Framing, Error> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Length(0));
    }
    if headers.contains_key(TRANSFER_ENCODING) {
        let last = headers
            .get_all(TRANSFER_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .rfind(|coding| !coding.is_empty());
        return Ok(match last {
            Some(coding) if coding.eq_ignore_ascii_case("chunked") => Framing::Chunked(Chunk::Size),
            _ => Framing::Close,
        });
    }
    let mut lengths = headers
        .get_all(CONTENT_LENGTH)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(|v| {
            std::str::from_utf8(v)
                .ok()
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|v| v.parse::<u64>().ok())
        });
    match lengths.next() {
        None => Ok(Framing::Close),
        Some(Some(first)) if lengths.all(|other| other == Some(first)) => {
            Ok(Framing::Length(first))
        }
        Some(_) => Err(Error::Invalid("a bad Content-Length")),
    }
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// An answer whose head was read.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Body,
}

/// The body of an answer, read from its connection. Read to its end, a keep-alive
/// connection goes back to its client for the next call; dropped before, it is closed.
pub(crate) struct Body {
    stream: Option<TcpStream>,
    /// Read from the socket and not yet given out.
    buf: BytesMut,
    framing: Framing,
    reusable: bool,
    home: Option<(Arc<Lean>, Origin)>,
}

impl Body {
    /// The next piece of the body; `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        let piece = self.next_piece().await?;
        if piece.is_some() {
            self.settle();
        }
        Ok(piece)
    }

    /// Goes through what the buffer already holds of the framing after the data (a
    /// chunk's end, the last chunk, the trailers), so that a body whose end has arrived
    /// gives its connection back even when its reader stops at the last piece (a streamed
    /// answer is done at its end marker, before the body's end is read).
    fn settle(&mut self) {
        while let Ok(Progress::Advanced) = self.step_framing() {}
        if self.framing == Framing::Length(0) {
            self.finish();
        }
    }

    /// One step through the chunked framing between data (a chunk's end, a size line, a
    /// trailer line, the end), from the buffer alone.
    fn step_framing(&mut self) -> Result<Progress, Error> {
        let Framing::Chunked(chunk) = self.framing else {
            return Ok(Progress::Stuck);
        };
        match chunk {
            Chunk::Data(_) => return Ok(Progress::Stuck),
            Chunk::DataEnd => {
                if self.buf.len() < 2 {
                    return Ok(Progress::NeedsMore);
                }
                if &self.buf[..2] != b"\r\n" {
                    return Err(Error::Invalid("a chunk longer than its size"));
                }
                self.buf.advance(2);
                self.framing = Framing::Chunked(Chunk::Size);
            }
            Chunk::Size => match httparse::parse_chunk_size(&self.buf) {
                Ok(httparse::Status::Complete((len, size))) => {
                    self.buf.advance(len);
                    self.framing = Framing::Chunked(if size == 0 {
                        Chunk::Trailers
                    } else {
                        Chunk::Data(size)
                    });
                }
                Ok(httparse::Status::Partial) => return Ok(Progress::NeedsMore),
                Err(_) => return Err(Error::Invalid("a bad chunk size")),
            },
            Chunk::Trailers => match self.buf.windows(2).position(|w| w == b"\r\n") {
                Some(0) => {
                    self.buf.advance(2);
                    self.framing = Framing::Length(0);
                }
                // A trailer field: nothing here needs one.
                Some(end) => self.buf.advance(end + 2),
                None => return Ok(Progress::NeedsMore),
            },
        }
        Ok(Progress::Advanced)
    }

    async fn next_piece(&mut self) -> Result<Option<Bytes>, Error> {
        loop {
            match self.framing {
                Framing::Length(0) => {
                    self.finish();
                    return Ok(None);
                }
                Framing::Length(left) => {
                    let (piece, left) = self.data(left).await?;
                    self.framing = Framing::Length(left);
                    return Ok(Some(piece));
                }
                Framing::Close => {
                    if self.buf.is_empty() && !self.fill().await? {
                        self.stream = None;
                        return Ok(None);
                    }
                    return Ok(Some(self.buf.split().freeze()));
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    let (piece, left) = self.data(left).await?;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(Some(piece));
                }
                Framing::Chunked(_) => match self.step_framing()? {
                    Progress::NeedsMore => self.more_for_line().await?,
                    Progress::Advanced | Progress::Stuck => {}
                },
            }
        }
    }

    /// Up to `left` bytes of data that must come (a length's, a chunk's), reading if the
    /// buffer is empty; the piece and what is left after it.
    async fn data(&mut self, left: u64) -> Result<(Bytes, u64), Error> {
        if self.buf.is_empty() && !self.fill().await? {
            return Err(Error::Closed);
        }
        let take = self
            .buf
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        Ok((self.buf.split_to(take).freeze(), left - take as u64))
    }

    /// The whole body, at most [`MAX_BODY`] bytes.
    pub(crate) async fn bytes(mut self) -> Result<Bytes, Error> {
        let Some(first) = self.chunk().await? else {
            return Ok(Bytes::new());
        };
        let Some(second) = self.chunk().await? else {
            // The common case: one piece, given as it is.
            return Ok(first);
        };
        let mut whole = BytesMut::new();
        for piece in [first, second] {
            whole.extend_from_slice(&piece);
        }
        while let Some(piece) = self.chunk().await? {
            if whole.len() + piece.len() > MAX_BODY {
                return Err(Error::TooLarge(MAX_BODY));
            }
            whole.extend_from_slice(&piece);
        }
        Ok(whole.freeze())
    }

    /// The body as a stream of pieces.
    pub(crate) fn into_stream(self) -> impl Stream<Item = Result<Bytes, Error>> + Send {
        futures_util::stream::try_unfold(self, |mut body| async move {
            Ok(body.chunk().await?.map(|piece| (piece, body)))
        })
    }

    /// Reads more from the socket; `false` at its end.
    async fn fill(&mut self) -> Result<bool, Error> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(false);
        };
        if self.buf.capacity() - self.buf.len() < READ_SIZE / 2 {
            self.buf.reserve(READ_SIZE);
        }
        let read = stream.read_buf(&mut self.buf).await.map_err(Error::Io)?;
        Ok(read > 0)
    }

    /// Reads more for a line of the chunked framing, which must end within [`MAX_LINE`].
    async fn more_for_line(&mut self) -> Result<(), Error> {
        if self.buf.len() >= MAX_LINE {
            return Err(Error::Invalid("a chunk-size or trailer line too long"));
        }
        if self.fill().await? {
            Ok(())
        } else {
            Err(Error::Closed)
        }
    }

    /// The body was read to its end: the connection goes back, if it can serve again.
    fn finish(&mut self) {
        let stream = self.stream.take();
        let home = self.home.take();
        // Bytes past the end of the answer: the server and this client disagree on
        // where it ends, so the connection cannot be trusted with another call.
        if let (Some(stream), Some((lean, origin))) = (stream, home)
            && self.reusable
            && self.buf.is_empty()
        {
            lean.checkin(origin, stream);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::{
        io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
        net::TcpListener,
        sync::mpsc,
    };

    use super::*;

    /// A request as the fake server read it: its head's lines and its body.
    #[derive(Debug)]
    struct Seen {
        connection: usize,
        lines: Vec<String>,
        body: Vec<u8>,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.lines.iter().skip(1).find_map(|line| {
                let (n, v) = line.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim())
            })
        }
    }

    /// A server that reads each request as HTTP/1.1 requires (a head, then exactly
    /// `Content-Length` bytes, which must be there) and answers with `answers[i]` for the
    /// i-th request, written as given, in pieces. After each answer it keeps the
    /// connection unless `close_after` holds for the request's index.
    async fn server(
        answers: Vec<Vec<&'static [u8]>>,
        close_after: fn(usize) -> bool,
    ) -> (Url, mpsc::UnboundedReceiver<Seen>, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!(
            "http://{}/v1/chat?x=1",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let answers = Arc::new(answers);
        let served = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let connection = counted.fetch_add(1, Ordering::SeqCst);
                let (tx, answers, served) = (tx.clone(), Arc::clone(&answers), Arc::clone(&served));
                tokio::spawn(async move {
                    let mut socket = BufReader::new(socket);
                    loop {
                        let mut lines = Vec::new();
                        loop {
                            let mut line = String::new();
                            if socket.read_line(&mut line).await.unwrap_or(0) == 0 {
                                return;
                            }
                            assert!(line.ends_with("\r\n"), "{line:?}");
                            let line = line.trim_end().to_owned();
                            if line.is_empty() {
                                break;
                            }
                            lines.push(line);
                        }
                        let mut seen = Seen {
                            connection,
                            lines,
                            body: Vec::new(),
                        };
                        let length: usize = seen.header("content-length").unwrap().parse().unwrap();
                        seen.body.resize(length, 0);
                        socket.read_exact(&mut seen.body).await.unwrap();
                        let index = served.fetch_add(1, Ordering::SeqCst);
                        tx.send(seen).unwrap();
                        for piece in &answers[index] {
                            socket.get_mut().write_all(piece).await.unwrap();
                            socket.get_mut().flush().await.unwrap();
                            tokio::task::yield_now().await;
                        }
                        if close_after(index) {
                            return;
                        }
                    }
                });
            }
        });
        (url, rx, connections)
    }

    fn client(url: &Url) -> Arc<Lean> {
        Arc::new(Lean::for_url(url, HeaderValue::from_static("test-agent/1")).unwrap())
    }

    fn headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("authorization", HeaderValue::from_static("Bearer k"));
        headers
    }

    async fn text(lean: &Arc<Lean>, url: &Url) -> Result<(u16, String), Error> {
        let answer = lean.post(url, &headers(), b"{\"q\":1}".to_vec()).await?;
        let body = answer.body.bytes().await?;
        Ok((
            answer.status.as_u16(),
            String::from_utf8(body.to_vec()).unwrap(),
        ))
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

    #[tokio::test]
    async fn the_request_is_what_http_1_1_asks_for() {
        let (url, mut seen, _) = server(vec![vec![OK]], |_| false).await;
        let lean = client(&url);
        assert_eq!(text(&lean, &url).await.unwrap(), (200, "hello".into()));
        let seen = seen.recv().await.unwrap();
        assert_eq!(seen.lines[0], "POST /v1/chat?x=1 HTTP/1.1");
        assert_eq!(
            seen.header("host"),
            Some(&*format!("127.0.0.1:{}", url.port().unwrap()))
        );
        assert_eq!(seen.header("content-length"), Some("7"));
        assert_eq!(seen.header("content-type"), Some("application/json"));
        assert_eq!(seen.header("authorization"), Some("Bearer k"));
        assert_eq!(seen.header("user-agent"), Some("test-agent/1"));
        assert_eq!(seen.body, b"{\"q\":1}");
    }

    #[tokio::test]
    async fn a_kept_connection_serves_the_next_call() {
        let (url, _seen, connections) = server(vec![vec![OK], vec![OK], vec![OK]], |_| false).await;
        let lean = client(&url);
        for _ in 0..3 {
            assert_eq!(text(&lean, &url).await.unwrap(), (200, "hello".into()));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_connection_the_server_closes_is_not_kept() {
        let close: &[u8] =
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello";
        let (url, _seen, connections) = server(vec![vec![close], vec![OK]], |i| i == 0).await;
        let lean = client(&url);
        text(&lean, &url).await.unwrap();
        text(&lean, &url).await.unwrap();
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_kept_connection_closed_meanwhile_is_replaced_without_losing_the_call() {
        // The server closes after the first answer without saying so: the kept connection
        // is dead when the second call takes it (or dies as it is used).
        let (url, mut seen, connections) = server(vec![vec![OK], vec![OK]], |i| i == 0).await;
        let lean = client(&url);
        text(&lean, &url).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(text(&lean, &url).await.unwrap(), (200, "hello".into()));
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        seen.recv().await.unwrap();
        assert_eq!(seen.recv().await.unwrap().connection, 1);
    }

    #[tokio::test]
    async fn a_stale_connection_that_looks_alive_is_retried_once_on_a_new_one() {
        let (url, _seen, connections) = server(vec![vec![OK]], |_| false).await;
        let lean = client(&url);
        // A kept connection whose server reads the request and closes without a word,
        // as a server does that timed the connection out as the request came.
        let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(dead.local_addr().unwrap())
            .await
            .unwrap();
        let (mut accepted, _) = dead.accept().await.unwrap();
        let closer = tokio::spawn(async move {
            let mut request = [0; 64];
            accepted.read(&mut request).await.unwrap()
        });
        lean.checkin(Origin::of(&url).unwrap(), stream);
        let answer = lean.post(&url, &headers(), b"{}".to_vec()).await.unwrap();
        assert!(
            closer.await.unwrap() > 0,
            "the request went to the kept connection first"
        );
        assert_eq!(answer.body.bytes().await.unwrap(), "hello");
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn chunked_answers_with_extensions_and_trailers_are_read_whole() {
        let chunked: Vec<&'static [u8]> = vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel",
            b"lo\r\n",
            b"6\r\n wor",
            b"ld\r\n0\r\nX-Trailer: 1\r\n",
            b"\r\n",
        ];
        let (url, _seen, connections) = server(vec![chunked, vec![OK]], |_| false).await;
        let lean = client(&url);
        assert_eq!(
            text(&lean, &url).await.unwrap(),
            (200, "hello world".into())
        );
        // Read to its end, the connection serves again.
        text(&lean, &url).await.unwrap();
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stream_gives_pieces_as_they_come() {
        let chunked: Vec<&'static [u8]> = vec![
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            b"7\r\ndata: a\r\n",
            b"7\r\ndata: b\r\n0\r\n\r\n",
        ];
        let (url, _seen, _) = server(vec![chunked], |_| false).await;
        let lean = client(&url);
        let answer = lean.post(&url, &headers(), b"{}".to_vec()).await.unwrap();
        let pieces: Vec<Bytes> = futures_util::TryStreamExt::try_collect(answer.body.into_stream())
            .await
            .unwrap();
        assert_eq!(pieces.concat(), b"data: adata: b");
    }

    #[tokio::test]
    async fn a_reader_that_stops_at_the_last_piece_still_gives_the_connection_back() {
        // The last data chunk and the body's end in one write; and a body with a length.
        let chunked: Vec<&'static [u8]> = vec![
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"4\r\nlast\r\n0\r\n\r\n",
        ];
        let (url, _seen, connections) = server(vec![chunked, vec![OK], vec![OK]], |_| false).await;
        let lean = client(&url);
        for _ in 0..2 {
            let mut body = lean
                .post(&url, &headers(), b"{}".to_vec())
                .await
                .unwrap()
                .body;
            let mut read = Vec::new();
            while read.len() < 4 {
                read.extend_from_slice(&body.chunk().await.unwrap().unwrap());
            }
            drop(body);
        }
        text(&lean, &url).await.unwrap();
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn an_answer_without_length_ends_with_the_connection() {
        let answer: Vec<&'static [u8]> = vec![b"HTTP/1.1 200 OK\r\n\r\nto the ", b"end"];
        let (url, _seen, connections) = server(vec![answer, vec![OK]], |i| i == 0).await;
        let lean = client(&url);
        assert_eq!(text(&lean, &url).await.unwrap(), (200, "to the end".into()));
        text(&lean, &url).await.unwrap();
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn interim_answers_are_skipped() {
        let answer: Vec<&'static [u8]> = vec![b"HTTP/1.1 100 Continue\r\n\r\n", OK];
        let (url, _seen, _) = server(vec![answer], |_| false).await;
        let lean = client(&url);
        assert_eq!(text(&lean, &url).await.unwrap(), (200, "hello".into()));
    }

    #[tokio::test]
    async fn an_error_status_keeps_its_headers_and_body() {
        let answer: &[u8] =
            b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 2\r\n\r\n{}";
        let (url, _seen, _) = server(vec![vec![answer]], |_| false).await;
        let lean = client(&url);
        let answer = lean.post(&url, &headers(), b"{}".to_vec()).await.unwrap();
        assert_eq!(answer.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(answer.headers["retry-after"], "3");
        assert_eq!(answer.body.bytes().await.unwrap(), "{}");
    }

    #[tokio::test]
    async fn broken_answers_are_errors_and_their_connection_is_not_kept() {
        let cases: [(&'static [u8], &str); 5] = [
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
                "closed before",
            ),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
                "Content-Length",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
                "chunk size",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
                "longer than",
            ),
            (b"NOT HTTP\r\n\r\n", "malformed"),
        ];
        for (answer, says) in cases {
            let (url, _seen, _) = server(vec![vec![answer]], |_| true).await;
            let lean = client(&url);
            let err = match lean.post(&url, &headers(), b"{}".to_vec()).await {
                Ok(answer) => answer.body.bytes().await.unwrap_err(),
                Err(err) => err,
            };
            assert!(err.to_string().contains(says), "{err} for {answer:?}");
            assert!(lean.idle.lock().unwrap().values().all(VecDeque::is_empty));
        }
    }

    #[tokio::test]
    async fn bytes_past_the_end_of_an_answer_close_its_connection() {
        let answer: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA";
        let (url, _seen, connections) = server(vec![vec![answer], vec![OK]], |_| false).await;
        let lean = client(&url);
        assert_eq!(text(&lean, &url).await.unwrap(), (200, "hello".into()));
        text(&lean, &url).await.unwrap();
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_head_too_large_is_refused() {
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        for _ in 0..(MAX_HEAD / 16) {
            huge.extend_from_slice(b"x-pad: 12345678\r\n");
        }
        let huge: &'static [u8] = huge.leak();
        let (url, _seen, _) = server(vec![vec![huge]], |_| true).await;
        let lean = client(&url);
        let err = lean
            .post(&url, &headers(), b"{}".to_vec())
            .await
            .err()
            .unwrap();
        assert!(
            matches!(err, Error::TooLarge(_) | Error::Invalid(_)),
            "{err}"
        );
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        let spare = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", spare.local_addr().unwrap())).unwrap();
        drop(spare);
        let err = client(&url)
            .post(&url, &headers(), b"{}".to_vec())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, Error::Connect(_)), "{err}");
    }

    #[test]
    fn only_plain_http_without_credentials_is_served_here() {
        let agent = || HeaderValue::from_static("a");
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(Lean::for_url(&url("http://127.0.0.1:11434/api/chat"), agent()).is_some());
        assert!(Lean::for_url(&url("http://[::1]:8000/v1"), agent()).is_some());
        assert!(Lean::for_url(&url("https://api.openai.com/v1"), agent()).is_none());
        assert!(Lean::for_url(&url("http://user:pw@host/v1"), agent()).is_none());
    }

    #[test]
    fn an_ipv6_host_is_written_with_its_brackets() {
        let url = Url::parse("http://[::1]:8000/v1/chat").unwrap();
        let lean = Lean::for_url(&url, HeaderValue::from_static("a")).unwrap();
        let request = lean.encode(&url, &HeaderMap::new(), b"");
        assert!(request.starts_with(b"POST /v1/chat HTTP/1.1\r\nhost: [::1]:8000\r\n"));
    }
}
