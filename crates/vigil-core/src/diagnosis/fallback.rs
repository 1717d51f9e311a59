//! Fallbacks and quotas at the gateway, read from what the gateway and the evals report at
//! the moment of a finding (sessions with a topology).
//!
//! - **A fallback that carries traffic while quality falls points at the fallback model**
//!   (`fallback_quality_loss`). On a quality finding (an eval pass rate dropping), vigil
//!   looks for a model the finding depends on whose traffic goes to a fallback: LiteLLM's
//!   `litellm_deployment_successful_fallbacks_total{requested_model, fallback_model}` rising,
//!   or eval results answered by a model the topology knows as a fallback. The fallback is
//!   blamed when the evals show it failing more than the model it stands in for (or, when the
//!   evals do not name it, when it carries a real share of the traffic). The hypothesis
//!   cites the gateway's counters, the primary's errors and deployment state (why the
//!   traffic moved) and the evals per model; the finding's other explanations get it as
//!   counter-evidence. When the evals show the fallback doing as well as the primary, the
//!   fallback is cleared instead, and that is said.
//! - **Errors at a provider are traced to the keys that drive them**
//!   (`quota_exhaustion_by_key`). On an error finding at a model group, deployment or
//!   provider, the 429s of `litellm_deployment_failure_responses_total` are split by
//!   `hashed_api_key`: when one of our own keys gets at least `runaway_min_share` of them
//!   (the share that makes a key runaway in a spike), it is using up a shared quota, and the
//!   fix is that key, not a failover. Below that share the split is listed as evidence and
//!   the provider stays the suspect.
//!
//! Everything here is pure: the same store, topology and finding give the same diagnosis.

use std::collections::BTreeMap;

use crate::detector::{Evidence, Finding, Subject};
use crate::human::{duration_ms, number, percent, rate};
use crate::store::{Matcher, SeriesRef, SeriesStore};
use crate::time::Timestamp;
use crate::topology::discover::node_of_subject;
use crate::topology::{Layer, NodeId, NodeKind, Relation, Topology};

mod quota;

use super::rank::layer_of;
use super::{Diagnosis, Fact, Hypothesis, HypothesisKind};

/// LiteLLM's count of requests a fallback answered, by `requested_model` and `fallback_model`.
pub const FALLBACKS_METRIC: &str = "litellm_deployment_successful_fallbacks_total";
/// LiteLLM's requests per deployment.
pub const REQUESTS_METRIC: &str = "litellm_deployment_total_requests_total";
/// LiteLLM's failed requests per deployment, with `exception_status` and `hashed_api_key`.
pub const FAILURES_METRIC: &str = "litellm_deployment_failure_responses_total";
/// LiteLLM's deployment state: 0 healthy, 1 partial outage, 2 complete outage.
pub const STATE_METRIC: &str = "litellm_deployment_state";
/// The eval cases vigil counts from pushed results, by `model` and `outcome`.
pub const EVAL_CASES_METRIC: &str = "vigil_eval_cases_total";

/// The window gateway rates are taken over.
pub(super) const RATE_WINDOW_MS: i64 = 600_000;
/// How far back the start of a fallback's traffic is looked for.
const SINCE_WINDOW_MS: i64 = 6 * 3_600_000;
/// The eval window when the finding does not give one.
const DEFAULT_EVAL_WINDOW_MS: i64 = 3_600_000;
/// How much worse (in pass rate) the fallback must do than the primary to be blamed; within
/// half of it, the fallback is cleared.
const QUALITY_GAP: f64 = 0.1;
/// The share of the primary's requests a fallback must carry to be blamed without evals
/// that name it.
const MIN_TRAFFIC_SHARE: f64 = 0.1;

/// The labels that name the model a gateway series is about.
const MODEL_LABELS: [&str; 2] = ["model_group", "requested_model"];

/// The series of `metric` (any source), best-effort by label.
pub(super) fn series_of(
    store: &SeriesStore,
    metric: &str,
    labels: &[(&str, &str)],
) -> Vec<SeriesRef> {
    let mut matchers = vec![Matcher::metric_name(metric)];
    matchers.extend(
        labels
            .iter()
            .map(|(label, value)| Matcher::equal(*label, *value)),
    );
    store.select(&matchers)
}

