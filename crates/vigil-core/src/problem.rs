//! Validation problems: what is wrong with an input, and where.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One problem found while validating a config, runbook or policy input.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Problem {
    /// The key path of the offending value, for example `sources[0].url`.
    pub path: String,
    /// What is wrong, lowercase, user values in backticks.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Collects problems while a validation walks its input.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Records a problem.
    pub fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Problem::new(path, message));
    }

    /// Records every problem of another validation, prefixing their paths with `prefix`.
    pub fn extend_prefixed(&mut self, prefix: &str, problems: Vec<Problem>) {
        for problem in problems {
            let path = if problem.path.is_empty() {
                prefix.to_owned()
            } else if problem.path.starts_with('[') {
                format!("{prefix}{}", problem.path)
            } else {
                format!("{prefix}.{}", problem.path)
            };
            self.0.push(Problem {
                path,
                message: problem.message,
            });
        }
    }

    /// `Ok(value)` when nothing was recorded, else every problem.
    pub fn finish<T>(self, value: T) -> Result<T, Vec<Problem>> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }

    /// Whether nothing was recorded.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many problems were recorded: a validation compares it before and after a part
    /// to know whether that part was sound.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }
}
