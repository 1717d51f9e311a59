//! The fallback and quota rules on hand-made stores: each case states what it guards.

use super::*;
use crate::detector::proportion::ProportionEvidence;
use crate::detector::{BurnRateEvidence, Severity};
use crate::signal::{Labels, Sample};
use crate::store::StoreConfig;
use crate::topology::{Edge, TopologyConfig};

/// A counter at `per_sec` from `from_secs`, scraped every 15 s for `until_secs`.
struct Counter<'a> {
    source: &'a str,
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
    rates: &'a [(i64, f64)],
}

fn store_of(counters: &[Counter<'_>], until_secs: i64) -> SeriesStore {
    let mut store = SeriesStore::new(StoreConfig {
        retention_ms: 6 * 3_600_000,
        max_points_per_series: 10_000,
        ..StoreConfig::default()
    });
    let mut totals = vec![0.0_f64; counters.len()];
    let mut at = 0;
    while at <= until_secs {
        for source in ["litellm-gateway", "push:evals"] {
            let mut samples = Vec::new();
            for (idx, counter) in counters.iter().enumerate() {
                if counter.source != source {
                    continue;
                }
                let per_sec = counter
                    .rates
                    .iter()
                    .rev()
                    .find(|(from, _)| *from <= at)
                    .map_or(0.0, |(_, rate)| *rate);
                if let Some(total) = totals.get_mut(idx) {
                    *total += per_sec * 15.0;
                    samples.push(Sample {
                        name: counter.name.to_owned(),
                        labels: counter.labels.iter().copied().collect::<Labels>(),
                        value: *total,
                        timestamp_ms: None,
                    });
                }
            }
            store.ingest(source, Timestamp(at * 1000), &samples);
        }
        at += 15;
    }
    store
}

fn topology(edges: &[(&str, Relation, &str)]) -> Topology {
    Topology::declared(&TopologyConfig {
        edges: edges
            .iter()
            .map(|(from, relation, to)| Edge {
                from: from.parse().unwrap(),
                relation: *relation,
                to: to.parse().unwrap(),
            })
            .collect(),
        ..TopologyConfig::default()
    })
}

fn subject(label: &str, value: &str) -> Subject {
    Subject {
        label: label.to_owned(),
        value: value.to_owned(),
        alias: None,
        team: None,
    }
}

fn eval_drop(at_secs: i64) -> Finding {
    Finding {
        fingerprint: "eval-pass-rate/prompt=answer".to_owned(),
        detector: "eval-pass-rate".to_owned(),
        source: "push:evals".to_owned(),
        subject: subject("prompt", "answer"),
        severity: Severity::Page,
        raised_at: Timestamp(at_secs * 1000),
        evidence: Evidence::ProportionDrop(ProportionEvidence {
            describe: "eval pass rate".to_owned(),
            good: "g".to_owned(),
            total: "t".to_owned(),
            window_secs: 1800,
            recent_good: 70.0,
            recent_total: 100.0,
            baseline_good: 95.0,
            baseline_total: 100.0,
            baseline_share: 0.95,
            p_value: 0.0001,
            min_drop: 0.1,
            alert_probability: 0.001,
            drift: None,
        }),
    }
}

fn burn(label: &str, value: &str, at_secs: i64) -> Finding {
    Finding {
        fingerprint: format!("provider-errors/{label}={value}"),
        detector: "provider-errors".to_owned(),
        source: "litellm-gateway".to_owned(),
        subject: subject(label, value),
        severity: Severity::Page,
        raised_at: Timestamp(at_secs * 1000),
        evidence: Evidence::BurnRate(BurnRateEvidence {
            objective: 0.99,
            period_secs: 86_400 * 30,
            windows: Vec::new(),
        }),
    }
}

fn own(kind: HypothesisKind, finding: &Finding) -> Diagnosis {
    Diagnosis {
        hypotheses: vec![Hypothesis {
            kind,
            subject: Some(finding.subject.clone()),
            confidence: 1.0,
            evidence: Vec::new(),
            change: None,
            layer: None,
            support: Vec::new(),
            against: Vec::new(),
        }],
        why: "own".to_owned(),
    }
}

const EVALS_PRIMARY_PASS: &[(&str, &str)] = &[
    ("prompt", "answer"),
    ("model", "gpt-4o"),
    ("outcome", "passed"),
];
const EVALS_PRIMARY_FAIL: &[(&str, &str)] = &[
    ("prompt", "answer"),
    ("model", "gpt-4o"),
    ("outcome", "failed"),
];
const EVALS_MINI_PASS: &[(&str, &str)] = &[
    ("prompt", "answer"),
    ("model", "gpt-4o-mini"),
    ("outcome", "passed"),
];
const EVALS_MINI_FAIL: &[(&str, &str)] = &[
    ("prompt", "answer"),
    ("model", "gpt-4o-mini"),
    ("outcome", "failed"),
];
const FALLBACKS: &[(&str, &str)] = &[
    ("requested_model", "gpt-4o"),
    ("fallback_model", "gpt-4o-mini"),
];

fn counter<'a>(
    source: &'a str,
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
    rates: &'a [(i64, f64)],
) -> Counter<'a> {
    Counter {
        source,
        name,
        labels,
        rates,
    }
}

