//! The tool loop (DESIGN §10.5): the model answers with tool calls → the bot runs them (in
//! parallel when there are several, each within its server's timeout; `confirm` tools only
//! after an approval click) → the results (cut to [`MAX_RESULT_BYTES`]) go back in the
//! next request → … up to `TOOLS_MAX_ROUNDS` rounds; then the model is asked for a final
//! answer without tools. Errors, timeouts and denials go back as error results.
//!
//! Whole answers ([`answer`]) and streamed ones ([`stream`]) share the rounds. A streamed
//! answer yields the text of each round as it comes; when a round ends in tool calls, its
//! text was only a preamble, and [`Delta::Restart`] tells the reader that the answer starts
//! anew. History keeps the final text only, never the tool transcript.

use std::pin::Pin;
use std::time::Instant;

use futures_util::{Stream, StreamExt as _, stream};
use llm::{ChatRequest, ChatStream, LlmError, Message, StreamEvent, ToolCall, ToolResult};

use super::approval::{self, Wait};
use super::manager::CallResult;
use super::record::{self, Outcome};
use super::{Asker, Offered, Runner};

/// A tool's output sent back to the model is cut to this many bytes (16 KiB), with a note.
pub const MAX_RESULT_BYTES: usize = 16 * 1024;
/// Characters of a tool's output in the DEBUG log (never at INFO: it is untrusted input).
const LOGGED_OUTPUT_CHARS: usize = 200;

/// One item of a streamed answer with tools.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Delta {
    Text(String),
    /// The text so far preceded tool calls: the answer starts again after this.
    Restart,
}

pub(crate) type DeltaStream = Pin<Box<dyn Stream<Item = Result<Delta, LlmError>> + Send>>;

/// What the rounds of one question share.
#[derive(Clone)]
pub(crate) struct Rounds {
    pub runner: std::sync::Arc<Runner>,
    pub asker: Asker,
    pub offered: Vec<Offered>,
}

impl Rounds {
    fn max_rounds(&self) -> usize {
        self.runner.max_rounds
    }

    /// The request of round `round` (from 0): the last one offers no tools.
    fn for_round(&self, mut request: ChatRequest, round: usize) -> ChatRequest {
        if round >= self.max_rounds() {
            request = without_tools(request);
        }
        request
    }
}

/// The whole answer: rounds of tool calls until the model answers in text.
pub(crate) async fn answer(rounds: Rounds, mut request: ChatRequest) -> Result<String, LlmError> {
    let mut round = 0;
    loop {
        let response = ask(&rounds, rounds.for_round(request.clone(), round)).await?;
        if response.tool_calls.is_empty() || round >= rounds.max_rounds() {
            if response.content.trim().is_empty() {
                // Calls where none were offered, and no words: nothing to post.
                return Err(LlmError::Malformed {
                    provider: response.provider,
                    reason: "the answer has tool calls but no text after the last tool round"
                        .into(),
                });
            }
            return Ok(response.content);
        }
        let results = run_calls(&rounds, &response.tool_calls).await;
        push_round(&mut request, response.content, response.tool_calls, results);
        round += 1;
    }
}

