//! The metric names a PromQL expression reads (a small tokenizer, enough for alert rules and
//! dashboard queries) and the names an exposition exports, for `observability.rs`.

use std::collections::{BTreeMap, BTreeSet};

/// PromQL's keywords and aggregation operators: words that are not metric names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "atan2",
    "bool",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "offset",
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "limitk",
    "limit_ratio",
    "inf",
    "nan",
];

/// Keywords followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Skips a quoted string starting at `start` (its opening quote); returns the index after it.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut idx = start + 1;
    while idx < chars.len() {
        match chars[idx] {
            '\\' if quote != '`' => idx += 2,
            found if found == quote => return idx + 1,
            _ => idx += 1,
        }
    }
    idx
}

/// Skips to after the `close` that matches the opener at `start`, stepping over strings.
fn skip_group(chars: &[char], start: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    let mut idx = start;
    while idx < chars.len() {
        match chars[idx] {
            '"' | '\'' | '`' => {
                idx = skip_string(chars, idx);
                continue;
            }
            found if found == open => depth += 1,
            found if found == close => {
                depth -= 1;
                if depth == 0 {
                    return idx + 1;
                }
            }
            _ => {}
        }
        idx += 1;
    }
    idx
}

fn is_name_char(character: char) -> bool {
    character.is_ascii_alphanumeric() || character == '_' || character == ':'
}

/// The metric names a PromQL expression reads: identifiers that are not followed by `(`
/// (functions), not keywords, not inside label matchers, ranges, strings or label lists, not
/// numbers, and not Grafana variables (`$__rate_interval`, `${datasource}`).
pub(super) fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut label_list_next = false;
    let mut idx = 0;
    while idx < chars.len() {
        let character = chars[idx];
        match character {
            '"' | '\'' | '`' => idx = skip_string(&chars, idx),
            '{' => idx = skip_group(&chars, idx, '{', '}'),
            '[' => idx = skip_group(&chars, idx, '[', ']'),
            '(' if label_list_next => {
                label_list_next = false;
                idx = skip_group(&chars, idx, '(', ')');
            }
            '#' => {
                while idx < chars.len() && chars[idx] != '\n' {
                    idx += 1;
                }
            }
            '$' => {
                idx += 1;
                if chars.get(idx) == Some(&'{') {
                    idx = skip_group(&chars, idx, '{', '}');
                }
                while idx < chars.len() && is_name_char(chars[idx]) {
                    idx += 1;
                }
            }
            // A number or a duration (`0.99`, `1e3`, `5m`).
            _ if character.is_ascii_digit() || character == '.' => {
                while idx < chars.len() && (is_name_char(chars[idx]) || chars[idx] == '.') {
                    idx += 1;
                }
            }
            _ if is_name_char(character) => {
                let start = idx;
                while idx < chars.len() && is_name_char(chars[idx]) {
                    idx += 1;
                }
                let word: String = chars[start..idx].iter().collect();
                let mut next = idx;
                while next < chars.len() && chars[next].is_whitespace() {
                    next += 1;
                }
                let lowered = word.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lowered.as_str()) {
                    label_list_next = chars.get(next) == Some(&'(');
                } else if chars.get(next) == Some(&'(') || KEYWORDS.contains(&lowered.as_str()) {
                    // A function call or a keyword.
                } else {
                    names.insert(word);
                }
            }
            _ => idx += 1,
        }
    }
    names
}

/// The series names an exposition exports: every sample's name, and for each `# TYPE` the
/// names its family's samples take (`_bucket`, `_sum`, `_count` for histograms and summaries,
/// `_total` for counters declared without it).
pub(super) fn exported_names(exposition: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in exposition.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut words = rest.split_whitespace();
            let (Some(name), Some(kind)) = (words.next(), words.next()) else {
                continue;
            };
            names.insert(name.to_owned());
            match kind {
                "histogram" | "summary" => {
                    for suffix in ["_bucket", "_sum", "_count"] {
                        names.insert(format!("{name}{suffix}"));
                    }
                }
                "counter" if !name.ends_with("_total") => {
                    names.insert(format!("{name}_total"));
                }
                _ => {}
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// Each name in `used` (with where it is used) that `exported` lacks, one line each.
pub(super) fn unknown(
    used: &BTreeMap<String, BTreeSet<String>>,
    exported: &BTreeSet<String>,
) -> Vec<String> {
    used.iter()
        .filter(|(name, _)| !exported.contains(*name) && name.as_str() != "up")
        .map(|(name, places)| {
            let places: Vec<&str> = places.iter().map(String::as_str).collect();
            format!("`{name}` (in {})", places.join(", "))
        })
        .collect()
}
