//! The crate's error type and the located problems it carries.

use std::fmt;

/// A position in a text, both counted from 1. The column counts characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SourceLocation {
    /// The line, from 1.
    pub line: usize,
    /// The column within the line, in characters, from 1.
    pub column: usize,
}

impl SourceLocation {
    /// The location of byte `offset` in `text`. An offset past the end points just after the
    /// last character; an offset inside a multi-byte character points at that character.
    #[must_use]
    pub fn of_offset(text: &str, offset: usize) -> SourceLocation {
        let mut location = SourceLocation { line: 1, column: 1 };
        for (index, character) in text.char_indices() {
            if index >= offset {
                break;
            }
            if character == '\n' {
                location.line += 1;
                location.column = 1;
            } else {
                location.column += 1;
            }
        }
        location
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.line, self.column)
    }
}

/// One thing wrong with a schema, a policy file or a test file, and where it is.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Problem {
    /// The path of the file, as the caller named it in [`PolicyFile::path`](crate::PolicyFile).
    pub path: String,
    /// Where in the file, when it is known.
    pub location: Option<SourceLocation>,
    /// What is wrong, in Cedar's words where Cedar found it.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(location) => write!(formatter, "`{}:{location}`: {}", self.path, self.message),
            None => write!(formatter, "`{}`: {}", self.path, self.message),
        }
    }
}

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The schema or policies were rejected; nothing was loaded. Lists every problem found.
    #[error("policy set rejected with {} problem(s):{}", problems.len(), Problems(problems))]
    InvalidPolicySet {
        /// Every problem, sorted by file and location.
        problems: Vec<Problem>,
    },
    /// A policy test file could not be read as a list of test cases.
    #[error("invalid policy test file {problem}")]
    InvalidTestCases {
        /// What is wrong and where.
        problem: Problem,
    },
}

/// Renders a list of problems one per indented line, for [`PolicyError`]'s message.
struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        for problem in self.0 {
            write!(formatter, "\n  {problem}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_become_lines_and_character_columns() {
        let text = "ab\ncé\nd";
        assert_eq!(
            SourceLocation::of_offset(text, 0),
            SourceLocation { line: 1, column: 1 }
        );
        assert_eq!(
            SourceLocation::of_offset(text, 3),
            SourceLocation { line: 2, column: 1 }
        );
        // `é` is two bytes; `\n` after it is at byte 6 and column 3.
        assert_eq!(
            SourceLocation::of_offset(text, 6),
            SourceLocation { line: 2, column: 3 }
        );
        assert_eq!(
            SourceLocation::of_offset(text, 7),
            SourceLocation { line: 3, column: 1 }
        );
        assert_eq!(
            SourceLocation::of_offset(text, 99),
            SourceLocation { line: 3, column: 2 }
        );
    }

    #[test]
    fn problems_render_with_path_and_location() {
        let error = PolicyError::InvalidPolicySet {
            problems: vec![
                Problem {
                    path: "a.cedar".to_owned(),
                    location: Some(SourceLocation { line: 3, column: 7 }),
                    message: "unexpected token".to_owned(),
                },
                Problem {
                    path: "b.cedar".to_owned(),
                    location: None,
                    message: "oops".to_owned(),
                },
            ],
        };
        assert_eq!(
            error.to_string(),
            "policy set rejected with 2 problem(s):\n  `a.cedar:3:7`: unexpected token\n  `b.cedar`: oops"
        );
    }
}
