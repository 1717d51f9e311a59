//! Runbook schedules: cron expressions read with the `cron` crate (seconds first, UTC), and
//! the next time each comes due. The daemon's scheduler and `vigil simulate` both ask here,
//! so a schedule fires at the same instants in a game day as in production.

use std::str::FromStr as _;

use vigil_core::Timestamp;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule(cron::Schedule);

impl Schedule {
    /// Parses a cron expression (`sec min hour day-of-month month day-of-week [year]`).
    ///
    /// # Errors
    ///
    /// A message saying what is wrong, for a runbook's `schedule` key.
    pub fn parse(expression: &str) -> Result<Schedule, String> {
        cron::Schedule::from_str(expression)
            .map(Schedule)
            .map_err(|error| {
                format!(
                    "`{expression}` is not a cron expression (`sec min hour day-of-month month day-of-week`, UTC): {error}"
                )
            })
    }

    /// The first time after `now` it comes due, if it ever does again.
    #[must_use]
    pub fn next_after(&self, now: Timestamp) -> Option<Timestamp> {
        let now = chrono::DateTime::from_timestamp_millis(now.0)?;
        self.0
            .after(&now)
            .next()
            .map(|due| Timestamp(due.timestamp_millis()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_ten_minutes_comes_due_on_the_next_multiple_of_ten_minutes() {
        let schedule = Schedule::parse("0 */10 * * * *").unwrap();
        // 2026-01-01T00:03:20Z -> 00:10:00, then 00:20:00.
        let start = Timestamp(1_767_225_600_000 + 200_000);
        let first = schedule.next_after(start).unwrap();
        assert_eq!(first.0, 1_767_225_600_000 + 600_000);
        assert_eq!(schedule.next_after(first).unwrap().0, first.0 + 600_000);
        assert!(
            Schedule::parse("*/10 * * * *")
                .unwrap_err()
                .starts_with("`*/10 * * * *` is not a cron expression")
        );
    }
}
