//! Reading untrusted JSON: a syntax error is reported with its line and column, then a walk
//! over the parsed value records every problem with its path, up to [`MAX_PROBLEMS`].
//!
//! serde_json refuses nesting deeper than 128 levels, so nothing here can overflow the stack.
//!
//! A parsed tree costs far more than its text (about 630 bytes per object), so a large
//! payload is not parsed whole: [`parse_raw`] checks the syntax of the whole body without
//! building anything, and [`Walker::raw_object`] and [`Walker::raw_array`] open it level by
//! level, borrowing from the body, down to items small enough to parse as a tree one at a
//! time ([`Walker::tree`]).

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;

use serde::de::{Deserializer as _, IgnoredAny, SeqAccess, Visitor};
use serde_json::value::RawValue;

use serde_json::{Map, Value};

use super::IntakeError;
use crate::problem::Problem;
use crate::signal::Labels;

/// The most problems one payload reports; the rest are only counted.
pub const MAX_PROBLEMS: usize = 20;

/// The most objects and arrays a part parsed as one tree may hold (a whole Alertmanager
/// notification, one eval result, agent run or span): a tree costs about 630 bytes per object,
/// so this bounds one tree to about 64 MiB whatever the payload's shape. Real parts hold far
/// fewer (a span with 10,000 attributes: about 20,000).
pub const MAX_TREE_NODES: usize = 100_000;

/// Parses `body` as JSON, or reports where the syntax breaks.
/// A body with more than [`MAX_TREE_NODES`] objects and arrays is refused before it is
/// parsed (once its syntax is checked).
pub(crate) fn parse(body: &[u8]) -> Result<Value, IntakeError> {
    if count_nodes(body) > MAX_TREE_NODES {
        serde_json::from_slice::<IgnoredAny>(body).map_err(|error| syntax_error(&error))?;
        return Err(IntakeError {
            problems: vec![Problem::new("", too_many_nodes())],
            omitted: 0,
        });
    }
    serde_json::from_slice(body).map_err(|error| syntax_error(&error))
}

fn too_many_nodes() -> String {
    format!(
        "holds more than {MAX_TREE_NODES} objects and arrays; at most that many are accepted in one item"
    )
}

/// How many objects and arrays `text` holds, counted up to one past [`MAX_TREE_NODES`].
fn count_nodes(text: &[u8]) -> usize {
    let (mut n_nodes, mut in_string, mut escaped) = (0_usize, false, false);
    for &byte in text {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                n_nodes += 1;
                if n_nodes > MAX_TREE_NODES {
                    return n_nodes;
                }
            }
            _ => {}
        }
    }
    n_nodes
}

/// Checks that `body` is JSON, or reports where the syntax breaks, as [`parse`] does, without
/// building a tree.
pub(crate) fn parse_raw(body: &[u8]) -> Result<&RawValue, IntakeError> {
    let checked = serde_json::from_slice::<&RawValue>(body);
    if checked.is_ok() && !nested_too_deep(body) {
        // The raw check skips strings and numbers without decoding them, so a lone surrogate
        // (`"\ud800"`) or a number out of range (`1e309`) passes it and would fail only later,
        // in one item, at the item's own position (or pass unseen in an ignored key); it is a
        // syntax error of the body, reported where the tree parser would.
        if let Some(error) = undecodable_leaf(body) {
            return Err(error);
        }
        return checked.map_err(|error| syntax_error(&error));
    }
    // The raw check words some faults differently (a trailing comma) and lets nesting past
    // the tree parser's limit pass; the tree parser says what it always said, and stops at
    // the fault, when asking it is cheap.
    if count_nodes(body) <= MAX_TREE_NODES
        && let Err(error) = serde_json::from_slice::<Value>(body)
    {
        return Err(syntax_error(&error));
    }
    match checked {
        Err(error) => Err(syntax_error(&error)),
        Ok(_) => Err(IntakeError {
            problems: vec![Problem::new(
                "",
                "nests arrays and objects more than 128 levels deep",
            )],
            omitted: 0,
        }),
    }
}

