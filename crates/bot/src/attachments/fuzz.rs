//! Fuzz tests of the extractors (proptest; cargo-fuzz needs nightly): random bytes, and
//! valid PDF and DOCX files with bytes changed, cut short or spliced. Each input must end
//! in text within the character limit or an error, never a panic. Longer runs:
//! `PROPTEST_CASES=20000 cargo test -p webex-chatbot --lib attachments::fuzz` (see
//! docs/reliability.md for the runs made).

use proptest::prelude::*;

use super::extract::{self, Extracted, samples};

const MAX_CHARS: usize = 500;

fn within_limit(result: &Result<Extracted, extract::ExtractError>) -> bool {
    result
        .as_ref()
        .map_or(true, |e| e.text.chars().count() <= MAX_CHARS)
}

/// A valid file with some bytes overwritten and maybe cut short.
fn mutated(base: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = base.len();
    (
        proptest::collection::vec((0..len, any::<u8>()), 1..16),
        prop_oneof![Just(None), (0..len).prop_map(Some)],
    )
        .prop_map(move |(changes, cut)| {
            let mut bytes = base.clone();
            for (i, b) in changes {
                bytes[i] = b;
            }
            if let Some(cut) = cut {
                bytes.truncate(cut);
            }
            bytes
        })
}

fn pdf_base() -> Vec<u8> {
    samples::pdf("Fuzzing target\nSecond line (with parens)\nThird")
}

fn docx_base() -> Vec<u8> {
    samples::docx("First paragraph & more\nSecond <one>\nThird")
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        prop_assert!(extract::text(&bytes, MAX_CHARS).text.chars().count() <= MAX_CHARS);
        prop_assert!(within_limit(&extract::pdf(&bytes, MAX_CHARS)));
        prop_assert!(within_limit(&extract::docx(&bytes, MAX_CHARS)));
    }

    #[test]
    fn pdf_like_bytes_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let mut bytes = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n".to_vec();
        bytes.extend(tail);
        prop_assert!(within_limit(&extract::pdf(&bytes, MAX_CHARS)));
    }

    #[test]
    fn mutated_pdfs_never_panic(bytes in mutated(pdf_base())) {
        prop_assert!(within_limit(&extract::pdf(&bytes, MAX_CHARS)));
    }

    #[test]
    fn mutated_docx_zips_never_panic(bytes in mutated(docx_base())) {
        prop_assert!(within_limit(&extract::docx(&bytes, MAX_CHARS)));
    }

    /// The XML inside a valid zip, mutated: reaches the XML reader, not only the zip's CRC check.
    #[test]
    fn mutated_docx_xml_never_panics(xml in mutated(
        b"<?xml version=\"1.0\"?><w:document xmlns:w=\"x\"><w:body><w:p><w:r><w:t>Hello &amp; &#x263A; <![CDATA[raw]]></w:t><w:tab/><w:br/></w:r></w:p></w:body></w:document>".to_vec()
    )) {
        prop_assert!(within_limit(&extract::docx(&samples::docx_with_body(&xml), MAX_CHARS)));
    }
}
