//! Data-driven tests of the pushed-events intake: each case renders the typed batch or every
//! problem, and the signals of small batches.

mod agent_runs;
mod alertmanager;
mod evals;
mod mangled;
mod otlp;
mod otlp_proto;
mod rfc3339;

use expect_test::Expect;
use serde::Serialize;

use super::*;

/// The batch as pretty JSON (its ledger form), or the summary and every problem.
fn render<T: Serialize>(result: Result<T, IntakeError>) -> String {
    match result {
        Ok(batch) => format!("{}\n", serde_json::to_string_pretty(&batch).unwrap()),
        Err(error) => {
            let mut out = format!("{}\n", error.summary());
            for problem in &error.problems {
                out.push_str(&format!("{problem}\n"));
            }
            out
        }
    }
}

/// One line per signal: `name{labels} counter +1` or `name{labels} gauge 3`.
fn render_signals(pushed: &Pushed) -> String {
    pushed
        .signals()
        .iter()
        .map(|signal| match signal.kind {
            SignalKind::CounterIncrement(by) => {
                format!("{}{} counter +{by}\n", signal.name, signal.labels)
            }
            SignalKind::Gauge(value) => format!("{}{} gauge {value}\n", signal.name, signal.labels),
        })
        .collect()
}

fn check_signals(pushed: &Pushed, expect: Expect) {
    expect.assert_eq(&render_signals(pushed));
}

/// The payload survives the ledger: JSON out, JSON in, equal value and equal text.
fn assert_round_trip(pushed: &Pushed) {
    let json = serde_json::to_string(pushed).unwrap();
    let back: Pushed = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, pushed, "{json}");
    assert_eq!(serde_json::to_string(&back).unwrap(), json);
    let signals = pushed.signals();
    let signals_json = serde_json::to_string(&signals).unwrap();
    let signals_back: Vec<Signal> = serde_json::from_str(&signals_json).unwrap();
    assert_eq!(signals_back, signals, "{signals_json}");
}

#[test]
fn the_error_summary_counts_what_it_leaves_out() {
    let one = IntakeError::single("results", "required field is missing");
    assert_eq!(
        one.to_string(),
        "the payload has 1 problem: results: required field is missing"
    );
    let body = format!(
        "{{\"results\": [{}]}}",
        vec!["{}"; 30].join(",") // Every result misses its 6 required fields.
    );
    let error = parse_evals(body.as_bytes()).unwrap_err();
    assert_eq!(error.problems.len(), MAX_PROBLEMS);
    assert_eq!(error.omitted, 30 * 6 - MAX_PROBLEMS);
    assert_eq!(
        error.summary(),
        "the payload has 180 problems; the first 20 are listed"
    );
}

#[test]
fn signal_kinds_keep_non_finite_values_through_json() {
    for kind in [
        SignalKind::CounterIncrement(f64::INFINITY),
        SignalKind::Gauge(f64::NAN),
        SignalKind::Gauge(-0.0),
        SignalKind::CounterIncrement(0.1),
    ] {
        let json = serde_json::to_string(&kind).unwrap();
        let back: SignalKind = serde_json::from_str(&json).unwrap();
        let bits = |kind: SignalKind| match kind {
            SignalKind::CounterIncrement(value) | SignalKind::Gauge(value) => value.to_bits(),
        };
        assert_eq!(bits(back), bits(kind), "{json}");
    }
    assert_eq!(
        serde_json::to_string(&SignalKind::CounterIncrement(2.0)).unwrap(),
        r#"{"type":"counter_increment","value":2.0}"#
    );
}

#[test]
fn label_values_are_cut_to_the_limit() {
    let long = "é".repeat(MAX_LABEL_CHARS + 10);
    assert_eq!(label_value(&long).chars().count(), MAX_LABEL_CHARS);
    assert_eq!(label_value("gpt-4o"), "gpt-4o");
}
