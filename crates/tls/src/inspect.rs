//! Synchronous certificate checks for `doctor` and startup diagnostics: they read the
//! files afresh and never touch a running server.

use std::path::Path;

use crate::TlsError;
use crate::pem;

/// Not-after of the first certificate in a PEM file, as unix seconds.
pub fn certificate_not_after(cert: &Path) -> Result<i64, TlsError> {
    let certs = pem::certificates(cert, &pem::read(cert)?)?;
    let leaf = certs.first().ok_or_else(|| TlsError::NoCertificate {
        path: cert.to_owned(),
    })?;
    pem::not_after(cert, leaf)
}

/// Ok when the private key in `key` belongs to the first certificate in `cert`.
pub fn check_key_matches(cert: &Path, key: &Path) -> Result<(), TlsError> {
    let certs = pem::certificates(cert, &pem::read(cert)?)?;
    let private_key = pem::private_key(key, &pem::read(key)?)?;
    pem::certified_key(&pem::provider(), cert, certs, key, private_key).map(drop)
}
