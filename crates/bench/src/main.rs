//! `webex-bench`: starts the real `webex-chatbot serve` (and `webex-relay`) as processes
//! against lean in-process fake Webex and Ollama servers, sends signed webhooks from many
//! simulated users, and prints webhook ack and end-to-end latencies, throughput, lost and
//! duplicate replies, Webex calls and edits per answer (streamed answers), and the bot's
//! memory. See docs/performance.md.
//!
//! Layout: `fakes` (fake Webex + Ollama, lock-free timing slots), `load` (the generator),
//! `procs` (child processes, /proc readings), `floor` (the least a bot must do per
//! message, the yardstick of `--mode floor`); this file runs and reports.

mod fakes;
mod floor;
mod load;
mod procs;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, ValueEnum};

use crate::fakes::Tracker;
use crate::procs::{Proc, cpu_seconds, free_port, spawn, status_kib, wait_ready};

const SECRET: &str = "bench-webhook-secret";
const RELAY_KEY: &str = "bench-relay-key-0123456789abcdef0123";

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Generator → bot.
    Direct,
    /// Generator → webex-relay → bot.
    Relay,
    /// `--conversations` at once, each waiting on an LLM that takes `--llm-delay-ms` (default 2 s).
    SlowLlm,
    /// The generator alone against a trivial in-process 200 endpoint: its own capacity.
    Generator,
    /// `--files` messages at once, each with one `--file-mib` MiB file of `--file-kind`,
    /// the LLM taking `--llm-delay-ms` (default 2 s): the bot's memory with them in flight.
    Files,
    /// Like `direct`, against the floor bot instead of webex-chatbot: this binary doing
    /// only the I/O a message needs, on one thread (src/floor.rs). Its CPU per answer is
    /// the yardstick for the bot's.
    Floor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FileKind {
    /// Plain text: downloaded, cut to FILE_MAX_CHARS into the prompt.
    Text,
    /// A PNG: downloaded and sent to the model as an image (base64 in the request).
    Image,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Toggle {
    On,
    Off,
}

#[derive(Parser, Debug)]
#[command(
    name = "webex-bench",
    about = "End-to-end benchmark of webex-chatbot on the loopback"
)]
struct Args {
    #[arg(long, value_enum, default_value = "direct")]
    mode: Mode,
    /// The webex-chatbot binary (default $CARGO_TARGET_DIR or target, /release/webex-chatbot).
    #[arg(long)]
    bot_bin: Option<PathBuf>,
    /// The webex-relay binary (relay mode).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Webhooks per second (open loop); 0 = as fast as --concurrency allows.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Seconds of sending at --rate (direct and relay modes).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Simulated users, each in their own direct space.
    #[arg(long, default_value_t = 200)]
    users: usize,
    /// slow-llm mode: conversations waiting on the LLM at once.
    #[arg(long, default_value_t = 2000)]
    conversations: usize,
    /// Fake LLM delay per call (default 0; 2000 in slow-llm mode).
    #[arg(long)]
    llm_delay_ms: Option<u64>,
    /// LLM_MAX_CONCURRENCY for the bot (default: the bot's own default; slow-llm: --conversations).
    #[arg(long)]
    llm_max_concurrency: Option<usize>,
    /// Webhook requests in flight at most.
    #[arg(long, default_value_t = 512)]
    concurrency: usize,
    /// Runs (fresh bot and database each); the table shows each run and the medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// The bot's LOG_LEVEL (logs go to a file in the run's temporary folder).
    #[arg(long, default_value = "info")]
    log_level: String,
    #[arg(long, default_value = "personalities")]
    personalities: PathBuf,
    /// REPLY_STREAMING for the bot: answers posted early and edited as they grow (on), or
    /// posted once whole (off).
    #[arg(long, value_enum, default_value = "on")]
    streaming: Toggle,
    /// STREAM_FIRST_POST_MS for the bot (default: the bot's own, 1000).
    #[arg(long)]
    stream_first_post_ms: Option<u64>,
    /// STREAM_EDIT_MS for the bot (default: the bot's own, 1500).
    #[arg(long)]
    stream_edit_ms: Option<u64>,
    /// Edits the fake Webex accepts per message (at most Webex's 10); fewer makes the bot
    /// delete the streamed message and post the whole answer.
    #[arg(long, default_value_t = fakes::MAX_EDITS)]
    webex_max_edits: u32,
    /// files mode: messages (each with one file) sent at once.
    #[arg(long, default_value_t = 10)]
    files: usize,
    /// files mode: each file's size in MiB (MAX_FILE_BYTES is set to it).
    #[arg(long, default_value_t = 10)]
    file_mib: usize,
    /// files mode: what the files are.
    #[arg(long, value_enum, default_value = "text")]
    file_kind: FileKind,
    /// floor mode: runtime workers (0: the one thread).
    #[arg(long, default_value_t = 0)]
    floor_workers: usize,
    /// floor mode: the HTTP client of its calls.
    #[arg(long, value_enum, default_value = "hyper")]
    floor_client: FloorClient,
    /// floor mode: SQLite commits per answer beyond the done mark.
    #[arg(long, default_value_t = 0)]
    floor_commits: usize,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum FloorClient {
    /// hyper's bare HTTP/1.1 connections, kept alive.
    Hyper,
    /// reqwest, as the bot's Webex calls.
    Reqwest,
}

/// One run's figures; times in milliseconds, memory in MiB.
#[derive(Clone, Debug, Default)]
struct Figures {
    sent: f64,
    ack_p50: f64,
    ack_p99: f64,
    e2e_p50: f64,
    e2e_p99: f64,
    replies_per_s: f64,
    lost: f64,
    dup: f64,
    refused: f64,
    idle_rss: f64,
    peak_rss: f64,
    bot_cpu: f64,
    /// Bot CPU time (user + system) over the run ÷ questions answered, in ms.
    cpu_ms_per_answer: f64,
    relay_cpu: f64,
    bench_cpu: f64,
    lag: f64,
    llm_peak: f64,
    first_post_p50: f64,
    edits_per_answer: f64,
    calls_per_answer: f64,
    webex_refused: f64,
    stray: f64,
    /// The machine's CPU time the hypervisor took during the run, in percent.
    steal: f64,
}

const COLUMNS: &[&str] = &[
    "sent",
    "ack p50 ms",
    "ack p99 ms",
    "e2e p50 ms",
    "e2e p99 ms",
    "replies/s",
    "lost",
    "dup",
    "non-200",
    "idle RSS MiB",
    "peak RSS MiB",
    "bot CPU %",
    "bot CPU ms/answer",
    "relay CPU %",
    "bench CPU %",
    "gen lag ms",
    "LLM peak",
    "first post p50 ms",
    "edits/answer",
    "Webex calls/answer",
    "Webex 4xx",
    "stray msgs",
    "steal %",
];

impl Figures {
    fn values(&self) -> [f64; 23] {
        [
            self.sent,
            self.ack_p50,
            self.ack_p99,
            self.e2e_p50,
            self.e2e_p99,
            self.replies_per_s,
            self.lost,
            self.dup,
            self.refused,
            self.idle_rss,
            self.peak_rss,
            self.bot_cpu,
            self.cpu_ms_per_answer,
            self.relay_cpu,
            self.bench_cpu,
            self.lag,
            self.llm_peak,
            self.first_post_p50,
            self.edits_per_answer,
            self.calls_per_answer,
            self.webex_refused,
            self.stray,
            self.steal,
        ]
    }
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1e6
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn row(label: &str, values: &[f64]) -> String {
    let cells: Vec<String> = values
        .iter()
        .map(|v| {
            if v.fract() == 0.0 || v.abs() >= 100.0 {
                format!("{v:.0}")
            } else if v.abs() < 1.0 {
                format!("{v:.3}")
            } else {
                format!("{v:.2}")
            }
        })
        .collect();
    format!("| {label} | {} |", cells.join(" | "))
}

fn print_table(title: &str, runs: &[Figures]) {
    println!("\n{title}\n");
    println!("| run | {} |", COLUMNS.join(" | "));
    println!("|---|{}", "---|".repeat(COLUMNS.len()));
    for (i, f) in runs.iter().enumerate() {
        println!("{}", row(&format!("{}", i + 1), &f.values()));
    }
    let medians: Vec<f64> = (0..COLUMNS.len())
        .map(|c| median(runs.iter().map(|f| f.values()[c]).collect()))
        .collect();
    println!("{}", row("**median**", &medians));
}

struct Plan {
    total: usize,
    rooms: usize,
    rate: f64,
    llm_delay: Duration,
    llm_max_concurrency: Option<usize>,
}

async fn run_once(args: &Args, plan: &Plan) -> anyhow::Result<Figures> {
    let tracker = Tracker::new(plan.total);
    let file = (args.mode == Mode::Files).then(|| match args.file_kind {
        FileKind::Text => fakes::FileSpec::text(args.file_mib),
        FileKind::Image => fakes::FileSpec::image(args.file_mib),
    });
    let (webex_url, llm_url) =
        fakes::start(tracker.clone(), plan.llm_delay, args.webex_max_edits, file).await?;
    let dir = tempfile::tempdir()?;
    let bot_port = free_port()?;
    let personalities = std::fs::canonicalize(&args.personalities)
        .with_context(|| format!("--personalities {}", args.personalities.display()))?;
    let mut env: Vec<(&str, String)> = vec![
        ("WEBEX_BOT_TOKEN", fakes::TOKEN.into()),
        ("WEBEX_API_URL", webex_url),
        ("LLM_PROVIDER", "ollama".into()),
        ("OLLAMA_URL", llm_url),
        ("LLM_TIMEOUT_SECS", "60".into()),
        ("BIND_ADDR", format!("127.0.0.1:{bot_port}")),
        (
            "DATABASE_URL",
            format!("sqlite://{}/data/bot.db", dir.path().display()),
        ),
        ("PERSONALITIES_DIR", personalities.display().to_string()),
        ("WEBHOOK_SECRET", SECRET.into()),
        ("APPROVED_DOMAINS", fakes::EMAIL_DOMAIN.into()),
        ("LOG_FILE", "logs/bot_server.log".into()),
        ("LOG_LEVEL", args.log_level.clone()),
        (
            "REPLY_STREAMING",
            (args.streaming == Toggle::On).to_string(),
        ),
    ];
    if let Some(ms) = args.stream_first_post_ms {
        env.push(("STREAM_FIRST_POST_MS", ms.to_string()));
    }
    if let Some(ms) = args.stream_edit_ms {
        env.push(("STREAM_EDIT_MS", ms.to_string()));
    }
    if let Some(n) = plan.llm_max_concurrency {
        env.push(("LLM_MAX_CONCURRENCY", n.to_string()));
    }
    if args.mode == Mode::Files {
        env.push(("MAX_FILE_BYTES", (args.file_mib * 1024 * 1024).to_string()));
        // Echoed answers stay one message long.
        env.push(("FILE_MAX_CHARS", "1000".into()));
    }
    let relay = args.mode == Mode::Relay;
    if relay {
        env.push(("RELAY_API_KEY", RELAY_KEY.into()));
    }
    let (bot_bin, bot_args) = if args.mode == Mode::Floor {
        env.push(("FLOOR_WORKERS", args.floor_workers.to_string()));
        let client = match args.floor_client {
            FloorClient::Hyper => "hyper",
            FloorClient::Reqwest => "reqwest",
        };
        env.push(("FLOOR_CLIENT", client.into()));
        env.push(("FLOOR_COMMITS", args.floor_commits.to_string()));
        (std::env::current_exe()?, [floor::ARG])
    } else {
        let bin = args
            .bot_bin
            .clone()
            .unwrap_or_else(|| procs::default_bin("webex-chatbot"));
        (bin, ["serve"])
    };
    let mut bot = spawn("bot", &bot_bin, &bot_args, dir.path(), &env)?;
    let bot_url = format!("http://127.0.0.1:{bot_port}");
    wait_ready(
        &mut bot,
        &format!("{bot_url}/health"),
        dir.path(),
        Duration::from_secs(30),
    )
    .await?;
    let mut relay_proc: Option<Proc> = None;
    let target = if relay {
        let port = free_port()?;
        let relay_bin = args
            .relay_bin
            .clone()
            .unwrap_or_else(|| procs::default_bin("webex-relay"));
        let mut p = spawn(
            "relay",
            &relay_bin,
            &[],
            dir.path(),
            &[
                ("INTERNAL_BOT_URL", bot_url.clone()),
                ("RELAY_API_KEY", RELAY_KEY.into()),
                ("WEBEX_WEBHOOK_SECRET", SECRET.into()),
                ("BIND_ADDR", format!("127.0.0.1:{port}")),
                ("RELAY_RATE_LIMIT", "0".into()),
                ("LOG_LEVEL", args.log_level.clone()),
            ],
        )?;
        wait_ready(
            &mut p,
            &format!("http://127.0.0.1:{port}/health"),
            dir.path(),
            Duration::from_secs(30),
        )
        .await?;
        relay_proc = Some(p);
        format!("http://127.0.0.1:{port}")
    } else {
        bot_url
    };

    // Idle: started, healthy, nothing to do.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_rss = status_kib(bot.pid(), "VmRSS:") as f64 / 1024.0;
    let bot_pid = bot.pid().to_string();
    let relay_pid = relay_proc.as_ref().map(|p| p.pid().to_string());
    let cpu_before = (
        cpu_seconds(&bot_pid),
        relay_pid.as_deref().map_or(0.0, cpu_seconds),
        cpu_seconds("self"),
    );
    let machine_before = procs::machine_ticks();
    let began = Instant::now();

    let sent = load::run(
        &load::Load {
            url: format!("{target}/webhook"),
            secret: SECRET.into(),
            total: plan.total,
            rooms: plan.rooms,
            rate: plan.rate,
            concurrency: args.concurrency,
            deadline: Duration::from_secs_f64(plan.total as f64 / plan.rate.max(1.0) * 3.0 + 30.0),
        },
        &tracker,
    )
    .await?;
    let accepted = (0..plan.total)
        .filter(|&i| tracker.ack_status[i].load(Ordering::Relaxed) == 200)
        .count();
    // Wait for the replies, bounded: everything accepted answered, or the settle time.
    let settle = Instant::now();
    let settle_limit = plan.llm_delay * 3 + Duration::from_secs(30);
    while tracker.replied() < accepted && settle.elapsed() < settle_limit {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A moment more to catch duplicates that would follow.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let elapsed = began.elapsed().as_secs_f64();
    let cpu = |before: f64, after: f64| (after - before) / elapsed * 100.0;
    let bot_cpu_seconds = cpu_seconds(&bot_pid) - cpu_before.0;
    let bot_cpu = bot_cpu_seconds / elapsed * 100.0;
    let relay_cpu = relay_pid
        .as_deref()
        .map_or(0.0, |p| cpu(cpu_before.1, cpu_seconds(p)));
    let bench_cpu = cpu(cpu_before.2, cpu_seconds("self"));
    let steal = procs::steal_percent(machine_before, procs::machine_ticks());
    let peak_rss = status_kib(bot.pid(), "VmHWM:") as f64 / 1024.0;

    let mut ack = Vec::new();
    let mut e2e = Vec::new();
    let mut first_post = Vec::new();
    let (mut lost, mut dup, mut refused) = (0, 0, 0);
    let (mut first_sent, mut last_reply) = (u64::MAX, 0);
    for i in 0..plan.total {
        let s = tracker.sent_ns[i].load(Ordering::Relaxed);
        if s == 0 {
            continue;
        }
        first_sent = first_sent.min(s);
        let status = tracker.ack_status[i].load(Ordering::Relaxed);
        let a = tracker.ack_ns[i].load(Ordering::Relaxed);
        if a > 0 {
            ack.push(a.saturating_sub(s));
        }
        if status != 200 {
            refused += 1;
        }
        let n = tracker.replies[i].load(Ordering::Relaxed);
        if n == 0 && status == 200 {
            lost += 1;
        }
        dup += n.saturating_sub(1);
        let r = tracker.reply_ns[i].load(Ordering::Relaxed);
        if r > 0 {
            e2e.push(r.saturating_sub(s));
            last_reply = last_reply.max(r);
        }
        let p = tracker.first_post_ns[i].load(Ordering::Relaxed);
        if p > 0 {
            first_post.push(p.saturating_sub(s));
        }
    }
    ack.sort_unstable();
    e2e.sort_unstable();
    first_post.sort_unstable();
    let answered = tracker.replied() as f64;
    let per_answer = |n: u64| {
        if answered > 0.0 {
            n as f64 / answered
        } else {
            f64::NAN
        }
    };
    let calls = tracker.posts.load(Ordering::Relaxed)
        + tracker.puts.load(Ordering::Relaxed)
        + tracker.deletes.load(Ordering::Relaxed);
    let span = last_reply.saturating_sub(first_sent) as f64 / 1e9;
    drop(relay_proc);
    drop(bot);
    Ok(Figures {
        sent: ack.len() as f64,
        ack_p50: percentile(&ack, 50.0),
        ack_p99: percentile(&ack, 99.0),
        e2e_p50: percentile(&e2e, 50.0),
        e2e_p99: percentile(&e2e, 99.0),
        replies_per_s: if span > 0.0 {
            e2e.len() as f64 / span
        } else {
            0.0
        },
        lost: lost as f64,
        dup: f64::from(dup),
        refused: refused as f64 + sent.transport_errors as f64,
        idle_rss,
        peak_rss,
        bot_cpu,
        cpu_ms_per_answer: if answered > 0.0 {
            bot_cpu_seconds * 1e3 / answered
        } else {
            f64::NAN
        },
        relay_cpu,
        bench_cpu,
        lag: sent.max_lag.as_secs_f64() * 1e3,
        llm_peak: tracker.llm_peak.load(Ordering::Relaxed) as f64,
        first_post_p50: percentile(&first_post, 50.0),
        edits_per_answer: per_answer(tracker.edits()),
        calls_per_answer: per_answer(calls),
        webex_refused: tracker.refused.load(Ordering::Relaxed) as f64,
        stray: tracker.stray() as f64,
        steal,
    })
}

/// The generator against a trivial in-process endpoint: closed loop at full speed, then
/// open loop at --rate, so its capacity and its own cost at the target rate are known.
async fn generator(args: &Args) -> anyhow::Result<()> {
    let url = fakes::serve(fakes::trivial()).await?;
    let mut rows = Vec::new();
    for (label, rate, total) in [
        ("closed loop, full speed", 0.0, 50_000usize),
        (
            "open loop at --rate",
            args.rate,
            (args.rate * args.seconds as f64) as usize,
        ),
    ] {
        let tracker = Tracker::new(total);
        let cpu0 = cpu_seconds("self");
        let sent = load::run(
            &load::Load {
                url: format!("{url}/webhook"),
                secret: SECRET.into(),
                total,
                rooms: args.users,
                rate,
                concurrency: if rate == 0.0 { 64 } else { args.concurrency },
                deadline: Duration::from_secs(120),
            },
            &tracker,
        )
        .await?;
        let wall = sent.wall.as_secs_f64();
        let mut ack: Vec<u64> = (0..total)
            .filter_map(|i| {
                let a = tracker.ack_ns[i].load(Ordering::Relaxed);
                (a > 0).then(|| a.saturating_sub(tracker.sent_ns[i].load(Ordering::Relaxed)))
            })
            .collect();
        ack.sort_unstable();
        rows.push(format!(
            "| {label} | {} | {:.0} | {:.3} | {:.3} | {:.0} | {:.2} | {} |",
            ack.len(),
            ack.len() as f64 / wall,
            percentile(&ack, 50.0),
            percentile(&ack, 99.0),
            (cpu_seconds("self") - cpu0) / wall * 100.0,
            sent.max_lag.as_secs_f64() * 1e3,
            sent.transport_errors
        ));
    }
    println!("\ngenerator alone (generator and trivial server share this process)\n");
    println!("| load | requests | req/s | p50 ms | p99 ms | CPU % (both) | max lag ms | errors |");
    println!("|---|---|---|---|---|---|---|---|");
    for r in rows {
        println!("{r}");
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    if std::env::args().nth(1).as_deref() == Some(floor::ARG) {
        return floor::main();
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(bench())
}

async fn bench() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.mode == Mode::Generator {
        return generator(&args).await;
    }
    let plan = match args.mode {
        Mode::Files => Plan {
            total: args.files,
            rooms: args.files,
            rate: 0.0,
            llm_delay: Duration::from_millis(args.llm_delay_ms.unwrap_or(2000)),
            llm_max_concurrency: Some(args.llm_max_concurrency.unwrap_or(args.files)),
        },
        Mode::SlowLlm => Plan {
            total: args.conversations,
            rooms: args.conversations,
            rate: args.rate,
            llm_delay: Duration::from_millis(args.llm_delay_ms.unwrap_or(2000)),
            llm_max_concurrency: Some(args.llm_max_concurrency.unwrap_or(args.conversations)),
        },
        _ => Plan {
            total: (args.rate * args.seconds as f64) as usize,
            rooms: args.users,
            rate: args.rate,
            llm_delay: Duration::from_millis(args.llm_delay_ms.unwrap_or(0)),
            llm_max_concurrency: args.llm_max_concurrency,
        },
    };
    let mut runs = Vec::new();
    for i in 0..args.runs.max(1) {
        eprintln!("run {}/{} ({:?}) …", i + 1, args.runs, args.mode);
        runs.push(run_once(&args, &plan).await?);
    }
    if args.mode == Mode::Files {
        println!(
            "\nfiles mode: {} messages at once, each with one {} MiB {:?} file",
            args.files, args.file_mib, args.file_kind
        );
    }
    let mut title = format!(
        "mode {:?}: {} webhooks at {}/s from {} users, LLM delay {} ms, LLM_MAX_CONCURRENCY {}, REPLY_STREAMING {}",
        args.mode,
        plan.total,
        plan.rate,
        plan.rooms,
        plan.llm_delay.as_millis(),
        plan.llm_max_concurrency
            .map_or("default (4)".into(), |n| n.to_string()),
        args.streaming == Toggle::On,
    );
    if let Some(ms) = args.stream_first_post_ms {
        title.push_str(&format!(", STREAM_FIRST_POST_MS {ms}"));
    }
    if let Some(ms) = args.stream_edit_ms {
        title.push_str(&format!(", STREAM_EDIT_MS {ms}"));
    }
    if args.webex_max_edits < fakes::MAX_EDITS {
        title.push_str(&format!(
            ", Webex accepts {} edits per message",
            args.webex_max_edits
        ));
    }
    print_table(&title, &runs);
    Ok(())
}
