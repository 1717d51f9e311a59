//! Eval results: the shape, every problem with its path, and the signals.

use std::collections::BTreeSet;

use expect_test::{Expect, expect};

use super::*;

fn check(body: &str, expect: Expect) {
    expect.assert_eq(&render(parse_evals(body.as_bytes())));
}

pub(super) const GOOD: &str = r#"{"results": [
    {"suite": "support-regression", "case": "refund-policy-07", "passed": false, "score": 0.42,
     "model": "gpt-4o-2024-08-06", "prompt_name": "support-answer", "prompt_version": "v12",
     "input_tokens": 3120, "run_id": "ci-8812", "ts": "2026-03-01T12:00:00.5+01:00"},
    {"suite": "support-regression", "case": "greeting-01", "passed": true, "score": null,
     "model": "gpt-4o-2024-08-06", "prompt_name": "support-answer", "prompt_version": "v12"},
    {"suite": "support-regression", "case": "escalation-03", "passed": true, "score": 1,
     "model": "gpt-4o-2024-08-06", "prompt_name": "support-answer", "prompt_version": "v12"},
    {"suite": "tone", "case": "polite-02", "passed": false, "score": -3.5e-1,
     "model": "claude-sonnet-4", "prompt_name": "support-answer", "prompt_version": "v13",
     "input_tokens": 9800}
]}"#;

