//! The parser of series selectors as PromQL writes them:
//! `litellm_total_tokens_metric_total{hashed_api_key!="",team=~"search|ml"}`,
//! `{__name__="x"}`, or (Prometheus 3) `{"metric.with.dots", "label.name"="v"}`.
//!
//! Strings take double quotes, single quotes (both with Go's escapes) or backticks (raw).
//! As in Prometheus, a selector must name a metric or have a matcher that does not match the
//! empty string, so that it cannot select everything by accident.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::matcher::{METRIC_NAME_LABEL, MatchOp, Matcher};

/// Why a selector did not parse. Positions are byte offsets into the selector, from 0.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The selector is empty or blank.
    #[error("empty selector")]
    Empty,
    /// Something other than what the grammar allows.
    #[error("at offset {position}: expected {expected}, found {found}")]
    Unexpected {
        /// Where.
        position: usize,
        /// What would have been valid there.
        expected: &'static str,
        /// What was there, quoted, or `end of input`.
        found: String,
    },
    /// A string without its closing quote.
    #[error("at offset {position}: unterminated string")]
    UnterminatedString {
        /// Where the string opens.
        position: usize,
    },
    /// An escape sequence a string may not contain.
    #[error("at offset {position}: invalid escape `{escape}`")]
    InvalidEscape {
        /// Where the escape starts.
        position: usize,
        /// The escape as written.
        escape: String,
    },
    /// A regular expression that does not compile.
    #[error("at offset {position}: invalid regular expression for label `{label}`: {message}")]
    InvalidRegex {
        /// Where the expression's string starts (0 for a matcher built in code).
        position: usize,
        /// The label it was for.
        label: String,
        /// What is wrong with it.
        message: String,
    },
    /// The metric name given both before the braces and as `__name__` (or twice inside).
    #[error("at offset {position}: the metric name is set twice")]
    NameSetTwice {
        /// Where the second name is.
        position: usize,
    },
    /// Every matcher also matches the empty string, so the selector would select everything.
    #[error(
        "selector `{selector}` must name a metric or have a matcher that does not match the empty string"
    )]
    MatchesEverything {
        /// The selector as given.
        selector: String,
    },
    /// A selector that parses but does not name one metric exactly (a [`Selector`] must).
    #[error("selector `{selector}` must start with a metric name")]
    NoMetricName {
        /// The selector as given.
        selector: String,
    },
}

/// A selector that parsed and names its metric: the text as written, its matchers and the
/// metric name. Detector configs hold these, so an engine never meets a selector that does
/// not parse. It is written (and recorded in ledgers) as its text, and reading it back parses
/// the text again, so a `Selector` holds a parsed selector whatever its origin.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Selector {
    text: String,
    matchers: Vec<Matcher>,
    metric_name: String,
}

impl Selector {
    /// Parses `text`.
    ///
    /// # Errors
    /// When it does not parse ([`parse_selector`]), or does not name one metric exactly
    /// ([`SelectorError::NoMetricName`]).
    pub fn parse(text: impl Into<String>) -> Result<Self, SelectorError> {
        let text = text.into();
        let matchers = parse_selector(&text)?;
        let Some(metric_name) = metric_name_of(&matchers) else {
            return Err(SelectorError::NoMetricName { selector: text });
        };
        Ok(Selector {
            text,
            matchers,
            metric_name,
        })
    }

    /// The selector as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Its matchers, the metric name first.
    #[must_use]
    pub fn matchers(&self) -> &[Matcher] {
        &self.matchers
    }

    /// The metric it selects.
    #[must_use]
    pub fn metric_name(&self) -> &str {
        &self.metric_name
    }

    /// The same selector restricted to series whose `label` is set and not empty (a
    /// `label!=""` matcher added), unless it already matches on `label`: what a detector
    /// grouped by `label` reads, so that series naming no group make no group `""`.
    #[must_use]
    pub fn requiring_label(&self, label: &str) -> Selector {
        if self.matchers.iter().any(|matcher| matcher.label() == label) {
            return self.clone();
        }
        let text = self.text.trim_end();
        let text = match text.strip_suffix('}') {
            Some(open) if open.trim_end().ends_with('{') => format!("{open}{label}!=\"\"}}"),
            Some(open) => format!("{open},{label}!=\"\"}}"),
            None => format!("{text}{{{label}!=\"\"}}"),
        };
        // A label that is not a label name cannot make a selector; keep the one that was.
        Selector::parse(text).unwrap_or_else(|_| self.clone())
    }
}

