//! The config file as written: serde structs, unknown keys rejected, every field documented.
//!
//! Nothing here is checked beyond its type; `validate.rs` does the rest and reports every
//! problem at once. `examples/vigil.yaml` shows every key with a comment.

use serde::Deserialize;
use vigil_core::authz::Mode;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `advisory` (propose only) or `autonomous` (act within policy). It can only make a
    /// runbook stricter, never looser.
    pub mode: Mode,
    /// The environment name policies see as `resource.environment`.
    #[serde(default = "default_environment")]
    pub environment: String,
    /// Where `vigil serve` answers `/healthz`, `/readyz` and `/metrics` (and the intake and
    /// admin API when they are on).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The listener's limits, timeouts and TLS.
    #[serde(default)]
    pub server: super::server::RawServer,
    /// Where the ledger lives.
    pub ledger: RawLedger,
    /// The folder of Cedar policies (`*.cedar`) and the schema (`vigil.cedarschema`),
    /// relative to this file.
    #[serde(default = "default_policies_dir")]
    pub policies_dir: String,
    /// The folder of runbooks (`*.yaml`), relative to this file.
    #[serde(default = "default_runbooks_dir")]
    pub runbooks_dir: String,
    /// At most this many scrapes run at the same time.
    #[serde(default = "default_max_concurrent_scrapes")]
    pub max_concurrent_scrapes: usize,
    /// The endpoints to scrape.
    #[serde(default)]
    pub sources: Vec<RawSource>,
    /// PromQL queries against an existing Prometheus; each query's results are a source.
    #[serde(default)]
    pub queries: Vec<RawQuery>,
    /// The detectors.
    pub detectors: Vec<RawDetector>,
    /// The diagnoser.
    #[serde(default)]
    pub diagnosis: RawDiagnosis,
    /// Facts about particular keys, for policies (for example which keys are critical).
    #[serde(default)]
    pub api_keys: Vec<RawApiKey>,
    /// How much history the series store keeps.
    #[serde(default)]
    pub store: RawStore,
    /// Pushed events over HTTP (evals, agent runs, Alertmanager, OTLP traces); off when absent.
    pub intake: Option<RawIntake>,
    /// Where pages go.
    pub pager: RawPager,
    /// Facts about deployments, prompts, services and teams, for policies.
    #[serde(default)]
    pub resources: Vec<super::autonomy::RawResource>,
    /// Limits over all runbooks: concurrency and the storm brake.
    #[serde(default)]
    pub limits: super::autonomy::RawLimits,
    /// Action targets besides LiteLLM gateways: Langfuse projects, the HTTP allow-list.
    #[serde(default)]
    pub actions: super::autonomy::RawActions,
    /// The admin API for `vigil approve`, `reject`, `kill` and `silence`; off when absent.
    pub admin: Option<super::admin::RawAdminApi>,
    /// The topology of the stack beyond what the signals show, and how findings group by it.
    #[serde(default)]
    pub topology: super::topology::RawTopology,
    /// The web console at `/` (needs `admin:`); off when absent.
    pub console: Option<super::console::RawConsole>,
    /// A dead man's switch: a heartbeat POSTed to a URL every interval; off when absent.
    pub heartbeat: Option<super::heartbeat::RawHeartbeat>,
    /// Several replicas against one PostgreSQL ledger, one leading; off when absent.
    pub replication: Option<super::replication::RawReplication>,
}

fn default_environment() -> String {
    "production".to_owned()
}

fn default_listen() -> String {
    "127.0.0.1:9464".to_owned()
}

fn default_policies_dir() -> String {
    "policies".to_owned()
}

fn default_runbooks_dir() -> String {
    "runbooks".to_owned()
}

fn default_max_concurrent_scrapes() -> usize {
    8
}

/// Where the ledger lives: exactly one of the two.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLedger {
    /// A SQLite file, relative to this file (created if missing).
    pub sqlite_path: Option<String>,
    /// A PostgreSQL URL, read from this secret (it usually holds a password).
    pub postgres_url: Option<RawSecret>,
    /// The PostgreSQL schema to use (created if missing).
    pub postgres_schema: Option<String>,
    /// Signed checkpoints of the ledger's tree head (off when absent).
    pub checkpoint: Option<RawCheckpoint>,
    /// Scrapes that issued no command are recorded together, compactly, in batches that
    /// span at most this many seconds (default 600, at most 3600); 0 records every scrape in
    /// an entry of its own, as JSON. A crash forgets the open batch (never a decision).
    #[serde(default = "default_scrape_batch_secs")]
    pub scrape_batch_secs: u64,
}

