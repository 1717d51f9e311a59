//! What vigil shows people as documents: the period report as text and as a self-contained
//! HTML page (`vigil report`), and the HTML escaping every page uses.
//!
//! Pure functions of their input: no I/O, so the same report renders the same bytes.

pub mod console;
pub mod report;

/// `text` escaped for HTML text and for attribute values in double or single quotes: `&`,
/// `<`, `>`, `"` and `'` become character references, so that nothing a person or a
/// detector wrote (a reason, a label, a prompt's name) is ever read as markup.
#[must_use]
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_html;

    #[test]
    fn markup_and_quotes_are_escaped_and_the_rest_kept() {
        assert_eq!(
            escape_html(r#"<script>alert("x")</script> & 'y' é"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39; é"
        );
        assert_eq!(escape_html(""), "");
    }
}
