//! The LLM's health, probed through its model list and cached a few seconds, so `/health`
//! polled by a busy load balancer (and `status`) does not become a flood of requests.

use std::time::{Duration, Instant};

const PROBE_CACHE: Duration = Duration::from_secs(5);

/// The last probe of the LLM and when it was made.
#[derive(Default)]
pub struct LlmProbe {
    last: tokio::sync::Mutex<Option<(Instant, llm::HealthReport)>>,
}

impl LlmProbe {
    /// The LLM's health: the cached report when younger than 5 s, else a fresh probe.
    pub(crate) async fn report(&self, llm: &llm::Llm) -> llm::HealthReport {
        let mut last = self.last.lock().await;
        if let Some((at, report)) = last.as_ref()
            && at.elapsed() < PROBE_CACHE
        {
            return report.clone();
        }
        let report = llm.probe().await;
        *last = Some((Instant::now(), report.clone()));
        report
    }
}
