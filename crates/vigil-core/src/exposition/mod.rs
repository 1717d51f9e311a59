//! A parser for the Prometheus text format (0.0.4) and OpenMetrics 1.0 text that loses nothing.
//!
//! Every well-formed sample line yields a sample that knows its family's type; every malformed
//! line is reported with its 1-based number and a reason naming the offending text, and parsing
//! goes on with the next line. Names and label values borrow from the input unless an escape
//! forces a copy.
//!
//! The grammar follows the OpenMetrics 1.0 ABNF and Prometheus' own parsers
//! (`model/textparse/{promparse,openmetricsparse}.go`), including Prometheus 3's quoted UTF-8
//! names (`{"my.metric", "label.name"="v"} 1`, `# TYPE "my.metric" counter`). Deliberate choices:
//!
//! - **OpenMetrics is strict** where its ABNF and Prometheus agree: tokens are separated by
//!   exactly one space, label sets hold no whitespace, blank lines and plain comments are
//!   errors, `# EOF` must be the last line. The text format is lenient as Prometheus is: any run
//!   of spaces and tabs separates tokens, blank lines and comments are ignored, a trailing
//!   `# EOF` is an ordinary comment.
//! - Both formats accept `\r\n` line ends and a trailing comma in a label set.
//! - An undefined escape such as `\q` in a quoted string or HELP text is kept verbatim (`\q`),
//!   as the OpenMetrics ABNF (`BS normal-char`) and Prometheus do.
//! - OpenMetrics timestamps are float seconds converted to exact integer milliseconds by decimal
//!   arithmetic on the text, never through an `f64`; sub-millisecond digits round half to even.
//! - Structure the types require is checked per line: a histogram bucket needs a numeric `le`,
//!   a summary quantile a numeric `quantile`, a stateset sample the label naming its state, and
//!   a `# UNIT` must be a suffix of its family's name.
//! - Exemplars are read in OpenMetrics only; on a text-format line one is an error, as in
//!   Prometheus.
//!
//! **Families.** A sample belongs to the family of its own name if that family's type has bare
//! samples (gauge, unknown, stateset, summary quantiles, and counters: the text format declares
//! them with their `_total`, as prometheus_client does), else to the family named by its name
//! without a suffix its type has (`_total` and `_created` of an OpenMetrics counter; `_bucket`,
//! `_sum`, `_count`, `_created` of a histogram; `_bucket`, `_gcount`, `_gsum` of a gauge
//! histogram; `_sum`, `_count`, `_created` of a summary; `_info` of an info), else to none
//! (type unknown). A family's `# TYPE` must come before its samples, as both formats say.
//!
//! **Memory.** The samples and their labels borrow from the input. A sample's labels are a
//! slice of a chunk shared with its neighbours ([`Labels`]), so a scrape's labels take a few
//! allocations, not one per sample. The common sample line takes a fast path that compares
//! what it repeats of the previous line instead of parsing it again (`fast.rs`); any other
//! line goes to the general parser, which the fast path must agree with.

mod cursor;
mod decode;
mod escape;
mod family;
mod fast;
mod labels;
mod metadata;
mod number;
mod parser;
mod sample;
mod scan;

use std::borrow::Cow;
use std::collections::BTreeMap;

pub use decode::{Decoded, decode};
pub use labels::Labels;

/// Which of the two text formats an exposition is written in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Format {
    /// The Prometheus text format 0.0.4 (`text/plain; version=0.0.4`).
    #[default]
    Text,
    /// OpenMetrics 1.0 text (`application/openmetrics-text; version=1.0.0`).
    OpenMetrics,
}

/// The type a `# TYPE` line declares for a metric family.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MetricType {
    /// A monotonically increasing counter (`_total`, `_created`).
    Counter,
    /// A value that goes up and down.
    Gauge,
    /// A histogram (`_bucket` with `le`, `_sum`, `_count`, `_created`).
    Histogram,
    /// An OpenMetrics gauge histogram (`_bucket` with `le`, `_gcount`, `_gsum`).
    GaugeHistogram,
    /// A summary (samples with `quantile`, `_sum`, `_count`, `_created`).
    Summary,
    /// An OpenMetrics info metric (`_info`).
    Info,
    /// An OpenMetrics state set: one sample per state, the state in a label named after the
    /// family.
    StateSet,
    /// No type declared, `untyped` (text format) or `unknown` (OpenMetrics).
    Unknown,
}

impl MetricType {
    /// The OpenMetrics spelling (`"unknown"` for the text format's `untyped` too).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }
}

/// A label: its name and its unescaped value.
pub type Label<'a> = (Cow<'a, str>, Cow<'a, str>);

/// An OpenMetrics exemplar attached to a sample (`# {trace_id="abc"} 0.67 1700000000.5`).
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar<'a> {
    /// The exemplar's labels in the order they were written.
    pub labels: Vec<Label<'a>>,
    /// The exemplar's value.
    pub value: f64,
    /// The exemplar's timestamp in milliseconds, when it had one.
    pub timestamp_ms: Option<i64>,
}

