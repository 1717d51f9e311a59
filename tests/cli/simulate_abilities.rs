//! `vigil simulate` plays cross-layer incidents: an effect on one replica of two, a fix that
//! stops working, evals that follow the model actually serving, pushed trace spans and a
//! series that appears mid-run; `expect.root_cause` is checked, and `--score DIR` counts a
//! wrong cause as wrong while still exiting 0.

use crate::support::{TempDir, lines_with, repo_root, vigil};

/// A runaway key (one key's tokens jump 40x at 300 s), blocked by vigil; `{effects}` is how
/// the block changes the key's series, `{expect}` the scenario's `expect`.
const RUNAWAY: &str = r#"
name: runaway
config: "{config}"
duration_secs: {duration}
series:
  - id: batch-tokens
    source: litellm-gateway
    metric: litellm_total_tokens_metric_total
    labels: { hashed_api_key: k-batch, api_key_alias: batch-job, team: ml }
    counter: [{ from_secs: 0, per_sec: 200 }, { from_secs: 300, per_sec: 8000 }]
  - id: chat-tokens
    source: litellm-gateway
    metric: litellm_total_tokens_metric_total
    labels: { hashed_api_key: k-chat, api_key_alias: chat-app, team: web }
    counter: [{ from_secs: 0, per_sec: 300 }]
responses:
  - action: litellm.block_key
    target: k-batch
    effects: [{effects}]
expect: {expect}
"#;

/// gpt-4o's provider answers 429 from 90 min on; vigil fails it over to claude-3-5-sonnet
/// (`{outcome}` says whether the gateway takes it). The evals, every minute, pass on gpt-4o
/// and fail 12 of 20 on claude; spans are pushed too, and the fallback's request series
/// appears with its first requests.
const FAILOVER: &str = r#"
name: failover
config: "{config}"
duration_secs: 10800
series:
  - id: gpt4o-requests
    source: litellm-gateway
    metric: litellm_deployment_total_requests_total
    labels: { model_group: gpt-4o, api_provider: openai }
    counter: [{ from_secs: 0, per_sec: 20 }]
  - id: gpt4o-429s
    source: litellm-gateway
    metric: litellm_deployment_failure_responses_total
    labels: { model_group: gpt-4o, api_provider: openai, exception_status: "429" }
    counter: [{ from_secs: 0, per_sec: 0.01 }, { from_secs: 5400, per_sec: 6 }]
  - id: claude-requests
    source: litellm-gateway
    metric: litellm_deployment_total_requests_total
    labels: { model_group: claude-3-5-sonnet, api_provider: anthropic }
    appears_at_secs: 5700
    counter: [{ from_secs: 0, per_sec: 6 }]
pushes:
  - at_secs: 60
    every_secs: 60
    until_secs: 10800
    evals:
      suite: rag
      prompt: answer
      version: "7"
      model: gpt-4o
      cases: 20
      by_model: { gpt-4o: { failed: 0 }, claude-3-5-sonnet: { failed: 12 } }
  - at_secs: 5500
    spans:
      - { model: gpt-4o, provider: openai, server_address: api.openai.com, error: "429", count: 4 }
      - { model: gpt-4o, provider: openai, response_model: gpt-4o-2024-11-20, input_tokens: 900, output_tokens: 80 }
      - { db_system: qdrant, collection: docs, duration_ms: 80 }
responses:
  - action: litellm.set_fallbacks
    target: gpt-4o
    outcome: {outcome}
    effects: [{ series: gpt4o-429s, per_sec: 0.01 }]
"#;

fn scenario_text(template: &str, replacements: &[(&str, &str)]) -> String {
    let config = repo_root().join("tests/scenarios/config/vigil.yaml");
    let mut text = template.replace("{config}", &config.display().to_string());
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    text
}

