//! The report over a hand-written timeline with one incident of every outcome, and the
//! onset rules per kind of evidence.

use serde_json::json;

use super::*;
use crate::detector::Severity;

const S: i64 = 1000;

pub(crate) fn command(value: serde_json::Value) -> Command {
    match serde_json::from_value(value.clone()) {
        Ok(command) => command,
        Err(error) => panic!("not a command: {error}\n{value:#}"),
    }
}

pub(crate) fn record(value: serde_json::Value) -> Command {
    let mut value = value;
    if let Some(object) = value.as_object_mut() {
        object.insert("type".to_owned(), json!("record"));
    }
    command(value)
}

pub(crate) fn subject(key: &str) -> serde_json::Value {
    json!({"label": "key", "value": key, "alias": null, "team": null})
}

pub(crate) fn points(values: &[(i64, f64)]) -> serde_json::Value {
    values
        .iter()
        .map(|(secs, value)| json!({"at": secs * S, "value": value}))
        .collect()
}

/// A spike that fired at `raised` seconds after `recent` rates, against a baseline of 10/s
/// with spread 1, firing at 3x (so 30/s is bad).
pub(crate) fn spike_finding(fingerprint: &str, raised: i64, recent: &[(i64, f64)]) -> Command {
    record(json!({
        "record": "finding_raised",
        "finding": {
            "fingerprint": fingerprint, "detector": "token-spike", "source": "gw",
            "subject": subject("a"), "severity": "page", "raised_at": raised * S,
            "evidence": {"kind": "spike", "metric": "m", "rate_per_sec": 50.0,
                "baseline_per_sec": 10.0, "spread_per_sec": 1.0, "z_score": 40.0, "ratio": 5.0,
                "thresholds": {"warmup_samples": 1, "baseline_half_life_secs": 600.0,
                    "fire_z": 4.0, "fire_ratio": 3.0, "min_rate_per_sec": 5.0,
                    "fire_after_samples": 2, "clear_ratio": 1.5, "clear_after_samples": 2,
                    "noise_floor_ratio": 0.1, "page_ratio": 10.0, "season_secs": 0,
                    "run_evidence": false, "season_memory": "average"},
                "recent": points(recent)}
        }
    }))
}

fn threshold_finding(fingerprint: &str, raised: i64, recent: &[(i64, f64)]) -> Command {
    record(json!({
        "record": "finding_raised",
        "finding": {
            "fingerprint": fingerprint, "detector": "latency", "source": "gw",
            "subject": subject("b"), "severity": "page", "raised_at": raised * S,
            "evidence": {"kind": "threshold", "describe": "p95 latency",
                "reading": {"kind": "value", "selector": "latency_seconds"}, "value": 3.0, "bound": "above",
                "fire": 2.0, "clear": 1.5, "n_observations": 2, "recent": points(recent)}
        }
    }))
}

pub(crate) fn opened(incident: &str, fingerprint: &str) -> Command {
    record(json!({"record": "incident_opened", "incident_id": incident,
        "fingerprint": fingerprint, "subject": subject("a"), "severity": "page"}))
}

pub(crate) fn diagnosed(incident: &str, kind: &str) -> Command {
    record(
        json!({"record": "diagnosed", "incident_id": incident, "diagnosis": {
        "hypotheses": [{"kind": kind, "subject": null, "confidence": 0.9, "evidence": []}],
        "why": "because"}}),
    )
}

pub(crate) fn execute(incident: &str, action_id: &str) -> Command {
    command(
        json!({"type": "execute", "action_id": action_id, "incident_id": incident,
        "idempotency_key": action_id,
        "action": {"kind": "litellm_block_key", "source": "gw", "key": "a"}}),
    )
}

pub(crate) fn passed(incident: &str) -> Command {
    record(json!({"record": "verification_passed", "incident_id": incident, "observed": []}))
}

pub(crate) fn resolved(incident: &str) -> Command {
    record(
        json!({"record": "incident_resolved", "incident_id": incident,
        "outcome": "verified", "duration_ms": 0}),
    )
}

pub(crate) fn page(incident: &str) -> Command {
    command(
        json!({"type": "page", "page_id": format!("{incident}/page"), "incident_id": incident,
        "page": {"severity": "page", "title": "t", "why": {"incident_id": incident,
            "summary": "s", "evidence": [], "actions": [], "reason": "r", "ask": "a"}}}),
    )
}

