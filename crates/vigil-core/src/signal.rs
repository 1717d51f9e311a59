//! Samples and label sets: what a scrape contributes to the engine.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A label set, sorted by name so that equal sets compare and serialize identically.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Labels(BTreeMap<String, String>);

impl Labels {
    /// The value of label `name`, if present.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Sets label `name` to `value`, replacing any previous value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.insert(name.into(), value.into());
    }

    /// The labels in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// The number of labels.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no labels.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Labels(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl fmt::Display for Labels {
    /// Formats as in the exposition format: `{a="1",b="2"}`, escaping `\`, `"` and newlines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (idx, (name, value)) in self.iter().enumerate() {
            if idx > 0 {
                f.write_str(",")?;
            }
            write!(f, "{name}=\"")?;
            for ch in value.chars() {
                match ch {
                    '\\' => f.write_str("\\\\")?,
                    '"' => f.write_str("\\\"")?,
                    '\n' => f.write_str("\\n")?,
                    other => write!(f, "{other}")?,
                }
            }
            f.write_str("\"")?;
        }
        f.write_str("}")
    }
}

/// One sample as the engine receives it: owned, with the scrape's labels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The metric name, for example `litellm_total_tokens_metric_total`.
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its value; `NaN` and infinities are kept (they serialize as strings).
    #[serde(with = "float_repr")]
    pub value: f64,
    /// The exposition's own timestamp in milliseconds, when it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<i64>,
}

/// Serializes an `f64` as a JSON number when finite and as `"NaN"`, `"+Inf"` or `"-Inf"`
/// otherwise, so that no value is lost on the way through the ledger.
///
/// Finite values round-trip exactly because serde_json prints the shortest representation
/// that parses back to the same bits (and vigil enables its `float_roundtrip` parsing).
pub mod float_repr {
    use serde::{Deserialize, Deserializer, Serializer, de};

    /// Serializes `value`.
    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        if value.is_nan() {
            serializer.serialize_str("NaN")
        } else if value.is_infinite() && value.is_sign_positive() {
            serializer.serialize_str("+Inf")
        } else if value.is_infinite() {
            serializer.serialize_str("-Inf")
        } else {
            serializer.serialize_f64(*value)
        }
    }

    /// Deserializes a value written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Number(value) => Ok(value),
            Repr::Text(text) => match text.as_str() {
                "NaN" => Ok(f64::NAN),
                "+Inf" => Ok(f64::INFINITY),
                "-Inf" => Ok(f64::NEG_INFINITY),
                other => Err(de::Error::custom(format!(
                    "expected a number, `NaN`, `+Inf` or `-Inf`, found `{other}`"
                ))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_values_survive_json() {
        for value in [
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1,
            1.7954356178848538e9,
            -0.0,
        ] {
            let sample = Sample {
                name: "m".to_owned(),
                labels: Labels::default(),
                value,
                timestamp_ms: None,
            };
            let json = serde_json::to_string(&sample).unwrap();
            let back: Sample = serde_json::from_str(&json).unwrap();
            assert_eq!(back.value.to_bits(), value.to_bits(), "{json}");
        }
    }

    #[test]
    fn labels_display_escapes() {
        let labels: Labels = [("a", "x\"y"), ("b", "1\\2\n")].into_iter().collect();
        assert_eq!(labels.to_string(), r#"{a="x\"y",b="1\\2\n"}"#);
    }
}
