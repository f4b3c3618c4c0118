//! Assembles the public [`ChatStream`] from a provider's opened stream: thinking removed
//! across chunk boundaries, the call's deadline kept, and the concurrency permit held
//! until the answer is over or the stream is dropped.

use std::time::Duration;

use futures_util::stream;
use tokio::{sync::OwnedSemaphorePermit, time::Instant};

use crate::{
    ChatStream, LlmError, ProviderKind, StreamEvent, provider::StepReader, thinking::ThinkFilter,
};

/// A stream that produced its first piece of text: past the point of failover.
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
    /// The usage event is still to come (after the last text).
    usage_pending: bool,
}

impl State {
    /// The answer is over: free the permit now, not when the caller drops the stream.
    fn end(&mut self) {
        self.permit = None;
    }

    async fn next(&mut self) -> Option<Result<StreamEvent, LlmError>> {
        if self.permit.is_none() {
            return self.usage_event();
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
                Ok(None) => {
                    self.end();
                    let rest = self.filter.as_mut().map(ThinkFilter::finish);
                    return match rest {
                        Some(rest) if !rest.is_empty() => Some(Ok(StreamEvent::Text(rest))),
                        _ if !self.shown_any => {
                            self.usage_pending = false;
                            Some(Err(LlmError::malformed(
                                self.opened.provider,
                                "the answer is empty",
                            )))
                        }
                        _ => self.usage_event(),
                    };
                }
                Err(err) => {
                    self.end();
                    self.usage_pending = false;
                    return Some(Err(err));
                }
            }
        }
    }

    /// The stream's usage, once, after its text; `None` when it reported none.
    fn usage_event(&mut self) -> Option<Result<StreamEvent, LlmError>> {
        if !std::mem::take(&mut self.usage_pending) {
            return None;
        }
        let opened = &self.opened;
        let usage =
            opened
                .reader
                .usage()
                .usage(opened.provider, &opened.model, opened.used_fallback)?;
        Some(Ok(StreamEvent::Usage(usage)))
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
        usage_pending: true,
    };
    Box::pin(stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    }))
}
