//! At most one log line per reason every [`WINDOW`]: lines that anyone on the internet
//! can cause (a bad signature, a missing one, an oversized body) must not let a flood
//! fill the disk or the journal. The next line written says how many were left out.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One line per reason per this long.
pub(crate) const WINDOW: Duration = Duration::from_secs(10);

/// The throttle of one kind of log line; a `static` next to the line it guards.
pub(crate) struct Throttle {
    state: Mutex<State>,
}

struct State {
    last_written: Option<Instant>,
    suppressed: u64,
}

impl Throttle {
    pub(crate) const fn new() -> Throttle {
        Throttle {
            state: Mutex::new(State {
                last_written: None,
                suppressed: 0,
            }),
        }
    }

    /// `Some(n)` when the line may be written now, `n` being how many of its kind were
    /// left out since the last one written; `None` (counted) otherwise.
    pub(crate) fn allow(&self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&self, now: Instant) -> Option<u64> {
        // A poisoned lock only means another thread panicked while counting; the count
        // is still good enough for a log line.
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.last_written {
            Some(last) if now.saturating_duration_since(last) < WINDOW => {
                state.suppressed = state.suppressed.saturating_add(1);
                None
            }
            _ => {
                state.last_written = Some(now);
                Some(std::mem::take(&mut state.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_window_then_the_count_of_those_left_out() {
        let throttle = Throttle::new();
        let start = Instant::now();
        assert_eq!(throttle.allow_at(start), Some(0));
        for i in 1..=999 {
            let at = start + WINDOW.mul_f64(f64::from(i) / 1000.0);
            assert_eq!(throttle.allow_at(at), None, "line {i}");
        }
        assert_eq!(throttle.allow_at(start + WINDOW), Some(999));
        assert_eq!(throttle.allow_at(start + WINDOW), None);
        assert_eq!(throttle.allow_at(start + WINDOW * 3), Some(1));
        assert_eq!(throttle.allow_at(start + WINDOW * 3), None);
    }

    #[test]
    fn throttles_are_independent() {
        let bad_signature = Throttle::new();
        let no_signature = Throttle::new();
        let now = Instant::now();
        assert_eq!(bad_signature.allow_at(now), Some(0));
        assert_eq!(bad_signature.allow_at(now), None);
        assert_eq!(no_signature.allow_at(now), Some(0));
    }
}
