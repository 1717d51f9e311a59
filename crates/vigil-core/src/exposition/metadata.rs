//! Lines that start with `#`: `# HELP`, `# TYPE`, `# UNIT`, `# EOF` and plain comments.

use std::borrow::Cow;

use super::cursor::{Cursor, is_metric_name_char, quote_snippet};
use super::escape::{Escapes, unescape};
use super::{Format, MetricType};

/// What a `#` line says.
#[derive(Debug, PartialEq)]
pub(super) enum Descriptor<'a> {
    /// A plain comment (text format only).
    Comment,
    /// `# EOF` (OpenMetrics; in the text format it is a plain comment).
    Eof,
    /// `# HELP name text`, the text unescaped.
    Help {
        name: Cow<'a, str>,
        text: Cow<'a, str>,
    },
    /// `# TYPE name type`.
    Type {
        name: Cow<'a, str>,
        metric_type: MetricType,
    },
    /// `# UNIT name unit` (OpenMetrics).
    Unit { name: Cow<'a, str>, unit: &'a str },
}

/// Parses a line that starts with `#` (leading blanks already skipped).
pub(super) fn parse_comment(line: &str, format: Format) -> Result<Descriptor<'_>, String> {
    match format {
        Format::Text => parse_text_comment(line),
        Format::OpenMetrics => parse_openmetrics_comment(line),
    }
}

/// Text format, as Prometheus reads it: `#`, blanks, `HELP` or `TYPE`, blanks, the name, one
/// blank and the rest of the line. Anything else after `#` is a comment, `# EOF` included.
fn parse_text_comment(line: &str) -> Result<Descriptor<'_>, String> {
    let mut cursor = Cursor::new(line);
    cursor.eat(b'#');
    if cursor.skip_blanks() == 0 {
        return Ok(Descriptor::Comment);
    }
    let keyword = if cursor.eat_str("HELP") {
        "HELP"
    } else if cursor.eat_str("TYPE") {
        "TYPE"
    } else {
        return Ok(Descriptor::Comment);
    };
    // `# HELPFUL` and a bare `# HELP` are comments, as in Prometheus' lexer.
    if cursor.skip_blanks() == 0 {
        return Ok(Descriptor::Comment);
    }
    let name = cursor
        .descriptor_name()
        .map_err(|reason| format!("`# {keyword}`: {reason}"))?;
    let has_blank = matches!(cursor.peek(), Some(b' ' | b'\t'));
    if !cursor.is_at_end() && !has_blank {
        return Err(format!(
            "`# {keyword} {name}`: expected a blank after the name, found {}",
            cursor.found()
        ));
    }
    if keyword == "HELP" {
        // One blank separates the name from the text; further blanks belong to the text.
        if !cursor.eat(b' ') {
            cursor.eat(b'\t');
        }
        let text = unescape(cursor.rest(), Escapes::TextHelp);
        return Ok(Descriptor::Help { name, text });
    }
    cursor.skip_blanks();
    let type_text = cursor.rest().trim_end_matches([' ', '\t']);
    let metric_type = match type_text {
        "counter" => MetricType::Counter,
        "gauge" => MetricType::Gauge,
        "histogram" => MetricType::Histogram,
        "summary" => MetricType::Summary,
        "untyped" => MetricType::Unknown,
        "" => return Err(format!("`# TYPE {name}` names no type")),
        _ => {
            return Err(format!(
                "unknown metric type {} for `{name}` (the text format has counter, gauge, \
                 histogram, summary and untyped)",
                quote_snippet(type_text)
            ));
        }
    };
    Ok(Descriptor::Type { name, metric_type })
}

/// OpenMetrics, as its ABNF says: `# ` then `EOF`, or `HELP`, `TYPE` or `UNIT`, one space, the
/// name, one space and the rest of the line. No other comment is allowed.
fn parse_openmetrics_comment(line: &str) -> Result<Descriptor<'_>, String> {
    let mut cursor = Cursor::new(line);
    if !cursor.eat_str("# ") {
        return Err(format!(
            "OpenMetrics allows no comments besides `# HELP`, `# TYPE`, `# UNIT` and `# EOF`: {}",
            quote_snippet(line)
        ));
    }
    if cursor.rest() == "EOF" {
        return Ok(Descriptor::Eof);
    }
    let keyword = ["HELP ", "TYPE ", "UNIT "]
        .into_iter()
        .find(|keyword| cursor.eat_str(keyword))
        .ok_or_else(|| {
            format!(
                "OpenMetrics allows no comments besides `# HELP`, `# TYPE`, `# UNIT` and \
                 `# EOF`: {}",
                quote_snippet(line)
            )
        })?
        .trim_end();
    let name = cursor
        .descriptor_name()
        .map_err(|reason| format!("`# {keyword}`: {reason}"))?;
    if !cursor.eat(b' ') {
        return Err(format!(
            "`# {keyword} {name}`: expected one space and the {}, found {}",
            match keyword {
                "HELP" => "help text",
                "TYPE" => "type",
                _ => "unit",
            },
            cursor.found()
        ));
    }
    let text = cursor.rest();
    match keyword {
        "HELP" => Ok(Descriptor::Help {
            name,
            text: unescape(text, Escapes::OpenMetricsHelp),
        }),
        "TYPE" => {
            let metric_type = match text {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" => MetricType::Histogram,
                "gaugehistogram" => MetricType::GaugeHistogram,
                "summary" => MetricType::Summary,
                "info" => MetricType::Info,
                "stateset" => MetricType::StateSet,
                "unknown" => MetricType::Unknown,
                _ => {
                    return Err(format!(
                        "unknown metric type {} for `{name}` (OpenMetrics has counter, gauge, \
                         histogram, gaugehistogram, summary, info, stateset and unknown)",
                        quote_snippet(text)
                    ));
                }
            };
            Ok(Descriptor::Type { name, metric_type })
        }
        _ => {
            if let Some(bad) = text.bytes().position(|byte| !is_metric_name_char(byte)) {
                return Err(format!(
                    "`# UNIT {name}`: a unit has only the characters of a metric name, found {}",
                    quote_snippet(text.get(bad..).unwrap_or(text))
                ));
            }
            Ok(Descriptor::Unit { name, unit: text })
        }
    }
}
