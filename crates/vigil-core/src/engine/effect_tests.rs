//! Fixes judged by their measured effect, and the escalation ladder.

use expect_test::expect;

use super::tests::{Scenario, config, runbook};
use super::*;
use crate::authz::{Effect, Mode};
use crate::runbook::{RunbookSpec, Step};

const NORMAL: [f64; 3] = [500.0, 520.0, 480.0];
const RUNAWAY: [f64; 3] = [9000.0, 520.0, 480.0];
/// The block took on one replica of two: the key still burns half.
pub(super) const HALVED: [f64; 3] = [4500.0, 520.0, 480.0];
/// The block did almost nothing.
pub(super) const BARELY: [f64; 3] = [8500.0, 520.0, 480.0];

pub(super) fn keeping(share: f64) -> EngineConfig {
    let mut config = config(Mode::Autonomous);
    let mut runbook = runbook(Mode::Autonomous);
    runbook.verification.keep_if_reduced_by = Some(share);
    config.runbooks = vec![runbook];
    config
}

/// Runs the runaway until the deadline, with the key at `after` once blocked.
pub(super) fn run(config: EngineConfig, after: [f64; 3]) -> Scenario {
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    scenario.finish_action(&commands, true);
    let mut commands = scenario.scrapes(10, after);
    commands.extend(scenario.feed(Event::Tick));
    if commands
        .iter()
        .any(|command| matches!(command, Command::Authorize { .. }))
    {
        let commands = scenario.decide(&commands, Effect::Allow, &["compensate-own-block"]);
        scenario.finish_action(&commands, true);
    }
    scenario
}

fn tail(scenario: &Scenario, from: &str) -> String {
    let start = scenario
        .log
        .iter()
        .position(|line| line.starts_with(from))
        .unwrap_or_else(|| panic!("no `{from}` in {:#?}", scenario.log));
    scenario.log[start..].join("\n") + "\n"
}