fn default_scrape_batch_secs() -> u64 {
    600
}

/// Signed checkpoints: what signs them, how often, and where copies go.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheckpoint {
    /// The Ed25519 signing key, relative to this file; created (mode 0600) on first start.
    pub key_file: String,
    /// Sign a checkpoint this often, in seconds, when the ledger grew (default 600).
    #[serde(default = "default_checkpoint_interval_secs")]
    pub interval_secs: u64,
    /// Also write the latest checkpoint to this file (replaced atomically), relative to this
    /// file: a copy outside the database.
    pub publish_file: Option<String>,
    /// Also POST every checkpoint, as JSON, to this URL: a copy outside the machine.
    pub webhook_url: Option<String>,
    /// Create the key even inside a git work tree (refused by default: one `git add -A`
    /// would commit the private key).
    #[serde(default)]
    pub allow_key_in_git_tree: bool,
}

fn default_checkpoint_interval_secs() -> u64 {
    600
}

/// A secret: from an environment variable or a file, never inline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    /// The name of an environment variable holding it.
    pub env: Option<String>,
    /// A file holding it (a trailing newline is dropped), relative to this file.
    pub file: Option<String>,
}

/// One scrape target.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Unique name, used in findings, metrics and runbook actions.
    pub name: String,
    /// What serves it: `litellm`, `vllm`, `tgi` or `generic`.
    pub kind: SourceKind,
    /// The metrics URL. For LiteLLM scrape `/metrics/` (with the slash).
    pub url: String,
    /// Seconds between scrapes.
    #[serde(default = "default_scrape_interval")]
    pub scrape_interval_secs: u64,
    /// Seconds before a scrape is abandoned.
    #[serde(default = "default_scrape_timeout")]
    pub scrape_timeout_secs: u64,
    /// A bearer token for the scrape.
    pub bearer_token: Option<RawSecret>,
    /// At most this many series are tracked for this source.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// Labels added to every sample of this source (for example `cluster: eu-1`). A scraped
    /// label of the same name is kept as `exported_<name>`, as Prometheus does.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// TLS settings for an `https` URL (the system's roots are trusted by default).
    pub tls: Option<RawTls>,
    /// The gateway's admin API, needed by runbooks that act on it (LiteLLM only).
    pub admin: Option<RawAdmin>,
}

/// TLS settings of a source.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// Also trust the CA certificates in this PEM file, relative to this file.
    pub ca_file: Option<String>,
    /// A client certificate (PEM) for mutual TLS, relative to this file.
    pub cert_file: Option<String>,
    /// The client certificate's private key (PEM), relative to this file.
    pub key_file: Option<String>,
    /// Accept any server certificate. Only for trials.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

fn default_scrape_interval() -> u64 {
    15
}

fn default_scrape_timeout() -> u64 {
    5
}

fn default_max_series() -> usize {
    50_000
}

/// What kind of server a source is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// A LiteLLM proxy.
    Litellm,
    /// A vLLM server.
    Vllm,
    /// A Hugging Face TGI server.
    Tgi,
    /// Any Prometheus endpoint.
    Generic,
}

/// A PromQL query evaluated on an interval against an existing Prometheus.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    /// Unique among sources and queries; the source name detectors read its series from.
    pub name: String,
    /// The Prometheus server's base URL, for example `http://prometheus:9090`.
    pub url: String,
    /// The PromQL expression.
    pub promql: String,
    /// The metric name given to result series that have none (aggregations drop `__name__`);
    /// defaults to the query's name with `-` turned into `_`.
    pub metric: Option<String>,
    /// Seconds between evaluations.
    #[serde(default = "default_query_interval")]
    pub interval_secs: u64,
    /// Seconds before an evaluation is abandoned.
    #[serde(default = "default_scrape_timeout")]
    pub timeout_secs: u64,
    /// A bearer token for Prometheus.
    pub bearer_token: Option<RawSecret>,
    /// TLS settings for an `https` URL.
    pub tls: Option<RawTls>,
    /// At most this many result series are tracked.
    #[serde(default = "default_max_series")]
    pub max_series: usize,
    /// Make it a range query over the last `lookback_secs` at `step_secs` (instant otherwise).
    pub range: Option<RawRange>,
}

fn default_query_interval() -> u64 {
    30
}

/// The window of a range query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRange {
    /// How far back each evaluation reaches, in seconds.
    pub lookback_secs: u64,
    /// The resolution, in seconds.
    pub step_secs: u64,
}

