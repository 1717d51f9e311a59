//! An exact RFC 3339 `date-time` parser (section 5.6), for the times that pushed payloads
//! carry, such as Alertmanager's `startsAt`.
//!
//! It accepts exactly the grammar: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, with `T` and
//! `Z` in either case, checks every field's range (the day against its month, leap years
//! included), and allows the leap second `60`, which counts as the first second of the next
//! minute. A fraction finer than a millisecond is truncated toward the past, so the result is
//! the millisecond that contains the instant.

use crate::time::Timestamp;

/// Parses `text` as an RFC 3339 date-time. The error says what is wrong, without repeating
/// the input.
pub fn parse_rfc3339(text: &str) -> Result<Timestamp, String> {
    let mut cursor = Cursor {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let year = cursor.digits(4, "a four-digit year")?;
    cursor.literal(b'-')?;
    let month = cursor.digits(2, "a two-digit month")?;
    cursor.literal(b'-')?;
    let day = cursor.digits(2, "a two-digit day")?;
    cursor.separator()?;
    let hour = cursor.digits(2, "a two-digit hour")?;
    cursor.literal(b':')?;
    let minute = cursor.digits(2, "two-digit minutes")?;
    cursor.literal(b':')?;
    let second = cursor.digits(2, "two-digit seconds")?;
    let millis = cursor.fraction_millis()?;
    let offset_minutes = cursor.offset()?;
    if cursor.pos != cursor.bytes.len() {
        return Err(format!(
            "unexpected text after the time offset at character {}",
            cursor.pos + 1
        ));
    }

    if !(1..=12).contains(&month) {
        return Err(format!("the month must be 01 to 12, found {month:02}"));
    }
    let last_day = days_in_month(year, month);
    if day < 1 || day > last_day {
        return Err(format!(
            "the day must be 01 to {last_day} in {year:04}-{month:02}, found {day:02}"
        ));
    }
    if hour > 23 {
        return Err(format!("the hour must be 00 to 23, found {hour:02}"));
    }
    if minute > 59 {
        return Err(format!("the minutes must be 00 to 59, found {minute:02}"));
    }
    if second > 60 {
        return Err(format!("the seconds must be 00 to 60, found {second:02}"));
    }

    let days = days_from_civil(year, month, day);
    let local_secs = days * 86_400 + hour * 3600 + minute * 60 + second;
    let utc_secs = local_secs - offset_minutes * 60;
    Ok(Timestamp(utc_secs * 1000 + millis))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`, the inverse of [`crate::time::civil_from_days`]).
#[must_use]
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn position(&self) -> String {
        if self.pos >= self.bytes.len() {
            "at the end".to_owned()
        } else {
            format!("at character {}", self.pos + 1)
        }
    }

    fn digits(&mut self, n_digits: usize, what: &str) -> Result<i64, String> {
        let mut value = 0_i64;
        for _ in 0..n_digits {
            match self.peek() {
                Some(byte @ b'0'..=b'9') => {
                    value = value * 10 + i64::from(byte - b'0');
                    self.pos += 1;
                }
                _ => return Err(format!("expected {what} {}", self.position())),
            }
        }
        Ok(value)
    }

    fn literal(&mut self, expected: u8) -> Result<(), String> {
        if self.peek() == Some(expected) {
            self.pos += 1;
            Ok(())
        } else {
            Err(format!(
                "expected `{}` {}",
                char::from(expected),
                self.position()
            ))
        }
    }

    fn separator(&mut self) -> Result<(), String> {
        match self.peek() {
            Some(b'T' | b't') => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(format!(
                "expected `T` between the date and the time {}",
                self.position()
            )),
        }
    }

    /// The fraction of a second in whole milliseconds, or 0 when there is none.
    fn fraction_millis(&mut self) -> Result<i64, String> {
        if self.peek() != Some(b'.') {
            return Ok(0);
        }
        self.pos += 1;
        let mut millis = 0_i64;
        let mut n_digits = 0_usize;
        while let Some(byte @ b'0'..=b'9') = self.peek() {
            if n_digits < 3 {
                millis = millis * 10 + i64::from(byte - b'0');
            }
            n_digits += 1;
            self.pos += 1;
        }
        if n_digits == 0 {
            return Err(format!(
                "expected digits after the decimal point {}",
                self.position()
            ));
        }
        for _ in n_digits..3 {
            millis *= 10;
        }
        Ok(millis)
    }

    /// The offset from UTC in minutes, east positive.
    fn offset(&mut self) -> Result<i64, String> {
        let sign = match self.peek() {
            Some(b'Z' | b'z') => {
                self.pos += 1;
                return Ok(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => {
                return Err(format!(
                    "expected `Z` or an offset such as `+02:00` {}",
                    self.position()
                ));
            }
        };
        self.pos += 1;
        let hours = self.digits(2, "a two-digit offset hour")?;
        self.literal(b':')?;
        let minutes = self.digits(2, "two-digit offset minutes")?;
        if hours > 23 || minutes > 59 {
            return Err(format!(
                "the offset must be at most 23:59, found {hours:02}:{minutes:02}"
            ));
        }
        Ok(sign * (hours * 60 + minutes))
    }
}
