//! vigil's own metrics, rendered in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Per-source scrape health.
#[derive(Clone, Debug, Default)]
struct SourceHealth {
    up: bool,
    attempted: bool,
    n_ok: u64,
    n_errors: u64,
    n_malformed_lines: u64,
    last_duration_secs: f64,
    last_samples: u64,
}

#[derive(Debug, Default)]
struct State {
    sources: BTreeMap<String, SourceHealth>,
    events: BTreeMap<&'static str, u64>,
    commands: BTreeMap<&'static str, u64>,
    actions: BTreeMap<&'static str, u64>,
    pages: BTreeMap<&'static str, u64>,
    ledger_entries: u64,
    ledger_append_errors: u64,
    open_incidents: u64,
    tracked_series: u64,
    /// New series refused by the cardinality limits, per source.
    series_refused: BTreeMap<String, u64>,
    session_recorded: bool,
    /// Admin API requests refused for want of a valid credential, by reason.
    admin_auth_failures: BTreeMap<&'static str, u64>,
    /// Admin API instructions answered, by outcome.
    admin_instructions: BTreeMap<&'static str, u64>,
    /// The assistant's investigations, by outcome (`answered` or the failure).
    investigations: BTreeMap<&'static str, u64>,
    /// Tokens the assistant used.
    assistant_tokens: u64,
    /// Tool calls refused (repeats, past the limit, malformed).
    assistant_tool_calls_refused: u64,
    /// The assistant's claims checked.
    assistant_claims: u64,
    /// The assistant's claims dropped, by reason.
    assistant_claims_dropped: BTreeMap<&'static str, u64>,
}

/// Shared counters; every method takes the lock briefly and never across an `.await`.
#[derive(Debug, Default)]
pub struct Telemetry {
    state: Mutex<State>,
    /// The listener's connections and refusals.
    edge: super::server::EdgeStats,
}

impl Telemetry {
    fn with<T>(&self, apply: impl FnOnce(&mut State) -> T) -> T {
        let mut guard = match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        apply(&mut guard)
    }

    /// The listener's connection and refusal counters.
    pub(crate) fn edge(&self) -> &super::server::EdgeStats {
        &self.edge
    }

    /// Registers a source so that it shows as down until its first scrape.
    pub fn register_source(&self, name: &str) {
        self.with(|state| {
            state.sources.entry(name.to_owned()).or_default();
        });
    }

    /// Records a successful scrape.
    pub fn scrape_ok(
        &self,
        source: &str,
        duration_secs: f64,
        n_samples: usize,
        n_malformed: usize,
    ) {
        self.with(|state| {
            let health = state.sources.entry(source.to_owned()).or_default();
            health.up = true;
            health.attempted = true;
            health.n_ok += 1;
            health.n_malformed_lines += n_malformed as u64;
            health.last_duration_secs = duration_secs;
            health.last_samples = n_samples as u64;
        });
    }

    /// Records a failed scrape.
    pub fn scrape_failed(&self, source: &str, duration_secs: f64) {
        self.with(|state| {
            let health = state.sources.entry(source.to_owned()).or_default();
            health.up = false;
            health.attempted = true;
            health.n_errors += 1;
            health.last_duration_secs = duration_secs;
        });
    }

    /// Counts an event the engine consumed.
    pub fn event(&self, kind: &'static str) {
        self.with(|state| *state.events.entry(kind).or_default() += 1);
    }

    /// Counts a command the engine issued.
    pub fn command(&self, kind: &'static str) {
        self.with(|state| *state.commands.entry(kind).or_default() += 1);
    }

    /// Counts a finished action by result.
    pub fn action(&self, result: &'static str) {
        self.with(|state| *state.actions.entry(result).or_default() += 1);
    }

    /// Counts a page by result.
    pub fn page(&self, result: &'static str) {
        self.with(|state| *state.pages.entry(result).or_default() += 1);
    }

    /// Counts a finished investigation, its tokens and refused tool calls.
    pub fn investigation(&self, outcome: &vigil_core::investigation::InvestigationOutcome) {
        use vigil_core::investigation::InvestigationOutcome;
        let label = match outcome {
            InvestigationOutcome::Answered { .. } => "answered",
            InvestigationOutcome::Failed { failure, .. } => failure.as_str(),
        };
        let usage = outcome.usage();
        self.with(|state| {
            *state.investigations.entry(label).or_default() += 1;
            state.assistant_tokens = state.assistant_tokens.saturating_add(usage.tokens);
            state.assistant_tool_calls_refused = state
                .assistant_tool_calls_refused
                .saturating_add(u64::from(usage.tool_calls_refused));
        });
    }

