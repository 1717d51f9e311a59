//! Loading vigil's YAML config in two stages: raw serde structs, then validation that
//! reports every problem at once with its file, line and key path.
//!
//! Parsing takes `&str`; `bundle.rs` reads the files.

pub mod admin;
pub mod assistant;
pub mod autonomy;
pub mod console;
mod demand;
mod detectors;
pub mod heartbeat;
mod lines;
pub mod raw;
pub mod replication;
pub mod server;
pub mod topology;
mod validate;

use std::fmt;
use std::path::Path;

pub use lines::LineIndex;
pub use server::{ServerConfig, ServerTlsConfig};
pub use validate::{
    CheckpointConfig, Config, IntakeConfig, LedgerSetting, PagerConfig, QueryConfig,
};

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocatedProblem {
    /// The file.
    pub file: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
    /// The key path, when known.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LocatedProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        if !self.path.is_empty() {
            write!(f, "`{}`: ", self.path)?;
        }
        write!(f, "{}", self.message)
    }
}

/// Every problem found in one or more input files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems(pub Vec<LocatedProblem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.len();
        writeln!(f, "{count} problem{}:", if count == 1 { "" } else { "s" })?;
        for problem in &self.0 {
            writeln!(f, "  {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// Parses `text` (from `file`, for messages) as a `T`, locating a serde error by line.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, LocatedProblem> {
    serde_saphyr::from_str::<T>(text).map_err(|error| {
        let line = error.location().map(|location| location.line() as usize);
        LocatedProblem {
            file: file.to_owned(),
            line,
            path: String::new(),
            message: first_line(&error.to_string()),
        }
    })
}

/// serde-saphyr prefixes its message with `error: line N column M: ` and may append a source
/// snippet; the location is reported separately, so keep only the message itself.
fn first_line(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message).trim();
    let first = first.strip_prefix("error: ").unwrap_or(first);
    let without_location = first
        .strip_prefix("line ")
        .and_then(|rest| rest.split_once(": "))
        .map_or(first, |(_, message)| message);
    without_location.to_owned()
}

/// Attaches file and line to key-path problems of a validation.
#[must_use]
pub fn locate(file: &str, text: &str, problems: Vec<vigil_core::problem::Problem>) -> Problems {
    let index = LineIndex::new(text);
    Problems(
        problems
            .into_iter()
            .map(|problem| LocatedProblem {
                file: file.to_owned(),
                line: index.line_of(&problem.path),
                path: problem.path,
                message: problem.message,
            })
            .collect(),
    )
}

/// Parses and validates a config text; relative paths are resolved against `base_dir`.
pub fn parse(text: &str, file: &str, base_dir: &Path) -> Result<Config, Problems> {
    let raw: raw::RawConfig = parse_yaml(text, file).map_err(|problem| Problems(vec![problem]))?;
    validate::validate(raw, base_dir).map_err(|problems| locate(file, text, problems))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod anomaly_tests;
#[cfg(test)]
mod replication_tests;