/// The game day: half of gpt-4o's traffic goes to gpt-4o-mini from 600 s, whose answers
/// fail; the evals name the model that answered.
fn fallback_store(mini_fail_per_sec: f64) -> SeriesStore {
    store_of(
        &[
            counter(
                "litellm-gateway",
                REQUESTS_METRIC,
                &[("model_group", "gpt-4o")],
                &[(0, 20.0)],
            ),
            counter(
                "litellm-gateway",
                FAILURES_METRIC,
                &[("model_group", "gpt-4o"), ("exception_status", "429")],
                &[(0, 0.0), (600, 10.0)],
            ),
            counter(
                "litellm-gateway",
                FALLBACKS_METRIC,
                FALLBACKS,
                &[(0, 0.0), (600, 10.0)],
            ),
            counter(
                "push:evals",
                EVAL_CASES_METRIC,
                EVALS_PRIMARY_PASS,
                &[(0, 0.1)],
            ),
            counter(
                "push:evals",
                EVAL_CASES_METRIC,
                EVALS_PRIMARY_FAIL,
                &[(0, 0.005)],
            ),
            counter(
                "push:evals",
                EVAL_CASES_METRIC,
                EVALS_MINI_PASS,
                &[(0, 0.0), (600, 0.05)],
            ),
            counter(
                "push:evals",
                EVAL_CASES_METRIC,
                EVALS_MINI_FAIL,
                &[(0, 0.0), (600, mini_fail_per_sec)],
            ),
        ],
        2400,
    )
}

fn fallback_topology() -> Topology {
    topology(&[
        ("prompt:answer", Relation::Calls, "model_group:gpt-4o"),
        (
            "model_group:gpt-4o",
            Relation::FallsBackTo,
            "model_group:gpt-4o-mini",
        ),
    ])
}

#[test]
fn a_fallback_failing_evals_while_it_carries_traffic_is_blamed_with_the_gateway_facts() {
    let finding = eval_drop(2400);
    let diagnosis = explain(
        own(HypothesisKind::ProportionDrop, &finding),
        &finding,
        &fallback_store(0.05),
        &fallback_topology(),
        3,
        0.5,
    );
    let best = diagnosis.best().unwrap();
    assert_eq!(best.kind, HypothesisKind::FallbackQualityLoss);
    assert_eq!(best.subject.as_ref().unwrap().value, "gpt-4o-mini");
    let layers: Vec<Layer> = best.support.iter().map(|fact| fact.layer).collect();
    assert!(layers.contains(&Layer::Gateway), "{:?}", best.support);
    assert!(layers.contains(&Layer::Provider), "{:?}", best.support);
    assert!(layers.contains(&Layer::Evals), "{:?}", best.support);
    assert!(
        best.support
            .iter()
            .any(|fact| fact.text.contains(FALLBACKS_METRIC) && fact.text.contains("50 %")),
        "{:?}",
        best.support
    );
    // The finding's own explanation is kept, with the fallback as counter-evidence.
    let own = diagnosis.hypotheses.get(1).unwrap();
    assert_eq!(own.kind, HypothesisKind::ProportionDrop);
    assert!(
        own.against
            .iter()
            .any(|fact| fact.text.contains("points at the fallback model"))
    );
    assert!(diagnosis.why.contains("still failing"), "{}", diagnosis.why);
}

