//! What the signals of every accepted payload must satisfy (the table in
//! `vigil_core::intake`'s module docs):
//!
//! - they are sorted by name and labels, one per series;
//! - each name is in the table, with exactly its label names and its kind;
//! - every label value has at most `MAX_LABEL_CHARS` characters;
//! - every value is finite; gauges and counter increments are 0 or more (only the sum of
//!   eval scores may fall); gauges are whole numbers;
//! - each histogram has a bucket per bound plus `+Inf`, cumulative, the `+Inf` bucket equal
//!   to `_count`, and a `_sum`;
//! - the counts add up to the batch's items (runs, alerts, tool calls, model calls...) and
//!   the gauges are the maxima of what the batch's runs report;
//! - their number is bounded by a constant per item, and by the input's length.

use std::collections::BTreeMap;

use vigil_core::intake::{
    AgentRunBatch, AlertBatch, DURATION_BUCKETS_SECONDS, EvalBatch, ITERATION_BUCKETS,
    MAX_LABEL_CHARS, Pushed, Signal, SignalKind, SpanBatch, label_value,
};
use vigil_core::signal::Labels;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Counter,
    /// A counter whose increments may be negative (a sum of scores).
    SignedCounter,
    Gauge,
}

/// Every signal: its name, its label names in order, its kind.
const SHAPES: [(&str, &[&str], Kind); 25] = [
    (
        "vigil_eval_cases_total",
        &["model", "outcome", "prompt", "prompt_version", "suite"],
        Kind::Counter,
    ),
    (
        "vigil_eval_score_sum",
        &["model", "prompt", "prompt_version", "suite"],
        Kind::SignedCounter,
    ),
    (
        "vigil_eval_score_count",
        &["model", "prompt", "prompt_version", "suite"],
        Kind::Counter,
    ),
    (
        "vigil_eval_input_tokens_sum",
        &["model", "prompt", "prompt_version", "suite"],
        Kind::Counter,
    ),
    (
        "vigil_eval_input_tokens_count",
        &["model", "prompt", "prompt_version", "suite"],
        Kind::Counter,
    ),
    (
        "vigil_agent_runs_total",
        &["agent", "outcome"],
        Kind::Counter,
    ),
    (
        "vigil_agent_iterations_bucket",
        &["agent", "le"],
        Kind::Counter,
    ),
    ("vigil_agent_iterations_sum", &["agent"], Kind::Counter),
    ("vigil_agent_iterations_count", &["agent"], Kind::Counter),
    (
        "vigil_agent_tool_calls_total",
        &["agent", "tool"],
        Kind::Counter,
    ),
    (
        "vigil_agent_repeated_tool_calls_total",
        &["agent"],
        Kind::Counter,
    ),
    ("vigil_agent_max_repeat_streak", &["agent"], Kind::Gauge),
    ("vigil_agent_max_stalled_calls", &["agent"], Kind::Gauge),
    (
        "vigil_agent_key_max_stalled_calls",
        &["agent", "hashed_api_key"],
        Kind::Gauge,
    ),
    ("vigil_agent_max_iterations", &["agent"], Kind::Gauge),
    (
        "vigil_agent_tokens_total",
        &["agent", "direction"],
        Kind::Counter,
    ),
    (
        "vigil_alerts_total",
        &["alertname", "severity", "status"],
        Kind::Counter,
    ),
    (
        "vigil_genai_requests_total",
        &["error_type", "model", "operation", "provider"],
        Kind::Counter,
    ),
    (
        "vigil_genai_tokens_total",
        &["direction", "model", "provider"],
        Kind::Counter,
    ),
    (
        "vigil_genai_finish_reasons_total",
        &["model", "provider", "reason"],
        Kind::Counter,
    ),
    (
        "vigil_genai_request_duration_seconds_bucket",
        &["le", "model", "provider"],
        Kind::Counter,
    ),
    (
        "vigil_genai_request_duration_seconds_sum",
        &["model", "provider"],
        Kind::Counter,
    ),
    (
        "vigil_genai_request_duration_seconds_count",
        &["model", "provider"],
        Kind::Counter,
    ),
    (
        "vigil_genai_tool_calls_total",
        &["error_type", "tool"],
        Kind::Counter,
    ),
    (
        "vigil_genai_agent_invocations_total",
        &["agent", "error_type"],
        Kind::Counter,
    ),
];

/// The histograms: base name and bounds.
const HISTOGRAMS: [(&str, &[f64]); 2] = [
    ("vigil_agent_iterations", &ITERATION_BUCKETS),
    (
        "vigil_genai_request_duration_seconds",
        &DURATION_BUCKETS_SECONDS,
    ),
];

