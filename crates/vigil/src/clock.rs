//! vigil's clock: wall time anchored once, then advanced by `tokio::time`, so that a
//! test with paused time controls what the engine sees as `now`.
//!
//! It is also the one place that reads the system's wall clock ([`since_epoch`]): the root
//! `clippy.toml` bans `std::time::SystemTime` and `std::time::Instant` everywhere else, so
//! that time reaches the rest of vigil as a parameter or through `tokio::time`.

use std::time::Duration;

use tokio::time::Instant;
use vigil_core::Timestamp;

/// Maps tokio instants to wall-clock timestamps.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    wall_at_start_ms: i64,
    start: Instant,
}

impl Clock {
    /// A clock anchored at the system's current wall time.
    pub fn system() -> Clock {
        Clock {
            wall_at_start_ms: wall_now_ms(),
            start: Instant::now(),
        }
    }

    /// A clock anchored at a given wall time (for tests).
    pub fn starting_at(wall_ms: i64) -> Clock {
        Clock {
            wall_at_start_ms: wall_ms,
            start: Instant::now(),
        }
    }

    /// Now, as the engine sees it.
    pub fn now(&self) -> Timestamp {
        let elapsed_ms = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.wall_at_start_ms.saturating_add(elapsed_ms))
    }

    /// The tokio instant at which the clock will read `at` (now, if that is past).
    pub fn instant_at(&self, at: Timestamp) -> Instant {
        let ahead_ms = at.millis_since(self.now()).max(0);
        Instant::now() + Duration::from_millis(u64::try_from(ahead_ms).unwrap_or(0))
    }
}

/// The system's wall clock as time since the Unix epoch; `None` when it is set before 1970.
#[must_use]
#[allow(
    clippy::disallowed_types,
    reason = "the one read of the system's wall clock; everything else gets time from here, as a parameter or through tokio::time"
)]
pub fn since_epoch() -> Option<Duration> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
}

/// The system's wall clock in milliseconds since the Unix epoch (0 before 1970).
#[must_use]
pub fn wall_now_ms() -> i64 {
    since_epoch().map_or(0, |elapsed| {
        i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
    })
}