/// A LiteLLM admin API.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Its base URL; defaults to the scrape URL's scheme, host and port.
    pub base_url: Option<String>,
    /// The LiteLLM master key (or an admin key).
    pub master_key: RawSecret,
    /// Seconds before a call is abandoned.
    #[serde(default = "default_admin_timeout")]
    pub timeout_secs: u64,
}

fn default_admin_timeout() -> u64 {
    10
}

/// One detector.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawDetector {
    /// A per-group rate far above its adaptive baseline.
    Spike(RawSpike),
    /// An SLO's error budget burning (multiwindow, multi-burn-rate).
    BurnRate(RawBurnRate),
    /// A reading past a limit, with hysteresis.
    Threshold(RawThreshold),
    /// A share of good events significantly below its baseline.
    ProportionDrop(RawProportionDrop),
    /// A marker: a group reports a version it has not reported before.
    VersionChange(RawVersionChange),
    /// A reading far outside its own usual range, learnt.
    Anomaly(RawAnomaly),
}

impl RawDetector {
    /// The detector's name.
    pub fn name(&self) -> &str {
        match self {
            RawDetector::Spike(spike) => &spike.name,
            RawDetector::BurnRate(burn) => &burn.name,
            RawDetector::Threshold(threshold) => &threshold.name,
            RawDetector::ProportionDrop(drop) => &drop.name,
            RawDetector::VersionChange(change) => &change.name,
            RawDetector::Anomaly(anomaly) => &anomaly.name,
        }
    }

    /// The source it reads.
    pub fn source(&self) -> &str {
        match self {
            RawDetector::Spike(spike) => &spike.source,
            RawDetector::BurnRate(burn) => &burn.source,
            RawDetector::Threshold(threshold) => &threshold.source,
            RawDetector::ProportionDrop(drop) => &drop.source,
            RawDetector::VersionChange(change) => &change.source,
            RawDetector::Anomaly(anomaly) => &anomaly.source,
        }
    }
}

/// A burn-rate detector: the error budget of an objective over two counters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBurnRate {
    /// Unique name; policies see it as `context.detector`.
    pub name: String,
    /// The source it reads.
    pub source: String,
    /// The counter of bad events as a selector, e.g.
    /// `litellm_deployment_failure_responses_total{exception_status=~"429|5.."}`.
    pub bad: String,
    /// The counter of all events as a selector, e.g. `litellm_deployment_total_requests_total`.
    pub total: String,
    /// The label to group by (provider, deployment, eval suite); none: one group.
    #[serde(default)]
    pub group_by: Option<String>,
    /// The objective, between 0 and 1 exclusive, e.g. 0.999.
    pub objective: f64,
    /// The objective's period in days; the Workbook's windows scale with it.
    #[serde(default = "default_period_days")]
    pub period_days: u32,
    /// Rules replacing the Workbook's (page 1 h/5 m at 14.4, page 6 h/30 m at 6, ticket
    /// 3 d/6 h at 1, for a 30-day period).
    #[serde(default)]
    pub rules: Option<Vec<RawBurnRule>>,
    /// The bucket width in seconds; by default a tenth of the shortest window.
    #[serde(default)]
    pub bucket_secs: Option<u64>,
    /// At most this many groups are tracked.
    #[serde(default = "default_burn_max_groups")]
    pub max_groups: usize,
}

