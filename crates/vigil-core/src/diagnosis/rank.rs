//! Root causes ranked over an incident's neighbourhood (sessions with a topology).
//!
//! [`enrich`] turns one finding's diagnosis into its cross-layer form: every hypothesis
//! names the layer its evidence comes from; a failing provider or deployment is a
//! `provider_degradation`; a version change anywhere the finding depends on, or of a caller
//! that depends on it (not only in its own group, never of a sibling), and newer than its own
//! group's changes, is a suspect, a change of the model answering is a `model_change` (which a
//! prompt rollback never answers); and a change that ran for a long time before the finding
//! is weakened by that counter-evidence.
//!
//! [`rank`] ranks the causes of an incident's findings against one another:
//! - **topology direction**: a cause upstream of the other findings explains them; a finding
//!   downstream of another finding's subject is a symptom of it;
//! - **time order**: a cause comes before its symptoms; one that came after a finding it
//!   would explain is suspect;
//! - **the strength of the evidence**: each finding's own hypothesis' confidence;
//! - **counter-evidence**, listed with each hypothesis.
//!
//! Everything here is pure and deterministic: the same findings, topology and changes give
//! the same ranking.

use crate::detector::change::Change;
use crate::detector::{Evidence, Finding};
use crate::time::Timestamp;
use crate::topology::discover::node_of_subject;
use crate::topology::{Layer, NodeId, NodeKind, Topology};

use super::{Diagnosis, Fact, Hypothesis, HypothesisKind};

/// A change older than this before the finding loses confidence with its age.
const FRESH_CHANGE_MS: i64 = 3_600_000;

/// The least confidence an old change keeps.
const OLDEST_CHANGE_CONFIDENCE: f64 = 0.2;

/// The confidence of a change connected through the topology rather than in the finding's
/// own group.
const CONNECTED_CHANGE_CONFIDENCE: f64 = 0.7;

/// The layer a finding's evidence comes from: its subject's node's layer, else its source's.
#[must_use]
pub fn layer_of(finding: &Finding) -> Layer {
    if let Some(node) = node_of_subject(&finding.subject.label, &finding.subject.value) {
        return node.kind.layer();
    }
    match finding.source.as_str() {
        "push:evals" => Layer::Evals,
        "push:agent_runs" | "push:spans" => Layer::App,
        "schedule" => Layer::Evals,
        _ => Layer::Gateway,
    }
}

/// Whether a version label names a model (the response model, a snapshot) rather than a
/// prompt or an app version.
#[must_use]
pub fn is_model_version(label: &str) -> bool {
    let label = label.to_ascii_lowercase();
    label == "model"
        || label == "snapshot"
        || label.ends_with("_model")
        || label.ends_with("model_name")
        || label.ends_with(".model")
}

/// The node a change is about.
fn node_of_change(change: &Change) -> Option<NodeId> {
    node_of_subject(&change.subject.label, &change.subject.value)
}

fn hours_or_minutes(ms: i64) -> String {
    let minutes = ms / 60_000;
    if minutes < 120 {
        format!("{minutes} min")
    } else {
        format!("{} h", ms / 3_600_000)
    }
}

