//! What every refusal must look like: between 1 and `MAX_PROBLEMS` problems (more only
//! counted), each naming by its path a field of the body (or the place of a missing one),
//! with a short, printable, lowercase message; paths are printable too (odd keys are quoted
//! and escaped). A body that is not JSON gets exactly one problem, without a path, giving
//! the line and column.

use serde_json::Value;
use vigil_core::intake::{IntakeError, MAX_PROBLEMS};
use vigil_core::problem::Problem;

/// The longest message a problem may carry: messages quote at most a short excerpt of the
/// input, so a refusal's size does not grow with what it quotes.
pub const MAX_MESSAGE_CHARS: usize = 256;

/// Checks a refusal of `data`.
pub fn check(data: &[u8], error: &IntakeError) {
    assert!(!error.problems.is_empty(), "a refusal without a problem");
    assert!(error.problems.len() <= MAX_PROBLEMS, "{error}");
    assert!(
        error.omitted == 0 || error.problems.len() == MAX_PROBLEMS,
        "problems omitted before the list is full: {error:?}"
    );
    let _summary = error.to_string();
    let Ok(root) = serde_json::from_slice::<Value>(data) else {
        assert_eq!(error.problems.len(), 1, "{error:?}");
        assert_eq!(error.omitted, 0, "{error:?}");
        let problem = &error.problems[0];
        assert!(problem.path.is_empty(), "{problem:?}");
        assert!(
            problem.message.starts_with("invalid JSON at line "),
            "{problem:?}"
        );
        check_message(problem);
        return;
    };
    for problem in &error.problems {
        check_message(problem);
        if problem.path.is_empty() {
            // Only the body as a whole can be wrong without a path: it is not an object.
            assert!(
                !root.is_object(),
                "a problem without a path in an object body: {problem:?}"
            );
        } else {
            assert!(
                !problem.path.chars().any(char::is_control),
                "a control character in a path: {problem:?}"
            );
            assert!(
                locates(&root, &problem.path),
                "{problem:?} names no field of the body"
            );
        }
    }
}

fn check_message(problem: &Problem) {
    let message = &problem.message;
    assert!(!message.is_empty(), "{problem:?}");
    assert!(
        message.chars().count() <= MAX_MESSAGE_CHARS,
        "a message of {} characters: {problem:?}",
        message.chars().count()
    );
    assert!(
        !message.chars().any(char::is_control),
        "a control character in a message: {problem:?}"
    );
    assert!(
        !message.starts_with(|ch: char| ch.is_ascii_uppercase()) && !message.ends_with('.'),
        "messages are lowercase without a final period: {problem:?}"
    );
}

/// One step of a path.
enum Step {
    Key(String),
    Index(usize),
}

fn is_plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|ch| ch.is_alphanumeric() || ch == '_' || ch == '-')
}

/// Reads the first step of `path`: `key` (at the start), `.key`, `[3]` or `["any key"]`;
/// `None` when the path is malformed, or quotes a key that needs no quotes (each field has
/// one path).
fn step(path: &str, at_start: bool) -> Option<(Step, &str)> {
    if path.starts_with("[\"") {
        let mut stream = serde_json::Deserializer::from_str(&path[1..]).into_iter::<String>();
        let key = stream.next()?.ok()?;
        let rest = path[1 + stream.byte_offset()..].strip_prefix(']')?;
        return (!is_plain(&key)).then_some((Step::Key(key), rest));
    }
    if let Some(rest) = path.strip_prefix('[') {
        let (digits, rest) = rest.split_once(']')?;
        if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        return Some((Step::Index(digits.parse().ok()?), rest));
    }
    let rest = if at_start {
        path
    } else {
        path.strip_prefix('.')?
    };
    let end = rest
        .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch == '-'))
        .unwrap_or(rest.len());
    let (key, rest) = rest.split_at(end);
    is_plain(key).then(|| (Step::Key(key.to_owned()), rest))
}

/// Whether `path` (`results[3].passed`, `labels["a.b"]`) names a node of `root`, or a missing
/// field of an object in it (only the last step may be missing).
fn locates(root: &Value, path: &str) -> bool {
    let mut node = root;
    let mut rest = path;
    let mut at_start = true;
    while !rest.is_empty() {
        let Some((step, after)) = step(rest, at_start) else {
            return false;
        };
        at_start = false;
        rest = after;
        let next = match step {
            Step::Index(idx) => node.as_array().and_then(|items| items.get(idx)),
            Step::Key(key) => match node.as_object() {
                Some(map) => match map.get(&key) {
                    Some(child) => Some(child),
                    None => return rest.is_empty(),
                },
                None => None,
            },
        };
        match next {
            Some(child) => node = child,
            None => return false,
        }
    }
    true
}
