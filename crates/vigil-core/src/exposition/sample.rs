//! Sample lines: name, label set, value, timestamp and (OpenMetrics) exemplar.

use std::borrow::Cow;

use super::cursor::{Cursor, quote_snippet};
use super::number::{NumberError, parse_millis, parse_seconds_as_millis, parse_value};
use super::{Exemplar, Format, Label};

/// The most characters an exemplar's label names and values may have together (OpenMetrics).
const EXEMPLAR_MAX_LABEL_CHARS: usize = 128;

/// One sample line's parts, before its family is resolved; its labels are in the caller's
/// label store.
#[derive(Debug, PartialEq)]
pub(super) struct SampleLine<'a> {
    pub(super) name: Cow<'a, str>,
    pub(super) value: f64,
    pub(super) timestamp_ms: Option<i64>,
    pub(super) exemplar: Option<Box<Exemplar<'a>>>,
}

/// Parses a sample line (leading blanks already skipped in the text format), appending its
/// labels to `labels`. On an error `labels` may hold some of them; the caller drops them.
pub(super) fn parse_sample<'a>(
    line: &'a str,
    format: Format,
    labels: &mut Vec<Label<'a>>,
) -> Result<SampleLine<'a>, String> {
    let mut cursor = Cursor::new(line);
    let mut name = None;
    if cursor.at_metric_name() {
        name = Some(Cow::Borrowed(cursor.plain_metric_name()));
    } else if cursor.peek() != Some(b'{') {
        return Err(format!(
            "expected a metric name or `{{`, found {}",
            cursor.found()
        ));
    }
    // The text format lets blanks separate the name from its label set (`m {a="1"} 1`).
    let n_blanks_after_name = match format {
        Format::Text => cursor.skip_blanks(),
        Format::OpenMetrics => 0,
    };
    let has_label_set = cursor.eat(b'{');
    if has_label_set {
        label_set(&mut cursor, format, labels, Some(&mut name))?;
    }
    let Some(name) = name else {
        return Err(
            "no metric name: a sample needs a name before `{` or a quoted name inside it"
                .to_owned(),
        );
    };
    let value_text = match format {
        Format::Text => {
            // After `}` the value may follow at once, as in Prometheus; after a bare name
            // a blank must separate them.
            let n_blanks = if has_label_set {
                cursor.skip_blanks()
            } else {
                n_blanks_after_name
            };
            if cursor.is_at_end() {
                return Err(format!("`{name}` has no value"));
            }
            if n_blanks == 0 && !has_label_set {
                return Err(format!(
                    "expected a blank after the metric name `{name}`, found {}",
                    cursor.found()
                ));
            }
            cursor.take_until(|byte| byte == b' ' || byte == b'\t')
        }
        Format::OpenMetrics => {
            if cursor.is_at_end() {
                return Err(format!("`{name}` has no value"));
            }
            if !cursor.eat(b' ') {
                return Err(format!(
                    "expected one space and the value after `{name}`, found {}",
                    cursor.found()
                ));
            }
            if !has_label_set && cursor.peek() == Some(b'{') {
                return Err(format!(
                    "a space between `{name}` and its label set (OpenMetrics allows none)"
                ));
            }
            cursor.take_until(|byte| byte == b' ')
        }
    };
    let value = read_value(value_text)?;

    let (timestamp_ms, exemplar) = match format {
        Format::Text => (text_timestamp(&mut cursor)?, None),
        Format::OpenMetrics => openmetrics_tail(&mut cursor, labels)?,
    };
    Ok(SampleLine {
        name,
        value,
        timestamp_ms,
        exemplar,
    })
}

/// A sample or exemplar value.
fn read_value(text: &str) -> Result<f64, String> {
    if text.is_empty() {
        return Err("expected a value, found a second space".to_owned());
    }
    parse_value(text).map_err(|error| match error {
        NumberError::Invalid => format!("invalid value {}", quote_snippet(text)),
        NumberError::OutOfRange => {
            format!("value {} is out of float64 range", quote_snippet(text))
        }
    })
}