/// The series of `metric` about model `model` (by `model_group` or `requested_model`).
fn series_of_model(store: &SeriesStore, metric: &str, model: &str) -> Vec<SeriesRef> {
    let mut found: Vec<SeriesRef> = MODEL_LABELS
        .iter()
        .flat_map(|label| series_of(store, metric, &[(label, model)]))
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

/// The summed rate of `series` over the rate window before `at`.
pub(super) fn rate_of(store: &SeriesStore, series: &[SeriesRef], at: Timestamp) -> f64 {
    series
        .iter()
        .filter_map(|&one| store.rate(one, RATE_WINDOW_MS, at))
        .sum()
}

/// How much counter `series` grew over `(at - window_ms, at]`: its value at `at` less its
/// value before the window (0 when it appeared since). Pushed counters move in steps, which
/// an extrapolated rate would smear.
fn growth(store: &SeriesStore, series: SeriesRef, window_ms: i64, at: Timestamp) -> f64 {
    let lookback = SINCE_WINDOW_MS;
    let Some(end) = store.value_at(series, at, lookback) else {
        return 0.0;
    };
    let start = store
        .value_at(series, Timestamp(at.0.saturating_sub(window_ms)), lookback)
        .map_or(0.0, |point| point.value);
    (end.value - start).max(0.0)
}

/// One model's eval cases in the window: passed and total.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Cases {
    passed: f64,
    total: f64,
}

impl Cases {
    fn pass_rate(self) -> Option<f64> {
        (self.total > 0.0).then(|| self.passed / self.total)
    }
}

/// The finding's eval cases in `window_ms` before `at`, per model that answered them.
fn evals_by_model(
    store: &SeriesStore,
    finding: &Finding,
    window_ms: i64,
    at: Timestamp,
) -> BTreeMap<String, Cases> {
    let mut by_model: BTreeMap<String, Cases> = BTreeMap::new();
    let subject = &finding.subject;
    let labels: Vec<(&str, &str)> = if subject.value.is_empty() {
        Vec::new()
    } else {
        vec![(subject.label.as_str(), subject.value.as_str())]
    };
    for series in series_of(store, EVAL_CASES_METRIC, &labels) {
        let Some(model) = store.label_value(series, "model").map(str::to_owned) else {
            continue;
        };
        let grown = growth(store, series, window_ms, at);
        let cases = by_model.entry(model).or_default();
        cases.total += grown;
        if store.label_value(series, "outcome") == Some("passed") {
            cases.passed += grown;
        }
    }
    by_model.retain(|_, cases| cases.total > 0.0);
    by_model
}

/// Traffic that went from `requested` to `fallback`.
#[derive(Clone, Debug, PartialEq)]
struct Flow {
    requested: String,
    fallback: String,
    per_sec: f64,
    /// When the gateway's counter first rose in the lookback.
    since: Option<Timestamp>,
}

/// The gateway's fallback flows at `at`, from its fallback counters.
fn gateway_flows(store: &SeriesStore, at: Timestamp) -> Vec<Flow> {
    let mut flows: BTreeMap<(String, String), Flow> = BTreeMap::new();
    for series in series_of(store, FALLBACKS_METRIC, &[]) {
        let (Some(requested), Some(fallback)) = (
            store.label_value(series, "requested_model"),
            store.label_value(series, "fallback_model"),
        ) else {
            continue;
        };
        let per_sec = store.rate(series, RATE_WINDOW_MS, at).unwrap_or(0.0);
        let points = store.run_points(series, SINCE_WINDOW_MS, at);
        let since = points.first().and_then(|first| {
            points
                .iter()
                .find(|point| point.value > first.value)
                .map(|point| point.at)
        });
        let flow = flows
            .entry((requested.to_owned(), fallback.to_owned()))
            .or_insert_with(|| Flow {
                requested: requested.to_owned(),
                fallback: fallback.to_owned(),
                per_sec: 0.0,
                since: None,
            });
        flow.per_sec += per_sec;
        flow.since = match (flow.since, since) {
            (Some(known), Some(new)) => Some(known.min(new)),
            (known, new) => known.or(new),
        };
    }
    flows
        .into_values()
        .filter(|flow| flow.per_sec > 0.0)
        .collect()
}

/// How much of a model's requests may fail before it counts as failing.
const FAILING_ERROR_SHARE: f64 = 0.01;