#[test]
fn a_good_batch_parses() {
    check(
        GOOD,
        expect![[r#"
            {
              "results": [
                {
                  "suite": "support-regression",
                  "case": "refund-policy-07",
                  "passed": false,
                  "score": 0.42,
                  "model": "gpt-4o-2024-08-06",
                  "prompt_name": "support-answer",
                  "prompt_version": "v12",
                  "input_tokens": 3120,
                  "run_id": "ci-8812",
                  "ran_at": 1772362800500
                },
                {
                  "suite": "support-regression",
                  "case": "greeting-01",
                  "passed": true,
                  "model": "gpt-4o-2024-08-06",
                  "prompt_name": "support-answer",
                  "prompt_version": "v12"
                },
                {
                  "suite": "support-regression",
                  "case": "escalation-03",
                  "passed": true,
                  "score": 1.0,
                  "model": "gpt-4o-2024-08-06",
                  "prompt_name": "support-answer",
                  "prompt_version": "v12"
                },
                {
                  "suite": "tone",
                  "case": "polite-02",
                  "passed": false,
                  "score": -0.35,
                  "model": "claude-sonnet-4",
                  "prompt_name": "support-answer",
                  "prompt_version": "v13",
                  "input_tokens": 9800
                }
              ]
            }
        "#]],
    );
}

#[test]
fn an_empty_batch_is_accepted() {
    check(
        r#"{"results": []}"#,
        expect![[r#"
        {
          "results": []
        }
    "#]],
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    check(
        r#"{"results": [
            {"suite": "", "case": "c1", "passed": "yes", "score": "high", "model": "m",
             "prompt_name": "p", "prompt_version": 3, "sore": 0.5, "input_tokens": -4},
            {"case": "c2", "passed": true, "model": "m", "prompt_name": "p",
             "prompt_version": "v1", "ts": "2026-02-29T00:00:00Z", "run_id": "   "},
            {"suite": "s", "case": "c3", "passed": null, "model": "m", "prompt_name": "p",
             "prompt_version": "v1", "score": 12345678901234567890123},
            "not an object"
        ], "extra": true}"#,
        expect![[r#"
            the payload has 13 problems
            extra: unknown field; expected one of: results
            results[0].sore: unknown field; expected one of: suite, case, passed, score, model, prompt_name, prompt_version, input_tokens, run_id, ts
            results[0].suite: must not be empty
            results[0].passed: must be `true` or `false`, found a string
            results[0].score: must be a finite number, found a string
            results[0].prompt_version: must be a string, found a number (write it quoted: `"3"`)
            results[0].input_tokens: must be a whole number, 0 or more, found `-4`
            results[1].suite: required field is missing
            results[1].run_id: must not be empty
            results[1].ts: must be an RFC 3339 time such as `2026-03-01T12:00:00Z`: the day must be 01 to 28 in 2026-02, found 29
            results[2].passed: must be `true` or `false`, found null
            results[2].score: must be from -1e9 to 1e9, found `1.2345678901234568e+22`
            results[3]: must be an object, found a string
        "#]],
    );
}

#[test]
fn the_root_must_be_an_object_with_results() {
    check(
        r#"[{"suite": "s"}]"#,
        expect![[r#"
            the payload has 1 problem
            must be an object, found an array
        "#]],
    );
    check(
        r#"{"result": []}"#,
        expect![[r#"
            the payload has 2 problems
            result: unknown field; expected one of: results
            results: required field is missing
        "#]],
    );
}

// Regression (found by fuzz/intake_evals): a key such as `[esults`, `a.b` or `` gave a path
// that named another field (an index, a nested key) or none at all.
#[test]
fn odd_keys_are_quoted_in_paths() {
    check(
        r#"{"[esults": []}"#,
        expect![[r#"
            the payload has 2 problems
            ["[esults"]: unknown field; expected one of: results
            results: required field is missing
        "#]],
    );
    let result = r#""suite": "s", "case": "c", "passed": true, "model": "m", "prompt_name": "p",
        "prompt_version": "v""#;
    let body = format!(
        "{{\"results\": [{{{result}, \"a.b\": 1}}, {{{result}, \"\": 2}}, {{{result}, \"new\\nline\": 3}}]}}"
    );
    check(
        &body,
        expect![[r#"
            the payload has 3 problems
            results[0]["a.b"]: unknown field; expected one of: suite, case, passed, score, model, prompt_name, prompt_version, input_tokens, run_id, ts
            results[1][""]: unknown field; expected one of: suite, case, passed, score, model, prompt_name, prompt_version, input_tokens, run_id, ts
            results[2]["new\nline"]: unknown field; expected one of: suite, case, passed, score, model, prompt_name, prompt_version, input_tokens, run_id, ts
        "#]],
    );
}

// Regression (found by fuzz/intake_evals): DEL and the C1 controls, which JSON output does
// not escape, reached messages and paths raw.
#[test]
fn del_and_c1_controls_are_escaped() {
    check(
        r#"{"results": [{"suite": "s", "case": "c", "passed": true, "model": "m",
            "prompt_name": "p", "prompt_version": "v", "input_tokens": "a\u007fb\u009b",
            "x\u007f": 1}]}"#,
        expect![[r#"
            the payload has 2 problems
            results[0]["x\u007f"]: unknown field; expected one of: suite, case, passed, score, model, prompt_name, prompt_version, input_tokens, run_id, ts
            results[0].input_tokens: must be a whole number, 0 or more, found `"a\u007fb\u009b"`
        "#]],
    );
}

#[test]
fn syntax_errors_give_line_and_column() {
    check(
        "{\"results\": [\n  {\"suite\": \"s\",}\n]}",
        expect![[r#"
            the payload has 1 problem
            invalid JSON at line 2 column 17: trailing comma
        "#]],
    );
    check(
        "",
        expect![[r#"
            the payload has 1 problem
            invalid JSON at line 1 column 0: EOF while parsing a value
        "#]],
    );
    expect![[r#"
        the payload has 1 problem
        invalid JSON at line 1 column 15: invalid unicode code point
    "#]]
    .assert_eq(&render(parse_evals(b"{\"results\": [\"\xff\"]}")));
}

#[test]
fn lists_and_names_are_bounded() {
    let too_many = format!(
        "{{\"results\": [{}]}}",
        vec!["{}"; crate::intake::evals::MAX_EVAL_RESULTS + 1].join(",")
    );
    check(
        &too_many,
        expect![[r#"
            the payload has 1 problem
            results: has 10001 elements; at most 10000 are accepted in one request
        "#]],
    );
    let long_case = format!(
        r#"{{"results": [{{"suite": "s", "case": "{}", "passed": true, "model": "m", "prompt_name": "p", "prompt_version": "1"}}]}}"#,
        "x".repeat(MAX_NAME_CHARS + 1)
    );
    check(
        &long_case,
        expect![[r#"
            the payload has 1 problem
            results[0].case: has 257 characters; at most 256 are accepted
        "#]],
    );
}

// Regression (found checking the fuzz targets' signal invariants): two scores of 1e308 made
// the batch's `vigil_eval_score_sum` increment +Inf, which stays in the engine's running
// total for good.
#[test]
fn scores_are_bounded_so_their_sums_stay_finite() {
    let result = |score: &str| {
        format!(
            r#"{{"suite": "s", "case": "c", "passed": true, "score": {score}, "model": "m",
                "prompt_name": "p", "prompt_version": "v"}}"#
        )
    };
    let body = format!(
        r#"{{"results": [{}, {}]}}"#,
        result("1e308"),
        result("1e308")
    );
    check(
        &body,
        expect![[r#"
            the payload has 2 problems
            results[0].score: must be from -1e9 to 1e9, found `1e+308`
            results[1].score: must be from -1e9 to 1e9, found `1e+308`
        "#]],
    );
    let body = format!(
        r#"{{"results": [{}, {}, {}]}}"#,
        result("1e9"),
        result("1e9"),
        result("-1000000000")
    );
    let batch = parse_evals(body.as_bytes()).unwrap();
    check_signals(
        &Pushed::Evals(batch),
        expect![[r#"
            vigil_eval_cases_total{model="m",outcome="passed",prompt="p",prompt_version="v",suite="s"} counter +3
            vigil_eval_score_count{model="m",prompt="p",prompt_version="v",suite="s"} counter +3
            vigil_eval_score_sum{model="m",prompt="p",prompt_version="v",suite="s"} counter +1000000000
        "#]],
    );
}

#[test]
fn signals_count_cases_and_sum_scores() {
    let pushed = Pushed::Evals(parse_evals(GOOD.as_bytes()).unwrap());
    check_signals(
        &pushed,
        expect![[r#"
            vigil_eval_cases_total{model="claude-sonnet-4",outcome="failed",prompt="support-answer",prompt_version="v13",suite="tone"} counter +1
            vigil_eval_cases_total{model="gpt-4o-2024-08-06",outcome="failed",prompt="support-answer",prompt_version="v12",suite="support-regression"} counter +1
            vigil_eval_cases_total{model="gpt-4o-2024-08-06",outcome="passed",prompt="support-answer",prompt_version="v12",suite="support-regression"} counter +2
            vigil_eval_input_tokens_count{model="claude-sonnet-4",prompt="support-answer",prompt_version="v13",suite="tone"} counter +1
            vigil_eval_input_tokens_count{model="gpt-4o-2024-08-06",prompt="support-answer",prompt_version="v12",suite="support-regression"} counter +1
            vigil_eval_input_tokens_sum{model="claude-sonnet-4",prompt="support-answer",prompt_version="v13",suite="tone"} counter +9800
            vigil_eval_input_tokens_sum{model="gpt-4o-2024-08-06",prompt="support-answer",prompt_version="v12",suite="support-regression"} counter +3120
            vigil_eval_score_count{model="claude-sonnet-4",prompt="support-answer",prompt_version="v13",suite="tone"} counter +1
            vigil_eval_score_count{model="gpt-4o-2024-08-06",prompt="support-answer",prompt_version="v12",suite="support-regression"} counter +2
            vigil_eval_score_sum{model="claude-sonnet-4",prompt="support-answer",prompt_version="v13",suite="tone"} counter +-0.35
            vigil_eval_score_sum{model="gpt-4o-2024-08-06",prompt="support-answer",prompt_version="v12",suite="support-regression"} counter +1.42
        "#]],
    );
    assert_round_trip(&pushed);
}

#[test]
fn the_items_feeding_refused_series_are_counted() {
    let pushed = Pushed::Evals(parse_evals(GOOD.as_bytes()).unwrap());
    let series = |name: &str, labels: &[(&str, &str)]| -> (String, crate::signal::Labels) {
        (name.to_owned(), labels.iter().copied().collect())
    };
    let v12 = [
        ("model", "gpt-4o-2024-08-06"),
        ("prompt", "support-answer"),
        ("prompt_version", "v12"),
        ("suite", "support-regression"),
    ];
    let passed_v12 = series(
        "vigil_eval_cases_total",
        &[
            ("model", "gpt-4o-2024-08-06"),
            ("outcome", "passed"),
            ("prompt", "support-answer"),
            ("prompt_version", "v12"),
            ("suite", "support-regression"),
        ],
    );
    // (refused series, items that feed one of them)
    let cases = [
        (vec![], 0),
        (vec![passed_v12.clone()], 2),
        // Only the first and last results report their tokens.
        (vec![series("vigil_eval_input_tokens_sum", &v12)], 1),
        (vec![passed_v12, series("vigil_eval_score_count", &v12)], 3),
        (vec![series("vigil_eval_cases_total", &v12)], 0),
    ];
    for (refused, n_items) in cases {
        let refused: BTreeSet<_> = refused.into_iter().collect();
        let chosen = |name: &str, labels: &crate::signal::Labels| {
            refused.contains(&(name.to_owned(), labels.clone()))
        };
        assert_eq!(pushed.n_items_feeding(chosen), n_items, "{refused:?}");
    }
}
