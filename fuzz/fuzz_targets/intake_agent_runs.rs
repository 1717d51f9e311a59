//! Fuzzes `parse_agent_runs` (`POST /v1/push/agent-runs`) with arbitrary bytes and checks
//! what must always hold:
//!
//! - parsing never panics, and takes time about linear in the input (libFuzzer's `-timeout`);
//! - a refusal has 1 to `MAX_PROBLEMS` problems, each naming a field of the body (or where a
//!   missing one belongs) with a short lowercase message (`vigil_fuzz::problems`);
//! - an accepted batch has one run per element of `runs` and one tool call per element of
//!   its `tool_calls`, each equal to what the JSON said, with no field outside the documented
//!   ones; an `api_key` is 64 lowercase hex digits;
//! - `arguments` are kept only as the SHA-256 of their canonical form, which equals the
//!   SHA-256 of serde_json's compact output of the arguments with every object's keys
//!   sorted, and does not change when the keys come in another order;
//! - `tool_call_stats` agrees with a direct count (streaks, repeats, distinct calls, and the
//!   longest stall: consecutive calls each made earlier in the run);
//! - written back as a push body (arguments as their hash), it parses to the same batch;
//! - it survives the ledger's JSON round trip, and its signals keep the table's promises:
//!   finite, bounded per run and tool call, totals and maxima as the runs say
//!   (`vigil_fuzz::signals`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use vigil_core::intake::agent_runs::hash_arguments;
use vigil_core::intake::{
    AgentRun, AgentRunBatch, Pushed, ToolCall, parse_agent_runs, parse_rfc3339,
};
use vigil_fuzz::{field, is_name, items, text};

const RUN_FIELDS: [&str; 9] = [
    "run_id",
    "agent",
    "iterations",
    "outcome",
    "input_tokens",
    "output_tokens",
    "ts",
    "tool_calls",
    "api_key",
];

const CALL_FIELDS: [&str; 3] = ["name", "arguments", "arguments_hash"];

fuzz_target!(|data: &[u8]| {
    match parse_agent_runs(data) {
        Err(error) => vigil_fuzz::problems::check(data, &error),
        Ok(batch) => {
            let n_listed = check_against_input(data, &batch);
            for run in &batch.runs {
                check_stats(run);
            }
            let again = parse_agent_runs(&vigil_fuzz::wire::agent_runs(&batch));
            assert_eq!(
                again.as_ref(),
                Ok(&batch),
                "written back, the batch parses differently"
            );
            vigil_fuzz::check_accepted(data, &Pushed::AgentRuns(batch), n_listed);
        }
    }
});

/// Compares the batch with the JSON it came from; returns how many runs the JSON listed.
fn check_against_input(data: &[u8], batch: &AgentRunBatch) -> usize {
    let root: Value = serde_json::from_slice(data).expect("accepted, so JSON");
    let root = root.as_object().expect("accepted, so an object");
    assert!(
        root.keys().all(|key| key == "runs"),
        "an unknown field accepted"
    );
    let listed = root["runs"].as_array().expect("`runs` is an array");
    assert_eq!(listed.len(), batch.runs.len(), "a run lost or invented");
    for (item, run) in listed.iter().zip(&batch.runs) {
        let map = item.as_object().expect("a run is an object");
        assert!(
            map.keys().all(|key| RUN_FIELDS.contains(&key.as_str())),
            "{item}"
        );
        for (key, name) in [("run_id", &run.run_id), ("agent", &run.agent)] {
            assert_eq!(text(map, key), Some(name.as_str()), "{key}");
            assert!(is_name(name), "{key}: {name:?}");
        }
        assert_eq!(map["iterations"].as_u64(), Some(run.iterations));
        assert_eq!(map["outcome"].as_str(), Some(run.outcome.as_str()));
        let count = |key| field(map, key).map(|value| value.as_u64().expect("a count"));
        assert_eq!(count("input_tokens"), run.input_tokens);
        assert_eq!(count("output_tokens"), run.output_tokens);
        let ended_at = text(map, "ts").map(|ts| parse_rfc3339(ts).expect("an RFC 3339 time"));
        assert_eq!(ended_at, run.ended_at);
        assert_eq!(text(map, "api_key"), run.api_key.as_deref());
        assert!(
            run.api_key.as_deref().is_none_or(is_lower_hex_64),
            "{:?}",
            run.api_key
        );
        let calls = items(map, "tool_calls");
        assert_eq!(
            calls.len(),
            run.tool_calls.len(),
            "a tool call lost or invented"
        );
        for (item, call) in calls.iter().zip(&run.tool_calls) {
            check_call(item, call);
        }
    }
    listed.len()
}

