//! The attachments stage (DESIGN §10.4), after access and before the route: each file of
//! a message is downloaded (`webex::Client::download_file`), classified, and turned into
//! what the model gets: text files, PDF and DOCX as `**NAME**` and a fenced block, images
//! as `llm::Image`s, voice notes as their transcript. What cannot be read becomes a note
//! told to the person (a line before the answer) and to the model.
//!
//! Layout: `extract` (text out of bytes, bounded), `isolate` (PDF/DOCX in a child process
//! with time and memory limits), `transcribe` (speech to text); this file classifies and
//! composes the user turn.

pub(crate) mod extract;
#[cfg(test)]
mod fuzz;
mod isolate;
mod transcribe;

use std::time::Duration;

pub use isolate::{CHILD_ARG, Isolation, child_main};

use crate::config::Files;
use crate::strings;
use extract::Extracted;
use isolate::Format;

/// Files read from one message at most; the rest get a note.
pub const MAX_FILES: usize = 10;
/// One PDF or DOCX extraction, end to end (the child is killed after it).
pub const EXTRACT_TIMEOUT: Duration = Duration::from_secs(20);

/// What the stage needs besides the configuration.
#[derive(Clone, Debug)]
pub struct Setup {
    pub isolation: Isolation,
    /// One PDF or DOCX extraction, end to end.
    pub extract_timeout: Duration,
    /// One transcription, end to end.
    pub stt_timeout: Duration,
    /// For the transcription service.
    pub http: reqwest::Client,
}

/// The user turn a message with files makes.
#[derive(Debug, Default)]
pub(crate) struct Gathered {
    /// What the model is asked (file blocks, image and note lines, the question); also
    /// what the history keeps of this turn.
    pub question: String,
    /// Images for the model (not kept in the history: the question names them).
    pub images: Vec<llm::Image>,
    /// Lines told to the person before the answer (files that could not be read, cuts).
    pub notes: Vec<String>,
    /// Whether there is anything to ask the model; when not, the notes are the answer.
    pub ask_llm: bool,
}

impl Gathered {
    /// The lines to put before the answer, if any.
    pub fn notice(&self) -> Option<String> {
        (!self.notes.is_empty()).then(|| self.notes.join("\n"))
    }
}

/// What a file is, for what the bot does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Text,
    Pdf,
    Docx,
    /// With the media type its bytes show.
    Image(&'static str),
    Audio,
    Unsupported,
}

const DOCX_TYPE: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// Extensions read as text whatever type the upload declared (source code, configs, data).
const TEXT_EXTENSIONS: &[&str] = &[
    "txt",
    "text",
    "log",
    "md",
    "markdown",
    "rst",
    "adoc",
    "tex",
    "csv",
    "tsv",
    "json",
    "jsonl",
    "ndjson",
    "yaml",
    "yml",
    "toml",
    "ini",
    "cfg",
    "conf",
    "properties",
    "env",
    "xml",
    "html",
    "htm",
    "css",
    "scss",
    "sass",
    "less",
    "rs",
    "py",
    "pyi",
    "js",
    "mjs",
    "cjs",
    "ts",
    "jsx",
    "tsx",
    "vue",
    "svelte",
    "go",
    "java",
    "kt",
    "kts",
    "scala",
    "groovy",
    "gradle",
    "c",
    "h",
    "cc",
    "cpp",
    "cxx",
    "hpp",
    "hh",
    "cs",
    "fs",
    "vb",
    "swift",
    "m",
    "mm",
    "rb",
    "php",
    "pl",
    "pm",
    "lua",
    "r",
    "jl",
    "dart",
    "ex",
    "exs",
    "erl",
    "hrl",
    "hs",
    "ml",
    "mli",
    "clj",
    "cljs",
    "elm",
    "nim",
    "zig",
    "v",
    "sv",
    "vhd",
    "sh",
    "bash",
    "zsh",
    "fish",
    "ps1",
    "bat",
    "cmd",
    "sql",
    "graphql",
    "gql",
    "proto",
    "tf",
    "hcl",
    "nix",
    "dockerfile",
    "makefile",
    "mk",
    "cmake",
    "diff",
    "patch",
    "srt",
    "vtt",
];

fn extension(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if matches!(lower.as_str(), "dockerfile" | "makefile") {
        return Some(lower);
    }
    lower
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_owned())
        .filter(|e| !e.is_empty())
}

