//! The infrastructure-side kinds (sessions with a topology): `serving_saturation`,
//! `retrieval_degradation` and `context_overflow`, derived from what a finding reads (its
//! detector's metrics and label matchers), its subject's node and the topology. No rule
//! names a scenario, a detector or a store: they read the conventions of the metrics.
//!
//! - **Serving saturation**: a self-hosted inference server (vLLM, TGI, SGLang, Triton) is
//!   out of room. Its own metrics say so: requests waiting, the KV cache near full,
//!   preemptions, time to first token or request latency rising (`vllm:num_requests_waiting`,
//!   `vllm:kv_cache_usage_perc` and the older `vllm:gpu_cache_usage_perc`,
//!   `vllm:num_preemptions_total`, `vllm:time_to_first_token_seconds`, `tgi_queue_size`).
//!   Latency alone is weaker evidence than a queue or the cache: longer prompts slow the
//!   first token too.
//! - **Retrieval degradation**: a retrieval store is slow, failing or recalls less: a finding
//!   about a retrieval node (a `vector_store`, `db_system` or `retrieval` label, an alert
//!   about one), or one reading a vector database's or the spans' database metrics. A store
//!   no app is known to read explains no symptom downstream: that is counter-evidence.
//! - **Context overflow**: prompts outgrow the model's context window: context-window errors
//!   (LiteLLM's `ContextWindowExceededError` class), answers cut at the length limit
//!   (finish reason `length`), or a prompt size (the mean or a quantile of input tokens)
//!   past its limit. When the topology declares the model group's context window, the
//!   hypothesis names it; a prompt size far under it speaks against the kind.
//!
//! The derived hypothesis goes before the finding's own hypotheses and after a version
//! change blamed for it, so a rollback that triggers on `recent_change` still runs first.

use crate::detector::threshold::{Bound, Reading};
use crate::detector::{Evidence, Finding, Subject};
use crate::human::NumberStyle;
use crate::topology::{Layer, NodeId, NodeKind, Relation, Topology};

use super::{Diagnosis, Fact, Hypothesis, HypothesisKind};

/// Metric-name prefixes of self-hosted inference servers.
const SERVING_PREFIXES: [&str; 6] = [
    "vllm:",
    "tgi_",
    "sglang:",
    "nv_inference",
    "trtllm",
    "lmdeploy",
];

/// Words of a serving server's metric that show it out of room (with a serving prefix).
const SERVING_WORDS: [&str; 9] = [
    "waiting",
    "queue",
    "cache_usage",
    "preempt",
    "time_to_first_token",
    "ttft",
    "e2e_request_latency",
    "time_per_output_token",
    "batch_current_size",
];

/// Metric names that show saturation whatever the prefix.
const SATURATION_NAMES: [&str; 4] = [
    "num_requests_waiting",
    "kv_cache_usage",
    "gpu_cache_usage",
    "num_preemptions",
];

/// The saturation words that are latencies, not room: weaker evidence on their own.
const LATENCY_WORDS: [&str; 4] = [
    "time_to_first_token",
    "ttft",
    "e2e_request_latency",
    "time_per_output_token",
];

/// Words of a retrieval store's metrics: vector databases, search engines, and the
/// database-span signals of the intake.
const RETRIEVAL_WORDS: [&str; 14] = [
    "vigil_db_",
    "retriev",
    "vector",
    "qdrant",
    "milvus",
    "weaviate",
    "pinecone",
    "chroma",
    "pgvector",
    "vespa",
    "lancedb",
    "elasticsearch",
    "opensearch",
    "recall",
];

/// Words that mean the context window was exceeded.
const CONTEXT_WORDS: [&str; 4] = [
    "contextwindow",
    "context_window",
    "context_length",
    "contextlength",
];

/// Words of a prompt-size metric (input tokens per request).
const PROMPT_SIZE_WORDS: [&str; 3] = ["input_tokens", "prompt_tokens", "request_prompt_tokens"];

/// What a counter-fact multiplies a derived hypothesis' confidence by.
const AGAINST_FACTOR: f64 = 0.5;

