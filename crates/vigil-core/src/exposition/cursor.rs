//! A cursor over one line: names, quoted strings, blanks, and snippets of the offending text
//! for error messages.

use std::borrow::Cow;

use super::escape::{Escapes, unescape};
use super::scan::{find_first_of, name_end};

// The character classes of names, one bit each, in a table indexed by byte.
const METRIC_INITIAL: u8 = 1;
const METRIC_CHAR: u8 = 2;
const LABEL_INITIAL: u8 = 4;

#[expect(
    clippy::indexing_slicing,
    reason = "a constant: `byte` runs over 0..256 in a 256-entry table"
)]
const CLASSES: [u8; 256] = {
    let mut table = [0_u8; 256];
    let mut byte = 0;
    while byte < 256 {
        let ch = byte as u8;
        let letter = ch.is_ascii_alphabetic() || ch == b'_';
        let digit = ch.is_ascii_digit();
        let mut class = 0;
        if letter || ch == b':' {
            class |= METRIC_INITIAL | METRIC_CHAR;
        }
        if digit {
            class |= METRIC_CHAR;
        }
        if letter {
            class |= LABEL_INITIAL;
        }
        table[byte] = class;
        byte += 1;
    }
    table
};

#[inline]
fn has_class(byte: u8, class: u8) -> bool {
    CLASSES
        .get(usize::from(byte))
        .is_some_and(|classes| classes & class != 0)
}

/// Whether `byte` may start a metric name (`[a-zA-Z_:]`).
#[inline]
pub(super) fn is_metric_name_initial(byte: u8) -> bool {
    has_class(byte, METRIC_INITIAL)
}

/// Whether `byte` may continue a metric name (`[a-zA-Z0-9_:]`), as in a `# UNIT`.
#[inline]
pub(super) fn is_metric_name_char(byte: u8) -> bool {
    has_class(byte, METRIC_CHAR)
}

/// Whether `byte` may start a label name (`[a-zA-Z_]`).
#[inline]
pub(super) fn is_label_name_initial(byte: u8) -> bool {
    has_class(byte, LABEL_INITIAL)
}

/// At most this many characters of offending text go into an error message.
const SNIPPET_CHARS: usize = 32;

/// `text` in backticks, cut after [`SNIPPET_CHARS`] characters, control characters escaped
/// (a tab shows as `\t`).
pub(super) fn quote_snippet(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(4 * SNIPPET_CHARS) + 8);
    out.push('`');
    for (idx, ch) in text.chars().enumerate() {
        if idx == SNIPPET_CHARS {
            out.push('…');
            break;
        }
        if ch.is_control() {
            out.extend(ch.escape_debug());
        } else {
            out.push(ch);
        }
    }
    out.push('`');
    out
}

#[cold]
#[inline(never)]
fn unterminated(from_opening_quote: &str) -> String {
    format!(
        "unterminated quoted string {}",
        quote_snippet(from_opening_quote)
    )
}

