//! vigil's own metrics, rendered in the Prometheus text format at `/metrics`: what an SRE
//! alerts on (`deploy/prometheus/vigil-rules.yaml`) and graphs (`deploy/grafana/vigil.json`).
//!
//! `mod.rs` holds the counters of the engine's work (scrapes, events, commands, actions,
//! pages, the ledger, the assistant, the admin API) and `render.rs` writes them;
//! `records.rs` counts the engine's decisions by kind (findings, incidents, steps);
//! `replication.rs` the leader, its epoch and lease; `watch.rs` what is read when `/metrics`
//! is asked (engine queue depth, the assistant's breaker, checkpoint age) and the heartbeat;
//! `histogram.rs` the latency histograms; `authz.rs` the Cedar answerer that times each
//! decision. Every family is rendered with its `# HELP` and `# TYPE` even before its first
//! sample, so that `tests/cli/observability.rs` can check the rules and the dashboard against
//! one `/metrics`, and the outcome counters alerted on start at zero for every outcome.
//!
//! Label values from outside (source names, the replica id) are escaped; sources are the
//! configured ones (at most [`MAX_SOURCES`]), so the number of series stays bounded.

mod authz;
mod histogram;
mod records;
mod render;
mod replication;
mod watch;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

pub(crate) use authz::TimedCedar;
pub(crate) use render::escape;
pub(crate) use watch::queue_probe;

/// Sources shown at most: sources come from the config, so this only guards against a bug
/// that would make one name per scrape.
const MAX_SOURCES: usize = 10_000;

/// Per-source scrape health.
#[derive(Clone, Debug, Default)]
struct SourceHealth {
    up: bool,
    attempted: bool,
    n_ok: u64,
    n_errors: u64,
    /// Failures since the last success.
    n_failing: u64,
    n_malformed_lines: u64,
    last_duration_secs: f64,
    last_samples: u64,
}

#[derive(Debug)]
struct State {
    sources: BTreeMap<String, SourceHealth>,
    events: BTreeMap<&'static str, u64>,
    commands: BTreeMap<&'static str, u64>,
    /// The engine's decisions, by record kind.
    records: BTreeMap<&'static str, u64>,
    actions: BTreeMap<&'static str, u64>,
    pages: BTreeMap<&'static str, u64>,
    ledger_entries: u64,
    ledger_append_errors: u64,
    /// How long each ledger append took, failed ones included.
    ledger_append_seconds: histogram::Histogram,
    /// How long each Cedar decision took.
    authorization_seconds: histogram::Histogram,
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
    /// The leader, its epoch and lease.
    replication: replication::Replication,
    /// Checkpoints and heartbeats.
    watch: watch::Watch,
}

impl Default for State {
    fn default() -> Self {
        State {
            sources: BTreeMap::new(),
            events: BTreeMap::new(),
            commands: BTreeMap::new(),
            records: BTreeMap::new(),
            actions: BTreeMap::new(),
            pages: BTreeMap::new(),
            ledger_entries: 0,
            ledger_append_errors: 0,
            ledger_append_seconds: histogram::Histogram::new(histogram::APPEND_BUCKETS),
            authorization_seconds: histogram::Histogram::new(histogram::AUTHORIZATION_BUCKETS),
            open_incidents: 0,
            tracked_series: 0,
            series_refused: BTreeMap::new(),
            session_recorded: false,
            admin_auth_failures: BTreeMap::new(),
            admin_instructions: BTreeMap::new(),
            investigations: BTreeMap::new(),
            assistant_tokens: 0,
            assistant_tool_calls_refused: 0,
            assistant_claims: 0,
            assistant_claims_dropped: BTreeMap::new(),
            replication: replication::Replication::default(),
            watch: watch::Watch::default(),
        }
    }
}

/// Shared counters; every method takes the lock briefly and never across an `.await`.
#[derive(Debug, Default)]
pub struct Telemetry {
    state: Mutex<State>,
    /// What is read when `/metrics` is asked (queues, the assistant's breaker).
    probes: watch::Probes,
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

    /// The health of `source`, created if the bound allows.
    fn source<'state>(state: &'state mut State, name: &str) -> Option<&'state mut SourceHealth> {
        if !state.sources.contains_key(name) && state.sources.len() >= MAX_SOURCES {
            return None;
        }
        Some(state.sources.entry(name.to_owned()).or_default())
    }

    /// Registers a source so that it shows as down until its first scrape.
    pub fn register_source(&self, name: &str) {
        self.with(|state| {
            Self::source(state, name);
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
            let Some(health) = Self::source(state, source) else {
                return;
            };
            health.up = true;
            health.attempted = true;
            health.n_ok += 1;
            health.n_failing = 0;
            health.n_malformed_lines += n_malformed as u64;
            health.last_duration_secs = duration_secs;
            health.last_samples = n_samples as u64;
        });
    }

    /// Records a failed scrape.
    pub fn scrape_failed(&self, source: &str, duration_secs: f64) {
        self.with(|state| {
            let Some(health) = Self::source(state, source) else {
                return;
            };
            health.up = false;
            health.attempted = true;
            health.n_errors += 1;
            health.n_failing += 1;
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

    /// Records how long a ledger append took, whether or not it succeeded.
    pub fn ledger_append_took(&self, took: Duration) {
        self.with(|state| state.ledger_append_seconds.observe(took));
    }

    /// Records how long a Cedar decision took (the engine loop's `TimedCedar` measures it).
    pub fn authorization_took(&self, took: Duration) {
        self.with(|state| state.authorization_seconds.observe(took));
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
        // The probes take other locks (the assistant's breaker): read them before this one.
        let probed = self.probes.read();
        self.with(|state| {
            let mut out = String::new();
            render::core(&mut out, state);
            replication::render(&mut out, &state.replication);
            watch::render(&mut out, &state.watch, &probed);
            self.edge.render(&mut out);
            out
        })
    }
}

#[cfg(test)]
mod tests;