/// A prompt under this share of the context window speaks against an overflow.
const FAR_UNDER_WINDOW: f64 = 0.5;

/// What a finding reads, in lowercase: its selectors (with their label matchers) or metric.
fn reads_of(finding: &Finding) -> Vec<String> {
    let texts: Vec<String> = match &finding.evidence {
        Evidence::Threshold(evidence) => evidence
            .reading
            .selectors()
            .into_iter()
            .map(|selector| selector.as_str().to_owned())
            .collect(),
        Evidence::Anomaly(evidence) => evidence
            .reading
            .selectors()
            .into_iter()
            .map(|selector| selector.as_str().to_owned())
            .collect(),
        Evidence::Spike(evidence) => vec![evidence.metric.clone()],
        Evidence::ProportionDrop(evidence) => vec![evidence.good.clone(), evidence.total.clone()],
        Evidence::BurnRate(_) | Evidence::Schedule(_) => Vec::new(),
    };
    texts.iter().map(|text| text.to_ascii_lowercase()).collect()
}

/// The metric name of a selector's text: what comes before its `{`.
fn metric_of(text: &str) -> &str {
    text.split('{').next().unwrap_or(text).trim()
}

/// Whether the finding is about too high a reading (a latency, a queue, errors).
fn reads_high(finding: &Finding) -> bool {
    match &finding.evidence {
        Evidence::Threshold(evidence) => evidence.bound == Bound::Above,
        Evidence::Anomaly(evidence) => evidence.is_high(),
        Evidence::Spike(_) | Evidence::BurnRate(_) => true,
        Evidence::ProportionDrop(_) | Evidence::Schedule(_) => false,
    }
}

/// Whether the finding reads a prompt size: the mean or a quantile of input tokens.
fn reads_prompt_size(finding: &Finding, reads: &[String]) -> bool {
    let sized = match &finding.evidence {
        Evidence::Threshold(evidence) => matches!(
            evidence.reading,
            Reading::Mean { .. } | Reading::Quantile { .. } | Reading::Value { .. }
        ),
        Evidence::Anomaly(evidence) => matches!(
            evidence.reading,
            Reading::Mean { .. } | Reading::Quantile { .. } | Reading::Value { .. }
        ),
        _ => false,
    };
    sized
        && reads.first().is_some_and(|text| {
            let metric = metric_of(text);
            PROMPT_SIZE_WORDS.iter().any(|word| metric.contains(word))
        })
}

/// Whether a selector counts answers cut at the length limit.
fn reads_length_finish(text: &str) -> bool {
    metric_of(text).contains("finish_reason") && text.contains("\"length\"")
}

/// The kind a finding shows, if it is one of these.
fn kind_of(finding: &Finding, node: Option<&NodeId>) -> Option<HypothesisKind> {
    let reads = reads_of(finding);
    let high = reads_high(finding);
    let context = reads.iter().any(|text| {
        CONTEXT_WORDS.iter().any(|word| text.contains(word)) || reads_length_finish(text)
    });
    if high && (context || reads_prompt_size(finding, &reads)) {
        return Some(HypothesisKind::ContextOverflow);
    }
    let serving = reads.iter().any(|text| {
        let metric = metric_of(text);
        let prefixed = SERVING_PREFIXES
            .iter()
            .any(|prefix| metric.starts_with(prefix));
        (prefixed && SERVING_WORDS.iter().any(|word| metric.contains(word)))
            || SATURATION_NAMES.iter().any(|name| metric.contains(name))
    });
    if high && serving {
        return Some(HypothesisKind::ServingSaturation);
    }
    let at_store = node.is_some_and(|node| node.kind == NodeKind::Retrieval);
    let store_metric = reads.iter().any(|text| {
        let metric = metric_of(text);
        RETRIEVAL_WORDS.iter().any(|word| metric.contains(word))
    });
    if at_store || store_metric {
        return Some(HypothesisKind::RetrievalDegradation);
    }
    None
}