/// The syntax error of the first leaf in `body` (valid JSON to the raw check) that the tree
/// parser could not decode: a string whose `\u` escapes hold a surrogate without its pair,
/// or a number out of `f64`'s range (`1e309`). Only strings holding a surrogate escape and
/// numbers with an exponent or many digits are decoded, each on its own, so the scan is
/// linear in the body.
fn undecodable_leaf(body: &[u8]) -> Option<IntakeError> {
    let (mut line, mut line_start) = (1_usize, 0_usize);
    let mut idx = 0;
    while let Some(&byte) = body.get(idx) {
        let start = idx;
        let (end, suspect) = match byte {
            b'\n' => {
                line += 1;
                line_start = idx + 1;
                idx += 1;
                continue;
            }
            b'"' => {
                let (mut end, mut surrogate) = (idx + 1, false);
                while let Some(&inner) = body.get(end) {
                    match inner {
                        b'"' => break,
                        b'\\' => {
                            let escape = body.get(end + 1..end + 4).unwrap_or_default();
                            surrogate |= matches!(
                                escape,
                                [b'u', b'd' | b'D', b'8'..=b'9' | b'a'..=b'f' | b'A'..=b'F']
                            );
                            end += 2;
                        }
                        _ => end += 1,
                    }
                }
                (end, surrogate)
            }
            b'-' | b'0'..=b'9' => {
                // Outside strings, only numbers hold digits.
                let length = body
                    .get(idx..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|c| matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .count();
                let literal = body.get(idx..idx + length).unwrap_or_default();
                let suspect = length > 15 || literal.iter().any(|c| matches!(c, b'e' | b'E'));
                (idx + length - 1, suspect)
            }
            _ => (idx, false),
        };
        if suspect {
            let literal = body.get(start..=end).unwrap_or_default();
            if let Err(error) = serde_json::from_slice::<Value>(literal) {
                // A string or a number holds no line break: the error is on this line.
                let column = start - line_start + error.column();
                return Some(positioned_error(&error, line, column));
            }
        }
        idx = end + 1;
    }
    None
}

/// Whether `body` nests arrays and objects as deep as the tree parser refuses (128 levels).
fn nested_too_deep(body: &[u8]) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0_usize, false, false);
    for &byte in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth >= 128 {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

fn syntax_error(error: &serde_json::Error) -> IntakeError {
    positioned_error(error, error.line(), error.column())
}

/// A syntax error reported at `line` and `column` of the body.
fn positioned_error(error: &serde_json::Error, line: usize, column: usize) -> IntakeError {
    // serde_json's message ends with " at line L column C"; the position is given once.
    let text = error.to_string();
    let reason = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(reason, _position)| reason);
    IntakeError {
        problems: vec![Problem::new(
            "",
            format!("invalid JSON at line {line} column {column}: {reason}"),
        )],
        omitted: 0,
    }
}

/// What kind of JSON value `raw` is, from its first character (it is valid JSON).
fn describe_raw(raw: &RawValue) -> &'static str {
    match raw.get().trim_start().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// Whether `raw` is `null` (which counts as absent).
pub(crate) fn is_null(raw: &RawValue) -> bool {
    raw.get().trim() == "null"
}

/// The elements of an array, at most `max_len` of them borrowed; the rest only counted.
struct BoundedElements<'a> {
    kept: Vec<&'a RawValue>,
    n_elements: usize,
}

struct BoundedVisitor {
    max_len: usize,
}

impl<'de> Visitor<'de> for BoundedVisitor {
    type Value = BoundedElements<'de>;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut kept = Vec::new();
        let mut n_elements = 0_usize;
        while n_elements < self.max_len {
            match seq.next_element::<&'de RawValue>()? {
                Some(element) => kept.push(element),
                None => return Ok(BoundedElements { kept, n_elements }),
            }
            n_elements += 1;
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n_elements += 1;
        }
        Ok(BoundedElements { kept, n_elements })
    }
}

/// The items of a batch, `{"<key>": [...]}` with no other key, left unparsed: the caller
/// parses one at a time ([`Walker::tree`]).
pub(crate) fn batch_items<'a>(
    walker: &mut Walker,
    root: &'a RawValue,
    key: &str,
    max_len: usize,
) -> Vec<&'a RawValue> {
    let Some(map) = walker.raw_object(root, "") else {
        return Vec::new();
    };
    walker.reject_unknown_keys(map.keys(), "", &[key]);
    match map.get(key) {
        None => {
            walker.report(key, "required field is missing");
            Vec::new()
        }
        Some(raw) => walker.raw_array(raw, key, max_len).unwrap_or_default(),
    }
}

