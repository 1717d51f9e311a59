//! The why-packet of sessions with a topology: cause, chain, evidence per layer, what vigil
//! did and left in place, the one thing to do, the commands; and the packet of older
//! sessions, unchanged.

use super::effect_tests::{BARELY, HALVED, keeping, run};
use super::*;
use crate::topology::TopologyConfig;

fn with_topology(mut config: EngineConfig) -> EngineConfig {
    config.topology = Some(TopologyConfig::default());
    config
}

fn only_page(scenario: &super::tests::Scenario) -> &Page {
    assert_eq!(scenario.pages.len(), 1, "{:#?}", scenario.log);
    &scenario.pages[0]
}

#[test]
fn a_partial_fix_pages_with_what_it_left_in_place_and_how_to_undo_it() {
    let scenario = run(with_topology(keeping(0.4)), HALVED);
    let why = &only_page(&scenario).why;
    assert_eq!(
        why.cause,
        "a runaway key: key batch-job (gateway layer; runaway_key, 100 %)"
    );
    assert!(
        why.summary
            .starts_with("token spike on key batch-job: 9,000 tokens/s"),
        "{}",
        why.summary
    );
    assert_eq!(
        why.left_in_place,
        ["block key h-batch on gateway (undo: unblock key h-batch on gateway)"]
    );
    // vigil's situation (a change half working) matters more than the cause's advice.
    assert!(why.ask.starts_with("vigil's change helped"), "{}", why.ask);
    assert_eq!(
        why.commands,
        [
            format!("vigil ledger show --incident {}", why.incident_id),
            format!("vigil replay --incident {}", why.incident_id),
        ]
    );
    assert_eq!(
        why.chain.first().map(|line| &line[..10]),
        Some("[gateway] ")
    );
    assert!(
        why.chain
            .last()
            .is_some_and(|line| line.contains("cause: a runaway key")),
        "{:?}",
        why.chain
    );
    assert!(
        why.evidence.iter().all(|line| line.starts_with('[')),
        "every fact names its layer: {:?}",
        why.evidence
    );
    assert!(
        why.actions
            .iter()
            .any(|line| line.contains("removed 50 % of the harm")),
        "what vigil did and its measured effect: {:?}",
        why.actions
    );
}

#[test]
fn a_fix_that_was_undone_leaves_nothing_in_place_and_asks_about_the_cause() {
    let scenario = run(with_topology(keeping(0.4)), BARELY);
    let why = &only_page(&scenario).why;
    assert!(why.left_in_place.is_empty(), "{:?}", why.left_in_place);
    assert!(
        why.actions
            .iter()
            .any(|line| line.starts_with("unblock key h-batch")),
        "{:?}",
        why.actions
    );
    assert_eq!(
        why.ask,
        "Find who runs key batch-job and stop the job or loop behind it; revoke the key if it leaked."
    );
}

#[test]
fn sessions_recorded_before_the_topology_keep_their_packet_word_for_word() {
    let scenario = run(keeping(0.4), BARELY);
    let why = &only_page(&scenario).why;
    assert!(why.cause.is_empty() && why.chain.is_empty() && why.commands.is_empty());
    assert!(why.left_in_place.is_empty() && why.against.is_empty());
    assert_eq!(
        why.ask,
        "vigil's fix did not hold and was undone; the problem is still live. Look at the key's traffic and decide whether to block or revoke it by hand."
    );
    // The new fields are absent from the recorded JSON, so old ledgers compare equal.
    let json = serde_json::to_value(why).expect("a packet serializes");
    let mut keys: Vec<_> = json
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "actions",
            "ask",
            "evidence",
            "incident_id",
            "reason",
            "summary"
        ]
    );
}