#[test]
fn a_fallback_that_answers_as_well_as_the_primary_is_cleared() {
    // Regression guard: traffic on a fallback is not enough when the evals clear it.
    let finding = eval_drop(2400);
    let diagnosis = explain(
        own(HypothesisKind::ProportionDrop, &finding),
        &finding,
        &fallback_store(0.002),
        &fallback_topology(),
        3,
        0.5,
    );
    let best = diagnosis.best().unwrap();
    assert_eq!(best.kind, HypothesisKind::ProportionDrop);
    assert!(
        best.support
            .iter()
            .any(|fact| fact.text.contains("not why quality fell"))
    );
}

#[test]
fn without_a_fallback_carrying_traffic_nothing_changes() {
    let finding = eval_drop(2400);
    let store = store_of(
        &[counter(
            "push:evals",
            EVAL_CASES_METRIC,
            EVALS_PRIMARY_PASS,
            &[(0, 0.1)],
        )],
        2400,
    );
    let before = own(HypothesisKind::ProportionDrop, &finding);
    let after = explain(
        before.clone(),
        &finding,
        &store,
        &fallback_topology(),
        3,
        0.5,
    );
    assert_eq!(after, before);
}

const KEY_A_429: &[(&str, &str)] = &[
    ("model_group", "gpt-4o"),
    ("exception_status", "429"),
    ("hashed_api_key", "k-batch"),
    ("api_key_alias", "nightly-batch"),
];
const KEY_B_429: &[(&str, &str)] = &[
    ("model_group", "gpt-4o"),
    ("exception_status", "429"),
    ("hashed_api_key", "k-web"),
];
const KEY_A_REQUESTS: &[(&str, &str)] = &[("model_group", "gpt-4o"), ("hashed_api_key", "k-batch")];
const KEY_B_REQUESTS: &[(&str, &str)] = &[("model_group", "gpt-4o"), ("hashed_api_key", "k-web")];

fn quota_store(batch_before: f64) -> SeriesStore {
    store_of(
        &[
            counter(
                "litellm-gateway",
                REQUESTS_METRIC,
                KEY_A_REQUESTS,
                &[(0, batch_before), (3000, 40.0)],
            ),
            counter(
                "litellm-gateway",
                REQUESTS_METRIC,
                KEY_B_REQUESTS,
                &[(0, 10.0)],
            ),
            counter(
                "litellm-gateway",
                FAILURES_METRIC,
                KEY_A_429,
                &[(0, 0.0), (3000, 16.0)],
            ),
            counter(
                "litellm-gateway",
                FAILURES_METRIC,
                KEY_B_429,
                &[(0, 0.0), (3000, 4.0)],
            ),
        ],
        3600,
    )
}

#[test]
fn one_key_getting_most_of_a_providers_429s_after_its_demand_grew_is_blamed() {
    let finding = burn("model_group", "gpt-4o", 3600);
    let diagnosis = explain(
        own(HypothesisKind::ErrorBudgetBurn, &finding),
        &finding,
        &quota_store(5.0),
        &topology(&[]),
        3,
        0.5,
    );
    let best = diagnosis.best().unwrap();
    assert_eq!(best.kind, HypothesisKind::QuotaExhaustionByKey);
    let blamed = best.subject.as_ref().unwrap();
    assert_eq!(blamed.value, "k-batch");
    assert_eq!(blamed.alias.as_deref(), Some("nightly-batch"));
    // Its part of the growth in demand: all of it (k-web's did not move).
    assert!((best.confidence - 1.0).abs() < 0.01, "{}", best.confidence);
    let failover = diagnosis.hypotheses.get(1).unwrap();
    assert!(
        failover
            .against
            .iter()
            .any(|fact| fact.text.contains("shared quota"))
    );
}

