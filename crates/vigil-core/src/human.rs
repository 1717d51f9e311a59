//! Numbers written for people: `94.8 %`, `12 min`, `8,000 → 4,000 tokens/s (−50 %)`.
//! Pure functions of their input, used by every text vigil writes for a person (why-packets,
//! reasons, outcomes, timelines), and [`NumberStyle`], which keeps recorded sessions in the
//! words they were recorded with.
//!
//! The rules, so that every text reads alike:
//! - **Numbers** ([`number`]): from 100 up, whole and with thousands separated by commas
//!   (`9,842`); below 100, three significant digits (`12.3`, `1.25`, `0.0423`); trailing zeros
//!   dropped (`2`, not `2.00`); below 0.001, scientific (`1.2e-5`); from 10^15 up,
//!   scientific (`1.5e15`). A negative number takes the minus sign `−` (U+2212).
//! - **Percentages** ([`percent`]): one decimal, the trailing `.0` dropped (`94.8 %`, `50 %`),
//!   except that a value that is not exactly 0 or 100 never reads as `0 %` or `100 %`: it gets
//!   more decimals, up to three, until it differs (`99.97 %`, `0.004 %`); past three it reads
//!   `> 99.999 %` or `< 0.001 %`. A person reading `100 %` may trust that nothing failed.
//! - **Durations** ([`duration_ms`]): the two largest units of `d`, `h`, `min`, `s`, the
//!   second dropped when it is zero, rounded to the smaller one shown (`45 s`, `12 min 30 s`,
//!   `2 h 5 min`, `3 d 4 h`); below a second, `ms` (and nothing is `0 s`). Never `0.0 h`.
//! - **Rates and changes** ([`rate`], [`change`]): a number and its unit (`8,000 tokens/s`),
//!   and before → after with the relative change (`8,000 → 4,000 tokens/s (−50 %)`).
//! - **Factors** ([`factor`]): a number and `×` (`19.7×`).
//!
//! Only IEEE-754 basic operations and rounding are used, so the words are the same on every
//! machine (replay compares them).

use serde::{Deserialize, Serialize};

/// The minus sign.
const MINUS: char = '\u{2212}';

/// Shown for a value that is not a number (NaN, ±∞).
const NOT_A_NUMBER: &str = "n/a";

/// `value` for people: see the module docs for the rule.
#[must_use]
pub fn number(value: f64) -> String {
    if !value.is_finite() {
        return NOT_A_NUMBER.to_owned();
    }
    let magnitude = value.abs();
    let digits = if magnitude == 0.0 {
        "0".to_owned()
    } else if magnitude >= 1e15 {
        scientific(magnitude)
    } else if magnitude >= 99.95 {
        separated(&format!("{magnitude:.0}"))
    } else if magnitude >= 9.995 {
        trimmed(format!("{magnitude:.1}"))
    } else if magnitude >= 0.9995 {
        trimmed(format!("{magnitude:.2}"))
    } else if magnitude >= 0.001 {
        significant_below_one(magnitude)
    } else {
        scientific(magnitude)
    };
    signed(value < 0.0 && digits != "0", digits)
}

/// `fraction` (0.948) as a percentage (`94.8 %`): see the module docs for the rule.
#[must_use]
pub fn percent(fraction: f64) -> String {
    if !fraction.is_finite() {
        return NOT_A_NUMBER.to_owned();
    }
    let negative = fraction < 0.0;
    let value = fraction.abs() * 100.0;
    let mut shown = String::new();
    for decimals in 1..=3 {
        shown = format!("{value:.decimals$}");
        let reads_zero = shown.parse::<f64>().is_ok_and(|read| read == 0.0);
        let reads_hundred = shown.parse::<f64>().is_ok_and(|read| read == 100.0);
        if (reads_zero && value != 0.0) || (reads_hundred && value != 100.0) {
            if decimals == 3 {
                let bound = if reads_zero { "< 0.001" } else { "> 99.999" };
                return format!("{}{bound} %", if negative { "−" } else { "" });
            }
            continue;
        }
        break;
    }
    let shown = trimmed(shown);
    format!("{} %", signed(negative && shown != "0", shown))
}

