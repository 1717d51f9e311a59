//! Canonical JSON: one text per JSON value, so that hashes of payloads are reproducible.

use serde_json::Value;

/// The canonical text of `value`: object keys sorted recursively, no whitespace.
///
/// Keys are sorted by their UTF-8 bytes (which is Unicode code point order), whatever order
/// the `serde_json::Map` iterates in: a dependency enabling serde_json's `preserve_order`
/// must not change a hash. Arrays keep their order. Strings and numbers are written exactly as
/// `serde_json::to_string` writes them: `"`, `\` and control characters are escaped (the
/// short forms `\b \t \n \f \r`, else `\u00xx` in lowercase hex), everything else, non-ASCII
/// included, is written verbatim; floats use the shortest text that parses back to the same
/// `f64`.
#[must_use]
pub fn canonical_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

/// Appends the canonical text of `value` to `out`.
fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => out.push_str(&number.to_string()),
        Value::String(text) => write_json_string(out, text),
        Value::Array(items) => {
            out.push('[');
            for (item_idx, item) in items.iter().enumerate() {
                if item_idx > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_unstable_by(|left, right| left.0.cmp(right.0));
            out.push('{');
            for (member_idx, (key, member)) in members.into_iter().enumerate() {
                if member_idx > 0 {
                    out.push(',');
                }
                write_json_string(out, key);
                out.push(':');
                write_value(out, member);
            }
            out.push('}');
        }
    }
}

/// Appends `text` as a JSON string literal, escaped as serde_json escapes it.
pub(crate) fn write_json_string(out: &mut String, text: &str) {
    const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    for character in text.chars() {
        match character {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0C}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            control if u32::from(control) < 0x20 => {
                let code = u32::from(control);
                out.push_str("\\u00");
                for nibble in [code >> 4, code & 0xF] {
                    let digit = HEX_DIGITS
                        .get(nibble as usize)
                        .copied()
                        .map_or('0', char::from);
                    out.push(digit);
                }
            }
            other => out.push(other),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::canonical_json;
    use serde_json::{Value, json};

    /// Parses `input`, canonicalizes it and compares with `expected`.
    fn check(input: &str, expected: &str) {
        let value: Value = serde_json::from_str(input).unwrap_or_else(|error| {
            unreachable!("test input {input} is not json: {error}");
        });
        assert_eq!(
            canonical_json(&value),
            expected,
            "canonical form of {input}"
        );
    }

    #[test]
    fn canonical_forms() {
        let cases: &[(&str, &str)] = &[
            ("null", "null"),
            ("true", "true"),
            (" false ", "false"),
            ("{}", "{}"),
            ("[]", "[]"),
            (r#"{"b":1,"a":2}"#, r#"{"a":2,"b":1}"#),
            (
                r#"{ "z": {"y": 1, "x": [3, 1, {"d": 0, "c": null}]}, "a": [] }"#,
                r#"{"a":[],"z":{"x":[3,1,{"c":null,"d":0}],"y":1}}"#,
            ),
            ("[3, 2, 1]", "[3,2,1]"),
            // Byte order: uppercase before lowercase, shorter prefix first, non-ASCII last.
            (
                r#"{"b":0,"B":0,"é":0,"a":0,"ab":0}"#,
                r#"{"B":0,"a":0,"ab":0,"b":0,"é":0}"#,
            ),
            (r#""caf\u00e9 \ud83d\ude00""#, "\"café 😀\""),
            (r#""tab\tquote\"slash\\/""#, r#""tab\tquote\"slash\\/""#),
            (
                r#""\u0000\u001f\u007f\b\f\n\r""#,
                "\"\\u0000\\u001f\u{7f}\\b\\f\\n\\r\"",
            ),
            ("0", "0"),
            // serde_json reads `-0` as a float.
            ("-0", "-0.0"),
            ("18446744073709551615", "18446744073709551615"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("1.0", "1.0"),
            ("0.1", "0.1"),
            ("1e3", "1000.0"),
            ("1.5e-7", "1.5e-7"),
            ("2.5E+300", "2.5e+300"),
            ("12345.678901234567", "12345.678901234567"),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let mut characters: Vec<char> = (0u8..=0x7F).map(char::from).collect();
        characters.extend(['é', '\u{2028}', '\u{FEFF}', '😀']);
        for character in characters {
            let text = format!("a{character}b");
            let expected = serde_json::to_string(&text).unwrap_or_default();
            assert_eq!(
                canonical_json(&Value::String(text.clone())),
                expected,
                "{text:?}"
            );
        }
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        let numbers = [
            json!(0),
            json!(-7),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(0.5),
            json!(-0.0),
            json!(2.5e300),
            json!(1.5e-7),
            json!(1e21),
            json!(123_456.0),
        ];
        for number in numbers {
            let expected = serde_json::to_string(&number).unwrap_or_default();
            assert_eq!(canonical_json(&number), expected);
            assert_eq!(
                canonical_json(&json!([number, {"n": number}])),
                format!("[{expected},{{\"n\":{expected}}}]")
            );
        }
    }

    #[test]
    fn floats_round_trip_exactly() {
        let floats = [
            0.1,
            1.0 / 3.0,
            1e-300,
            f64::MAX,
            f64::MIN_POSITIVE,
            -2.5e-8,
            123_456_789.123_456_78,
        ];
        for float in floats {
            let text = canonical_json(&json!(float));
            let parsed: f64 = serde_json::from_str(&text).unwrap_or(f64::NAN);
            assert_eq!(
                parsed.to_bits(),
                float.to_bits(),
                "{float} written as {text}"
            );
        }
    }

    #[test]
    fn canonical_text_is_a_fixed_point() {
        let value = json!({"k": [1, {"b": "x", "a": 2.5}], "a": {"nested": {"z": 1, "y": 2}}});
        let once = canonical_json(&value);
        let reparsed: Value = serde_json::from_str(&once).unwrap_or(Value::Null);
        assert_eq!(reparsed, value);
        assert_eq!(canonical_json(&reparsed), once);
    }
}