/// Each case: a scenario, and lines its timeline must show or must not show. The lines are
/// the simulator's doing (a series' level, who answers the evals, what was pushed); the
/// engine's decisions around them are what the shipped scenarios check.
#[test]
fn each_new_ability_shows_in_the_timeline() {
    struct Case {
        name: &'static str,
        text: String,
        shows: &'static [&'static str],
        never_shows: &'static [&'static str],
    }
    let runaway = |effects: &str, duration: &str| {
        scenario_text(
            RUNAWAY,
            &[
                ("{effects}", effects),
                ("{duration}", duration),
                ("{expect}", "{}"),
            ],
        )
    };
    let cases = [
        Case {
            name: "one replica of two takes the block: the burn halves",
            text: runaway("{ series: batch-tokens, per_sec: 0, share: 0.5 }", "900"),
            shows: &["key batch-job still uses 4,000 tokens/s"],
            never_shows: &["RESOLVED"],
        },
        Case {
            name: "the whole block stops the burn",
            text: runaway("{ series: batch-tokens, per_sec: 0 }", "900"),
            shows: &["the key's rate fell to 0 tokens/s"],
            never_shows: &["still uses"],
        },
        Case {
            name: "a block that works for 10 minutes, then stops working",
            text: runaway(
                "{ series: batch-tokens, script: [{ after_secs: 0, per_sec: 0 }, { after_secs: 600, resume: true }] }",
                "2400",
            ),
            shows: &[
                "the key's rate fell to 0 tokens/s",
                "960.0s  FINDING       token-spike: token spike on key batch-job: 8,000 tokens/s",
            ],
            never_shows: &[],
        },
        Case {
            name: "after the failover, the evals are answered by the weaker fallback",
            text: scenario_text(FAILOVER, &[("{outcome}", "ok")]),
            shows: &[
                "route gpt-4o to claude-3-5-sonnet",
                "FINDING       eval-pass-rate: eval pass rate of answer fell",
                // Four 429s, one answer and, since the intake keeps database spans, one qdrant call.
                "5500.0s  NOTE          pushed 6 spans",
            ],
            never_shows: &[],
        },
        Case {
            name: "a failover the gateway refuses leaves the evals on gpt-4o",
            text: scenario_text(FAILOVER, &[("{outcome}", "fail")]),
            shows: &["route gpt-4o to claude-3-5-sonnet", "FAILED"],
            never_shows: &["eval-pass-rate"],
        },
    ];
    let dir = TempDir::new("simulate-abilities");
    let mut failures = Vec::new();
    for (idx, case) in cases.iter().enumerate() {
        let path = dir.join(&format!("case-{idx}.yaml"));
        std::fs::write(&path, &case.text).unwrap();
        let run = vigil(["simulate", path.to_str().unwrap()], dir.path());
        if run.code() != 0 {
            failures.push(format!("{}: exit {}\n{run}", case.name, run.code()));
            continue;
        }
        for line in case.shows {
            if !run.stdout.contains(line) {
                failures.push(format!("{}: no `{line}` in\n{}", case.name, run.stdout));
            }
        }
        for line in case.never_shows {
            if run.stdout.contains(line) {
                failures.push(format!("{}: `{line}` in\n{}", case.name, run.stdout));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

const RIGHT: &str = r#"{ pages: 0, actions: ["block key k-batch on litellm-gateway"], root_cause: { kind: runaway_key, subject: hashed_api_key=k-batch } }"#;

#[test]
fn check_fails_on_a_root_cause_of_another_kind_or_subject() {
    let dir = TempDir::new("simulate-root-cause");
    let path = dir.join("scenario.yaml");
    let cases = [
        (RIGHT, 0, ""),
        (
            "{ root_cause: { kind: runaway_key, subject: k-batch } }",
            0,
            "",
        ),
        (
            "{ root_cause: { kind: broad_surge, subject: k-batch } }",
            1,
            "root_cause.kind: expected broad_surge, got runaway_key",
        ),
        (
            "{ root_cause: { kind: runaway_key, subject: hashed_api_key=k-chat } }",
            1,
            "root_cause.subject: expected hashed_api_key=k-chat, got hashed_api_key=k-batch",
        ),
        (
            "{ root_cause: { kind: runaway_key, subject: team=k-batch } }",
            1,
            "root_cause.subject: expected team=k-batch, got hashed_api_key=k-batch",
        ),
    ];
    for (expect, code, message) in cases {
        let text = scenario_text(
            RUNAWAY,
            &[
                ("{effects}", "{ series: batch-tokens, per_sec: 0 }"),
                ("{duration}", "900"),
                ("{expect}", expect),
            ],
        );
        std::fs::write(&path, text).unwrap();
        let run = vigil(
            ["simulate", path.to_str().unwrap(), "--check", "--quiet"],
            dir.path(),
        );
        assert_eq!(run.code(), code, "{expect}: {run}");
        assert!(run.stderr.contains(message), "{expect}: {run}");
    }
}

#[test]
fn score_counts_a_wrong_cause_as_wrong_and_still_exits_zero() {
    let dir = TempDir::new("simulate-score");
    let write = |name: &str, expect: &str| {
        let text = scenario_text(
            RUNAWAY,
            &[
                ("{effects}", "{ series: batch-tokens, per_sec: 0 }"),
                ("{duration}", "900"),
                ("{expect}", expect),
            ],
        );
        std::fs::write(dir.join(name), text).unwrap();
    };
    write("a-right.yaml", RIGHT);
    // Deliberately wrong: the cause and its subject, and one page too many.
    write(
        "b-wrong.yaml",
        r#"{ pages: 1, actions: ["block key k-batch on litellm-gateway"], root_cause: { kind: broad_surge, subject: team=web } }"#,
    );
    write("c-silent.yaml", "{}");
    std::fs::write(dir.join("notes.txt"), "not a scenario").unwrap();
    let run = vigil(
        ["simulate", "--score", dir.path().to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(run.code(), 0, "{run}");
    let rows: Vec<Vec<&str>> = run
        .stdout
        .lines()
        .take(4)
        .map(|line| line.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        [
            vec!["scenario", "cause", "subject", "actions", "pages"],
            vec!["a-right", "ok", "ok", "ok", "ok"],
            vec!["b-wrong", "wrong", "wrong", "ok", "wrong"],
            vec!["c-silent", "-", "-", "-", "-"],
        ],
        "{run}"
    );
    assert_eq!(
        lines_with(&run.stdout, "causes "),
        ["causes 1/2, subjects 1/2, actions 2/2, pages 1/2"],
        "{run}"
    );

    // A scenario that cannot be loaded is reported; the others are still scored.
    std::fs::write(dir.join("d-broken.yaml"), "name: broken\n").unwrap();
    let run = vigil(
        ["simulate", "--score", dir.path().to_str().unwrap()],
        dir.path(),
    );
    assert_eq!(run.code(), 2, "{run}");
    assert!(run.stderr.contains("d-broken.yaml"), "{run}");
    assert!(
        run.stdout
            .contains("causes 1/2, subjects 1/2, actions 2/2, pages 1/2"),
        "{run}"
    );
}

/// The shipped suite scores in full on what it states: CI prints this table.
#[test]
fn score_of_the_shipped_scenarios_is_printed_and_complete() {
    let run = vigil(
        [
            "simulate",
            "--score",
            repo_root().join("tests/scenarios").to_str().unwrap(),
        ],
        &repo_root(),
    );
    assert_eq!(run.code(), 0, "{run}");
    let totals = lines_with(&run.stdout, "causes ");
    assert_eq!(totals.len(), 1, "{run}");
    for part in totals[0].split(", ") {
        let (_, fraction) = part.rsplit_once(' ').unwrap();
        let (right, stated) = fraction.split_once('/').unwrap();
        assert_eq!(right, stated, "{part} in {run}");
    }
}

#[test]
fn a_failover_is_not_undone_while_the_primary_still_fails() {
    let scenario = repo_root().join("tests/scenarios/failover-held-while-primary-fails.yaml");
    let run = vigil(
        ["simulate", scenario.to_str().expect("UTF-8"), "--check"],
        &repo_root(),
    );
    run.assert_success("simulate failover-held-while-primary-fails");
    let line_of = |text: &str| {
        run.stdout
            .lines()
            .position(|line| line.contains(text))
            .unwrap_or_else(|| panic!("no `{text}` in\n{run}"))
    };
    let held = line_of(
        "guardrail hold_until_recovered held: users are served; vigil's change stays in place while provider-errors still sees the problem",
    );
    let recovered = line_of("provider-errors cleared on provider-errors/model_group=gpt-4o");
    let undone = line_of("remove the fallbacks of gpt-4o");
    assert!(held < recovered && recovered < undone, "{run}");
    // Undone ten minutes after the primary recovered, not before.
    let seconds = |line: usize| -> f64 {
        let text = run.stdout.lines().nth(line).expect("a line");
        text.trim()
            .split('s')
            .next()
            .and_then(|secs| secs.trim().parse().ok())
            .unwrap_or_else(|| panic!("no time in `{text}`"))
    };
    assert!(seconds(undone) - seconds(recovered) >= 600.0, "{run}");
}