/// The path of `key` inside the object at `path`: `path.key`, or `path["key"]` (the key as
/// a JSON string) when it is empty or has characters other than letters, digits, `_` and
/// `-`, so that every path names one field (a key `a.b` or `[0]` is not a nested field or
/// an index) and control characters in keys arrive escaped.
pub(crate) fn join(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-');
    if !plain {
        format!("{path}[{}]", printable_json(&Value::String(key.to_owned())))
    } else if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// The path of element `idx` of the array at `path`.
pub(crate) fn index(path: &str, idx: usize) -> String {
    format!("{path}[{idx}]")
}

/// What kind of JSON value `value` is, for messages: "found a number".
pub(crate) fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `value` as JSON with every control character escaped: JSON escapes those below U+0020,
/// and this also escapes DEL and the C1 controls (U+0080 to U+009F, which some terminals
/// read as escape sequences), so that what a client sent is safe to print in a log line.
fn printable_json(value: &Value) -> String {
    let mut out = String::new();
    for ch in value.to_string().chars() {
        if ch.is_control() {
            let _infallible = write!(out, "\\u{:04x}", u32::from(ch));
        } else {
            out.push(ch);
        }
    }
    out
}

/// A short scalar quoted for a message (`-5`, `"abc"`), else what kind of value it is.
pub(crate) fn show(value: &Value) -> String {
    match value {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => {
            let text = printable_json(value);
            if text.chars().count() <= 40 {
                format!("`{text}`")
            } else {
                describe(value).to_owned()
            }
        }
        other => describe(other).to_owned(),
    }
}

/// The value of `key`, treating an explicit `null` as absent (clients often serialize a
/// missing optional value as `null`).
pub(crate) fn optional<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    map.get(key).filter(|value| !value.is_null())
}

/// Collects problems during one walk.
#[derive(Debug, Default)]
pub(crate) struct Walker {
    problems: Vec<Problem>,
    omitted: usize,
}

