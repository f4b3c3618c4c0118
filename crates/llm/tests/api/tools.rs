//! Tool calling in each provider's own format: the tools offered, the calls in answers,
//! and the results sent back in the turn after the calls, checked by fakes as strict as
//! the APIs' documentation. Round trip: call → tool calls → request with results → text.

use llm::{
    ChatRequest, Llm, Message, ProviderKind, Role, StreamEvent, ToolCall, ToolResult, ToolSpec,
};
use serde_json::{Value, json};
use wiremock::ResponseTemplate;

use crate::{
    fakes::{Fake, GEMINI_3, KEY},
    tool_fakes::{Script, signature_of},
};

fn weather() -> ToolSpec {
    ToolSpec {
        name: "weather__current".into(),
        description: "Current weather for a city".into(),
        // What an MCP server's inputSchema looks like: keys Gemini refuses included.
        parameters: json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "City name"},
                "unit": {"type": ["string", "null"], "enum": ["C", "F"]},
            },
            "required": ["city"],
            "additionalProperties": false,
        }),
    }
}

/// A tool without arguments.
fn clock() -> ToolSpec {
    ToolSpec {
        name: "clock__now".into(),
        description: "The current time".into(),
        parameters: json!({"type": "object"}),
    }
}

fn script() -> Script {
    Script {
        preamble: String::new(),
        calls: vec![
            ("weather__current".into(), json!({"city": "Paris"})),
            ("clock__now".into(), json!({})),
        ],
    }
}

fn asking() -> ChatRequest {
    ChatRequest {
        system: Some("You are a test bot.".into()),
        messages: vec![Message::user("Weather in Paris, and the time?")],
        tools: vec![weather(), clock()],
        ..ChatRequest::default()
    }
}

/// The request after the calls: the assistant turn with them, then a user turn with one
/// result a call (the first one an error when `error_first`).
fn answering(calls: &[ToolCall], error_first: bool) -> ChatRequest {
    let results = calls
        .iter()
        .enumerate()
        .map(|(i, call)| {
            let content = format!("{} says ok", call.name);
            if error_first && i == 0 {
                ToolResult::error(call, content)
            } else {
                ToolResult::ok(call, content)
            }
        })
        .collect();
    let mut request = asking();
    request
        .messages
        .push(Message::assistant_calls("", calls.to_vec()));
    request.messages.push(Message::tool_results(results));
    request
}

async fn call_then_answer(llm: &Llm) -> (Vec<ToolCall>, String) {
    let first = llm.chat(asking()).await.unwrap();
    assert_eq!(first.content, "");
    let second = llm.chat(answering(&first.tool_calls, false)).await.unwrap();
    assert!(second.tool_calls.is_empty());
    (first.tool_calls, second.content)
}

#[tokio::test]
async fn every_provider_round_trips_calls_and_results() {
    for kind in ProviderKind::ALL {
        let fake = Fake::calling(kind, script()).await;
        let (calls, text) = call_then_answer(&fake.llm()).await;
        let named: Vec<(&str, &Value)> = calls
            .iter()
            .map(|c| (c.name.as_str(), &c.arguments))
            .collect();
        assert_eq!(
            named,
            [
                ("weather__current", &json!({"city": "Paris"})),
                ("clock__now", &json!({}))
            ],
            "{kind}"
        );
        assert!(calls.iter().all(|c| !c.id.is_empty()), "{kind}: {calls:?}");
        assert_ne!(calls[0].id, calls[1].id, "{kind}");
        assert_eq!(
            text, "Results: weather__current says ok; clock__now says ok",
            "{kind}"
        );
    }
}

#[tokio::test]
async fn a_text_before_the_calls_is_kept() {
    for kind in ProviderKind::ALL {
        let script = Script {
            preamble: "Let me look.".into(),
            ..script()
        };
        let fake = Fake::calling(kind, script).await;
        let answer = fake.llm().chat(asking()).await.unwrap();
        assert_eq!(answer.content, "Let me look.", "{kind}");
        assert_eq!(answer.tool_calls.len(), 2, "{kind}");
    }
}

