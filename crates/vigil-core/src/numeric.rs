//! Arithmetic that gives the same bits on every machine.
//!
//! Replay must reproduce decisions exactly, possibly years later on another machine. IEEE-754
//! guarantees correctly rounded results only for the basic operations and `sqrt`; functions
//! such as `powf`, `exp` or `ln` come from the platform's libm and may differ in the last bit
//! between libm versions. The engine therefore uses only basic operations, `sqrt` and the
//! functions here, which are built from them. (`clippy.toml` bans the libm functions in this
//! crate.)

/// `0.5^x` for `x >= 0`, deterministically; accurate to a few units in the last place.
///
/// The integer part is applied by exact halvings and the fractional part by a fixed Taylor
/// series of `exp(-f ln 2)`, evaluated in a fixed order.
#[must_use]
pub fn half_pow(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x <= 0.0 {
        return 1.0;
    }
    // 0.5^1100 is below the smallest subnormal.
    if x >= 1100.0 {
        return 0.0;
    }
    let whole = x.trunc();
    let fraction = x - whole;
    let mut result = exp_neg_small(fraction * std::f64::consts::LN_2);
    let mut halvings = whole as u32;
    while halvings > 0 {
        result *= 0.5;
        halvings -= 1;
    }
    result
}

/// `exp(-y)` for `0 <= y < 0.7`, by a Taylor series with a fixed number of terms.
fn exp_neg_small(y: f64) -> f64 {
    // 0.7^22 / 22! is below 1e-24, far under f64's resolution near 1.
    const TERMS: u32 = 22;
    let mut term = 1.0;
    let mut sum = 1.0;
    for n in 1..=TERMS {
        term *= -y / f64::from(n);
        sum += term;
    }
    sum
}

/// The natural logarithm of `x`, deterministically; accurate to a few units in the last
/// place. `NaN` for `NaN` and negative `x`, `-inf` for 0, `+inf` for `+inf`.
///
/// `x` is split exactly into `m * 2^e` with `m` in `[sqrt(1/2), sqrt(2))` (by its bits), and
/// `ln m = 2 atanh(s)` with `s = (m - 1) / (m + 1)`, `|s| < 0.172`, by a fixed series.
#[must_use]
pub fn ln(x: f64) -> f64 {
    if x.is_nan() || x < 0.0 {
        return f64::NAN;
    }
    if x == 0.0 {
        return f64::NEG_INFINITY;
    }
    if x.is_infinite() {
        return f64::INFINITY;
    }
    // Subnormals are scaled into the normal range first (exactly: a power of two).
    let (x, mut exponent) = if x < f64::MIN_POSITIVE {
        (x * 18_014_398_509_481_984.0, -54_i64) // 2^54
    } else {
        (x, 0)
    };
    let bits = x.to_bits();
    exponent += ((bits >> 52) & 0x7ff) as i64 - 1023;
    // The mantissa with the exponent of 1: in [1, 2).
    let mut mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if mantissa >= std::f64::consts::SQRT_2 {
        mantissa *= 0.5;
        exponent += 1;
    }
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s2 = s * s;
    // s^2 < 0.0295, so 0.0295^15 / 31 is far below f64's resolution; summed smallest first.
    const TERMS: u32 = 15;
    let mut series = 0.0;
    for k in (0..TERMS).rev() {
        series = series * s2 + 1.0 / f64::from(2 * k + 1);
    }
    exponent as f64 * std::f64::consts::LN_2 + 2.0 * s * series
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_libm_closely() {
        for x in [
            0.0, 1e-9, 0.001, 0.25, 0.5, 0.999, 1.0, 1.5, 2.0, 3.3, 10.0, 33.3, 100.0, 1000.0,
        ] {
            #[expect(
                clippy::disallowed_methods,
                reason = "the platform's powf is the reference here"
            )]
            let reference = 0.5_f64.powf(x);
            let ours = half_pow(x);
            let relative = ((ours - reference) / reference).abs();
            assert!(relative < 1e-14, "x={x}: {ours} vs {reference}");
        }
    }

    #[test]
    fn edges() {
        assert_eq!(half_pow(-1.0), 1.0);
        assert_eq!(half_pow(0.0), 1.0);
        assert_eq!(half_pow(1.0), 0.5);
        assert_eq!(half_pow(2.0), 0.25);
        assert_eq!(half_pow(5000.0), 0.0);
        assert!(half_pow(f64::NAN).is_nan());
        assert_eq!(half_pow(f64::INFINITY), 0.0);
    }
    #[test]
    fn ln_matches_libm_closely() {
        for x in [
            1e-310,
            1e-300,
            1e-9,
            0.001,
            0.05,
            0.15,
            0.5,
            0.7,
            0.85,
            0.95,
            0.999_999,
            1.0,
            1.000_001,
            1.5,
            2.0,
            std::f64::consts::E,
            10.0,
            1e6,
            1e300,
            f64::MAX,
        ] {
            #[expect(
                clippy::disallowed_methods,
                reason = "the platform's ln is the reference here"
            )]
            let reference = x.ln();
            let ours = ln(x);
            let error = (ours - reference).abs();
            assert!(
                error <= reference.abs() * 1e-15 || error < 1e-17,
                "x={x}: {ours} vs {reference}"
            );
        }
    }

    #[test]
    fn ln_edges() {
        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(2.0), std::f64::consts::LN_2);
        assert_eq!(ln(0.0), f64::NEG_INFINITY);
        assert_eq!(ln(f64::INFINITY), f64::INFINITY);
        assert!(ln(-1.0).is_nan());
        assert!(ln(f64::NAN).is_nan());
    }
}
