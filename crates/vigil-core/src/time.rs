//! Time as plain data: the engine is handed `now`, it never reads a clock.

use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch, UTC.
///
/// The runtime stamps every event with one of these; the engine only ever compares and
/// subtracts them, so replaying recorded timestamps reproduces every time-based decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The timestamp `millis` milliseconds later (saturating).
    #[must_use]
    pub fn plus_millis(self, millis: i64) -> Timestamp {
        Timestamp(self.0.saturating_add(millis))
    }

    /// Milliseconds from `earlier` to `self` (negative when `earlier` is later).
    #[must_use]
    pub fn millis_since(self, earlier: Timestamp) -> i64 {
        self.0.saturating_sub(earlier.0)
    }

    /// Seconds from `earlier` to `self`, as a float.
    #[must_use]
    pub fn secs_since(self, earlier: Timestamp) -> f64 {
        self.millis_since(earlier) as f64 / 1000.0
    }

    /// The hour of the day in UTC, 0 to 23.
    #[must_use]
    pub fn hour_utc(self) -> u8 {
        const MILLIS_PER_HOUR: i64 = 3_600_000;
        let hour = self.0.div_euclid(MILLIS_PER_HOUR).rem_euclid(24);
        u8::try_from(hour).unwrap_or(0)
    }

    /// Formats as RFC 3339 in UTC with millisecond precision, for people reading ledgers.
    #[must_use]
    pub fn to_rfc3339(self) -> String {
        let millis = self.0.rem_euclid(1000);
        let total_secs = self.0.div_euclid(1000);
        let days = total_secs.div_euclid(86_400);
        let secs_of_day = total_secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            secs_of_day / 3600,
            (secs_of_day / 60) % 60,
            secs_of_day % 60
        )
    }
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// This is Howard Hinnant's `civil_from_days` algorithm, valid for every `i64` day count
/// that does not overflow the year.
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            Timestamp(1_795_435_617_884).to_rfc3339(),
            "2026-11-23T12:06:57.884Z"
        );
        assert_eq!(
            Timestamp(951_782_400_000).to_rfc3339(),
            "2000-02-29T00:00:00.000Z"
        );
        assert_eq!(Timestamp(-1).to_rfc3339(), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn hour_of_day_wraps() {
        assert_eq!(Timestamp(0).hour_utc(), 0);
        assert_eq!(Timestamp(23 * 3_600_000 + 59_999).hour_utc(), 23);
        assert_eq!(Timestamp(24 * 3_600_000).hour_utc(), 0);
        assert_eq!(Timestamp(-1).hour_utc(), 23);
    }
}
