//! PEM files → rustls objects, with each failure mapped to the file that caused it.
//! Pure functions over bytes, so the async loader and the sync `doctor` checks share them.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{Error as RustlsError, InconsistentKeys, RootCertStore, ServerConfig};
use rustls_pki_types::pem::{Error as PemError, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::TlsError;

/// ALPN ids in preference order: h2 first, since Webex and reqwest both speak it.
const ALPN: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// The crypto provider every config is built with. An explicitly installed process default
/// wins (so a binary could pick e.g. a FIPS provider); otherwise aws-lc-rs, never `ring`.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Unreadable {
        path: path.to_owned(),
        source,
    })
}

pub(crate) async fn read_async(path: &Path) -> Result<Vec<u8>, TlsError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| TlsError::Unreadable {
            path: path.to_owned(),
            source,
        })
}

fn bad_pem(path: &Path, err: &PemError) -> TlsError {
    TlsError::BadPem {
        path: path.to_owned(),
        reason: err.to_string(),
    }
}

/// Every certificate in the file, leaf first, as the file lists them.
pub(crate) fn certificates(
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_pem(path, &e))?;
    let Some(first) = certs.first() else {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    };
    // rustls only parses the leaf lazily, during a handshake; parse it now so a broken
    // file is a startup error rather than a stream of failed handshakes.
    X509Certificate::from_der(first).map_err(|e| TlsError::BadCertificate {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(certs)
}

/// The first private key in the file (PKCS#8, PKCS#1 or SEC1).
pub(crate) fn private_key(path: &Path, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        PemError::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_owned(),
        },
        other => bad_pem(path, &other),
    })
}

/// Pairs a certificate chain with its key, refusing a key that belongs to another certificate.
pub(crate) fn certified_key(
    provider: &CryptoProvider,
    cert_path: &Path,
    certs: Vec<CertificateDer<'static>>,
    key_path: &Path,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|e| TlsError::BadPrivateKey {
                path: key_path.to_owned(),
                reason: e.to_string(),
            })?;
    let certified = CertifiedKey::new(certs, signing_key);
    match certified.keys_match() {
        // Unknown: the key type cannot report its public half; rustls accepts that too.
        Ok(()) | Err(RustlsError::InconsistentKeys(InconsistentKeys::Unknown)) => Ok(certified),
        Err(RustlsError::InconsistentKeys(InconsistentKeys::KeyMismatch)) => {
            Err(TlsError::KeyMismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            })
        }
        Err(other) => Err(TlsError::BadCertificate {
            path: cert_path.to_owned(),
            reason: other.to_string(),
        }),
    }
}

fn client_roots(path: &Path, pem: &[u8]) -> Result<RootCertStore, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::BadCa {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::BadCa {
            path: path.to_owned(),
            reason: "no certificate in the file".to_owned(),
        });
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| TlsError::BadCa {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    }
    Ok(roots)
}

/// The PEM contents of one certificate/key(/CA) set, read together so that a reload
/// builds its config from one consistent snapshot.
pub(crate) struct PemSet<'a> {
    pub cert_path: &'a Path,
    pub cert: &'a [u8],
    pub key_path: &'a Path,
    pub key: &'a [u8],
    pub client_ca: Option<(&'a Path, &'a [u8])>,
}

/// Builds the server config: TLS 1.2 and 1.3 only, ALPN h2 + http/1.1, and a mandatory
/// client certificate from the CA when one is given.
pub(crate) fn server_config(set: &PemSet<'_>) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let certs = certificates(set.cert_path, set.cert)?;
    let key = private_key(set.key_path, set.key)?;
    let certified = certified_key(&provider, set.cert_path, certs, set.key_path, key)?;

    let config_error = |reason: String| TlsError::Config {
        cert: set.cert_path.to_owned(),
        key: set.key_path.to_owned(),
        reason,
    };
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| config_error(e.to_string()))?;
    let builder = match set.client_ca {
        None => builder.with_no_client_auth(),
        Some((ca_path, ca_pem)) => {
            let roots = client_roots(ca_path, ca_pem)?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| TlsError::BadCa {
                    path: ca_path.to_owned(),
                    reason: e.to_string(),
                })?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified)));
    config.alpn_protocols = ALPN.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// Not-after of the first certificate, as unix seconds.
pub(crate) fn not_after(path: &Path, cert: &CertificateDer<'_>) -> Result<i64, TlsError> {
    let (_, parsed) = X509Certificate::from_der(cert).map_err(|e| TlsError::BadCertificate {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    Ok(parsed.validity().not_after.timestamp())
}

/// Subject of the first certificate, for log lines after a (re)load.
pub(crate) fn subject(cert: &CertificateDer<'_>) -> String {
    X509Certificate::from_der(cert)
        .map(|(_, parsed)| parsed.subject().to_string())
        .unwrap_or_default()
}