fn check_call(item: &Value, call: &ToolCall) {
    let map = item.as_object().expect("a tool call is an object");
    assert!(
        map.keys().all(|key| CALL_FIELDS.contains(&key.as_str())),
        "{item}"
    );
    assert_eq!(text(map, "name"), Some(call.name.as_str()));
    assert!(is_name(&call.name), "{:?}", call.name);
    match (field(map, "arguments"), text(map, "arguments_hash")) {
        (Some(arguments), None) => {
            let hash = call
                .arguments_hash
                .as_deref()
                .expect("arguments are hashed");
            assert!(is_lower_hex_64(hash), "{hash}");
            assert_eq!(hash, hash_arguments(arguments));
            let sorted = serde_json::to_string(&reorder(arguments, false)).expect("serializes");
            assert_eq!(
                hash,
                hex::encode(Sha256::digest(sorted.as_bytes())),
                "{sorted}"
            );
            assert_eq!(
                hash,
                hash_arguments(&reorder(arguments, true)),
                "{arguments}"
            );
        }
        (None, given) => {
            assert_eq!(given, call.arguments_hash.as_deref());
            assert!(given.is_none_or(is_name));
        }
        (Some(_), Some(_)) => panic!("both `arguments` and `arguments_hash` accepted: {item}"),
    }
}

fn is_lower_hex_64(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
}

/// `value` with every object's keys in sorted order, or in reverse sorted order.
fn reorder(value: &Value, reverse: bool) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|left, right| left.0.cmp(right.0));
            if reverse {
                entries.reverse();
            }
            let map: Map<String, Value> = entries
                .into_iter()
                .map(|(key, item)| (key.clone(), reorder(item, reverse)))
                .collect();
            Value::Object(map)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|item| reorder(item, reverse)).collect())
        }
        scalar => scalar.clone(),
    }
}

/// `tool_call_stats` against a direct count, quadratic but plain.
fn check_stats(run: &AgentRun) {
    let calls = &run.tool_calls;
    let stats = run.tool_call_stats();
    assert_eq!(stats.calls, calls.len() as u64);
    let mut distinct: Vec<&ToolCall> = Vec::new();
    let (mut repeated, mut streak, mut longest_streak, mut stall, mut longest_stall) =
        (0, 0, 0, 0, 0);
    for (idx, call) in calls.iter().enumerate() {
        if idx > 0 && calls[idx - 1] == *call {
            repeated += 1;
            streak += 1;
        } else {
            streak = 1;
        }
        longest_streak = longest_streak.max(streak);
        if distinct.contains(&call) {
            stall += 1;
        } else {
            distinct.push(call);
            stall = 0;
        }
        longest_stall = longest_stall.max(stall);
    }
    assert_eq!(stats.distinct_calls, distinct.len() as u64, "{calls:?}");
    assert_eq!(stats.repeated_calls, repeated, "{calls:?}");
    assert_eq!(stats.longest_streak, longest_streak, "{calls:?}");
    assert_eq!(stats.longest_stall, longest_stall, "{calls:?}");
    assert!(
        stats.longest_stall + stats.distinct_calls <= stats.calls,
        "{stats:?}"
    );
}