/// The image type its first bytes show (PNG, JPEG, GIF, WebP), whatever was declared.
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Classifies a downloaded file by its type, its name's extension and its first bytes.
pub(crate) fn classify(content_type: &str, name: &str, bytes: &[u8]) -> Kind {
    let ext = extension(name);
    let ext = ext.as_deref().unwrap_or("");
    if let Some(image) = image_type(bytes) {
        return Kind::Image(image);
    }
    if content_type == "application/pdf" || bytes.starts_with(b"%PDF-") {
        return Kind::Pdf;
    }
    if content_type == DOCX_TYPE || (ext == "docx" && bytes.starts_with(b"PK\x03\x04")) {
        return Kind::Docx;
    }
    if content_type.starts_with("audio/") {
        return Kind::Audio;
    }
    let textual_type = content_type.starts_with("text/")
        || content_type.ends_with("+json")
        || content_type.ends_with("+xml")
        || matches!(
            content_type,
            "application/json"
                | "application/x-ndjson"
                | "application/xml"
                | "application/yaml"
                | "application/x-yaml"
                | "application/toml"
                | "application/javascript"
                | "application/x-sh"
                | "application/sql"
                | "application/csv"
        );
    if (textual_type || TEXT_EXTENSIONS.contains(&ext)) && extract::looks_like_text(bytes) {
        return Kind::Text;
    }
    Kind::Unsupported
}

/// `**NAME**` on its own line and the text in a fence longer than any backtick run in it.
pub(crate) fn file_block(name: &str, language: &str, text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    let name = name.replace('*', "\\*");
    format!("**{name}**\n{fence}{language}\n{text}\n{fence}")
}

/// The fence's language tag: a source or data file's extension.
fn language_of(name: &str) -> String {
    extension(name)
        .filter(|e| {
            TEXT_EXTENSIONS.contains(&e.as_str())
                && !matches!(e.as_str(), "txt" | "text" | "log")
                && e.bytes().all(|b| b.is_ascii_alphanumeric())
        })
        .unwrap_or_default()
}

/// How a file is named in notes before its name is known (it could not be downloaded).
fn label(index: usize, count: usize) -> String {
    if count == 1 {
        "The file".to_owned()
    } else {
        format!("File {}", index + 1)
    }
}

/// What the model gets of each file, in order, before the question.
enum Piece {
    Block(String),
    Image(String),
    Voice { name: String, transcript: String },
}

