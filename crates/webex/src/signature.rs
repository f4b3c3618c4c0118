//! Webhook signatures: `X-Spark-Signature` is the lowercase hex HMAC-SHA1 of the raw
//! request body keyed with the webhook secret. Always hash the bytes as received (never
//! re-serialised JSON) and compare in constant time.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The lowercase hex HMAC-SHA1 of `body` keyed with `secret`.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    match mac(secret, body) {
        Some(mac) => hex::encode(mac.finalize().into_bytes()),
        None => String::new(),
    }
}

/// Whether `signature_header` is the signature of `body` under `secret`. Constant-time
/// (`verify_slice`); accepts upper- or lower-case hex and surrounding whitespace; false
/// on bad hex or a wrong length.
pub fn verify(secret: &[u8], body: &[u8], signature_header: &str) -> bool {
    let Ok(expected) = hex::decode(signature_header.trim()) else {
        return false;
    };
    mac(secret, body).is_some_and(|mac| mac.verify_slice(&expected).is_ok())
}

fn mac(secret: &[u8], body: &[u8]) -> Option<HmacSha1> {
    // HMAC accepts keys of any length, so this never fails; the Option only spares
    // an `expect` that the lints forbid.
    let mut mac = HmacSha1::new_from_slice(secret).ok()?;
    mac.update(body);
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FIXTURE: &[u8] = include_bytes!("../tests/fixtures/webhook-messages-created.json");
    // Computed with Python: hmac.new(secret, body, hashlib.sha1).hexdigest()
    const FIXTURE_SECRET: &[u8] = b"webhook-secret-123";
    const FIXTURE_SIG: &str = "1becfaccf68c0c88fbe4258796270ce7a2cf0c2a";

    #[test]
    fn sign_matches_known_vectors() {
        let cases: &[(&[u8], &[u8], &str)] = &[
            (FIXTURE_SECRET, FIXTURE, FIXTURE_SIG),
            (
                b"key",
                b"The quick brown fox jumps over the lazy dog",
                "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9",
            ),
            (b"", b"", "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d"),
            (b"s", b"", "71d58ad26842efdab8a2d541818921d2066afebd"),
            // A key longer than SHA-1's 64-byte block is hashed first.
            (
                &[b'k'; 100],
                b"long key",
                "20787832fbe1ad68140348ce2ff9cd1af0c1f525",
            ),
        ];
        for (secret, body, want) in cases {
            assert_eq!(sign(secret, body), *want);
            assert!(verify(secret, body, want));
        }
    }

    #[test]
    fn verify_table() {
        let upper = FIXTURE_SIG.to_uppercase();
        let padded = format!("  {FIXTURE_SIG}\r\n");
        let mut tampered = FIXTURE.to_vec();
        tampered.push(b' ');
        type Case<'a> = (&'a str, &'a [u8], &'a [u8], &'a str, bool);
        let cases: &[Case] = &[
            ("correct", FIXTURE_SECRET, FIXTURE, FIXTURE_SIG, true),
            ("uppercase hex", FIXTURE_SECRET, FIXTURE, &upper, true),
            (
                "surrounding whitespace",
                FIXTURE_SECRET,
                FIXTURE,
                &padded,
                true,
            ),
            (
                "wrong secret",
                b"webhook-secret-124",
                FIXTURE,
                FIXTURE_SIG,
                false,
            ),
            ("wrong body", FIXTURE_SECRET, &tampered, FIXTURE_SIG, false),
            ("empty header", FIXTURE_SECRET, FIXTURE, "", false),
            ("garbage", FIXTURE_SECRET, FIXTURE, "not-a-signature", false),
            (
                "odd length",
                FIXTURE_SECRET,
                FIXTURE,
                &FIXTURE_SIG[1..],
                false,
            ),
            (
                "truncated",
                FIXTURE_SECRET,
                FIXTURE,
                &FIXTURE_SIG[..38],
                false,
            ),
            (
                "too long",
                FIXTURE_SECRET,
                FIXTURE,
                &format!("{FIXTURE_SIG}00"),
                false,
            ),
            (
                "sha256 length",
                FIXTURE_SECRET,
                FIXTURE,
                &"ab".repeat(32),
                false,
            ),
            (
                "prefixed",
                FIXTURE_SECRET,
                FIXTURE,
                &format!("sha1={FIXTURE_SIG}"),
                false,
            ),
            ("non-ascii", FIXTURE_SECRET, FIXTURE, "é€😀", false),
        ];
        for (name, secret, body, header, want) in cases {
            assert_eq!(verify(secret, body, header), *want, "{name}");
        }
    }

    proptest! {
        #[test]
        fn verify_never_panics(
            secret in proptest::collection::vec(any::<u8>(), 0..100),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            header in ".{0,60}",
        ) {
            let _ = verify(&secret, &body, &header);
        }

        #[test]
        fn sign_then_verify_roundtrips(
            secret in proptest::collection::vec(any::<u8>(), 0..100),
            body in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let signature = sign(&secret, &body);
            prop_assert_eq!(signature.len(), 40);
            prop_assert!(verify(&secret, &body, &signature));
            prop_assert!(verify(&secret, &body, &signature.to_uppercase()));
        }
    }
}