/// The subject a hypothesis about `node` names: its canonical label.
fn node_subject(node: &NodeId, fallback: &Subject) -> Subject {
    let label = match node.kind {
        NodeKind::Retrieval => "vector_store",
        NodeKind::ModelGroup => "model_group",
        NodeKind::Deployment => "model_id",
        NodeKind::Provider => "api_provider",
        _ => return fallback.clone(),
    };
    Subject {
        label: label.to_owned(),
        value: node.name.clone(),
        alias: fallback.alias.clone(),
        team: fallback.team.clone(),
    }
}

/// The model group a finding's node calls or is: where a context window is declared.
fn model_group_of(topology: &Topology, node: &NodeId) -> Option<NodeId> {
    if node.kind == NodeKind::ModelGroup {
        return Some(node.clone());
    }
    topology
        .targets(node, Relation::Calls)
        .find(|target| target.kind == NodeKind::ModelGroup)
        .cloned()
}

/// Adds the kind the finding shows, if any, before its own hypotheses (see the module docs).
pub(super) fn derive(diagnosis: &mut Diagnosis, finding: &Finding, topology: &Topology) {
    let node =
        crate::topology::discover::node_of_subject(&finding.subject.label, &finding.subject.value);
    let Some(kind) = kind_of(finding, node.as_ref()) else {
        return;
    };
    let Some(own_idx) = diagnosis
        .hypotheses
        .iter()
        .position(|hypothesis| hypothesis.change.is_none())
    else {
        return;
    };
    let Some(own) = diagnosis.hypotheses.get(own_idx).cloned() else {
        return;
    };
    let numbers = NumberStyle::Readable;
    let finding_layer = own.layer.unwrap_or(Layer::Gateway);
    let mut support = Vec::new();
    let mut against = Vec::new();
    let mut evidence = Vec::new();
    let (subject, layer, why) = match kind {
        HypothesisKind::ServingSaturation => {
            let reads = reads_of(finding);
            let latency_only = reads.iter().all(|text| {
                let metric = metric_of(text);
                LATENCY_WORDS.iter().any(|word| metric.contains(word))
            });
            evidence.push(format!(
                "the inference server's own metrics show it out of room ({})",
                reads
                    .iter()
                    .map(|text| metric_of(text))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if latency_only {
                against.push(Fact {
                    layer: Layer::Infrastructure,
                    text: "only a latency says so: longer prompts slow the first token too, and \
                           no queue or KV-cache reading confirms the server is full"
                        .to_owned(),
                });
            }
            let subject = node.as_ref().map_or_else(
                || finding.subject.clone(),
                |node| node_subject(node, &finding.subject),
            );
            let why = format!(
                "The self-hosted model {} is out of serving capacity (requests wait, the KV \
                 cache fills, answers start late). vigil can move its traffic to a hosted \
                 fallback; otherwise scale the deployment up or shed load.",
                subject.value
            );
            (subject, Layer::Infrastructure, why)
        }
        HypothesisKind::RetrievalDegradation => {
            let subject = node.as_ref().map_or_else(
                || finding.subject.clone(),
                |node| node_subject(node, &finding.subject),
            );
            let readers: Vec<String> = node
                .as_ref()
                .map(|node| {
                    topology
                        .sources(node, Relation::Reads)
                        .map(ToString::to_string)
                        .collect()
                })
                .unwrap_or_default();
            evidence.push(match finding.source.as_str() {
                "push:alerts" => {
                    format!("an alert fires about the retrieval store {}", subject.value)
                }
                "push:spans" => format!(
                    "database spans of the store {} show it degraded",
                    subject.value
                ),
                _ => format!("the retrieval store {} is degraded", subject.value),
            });
            if readers.is_empty() {
                if node.is_some() {
                    against.push(Fact {
                        layer: Layer::Infrastructure,
                        text: format!(
                            "no app is known to read {}, so it explains no symptom downstream",
                            subject.value
                        ),
                    });
                }
            } else {
                support.push(Fact {
                    layer: Layer::App,
                    text: format!(
                        "{} read{} it: answers built on it suffer (evals, timeouts)",
                        readers.join(", "),
                        if readers.len() == 1 { "s" } else { "" }
                    ),
                });
            }
            let why = format!(
                "The retrieval store {} is degraded (infrastructure layer); what reads it \
                 answers slowly or worse. vigil has no safe automatic fix: ask the store's \
                 owner to look at it (load, indexes, recent changes).",
                subject.value
            );
            (subject, Layer::Infrastructure, why)
        }
        HypothesisKind::ContextOverflow => {
            let window = node.as_ref().and_then(|node| {
                let group = model_group_of(topology, node)?;
                let size = topology.node(&group)?.model?.context_window?;
                Some((group, size))
            });
            evidence.push(
                "prompts outgrow the model's context window (context-window \
                           errors, answers cut at the length limit or prompt sizes past their \
                           limit)"
                    .to_owned(),
            );
            let reading = match &finding.evidence {
                Evidence::Threshold(threshold)
                    if reads_prompt_size(finding, &reads_of(finding)) =>
                {
                    Some(threshold.value)
                }
                Evidence::Anomaly(anomaly) if reads_prompt_size(finding, &reads_of(finding)) => {
                    Some(anomaly.value)
                }
                _ => None,
            };
            if let Some((group, size)) = &window {
                evidence.push(format!(
                    "model group {} has a context window of {} tokens",
                    group.name,
                    numbers.number(*size as f64)
                ));
                if let Some(tokens) = reading {
                    let share = tokens / (*size as f64).max(1.0);
                    let text = format!(
                        "the prompts' {} tokens are {} of {}'s window",
                        numbers.number(tokens),
                        numbers.percent(share),
                        group.name
                    );
                    if share < FAR_UNDER_WINDOW {
                        against.push(Fact {
                            layer: Layer::Gateway,
                            text: format!("{text}: far from overflowing"),
                        });
                    } else {
                        support.push(Fact {
                            layer: Layer::Gateway,
                            text,
                        });
                    }
                }
            }
            let subject = finding.subject.clone();
            let window_text = window.as_ref().map_or_else(String::new, |(group, size)| {
                format!(
                    " ({} tokens for {})",
                    numbers.number(*size as f64),
                    group.name
                )
            });
            let why = format!(
                "Prompts of {} {} outgrow the model's context window{window_text}. Shorten \
                 them (trim history or retrieved context) or move them to a model with a \
                 larger window.",
                subject.label, subject.value
            );
            (subject, finding_layer, why)
        }
        _ => return,
    };
    evidence.extend(own.evidence.iter().cloned());
    let confidence = if against.is_empty() {
        own.confidence
    } else {
        own.confidence * AGAINST_FACTOR
    };
    let derived = Hypothesis {
        kind,
        subject: Some(subject),
        confidence,
        evidence,
        change: None,
        layer: Some(layer),
        support,
        against,
    };
    // After a change of the finding's own group (what a rollback answers), but before a
    // weaker change only connected to it through the topology: the component's own readings
    // are the stronger evidence.
    let first = diagnosis
        .hypotheses
        .iter()
        .position(|hypothesis| match &hypothesis.change {
            None => true,
            Some(change) => {
                let own_group = change.subject.label == finding.subject.label
                    && change.subject.value == finding.subject.value;
                !own_group && hypothesis.confidence < derived.confidence
            }
        })
        .unwrap_or(own_idx);
    diagnosis.hypotheses.insert(first, derived);
    diagnosis.why = format!("{why} {}", diagnosis.why);
}

/// What an infrastructure cause adds to its score when ranked against the incident's other
/// findings: a saturated server or a degraded store explains the latency, errors and eval
/// drops seen on the same node or above it, so it wins a tie with them.
#[must_use]
pub fn cause_bonus(kind: HypothesisKind) -> f64 {
    match kind {
        HypothesisKind::ServingSaturation | HypothesisKind::RetrievalDegradation => 0.05,
        _ => 0.0,
    }
}

#[cfg(test)]
mod tests;