/// A threshold detector. Exactly one reading (`value`, `rate`, `quantile` with `buckets`,
/// `ratio`, `hours_left` or `mean`) and exactly one of `above` and `below`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawThreshold {
    /// Unique name; policies see it as `context.detector`.
    pub name: String,
    /// The source it reads.
    pub source: String,
    /// Read a gauge's latest value (summed per group): a selector.
    #[serde(default)]
    pub value: Option<String>,
    /// Read a counter's per-second rate over `window_secs` (summed per group): a selector.
    #[serde(default)]
    pub rate: Option<String>,
    /// Read this quantile (0 to 1) of the histogram whose `_bucket` series `buckets` selects.
    #[serde(default)]
    pub quantile: Option<f64>,
    /// The `_bucket` series for `quantile`.
    #[serde(default)]
    pub buckets: Option<String>,
    /// Read the rate of the first selector over the rate of the second.
    #[serde(default)]
    pub ratio: Option<[String; 2]>,
    /// Read the mean size of the events counted since the last observation: `[sum counter,
    /// count counter]`, e.g. the prompt tokens per eval case just pushed.
    #[serde(default)]
    pub mean: Option<[String; 2]>,
    /// Read the hours until a budget runs out: `[remaining-budget gauge, spend counter]`,
    /// the spend's rate taken over `window_secs` (use with `below`).
    #[serde(default)]
    pub hours_left: Option<[String; 2]>,
    /// The window of rates and quantiles, in seconds.
    #[serde(default = "default_threshold_window")]
    pub window_secs: i64,
    /// What the reading is, for people, e.g. `p95 latency (s)`.
    pub describe: String,
    /// The label to group by; none: one group.
    #[serde(default)]
    pub group_by: Option<String>,
    /// Fire at or above this...
    #[serde(default)]
    pub above: Option<f64>,
    /// ...or at or below this.
    #[serde(default)]
    pub below: Option<f64>,
    /// Clear once back past this (below it for `above`, above it for `below`).
    pub clear: f64,
    /// Consecutive bad readings before it fires.
    #[serde(default = "default_threshold_after")]
    pub fire_after_samples: u32,
    /// Consecutive good readings before it clears.
    #[serde(default = "default_threshold_after")]
    pub clear_after_samples: u32,
    /// `page` or `ticket`.
    #[serde(default = "default_threshold_severity")]
    pub severity: vigil_core::detector::Severity,
    /// At most this many groups are tracked.
    #[serde(default = "default_burn_max_groups")]
    pub max_groups: usize,
}

/// An anomaly detector: the adaptive detector scored on NAB over one reading per group.
/// Exactly one reading, as for a threshold detector.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAnomaly {
    /// Unique name; policies see it as `context.detector`.
    pub name: String,
    /// The source it reads.
    pub source: String,
    /// Read a gauge's latest value (summed per group): a selector.
    #[serde(default)]
    pub value: Option<String>,
    /// Read a counter's per-second rate over `window_secs` (summed per group): a selector.
    #[serde(default)]
    pub rate: Option<String>,
    /// Read this quantile (0 to 1) of the histogram whose `_bucket` series `buckets` selects.
    #[serde(default)]
    pub quantile: Option<f64>,
    /// The `_bucket` series for `quantile`.
    #[serde(default)]
    pub buckets: Option<String>,
    /// Read the rate of the first selector over the rate of the second.
    #[serde(default)]
    pub ratio: Option<[String; 2]>,
    /// Read the mean size of the events counted since the last observation.
    #[serde(default)]
    pub mean: Option<[String; 2]>,
    /// Read the hours until a budget runs out.
    #[serde(default)]
    pub hours_left: Option<[String; 2]>,
    /// The window of rates and quantiles, in seconds.
    #[serde(default = "default_threshold_window")]
    pub window_secs: i64,
    /// What the reading is, for people, e.g. `p95 latency (s)`.
    pub describe: String,
    /// The label to group by; none: one group.
    #[serde(default)]
    pub group_by: Option<String>,
    /// `up`, `down` or `both` (the default): which deviations count. Checked in the second
    /// stage, so that a wrong word is reported with its field and line.
    #[serde(default)]
    pub direction: Option<String>,
    /// `daily` (the default: remember what each time of day usually does) or `none`.
    #[serde(default)]
    pub seasonality: Option<String>,
    /// The chance of a run of readings this unusual under which it fires.
    #[serde(default = "default_anomaly_alert_probability")]
    pub alert_probability: f64,
    /// Readings of a group before it may fire.
    #[serde(default = "default_anomaly_warmup")]
    pub warmup_samples: u32,
    /// The smallest distance from the expected value worth a finding, in the reading's units.
    #[serde(default)]
    pub min_change: f64,
    /// Where it clears, from the expected value (0) to the reading that fired (1).
    #[serde(default = "default_anomaly_clear_fraction")]
    pub clear_fraction: f64,
    /// Consecutive readings back past the clear level before it clears.
    #[serde(default = "default_threshold_after")]
    pub clear_after_samples: u32,
    /// `page` or `ticket`.
    #[serde(default = "default_anomaly_severity")]
    pub severity: vigil_core::detector::Severity,
    /// At most this many groups are tracked (each keeps a memory of its day).
    #[serde(default = "default_anomaly_max_groups")]
    pub max_groups: usize,
}

