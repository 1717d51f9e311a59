//! The infrastructure-side kinds: each case a finding on a small stack, and the kind, subject,
//! evidence and counter-evidence the diagnoser derives from it.

use super::*;
use crate::detector::Severity;
use crate::detector::change::Change;
use crate::detector::proportion::ProportionEvidence;
use crate::detector::threshold::ThresholdEvidence;
use crate::diagnosis::rank::{Member, enrich, rank};
use crate::diagnosis::{DEFAULT_CHANGE_WINDOW_MS, DiagnosisConfig, diagnose};
use crate::store::Selector;
use crate::time::Timestamp;
use crate::topology::{Edge, Growth, Modality, ModelInfo, NodeFacts, Origin};

const MINUTE: i64 = 60_000;

/// support-bot calls gpt-4o (a 128k window) and reads qdrant; prompt `answer` calls gpt-4o
/// and reads qdrant (declared, as a RAG prompt's operator would); the eval suite rag uses it.
fn stack() -> Topology {
    let mut topology = Topology::default();
    let mut growth = Growth::default();
    topology.learn_node(
        &"model_group:gpt-4o".parse().unwrap(),
        &NodeFacts {
            model: Some(ModelInfo {
                modality: Modality::Chat,
                context_window: Some(128_000),
            }),
            ..NodeFacts::default()
        },
        &Origin::Declared,
        &mut growth,
    );
    for (from, relation, to) in [
        ("app:support-bot", Relation::Calls, "model_group:gpt-4o"),
        ("app:support-bot", Relation::Reads, "retrieval:qdrant"),
        ("prompt:answer", Relation::Calls, "model_group:gpt-4o"),
        ("prompt:answer", Relation::Reads, "retrieval:qdrant"),
        ("eval_suite:rag", Relation::Uses, "prompt:answer"),
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

/// A threshold finding of `reading` on `label=value`, read at `value` (limit 10), at `minute`.
fn threshold(
    source: &str,
    reading: Reading,
    label: &str,
    group: &str,
    value: f64,
    minute: i64,
) -> Finding {
    Finding {
        fingerprint: format!("d/{label}={group}"),
        detector: "d".to_owned(),
        source: source.to_owned(),
        subject: Subject {
            label: label.to_owned(),
            value: group.to_owned(),
            alias: None,
            team: None,
        },
        severity: Severity::Page,
        raised_at: Timestamp(minute * MINUTE),
        evidence: Evidence::Threshold(ThresholdEvidence {
            describe: "reading".to_owned(),
            reading,
            value,
            bound: Bound::Above,
            fire: 10.0,
            clear: 5.0,
            n_observations: 2,
            recent: Vec::new(),
        }),
    }
}

fn value(selector: &str) -> Reading {
    Reading::Value {
        selector: Selector::parse(selector).unwrap(),
    }
}

fn quantile(selector: &str) -> Reading {
    Reading::Quantile {
        selector: Selector::parse(selector).unwrap(),
        quantile: 0.95,
        window_secs: 300,
    }
}

fn rate(selector: &str) -> Reading {
    Reading::Rate {
        selector: Selector::parse(selector).unwrap(),
        window_secs: 300,
    }
}

const CONFIG: DiagnosisConfig = DiagnosisConfig {
    runaway_min_share: 0.5,
    change_window_ms: DEFAULT_CHANGE_WINDOW_MS,
    demand: None,
    excess: crate::diagnosis::ExcessRule::Net,
};

fn diagnosed(finding: &Finding, topology: &Topology, changes: &[Change]) -> Diagnosis {
    let own = diagnose(&CONFIG, NumberStyle::Readable, finding, &[], changes);
    enrich(own, finding, topology, 3, changes, DEFAULT_CHANGE_WINDOW_MS)
}

/// The best hypothesis as `kind subject layer confidence`, then its facts for and against.
fn summary(diagnosis: &Diagnosis) -> String {
    let best = diagnosis.best().unwrap();
    let subject = best
        .subject
        .as_ref()
        .map_or_else(String::new, |s| format!("{}={}", s.label, s.value));
    let mut lines = vec![format!(
        "{} {subject} {:?} {:.2}",
        best.kind.as_str(),
        best.layer,
        best.confidence
    )];
    lines.extend(best.evidence.iter().take(2).map(|text| format!("+ {text}")));
    lines.extend(best.support.iter().map(|fact| format!("> {}", fact.text)));
    lines.extend(best.against.iter().map(|fact| format!("- {}", fact.text)));
    lines.join("\n")
}

#[test]
fn a_vllm_queue_is_serving_saturation_of_its_model_group() {
    let finding = threshold(
        "vllm-llama",
        value("vllm:num_requests_waiting"),
        "model_name",
        "llama-3-70b",
        40.0,
        10,
    );
    let diagnosis = diagnosed(&finding, &stack(), &[]);
    let best = diagnosis.best().unwrap();
    assert_eq!(best.kind, HypothesisKind::ServingSaturation);
    assert_eq!(best.subject.as_ref().unwrap().label, "model_group");
    assert_eq!(best.subject.as_ref().unwrap().value, "llama-3-70b");
    assert_eq!(best.layer, Some(Layer::Infrastructure));
    assert!(best.against.is_empty(), "{:?}", best.against);
    assert!((best.confidence - 1.0).abs() < 1e-9);
    // The threshold breach it came from stays, second.
    assert_eq!(
        diagnosis.hypotheses[1].kind,
        HypothesisKind::ThresholdBreach
    );
    assert!(
        diagnosis
            .why
            .starts_with("The self-hosted model llama-3-70b")
    );
}

#[test]
fn the_kv_cache_and_preemptions_are_saturation_by_name_and_latency_alone_is_weaker() {
    for selector in [
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_cache_usage_perc",
        "vllm:num_preemptions_total",
        "tgi_queue_size",
    ] {
        let finding = threshold("vllm", value(selector), "model_name", "m", 1.0, 1);
        let best = diagnosed(&finding, &stack(), &[]).hypotheses.remove(0);
        assert_eq!(best.kind, HypothesisKind::ServingSaturation, "{selector}");
        assert!(best.against.is_empty(), "{selector}");
    }
    // Time to first token alone: saturation, with the counter-evidence that a queue or the
    // cache would settle.
    let finding = threshold(
        "vllm",
        quantile("vllm:time_to_first_token_seconds_bucket"),
        "model_name",
        "m",
        12.0,
        1,
    );
    let best = diagnosed(&finding, &stack(), &[]).hypotheses.remove(0);
    assert_eq!(best.kind, HypothesisKind::ServingSaturation);
    assert_eq!(best.against.len(), 1);
    assert!((best.confidence - 0.5).abs() < 1e-9);
}

#[test]
fn a_hosted_providers_time_to_first_token_is_not_serving_saturation() {
    // Regression: LiteLLM's time-to-first-token metric is the provider's latency, not a
    // self-hosted server's room.
    let finding = threshold(
        "litellm-gateway",
        quantile("litellm_llm_api_time_to_first_token_metric_bucket"),
        "model_group",
        "gpt-4o",
        12.0,
        1,
    );
    assert_eq!(
        diagnosed(&finding, &stack(), &[]).best().unwrap().kind,
        HypothesisKind::ThresholdBreach
    );
}

#[test]
fn an_alert_about_a_store_an_app_reads_is_retrieval_degradation() {
    let finding = threshold(
        "push:alerts",
        value("vigil_alert_firing"),
        "subject",
        "vector_store=qdrant",
        1.0,
        5,
    );
    let diagnosis = diagnosed(&finding, &stack(), &[]);
    expect_test::expect![[r#"
        retrieval_degradation vector_store=qdrant Some(Infrastructure) 1.00
        + an alert fires about the retrieval store qdrant
        + reading of subject vector_store=qdrant is 1, above the limit of 10 for 2 observations in a row
        > app:support-bot, prompt:answer read it: answers built on it suffer (evals, timeouts)"#]]
    .assert_eq(&summary(&diagnosis));
    assert!(
        diagnosis.why.contains("ask the store's owner"),
        "{}",
        diagnosis.why
    );
}

#[test]
fn a_store_no_app_reads_explains_nothing_downstream() {
    let finding = threshold(
        "push:alerts",
        value("vigil_alert_firing"),
        "subject",
        "vector_store=elastic-logs",
        1.0,
        5,
    );
    expect_test::expect![[r#"
        retrieval_degradation vector_store=elastic-logs Some(Infrastructure) 0.50
        + an alert fires about the retrieval store elastic-logs
        + reading of subject vector_store=elastic-logs is 1, above the limit of 10 for 2 observations in a row
        - no app is known to read elastic-logs, so it explains no symptom downstream"#]]
    .assert_eq(&summary(&diagnosed(&finding, &stack(), &[])));
}

#[test]
fn database_spans_and_vector_database_metrics_are_retrieval() {
    let spans = threshold(
        "push:spans",
        quantile("vigil_db_request_duration_seconds_bucket"),
        "db_system",
        "qdrant",
        6.0,
        5,
    );
    let best = diagnosed(&spans, &stack(), &[]).hypotheses.remove(0);
    assert_eq!(best.kind, HypothesisKind::RetrievalDegradation);
    assert_eq!(
        best.evidence[0],
        "database spans of the store qdrant show it degraded"
    );
    // A vector database's own metric, grouped by a label that names no node.
    let scraped = threshold(
        "qdrant",
        quantile("qdrant_rest_responses_duration_seconds_bucket"),
        "collection",
        "docs",
        3.0,
        5,
    );
    let best = diagnosed(&scraped, &stack(), &[]).hypotheses.remove(0);
    assert_eq!(best.kind, HypothesisKind::RetrievalDegradation);
    assert_eq!(best.subject.unwrap().label, "collection");
    // A recall that drops is a degradation too.
    let mut recall = scraped.clone();
    recall.evidence = Evidence::ProportionDrop(ProportionEvidence {
        describe: "recall@10".to_owned(),
        good: "retrieval_hits_total".to_owned(),
        total: "retrieval_queries_total".to_owned(),
        window_secs: 600,
        recent_good: 50.0,
        recent_total: 100.0,
        baseline_good: 900.0,
        baseline_total: 1000.0,
        baseline_share: 0.9,
        p_value: 1e-6,
        min_drop: 0.1,
        alert_probability: 1e-3,
        drift: None,
    });
    assert_eq!(
        diagnosed(&recall, &stack(), &[]).best().unwrap().kind,
        HypothesisKind::RetrievalDegradation
    );
}

#[test]
fn context_window_errors_are_context_overflow_with_the_declared_window() {
    let finding = threshold(
        "litellm-gateway",
        rate(
            "litellm_deployment_failure_responses_total{exception_class=~\".*ContextWindowExceededError\"}",
        ),
        "model_group",
        "gpt-4o",
        0.2,
        5,
    );
    expect_test::expect![[r#"
        context_overflow model_group=gpt-4o Some(Gateway) 1.00
        + prompts outgrow the model's context window (context-window errors, answers cut at the length limit or prompt sizes past their limit)
        + model group gpt-4o has a context window of 128,000 tokens"#]]
    .assert_eq(&summary(&diagnosed(&finding, &stack(), &[])));
    // Answers cut at the length limit.
    let cut = threshold(
        "push:spans",
        rate("vigil_genai_finish_reasons_total{reason=\"length\"}"),
        "model",
        "gpt-4o",
        0.2,
        5,
    );
    assert_eq!(
        diagnosed(&cut, &stack(), &[]).best().unwrap().kind,
        HypothesisKind::ContextOverflow
    );
    // Other finish reasons are not.
    let stopped = threshold(
        "push:spans",
        rate("vigil_genai_finish_reasons_total{reason=\"stop\"}"),
        "model",
        "gpt-4o",
        0.2,
        5,
    );
    assert_eq!(
        diagnosed(&stopped, &stack(), &[]).best().unwrap().kind,
        HypothesisKind::ThresholdBreach
    );
}

fn prompt_size(tokens: f64) -> Finding {
    threshold(
        "push:evals",
        Reading::Mean {
            sum: Selector::parse("vigil_eval_input_tokens_sum").unwrap(),
            count: Selector::parse("vigil_eval_input_tokens_count").unwrap(),
        },
        "prompt",
        "answer",
        tokens,
        30,
    )
}

#[test]
fn a_prompt_size_near_the_window_supports_an_overflow_and_one_far_under_it_speaks_against() {
    expect_test::expect![[r#"
        context_overflow prompt=answer Some(App) 1.00
        + prompts outgrow the model's context window (context-window errors, answers cut at the length limit or prompt sizes past their limit)
        + model group gpt-4o has a context window of 128,000 tokens
        > the prompts' 97,000 tokens are 75.8 % of gpt-4o's window"#]]
    .assert_eq(&summary(&diagnosed(&prompt_size(97_000.0), &stack(), &[])));
    expect_test::expect![[r#"
        context_overflow prompt=answer Some(App) 0.50
        + prompts outgrow the model's context window (context-window errors, answers cut at the length limit or prompt sizes past their limit)
        + model group gpt-4o has a context window of 128,000 tokens
        - the prompts' 20,000 tokens are 15.6 % of gpt-4o's window: far from overflowing"#]]
    .assert_eq(&summary(&diagnosed(&prompt_size(20_000.0), &stack(), &[])));
    // Without a declared window the kind stands on the reading alone.
    let bare = diagnosed(&prompt_size(97_000.0), &Topology::default(), &[]);
    let best = bare.best().unwrap();
    assert_eq!(best.kind, HypothesisKind::ContextOverflow);
    assert!(best.support.is_empty() && best.against.is_empty());
}

#[test]
fn a_fresh_prompt_change_stays_first_so_its_rollback_still_runs() {
    let change = Change {
        detector: "prompt-versions".to_owned(),
        source: "push:evals".to_owned(),
        subject: Subject {
            label: "prompt".to_owned(),
            value: "answer".to_owned(),
            alias: None,
            team: None,
        },
        version_label: "prompt_version".to_owned(),
        from: "3".to_owned(),
        to: "4".to_owned(),
        at: Timestamp(20 * MINUTE),
    };
    let diagnosis = diagnosed(&prompt_size(97_000.0), &stack(), &[change]);
    let kinds: Vec<HypothesisKind> = diagnosis.hypotheses.iter().map(|h| h.kind).collect();
    assert_eq!(
        kinds,
        [
            HypothesisKind::RecentChange,
            HypothesisKind::ContextOverflow,
            HypothesisKind::ThresholdBreach
        ]
    );
}

#[test]
fn a_degraded_store_outranks_the_eval_drop_it_explains() {
    let topology = stack();
    let store = threshold(
        "push:alerts",
        value("vigil_alert_firing"),
        "subject",
        "vector_store=qdrant",
        1.0,
        5,
    );
    let mut evals = store.clone();
    evals.source = "push:evals".to_owned();
    evals.fingerprint = "eval-pass-rate/prompt=answer".to_owned();
    evals.subject.label = "prompt".to_owned();
    evals.subject.value = "answer".to_owned();
    evals.raised_at = Timestamp(20 * MINUTE);
    evals.evidence = Evidence::ProportionDrop(ProportionEvidence {
        describe: "eval pass rate".to_owned(),
        good: "vigil_eval_cases_total{outcome=\"passed\"}".to_owned(),
        total: "vigil_eval_cases_total".to_owned(),
        window_secs: 3600,
        recent_good: 12.0,
        recent_total: 20.0,
        baseline_good: 95.0,
        baseline_total: 100.0,
        baseline_share: 0.95,
        p_value: 1e-5,
        min_drop: 0.1,
        alert_probability: 1e-3,
        drift: None,
    });
    let store_diagnosis = diagnosed(&store, &topology, &[]);
    let evals_diagnosis = diagnosed(&evals, &topology, &[]);
    // Whichever joined first, the store is the cause and the eval drop its symptom.
    for members in [
        [(&evals, &evals_diagnosis), (&store, &store_diagnosis)],
        [(&store, &store_diagnosis), (&evals, &evals_diagnosis)],
    ] {
        let members: Vec<Member<'_>> = members
            .iter()
            .map(|(finding, diagnosis)| Member { finding, diagnosis })
            .collect();
        let ranked = rank(&members, &topology, 3);
        let best = ranked.best().unwrap();
        assert_eq!(best.kind, HypothesisKind::RetrievalDegradation);
        assert!(
            best.support.iter().any(|fact| fact
                .text
                .starts_with("prompt:answer depends on retrieval:qdrant")),
            "{:?}",
            best.support
        );
        assert_eq!(ranked.hypotheses[1].kind, HypothesisKind::ProportionDrop);
    }
}

#[test]
fn saturation_outranks_the_gateway_latency_seen_on_the_same_model_group() {
    let topology = stack();
    let latency = threshold(
        "litellm-gateway",
        quantile("litellm_request_total_latency_metric_bucket"),
        "model_group",
        "llama-3-70b",
        30.0,
        3,
    );
    let queue = threshold(
        "vllm",
        value("vllm:num_requests_waiting"),
        "model_name",
        "llama-3-70b",
        40.0,
        4,
    );
    let latency_diagnosis = diagnosed(&latency, &topology, &[]);
    let queue_diagnosis = diagnosed(&queue, &topology, &[]);
    let members = [
        Member {
            finding: &latency,
            diagnosis: &latency_diagnosis,
        },
        Member {
            finding: &queue,
            diagnosis: &queue_diagnosis,
        },
    ];
    let ranked = rank(&members, &topology, 3);
    assert_eq!(
        ranked.best().unwrap().kind,
        HypothesisKind::ServingSaturation
    );
}

#[test]
fn a_change_connected_only_through_the_topology_does_not_outrank_the_servers_own_readings() {
    // Regression: a benign new version of a prompt that calls the saturated model group was
    // blamed first, at 0.7, over the servers' own queue.
    let mut topology = stack();
    topology.learn_edge(
        &Edge {
            from: "prompt:assistant".parse().unwrap(),
            relation: Relation::Calls,
            to: "model_group:llama-3-70b".parse().unwrap(),
        },
        &Origin::Declared,
        &mut Growth::default(),
    );
    let change = Change {
        detector: "prompt-versions".to_owned(),
        source: "push:evals".to_owned(),
        subject: Subject {
            label: "prompt".to_owned(),
            value: "assistant".to_owned(),
            alias: None,
            team: None,
        },
        version_label: "prompt_version".to_owned(),
        from: "4".to_owned(),
        to: "5".to_owned(),
        at: Timestamp(5 * MINUTE),
    };
    let finding = threshold(
        "vllm-llama",
        value("vllm:num_requests_waiting"),
        "model_name",
        "llama-3-70b",
        40.0,
        10,
    );
    let kinds: Vec<HypothesisKind> = diagnosed(&finding, &topology, &[change])
        .hypotheses
        .iter()
        .map(|hypothesis| hypothesis.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            HypothesisKind::ServingSaturation,
            HypothesisKind::RecentChange,
            HypothesisKind::ThresholdBreach
        ]
    );
}