impl PartialEq for Selector {
    /// Two selectors are equal when they are written alike.
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

impl TryFrom<String> for Selector {
    type Error = SelectorError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        Selector::parse(text)
    }
}

impl From<Selector> for String {
    fn from(selector: Selector) -> Self {
        selector.text
    }
}

/// The metric name matchers require exactly, if any.
fn metric_name_of(matchers: &[Matcher]) -> Option<String> {
    matchers
        .iter()
        .find(|matcher| matcher.label() == METRIC_NAME_LABEL && matcher.op() == MatchOp::Equal)
        .map(|matcher| matcher.value().to_owned())
}

/// The metric name a selector requires (`name{...}` or `{"name", ...}`), if it names one
/// exactly and parses.
#[must_use]
pub fn selector_metric_name(input: &str) -> Option<String> {
    metric_name_of(&parse_selector(input).ok()?)
}

/// Parses `input` into matchers, the metric name first (as a [`METRIC_NAME_LABEL`] matcher).
pub fn parse_selector(input: &str) -> Result<Vec<Matcher>, SelectorError> {
    let mut parser = Parser { input, pos: 0 };
    parser.skip_whitespace();
    if parser.peek().is_none() {
        return Err(SelectorError::Empty);
    }
    let mut name: Option<String> = None;
    if parser.peek().is_some_and(is_metric_name_start) {
        name = Some(parser.identifier(true));
    }
    parser.skip_whitespace();
    let mut matchers = Vec::new();
    if parser.eat('{') {
        parser.braces(&mut name, &mut matchers)?;
    } else if name.is_none() {
        return Err(parser.unexpected("a metric name or `{`"));
    }
    parser.skip_whitespace();
    if parser.peek().is_some() {
        return Err(parser.unexpected("the end of the selector"));
    }
    if let Some(name) = name {
        matchers.insert(0, Matcher::metric_name(name));
    }
    if matchers.iter().all(|matcher| matcher.matches("")) {
        return Err(SelectorError::MatchesEverything {
            selector: input.to_owned(),
        });
    }
    Ok(matchers)
}

struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

fn is_metric_name_start(ch: char) -> bool {
    ch.is_ascii_alphabetic() || ch == '_' || ch == ':'
}

