//! Voice notes to text through an OpenAI-compatible `POST {STT_BASE_URL}/audio/transcriptions`
//! (OpenAI, whisper.cpp's server, faster-whisper servers): multipart `file` and `model`,
//! `Authorization: Bearer STT_API_KEY` when a key is set; the answer is `{"text": …}`.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::config::Stt;

/// Why a transcription failed (short; never the key, never the audio).
#[derive(Debug, thiserror::Error)]
pub enum SttError {
    #[error("the transcription service answered HTTP {0}")]
    Status(u16),
    #[error("the transcription service could not be reached")]
    Unreachable(#[source] reqwest::Error),
    #[error("the transcription service answered something else than a transcript")]
    Decode,
    #[error("the transcription service URL is not usable")]
    Url,
}

#[derive(serde::Deserialize)]
struct Transcript {
    text: String,
}

/// The transcript of one audio file.
pub async fn transcribe(
    http: &reqwest::Client,
    stt: &Stt,
    timeout: Duration,
    name: &str,
    content_type: &str,
    audio: bytes::Bytes,
) -> Result<String, SttError> {
    let mut url = stt.base_url.clone();
    url.path_segments_mut()
        .map_err(|()| SttError::Url)?
        .pop_if_empty()
        .extend(["audio", "transcriptions"]);
    let part = reqwest::multipart::Part::stream(reqwest::Body::from(audio))
        .file_name(name.to_owned())
        .mime_str(plain_media_type(content_type))
        .map_err(|_| SttError::Decode)?;
    let form = reqwest::multipart::Form::new()
        .part("file", part)
        .text("model", stt.model.clone());
    let mut request = http.post(url).multipart(form).timeout(timeout);
    if let Some(key) = &stt.api_key {
        request = request.bearer_auth(key.expose_secret());
    }
    let response = request.send().await.map_err(SttError::Unreachable)?;
    let status = response.status();
    if !status.is_success() {
        return Err(SttError::Status(status.as_u16()));
    }
    let body = response.bytes().await.map_err(SttError::Unreachable)?;
    let transcript: Transcript = serde_json::from_slice(&body).map_err(|_| SttError::Decode)?;
    Ok(transcript.text.trim().to_owned())
}

/// `content_type` when it is a plain `type/subtype`, else `application/octet-stream`.
fn plain_media_type(content_type: &str) -> &str {
    let ok = content_type.split_once('/').is_some_and(|(t, s)| {
        let token = |x: &str| {
            !x.is_empty()
                && x.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        };
        token(t) && token(s)
    });
    if ok {
        content_type
    } else {
        "application/octet-stream"
    }
}
