//! Property-style tests: the parsers never panic, whatever the bytes, and always answer with
//! a batch or with between 1 and `MAX_PROBLEMS` problems.

use serde_json::Value;

use super::*;

const SEEDS: [&str; 4] = [
    super::evals::GOOD,
    super::agent_runs::GOOD,
    super::alertmanager::GOOD,
    super::otlp::JS_SDK,
];

type Parser = fn(&[u8]) -> Result<Pushed, IntakeError>;

const PARSERS: [Parser; 4] = [
    |body| parse_evals(body).map(Pushed::Evals),
    |body| parse_agent_runs(body).map(Pushed::AgentRuns),
    |body| parse_alertmanager(body).map(Pushed::Alerts),
    |body| parse_otlp_traces(body).map(Pushed::Spans),
];

/// Runs every parser on `body`; a payload that parses must also yield its signals.
fn parse_all(body: &[u8]) -> usize {
    let mut n_accepted = 0;
    for parse in PARSERS {
        match parse(body) {
            Ok(pushed) => {
                n_accepted += 1;
                let _signals = pushed.signals();
            }
            Err(error) => {
                assert!(!error.problems.is_empty(), "{body:?}");
                assert!(error.problems.len() <= MAX_PROBLEMS, "{error}");
            }
        }
    }
    n_accepted
}

/// xorshift64: deterministic, so a failure reproduces.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % bound.max(1) as u64) as usize
    }
}

#[test]
fn the_seeds_parse_with_their_own_parser() {
    for (seed, parse) in SEEDS.iter().zip(PARSERS) {
        assert!(parse(seed.as_bytes()).is_ok());
    }
}

#[test]
fn byte_mutations_never_panic() {
    const BYTES: &[u8] = b"{}[]\":,0-9.eE+aZ\\ \x00\xff\xc3\xa9nulltrue";
    let mut random = Random(0x9E37_79B9_7F4A_7C15);
    for seed in SEEDS {
        for _ in 0..400 {
            let mut body = seed.as_bytes().to_vec();
            for _ in 0..1 + random.below(3) {
                let at = random.below(body.len());
                match random.below(4) {
                    0 => {
                        let end = (at + 1 + random.below(8)).min(body.len());
                        body.drain(at..end);
                    }
                    1 => body[at] = BYTES[random.below(BYTES.len())],
                    2 => body.truncate(at),
                    _ => {
                        let from = random.below(body.len());
                        let end = (from + random.below(64)).min(body.len());
                        let copied = body[from..end].to_vec();
                        body.splice(at..at, copied);
                    }
                }
                if body.is_empty() {
                    break;
                }
            }
            parse_all(&body);
        }
    }
}

fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let escaped = key.replace('~', "~0").replace('/', "~1");
                pointers(item, format!("{prefix}/{escaped}"), out);
            }
        }
        Value::Array(items) => {
            for (idx, item) in items.iter().enumerate() {
                pointers(item, format!("{prefix}/{idx}"), out);
            }
        }
        _ => {}
    }
    out.push(prefix);
}

#[test]
fn every_node_replaced_by_every_type_never_panics() {
    let replacements = [
        serde_json::json!(null),
        serde_json::json!(true),
        serde_json::json!(-1),
        serde_json::json!(1.5),
        serde_json::json!(18_446_744_073_709_551_615_u64),
        serde_json::json!(""),
        serde_json::json!("0001-01-01T00:00:00Z"),
        serde_json::json!([]),
        serde_json::json!({}),
    ];
    for (seed, parse) in SEEDS.iter().zip(PARSERS) {
        let tree: Value = serde_json::from_str(seed).unwrap();
        let mut paths = Vec::new();
        pointers(&tree, String::new(), &mut paths);
        for pointer in &paths {
            for replacement in &replacements {
                let mut mangled = tree.clone();
                *mangled.pointer_mut(pointer).unwrap() = replacement.clone();
                let body = serde_json::to_vec(&mangled).unwrap();
                if let Err(error) = parse(&body) {
                    assert!(!error.problems.is_empty());
                    assert!(error.problems.len() <= MAX_PROBLEMS, "{error}");
                }
            }
        }
    }
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(parse_all(deep.as_bytes()), 0);
    let error = parse_evals(deep.as_bytes()).unwrap_err();
    assert_eq!(
        error.to_string(),
        "the payload has 1 problem: invalid JSON at line 1 column 128: recursion limit exceeded"
    );
    // Arguments nested as deep as the parser allows still hash.
    let arguments = format!("{}{}", "[".repeat(120), "]".repeat(120));
    let body = format!(
        r#"{{"runs": [{{"run_id": "r", "agent": "a", "iterations": 1, "outcome": "success",
            "tool_calls": [{{"name": "t", "arguments": {arguments}}}]}}]}}"#
    );
    assert!(parse_agent_runs(body.as_bytes()).is_ok());
}

