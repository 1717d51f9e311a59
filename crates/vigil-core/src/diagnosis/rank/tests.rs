//! Ranking causes over an incident's findings: each case a small stack, findings at given
//! minutes, and the expected best cause with its evidence and counter-evidence.

use super::*;
use crate::detector::change::Change;
use crate::detector::threshold::{Bound, Reading, ThresholdEvidence};
use crate::detector::{Severity, Subject};
use crate::diagnosis::{DEFAULT_CHANGE_WINDOW_MS, DiagnosisConfig, diagnose};
use crate::store::Selector;
use crate::topology::{Edge, Growth, Origin, Relation};

const MINUTE: i64 = 60_000;

/// key k1 and eval suite qa call gpt-4o, hosted by openai; claude is hosted by anthropic.
fn stack() -> Topology {
    let mut topology = Topology::default();
    let mut growth = Growth::default();
    for (from, relation, to) in [
        ("key:k1", Relation::Calls, "model_group:gpt-4o"),
        ("eval_suite:qa", Relation::Calls, "model_group:gpt-4o"),
        ("eval_suite:qa", Relation::Uses, "prompt:support"),
        ("model_group:gpt-4o", Relation::HostedBy, "provider:openai"),
        (
            "model_group:claude",
            Relation::HostedBy,
            "provider:anthropic",
        ),
    ] {
        topology.learn_edge(
            &Edge {
                from: from.parse().unwrap(),
                relation,
                to: to.parse().unwrap(),
            },
            &Origin::Declared,
            &mut growth,
        );
    }
    topology
}

fn subject(label: &str, value: &str) -> Subject {
    Subject {
        label: label.to_owned(),
        value: value.to_owned(),
        alias: None,
        team: None,
    }
}

/// A threshold finding on `label=value` at `minute`.
fn finding(detector: &str, source: &str, label: &str, value: &str, minute: i64) -> Finding {
    Finding {
        fingerprint: format!("{detector}/{label}={value}"),
        detector: detector.to_owned(),
        source: source.to_owned(),
        subject: subject(label, value),
        severity: Severity::Page,
        raised_at: Timestamp(minute * MINUTE),
        evidence: Evidence::Threshold(ThresholdEvidence {
            describe: format!("{detector} reading"),
            reading: Reading::Value {
                selector: Selector::parse("m").unwrap(),
            },
            value: 20.0,
            bound: Bound::Above,
            fire: 10.0,
            clear: 5.0,
            n_observations: 2,
            recent: Vec::new(),
        }),
    }
}

fn change(label: &str, value: &str, version_label: &str, minute: i64) -> Change {
    Change {
        detector: "versions".to_owned(),
        source: "gw".to_owned(),
        subject: subject(label, value),
        version_label: version_label.to_owned(),
        from: "v1".to_owned(),
        to: "v2".to_owned(),
        at: Timestamp(minute * MINUTE),
    }
}

const CONFIG: DiagnosisConfig = DiagnosisConfig {
    runaway_min_share: 0.7,
    change_window_ms: DEFAULT_CHANGE_WINDOW_MS,
    demand: None,
    excess: crate::diagnosis::ExcessRule::Net,
};

fn own(finding: &Finding, topology: &Topology, changes: &[Change]) -> Diagnosis {
    enrich(
        diagnose(
            &CONFIG,
            crate::human::NumberStyle::Readable,
            finding,
            &[],
            changes,
        ),
        finding,
        topology,
        3,
        changes,
        DEFAULT_CHANGE_WINDOW_MS,
    )
}

/// The best cause, its subject, and its facts, for reading in a test.
fn summary(diagnosis: &Diagnosis) -> String {
    let best = diagnosis.best().unwrap();
    let mut lines = vec![format!(
        "{} {} ({:?}, {:.2})",
        best.kind.as_str(),
        best.subject.as_ref().map_or("-", |s| s.value.as_str()),
        best.layer,
        best.confidence
    )];
    lines.extend(
        best.support
            .iter()
            .map(|f| format!("  + [{}] {}", f.layer.as_str(), f.text)),
    );
    lines.extend(
        best.against
            .iter()
            .map(|f| format!("  - [{}] {}", f.layer.as_str(), f.text)),
    );
    lines.join("\n")
}

fn ranked(findings: &[Finding], changes: &[Change]) -> Diagnosis {
    let topology = stack();
    let diagnoses: Vec<Diagnosis> = findings
        .iter()
        .map(|finding| own(finding, &topology, changes))
        .collect();
    let members: Vec<Member<'_>> = findings
        .iter()
        .zip(&diagnoses)
        .map(|(finding, diagnosis)| Member { finding, diagnosis })
        .collect();
    rank(&members, &topology, 3)
}