/// Downloads and reads `files`; `typed` is the message's own text. `Err` is a Webex
/// failure worth retrying the whole event for (429, 5xx, unreachable).
pub(crate) async fn gather(
    webex: &webex::Client,
    files_config: &Files,
    setup: &Setup,
    files: &[String],
    typed: &str,
    vision: bool,
) -> Result<Gathered, webex::Error> {
    let mut pieces = Vec::new();
    let mut images = Vec::new();
    let mut notes = Vec::new();
    let mut model_notes = Vec::new();
    let count = files.len().min(MAX_FILES);
    if files.len() > MAX_FILES {
        let note = strings::too_many_files(MAX_FILES, files.len());
        model_notes.push(note.clone());
        notes.push(note);
    }
    for (index, url) in files.iter().take(MAX_FILES).enumerate() {
        let label = label(index, count);
        let file = match webex.download_file(url, files_config.max_bytes).await {
            Ok(webex::Download::File(file)) => file,
            Ok(other) => {
                let note = strings::file_not_read(&label, &other, files_config.max_bytes);
                tracing::info!(file = index, outcome = ?outcome_name(&other), "file not downloaded");
                model_notes.push(note.clone());
                notes.push(note);
                continue;
            }
            Err(e) if temporary(&e) => return Err(e),
            Err(e) => {
                tracing::warn!(file = index, error = %e, "cannot download a file");
                let note = strings::file_download_failed(&label);
                model_notes.push(note.clone());
                notes.push(note);
                continue;
            }
        };
        let name = file.name.clone();
        let kind = classify(&file.content_type, &name, &file.bytes);
        tracing::info!(file = index, kind = ?kind, bytes = file.bytes.len(), "file downloaded");
        let text = match kind {
            Kind::Text => Ok(extract::text(&file.bytes, files_config.max_chars)),
            Kind::Pdf | Kind::Docx => {
                let format = if kind == Kind::Pdf {
                    Format::Pdf
                } else {
                    Format::Docx
                };
                isolate::extract(
                    &setup.isolation,
                    format,
                    file.bytes,
                    files_config.max_chars,
                    setup.extract_timeout,
                )
                .await
                .map_err(|e| e.to_string())
            }
            Kind::Image(media_type) => {
                if vision {
                    images.push(llm::Image {
                        media_type: media_type.to_owned(),
                        data: file.bytes,
                    });
                    pieces.push(Piece::Image(name));
                } else {
                    notes.push(strings::cannot_see_images(&name));
                    model_notes.push(strings::image_not_shown(&name));
                }
                continue;
            }
            Kind::Audio => {
                match &files_config.stt {
                    None => {
                        notes.push(strings::cannot_hear(&name));
                        model_notes.push(strings::cannot_hear(&name));
                    }
                    Some(stt) => match transcribe::transcribe(
                        &setup.http,
                        stt,
                        setup.stt_timeout,
                        &name,
                        &file.content_type,
                        file.bytes,
                    )
                    .await
                    {
                        Ok(transcript) if !transcript.is_empty() => {
                            pieces.push(Piece::Voice { name, transcript });
                        }
                        Ok(_) => {
                            let note = strings::nothing_heard(&name);
                            model_notes.push(note.clone());
                            notes.push(note);
                        }
                        Err(e) => {
                            tracing::warn!(file = index, error = %e, "transcription failed");
                            let note = strings::transcription_failed(&name);
                            model_notes.push(note.clone());
                            notes.push(note);
                        }
                    },
                }
                continue;
            }
            Kind::Unsupported => {
                let note = strings::unsupported_file(
                    &name,
                    &file.content_type,
                    files_config.stt.is_some(),
                );
                model_notes.push(note.clone());
                notes.push(note);
                continue;
            }
        };
        match text {
            Ok(Extracted { text, cut }) => {
                pieces.push(Piece::Block(file_block(&name, &language_of(&name), &text)));
                if cut {
                    let note = strings::file_cut(&name, files_config.max_chars);
                    pieces.push(Piece::Block(note.clone()));
                    notes.push(note);
                }
            }
            Err(reason) => {
                tracing::info!(file = index, reason = %reason, "no text read from a file");
                let note = strings::file_unreadable(&name, &reason);
                model_notes.push(note.clone());
                notes.push(note);
            }
        }
    }
    Ok(compose(typed, pieces, images, notes, model_notes))
}

fn compose(
    typed: &str,
    pieces: Vec<Piece>,
    images: Vec<llm::Image>,
    notes: Vec<String>,
    model_notes: Vec<String>,
) -> Gathered {
    let typed = typed.trim();
    let files_read = pieces
        .iter()
        .filter(|p| matches!(p, Piece::Block(_)))
        .count();
    let mut parts = Vec::new();
    let mut transcripts = Vec::new();
    for piece in pieces {
        match piece {
            Piece::Block(block) => parts.push(block),
            Piece::Image(name) => parts.push(strings::image_line(&name)),
            Piece::Voice { name, transcript } => transcripts.push((name, transcript)),
        }
    }
    parts.extend(model_notes);
    let question = if !typed.is_empty() {
        let mut q = typed.to_owned();
        for (name, transcript) in &transcripts {
            q.push_str("\n\n");
            q.push_str(&strings::voice_note(name, transcript));
        }
        Some(q)
    } else if !transcripts.is_empty() {
        Some(
            transcripts
                .iter()
                .map(|(_, t)| t.as_str())
                .collect::<Vec<_>>()
                .join("\n\n"),
        )
    } else if files_read > 0 {
        Some(strings::SUMMARIZE_FILE.to_owned())
    } else if !images.is_empty() {
        Some(strings::DESCRIBE_IMAGE.to_owned())
    } else {
        None
    };
    let ask_llm = question.is_some();
    if let Some(q) = question {
        parts.push(q);
    }
    Gathered {
        question: parts.join("\n\n"),
        images,
        notes,
        ask_llm,
    }
}

fn outcome_name(d: &webex::Download) -> &'static str {
    match d {
        webex::Download::File(_) => "file",
        webex::Download::Gone => "gone",
        webex::Download::Unscannable => "unscannable",
        webex::Download::StillScanning => "still_scanning",
        webex::Download::TooLarge { .. } => "too_large",
    }
}