fn default_anomaly_alert_probability() -> f64 {
    vigil_core::detector::adaptive::AdaptiveConfig::default().alert_probability
}
fn default_anomaly_warmup() -> u32 {
    vigil_core::detector::adaptive::AdaptiveConfig::default().warmup_samples
}
fn default_anomaly_clear_fraction() -> f64 {
    0.5
}
fn default_anomaly_severity() -> vigil_core::detector::Severity {
    vigil_core::detector::Severity::Ticket
}
fn default_anomaly_max_groups() -> usize {
    200
}

fn default_threshold_window() -> i64 {
    300
}
fn default_threshold_after() -> u32 {
    3
}
fn default_threshold_severity() -> vigil_core::detector::Severity {
    vigil_core::detector::Severity::Page
}

/// A proportion-drop detector: a binomial test of the recent share of good events against
/// its decayed baseline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProportionDrop {
    /// Unique name; policies see it as `context.detector`.
    pub name: String,
    /// The source it reads.
    pub source: String,
    /// The counter of good events as a selector, e.g.
    /// `vigil_eval_cases_total{outcome="passed"}`.
    pub good: String,
    /// The counter of all events as a selector, e.g. `vigil_eval_cases_total`...
    #[serde(default)]
    pub total: Option<String>,
    /// ...or of the bad events only, e.g. `litellm_cache_misses_metric_total`.
    #[serde(default)]
    pub bad: Option<String>,
    /// What the share is, for people, e.g. `eval pass rate`.
    pub describe: String,
    /// The label to group by (suite, prompt); none: one group.
    #[serde(default)]
    pub group_by: Option<String>,
    /// The recent window, in seconds.
    #[serde(default = "default_drop_window")]
    pub window_secs: i64,
    /// The baseline's half-life, in days.
    #[serde(default = "default_drop_half_life_days")]
    pub baseline_half_life_days: f64,
    /// The fewest events in the recent window for a decision.
    #[serde(default = "default_drop_min_cases")]
    pub min_cases: u32,
    /// The fewest (decayed) events in the baseline for a decision.
    #[serde(default = "default_drop_min_baseline_cases")]
    pub min_baseline_cases: u32,
    /// The smallest drop of the share (0 to 1) that may fire.
    #[serde(default = "default_drop_min_drop")]
    pub min_drop: f64,
    /// The binomial tail probability at or under which it fires.
    #[serde(default = "default_drop_alert_probability")]
    pub alert_probability: f64,
    /// It clears once the recent share is at most this far below the baseline; by default
    /// half of `min_drop`.
    #[serde(default)]
    pub clear_drop: Option<f64>,
    /// `page` or `ticket`.
    #[serde(default = "default_threshold_severity")]
    pub severity: vigil_core::detector::Severity,
    /// At most this many groups are tracked.
    #[serde(default = "default_burn_max_groups")]
    pub max_groups: usize,
    /// The drift test for slow slides that the baseline would follow; none: sudden drops
    /// only.
    #[serde(default)]
    pub drift: Option<RawDrift>,
}

/// The drift test of a proportion-drop detector: a CUSUM of the cases against a reference
/// share frozen at a known-good period.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDrift {
    /// The reference is learnt from at least this many of each group's first cases.
    #[serde(default = "default_drift_reference_cases")]
    pub reference_cases: u32,
    /// The known-good share, stated (0 to 1); none: learnt per group.
    #[serde(default)]
    pub reference_share: Option<f64>,
    /// The drop below the reference (0 to 1) the test is tuned to detect.
    #[serde(default = "default_drop_min_drop")]
    pub min_drop: f64,
    /// It clears once the recent share is at most this far below the reference; by default
    /// half of `min_drop`.
    #[serde(default)]
    pub clear_drop: Option<f64>,
    /// The mean number of cases between false alarms on a suite that holds its level.
    #[serde(default = "default_drift_cases_between_false_alarms")]
    pub cases_between_false_alarms: f64,
}

fn default_drift_reference_cases() -> u32 {
    500
}
fn default_drift_cases_between_false_alarms() -> f64 {
    1e6
}

fn default_drop_window() -> i64 {
    3600
}
fn default_drop_half_life_days() -> f64 {
    7.0
}
fn default_drop_min_cases() -> u32 {
    10
}
fn default_drop_min_baseline_cases() -> u32 {
    50
}
fn default_drop_min_drop() -> f64 {
    0.1
}
fn default_drop_alert_probability() -> f64 {
    1e-3
}