/// A relative change as a signed percentage: `+25 %`, `−50 %`, `±0 %`.
#[must_use]
pub fn signed_percent(fraction: f64) -> String {
    if fraction > 0.0 {
        format!("+{}", percent(fraction))
    } else if fraction < 0.0 {
        percent(fraction)
    } else {
        "±0 %".to_owned()
    }
}

/// A duration given in milliseconds: see the module docs for the rule.
#[must_use]
pub fn duration_ms(ms: i64) -> String {
    let sign = if ms < 0 { "−" } else { "" };
    let ms = ms.unsigned_abs();
    const SECOND: u64 = 1000;
    const MINUTE: u64 = 60 * SECOND;
    const HOUR: u64 = 60 * MINUTE;
    // Round to the smaller unit shown; a carry moves the duration to the next pair of units.
    let rounded = |unit: u64| ms.saturating_add(unit / 2) / unit;
    let pair = |count: u64, per: u64, big: &str, small: &str| {
        let (whole, rest) = (count / per, count % per);
        if rest == 0 {
            format!("{sign}{whole} {big}")
        } else {
            format!("{sign}{whole} {big} {rest} {small}")
        }
    };
    if ms == 0 {
        return "0 s".to_owned();
    }
    if ms < SECOND {
        return format!("{sign}{ms} ms");
    }
    let seconds = rounded(SECOND);
    if seconds < 60 {
        return format!("{sign}{seconds} s");
    }
    if seconds < 3600 {
        return pair(seconds, 60, "min", "s");
    }
    let minutes = rounded(MINUTE);
    if minutes < 24 * 60 {
        return pair(minutes, 60, "h", "min");
    }
    pair(rounded(HOUR), 24, "d", "h")
}

/// A duration given in seconds (fractional ones too): [`duration_ms`] of it.
#[must_use]
pub fn duration_secs(secs: f64) -> String {
    if !secs.is_finite() {
        return NOT_A_NUMBER.to_owned();
    }
    // Past i64's range the duration is already absurd; saturate rather than wrap.
    let ms = (secs * 1000.0).round();
    let ms = if ms >= i64::MAX as f64 {
        i64::MAX
    } else if ms <= i64::MIN as f64 {
        i64::MIN
    } else {
        ms as i64
    };
    duration_ms(ms)
}

/// A number with its unit: `8,000 tokens/s`.
#[must_use]
pub fn rate(value: f64, unit: &str) -> String {
    format!("{} {unit}", number(value))
}

/// Before → after with the relative change: `8,000 → 4,000 tokens/s (−50 %)`; without the
/// change when `before` is zero (no share of nothing).
#[must_use]
pub fn change(before: f64, after: f64, unit: &str) -> String {
    let shown = format!("{} → {}", number(before), rate(after, unit));
    if before == 0.0 || !before.is_finite() || !after.is_finite() {
        return shown;
    }
    format!("{shown} ({})", signed_percent((after - before) / before))
}

/// A multiple: `19.7×`.
#[must_use]
pub fn factor(value: f64) -> String {
    format!("{}×", number(value))
}

/// How the engine writes numbers into what it records (why-packets, reasons, outcomes).
///
/// Replay compares every recorded command with the one the engine issues again, words
/// included, so a session replays with the style it was recorded with: sessions recorded
/// before readable numbers lack the setting and read as [`NumberStyle::Original`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberStyle {
    /// The words of sessions recorded before readable numbers: `94.7853%`, `0.2 h`,
    /// `8,123/s`. Kept only so that those sessions replay; new sessions never use it.
    #[default]
    Original,
    /// The rules of this module: `94.8 %`, `12 min`, `8,123 tokens/s`.
    Readable,
}

/// How a duration was written in the [`NumberStyle::Original`] words: the unit it was
/// shown in, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OriginalUnit {
    /// Whole seconds, rounded down, glued to `s`: `90s`.
    Seconds,
    /// Whole minutes, rounded down: `12 min`.
    Minutes,
    /// Hours with one decimal below 100: `0.2 h`.
    Hours,
}

