//! Text from outside (a name, a reason, a label value, a URL path) made safe to put in a log
//! line: control characters (newlines above all, which would forge a second line), ANSI escape
//! sequences and bidirectional overrides are escaped, and the text is cut at a length.
//!
//! Use `%Escaped(text)` (or [`escaped`]) for every user-supplied string in a `tracing` field.

use std::fmt;

/// The most characters of one value a log line shows.
pub const MAX_LOGGED_CHARS: usize = 512;

/// Displays its text with control and bidi characters escaped (`\n`, `\u{1b}`), cut at
/// [`MAX_LOGGED_CHARS`] with `…`.
#[derive(Clone, Copy, Debug)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (shown, character) in self.0.chars().enumerate() {
            if shown == MAX_LOGGED_CHARS {
                return formatter.write_str("…");
            }
            if needs_escape(character) {
                for escaped in character.escape_default() {
                    fmt::Write::write_char(formatter, escaped)?;
                }
            } else {
                fmt::Write::write_char(formatter, character)?;
            }
        }
        Ok(())
    }
}

/// The text, escaped, as a `String`.
#[must_use]
pub fn escaped(text: &str) -> String {
    Escaped(text).to_string()
}

fn needs_escape(character: char) -> bool {
    character.is_control()
        || matches!(
            character,
            '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    // A newline in an admin `by` or `reason` field wrote a forged log line.
    #[test]
    fn newlines_escapes_and_overrides_cannot_reach_the_log_raw() {
        let forged =
            "alice\n2026-12-03T10:00:00Z  INFO vigil: approved by admin\r\u{1b}[31mred\u{202e}";
        let shown = escaped(forged);
        assert!(
            !shown.contains(['\n', '\r', '\u{1b}', '\u{202e}']),
            "{shown}"
        );
        assert_eq!(
            shown,
            "alice\\n2026-12-03T10:00:00Z  INFO vigil: approved by admin\\r\\u{1b}[31mred\\u{202e}"
        );
        assert_eq!(escaped("Zoë's reason: ok"), "Zoë's reason: ok");
        // Label values keep their quotes; C1 controls and DEL are escaped too.
        assert_eq!(escaped(r#"m{prompt="é \"x\""}"#), r#"m{prompt="é \"x\""}"#);
        assert_eq!(
            escaped("\r\t\u{1b}[31m\u{7f}\u{85}"),
            "\\r\\t\\u{1b}[31m\\u{7f}\\u{85}"
        );
        let long = "x".repeat(MAX_LOGGED_CHARS + 10);
        assert_eq!(escaped(&long).chars().count(), MAX_LOGGED_CHARS + 1);
    }
}
