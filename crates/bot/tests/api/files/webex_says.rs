//! What Webex says about files: being scanned, gone, unscannable, oversize; unapproved
//! senders, other hosts, broken and bomb-like files.

use super::*;

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
