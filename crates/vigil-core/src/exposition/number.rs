//! Sample values and timestamps: Go's float syntax as Prometheus restricts it, integer
//! milliseconds (text format), and float seconds converted to exact milliseconds (OpenMetrics).

use std::num::IntErrorKind;

/// Why a number was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum NumberError {
    /// Not in the grammar.
    Invalid,
    /// In the grammar but outside the representable range.
    OutOfRange,
}

/// A sample value: a decimal float (`1`, `-0.5`, `.5`, `1.`, `1e-3`), `NaN` (unsigned), or an
/// optionally signed `Inf`/`Infinity`, all case-insensitive. That is Go's `strconv.ParseFloat`
/// without hexadecimal floats and underscores, which Prometheus rejects, and equals the
/// OpenMetrics ABNF's `number`. A finite spelling beyond `f64`'s range is out of range (Go
/// reports `ErrRange`); one below its smallest subnormal is zero.
#[inline]
pub(super) fn parse_value(text: &str) -> Result<f64, NumberError> {
    if let Some(value) = parse_simple_decimal(text.as_bytes()) {
        return Ok(value);
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    // Rust's float syntax is Go's decimal one, except that Rust also takes a signed NaN.
    if unsigned.len() != text.len() && unsigned.starts_with(['n', 'N']) {
        return Err(NumberError::Invalid);
    }
    let value: f64 = text.parse().map_err(|_| NumberError::Invalid)?;
    if value.is_infinite() && !unsigned.starts_with(['i', 'I']) {
        return Err(NumberError::OutOfRange);
    }
    Ok(value)
}

/// Powers of ten that are exact in an `f64`.
const EXACT_POWERS_OF_TEN: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The common case of a value, fast: a decimal (`[+-]?digits[.digits][e[+-]?digits]`) whose
/// digits, without the point, make an integer up to 2^53 and whose decimal exponent is within
/// ±22. Both factors are then exact, so one IEEE multiplication or division rounds correctly
/// and the result equals `str::parse`'s (Clinger's fast path). Anything else is `None`, for the
/// general path.
#[inline]
fn parse_simple_decimal(text: &[u8]) -> Option<f64> {
    let (negative, mut rest) = match text.split_first()? {
        (b'-', rest) => (true, rest),
        (b'+', rest) => (false, rest),
        _ => (false, text),
    };
    let mut significand: u64 = 0;
    let mut n_digits = 0_u32;
    let mut n_fraction_digits = 0_i32;
    let mut seen_point = false;
    while let Some((&byte, tail)) = rest.split_first() {
        match byte {
            b'0'..=b'9' => {
                // 19 digits always fit a u64; the 2^53 bound is checked at the end.
                if n_digits == 19 {
                    return None;
                }
                significand = significand * 10 + u64::from(byte - b'0');
                n_digits += 1;
                n_fraction_digits += i32::from(seen_point);
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        rest = tail;
    }
    if n_digits == 0 {
        return None;
    }
    let mut exponent = 0_i32;
    if let Some((&(b'e' | b'E'), tail)) = rest.split_first() {
        let (exponent_negative, mut digits) = match tail.split_first()? {
            (b'-', digits) => (true, digits),
            (b'+', digits) => (false, digits),
            _ => (false, tail),
        };
        if digits.is_empty() {
            return None;
        }
        while let Some((&byte, tail)) = digits.split_first() {
            if !byte.is_ascii_digit() || exponent > 1000 {
                return None;
            }
            exponent = exponent * 10 + i32::from(byte - b'0');
            digits = tail;
        }
        if exponent_negative {
            exponent = -exponent;
        }
        rest = digits;
    }
    if !rest.is_empty() || significand > 1 << 53 {
        return None;
    }
    let power = exponent - n_fraction_digits;
    let magnitude = significand as f64;
    let value = if power >= 0 {
        magnitude * *EXACT_POWERS_OF_TEN.get(usize::try_from(power).ok()?)?
    } else {
        magnitude / *EXACT_POWERS_OF_TEN.get(usize::try_from(-power).ok()?)?
    };
    Some(if negative { -value } else { value })
}

/// Whether `text` is a valid value, without computing it when it is a plain decimal
/// (`0.005`, `+Inf` takes the general path): how a histogram's `le` and a summary's
/// `quantile` are checked.
#[inline]
pub(super) fn is_value(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = bytes
        .strip_prefix(b"-")
        .or_else(|| bytes.strip_prefix(b"+"))
        .unwrap_or(bytes);
    // Without an exponent, fewer than 300 digits cannot leave f64's range.
    let plain = digits.len() < 300
        && digits.iter().any(u8::is_ascii_digit)
        && digits.iter().filter(|&&byte| byte == b'.').count() <= 1
        && digits
            .iter()
            .all(|&byte| byte.is_ascii_digit() || byte == b'.');
    plain || parse_value(text).is_ok()
}

/// A text-format timestamp: integer milliseconds, optionally signed, within `i64`.
pub(super) fn parse_millis(text: &str) -> Result<i64, NumberError> {
    text.parse::<i64>().map_err(|error| match error.kind() {
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => NumberError::OutOfRange,
        _ => NumberError::Invalid,
    })
}

/// An OpenMetrics timestamp, the ABNF's `realnumber` of seconds (`1700000000`,
/// `1700000000.123`, `1.7e9`, `-1.5`), as exact integer milliseconds within `i64`.
///
/// The conversion is decimal arithmetic on the digits, never an `f64`: `1700000000.123` is
/// exactly `1700000000123`. Digits below the millisecond round half to even
/// (`0.0005` → 0, `0.0015` → 2, `0.00150001` → 2, `-0.0025` → -2).
pub(super) fn parse_seconds_as_millis(text: &str) -> Result<i64, NumberError> {
    let (negative, unsigned) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or_default()),
        Some(b'+') => (false, text.get(1..).unwrap_or_default()),
        _ => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (
            unsigned.get(..at).unwrap_or_default(),
            parse_exponent(unsigned.get(at + 1..).unwrap_or_default())?,
        ),
        None => (unsigned, 0),
    };
    let (integer_digits, fraction_digits) = match mantissa.split_once('.') {
        Some((integer, fraction)) => (integer, fraction),
        None => (mantissa, ""),
    };
    let all_digits = |digits: &str| digits.bytes().all(|byte| byte.is_ascii_digit());
    if integer_digits.len() + fraction_digits.len() == 0
        || !all_digits(integer_digits)
        || !all_digits(fraction_digits)
    {
        return Err(NumberError::Invalid);
    }

    // The value in milliseconds is `significand × 10^scale`, with the significand's digits
    // being all the mantissa's digits without their leading zeros.
    let digits = integer_digits.bytes().chain(fraction_digits.bytes());
    let n_leading_zeros = digits.clone().take_while(|&digit| digit == b'0').count();
    let mut significand = digits.skip(n_leading_zeros).map(|digit| digit - b'0');
    let n_significant = integer_digits.len() + fraction_digits.len() - n_leading_zeros;
    if n_significant == 0 {
        return Ok(0);
    }
    // Lengths are far below i128's range; the exponent was clamped to i64.
    let scale = i128::from(exponent) - fraction_digits.len() as i128 + 3;
    let n_significant = n_significant as i128;

    // 2^63, the magnitude of i64::MIN; the largest magnitude has 19 digits.
    const LIMIT: u128 = 1 << 63;
    let mut magnitude: u128 = 0;
    if scale >= 0 {
        if n_significant + scale > 19 {
            return Err(NumberError::OutOfRange);
        }
        for digit in significand {
            magnitude = magnitude * 10 + u128::from(digit);
        }
        for _ in 0..scale {
            magnitude *= 10;
        }
    } else {
        let n_dropped = -scale;
        if n_dropped > n_significant {
            // Below 0.1 ms in magnitude: rounds to zero.
            return Ok(0);
        }
        let n_kept = n_significant - n_dropped;
        if n_kept > 19 {
            return Err(NumberError::OutOfRange);
        }
        for digit in significand.by_ref().take(n_kept as usize) {
            magnitude = magnitude * 10 + u128::from(digit);
        }
        let first_dropped = significand.next().unwrap_or(0);
        let rest_nonzero = significand.any(|digit| digit != 0);
        let round_up =
            first_dropped > 5 || (first_dropped == 5 && (rest_nonzero || magnitude % 2 == 1));
        if round_up {
            magnitude += 1;
        }
    }
    let in_range = if negative {
        magnitude <= LIMIT
    } else {
        magnitude < LIMIT
    };
    if !in_range {
        return Err(NumberError::OutOfRange);
    }
    // INVARIANT: magnitude <= 2^63, so the signed result fits i128 and then i64.
    let signed = if negative {
        -(magnitude as i128)
    } else {
        magnitude as i128
    };
    i64::try_from(signed).map_err(|_| NumberError::OutOfRange)
}

/// An exponent, `[+-]?[0-9]+`, clamped to `i64` (beyond that any nonzero significand is out
/// of range or rounds to zero either way).
fn parse_exponent(text: &str) -> Result<i64, NumberError> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, text.get(1..).unwrap_or_default()),
        Some(b'+') => (false, text.get(1..).unwrap_or_default()),
        _ => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(NumberError::Invalid);
    }
    let magnitude = digits.bytes().fold(0_i64, |acc, digit| {
        acc.saturating_mul(10)
            .saturating_add(i64::from(digit - b'0'))
    });
    Ok(if negative { -magnitude } else { magnitude })
}
