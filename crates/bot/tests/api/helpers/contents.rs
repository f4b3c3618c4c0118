//! Files the fake Webex serves at `/contents/{id}`, and messages that carry them.

use super::*;

/// How the fake Webex serves one `GET /contents/{id}`.
#[derive(Clone, Debug)]
pub enum FileServe {
    /// `200` with `Content-Disposition: attachment; filename="…"`, `Content-Type` and
    /// `Content-Length`.
    File {
        name: String,
        content_type: String,
        bytes: Vec<u8>,
    },
    /// The same without `Content-Length` (chunked), as a proxy may send it.
    Chunked {
        name: String,
        content_type: String,
        bytes: Vec<u8>,
    },
    /// `423` (still being scanned) `times` times, with `Retry-After` when given, then `then`.
    Scanning {
        times: usize,
        retry_after: Option<&'static str>,
        then: Box<FileServe>,
    },
    /// A bare status: `404`, `410` (removed as malware), `428` (cannot be scanned).
    Status(u16),
}

impl FileServe {
    pub fn file(name: &str, content_type: &str, bytes: impl Into<Vec<u8>>) -> Self {
        FileServe::File {
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            bytes: bytes.into(),
        }
    }
}

/// Fake `GET /contents/{id}`: the bot token or `401`, then as `FileServe` says.
pub(super) struct Contents {
    pub(super) serve: FileServe,
    pub(super) tries: Mutex<usize>,
}

impl Respond for Contents {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        if auth != Some(format!("Bearer {TOKEN}").as_str()) {
            return webex_error_body(
                401,
                "The request requires a valid access token set in the Authorization request header.",
            );
        }
        let mut tries = self.tries.lock().unwrap();
        *tries += 1;
        let mut serve = &self.serve;
        let mut served_before = *tries - 1;
        loop {
            match serve {
                FileServe::Scanning {
                    times,
                    retry_after,
                    then,
                } => {
                    if served_before < *times {
                        let mut r = webex_error_body(423, "File is being scanned for malware");
                        if let Some(wait) = retry_after {
                            r = r.insert_header("retry-after", *wait);
                        }
                        return r;
                    }
                    served_before -= times;
                    serve = then;
                }
                FileServe::Status(status) => {
                    return webex_error_body(*status, "file not available");
                }
                FileServe::File {
                    name,
                    content_type,
                    bytes,
                } => {
                    return ResponseTemplate::new(200)
                        .insert_header(
                            "content-disposition",
                            format!("attachment; filename=\"{name}\"").as_str(),
                        )
                        .set_body_raw(bytes.clone(), content_type);
                }
                FileServe::Chunked {
                    name,
                    content_type,
                    bytes,
                } => {
                    return ResponseTemplate::new(200)
                        .insert_header(
                            "content-disposition",
                            format!("attachment; filename=\"{name}\"").as_str(),
                        )
                        // hyper then sends no Content-Length.
                        .insert_header("transfer-encoding", "chunked")
                        .set_body_raw(bytes.clone(), content_type);
                }
            }
        }
    }
}

/// Makes the fake Webex serve `/contents/{id}` as `serve` says; returns the file's URL
/// as a message's `files` lists it.
pub async fn mount_file(webex: &MockServer, id: &str, serve: FileServe) -> String {
    Mock::given(method("GET"))
        .and(path(format!("/contents/{id}")))
        .respond_with(Contents {
            serve,
            tries: Mutex::new(0),
        })
        .mount(webex)
        .await;
    format!("{}/contents/{id}", webex.uri())
}

/// How often the fake Webex was asked for `/contents/{id}`.
pub async fn file_requests(webex: &MockServer, id: &str) -> usize {
    webex
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == format!("/contents/{id}"))
        .count()
}

/// A direct message with files (URLs from [`mount_file`]) and this text.
pub fn direct_message_with_files(
    id: &str,
    room: &str,
    email: &str,
    text: &str,
    files: &[String],
) -> Value {
    let mut m = direct_message(id, room, email, text);
    if text.is_empty() {
        m.as_object_mut().unwrap().remove("text");
        m.as_object_mut().unwrap().remove("markdown");
    }
    m["files"] = json!(files);
    m
}