/// A position in one line. Every position it stops at is a char boundary: it only ever stops
/// just before or after an ASCII byte.
pub(super) struct Cursor<'a> {
    line: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    pub(super) fn new(line: &'a str) -> Self {
        Cursor { line, pos: 0 }
    }

    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.line.as_bytes().get(self.pos).copied()
    }

    #[inline]
    pub(super) fn is_at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    /// The text from the cursor to the end of the line.
    #[inline]
    pub(super) fn rest(&self) -> &'a str {
        self.slice(self.pos, self.line.len())
    }

    /// What the cursor is looking at, for an error message: a snippet or "the end of the line".
    #[cold]
    #[inline(never)]
    pub(super) fn found(&self) -> String {
        if self.is_at_end() {
            "the end of the line".to_owned()
        } else {
            quote_snippet(self.rest())
        }
    }

    #[inline]
    fn slice(&self, start: usize, end: usize) -> &'a str {
        let slice = self.line.get(start..end);
        debug_assert!(slice.is_some(), "{start}..{end} is not a char range");
        slice.unwrap_or_default()
    }

    /// Consumes `byte` (ASCII) if it is next.
    #[inline]
    pub(super) fn eat(&mut self, byte: u8) -> bool {
        debug_assert!(byte.is_ascii());
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    /// Consumes `prefix` (ASCII) if it is next.
    #[inline]
    pub(super) fn eat_str(&mut self, prefix: &str) -> bool {
        let found = self.rest().starts_with(prefix);
        if found {
            self.pos += prefix.len();
        }
        found
    }

    /// Skips spaces and tabs; returns how many.
    #[inline]
    pub(super) fn skip_blanks(&mut self) -> usize {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Takes bytes up to (not including) the first one for which `stop` holds (ASCII only), or
    /// to the end of the line.
    #[inline]
    pub(super) fn take_until(&mut self, stop: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        let bytes = self.line.as_bytes();
        self.pos = bytes
            .get(start..)
            .and_then(|rest| rest.iter().position(|&byte| stop(byte)))
            .map_or(bytes.len(), |offset| start + offset);
        self.slice(start, self.pos)
    }

    /// Takes a run of bytes of `class`; empty if the next byte is not of `initial`.
    #[inline]
    fn take_name(&mut self, initial: u8, with_colon: bool) -> &'a str {
        match self.peek() {
            Some(byte) if has_class(byte, initial) => {
                let start = self.pos;
                self.pos = name_end(self.line.as_bytes(), start + 1, with_colon);
                self.slice(start, self.pos)
            }
            _ => "",
        }
    }

    /// Whether a plain metric name starts here.
    #[inline]
    pub(super) fn at_metric_name(&self) -> bool {
        self.peek()
            .is_some_and(|byte| has_class(byte, METRIC_INITIAL))
    }

    /// Whether a plain label name starts here.
    #[inline]
    pub(super) fn at_label_name(&self) -> bool {
        self.peek()
            .is_some_and(|byte| has_class(byte, LABEL_INITIAL))
    }

    /// A plain metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`; empty if none starts here.
    #[inline]
    pub(super) fn plain_metric_name(&mut self) -> &'a str {
        self.take_name(METRIC_INITIAL, true)
    }

    /// A plain label name, `[a-zA-Z_][a-zA-Z0-9_]*`; empty if none starts here.
    #[inline]
    pub(super) fn plain_label_name(&mut self) -> &'a str {
        self.take_name(LABEL_INITIAL, false)
    }

    /// A metric name in a descriptor: plain, or quoted (Prometheus 3's UTF-8 names).
    pub(super) fn descriptor_name(&mut self) -> Result<Cow<'a, str>, String> {
        if self.peek() == Some(b'"') {
            let name = self.quoted()?;
            if name.is_empty() {
                return Err("empty quoted metric name".to_owned());
            }
            return Ok(name);
        }
        let name = self.plain_metric_name();
        if name.is_empty() {
            return Err(format!("expected a metric name, found {}", self.found()));
        }
        Ok(Cow::Borrowed(name))
    }

    /// A double-quoted string at the cursor, unescaped (`\\`, `\"`, `\n`; any other escape is
    /// kept verbatim). Borrows from the line unless it holds an escape.
    pub(super) fn quoted(&mut self) -> Result<Cow<'a, str>, String> {
        let opening = self.pos;
        if !self.eat(b'"') {
            return Err(format!("expected `\"`, found {}", self.found()));
        }
        let bytes = self.line.as_bytes();
        let start = self.pos;
        let mut idx = start;
        let mut has_escape = false;
        loop {
            let next = bytes
                .get(idx..)
                .and_then(|rest| find_first_of(rest, [b'"', b'\\']))
                .map(|offset| idx + offset);
            match next.and_then(|at| Some((at, *bytes.get(at)?))) {
                Some((at, b'"')) => {
                    idx = at;
                    break;
                }
                // An escape covers the next byte; a multi-byte character after it is walked
                // through, which is safe because only ASCII bytes stop the scan.
                Some((at, _)) => {
                    has_escape = true;
                    idx = at + 2;
                }
                None => return Err(unterminated(self.slice(opening, self.line.len()))),
            }
        }
        let raw = self.slice(start, idx);
        self.pos = idx + 1;
        Ok(if has_escape {
            unescape(raw, Escapes::Quoted)
        } else {
            Cow::Borrowed(raw)
        })
    }
}
