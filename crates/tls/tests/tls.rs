//! End-to-end tests of `tls`: real listeners on 127.0.0.1:0, real TLS handshakes with
//! certificates generated per test, real files on disk.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use axum_server::Handle;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, SupportedProtocolVersion};
use tempfile::TempDir;
use tls::{ServerTls, TlsError, TlsFiles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::ca::{Ca, Leaf};

// The workspace's one test CA, shared with the bot's and the relay's tests.
#[path = "../../bot/tests/api/ca.rs"]
mod ca;

/// Files in a temp dir; replaced by write-then-rename, the way certbot swaps them.
struct Dir {
    dir: TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.path(name);
        let tmp = self.path(&format!("{name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }

    fn server_files(&self, leaf: &Leaf) -> TlsFiles {
        TlsFiles {
            cert: self.write("cert.pem", &leaf.cert),
            key: self.write("key.pem", &leaf.key),
            client_ca: None,
        }
    }
}

// ---------------------------------------------------------------- server and client

struct Server {
    addr: SocketAddr,
    handle: Handle<SocketAddr>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(tls: Option<ServerTls>) -> Server {
        Self::start_with(tls, tls::ServeOptions::default()).await
    }

    async fn start_with(tls: Option<ServerTls>, options: tls::ServeOptions) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route("/", get(|| async { "hello" })).route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        );
        let handle = Handle::new();
        let task = tokio::spawn(tls::serve_with(
            listener,
            router,
            tls,
            handle.clone(),
            options,
        ));
        Server { addr, handle, task }
    }

    async fn stop(self) {
        self.handle.graceful_shutdown(Some(Duration::from_secs(1)));
        let result = tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve returns after graceful shutdown")
            .unwrap();
        result.unwrap();
    }
}

fn client_config(
    ca_pem: &str,
    identity: Option<&Leaf>,
    versions: &[&'static SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots);
    let mut config = match identity {
        Some(leaf) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(leaf.cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(leaf.key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

fn default_client(ca: &Ca) -> Arc<ClientConfig> {
    client_config(&ca.pem, None, rustls::DEFAULT_VERSIONS)
}

/// What a client saw of one connection.
struct Seen {
    common_name: String,
    serial: String,
    alpn: Option<Vec<u8>>,
}

/// Handshake only: what certificate does a new connection get?
async fn handshake(addr: SocketAddr, config: Arc<ClientConfig>) -> std::io::Result<Seen> {
    let tcp = TcpStream::connect(addr).await?;
    let stream = TlsConnector::from(config)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let (_, conn) = stream.get_ref();
    let der = conn.peer_certificates().unwrap()[0].clone();
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or_default()
        .to_owned();
    Ok(Seen {
        common_name,
        serial: cert.tbs_certificate.serial.to_string(),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
    })
}

/// A full HTTP/1.1 request over TLS; an error when the server refuses us at any point.
async fn https_get(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
    path: &str,
) -> std::io::Result<String> {
    let mut config = (*config).clone();
    // Raw HTTP/1.1 below, so do not let ALPN pick h2.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(addr).await?;
    let mut stream = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    http_exchange(&mut stream, path).await
}

async fn http_exchange<S>(stream: &mut S, path: &str) -> std::io::Result<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response).into_owned();
    if text.is_empty() {
        return Err(std::io::Error::other(
            "connection closed without a response",
        ));
    }
    Ok(text)
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn load_serves_https_with_alpn_and_peer_address() {
    tls::install_crypto_provider();
    tls::install_crypto_provider();
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let tls = ServerTls::load(dir.server_files(&ca.numbered_server("server-1", 1)))
        .await
        .unwrap();
    assert_eq!(tls.files().cert, dir.path("cert.pem"));
    let server = Server::start(Some(tls)).await;

    let seen = handshake(server.addr, default_client(&ca)).await.unwrap();
    assert_eq!(seen.common_name, "server-1");
    assert_eq!(seen.alpn.as_deref(), Some(&b"h2"[..]));

    let response = https_get(server.addr, default_client(&ca), "/")
        .await
        .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.ends_with("hello"), "{response}");

    let response = https_get(server.addr, default_client(&ca), "/peer")
        .await
        .unwrap();
    assert!(response.contains("\r\n\r\n127.0.0.1:"), "{response}");

    server.stop().await;
}

#[tokio::test]
async fn beyond_max_connections_a_tls_connection_waits_until_one_closes() {
    tls::install_crypto_provider();
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let tls = ServerTls::load(dir.server_files(&ca.numbered_server("server-1", 1)))
        .await
        .unwrap();
    let options = tls::ServeOptions {
        max_connections: Some(1),
    };
    let server = Server::start_with(Some(tls), options).await;
    let connect = |addr: SocketAddr, config: Arc<ClientConfig>| async move {
        let tcp = TcpStream::connect(addr).await.unwrap();
        TlsConnector::from(config)
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    };
    let first = connect(server.addr, default_client(&ca)).await.unwrap();
    // Connected by the kernel, but not accepted: its handshake gets no answer.
    let second = tokio::spawn(connect(server.addr, default_client(&ca)));
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(!second.is_finished(), "a second connection was served");
    drop(first);
    let second = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the waiting connection was not served after the first closed")
        .unwrap();
    let mut second = second.unwrap();
    let response = http_exchange(&mut second, "/peer").await.unwrap();
    assert!(response.contains("\r\n\r\n127.0.0.1:"), "{response}");
    server.stop().await;
}

#[tokio::test]
async fn plain_http_when_no_tls() {
    let server = Server::start(None).await;
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    let response = http_exchange(&mut tcp, "/peer").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\r\n\r\n127.0.0.1:"), "{response}");
    server.stop().await;
}

#[tokio::test]
async fn mismatched_key_is_an_error_naming_both_files() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let one = ca.numbered_server("one", 1);
    let other = ca.numbered_server("other", 2);
    let files = TlsFiles {
        cert: dir.write("cert.pem", &one.cert),
        key: dir.write("other-key.pem", &other.key),
        client_ca: None,
    };
    let error = ServerTls::load(files.clone()).await.err().unwrap();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains(&files.key.display().to_string()),
        "{message}"
    );
    assert!(
        message.contains(&files.cert.display().to_string()),
        "{message}"
    );
    assert_eq!(error.path(), files.key);

    let error = tls::check_key_matches(&files.cert, &files.key).unwrap_err();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error:?}");
    tls::check_key_matches(&files.cert, &dir.write("key.pem", &one.key)).unwrap();
}

#[tokio::test]
async fn unusable_files_are_errors_naming_the_file() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let leaf = ca.numbered_server("server", 1);
    let cert = dir.write("cert.pem", &leaf.cert);
    let key = dir.write("key.pem", &leaf.key);
    let missing = dir.path("missing.pem");

    let load = |cert: &Path, key: &Path, client_ca: Option<&Path>| {
        ServerTls::load(TlsFiles {
            cert: cert.to_owned(),
            key: key.to_owned(),
            client_ca: client_ca.map(Path::to_owned),
        })
    };

    let error = load(&missing, &key, None).await.err().unwrap();
    assert!(matches!(error, TlsError::Unreadable { .. }), "{error:?}");
    assert!(error.to_string().contains("missing.pem"), "{error}");

    let error = load(&cert, &missing, None).await.err().unwrap();
    assert!(matches!(error, TlsError::Unreadable { .. }), "{error:?}");

    // The key file holds no certificate; the certificate file holds no key.
    let error = load(&key, &key, None).await.err().unwrap();
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error:?}");
    assert!(error.to_string().contains("key.pem"), "{error}");
    let error = load(&cert, &cert, None).await.err().unwrap();
    assert!(matches!(error, TlsError::NoPrivateKey { .. }), "{error:?}");
    assert!(error.to_string().contains("cert.pem"), "{error}");

    let garbage = dir.write(
        "garbage.pem",
        "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n",
    );
    let error = load(&garbage, &key, None).await.err().unwrap();
    assert!(
        matches!(
            error,
            TlsError::BadPem { .. } | TlsError::BadCertificate { .. }
        ),
        "{error:?}"
    );
    assert!(error.to_string().contains("garbage.pem"), "{error}");

    let error = load(&cert, &key, Some(&key)).await.err().unwrap();
    assert!(matches!(error, TlsError::BadCa { .. }), "{error:?}");
    assert!(error.to_string().contains("key.pem"), "{error}");
    let error = load(&cert, &key, Some(&missing)).await.err().unwrap();
    assert!(matches!(error, TlsError::Unreadable { .. }), "{error:?}");
}