/// Why traffic left `model`: its errors by status and its deployments' state, as facts; and
/// whether it is failing now (a deployment in partial or complete outage, or at least 1 %
/// of its requests failing, or failures with no requests to compare them with).
fn primary_facts(
    store: &SeriesStore,
    topology: &Topology,
    model: &str,
    at: Timestamp,
) -> (Vec<Fact>, bool) {
    let mut facts = Vec::new();
    let mut failing = false;
    let mut by_status: BTreeMap<String, f64> = BTreeMap::new();
    for series in series_of_model(store, FAILURES_METRIC, model) {
        let status = store
            .label_value(series, "exception_status")
            .unwrap_or("error")
            .to_owned();
        *by_status.entry(status).or_default() +=
            store.rate(series, RATE_WINDOW_MS, at).unwrap_or(0.0);
    }
    let requests = rate_of(store, &series_of_model(store, REQUESTS_METRIC, model), at);
    let errors: Vec<String> = by_status
        .iter()
        .filter(|(_, per_sec)| **per_sec > 0.0)
        .map(|(status, per_sec)| format!("{} with {status}", rate(*per_sec, "requests/s")))
        .collect();
    if !errors.is_empty() {
        let total: f64 = by_status.values().sum();
        failing |= requests <= 0.0 || total / requests >= FAILING_ERROR_SHARE;
        let share = if requests > 0.0 {
            format!(
                " ({} of its requests)",
                percent((total / requests).min(1.0))
            )
        } else {
            String::new()
        };
        facts.push(Fact {
            layer: Layer::Provider,
            text: format!(
                "{model} fails {}{share}: why its traffic moved ({FAILURES_METRIC})",
                errors.join(", ")
            ),
        });
    }
    // Its deployments' state: by the model's labels, or the deployments it routes to.
    let group = NodeId::new(NodeKind::ModelGroup, model);
    let mut states = series_of_model(store, STATE_METRIC, model);
    states.extend(series_of(
        store,
        STATE_METRIC,
        &[("litellm_model_name", model)],
    ));
    for deployment in topology.targets(&group, Relation::RoutesTo) {
        states.extend(series_of(
            store,
            STATE_METRIC,
            &[("model_id", &deployment.name)],
        ));
    }
    states.sort_unstable();
    states.dedup();
    let worst = states
        .iter()
        .filter_map(|&series| {
            let value = store.value_at(series, at, RATE_WINDOW_MS)?.value;
            let name = store
                .label_value(series, "model_id")
                .unwrap_or(model)
                .to_owned();
            Some((value, name))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)));
    if let Some((state, deployment)) = worst {
        failing |= state >= 1.0;
        let meaning = match state {
            state if state >= 2.0 => "complete outage",
            state if state >= 1.0 => "partial outage",
            _ => "healthy",
        };
        facts.push(Fact {
            layer: Layer::Provider,
            text: format!(
                "deployment {deployment} of {model} reports state {} ({meaning}; {STATE_METRIC})",
                number(state)
            ),
        });
    }
    (facts, failing)
}

/// Whether the finding's quality could have fallen through `model`: the finding depends on
/// it, or has no node to tell.
fn finding_uses(topology: &Topology, finding: &Finding, model: &str, max_hops: u8) -> bool {
    match node_of_subject(&finding.subject.label, &finding.subject.value) {
        Some(node) => {
            topology.depends_on(&node, &NodeId::new(NodeKind::ModelGroup, model), max_hops)
        }
        None => true,
    }
}

/// A quality finding: an eval pass rate (or any share of good outcomes the evals report).
fn is_quality_finding(finding: &Finding) -> bool {
    let quality_evidence = matches!(
        finding.evidence,
        Evidence::ProportionDrop(_) | Evidence::BurnRate(_)
    );
    quality_evidence && (finding.source == "push:evals" || layer_of(finding) == Layer::Evals)
}

/// An error finding at the serving layers: a model group, a deployment or a provider.
fn is_provider_error_finding(finding: &Finding) -> bool {
    let at_serving =
        node_of_subject(&finding.subject.label, &finding.subject.value).is_some_and(|node| {
            matches!(
                node.kind,
                NodeKind::ModelGroup | NodeKind::Deployment | NodeKind::Provider
            )
        });
    at_serving
        && finding.source != "push:evals"
        && matches!(
            finding.evidence,
            Evidence::BurnRate(_) | Evidence::Threshold(_) | Evidence::Anomaly(_)
        )
}

/// One finding's diagnosis with what the gateway's fallbacks and keys say (module docs).
#[must_use]
pub fn explain(
    mut diagnosis: Diagnosis,
    finding: &Finding,
    store: &SeriesStore,
    topology: &Topology,
    max_hops: u8,
    key_min_share: f64,
) -> Diagnosis {
    if is_quality_finding(finding) {
        diagnosis = fallback_quality(diagnosis, finding, store, topology, max_hops);
    }
    if is_provider_error_finding(finding) {
        diagnosis = quota::keys_behind_errors(diagnosis, finding, store, topology, key_min_share);
    }
    diagnosis
}

