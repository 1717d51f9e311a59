//! Fuzzes the exposition parser (Prometheus text 0.0.4 and OpenMetrics 1.0) with arbitrary
//! bytes, decoded as the scraper does (`exposition::decode`: a line that is not UTF-8 is one
//! error), and checks what must always hold:
//!
//! - decoding keeps the line count, and borrows exactly when the input is UTF-8;
//! - parsing never panics, in either format (built with `-a`, the parser's debug assertions
//!   also check that its fast path agrees with the general parser on every line it takes);
//! - every sample and every error names a line of the input, each line at most once, in
//!   order; the only exception is a missing OpenMetrics `# EOF`, reported one past the last
//!   line; so samples plus errors never outnumber the lines;
//! - `detect_format` says OpenMetrics only when parsing as OpenMetrics finds its `# EOF`;
//! - rendering the samples back as text format and parsing that again gives the same
//!   samples (names, labels, values and timestamps), without an error.

#![no_main]

use std::fmt::Write as _;

use libfuzzer_sys::fuzz_target;
use vigil_core::exposition::{self, Exposition, Format, ParsedSample};

fuzz_target!(|data: &[u8]| {
    let decoded = exposition::decode(data);
    let input: &str = &decoded.text;
    assert_eq!(
        input.split('\n').count(),
        data.split(|byte| *byte == b'\n').count(),
        "decoding changed the line count"
    );
    assert_eq!(
        matches!(decoded.text, std::borrow::Cow::Borrowed(_)),
        std::str::from_utf8(data).is_ok()
    );
    for format in [Format::Text, Format::OpenMetrics] {
        let parsed = decoded.parse(format);
        check_lines(data, format, &parsed);
        check_round_trip(&parsed);
    }
    if exposition::detect_format(input) == Format::OpenMetrics {
        let parsed = exposition::parse(input, Format::OpenMetrics);
        assert!(
            !parsed
                .errors
                .iter()
                .any(|error| error.reason.starts_with("missing `# EOF`")),
            "detected OpenMetrics without its `# EOF`: {input:?}"
        );
    }
});

/// Line numbers: within the input, each line reported at most once, in order.
fn check_lines(data: &[u8], format: Format, parsed: &Exposition<'_>) {
    // Counted on the bytes: decoding empties an undecodable last line, which would then no
    // longer count as a line of the text.
    let n_lines = data.split(|byte| *byte == b'\n').count() - usize::from(data.ends_with(b"\n"));
    let mut lines: Vec<usize> = parsed.samples.iter().map(|sample| sample.line).collect();
    assert!(
        lines.windows(2).all(|pair| pair[0] < pair[1]),
        "samples out of order"
    );
    let mut error_lines: Vec<usize> = parsed.errors.iter().map(|error| error.line).collect();
    assert!(
        error_lines.windows(2).all(|pair| pair[0] < pair[1]),
        "errors out of order"
    );
    if let Some(last) = parsed.errors.last()
        && last.line == n_lines + 1
    {
        assert_eq!(format, Format::OpenMetrics, "{last:?}");
        assert!(last.reason.starts_with("missing `# EOF`"), "{last:?}");
        error_lines.pop();
    }
    lines.extend(error_lines);
    lines.sort_unstable();
    let n_reported = lines.len();
    lines.dedup();
    assert_eq!(lines.len(), n_reported, "a line reported twice");
    assert!(lines.iter().all(|&line| (1..=n_lines).contains(&line)));
    assert!(n_reported <= n_lines);
}

/// Whether `name` needs no quotes as a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or, without
/// colons, as a label name.
fn is_plain(name: &str, colons: bool) -> bool {
    let allowed = |ch: char| ch.is_ascii_alphanumeric() || ch == '_' || (colons && ch == ':');
    name.chars()
        .next()
        .is_some_and(|first| allowed(first) && !first.is_ascii_digit())
        && name.chars().all(allowed)
}

fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            other => out.push(other),
        }
    }
    out.push('"');
    out
}

/// The samples as text-format lines.
fn render(samples: &[ParsedSample<'_>]) -> String {
    let mut out = String::new();
    for sample in samples {
        let mut items = Vec::new();
        let plain_name = is_plain(&sample.name, true);
        if !plain_name {
            items.push(quoted(&sample.name));
        }
        for (name, value) in sample.labels.iter() {
            let name = if is_plain(name, false) {
                name.to_string()
            } else {
                quoted(name)
            };
            items.push(format!("{name}={}", quoted(value)));
        }
        if plain_name {
            out.push_str(&sample.name);
        }
        let _ = write!(out, "{{{}}} {:?}", items.join(","), sample.value);
        if let Some(timestamp_ms) = sample.timestamp_ms {
            let _ = write!(out, " {timestamp_ms}");
        }
        out.push('\n');
    }
    out
}

/// Rendering the samples and parsing them again gives them back.
fn check_round_trip(parsed: &Exposition<'_>) {
    let text = render(&parsed.samples);
    let again = exposition::parse(&text, Format::Text);
    assert!(again.errors.is_empty(), "{text:?}: {:?}", again.errors);
    assert_eq!(again.samples.len(), parsed.samples.len(), "{text:?}");
    for (before, after) in parsed.samples.iter().zip(&again.samples) {
        assert_eq!(before.name, after.name, "{text:?}");
        assert_eq!(before.labels, after.labels, "{text:?}");
        assert_eq!(before.timestamp_ms, after.timestamp_ms, "{text:?}");
        let same_value = before.value.to_bits() == after.value.to_bits()
            || (before.value.is_nan() && after.value.is_nan());
        assert!(
            same_value,
            "{} vs {} in {text:?}",
            before.value, after.value
        );
    }
}
