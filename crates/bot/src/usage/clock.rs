//! The time usage is counted in (UTC days and minutes): the system clock, or one a test
//! sets and moves.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use time::OffsetDateTime;

/// Cheap to clone; clones of a manual clock share its time (replicas in one test).
#[derive(Clone, Default)]
pub struct Clock {
    manual: Option<Arc<Mutex<OffsetDateTime>>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock::default()
    }

    /// A clock that stands at `at` until [`Clock::set`] or [`Clock::advance`] moves it.
    pub fn manual(at: OffsetDateTime) -> Clock {
        Clock {
            manual: Some(Arc::new(Mutex::new(at))),
        }
    }

    /// Now, in UTC.
    pub fn now(&self) -> OffsetDateTime {
        match &self.manual {
            Some(at) => *at.lock().unwrap_or_else(PoisonError::into_inner),
            None => OffsetDateTime::now_utc(),
        }
    }

    /// Moves a manual clock to `at`; the system clock cannot be moved (nothing happens).
    pub fn set(&self, at: OffsetDateTime) {
        if let Some(now) = &self.manual {
            *now.lock().unwrap_or_else(PoisonError::into_inner) = at;
        }
    }

    /// Moves a manual clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        if let Some(now) = &self.manual {
            let mut now = now.lock().unwrap_or_else(PoisonError::into_inner);
            *now += by;
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.manual {
            Some(_) => write!(f, "Clock::manual({})", self.now()),
            None => f.write_str("Clock::system"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let start = time::macros::datetime!(2026-03-31 23:59:30 UTC);
        let clock = Clock::manual(start);
        let other = clock.clone();
        assert_eq!(clock.now(), start);
        other.advance(Duration::from_secs(45));
        assert_eq!(
            clock.now(),
            time::macros::datetime!(2026-04-01 00:00:15 UTC)
        );
        clock.set(start);
        assert_eq!(other.now(), start);
    }

    #[test]
    fn the_system_clock_is_now() {
        let before = OffsetDateTime::now_utc();
        let clock = Clock::system();
        clock.set(time::macros::datetime!(2000-01-01 0:00 UTC));
        assert!(clock.now() >= before);
    }
}