/// Checks the signals of an accepted payload parsed from `data`.
pub fn check(data: &[u8], pushed: &Pushed) {
    let signals = pushed.signals();
    assert!(
        signals.len() <= bound(pushed),
        "{} signals for {} items",
        signals.len(),
        pushed.n_items()
    );
    assert!(signals.len() <= data.len(), "more signals than input bytes");
    assert!(
        signals
            .windows(2)
            .all(|pair| (&pair[0].name, &pair[0].labels) < (&pair[1].name, &pair[1].labels)),
        "signals not sorted, or a series twice"
    );
    for signal in &signals {
        check_one(signal);
    }
    for (base, bounds) in HISTOGRAMS {
        check_histogram(&signals, base, bounds);
    }
    check_totals(pushed, &signals);
}

/// The most signals a payload can yield: a constant per item, plus one per tool call or
/// finish reason.
fn bound(pushed: &Pushed) -> usize {
    match pushed {
        Pushed::Evals(batch) => 5 * batch.results.len(),
        Pushed::AgentRuns(batch) => batch
            .runs
            .iter()
            // runs_total, the histogram, tool calls, 5 loop facts, 2 token directions.
            .map(|run| 1 + (ITERATION_BUCKETS.len() + 3) + run.tool_calls.len() + 5 + 2)
            .sum(),
        Pushed::Alerts(batch) => batch.alerts.len(),
        Pushed::Spans(batch) => batch
            .spans
            .iter()
            // Tool or agent, requests, 2 token directions, reasons, the histogram.
            .map(|span| 1 + 1 + 2 + span.finish_reasons.len() + DURATION_BUCKETS_SECONDS.len() + 3)
            .sum(),
    }
}

fn value(signal: &Signal) -> f64 {
    match signal.kind {
        SignalKind::CounterIncrement(value) | SignalKind::Gauge(value) => value,
    }
}

fn check_one(signal: &Signal) {
    let Some((_, names, kind)) = SHAPES.iter().find(|(name, _, _)| *name == signal.name) else {
        panic!("a signal outside the table: {signal:?}");
    };
    let found: Vec<&str> = signal.labels.iter().map(|(name, _)| name).collect();
    assert_eq!(&found, names, "{signal:?}");
    assert!(
        signal
            .labels
            .iter()
            .all(|(_, value)| value.chars().count() <= MAX_LABEL_CHARS),
        "a label value over {MAX_LABEL_CHARS} characters: {signal:?}"
    );
    let number = value(signal);
    assert!(number.is_finite(), "{signal:?}");
    match (kind, signal.kind) {
        (Kind::Gauge, SignalKind::Gauge(gauge)) => {
            assert!(gauge >= 0.0 && gauge.fract() == 0.0, "{signal:?}");
        }
        (Kind::Counter, SignalKind::CounterIncrement(increment)) => {
            assert!(increment >= 0.0, "{signal:?}");
        }
        (Kind::SignedCounter, SignalKind::CounterIncrement(_)) => {}
        _ => panic!("{signal:?} is not a {kind:?}"),
    }
}

/// The labels of a bucket without its `le`.
fn without_le(labels: &Labels) -> Labels {
    labels.iter().filter(|(name, _)| *name != "le").collect()
}

fn check_histogram(signals: &[Signal], base: &str, bounds: &[f64]) {
    let bucket_name = format!("{base}_bucket");
    let mut buckets: BTreeMap<Labels, Vec<(String, f64)>> = BTreeMap::new();
    for signal in signals.iter().filter(|signal| signal.name == bucket_name) {
        let le = signal.labels.get("le").unwrap_or_default().to_owned();
        buckets
            .entry(without_le(&signal.labels))
            .or_default()
            .push((le, value(signal)));
    }
    let of = |suffix: &str| -> BTreeMap<Labels, f64> {
        let name = format!("{base}_{suffix}");
        signals
            .iter()
            .filter(|signal| signal.name == name)
            .map(|signal| (signal.labels.clone(), value(signal)))
            .collect()
    };
    let counts = of("count");
    let sums = of("sum");
    assert_eq!(
        buckets.keys().collect::<Vec<_>>(),
        counts.keys().collect::<Vec<_>>(),
        "{base}: buckets and counts for different series"
    );
    assert_eq!(
        sums.keys().collect::<Vec<_>>(),
        counts.keys().collect::<Vec<_>>(),
        "{base}: sums and counts for different series"
    );
    for (labels, found) in &buckets {
        let by_bound: BTreeMap<&str, f64> = found.iter().map(|(le, n)| (le.as_str(), *n)).collect();
        assert_eq!(
            by_bound.len(),
            bounds.len() + 1,
            "{base}{labels}: {found:?}"
        );
        let mut previous = 0.0;
        for bound in bounds.iter().map(ToString::to_string) {
            let n = by_bound[bound.as_str()];
            assert!(
                n >= previous,
                "{base}{labels}: buckets not cumulative: {found:?}"
            );
            previous = n;
        }
        let all = by_bound["+Inf"];
        assert!(all >= previous, "{base}{labels}: {found:?}");
        assert_eq!(
            all, counts[labels],
            "{base}{labels}: `+Inf` bucket differs from `_count`"
        );
        assert!(all >= 1.0, "{base}{labels}: an empty histogram");
    }
}

