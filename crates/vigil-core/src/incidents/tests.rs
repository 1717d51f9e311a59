//! The incident list over a hand-written timeline (the report's helpers): each state, the
//! filters, the order, and an id opened again.

use serde_json::json;

use super::*;
use crate::report::tests::{
    diagnosed, execute, human, opened, page, passed, record, resolved, spike_finding,
};

const S: i64 = 1000;

fn proposed(incident: &str, proposal: &str) -> Command {
    record(
        json!({"record": "step_proposed", "incident_id": incident, "step_id": "block",
        "action": {"kind": "litellm_block_key", "source": "gw", "key": "a"},
        "proposal_id": proposal, "action_hash": "h", "requested_by": "vigil", "why": "advisory"}),
    )
}

fn selected(incident: &str, runbook: &str, mode: &str) -> Command {
    record(
        json!({"record": "runbook_selected", "incident_id": incident,
        "runbook_id": runbook, "mode": mode}),
    )
}

fn escalated(incident: &str) -> Command {
    record(
        json!({"record": "incident_escalated", "incident_id": incident,
        "reason": "the fix did not hold", "page_delivered": true}),
    )
}

fn index() -> IncidentIndex {
    let timeline = vec![
        (100, spike_finding("fp-1", 100, &[(90, 50.0), (100, 60.0)])),
        (100, opened("inc-1", "fp-1")),
        (100, diagnosed("inc-1", "runaway_key")),
        (100, selected("inc-1", "block-runaway-key", "advisory")),
        (101, proposed("inc-1", "inc-1/proposal-1")),
        (200, opened("inc-2", "fp-2")),
        (200, diagnosed("inc-2", "provider_degradation")),
        (210, execute("inc-2", "inc-2/a1")),
        (260, escalated("inc-2")),
        (261, page("inc-2")),
        (300, opened("inc-3", "fp-3")),
        (301, proposed("inc-3", "inc-3/proposal-1")),
        (400, human("approve", "inc-1/proposal-1")),
        (401, execute("inc-1", "inc-1/a1")),
        (460, passed("inc-1")),
        (460, resolved("inc-1")),
    ];
    let mut index = IncidentIndex::new();
    for (secs, command) in &timeline {
        index.command(Timestamp(secs * S), command);
    }
    index
}

fn ids(rows: &[IncidentRow]) -> Vec<&str> {
    rows.iter().map(|row| row.id.as_str()).collect()
}

#[test]
fn each_incident_stands_where_its_records_left_it() {
    let index = index();
    let (rows, n) = index.list(&IncidentFilter::default(), 10);
    assert_eq!(n, 3);
    // The latest opened first.
    assert_eq!(ids(&rows), ["inc-3", "inc-2", "inc-1"]);
    let states: Vec<IncidentState> = rows.iter().map(|row| row.state).collect();
    assert_eq!(
        states,
        [
            IncidentState::AwaitingApproval,
            IncidentState::Paged,
            IncidentState::Resolved
        ]
    );
    let first = rows.iter().find(|row| row.id == "inc-1").unwrap();
    assert_eq!(first.detector, "token-spike");
    assert_eq!(first.hypothesis, Some("runaway_key"));
    assert_eq!(first.runbook.as_deref(), Some("block-runaway-key"));
    assert_eq!(first.mode, Some(Mode::Advisory));
    assert_eq!(first.outcome.as_deref(), Some("verified"));
    assert_eq!(first.last_at, Timestamp(460 * S));
    let paged = rows.iter().find(|row| row.id == "inc-2").unwrap();
    assert_eq!(paged.pages, 1);
    // An incident opened without a recorded finding names no detector, and says so plainly.
    assert_eq!(rows[0].detector, "");
    assert_eq!(index.hypotheses(), ["provider_degradation", "runaway_key"]);
}

#[test]
fn the_filters_narrow_by_state_hypothesis_subject_and_time() {
    let index = index();
    let only = |filter: IncidentFilter| {
        let (rows, n) = index.list(&filter, 10);
        assert_eq!(rows.len(), n);
        rows.into_iter().map(|row| row.id).collect::<Vec<_>>()
    };
    assert_eq!(
        only(IncidentFilter {
            state: Some(IncidentState::Paged),
            ..IncidentFilter::default()
        }),
        ["inc-2"]
    );
    assert_eq!(
        only(IncidentFilter {
            hypothesis: Some("runaway_key".to_owned()),
            ..IncidentFilter::default()
        }),
        ["inc-1"]
    );
    // The subject matches its label=value, ignoring case.
    assert_eq!(
        only(IncidentFilter {
            subject: Some("KEY=A".to_owned()),
            ..IncidentFilter::default()
        })
        .len(),
        3
    );
    assert!(
        only(IncidentFilter {
            subject: Some("nobody".to_owned()),
            ..IncidentFilter::default()
        })
        .is_empty()
    );
    assert_eq!(
        only(IncidentFilter {
            since: Some(Timestamp(150 * S)),
            until: Some(Timestamp(250 * S)),
            ..IncidentFilter::default()
        }),
        ["inc-2"]
    );
    // The limit cuts the list, not the count.
    let (rows, n) = index.list(&IncidentFilter::default(), 1);
    assert_eq!((ids(&rows), n), (vec!["inc-3"], 3));
}

#[test]
fn an_id_opened_again_starts_a_new_row() {
    let mut index = index();
    index.command(Timestamp(900 * S), &opened("inc-1", "fp-9"));
    let (rows, n) = index.list(&IncidentFilter::default(), 10);
    assert_eq!(n, 3);
    let again = rows.iter().find(|row| row.id == "inc-1").unwrap();
    assert_eq!(again.state, IncidentState::Open);
    assert_eq!(again.opened_at, Timestamp(900 * S));
    assert_eq!(again.runbook, None);
}

#[test]
fn state_names_round_trip() {
    for state in IncidentState::ALL {
        assert_eq!(IncidentState::parse(state.as_str()), Some(state));
    }
    assert_eq!(IncidentState::parse("closed"), None);
}

#[test]
fn a_spike_chart_draws_the_detectors_own_levels() {
    let Command::Record(Record::FindingRaised { finding }) =
        spike_finding("fp-1", 100, &[(70, 12.0), (85, 31.0), (100, 50.0)])
    else {
        panic!("a finding");
    };
    let chart = crate::chart::evidence_chart(&finding).unwrap();
    assert_eq!(chart.points.len(), 3);
    let levels: Vec<(&str, f64)> = chart.levels.iter().map(|l| (l.name, l.value)).collect();
    // Baseline 10/s with spread 1: fires at max(3 x 10, 10 + 4 x 1, 5) = 30, clears at 1.5 x 10.
    assert_eq!(
        levels,
        [("baseline", 10.0), ("fires at", 30.0), ("clears at", 15.0)]
    );
    assert_eq!(chart.unit, "tokens/s");
}