/// A candidate fallback for a quality drop, with what speaks for it.
struct Candidate {
    flow: Flow,
    requests_per_sec: f64,
    primary: Option<Cases>,
    fallback: Option<Cases>,
}

fn fallback_quality(
    mut diagnosis: Diagnosis,
    finding: &Finding,
    store: &SeriesStore,
    topology: &Topology,
    max_hops: u8,
) -> Diagnosis {
    let at = finding.raised_at;
    let (eval_window_ms, baseline) = match &finding.evidence {
        Evidence::ProportionDrop(evidence) => (
            evidence.window_secs.saturating_mul(1000),
            Some(evidence.baseline_share),
        ),
        _ => (DEFAULT_EVAL_WINDOW_MS, None),
    };
    let evals = evals_by_model(store, finding, eval_window_ms, at);
    // Flows the gateway shows, and fallbacks the evals show answering.
    let mut flows = gateway_flows(store, at);
    for model in evals.keys() {
        let node = NodeId::new(NodeKind::ModelGroup, model.as_str());
        for requested in topology.sources(&node, Relation::FallsBackTo) {
            if !flows
                .iter()
                .any(|flow| flow.requested == requested.name && flow.fallback == *model)
            {
                flows.push(Flow {
                    requested: requested.name.clone(),
                    fallback: model.clone(),
                    per_sec: 0.0,
                    since: None,
                });
            }
        }
    }
    let mut candidates: Vec<Candidate> = flows
        .into_iter()
        .filter(|flow| {
            finding_uses(topology, finding, &flow.requested, max_hops)
                || evals.contains_key(&flow.requested)
                || evals.contains_key(&flow.fallback)
        })
        .map(|flow| Candidate {
            requests_per_sec: rate_of(
                store,
                &series_of_model(store, REQUESTS_METRIC, &flow.requested),
                at,
            ),
            primary: evals.get(&flow.requested).copied(),
            fallback: evals.get(&flow.fallback).copied(),
            flow,
        })
        .collect();
    candidates.sort_by(|a, b| {
        b.flow
            .per_sec
            .total_cmp(&a.flow.per_sec)
            .then_with(|| a.flow.fallback.cmp(&b.flow.fallback))
    });
    for candidate in candidates {
        let Candidate {
            flow,
            requests_per_sec,
            primary,
            fallback,
        } = candidate;
        let fallback_rate = fallback.and_then(Cases::pass_rate);
        // What the fallback's answers are compared with: the primary's now, else the
        // finding's baseline.
        let reference = primary.and_then(Cases::pass_rate).or(baseline);
        let share = (requests_per_sec > 0.0).then(|| (flow.per_sec / requests_per_sec).min(1.0));
        let confidence = match (fallback_rate, reference) {
            (Some(fails), Some(reference)) if fails + QUALITY_GAP <= reference => 0.9,
            (Some(fails), Some(reference)) if fails + QUALITY_GAP / 2.0 >= reference => {
                // The fallback answers as well as the primary: it is not the cause.
                let text = format!(
                    "the fallback {} answers {} of its eval cases well, like {} ({}): the \
                     fallback is not why quality fell",
                    flow.fallback,
                    percent(fails),
                    flow.requested,
                    percent(reference)
                );
                for hypothesis in &mut diagnosis.hypotheses {
                    hypothesis.support.push(Fact {
                        layer: Layer::Evals,
                        text: text.clone(),
                    });
                }
                continue;
            }
            (Some(_), _) => 0.6,
            (None, _) if flow.per_sec > 0.0 && share.is_none_or(|s| s >= MIN_TRAFFIC_SHARE) => 0.7,
            (None, _) => continue,
        };
        let (primary_support, primary_failing) =
            primary_facts(store, topology, &flow.requested, at);
        let hypothesis = fallback_hypothesis(
            finding,
            &flow,
            share,
            primary_support,
            primary,
            fallback,
            confidence,
        );
        let against = Fact {
            layer: Layer::Gateway,
            text: format!(
                "a fallback carries traffic while quality falls: {} answers for {}, which \
                 points at the fallback model",
                flow.fallback, flow.requested
            ),
        };
        for other in &mut diagnosis.hypotheses {
            other.against.push(against.clone());
        }
        let advice = if primary_failing {
            format!(
                "{} is still failing, so routing back would not help: decide whether {} is \
                 an acceptable stand-in or choose a better fallback",
                flow.requested, flow.fallback
            )
        } else {
            format!(
                "{} looks healthy again: route its traffic back from {}",
                flow.requested, flow.fallback
            )
        };
        diagnosis.why = format!(
            "Quality fell while the gateway sends {}'s traffic to its fallback {}, whose \
             answers fail more often; the fallback model is the likely cause. {advice}. {}",
            flow.requested, flow.fallback, diagnosis.why
        );
        diagnosis.hypotheses.insert(0, hypothesis);
        break;
    }
    diagnosis
}