    /// Counts the claims of a checked answer and those dropped, by reason.
    pub fn claims_checked(&self, checked: &vigil_core::investigation::CheckedAnswer) {
        self.with(|state| {
            state.assistant_claims = state
                .assistant_claims
                .saturating_add(u64::from(checked.claims));
            for dropped in &checked.dropped {
                *state
                    .assistant_claims_dropped
                    .entry(dropped.why.as_str())
                    .or_default() += 1;
            }
        });
    }

    /// Records the ledger's size after an append.
    pub fn ledger_appended(&self, n_entries: u64) {
        self.with(|state| state.ledger_entries = n_entries);
    }

    /// Counts a failed ledger append.
    pub fn ledger_append_failed(&self) {
        self.with(|state| state.ledger_append_errors += 1);
    }

    /// Records that the session entry is in the ledger.
    pub fn session_recorded(&self) {
        self.with(|state| state.session_recorded = true);
    }

    /// Records the engine's counts: its gauges, and the series it refused per source.
    pub fn engine_gauges(
        &self,
        open_incidents: usize,
        tracked_series: usize,
        series_refused: &BTreeMap<String, u64>,
    ) {
        self.with(|state| {
            state.open_incidents = open_incidents as u64;
            state.tracked_series = tracked_series as u64;
            if state.series_refused != *series_refused {
                state.series_refused.clone_from(series_refused);
            }
        });
    }

    /// Why the daemon is not ready, or an empty list when it is.
    pub fn not_ready_reasons(&self) -> Vec<String> {
        self.with(|state| {
            let mut reasons = Vec::new();
            if !state.session_recorded {
                reasons.push("the ledger session is not recorded yet".to_owned());
            }
            if state.ledger_append_errors > 0 {
                reasons.push(format!(
                    "{} ledger appends failed",
                    state.ledger_append_errors
                ));
            }
            for (name, health) in &state.sources {
                if !health.attempted {
                    reasons.push(format!("source `{name}` has not been scraped yet"));
                }
            }
            reasons
        })
    }

    /// Counts an admin API request refused for want of a valid credential.
    pub fn admin_auth_failed(&self, reason: &'static str) {
        self.with(|state| *state.admin_auth_failures.entry(reason).or_default() += 1);
    }

    /// Counts an admin API instruction by how it ended (`accepted`, `refused`, `denied`,
    /// `invalid`, `forbidden`, `unanswered`).
    pub fn admin_instruction(&self, outcome: &'static str) {
        self.with(|state| *state.admin_instructions.entry(outcome).or_default() += 1);
    }

