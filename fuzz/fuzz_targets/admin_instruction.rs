//! Fuzzes `parse_instruction` (the body of `POST /v1/admin/human`: a person's approval,
//! rejection, kill switch or silence) with arbitrary bytes and checks what must always hold:
//!
//! - parsing never panics, and takes time about linear in the input (libFuzzer's `-timeout`);
//! - a refusal has 1 to `MAX_PROBLEMS` problems, each naming a field of the body (or where a
//!   missing one belongs) with a short, printable, lowercase message (`vigil_fuzz::problems`),
//!   even where it quotes what the client sent (an unknown command);
//! - an accepted instruction is an object of at most `by`, `reason` and `command`; `by` and
//!   `reason` are what the JSON said (an absent or null reason is empty), the reason within
//!   its limit, `by` a bounded name without control characters;
//! - every id the command names is at most 256 printable characters, an approval's hash is 64
//!   lowercase hex digits, a silence's end a positive time;
//! - written back as a body, it parses to the same instruction.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use vigil_core::people::{
    HumanCommand, Instruction, InstructionLimits, KillScope, parse_instruction,
};

const LIMITS: InstructionLimits = InstructionLimits {
    max_reason_chars: 1000,
};

fuzz_target!(|data: &[u8]| {
    match parse_instruction(data, &LIMITS) {
        Err(error) => vigil_fuzz::problems::check(data, &error),
        Ok(instruction) => {
            check_against_input(data, &instruction);
            check_bounds(&instruction);
            let again = parse_instruction(&written_back(&instruction), &LIMITS);
            assert_eq!(
                again.as_ref(),
                Ok(&instruction),
                "written back, the instruction parses differently"
            );
        }
    }
});

fn check_against_input(data: &[u8], instruction: &Instruction) {
    let root: Value = serde_json::from_slice(data).expect("accepted, so JSON");
    let root = root.as_object().expect("accepted, so an object");
    assert!(
        root.keys()
            .all(|key| matches!(key.as_str(), "by" | "reason" | "command")),
        "an unknown field was accepted: {root:?}"
    );
    let reason = root
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert_eq!(instruction.reason, reason);
    assert!(instruction.reason.chars().count() <= LIMITS.max_reason_chars);
    assert_eq!(
        instruction.by.as_deref(),
        root.get("by").and_then(Value::as_str)
    );
    if let Some(by) = &instruction.by {
        assert!(by.chars().count() <= vigil_core::people::MAX_NAME_CHARS);
        assert!(!by.chars().any(char::is_control), "{by:?}");
    }
    assert!(root.get("command").is_some_and(Value::is_object));
}

fn check_id(id: &str) {
    assert!(
        id.chars().count() <= 256,
        "an id of {} characters",
        id.chars().count()
    );
    assert!(!id.chars().any(char::is_control), "{id:?}");
}

fn check_bounds(instruction: &Instruction) {
    match &instruction.command {
        HumanCommand::Approve {
            proposal_id,
            action_hash,
        } => {
            check_id(proposal_id);
            assert_eq!(action_hash.len(), 64, "{action_hash:?}");
            assert!(
                action_hash
                    .bytes()
                    .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte)),
                "{action_hash:?}"
            );
        }
        HumanCommand::Reject { proposal_id } => check_id(proposal_id),
        HumanCommand::Kill { scope } | HumanCommand::Unkill { scope } => match scope {
            KillScope::Global => {}
            KillScope::Runbook { id } | KillScope::Target { id, .. } => check_id(id),
        },
        HumanCommand::Silence {
            silence_id,
            detector,
            subject,
            expires_at,
        } => {
            check_id(silence_id);
            detector.as_deref().map(check_id);
            subject.as_deref().map(check_id);
            assert!(expires_at.0 > 0, "{expires_at:?}");
        }
        HumanCommand::Unsilence { silence_id } => check_id(silence_id),
    }
}

/// The instruction as a client would send it.
fn written_back(instruction: &Instruction) -> Vec<u8> {
    let mut body = serde_json::Map::new();
    if let Some(by) = &instruction.by {
        body.insert("by".to_owned(), Value::String(by.clone()));
    }
    body.insert(
        "reason".to_owned(),
        Value::String(instruction.reason.clone()),
    );
    body.insert(
        "command".to_owned(),
        serde_json::to_value(&instruction.command).expect("a command serializes"),
    );
    serde_json::to_vec(&Value::Object(body)).expect("a body serializes")
}
