//! Calendar timestamps as people and benchmark files write them (`2013-07-04 00:00:00`,
//! `2014-02-19T10:50:00.000000Z`), read as UTC and turned into milliseconds since the Unix
//! epoch: for `vigil backtest` CSVs and the NAB corpus.
//!
//! A timestamp without a zone is read as UTC (NAB's CSVs carry none and NAB only ever compares
//! them, so this changes nothing there); a trailing `Z` says so explicitly; other offsets are
//! refused rather than guessed. Fractions finer than a millisecond are refused rather than
//! truncated, so that two distinct timestamps never become one.

/// A timestamp that is not of the form `YYYY-MM-DD HH:MM:SS[.fraction]`, or names no real
/// instant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad timestamp `{text}`: {reason}")]
pub struct TimestampError {
    /// The text as found.
    pub text: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

const MILLIS_PER_SECOND: i64 = 1_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// Parses `YYYY-MM-DD HH:MM:SS` with an optional fraction of up to nine digits (`T` is also
/// accepted between date and time, and a trailing `Z`) as UTC, in milliseconds since
/// 1970-01-01T00:00:00Z.
///
/// # Errors
///
/// When the text does not have that shape, a field is out of range (month 13, 30 February,
/// hour 24, second 60), or the fraction has non-zero digits past the millisecond.
pub fn parse_timestamp_ms(text: &str) -> Result<i64, TimestampError> {
    let fail = |reason| TimestampError {
        text: text.to_owned(),
        reason,
    };
    let shape = "expected `YYYY-MM-DD HH:MM:SS` with an optional fraction of a second";
    let zoneless = text.strip_suffix('Z').unwrap_or(text);
    let (date, time) = zoneless.split_once([' ', 'T']).ok_or_else(|| fail(shape))?;
    let [year, month, day] =
        fixed_width_fields::<3>(date, '-', [4, 2, 2]).ok_or_else(|| fail(shape))?;
    let (clock, fraction) = match time.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (time, None),
    };
    let [hour, minute, second] =
        fixed_width_fields::<3>(clock, ':', [2, 2, 2]).ok_or_else(|| fail(shape))?;
    let millis = match fraction {
        None => 0,
        Some(fraction) => fraction_millis(fraction).map_err(fail)?,
    };

    if !(1..=12).contains(&month) {
        return Err(fail("month out of range"));
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err(fail("day out of range for its month"));
    }
    if hour > 23 || minute > 59 || second > 59 {
        return Err(fail("time of day out of range"));
    }

    let seconds_of_day = (hour * 60 + minute) * 60 + second;
    let seconds = days_since_epoch(year, month, day) * SECONDS_PER_DAY + seconds_of_day;
    Ok(seconds * MILLIS_PER_SECOND + millis)
}

/// Splits `text` on `separator` into exactly `N` fields of exactly the given numbers of ASCII
/// digits, and reads them.
fn fixed_width_fields<const N: usize>(
    text: &str,
    separator: char,
    widths: [usize; N],
) -> Option<[i64; N]> {
    let mut values = [0; N];
    let mut fields = text.split(separator);
    for (value, width) in values.iter_mut().zip(widths) {
        let field = fields.next()?;
        if field.len() != width || !field.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        *value = field.parse().ok()?;
    }
    match fields.next() {
        Some(_) => None,
        None => Some(values),
    }
}

/// The milliseconds in a fraction of a second given as its digits (`000000`, `5`, `250`).
fn fraction_millis(digits: &str) -> Result<i64, &'static str> {
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err("the fraction of a second must be one to nine digits");
    }
    let mut millis = 0;
    for (position, byte) in digits.bytes().enumerate() {
        let digit = i64::from(byte - b'0');
        if position < 3 {
            millis = millis * 10 + digit;
        } else if digit != 0 {
            return Err("finer than a millisecond");
        }
    }
    // Two digits mean hundredths: scale what was read up to thousandths.
    for _ in digits.len()..3 {
        millis *= 10;
    }
    Ok(millis)
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar (Howard
/// Hinnant's `days_from_civil`: count in 400-year eras of 146 097 days, with years starting
/// in March so that the leap day falls at the end).
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let year_from_march = if month <= 2 { year - 1 } else { year };
    let era = year_from_march.div_euclid(400);
    let year_of_era = year_from_march - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    // 719 468 days separate 0000-03-01, where era 0 starts, from 1970-01-01.
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nab_csv_and_window_timestamps() {
        // Reference values from `date -u -d '...' +%s`.
        let cases = [
            ("1970-01-01 00:00:00", 0),
            ("2013-07-04 00:00:00", 1_372_896_000_000),
            ("2014-02-19 10:50:00.000000", 1_392_807_000_000),
            ("2014-02-19T10:50:00", 1_392_807_000_000),
            ("2014-02-19T10:50:00.250Z", 1_392_807_000_250),
            ("2000-02-29 23:59:59.5", 951_868_799_500),
            ("2016-12-31 23:59:59.999", 1_483_228_799_999),
            ("1969-12-31 23:59:59", -1_000),
            ("2100-03-01 00:00:00", 4_107_542_400_000),
        ];
        for (text, expected_ms) in cases {
            assert_eq!(parse_timestamp_ms(text), Ok(expected_ms), "{text}");
        }
    }

    #[test]
    fn refuses_malformed_and_impossible_timestamps() {
        let cases = [
            ("", "expected"),
            ("2013-07-04", "expected"),
            ("2013-07-04 00:00", "expected"),
            ("2013-7-04 00:00:00", "expected"),
            ("2013-07-04 00:00:00 UTC", "expected"),
            ("2013-07-04 00:00:00+00", "expected"),
            ("2013-07-04 00:00:00ZZ", "expected"),
            ("+013-07-04 00:00:00", "expected"),
            ("2013-13-04 00:00:00", "month"),
            ("2013-02-29 00:00:00", "day"),
            ("1900-02-29 00:00:00", "day"),
            ("2013-04-31 00:00:00", "day"),
            ("2013-07-04 24:00:00", "time of day"),
            ("2013-07-04 00:00:60", "time of day"),
            ("2013-07-04 00:00:00.", "fraction"),
            ("2013-07-04 00:00:00.0000000000", "fraction"),
            ("2013-07-04 00:00:00.0001", "millisecond"),
        ];
        for (text, reason) in cases {
            let error = parse_timestamp_ms(text).unwrap_err();
            assert!(error.reason.contains(reason), "{text}: {error}");
            assert_eq!(error.text, text);
        }
    }
}
