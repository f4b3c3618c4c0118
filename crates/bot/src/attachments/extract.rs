//! Text out of a file's bytes: plain text (UTF-8, lossy), PDF (the text layer, lopdf) and
//! DOCX (`word/document.xml` of the zip, quick-xml). Every extractor bounds what it
//! reads and keeps (decompressed bytes, characters out); none trusts a size the file
//! declares. They may still be slow or panic on hostile input, which is why PDF and DOCX
//! run in a child process (`isolate.rs`).

use std::io::{BufReader, Cursor, Read};

/// The most a single PDF stream or the DOCX body may decompress to.
pub const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;
/// Zip entries looked at in a DOCX (a real one has a few dozen).
const MAX_ZIP_ENTRIES: usize = 10_000;
/// PDF pages read at most (text beyond the character limit is not read anyway).
const MAX_PDF_PAGES: usize = 5_000;

/// A file's text, cut to the character limit.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Extracted {
    pub text: String,
    /// The file held more text than the limit.
    pub cut: bool,
}

/// Why a file's text could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExtractError {
    #[error("it is not a readable {0} file")]
    Malformed(&'static str),
    #[error("it is password-protected")]
    Encrypted,
    #[error("it has no text layer (a scan or images only)")]
    NoText,
    #[error("it unpacks to more than {} MiB", MAX_DECOMPRESSED >> 20)]
    TooLarge,
}

/// Collects text up to `max_chars` characters.
struct Collector {
    text: String,
    chars: usize,
    max_chars: usize,
    cut: bool,
}

impl Collector {
    fn new(max_chars: usize) -> Self {
        Self {
            text: String::new(),
            chars: 0,
            max_chars,
            cut: false,
        }
    }

    fn full(&self) -> bool {
        self.cut
    }

    fn push(&mut self, s: &str) {
        if self.cut {
            return;
        }
        for c in s.chars() {
            if self.chars >= self.max_chars {
                self.cut = true;
                return;
            }
            // Control characters other than line breaks and tabs confuse the model and
            // the fence; drop them.
            if c.is_control() && !matches!(c, '\n' | '\t') {
                continue;
            }
            self.text.push(c);
            self.chars += 1;
        }
    }

    fn finish(self) -> Extracted {
        Extracted {
            text: self.text,
            cut: self.cut,
        }
    }
}

/// A text file: UTF-8 (invalid sequences replaced), a byte-order mark dropped, line
/// endings normalised.
pub fn text(bytes: &[u8], max_chars: usize) -> Extracted {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut out = Collector::new(max_chars);
    // Decoded piece by piece up to the limit: a 10 MiB log is never copied whole.
    let mut after_cr = false;
    let mut piece = String::new();
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            piece.clear();
            match c {
                '\n' if after_cr => {}
                '\r' => piece.push('\n'),
                c => piece.push(c),
            }
            after_cr = c == '\r';
            out.push(&piece);
            if out.full() {
                return out.finish();
            }
        }
        if !chunk.invalid().is_empty() {
            after_cr = false;
            out.push("\u{FFFD}");
            if out.full() {
                return out.finish();
            }
        }
    }
    out.finish()
}

/// Whether these bytes look like text rather than a binary file (no NUL in the start).
pub fn looks_like_text(bytes: &[u8]) -> bool {
    !bytes.iter().take(8192).any(|b| *b == 0)
}

/// The text layer of a PDF, page by page, until `max_chars`.
pub fn pdf(bytes: &[u8], max_chars: usize) -> Result<Extracted, ExtractError> {
    let options = lopdf::LoadOptions {
        max_decompressed_size: Some(MAX_DECOMPRESSED),
        ..lopdf::LoadOptions::default()
    };
    let doc = lopdf::Document::load_mem_with_options(bytes, options).map_err(|e| match e {
        lopdf::Error::Decryption(_) | lopdf::Error::InvalidPassword => ExtractError::Encrypted,
        _ => ExtractError::Malformed("PDF"),
    })?;
    if doc.is_encrypted() {
        return Err(ExtractError::Encrypted);
    }
    let mut out = Collector::new(max_chars);
    let mut any_page = false;
    for page in doc.get_pages().into_keys().take(MAX_PDF_PAGES) {
        if out.full() {
            break;
        }
        // A page that cannot be read is skipped; the others still count.
        if let Ok(page_text) = doc.extract_text_with_limit(&[page], MAX_DECOMPRESSED) {
            any_page = true;
            let page_text = page_text.trim();
            if !page_text.is_empty() {
                if !out.text.is_empty() {
                    out.push("\n\n");
                }
                out.push(page_text);
            }
        }
    }
    if !any_page {
        return Err(ExtractError::Malformed("PDF"));
    }
    if out.text.trim().is_empty() {
        return Err(ExtractError::NoText);
    }
    Ok(out.finish())
}

