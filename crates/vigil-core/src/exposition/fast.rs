//! The fast path for the sample line nearly every exporter writes:
//! `name{label="value",...} value` (and, in the text format, an integer timestamp), with no
//! blanks in the label set, no escapes and no quoted names.
//!
//! It reads straight from the input and finds the end of the line as it goes, so the common
//! line is scanned once; what the line repeats of the previous one (its name and first labels:
//! a histogram's buckets differ only in `le`) is compared, not parsed again. On anything else
//! it declines, and the general parser takes the line; it never reports an error itself.
//! INVARIANT: a line it accepts yields exactly what the general parser yields (checked on
//! every accepted line in debug builds, so by the tests and the fuzzer).

use std::borrow::Cow;

use super::cursor::{is_label_name_initial, is_metric_name_initial};
use super::number::{parse_millis, parse_value};
use super::sample::{SampleLine, name_bit};
use super::scan::{common_prefix, find_first_of, name_end};
use super::{Format, Label};

/// What the fast path remembers of the last line it accepted.
#[derive(Default)]
pub(super) struct Previous<'a> {
    /// The line from its start through its label set (through its name, without one).
    head: &'a [u8],
    /// The length of its name.
    name_len: usize,
    /// Its labels (the fast path reads no escapes, so they are slices of the input).
    labels: Vec<LabelSpan<'a>>,
    /// The labels of the line being read, kept until it is accepted.
    reading: Vec<LabelSpan<'a>>,
}

/// A label the fast path read, and where it ended.
#[derive(Clone, Copy)]
struct LabelSpan<'a> {
    /// The offset from the line start just past the value's closing quote.
    end: usize,
    /// The name fingerprints of this label and those before it.
    seen_bits: u64,
    name: &'a str,
    value: &'a str,
}

/// Parses the line starting at byte `start` of `input` if it has the common shape, appending
/// its labels to `labels`; returns the sample and where the next line starts.
#[inline]
pub(super) fn sample_line<'a>(
    input: &'a str,
    start: usize,
    format: Format,
    labels: &mut Vec<Label<'a>>,
    previous: &mut Previous<'a>,
) -> Option<(SampleLine<'a>, usize)> {
    let n_labels_before = labels.len();
    let sample = read(input, start, format, labels, previous);
    if sample.is_none() {
        labels.truncate(n_labels_before);
    }
    sample
}

#[inline]
fn read<'a>(
    input: &'a str,
    start: usize,
    format: Format,
    labels: &mut Vec<Label<'a>>,
    previous: &mut Previous<'a>,
) -> Option<(SampleLine<'a>, usize)> {
    let bytes = input.as_bytes();
    let first_label = labels.len();
    previous.reading.clear();

    // What the line repeats of the previous one: past the name, the name is the same (the
    // byte after it is equal, so not a name character); every label that ends within the
    // common prefix is the same.
    let common = common_prefix(bytes.get(start..)?, previous.head);
    let mut n_reused = 0;
    let mut pos = if common > previous.name_len {
        if previous.head.get(previous.name_len) == Some(&b'{') {
            n_reused = previous
                .labels
                .iter()
                .take_while(|span| span.end <= common)
                .count();
        }
        start + previous.name_len
    } else {
        if !is_metric_name_initial(*bytes.get(start)?) {
            return None;
        }
        name_end(bytes, start + 1, true)
    };
    let name = input.get(start..pos)?;

    if n_reused > 0 || bytes.get(pos) == Some(&b'{') {
        // A bit per name fingerprint, so that only a repeated fingerprint costs a search.
        let mut seen_bits = 0_u64;
        let mut after_value = false;
        let last_reused = n_reused
            .checked_sub(1)
            .and_then(|idx| previous.labels.get(idx));
        if let Some(last) = last_reused {
            labels.extend(
                previous
                    .labels
                    .iter()
                    .take(n_reused)
                    .map(|span| (Cow::Borrowed(span.name), Cow::Borrowed(span.value))),
            );
            pos = start + last.end;
            seen_bits = last.seen_bits;
            after_value = true;
        } else {
            pos += 1;
        }
        loop {
            if after_value {
                match bytes.get(pos) {
                    Some(b',') => pos += 1,
                    Some(b'}') => {
                        pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
            let label_start = pos;
            match bytes.get(pos) {
                // An empty label set, or a trailing comma.
                Some(b'}') => {
                    pos += 1;
                    break;
                }
                Some(&byte) if is_label_name_initial(byte) => {}
                _ => return None,
            }
            pos = name_end(bytes, pos + 1, false);
            let label_name = input.get(label_start..pos)?;
            if bytes.get(pos..pos + 2)? != b"=\"" {
                return None;
            }
            let value_start = pos + 2;
            // An escape or a line end before the closing quote is for the general parser.
            pos = value_start + find_first_of(bytes.get(value_start..)?, [b'"', b'\\', b'\n'])?;
            if bytes.get(pos) != Some(&b'"') {
                return None;
            }
            let label_value = input.get(value_start..pos)?;
            pos += 1;
            let bit = name_bit(label_name);
            if seen_bits & bit != 0
                && labels
                    .get(first_label..)?
                    .iter()
                    .any(|(name, _)| name == label_name)
            {
                return None;
            }
            seen_bits |= bit;
            // Built in place after the capacity check: a `push` builds the pair on the stack
            // first and copies it, a store-forwarding stall on every label.
            labels.extend(std::iter::once_with(|| {
                (Cow::Borrowed(label_name), Cow::Borrowed(label_value))
            }));
            previous.reading.push(LabelSpan {
                end: pos - start,
                seen_bits,
                name: label_name,
                value: label_value,
            });
            after_value = true;
        }
    }
    let head_end = pos;

    if bytes.get(pos) != Some(&b' ') {
        return None;
    }
    let value_start = pos + 1;
    pos = skip(bytes, value_start, is_token_byte);
    let value = parse_value(input.get(value_start..pos)?).ok()?;
    let mut timestamp_ms = None;
    if format == Format::Text && bytes.get(pos) == Some(&b' ') {
        let timestamp_start = pos + 1;
        pos = skip(bytes, timestamp_start, is_token_byte);
        timestamp_ms = Some(parse_millis(input.get(timestamp_start..pos)?).ok()?);
    }
    let next_line = match bytes.get(pos) {
        None => pos,
        Some(b'\n') => pos + 1,
        // The general parser drops one `\r` before the line feed (or the end of the input).
        Some(b'\r') => match bytes.get(pos + 1) {
            None => pos + 1,
            Some(b'\n') => pos + 2,
            Some(_) => return None,
        },
        Some(_) => return None,
    };

    // Accepted: this line is the one the next is compared with.
    previous.head = bytes.get(start..head_end)?;
    previous.name_len = name.len();
    previous.labels.truncate(n_reused);
    previous.labels.extend_from_slice(&previous.reading);
    let sample = SampleLine {
        name: Cow::Borrowed(name),
        value,
        timestamp_ms,
        exemplar: None,
    };
    Some((sample, next_line))
}

/// The first position from `pos` whose byte is not `keep`, or the end.
#[inline]
fn skip(bytes: &[u8], pos: usize, keep: impl Fn(u8) -> bool) -> usize {
    bytes
        .get(pos..)
        .and_then(|rest| rest.iter().position(|&byte| !keep(byte)))
        .map_or(bytes.len(), |offset| pos + offset)
}

/// Whether `byte` belongs to a value or timestamp token.
#[inline]
fn is_token_byte(byte: u8) -> bool {
    !matches!(byte, b' ' | b'\t' | b'\n' | b'\r')
}