/// The text format's optional timestamp (integer milliseconds) and the end of the line.
fn text_timestamp(cursor: &mut Cursor<'_>) -> Result<Option<i64>, String> {
    let no_exemplar = |cursor: &Cursor<'_>| {
        if cursor.peek() == Some(b'#') {
            Err(format!(
                "exemplars are only allowed in OpenMetrics, found {}",
                cursor.found()
            ))
        } else {
            Ok(())
        }
    };
    cursor.skip_blanks();
    if cursor.is_at_end() {
        return Ok(None);
    }
    no_exemplar(cursor)?;
    let text = cursor.take_until(|byte| byte == b' ' || byte == b'\t');
    let timestamp = parse_millis(text).map_err(|error| match error {
        NumberError::Invalid => format!(
            "invalid timestamp {}: the text format wants integer milliseconds",
            quote_snippet(text)
        ),
        NumberError::OutOfRange => format!("timestamp {} is out of range", quote_snippet(text)),
    })?;
    cursor.skip_blanks();
    if !cursor.is_at_end() {
        no_exemplar(cursor)?;
        return Err(format!(
            "unexpected text after the timestamp: {}",
            cursor.found()
        ));
    }
    Ok(Some(timestamp))
}

/// An OpenMetrics timestamp (float seconds) as exact milliseconds; `what` names it in errors.
fn openmetrics_timestamp(text: &str, what: &str) -> Result<i64, String> {
    if text.is_empty() {
        return Err(format!(
            "expected a {what}, found a second space or a trailing space"
        ));
    }
    parse_seconds_as_millis(text).map_err(|error| match error {
        NumberError::Invalid => format!(
            "invalid {what} {}: OpenMetrics wants seconds such as `1700000000.123`",
            quote_snippet(text)
        ),
        NumberError::OutOfRange => format!(
            "{what} {} is out of range for int64 milliseconds",
            quote_snippet(text)
        ),
    })
}

/// What may follow an OpenMetrics value: ` timestamp`, then ` # {labels} value [timestamp]`.
fn openmetrics_tail<'a>(
    cursor: &mut Cursor<'a>,
    labels: &mut Vec<Label<'a>>,
) -> Result<(Option<i64>, Option<Box<Exemplar<'a>>>), String> {
    if cursor.is_at_end() {
        return Ok((None, None));
    }
    // The value stopped at a space.
    cursor.eat(b' ');
    let mut timestamp_ms = None;
    if cursor.peek() != Some(b'#') {
        let text = cursor.take_until(|byte| byte == b' ');
        timestamp_ms = Some(openmetrics_timestamp(text, "timestamp")?);
        if cursor.is_at_end() {
            return Ok((timestamp_ms, None));
        }
        cursor.eat(b' ');
    }
    if !cursor.eat_str("# {") {
        return Err(format!(
            "expected an exemplar (` # {{...}} value`), found {}",
            cursor.found()
        ));
    }
    let exemplar = exemplar(cursor, labels)?;
    Ok((timestamp_ms, Some(Box::new(exemplar))))
}

/// An exemplar after its `# {`: labels, `}`, a space, the value, and a timestamp maybe.
/// Its labels go through the end of `labels` and out into the exemplar.
fn exemplar<'a>(
    cursor: &mut Cursor<'a>,
    labels: &mut Vec<Label<'a>>,
) -> Result<Exemplar<'a>, String> {
    let first = labels.len();
    label_set(cursor, Format::OpenMetrics, labels, None)
        .map_err(|reason| format!("exemplar: {reason}"))?;
    let exemplar_labels = labels.split_off(first);
    let n_chars: usize = exemplar_labels
        .iter()
        .map(|(name, value)| name.chars().count() + value.chars().count())
        .sum();
    if n_chars > EXEMPLAR_MAX_LABEL_CHARS {
        return Err(format!(
            "exemplar labels have {n_chars} characters, over OpenMetrics' {EXEMPLAR_MAX_LABEL_CHARS}"
        ));
    }
    if !cursor.eat(b' ') {
        return Err(format!(
            "expected one space and the exemplar's value, found {}",
            cursor.found()
        ));
    }
    let value = read_value(cursor.take_until(|byte| byte == b' '))
        .map_err(|reason| format!("exemplar: {reason}"))?;
    let mut timestamp_ms = None;
    if cursor.eat(b' ') {
        let text = cursor.take_until(|byte| byte == b' ');
        timestamp_ms = Some(openmetrics_timestamp(text, "exemplar timestamp")?);
    }
    if !cursor.is_at_end() {
        return Err(format!(
            "unexpected text after the exemplar: {}",
            cursor.found()
        ));
    }
    Ok(Exemplar {
        labels: exemplar_labels,
        value,
        timestamp_ms,
    })
}