/// The text of a Word document: the paragraphs of `word/document.xml`, read through a
/// decompression bound (a zip bomb stops at [`MAX_DECOMPRESSED`]).
pub fn docx(bytes: &[u8], max_chars: usize) -> Result<Extracted, ExtractError> {
    use quick_xml::events::Event;

    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| ExtractError::Malformed("DOCX"))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(ExtractError::Malformed("DOCX"));
    }
    let entry = archive.by_name("word/document.xml").map_err(|e| match e {
        zip::result::ZipError::UnsupportedArchive(m) if m.contains("ncrypt") => {
            ExtractError::Encrypted
        }
        _ => ExtractError::Malformed("DOCX"),
    })?;
    if entry.encrypted() {
        return Err(ExtractError::Encrypted);
    }
    // One byte past the bound tells "exactly the bound" from "more".
    let limit = u64::try_from(MAX_DECOMPRESSED).unwrap_or(u64::MAX) + 1;
    let bounded = Bounded {
        inner: entry.take(limit),
        read: 0,
    };
    let mut reader = quick_xml::Reader::from_reader(BufReader::new(bounded));
    let mut out = Collector::new(max_chars);
    let mut buf = Vec::new();
    let mut in_text = false;
    loop {
        buf.clear();
        let event = match reader.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(quick_xml::Error::Io(e)) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                return Err(ExtractError::TooLarge);
            }
            Err(_) => return Err(ExtractError::Malformed("DOCX")),
        };
        match event {
            Event::Start(e) => match e.local_name().as_ref() {
                "t" => in_text = true,
                "tab" => out.push("\t"),
                "br" | "cr" => out.push("\n"),
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "tab" => out.push("\t"),
                "br" | "cr" => out.push("\n"),
                "p" => out.push("\n"),
                _ => {}
            },
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => out.push("\n"),
                _ => {}
            },
            Event::Text(t) if in_text => out.push(&t.xml10_content()),
            Event::CData(t) if in_text => out.push(&t.xml10_content()),
            Event::GeneralRef(r) if in_text => {
                if let Ok(Some(c)) = r.resolve_char_ref() {
                    out.push(c.encode_utf8(&mut [0; 4]));
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(&r) {
                    out.push(s);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        if out.full() {
            break;
        }
    }
    let mut extracted = out.finish();
    let trimmed = extracted.text.trim_end().len();
    extracted.text.truncate(trimmed);
    if extracted.text.trim().is_empty() {
        return Err(ExtractError::NoText);
    }
    Ok(extracted)
}

/// A reader that fails with `FileTooLarge` once more than [`MAX_DECOMPRESSED`] came
/// through it (its inner reader is limited to one byte more).
struct Bounded<R> {
    inner: R,
    read: usize,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n;
        if self.read > MAX_DECOMPRESSED {
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                "decompressed size over the bound",
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod samples {
    //! Small real files made in code, for the tests here and the fuzz tests.

    use std::io::Write;

    /// A one-page PDF whose text layer says `text` (Helvetica, one line per `\n`).
    pub fn pdf(text: &str) -> Vec<u8> {
        use lopdf::content::{Content, Operation};
        use lopdf::{Document, Object, Stream, dictionary};
        let mut doc = Document::with_version("1.5");
        let pages_id = doc.new_object_id();
        let font_id = doc.add_object(dictionary! {
            "Type" => "Font",
            "Subtype" => "Type1",
            "BaseFont" => "Helvetica",
        });
        let resources_id = doc.add_object(dictionary! {
            "Font" => dictionary! { "F1" => font_id },
        });
        let mut operations = vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 12.into()]),
            Operation::new("TL", vec![14.into()]),
            Operation::new("Td", vec![72.into(), 720.into()]),
        ];
        for line in text.lines() {
            operations.push(Operation::new("Tj", vec![Object::string_literal(line)]));
            operations.push(Operation::new("T*", vec![]));
        }
        operations.push(Operation::new("ET", vec![]));
        let content = Content { operations };
        let content_id = doc.add_object(Stream::new(
            dictionary! {},
            content.encode().unwrap_or_default(),
        ));
        let page_id = doc.add_object(dictionary! {
            "Type" => "Page",
            "Parent" => pages_id,
            "Contents" => content_id,
        });
        doc.objects.insert(
            pages_id,
            Object::Dictionary(dictionary! {
                "Type" => "Pages",
                "Kids" => vec![page_id.into()],
                "Count" => 1,
                "Resources" => resources_id,
                "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
            }),
        );
        let catalog_id = doc.add_object(dictionary! {
            "Type" => "Catalog",
            "Pages" => pages_id,
        });
        doc.trailer.set("Root", catalog_id);
        let mut out = Vec::new();
        doc.save_to(&mut out).unwrap_or_default();
        out
    }

    /// A DOCX whose body has one paragraph per line of `text`.
    pub fn docx(text: &str) -> Vec<u8> {
        let paragraphs: String = text
            .lines()
            .map(|l| {
                let escaped = l
                    .replace('&', "&amp;")
                    .replace('<', "&lt;")
                    .replace('>', "&gt;");
                format!("<w:p><w:r><w:t xml:space=\"preserve\">{escaped}</w:t></w:r></w:p>")
            })
            .collect();
        let document = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\
             <w:document xmlns:w=\"http://schemas.openxmlformats.org/wordprocessingml/2006/main\">\
             <w:body>{paragraphs}</w:body></w:document>"
        );
        docx_with_body(document.as_bytes())
    }

    /// A zip with the parts a DOCX has, `word/document.xml` being `body`.
    pub fn docx_with_body(body: &[u8]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        let parts: [(&str, &[u8]); 2] = [
            (
                "[Content_Types].xml",
                b"<?xml version=\"1.0\"?><Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">\
                  <Override PartName=\"/word/document.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml\"/></Types>",
            ),
            ("word/document.xml", body),
        ];
        for (name, data) in parts {
            if zip.start_file(name, options).is_ok() {
                let _ = zip.write_all(data);
            }
        }
        zip.finish().map(|c| c.into_inner()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_are_cut_at_the_character_limit() {
        assert_eq!(
            text(b"\xEF\xBB\xBFhello\r\nworld", 100),
            Extracted {
                text: "hello\nworld".into(),
                cut: false
            }
        );
        let cut = text("éééé".as_bytes(), 3);
        assert_eq!(cut.text, "ééé");
        assert!(cut.cut);
        assert_eq!(text(b"ab\xFFc\x00d", 10).text, "ab\u{FFFD}cd");
        assert_eq!(text(b"a\rb\r\n\r\nc", 10).text, "a\nb\n\nc");
        let exact = text(b"abc", 3);
        assert_eq!((exact.text.as_str(), exact.cut), ("abc", false));
        assert!(!looks_like_text(b"PK\x03\x04\x00"));
        assert!(looks_like_text(b"plain"));
    }

    #[test]
    fn pdf_text_layer() {
        let got = pdf(&samples::pdf("Quarterly report\nRevenue grew 12%"), 1000).unwrap();
        assert!(got.text.contains("Quarterly report"), "{got:?}");
        assert!(got.text.contains("Revenue grew 12%"), "{got:?}");
        assert!(!got.cut);
        let cut = pdf(&samples::pdf("abcdefghij"), 4).unwrap();
        assert_eq!(cut.text, "abcd");
        assert!(cut.cut);
        assert_eq!(
            pdf(b"%PDF-1.4 garbage", 100),
            Err(ExtractError::Malformed("PDF"))
        );
        assert_eq!(pdf(&samples::pdf(""), 100), Err(ExtractError::NoText));
    }

    #[test]
    fn docx_paragraphs() {
        let got = docx(&samples::docx("First <para> & more\nSecond"), 1000).unwrap();
        assert_eq!(got.text, "First <para> & more\nSecond");
        let cut = docx(&samples::docx("abcdef"), 3).unwrap();
        assert_eq!((cut.text.as_str(), cut.cut), ("abc", true));
        assert_eq!(
            docx(b"PK not a zip", 10),
            Err(ExtractError::Malformed("DOCX"))
        );
        assert_eq!(
            docx(
                &samples::docx_with_body(b"<w:document><w:body/></w:document>"),
                10
            ),
            Err(ExtractError::NoText)
        );
    }

    #[test]
    fn a_docx_zip_bomb_stops_at_the_bound() {
        // 80 MiB of one repeated tag compresses to well under a megabyte.
        let mut body = b"<w:document><w:body>".to_vec();
        body.resize(body.len() + 80 * 1024 * 1024, b' ');
        let bomb = samples::docx_with_body(&body);
        assert!(bomb.len() < 1024 * 1024, "{}", bomb.len());
        assert_eq!(docx(&bomb, 100), Err(ExtractError::TooLarge));
    }
}
