//! Bytes to text, line by line: a line that is not UTF-8 is one malformed line, not a lost
//! exposition.

use std::borrow::Cow;

use super::{Exposition, Format, LineError, parse};

/// An exposition's bytes as text. Valid UTF-8 is borrowed as it is; otherwise every line that
/// is not UTF-8 is emptied (so line numbers still count the input's lines) and reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// The text, with the undecodable lines emptied.
    pub text: Cow<'a, str>,
    /// One error per undecodable line, in input order.
    pub errors: Vec<LineError>,
}

impl Decoded<'_> {
    /// Parses the text in `format`. The undecodable lines are reported once each, as not UTF-8
    /// (what the parser says of their emptied remains is dropped), among the parser's errors in
    /// line order.
    #[must_use]
    pub fn parse(&self, format: Format) -> Exposition<'_> {
        let mut parsed = parse(&self.text, format);
        if self.errors.is_empty() {
            return parsed;
        }
        let undecodable = |line: usize| {
            self.errors
                .binary_search_by_key(&line, |error| error.line)
                .is_ok()
        };
        parsed.errors.retain(|error| !undecodable(error.line));
        parsed.errors.extend(self.errors.iter().cloned());
        // Stable: a line's own errors keep their order.
        parsed.errors.sort_by_key(|error| error.line);
        parsed
    }
}

/// Decodes `bytes` (see [`Decoded`]).
#[must_use]
pub fn decode(bytes: &[u8]) -> Decoded<'_> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Decoded {
            text: Cow::Borrowed(text),
            errors: Vec::new(),
        };
    }
    let mut text = String::with_capacity(bytes.len());
    let mut errors = Vec::new();
    for (index, line) in bytes.split(|byte| *byte == b'\n').enumerate() {
        if index > 0 {
            text.push('\n');
        }
        match std::str::from_utf8(line) {
            Ok(line) => text.push_str(line),
            Err(error) => errors.push(LineError {
                line: index + 1,
                reason: format!(
                    "not UTF-8: invalid byte 0x{:02x} at column {}",
                    line.get(error.valid_up_to()).copied().unwrap_or_default(),
                    error.valid_up_to() + 1
                ),
            }),
        }
    }
    Decoded {
        text: Cow::Owned(text),
        errors,
    }
}
