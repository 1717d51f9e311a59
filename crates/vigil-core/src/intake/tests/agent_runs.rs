//! Agent runs: the shape, hashing, loop facts, every problem with its path, the signals.

use expect_test::{Expect, expect};

use super::*;

fn check(body: &str, expect: Expect) {
    expect.assert_eq(&render(parse_agent_runs(body.as_bytes())));
}

pub(super) const GOOD: &str = r#"{"runs": [
    {"run_id": "run-7f3a", "agent": "triage-bot", "iterations": 12, "outcome": "iteration_limit",
     "input_tokens": 48210, "output_tokens": 3120, "ts": "2026-03-01T12:00:00Z",
     "tool_calls": [
        {"name": "search_tickets", "arguments": {"query": "refund", "limit": 5}},
        {"name": "search_tickets", "arguments": {"limit": 5, "query": "refund"}},
        {"name": "search_tickets", "arguments": {"limit": 5,   "query": "refund"}},
        {"name": "get_ticket", "arguments_hash": "client-hash-1"},
        {"name": "search_tickets", "arguments": {"query": "refund", "limit": 5}},
        {"name": "list_queues"},
        {"name": "list_queues", "arguments": null}
     ]},
    {"run_id": "run-80b1", "agent": "triage-bot", "iterations": 3, "outcome": "success",
     "tool_calls": []},
    {"run_id": "run-80b2", "agent": "billing-agent", "iterations": 1, "outcome": "failure",
     "input_tokens": 900}
]}"#;