/// The streamed answer: each round's text as it comes, [`Delta::Restart`] between rounds.
pub(crate) fn stream(rounds: Rounds, request: ChatRequest) -> DeltaStream {
    enum Phase {
        Open(ChatRequest, usize),
        Reading {
            stream: ChatStream,
            request: ChatRequest,
            round: usize,
            text: String,
            calls: Vec<ToolCall>,
        },
        Done,
    }
    let start = (rounds, Phase::Open(request, 0));
    Box::pin(stream::unfold(start, |(rounds, phase)| async move {
        let mut phase = phase;
        loop {
            match phase {
                Phase::Done => return None,
                Phase::Open(request, round) => {
                    let asked = rounds.for_round(request.clone(), round);
                    match rounds.runner.llm.chat_stream(asked).await {
                        Ok(stream) => {
                            phase = Phase::Reading {
                                stream,
                                request,
                                round,
                                text: String::new(),
                                calls: Vec::new(),
                            }
                        }
                        Err(e) => return Some((Err(e), (rounds, Phase::Done))),
                    }
                }
                Phase::Reading {
                    mut stream,
                    mut request,
                    round,
                    mut text,
                    mut calls,
                } => match stream.next().await {
                    Some(Ok(StreamEvent::Text(delta))) => {
                        text.push_str(&delta);
                        let next = Phase::Reading {
                            stream,
                            request,
                            round,
                            text,
                            calls,
                        };
                        return Some((Ok(Delta::Text(delta)), (rounds, next)));
                    }
                    Some(Ok(StreamEvent::ToolCalls(more))) => {
                        calls.extend(more);
                        phase = Phase::Reading {
                            stream,
                            request,
                            round,
                            text,
                            calls,
                        };
                    }
                    Some(Ok(StreamEvent::Usage(usage))) => {
                        rounds.runner.usage.record(rounds.asker.who(), &usage).await;
                        phase = Phase::Reading {
                            stream,
                            request,
                            round,
                            text,
                            calls,
                        };
                    }
                    Some(Err(e)) => return Some((Err(e), (rounds, Phase::Done))),
                    None if calls.is_empty() || round >= rounds.max_rounds() => return None,
                    None => {
                        drop(stream);
                        let results = run_calls(&rounds, &calls).await;
                        push_round(&mut request, text, calls, results);
                        return Some((
                            Ok(Delta::Restart),
                            (rounds, Phase::Open(request, round + 1)),
                        ));
                    }
                },
            }
        }
    }))
}

/// One whole LLM call, timed like any other; its tokens are recorded against the asker.
async fn ask(rounds: &Rounds, request: ChatRequest) -> Result<llm::ChatResponse, LlmError> {
    let runner = &rounds.runner;
    let started = Instant::now();
    let result = runner.llm.chat(request).await;
    runner
        .metrics
        .llm_latency
        .observe(started.elapsed().as_secs_f64());
    let response = result?;
    tracing::info!(
        provider = response.provider.as_str(),
        model = %response.model,
        fallback = response.used_fallback,
        tool_calls = response.tool_calls.len(),
        latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "LLM answered"
    );
    if let Some(usage) = &response.usage {
        runner.usage.record(rounds.asker.who(), usage).await;
    }
    Ok(response)
}

/// The model's turn with its calls, then the results in the next user turn.
fn push_round(
    request: &mut ChatRequest,
    text: String,
    calls: Vec<ToolCall>,
    results: Vec<ToolResult>,
) {
    request.messages.push(Message::assistant_calls(text, calls));
    request.messages.push(Message::tool_results(results));
}

/// The final request, when the rounds are used up: no tools offered, and the transcript
/// so far written out as text (providers refuse tool calls in a request that offers no
/// tools), with a note to answer now.
pub(crate) fn without_tools(mut request: ChatRequest) -> ChatRequest {
    request.tools.clear();
    let mut messages: Vec<Message> = Vec::with_capacity(request.messages.len() + 1);
    for m in request.messages {
        if m.tool_calls.is_empty() && m.tool_results.is_empty() {
            messages.push(m);
            continue;
        }
        let mut text = m.content.clone();
        for call in &m.tool_calls {
            text.push_str(&format!(
                "\n[I called the tool {} with {}]",
                call.name, call.arguments
            ));
        }
        for result in &m.tool_results {
            let kind = if result.is_error { "error" } else { "result" };
            text.push_str(&format!(
                "\n[{kind} of the tool {}]\n{}",
                result.name, result.content
            ));
        }
        messages.push(llm::Message {
            images: m.images,
            ..llm::Message::new(m.role, text.trim().to_owned())
        });
    }
    if let Some(last) = messages.last_mut()
        && last.role == llm::Role::User
    {
        last.content
            .push_str(&format!("\n\n{}", crate::strings::TOOLS_EXHAUSTED));
    }
    request.messages = messages;
    request
}

/// Runs one round's calls at once; the results keep the calls' order.
async fn run_calls(rounds: &Rounds, calls: &[ToolCall]) -> Vec<ToolResult> {
    futures_util::future::join_all(calls.iter().map(|call| run_call(rounds, call))).await
}

