//! The LLM's health, probed through its model list and cached a few seconds, so `/health`
//! polled by a busy load balancer (and `status`) does not become a flood of requests.

use std::time::{Duration, Instant};

/// How long a probe's report is reused (`BuildOptions::probe_cache`'s default).
pub const PROBE_CACHE: Duration = Duration::from_secs(5);

/// The last probe of the LLM and when it was made.
pub struct LlmProbe {
    keep: Duration,
    last: tokio::sync::Mutex<Option<(Instant, llm::HealthReport)>>,
}

impl LlmProbe {
    /// Reuses a report for `keep`.
    pub fn new(keep: Duration) -> Self {
        LlmProbe {
            keep,
            last: tokio::sync::Mutex::new(None),
        }
    }

    /// The LLM's health: the cached report while it is younger than `keep`, else a fresh
    /// probe.
    pub(crate) async fn report(&self, llm: &llm::Llm) -> llm::HealthReport {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < self.keep
        {
            return report.clone();
        }
        let report = llm.probe().await;
        *last = Some((Instant::now(), report.clone()));
        report
    }
}
