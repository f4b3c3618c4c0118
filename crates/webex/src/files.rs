//! Downloading a message's files (`…/contents/{id}` URLs) with the bot token: streamed,
//! never read past a byte limit, only from the configured API host. Webex answers `423`
//! while it scans a file for malware (retried after `Retry-After`), `410` for a file it
//! removed, `428` for one it cannot scan; each is an outcome, not an error.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use secrecy::ExposeSecret;
use url::Url;

use crate::client::Client;
use crate::error::Error;

/// Where Webex's own API serves a message's files.
const WEBEX_CONTENTS: &str = "https://webexapis.com/v1/contents/";

/// How long to wait for a file Webex is still scanning (`423`), and how often to ask.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DownloadPolicy {
    /// Tries in all while Webex answers `423` (the first included).
    pub max_tries: u32,
    /// Wait after a `423` without a usable `Retry-After`.
    pub default_wait: Duration,
    /// The longest wait a `Retry-After` may ask for.
    pub max_wait: Duration,
}

impl Default for DownloadPolicy {
    fn default() -> Self {
        Self {
            max_tries: 5,
            default_wait: Duration::from_secs(5),
            max_wait: Duration::from_secs(30),
        }
    }
}

impl DownloadPolicy {
    /// The same tries with millisecond waits, for tests against fake servers.
    pub fn fast_for_tests() -> Self {
        Self {
            max_tries: 5,
            default_wait: Duration::from_millis(5),
            max_wait: Duration::from_millis(20),
        }
    }

    /// The wait a `423` asks for: `Retry-After` in seconds, else the default; capped.
    fn wait(&self, retry_after: Option<&str>) -> Duration {
        retry_after
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            .map_or(self.default_wait, |secs| {
                Duration::try_from_secs_f64(secs).unwrap_or(self.max_wait)
            })
            .min(self.max_wait)
    }
}

/// A downloaded file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileContent {
    /// From `Content-Disposition` (path parts and control characters removed), else `file`.
    pub name: String,
    /// From `Content-Type` without parameters, lowercased; when that is missing or generic
    /// (`application/octet-stream`), guessed from the name's extension.
    pub content_type: String,
    pub bytes: Bytes,
}

/// What became of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Download {
    File(FileContent),
    /// `404` or `410`: deleted, or removed by Webex as malware.
    Gone,
    /// `428`: Webex could not scan it, and will not hand it out.
    Unscannable,
    /// Still `423` (being scanned) after every try.
    StillScanning,
    /// Larger than the limit: `size` when `Content-Length` said so; otherwise reading
    /// stopped at the limit.
    TooLarge {
        size: Option<u64>,
        limit: u64,
    },
}