pub(crate) fn human(verb: &str, proposal: &str) -> Command {
    let command = if verb == "approve" {
        json!({"command": "approve", "proposal_id": proposal, "action_hash": "h"})
    } else {
        json!({"command": "reject", "proposal_id": proposal})
    };
    record(
        json!({"record": "human_action", "by": "alice", "reason": "ok",
        "command": command, "accepted": true, "outcome": "done"}),
    )
}

/// Seconds since the epoch and a command, in ledger order.
fn timeline() -> Vec<(i64, Command)> {
    vec![
        // Before the period: not counted, nor is anything that happens to it later.
        (50, opened("inc-0", "old")),
        // inc-1: a spike whose bad run began at 85 s (70 s was under 30/s), raised at 100 s;
        // blocked, verified and resolved a minute later.
        (
            100,
            spike_finding("fp-1", 100, &[(70, 12.0), (85, 31.0), (100, 50.0)]),
        ),
        (100, opened("inc-1", "fp-1")),
        (100, diagnosed("inc-1", "runaway_key")),
        (100, execute("inc-1", "inc-1/a1")),
        (
            160,
            record(
                json!({"record": "verification_passed", "incident_id": "inc-1",
            "observed": []}),
            ),
        ),
        (160, resolved("inc-1")),
        // inc-2: a latency breach of two observations; Cedar denies, vigil pages, the page
        // resolves when the findings clear.
        (
            200,
            threshold_finding("fp-2", 200, &[(170, 1.0), (185, 2.5), (200, 3.0)]),
        ),
        (200, opened("inc-2", "fp-2")),
        (205, diagnosed("inc-2", "threshold_breach")),
        (
            205,
            record(json!({"record": "step_denied", "incident_id": "inc-2",
            "step_id": "s1", "determining_policies": []})),
        ),
        (205, page("inc-2")),
        (205, page("inc-0")),
        (
            206,
            record(
                json!({"record": "incident_escalated", "incident_id": "inc-2",
            "reason": "no safe fix", "page_delivered": true}),
            ),
        ),
        (
            800,
            record(json!({"record": "page_resolved", "incident_id": "inc-2",
            "outcome": "cleared"})),
        ),
        // inc-3: no finding in the ledger (undated); proposed, approved, the first fix
        // failed and was undone, the second verified.
        (300, opened("inc-3", "fp-3")),
        (300, diagnosed("inc-3", "runaway_key")),
        (
            300,
            record(json!({"record": "step_proposed", "incident_id": "inc-3",
            "step_id": "s1", "action": {"kind": "litellm_block_key", "source": "gw", "key": "a"},
            "proposal_id": "inc-3/p1"})),
        ),
        (
            300,
            record(json!({"record": "step_proposed", "incident_id": "inc-0",
            "step_id": "s1", "action": {"kind": "litellm_block_key", "source": "gw", "key": "a"},
            "proposal_id": "inc-0/p1"})),
        ),
        (400, human("approve", "inc-3/p1")),
        (400, human("approve", "inc-0/p1")),
        (400, execute("inc-3", "inc-3/a1")),
        (
            460,
            record(
                json!({"record": "verification_failed", "incident_id": "inc-3",
            "reason": "still high", "observed": []}),
            ),
        ),
        (
            460,
            record(
                json!({"record": "compensation_started", "incident_id": "inc-3",
            "step_ids": ["s1"]}),
            ),
        ),
        (470, execute("inc-3", "inc-3/a2")),
        (
            530,
            record(
                json!({"record": "verification_passed", "incident_id": "inc-3",
            "observed": []}),
            ),
        ),
        (530, resolved("inc-3")),
        // inc-4: cleared before anything changed.
        (600, opened("inc-4", "fp-4")),
        (600, diagnosed("inc-4", "broad_surge")),
        (640, resolved("inc-4")),
        // inc-5: open at the end; its proposal is rejected.
        (900, opened("inc-5", "fp-5")),
        (
            900,
            record(json!({"record": "step_proposed", "incident_id": "inc-5",
            "step_id": "s1", "action": {"kind": "litellm_block_key", "source": "gw", "key": "a"},
            "proposal_id": "inc-5/p1"})),
        ),
        (950, human("reject", "inc-5/p1")),
        // After the period: ignored.
        (2000, resolved("inc-5")),
        (2000, opened("inc-6", "fp-6")),
    ]
}

