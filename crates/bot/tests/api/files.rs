//! Files, images and voice notes (DESIGN §10.4) end to end: the fake Webex serves
//! `/contents/{id}` as Webex does (token, `Content-Disposition`, 423/404/410/428, large
//! files with and without `Content-Length`); real small PDF, DOCX and PNG files are made
//! here; a fake transcription service checks its multipart form.

use std::io::Write as _;

use base64::Engine as _;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::*;

// ---- real small files --------------------------------------------------------------

/// A one-page PDF written by hand: catalog, pages, page, Helvetica, one content stream
/// with a line per `lines` entry, and a correct cross-reference table.
fn pdf(lines: &[&str]) -> Vec<u8> {
    let mut content = String::from("BT /F1 12 Tf 14 TL 72 720 Td\n");
    for line in lines {
        let escaped = line
            .replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)");
        content.push_str(&format!("({escaped}) Tj T*\n"));
    }
    content.push_str("ET\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// A Word document: the zip parts Word writes at least, one paragraph per line.
fn docx(lines: &[&str]) -> Vec<u8> {
    let body: String = lines
        .iter()
        .map(|l| format!("<w:p><w:r><w:t>{l}</w:t></w:r></w:p>"))
        .collect();
    let document = format!(
        r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#
    );
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let parts = [
        (
            "[Content_Types].xml",
            r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.to_owned(),
        ),
        (
            "_rels/.rels",
            r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#.to_owned(),
        ),
        ("word/document.xml", document),
    ];
    for (name, data) in parts {
        zip.start_file(name, options).unwrap();
        zip.write_all(data.as_bytes()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A real 2×1 RGB PNG (one red, one blue pixel), its image data in a stored zlib block.
fn png() -> Vec<u8> {
    let raw = [0u8, 255, 0, 0, 0, 0, 255]; // filter byte, then two RGB pixels
    let mut zlib = vec![0x78, 0x01, 0x01];
    let len = u16::try_from(raw.len()).unwrap();
    zlib.extend_from_slice(&len.to_le_bytes());
    zlib.extend_from_slice(&(!len).to_le_bytes());
    zlib.extend_from_slice(&raw);
    let (mut a, mut b) = (1u32, 0u32);
    for byte in raw {
        a = (a + u32::from(byte)) % 65521;
        b = (b + a) % 65521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut c = u32::try_from(data.len()).unwrap().to_be_bytes().to_vec();
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        c.extend_from_slice(&body);
        c.extend_from_slice(&crc32(&body).to_be_bytes());
        c
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&2u32.to_be_bytes());
    ihdr.extend_from_slice(&1u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(chunk(b"IHDR", &ihdr));
    out.extend(chunk(b"IDAT", &zlib));
    out.extend(chunk(b"IEND", b""));
    out
}

// ---- helpers -----------------------------------------------------------------------

/// The last user message of the `n`-th Ollama request.
async fn last_user_message(app: &TestApp, n: usize) -> Value {
    let requests = app.llm_requests().await;
    let messages = requests[n]["messages"].as_array().unwrap().clone();
    messages
        .into_iter()
        .rev()
        .find(|m| m["role"] == "user")
        .unwrap()
}

async fn approved_app(spawn: Spawn) -> TestApp {
    let app = TestApp::spawn(spawn).await;
    app.approve(ALICE).await;
    app
}

fn reply_text(reply: &Value) -> String {
    reply["markdown"].as_str().unwrap_or_default().to_owned()
}

// ---- text, PDF, DOCX ---------------------------------------------------------------

#[tokio::test]
async fn text_pdf_and_docx_reach_the_model_as_fenced_blocks_and_stay_in_history() {
    let app = approved_app(Spawn::default()).await;
    let files = vec![
        mount_file(
            &app.webex,
            "LOG",
            FileServe::file("server.log", "text/plain", "ERROR disk full on /var"),
        )
        .await,
        mount_file(
            &app.webex,
            "PDF",
            FileServe::file(
                "spec.pdf",
                "application/pdf",
                pdf(&["Widget spec", "Max load 42 kg"]),
            ),
        )
        .await,
        // A generic type: the name's extension says what it is.
        mount_file(
            &app.webex,
            "DOCX",
            FileServe::file(
                "minutes.docx",
                "application/octet-stream",
                docx(&["Decision: ship on Friday", "Owner: Bob"]),
            ),
        )
        .await,
    ];
    let message = direct_message_with_files("M-F1", "R-F", ALICE, "What do these say?", &files);
    app.deliver(&message).await;
    assert_eq!(app.wait_handled("M-F1").await, "answered");
    let asked = last_user_message(&app, 0).await;
    let content = asked["content"].as_str().unwrap();
    assert!(
        content.contains("**server.log**\n```\nERROR disk full on /var\n```"),
        "{content}"
    );
    assert!(content.contains("**spec.pdf**\n```\n"), "{content}");
    assert!(content.contains("Max load 42 kg"), "{content}");
    assert!(
        content.contains("**minutes.docx**\n```\nDecision: ship on Friday\nOwner: Bob\n```"),
        "{content}"
    );
    assert!(content.ends_with("What do these say?"), "{content}");
    for id in ["LOG", "PDF", "DOCX"] {
        assert_eq!(file_requests(&app.webex, id).await, 1, "{id}");
    }

    // A follow-up question sees the files' text in the earlier user turn.
    app.deliver(&direct_message("M-F2", "R-F", ALICE, "Who owns it?"))
        .await;
    app.wait_handled("M-F2").await;
    let requests = app.llm_requests().await;
    let history = requests[1]["messages"].as_array().unwrap();
    let earlier = history
        .iter()
        .find(|m| m["role"] == "user" && m["content"].as_str().unwrap().contains("Owner: Bob"));
    assert!(earlier.is_some(), "{history:?}");
    app.stop().await;
}

#[tokio::test]
async fn a_file_without_text_is_summarized_and_long_text_is_cut_with_a_note() {
    let app = approved_app(Spawn::default().env("FILE_MAX_CHARS", "10")).await;
    let url = mount_file(
        &app.webex,
        "LONG",
        FileServe::file("notes.md", "text/markdown", "0123456789abcdef"),
    )
    .await;
    app.deliver(&direct_message_with_files("M-L", "R-L", ALICE, "", &[url]))
        .await;
    assert_eq!(app.wait_handled("M-L").await, "answered");
    let content = last_user_message(&app, 0).await["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(content.contains("```md\n0123456789\n```"), "{content}");
    assert!(!content.contains("abcdef"), "{content}");
    assert!(content.contains("first 10 characters"), "{content}");
    assert!(content.ends_with("Summarize this file."), "{content}");
    let reply = reply_text(&app.wait_replies(1).await[0]);
    assert!(reply.starts_with("*notes.md is long"), "{reply}");
    assert!(reply.contains("Echo:"), "{reply}");
    app.stop().await;
}

// ---- what Webex says about files ---------------------------------------------------

#[tokio::test]
async fn files_being_scanned_are_fetched_again_after_retry_after() {
    let app = approved_app(Spawn::default()).await;
    let url = mount_file(
        &app.webex,
        "SCAN",
        FileServe::Scanning {
            times: 1,
            retry_after: Some("0"),
            then: Box::new(FileServe::Scanning {
                times: 1,
                retry_after: None,
                then: Box::new(FileServe::file("a.txt", "text/plain", "scanned and clean")),
            }),
        },
    )
    .await;
    app.deliver(&direct_message_with_files("M-S", "R-S", ALICE, "", &[url]))
        .await;
    assert_eq!(app.wait_handled("M-S").await, "answered");
    assert_eq!(file_requests(&app.webex, "SCAN").await, 3);
    let content = last_user_message(&app, 0).await["content"].to_string();
    assert!(content.contains("scanned and clean"), "{content}");

    // Still being scanned after 5 tries: a note, and no more tries.
    let url = mount_file(
        &app.webex,
        "SCAN-FOREVER",
        FileServe::Scanning {
            times: 100,
            retry_after: Some("0"),
            then: Box::new(FileServe::Status(410)),
        },
    )
    .await;
    app.deliver(&direct_message_with_files(
        "M-S2",
        "R-S2",
        ALICE,
        "",
        &[url],
    ))
    .await;
    assert_eq!(app.wait_handled("M-S2").await, "files_unread");
    assert_eq!(file_requests(&app.webex, "SCAN-FOREVER").await, 5);
    let replies = app.wait_replies(2).await;
    let note = reply_text(&replies[1]);
    assert!(note.contains("still being scanned"), "{note}");
    app.stop().await;
}

#[tokio::test]
async fn gone_unscannable_and_oversize_files_are_told_to_the_person_and_the_model() {
    let app = approved_app(Spawn::default().env("MAX_FILE_BYTES", "1000")).await;
    let files = vec![
        mount_file(&app.webex, "GONE", FileServe::Status(410)).await,
        mount_file(&app.webex, "MISSING", FileServe::Status(404)).await,
        mount_file(&app.webex, "UNSCANNABLE", FileServe::Status(428)).await,
        mount_file(
            &app.webex,
            "BIG",
            FileServe::file("big.txt", "text/plain", vec![b'x'; 1001]),
        )
        .await,
        mount_file(
            &app.webex,
            "BIG-CHUNKED",
            FileServe::Chunked {
                name: "big2.txt".into(),
                content_type: "text/plain".into(),
                bytes: vec![b'y'; 50_000],
            },
        )
        .await,
        mount_file(
            &app.webex,
            "OK",
            FileServe::file("fits.txt", "text/plain", vec![b'z'; 1000]),
        )
        .await,
    ];
    app.deliver(&direct_message_with_files(
        "M-G",
        "R-G",
        ALICE,
        "Check these",
        &files,
    ))
    .await;
    assert_eq!(app.wait_handled("M-G").await, "answered");
    let reply = reply_text(&app.wait_replies(1).await[0]);
    let content = last_user_message(&app, 0).await["content"]
        .as_str()
        .unwrap()
        .to_owned();
    for (label, words) in [
        ("File 1", "is gone"),
        ("File 2", "is gone"),
        ("File 3", "could not be scanned"),
        ("File 4", "is larger than 1000 bytes"),
        ("File 5", "is larger than 1000 bytes"),
    ] {
        let line = format!("*{label} {words}");
        assert!(reply.contains(&line), "reply lacks {line:?}: {reply}");
        assert!(
            content.contains(&line),
            "model not told {line:?}: {content}"
        );
    }
    assert!(
        content.contains(&"z".repeat(1000)),
        "the file that fits is read"
    );
    assert!(!content.contains("yyyy"), "nothing of the oversize file");
    // The notes come first, then the model's answer.
    assert!(reply.starts_with("*File 1 is gone"), "{reply}");
    assert!(reply.contains("\n\nEcho: "), "{reply}");
    app.stop().await;
}

#[tokio::test]
async fn only_unreadable_or_unsupported_files_get_an_answer_without_the_llm() {
    let app = approved_app(Spawn::default()).await;
    let gone = mount_file(&app.webex, "G1", FileServe::Status(410)).await;
    app.deliver(&direct_message_with_files(
        "M-U1",
        "R-U",
        ALICE,
        "",
        &[gone],
    ))
    .await;
    assert_eq!(app.wait_handled("M-U1").await, "files_unread");

    let zip = mount_file(
        &app.webex,
        "ZIP",
        FileServe::file("archive.zip", "application/zip", b"PK\x03\x04rest".to_vec()),
    )
    .await;
    app.deliver(&direct_message_with_files("M-U2", "R-U", ALICE, "", &[zip]))
        .await;
    assert_eq!(app.wait_handled("M-U2").await, "files_unread");
    let replies = app.wait_replies(2).await;
    let unsupported = reply_text(&replies[1]);
    assert!(
        unsupported.contains("cannot read archive.zip (application/zip)"),
        "{unsupported}"
    );
    for kind in [
        "PDF",
        "Word (.docx)",
        "PNG, JPEG, GIF, WebP",
        "JSON, CSV, YAML",
    ] {
        assert!(unsupported.contains(kind), "{unsupported}");
    }
    assert!(app.llm_requests().await.is_empty(), "no LLM call");
    app.stop().await;
}

#[tokio::test]
async fn unapproved_senders_files_are_never_downloaded() {
    let app = TestApp::spawn(Spawn::default()).await;
    let url = mount_file(
        &app.webex,
        "SECRET",
        FileServe::file("a.txt", "text/plain", "x"),
    )
    .await;
    app.deliver(&direct_message_with_files(
        "M-X",
        "R-X",
        "stranger@example.net",
        "read this",
        &[url],
    ))
    .await;
    assert_eq!(app.wait_handled("M-X").await, "ignored");
    assert_eq!(file_requests(&app.webex, "SECRET").await, 0);
    app.stop().await;
}

#[tokio::test]
async fn the_token_is_never_sent_to_a_file_url_on_another_host() {
    let app = approved_app(Spawn::default()).await;
    let elsewhere = MockServer::start().await;
    let url = format!("{}/contents/EVIL", elsewhere.uri());
    app.deliver(&direct_message_with_files(
        "M-E",
        "R-E",
        ALICE,
        "hi",
        &[url],
    ))
    .await;
    assert_eq!(app.wait_handled("M-E").await, "answered");
    assert!(elsewhere.received_requests().await.unwrap().is_empty());
    let reply = reply_text(&app.wait_replies(1).await[0]);
    assert!(
        reply.starts_with("*The file could not be downloaded"),
        "{reply}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_broken_pdf_fails_that_file_with_a_note_and_the_rest_is_answered() {
    let app = approved_app(Spawn::default()).await;
    let mut truncated = pdf(&["half a document"]);
    truncated.truncate(40);
    let files = vec![
        mount_file(
            &app.webex,
            "BROKEN",
            FileServe::file("broken.pdf", "application/pdf", truncated),
        )
        .await,
        mount_file(
            &app.webex,
            "BOMB",
            FileServe::file("bomb.docx", DOCX, zip_bomb()),
        )
        .await,
        mount_file(
            &app.webex,
            "FINE",
            FileServe::file("fine.pdf", "application/pdf", pdf(&["all good here"])),
        )
        .await,
    ];
    app.deliver(&direct_message_with_files("M-B", "R-B", ALICE, "", &files))
        .await;
    assert_eq!(app.wait_handled("M-B").await, "answered");
    let reply = reply_text(&app.wait_replies(1).await[0]);
    assert!(
        reply.contains("*I could not read broken.pdf: it is not a readable PDF file.*"),
        "{reply}"
    );
    assert!(
        reply.contains("*I could not read bomb.docx: it unpacks to more than 64 MiB.*"),
        "{reply}"
    );
    let content = last_user_message(&app, 0).await["content"].to_string();
    assert!(content.contains("all good here"), "{content}");
    // The process is still well: the next question is answered.
    app.deliver(&direct_message("M-B2", "R-B", ALICE, "still there?"))
        .await;
    assert_eq!(app.wait_handled("M-B2").await, "answered");
    app.stop().await;
}

const DOCX: &str = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";

/// A DOCX whose `word/document.xml` inflates to 100 MiB from well under a megabyte.
fn zip_bomb() -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    zip.start_file("word/document.xml", options).unwrap();
    zip.write_all(b"<w:document><w:body><w:p><w:r><w:t>")
        .unwrap();
    let block = vec![b'A'; 1 << 20];
    for _ in 0..100 {
        zip.write_all(&block).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

// ---- images ------------------------------------------------------------------------

#[tokio::test]
async fn an_image_goes_to_ollama_as_base64_and_history_keeps_a_note() {
    let app = approved_app(Spawn::default()).await;
    let image = png();
    let url = mount_file(
        &app.webex,
        "IMG",
        FileServe::file("screenshot.png", "image/png", image.clone()),
    )
    .await;
    app.deliver(&direct_message_with_files("M-I", "R-I", ALICE, "", &[url]))
        .await;
    assert_eq!(app.wait_handled("M-I").await, "answered");
    let asked = last_user_message(&app, 0).await;
    assert_eq!(
        asked["content"],
        "[image: screenshot.png]\n\nDescribe this image."
    );
    assert_eq!(
        asked["images"],
        json!([base64::engine::general_purpose::STANDARD.encode(&image)])
    );

    app.deliver(&direct_message("M-I2", "R-I", ALICE, "and the colours?"))
        .await;
    app.wait_handled("M-I2").await;
    let requests = app.llm_requests().await;
    let history = requests[1]["messages"].as_array().unwrap();
    let earlier = history
        .iter()
        .find(|m| m["content"] == "[image: screenshot.png]\n\nDescribe this image.")
        .expect("the image's note is in the history");
    assert!(
        earlier.get("images").is_none(),
        "history keeps no image bytes"
    );
    app.stop().await;
}

/// Fake Anthropic Messages API that takes images as the API documents them: an `image`
/// block `{"type": "image", "source": {"type": "base64", "media_type", "data"}}`.
struct AnthropicWithImages;

impl Respond for AnthropicWithImages {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let refuse = |why: &str| {
            ResponseTemplate::new(400).set_body_json(json!({
                "type": "error", "error": {"type": "invalid_request_error", "message": why}
            }))
        };
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let Some(messages) = body["messages"].as_array() else {
            return refuse("messages required");
        };
        if !body["max_tokens"].is_u64() || body["stream"] == json!(true) {
            return refuse("max_tokens required; this fake answers whole");
        }
        for m in messages {
            let Some(blocks) = m["content"].as_array() else {
                continue;
            };
            for b in blocks {
                if b["type"] == "image" {
                    let media = b["source"]["media_type"].as_str().unwrap_or_default();
                    let data = b["source"]["data"].as_str().unwrap_or_default();
                    if b["source"]["type"] != "base64"
                        || !["image/png", "image/jpeg", "image/gif", "image/webp"].contains(&media)
                        || base64::engine::general_purpose::STANDARD
                            .decode(data)
                            .is_err()
                    {
                        return refuse("bad image block");
                    }
                }
            }
        }
        ResponseTemplate::new(200).set_body_json(json!({
            "id": "msg_01", "type": "message", "role": "assistant", "model": body["model"],
            "content": [{"type": "text", "text": "A red and a blue pixel."}],
            "stop_reason": "end_turn", "usage": {"input_tokens": 10, "output_tokens": 3}
        }))
    }
}

#[tokio::test]
async fn an_image_goes_to_anthropic_as_an_image_block() {
    let anthropic = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", "anthropic-key-SECRET"))
        .respond_with(AnthropicWithImages)
        .expect(1)
        .mount(&anthropic)
        .await;
    let app = approved_app(
        Spawn::default()
            .env("LLM_PROVIDER", "anthropic")
            .env("LLM_API_KEY", "anthropic-key-SECRET")
            .env("LLM_BASE_URL", &anthropic.uri())
            .env("REPLY_STREAMING", "false"),
    )
    .await;
    let image = png();
    let url = mount_file(
        &app.webex,
        "IMG",
        FileServe::file("pixels", "application/octet-stream", image.clone()),
    )
    .await;
    app.deliver(&direct_message_with_files(
        "M-A",
        "R-A",
        ALICE,
        "What colours?",
        &[url],
    ))
    .await;
    assert_eq!(app.wait_handled("M-A").await, "answered");
    assert_eq!(
        reply_text(&app.wait_replies(1).await[0]),
        "A red and a blue pixel."
    );
    let sent: Vec<Value> = requests_to(&anthropic, "POST", "/v1/messages").await;
    let blocks = sent[0]["messages"].as_array().unwrap().last().unwrap()["content"].clone();
    let image_block = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "image")
        .expect("an image block");
    assert_eq!(image_block["source"]["media_type"], "image/png");
    assert_eq!(
        image_block["source"]["data"],
        base64::engine::general_purpose::STANDARD.encode(&image)
    );
    app.stop().await;
}

#[tokio::test]
async fn without_vision_the_bot_says_the_model_cannot_see_images() {
    let app = approved_app(Spawn::default().env("LLM_VISION", "false")).await;
    let url = mount_file(
        &app.webex,
        "IMG",
        FileServe::file("cat.png", "image/png", png()),
    )
    .await;
    app.deliver(&direct_message_with_files("M-V", "R-V", ALICE, "", &[url]))
        .await;
    assert_eq!(app.wait_handled("M-V").await, "files_unread");
    let reply = reply_text(&app.wait_replies(1).await[0]);
    assert!(
        reply.contains("This model cannot see images, so I did not look at cat.png"),
        "{reply}"
    );
    assert!(app.llm_requests().await.is_empty());
    app.stop().await;

    // A personality with `vision = false` says the same, whatever LLM_VISION says.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("blind.toml"),
        "description = \"Text only\"\nsystem_prompt = \"You read text.\"\nvision = false\n",
    )
    .unwrap();
    let app = approved_app(
        Spawn::default()
            .env("PERSONALITIES_DIR", dir.path().to_str().unwrap())
            .env("DEFAULT_PERSONALITY", "blind"),
    )
    .await;
    let url = mount_file(
        &app.webex,
        "IMG",
        FileServe::file("cat.png", "image/png", png()),
    )
    .await;
    app.deliver(&direct_message_with_files(
        "M-V2",
        "R-V2",
        ALICE,
        "what is this?",
        &[url],
    ))
    .await;
    assert_eq!(app.wait_handled("M-V2").await, "answered");
    let reply = reply_text(&app.wait_replies(1).await[0]);
    assert!(
        reply.starts_with("*This model cannot see images"),
        "{reply}"
    );
    let asked = last_user_message(&app, 0).await;
    assert!(asked.get("images").is_none());
    assert!(
        asked["content"]
            .as_str()
            .unwrap()
            .contains("you cannot see images"),
        "{asked}"
    );
    app.stop().await;
}

// ---- voice notes -------------------------------------------------------------------

/// Fake `POST /v1/audio/transcriptions` (OpenAI's form): multipart with a `file` part
/// (file name and bytes) and a `model` field, the key as a bearer token.
struct Transcriptions {
    audio: Vec<u8>,
}

/// One part of a multipart/form-data body: field name, file name, bytes.
type Part = (String, Option<String>, Vec<u8>);

/// The parts of a multipart/form-data body.
fn multipart_parts(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let boundary = content_type
        .strip_prefix("multipart/form-data")?
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))?
        .trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut rest = text;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let start = find(rest, delimiter.as_bytes())?;
    rest = &rest[start + delimiter.len()..];
    while !rest.starts_with(b"--") {
        rest = rest.strip_prefix(b"\r\n")?;
        let head_end = find(rest, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        rest = &rest[head_end + 4..];
        let end = find(rest, format!("\r\n{delimiter}").as_bytes())?;
        let data = rest[..end].to_vec();
        rest = &rest[end + 2 + delimiter.len()..];
        let disposition = head.lines().find(|l| {
            l.to_ascii_lowercase()
                .starts_with("content-disposition: form-data")
        })?;
        let field = |key: &str| {
            disposition
                .split(';')
                .find_map(|p| p.trim().strip_prefix(&format!("{key}=\"")))
                .map(|v| v.trim_end_matches('"').to_owned())
        };
        parts.push((field("name")?, field("filename"), data));
    }
    Some(parts)
}

impl Respond for Transcriptions {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let content_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(parts) = multipart_parts(content_type, &request.body) else {
            return ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": "expected multipart/form-data"}}));
        };
        let file = parts.iter().find(|p| p.0 == "file");
        let model = parts.iter().find(|p| p.0 == "model");
        match (file, model) {
            (Some((_, Some(name), data)), Some((_, None, model)))
                if !name.is_empty() && *data == self.audio && model == b"whisper-1" =>
            {
                ResponseTemplate::new(200)
                    .set_body_json(json!({"text": " What is the capital of France? "}))
            }
            _ => ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": "file and model are required"}})),
        }
    }
}

#[tokio::test]
async fn voice_notes_are_transcribed_and_the_transcript_is_the_question() {
    let stt = MockServer::start().await;
    let audio = b"OggS\0\x02fake-opus-voice-note".to_vec();
    Mock::given(method("POST"))
        .and(path("/v1/audio/transcriptions"))
        .and(header("authorization", "Bearer stt-key-SECRET"))
        .respond_with(Transcriptions {
            audio: audio.clone(),
        })
        .expect(1)
        .mount(&stt)
        .await;
    let app = approved_app(
        Spawn::default()
            .env("STT_BASE_URL", &format!("{}/v1", stt.uri()))
            .env("STT_API_KEY", "stt-key-SECRET"),
    )
    .await;
    let url = mount_file(
        &app.webex,
        "VOICE",
        FileServe::file("Voice note.ogg", "audio/ogg", audio),
    )
    .await;
    app.deliver(&direct_message_with_files("M-A1", "R-A", ALICE, "", &[url]))
        .await;
    assert_eq!(app.wait_handled("M-A1").await, "answered");
    assert_eq!(
        last_user_message(&app, 0).await["content"],
        "What is the capital of France?"
    );
    app.stop().await;
}

#[tokio::test]
async fn without_a_transcription_service_voice_notes_get_a_short_answer() {
    let app = approved_app(Spawn::default()).await;
    let url = mount_file(
        &app.webex,
        "VOICE",
        FileServe::file("note.m4a", "audio/mp4", b"\0\0\0\x20ftypM4A ".to_vec()),
    )
    .await;
    app.deliver(&direct_message_with_files("M-A2", "R-A", ALICE, "", &[url]))
        .await;
    assert_eq!(app.wait_handled("M-A2").await, "files_unread");
    let reply = reply_text(&app.wait_replies(1).await[0]);
    assert!(reply.contains("cannot listen to voice notes"), "{reply}");
    assert!(app.llm_requests().await.is_empty());
    app.stop().await;
}