impl NumberStyle {
    /// Whether this is [`NumberStyle::Original`] (left out of a recorded config).
    #[must_use]
    pub fn is_original(&self) -> bool {
        *self == NumberStyle::Original
    }

    /// A plain number (a reading, a count, a limit).
    #[must_use]
    pub fn number(self, value: f64) -> String {
        match self {
            NumberStyle::Original => original::number(value),
            NumberStyle::Readable => number(value),
        }
    }

    /// A fraction as a percentage with its sign: `94.7853%` or `94.8 %`.
    #[must_use]
    pub fn percent(self, fraction: f64) -> String {
        match self {
            NumberStyle::Original => format!("{}%", original::percent(fraction)),
            NumberStyle::Readable => percent(fraction),
        }
    }

    /// A share written whole in the original words (`38%`, and `100%` for 0.998), a
    /// percentage in the readable ones.
    #[must_use]
    pub fn share(self, fraction: f64) -> String {
        match self {
            NumberStyle::Original => format!("{:.0}%", fraction * 100.0),
            NumberStyle::Readable => percent(fraction),
        }
    }

    /// A rate per second of `what` (`tokens`): `8,123/s` or `8,123 tokens/s`.
    #[must_use]
    pub fn per_second(self, value: f64, what: &str) -> String {
        match self {
            NumberStyle::Original => format!("{}/s", original::number(value)),
            NumberStyle::Readable => rate(value, &format!("{what}/s")),
        }
    }

    /// A multiple: `31.7x` or `31.7×`.
    #[must_use]
    pub fn factor(self, value: f64) -> String {
        match self {
            NumberStyle::Original => format!("{}x", original::number(value)),
            NumberStyle::Readable => factor(value),
        }
    }

    /// A multiple the original words wrote with one decimal whatever its size (`19.7x`).
    #[must_use]
    pub fn factor_one_decimal(self, value: f64) -> String {
        match self {
            NumberStyle::Original => format!("{value:.1}x"),
            NumberStyle::Readable => factor(value),
        }
    }

    /// A duration in milliseconds, in the original words the way `unit` wrote it.
    #[must_use]
    pub fn duration_ms(self, ms: i64, unit: OriginalUnit) -> String {
        match (self, unit) {
            (NumberStyle::Original, OriginalUnit::Seconds) => format!("{}s", ms / 1000),
            (NumberStyle::Original, OriginalUnit::Minutes) => format!("{} min", ms / 60_000),
            (NumberStyle::Original, OriginalUnit::Hours) => {
                format!("{} h", original::number(ms as f64 / 3_600_000.0))
            }
            (NumberStyle::Readable, _) => duration_ms(ms),
        }
    }

    /// A duration in (fractional) hours, `22.7 h` in the original words.
    #[must_use]
    pub fn duration_hours(self, hours: f64) -> String {
        match self {
            NumberStyle::Original => format!("{} h", original::number(hours)),
            NumberStyle::Readable => duration_secs(hours * 3600.0),
        }
    }
}

/// The original words' formatting, kept as it was so that recorded sessions replay.
mod original {
    /// A fraction as a percentage with at most four decimals and no trailing zeros: 0.999 is
    /// `99.9`, 0.99 is `99`.
    pub(super) fn percent(fraction: f64) -> String {
        let text = format!("{:.4}", fraction * 100.0);
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }

    /// Thousands separated and no decimals from 100 up, one decimal below.
    pub(super) fn number(value: f64) -> String {
        if !value.is_finite() {
            return value.to_string();
        }
        if value.abs() < 100.0 {
            return format!("{value:.1}");
        }
        let rounded = format!("{:.0}", value.abs());
        let out = super::separated(&rounded);
        if value < 0.0 { format!("-{out}") } else { out }
    }
}