/// A version-change marker.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVersionChange {
    /// Unique name.
    pub name: String,
    /// The source it reads.
    pub source: String,
    /// The series carrying the version, as a selector, e.g. `vigil_eval_cases_total`.
    pub selector: String,
    /// The label holding the version, e.g. `prompt_version`.
    pub version_label: String,
    /// The label to group by, e.g. `prompt`; none: one group.
    #[serde(default)]
    pub group_by: Option<String>,
    /// How many versions each group remembers.
    #[serde(default = "default_max_versions")]
    pub max_versions: usize,
    /// At most this many groups are tracked.
    #[serde(default = "default_burn_max_groups")]
    pub max_groups: usize,
}

fn default_max_versions() -> usize {
    32
}

/// One burn-rate rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBurnRule {
    /// `page` or `ticket`.
    pub severity: vigil_core::detector::Severity,
    /// The long window, in seconds.
    pub long_secs: i64,
    /// The short window, in seconds.
    pub short_secs: i64,
    /// The burn rate both windows must reach.
    pub burn_rate: f64,
}

fn default_period_days() -> u32 {
    30
}
fn default_burn_max_groups() -> usize {
    1000
}

/// A spike detector (token and spend spikes per key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpike {
    /// Unique name; policies see it as `context.detector`.
    pub name: String,
    /// The source it reads.
    pub source: String,
    /// The metric it reads.
    #[serde(default = "default_spike_metric")]
    pub metric: String,
    /// `counter_rate` (the per-scrape rate of a counter, the default) or `value` (a gauge, or
    /// a query that already computes a rate).
    #[serde(default)]
    pub read: vigil_core::detector::spike::SeriesRead,
    /// What the metric counts: `tokens` (the default), `requests` or `usd`; the words of
    /// its findings, checks and pages, and whether a spike is read as requests × tokens per
    /// request.
    #[serde(default)]
    pub unit: Option<String>,
    /// The label it groups by.
    #[serde(default = "default_group_by")]
    pub group_by: String,
    /// The label that names a group for people.
    #[serde(default = "default_alias_label")]
    pub alias_label: Option<String>,
    /// The label that gives a group's team.
    #[serde(default = "default_team_label")]
    pub team_label: Option<String>,
    /// Group values that are not real subjects.
    #[serde(default = "default_ignore_values")]
    pub ignore_values: Vec<String>,
    /// At most this many groups are tracked.
    #[serde(default = "default_max_groups")]
    pub max_groups: usize,
    /// Observations before a group's baseline is trusted.
    #[serde(default = "default_warmup")]
    pub warmup_samples: u32,
    /// Half-life of the baseline's memory, in seconds.
    #[serde(default = "default_half_life")]
    pub baseline_half_life_secs: f64,
    /// Fire at this many spreads above the baseline...
    #[serde(default = "default_fire_z")]
    pub fire_z: f64,
    /// ...and this multiple of it...
    #[serde(default = "default_fire_ratio")]
    pub fire_ratio: f64,
    /// ...and at least this rate per second...
    #[serde(default = "default_min_rate")]
    pub min_rate_per_sec: f64,
    /// ...for this many consecutive scrapes.
    #[serde(default = "default_fire_after")]
    pub fire_after_samples: u32,
    /// Clear at this multiple of the baseline...
    #[serde(default = "default_clear_ratio")]
    pub clear_ratio: f64,
    /// ...for this many consecutive scrapes.
    #[serde(default = "default_clear_after")]
    pub clear_after_samples: u32,
    /// The spread is at least this fraction of the baseline.
    #[serde(default = "default_noise_floor")]
    pub noise_floor_ratio: f64,
    /// A finding at this multiple of the baseline pages; below it, it is a ticket.
    #[serde(default = "default_page_ratio")]
    pub page_ratio: f64,
    /// The seasonal period in seconds: each key remembers its usual rate per hour of it, so
    /// what happens every day at that hour stops firing; 0 turns it off.
    #[serde(default = "default_season_secs")]
    pub season_secs: i64,
    /// Whether a run of scrapes at `fire_ratio` or more is tested as a whole: the longer it
    /// lasts, the fewer spreads its mean needs (`fire_z` over `fire_after_samples` scrapes
    /// is the same evidence as `fire_z / 2` over four times as many).
    #[serde(default = "default_run_evidence")]
    pub run_evidence: bool,
    /// What each hour of the seasonal memory keeps: `peak` (its busiest quarter hour, a rise
    /// counting in full the next day, judged against alone once known) or `average` (the
    /// first design).
    #[serde(default = "default_season_memory")]
    pub season_memory: vigil_core::detector::spike::SeasonMemory,
}

