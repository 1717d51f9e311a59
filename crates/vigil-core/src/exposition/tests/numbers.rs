//! Values and timestamps, against independent oracles.

use super::super::number::{NumberError, parse_seconds_as_millis, parse_value};

/// Rounds `whole + numerator / denominator` half to even (all nonnegative).
fn round_half_even(whole: i64, numerator: i64, denominator: i64) -> i64 {
    match (2 * numerator).cmp(&denominator) {
        std::cmp::Ordering::Less => whole,
        std::cmp::Ordering::Greater => whole + 1,
        std::cmp::Ordering::Equal => whole + (whole % 2),
    }
}

#[test]
fn seconds_with_sub_millisecond_digits_round_half_to_even() {
    // Every 4-digit sub-millisecond tail after a few millisecond values, positive and
    // negative, against integer arithmetic.
    for ms in [
        0_i64,
        1,
        2,
        999,
        1_000,
        1_700_000_000_123,
        9_223_372_036_854_775_806,
    ] {
        for tail in 0..10_000_i64 {
            let text = format!("{}.{:03}{tail:04}", ms / 1000, ms % 1000);
            let expected = round_half_even(ms, tail, 10_000);
            assert_eq!(parse_seconds_as_millis(&text), Ok(expected), "{text}");
            let negative = format!("-{text}");
            assert_eq!(
                parse_seconds_as_millis(&negative),
                Ok(-expected),
                "{negative}"
            );
        }
    }
}

#[test]
fn exponents_shift_the_decimal_point_exactly() {
    // `digits e exponent` against the same value written out in full.
    for digits in ["1", "17", "123456789", "1700000000123", "5", "15", "25"] {
        for exponent in -12_i32..=12 {
            let with_exponent = format!("{digits}e{exponent}");
            let width = digits.len() as i32;
            let point = width + exponent;
            let written_out = if point <= 0 {
                format!("0.{}{digits}", "0".repeat((-point) as usize))
            } else if point >= width {
                format!("{digits}{}", "0".repeat((point - width) as usize))
            } else {
                format!(
                    "{}.{}",
                    &digits[..point as usize],
                    &digits[point as usize..]
                )
            };
            assert_eq!(
                parse_seconds_as_millis(&with_exponent),
                parse_seconds_as_millis(&written_out),
                "{with_exponent} vs {written_out}"
            );
        }
    }
}

#[test]
fn timestamp_edges() {
    let cases: [(&str, Result<i64, NumberError>); 18] = [
        ("1700000000.123", Ok(1_700_000_000_123)),
        ("1.7e9", Ok(1_700_000_000_000)),
        ("1.7E+9", Ok(1_700_000_000_000)),
        ("0", Ok(0)),
        ("-0.0004", Ok(0)),
        ("0e999999999999999999999", Ok(0)),
        ("1e-999999999999999999999", Ok(0)),
        ("1e999999999999999999999", Err(NumberError::OutOfRange)),
        ("9223372036854775.807", Ok(i64::MAX)),
        ("9223372036854775.8074", Ok(i64::MAX)),
        ("9223372036854775.8075", Err(NumberError::OutOfRange)),
        ("-9223372036854775.808", Ok(i64::MIN)),
        ("-9223372036854775.809", Err(NumberError::OutOfRange)),
        ("00000000000000000000000000001.5", Ok(1_500)),
        ("", Err(NumberError::Invalid)),
        (".", Err(NumberError::Invalid)),
        ("1e+", Err(NumberError::Invalid)),
        ("Inf", Err(NumberError::Invalid)),
    ];
    for (text, expected) in cases {
        assert_eq!(parse_seconds_as_millis(text), expected, "{text:?}");
    }
}

#[test]
fn values_follow_go_as_prometheus_restricts_it() {
    for (text, expected) in [
        ("1", Ok(1.0)),
        ("-0.5", Ok(-0.5)),
        ("+.5", Ok(0.5)),
        ("5.", Ok(5.0)),
        ("1E3", Ok(1000.0)),
        ("+Inf", Ok(f64::INFINITY)),
        ("-infinity", Ok(f64::NEG_INFINITY)),
        ("1e-400", Ok(0.0)),
        ("1e400", Err(NumberError::OutOfRange)),
        ("-1e400", Err(NumberError::OutOfRange)),
        ("+NaN", Err(NumberError::Invalid)),
        ("1_000", Err(NumberError::Invalid)),
        ("0x10", Err(NumberError::Invalid)),
        ("0x1p4", Err(NumberError::Invalid)),
        ("", Err(NumberError::Invalid)),
        ("1 ", Err(NumberError::Invalid)),
    ] {
        assert_eq!(parse_value(text), expected, "{text:?}");
    }
    assert!(parse_value("NaN").unwrap().is_nan());
    assert!(parse_value("nan").unwrap().is_nan());
}

#[test]
fn the_fast_decimal_path_agrees_with_the_standard_library() {
    // Decimals of every shape the fast path takes or declines, against `str::parse`, bit for
    // bit (xorshift64* for the digits).
    let mut state = 0x2545_F491_4F6C_DD1D_u64;
    let mut next = move || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for _ in 0..200_000 {
        let n_digits = 1 + (next() % 20) as usize;
        let digits: String = (0..n_digits)
            .map(|_| char::from(b'0' + (next() % 10) as u8))
            .collect();
        let point = (next() % (n_digits as u64 + 2)) as usize;
        let mut text = match next() % 3 {
            0 => "-".to_owned(),
            1 => "+".to_owned(),
            _ => String::new(),
        };
        if point <= n_digits {
            text.push_str(&digits[..point]);
            text.push('.');
            text.push_str(&digits[point..]);
        } else {
            text.push_str(&digits);
        }
        if next() % 2 == 0 {
            text.push_str(&format!("e{}", (next() % 61) as i64 - 30));
        }
        let expected: f64 = text.parse().unwrap();
        assert_eq!(
            parse_value(&text).map(f64::to_bits),
            Ok(expected.to_bits()),
            "{text}"
        );
    }
}

#[test]
fn is_value_agrees_with_parse_value() {
    for text in [
        "0.005", "1", "+Inf", "-Inf", "NaN", "1e3", ".5", "5.", ".", "", "+", "-", "1.2.3", "1..2",
        "0x1", "1_0", "+NaN", "1e400", "abc", "1-", "-.5",
    ] {
        assert_eq!(
            super::super::number::is_value(text),
            parse_value(text).is_ok(),
            "{text:?}"
        );
    }
}