    /// Renders every metric in the text format.
    pub fn render(&self) -> String {
        self.with(|state| {
            let mut out = String::new();
            let _ = writeln!(
                out,
                "# HELP vigil_build_info vigil's version.\n# TYPE vigil_build_info gauge"
            );
            let _ = writeln!(
                out,
                "vigil_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            );
            family(
                &mut out,
                "vigil_source_up",
                "gauge",
                "Whether the last scrape of the source succeeded.",
            );
            for (name, health) in &state.sources {
                let _ = writeln!(
                    out,
                    "vigil_source_up{{source=\"{}\"}} {}",
                    escape(name),
                    u8::from(health.up)
                );
            }
            family(
                &mut out,
                "vigil_scrapes_total",
                "counter",
                "Scrapes by source and result.",
            );
            for (name, health) in &state.sources {
                let _ = writeln!(
                    out,
                    "vigil_scrapes_total{{source=\"{}\",result=\"ok\"}} {}",
                    escape(name),
                    health.n_ok
                );
                let _ = writeln!(
                    out,
                    "vigil_scrapes_total{{source=\"{}\",result=\"error\"}} {}",
                    escape(name),
                    health.n_errors
                );
            }
            family(
                &mut out,
                "vigil_scrape_malformed_lines_total",
                "counter",
                "Exposition lines that could not be parsed.",
            );
            for (name, health) in &state.sources {
                let _ = writeln!(
                    out,
                    "vigil_scrape_malformed_lines_total{{source=\"{}\"}} {}",
                    escape(name),
                    health.n_malformed_lines
                );
            }
            family(
                &mut out,
                "vigil_scrape_duration_seconds",
                "gauge",
                "Duration of the last scrape.",
            );
            for (name, health) in &state.sources {
                let _ = writeln!(
                    out,
                    "vigil_scrape_duration_seconds{{source=\"{}\"}} {}",
                    escape(name),
                    health.last_duration_secs
                );
            }
            family(
                &mut out,
                "vigil_scrape_samples",
                "gauge",
                "Samples in the last scrape.",
            );
            for (name, health) in &state.sources {
                let _ = writeln!(
                    out,
                    "vigil_scrape_samples{{source=\"{}\"}} {}",
                    escape(name),
                    health.last_samples
                );
            }
            labelled(
                &mut out,
                "vigil_events_total",
                "Events the engine consumed, by type.",
                "type",
                &state.events,
            );
            labelled(
                &mut out,
                "vigil_commands_total",
                "Commands the engine issued, by type.",
                "type",
                &state.commands,
            );
            labelled(
                &mut out,
                "vigil_actions_total",
                "Remediation actions carried out, by result.",
                "result",
                &state.actions,
            );
            labelled(
                &mut out,
                "vigil_pages_total",
                "Pages sent, and resolved when their incident ended, by result.",
                "result",
                &state.pages,
            );
            labelled(
                &mut out,
                "vigil_assistant_investigations_total",
                "The assistant's investigations, by outcome (answered, or why not).",
                "outcome",
                &state.investigations,
            );
            labelled(
                &mut out,
                "vigil_assistant_claims_dropped_total",
                "The assistant's claims that did not check out against vigil's store, by reason.",
                "reason",
                &state.assistant_claims_dropped,
            );
            for (name, help, value) in [
                ("vigil_assistant_claims_total", "The assistant's claims checked.", state.assistant_claims),
                ("vigil_assistant_tokens_total", "Tokens the assistant used, prompt and completion.", state.assistant_tokens),
                ("vigil_assistant_tool_calls_refused_total", "The assistant's tool calls refused (repeats, past the limit, malformed).", state.assistant_tool_calls_refused),
            ] {
                family(&mut out, name, "counter", help);
                let _ = writeln!(out, "{name} {value}");
            }
            family(
                &mut out,
                "vigil_ledger_entries",
                "gauge",
                "Entries in the ledger.",
            );
            let _ = writeln!(out, "vigil_ledger_entries {}", state.ledger_entries);
            family(
                &mut out,
                "vigil_ledger_append_errors_total",
                "counter",
                "Failed ledger appends.",
            );
            let _ = writeln!(
                out,
                "vigil_ledger_append_errors_total {}",
                state.ledger_append_errors
            );
            family(
                &mut out,
                "vigil_open_incidents",
                "gauge",
                "Incidents currently open.",
            );
            let _ = writeln!(out, "vigil_open_incidents {}", state.open_incidents);
            family(
                &mut out,
                "vigil_tracked_series",
                "gauge",
                "Series the engine tracks.",
            );
            let _ = writeln!(out, "vigil_tracked_series {}", state.tracked_series);
            family(
                &mut out,
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
                &mut out,
                "vigil_admin_auth_failures_total",
                "Admin API requests refused for want of a valid credential, by reason.",
                "reason",
                &state.admin_auth_failures,
            );
            labelled(
                &mut out,
                "vigil_admin_instructions_total",
                "People's instructions to the admin API, by outcome.",
                "outcome",
                &state.admin_instructions,
            );
            self.edge.render(&mut out);
            out
        })
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn labelled(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    values: &BTreeMap<&'static str, u64>,
) {
    family(out, name, "counter", help);
    for (value, count) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{}\"}} {count}", escape(value));
    }
}

pub(super) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_parseable_text_and_readiness() {
        let telemetry = Telemetry::default();
        telemetry.register_source("gw");
        assert_eq!(
            telemetry.not_ready_reasons(),
            vec![
                "the ledger session is not recorded yet",
                "source `gw` has not been scraped yet"
            ]
        );
        telemetry.session_recorded();
        telemetry.scrape_ok("gw", 0.25, 12, 1);
        telemetry.event("scraped");
        let refused = [("gw".to_owned(), 0), ("push:evals".to_owned(), 190_000)];
        telemetry.engine_gauges(2, 10_040, &refused.into_iter().collect());
        assert!(telemetry.not_ready_reasons().is_empty());
        let text = telemetry.render();
        let parsed = vigil_core::exposition::parse_text(&text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert!(text.contains("vigil_source_up{source=\"gw\"} 1"), "{text}");
        assert!(
            text.contains("vigil_scrape_malformed_lines_total{source=\"gw\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("vigil_events_total{type=\"scraped\"} 1"),
            "{text}"
        );
        for line in [
            "vigil_tracked_series 10040",
            "vigil_series_refused_total{source=\"gw\"} 0",
            "vigil_series_refused_total{source=\"push:evals\"} 190000",
        ] {
            assert!(text.lines().any(|shown| shown == line), "{line}: {text}");
        }
    }
}
