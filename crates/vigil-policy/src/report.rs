//! Rendering Cedar's errors for people: located [`Problem`]s for files, full cause chains for requests.

use miette::Diagnostic;

use crate::error::{Problem, SourceLocation};

/// One problem for `diagnostic` and one for each diagnostic related to it. Cedar reports
/// several parse errors as one diagnostic whose related diagnostics are the rest.
pub(crate) fn diagnostic_problems(
    path: &str,
    text: &str,
    diagnostic: &dyn Diagnostic,
) -> Vec<Problem> {
    let mut problems = vec![diagnostic_problem(path, text, diagnostic)];
    if let Some(related) = diagnostic.related() {
        problems.extend(related.map(|related| diagnostic_problem(path, text, related)));
    }
    problems
}

/// The problem for one diagnostic, located at its first labelled span.
fn diagnostic_problem(path: &str, text: &str, diagnostic: &dyn Diagnostic) -> Problem {
    let location = diagnostic
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| SourceLocation::of_offset(text, label.offset()));
    let message = match diagnostic.help() {
        Some(help) => format!("{diagnostic} (help: {help})"),
        None => diagnostic.to_string(),
    };
    Problem {
        path: path.to_owned(),
        location,
        message,
    }
}

/// A problem with a plain message at an optional byte offset of `text`.
pub(crate) fn problem_at(
    path: &str,
    text: &str,
    offset: Option<usize>,
    message: String,
) -> Problem {
    Problem {
        path: path.to_owned(),
        location: offset.map(|offset| SourceLocation::of_offset(text, offset)),
        message,
    }
}

/// A problem with a plain message and no location in the file.
pub(crate) fn problem(path: &str, message: String) -> Problem {
    Problem {
        path: path.to_owned(),
        location: None,
        message,
    }
}

/// `error` and its causes, joined by `: `. Cedar wraps details in outer errors whose own
/// message is only a summary ("entity does not conform to the schema"); the causes say what
/// is actually wrong. A cause that repeats the message before it is skipped.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut previous = text.clone();
    let mut cause = error.source();
    while let Some(current) = cause {
        let message = current.to_string();
        if message != previous {
            text.push_str(": ");
            text.push_str(&message);
        }
        previous = message;
        cause = current.source();
    }
    text
}