/// One sample line.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedSample<'a> {
    /// The metric name as written (unquoted and unescaped if it was quoted).
    pub name: Cow<'a, str>,
    /// The labels in the order they were written, as a slice (`iter`, `len`, indexing).
    pub labels: Labels<'a>,
    /// The value.
    pub value: f64,
    /// The timestamp in milliseconds, when the line had one.
    pub timestamp_ms: Option<i64>,
    /// The exemplar that followed the sample (OpenMetrics only).
    pub exemplar: Option<Box<Exemplar<'a>>>,
    /// The type of the family the sample belongs to.
    pub metric_type: MetricType,
    /// The 1-based line number.
    pub line: usize,
    /// The length of the family name, a prefix of `name`.
    family_len: usize,
}

impl ParsedSample<'_> {
    /// The name of the family the sample belongs to: `name` without its type's suffix
    /// (`x` for `x_total` of OpenMetrics counter `x`; `x_total` itself for a text-format
    /// counter declared as `x_total`), or `name` itself when no family declared a type for it.
    #[must_use]
    pub fn family(&self) -> &str {
        self.name.get(..self.family_len).unwrap_or(&self.name)
    }

    /// The value of the label `name`, if the sample has it.
    #[must_use]
    pub fn label(&self, name: &str) -> Option<&str> {
        find_label(&self.labels, name)
    }
}

/// What the `# HELP`, `# TYPE` and `# UNIT` lines said about a family.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FamilyMeta<'a> {
    /// The declared type, if any.
    pub metric_type: Option<MetricType>,
    /// The help text, unescaped, if the family had a HELP line. OpenMetrics says that an
    /// empty HELP means none; it is kept here as `Some("")`, as written.
    pub help: Option<Cow<'a, str>>,
    /// The unit, if the family had an OpenMetrics UNIT line (`Some("")` for an empty one,
    /// which OpenMetrics says means none).
    pub unit: Option<&'a str>,
}

/// A line that could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineError {
    /// The 1-based line number. A missing OpenMetrics `# EOF` is reported one past the last
    /// line, where it was expected.
    pub line: usize,
    /// Why it was rejected, naming the offending text.
    pub reason: String,
}

/// The result of parsing one exposition.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exposition<'a> {
    /// The format the exposition was parsed as.
    pub format: Format,
    /// Every well-formed sample, in input order.
    pub samples: Vec<ParsedSample<'a>>,
    /// Family metadata by family name.
    pub families: BTreeMap<Cow<'a, str>, FamilyMeta<'a>>,
    /// Every malformed line, in input order.
    pub errors: Vec<LineError>,
}

/// The format of an exposition whose content type is unknown: OpenMetrics if and only if the
/// last non-blank line is `# EOF`.
#[must_use]
pub fn detect_format(input: &str) -> Format {
    let last_line = input
        .rsplit('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .find(|line| !line.trim_matches([' ', '\t']).is_empty());
    if last_line == Some("# EOF") {
        Format::OpenMetrics
    } else {
        Format::Text
    }
}

/// How [`choose_format`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FormatReason {
    /// The `Content-Type` header named the format.
    ContentType,
    /// No usable `Content-Type`: the input ends with `# EOF` (or does not).
    Detected,
}

impl FormatReason {
    /// A short human explanation, for summaries and logs.
    #[must_use]
    pub fn describe(self, format: Format) -> &'static str {
        match (self, format) {
            (Self::ContentType, _) => "from the Content-Type header",
            (Self::Detected, Format::OpenMetrics) => "detected: the input ends with `# EOF`",
            (Self::Detected, Format::Text) => "detected: the input does not end with `# EOF`",
        }
    }
}

/// The format of a scraped exposition: `application/openmetrics-text` means OpenMetrics and
/// `text/plain` the text format (parameters such as `version=` are ignored); any other or no
/// `Content-Type` falls back to [`detect_format`].
#[must_use]
pub fn choose_format(content_type: Option<&str>, input: &str) -> (Format, FormatReason) {
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    match media_type {
        Some(media) if media.eq_ignore_ascii_case("application/openmetrics-text") => {
            (Format::OpenMetrics, FormatReason::ContentType)
        }
        Some(media) if media.eq_ignore_ascii_case("text/plain") => {
            (Format::Text, FormatReason::ContentType)
        }
        _ => (detect_format(input), FormatReason::Detected),
    }
}

/// Parses a text-format (0.0.4) exposition; the same as `parse(input, Format::Text)`.
#[must_use]
pub fn parse_text(input: &str) -> Exposition<'_> {
    parse(input, Format::Text)
}

/// Parses an exposition in `format`. Never fails: problems are in [`Exposition::errors`].
///
/// Lines end at `\n` (a `\r` before it is dropped); a final `\n` ends the last line rather
/// than starting an empty one.
#[must_use]
pub fn parse(input: &str, format: Format) -> Exposition<'_> {
    parser::Parser::new(input, format).run()
}

/// The value of the first label called `name`.
fn find_label<'l>(labels: &'l [Label<'_>], name: &str) -> Option<&'l str> {
    labels
        .iter()
        .find(|(label_name, _)| label_name == name)
        .map(|(_, value)| value.as_ref())
}

#[cfg(test)]
mod tests;