/// The sum of the values of signal `name` over its series.
fn total(signals: &[Signal], name: &str) -> f64 {
    signals
        .iter()
        .filter(|signal| signal.name == name)
        .map(value)
        .sum()
}

fn check_totals(pushed: &Pushed, signals: &[Signal]) {
    let expect = |name: &str, expected: usize| {
        assert_eq!(total(signals, name), expected as f64, "the total of {name}");
    };
    match pushed {
        Pushed::Evals(batch) => eval_totals(batch, expect),
        Pushed::AgentRuns(batch) => agent_totals(batch, signals, expect),
        Pushed::Alerts(batch) => alert_totals(batch, expect),
        Pushed::Spans(batch) => span_totals(batch, expect),
    }
}

fn eval_totals(batch: &EvalBatch, expect: impl Fn(&str, usize)) {
    let results = &batch.results;
    expect("vigil_eval_cases_total", results.len());
    let scored = results.iter().filter(|result| result.score.is_some());
    expect("vigil_eval_score_count", scored.count());
    let counted = results
        .iter()
        .filter(|result| result.input_tokens.is_some());
    expect("vigil_eval_input_tokens_count", counted.count());
}

fn agent_totals(batch: &AgentRunBatch, signals: &[Signal], expect: impl Fn(&str, usize)) {
    let runs = &batch.runs;
    expect("vigil_agent_runs_total", runs.len());
    expect("vigil_agent_iterations_count", runs.len());
    let n_calls = runs.iter().map(|run| run.tool_calls.len()).sum();
    expect("vigil_agent_tool_calls_total", n_calls);
    let n_repeated = runs
        .iter()
        .map(|run| run.tool_call_stats().repeated_calls as usize)
        .sum();
    expect("vigil_agent_repeated_tool_calls_total", n_repeated);
    // Each gauge is the largest value among the runs of its series.
    let mut gauges: BTreeMap<(String, Labels), f64> = BTreeMap::new();
    let mut raise = |name: &str, labels: Labels, value: u64| {
        let entry = gauges.entry((name.to_owned(), labels)).or_insert(0.0);
        *entry = entry.max(value as f64);
    };
    for run in runs {
        let agent: Labels = [("agent", label_value(&run.agent))].into_iter().collect();
        let stats = run.tool_call_stats();
        raise(
            "vigil_agent_max_repeat_streak",
            agent.clone(),
            stats.longest_streak,
        );
        raise(
            "vigil_agent_max_stalled_calls",
            agent.clone(),
            stats.longest_stall,
        );
        raise("vigil_agent_max_iterations", agent, run.iterations);
        if let Some(key) = &run.api_key {
            let labels: Labels = [
                ("agent", label_value(&run.agent)),
                ("hashed_api_key", label_value(key)),
            ]
            .into_iter()
            .collect();
            raise(
                "vigil_agent_key_max_stalled_calls",
                labels,
                stats.longest_stall,
            );
        }
    }
    let found: BTreeMap<(String, Labels), f64> = signals
        .iter()
        .filter(|signal| matches!(signal.kind, SignalKind::Gauge(_)))
        .map(|signal| ((signal.name.clone(), signal.labels.clone()), value(signal)))
        .collect();
    assert_eq!(found, gauges, "the gauges are not the maxima of the runs");
}

fn alert_totals(batch: &AlertBatch, expect: impl Fn(&str, usize)) {
    expect("vigil_alerts_total", batch.alerts.len());
}

fn span_totals(batch: &SpanBatch, expect: impl Fn(&str, usize)) {
    let spans = &batch.spans;
    let operation = |name: &str| {
        spans
            .iter()
            .filter(|span| span.operation.as_deref() == Some(name))
            .count()
    };
    expect("vigil_genai_tool_calls_total", operation("execute_tool"));
    expect(
        "vigil_genai_agent_invocations_total",
        operation("invoke_agent"),
    );
    let model_calls: Vec<_> = spans.iter().filter(|span| span.is_model_call()).collect();
    expect("vigil_genai_requests_total", model_calls.len());
    expect(
        "vigil_genai_request_duration_seconds_count",
        model_calls.len(),
    );
    let n_reasons = model_calls
        .iter()
        .map(|span| span.finish_reasons.len())
        .sum();
    expect("vigil_genai_finish_reasons_total", n_reasons);
}