fn default_spike_metric() -> String {
    "litellm_total_tokens_metric_total".to_owned()
}
fn default_group_by() -> String {
    "hashed_api_key".to_owned()
}
#[expect(
    clippy::unnecessary_wraps,
    reason = "serde's `default` needs the field's type"
)]
fn default_alias_label() -> Option<String> {
    Some("api_key_alias".to_owned())
}
#[expect(
    clippy::unnecessary_wraps,
    reason = "serde's `default` needs the field's type"
)]
fn default_team_label() -> Option<String> {
    Some("team".to_owned())
}
fn default_ignore_values() -> Vec<String> {
    vec![String::new(), "None".to_owned()]
}
fn default_max_groups() -> usize {
    10_000
}
// The spike thresholds' defaults are the engine's own (`SpikeThresholds::default`), so that
// the config, `vigil backtest` and the evaluation harness agree.
fn spike_defaults() -> vigil_core::detector::spike::SpikeThresholds {
    vigil_core::detector::spike::SpikeThresholds::default()
}
fn default_warmup() -> u32 {
    spike_defaults().warmup_samples
}
fn default_half_life() -> f64 {
    spike_defaults().baseline_half_life_secs
}
fn default_fire_z() -> f64 {
    spike_defaults().fire_z
}
fn default_fire_ratio() -> f64 {
    spike_defaults().fire_ratio
}
fn default_min_rate() -> f64 {
    spike_defaults().min_rate_per_sec
}
fn default_fire_after() -> u32 {
    spike_defaults().fire_after_samples
}
fn default_clear_ratio() -> f64 {
    spike_defaults().clear_ratio
}
fn default_clear_after() -> u32 {
    spike_defaults().clear_after_samples
}
fn default_noise_floor() -> f64 {
    spike_defaults().noise_floor_ratio
}
fn default_page_ratio() -> f64 {
    spike_defaults().page_ratio
}
fn default_season_secs() -> i64 {
    spike_defaults().season_secs
}
fn default_run_evidence() -> bool {
    spike_defaults().run_evidence
}
fn default_season_memory() -> vigil_core::detector::spike::SeasonMemory {
    spike_defaults().season_memory
}

/// The diagnoser.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiagnosis {
    /// The share of the excess (0 to 1) one key must hold to be called a runaway.
    #[serde(default = "default_runaway_share")]
    pub runaway_min_share: f64,
    /// How long after a version change (a `version_change` detector's marker) a finding of
    /// the same group blames it, in seconds.
    #[serde(default = "default_change_window")]
    pub change_window_secs: i64,
    /// The request counter behind a token spike, per key (summed over its other labels):
    /// a spike is decomposed into requests × tokens per request before anyone is blamed.
    #[serde(default = "default_requests_metric")]
    pub requests_metric: String,
    /// The cache's hit counter (LiteLLM's by default).
    #[serde(default = "default_cache_hits_metric")]
    pub cache_hits_metric: String,
    /// The cache's miss counter (LiteLLM's by default).
    #[serde(default = "default_cache_misses_metric")]
    pub cache_misses_metric: String,
    /// Request rates within this factor of their rate before the spike count as flat.
    #[serde(default = "default_flat_requests_ratio")]
    pub flat_requests_ratio: f64,
    /// The window before a spike over which the earlier request and cache rates are read.
    #[serde(default = "default_before_window_secs")]
    pub before_window_secs: i64,
    /// A finding that fired at the same time of day on at least this many earlier days
    /// repeats a rhythm (expected activity: noted, not acted on, not paged).
    #[serde(default = "default_rhythm_min_days")]
    pub rhythm_min_days: u32,
    /// How far from the same time of day an earlier fire may be and still count.
    #[serde(default = "default_rhythm_tolerance_secs")]
    pub rhythm_tolerance_secs: i64,
    /// How many days of fires are remembered.
    #[serde(default = "default_rhythm_lookback_days")]
    pub rhythm_lookback_days: u32,
    /// Alertmanager alert names that announce planned work (compared without case, `_`,
    /// `-` and spaces, as substrings); a spike of what such an alert names is expected.
    #[serde(default = "default_planned_work_alertnames")]
    pub planned_work_alertnames: Vec<String>,
    /// The LLM assistant that investigates incidents (off unless present and enabled).
    pub assistant: Option<super::assistant::RawAssistant>,
}

fn default_requests_metric() -> String {
    "litellm_proxy_total_requests_metric_total".to_owned()
}

fn default_cache_hits_metric() -> String {
    "litellm_cache_hits_metric_total".to_owned()
}