/// Where the text format allows blanks in a label set, skips them; OpenMetrics allows none.
#[inline]
fn gap(cursor: &mut Cursor<'_>, format: Format) -> Result<(), String> {
    match format {
        Format::Text => {
            cursor.skip_blanks();
            Ok(())
        }
        Format::OpenMetrics => match cursor.peek() {
            Some(b' ' | b'\t') => Err(whitespace_in_label_set(cursor)),
            _ => Ok(()),
        },
    }
}

#[cold]
#[inline(never)]
fn whitespace_in_label_set(cursor: &Cursor<'_>) -> String {
    format!(
        "whitespace in a label set (OpenMetrics allows none): {}",
        cursor.found()
    )
}

/// A cheap fingerprint of a label name: two names with different bits differ.
#[inline]
pub(super) fn name_bit(name: &str) -> u64 {
    let bytes = name.as_bytes();
    let first = bytes.first().copied().unwrap_or(0);
    let last = bytes.last().copied().unwrap_or(0);
    let mix = (name.len() as u64)
        .wrapping_mul(7)
        .wrapping_add(u64::from(first).wrapping_mul(3))
        .wrapping_add(u64::from(last));
    1 << (mix % 64)
}

/// A label set after its `{`, up to and including its `}`, appended to `labels`.
/// With `metric_name`, a quoted string standing alone is the metric name (Prometheus 3's
/// `{"my.metric", "label.name"="v"}`); an exemplar has none.
fn label_set<'a>(
    cursor: &mut Cursor<'a>,
    format: Format,
    labels: &mut Vec<Label<'a>>,
    mut metric_name: Option<&mut Option<Cow<'a, str>>>,
) -> Result<(), String> {
    let first = labels.len();
    // A bit per name fingerprint, so that only a repeated fingerprint costs a search.
    let mut seen_bits = 0_u64;
    loop {
        gap(cursor, format)?;
        if cursor.eat(b'}') {
            return Ok(());
        }
        let label_name = if cursor.peek() == Some(b'"') {
            let quoted = cursor.quoted()?;
            gap(cursor, format)?;
            if matches!(cursor.peek(), Some(b',' | b'}')) {
                let Some(slot) = metric_name.as_deref_mut() else {
                    return Err(format!("a quoted name without `=`: `{quoted}`"));
                };
                if quoted.is_empty() {
                    return Err("empty quoted metric name".to_owned());
                }
                if let Some(earlier) = slot {
                    return Err(format!("two metric names: `{earlier}` and `{quoted}`"));
                }
                *slot = Some(quoted);
                cursor.eat(b',');
                continue;
            }
            if quoted.is_empty() {
                return Err("empty quoted label name".to_owned());
            }
            quoted
        } else if cursor.at_label_name() {
            Cow::Borrowed(cursor.plain_label_name())
        } else {
            return Err(format!(
                "expected a label name or `}}`, found {}",
                cursor.found()
            ));
        };
        gap(cursor, format)?;
        if !cursor.eat(b'=') {
            return Err(format!(
                "expected `=` after label name `{label_name}`, found {}",
                cursor.found()
            ));
        }
        gap(cursor, format)?;
        if cursor.peek() != Some(b'"') {
            return Err(format!(
                "expected a quoted value for label `{label_name}`, found {}",
                cursor.found()
            ));
        }
        let label_value = cursor
            .quoted()
            .map_err(|reason| format!("label `{label_name}`: {reason}"))?;
        let bit = name_bit(&label_name);
        if seen_bits & bit != 0
            && labels
                .get(first..)
                .unwrap_or_default()
                .iter()
                .any(|(name, _)| *name == label_name)
        {
            return Err(format!("duplicate label `{label_name}`"));
        }
        seen_bits |= bit;
        labels.push((label_name, label_value));
        gap(cursor, format)?;
        // A trailing comma before `}` is allowed, as Prometheus allows it.
        if !cursor.eat(b',') && cursor.peek() != Some(b'}') {
            let last = labels
                .last()
                .map(|(name, _)| name.as_ref())
                .unwrap_or_default();
            return Err(format!(
                "expected `,` or `}}` after the value of label `{last}`, found {}",
                cursor.found()
            ));
        }
    }
}