/// Digits grouped by three with commas: `1234567` → `1,234,567`.
fn separated(digits: &str) -> String {
    let n_digits = digits.chars().count();
    let mut out = String::with_capacity(n_digits + n_digits / 3);
    for (idx, digit) in digits.chars().enumerate() {
        if idx > 0 && (n_digits - idx).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// `text` without trailing zeros after its decimal point, nor a bare point.
fn trimmed(text: String) -> String {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// Three significant digits of a magnitude in [0.001, 1), trailing zeros dropped.
fn significant_below_one(magnitude: f64) -> String {
    // The decimals that give three significant digits, found by comparison (no log10, whose
    // last bit varies between platforms); a value that rounds up gains a digit, which the
    // trimming drops.
    let decimals = if magnitude >= 0.099_95 {
        3
    } else if magnitude >= 0.009_995 {
        4
    } else {
        5
    };
    trimmed(format!("{magnitude:.decimals$}"))
}

/// A magnitude in scientific notation with two significant digits: `1.2e-5`, `1.5e15`.
fn scientific(magnitude: f64) -> String {
    let text = format!("{magnitude:.1e}");
    match text.split_once('e') {
        Some((mantissa, exponent)) => format!("{}e{exponent}", trimmed(mantissa.to_owned())),
        None => text,
    }
}

/// `digits` with the minus sign when `negative`.
fn signed(negative: bool, digits: String) -> String {
    if negative {
        format!("{MINUS}{digits}")
    } else {
        digits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `format` over each input and compares every line at once, so that one table
    /// shows every case.
    fn table<T: std::fmt::Debug + Copy>(
        cases: &[(T, &str)],
        format: impl Fn(T) -> String,
    ) -> Vec<String> {
        cases
            .iter()
            .filter_map(|(input, want)| {
                let got = format(*input);
                (got != *want).then(|| format!("{input:?}: got `{got}`, want `{want}`"))
            })
            .collect()
    }

    #[test]
    fn numbers_have_separators_and_three_significant_digits() {
        let cases = [
            (0.0, "0"),
            (-0.0, "0"),
            (9842.4, "9,842"),
            (1_234_567.0, "1,234,567"),
            (8000.0, "8,000"),
            (999.6, "1,000"),
            (100.0, "100"),
            (99.96, "100"),
            (99.94, "99.9"),
            (12.345, "12.3"),
            (12.0, "12"),
            (9.996, "10"),
            (1.25, "1.25"),
            (2.0, "2"),
            (0.5, "0.5"),
            (0.042_34, "0.0423"),
            (0.001, "0.001"),
            (0.000_012_3, "1.2e-5"),
            (1.5e15, "1.5e15"),
            (-2500.0, "−2,500"),
            (-0.25, "−0.25"),
            (f64::NAN, "n/a"),
            (f64::INFINITY, "n/a"),
        ];
        assert_eq!(table(&cases, number), Vec::<String>::new());
    }

    #[test]
    fn percentages_never_round_to_a_boundary_they_do_not_hold() {
        let cases = [
            (0.947_853, "94.8 %"),
            (0.5, "50 %"),
            (1.0, "100 %"),
            (0.0, "0 %"),
            (0.999, "99.9 %"),
            // Would read 100.0 with one decimal: more decimals until it differs.
            (0.9997, "99.97 %"),
            (0.999_95, "99.995 %"),
            (0.999_999_9, "> 99.999 %"),
            // Would read 0.0: the same at the other end.
            (0.0004, "0.04 %"),
            (0.000_04, "0.004 %"),
            (0.000_000_1, "< 0.001 %"),
            (0.1234, "12.3 %"),
            (3.5, "350 %"),
            (-0.5, "−50 %"),
            (-0.999_7, "−99.97 %"),
            (f64::NAN, "n/a"),
        ];
        assert_eq!(table(&cases, percent), Vec::<String>::new());
        let signed = [(0.25, "+25 %"), (-0.5, "−50 %"), (0.0, "±0 %")];
        assert_eq!(table(&signed, signed_percent), Vec::<String>::new());
    }

    #[test]
    fn durations_show_two_units_at_most_and_never_zero_hours() {
        let cases = [
            (0, "0 s"),
            (850, "850 ms"),
            (1000, "1 s"),
            (45_000, "45 s"),
            (59_600, "1 min"),
            (90_000, "1 min 30 s"),
            (720_000, "12 min"),
            (120_000, "2 min"),
            (3_599_600, "1 h"),
            (7_500_000, "2 h 5 min"),
            // 1 h 59 min 30 s rounds to the minute, and carries.
            (7_170_000, "2 h"),
            (86_340_000, "23 h 59 min"),
            (86_399_000, "1 d"),
            (273_600_000, "3 d 4 h"),
            (30 * 86_400_000, "30 d"),
            (-45_000, "−45 s"),
            (i64::MIN, "−106751991167 d 7 h"),
        ];
        assert_eq!(table(&cases, duration_ms), Vec::<String>::new());
        let secs = [
            (720.0, "12 min"),
            (0.25, "250 ms"),
            (81_818.18, "22 h 44 min"),
        ];
        assert_eq!(table(&secs, duration_secs), Vec::<String>::new());
        assert_eq!(duration_secs(f64::NAN), "n/a");
        assert_eq!(duration_secs(1e300), "106751991167 d 7 h");
    }

    #[test]
    fn rates_changes_and_factors_carry_their_unit() {
        assert_eq!(rate(8000.0, "tokens/s"), "8,000 tokens/s");
        assert_eq!(
            change(8000.0, 4000.0, "tokens/s"),
            "8,000 → 4,000 tokens/s (−50 %)"
        );
        assert_eq!(change(400.0, 500.0, "req/s"), "400 → 500 req/s (+25 %)");
        assert_eq!(change(0.0, 500.0, "req/s"), "0 → 500 req/s");
        // Nearly all gone is not all gone.
        assert_eq!(
            change(10_000.0, 3.0, "tokens/s"),
            "10,000 → 3 tokens/s (−99.97 %)"
        );
        assert_eq!(change(5.0, 5.0, "tokens/s"), "5 → 5 tokens/s (±0 %)");
        assert_eq!(factor(19.7), "19.7×");
        assert_eq!(factor(1234.6), "1,235×");
    }

    /// The original words are exactly what sessions recorded before readable numbers hold.
    #[test]
    fn the_original_style_writes_as_it_always_did() {
        let original = NumberStyle::Original;
        assert_eq!(original.percent(0.947_853), "94.7853%");
        assert_eq!(original.percent(0.99), "99%");
        assert_eq!(original.share(0.998), "100%");
        assert_eq!(original.number(12.0), "12.0");
        assert_eq!(original.number(-2500.0), "-2,500");
        assert_eq!(original.per_second(8123.4, "tokens"), "8,123/s");
        assert_eq!(original.factor(31.7), "31.7x");
        assert_eq!(original.factor_one_decimal(1234.56), "1234.6x");
        assert_eq!(original.duration_ms(90_500, OriginalUnit::Seconds), "90s");
        assert_eq!(
            original.duration_ms(7_530_000, OriginalUnit::Minutes),
            "125 min"
        );
        assert_eq!(original.duration_ms(720_000, OriginalUnit::Hours), "0.2 h");
        assert_eq!(original.duration_ms(120_000, OriginalUnit::Hours), "0.0 h");
        assert_eq!(original.duration_hours(22.71), "22.7 h");
        let readable = NumberStyle::Readable;
        assert_eq!(readable.percent(0.947_853), "94.8 %");
        assert_eq!(readable.share(0.998), "99.8 %");
        assert_eq!(readable.per_second(8123.4, "tokens"), "8,123 tokens/s");
        assert_eq!(readable.duration_ms(120_000, OriginalUnit::Hours), "2 min");
        assert_eq!(readable.duration_hours(22.71), "22 h 43 min");
    }

    #[test]
    fn a_recorded_config_without_the_setting_reads_the_original_words() {
        #[derive(Deserialize)]
        struct Config {
            #[serde(default)]
            numbers: NumberStyle,
        }
        let old: Config = serde_json::from_str("{}").unwrap();
        assert_eq!(old.numbers, NumberStyle::Original);
        let new: Config = serde_json::from_str(r#"{"numbers": "readable"}"#).unwrap();
        assert_eq!(new.numbers, NumberStyle::Readable);
    }
}