fn default_cache_misses_metric() -> String {
    "litellm_cache_misses_metric_total".to_owned()
}

fn default_flat_requests_ratio() -> f64 {
    1.5
}

fn default_before_window_secs() -> i64 {
    600
}

fn default_rhythm_min_days() -> u32 {
    1
}

fn default_rhythm_tolerance_secs() -> i64 {
    1800
}

fn default_rhythm_lookback_days() -> u32 {
    7
}

fn default_planned_work_alertnames() -> Vec<String> {
    vigil_core::diagnosis::demand::DEFAULT_PLANNED_WORK_ALERTNAMES
        .iter()
        .map(|&name| name.to_owned())
        .collect()
}

fn default_runaway_share() -> f64 {
    0.7
}

fn default_change_window() -> i64 {
    vigil_core::diagnosis::DEFAULT_CHANGE_WINDOW_MS / 1000
}

impl Default for RawDiagnosis {
    fn default() -> Self {
        RawDiagnosis {
            runaway_min_share: default_runaway_share(),
            change_window_secs: default_change_window(),
            requests_metric: default_requests_metric(),
            cache_hits_metric: default_cache_hits_metric(),
            cache_misses_metric: default_cache_misses_metric(),
            flat_requests_ratio: default_flat_requests_ratio(),
            before_window_secs: default_before_window_secs(),
            rhythm_min_days: default_rhythm_min_days(),
            rhythm_tolerance_secs: default_rhythm_tolerance_secs(),
            rhythm_lookback_days: default_rhythm_lookback_days(),
            planned_work_alertnames: default_planned_work_alertnames(),
            assistant: None,
        }
    }
}

/// Facts about one key, matched by hash or alias.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKey {
    /// The key's `hashed_api_key`.
    pub hashed_key: Option<String>,
    /// The key's `api_key_alias`.
    pub alias: Option<String>,
    /// Its tier, `resource.tier` in policies (for example `critical`).
    pub tier: String,
}

/// The series store's bounds.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// Points older than this many seconds are dropped.
    #[serde(default = "default_retention")]
    pub retention_secs: u64,
    /// A series keeps at most this many points.
    #[serde(default = "default_max_points")]
    pub max_points_per_series: usize,
    /// Series of pushed signals at most, per kind of payload; new ones past it are refused
    /// (and reported to the sender) until series not pushed for the retention are dropped.
    #[serde(default = "default_max_pushed_series")]
    pub max_pushed_series: usize,
}

fn default_retention() -> u64 {
    3600
}
fn default_max_points() -> usize {
    720
}
fn default_max_pushed_series() -> usize {
    10_000
}

impl Default for RawStore {
    fn default() -> Self {
        RawStore {
            retention_secs: default_retention(),
            max_points_per_series: default_max_points(),
            max_pushed_series: default_max_pushed_series(),
        }
    }
}

/// The HTTP intake of pushed events, served on `listen`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIntake {
    /// A bearer token clients must send (recommended whenever `listen` is not loopback).
    pub bearer_token: Option<RawSecret>,
    /// The largest request body accepted, in bytes (OTLP recommends 20 MiB).
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Pushes handled at once at most (across all intake routes); a push past it gets 503
    /// with `Retry-After`. Each costs memory in proportion to its body (see `examples/vigil.yaml`).
    #[serde(default = "default_max_concurrent_pushes")]
    pub max_concurrent_pushes: usize,
}

fn default_max_body_bytes() -> usize {
    20 * 1024 * 1024
}

fn default_max_concurrent_pushes() -> usize {
    4
}

/// Where pages go.
#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawPager {
    /// POST the page as JSON to a URL (Alertmanager-style receivers, incident tools, a bot).
    Webhook {
        /// The URL.
        url: String,
        /// An optional bearer token.
        bearer_token: Option<RawSecret>,
    },
    /// Trigger an incident through PagerDuty's Events API v2, one per vigil incident.
    #[serde(rename = "pagerduty")]
    PagerDuty {
        /// The 32-character integration (routing) key of an Events API v2 integration.
        routing_key: RawSecret,
        /// The events endpoint; defaults to `https://events.pagerduty.com/v2/enqueue` (the
        /// EU service region uses `https://events.eu.pagerduty.com/v2/enqueue`).
        events_url: Option<String>,
    },
    /// Post a message to a Slack channel through an incoming webhook.
    Slack {
        /// The webhook URL, which is itself a secret (its path holds the token).
        webhook_url: RawSecret,
    },
    /// Only log the page (for trials; nobody is woken).
    Log,
}
