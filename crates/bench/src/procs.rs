//! The real binaries as child processes, and what /proc says about them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn spawn(
    name: &'static str,
    bin: &Path,
    args: &[&str],
    dir: &Path,
    env: &[(&str, String)],
) -> anyhow::Result<Proc> {
    let log = std::fs::File::create(dir.join(format!("{name}.log")))?;
    // The child runs in `dir`: a relative path (as given on the command line) is taken
    // from here, not from there.
    let bin = std::path::absolute(bin)?;
    let mut cmd = Command::new(&bin);
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().with_context(|| {
        format!(
            "starting {} (build it with cargo build --release)",
            bin.display()
        )
    })?;
    Ok(Proc { child, name })
}

/// Waits (at most `limit`) until `url` answers 200.
pub async fn wait_ready(
    proc: &mut Proc,
    url: &str,
    dir: &Path,
    limit: Duration,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let begin = Instant::now();
    while begin.elapsed() < limit {
        if let Some(status) = proc.child.try_wait()? {
            let log =
                std::fs::read_to_string(dir.join(format!("{}.log", proc.name))).unwrap_or_default();
            bail!("{} exited with {status}:\n{log}", proc.name);
        }
        if let Ok(r) = http.get(url).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{} did not answer {url} within {limit:?}", proc.name)
}

/// A `VmRSS`/`VmHWM`-style field of /proc/PID/status, in KiB.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU time of a process, in seconds (USER_HZ = 100 on Linux).
pub fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The whole machine's CPU time so far, in ticks: (stolen by the hypervisor, all). Stolen
/// time is when this VM's CPUs wanted to run and the host ran something else: a run with
/// much of it measured the neighbours as much as the bot.
pub fn machine_ticks() -> (u64, u64) {
    let Ok(stat) = std::fs::read_to_string("/proc/stat") else {
        return (0, 0);
    };
    let Some(fields) = stat.lines().next().and_then(|l| l.strip_prefix("cpu ")) else {
        return (0, 0);
    };
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let ticks: Vec<u64> = fields
        .split_whitespace()
        .take(8)
        .filter_map(|f| f.parse().ok())
        .collect();
    (ticks.get(7).copied().unwrap_or(0), ticks.iter().sum())
}

/// The share of the machine's CPU time stolen between two [`machine_ticks`], in percent.
pub fn steal_percent(before: (u64, u64), after: (u64, u64)) -> f64 {
    let all = after.1.saturating_sub(before.1);
    if all == 0 {
        return 0.0;
    }
    after.0.saturating_sub(before.0) as f64 / all as f64 * 100.0
}

pub fn default_bin(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    PathBuf::from(target).join("release").join(name)
}

#[cfg(test)]
mod tests {
    use std::path::{Component, PathBuf};

    /// `to` relative to the working directory (both absolute).
    fn relative(to: &std::path::Path) -> PathBuf {
        let cwd = std::env::current_dir().unwrap();
        let here: Vec<Component> = cwd.components().collect();
        let there: Vec<Component> = to.components().collect();
        let common = here.iter().zip(&there).take_while(|(a, b)| a == b).count();
        let mut path: PathBuf = here[common..].iter().map(|_| "..").collect();
        path.extend(&there[common..]);
        path
    }

    #[test]
    fn steal_is_a_share_of_all_ticks() {
        assert_eq!(super::steal_percent((10, 1000), (60, 1200)), 25.0);
        assert_eq!(super::steal_percent((10, 1000), (10, 1000)), 0.0);
        let (steal, all) = super::machine_ticks();
        assert!(all > 0 && steal <= all, "{steal} of {all}");
    }

    #[test]
    fn a_relative_binary_is_found_from_the_working_directory() {
        // This test binary, by a path relative to here that means nothing from the
        // child's own directory.
        let exe = relative(&std::env::current_exe().unwrap());
        assert!(exe.is_relative(), "{}", exe.display());
        let dir = tempfile::tempdir().unwrap();
        let mut proc = super::spawn("self", &exe, &["--list"], dir.path(), &[]).unwrap();
        assert!(proc.child.wait().unwrap().success());
    }
}