fn report(assumptions: Assumptions) -> Report {
    let mut builder = ReportBuilder::new(Period {
        from: Timestamp(60 * S),
        until: Timestamp(1000 * S),
    });
    for (secs, command) in timeline() {
        builder.command(Timestamp(secs * S), &command);
    }
    builder.finish(assumptions)
}

#[test]
fn every_outcome_is_counted_once_and_only_for_incidents_opened_in_the_period() {
    let report = report(Assumptions::default());
    assert_eq!(report.incidents, 5);
    assert_eq!(
        report.outcomes,
        Outcomes {
            fixed_by_vigil: 1,
            fixed_with_approval: 1,
            cleared_without_action: 1,
            paged: 1,
            open: 1,
        }
    );
    assert_eq!(report.auto_resolved_pct, Some(25.0));
    assert_eq!((report.pages_sent, report.pages_delivered), (1, 1));
    assert_eq!(report.pages_avoided, 3);
    assert_eq!(
        (report.failed_fixes, report.incidents_with_failed_fix),
        (1, 1)
    );
    assert_eq!(report.compensations, 1);
    assert_eq!(report.policy_denials, 1);
    assert_eq!(
        (report.proposals, report.approvals, report.rejections),
        (2, 1, 1)
    );
}

#[test]
fn times_are_measured_from_the_onset_and_the_opening() {
    let report = report(Assumptions::default());
    // inc-1: 100 - 85; inc-2: 200 - 185 (the run of the last two, 2.5 and 3.0, over 2.0).
    assert_eq!(report.time_to_detect.dated.n, 2);
    assert_eq!(report.time_to_detect.dated.mean_secs, Some(15.0));
    assert_eq!(report.time_to_detect.undated, 3);
    // Diagnosed at 0, 5, 0, 0 s after opening; inc-5 never was.
    assert_eq!(report.time_to_diagnose.n, 4);
    assert_eq!(report.time_to_diagnose.mean_secs, Some(1.25));
    assert_eq!(report.time_to_diagnose.max_secs, Some(5.0));
    // Resolved without a page: inc-1 (60 s), inc-3 (230 s), inc-4 (40 s).
    assert_eq!(report.time_to_resolve.n, 3);
    assert_eq!(report.time_to_resolve.mean_secs, Some(110.0));
    assert_eq!(report.time_to_resolve.median_secs, Some(60.0));
    // inc-2's page resolved 600 s after opening.
    assert_eq!(report.time_to_clear_paged.mean_secs, Some(600.0));
}

#[test]
fn causes_rank_by_incidents_with_what_came_of_them() {
    let report = report(Assumptions::default());
    let causes: Vec<(&str, u64, u64, u64)> = report
        .top_causes
        .iter()
        .map(|cause| {
            (
                cause.kind.as_str(),
                cause.incidents,
                cause.fixed,
                cause.paged,
            )
        })
        .collect();
    assert_eq!(
        causes,
        vec![
            ("runaway_key", 2, 2, 0),
            ("broad_surge", 1, 0, 0),
            ("threshold_breach", 1, 0, 1),
            ("undiagnosed", 1, 0, 0),
        ]
    );
}

#[test]
fn hours_returned_follow_the_assumptions() {
    // 3 incidents without a page at 45 min, less 2 decisions at 5 min: 125 min.
    let default = report(Assumptions::default()).hours_returned;
    assert_eq!((default.incidents_without_page, default.decisions), (3, 2));
    assert!(
        (default.hours - 125.0 / 60.0).abs() < 1e-12,
        "{}",
        default.hours
    );
    let costly = report(Assumptions {
        minutes_per_incident: 1.0,
        minutes_per_decision: 30.0,
    })
    .hours_returned;
    assert!(
        (costly.hours - (3.0 - 60.0) / 60.0).abs() < 1e-12,
        "{}",
        costly.hours
    );
}

