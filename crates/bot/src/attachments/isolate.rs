//! PDF and DOCX extraction in a child process: the bot's own binary, re-run with a hidden
//! first argument, reads the file on stdin and writes the text as JSON on stdout. The
//! child limits its own address space (`RLIMIT_AS`) and CPU time (`RLIMIT_CPU`) before it
//! reads anything, and the parent kills it when it overruns its time. A parser that loops
//! or allocates without end then costs one short-lived process, never the bot's memory or
//! a worker thread (a `spawn_blocking` thread cannot be stopped from outside).
//!
//! Where no child can be started (no executable path), extraction runs in-process in
//! `spawn_blocking` with `catch_unwind` and the same time bound on the wait; a loop would
//! then keep its thread busy (docs/reliability.md says what holds where).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::extract::{self, ExtractError, Extracted};

/// The hidden first argument that makes the binary an extractor.
pub const CHILD_ARG: &str = "__extract-file";
/// The child's address-space limit: the file (at most `MAX_FILE_BYTES`, default 10 MiB),
/// the decompression bounds and the program itself fit well within it.
const CHILD_ADDRESS_SPACE: u64 = 1024 * 1024 * 1024;
/// Input the child reads at most (a bound of its own, whatever the parent sends).
const CHILD_MAX_INPUT: u64 = 256 * 1024 * 1024;

/// Which format a child is asked to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Docx,
}

impl Format {
    fn as_str(self) -> &'static str {
        match self {
            Format::Pdf => "pdf",
            Format::Docx => "docx",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "pdf" => Some(Format::Pdf),
            "docx" => Some(Format::Docx),
            _ => None,
        }
    }

    fn run(self, bytes: &[u8], max_chars: usize) -> Result<Extracted, ExtractError> {
        match self {
            Format::Pdf => extract::pdf(bytes, max_chars),
            Format::Docx => extract::docx(bytes, max_chars),
        }
    }
}

/// How PDF and DOCX extraction is run.
#[derive(Clone, Debug)]
pub enum Isolation {
    /// A child process of this program (the path of the bot's binary).
    Child(PathBuf),
    /// In this process, on a blocking thread (when no binary path is known).
    InProcess,
}

impl Isolation {
    /// The running binary as the child, else in-process.
    pub fn current_exe() -> Self {
        match std::env::current_exe() {
            Ok(path) => Isolation::Child(path),
            Err(e) => {
                tracing::warn!(error = %e, "cannot find this program's path: file extraction runs in-process");
                Isolation::InProcess
            }
        }
    }
}

/// Why extraction produced no text.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Unreadable(#[from] ExtractError),
    #[error("reading it took longer than {} s", .0.as_secs())]
    TimedOut(Duration),
    #[error("reading it failed")]
    Crashed(String),
}

/// The text of a PDF or DOCX, within `timeout`.
pub async fn extract(
    isolation: &Isolation,
    format: Format,
    bytes: bytes::Bytes,
    max_chars: usize,
    timeout: Duration,
) -> Result<Extracted, Failure> {
    match isolation {
        Isolation::Child(program) => in_child(program, format, bytes, max_chars, timeout).await,
        Isolation::InProcess => in_process(format, bytes, max_chars, timeout).await,
    }
}

async fn in_process(
    format: Format,
    bytes: bytes::Bytes,
    max_chars: usize,
    timeout: Duration,
) -> Result<Extracted, Failure> {
    let task = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| format.run(&bytes, max_chars))
    });
    match tokio::time::timeout(timeout, task).await {
        Err(_) => Err(Failure::TimedOut(timeout)),
        Ok(Err(join)) => Err(Failure::Crashed(join.to_string())),
        Ok(Ok(Err(_panic))) => Err(Failure::Crashed("the extractor panicked".into())),
        Ok(Ok(Ok(result))) => Ok(result?),
    }
}

/// What the child writes on stdout.
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Text(Extracted),
    Malformed(String),
    Encrypted,
    NoText,
    TooLarge,
}

