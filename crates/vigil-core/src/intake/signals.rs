//! Turning pushed payloads into signals: counter increments and gauges with bounded labels
//! (the table is in the [module docs](super)).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Pushed;
use super::agent_runs::AgentRun;
use super::alertmanager::{ALERT_SUBJECT_LABEL, Alert, AlertStatus};
use super::evals::EvalResult;
use super::otlp::GenAiSpan;
use crate::signal::{Labels, float_repr};

/// Label values are cut to this many characters.
pub const MAX_LABEL_CHARS: usize = 128;

/// The upper bounds of `vigil_agent_iterations_bucket`.
pub const ITERATION_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];

/// The upper bounds of `vigil_genai_request_duration_seconds_bucket`: the bucket boundaries
/// the GenAI semantic conventions advise for `gen_ai.client.operation.duration`.
pub const DURATION_BUCKETS_SECONDS: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/// One signal for the detectors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// The metric name, such as `vigil_agent_runs_total`.
    pub name: String,
    /// Its labels, every value at most [`MAX_LABEL_CHARS`] characters.
    pub labels: Labels,
    /// What it says.
    pub kind: SignalKind,
}

/// What a signal says about its series.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum SignalKind {
    /// Add this much to the series' running total (the engine keeps the totals, so that
    /// detectors see ordinary counters).
    CounterIncrement(#[serde(with = "float_repr")] f64),
    /// The series' current value.
    Gauge(#[serde(with = "float_repr")] f64),
}

/// `value` cut to [`MAX_LABEL_CHARS`] characters.
#[must_use]
pub fn label_value(value: &str) -> String {
    value.chars().take(MAX_LABEL_CHARS).collect()
}

impl Pushed {
    /// The signals of this payload, one per series, sorted by name and labels.
    ///
    /// Within one payload the increments of a series are summed, and a gauge takes the
    /// largest value it was given.
    #[must_use]
    pub fn signals(&self) -> Vec<Signal> {
        let mut set = SignalSet::default();
        for idx in 0..self.n_items() {
            self.item_signals(idx, &mut set);
        }
        set.into_signals()
    }

    /// How many items (results, runs, alerts, spans) feed at least one series for which
    /// `chosen(name, labels)` holds (with the labels as in [`Signal`]): what a refusal of
    /// those series costs the sender.
    #[must_use]
    pub fn n_items_feeding(&self, mut chosen: impl FnMut(&str, &Labels) -> bool) -> usize {
        (0..self.n_items())
            .filter(|&idx| {
                let mut set = SignalSet::default();
                self.item_signals(idx, &mut set);
                set.0.keys().any(|(name, labels)| chosen(name, labels))
            })
            .count()
    }

    /// Adds the signals of item `idx` to `set`.
    fn item_signals(&self, idx: usize, set: &mut SignalSet) {
        match self {
            Pushed::Evals(batch) => batch
                .results
                .get(idx)
                .into_iter()
                .for_each(|result| eval_signals(result, set)),
            Pushed::AgentRuns(batch) => batch
                .runs
                .get(idx)
                .into_iter()
                .for_each(|run| agent_signals(run, set)),
            Pushed::Alerts(batch) => batch
                .alerts
                .get(idx)
                .into_iter()
                .for_each(|alert| alert_signals(alert, set)),
            Pushed::Spans(batch) => batch
                .spans
                .get(idx)
                .into_iter()
                .for_each(|span| span_signals(span, set)),
        }
    }
}

fn eval_signals(result: &EvalResult, set: &mut SignalSet) {
    let labels = [
        ("suite", result.suite.as_str()),
        ("model", result.model.as_str()),
        ("prompt", result.prompt_name.as_str()),
        ("prompt_version", result.prompt_version.as_str()),
    ];
    let outcome = if result.passed { "passed" } else { "failed" };
    set.count(
        "vigil_eval_cases_total",
        &with(&labels, ("outcome", outcome)),
        1.0,
    );
    if let Some(score) = result.score {
        set.count("vigil_eval_score_sum", &labels, score);
        set.count("vigil_eval_score_count", &labels, 1.0);
    }
    if let Some(tokens) = result.input_tokens {
        set.count("vigil_eval_input_tokens_sum", &labels, tokens as f64);
        set.count("vigil_eval_input_tokens_count", &labels, 1.0);
    }
}

fn agent_signals(run: &AgentRun, set: &mut SignalSet) {
    let agent = [("agent", run.agent.as_str())];
    set.count(
        "vigil_agent_runs_total",
        &with(&agent, ("outcome", run.outcome.as_str())),
        1.0,
    );
    set.observe(
        "vigil_agent_iterations",
        &agent,
        run.iterations as f64,
        &ITERATION_BUCKETS,
    );
    let stats = run.tool_call_stats();
    for call in &run.tool_calls {
        set.count(
            "vigil_agent_tool_calls_total",
            &with(&agent, ("tool", call.name.as_str())),
            1.0,
        );
    }
    set.count(
        "vigil_agent_repeated_tool_calls_total",
        &agent,
        stats.repeated_calls as f64,
    );
    set.gauge_max(
        "vigil_agent_max_repeat_streak",
        &agent,
        stats.longest_streak as f64,
    );
    set.gauge_max(
        "vigil_agent_max_stalled_calls",
        &agent,
        stats.longest_stall as f64,
    );
    // Per agent and key, when the run names its key: what a runbook can block.
    if let Some(key) = &run.api_key {
        set.gauge_max(
            "vigil_agent_key_max_stalled_calls",
            &with(&agent, ("hashed_api_key", key.as_str())),
            stats.longest_stall as f64,
        );
    }
    set.gauge_max("vigil_agent_max_iterations", &agent, run.iterations as f64);
    for (direction, tokens) in [("input", run.input_tokens), ("output", run.output_tokens)] {
        if let Some(tokens) = tokens {
            set.count(
                "vigil_agent_tokens_total",
                &with(&agent, ("direction", direction)),
                tokens as f64,
            );
        }
    }
}

/// The gauge of the alerts firing about a subject: 1 while one fires, 0 once it resolved.
pub const ALERT_FIRING: &str = "vigil_alert_firing";

fn alert_signals(alert: &Alert, set: &mut SignalSet) {
    set.count(
        "vigil_alerts_total",
        &[
            ("alertname", alert.name()),
            ("status", alert.status.as_str()),
            ("severity", alert.severity()),
        ],
        1.0,
    );
    // Only alerts about something: it is what a finding about it blames.
    if let Some((label, value)) = alert.subject() {
        let firing = match alert.status {
            AlertStatus::Firing => 1.0,
            AlertStatus::Resolved => 0.0,
        };
        set.gauge_max(
            ALERT_FIRING,
            &[
                ("alertname", alert.name()),
                ("severity", alert.severity()),
                (ALERT_SUBJECT_LABEL, &format!("{label}={value}")),
            ],
            firing,
        );
    }
}

/// A database (retrieval) span: its calls, errors and duration per store and collection.
fn db_span_signals(span: &GenAiSpan, db_system: &str, set: &mut SignalSet) {
    let store = [
        ("db_system", db_system),
        (
            "collection",
            span.db_collection.as_deref().unwrap_or_default(),
        ),
    ];
    set.count(
        "vigil_db_requests_total",
        &with(&store, ("error_type", span.error_class())),
        1.0,
    );
    set.observe(
        "vigil_db_request_duration_seconds",
        &store,
        span.duration_seconds(),
        &DURATION_BUCKETS_SECONDS,
    );
}

fn span_signals(span: &GenAiSpan, set: &mut SignalSet) {
    if let Some(db_system) = &span.db_system {
        db_span_signals(span, db_system, set);
        return;
    }
    let error_type = span.error_class();
    match span.operation.as_deref() {
        Some("execute_tool") => set.count(
            "vigil_genai_tool_calls_total",
            &[
                ("tool", span.tool_name.as_deref().unwrap_or_default()),
                ("error_type", error_type),
            ],
            1.0,
        ),
        Some("invoke_agent") => set.count(
            "vigil_genai_agent_invocations_total",
            &[
                ("agent", span.agent_name.as_deref().unwrap_or_default()),
                ("error_type", error_type),
            ],
            1.0,
        ),
        _ => {}
    }
    if !span.is_model_call() {
        return;
    }
    let provider = span.provider.as_deref().unwrap_or_default();
    let model = [("provider", provider), ("model", span.model())];
    set.count(
        "vigil_genai_requests_total",
        &[
            ("provider", provider),
            ("model", span.model()),
            // The snapshot that answered: a version-change detector sees an alias move.
            (
                "response_model",
                span.response_model.as_deref().unwrap_or_default(),
            ),
            ("operation", span.operation.as_deref().unwrap_or_default()),
            ("error_type", error_type),
        ],
        1.0,
    );
    for (direction, tokens) in [("input", span.input_tokens), ("output", span.output_tokens)] {
        if let Some(tokens) = tokens {
            set.count(
                "vigil_genai_tokens_total",
                &with(&model, ("direction", direction)),
                tokens as f64,
            );
        }
    }
    for reason in &span.finish_reasons {
        set.count(
            "vigil_genai_finish_reasons_total",
            &with(&model, ("reason", reason.as_str())),
            1.0,
        );
    }
    set.observe(
        "vigil_genai_request_duration_seconds",
        &model,
        span.duration_seconds(),
        &DURATION_BUCKETS_SECONDS,
    );
}

/// `labels` and one more.
fn with<'a, const N: usize>(
    labels: &[(&'a str, &'a str); N],
    extra: (&'a str, &'a str),
) -> Vec<(&'a str, &'a str)> {
    let mut all = labels.to_vec();
    all.push(extra);
    all
}

