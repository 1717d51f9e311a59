//! Label matchers (`=`, `!=`, `=~`, `!~`) and selecting the series they match.
//!
//! As in Prometheus, a missing label matches as the empty string, and regular expressions
//! are fully anchored with `.` matching newlines: `=~"a|b"` matches `a` and `b`, not `ab`.

use std::cmp::Ordering;
use std::fmt;

use regex::Regex;

use super::selector::SelectorError;
use super::symbols::{Symbol, SymbolTable};
use super::{Series, SeriesRef, SeriesStore};

/// The pseudo-label a matcher uses to match the metric name.
pub const METRIC_NAME_LABEL: &str = "__name__";

/// The pseudo-label a matcher uses to match the source a series came from.
pub const SOURCE_LABEL: &str = "__source__";

/// How a matcher compares a label's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`: equal to the value.
    Equal,
    /// `!=`: not equal to the value.
    NotEqual,
    /// `=~`: matched in full by the regular expression.
    RegexMatch,
    /// `!~`: not matched in full by the regular expression.
    RegexNoMatch,
}

impl MatchOp {
    /// The operator as written in a selector.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

/// One condition on one label of a series.
#[derive(Clone, Debug)]
pub struct Matcher {
    label: String,
    op: MatchOp,
    value: String,
    /// The anchored expression, for the regex operators.
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.label == other.label && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// A matcher of `label` with `op` against `value`; fails only for an invalid regular
    /// expression (the error's position is 0: there is no selector text around it).
    pub fn new(
        label: impl Into<String>,
        op: MatchOp,
        value: impl Into<String>,
    ) -> Result<Self, SelectorError> {
        let label = label.into();
        let value = value.into();
        let regex = match op {
            MatchOp::Equal | MatchOp::NotEqual => None,
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => Some(anchored_regex(&value).map_err(
                |message| SelectorError::InvalidRegex {
                    position: 0,
                    label: label.clone(),
                    message,
                },
            )?),
        };
        Ok(Matcher {
            label,
            op,
            value,
            regex,
        })
    }

    /// `label="value"`.
    #[must_use]
    pub fn equal(label: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            label: label.into(),
            op: MatchOp::Equal,
            value: value.into(),
            regex: None,
        }
    }

    /// `label!="value"`.
    #[must_use]
    pub fn not_equal(label: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            label: label.into(),
            op: MatchOp::NotEqual,
            value: value.into(),
            regex: None,
        }
    }

    /// `__name__="name"`: series of the metric `name`.
    #[must_use]
    pub fn metric_name(name: impl Into<String>) -> Self {
        Matcher::equal(METRIC_NAME_LABEL, name)
    }

    /// The label it matches.
    #[must_use]
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Its operator.
    #[must_use]
    pub fn op(&self) -> MatchOp {
        self.op
    }

    /// The value or regular expression it compares with, as written.
    #[must_use]
    pub fn value(&self) -> &str {
        &self.value
    }

    /// Whether a label with this value matches (pass `""` for a missing label).
    #[must_use]
    pub fn matches(&self, value: &str) -> bool {
        match self.op {
            MatchOp::Equal => value == self.value,
            MatchOp::NotEqual => value != self.value,
            MatchOp::RegexMatch => self.regex.as_ref().is_some_and(|re| re.is_match(value)),
            MatchOp::RegexNoMatch => self.regex.as_ref().is_none_or(|re| !re.is_match(value)),
        }
    }
}

impl fmt::Display for Matcher {
    /// As in a selector: `team=~"search|ml"`, escaping `\`, `"` and newlines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}\"", self.label, self.op.as_str())?;
        for ch in self.value.chars() {
            match ch {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                other => write!(f, "{other}")?,
            }
        }
        f.write_str("\"")
    }
}

/// Compiles `pattern` the way Prometheus does: it must be valid on its own (so `a)|(b` is
/// refused), then it is anchored at both ends with `.` matching newlines.
pub(crate) fn anchored_regex(pattern: &str) -> Result<Regex, String> {
    let one_line = |error: regex::Error| {
        error
            .to_string()
            .lines()
            .rev()
            .find(|line| !line.trim().is_empty())
            .unwrap_or("invalid regular expression")
            .trim()
            .trim_start_matches("error: ")
            .to_owned()
    };
    Regex::new(pattern).map_err(one_line)?;
    Regex::new(&format!("^(?s:{pattern})$")).map_err(one_line)
}

/// Where a matcher finds its value in a series.
enum Target {
    Name,
    Source,
    /// A label, by its symbol; `None` when no series has a label of that name.
    Label(Option<Symbol>),
}

impl SeriesStore {
    /// The series that all `matchers` match, stale ones included, ordered by metric name,
    /// then labels, then source (so the order never depends on ingestion order).
    #[must_use]
    pub fn select(&self, matchers: &[Matcher]) -> Vec<SeriesRef> {
        let targets: Vec<(Target, &Matcher)> = matchers
            .iter()
            .map(|matcher| {
                let target = match matcher.label() {
                    METRIC_NAME_LABEL => Target::Name,
                    SOURCE_LABEL => Target::Source,
                    label => Target::Label(self.symbols.get(label)),
                };
                (target, matcher)
            })
            .collect();
        let named = matchers
            .iter()
            .find(|matcher| matcher.label() == METRIC_NAME_LABEL && matcher.op() == MatchOp::Equal);
        let candidates: Vec<u32> = match named {
            Some(matcher) => self
                .symbols
                .get(matcher.value())
                .and_then(|name| self.by_name.get(&name))
                .cloned()
                .unwrap_or_default(),
            None => (0..self.slots.len())
                .filter_map(|idx| u32::try_from(idx).ok())
                .collect(),
        };
        let mut selected: Vec<(u32, &Series)> = candidates
            .into_iter()
            .filter_map(|idx| {
                let series = self.slots.get(idx as usize)?.series.as_ref()?;
                let all_match = targets.iter().all(|(target, matcher)| {
                    matcher.matches(target_text(&self.symbols, series, target))
                });
                all_match.then_some((idx, series))
            })
            .collect();
        selected.sort_by(|(_, a), (_, b)| compare_series(&self.symbols, a, b));
        selected
            .into_iter()
            .filter_map(|(idx, _)| self.series_ref(idx))
            .collect()
    }
}

fn target_text<'a>(symbols: &'a SymbolTable, series: &Series, target: &Target) -> &'a str {
    match target {
        Target::Name => symbols.text(series.name),
        Target::Source => symbols.text(series.source),
        Target::Label(None) => "",
        Target::Label(Some(name)) => series.label(*name).map_or("", |value| symbols.text(value)),
    }
}

/// Orders series by metric name, then label pairs by text, then source.
fn compare_series(symbols: &SymbolTable, a: &Series, b: &Series) -> Ordering {
    let compare = |left: Symbol, right: Symbol| {
        if left == right {
            Ordering::Equal
        } else {
            symbols.text(left).cmp(symbols.text(right))
        }
    };
    compare(a.name, b.name)
        .then_with(|| {
            let mut left = a.labels.iter();
            let mut right = b.labels.iter();
            loop {
                let ordering = match (left.next(), right.next()) {
                    (None, None) => return Ordering::Equal,
                    (None, Some(_)) => return Ordering::Less,
                    (Some(_), None) => return Ordering::Greater,
                    (Some(&(a_name, a_value)), Some(&(b_name, b_value))) => {
                        compare(a_name, b_name).then_with(|| compare(a_value, b_value))
                    }
                };
                if ordering != Ordering::Equal {
                    return ordering;
                }
            }
        })
        .then_with(|| compare(a.source, b.source))
}