/// One finding's diagnosis in its cross-layer form (see the module docs).
#[must_use]
pub fn enrich(
    mut diagnosis: Diagnosis,
    finding: &Finding,
    topology: &Topology,
    max_hops: u8,
    changes: &[Change],
    change_window_ms: i64,
) -> Diagnosis {
    let layer = layer_of(finding);
    let node = node_of_subject(&finding.subject.label, &finding.subject.value);
    for hypothesis in &mut diagnosis.hypotheses {
        hypothesis.layer = Some(match &hypothesis.change {
            Some(change) => node_of_change(change).map_or(layer, |node| node.kind.layer()),
            None => layer,
        });
    }
    // A failing provider or deployment, seen there: the provider is degraded.
    let at_provider = node
        .as_ref()
        .is_some_and(|node| matches!(node.kind, NodeKind::Provider | NodeKind::Deployment));
    let failing = matches!(
        finding.evidence,
        Evidence::BurnRate(_) | Evidence::Threshold(_) | Evidence::Anomaly(_)
    );
    let own_first = diagnosis
        .hypotheses
        .iter()
        .position(|hypothesis| hypothesis.change.is_none());
    if let (true, Some(first)) = (at_provider && failing, own_first) {
        {
            let own = diagnosis.hypotheses.get(first).cloned();
            if let Some(own) = own {
                let degraded = Hypothesis {
                    kind: HypothesisKind::ProviderDegradation,
                    layer: Some(Layer::Provider),
                    ..own
                };
                diagnosis.hypotheses.insert(first, degraded);
                diagnosis.why = format!(
                    "{} {} is degraded at the provider layer. {}",
                    finding.subject.label, finding.subject.value, diagnosis.why
                );
            }
        }
    }
    // A change the finding depends on, beyond its own group, newer than any change of its
    // own group (a change that came later is the fresher suspect: a model updated hours
    // after a prompt change).
    let newest_own = diagnosis
        .hypotheses
        .iter()
        .filter_map(|hypothesis| hypothesis.change.as_ref().map(|change| change.at))
        .max();
    if let Some(node) = &node {
        {
            let connected = changes.iter().rev().find(|change| {
                let age = finding.raised_at.millis_since(change.at);
                (0..=change_window_ms).contains(&age)
                    && newest_own.is_none_or(|own_at| change.at > own_at)
                    && change.subject != finding.subject
                    // What the finding depends on (a model its prompt calls), or what
                    // depends on it (a caller whose change sends it more load); a sibling
                    // (another prompt on the same model) explains nothing here.
                    && node_of_change(change).is_some_and(|changed| {
                        topology.depends_on(node, &changed, max_hops)
                            || topology.depends_on(&changed, node, max_hops)
                    })
            });
            if let Some(change) = connected {
                let minutes = finding.raised_at.millis_since(change.at) / 60_000;
                let changed_layer =
                    node_of_change(change).map_or(layer, |changed| changed.kind.layer());
                diagnosis.hypotheses.insert(
                    0,
                    Hypothesis {
                        kind: HypothesisKind::RecentChange,
                        subject: Some(change.subject.clone()),
                        confidence: CONNECTED_CHANGE_CONFIDENCE,
                        evidence: vec![
                            format!("{} {minutes} min before the finding", change.describe()),
                            format!(
                                "going back means restoring {} {}",
                                change.version_label, change.from
                            ),
                        ],
                        change: Some(change.clone()),
                        layer: Some(changed_layer),
                        support: vec![Fact {
                            layer,
                            text: format!(
                                "{} {} depends on {} {}",
                                finding.subject.label,
                                finding.subject.value,
                                change.subject.label,
                                change.subject.value
                            ),
                        }],
                        against: Vec::new(),
                    },
                );
                diagnosis.why = format!(
                    "{minutes} min before this, {}, which it depends on; the change is a \
                     suspect. {}",
                    change.describe(),
                    diagnosis.why
                );
            }
        }
    }
    // Serving saturation, retrieval degradation, context overflow.
    super::infra::derive(&mut diagnosis, finding, topology);
    // A change of the model answering is a model change; an old change is a weak suspect.
    for hypothesis in &mut diagnosis.hypotheses {
        let Some(change) = &hypothesis.change else {
            continue;
        };
        if is_model_version(&change.version_label) {
            hypothesis.kind = HypothesisKind::ModelChange;
            hypothesis.evidence.push(format!(
                "the model answering changed: going back means routing to {} again, not \
                 changing a prompt",
                change.from
            ));
        }
        let age = finding.raised_at.millis_since(change.at);
        if age > FRESH_CHANGE_MS {
            hypothesis.confidence = (hypothesis.confidence * FRESH_CHANGE_MS as f64 / age as f64)
                .max(OLDEST_CHANGE_CONFIDENCE);
            hypothesis.against.push(Fact {
                layer,
                text: format!(
                    "{} ran for {} before this finding without it firing",
                    change.describe(),
                    hours_or_minutes(age)
                ),
            });
        }
    }
    // A change stays the first suspect unless its own counter-evidence weakened it: then the
    // finding's own explanations come first.
    diagnosis
        .hypotheses
        .sort_by_key(|hypothesis| hypothesis.change.is_some() && !hypothesis.against.is_empty());
    diagnosis
}

/// One finding of an incident, with its own (enriched) diagnosis.
#[derive(Clone, Copy, Debug)]
pub struct Member<'a> {
    /// The finding.
    pub finding: &'a Finding,
    /// Its diagnosis when it was raised.
    pub diagnosis: &'a Diagnosis,
}

/// How much explaining the other findings adds to a cause's score, at most.
const EXPLAINS_WEIGHT: f64 = 0.5;

/// What coming first adds.
const FIRST_WEIGHT: f64 = 0.1;

/// What being a symptom of another finding's subject multiplies the score by.
const SYMPTOM_FACTOR: f64 = 0.5;