// The provider answers 429 in proportion to traffic, so a big steady key gets most of them;
// the small key whose demand grew is what used the quota up.
#[test]
fn the_key_whose_demand_grew_is_blamed_even_when_a_bigger_steady_key_gets_more_429s() {
    let finding = burn("model_group", "gpt-4o", 3600);
    let store = store_of(
        &[
            counter(
                "litellm-gateway",
                REQUESTS_METRIC,
                KEY_A_REQUESTS,
                &[(0, 2.0), (3000, 30.0)],
            ),
            counter(
                "litellm-gateway",
                REQUESTS_METRIC,
                KEY_B_REQUESTS,
                &[(0, 40.0)],
            ),
            counter(
                "litellm-gateway",
                FAILURES_METRIC,
                KEY_A_429,
                &[(0, 0.0), (3000, 10.0)],
            ),
            counter(
                "litellm-gateway",
                FAILURES_METRIC,
                KEY_B_429,
                &[(0, 0.0), (3000, 13.0)],
            ),
        ],
        3600,
    );
    let diagnosis = explain(
        own(HypothesisKind::ErrorBudgetBurn, &finding),
        &finding,
        &store,
        &topology(&[]),
        3,
        0.5,
    );
    let best = diagnosis.best().unwrap();
    assert_eq!(best.kind, HypothesisKind::QuotaExhaustionByKey);
    assert_eq!(best.subject.as_ref().unwrap().value, "k-batch");
    assert!(
        best.support
            .iter()
            .any(|fact| fact.text.contains("of the growth")),
        "{:?}",
        best.support
    );
}

#[test]
fn a_big_key_whose_demand_did_not_grow_is_not_blamed_for_a_providers_429s() {
    // The provider answers 429 to everyone; the biggest key gets the most of them.
    let finding = burn("model_group", "gpt-4o", 3600);
    let diagnosis = explain(
        own(HypothesisKind::ErrorBudgetBurn, &finding),
        &finding,
        &quota_store(40.0),
        &topology(&[]),
        3,
        0.5,
    );
    let best = diagnosis.best().unwrap();
    assert_eq!(best.kind, HypothesisKind::ErrorBudgetBurn);
    assert!(
        best.support
            .iter()
            .any(|fact| fact.text.contains("did not grow"))
    );
}

#[test]
fn the_fallback_comes_before_the_primary_it_stands_in_for_in_an_incident() {
    let primary = Hypothesis {
        kind: HypothesisKind::ErrorBudgetBurn,
        subject: Some(subject("model_group", "gpt-4o")),
        confidence: 0.9,
        evidence: Vec::new(),
        change: None,
        layer: None,
        support: Vec::new(),
        against: Vec::new(),
    };
    let fallback = Hypothesis {
        kind: HypothesisKind::FallbackQualityLoss,
        subject: Some(subject("model_group", "gpt-4o-mini")),
        support: vec![Fact {
            layer: Layer::Gateway,
            text: "the gateway answers 10 requests/s of gpt-4o's requests with its fallback"
                .to_owned(),
        }],
        ..primary.clone()
    };
    let ranked = prefer_fallback(Diagnosis {
        hypotheses: vec![primary.clone(), fallback.clone()],
        why: String::new(),
    });
    assert_eq!(
        ranked.best().unwrap().kind,
        HypothesisKind::FallbackQualityLoss
    );
    // A cause that is not the primary it stands in for keeps its place.
    let other = Hypothesis {
        subject: Some(subject("prompt", "answer")),
        ..primary
    };
    let kept = prefer_fallback(Diagnosis {
        hypotheses: vec![other, fallback],
        why: String::new(),
    });
    assert_eq!(kept.best().unwrap().kind, HypothesisKind::ErrorBudgetBurn);
}
