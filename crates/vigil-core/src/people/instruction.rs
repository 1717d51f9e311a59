//! Reading a person's instruction as the admin API receives it: `POST /v1/admin/human` with
//! `{"reason": "...", "command": {...}}` (and optionally `"by"`, which must then name the
//! authenticated principal). Untrusted input: every problem is reported with its field path,
//! strings are bounded and free of control characters where they name things, and nothing
//! here can panic whatever the bytes (`fuzz/fuzz_targets/admin_instruction.rs`).

use serde_json::{Map, Value};

use super::HumanCommand;
use super::MAX_NAME_CHARS;
use crate::intake::IntakeError;
use crate::intake::json::{MAX_PROBLEMS, describe, join, parse};
use crate::problem::Problem;

/// The largest instruction body accepted, in bytes.
pub const MAX_INSTRUCTION_BYTES: usize = 64 * 1024;

/// The longest id (proposal, silence, runbook, target, detector, subject), in characters.
const MAX_ID_CHARS: usize = 256;

/// How long the free text may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InstructionLimits {
    /// The longest `reason`, in characters.
    pub max_reason_chars: usize,
}

/// A person's instruction, as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    /// The name the client says it acts for, if it said one; the admin API refuses one that
    /// is not the authenticated principal's.
    pub by: Option<String>,
    /// Why, in their words (may be empty; the engine requires one where it matters).
    pub reason: String,
    /// What.
    pub command: HumanCommand,
}

/// Parses and checks an instruction body.
///
/// # Errors
///
/// Every problem found, each with the path of the field (`command.expires_at`), at most
/// [`MAX_PROBLEMS`] listed.
pub fn parse_instruction(
    body: &[u8],
    limits: &InstructionLimits,
) -> Result<Instruction, IntakeError> {
    if body.len() > MAX_INSTRUCTION_BYTES {
        return Err(IntakeError::single(
            "",
            format!("the instruction is larger than {MAX_INSTRUCTION_BYTES} bytes"),
        ));
    }
    let value = parse(body)?;
    let Value::Object(map) = value else {
        return Err(IntakeError::single(
            "",
            format!("must be a JSON object, found {}", describe(&value)),
        ));
    };
    let mut problems = Vec::new();
    for key in map.keys() {
        if !matches!(key.as_str(), "by" | "reason" | "command") {
            problems.push(Problem::new(
                join("", key),
                "unknown field; an instruction has `reason`, `command` and optionally `by`",
            ));
        }
    }
    let by = match map.get("by") {
        None | Some(Value::Null) => None,
        Some(Value::String(by)) => {
            if by.chars().count() > MAX_NAME_CHARS || by.chars().any(char::is_control) {
                problems.push(Problem::new(
                    "by",
                    format!("must be a name of at most {MAX_NAME_CHARS} printable characters"),
                ));
            }
            Some(by.clone())
        }
        Some(other) => {
            problems.push(Problem::new(
                "by",
                format!("must be a string, found {}", describe(other)),
            ));
            None
        }
    };
    let reason = match map.get("reason") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(reason)) => {
            if reason.chars().count() > limits.max_reason_chars {
                problems.push(Problem::new(
                    "reason",
                    format!(
                        "must be at most {} characters (admin.max_reason_chars)",
                        limits.max_reason_chars
                    ),
                ));
            }
            reason.clone()
        }
        Some(other) => {
            problems.push(Problem::new(
                "reason",
                format!("must be a string, found {}", describe(other)),
            ));
            String::new()
        }
    };
    let command = match map.get("command") {
        Some(Value::Object(command)) => {
            check_command(command, &mut problems);
            match serde_json::from_value::<HumanCommand>(Value::Object(command.clone())) {
                Ok(command) => Some(command),
                Err(error) => {
                    if problems
                        .iter()
                        .all(|problem| !problem.path.starts_with("command"))
                    {
                        problems.push(Problem::new("command", printable(&error.to_string())));
                    }
                    None
                }
            }
        }
        Some(other) => {
            problems.push(Problem::new(
                "command",
                format!("must be an object, found {}", describe(other)),
            ));
            None
        }
        None => {
            problems.push(Problem::new("command", "is missing"));
            None
        }
    };
    match command {
        Some(command) if problems.is_empty() => Ok(Instruction {
            by,
            reason,
            command,
        }),
        _ => {
            let omitted = problems.len().saturating_sub(MAX_PROBLEMS);
            problems.truncate(MAX_PROBLEMS);
            Err(IntakeError { problems, omitted })
        }
    }
}

/// The checks serde does not make: ids are bounded printable text, a hash is 64 hex digits,
/// a time is positive.
fn check_command(command: &Map<String, Value>, problems: &mut Vec<Problem>) {
    let path = |key: &str| join("command", key);
    for key in ["proposal_id", "silence_id", "detector", "subject"] {
        if let Some(Value::String(text)) = command.get(key) {
            check_id(&path(key), text, problems);
        }
    }
    if let Some(Value::String(hash)) = command.get("action_hash") {
        let is_hash = hash.len() == 64
            && hash
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if !is_hash {
            problems.push(Problem::new(
                path("action_hash"),
                "must be 64 lowercase hex digits, as `vigil proposals` shows",
            ));
        }
    }
    if let Some(expires_at) = command.get("expires_at")
        && expires_at.as_i64().is_none_or(|millis| millis <= 0)
    {
        problems.push(Problem::new(
            path("expires_at"),
            "must be a time in milliseconds since the Unix epoch",
        ));
    }
    if let Some(Value::Object(scope)) = command.get("scope")
        && let Some(Value::String(id)) = scope.get("id")
    {
        check_id(&join(&path("scope"), "id"), id, problems);
    }
}