async fn run_call(rounds: &Rounds, call: &ToolCall) -> ToolResult {
    let runner = &rounds.runner;
    let started = Instant::now();
    let result = |content: String, is_error: bool| ToolResult {
        call_id: call.id.clone(),
        name: call.name.clone(),
        content,
        is_error,
    };
    let Some(tool) = rounds.offered.iter().find(|o| o.exposed == call.name) else {
        tracing::warn!(tool = %call.name, "the model called a tool it was not offered");
        return result(
            format!("There is no tool named {:?} here.", call.name),
            true,
        );
    };
    if tool.confirm {
        let wait = approval::ask(runner, &rounds.asker, tool, &call.arguments).await;
        if wait != Wait::Approved {
            record::record(
                runner,
                &rounds.asker,
                &tool.server,
                &tool.tool,
                &call.arguments,
                Outcome::Denied,
                started.elapsed(),
            )
            .await;
            let why = match wait {
                Wait::Expired => crate::strings::TOOL_NOT_APPROVED_IN_TIME,
                Wait::Unasked => crate::strings::TOOL_APPROVAL_UNAVAILABLE,
                _ => crate::strings::TOOL_DENIED,
            };
            return result(why.to_owned(), true);
        }
    }
    let called = Instant::now();
    let outcome = runner
        .tools
        .call(&tool.server, &tool.tool, &call.arguments)
        .await;
    let took = called.elapsed();
    let (content, is_error, outcome_label) = match outcome {
        CallResult::Done { text, is_error } => {
            tracing::debug!(server = %tool.server, tool = %tool.tool, output = %cut(&text, LOGGED_OUTPUT_CHARS), "tool output");
            let label = if is_error {
                Outcome::Error
            } else {
                Outcome::Ok
            };
            (bounded(text), is_error, label)
        }
        CallResult::TimedOut(after) => (
            format!(
                "The tool did not answer within {} s (timeout).",
                after.as_secs_f64()
            ),
            true,
            Outcome::Timeout,
        ),
        CallResult::Failed(why) => (format!("The tool call failed: {why}"), true, Outcome::Error),
    };
    record::record(
        runner,
        &rounds.asker,
        &tool.server,
        &tool.tool,
        &call.arguments,
        outcome_label,
        took,
    )
    .await;
    result(content, is_error)
}

/// A tool's output cut to [`MAX_RESULT_BYTES`] (at a character boundary), with a note.
pub fn bounded(text: String) -> String {
    if text.len() <= MAX_RESULT_BYTES {
        return text;
    }
    let total = text.len();
    let mut end = MAX_RESULT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}\n[output cut: the first {end} of {total} bytes]",
        &text[..end]
    )
}

fn cut(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_output_is_cut_with_a_note() {
        assert_eq!(bounded("short".into()), "short");
        let long = "é".repeat(MAX_RESULT_BYTES);
        let cut = bounded(long.clone());
        let (kept, note) = cut.split_once("\n[output cut").unwrap();
        assert!(kept.len() <= MAX_RESULT_BYTES);
        assert!(long.starts_with(kept));
        assert!(note.contains(&format!("of {} bytes", long.len())), "{note}");
    }

    #[test]
    fn the_final_request_has_no_tools_and_the_transcript_as_text() {
        let request = ChatRequest {
            messages: vec![
                Message::user("What is 2+3?"),
                Message {
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "calc__add".into(),
                        arguments: serde_json::json!({"a": 2, "b": 3}),
                    }],
                    ..Message::assistant("Let me add.")
                },
                Message {
                    tool_results: vec![ToolResult {
                        call_id: "c1".into(),
                        name: "calc__add".into(),
                        content: "5".into(),
                        is_error: false,
                    }],
                    ..Message::user("")
                },
            ],
            tools: vec![llm::ToolSpec {
                name: "calc__add".into(),
                description: String::new(),
                parameters: serde_json::json!({"type": "object"}),
            }],
            ..ChatRequest::default()
        };
        let last = without_tools(request);
        assert!(last.tools.is_empty());
        assert!(
            last.messages
                .iter()
                .all(|m| m.tool_calls.is_empty() && m.tool_results.is_empty())
        );
        let roles: Vec<_> = last.messages.iter().map(|m| m.role).collect();
        assert_eq!(
            roles,
            [llm::Role::User, llm::Role::Assistant, llm::Role::User]
        );
        assert!(last.messages[1].content.contains("calc__add"));
        assert!(
            last.messages[2]
                .content
                .starts_with("[result of the tool calc__add]\n5")
        );
        assert!(
            last.messages[2]
                .content
                .ends_with(crate::strings::TOOLS_EXHAUSTED)
        );
    }
}