/// Worth retrying the event for: Webex busy or unreachable.
fn temporary(e: &webex::Error) -> bool {
    match e {
        webex::Error::RateLimited { .. } | webex::Error::Transport(_) => true,
        webex::Error::Http { status, .. } => *status >= 500,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_table() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
        let cases: &[(&str, &str, &[u8], Kind)] = &[
            ("image/png", "a.png", png, Kind::Image("image/png")),
            (
                "application/octet-stream",
                "shot",
                png,
                Kind::Image("image/png"),
            ),
            ("image/png", "fake.png", b"not an image", Kind::Unsupported),
            (
                "image/jpeg",
                "p.jpg",
                b"\xFF\xD8\xFF\xE0",
                Kind::Image("image/jpeg"),
            ),
            (
                "image/gif",
                "g.gif",
                b"GIF89a....",
                Kind::Image("image/gif"),
            ),
            (
                "image/webp",
                "w.webp",
                b"RIFF\0\0\0\0WEBPVP8 ",
                Kind::Image("image/webp"),
            ),
            ("application/pdf", "x.pdf", b"%PDF-1.7", Kind::Pdf),
            ("application/octet-stream", "x.bin", b"%PDF-1.4", Kind::Pdf),
            (DOCX_TYPE, "d.docx", b"PK\x03\x04", Kind::Docx),
            (
                "application/octet-stream",
                "d.docx",
                b"PK\x03\x04",
                Kind::Docx,
            ),
            ("audio/ogg", "voice.ogg", b"OggS", Kind::Audio),
            ("text/plain", "a.txt", b"hello", Kind::Text),
            ("text/csv", "a.csv", b"a,b\n1,2", Kind::Text),
            ("application/json", "a.json", b"{}", Kind::Text),
            ("application/yaml", "a.yaml", b"a: 1", Kind::Text),
            (
                "application/octet-stream",
                "main.rs",
                b"fn main() {}",
                Kind::Text,
            ),
            (
                "application/octet-stream",
                "Dockerfile",
                b"FROM debian",
                Kind::Text,
            ),
            (
                "application/octet-stream",
                "main.rs",
                b"\0\x01binary",
                Kind::Unsupported,
            ),
            ("application/zip", "a.zip", b"PK\x03\x04", Kind::Unsupported),
            ("video/mp4", "v.mp4", b"\0\0\0\x18ftyp", Kind::Unsupported),
            (
                "application/vnd.ms-excel",
                "a.xls",
                b"\xD0\xCF\x11\xE0",
                Kind::Unsupported,
            ),
        ];
        for (ct, name, bytes, want) in cases {
            assert_eq!(classify(ct, name, bytes), *want, "{ct} {name}");
        }
    }

    #[test]
    fn blocks_fence_around_backticks() {
        assert_eq!(
            file_block("notes.md", "md", "hi"),
            "**notes.md**\n```md\nhi\n```"
        );
        let block = file_block("a*b.txt", "", "x ```` y");
        assert_eq!(block, "**a\\*b.txt**\n`````\nx ```` y\n`````");
        assert_eq!(language_of("main.rs"), "rs");
        assert_eq!(language_of("server.log"), "");
        assert_eq!(language_of("noext"), "");
    }

    #[test]
    fn the_question_when_nothing_was_typed() {
        let block = || vec![Piece::Block(file_block("a.txt", "", "text"))];
        let g = compose("", block(), vec![], vec![], vec![]);
        assert!(g.ask_llm);
        assert!(
            g.question.ends_with(strings::SUMMARIZE_FILE),
            "{}",
            g.question
        );
        assert!(g.question.starts_with("**a.txt**\n```\ntext\n```"));

        let image = llm::Image {
            media_type: "image/png".into(),
            data: bytes::Bytes::from_static(b"x"),
        };
        let g = compose(
            "",
            vec![Piece::Image("s.png".into())],
            vec![image],
            vec![],
            vec![],
        );
        assert_eq!(
            g.question,
            format!(
                "{}\n\n{}",
                strings::image_line("s.png"),
                strings::DESCRIBE_IMAGE
            )
        );

        let voice = || {
            vec![Piece::Voice {
                name: "v.ogg".into(),
                transcript: "what is the time".into(),
            }]
        };
        assert_eq!(
            compose("", voice(), vec![], vec![], vec![]).question,
            "what is the time"
        );
        let typed = compose("and this?", voice(), vec![], vec![], vec![]).question;
        assert!(typed.starts_with("and this?\n\n"), "{typed}");
        assert!(typed.contains("what is the time"), "{typed}");

        let g = compose("", vec![], vec![], vec!["gone".into()], vec!["gone".into()]);
        assert!(!g.ask_llm);
        assert_eq!(g.notice().as_deref(), Some("gone"));
    }
}
