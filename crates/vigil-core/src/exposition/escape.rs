//! Undoing the escapes of quoted strings and HELP texts.

use std::borrow::Cow;

/// Which escapes a piece of text knows. An escape it does not know is kept verbatim, backslash
/// and all, as the OpenMetrics ABNF (`BS normal-char`) and Prometheus' parsers do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Escapes {
    /// Label values and quoted names: `\\`, `\"`, `\n`.
    Quoted,
    /// Text-format HELP: `\\` and `\n` only (`\"` stays as written).
    TextHelp,
    /// OpenMetrics HELP: `\\`, `\"`, `\n`.
    OpenMetricsHelp,
}

/// `text` with its escapes undone; borrowed when it has none.
pub(super) fn unescape(text: &str, escapes: Escapes) -> Cow<'_, str> {
    if !text.contains('\\') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        if ch != '\\' {
            out.push(ch);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if escapes != Escapes::TextHelp => out.push('"'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            // Only HELP text can end in a lone backslash (a quoted string would not have
            // ended there); it stays.
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}
