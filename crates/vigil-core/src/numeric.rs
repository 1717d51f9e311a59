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
}
