//! Images: base64 to Ollama, image blocks to Anthropic, and a short answer without vision.

use super::*;

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