#[tokio::test]
async fn without_tools_offered_nothing_changes() {
    for kind in ProviderKind::ALL {
        let fake = Fake::calling(kind, script()).await;
        let request = ChatRequest {
            tools: Vec::new(),
            ..asking()
        };
        let answer = fake.llm().chat(request).await.unwrap();
        assert_eq!(answer.content, "Hello there!", "{kind}");
        assert!(answer.tool_calls.is_empty());
        let body = &fake.chat_bodies().await[0];
        assert_eq!(body.get("tools"), None, "{kind}");
    }
}

/// Fixed calls, so the bodies can be compared whole.
fn fixed_calls() -> Vec<ToolCall> {
    vec![
        ToolCall {
            id: "call_1".into(),
            name: "weather__current".into(),
            arguments: json!({"city": "Paris"}),
        },
        ToolCall {
            id: "call_2".into(),
            name: "clock__now".into(),
            arguments: json!({}),
        },
    ]
}

#[tokio::test]
async fn openai_style_tools_calls_and_tool_messages() {
    for kind in [
        ProviderKind::OpenAi,
        ProviderKind::Xai,
        ProviderKind::OpenAiCompatible,
    ] {
        let fake = Fake::calling(kind, script()).await;
        fake.llm()
            .chat(answering(&fixed_calls(), true))
            .await
            .unwrap();
        let body = &fake.chat_bodies().await[0];
        assert_eq!(
            body["tools"][1],
            json!({"type": "function", "function": {"name": "clock__now", "description": "The current time", "parameters": {"type": "object", "properties": {}}}}),
            "{kind}"
        );
        assert_eq!(
            body["tools"][0]["function"]["parameters"],
            weather().parameters
        );
        assert_eq!(
            body["messages"],
            json!([
                {"role": "system", "content": "You are a test bot."},
                {"role": "user", "content": "Weather in Paris, and the time?"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather__current", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "call_2", "type": "function", "function": {"name": "clock__now", "arguments": "{}"}},
                ]},
                {"role": "tool", "tool_call_id": "call_1", "content": "Error: weather__current says ok"},
                {"role": "tool", "tool_call_id": "call_2", "content": "clock__now says ok"},
            ]),
            "{kind}"
        );
    }
}

#[tokio::test]
async fn anthropic_tools_tool_use_and_tool_result_blocks() {
    let fake = Fake::calling(ProviderKind::Anthropic, script()).await;
    let mut request = answering(&fixed_calls(), true);
    // A question added to the results' turn comes after them.
    request.messages.last_mut().unwrap().content = "Thanks!".into();
    fake.llm().chat(request).await.unwrap();
    let body = &fake.chat_bodies().await[0];
    assert_eq!(
        body["tools"][1],
        json!({"name": "clock__now", "description": "The current time", "input_schema": {"type": "object", "properties": {}}})
    );
    assert_eq!(body["tools"][0]["input_schema"], weather().parameters);
    assert_eq!(
        body["messages"],
        json!([
            {"role": "user", "content": "Weather in Paris, and the time?"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_1", "name": "weather__current", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "call_2", "name": "clock__now", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "is_error": true, "content": "weather__current says ok"},
                {"type": "tool_result", "tool_use_id": "call_2", "is_error": false, "content": "clock__now says ok"},
                {"type": "text", "text": "Thanks!"},
            ]},
        ])
    );
}

