//! Assembles the public [`ChatStream`] from a provider's opened stream: thinking removed
//! across chunk boundaries, the call's deadline kept, and the concurrency permit held
//! until the answer is over or the stream is dropped.

use std::time::Duration;

use futures_util::stream;
use tokio::{sync::OwnedSemaphorePermit, time::Instant};

use crate::{ChatStream, LlmError, ProviderKind, provider::StepReader, thinking::ThinkFilter};

/// A stream that produced its first piece of text: past the point of failover.
pub(crate) struct Opened {
    pub(crate) reader: StepReader,
    pub(crate) first: String,
    pub(crate) provider: ProviderKind,
    pub(crate) deadline: Instant,
    pub(crate) timeout: Duration,
}

struct State {
    opened: Opened,
    first: Option<String>,
    filter: Option<ThinkFilter>,
    permit: Option<OwnedSemaphorePermit>,
    shown_any: bool,
}

impl State {
    /// The answer is over: free the permit now, not when the caller drops the stream.
    fn end(&mut self) {
        self.permit = None;
    }

    async fn next(&mut self) -> Option<Result<String, LlmError>> {
        self.permit.as_ref()?;
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
                        return Some(Ok(shown));
                    }
                }
                Ok(None) => {
                    self.end();
                    let rest = self.filter.as_mut().map(ThinkFilter::finish);
                    return match rest {
                        Some(rest) if !rest.is_empty() => Some(Ok(rest)),
                        _ if !self.shown_any => Some(Err(LlmError::malformed(
                            self.opened.provider,
                            "the answer is empty",
                        ))),
                        _ => None,
                    };
                }
                Err(err) => {
                    self.end();
                    return Some(Err(err));
                }
            }
        }
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
    };
    Box::pin(stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    }))
}
