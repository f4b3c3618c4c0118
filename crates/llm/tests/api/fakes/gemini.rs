//! The Gemini fake (`generateContent`, `streamGenerateContent`): its refusals, candidates
//! and usage.

use super::*;

pub fn gemini_error(code: u16, status: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(code)
        .set_body_json(json!({"error": {"code": code, "message": message, "status": status}}))
}

pub(super) fn gemini(cfg: &Cfg, req: &Request) -> Answer {
    let bad = |m: &str| gemini_error(400, "INVALID_ARGUMENT", m);
    // The real API accepts `?key=`, but a key in a URL ends up in logs: refuse it here.
    check(!req.url.query_pairs().any(|(k, _)| k == "key"), || {
        bad("API keys in the query string are refused by this fake")
    })?;
    match header(req, "x-goog-api-key") {
        None => {
            return Err(gemini_error(
                403,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
            ));
        }
        Some(key) if key != KEY => {
            return Err(ResponseTemplate::new(400).set_body_json(json!({"error": {
                "code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
                "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
            }})));
        }
        Some(_) => {}
    }
    let path = req.url.path();
    if req.method.as_str() == "GET" && path == "/v1beta/models" {
        return Ok(ResponseTemplate::new(200).set_body_json(json!({
            "models": cfg.models.iter().map(|m| json!({"name": format!("models/{m}"), "displayName": m, "supportedGenerationMethods": ["generateContent", "countTokens"]})).collect::<Vec<_>>(),
        })));
    }
    let Some((model, method)) = path
        .strip_prefix("/v1beta/models/")
        .and_then(|rest| rest.split_once(':'))
    else {
        return Err(gemini_error(404, "NOT_FOUND", "Not found"));
    };
    check(req.method.as_str() == "POST", || {
        gemini_error(404, "NOT_FOUND", "Not found")
    })?;
    check(
        method == "generateContent" || method == "streamGenerateContent",
        || gemini_error(404, "NOT_FOUND", "Not found"),
    )?;
    check(cfg.models.iter().any(|m| m == model), || {
        gemini_error(
            404,
            "NOT_FOUND",
            &format!(
                "models/{model} is not found for API version v1beta, or is not supported for {method}."
            ),
        )
    })?;
    let body = json_body(req, bad)?;
    if let Some(unknown) = field_in(
        &body,
        "",
        &[
            "contents",
            "systemInstruction",
            "system_instruction",
            "generationConfig",
            "generation_config",
            "safetySettings",
            "tools",
            "toolConfig",
            "cachedContent",
        ],
    ) {
        return Err(bad(&format!(
            "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
        )));
    }
    let contents = body["contents"]
        .as_array()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| bad("* GenerateContentRequest.contents: contents is not specified"))?;
    let mut previous = "";
    for content in contents {
        let role = content["role"].as_str().unwrap_or("");
        check(role == "user" || role == "model", || {
            bad("Please use a valid role: user, model.")
        })?;
        check(!previous.is_empty() || role == "user", || {
            bad("Please ensure that multiturn requests start with a user turn.")
        })?;
        check(role != previous, || {
            bad("Please ensure that multiturn requests alternate between user and model.")
        })?;
        let parts = content["parts"]
            .as_array()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                bad("* GenerateContentRequest.contents.parts: contents.parts must not be empty.")
            })?;
        for part in parts {
            gemini_part(role, part).map_err(|e| bad(&format!("contents.parts: {e}")))?;
        }
        previous = role;
    }
    if let Some(system) = body.get("systemInstruction") {
        check(
            system["parts"]
                .as_array()
                .is_some_and(|p| p.iter().all(|p| p["text"].is_string())),
            || bad("systemInstruction: parts must carry text"),
        )?;
        check(
            system
                .get("role")
                .is_none_or(|r| r == "user" || r == "system"),
            || bad("systemInstruction: invalid role"),
        )?;
    }
    if let Some(config) = body.get("generationConfig") {
        if let Some(unknown) = field_in(
            config,
            "generation_config",
            &[
                "temperature",
                "maxOutputTokens",
                "topP",
                "topK",
                "stopSequences",
                "candidateCount",
                "thinkingConfig",
            ],
        ) {
            return Err(bad(&format!(
                "Invalid JSON payload received. Unknown name \"{unknown}\": Cannot find field."
            )));
        }
        check(temperature_ok(config, 2.0), || {
            bad("temperature must be between 0 and 2")
        })?;
    }
    let offered = tool_fakes::gemini_tools(&body).map_err(|e| bad(&e))?;
    let results = tool_fakes::gemini_turns(model, contents).map_err(|e| bad(&e))?;
    let sse = req.url.query_pairs().any(|(k, v)| k == "alt" && v == "sse");
    let pieces = match cfg.decide(&offered, results) {
        Ok(pieces) => pieces,
        Err(calls) => {
            let stream = method == "streamGenerateContent";
            return Ok(tool_fakes::gemini_calls(&cfg.script, &calls, stream && sse));
        }
    };
    let text = pieces.concat();
    let whole = gemini_candidate_with(&text, Some("STOP"), gemini_usage(cfg.usage, true));
    if method == "generateContent" {
        return Ok(ResponseTemplate::new(200).set_body_json(whole));
    }
    Ok(if sse {
        ResponseTemplate::new(200)
            .set_body_raw(gemini_sse_with(&pieces, cfg.usage), "text/event-stream")
    } else {
        // Without alt=sse the API streams one JSON array.
        ResponseTemplate::new(200).set_body_json(json!([whole]))
    })
}