#[test]
fn a_good_batch_parses_with_hashed_arguments() {
    check(
        GOOD,
        expect![[r#"
            {
              "runs": [
                {
                  "run_id": "run-7f3a",
                  "agent": "triage-bot",
                  "iterations": 12,
                  "outcome": "iteration_limit",
                  "input_tokens": 48210,
                  "output_tokens": 3120,
                  "ended_at": 1772366400000,
                  "tool_calls": [
                    {
                      "name": "search_tickets",
                      "arguments_hash": "d9ae1ea1b468ce3a95fb368025be74173cdbe8960675d637cea90d0b1b5be38b"
                    },
                    {
                      "name": "search_tickets",
                      "arguments_hash": "d9ae1ea1b468ce3a95fb368025be74173cdbe8960675d637cea90d0b1b5be38b"
                    },
                    {
                      "name": "search_tickets",
                      "arguments_hash": "d9ae1ea1b468ce3a95fb368025be74173cdbe8960675d637cea90d0b1b5be38b"
                    },
                    {
                      "name": "get_ticket",
                      "arguments_hash": "client-hash-1"
                    },
                    {
                      "name": "search_tickets",
                      "arguments_hash": "d9ae1ea1b468ce3a95fb368025be74173cdbe8960675d637cea90d0b1b5be38b"
                    },
                    {
                      "name": "list_queues"
                    },
                    {
                      "name": "list_queues"
                    }
                  ]
                },
                {
                  "run_id": "run-80b1",
                  "agent": "triage-bot",
                  "iterations": 3,
                  "outcome": "success",
                  "tool_calls": []
                },
                {
                  "run_id": "run-80b2",
                  "agent": "billing-agent",
                  "iterations": 1,
                  "outcome": "failure",
                  "input_tokens": 900,
                  "tool_calls": []
                }
              ]
            }
        "#]],
    );
}

#[test]
fn the_hash_is_sha256_of_canonical_json() {
    // The canonical form sorts keys at every depth and drops whitespace.
    let arguments = serde_json::json!({"b": [1, {"z": "é", "a": null}], "a": "x\"y"});
    let canonical = r#"{"a":"x\"y","b":[1,{"a":null,"z":"é"}]}"#;
    let expected = {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(canonical.as_bytes()))
    };
    assert_eq!(
        crate::intake::agent_runs::hash_arguments(&arguments),
        expected
    );
    let reordered = serde_json::json!({"a": "x\"y", "b": [1, {"a": null, "z": "é"}]});
    assert_eq!(
        crate::intake::agent_runs::hash_arguments(&reordered),
        expected
    );
    let raw_arguments = "refund";
    let batch = parse_agent_runs(GOOD.as_bytes()).unwrap();
    let ledger_form = serde_json::to_string(&batch).unwrap();
    assert!(!ledger_form.contains(raw_arguments), "{ledger_form}");
}

#[test]
fn loop_facts_count_streaks_of_identical_calls() {
    let batch = parse_agent_runs(GOOD.as_bytes()).unwrap();
    let stats: Vec<ToolCallStats> = batch.runs.iter().map(AgentRun::tool_call_stats).collect();
    assert_eq!(
        stats,
        [
            // search ×3 (streak 3), get_ticket, search, list_queues ×2 (streak 2).
            ToolCallStats {
                calls: 7,
                distinct_calls: 3,
                repeated_calls: 3,
                longest_streak: 3,
                // search, search again (1), and again (2); get_ticket is new; search (1).
                longest_stall: 2,
            },
            ToolCallStats::default(),
            ToolCallStats::default(),
        ]
    );
}

#[test]
fn an_agent_cycling_between_calls_stalls_without_repeating_its_predecessor() {
    let body = r#"{"runs": [{"run_id": "r1", "agent": "a", "iterations": 9, "outcome": "iteration_limit",
        "tool_calls": [
            {"name": "plan", "arguments": {}},
            {"name": "search", "arguments": {"q": "refund"}},
            {"name": "read", "arguments": {"id": 1}},
            {"name": "search", "arguments": {"q": "refund"}},
            {"name": "read", "arguments": {"id": 1}},
            {"name": "search", "arguments": {"q": "refund"}},
            {"name": "read", "arguments": {"id": 1}},
            {"name": "read", "arguments": {"id": 2}},
            {"name": "search", "arguments": {"q": "refund"}}
        ]}]}"#;
    let batch = parse_agent_runs(body.as_bytes()).unwrap();
    let stats = batch.runs[0].tool_call_stats();
    assert_eq!(stats.longest_streak, 1);
    assert_eq!(stats.repeated_calls, 0);
    // Four calls in a row that had all been made before; reading id 2 was progress.
    assert_eq!(stats.longest_stall, 4);
    assert_eq!(stats.distinct_calls, 4);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    check(
        &format!(
            r#"{{"runs": [
            {{"run_id": "{}", "agent": "a", "iterations": -1, "outcome": "crashed",
             "input_tokens": 1.5, "tool_calls": [
                {{"name": "search", "arguments": {{}}, "arguments_hash": "h"}},
                {{"arguments": [1]}},
                {{"name": "x", "args": 1}}
             ]}},
            {{"run_id": "r2", "agent": "a", "iterations": 2, "outcome": "success",
             "tool_calls": {{"name": "search"}}, "ts": "2026-03-01 12:00:00Z"}},
            {{"run_id": "r3", "agent": "a", "outcome": "SUCCESS", "output_tokens": "12"}}
        ]}}"#,
            "r".repeat(300)
        ),
        expect![[r#"
            the payload has 12 problems
            runs[0].run_id: has 300 characters; at most 256 are accepted
            runs[0].iterations: must be a whole number, 0 or more, found `-1`
            runs[0].outcome: unknown outcome; expected one of: success, failure, timeout, aborted, iteration_limit, budget_exceeded
            runs[0].input_tokens: must be a whole number, 0 or more, found `1.5`
            runs[0].tool_calls[0].arguments_hash: give `arguments` or `arguments_hash`, not both
            runs[0].tool_calls[1].name: required field is missing
            runs[0].tool_calls[2].args: unknown field; expected one of: name, arguments, arguments_hash
            runs[1].ts: must be an RFC 3339 time such as `2026-03-01T12:00:00Z`: expected `T` between the date and the time at character 11
            runs[1].tool_calls: must be an array, found an object
            runs[2].iterations: required field is missing
            runs[2].outcome: unknown outcome; expected one of: success, failure, timeout, aborted, iteration_limit, budget_exceeded
            runs[2].output_tokens: must be a whole number, 0 or more, found `"12"`
        "#]],
    );
}