#[tokio::test]
async fn gemini_function_declarations_calls_and_responses() {
    let fake = Fake::calling(ProviderKind::Gemini, script()).await;
    fake.llm()
        .chat(answering(&fixed_calls(), true))
        .await
        .unwrap();
    let body = &fake.chat_bodies().await[0];
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "weather__current", "description": "Current weather for a city", "parameters": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "description": "City name"},
                    "unit": {"type": "string", "nullable": true, "enum": ["C", "F"]},
                },
                "required": ["city"],
            }},
            // No arguments: no parameters (Gemini refuses an object without properties).
            {"name": "clock__now", "description": "The current time"},
        ]}])
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris, and the time?"}]},
            {"role": "model", "parts": [
                // Calls Gemini did not make carry the documented stand-in signature.
                {"functionCall": {"name": "weather__current", "args": {"city": "Paris"}}, "thoughtSignature": "skip_thought_signature_validator"},
                {"functionCall": {"name": "clock__now", "args": {}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "weather__current", "response": {"error": "weather__current says ok"}}},
                {"functionResponse": {"name": "clock__now", "response": {"output": "clock__now says ok"}}},
            ]},
        ])
    );
}

#[tokio::test]
async fn gemini_3_gets_its_thought_signatures_back() {
    let fake = Fake::calling(ProviderKind::Gemini, script()).await;
    let llm = fake.llm_with(|c| c.model = Some(GEMINI_3.into()));
    let (_, text) = call_then_answer(&llm).await;
    assert!(text.starts_with("Results: "), "{text}");
    let body = &fake.chat_bodies().await[1];
    let model_turn = &body["contents"][1];
    assert_eq!(model_turn["role"], "model");
    assert_eq!(
        model_turn["parts"][0]["thoughtSignature"],
        json!(signature_of("weather__current"))
    );
    assert_eq!(model_turn["parts"][1].get("thoughtSignature"), None);
}

#[tokio::test]
async fn ollama_tools_calls_and_tool_messages() {
    let fake = Fake::calling(ProviderKind::Ollama, script()).await;
    fake.llm()
        .chat(answering(&fixed_calls(), true))
        .await
        .unwrap();
    let body = &fake.chat_bodies().await[0];
    assert_eq!(body["tools"][1]["function"]["name"], "clock__now");
    assert_eq!(body["tools"][1]["type"], "function");
    assert_eq!(
        body["messages"],
        json!([
            {"role": "system", "content": "You are a test bot."},
            {"role": "user", "content": "Weather in Paris, and the time?"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "weather__current", "arguments": {"city": "Paris"}}},
                {"function": {"name": "clock__now", "arguments": {}}},
            ]},
            {"role": "tool", "content": "Error: weather__current says ok", "tool_name": "weather__current"},
            {"role": "tool", "content": "clock__now says ok", "tool_name": "clock__now"},
        ])
    );
}

#[tokio::test]
async fn arguments_that_are_not_json_are_kept_as_written() {
    let fake = Fake::calling(ProviderKind::OpenAi, script()).await;
    let completion = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "weather__current", "arguments": "{\"city\": \"Par"}}]}}],
    });
    fake.script_once(ResponseTemplate::new(200).set_body_json(completion))
        .await;
    let llm = fake.llm();
    let answer = llm.chat(asking()).await.unwrap();
    assert_eq!(answer.tool_calls[0].arguments, json!("{\"city\": \"Par"));
    // Sent back as written, so the conversation stays what the model saw.
    llm.chat(answering(&answer.tool_calls, true)).await.unwrap();
    let body = &fake.chat_bodies().await[1];
    assert_eq!(
        body["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{\"city\": \"Par"
    );
}

#[tokio::test]
async fn calls_without_id_get_one_and_history_roles_stay_valid() {
    // Ollama before ids, Gemini: ids are made up, unique.
    for kind in [ProviderKind::Ollama, ProviderKind::Gemini] {
        let fake = Fake::calling(kind, script()).await;
        let first = fake.llm().chat(asking()).await.unwrap();
        assert!(
            first.tool_calls.iter().all(|c| c.id.starts_with("call_")),
            "{kind}"
        );
        assert_ne!(first.tool_calls[0].id, first.tool_calls[1].id);
        assert_eq!(
            answering(&first.tool_calls, false).messages[1].role,
            Role::Assistant
        );
    }
}