#[tokio::test]
async fn reload_serves_the_new_certificate_to_new_connections() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let tls = ServerTls::load(dir.server_files(&ca.numbered_server("first", 1)))
        .await
        .unwrap();
    let server = Server::start(Some(tls.clone())).await;
    assert_eq!(
        handshake(server.addr, default_client(&ca))
            .await
            .unwrap()
            .serial,
        "1"
    );

    // A connection opened before the reload keeps working afterwards.
    let mut before = {
        let tcp = TcpStream::connect(server.addr).await.unwrap();
        let mut config = (*default_client(&ca)).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    };

    dir.server_files(&ca.numbered_server("second", 2));
    tls.reload().await.unwrap();
    let seen = handshake(server.addr, default_client(&ca)).await.unwrap();
    assert_eq!(
        (seen.serial.as_str(), seen.common_name.as_str()),
        ("2", "second")
    );
    let response = http_exchange(&mut before, "/").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // A broken renewal is refused and the server keeps the last good certificate.
    dir.write("key.pem", &ca.numbered_server("third", 3).key);
    let error = tls.reload().await.unwrap_err();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error:?}");
    assert_eq!(
        handshake(server.addr, default_client(&ca))
            .await
            .unwrap()
            .serial,
        "2"
    );

    server.stop().await;
}

