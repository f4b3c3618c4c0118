//! How answers are posted: `MAX_REPLY_PARTS`, and streaming into one edited message
//! (`REPLY_STREAMING`, `STREAM_FIRST_POST_MS`, `STREAM_EDIT_MS`, DESIGN §10.2).

use std::time::Duration;

use super::env::{ConfigError, Reader};

/// How answers are streamed into one edited message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streaming {
    pub enabled: bool,
    /// An answer not complete this long after the LLM call started is posted as it stands.
    pub first_post: Duration,
    /// The least time between two writes of the streamed message.
    pub edit_every: Duration,
}

impl Streaming {
    pub(super) fn read(r: &Reader<'_>) -> Result<Streaming, ConfigError> {
        Ok(Streaming {
            enabled: r.bool("REPLY_STREAMING", true)?,
            first_post: Duration::from_millis(r.parse("STREAM_FIRST_POST_MS", 1000u64)?),
            edit_every: Duration::from_millis(r.positive("STREAM_EDIT_MS", 1500u64)?),
        })
    }
}

/// `MAX_REPLY_PARTS`: messages one answer may take (default 5).
pub(super) fn max_reply_parts(r: &Reader<'_>) -> Result<usize, ConfigError> {
    r.positive("MAX_REPLY_PARTS", 5usize)
}
