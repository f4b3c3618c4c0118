//! Text, PDF and DOCX files: fenced blocks for the model, kept in history; files without
//! text summarized, long text cut with a note.

use super::*;

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
