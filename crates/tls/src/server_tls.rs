//! A reloadable server TLS configuration: load once at startup (fail fast), swap in new
//! certificates on SIGHUP or when the files change (certbot renewals), never restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use rustls::ServerConfig;

use crate::TlsError;
use crate::pem::{self, PemSet};

/// Expiry closer than this is worth a warning at every (re)load.
const EXPIRY_WARNING: Duration = Duration::from_secs(14 * 24 * 3600);

/// The PEM files a server certificate comes from.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    /// Private key of the leaf certificate.
    pub key: PathBuf,
    /// When set, clients must present a certificate signed by a CA in this file (mTLS).
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    fn paths(&self) -> impl Iterator<Item = &Path> {
        [
            Some(self.cert.as_path()),
            Some(self.key.as_path()),
            self.client_ca.as_deref(),
        ]
        .into_iter()
        .flatten()
    }
}

/// A server TLS config that can be reloaded without a restart. TLS 1.2+ only, ALPN h2 +
/// http/1.1; when `client_ca` is set, clients MUST present a certificate signed by it (mTLS).
///
/// Cheap to clone; all clones share the live configuration.
#[derive(Clone)]
pub struct ServerTls {
    inner: Arc<Inner>,
}

struct Inner {
    files: TlsFiles,
    live: RustlsConfig,
    /// File stamps of the last load attempt, so `watch` reloads once per change
    /// rather than once per poll (and does not redo what a SIGHUP just did).
    seen: Mutex<Stamps>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("files", &self.inner.files)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads and validates the files (the key must match the certificate).
    pub async fn load(files: TlsFiles) -> Result<ServerTls, TlsError> {
        let stamps = Stamps::of(&files).await;
        let config = build(&files).await?;
        Ok(ServerTls {
            inner: Arc::new(Inner {
                files,
                live: RustlsConfig::from_config(Arc::new(config)),
                seen: Mutex::new(stamps),
            }),
        })
    }

    /// Re-reads the files and swaps the configuration for new connections; connections
    /// already open keep the one they were made with. On failure the old config stays.
    pub async fn reload(&self) -> Result<(), TlsError> {
        let stamps = Stamps::of(&self.inner.files).await;
        let result = build(&self.inner.files).await;
        // Recorded on failure too: a half-written renewal is retried when the files next
        // change, instead of logging the same error on every poll.
        self.set_seen(stamps);
        self.inner.live.reload_from_config(Arc::new(result?));
        Ok(())
    }

    /// Polls the files' modification times every `interval` and reloads on change
    /// (certbot renewals); logs success and failure. Stops when the handle is aborted,
    /// or by itself once every clone of this `ServerTls` is gone.
    pub fn watch(&self, interval: Duration) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick fires at once; the files were just loaded.
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(inner) = weak.upgrade() else {
                    return;
                };
                let tls = ServerTls { inner };
                let now = Stamps::of(tls.files()).await;
                if now == tls.seen() {
                    continue;
                }
                tracing::info!(cert = %tls.files().cert.display(), "TLS files changed, reloading");
                if let Err(error) = tls.reload().await {
                    tracing::error!(%error, "TLS reload failed; keeping the previous certificate");
                }
            }
        })
    }

    /// The files this configuration is read from.
    pub fn files(&self) -> &TlsFiles {
        &self.inner.files
    }

    /// The rustls configuration new connections get right now.
    pub fn current(&self) -> Arc<ServerConfig> {
        self.inner.live.get_inner()
    }

    pub(crate) fn rustls_config(&self) -> RustlsConfig {
        self.inner.live.clone()
    }

    fn seen(&self) -> Stamps {
        self.inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_seen(&self, stamps: Stamps) {
        *self
            .inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = stamps;
    }
}

async fn build(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let cert = pem::read_async(&files.cert).await?;
    let key = pem::read_async(&files.key).await?;
    let client_ca = match &files.client_ca {
        Some(path) => Some((path.as_path(), pem::read_async(path).await?)),
        None => None,
    };
    let config = pem::server_config(&PemSet {
        cert_path: &files.cert,
        cert: &cert,
        key_path: &files.key,
        key: &key,
        client_ca: client_ca.as_ref().map(|(p, pem)| (*p, pem.as_slice())),
    })?;
    log_loaded(files, &cert);
    Ok(config)
}

fn log_loaded(files: &TlsFiles, cert_pem: &[u8]) {
    let Ok(certs) = pem::certificates(&files.cert, cert_pem) else {
        return;
    };
    let Some(leaf) = certs.first() else {
        return;
    };
    let subject = pem::subject(leaf);
    let Ok(not_after) = pem::not_after(&files.cert, leaf) else {
        return;
    };
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let remaining_days = (not_after - now) / 86_400;
    tracing::info!(
        cert = %files.cert.display(),
        %subject,
        not_after,
        remaining_days,
        client_auth = files.client_ca.is_some(),
        "TLS certificate loaded"
    );
    if not_after <= now {
        tracing::error!(cert = %files.cert.display(), "TLS certificate has expired");
    } else if not_after - now < i64::try_from(EXPIRY_WARNING.as_secs()).unwrap_or(i64::MAX) {
        tracing::warn!(cert = %files.cert.display(), remaining_days, "TLS certificate expires soon");
    }
}

/// What identifies one version of a file: certbot swaps symlinks (new inode) and writes
/// new contents (new mtime, usually new size); any of them changing means "reload".
#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamps(Vec<Option<Stamp>>);

#[derive(Clone, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamps {
    async fn of(files: &TlsFiles) -> Stamps {
        let mut stamps = Vec::with_capacity(3);
        for path in files.paths() {
            // Follows symlinks on purpose: certbot's live/ names point into archive/.
            let stamp = tokio::fs::metadata(path).await.ok().map(|meta| Stamp {
                modified: meta.modified().ok(),
                len: meta.len(),
                inode: inode(&meta),
            });
            stamps.push(stamp);
        }
        Stamps(stamps)
    }
}

#[cfg(unix)]
fn inode(meta: &std::fs::Metadata) -> u64 {
    std::os::unix::fs::MetadataExt::ino(meta)
}

#[cfg(not(unix))]
fn inode(_meta: &std::fs::Metadata) -> u64 {
    0
}