// Regression: a part made of tiny objects cost about 630 bytes of tree per object, so a 20 MiB
// body of them took over 500 MB to parse (issue 12).
#[test]
fn a_part_with_too_many_objects_is_refused_before_it_is_parsed() {
    let junk = format!(
        "[{}{{}}]",
        "{},".repeat(crate::intake::json::MAX_TREE_NODES)
    );
    let evals = format!(
        r#"{{"results": [{{"suite": "s", "case": "c", "passed": true, "model": "m",
            "prompt_name": "p", "prompt_version": "1", "junk": {junk}}}]}}"#
    );
    assert_eq!(
        parse_evals(evals.as_bytes()).unwrap_err().to_string(),
        "the payload has 1 problem: results[0]: holds more than 100000 objects and arrays; at most that many are accepted in one item"
    );
    let alerts = format!(r#"{{"version": "4", "alerts": [], "junk": {junk}}}"#);
    assert_eq!(
        crate::intake::parse_alertmanager(alerts.as_bytes())
            .unwrap_err()
            .to_string(),
        "the payload has 1 problem: holds more than 100000 objects and arrays; at most that many are accepted in one item"
    );
    let spans = format!(
        r#"{{"resourceSpans": [{{"scopeSpans": [{{"spans": [{{"name": "x", "junk": {junk}}}]}}]}}]}}"#
    );
    assert_eq!(
        crate::intake::parse_otlp_traces(spans.as_bytes())
            .unwrap_err()
            .to_string(),
        "the payload has 1 problem: resourceSpans[0].scopeSpans[0].spans[0]: holds more than 100000 objects and arrays; at most that many are accepted in one item"
    );
}

// Regression (fuzzing, issue 12): the body's syntax is checked without decoding strings and
// numbers, so a lone surrogate escape or a number out of range passed the check and surfaced
// later as an item that "cannot be read" at the item's own line and column, or was accepted
// when it sat in an ignored key. Every parser now refuses it as the tree parser does: one
// problem, at the body's line and column.
#[test]
fn a_leaf_the_tree_parser_cannot_decode_is_a_syntax_error_of_the_body() {
    let evals = "{\"results\": [\n  {\"suite\": \"s\", \"case\": \"c\", \"passed\": true, \"model\": \"m\",\n   \"prompt_name\": \"p\", \"prompt_version\": \"1\", \"junk\": \"ok \\ud83d\\ude00 \\ud800\"}]}";
    let runs = r#"{"runs": [{"run_id": "r", "agent": "a", "iterations": 1, "outcome": "success", "tool_calls": [{"name": "t", "arguments": {"k\udc00": 1}}]}]}"#;
    let spans = r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "attributes": [{"key": "a", "value": {"stringValue": "b"}, "ignored\uD800": 1}]}]}]}]}"#;
    let alerts = r#"{"version": "4", "alerts": [], "x": "\ud800"}"#;
    for (body, parse) in [evals, runs, spans, alerts].into_iter().zip(PARSERS) {
        let tree_error = serde_json::from_slice::<Value>(body.as_bytes()).unwrap_err();
        let error = parse(body.as_bytes()).unwrap_err();
        assert_eq!(error.problems.len(), 1, "{error}");
        assert_eq!(error.problems[0].path, "", "{error}");
        let expected = format!(
            "invalid JSON at line {} column {}: ",
            tree_error.line(),
            tree_error.column()
        );
        assert!(
            error.problems[0].message.starts_with(&expected),
            "{error} should start with {expected}"
        );
    }
    // So is a number out of f64's range, whole body or deep in an item, in an ignored key too.
    let numbers = [
        "1e309",
        "{\"results\": [{\"suite\": \"s\", \"case\": \"c\", \"passed\": true, \"model\": \"m\",\n \"prompt_name\": \"p\", \"prompt_version\": \"1\", \"junk\": [1, -2.5e-400, 77777777777777777777777777771e308]}]}",
        r#"{"runs": [{"run_id": "r", "agent": "a", "iterations": 1e400, "outcome": "success"}]}"#,
        r#"{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "x", "ignored": -9e999}]}]}]}"#,
    ];
    for body in numbers {
        let tree_error = serde_json::from_slice::<Value>(body.as_bytes()).unwrap_err();
        let expected = format!(
            "invalid JSON at line {} column {}: number out of range",
            tree_error.line(),
            tree_error.column()
        );
        for parse in PARSERS {
            let error = parse(body.as_bytes()).unwrap_err();
            assert_eq!(error.problems.len(), 1, "{error}");
            assert_eq!(error.problems[0].message, expected, "{body}");
        }
    }
    // Large numbers in range, and a tiny one that rounds to zero, are numbers like any other.
    let in_range = r#"{"runs": [{"run_id": "r", "agent": "a", "iterations": 1, "outcome": "success", "tool_calls": [{"name": "t", "arguments": [1e308, 123456789012345678901234567890, -1e-400]}]}]}"#;
    let accepted = parse_agent_runs(in_range.as_bytes());
    assert!(accepted.is_ok(), "{accepted:?}");
    // A paired surrogate is a character like any other.
    let paired = "{\"results\": [{\"suite\": \"s\\ud83d\\ude00\", \"case\": \"c\", \"passed\": true, \"model\": \"m\", \"prompt_name\": \"p\", \"prompt_version\": \"1\"}]}";
    assert!(parse_evals(paired.as_bytes()).is_ok());
}
