//! The simulator's abilities, each on a small scenario: series that appear mid-run, effects
//! on a share of a series and with their own script, evals that follow the serving model,
//! pushed spans that vigil's intake reads, and the scenario checks with their key paths.

use expect_test::{Expect, expect};
use vigil_core::action::Action;
use vigil_core::intake::{self, Pushed};
use vigil_core::problem::Problems;

use super::payloads::{evals_body, spans_body};
use super::scenario::RawScenario;
use super::world::World;

const HEAD: &str = "name: t\nconfig: c.yaml\nduration_secs: 3600\n";

fn scenario(body: &str) -> RawScenario {
    crate::config::parse_yaml(&format!("{HEAD}{body}"), "t.yaml").expect("a scenario")
}

/// The problems `check` finds, one per line.
fn check(body: &str, expected: Expect) {
    let mut problems = Problems::default();
    scenario(body).check(&mut problems);
    let shown = match problems.finish(()) {
        Ok(()) => "ok".to_owned(),
        Err(found) => found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    };
    expected.assert_eq(&shown);
}

/// `(metric id value)` of every sample `source` shows at each second.
fn scrapes(world: &mut World, at_secs: &[i64]) -> String {
    at_secs
        .iter()
        .map(|secs| {
            let samples: Vec<String> = world
                .scrape("gw", secs * 1000)
                .iter()
                .map(|sample| format!("{}={}", sample.name, sample.value))
                .collect();
            format!("{secs}s: {}", samples.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn block(key: &str) -> Action {
    Action::LitellmBlockKey {
        source: "gw".to_owned(),
        key: key.to_owned(),
    }
}

fn route(model: &str, fallbacks: &[&str]) -> Action {
    Action::LitellmSetFallbacks {
        source: "gw".to_owned(),
        model: model.to_owned(),
        fallbacks: fallbacks.iter().map(|model| (*model).to_owned()).collect(),
    }
}

#[test]
fn a_series_is_absent_until_it_appears_and_counts_from_then() {
    let mut world = World::new(&scenario(
        "series:
  - { id: old, source: gw, metric: a, counter: [{ from_secs: 0, per_sec: 1 }] }
  - { id: new, source: gw, metric: b, appears_at_secs: 100, counter: [{ from_secs: 0, per_sec: 2 }] }
",
    ));
    expect![[r#"
        50s: a=50
        100s: a=100 b=0
        110s: a=110 b=20"#]]
    .assert_eq(&scrapes(&mut world, &[50, 100, 110]));
}

#[test]
fn an_effect_with_a_share_moves_only_that_share_of_the_series() {
    // One gateway replica of two takes the block: 100/s becomes 50/s, not 0.
    let mut world = World::new(&scenario(
        "series:
  - { id: burn, source: gw, metric: tokens, counter: [{ from_secs: 0, per_sec: 100 }] }
  - { id: state, source: gw, metric: state, gauge: [{ from_secs: 0, value: 2 }] }
responses:
  - action: litellm.block_key
    effects:
      - { series: burn, per_sec: 0, share: 0.5 }
      - { series: state, value: 0, share: 0.25 }
",
    ));
    scrapes(&mut world, &[10]);
    assert!(world.act(&block("k"), 10_000).succeeded);
    expect![[r#"
        10s: tokens=1000 state=1.5
        20s: tokens=1500 state=1.5"#]]
    .assert_eq(&scrapes(&mut world, &[10, 20]));
}

#[test]
fn an_effect_script_improves_then_worsens_relative_to_when_it_took_effect() {
    // The fix works for 100 s, then half of it wears off, then the series is back to its
    // own script (which itself rose at 300 s).
    let mut world = World::new(&scenario(
        "series:
  - id: burn
    source: gw
    metric: tokens
    counter: [{ from_secs: 0, per_sec: 100 }, { from_secs: 300, per_sec: 200 }]
responses:
  - action: litellm.block_key
    effects:
      - series: burn
        script:
          - { after_secs: 0, per_sec: 0 }
          - { after_secs: 100, per_sec: 50 }
          - { after_secs: 200, resume: true }
",
    ));
    assert!(world.act(&block("k"), 50_000).succeeded);
    expect![[r#"
        50s: tokens=5000
        150s: tokens=5000
        250s: tokens=10000
        300s: tokens=15000
        310s: tokens=17000"#]]
    .assert_eq(&scrapes(&mut world, &[50, 150, 250, 300, 310]));
}

/// How many cases each model answered and failed, as the intake parses the body.
fn eval_outcome(yaml: &str, fallback: Option<&str>) -> String {
    let scenario = scenario(&format!("pushes:\n  - at_secs: 60\n    evals: {yaml}\n"));
    let evals = scenario
        .pushes
        .first()
        .and_then(|push| push.evals.as_ref())
        .expect("evals");
    let body = match evals_body(evals, fallback) {
        Ok(body) => body,
        Err(message) => return format!("error: {message}"),
    };
    let batch = intake::parse_evals(&serde_json::to_vec(&body).expect("JSON")).expect("valid");
    let mut per_model = std::collections::BTreeMap::<String, (u32, u32)>::new();
    for result in &batch.results {
        let entry = per_model.entry(result.model.clone()).or_default();
        entry.0 += 1;
        entry.1 += u32::from(!result.passed);
    }
    per_model
        .iter()
        .map(|(model, (cases, failed))| format!("{model}: {failed}/{cases} failed"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn evals_follow_the_model_serving_with_its_share() {
    let by_model = "{ suite: s, prompt: p, version: '1', model: gpt-4o, cases: 20, \
                    by_model: { gpt-4o: { failed: 1 }, gpt-4o-mini: { failed: 8 } }";
    let cases = [
        (format!("{by_model} }}"), None),
        (format!("{by_model} }}"), Some("gpt-4o-mini")),
        (
            format!("{by_model}, fallback_share: 0.5 }}"),
            Some("gpt-4o-mini"),
        ),
        (format!("{by_model} }}"), Some("claude")),
        (
            "{ suite: s, prompt: p, version: '1', cases: 10, failed: 3 }".to_owned(),
            Some("claude"),
        ),
    ];
    let shown: Vec<String> = cases
        .iter()
        .map(|(yaml, fallback)| format!("{fallback:?} -> {}", eval_outcome(yaml, *fallback)))
        .collect();
    expect![[r#"
        None -> gpt-4o: 1/20 failed
        Some("gpt-4o-mini") -> gpt-4o-mini: 8/20 failed
        Some("gpt-4o-mini") -> gpt-4o: 1/10 failed, gpt-4o-mini: 4/10 failed
        Some("claude") -> error: `by_model` does not say how `claude` does, and it answers 20 of the cases
        Some("claude") -> gpt-4o: 3/10 failed"#]]
    .assert_eq(&shown.join("\n"));
}

#[test]
fn the_world_routes_to_the_fallback_vigil_set_and_back_when_it_is_restored() {
    let mut world = World::new(&scenario(""));
    assert_eq!(world.fallback_of("gpt-4o"), None);
    assert!(
        world
            .act(&route("gpt-4o", &["gpt-4o-mini"]), 1000)
            .succeeded
    );
    assert_eq!(world.fallback_of("gpt-4o"), Some("gpt-4o-mini"));
    assert_eq!(world.fallback_of("claude"), None);
    // The runbook's restore puts back the fallbacks before vigil's change: none.
    assert!(world.act(&route("gpt-4o", &[]), 2000).succeeded);
    assert_eq!(world.fallback_of("gpt-4o"), None);
}

#[test]
fn a_failed_failover_does_not_route() {
    let mut world = World::new(&scenario(
        "responses:\n  - { action: litellm.set_fallbacks, outcome: fail }\n",
    ));
    assert!(
        !world
            .act(&route("gpt-4o", &["gpt-4o-mini"]), 1000)
            .succeeded
    );
    assert_eq!(world.fallback_of("gpt-4o"), None);
}

#[test]
fn pushed_spans_expand_into_an_export_the_intake_reads() {
    let scenario = scenario(
        "pushes:
  - at_secs: 60
    spans:
      - { model: gpt-4o, provider: openai, server_address: api.openai.com, response_model: gpt-4o-2024-11-20, input_tokens: 800, output_tokens: 60, duration_ms: 1500, count: 3, service: support-bot }
      - { model: gpt-4o, system: openai, error: '429', count: 2, finish_reason: stop }
      - { db_system: qdrant, collection: docs, server_address: qdrant:6333, duration_ms: 6000, error: timeout }
",
    );
    let groups = scenario
        .pushes
        .first()
        .and_then(|push| push.spans.as_deref())
        .expect("spans");
    let body = spans_body(groups, 0, 1_767_225_660_000);
    let batch =
        intake::parse_otlp_traces(&serde_json::to_vec(&body).expect("JSON")).expect("valid");
    // Every span is sent and read: five GenAI spans and the database span.
    assert_eq!(batch.spans_received, 6);
    let mut ids: Vec<&str> = batch
        .spans
        .iter()
        .map(|span| span.span_id.as_str())
        .collect();
    ids.dedup();
    assert_eq!(ids.len(), 6, "every span has its own id");
    let first = batch.spans.first().expect("a span");
    assert_eq!(first.service_name.as_deref(), Some("support-bot"));
    assert_eq!(first.response_model.as_deref(), Some("gpt-4o-2024-11-20"));
    assert_eq!(first.end_time_unix_nano, 1_767_225_660_000_000_000);
    assert!((first.duration_seconds() - 1.5).abs() < 1e-9);
    let signals: Vec<String> = Pushed::Spans(batch)
        .signals()
        .iter()
        .filter(|signal| {
            signal.name == "vigil_genai_requests_total" || signal.name == "vigil_genai_tokens_total"
        })
        .map(|signal| format!("{} {:?} {:?}", signal.name, signal.labels, signal.kind))
        .collect();
    expect![[r#"
        vigil_genai_requests_total {"error_type": "", "model": "gpt-4o", "operation": "chat", "provider": "openai", "response_model": "gpt-4o-2024-11-20"} CounterIncrement(3.0)
        vigil_genai_requests_total {"error_type": "429", "model": "gpt-4o", "operation": "chat", "provider": "openai", "response_model": ""} CounterIncrement(2.0)
        vigil_genai_tokens_total {"direction": "input", "model": "gpt-4o", "provider": "openai"} CounterIncrement(2400.0)
        vigil_genai_tokens_total {"direction": "output", "model": "gpt-4o", "provider": "openai"} CounterIncrement(180.0)"#]]
    .assert_eq(&signals.join("\n"));
    // The database span carries the attributes a reader of retrieval spans looks for.
    let text = body.to_string();
    for attribute in ["db.system.name", "db.collection.name", "server.address"] {
        assert!(text.contains(attribute), "{attribute} in {text}");
    }
}

#[test]
fn the_scenario_checks_report_each_new_problem_with_its_key_path() {
    check(
        "series:
  - { id: a, source: gw, metric: m, appears_at_secs: 3600, counter: [{ from_secs: 0, per_sec: 1 }] }
pushes:
  - { at_secs: 1, spans: [] }
  - at_secs: 2
    spans:
      - { model: m, db_system: qdrant }
      - { db_system: qdrant, input_tokens: 5, count: 0 }
      - { model: m, collection: docs }
  - { at_secs: 3, spans: [{ model: m, count: 10001 }] }
  - { at_secs: 4, evals: { suite: s, prompt: p, version: '1', cases: 10, failed: 1, by_model: { gpt-4o: { failed: 1 } } } }
  - { at_secs: 5, evals: { suite: s, prompt: p, version: '1', cases: 10, by_model: { mini: { failed: 11 } } } }
  - { at_secs: 6, evals: { suite: s, prompt: p, version: '1', cases: 10, failed: 1, fallback_share: 2 } }
  - { at_secs: 7, evals: { suite: s, prompt: p, version: '1', cases: 10, failed: 1 }, after: { action: litellm.block_key } }
responses:
  - action: litellm.block_key
    effects:
      - { series: a, per_sec: 0, share: 0 }
      - { series: a, resume: true, share: 0.5 }
      - { series: a, per_sec: 1, script: [{ after_secs: 0, per_sec: 0 }] }
      - series: a
        script:
          - { after_secs: 10, per_sec: 0 }
          - { after_secs: 10, per_sec: 1, resume: true }
expect:
  root_cause: { kind: Provider-Degradation, subject: 'model_group=' }
",
        expect![[r#"
            series[0].appears_at_secs: must be before `duration_secs`
            pushes[0].spans: needs at least one group of spans
            pushes[1].spans[0]: give one of `model` (a call to a model) and `db_system` (a database call)
            pushes[1].spans[1].count: must be at least 1
            pushes[1].spans[1].input_tokens: belongs to a model call (`model`), not a database span
            pushes[1].spans[2].collection: belongs to a database span (`db_system`)
            pushes[2].spans: carries 10001 spans; one push carries at most 10000
            pushes[3].evals: give one of `failed` and `by_model`
            pushes[4].evals.by_model: needs the primary model `gpt-4o`
            pushes[4].evals.by_model.mini.failed: must be at most `cases`
            pushes[5].evals.fallback_share: goes with `by_model`
            pushes[5].evals.fallback_share: must be from 0 to 1
            pushes[6].after: give one of `evals`, `body` and `spans`
            responses[0].effects[0].share: must be above 0 and at most 1
            responses[0].effects[1].share: does not go with `resume`
            responses[0].effects[2]: give exactly one of `per_sec`, `value`, `resume: true` and `script`
            responses[0].effects[3].script[1].after_secs: must be after the previous segment's
            responses[0].effects[3].script[1]: give exactly one of `per_sec`, `value` and `resume: true`
            expect.root_cause.kind: must be a hypothesis kind in snake_case, such as `runaway_key`
            expect.root_cause.subject: must be a value, or `label=value`"#]],
    );
}