#[test]
fn a_failing_provider_explains_an_eval_drop_downstream_and_comes_first() {
    let provider = finding("provider-errors", "gw", "api_provider", "openai", 0);
    let evals = finding("eval-pass", "push:evals", "suite", "qa", 5);
    let diagnosis = ranked(&[evals.clone(), provider.clone()], &[]);
    expect_test::expect![[r#"
        provider_degradation openai (Some(Provider), 1.00)
          + [evals] eval_suite:qa depends on provider:openai: eval-pass reading of suite qa is 20, above the limit of 10 for 2 observations in a row
          + [provider] it came before the findings it explains"#]]
    .assert_eq(&summary(&diagnosis));
    // The eval drop's own hypothesis is a symptom: its provider is failing too.
    let symptom = &diagnosis.hypotheses[1];
    assert_eq!(symptom.kind, HypothesisKind::ThresholdBreach);
    assert_eq!(
        symptom.against[0].text,
        "provider:openai, which eval_suite:qa depends on, is failing too (provider-errors/api_provider=openai)"
    );
    assert!(
        diagnosis.why.starts_with(
            "2 findings, best explained by provider degradation of api_provider openai"
        ),
        "{}",
        diagnosis.why
    );
}

#[test]
fn a_cause_that_came_after_its_symptom_says_so() {
    let evals = finding("eval-pass", "push:evals", "suite", "qa", 0);
    let provider = finding("provider-errors", "gw", "api_provider", "openai", 5);
    let diagnosis = ranked(&[evals, provider], &[]);
    let best = diagnosis.best().unwrap();
    assert_eq!(best.kind, HypothesisKind::ProviderDegradation);
    assert_eq!(
        best.against[0].text,
        "it came after a finding it would explain"
    );
}

#[test]
fn findings_on_unconnected_providers_rank_by_their_own_evidence() {
    let openai = finding("provider-errors", "gw", "api_provider", "openai", 0);
    let anthropic = finding("provider-errors", "gw", "api_provider", "anthropic", 1);
    let diagnosis = ranked(&[openai, anthropic], &[]);
    assert!(
        diagnosis
            .hypotheses
            .iter()
            .all(|h| h.support.is_empty() && h.against.is_empty())
    );
    // Equal scores: the earlier finding first.
    assert_eq!(
        diagnosis.best().unwrap().subject.as_ref().unwrap().value,
        "openai"
    );
}

#[test]
fn a_change_that_ran_for_hours_before_the_finding_is_a_weak_suspect() {
    let topology = stack();
    let evals = finding("eval-pass", "push:evals", "prompt", "support", 300);
    // The prompt changed 10 min before: the first suspect.
    let fresh = own(
        &evals,
        &topology,
        &[change("prompt", "support", "prompt_version", 290)],
    );
    assert_eq!(fresh.best().unwrap().kind, HypothesisKind::RecentChange);
    // Five hours before: it is the finding's own hypothesis that leads, and the change says why.
    let old = own(
        &evals,
        &topology,
        &[change("prompt", "support", "prompt_version", 0)],
    );
    assert_eq!(old.best().unwrap().kind, HypothesisKind::ThresholdBreach);
    let suspect = old
        .hypotheses
        .iter()
        .find(|h| h.kind == HypothesisKind::RecentChange)
        .unwrap();
    assert!(
        (suspect.confidence - 0.2).abs() < 1e-9,
        "{}",
        suspect.confidence
    );
    assert_eq!(
        suspect.against[0].text,
        "prompt_version of prompt support changed from v1 to v2 ran for 5 h before this finding without it firing"
    );
}

#[test]
fn a_model_change_upstream_is_a_model_change_never_a_prompt_rollback() {
    let topology = stack();
    let evals = finding("eval-pass", "push:evals", "suite", "qa", 300);
    let changes = [
        change("prompt", "support", "prompt_version", 0),
        change("model_group", "gpt-4o", "response_model", 295),
    ];
    let diagnosis = own(&evals, &topology, &changes);
    expect_test::expect![[r#"
        model_change gpt-4o (Some(Gateway), 0.70)
          + [evals] suite qa depends on model_group gpt-4o"#]]
    .assert_eq(&summary(&diagnosis));
    let best = diagnosis.best().unwrap();
    assert!(
        best.evidence
            .iter()
            .any(|e| e.contains("routing to v1 again, not changing a prompt"))
    );
    // A change of a model nothing here depends on is not blamed.
    let unrelated = own(
        &evals,
        &topology,
        &[change("model_group", "claude", "response_model", 295)],
    );
    assert_eq!(
        unrelated.best().unwrap().kind,
        HypothesisKind::ThresholdBreach
    );
}

#[test]
fn model_versions_are_told_from_prompt_versions() {
    for (label, is_model) in [
        ("model", true),
        ("response_model", true),
        ("gen_ai.response.model", true),
        ("litellm_model_name", true),
        ("prompt_version", false),
        ("version", false),
    ] {
        assert_eq!(is_model_version(label), is_model, "{label}");
    }
}