fn check_id(path: &str, text: &str, problems: &mut Vec<Problem>) {
    if text.chars().count() > MAX_ID_CHARS || text.chars().any(char::is_control) {
        problems.push(Problem::new(
            path,
            format!("must be at most {MAX_ID_CHARS} printable characters"),
        ));
    }
}

/// The longest message a problem carries; serde's messages quote what the client sent.
const MAX_MESSAGE_CHARS: usize = 200;

/// A message that may quote the client's text (serde's "unknown variant"), with control
/// characters escaped and cut to [`MAX_MESSAGE_CHARS`].
fn printable(message: &str) -> String {
    let mut shown = String::new();
    let mut n_shown = 0;
    for character in message.chars() {
        // Counted as shown, escapes included: `\u{7f}` is seven characters of the message.
        let piece: String = if character.is_control() {
            character.escape_default().collect()
        } else {
            character.to_string()
        };
        n_shown += piece.chars().count();
        if n_shown > MAX_MESSAGE_CHARS {
            shown.push('…');
            break;
        }
        shown.push_str(&piece);
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::people::KillScope;
    use crate::time::Timestamp;

    const LIMITS: InstructionLimits = InstructionLimits {
        max_reason_chars: 20,
    };

    fn problems(body: &str) -> Vec<String> {
        match parse_instruction(body.as_bytes(), &LIMITS) {
            Ok(instruction) => panic!("accepted: {instruction:?}"),
            Err(error) => error.problems.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn each_command_parses() {
        let hash = "a".repeat(64);
        let cases = [
            (
                format!(r#"{{"reason": "ok", "command": {{"command": "approve", "proposal_id": "inc-1/proposal-1", "action_hash": "{hash}"}}}}"#),
                HumanCommand::Approve {
                    proposal_id: "inc-1/proposal-1".to_owned(),
                    action_hash: hash.clone(),
                },
            ),
            (
                r#"{"command": {"command": "kill", "scope": {"scope": "target", "entity_type": "ApiKey", "id": "k1"}}}"#.to_owned(),
                HumanCommand::Kill {
                    scope: KillScope::Target {
                        entity_type: crate::authz::EntityType::ApiKey,
                        id: "k1".to_owned(),
                    },
                },
            ),
            (
                r#"{"by": "bob", "reason": "x", "command": {"command": "silence", "silence_id": "s", "detector": "d", "subject": null, "expires_at": 1800000000000}}"#.to_owned(),
                HumanCommand::Silence {
                    silence_id: "s".to_owned(),
                    detector: Some("d".to_owned()),
                    subject: None,
                    expires_at: Timestamp(1_800_000_000_000),
                },
            ),
        ];
        for (body, expected) in cases {
            let instruction = parse_instruction(body.as_bytes(), &LIMITS).unwrap();
            assert_eq!(instruction.command, expected);
        }
    }

    #[test]
    fn every_problem_is_named_by_its_field() {
        expect_test::expect![[r#"
            nope: unknown field; an instruction has `reason`, `command` and optionally `by`
            by: must be a name of at most 256 printable characters
            reason: must be at most 20 characters (admin.max_reason_chars)
            command.proposal_id: must be at most 256 printable characters
            command.action_hash: must be 64 lowercase hex digits, as `vigil proposals` shows"#]]
        .assert_eq(
            &problems(
                r#"{"nope": 1, "by": "bob\nINFO forged", "reason": "this reason is far too long", "command": {"command": "approve", "proposal_id": "a\u0007b", "action_hash": "xyz"}}"#,
            )
            .join("\n"),
        );
        expect_test::expect![[r#"
            command: unknown variant `nuke`, expected one of `approve`, `reject`, `kill`, `unkill`, `silence`, `unsilence`"#]]
        .assert_eq(&problems(r#"{"command": {"command": "nuke"}}"#).join("\n"));
        assert_eq!(problems("[]"), ["must be a JSON object, found an array"]);
        // Found by fuzz/fuzz_targets/admin_instruction.rs: serde quotes an unknown command
        // whole, and its escaped control characters made a message of 716 characters.
        let quoted = problems(&format!(
            r#"{{"command": {{"command": "{}"}}}}"#,
            "\\u007f".repeat(100)
        ));
        assert!(
            quoted[0].chars().count() <= "command: ".len() + MAX_MESSAGE_CHARS + 1,
            "{quoted:?}"
        );
        assert!(!quoted[0].chars().any(char::is_control), "{quoted:?}");
        assert_eq!(problems("{}"), ["command: is missing"]);
        assert_eq!(
            problems(r#"{"command": {"command": "silence", "silence_id": "s", "expires_at": -5}}"#),
            ["command.expires_at: must be a time in milliseconds since the Unix epoch"]
        );
        let big = format!(r#"{{"reason": "{}"}}"#, "x".repeat(MAX_INSTRUCTION_BYTES));
        assert_eq!(
            problems(&big),
            ["the instruction is larger than 65536 bytes"]
        );
    }
}
