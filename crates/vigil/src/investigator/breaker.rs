//! The assistant's circuit breaker: `failures` failed investigations in a row (errors,
//! timeouts, answers that are not chat completions) open it; while open, investigations are
//! not tried; after the cool-off one investigation may try (half-open), and its outcome
//! closes the breaker again or reopens it for another cool-off.

use std::time::Duration;

use tokio::time::Instant;

/// The breaker's state.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// Asking; `failures` in a row so far.
    Closed { failures: u32 },
    /// Not asking until `until`.
    Open { until: Instant },
    /// One trial is under way.
    HalfOpen,
}

/// What the breaker lets through, for `/metrics` (`vigil_assistant_breaker{state}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Investigations are asked.
    Closed,
    /// The next investigation is a trial: the cool-off has passed, or a trial is under way.
    HalfOpen,
    /// Investigations are refused until the cool-off has passed.
    Open,
}

impl BreakerState {
    /// Every state, in the order `/metrics` shows them.
    pub const ALL: [BreakerState; 3] = [
        BreakerState::Closed,
        BreakerState::HalfOpen,
        BreakerState::Open,
    ];

    /// The state's label value.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }
}

/// A circuit breaker over investigations.
#[derive(Debug, Clone)]
pub struct Breaker {
    threshold: u32,
    cool_off: Duration,
    state: State,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failures in a row for `cool_off`.
    #[must_use]
    pub fn new(threshold: u32, cool_off: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            cool_off,
            state: State::Closed { failures: 0 },
        }
    }

    /// Whether an investigation may start now (an open breaker past its cool-off lets one
    /// trial through).
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.state {
            State::Closed { .. } => true,
            State::Open { until } if now >= until => {
                self.state = State::HalfOpen;
                true
            }
            State::Open { .. } | State::HalfOpen => false,
        }
    }

    /// Whether it refuses investigations now.
    #[must_use]
    pub fn is_open(&self, now: Instant) -> bool {
        match self.state {
            State::Closed { .. } => false,
            State::Open { until } => now < until,
            State::HalfOpen => true,
        }
    }

    /// Its state at `now`: an open breaker whose cool-off has passed lets the next
    /// investigation through as a trial, so it shows as half-open.
    #[must_use]
    pub fn state(&self, now: Instant) -> BreakerState {
        match self.state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { until } if now < until => BreakerState::Open,
            State::Open { .. } | State::HalfOpen => BreakerState::HalfOpen,
        }
    }

    /// Records an investigation's outcome: `failed` when the model failed it.
    pub fn record(&mut self, failed: bool, now: Instant) {
        self.state = match (&self.state, failed) {
            (_, false) => State::Closed { failures: 0 },
            (State::Closed { failures }, true) if failures + 1 < self.threshold => State::Closed {
                failures: failures + 1,
            },
            (State::Closed { .. } | State::HalfOpen | State::Open { .. }, true) => State::Open {
                until: now + self.cool_off,
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_failures_and_lets_one_trial_through_after_the_cool_off() {
        let mut breaker = Breaker::new(2, Duration::from_secs(60));
        let start = Instant::now();
        assert!(breaker.allow(start));
        breaker.record(true, start);
        assert!(breaker.allow(start), "one failure of two");
        assert_eq!(breaker.state(start), BreakerState::Closed);
        breaker.record(true, start);
        assert_eq!(breaker.state(start), BreakerState::Open);
        assert!(!breaker.allow(start), "open");
        assert!(breaker.is_open(start));
        let later = start + Duration::from_secs(61);
        assert_eq!(
            breaker.state(later),
            BreakerState::HalfOpen,
            "a trial may go"
        );
        assert!(breaker.allow(later), "half-open: one trial");
        assert_eq!(
            breaker.state(later),
            BreakerState::HalfOpen,
            "a trial is under way"
        );
        assert!(!breaker.allow(later), "only one");
        breaker.record(true, later);
        assert!(
            !breaker.allow(later + Duration::from_secs(1)),
            "the trial failed: open again"
        );
        let much_later = later + Duration::from_secs(62);
        assert!(breaker.allow(much_later));
        breaker.record(false, much_later);
        assert!(
            breaker.allow(much_later) && !breaker.is_open(much_later),
            "closed"
        );
    }
}