/// The incident's causes, ranked over its findings (see the module docs). With one finding
/// it is that finding's diagnosis.
#[must_use]
pub fn rank(members: &[Member<'_>], topology: &Topology, max_hops: u8) -> Diagnosis {
    let [first, rest @ ..] = members else {
        return Diagnosis {
            hypotheses: Vec::new(),
            why: String::new(),
        };
    };
    if rest.is_empty() {
        return first.diagnosis.clone();
    }
    let nodes: Vec<Option<NodeId>> = members
        .iter()
        .map(|member| node_of_subject(&member.finding.subject.label, &member.finding.subject.value))
        .collect();
    // What each node depends on, searched once per node (not once per pair of findings).
    let mut searched: std::collections::BTreeMap<NodeId, std::collections::BTreeMap<NodeId, u8>> =
        std::collections::BTreeMap::new();
    for node in nodes.iter().flatten() {
        searched
            .entry(node.clone())
            .or_insert_with_key(|node| topology.dependencies_within(node, max_hops));
    }
    for change in members
        .iter()
        .filter_map(|member| member.diagnosis.best())
        .filter_map(|best| best.change.as_ref())
        .filter_map(node_of_change)
    {
        searched
            .entry(change)
            .or_insert_with_key(|change| topology.dependencies_within(change, max_hops));
    }
    let depends = |downstream: &NodeId, upstream: &NodeId| {
        searched
            .get(downstream)
            .is_some_and(|deps| deps.contains_key(upstream))
    };
    let mut scored: Vec<(f64, Hypothesis, Timestamp)> = Vec::new();
    for (idx, member) in members.iter().enumerate() {
        let Some(best) = member.diagnosis.best() else {
            continue;
        };
        let mut hypothesis = best.clone();
        // The cause's node: the change's, else the finding's.
        let cause = hypothesis
            .change
            .as_ref()
            .and_then(node_of_change)
            .or_else(|| nodes.get(idx).cloned().flatten());
        let mut explained = 0_usize;
        let mut first_of_them = true;
        let mut symptom_of: Option<&Finding> = None;
        for (other_idx, other) in members.iter().enumerate() {
            if other_idx == idx {
                continue;
            }
            let Some(other_node) = nodes.get(other_idx).cloned().flatten() else {
                continue;
            };
            let Some(cause) = &cause else {
                continue;
            };
            if other_node != *cause && depends(&other_node, cause) {
                explained += 1;
                if other.finding.raised_at < member.finding.raised_at {
                    first_of_them = false;
                }
                hypothesis.support.push(Fact {
                    layer: super::rank::layer_of(other.finding),
                    text: format!(
                        "{} depends on {cause}: {}",
                        other_node,
                        other
                            .diagnosis
                            .best()
                            .and_then(|best| best.evidence.first().cloned())
                            .unwrap_or_else(|| other.finding.fingerprint.clone())
                    ),
                });
            } else if other_node != *cause && depends(cause, &other_node) {
                symptom_of = Some(other.finding);
                hypothesis.against.push(Fact {
                    layer: super::rank::layer_of(other.finding),
                    text: format!(
                        "{other_node}, which {cause} depends on, is failing too ({})",
                        other.finding.fingerprint
                    ),
                });
            }
        }
        let n_others = members.len().saturating_sub(1).max(1);
        let mut score =
            hypothesis.confidence * (1.0 + EXPLAINS_WEIGHT * explained as f64 / n_others as f64);
        if explained > 0 && first_of_them {
            score += FIRST_WEIGHT;
            hypothesis.support.push(Fact {
                layer: hypothesis.layer.unwrap_or(Layer::Gateway),
                text: "it came before the findings it explains".to_owned(),
            });
        } else if explained > 0 {
            hypothesis.against.push(Fact {
                layer: hypothesis.layer.unwrap_or(Layer::Gateway),
                text: "it came after a finding it would explain".to_owned(),
            });
        }
        if symptom_of.is_some() {
            score *= SYMPTOM_FACTOR;
        }
        score += super::infra::cause_bonus(hypothesis.kind);
        // Ranked by the score; the confidence people read is the score, at most 1.
        hypothesis.confidence = score.clamp(0.0, 1.0);
        scored.push((score, hypothesis, member.finding.raised_at));
    }
    // Best score first; then the earlier finding; then the order the findings joined.
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.2.cmp(&b.2)));
    let mut hypotheses: Vec<Hypothesis> = Vec::new();
    for (_, hypothesis, _) in scored {
        let duplicate = hypotheses.iter().any(|known| {
            known.kind == hypothesis.kind
                && known.subject.as_ref().map(|s| &s.value)
                    == hypothesis.subject.as_ref().map(|s| &s.value)
        });
        if !duplicate {
            hypotheses.push(hypothesis);
        }
    }
    let why = match hypotheses.first() {
        Some(best) => {
            let subject = best.subject.as_ref().map_or_else(String::new, |subject| {
                format!(" of {} {}", subject.label, subject.value)
            });
            let chain: Vec<String> = best.support.iter().map(|fact| fact.text.clone()).collect();
            let own = members
                .iter()
                .find(|member| {
                    member.diagnosis.best().is_some_and(|own| {
                        own.kind == best.kind
                            && own.subject.as_ref().map(|s| &s.value)
                                == best.subject.as_ref().map(|s| &s.value)
                    })
                })
                .map_or_else(String::new, |member| format!(" {}", member.diagnosis.why));
            if chain.is_empty() {
                format!(
                    "{} findings, best explained by {}{subject}.{own}",
                    members.len(),
                    best.kind.as_str().replace('_', " ")
                )
            } else {
                format!(
                    "{} findings, best explained by {}{subject}: {}.{own}",
                    members.len(),
                    best.kind.as_str().replace('_', " "),
                    chain.join("; ")
                )
            }
        }
        None => first.diagnosis.why.clone(),
    };
    Diagnosis { hypotheses, why }
}

#[cfg(test)]
mod tests;
