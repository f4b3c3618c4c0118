//! The one test certificate authority (rcgen) of the workspace: the bot's, the relay's and
//! the `tls` crate's tests (the last two include this file by `#[path]`): a CA, the server
//! and client certificates it signs, and a self-signed certificate with a chosen expiry.

#![allow(
    dead_code,
    reason = "three test crates include this file and each uses a part of it"
)]

use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SerialNumber,
};

/// A certificate authority; `pem` is its certificate.
pub struct Ca {
    pub pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its private key, PEM.
pub struct Leaf {
    pub cert: String,
    pub key: String,
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `localhost` and `127.0.0.1` named `name`, for `usage`; when
    /// `serial` is given, with that serial number and valid until 2040-01-01T00:00:00Z.
    fn leaf(&self, name: &str, serial: Option<u64>, usage: ExtendedKeyUsagePurpose) -> Leaf {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        if let Some(serial) = serial {
            params.serial_number = Some(SerialNumber::from(serial));
            params.not_after = rcgen::date_time_ymd(2040, 1, 1);
        }
        params.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// A server certificate (TLS Web Server Authentication).
    pub fn server(&self, name: &str) -> Leaf {
        self.leaf(name, None, ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A server certificate with the serial number `serial` and a fixed expiry
    /// (2040-01-01T00:00:00Z), for tests that read them back (a reload, an expiry check).
    pub fn numbered_server(&self, name: &str, serial: u64) -> Leaf {
        self.leaf(name, Some(serial), ExtendedKeyUsagePurpose::ServerAuth)
    }

    /// A client certificate (TLS Web Client Authentication), for mutual TLS.
    pub fn client(&self, name: &str) -> Leaf {
        self.leaf(name, None, ExtendedKeyUsagePurpose::ClientAuth)
    }
}

/// A self-signed certificate for `localhost`, valid since yesterday and for `days` more
/// days (for expiry checks).
pub fn self_signed(days: u64) -> Leaf {
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let now = SystemTime::now();
    params.not_before = (now - DAY).into();
    params.not_after = (now + DAY * u32::try_from(days).unwrap()).into();
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Leaf {
        cert: cert.pem(),
        key: key.serialize_pem(),
    }
}