#[tokio::test]
async fn watch_picks_up_changed_files() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let tls = ServerTls::load(dir.server_files(&ca.numbered_server("first", 1)))
        .await
        .unwrap();
    let server = Server::start(Some(tls.clone())).await;
    let watcher = tls.watch(Duration::from_millis(50));

    // Half a renewal (new cert, old key) must not be taken; the whole one must.
    let renewed = ca.numbered_server("renewed", 7);
    dir.write("cert.pem", &renewed.cert);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        handshake(server.addr, default_client(&ca))
            .await
            .unwrap()
            .serial,
        "1"
    );
    dir.write("key.pem", &renewed.key);

    let mut serial = String::new();
    for _ in 0..100 {
        serial = handshake(server.addr, default_client(&ca))
            .await
            .unwrap()
            .serial;
        if serial == "7" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(serial, "7");

    watcher.abort();
    assert!(watcher.await.unwrap_err().is_cancelled());
    server.stop().await;
}

#[tokio::test]
async fn watch_stops_when_the_config_is_dropped() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let tls = ServerTls::load(dir.server_files(&ca.numbered_server("first", 1)))
        .await
        .unwrap();
    let watcher = tls.watch(Duration::from_millis(10));
    drop(tls);
    tokio::time::timeout(Duration::from_secs(5), watcher)
        .await
        .expect("watch task ends once its ServerTls is gone")
        .unwrap();
}

#[tokio::test]
async fn client_ca_makes_client_certificates_mandatory() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("internal client CA");
    let stranger_ca = Ca::new("someone else's CA");
    let dir = Dir::new();
    let mut files = dir.server_files(&server_ca.numbered_server("bot", 1));
    files.client_ca = Some(dir.write("client-ca.pem", &client_ca.pem));
    let server = Server::start(Some(ServerTls::load(files).await.unwrap())).await;

    let anonymous = default_client(&server_ca);
    assert!(https_get(server.addr, anonymous, "/").await.is_err());

    let stranger = stranger_ca.client("relay");
    let wrong = client_config(&server_ca.pem, Some(&stranger), rustls::DEFAULT_VERSIONS);
    assert!(https_get(server.addr, wrong, "/").await.is_err());

    let relay = client_ca.client("relay");
    let good = client_config(&server_ca.pem, Some(&relay), rustls::DEFAULT_VERSIONS);
    let response = https_get(server.addr, good, "/").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    server.stop().await;
}

#[tokio::test]
async fn tls_1_2_is_accepted_and_tls_1_1_is_not_offered() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let tls = ServerTls::load(dir.server_files(&ca.numbered_server("server", 1)))
        .await
        .unwrap();
    let server = Server::start(Some(tls)).await;

    let tls12 = client_config(&ca.pem, None, &[&rustls::version::TLS12]);
    let response = https_get(server.addr, tls12, "/").await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");

    // rustls clients cannot even speak TLS 1.1, so send a TLS 1.1 ClientHello by hand.
    let mut tcp = TcpStream::connect(server.addr).await.unwrap();
    tcp.write_all(&tls11_client_hello()).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut reply)).await;
    // 0x15 = alert record; 0x16 would be a ServerHello, i.e. a negotiated TLS 1.1.
    assert_eq!(reply.first(), Some(&0x15), "reply: {reply:02x?}");

    server.stop().await;
}

/// A minimal ClientHello whose highest version is TLS 1.1 (0x0302), with CBC suites only.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x04, 0x00, 0x2f, 0xc0, 0x13]); // AES128-SHA, ECDHE-RSA-AES128-SHA
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
    handshake.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend_from_slice(&handshake);
    record
}

#[test]
fn certificate_not_after_reads_the_first_certificate() {
    let ca = Ca::new("test CA");
    let dir = Dir::new();
    let leaf = ca.numbered_server("server", 1);
    let chain = format!("{}{}", leaf.cert, ca.pem);
    let cert = dir.write("chain.pem", &chain);
    // 2040-01-01T00:00:00Z
    assert_eq!(tls::certificate_not_after(&cert).unwrap(), 2_208_988_800);

    let error = tls::certificate_not_after(&dir.path("nope.pem")).unwrap_err();
    assert!(error.to_string().contains("nope.pem"), "{error}");
    let key = dir.write("key.pem", &leaf.key);
    let error = tls::certificate_not_after(&key).unwrap_err();
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error:?}");
}
