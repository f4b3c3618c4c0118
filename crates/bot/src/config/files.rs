//! Files, images and voice notes (`MAX_FILE_BYTES`, `FILE_MAX_CHARS`, `LLM_VISION`,
//! `STT_…`, DESIGN §10.4).

use secrecy::SecretString;
use url::Url;

use super::env::{ConfigError, Reader};

/// What the bot does with a message's files.
#[derive(Clone, Debug)]
pub struct Files {
    /// `MAX_FILE_BYTES`: a larger file is never read past this.
    pub max_bytes: u64,
    /// `FILE_MAX_CHARS`: a file's text is cut to this many characters.
    pub max_chars: usize,
    /// `LLM_VISION`: the model sees images (a personality's `vision` overrides it).
    pub vision: bool,
    /// `STT_BASE_URL` and friends: voice notes are transcribed when set.
    pub stt: Option<Stt>,
}

/// An OpenAI-compatible transcription service.
#[derive(Clone, Debug)]
pub struct Stt {
    /// `STT_BASE_URL`, usually ending in `/v1`.
    pub base_url: Url,
    /// `STT_MODEL`.
    pub model: String,
    /// `STT_API_KEY`.
    pub api_key: Option<SecretString>,
}

impl Files {
    pub(super) fn read(r: &Reader<'_>) -> Result<Files, ConfigError> {
        Ok(Files {
            max_bytes: r.positive("MAX_FILE_BYTES", 10_485_760u64)?,
            max_chars: r.positive("FILE_MAX_CHARS", 20_000usize)?,
            vision: r.bool("LLM_VISION", true)?,
            stt: r.url("STT_BASE_URL")?.map(|base_url| Stt {
                base_url,
                model: r.opt("STT_MODEL").unwrap_or_else(|| "whisper-1".to_owned()),
                api_key: r.secret("STT_API_KEY"),
            }),
        })
    }
}
