//! Runbook validation: every problem is reported at once, with its path.

use super::*;
use crate::authz::ActionName;

fn spec() -> RunbookSpec {
    serde_json::from_value(serde_json::json!({
        "id": "block-runaway-key",
        "trigger": { "hypothesis": "runaway_key", "min_confidence": 0.7 },
        "mode": "autonomous",
        "steps": [{
            "id": "block-key",
            "action": "litellm.block_key",
            "params": { "key": "{{ incident.key }}" },
            "compensation": { "action": "litellm.unblock_key", "params": { "key": "{{ incident.key }}" } }
        }],
        "verification": { "check": "key_rate_below", "threshold_per_sec": 100.0, "hold_samples": 3, "within_secs": 30 }
    }))
    .unwrap()
}

#[test]
fn a_good_runbook_validates_with_defaults() {
    let runbook = spec().validate().unwrap();
    assert_eq!(runbook.trust, "reviewed");
    assert_eq!(runbook.guardrails.max_attempts_per_incident, 1);
    assert_eq!(runbook.guardrails.cooldown_per_target_ms, 900_000);
    assert_eq!(runbook.verification.within_ms, 30_000);
    assert_eq!(runbook.steps[0].action.cedar_action(), ActionName::Block);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let mut bad = spec();
    bad.id = "Block Key".to_owned();
    bad.trigger.as_mut().unwrap().min_confidence = 1.5;
    bad.steps[0]
        .params
        .insert("key".to_owned(), "{{ incident.kye }}".to_owned());
    bad.steps[0]
        .params
        .insert("budget".to_owned(), "1".to_owned());
    if let Some(compensation) = bad.steps[0].compensation.as_mut() {
        compensation.params.clear();
    }
    bad.steps.push(bad.steps[0].clone());
    bad.verification.hold_samples = 0;
    let problems: Vec<String> = bad
        .validate()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        vec![
            "id: `Block Key` must be kebab-case: a-z, 0-9 and `-`",
            "trigger.min_confidence: must be between 0 and 1",
            "steps[0].params.budget: `litellm.block_key` takes no parameter `budget`; it takes key, target",
            "steps[0].params.key: unknown variable `incident.kye`; known variables: incident.id, incident.key, incident.key_alias, incident.team, incident.source, incident.subject, incident.change.from, incident.change.to, incident.cause",
            "steps[0].compensation.params: `litellm.unblock_key` needs the parameter `key`",
            "steps[1].id: duplicate step id `block-key`",
            "steps[1].params.budget: `litellm.block_key` takes no parameter `budget`; it takes key, target",
            "steps[1].params.key: unknown variable `incident.kye`; known variables: incident.id, incident.key, incident.key_alias, incident.team, incident.source, incident.subject, incident.change.from, incident.change.to, incident.cause",
            "steps[1].compensation.params: `litellm.unblock_key` needs the parameter `key`",
            "verification.hold_samples: must be at least 1",
        ]
    );
}

#[test]
fn unknown_keys_are_rejected_by_the_raw_stage() {
    let error = serde_json::from_value::<RunbookSpec>(serde_json::json!({
        "id": "x", "trigger": { "hypothesis": "runaway_key" }, "mode": "autonomous",
        "steps": [], "verification": { "check": "key_rate_below", "threshold_per_sec": 1.0, "hold_samples": 1, "within_secs": 1 },
        "guardrail": {}
    }))
    .unwrap_err();
    assert!(
        error.to_string().contains("unknown field `guardrail`"),
        "{error}"
    );
}

#[test]
fn stricter_mode_wins() {
    assert_eq!(Mode::Autonomous.stricter(Mode::Advisory), Mode::Advisory);
    assert_eq!(Mode::Advisory.stricter(Mode::Autonomous), Mode::Advisory);
    assert_eq!(
        Mode::Autonomous.stricter(Mode::Autonomous),
        Mode::Autonomous
    );
}

#[test]
fn a_runbook_has_a_trigger_or_a_schedule_and_a_scheduled_one_answers_scheduled_runs() {
    let mut scheduled = spec();
    scheduled.trigger = None;
    scheduled.schedule = Some("0 */5 * * * *".to_owned());
    scheduled.verification.check = VerificationCheck::StepsSucceed;
    scheduled.verification.threshold_per_sec = None;
    scheduled.verification.within_secs = 0;
    let runbook = scheduled.validate().unwrap();
    assert_eq!(runbook.hypothesis, HypothesisKind::Scheduled);
    assert_eq!(runbook.schedule.as_deref(), Some("0 */5 * * * *"));

    let mut neither = spec();
    neither.trigger = None;
    let problems: Vec<String> = neither
        .validate()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        ["trigger: give `trigger` (a diagnosis it answers) or `schedule`"]
    );

    let mut both = spec();
    both.schedule = Some("*/5 * * * *".to_owned());
    let problems: Vec<String> = both
        .validate()
        .unwrap_err()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        ["schedule: give `trigger` or `schedule`, not both"]
    );
}
