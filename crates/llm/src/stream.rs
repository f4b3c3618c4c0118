//! Assembles the public [`ChatStream`] from a provider's opened stream: thinking removed
//! across chunk boundaries, the call's deadline kept, the tool calls and usage after the
//! text, and the concurrency permit held until the answer is over or the stream is
//! dropped.

use std::{collections::VecDeque, time::Duration};

use futures_util::stream;
use tokio::{sync::OwnedSemaphorePermit, time::Instant};

use crate::{
    ChatStream, LlmError, ProviderKind, StreamEvent, provider::StepReader, thinking::ThinkFilter,
};

/// A stream that produced its first piece of text (or, with no text, ended with tool
/// calls): past the point of failover.
pub(crate) struct Opened {
    pub(crate) reader: StepReader,
    pub(crate) first: String,
    pub(crate) provider: ProviderKind,
    pub(crate) model: String,
    /// The fallback answers this stream (its usage says so).
    pub(crate) used_fallback: bool,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
}

struct State {
    opened: Opened,
    first: Option<String>,
    filter: Option<ThinkFilter>,
    permit: Option<OwnedSemaphorePermit>,
    shown_any: bool,
    /// The events after the last text, once the answer is over: its tool calls and
    /// usage.
    tail: VecDeque<StreamEvent>,
    /// The answer is over (or failed): only `tail` is left.
    over: bool,
}

impl State {
    /// The answer is over: free the permit now, not when the caller drops the stream.
    fn end(&mut self) {
        self.permit = None;
    }

    async fn next(&mut self) -> Option<Result<StreamEvent, LlmError>> {
        if self.over {
            return self.tail.pop_front().map(Ok);
        }
        loop {
            let raw = match self.first.take() {
                Some(first) => Ok(Some(first)),
                None => {
                    let next = self.opened.reader.next_text();
                    match tokio::time::timeout_at(self.opened.deadline, next).await {
                        Ok(result) => result,
                        Err(_) => Err(LlmError::Timeout {
                            provider: self.opened.provider,
                            after: self.opened.timeout,
                        }),
                    }
                }
            };
            match raw {
                Ok(Some(raw)) => {
                    let shown = match &mut self.filter {
                        Some(filter) => filter.push(&raw),
                        None => raw,
                    };
                    if !shown.is_empty() {
                        self.shown_any = true;
                        return Some(Ok(StreamEvent::Text(shown)));
                    }
                }
                Ok(None) => return self.finish(),
                Err(err) => {
                    self.end();
                    self.over = true;
                    return Some(Err(err));
                }
            }
        }
    }

    /// The text is over: what the thinking filter held back, then the tool calls and the
    /// usage. No text and no calls is an empty answer.
    fn finish(&mut self) -> Option<Result<StreamEvent, LlmError>> {
        self.end();
        self.over = true;
        let rest = self.filter.as_mut().map(ThinkFilter::finish);
        if let Some(rest) = rest.filter(|rest| !rest.is_empty()) {
            self.shown_any = true;
            self.tail.push_back(StreamEvent::Text(rest));
        }
        let calls = match self.opened.reader.take_tool_calls() {
            Ok(calls) => calls,
            Err(err) => {
                self.tail.clear();
                return Some(Err(err));
            }
        };
        if calls.is_empty() && !self.shown_any {
            self.tail.clear();
            return Some(Err(LlmError::malformed(
                self.opened.provider,
                "the answer is empty",
            )));
        }
        if !calls.is_empty() {
            self.tail.push_back(StreamEvent::ToolCalls(calls));
        }
        let opened = &self.opened;
        let usage =
            opened
                .reader
                .usage()
                .usage(opened.provider, &opened.model, opened.used_fallback);
        self.tail.extend(usage.map(StreamEvent::Usage));
        self.tail.pop_front().map(Ok)
    }
}

pub(crate) fn chat_stream(
    mut opened: Opened,
    permit: OwnedSemaphorePermit,
    show_thinking: bool,
) -> ChatStream {
    let first = Some(std::mem::take(&mut opened.first));
    let state = State {
        opened,
        first,
        filter: (!show_thinking).then(ThinkFilter::default),
        permit: Some(permit),
        shown_any: false,
        tail: VecDeque::new(),
        over: false,
    };
    Box::pin(stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    }))
}