/// The signals of one payload, keyed by series.
#[derive(Default)]
struct SignalSet(BTreeMap<(String, Labels), SignalKind>);

impl SignalSet {
    fn key(name: &str, labels: &[(&str, &str)]) -> (String, Labels) {
        let labels = labels
            .iter()
            .map(|(label, value)| (*label, label_value(value)))
            .collect();
        (name.to_owned(), labels)
    }

    /// Adds `increment` to the counter `name{labels}`.
    fn count(&mut self, name: &str, labels: &[(&str, &str)], increment: f64) {
        let entry = self
            .0
            .entry(Self::key(name, labels))
            .or_insert(SignalKind::CounterIncrement(0.0));
        if let SignalKind::CounterIncrement(total) = entry {
            *total += increment;
        }
    }

    /// Sets the gauge `name{labels}` to `value` unless it already holds more.
    fn gauge_max(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let entry = self
            .0
            .entry(Self::key(name, labels))
            .or_insert(SignalKind::Gauge(value));
        if let SignalKind::Gauge(current) = entry {
            *current = current.max(value);
        }
    }

    /// Records one observation of the histogram `name`: its cumulative `_bucket` series
    /// (every bound, then `+Inf`), `_sum` and `_count`.
    fn observe(&mut self, name: &str, labels: &[(&str, &str)], value: f64, bounds: &[f64]) {
        let bucket = format!("{name}_bucket");
        for bound in bounds {
            let le = bound.to_string();
            let mut with_le = labels.to_vec();
            with_le.push(("le", &le));
            let hit = if value <= *bound { 1.0 } else { 0.0 };
            self.count(&bucket, &with_le, hit);
        }
        let mut with_le = labels.to_vec();
        with_le.push(("le", "+Inf"));
        self.count(&bucket, &with_le, 1.0);
        self.count(&format!("{name}_sum"), labels, value);
        self.count(&format!("{name}_count"), labels, 1.0);
    }

    fn into_signals(self) -> Vec<Signal> {
        self.0
            .into_iter()
            .map(|((name, labels), kind)| Signal { name, labels, kind })
            .collect()
    }
}
