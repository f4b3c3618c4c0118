//! Reading a `ChatStream` in tests: its text deltas, the whole text, its usage events.

pub fn strings(pieces: &[&str]) -> Vec<String> {
    pieces.iter().map(|p| (*p).to_owned()).collect()
}

/// Every delta of a stream that must not fail.
pub async fn deltas(stream: llm::ChatStream) -> Vec<String> {
    use futures_util::StreamExt;
    stream
        .filter_map(|event| async move { text(event.unwrap()) })
        .collect()
        .await
}

/// The text of a stream event; `None` for tool calls and usage.
pub fn text(event: llm::StreamEvent) -> Option<String> {
    match event {
        llm::StreamEvent::Text(text) => Some(text),
        _ => None,
    }
}

/// Concatenates a stream, stopping at the first error.
pub async fn collect(stream: llm::ChatStream) -> Result<String, llm::LlmError> {
    use futures_util::TryStreamExt;
    stream
        .try_filter_map(|event| async move { Ok(text(event)) })
        .try_collect::<Vec<String>>()
        .await
        .map(|parts| parts.concat())
}

/// The usage events of a stream that must not fail, with how many text events came after
/// the first of them (none may: usage comes last).
pub async fn usage_events(stream: llm::ChatStream) -> (Vec<llm::Usage>, usize) {
    use futures_util::StreamExt;
    let events: Vec<llm::StreamEvent> = stream.map(|e| e.unwrap()).collect().await;
    let first = events
        .iter()
        .position(|e| matches!(e, llm::StreamEvent::Usage(_)))
        .unwrap_or(events.len());
    let text_after = events[first..]
        .iter()
        .filter(|e| matches!(e, llm::StreamEvent::Text(_)))
        .count();
    let usage = events
        .into_iter()
        .filter_map(|e| match e {
            llm::StreamEvent::Usage(u) => Some(u),
            _ => None,
        })
        .collect();
    (usage, text_after)
}
