//! Webex ids as newtypes, so a room id cannot be passed where a message id belongs.
//! Person ids come in two spellings (base64 `ciscospark://…/PEOPLE/<uuid>` and the raw
//! uuid some mobile clients put in mentions); [`PersonId::same_person`] compares both.
//! [`rest_id`] forms the base64 REST id of a resource from its uuid, as Mercury events
//! carry uuids only.

use std::fmt;

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> Self {
                Self(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }
    };
}

id_type!(
    /// A message id (`messages/{id}`, `parentId`).
    MessageId
);
id_type!(
    /// A room (space) id.
    RoomId
);
id_type!(
    /// A person or bot id, in either of the forms Webex uses.
    PersonId
);
id_type!(
    /// A webhook id.
    WebhookId
);

/// Webex ids are unpadded standard base64, but being lenient about padding, trailing
/// bits and the URL-safe alphabet costs nothing and survives ids copied by hand.
const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

impl PersonId {
    /// The uuid inside a base64 `ciscospark://us/PEOPLE/<uuid>` id, or the id itself when
    /// it already is a uuid (lowercased).
    pub fn uuid(&self) -> Option<String> {
        let raw = self.0.trim();
        if is_uuid(raw) {
            return Some(raw.to_ascii_lowercase());
        }
        let decoded = STANDARD_LENIENT
            .decode(raw)
            .or_else(|_| URL_SAFE_LENIENT.decode(raw))
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        // The cluster part varies (`us`, `eu`, …); the resource type and uuid do not.
        let rest = decoded.strip_prefix("ciscospark://")?;
        let (_cluster, rest) = rest.split_once('/')?;
        let (kind, uuid) = rest.split_once('/')?;
        (kind.eq_ignore_ascii_case("PEOPLE") && is_uuid(uuid)).then(|| uuid.to_ascii_lowercase())
    }

    /// True when both ids name the same person (base64 form vs raw uuid form).
    pub fn same_person(&self, other: &str) -> bool {
        if self.0 == other {
            return true;
        }
        match (self.uuid(), PersonId::new(other).uuid()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        }
    }
}

/// `ciscospark://us/<KIND>/<uuid>` as Webex REST ids spell it: unpadded standard base64
/// (`kind` as Webex names resources: `MESSAGE`, `ROOM`, `PEOPLE`, `ATTACHMENT_ACTION`,
/// `MEMBERSHIP`). Only the US cluster is formed: ids of other clusters decode the same way
/// in [`PersonId::uuid`], but cannot be told apart from a uuid alone.
pub fn rest_id(kind: &str, uuid: &str) -> String {
    STANDARD_NO_PAD.encode(format!("ciscospark://us/{kind}/{uuid}"))
}

/// The canonical 8-4-4-4-12 hex form.
pub(crate) fn is_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOT_B64: &str =
        "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM";
    const BOT_UUID: &str = "249f74d9-db8a-43ca-896b-879ed240ac53";

    #[test]
    fn uuid_extraction() {
        let cases: &[(&str, Option<&str>)] = &[
            (BOT_B64, Some(BOT_UUID)),
            // Padded form of the same id.
            (
                "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8yNDlmNzRkOS1kYjhhLTQzY2EtODk2Yi04NzllZDI0MGFjNTM=",
                Some(BOT_UUID),
            ),
            (BOT_UUID, Some(BOT_UUID)),
            ("249F74D9-DB8A-43CA-896B-879ED240AC53", Some(BOT_UUID)),
            // A room id is not a person.
            (
                "Y2lzY29zcGFyazovL3VzL1JPT00vYmJjZWIxYWQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0",
                None,
            ),
            ("", None),
            ("not an id", None),
            ("@@@@", None),
        ];
        for (id, want) in cases {
            assert_eq!(
                PersonId::new(*id).uuid().as_deref(),
                *want,
                "uuid of {id:?}"
            );
        }
    }

    #[test]
    fn same_person_across_forms() {
        let bot = PersonId::new(BOT_B64);
        assert!(bot.same_person(BOT_B64));
        assert!(bot.same_person(BOT_UUID));
        assert!(bot.same_person(&BOT_UUID.to_uppercase()));
        assert!(PersonId::new(BOT_UUID).same_person(BOT_B64));
        assert!(!bot.same_person(
            "Y2lzY29zcGFyazovL3VzL1BFT1BMRS85MmIzZGQ5YS02NzVkLTRhNDEtOGMxZS0xMjM0NTY3ODkwYWI"
        ));
        assert!(!bot.same_person(""));
        assert!(!PersonId::new("x").same_person("y"));
        assert!(PersonId::new("x").same_person("x"));
    }

    #[test]
    fn rest_ids_match_the_fixtures() {
        // The ids of shared/fixtures/message-direct.json and the uuids they encode.
        assert_eq!(
            rest_id("MESSAGE", "c3d4e5f6-43bd-11e6-8ae9-dd5b3dfc565d"),
            "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvYzNkNGU1ZjYtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk"
        );
        assert_eq!(
            rest_id("ROOM", "d1e2f3a4-43f1-3b58-9147-f14bb0c4d154"),
            "Y2lzY29zcGFyazovL3VzL1JPT00vZDFlMmYzYTQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0"
        );
        assert_eq!(rest_id("PEOPLE", BOT_UUID), BOT_B64);
        assert_eq!(
            PersonId::new(rest_id("PEOPLE", BOT_UUID)).uuid().as_deref(),
            Some(BOT_UUID)
        );
    }

    #[test]
    fn serde_is_transparent() {
        let id: MessageId = serde_json::from_str("\"abc\"").unwrap_or_default();
        assert_eq!(id.as_str(), "abc");
        assert_eq!(id.to_string(), "abc");
        assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some("\"abc\""));
    }
}
