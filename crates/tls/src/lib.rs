//! Server TLS from PEM files, shared by `webex-chatbot` and `webex-relay`.
//!
//! rustls with the aws-lc-rs provider only; TLS 1.2 and 1.3; ALPN h2 and http/1.1;
//! optional mandatory client certificates (mTLS) from a CA file; reload without restart.
//!
//! # Layout
//!
//! - `pem`: PEM bytes → certificates, key, client-CA verifier → `rustls::ServerConfig`
//! - `server_tls`: [`ServerTls`], the live config: [`ServerTls::load`], [`ServerTls::reload`]
//!   (SIGHUP), [`ServerTls::watch`] (certbot renewals)
//! - `serve`: [`serve`], the axum server loop over plain TCP or TLS; [`serve_with`] with a
//!   bound on open connections
//! - `limit`: [`LimitedListener`], which accepts only while fewer than the bound are open
//! - `inspect`: [`certificate_not_after`], [`check_key_matches`] for `doctor`
//! - `error`: [`TlsError`], each variant naming its file

mod error;
mod inspect;
mod limit;
mod pem;
mod serve;
mod server_tls;

pub use error::TlsError;
pub use inspect::{certificate_not_after, check_key_matches};
pub use limit::{LimitedListener, LimitedStream, PeerAddr};
pub use serve::{ServeOptions, serve, serve_with};
pub use server_tls::{ServerTls, TlsFiles};

/// Makes aws-lc-rs the process-wide rustls provider. Call first thing in `main`: with
/// more than one provider compiled in, rustls cannot choose by itself. Idempotent.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}