/// Proof that the fakes refuse tool shapes and orders the APIs refuse.
#[tokio::test]
async fn fakes_refuse_malformed_tool_requests() {
    let openai_call = json!({"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
    let anthropic_use = json!({"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]});
    let gemini_call =
        json!({"role": "model", "parts": [{"functionCall": {"name": "f", "args": {}}}]});
    let user = |text: &str| json!({"role": "user", "content": text});
    let cases: Vec<(ProviderKind, &str, Value)> = vec![
        (
            ProviderKind::OpenAi,
            "tool without a call",
            json!({"messages": [user("hi"), {"role": "tool", "tool_call_id": "c1", "content": "x"}]}),
        ),
        (
            ProviderKind::OpenAi,
            "call without a result",
            json!({"messages": [user("hi"), openai_call, user("next")]}),
        ),
        (
            ProviderKind::OpenAi,
            "arguments as an object",
            json!({"messages": [user("hi"), {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": {}}}]}, {"role": "tool", "tool_call_id": "c1", "content": "x"}]}),
        ),
        (
            ProviderKind::OpenAi,
            "bad tool name",
            json!({"messages": [user("hi")], "tools": [{"type": "function", "function": {"name": "a b"}}]}),
        ),
        (
            ProviderKind::OpenAi,
            "tool not a function",
            json!({"messages": [user("hi")], "tools": [{"name": "f"}]}),
        ),
        (
            ProviderKind::Anthropic,
            "result without a call",
            json!({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "x"}]}]}),
        ),
        (
            ProviderKind::Anthropic,
            "call without a result",
            json!({"messages": [user("hi"), anthropic_use, user("next")]}),
        ),
        (
            ProviderKind::Anthropic,
            "text before the results",
            json!({"messages": [user("hi"), anthropic_use, {"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "tool_result", "tool_use_id": "t1"}]}]}),
        ),
        (
            ProviderKind::Anthropic,
            "openai-style tools",
            json!({"messages": [user("hi")], "tools": [{"type": "function", "function": {"name": "f"}}]}),
        ),
        (
            ProviderKind::Anthropic,
            "schema not an object",
            json!({"messages": [user("hi")], "tools": [{"name": "f", "input_schema": {"type": "string"}}]}),
        ),
        (
            ProviderKind::Gemini,
            "additionalProperties",
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "tools": [{"functionDeclarations": [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": false}}]}]}),
        ),
        (
            ProviderKind::Gemini,
            "empty properties",
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "tools": [{"functionDeclarations": [{"name": "f", "description": "d", "parameters": {"type": "object", "properties": {}}}]}]}),
        ),
        (
            ProviderKind::Gemini,
            "response without a call",
            json!({"contents": [{"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"output": "x"}}}]}]}),
        ),
        (
            ProviderKind::Gemini,
            "call without a response",
            json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}, gemini_call, {"role": "user", "parts": [{"text": "next"}]}]}),
        ),
        (
            ProviderKind::Ollama,
            "arguments as a string",
            json!({"messages": [user("hi"), {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}]}),
        ),
    ];
    let client = reqwest::Client::new();
    for (kind, name, mut body) in cases {
        let fake = Fake::start(kind).await;
        let model = kind.default_model();
        let path = match kind {
            ProviderKind::Gemini => format!("/models/{model}:generateContent"),
            ProviderKind::Anthropic => "/v1/messages".to_owned(),
            ProviderKind::Ollama => "/api/chat".to_owned(),
            _ => "/chat/completions".to_owned(),
        };
        if kind != ProviderKind::Gemini {
            body["model"] = json!(model);
        }
        if kind == ProviderKind::Anthropic {
            body["max_tokens"] = json!(10);
        }
        let status = client
            .post(format!("{}{path}", fake.base()))
            .header("authorization", format!("Bearer {KEY}"))
            .header("x-api-key", KEY)
            .header("anthropic-version", "2023-06-01")
            .header("x-goog-api-key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 400, "{kind}: {name}");
    }
}

// ---------------------------------------------------------------- streamed

/// Every event of a stream that must not fail.
async fn events(stream: llm::ChatStream) -> Vec<StreamEvent> {
    use futures_util::TryStreamExt;
    stream.try_collect().await.unwrap()
}

fn calls_of(events: &[StreamEvent]) -> Vec<ToolCall> {
    let found: Vec<&Vec<ToolCall>> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCalls(calls) => Some(calls),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), 1, "one ToolCalls event: {events:?}");
    found[0].clone()
}

fn text_of(events: &[StreamEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Text(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn every_provider_streams_calls_once_after_the_text_then_takes_results() {
    for preamble in ["", "Let me look."] {
        for kind in ProviderKind::ALL {
            let script = Script {
                preamble: preamble.into(),
                ..script()
            };
            let fake = Fake::calling(kind, script).await;
            let llm = fake.llm();
            let first = events(llm.chat_stream(asking()).await.unwrap()).await;
            assert_eq!(text_of(&first), preamble, "{kind}");
            let calls = calls_of(&first);
            let at = first
                .iter()
                .position(|e| matches!(e, StreamEvent::ToolCalls(_)))
                .unwrap();
            assert!(
                first[at..]
                    .iter()
                    .all(|e| !matches!(e, StreamEvent::Text(_))),
                "{kind}: text after the calls: {first:?}"
            );
            let named: Vec<(&str, &Value)> = calls
                .iter()
                .map(|c| (c.name.as_str(), &c.arguments))
                .collect();
            assert_eq!(
                named,
                [
                    ("weather__current", &json!({"city": "Paris"})),
                    ("clock__now", &json!({}))
                ],
                "{kind}"
            );
            assert!(calls.iter().all(|c| !c.id.is_empty()), "{kind}");
            assert_eq!(llm.in_flight(), 0, "{kind}: the permit is back");

            let second = events(llm.chat_stream(answering(&calls, false)).await.unwrap()).await;
            assert_eq!(
                text_of(&second),
                "Results: weather__current says ok; clock__now says ok",
                "{kind}"
            );
            assert!(
                second
                    .iter()
                    .all(|e| !matches!(e, StreamEvent::ToolCalls(_)))
            );
        }
    }
}

#[tokio::test]
async fn streamed_and_plain_calls_agree() {
    for kind in ProviderKind::ALL {
        let fake = Fake::calling(kind, script()).await;
        let plain = fake.llm().chat(asking()).await.unwrap().tool_calls;
        let streamed = calls_of(&events(fake.llm().chat_stream(asking()).await.unwrap()).await);
        let strip = |calls: &[ToolCall]| -> Vec<(String, Value)> {
            calls
                .iter()
                .map(|c| (c.name.clone(), c.arguments.clone()))
                .collect()
        };
        assert_eq!(strip(&plain), strip(&streamed), "{kind}");
        // The providers that give ids give the same ones either way.
        if matches!(
            kind,
            ProviderKind::Anthropic
                | ProviderKind::OpenAi
                | ProviderKind::Xai
                | ProviderKind::OpenAiCompatible
        ) {
            assert_eq!(plain, streamed, "{kind}");
        }
    }
}

#[tokio::test]
async fn gemini_3_streamed_calls_keep_their_signature() {
    let fake = Fake::calling(ProviderKind::Gemini, script()).await;
    let llm = fake.llm_with(|c| c.model = Some(GEMINI_3.into()));
    let calls = calls_of(&events(llm.chat_stream(asking()).await.unwrap()).await);
    let text = text_of(&events(llm.chat_stream(answering(&calls, false)).await.unwrap()).await);
    assert!(text.starts_with("Results: "), "{text}");
    let body = &fake.chat_bodies().await[1];
    assert_eq!(
        body["contents"][1]["parts"][0]["thoughtSignature"],
        json!(signature_of("weather__current"))
    );
}

#[tokio::test]
async fn thinking_before_the_calls_is_not_an_answer() {
    for kind in [ProviderKind::Ollama, ProviderKind::OpenAiCompatible] {
        let script = Script {
            preamble: "<think>which tool?</think>".into(),
            ..script()
        };
        let fake = Fake::calling(kind, script).await;
        let events = events(fake.llm().chat_stream(asking()).await.unwrap()).await;
        assert_eq!(text_of(&events), "", "{kind}");
        assert_eq!(calls_of(&events).len(), 2, "{kind}");
        let plain = fake.llm().chat(asking()).await.unwrap();
        assert_eq!(plain.content, "", "{kind}");
        assert_eq!(plain.tool_calls.len(), 2, "{kind}");
    }
}

#[tokio::test]
async fn a_streamed_call_without_a_name_is_malformed() {
    use crate::fakes::openai_chunk;
    let fake = Fake::calling(ProviderKind::OpenAi, script()).await;
    let body = openai_chunk(json!({"role": "assistant", "content": "Checking"}), None)
        + &openai_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
            None,
        )
        + &openai_chunk(json!({}), Some("tool_calls"))
        + "data: [DONE]\n\n";
    fake.script(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .await;
    use futures_util::StreamExt;
    let mut stream = fake.llm().chat_stream(asking()).await.unwrap();
    assert_eq!(
        stream.next().await.unwrap().unwrap(),
        StreamEvent::Text("Checking".into())
    );
    let err = stream.next().await.unwrap().unwrap_err();
    assert!(matches!(err, llm::LlmError::Malformed { .. }), "{err:?}");
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn streamed_fragments_without_index_and_partial_json_split_anywhere() {
    use crate::fakes::{anthropic_event, openai_chunk};
    // A compatible server that leaves out `index`.
    let fake = Fake::calling(ProviderKind::OpenAiCompatible, script()).await;
    let body = openai_chunk(
        json!({"tool_calls": [{"id": "a", "type": "function", "function": {"name": "weather__current", "arguments": "{\"ci"}}]}),
        None,
    ) + &openai_chunk(
        json!({"tool_calls": [{"function": {"arguments": "ty\": \"Oslo\"}"}}]}),
        None,
    ) + &openai_chunk(
        json!({"tool_calls": [{"id": "b", "type": "function", "function": {"name": "clock__now", "arguments": ""}}]}),
        None,
    ) + &openai_chunk(json!({}), Some("tool_calls"))
        + "data: [DONE]\n\n";
    fake.script(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .await;
    let calls = calls_of(&events(fake.llm().chat_stream(asking()).await.unwrap()).await);
    assert_eq!(calls[0].arguments, json!({"city": "Oslo"}));
    assert_eq!(
        (calls[1].id.as_str(), &calls[1].arguments),
        ("b", &json!({}))
    );

    // Anthropic: a block whose JSON the model broke keeps the text as written.
    let fake = Fake::calling(ProviderKind::Anthropic, script()).await;
    let body = anthropic_event(
        "message_start",
        json!({"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": [], "model": "m", "usage": {"input_tokens": 1, "output_tokens": 1}}}),
    ) + &anthropic_event(
        "content_block_start",
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "weather__current", "input": {}}}),
    ) + &anthropic_event(
        "content_block_delta",
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
    ) + &anthropic_event(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ) + &anthropic_event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}}),
    ) + &anthropic_event("message_stop", json!({"type": "message_stop"}));
    fake.script(ResponseTemplate::new(200).set_body_raw(body, "text/event-stream"))
        .await;
    let calls = calls_of(&events(fake.llm().chat_stream(asking()).await.unwrap()).await);
    assert_eq!(calls[0].arguments, json!("{\"city\": "));
}
