//! Samples and label sets: what a scrape contributes to the engine.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A label set, sorted by name so that equal sets compare and serialize identically.
///
/// The names and values live in one buffer (`name0 value0 name1 value1 ...`) with the end
/// offset of each piece: two allocations per label set instead of two per label, and reading
/// a set (which the store does for every sample it ingests) walks contiguous memory. It is
/// 32 bytes, a little more than the 24 of a map. It
/// serializes as a JSON object in name order, as a sorted map would.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels {
    /// Every name and value, concatenated in name order.
    text: Box<str>,
    /// The end offset in `text` of each name and each value, alternating.
    ends: Box<[u32]>,
}

impl Labels {
    /// The value of label `name`, if present.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(label, _)| *label == name)
            .map(|(_, value)| value)
    }

    /// Sets label `name` to `value`, replacing any previous value.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let (name, value) = (name.into(), value.into());
        let mut pairs: Vec<(&str, &str)> = self.iter().collect();
        match pairs.binary_search_by(|(label, _)| (*label).cmp(name.as_str())) {
            Ok(position) => {
                if let Some(pair) = pairs.get_mut(position) {
                    pair.1 = value.as_str();
                }
            }
            Err(position) => pairs.insert(position, (name.as_str(), value.as_str())),
        }
        *self = Labels::from_sorted(&pairs);
    }

    /// The labels in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let pieces = self.ends.iter().scan(0_usize, |start, &end| {
            let end = end as usize;
            let piece = self.text.get(*start..end).unwrap_or_default();
            *start = end;
            Some(piece)
        });
        Pairs { pieces }
    }

    /// The number of labels.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ends.len() / 2
    }

    /// Whether there are no labels.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Builds from pairs already sorted by name with no name twice.
    fn from_sorted(pairs: &[(&str, &str)]) -> Labels {
        let size = pairs
            .iter()
            .map(|(name, value)| name.len() + value.len())
            .sum();
        let mut text = String::with_capacity(size);
        let mut ends = Vec::with_capacity(pairs.len() * 2);
        for (name, value) in pairs {
            for piece in [name, value] {
                text.push_str(piece);
                // A label set over 4 GiB cannot come from a bounded scrape or push; the
                // offset saturates rather than wraps.
                ends.push(u32::try_from(text.len()).unwrap_or(u32::MAX));
            }
        }
        Labels {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }
}

/// Pairs up an iterator of pieces: name, value, name, value...
struct Pairs<I> {
    pieces: I,
}

impl<'a, I: Iterator<Item = &'a str>> Iterator for Pairs<I> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let name = self.pieces.next()?;
        let value = self.pieces.next()?;
        Some((name, value))
    }
}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    /// Pair by pair in name order, as sorted maps compare.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.iter().cmp(other.iter())
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Ok(map.into_iter().collect())
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Labels {
    /// Sorts by name; of a name given twice, the last value wins (as inserting into a map).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let map: BTreeMap<String, String> = iter
            .into_iter()
            .map(|(name, value)| (name.into(), value.into()))
            .collect();
        let pairs: Vec<(&str, &str)> = map
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        Labels::from_sorted(&pairs)
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

    /// The same for an `Option<f64>`, `None` as `null`.
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        /// Serializes `value`.
        pub fn serialize<S: Serializer>(
            value: &Option<f64>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match value {
                Some(value) => super::serialize(value, serializer),
                None => serializer.serialize_none(),
            }
        }

        /// Deserializes a value written by [`serialize`].
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<f64>, D::Error> {
            #[derive(Deserialize)]
            struct Value(#[serde(with = "super")] f64);
            Ok(Option::<Value>::deserialize(deserializer)?.map(|Value(value)| value))
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
    fn labels_sort_replace_compare_and_serialize_as_a_sorted_map() {
        let mut labels: Labels = [("b", "2"), ("a", "1"), ("b", "3")].into_iter().collect();
        assert_eq!(labels.iter().collect::<Vec<_>>(), [("a", "1"), ("b", "3")]);
        labels.insert("c", "");
        labels.insert("a", "one");
        labels.insert("", "empty name");
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            [("", "empty name"), ("a", "one"), ("b", "3"), ("c", "")]
        );
        assert_eq!(labels.len(), 4);
        assert_eq!(labels.get("c"), Some(""));
        assert_eq!(labels.get("d"), None);
        let json = serde_json::to_string(&labels).unwrap();
        assert_eq!(json, r#"{"":"empty name","a":"one","b":"3","c":""}"#);
        assert_eq!(serde_json::from_str::<Labels>(&json).unwrap(), labels);
        assert_eq!(
            format!("{labels:?}"),
            r#"{"": "empty name", "a": "one", "b": "3", "c": ""}"#
        );
        // Ordered pair by pair, as a sorted map is: not by the concatenated text.
        let ab: Labels = [("ab", "")].into_iter().collect();
        let a_b: Labels = [("a", "b")].into_iter().collect();
        assert!(a_b < ab);
        assert_ne!(a_b, ab);
        let empty = Labels::default();
        assert!(empty.is_empty() && empty < a_b);
    }

    #[test]
    fn labels_display_escapes() {
        let labels: Labels = [("a", "x\"y"), ("b", "1\\2\n")].into_iter().collect();
        assert_eq!(labels.to_string(), r#"{a="x\"y",b="1\\2\n"}"#);
    }
}
