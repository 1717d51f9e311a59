//! Data-driven tests of the exposition parser: each case renders every sample (with its
//! family's type, its family and its exemplar) and every error.

use std::fmt::Write as _;

use expect_test::Expect;

use super::*;

mod differential;
mod numbers;
mod openmetrics;
mod text;

fn render_labels(labels: &[Label<'_>]) -> String {
    let rendered: Vec<String> = labels
        .iter()
        .map(|(name, value)| format!("{name}={value:?}"))
        .collect();
    format!("{{{}}}", rendered.join(","))
}

fn render_timestamp(timestamp_ms: Option<i64>) -> String {
    timestamp_ms.map_or_else(String::new, |ms| format!(" @{ms}"))
}

/// One line per sample, `line: name{labels} value @ms # {exemplar} value @ms (type family)`,
/// then one line per error.
fn render(exposition: &Exposition<'_>) -> String {
    let mut out = String::new();
    for sample in &exposition.samples {
        let exemplar = sample
            .exemplar
            .as_ref()
            .map_or_else(String::new, |exemplar| {
                format!(
                    " # {} {:?}{}",
                    render_labels(&exemplar.labels),
                    exemplar.value,
                    render_timestamp(exemplar.timestamp_ms)
                )
            });
        writeln!(
            out,
            "{}: {}{} {:?}{}{} ({} {})",
            sample.line,
            sample.name,
            render_labels(&sample.labels),
            sample.value,
            render_timestamp(sample.timestamp_ms),
            exemplar,
            sample.metric_type.as_str(),
            sample.family(),
        )
        .unwrap();
    }
    for error in &exposition.errors {
        writeln!(out, "error line {}: {}", error.line, error.reason).unwrap();
    }
    out
}

/// One line per family: its type, unit and help.
fn render_families(exposition: &Exposition<'_>) -> String {
    let mut out = String::new();
    for (name, meta) in &exposition.families {
        writeln!(
            out,
            "family {name}: {} unit={:?} help={:?}",
            meta.metric_type.map_or("-", MetricType::as_str),
            meta.unit,
            meta.help,
        )
        .unwrap();
    }
    out
}

/// Parses `input` as the text format and checks the rendering.
fn check(input: &str, expect: Expect) {
    expect.assert_eq(&render(&parse(input, Format::Text)));
}

/// Parses `input` as OpenMetrics and checks the rendering.
fn check_openmetrics(input: &str, expect: Expect) {
    expect.assert_eq(&render(&parse(input, Format::OpenMetrics)));
}

#[test]
fn the_content_type_decides_the_format_and_detection_is_the_fallback() {
    let om_body = "a_total 1\n# EOF\n";
    let text_body = "a 1\n";
    let cases: [(Option<&str>, &str, Format, FormatReason); 7] = [
        (
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            text_body,
            Format::OpenMetrics,
            FormatReason::ContentType,
        ),
        (
            Some("Application/OpenMetrics-Text"),
            text_body,
            Format::OpenMetrics,
            FormatReason::ContentType,
        ),
        (
            Some("text/plain; version=0.0.4; charset=utf-8"),
            om_body,
            Format::Text,
            FormatReason::ContentType,
        ),
        (
            Some("text/html"),
            om_body,
            Format::OpenMetrics,
            FormatReason::Detected,
        ),
        (Some(""), text_body, Format::Text, FormatReason::Detected),
        (None, om_body, Format::OpenMetrics, FormatReason::Detected),
        (
            None,
            "a 1\n# EOF\n\n  \r\n",
            Format::OpenMetrics,
            FormatReason::Detected,
        ),
    ];
    for (content_type, body, format, reason) in cases {
        assert_eq!(
            choose_format(content_type, body),
            (format, reason),
            "{content_type:?} {body:?}"
        );
    }
}

#[test]
fn a_line_that_is_not_utf8_is_one_error_and_its_neighbours_are_kept() {
    let bytes = b"# TYPE a gauge\na{x=\"\xff\"} 1\na{x=\"ok\"} 2\r\nb 3 \xc3\n";
    let decoded = decode(bytes);
    assert_eq!(decoded.text, "# TYPE a gauge\n\na{x=\"ok\"} 2\r\n\n");
    for format in [Format::Text, Format::OpenMetrics] {
        let parsed = decoded.parse(format);
        let samples: Vec<(String, f64)> = parsed
            .samples
            .iter()
            .map(|sample| (sample.name.to_string(), sample.value))
            .collect();
        assert_eq!(samples, [("a".to_owned(), 2.0)], "{format:?}");
        let lines: Vec<(usize, &str)> = parsed
            .errors
            .iter()
            .map(|error| (error.line, error.reason.as_str()))
            .collect();
        let mut expected = vec![
            (2, "not UTF-8: invalid byte 0xff at column 6"),
            (4, "not UTF-8: invalid byte 0xc3 at column 5"),
        ];
        if format == Format::OpenMetrics {
            expected.push((
                5,
                "missing `# EOF`: an OpenMetrics exposition must end with it",
            ));
        }
        assert_eq!(lines, expected, "{format:?}");
    }
    let valid = decode(b"a 1\n");
    assert!(matches!(valid.text, Cow::Borrowed("a 1\n")));
    assert!(valid.errors.is_empty());
}