/// One part: exactly one kind of data (proto `oneof`), in either JSON spelling.
pub(super) fn gemini_part(role: &str, part: &Value) -> Result<(), String> {
    let Some(fields) = part.as_object() else {
        return Err("a part must be an object".into());
    };
    let data: Vec<&str> = fields
        .keys()
        .map(String::as_str)
        .filter(|k| !["thought", "thoughtSignature", "thought_signature"].contains(k))
        .collect();
    let [kind] = data.as_slice() else {
        return Err(format!(
            "a part must hold exactly one kind of data, found {data:?}"
        ));
    };
    match *kind {
        "text" if part["text"].is_string() => Ok(()),
        "inline_data" | "inlineData" => {
            let blob = &part[*kind];
            let mime = blob.get("mime_type").or_else(|| blob.get("mimeType"));
            if !mime
                .and_then(Value::as_str)
                .is_some_and(|m| IMAGE_TYPES.contains(&m))
            {
                return Err("inline_data.mime_type: unsupported MIME type".into());
            }
            if !blob["data"].as_str().is_some_and(base64_ok) {
                return Err(
                    "inline_data.data: Invalid value (bytes), base64 decoding failed".into(),
                );
            }
            Ok(())
        }
        "functionCall" | "functionResponse" => tool_fakes::gemini_tool_part(role, kind, part),
        other => Err(format!(
            "Unknown name \"{other}\" at 'contents.parts': Cannot find field."
        )),
    }
}

pub fn gemini_candidate(text: &str, finish: Option<&str>) -> Value {
    gemini_candidate_with(text, finish, gemini_usage(DEFAULT_USAGE, false))
}

pub fn gemini_candidate_with(text: &str, finish: Option<&str>, usage: Value) -> Value {
    let mut candidate =
        json!({"content": {"parts": [{"text": text}], "role": "model"}, "index": 0});
    if let Some(finish) = finish {
        candidate["finishReason"] = json!(finish);
    }
    json!({"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash"})
}

/// `usageMetadata` for `usage`; a thinking model's (`thinking`) splits the output into
/// candidate tokens and 4 thought tokens, counted apart as the API does.
pub fn gemini_usage(usage: Tokens, thinking: bool) -> Value {
    let thoughts = if thinking { 4.min(usage.completion) } else { 0 };
    let mut metadata = json!({
        "promptTokenCount": usage.prompt,
        "candidatesTokenCount": usage.completion - thoughts,
        "totalTokenCount": usage.prompt + usage.completion,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.prompt}]
    });
    if thinking {
        metadata["thoughtsTokenCount"] = json!(thoughts);
    }
    metadata
}

#[allow(dead_code)] // For tests that script a whole answer with the default counts.
pub fn gemini_answer(text: &str) -> Value {
    gemini_candidate(text, Some("STOP"))
}

/// One event a piece, CRLF-separated as the API sends them; the last carries finishReason.
#[allow(dead_code)] // For tests that script a whole answer with the default counts.
pub fn gemini_sse(pieces: &[String]) -> String {
    gemini_sse_with(pieces, DEFAULT_USAGE)
}

/// The same with `usage`: every chunk carries `usageMetadata`, the counts so far (the
/// prompt from the first chunk on), the last one complete.
pub fn gemini_sse_with(pieces: &[String], usage: Tokens) -> String {
    let last = pieces.len().saturating_sub(1);
    pieces
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let so_far = if i == last {
                gemini_usage(usage, true)
            } else {
                json!({"promptTokenCount": usage.prompt, "totalTokenCount": usage.prompt + i as u64 + 1, "candidatesTokenCount": i as u64 + 1})
            };
            format!(
                "data: {}\r\n\r\n",
                gemini_candidate_with(p, (i == last).then_some("STOP"), so_far)
            )
        })
        .collect()
}