fn is_label_name_start(ch: char) -> bool {
    ch.is_ascii_alphabetic() || ch == '_'
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.input.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let ch = self.peek()?;
        self.pos += ch.len_utf8();
        Some(ch)
    }

    fn eat(&mut self, expected: char) -> bool {
        let found = self.peek() == Some(expected);
        if found {
            self.pos += expected.len_utf8();
        }
        found
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn unexpected(&self, expected: &'static str) -> SelectorError {
        SelectorError::Unexpected {
            position: self.pos,
            expected,
            found: match self.peek() {
                Some(ch) => format!("`{ch}`"),
                None => "end of input".to_owned(),
            },
        }
    }

    /// A metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`) or label name (no `:`); the caller has
    /// checked the first character.
    fn identifier(&mut self, metric: bool) -> String {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|ch| ch.is_ascii_alphanumeric() || ch == '_' || (metric && ch == ':'))
        {
            self.bump();
        }
        self.input.get(start..self.pos).unwrap_or("").to_owned()
    }

    /// The matchers between `{` (consumed) and `}`.
    fn braces(
        &mut self,
        name: &mut Option<String>,
        matchers: &mut Vec<Matcher>,
    ) -> Result<(), SelectorError> {
        loop {
            self.skip_whitespace();
            if self.eat('}') {
                return Ok(());
            }
            let label_start = self.pos;
            let (label, quoted) = match self.peek() {
                Some('"' | '\'' | '`') => (self.string()?, true),
                Some(ch) if is_label_name_start(ch) => (self.identifier(false), false),
                _ => return Err(self.unexpected("a label name or `}`")),
            };
            self.skip_whitespace();
            if quoted && matches!(self.peek(), Some(',' | '}')) {
                // A lone quoted string is the metric name (Prometheus 3's UTF-8 names).
                if name.is_some() || has_name_matcher(matchers) {
                    return Err(SelectorError::NameSetTwice {
                        position: label_start,
                    });
                }
                *name = Some(label);
            } else {
                let op = self.operator()?;
                self.skip_whitespace();
                let value_start = self.pos;
                if !matches!(self.peek(), Some('"' | '\'' | '`')) {
                    return Err(self.unexpected("a quoted label value"));
                }
                let value = self.string()?;
                // Several `__name__` matchers may narrow each other, but not a given name.
                if label == METRIC_NAME_LABEL && name.is_some() {
                    return Err(SelectorError::NameSetTwice {
                        position: label_start,
                    });
                }
                let matcher = Matcher::new(label, op, value).map_err(|error| match error {
                    SelectorError::InvalidRegex { label, message, .. } => {
                        SelectorError::InvalidRegex {
                            position: value_start,
                            label,
                            message,
                        }
                    }
                    other => other,
                })?;
                matchers.push(matcher);
            }
            self.skip_whitespace();
            if self.eat(',') {
                continue;
            }
            if self.eat('}') {
                return Ok(());
            }
            return Err(self.unexpected("`,` or `}`"));
        }
    }

    fn operator(&mut self) -> Result<MatchOp, SelectorError> {
        let op = if self.rest().starts_with("=~") {
            MatchOp::RegexMatch
        } else if self.rest().starts_with("!=") {
            MatchOp::NotEqual
        } else if self.rest().starts_with("!~") {
            MatchOp::RegexNoMatch
        } else if self.rest().starts_with('=') {
            MatchOp::Equal
        } else {
            return Err(self.unexpected("`=`, `!=`, `=~` or `!~`"));
        };
        self.pos += op.as_str().len();
        Ok(op)
    }

    /// A quoted string starting at the current position, unescaped.
    fn string(&mut self) -> Result<String, SelectorError> {
        let start = self.pos;
        let Some(quote) = self.bump() else {
            return Err(self.unexpected("a quoted string"));
        };
        let mut text = String::new();
        loop {
            let ch_start = self.pos;
            match self.bump() {
                None => return Err(SelectorError::UnterminatedString { position: start }),
                Some(ch) if ch == quote => return Ok(text),
                Some('\n') if quote != '`' => {
                    return Err(SelectorError::UnterminatedString { position: start });
                }
                Some('\\') if quote != '`' => text.push(self.escape(ch_start)?),
                Some(ch) => text.push(ch),
            }
        }
    }

    /// The character an escape stands for; the backslash at `start` is consumed.
    fn escape(&mut self, start: usize) -> Result<char, SelectorError> {
        let invalid = |parser: &Self| SelectorError::InvalidEscape {
            position: start,
            escape: parser
                .input
                .get(start..parser.pos)
                .unwrap_or("\\")
                .to_owned(),
        };
        let Some(ch) = self.bump() else {
            return Err(SelectorError::UnterminatedString { position: start });
        };
        let simple = match ch {
            'a' => Some('\u{7}'),
            'b' => Some('\u{8}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            '\\' | '"' | '\'' => Some(ch),
            _ => None,
        };
        if let Some(simple) = simple {
            return Ok(simple);
        }
        let (n_digits, radix) = match ch {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            _ => return Err(invalid(self)),
        };
        let mut code = if radix == 8 {
            ch.to_digit(8).unwrap_or(0)
        } else {
            0
        };
        for _ in 0..n_digits {
            let Some(digit) = self.peek().and_then(|next| next.to_digit(radix)) else {
                self.bump();
                return Err(invalid(self));
            };
            self.bump();
            code = code * radix + digit;
        }
        // `\x` and octal escapes are single bytes: only ASCII makes valid UTF-8 on its own.
        let is_byte = matches!(ch, 'x' | '0'..='7');
        match char::from_u32(code) {
            Some(decoded) if !is_byte || decoded.is_ascii() => Ok(decoded),
            _ => Err(invalid(self)),
        }
    }
}

fn has_name_matcher(matchers: &[Matcher]) -> bool {
    matchers
        .iter()
        .any(|matcher| matcher.label() == METRIC_NAME_LABEL)
}