#[test]
fn a_fix_that_removed_enough_of_the_harm_is_kept_and_escalated_with_its_numbers() {
    let scenario = run(keeping(0.4), HALVED);
    expect![[r#"
        verification failed: the fix did not work: key batch-job still uses 4,500 tokens/s (must be under 100 tokens/s)
        effect of the fix for incident inc-79abda4eea0a: 9,000 → 4,500 tokens/s (−50 %) removed 50 % of the harm: partly fixed, the change stays
        page: vigil needs a human: token spike on key batch-job (gateway) / partly fixed: vigil's change worked only in part: 9,000 → 4,500 tokens/s (−50 %) removed 50 % of the harm; it is left in place (block key h-batch on gateway)
    "#]]
    .assert_eq(&tail(&scenario, "verification failed"));
    assert!(!scenario.log.iter().any(|line| line.contains("unblock")));
}

#[test]
fn a_fix_that_removed_too_little_is_undone_as_before() {
    let scenario = run(keeping(0.4), BARELY);
    let text = tail(&scenario, "verification failed");
    assert!(
        text.contains("removed 5.6 % of the harm: no real effect, undoing"),
        "{text}"
    );
    assert!(
        text.contains("execute: unblock key h-batch on gateway"),
        "{text}"
    );
    // Without the setting, even a halving is undone: sessions keep their runbooks' words.
    let scenario = run(config(Mode::Autonomous), HALVED);
    let text = tail(&scenario, "verification failed");
    assert!(!text.contains("effect of the fix"), "{text}");
    assert!(
        text.contains("execute: unblock key h-batch on gateway"),
        "{text}"
    );
}

#[test]
fn a_ladder_runs_its_stronger_rung_when_the_first_was_not_enough() {
    // Rung 1 throttles, rung 2 blocks; each is authorized by Cedar.
    let spec: RunbookSpec = serde_json::from_value(serde_json::json!({
        "id": "block-runaway-key",
        "trigger": { "hypothesis": "runaway_key", "min_confidence": 0.7 },
        "mode": "autonomous",
        "steps": [
            {
                "id": "throttle-key",
                "action": "litellm.update_key",
                "params": { "key": "{{ incident.key }}", "rpm_limit": "10" },
                "compensation": { "action": "litellm.restore_key", "params": { "key": "{{ incident.key }}" } }
            },
            {
                "id": "block-key",
                "rung": 2,
                "action": "litellm.block_key",
                "params": { "key": "{{ incident.key }}" },
                "compensation": { "action": "litellm.unblock_key", "params": { "key": "{{ incident.key }}" } }
            }
        ],
        "verification": { "check": "key_rate_below", "threshold_per_sec": 100.0, "hold_samples": 2, "within_secs": 10, "keep_if_reduced_by": 0.4 },
        "guardrails": { "cooldown_per_target_secs": 600 }
    }))
    .unwrap();
    let mut config = config(Mode::Autonomous);
    config.runbooks = vec![spec.validate().unwrap()];
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["throttle"]);
    scenario.finish_action(&commands, true);
    // The throttle halves the burn: not enough, and a stronger rung is left.
    let mut commands = scenario.scrapes(10, HALVED);
    commands.extend(scenario.feed(Event::Tick));
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    scenario.finish_action(&commands, true);
    // The block stops it.
    scenario.scrapes(3, [0.0, 520.0, 480.0]);
    let text = tail(&scenario, "verification failed");
    assert!(
        text.contains("9,000 → 4,500 tokens/s (−50 %) removed 50 % of the harm: not enough, trying the next rung"),
        "{text}"
    );
    assert!(
        text.contains("execute: block key h-batch on gateway"),
        "{text}"
    );
    assert!(text.contains("resolved after"), "{text}");
    assert!(!text.contains("page:"), "{text}");
}

#[test]
fn rungs_go_up_by_one_from_the_first() {
    let steps = |rungs: &[Option<u32>]| -> Vec<serde_json::Value> {
        rungs
            .iter()
            .enumerate()
            .map(|(idx, rung)| {
                let mut step = serde_json::json!({
                    "id": format!("step-{idx}"),
                    "action": "litellm.block_key",
                    "params": { "key": "{{ incident.key }}" }
                });
                if let Some(rung) = rung {
                    step["rung"] = serde_json::json!(rung);
                }
                step
            })
            .collect()
    };
    let problems = |rungs: &[Option<u32>]| -> Vec<String> {
        let spec: RunbookSpec = serde_json::from_value(serde_json::json!({
            "id": "ladder",
            "trigger": { "hypothesis": "runaway_key" },
            "mode": "autonomous",
            "steps": steps(rungs),
            "verification": { "check": "finding_clears", "within_secs": 10, "keep_if_reduced_by": 1.5 },
        }))
        .unwrap();
        match spec.validate() {
            Ok(runbook) => runbook
                .steps
                .iter()
                .map(|step: &Step| format!("rung {}", step.rung))
                .collect(),
            Err(problems) => problems.iter().map(ToString::to_string).collect(),
        }
    };
    expect![[r#"
        [
            "steps[0].rung: the first step is on rung 1",
            "steps[2].rung: rungs go up by one in step order: after rung 2 comes rung 2 or 3",
            "verification.keep_if_reduced_by: must be a share above 0 and at most 1 (0.4 keeps a fix that removed 40 % of the harm)",
        ]
    "#]]
    .assert_debug_eq(&problems(&[Some(2), None, Some(4)]));
}

#[test]
fn the_owner_of_what_vigil_changed_is_told_what_why_and_how_to_undo_it() {
    let mut config = config(Mode::Autonomous);
    config.topology = Some(crate::topology::TopologyConfig::default());
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    let commands = scenario.finish_action(&commands, true);
    let notice = commands
        .iter()
        .find_map(|command| match command {
            Command::Notify { notice, .. } => Some(notice.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no notification in {:#?}", scenario.log));
    // The key's team, as the gateway's labels name it, owns it.
    assert_eq!(notice.owner, "ml");
    assert_eq!(notice.change, "block key h-batch on gateway");
    assert!(notice.why.contains("runaway key"), "{}", notice.why);
    assert!(
        notice.undo.contains("unblock key h-batch on gateway"),
        "{}",
        notice.undo
    );
    // No page: a notification is not one.
    assert!(!scenario.log.iter().any(|line| line.starts_with("page:")));
    // Sessions without a topology tell nobody (they replay as they ran).
    let mut old = Scenario::new(super::tests::config(Mode::Autonomous));
    old.scrapes(10, NORMAL);
    let commands = old.scrapes(2, RUNAWAY);
    let commands = old.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    let commands = old.finish_action(&commands, true);
    assert!(
        !commands
            .iter()
            .any(|command| matches!(command, Command::Notify { .. }))
    );
}