#[test]
fn an_incident_id_opened_again_counts_twice() {
    // Two game days on the same virtual clock, joined into one ledger, reuse ids.
    let mut builder = ReportBuilder::new(Period {
        from: Timestamp(0),
        until: Timestamp(1000 * S),
    });
    for (secs, command) in [
        (10, opened("inc-1", "fp-1")),
        (10, page("inc-1")),
        (10, opened("inc-1", "fp-1")),
        (10, execute("inc-1", "inc-1/a1")),
        (20, passed("inc-1")),
        (20, resolved("inc-1")),
    ] {
        builder.command(Timestamp(secs * S), &command);
    }
    let report = builder.finish(Assumptions::default());
    assert_eq!(report.incidents, 2);
    assert_eq!(
        (report.outcomes.paged, report.outcomes.fixed_by_vigil),
        (1, 1)
    );
}

#[test]
fn a_scheduled_run_is_counted_apart_from_the_incidents() {
    let mut builder = ReportBuilder::new(Period {
        from: Timestamp(0),
        until: Timestamp(1000 * S),
    });
    for (secs, command) in [
        // As the engine records a schedule that came due: no finding, a `scheduled` diagnosis.
        (10, opened("inc-s1", "schedule/runbook=nightly")),
        (10, diagnosed("inc-s1", "scheduled")),
        (10, execute("inc-s1", "inc-s1/a1")),
        (20, resolved("inc-s1")),
        (30, opened("inc-s2", "schedule/runbook=nightly")),
        (30, diagnosed("inc-s2", "scheduled")),
        (30, page("inc-s2")),
        (40, spike_finding("fp-1", 40, &[(40, 50.0)])),
        (40, opened("inc-1", "fp-1")),
        (40, execute("inc-1", "inc-1/a1")),
        (50, passed("inc-1")),
        (50, resolved("inc-1")),
    ] {
        builder.command(Timestamp(secs * S), &command);
    }
    let report = builder.finish(Assumptions::default());
    assert_eq!(report.incidents, 1);
    assert_eq!(report.outcomes.fixed_by_vigil, 1);
    assert_eq!((report.pages_sent, report.pages_avoided), (0, 1));
    assert_eq!(
        report.scheduled,
        ScheduledRuns {
            runs: 2,
            ended_without_page: 1,
            paged: 1,
            pages_sent: 1,
        }
    );
    assert_eq!(report.hours_returned.incidents_without_page, 1);
}

#[test]
fn an_empty_period_reports_zeros_and_no_share() {
    let builder = ReportBuilder::new(Period {
        from: Timestamp(0),
        until: Timestamp(10),
    });
    let report = builder.finish(Assumptions::default());
    assert_eq!(report.incidents, 0);
    assert_eq!(report.auto_resolved_pct, None);
    assert_eq!(report.time_to_resolve, Durations::default());
    assert_eq!(report.hours_returned.hours, 0.0);
}

#[test]
fn assumptions_out_of_range_are_named() {
    let bad = Assumptions {
        minutes_per_incident: f64::NAN,
        ..Assumptions::default()
    };
    let error = bad.validate().unwrap_err();
    assert!(error.starts_with("minutes per incident must be"), "{error}");
    let bad = Assumptions {
        minutes_per_decision: -1.0,
        ..Assumptions::default()
    };
    assert!(
        bad.validate()
            .unwrap_err()
            .starts_with("minutes per decision")
    );
    assert_eq!(Assumptions::default().validate(), Ok(()));
}

#[test]
fn the_onset_is_the_start_of_the_trailing_bad_run() {
    let Command::Record(Record::FindingRaised { finding }) = spike_finding(
        "f",
        100,
        &[(40, 40.0), (55, 12.0), (70, 31.0), (85, 35.0), (100, 50.0)],
    ) else {
        panic!("not a finding");
    };
    // 40 s was bad too, but the run was broken at 55 s.
    assert_eq!(onset(&finding), Some(Timestamp(70 * S)));
    let Command::Record(Record::FindingRaised { mut finding }) =
        spike_finding("f", 100, &[(85, 35.0), (100, 12.0)])
    else {
        panic!("not a finding");
    };
    // The last point is not past the level: no run to date.
    assert_eq!(onset(&finding), None);
    finding.evidence = Evidence::Schedule(crate::detector::ScheduleEvidence {
        runbook: "r".to_owned(),
        schedule: "* * * * *".to_owned(),
    });
    assert_eq!(onset(&finding), None);
    assert_eq!(finding.severity, Severity::Page);
}
