//! The one error type of this crate. Every variant names the file it is about,
//! because the operator's next step is always "look at that file".

use std::path::PathBuf;

/// Why a certificate, key or CA file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read (missing, permissions, is a directory, …).
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The file is not valid PEM.
    #[error("{path} is not valid PEM: {reason}")]
    BadPem { path: PathBuf, reason: String },

    /// The certificate file holds no `CERTIFICATE` block.
    #[error("no certificate found in PEM file {path}")]
    NoCertificate { path: PathBuf },

    /// The certificate could not be parsed as X.509.
    #[error("{path} holds a certificate that cannot be parsed: {reason}")]
    BadCertificate { path: PathBuf, reason: String },

    /// The key file holds no private key block (PKCS#8, PKCS#1 or SEC1).
    #[error("no private key found in PEM file {path}")]
    NoPrivateKey { path: PathBuf },

    /// The private key is of a kind or shape the crypto provider cannot use.
    #[error("unusable private key in {path}: {reason}")]
    BadPrivateKey { path: PathBuf, reason: String },

    /// The private key does not belong to the certificate.
    #[error("private key {key} does not match certificate {cert}")]
    KeyMismatch { cert: PathBuf, key: PathBuf },

    /// The client CA file cannot serve as a trust anchor for client certificates.
    #[error("bad client CA {path}: {reason}")]
    BadCa { path: PathBuf, reason: String },

    /// rustls refused the resulting configuration.
    #[error("TLS configuration from {cert} and {key} rejected: {reason}")]
    Config {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

impl TlsError {
    /// The file the error is about (the key file for a mismatch).
    pub fn path(&self) -> &std::path::Path {
        match self {
            Self::Unreadable { path, .. }
            | Self::BadPem { path, .. }
            | Self::NoCertificate { path }
            | Self::BadCertificate { path, .. }
            | Self::NoPrivateKey { path }
            | Self::BadPrivateKey { path, .. }
            | Self::BadCa { path, .. } => path,
            Self::KeyMismatch { key, .. } | Self::Config { key, .. } => key,
        }
    }
}