async fn in_child(
    program: &PathBuf,
    format: Format,
    bytes: bytes::Bytes,
    max_chars: usize,
    timeout: Duration,
) -> Result<Extracted, Failure> {
    let cpu_secs = timeout.as_secs().saturating_add(1);
    let mut child = tokio::process::Command::new(program)
        .arg(CHILD_ARG)
        .arg(format.as_str())
        .arg(max_chars.to_string())
        .arg(cpu_secs.to_string())
        // Nothing of the bot's environment (tokens, keys) goes to the child.
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::Crashed(format!("cannot start the extractor: {e}")))?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Failure::Crashed("the extractor has no pipes".into()));
    };
    // Enough for `max_chars` of 4-byte characters, JSON-escaped.
    let max_out = u64::try_from(max_chars)
        .unwrap_or(u64::MAX)
        .saturating_mul(12)
        .saturating_add(4096);
    let work = async {
        let feed = async {
            // A child that dies early closes its stdin: its exit status tells why.
            let _ = stdin.write_all(&bytes).await;
            drop(stdin);
        };
        let read = async {
            let mut out = Vec::new();
            let mut limited = stdout.take(max_out);
            limited.read_to_end(&mut out).await.map(|_| out)
        };
        let ((), out) = tokio::join!(feed, read);
        let status = child.wait().await;
        (out, status)
    };
    let (out, status) = match tokio::time::timeout(timeout, work).await {
        Ok(done) => done,
        Err(_) => {
            // `kill_on_drop` also covers a cancelled caller; here, kill and reap now.
            let _ = child.kill().await;
            return Err(Failure::TimedOut(timeout));
        }
    };
    let out = out.map_err(|e| Failure::Crashed(format!("cannot read the extractor: {e}")))?;
    let status = status.map_err(|e| Failure::Crashed(format!("extractor: {e}")))?;
    if !status.success() {
        let detail = match status.code() {
            Some(3) => "the extractor could not limit its memory and CPU time (setrlimit refused: a systemd unit must allow setrlimit and prlimit64)".to_owned(),
            Some(5) => "the extractor panicked".to_owned(),
            _ => format!("the extractor ended with {status}"),
        };
        tracing::warn!(detail, "file extraction failed");
        return Err(Failure::Crashed(detail));
    }
    match serde_json::from_slice::<Answer>(&out) {
        Ok(Answer::Text(extracted)) => Ok(extracted),
        Ok(Answer::Malformed(kind)) => Err(Failure::Unreadable(ExtractError::Malformed(
            if kind == "PDF" { "PDF" } else { "DOCX" },
        ))),
        Ok(Answer::Encrypted) => Err(ExtractError::Encrypted.into()),
        Ok(Answer::NoText) => Err(ExtractError::NoText.into()),
        Ok(Answer::TooLarge) => Err(ExtractError::TooLarge.into()),
        Err(e) => Err(Failure::Crashed(format!(
            "unexpected extractor output: {e}"
        ))),
    }
}

/// The child's side: `Some(exit code)` when this process was started as an extractor
/// (`main` returns it at once), `None` otherwise. Call it first thing in `main`.
pub fn child_main() -> Option<ExitCode> {
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() != Some(CHILD_ARG) {
        return None;
    }
    let format = args.next().as_deref().and_then(Format::parse);
    let max_chars = args.next().and_then(|a| a.parse::<usize>().ok());
    let cpu_secs = args.next().and_then(|a| a.parse::<u64>().ok());
    let (Some(format), Some(max_chars), Some(cpu_secs)) = (format, max_chars, cpu_secs) else {
        eprintln!("usage: webex-chatbot {CHILD_ARG} pdf|docx MAX_CHARS CPU_SECS");
        return Some(ExitCode::from(2));
    };
    // The bounds hold before a byte of the file is read.
    if rlimit::setrlimit(
        rlimit::Resource::AS,
        CHILD_ADDRESS_SPACE,
        CHILD_ADDRESS_SPACE,
    )
    .is_err()
        || rlimit::setrlimit(rlimit::Resource::CPU, cpu_secs, cpu_secs.saturating_add(1)).is_err()
    {
        eprintln!("cannot set the extractor's resource limits");
        return Some(ExitCode::from(3));
    }
    let mut input = Vec::new();
    if std::io::stdin()
        .lock()
        .take(CHILD_MAX_INPUT)
        .read_to_end(&mut input)
        .is_err()
    {
        return Some(ExitCode::from(4));
    }
    let answer = match std::panic::catch_unwind(|| format.run(&input, max_chars)) {
        Ok(Ok(extracted)) => Answer::Text(extracted),
        Ok(Err(ExtractError::Malformed(kind))) => Answer::Malformed(kind.to_owned()),
        Ok(Err(ExtractError::Encrypted)) => Answer::Encrypted,
        Ok(Err(ExtractError::NoText)) => Answer::NoText,
        Ok(Err(ExtractError::TooLarge)) => Answer::TooLarge,
        Err(_) => return Some(ExitCode::from(5)),
    };
    let Ok(json) = serde_json::to_vec(&answer) else {
        return Some(ExitCode::from(6));
    };
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(&json)
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return Some(ExitCode::from(7));
    }
    Some(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attachments::extract::samples;

    #[tokio::test]
    async fn in_process_extraction_is_bounded_in_time() {
        let pdf = bytes::Bytes::from(samples::pdf("hello from a pdf"));
        let got = extract(
            &Isolation::InProcess,
            Format::Pdf,
            pdf,
            100,
            Duration::from_secs(20),
        )
        .await
        .unwrap();
        assert!(got.text.contains("hello from a pdf"));
        let bad = extract(
            &Isolation::InProcess,
            Format::Docx,
            bytes::Bytes::from_static(b"nope"),
            100,
            Duration::from_secs(20),
        )
        .await;
        assert!(matches!(
            bad,
            Err(Failure::Unreadable(ExtractError::Malformed("DOCX")))
        ));
    }

    /// A child that never answers is killed at the time bound.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_hanging_child_is_killed_at_the_time_bound() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("hang.sh");
        std::fs::write(&script, "#!/bin/sh\necho $$ > \"$0.pid\"\nexec sleep 600\n").unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let got = extract(
            &Isolation::Child(script.clone()),
            Format::Pdf,
            bytes::Bytes::from_static(b"%PDF"),
            100,
            Duration::from_millis(300),
        )
        .await;
        assert!(matches!(got, Err(Failure::TimedOut(_))), "{got:?}");
        let pid = std::fs::read_to_string(dir.path().join("hang.sh.pid")).unwrap();
        let alive = std::path::Path::new(&format!("/proc/{}", pid.trim())).exists();
        assert!(!alive, "the child {pid} is still running");
    }
}
