//! Prometheus text format 0.0.4 as Python's `prometheus_client` writes it: its float
//! rendering (`120.0`, `1.7954356178848538e+09`, `+Inf`) and its label escaping.

use std::fmt::Write as _;

/// Renders a float exactly as `prometheus_client.utils.floatToGoString` does.
///
/// That function starts from Python's `repr` and switches to an exponent as soon as more
/// than six digits stand before the decimal point, the way Go formats floats.
pub(crate) fn go_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".to_owned();
    }
    if value.is_infinite() {
        return if value > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let repr = python_repr(value);
    match repr.find('.') {
        Some(dot) if value > 0.0 && dot > 6 => {
            let (integer, fraction) = repr.split_at(dot);
            let digits = format!("{integer}{}", fraction.trim_start_matches('.'));
            let mut chars = digits.chars();
            let first = chars.next().unwrap_or('0');
            let rest: String = chars.collect();
            let mantissa = format!("{first}.{rest}");
            // Python strips any trailing run of '0' and '.' characters here.
            let mantissa = mantissa.trim_end_matches(['0', '.']);
            // Python writes `e+0{dot - 1}`, so exponents of ten and more read `e+010`.
            format!("{mantissa}e+0{}", dot - 1)
        }
        _ => repr,
    }
}

/// Renders a finite float as Python's `repr` does: the shortest digits that round-trip,
/// positional for decimal exponents in `-4..16`, scientific outside.
pub(crate) fn python_repr(value: f64) -> String {
    if value == 0.0 {
        return if value.is_sign_negative() {
            "-0.0"
        } else {
            "0.0"
        }
        .to_owned();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    // Rust's `{:e}` gives the same shortest round-trip digits, e.g. `1.7954356178848538e9`.
    let scientific = format!("{:e}", value.abs());
    let (mantissa, exponent) = scientific
        .split_once('e')
        .unwrap_or((scientific.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        let body = if exponent >= 0 {
            let integer_len = usize::try_from(exponent).unwrap_or(0) + 1;
            if digits.len() > integer_len {
                let (integer, fraction) = digits.split_at(integer_len);
                format!("{integer}.{fraction}")
            } else {
                format!("{digits}{}.0", "0".repeat(integer_len - digits.len()))
            }
        } else {
            let zeros = usize::try_from(-exponent - 1).unwrap_or(0);
            format!("0.{}{digits}", "0".repeat(zeros))
        };
        format!("{sign}{body}")
    } else {
        let mut chars = digits.chars();
        let first = chars.next().unwrap_or('0');
        let rest: String = chars.collect();
        let mantissa = if rest.is_empty() {
            first.to_string()
        } else {
            format!("{first}.{rest}")
        };
        let exponent_sign = if exponent < 0 { '-' } else { '+' };
        format!(
            "{sign}{mantissa}e{exponent_sign}{:02}",
            exponent.unsigned_abs()
        )
    }
}

/// Escapes a label value the way `prometheus_client` does: backslash, newline, quote.
pub(crate) fn escape_label_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '"' => escaped.push_str("\\\""),
            other => escaped.push(other),
        }
    }
    escaped
}

/// Writes one sample line: `name{a="x",b="y"} value`, or `name value` without labels.
pub(crate) fn write_sample(
    out: &mut String,
    name: &str,
    names: &[&str],
    values: &[String],
    value: f64,
) {
    out.push_str(name);
    if !names.is_empty() {
        out.push('{');
        for (idx, (label, label_value)) in names.iter().zip(values).enumerate() {
            if idx > 0 {
                out.push(',');
            }
            let _infallible = write!(out, "{label}=\"{}\"", escape_label_value(label_value));
        }
        out.push('}');
    }
    let _infallible = writeln!(out, " {}", go_float(value));
}

/// Writes the `# HELP` and `# TYPE` lines of a family.
pub(crate) fn write_header(out: &mut String, name: &str, help: &str, kind: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _infallible = writeln!(out, "# HELP {name} {help}");
    let _infallible = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_render_like_prometheus_client() {
        // Each pair was read from a real LiteLLM 1.106.2 scrape or from CPython itself.
        let cases: &[(f64, &str)] = &[
            (120.0, "120.0"),
            (0.0, "0.0"),
            (1.0, "1.0"),
            (20000.0, "20000.0"),
            (15.290000000000001, "15.290000000000001"),
            (0.0009000000000000001, "0.0009000000000000001"),
            (0.003487, "0.003487"),
            (741_351_424.0, "7.41351424e+08"),
            (356_679_680.0, "3.5667968e+08"),
            (1_795_435_582.51, "1.79543558251e+09"),
            (1_795_435_617.884_853_8, "1.7954356178848538e+09"),
            (1_000_000_000.0, "1e+09"),
            (9.223_372_036_854_776e18, "9.223372036854776e+18"),
            (12_345_678_901.5, "1.23456789015e+010"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (-2.5, "-2.5"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (value, expected) in cases {
            assert_eq!(go_float(*value), *expected, "rendering {value:?}");
        }
    }

    #[test]
    fn python_repr_switches_to_exponent_at_sixteen_digits() {
        assert_eq!(python_repr(1e15), "1000000000000000.0");
        assert_eq!(python_repr(1e16), "1e+16");
        assert_eq!(python_repr(1.5e300), "1.5e+300");
        assert_eq!(python_repr(2.5e-7), "2.5e-07");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
