//! The line loop: each line goes to the fast path or the general parser; the state carried
//! from line to line; what is left to report at the end.

use super::family::{self, Families};
use super::labels::LabelStore;
use super::metadata::{self, Descriptor};
use super::sample::{self, SampleLine};
use super::{Exposition, Format, LineError, ParsedSample, cursor, fast};

/// Parses one exposition, line by line.
pub(super) struct Parser<'a> {
    input: &'a str,
    format: Format,
    samples: Vec<ParsedSample<'a>>,
    /// Where samples' labels go, written in place as each line is parsed.
    labels: LabelStore<'a>,
    errors: Vec<LineError>,
    families: Families<'a>,
    /// The line of the OpenMetrics `# EOF`, once seen.
    eof_line: Option<usize>,
    /// The last line the fast path accepted: the next line often repeats its beginning.
    previous: fast::Previous<'a>,
}

impl<'a> Parser<'a> {
    pub(super) fn new(input: &'a str, format: Format) -> Self {
        Parser {
            input,
            format,
            samples: Vec::new(),
            labels: LabelStore::default(),
            errors: Vec::new(),
            families: Families::default(),
            eof_line: None,
            previous: fast::Previous::default(),
        }
    }

    /// Parses every line. Lines end at `\n` (a `\r` before it is dropped); a final `\n` ends
    /// the last line rather than starting an empty one.
    pub(super) fn run(mut self) -> Exposition<'a> {
        let input = self.input;
        // Room for the samples up front, so that they are not copied as the vector grows:
        // a sample line is rarely shorter than this (a shorter one only costs a reallocation).
        const TYPICAL_SAMPLE_LINE_BYTES: usize = 64;
        self.samples
            .reserve(input.len() / TYPICAL_SAMPLE_LINE_BYTES);
        let mut n_lines = 0;
        let mut line_start = 0;
        while line_start < input.len() {
            n_lines += 1;
            let labels = self.labels.start_line(&mut self.samples);
            // The common sample line takes the fast path, which also finds where it ends.
            let fast = if self.eof_line.is_none() {
                fast::sample_line(input, line_start, self.format, labels, &mut self.previous)
            } else {
                None
            };
            let (result, next_line) = match fast {
                Some((sample, next_line)) => {
                    #[cfg(debug_assertions)]
                    self.check_fast_path(line_start, next_line, &sample);
                    let kept = self.keep_sample(sample, n_lines);
                    (kept, next_line)
                }
                None => {
                    let rest = input.get(line_start..).unwrap_or_default();
                    let (raw_line, next_line) = match rest.find('\n') {
                        Some(at) => (rest.get(..at).unwrap_or_default(), line_start + at + 1),
                        None => (rest, input.len()),
                    };
                    let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
                    (self.line(n_lines, line), next_line)
                }
            };
            if let Err(reason) = result {
                self.labels.roll_back_line();
                self.errors.push(LineError {
                    line: n_lines,
                    reason,
                });
            }
            line_start = next_line;
        }
        self.finish(n_lines)
    }

    /// Parses one line (without its line end) with the general parser.
    fn line(&mut self, line_no: usize, line: &'a str) -> Result<(), String> {
        let line = match self.format {
            Format::Text => {
                let line = line.trim_start_matches([' ', '\t']);
                if line.is_empty() {
                    return Ok(());
                }
                line
            }
            Format::OpenMetrics => {
                if let Some(eof_line) = self.eof_line {
                    return Err(if line.is_empty() {
                        format!("unexpected empty line after `# EOF` (line {eof_line})")
                    } else {
                        format!(
                            "unexpected line after `# EOF` (line {eof_line}): {}",
                            cursor::quote_snippet(line)
                        )
                    });
                }
                if line.is_empty() {
                    return Err("empty line: OpenMetrics allows none".to_owned());
                }
                line
            }
        };
        if line.starts_with('#') {
            return match metadata::parse_comment(line, self.format)? {
                Descriptor::Comment => Ok(()),
                Descriptor::Eof => {
                    self.eof_line = Some(line_no);
                    Ok(())
                }
                Descriptor::Help { name, text } => self.families.declare_help(name, text),
                Descriptor::Type { name, metric_type } => {
                    self.families.declare_type(name, metric_type)
                }
                Descriptor::Unit { name, unit } => self.families.declare_unit(name, unit),
            };
        }
        let labels = self.labels.start_line(&mut self.samples);
        let parsed = sample::parse_sample(line, self.format, labels)?;
        self.keep_sample(parsed, line_no)
    }

    /// Resolves a sample's family, checks what its type requires, and keeps it with the
    /// line's labels.
    fn keep_sample(&mut self, parsed: SampleLine<'a>, line_no: usize) -> Result<(), String> {
        let resolved = self.families.resolve(&parsed.name);
        family::check_structure(&parsed.name, self.labels.line_labels(), resolved)?;
        let labels = self.labels.keep_line();
        self.samples.push(ParsedSample {
            name: parsed.name,
            labels,
            value: parsed.value,
            timestamp_ms: parsed.timestamp_ms,
            exemplar: parsed.exemplar,
            metric_type: resolved.metric_type,
            line: line_no,
            family_len: resolved.family_len,
        });
        Ok(())
    }

    /// INVARIANT (debug builds): the fast path yields what the general parser yields.
    #[cfg(debug_assertions)]
    fn check_fast_path(&self, line_start: usize, next_line: usize, fast: &SampleLine<'a>) {
        let raw_line = self.input.get(line_start..next_line).unwrap_or_default();
        let line = raw_line.strip_suffix('\n').unwrap_or(raw_line);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let mut general_labels = Vec::new();
        let general = sample::parse_sample(line, self.format, &mut general_labels);
        let fast_labels = self.labels.line_labels();
        // Values compare by their bits, so that NaN matches NaN.
        let same = general.as_ref().is_ok_and(|general| {
            general.name == fast.name
                && general_labels.as_slice() == fast_labels
                && general.value.to_bits() == fast.value.to_bits()
                && general.timestamp_ms == fast.timestamp_ms
                && general.exemplar == fast.exemplar
        });
        debug_assert!(
            same,
            "the fast path disagrees on {line:?}: {fast:?} {fast_labels:?} vs {general:?} \
             {general_labels:?}"
        );
    }

    fn finish(mut self, n_lines: usize) -> Exposition<'a> {
        self.labels.finish(&mut self.samples);
        if self.format == Format::OpenMetrics && self.eof_line.is_none() {
            self.errors.push(LineError {
                line: n_lines + 1,
                reason: "missing `# EOF`: an OpenMetrics exposition must end with it".to_owned(),
            });
        }
        Exposition {
            format: self.format,
            samples: self.samples,
            families: self.families.into_metadata(),
            errors: self.errors,
        }
    }
}
