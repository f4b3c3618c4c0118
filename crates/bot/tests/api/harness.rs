//! The one harness for the `webex-chatbot` binary as a process.
//!
//! [`Bot`] describes a run (arguments, environment, working folder, stdin); [`Bot::spawn`]
//! starts a long-running process ([`BotProcess`]: wait until it answers, `kill -9`,
//! SIGHUP, SIGTERM, wait for its exit, read what it printed; killed when dropped), and
//! [`Bot::output`] runs a one-shot command (`doctor`, `usage export`, `users add`, …) to
//! its end.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, ExitStatus, Output, Stdio};
use std::time::Duration;

use crate::eventually::{eventually, eventually_some};

/// A run of this build's `webex-chatbot` binary, builder-style. The environment starts
/// empty: nothing of the test runner's leaks in.
#[derive(Clone, Debug)]
pub struct Bot {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    output_dir: Option<PathBuf>,
    name: String,
    stdin: Option<Vec<u8>>,
    pipe_stdout: bool,
}

impl Bot {
    /// `webex-chatbot ARGS…`.
    pub fn new<I, S>(args: I) -> Bot
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Bot {
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            dir: None,
            output_dir: None,
            name: "bot".to_owned(),
            stdin: None,
            pipe_stdout: false,
        }
    }

    /// `webex-chatbot` with no arguments yet (for [`Bot::arg`], [`Bot::args`]).
    pub fn binary() -> Bot {
        Bot::new(Vec::<OsString>::new())
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Bot {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Bot
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets `key` (a later value of the same key wins).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Bot {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Bot
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<OsString>,
        V: Into<OsString>,
    {
        self.env
            .extend(vars.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The working folder; a spawned process's output goes to `DIR/NAME.out` and
    /// `DIR/NAME.err` (a folder of its own without this).
    pub fn dir(mut self, dir: &Path) -> Bot {
        self.dir = Some(dir.to_owned());
        self
    }

    /// Where a spawned process's output files go, when not in its working folder.
    pub fn output_dir(mut self, dir: &Path) -> Bot {
        self.output_dir = Some(dir.to_owned());
        self
    }

    /// Names the output files (`bot` unless set), for several processes in one folder.
    pub fn name(mut self, name: &str) -> Bot {
        name.clone_into(&mut self.name);
        self
    }

    /// Writes `input` to the process's stdin, then closes it (stdin is empty without this).
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Bot {
        self.stdin = Some(input.into());
        self
    }

    /// A spawned process's stdout is a pipe for [`BotProcess::take_stdout`] instead of a file.
    pub fn pipe_stdout(mut self) -> Bot {
        self.pipe_stdout = true;
        self
    }

    fn command(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_webex-chatbot"));
        cmd.args(&self.args);
        cmd.env_clear();
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(dir) = &self.dir {
            cmd.current_dir(dir);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        cmd
    }

    /// Runs a one-shot command to its end; its exit status and what it printed.
    pub async fn output(self) -> Output {
        let mut cmd = tokio::process::Command::from(self.command());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = &self.stdin {
            use tokio::io::AsyncWriteExt as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input).await.unwrap();
            drop(stdin);
        }
        child.wait_with_output().await.unwrap()
    }

    /// Starts a long-running process (`serve`, `dev`, `chat`…), killed when dropped.
    pub fn spawn(self) -> BotProcess {
        let (own_dir, dir) = match self.output_dir.as_ref().or(self.dir.as_ref()) {
            Some(dir) => (None, dir.clone()),
            None => {
                let own = tempfile::tempdir().unwrap();
                let path = own.path().to_owned();
                (Some(own), path)
            }
        };
        let out = dir.join(format!("{}.out", self.name));
        let err = dir.join(format!("{}.err", self.name));
        let mut cmd = self.command();
        if self.pipe_stdout {
            cmd.stdout(Stdio::piped());
        } else {
            cmd.stdout(std::fs::File::create(&out).unwrap());
        }
        cmd.stderr(std::fs::File::create(&err).unwrap());
        let mut child = cmd.spawn().unwrap();
        if let Some(input) = &self.stdin {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().unwrap();
            stdin.write_all(input).unwrap();
        }
        BotProcess {
            child,
            out,
            err,
            _own_dir: own_dir,
        }
    }
}

/// A running `webex-chatbot` process; killed (`kill -9`) and reaped when dropped.
pub struct BotProcess {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    _own_dir: Option<tempfile::TempDir>,
}

impl BotProcess {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `GET /health` on `port` answers 200 (up to 15 s); panics with the
    /// process's output if it exits or never gets there.
    pub async fn wait_ready(&mut self, port: u16) {
        self.wait_health(port, true).await;
    }

    /// Waits until the process answers HTTP on `port` at all (whatever `/health` says,
    /// e.g. with no LLM reachable); panics with its output if it exits or never does.
    pub async fn wait_listening(&mut self, port: u16) {
        self.wait_health(port, false).await;
    }

    async fn wait_health(&mut self, port: u16, ok_only: bool) {
        let http = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/health");
        let ready = eventually(Duration::from_secs(15), || {
            let exited = self.try_wait().map(|status| (status, self.output()));
            let answer = http.get(&url).send();
            async move {
                if let Some((status, output)) = exited {
                    panic!("the bot exited ({status}): {output}");
                }
                answer.await.is_ok_and(|r| !ok_only || r.status() == 200)
            }
        })
        .await;
        assert!(
            ready,
            "the bot did not start on port {port}: {}",
            self.output()
        );
    }

    /// `kill -9`, and waits until it is gone.
    pub fn kill_9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn sighup(&self) {
        self.signal("HUP");
    }

    pub fn sigterm(&self) {
        self.signal("TERM");
    }

    fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([format!("-{name}"), self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name} failed");
    }

    /// Its exit status if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// Waits for the process to exit; `None` if it is still running after `limit`.
    pub async fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let child = &mut self.child;
        eventually_some(limit, || {
            let status = child.try_wait().unwrap();
            async move { status }
        })
        .await
    }

    /// The process's stdout (when not piped) as written so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// The process's stderr as written so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    /// Both, labelled, for failure messages and log checks.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    /// The stdout pipe of a process spawned with [`Bot::pipe_stdout`].
    pub fn take_stdout(&mut self) -> ChildStdout {
        self.child.stdout.take().unwrap()
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
