//! Writing the engine's counters in the Prometheus text format 0.0.4, and the helpers every
//! part of `/metrics` uses.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::State;

/// Action results that always show, at zero until the first one.
const ACTION_RESULTS: &[&str] = &["succeeded", "failed"];

/// Page results that always show (`effects.rs` counts them), so that `increase()` sees the
/// first failure.
const PAGE_RESULTS: &[&str] = &[
    "delivered",
    "failed",
    "resolved",
    "resolve_failed",
    "notified",
    "notify_failed",
    "updated",
    "update_failed",
];

/// Writes the engine's families.
pub(super) fn core(out: &mut String, state: &State) {
    family(out, "vigil_build_info", "gauge", "vigil's version.");
    let _ = writeln!(
        out,
        "vigil_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    sources(out, state);
    labelled(
        out,
        "vigil_events_total",
        "Events the engine consumed, by type.",
        "type",
        &state.events,
        &[],
    );
    labelled(
        out,
        "vigil_commands_total",
        "Commands the engine issued, by type.",
        "type",
        &state.commands,
        &[],
    );
    labelled(
        out,
        "vigil_records_total",
        "The engine's decisions recorded in the ledger, by kind (finding_raised, incident_opened, incident_resolved, incident_escalated, step_proposed, ...).",
        "record",
        &state.records,
        super::records::RECORD_KINDS,
    );
    labelled(
        out,
        "vigil_actions_total",
        "Remediation actions carried out, by result.",
        "result",
        &state.actions,
        ACTION_RESULTS,
    );
    labelled(
        out,
        "vigil_pages_total",
        "Pages sent, and resolved when their incident ended, by result.",
        "result",
        &state.pages,
        PAGE_RESULTS,
    );
    labelled(
        out,
        "vigil_assistant_investigations_total",
        "The assistant's investigations, by outcome (answered, or why not).",
        "outcome",
        &state.investigations,
        &[],
    );
    labelled(
        out,
        "vigil_assistant_claims_dropped_total",
        "The assistant's claims that did not check out against vigil's store, by reason.",
        "reason",
        &state.assistant_claims_dropped,
        &[],
    );
    for (name, help, value) in [
        (
            "vigil_assistant_claims_total",
            "The assistant's claims checked.",
            state.assistant_claims,
        ),
        (
            "vigil_assistant_tokens_total",
            "Tokens the assistant used, prompt and completion.",
            state.assistant_tokens,
        ),
        (
            "vigil_assistant_tool_calls_refused_total",
            "The assistant's tool calls refused (repeats, past the limit, malformed).",
            state.assistant_tool_calls_refused,
        ),
        (
            "vigil_ledger_append_errors_total",
            "Failed ledger appends (each attempt; the third in a row stops the daemon).",
            state.ledger_append_errors,
        ),
    ] {
        family(out, name, "counter", help);
        let _ = writeln!(out, "{name} {value}");
    }
    for (name, help, value) in [
        (
            "vigil_ledger_entries",
            "Entries in the ledger.",
            state.ledger_entries,
        ),
        (
            "vigil_open_incidents",
            "Incidents currently open.",
            state.open_incidents,
        ),
        (
            "vigil_tracked_series",
            "Series the engine tracks.",
            state.tracked_series,
        ),
    ] {
        family(out, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    state.ledger_append_seconds.render(
        out,
        "vigil_ledger_append_seconds",
        "How long each ledger append took (one transaction: an event, its commands and answers, or a batch of pushes), failed ones included.",
    );
    state.authorization_seconds.render(
        out,
        "vigil_authorization_seconds",
        "How long each Cedar decision took (runbook steps and people's instructions).",
    );
    family(
        out,
        "vigil_series_refused_total",
        "counter",
        "New series refused by the cardinality limits, by source (a series refused again by a later scrape or push counts again).",
    );
    for (source, count) in &state.series_refused {
        let _ = writeln!(
            out,
            "vigil_series_refused_total{{source=\"{}\"}} {count}",
            escape(source)
        );
    }
    labelled(
        out,
        "vigil_admin_auth_failures_total",
        "Admin API requests refused for want of a valid credential, by reason.",
        "reason",
        &state.admin_auth_failures,
        &[],
    );
    labelled(
        out,
        "vigil_admin_instructions_total",
        "People's instructions to the admin API, by outcome.",
        "outcome",
        &state.admin_instructions,
        &[],
    );
}

/// The per-source families.
fn sources(out: &mut String, state: &State) {
    family(
        out,
        "vigil_scrapes_total",
        "counter",
        "Scrapes (and PromQL queries) by source and result.",
    );
    for (source, health) in &state.sources {
        let source = escape(source);
        let _ = writeln!(
            out,
            "vigil_scrapes_total{{source=\"{source}\",result=\"ok\"}} {}\n\
             vigil_scrapes_total{{source=\"{source}\",result=\"error\"}} {}",
            health.n_ok, health.n_errors
        );
    }
    type Column = fn(&super::SourceHealth) -> String;
    let columns: [(&str, &str, &str, Column); 5] = [
        (
            "vigil_source_up",
            "gauge",
            "Whether the last scrape of the source succeeded.",
            |health| u8::from(health.up).to_string(),
        ),
        (
            "vigil_source_consecutive_failures",
            "gauge",
            "Scrapes of the source that failed since its last success.",
            |health| health.n_failing.to_string(),
        ),
        (
            "vigil_scrape_malformed_lines_total",
            "counter",
            "Exposition lines that could not be parsed.",
            |health| health.n_malformed_lines.to_string(),
        ),
        (
            "vigil_scrape_duration_seconds",
            "gauge",
            "Duration of the last scrape.",
            |health| health.last_duration_secs.to_string(),
        ),
        (
            "vigil_scrape_samples",
            "gauge",
            "Samples in the last scrape.",
            |health| health.last_samples.to_string(),
        ),
    ];
    for (name, kind, help, column) in columns {
        family(out, name, kind, help);
        for (source, health) in &state.sources {
            let _ = writeln!(
                out,
                "{name}{{source=\"{}\"}} {}",
                escape(source),
                column(health)
            );
        }
    }
}

/// `# HELP` and `# TYPE` of a family.
pub(super) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A counter with one label: `always` values show at zero until counted, then every value
/// counted.
pub(super) fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<&'static str, u64>,
    always: &[&'static str],
) {
    family(out, name, "counter", help);
    let mut shown: BTreeMap<&str, u64> = always.iter().map(|value| (*value, 0)).collect();
    shown.extend(values.iter().map(|(value, count)| (*value, *count)));
    for (value, count) in shown {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape(value));
    }
}

/// A label value escaped for the text format (backslash, double quote, newline).
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