impl Client {
    /// Downloads one of a message's file URLs with the bot token, holding at most
    /// `max_bytes` of it in memory. The URL must be on the configured API's origin (the
    /// token is never sent elsewhere): else [`Error::InvalidUrl`]. `423` is retried after
    /// `Retry-After` as the download policy says; `429`, `5xx` and connection errors as
    /// the retry policy says; other failures are errors.
    pub async fn download_file(&self, url: &str, max_bytes: u64) -> Result<Download, Error> {
        let url = self.file_url(url)?;
        let path = url.path().to_owned();
        let policy = self.download_policy();
        let retry = self.retry_policy();
        let mut scanning_tries = 0;
        let mut retries = 0;
        loop {
            let request = self
                .http()
                .get(url.clone())
                .bearer_auth(self.token().expose_secret())
                .timeout(self.timeout());
            let response = match request.send().await {
                Ok(response) => response,
                Err(error)
                    if retries < retry.max_retries
                        && (error.is_connect() || error.is_timeout() || error.is_request()) =>
                {
                    let wait = retry.backoff(retries);
                    retries += 1;
                    tracing::warn!(path, retry = retries, error = %error, "Webex unreachable for a file; retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                Err(error) => return Err(Error::Transport(error)),
            };
            let status = response.status();
            if !status.is_success() {
                self.observe(status.as_u16());
            }
            let retry_after = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let wait = match status {
                s if s.is_success() => return read_file(response, max_bytes).await,
                StatusCode::NOT_FOUND | StatusCode::GONE => return Ok(Download::Gone),
                StatusCode::PRECONDITION_REQUIRED => return Ok(Download::Unscannable),
                StatusCode::LOCKED => {
                    scanning_tries += 1;
                    if scanning_tries >= policy.max_tries {
                        return Ok(Download::StillScanning);
                    }
                    policy.wait(retry_after.as_deref())
                }
                StatusCode::TOO_MANY_REQUESTS if retries < retry.max_retries => {
                    retries += 1;
                    retry.retry_after(retry_after.as_deref())
                }
                s if s.is_server_error() && retries < retry.max_retries => {
                    retries += 1;
                    retry.backoff(retries - 1)
                }
                _ => {
                    let failure = crate::client::Failure::read(response).await;
                    return Err(
                        failure.into_error(status, retry.retry_after(retry_after.as_deref()))
                    );
                }
            };
            tracing::info!(
                path,
                status = status.as_u16(),
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "file not ready; retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// `raw` if it is on the API's origin (scheme, host and port). A file URL of Webex's
    /// own API (`https://webexapis.com/v1/contents/…`) while the bot talks to Webex through
    /// another `WEBEX_API_URL` (a gateway) is fetched through that one, at the same path
    /// under it: the token still goes only to the configured API.
    fn file_url(&self, raw: &str) -> Result<Url, Error> {
        let mut url = Url::parse(raw).map_err(|e| Error::InvalidUrl(format!("file URL: {e}")))?;
        if url.origin() != self.base_url().origin()
            && let Some(rest) = raw.strip_prefix(WEBEX_CONTENTS)
        {
            let base = self.base_url().as_str().trim_end_matches('/');
            url = Url::parse(&format!("{base}/contents/{rest}"))
                .map_err(|e| Error::InvalidUrl(format!("file URL: {e}")))?;
        }
        if url.origin() != self.base_url().origin() {
            return Err(Error::InvalidUrl(format!(
                "file URL is not on the Webex API host ({}): the token is not sent there",
                url.origin().ascii_serialization()
            )));
        }
        Ok(url)
    }
}

/// Reads a 2xx answer's body up to `max_bytes`: refused at once when `Content-Length`
/// says it is larger, abandoned as soon as more arrives than that.
async fn read_file(response: reqwest::Response, max_bytes: u64) -> Result<Download, Error> {
    let headers = response.headers();
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(size) = declared
        && size > max_bytes
    {
        return Ok(Download::TooLarge {
            size: Some(size),
            limit: max_bytes,
        });
    }
    let name = headers
        .get(CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .and_then(filename_of)
        .unwrap_or_else(|| "file".to_owned());
    let declared_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(media_type)
        .unwrap_or_default();
    let content_type = content_type_of(&declared_type, &name);
    let capacity = usize::try_from(declared.unwrap_or(0).min(max_bytes)).unwrap_or(0);
    let mut body = BytesMut::with_capacity(capacity);
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(Error::Transport)?;
        if u64::try_from(body.len() + chunk.len()).unwrap_or(u64::MAX) > max_bytes {
            return Ok(Download::TooLarge {
                size: None,
                limit: max_bytes,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Download::File(FileContent {
        name,
        content_type,
        bytes: body.freeze(),
    }))
}

/// `type/subtype` of a `Content-Type` value, lowercased, without parameters.
fn media_type(value: &str) -> String {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// The declared type, or one guessed from the name when the declared one says nothing.
pub fn content_type_of(declared: &str, name: &str) -> String {
    let generic = matches!(
        declared,
        "" | "application/octet-stream" | "binary/octet-stream" | "application/unknown"
    ) || !declared.contains('/');
    if !generic {
        return declared.to_owned();
    }
    guess_type(name)
        .map(str::to_owned)
        .unwrap_or_else(|| "application/octet-stream".to_owned())
}

/// A media type for common extensions (what Webex clients upload).
pub fn guess_type(name: &str) -> Option<&'static str> {
    let (_, ext) = name.rsplit_once('.')?;
    Some(match ext.to_ascii_lowercase().as_str() {
        "txt" | "log" | "text" => "text/plain",
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "xml" => "application/xml",
        "html" | "htm" => "text/html",
        "pdf" => "application/pdf",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "mp3" => "audio/mpeg",
        "m4a" => "audio/mp4",
        "wav" => "audio/wav",
        "ogg" | "oga" | "opus" => "audio/ogg",
        "webm" => "audio/webm",
        "flac" => "audio/flac",
        "aac" => "audio/aac",
        _ => return None,
    })
}

/// The file name of a `Content-Disposition` value: `filename*=UTF-8''…` (RFC 5987) wins
/// over `filename=…`; path parts, quotes and control characters are removed, and the
/// result is at most 200 characters. `None` when there is no usable name.
pub fn filename_of(disposition: &str) -> Option<String> {
    let mut plain = None;
    let mut extended = None;
    for param in split_params(disposition).into_iter().skip(1) {
        let Some((key, value)) = param.split_once('=') else {
            continue;
        };
        let key = key.trim().to_ascii_lowercase();
        let value = value.trim();
        if key == "filename*" {
            // charset'language'percent-encoded
            let mut parts = value.splitn(3, '\'');
            let (charset, _lang, encoded) = (parts.next(), parts.next(), parts.next());
            if let (Some(charset), Some(encoded)) = (charset, encoded)
                && (charset.eq_ignore_ascii_case("utf-8") || charset.is_empty())
            {
                let bytes = percent_decode(encoded.trim_matches('"'));
                extended = Some(String::from_utf8_lossy(&bytes).into_owned());
            }
        } else if key == "filename" {
            plain = Some(unquote(value));
        }
    }
    let raw = extended.or(plain)?;
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(200)
        .collect();
    let clean = clean.trim().to_owned();
    (!clean.is_empty() && clean != "." && clean != "..").then_some(clean)
}

/// Splits at `;` outside quoted strings.
fn split_params(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in value.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            ';' if !quoted => {
                parts.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"') else {
        return value.to_owned();
    };
    let inner = inner.strip_suffix('"').unwrap_or(inner);
    let mut out = String::with_capacity(inner.len());
    let mut escaped = false;
    for c in inner.chars() {
        if escaped || c != '\\' {
            out.push(c);
            escaped = false;
        } else {
            escaped = true;
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn hex_val(b: u8) -> Option<u8> {
    (b as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_from_content_disposition() {
        let cases: &[(&str, Option<&str>)] = &[
            (r#"attachment; filename="report.pdf""#, Some("report.pdf")),
            ("attachment; filename=notes.txt", Some("notes.txt")),
            (r#"attachment; filename="a;b.txt"; size=3"#, Some("a;b.txt")),
            (
                "attachment; filename=\"fallback.txt\"; filename*=UTF-8''%C3%A9t%C3%A9%20plan.md",
                Some("été plan.md"),
            ),
            (r#"inline; filename=..\..\etc\passwd"#, Some("passwd")),
            (r#"attachment; filename="/tmp/x/y.log""#, Some("y.log")),
            (
                r#"attachment; filename="say \"hi\".txt""#,
                Some("say hi.txt"),
            ),
            (r#"attachment; filename="..""#, None),
            ("attachment", None),
            (r#"attachment; filename="""#, None),
            ("attachment; filename*=UTF-8''%E2%82", Some("\u{FFFD}")),
            ("attachment; filename*=UTF-8''100%", Some("100%")),
        ];
        for (value, want) in cases {
            assert_eq!(filename_of(value).as_deref(), *want, "{value}");
        }
        let long = format!("attachment; filename=\"{}.txt\"", "x".repeat(500));
        assert_eq!(filename_of(&long).unwrap().chars().count(), 200);
    }

    #[test]
    fn generic_types_are_guessed_from_the_name() {
        let cases = [
            ("text/plain", "a.pdf", "text/plain"),
            ("application/octet-stream", "a.PDF", "application/pdf"),
            ("", "photo.jpeg", "image/jpeg"),
            (
                "binary/octet-stream",
                "x.unknown",
                "application/octet-stream",
            ),
            ("nonsense", "voice.m4a", "audio/mp4"),
            (
                "application/octet-stream",
                "noext",
                "application/octet-stream",
            ),
        ];
        for (declared, name, want) in cases {
            assert_eq!(content_type_of(declared, name), want, "{declared} {name}");
        }
        assert_eq!(media_type("Text/Plain; charset=UTF-8"), "text/plain");
    }

    #[test]
    fn scanning_waits_follow_retry_after_within_bounds() {
        let p = DownloadPolicy::default();
        assert_eq!(p.wait(None), Duration::from_secs(5));
        assert_eq!(p.wait(Some("2")), Duration::from_secs(2));
        assert_eq!(p.wait(Some("600")), Duration::from_secs(30));
        assert_eq!(p.wait(Some("soon")), Duration::from_secs(5));
        assert_eq!(p.wait(Some("-3")), Duration::from_secs(5));
    }
}

#[cfg(test)]
mod download_tests {
    use super::*;
    use crate::{ClientConfig, RetryPolicy};
    use secrecy::SecretString;
    use wiremock::matchers::{header, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    const TOKEN: &str = "tok-SECRET";

    fn client(server: &MockServer) -> Client {
        Client::new(
            reqwest::Client::new(),
            ClientConfig {
                base_url: format!("{}/v1", server.uri()).parse().unwrap(),
                token: SecretString::from(TOKEN),
                retry: RetryPolicy::fast_for_tests(),
            },
        )
        .with_download_policy(DownloadPolicy::fast_for_tests())
    }

    async fn serve(server: &MockServer, id: &str, template: ResponseTemplate) {
        Mock::given(method("GET"))
            .and(path(format!("/v1/contents/{id}")))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(template)
            .mount(server)
            .await;
    }

    #[tokio::test]
    async fn outcomes_by_status() {
        let server = MockServer::start().await;
        let file = ResponseTemplate::new(200)
            .insert_header("content-type", "application/octet-stream")
            .insert_header("content-disposition", r#"attachment; filename="notes.md""#)
            .set_body_bytes(b"# hi".to_vec());
        serve(&server, "ok", file).await;
        serve(&server, "gone", ResponseTemplate::new(410)).await;
        serve(&server, "missing", ResponseTemplate::new(404)).await;
        serve(&server, "unscannable", ResponseTemplate::new(428)).await;
        serve(
            &server,
            "scanning",
            ResponseTemplate::new(423).insert_header("retry-after", "0"),
        )
        .await;
        serve(
            &server,
            "big",
            ResponseTemplate::new(200).set_body_bytes(vec![b'x'; 101]),
        )
        .await;
        serve(&server, "forbidden", ResponseTemplate::new(403)).await;
        let c = client(&server);
        let url = |id: &str| format!("{}/v1/contents/{id}", server.uri());
        assert_eq!(
            c.download_file(&url("ok"), 100).await.unwrap(),
            Download::File(FileContent {
                name: "notes.md".into(),
                content_type: "text/markdown".into(),
                bytes: Bytes::from_static(b"# hi"),
            })
        );
        assert_eq!(
            c.download_file(&url("gone"), 100).await.unwrap(),
            Download::Gone
        );
        assert_eq!(
            c.download_file(&url("missing"), 100).await.unwrap(),
            Download::Gone
        );
        assert_eq!(
            c.download_file(&url("unscannable"), 100).await.unwrap(),
            Download::Unscannable
        );
        assert_eq!(
            c.download_file(&url("scanning"), 100).await.unwrap(),
            Download::StillScanning
        );
        assert_eq!(
            c.download_file(&url("big"), 100).await.unwrap(),
            Download::TooLarge {
                size: Some(101),
                limit: 100
            }
        );
        assert!(matches!(
            c.download_file(&url("forbidden"), 100).await,
            Err(Error::Http { status: 403, .. })
        ));
        let scans = server
            .received_requests()
            .await
            .unwrap()
            .iter()
            .filter(|r| r.url.path().ends_with("/scanning"))
            .count();
        assert_eq!(scans, 5, "at most 5 tries while the file is scanned");
    }

    #[tokio::test]
    async fn the_token_never_leaves_the_api_host() {
        let webex = MockServer::start().await;
        let elsewhere = MockServer::start().await;
        let c = client(&webex);
        for url in [
            format!("{}/v1/contents/x", elsewhere.uri()),
            "https://webexapis.com.evil.example/v1/contents/x".to_owned(),
            "not a url".to_owned(),
        ] {
            assert!(
                matches!(c.download_file(&url, 100).await, Err(Error::InvalidUrl(_))),
                "{url}"
            );
        }
        assert!(elsewhere.received_requests().await.unwrap().is_empty());
        assert!(webex.received_requests().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_webex_file_url_goes_through_the_configured_api() {
        let webex = MockServer::start().await;
        Mock::given(method("GET"))
            .and(path("/v1/contents/abc"))
            .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-disposition", "attachment; filename=\"notes.txt\"")
                    .insert_header("content-type", "text/plain")
                    .set_body_string("hello"),
            )
            .expect(1)
            .mount(&webex)
            .await;
        let c = client(&webex);
        let got = c
            .download_file("https://webexapis.com/v1/contents/abc", 100)
            .await
            .unwrap();
        let Download::File(file) = got else {
            panic!("not a file: {got:?}");
        };
        assert_eq!(file.name, "notes.txt");
        assert_eq!(&file.bytes[..], b"hello");
    }

    /// A body sent without `Content-Length` (chunked) is abandoned at the limit.
    #[tokio::test]
    async fn stops_reading_at_the_limit_without_content_length() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            // Up to 64 MiB in 64 KiB chunks, unless the client hangs up first.
            let chunk = vec![b'a'; 65_536];
            for _ in 0..1024 {
                let frame = format!("{:x}\r\n", chunk.len());
                if socket.write_all(frame.as_bytes()).await.is_err()
                    || socket.write_all(&chunk).await.is_err()
                    || socket.write_all(b"\r\n").await.is_err()
                {
                    return;
                }
                counter.fetch_add(chunk.len(), std::sync::atomic::Ordering::SeqCst);
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        });
        let c = Client::new(
            reqwest::Client::new(),
            ClientConfig {
                base_url: format!("http://127.0.0.1:{port}/v1").parse().unwrap(),
                token: SecretString::from(TOKEN),
                retry: RetryPolicy::fast_for_tests(),
            },
        );
        let got = c
            .download_file(&format!("http://127.0.0.1:{port}/v1/contents/x"), 1_000_000)
            .await
            .unwrap();
        assert_eq!(
            got,
            Download::TooLarge {
                size: None,
                limit: 1_000_000
            }
        );
        // The server could push some more into socket buffers, not the whole 64 MiB.
        assert!(sent.load(std::sync::atomic::Ordering::SeqCst) < 32 << 20);
    }
}