fn fallback_hypothesis(
    finding: &Finding,
    flow: &Flow,
    share: Option<f64>,
    primary_support: Vec<Fact>,
    primary: Option<Cases>,
    fallback: Option<Cases>,
    confidence: f64,
) -> Hypothesis {
    let mut support = Vec::new();
    if flow.per_sec > 0.0 {
        let share = share.map_or_else(String::new, |share| {
            format!(" ({} of its requests)", percent(share))
        });
        let since = flow.since.map_or_else(String::new, |since| {
            format!(
                ", since {} before the finding",
                duration_ms(finding.raised_at.millis_since(since).max(0))
            )
        });
        support.push(Fact {
            layer: Layer::Gateway,
            text: format!(
                "the gateway answers {} of {}'s requests with its fallback {}{share}{since} \
                 ({FALLBACKS_METRIC})",
                rate(flow.per_sec, "requests/s"),
                flow.requested,
                flow.fallback
            ),
        });
    }
    support.extend(primary_support);
    let cases = |model: &str, cases: Option<Cases>| {
        cases.and_then(|cases| {
            Some(format!(
                "{model} passed {} of {} eval cases",
                percent(cases.pass_rate()?),
                number(cases.total)
            ))
        })
    };
    let by_model: Vec<String> = [
        cases(&flow.fallback, fallback),
        cases(&flow.requested, primary),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !by_model.is_empty() {
        support.push(Fact {
            layer: Layer::Evals,
            text: format!("in the eval window, {}", by_model.join("; ")),
        });
    }
    Hypothesis {
        kind: HypothesisKind::FallbackQualityLoss,
        subject: Some(Subject {
            label: "model_group".to_owned(),
            value: flow.fallback.clone(),
            alias: None,
            team: None,
        }),
        confidence,
        evidence: support.iter().map(|fact| fact.text.clone()).collect(),
        change: None,
        layer: Some(Layer::Gateway),
        support,
        against: Vec::new(),
    }
}

/// An incident's ranking with the fallback preferred: when one of its findings blames a
/// fallback for lost quality and another blames the model that fallback stands in for (its
/// errors, why traffic moved), the fallback explains what users got and comes first; the
/// primary's failure stays as its support.
#[must_use]
pub fn prefer_fallback(mut ranked: Diagnosis) -> Diagnosis {
    let Some(position) = ranked
        .hypotheses
        .iter()
        .position(|hypothesis| hypothesis.kind == HypothesisKind::FallbackQualityLoss)
    else {
        return ranked;
    };
    if position == 0 {
        return ranked;
    }
    let Some(fallback) = ranked.hypotheses.get(position) else {
        return ranked;
    };
    // The primaries it names: the models its gateway and provider facts are about.
    let stands_in_for = |subject: &Subject| {
        fallback.support.iter().any(|fact| {
            fact.text
                .contains(&format!("of {}'s requests", subject.value))
                || fact.text.starts_with(&format!("{} fails", subject.value))
                || fact
                    .text
                    .contains(&format!(" of {} reports state", subject.value))
        })
    };
    let above_are_primaries = ranked
        .hypotheses
        .iter()
        .take(position)
        .all(|above| above.subject.as_ref().is_some_and(stands_in_for));
    if !above_are_primaries {
        return ranked;
    }
    let moved = ranked.hypotheses.remove(position);
    let mut moved = moved;
    moved.support.push(Fact {
        layer: Layer::Provider,
        text: "the model it stands in for fails too: that is why the traffic moved, and the \
               fallback is what users got"
            .to_owned(),
    });
    ranked.why = format!(
        "Best explained by fallback quality loss of model_group {}: {}. {}",
        moved
            .subject
            .as_ref()
            .map_or_else(String::new, |subject| subject.value.clone()),
        moved
            .support
            .iter()
            .map(|fact| fact.text.clone())
            .collect::<Vec<_>>()
            .join("; "),
        ranked.why
    );
    ranked.hypotheses.insert(0, moved);
    ranked
}

#[cfg(test)]
mod tests;