impl Walker {
    /// Records a problem at `path`.
    pub(crate) fn report(&mut self, path: &str, message: impl Into<String>) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(Problem::new(path, message));
        } else {
            self.omitted += 1;
        }
    }

    /// How many problems were found so far.
    pub(crate) fn n_problems(&self) -> usize {
        self.problems.len() + self.omitted
    }

    /// `Ok(value)` when the walk found nothing wrong, else every problem.
    pub(crate) fn finish<T>(self, value: T) -> Result<T, IntakeError> {
        if self.problems.is_empty() {
            Ok(value)
        } else {
            Err(IntakeError {
                problems: self.problems,
                omitted: self.omitted,
            })
        }
    }

    /// The value of a required `key`, or a problem when it is missing.
    pub(crate) fn required<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<&'v Value> {
        let value = map.get(key);
        if value.is_none() {
            self.report(&join(path, key), "required field is missing");
        }
        value
    }

    /// Reads the required field `key` of the object at `path` with `read`.
    pub(crate) fn field<'v, T>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &str,
        key: &str,
        read: impl FnOnce(&mut Self, &'v Value, &str) -> Option<T>,
    ) -> Option<T> {
        let value = self.required(map, path, key)?;
        read(self, value, &join(path, key))
    }

    /// Reads the optional field `key` with `read`: `Some(None)` when it is absent or `null`,
    /// `None` when it is present but invalid (the problem is recorded).
    pub(crate) fn optional_field<'v, T>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &str,
        key: &str,
        read: impl FnOnce(&mut Self, &'v Value, &str) -> Option<T>,
    ) -> Option<Option<T>> {
        match optional(map, key) {
            None => Some(None),
            Some(value) => read(self, value, &join(path, key)).map(Some),
        }
    }

    /// Reports every key of `map` that is not in `known`.
    pub(crate) fn reject_unknown(&mut self, map: &Map<String, Value>, path: &str, known: &[&str]) {
        self.reject_unknown_keys(map.keys(), path, known);
    }

    /// Reports every one of `keys` that is not in `known`.
    pub(crate) fn reject_unknown_keys<'k>(
        &mut self,
        keys: impl Iterator<Item = &'k String>,
        path: &str,
        known: &[&str],
    ) {
        for key in keys {
            if !known.contains(&key.as_str()) {
                self.report(
                    &join(path, key),
                    format!("unknown field; expected one of: {}", known.join(", ")),
                );
            }
        }
    }

    /// `value` as an object.
    pub(crate) fn object<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
    ) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(map) => Some(map),
            other => {
                self.report(
                    path,
                    format!("must be an object, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// `value` as an array of at most `max_len` elements.
    pub(crate) fn array<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        max_len: usize,
    ) -> Option<&'v [Value]> {
        match value {
            Value::Array(items) if items.len() > max_len => {
                self.report(
                    path,
                    format!(
                        "has {} elements; at most {max_len} are accepted in one request",
                        items.len()
                    ),
                );
                None
            }
            Value::Array(items) => Some(items),
            other => {
                self.report(path, format!("must be an array, found {}", describe(other)));
                None
            }
        }
    }

    /// `raw` as an object whose values are left unparsed.
    pub(crate) fn raw_object<'a>(
        &mut self,
        raw: &'a RawValue,
        path: &str,
    ) -> Option<BTreeMap<String, &'a RawValue>> {
        if !raw.get().trim_start().starts_with('{') {
            self.report(
                path,
                format!("must be an object, found {}", describe_raw(raw)),
            );
            return None;
        }
        match serde_json::from_str(raw.get()) {
            Ok(map) => Some(map),
            Err(error) => {
                self.report(path, format!("cannot be read: {error}"));
                None
            }
        }
    }

    /// `raw` as an array of at most `max_len` elements left unparsed (the problem, as
    /// [`Walker::array`] words it, when it has more).
    pub(crate) fn raw_array<'a>(
        &mut self,
        raw: &'a RawValue,
        path: &str,
        max_len: usize,
    ) -> Option<Vec<&'a RawValue>> {
        if !raw.get().trim_start().starts_with('[') {
            self.report(
                path,
                format!("must be an array, found {}", describe_raw(raw)),
            );
            return None;
        }
        let mut deserializer = serde_json::Deserializer::from_str(raw.get());
        match deserializer.deserialize_seq(BoundedVisitor { max_len }) {
            Ok(elements) if elements.n_elements > max_len => {
                self.report(
                    path,
                    format!(
                        "has {} elements; at most {max_len} are accepted in one request",
                        elements.n_elements
                    ),
                );
                None
            }
            Ok(elements) => Some(elements.kept),
            Err(error) => {
                self.report(path, format!("cannot be read: {error}"));
                None
            }
        }
    }

    /// `raw` parsed as a tree, unless it holds more than [`MAX_TREE_NODES`] objects and
    /// arrays (a problem then).
    pub(crate) fn tree(&mut self, raw: &RawValue, path: &str) -> Option<Value> {
        if count_nodes(raw.get().as_bytes()) > MAX_TREE_NODES {
            self.report(path, too_many_nodes());
            return None;
        }
        match serde_json::from_str(raw.get()) {
            Ok(value) => Some(value),
            Err(error) => {
                self.report(path, format!("cannot be read: {error}"));
                None
            }
        }
    }

    /// `value` as a string that is not blank and has at most `max_chars` characters.
    pub(crate) fn text<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        max_chars: usize,
    ) -> Option<&'v str> {
        let text = self.any_text(value, path)?;
        if text.trim().is_empty() {
            self.report(path, "must not be empty");
            return None;
        }
        let n_chars = text.chars().count();
        if n_chars > max_chars {
            self.report(
                path,
                format!("has {n_chars} characters; at most {max_chars} are accepted"),
            );
            return None;
        }
        Some(text)
    }

    /// `value` as an identifier: a string that is not blank, at most
    /// [`MAX_NAME_CHARS`](super::MAX_NAME_CHARS) characters.
    pub(crate) fn name(&mut self, value: &Value, path: &str) -> Option<String> {
        self.text(value, path, super::MAX_NAME_CHARS)
            .map(str::to_owned)
    }

    /// `value` as any string, empty included.
    pub(crate) fn any_text<'v>(&mut self, value: &'v Value, path: &str) -> Option<&'v str> {
        match value {
            Value::String(text) => Some(text),
            Value::Number(number) => {
                self.report(
                    path,
                    format!("must be a string, found a number (write it quoted: `\"{number}\"`)"),
                );
                None
            }
            other => {
                self.report(path, format!("must be a string, found {}", describe(other)));
                None
            }
        }
    }

    /// `value` as `true` or `false`.
    pub(crate) fn boolean(&mut self, value: &Value, path: &str) -> Option<bool> {
        match value {
            Value::Bool(flag) => Some(*flag),
            other => {
                self.report(
                    path,
                    format!("must be `true` or `false`, found {}", describe(other)),
                );
                None
            }
        }
    }

    /// `value` as a whole number from 0 to 2^64 - 1.
    pub(crate) fn count(&mut self, value: &Value, path: &str) -> Option<u64> {
        let whole = value.as_u64();
        if whole.is_none() {
            self.report(
                path,
                format!("must be a whole number, 0 or more, found {}", show(value)),
            );
        }
        whole
    }

    /// `value` as a finite number (JSON has no NaN or infinities, so every number is finite
    /// once parsed; a huge literal such as `1e999` is refused by the parser).
    pub(crate) fn number(&mut self, value: &Value, path: &str) -> Option<f64> {
        match value.as_f64() {
            Some(number) if number.is_finite() => Some(number),
            _ => {
                self.report(
                    path,
                    format!("must be a finite number, found {}", describe(value)),
                );
                None
            }
        }
    }

    /// `value` as an object whose values are all strings (labels, annotations).
    pub(crate) fn string_map(&mut self, value: &Value, path: &str) -> Option<Labels> {
        let map = self.object(value, path)?;
        let before = self.n_problems();
        let mut pairs = Vec::with_capacity(map.len());
        for (key, item) in map {
            if let Some(text) = self.any_text(item, &join(path, key)) {
                pairs.push((key.as_str(), text));
            }
        }
        // Built in one go: `Labels::insert` rebuilds the whole set, so inserting one label
        // at a time took time quadratic in their number.
        (self.n_problems() == before).then(|| pairs.into_iter().collect())
    }
}
