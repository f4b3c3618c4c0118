//! The bot with tools: tool rounds for every provider, streamed or not, with history,
//! usage, timeouts, the round limit and the call records.

use super::*;

/// A personalities folder whose default personality offers `tools`.
pub(super) fn personalities(dir: &Path, tools: &[&str]) -> String {
    let folder = dir.join("personalities");
    std::fs::create_dir_all(&folder).unwrap();
    let list = tools
        .iter()
        .map(|t| format!("{t:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    std::fs::write(
        folder.join("default.toml"),
        format!(
            "description = \"Helpful with tools\"\nsystem_prompt = \"You use tools.\"\ntools = [{list}]\n"
        ),
    )
    .unwrap();
    std::fs::write(
        folder.join("plain.toml"),
        "description = \"No tools\"\nsystem_prompt = \"You talk.\"\n",
    )
    .unwrap();
    folder.display().to_string()
}

pub(super) struct ToolBot {
    pub(super) app: TestApp,
    pub(super) llm: ToolLlm,
    pub(super) _dir: tempfile::TempDir,
}

/// The bot with tools, to start: the stdio test server as `test`, the default personality
/// offering all of `test`, a fake `kind` LLM playing `model`, whole answers (no streaming).
pub(super) struct Setup {
    pub(super) kind: Kind,
    pub(super) model: Model,
    pub(super) server: String,
    pub(super) offer: Vec<String>,
    pub(super) env: Vec<(String, String)>,
}

pub(super) fn with_tools(kind: Kind, model: Model) -> Setup {
    Setup {
        kind,
        model,
        server: String::new(),
        offer: vec!["test".to_owned()],
        env: Vec::new(),
    }
}

impl Setup {
    /// More TOML lines in the test server's entry.
    pub(super) fn server(mut self, extra: &str) -> Setup {
        self.server.push_str(extra);
        self
    }

    /// The test server's `shout` asks for approval first.
    pub(super) fn confirm_shout(self) -> Setup {
        self.server("confirm = [\"shout\"]")
    }

    /// What the default personality offers instead of all of `test`.
    pub(super) fn offer(mut self, tools: &[&str]) -> Setup {
        self.offer = tools.iter().map(|t| (*t).to_owned()).collect();
        self
    }

    pub(super) fn env(mut self, key: &str, value: &str) -> Setup {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Streamed answers or not, edited quickly.
    pub(super) fn streaming(self, on: bool) -> Setup {
        self.env("REPLY_STREAMING", if on { "true" } else { "false" })
            .env("STREAM_FIRST_POST_MS", "0")
            .env("STREAM_EDIT_MS", "10")
    }

    /// Starts it, once the test server is connected, with ALICE approved.
    pub(super) async fn start(self) -> ToolBot {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tools.toml");
        std::fs::write(&file, stdio_server("test", &self.server)).unwrap();
        let llm = ToolLlm::start(self.kind, self.model).await;
        let offer: Vec<&str> = self.offer.iter().map(String::as_str).collect();
        let mut spawn = llm
            .env(Spawn::default())
            .env("TOOLS_CONFIG", &file.display().to_string())
            .env("PERSONALITIES_DIR", &personalities(dir.path(), &offer))
            .env("REPLY_STREAMING", "false");
        for (k, v) in &self.env {
            spawn = spawn.env(k, v);
        }
        let app = TestApp::spawn(spawn).await;
        app.approve(ALICE).await;
        wait_connected(&app.state.tools, "test").await;
        ToolBot {
            app,
            llm,
            _dir: dir,
        }
    }
}

/// `/metrics` counts `n` calls of `test/TOOL` that ended as `outcome`.
pub(super) async fn assert_tool_calls_metric(app: &TestApp, tool: &str, outcome: &str, n: u32) {
    let metrics = app.metrics().await;
    let series = format!(
        "webex_chatbot_tool_calls_total{{server=\"test\",tool=\"{tool}\",outcome=\"{outcome}\"}} {n}"
    );
    assert!(metrics.contains(&series), "no {series}: {metrics}");
}

/// A model that makes `calls` (in one round) first, then answers with what `answer` makes
/// of their results.
pub(super) fn calls_then(
    calls: &[(&str, Value)],
    answer: impl Fn(&[(String, bool)]) -> String + Send + Sync + 'static,
) -> Model {
    let calls: Vec<(String, Value)> = calls
        .iter()
        .map(|(name, arguments)| ((*name).to_owned(), arguments.clone()))
        .collect();
    Arc::new(move |seen: &Seen| {
        if seen.rounds == 0 {
            Say::Call(String::new(), calls.clone())
        } else {
            Say::Text(answer(&seen.results))
        }
    })
}

/// The first result as `error=BOOL: TEXT`.
pub(super) fn first_result(results: &[(String, bool)]) -> String {
    let (text, error) = results.first().cloned().unwrap_or_default();
    format!("error={error}: {text}")
}

/// Calls `test__add` with 2 and 3, then answers with the result.
pub(super) fn adder() -> Model {
    Arc::new(|seen: &Seen| {
        if seen.rounds == 0 && seen.tools.iter().any(|t| t == "test__add") {
            Say::Call(
                "Let me add that up.".into(),
                vec![("test__add".into(), json!({"a": 2, "b": 3}))],
            )
        } else {
            match seen.results.first() {
                Some((result, _)) => Say::Text(format!("The sum is {result}.")),
                None => Say::Text("I cannot add today.".into()),
            }
        }
    })
}

/// The text of the bot's last message (after its edits) in the fake Webex.
pub(super) fn last_posted(app: &TestApp) -> String {
    posted_messages(&app.webex)
        .last()
        .and_then(|m| m["markdown"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

pub(super) async fn ask(app: &TestApp, id: &str, room: &str, text: &str) -> String {
    app.deliver(&direct_message(id, room, ALICE, text)).await;
    app.wait_handled(id).await
}

#[tokio::test]
async fn every_providers_tool_calls_run_and_their_results_go_back_streamed_or_not() {
    for kind in Kind::ALL {
        for streaming in [false, true] {
            let bot = with_tools(kind, adder())
                .offer(&["test/add", "test/echo"])
                .streaming(streaming)
                .start()
                .await;
            let app = &bot.app;
            let outcome = ask(app, "M-1", "ROOM-1", "What is 2+3?").await;
            let what = format!("{kind:?}, streaming {streaming}");
            assert_eq!(outcome, "answered", "{what}");
            assert_eq!(last_posted(app), "The sum is 5.", "{what}");

            let requests = bot.llm.requests();
            assert_eq!(requests.len(), 2, "{what}: {requests:#?}");
            let mut offered = offered_in(kind, &requests[0]);
            offered.sort();
            assert_eq!(offered, ["test__add", "test__echo"], "{what}");
            // The second request carries the call and its result, in the provider's shape
            // (the fake refused anything else).
            assert!(requests[1].to_string().contains('5'), "{what}");

            let calls = app.state.store.recent_tool_calls(10).await.unwrap();
            assert_eq!(calls.len(), 1, "{what}");
            assert_eq!(
                (
                    calls[0].server.as_str(),
                    calls[0].tool.as_str(),
                    calls[0].outcome.as_str()
                ),
                ("test", "add", "ok"),
                "{what}"
            );
            app.state.tools.stop();
        }
    }
}

#[tokio::test]
async fn history_keeps_the_final_answer_not_the_tool_transcript() {
    let bot = with_tools(Kind::OpenAi, adder()).start().await;
    let app = &bot.app;
    assert_eq!(ask(app, "M-1", "ROOM-1", "What is 2+3?").await, "answered");
    assert_eq!(ask(app, "M-2", "ROOM-1", "Thanks!").await, "answered");
    // The first request of the second question: its history is the first exchange.
    let requests = bot.llm.requests();
    let messages = requests[2]["messages"].as_array().unwrap();
    let turns: Vec<(&str, &str)> = messages
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap(),
                m["content"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        turns,
        [
            ("system", "You use tools."),
            ("user", "What is 2+3?"),
            ("assistant", "The sum is 5."),
            ("user", "Thanks!"),
        ]
    );
}

#[tokio::test]
async fn every_llm_call_of_the_tool_rounds_counts_in_usage() {
    // Two calls (the tool round, then the answer), 10 prompt + 5 completion tokens each.
    let bot = with_tools(Kind::OpenAi, adder()).start().await;
    let app = &bot.app;
    assert_eq!(ask(app, "M-1", "ROOM-1", "What is 2+3?").await, "answered");
    assert_eq!(bot.llm.requests().len(), 2);
    assert_eq!(ask(app, "M-2", "ROOM-1", "usage").await, "command");
    let report = last_posted(app);
    assert!(
        report.contains("30 tokens (20 prompt + 10 completion)"),
        "{report}"
    );
}

#[tokio::test]
async fn a_streamed_preamble_gives_way_to_the_final_answer() {
    let bot = with_tools(Kind::Anthropic, adder())
        .streaming(true)
        .start()
        .await;
    let app = &bot.app;
    assert_eq!(ask(app, "M-1", "ROOM-1", "What is 2+3?").await, "answered");
    let posted = posted_messages(&app.webex);
    assert_eq!(posted.len(), 1, "one message, edited: {posted:#?}");
    assert_eq!(posted[0]["markdown"], "The sum is 5.");
    let stored = app
        .state
        .store
        .history(&bot::domain::ConversationKey::direct("ROOM-1"), 10)
        .await
        .unwrap();
    assert_eq!(stored.last().unwrap().content, "The sum is 5.");
}

#[tokio::test]
async fn a_personality_without_tools_offers_none() {
    let bot = with_tools(Kind::Ollama, adder()).offer(&[]).start().await;
    let app = &bot.app;
    assert_eq!(ask(app, "M-1", "ROOM-1", "What is 2+3?").await, "answered");
    let requests = bot.llm.requests();
    assert_eq!(requests.len(), 1);
    assert!(requests[0].get("tools").is_none(), "{}", requests[0]);
    assert_eq!(last_posted(app), "I cannot add today.");
}

#[tokio::test]
async fn several_calls_in_one_round_all_get_their_results_in_order() {
    let model = calls_then(
        &[
            ("test__echo", json!({"text": "first"})),
            ("test__add", json!({"a": 40, "b": 2})),
            ("test__fail", json!({"message": "broken"})),
        ],
        |results| {
            let shown: Vec<String> = results
                .iter()
                .map(|(text, error)| format!("{text}{}", if *error { "!" } else { "" }))
                .collect();
            shown.join(" | ")
        },
    );
    for kind in Kind::ALL {
        let bot = with_tools(kind, model.clone()).start().await;
        assert_eq!(ask(&bot.app, "M-1", "ROOM-1", "Go").await, "answered");
        let shown = last_posted(&bot.app);
        let parts: Vec<&str> = shown.split(" | ").collect();
        assert_eq!(parts.len(), 3, "{kind:?}: {shown}");
        assert_eq!(parts[0], "first", "{kind:?}");
        assert_eq!(parts[1], "42", "{kind:?}");
        assert!(
            parts[2].contains("broken") && parts[2].ends_with('!'),
            "{kind:?}: {shown}"
        );
        bot.app.state.tools.stop();
    }
}

#[tokio::test]
async fn a_hanging_tool_times_out_as_an_error_result() {
    let model = calls_then(&[("test__slow", json!({"seconds": 60}))], first_result);
    let bot = with_tools(Kind::Anthropic, model)
        .server("timeout_secs = 1")
        .start()
        .await;
    assert_eq!(ask(&bot.app, "M-1", "ROOM-1", "Wait").await, "answered");
    let shown = last_posted(&bot.app);
    assert!(
        shown.starts_with("error=true:") && shown.contains("timeout"),
        "{shown}"
    );
    assert_tool_calls_metric(&bot.app, "slow", "timeout", 1).await;
}

#[tokio::test]
async fn after_tools_max_rounds_the_model_answers_without_tools() {
    let model: Model = Arc::new(|seen: &Seen| {
        if seen.tools.is_empty() {
            Say::Text(format!("Done after {} rounds.", seen.rounds))
        } else {
            Say::Call(
                String::new(),
                vec![("test__echo".into(), json!({"text": "again"}))],
            )
        }
    });
    for kind in Kind::ALL {
        let bot = with_tools(kind, model.clone())
            .env("TOOLS_MAX_ROUNDS", "2")
            .start()
            .await;
        assert_eq!(ask(&bot.app, "M-1", "ROOM-1", "Loop").await, "answered");
        let requests = bot.llm.requests();
        assert_eq!(requests.len(), 3, "{kind:?}");
        assert!(offered_in(kind, &requests[2]).is_empty(), "{kind:?}");
        assert!(
            requests[2]
                .to_string()
                .contains("No more tool calls are possible now"),
            "{kind:?}"
        );
        // The rounds' results were written out as text in the last request.
        assert_eq!(last_posted(&bot.app), "Done after 0 rounds.", "{kind:?}");
        assert_eq!(
            bot.app
                .state
                .store
                .recent_tool_calls(10)
                .await
                .unwrap()
                .len(),
            2
        );
        bot.app.state.tools.stop();
    }
}

#[tokio::test]
async fn tool_calls_are_recorded_with_an_argument_digest_unless_told_otherwise() {
    for (log, want) in [("false", None), ("true", Some(r#"{"a":2,"b":3}"#))] {
        let bot = with_tools(Kind::Ollama, adder())
            .env("TOOLS_LOG_ARGUMENTS", log)
            .start()
            .await;
        assert_eq!(
            ask(&bot.app, "M-1", "ROOM-1", "What is 2+3?").await,
            "answered"
        );
        let calls = bot.app.state.store.recent_tool_calls(10).await.unwrap();
        assert_eq!(calls.len(), 1);
        let call = &calls[0];
        assert_eq!(call.person_email, ALICE);
        assert_eq!(call.room_id, "ROOM-1");
        assert_eq!(call.arguments.as_deref(), want);
        // sha256 of the arguments' JSON text.
        assert_eq!(call.arguments_sha256.len(), 64);
        assert!(call.duration_ms >= 0 && call.called_at > 0);
        assert_tool_calls_metric(&bot.app, "add", "ok", 1).await;
        bot.app.state.tools.stop();
    }
}