#[test]
fn signals_count_runs_iterations_tools_repeats_and_tokens() {
    let pushed = Pushed::AgentRuns(parse_agent_runs(GOOD.as_bytes()).unwrap());
    check_signals(
        &pushed,
        expect![[r#"
            vigil_agent_iterations_bucket{agent="billing-agent",le="+Inf"} counter +1
            vigil_agent_iterations_bucket{agent="billing-agent",le="1"} counter +1
            vigil_agent_iterations_bucket{agent="billing-agent",le="128"} counter +1
            vigil_agent_iterations_bucket{agent="billing-agent",le="16"} counter +1
            vigil_agent_iterations_bucket{agent="billing-agent",le="2"} counter +1
            vigil_agent_iterations_bucket{agent="billing-agent",le="32"} counter +1
            vigil_agent_iterations_bucket{agent="billing-agent",le="4"} counter +1
            vigil_agent_iterations_bucket{agent="billing-agent",le="64"} counter +1
            vigil_agent_iterations_bucket{agent="billing-agent",le="8"} counter +1
            vigil_agent_iterations_bucket{agent="triage-bot",le="+Inf"} counter +2
            vigil_agent_iterations_bucket{agent="triage-bot",le="1"} counter +0
            vigil_agent_iterations_bucket{agent="triage-bot",le="128"} counter +2
            vigil_agent_iterations_bucket{agent="triage-bot",le="16"} counter +2
            vigil_agent_iterations_bucket{agent="triage-bot",le="2"} counter +0
            vigil_agent_iterations_bucket{agent="triage-bot",le="32"} counter +2
            vigil_agent_iterations_bucket{agent="triage-bot",le="4"} counter +1
            vigil_agent_iterations_bucket{agent="triage-bot",le="64"} counter +2
            vigil_agent_iterations_bucket{agent="triage-bot",le="8"} counter +1
            vigil_agent_iterations_count{agent="billing-agent"} counter +1
            vigil_agent_iterations_count{agent="triage-bot"} counter +2
            vigil_agent_iterations_sum{agent="billing-agent"} counter +1
            vigil_agent_iterations_sum{agent="triage-bot"} counter +15
            vigil_agent_max_iterations{agent="billing-agent"} gauge 1
            vigil_agent_max_iterations{agent="triage-bot"} gauge 12
            vigil_agent_max_repeat_streak{agent="billing-agent"} gauge 0
            vigil_agent_max_repeat_streak{agent="triage-bot"} gauge 3
            vigil_agent_max_stalled_calls{agent="billing-agent"} gauge 0
            vigil_agent_max_stalled_calls{agent="triage-bot"} gauge 2
            vigil_agent_repeated_tool_calls_total{agent="billing-agent"} counter +0
            vigil_agent_repeated_tool_calls_total{agent="triage-bot"} counter +3
            vigil_agent_runs_total{agent="billing-agent",outcome="failure"} counter +1
            vigil_agent_runs_total{agent="triage-bot",outcome="iteration_limit"} counter +1
            vigil_agent_runs_total{agent="triage-bot",outcome="success"} counter +1
            vigil_agent_tokens_total{agent="billing-agent",direction="input"} counter +900
            vigil_agent_tokens_total{agent="triage-bot",direction="input"} counter +48210
            vigil_agent_tokens_total{agent="triage-bot",direction="output"} counter +3120
            vigil_agent_tool_calls_total{agent="triage-bot",tool="get_ticket"} counter +1
            vigil_agent_tool_calls_total{agent="triage-bot",tool="list_queues"} counter +2
            vigil_agent_tool_calls_total{agent="triage-bot",tool="search_tickets"} counter +4
        "#]],
    );
    assert_round_trip(&pushed);
}

#[test]
fn a_run_that_names_its_key_gives_a_stall_gauge_per_key_and_a_raw_key_is_refused() {
    let key = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8";
    let body = format!(
        r#"{{"runs": [{{"run_id": "r1", "agent": "triage-bot", "iterations": 4,
            "outcome": "iteration_limit", "api_key": "{key}", "tool_calls": [
            {{"name": "search", "arguments_hash": "a"}}, {{"name": "get", "arguments_hash": "b"}},
            {{"name": "search", "arguments_hash": "a"}}, {{"name": "get", "arguments_hash": "b"}}
        ]}}]}}"#
    );
    let pushed = Pushed::AgentRuns(parse_agent_runs(body.as_bytes()).unwrap());
    let keyed: Vec<String> = pushed
        .signals()
        .into_iter()
        .filter(|signal| signal.name == "vigil_agent_key_max_stalled_calls")
        .map(|signal| format!("{:?} {:?}", signal.labels, signal.kind))
        .collect();
    assert_eq!(
        keyed,
        [format!(
            "{{\"agent\": \"triage-bot\", \"hashed_api_key\": \"{key}\"}} Gauge(2.0)"
        )]
    );
    assert_round_trip(&pushed);
    check(
        r#"{"runs": [{"run_id": "r1", "agent": "a", "iterations": 1, "outcome": "success",
            "api_key": "sk-live-1234"}]}"#,
        expect![[r#"
            the payload has 1 problem
            runs[0].api_key: must be the key's SHA-256 in lowercase hex (the gateway's `hashed_api_key`), never the key itself
        "#]],
    );
}
