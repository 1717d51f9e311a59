//! The second stage: turns the raw file into a typed [`Config`], reporting every problem.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reqwest::Url;
use vigil_connectors::http::{ClientCert, TlsOptions};
use vigil_connectors::secret::SecretSource;
use vigil_core::authz::Mode;
use vigil_core::detector::DetectorConfig;
use vigil_core::detector::Severity;
use vigil_core::detector::burn_rate::{BurnRateConfig, BurnRule};
use vigil_core::detector::spike::{RateUnit, SpikeConfig, SpikeThresholds};
use vigil_core::diagnosis::DiagnosisConfig;
use vigil_core::engine::{ApiKeyInfo, GlobalLimits, ResourceInfo, StoreLimits};
use vigil_core::intake::PUSH_SOURCES;
use vigil_core::problem::Problems;
use vigil_core::store::{Selector, SelectorError};

use super::admin::{self, AdminApiConfig};
use super::autonomy::{self, ActionsConfig};
use super::raw::{RawConfig, RawDetector, RawPager, RawSecret, RawSource, SourceKind};
use super::server::{self, ServerConfig};

/// A validated config. Paths are resolved against the config file's folder.
#[derive(Debug, Clone)]
pub struct Config {
    /// The global mode.
    pub mode: Mode,
    /// `resource.environment` in policies.
    pub environment: String,
    /// Where `vigil serve` listens.
    pub listen: SocketAddr,
    /// The listener's limits, timeouts and TLS.
    pub server: ServerConfig,
    /// Where the ledger lives.
    pub ledger: LedgerSetting,
    /// Signed checkpoints of the ledger, when enabled.
    pub checkpoint: Option<CheckpointConfig>,
    /// The span of a batch of scrapes in the ledger, in seconds; 0 when scrapes are not
    /// batched.
    pub scrape_batch_secs: u64,
    /// The policies folder.
    pub policies_dir: PathBuf,
    /// The runbooks folder.
    pub runbooks_dir: PathBuf,
    /// Concurrent scrapes at most.
    pub max_concurrent_scrapes: usize,
    /// The sources.
    pub sources: Vec<SourceConfig>,
    /// The PromQL queries.
    pub queries: Vec<QueryConfig>,
    /// The detectors, typed for the engine.
    pub detectors: Vec<DetectorConfig>,
    /// The diagnoser.
    pub diagnosis: DiagnosisConfig,
    /// Key inventory.
    pub api_keys: Vec<ApiKeyInfo>,
    /// The series store's bounds.
    pub store: StoreLimits,
    /// The pushed-events intake, when enabled.
    pub intake: Option<IntakeConfig>,
    /// The pager.
    pub pager: PagerConfig,
    /// The resource inventory.
    pub resources: Vec<ResourceInfo>,
    /// Limits over all runbooks.
    pub limits: GlobalLimits,
    /// Action targets besides LiteLLM gateways.
    pub actions: ActionsConfig,
    /// The admin API, when enabled.
    pub admin: Option<AdminApiConfig>,
    /// The rules people's instructions are held to (the admin API's, or the defaults).
    pub people: vigil_core::people::PeopleRules,
    /// The declared topology and how findings group by it.
    pub topology: vigil_core::topology::TopologyConfig,
    /// The LLM assistant that investigates incidents, when configured (`enabled` says
    /// whether `vigil serve` runs it).
    pub assistant: Option<super::assistant::AssistantSettings>,
    /// The web console, when configured.
    pub console: Option<super::console::ConsoleConfig>,
    /// The dead man's switch, when configured.
    pub heartbeat: Option<super::heartbeat::HeartbeatConfig>,
    /// Replicas with a fenced leader, when configured.
    pub replication: Option<super::replication::ReplicationConfig>,
}

impl Config {
    /// The longest any action's call may take (LiteLLM admin calls, Langfuse, the HTTP
    /// action; 10 s when none is configured).
    #[must_use]
    pub fn longest_action_timeout(&self) -> Duration {
        let admin = self
            .sources
            .iter()
            .filter_map(|source| source.admin.as_ref().map(|admin| admin.timeout));
        let langfuse = self.actions.langfuse.iter().map(|project| project.timeout);
        let http = self.actions.http.iter().map(|http| http.timeout);
        admin
            .chain(langfuse)
            .chain(http)
            .max()
            .unwrap_or(Duration::from_secs(10))
    }
}

/// Where the ledger lives.
#[derive(Debug, Clone)]
pub enum LedgerSetting {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database.
    Postgres {
        /// Its URL.
        url: SecretSource,
        /// The schema.
        schema: Option<String>,
    },
}

/// Signed checkpoints of the ledger's tree head.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// The Ed25519 signing key file (created, mode 0600, when missing).
    pub key_file: PathBuf,
    /// How often a checkpoint is signed when the ledger grew.
    pub interval: Duration,
    /// Where the latest checkpoint is also written.
    pub publish_file: Option<PathBuf>,
    /// Where every checkpoint is also POSTed.
    pub webhook_url: Option<Url>,
    /// Whether the key may be created inside a git work tree.
    pub allow_key_in_git_tree: bool,
}

/// One validated source.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// Unique name.
    pub name: String,
    /// What serves it.
    pub kind: SourceKind,
    /// The metrics URL.
    pub url: Url,
    /// Between scrapes.
    pub interval: Duration,
    /// Per scrape.
    pub timeout: Duration,
    /// Bearer token.
    pub bearer: Option<SecretSource>,
    /// Series limit.
    pub max_series: usize,
    /// Labels added to every sample.
    pub labels: BTreeMap<String, String>,
    /// TLS settings.
    pub tls: TlsOptions,
    /// The LiteLLM admin API, when configured.
    pub admin: Option<AdminConfig>,
}

/// One validated PromQL query source.
#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Unique name; the source of its series.
    pub name: String,
    /// Prometheus' base URL.
    pub url: Url,
    /// The expression.
    pub promql: String,
    /// The name of result series without `__name__`.
    pub metric: String,
    /// Between evaluations.
    pub interval: Duration,
    /// Per evaluation.
    pub timeout: Duration,
    /// Bearer token.
    pub bearer: Option<SecretSource>,
    /// TLS settings.
    pub tls: TlsOptions,
    /// Series limit.
    pub max_series: usize,
    /// `(lookback, step)` of a range query.
    pub range: Option<(Duration, Duration)>,
}

/// A LiteLLM admin API.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// Base URL.
    pub base_url: Url,
    /// Master key.
    pub master_key: SecretSource,
    /// Per call.
    pub timeout: Duration,
}

/// The pushed-events intake.
#[derive(Debug, Clone)]
pub struct IntakeConfig {
    /// The bearer token clients must send.
    pub bearer: Option<SecretSource>,
    /// The largest body accepted.
    pub max_body_bytes: usize,
    /// Pushes handled at once at most.
    pub max_concurrent_pushes: usize,
}

/// Where pages go.
#[derive(Debug, Clone)]
pub enum PagerConfig {
    /// POST JSON to a URL.
    Webhook {
        /// The URL.
        url: Url,
        /// Optional bearer token.
        bearer: Option<SecretSource>,
    },
    /// PagerDuty's Events API v2.
    PagerDuty {
        /// The integration (routing) key.
        routing_key: SecretSource,
        /// The events endpoint.
        events_url: Url,
    },
    /// A Slack incoming webhook.
    Slack {
        /// The webhook URL, a secret.
        webhook_url: SecretSource,
    },
    /// Log only.
    Log,
}

/// Validates `raw`; relative paths are resolved against `base_dir`.
pub fn validate(
    raw: RawConfig,
    base_dir: &Path,
) -> Result<Config, Vec<vigil_core::problem::Problem>> {
    let mut problems = Problems::default();
    let mut raw = raw;
    let assistant = raw.diagnosis.assistant.take();
    let listen = raw.listen.parse::<SocketAddr>().unwrap_or_else(|error| {
        problems.push(
            "listen",
            format!(
                "`{}` is not an address like 127.0.0.1:9464: {error}",
                raw.listen
            ),
        );
        SocketAddr::from(([127, 0, 0, 1], 9464))
    });
    if raw.environment.trim().is_empty() {
        problems.push("environment", "must not be empty");
    }
    let on_postgres = raw.ledger.postgres_url.is_some();
    let ledger = match (raw.ledger.sqlite_path, raw.ledger.postgres_url) {
        (Some(path), None) => {
            if raw.ledger.postgres_schema.is_some() {
                problems.push("ledger.postgres_schema", "only applies with `postgres_url`");
            }
            LedgerSetting::Sqlite(base_dir.join(path))
        }
        (None, Some(url)) => LedgerSetting::Postgres {
            url: secret(&mut problems, "ledger.postgres_url", url, base_dir),
            schema: raw.ledger.postgres_schema,
        },
        (Some(_), Some(_)) => {
            problems.push(
                "ledger",
                "set either `sqlite_path` or `postgres_url`, not both",
            );
            LedgerSetting::Sqlite(PathBuf::new())
        }
        (None, None) => {
            problems.push("ledger", "set `sqlite_path` or `postgres_url`");
            LedgerSetting::Sqlite(PathBuf::new())
        }
    };
    let checkpoint = raw.ledger.checkpoint.map(|raw| {
        if !(10..=86_400).contains(&raw.interval_secs) {
            problems.push(
                "ledger.checkpoint.interval_secs",
                "must be between 10 and 86400 (a day)",
            );
        }
        if raw.key_file.trim().is_empty() {
            problems.push("ledger.checkpoint.key_file", "must not be empty");
        }
        CheckpointConfig {
            key_file: base_dir.join(&raw.key_file),
            interval: Duration::from_secs(raw.interval_secs),
            publish_file: raw.publish_file.map(|path| base_dir.join(path)),
            webhook_url: raw
                .webhook_url
                .and_then(|url| http_url(&mut problems, "ledger.checkpoint.webhook_url", &url)),
            allow_key_in_git_tree: raw.allow_key_in_git_tree,
        }
    });
    if raw.ledger.scrape_batch_secs > 3_600 {
        problems.push(
            "ledger.scrape_batch_secs",
            "must be at most 3600 (an hour); 0 records every scrape on its own",
        );
    }
    if raw.max_concurrent_scrapes == 0 {
        problems.push("max_concurrent_scrapes", "must be at least 1");
    }
    if raw.sources.is_empty() && raw.queries.is_empty() {
        problems.push("sources", "configure at least one source or query");
    }
    let mut source_names = BTreeSet::new();
    let sources: Vec<SourceConfig> = raw
        .sources
        .into_iter()
        .enumerate()
        .filter_map(|(idx, source)| {
            let path = format!("sources[{idx}]");
            if !source_names.insert(source.name.clone()) {
                problems.push(
                    format!("{path}.name"),
                    format!("duplicate source name `{}`", source.name),
                );
            }
            validate_source(&mut problems, &path, source, base_dir)
        })
        .collect();
    let queries: Vec<QueryConfig> = raw
        .queries
        .into_iter()
        .enumerate()
        .filter_map(|(idx, query)| {
            let path = format!("queries[{idx}]");
            if !source_names.insert(query.name.clone()) {
                problems.push(
                    format!("{path}.name"),
                    format!("`{}` is already the name of a source or query", query.name),
                );
            }
            validate_query(&mut problems, &path, query, base_dir)
        })
        .collect();
    let intake_enabled = raw.intake.is_some();
    let mut detector_names = BTreeSet::new();
    let detectors = raw
        .detectors
        .into_iter()
        .enumerate()
        // A detector that yields `None` had its problems reported, so the config is refused.
        .filter_map(|(idx, detector)| {
            let path = format!("detectors[{idx}]");
            if !detector_names.insert(detector.name().to_owned()) {
                problems.push(
                    format!("{path}.name"),
                    format!("duplicate detector name `{}`", detector.name()),
                );
            }
            let source = detector.source();
            if PUSH_SOURCES.contains(&source) {
                if !intake_enabled {
                    problems.push(
                        format!("{path}.source"),
                        format!("`{source}` holds pushed events: enable the `intake` section"),
                    );
                }
            } else if !source_names.contains(source) {
                problems.push(
                    format!("{path}.source"),
                    format!(
                        "no source is named `{source}` (pushed events are in `{}`)",
                        PUSH_SOURCES.join("`, `")
                    ),
                );
            }
            match detector {
                RawDetector::Spike(spike) => Some(validate_spike(&mut problems, &path, spike)),
                RawDetector::BurnRate(burn) => validate_burn_rate(&mut problems, &path, burn),
                RawDetector::Threshold(threshold) => {
                    validate_threshold(&mut problems, &path, threshold)
                }
                RawDetector::ProportionDrop(drop) => {
                    super::detectors::validate_proportion_drop(&mut problems, &path, drop)
                }
                RawDetector::Anomaly(anomaly) => {
                    super::detectors::validate_anomaly(&mut problems, &path, anomaly)
                }
                RawDetector::VersionChange(change) => {
                    super::detectors::validate_version_change(&mut problems, &path, change)
                }
            }
            .map(DetectorConfig::reading_only_grouped_series)
        })
        .collect();
    if raw.diagnosis.change_window_secs < 0 {
        problems.push("diagnosis.change_window_secs", "must not be negative");
    }
    if !(raw.diagnosis.runaway_min_share > 0.0 && raw.diagnosis.runaway_min_share <= 1.0) {
        problems.push(
            "diagnosis.runaway_min_share",
            "must be above 0 and at most 1",
        );
    }
    let api_keys = raw
        .api_keys
        .into_iter()
        .enumerate()
        .map(|(idx, key)| {
            if key.hashed_key.is_none() && key.alias.is_none() {
                problems.push(format!("api_keys[{idx}]"), "set `hashed_key` or `alias`");
            }
            if key.tier.trim().is_empty() {
                problems.push(format!("api_keys[{idx}].tier"), "must not be empty");
            }
            ApiKeyInfo {
                hashed_key: key.hashed_key,
                alias: key.alias,
                tier: key.tier,
            }
        })
        .collect();
    if raw.store.retention_secs == 0 {
        problems.push("store.retention_secs", "must be at least 1");
    }
    if raw.store.max_points_per_series < 2 {
        problems.push("store.max_points_per_series", "must be at least 2");
    }
    if raw.store.max_pushed_series == 0 {
        problems.push("store.max_pushed_series", "must be at least 1");
    }
    let store = StoreLimits {
        retention_ms: i64::try_from(raw.store.retention_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
        max_points_per_series: raw.store.max_points_per_series,
        max_pushed_series: raw.store.max_pushed_series,
    };
    let intake = raw.intake.map(|intake| {
        if intake.max_body_bytes < 1024 {
            problems.push("intake.max_body_bytes", "must be at least 1024");
        }
        if intake.max_concurrent_pushes == 0 {
            problems.push("intake.max_concurrent_pushes", "must be at least 1");
        }
        IntakeConfig {
            bearer: intake
                .bearer_token
                .map(|token| secret(&mut problems, "intake.bearer_token", token, base_dir)),
            max_body_bytes: intake.max_body_bytes,
            max_concurrent_pushes: intake.max_concurrent_pushes,
        }
    });
    let pager = match raw.pager {
        RawPager::Webhook { url, bearer_token } => {
            let url = http_url(&mut problems, "pager.url", &url);
            let bearer = bearer_token
                .map(|token| secret(&mut problems, "pager.bearer_token", token, base_dir));
            url.map(|url| PagerConfig::Webhook { url, bearer })
        }
        RawPager::PagerDuty {
            routing_key,
            events_url,
        } => {
            let routing_key = secret(&mut problems, "pager.routing_key", routing_key, base_dir);
            let events_url = http_url(
                &mut problems,
                "pager.events_url",
                events_url
                    .as_deref()
                    .unwrap_or(vigil_connectors::pager::PAGERDUTY_EVENTS_URL),
            );
            events_url.map(|events_url| PagerConfig::PagerDuty {
                routing_key,
                events_url,
            })
        }
        RawPager::Slack { webhook_url } => Some(PagerConfig::Slack {
            webhook_url: secret(&mut problems, "pager.webhook_url", webhook_url, base_dir),
        }),
        RawPager::Log => Some(PagerConfig::Log),
    };
    let has_admin = raw.admin.is_some();
    let config = Config {
        mode: raw.mode,
        environment: raw.environment,
        listen,
        server: server::validate_server(&mut problems, raw.server, base_dir),
        ledger,
        checkpoint,
        scrape_batch_secs: raw.ledger.scrape_batch_secs,
        policies_dir: base_dir.join(raw.policies_dir),
        runbooks_dir: base_dir.join(raw.runbooks_dir),
        max_concurrent_scrapes: raw.max_concurrent_scrapes,
        sources,
        queries,
        detectors,
        diagnosis: DiagnosisConfig {
            runaway_min_share: raw.diagnosis.runaway_min_share,
            change_window_ms: raw.diagnosis.change_window_secs.saturating_mul(1000),
            demand: super::demand::validate_demand(&mut problems, &raw.diagnosis),
            excess: vigil_core::diagnosis::ExcessRule::Net,
        },
        api_keys,
        store,
        intake,
        pager: pager.unwrap_or(PagerConfig::Log),
        resources: autonomy::validate_resources(&mut problems, raw.resources),
        limits: autonomy::validate_limits(&mut problems, &raw.limits),
        actions: autonomy::validate_actions(&mut problems, raw.actions, base_dir),
        people: vigil_core::people::PeopleRules::default(),
        admin: admin::validate_admin(&mut problems, raw.admin, base_dir),
        topology: super::topology::validate_topology(&mut problems, raw.topology),
        assistant: super::assistant::validate_assistant(&mut problems, assistant, base_dir),
        console: super::console::validate_console(&mut problems, raw.console, has_admin),
        heartbeat: super::heartbeat::validate_heartbeat(&mut problems, raw.heartbeat, base_dir),
        replication: super::replication::validate_replication(
            &mut problems,
            raw.replication,
            on_postgres,
        ),
    };
    if let Some(replication) = &config.replication {
        let longest = config.longest_action_timeout();
        if replication.lease < longest + replication.renew_every {
            problems.push(
                "replication.lease_secs",
                format!(
                    "must be at least the longest action timeout ({} s) plus renew_every_secs ({} s): a leader acts only while its lease outlives the call",
                    longest.as_secs(),
                    replication.renew_every.as_secs()
                ),
            );
        }
    }
    let config = Config {
        people: config
            .admin
            .as_ref()
            .map_or_else(Default::default, |admin| admin.people.clone()),
        ..config
    };
    problems.finish(config)
}

/// Validates one source; `None` only when a problem was recorded.
fn validate_source(
    problems: &mut Problems,
    path: &str,
    source: RawSource,
    base_dir: &Path,
) -> Option<SourceConfig> {
    if source.name.trim().is_empty() {
        problems.push(format!("{path}.name"), "must not be empty");
    }
    let url = http_url(problems, &format!("{path}.url"), &source.url);
    if source.scrape_interval_secs == 0 {
        problems.push(format!("{path}.scrape_interval_secs"), "must be at least 1");
    }
    if source.scrape_timeout_secs == 0 {
        problems.push(format!("{path}.scrape_timeout_secs"), "must be at least 1");
    } else if source.scrape_timeout_secs > source.scrape_interval_secs {
        problems.push(
            format!("{path}.scrape_timeout_secs"),
            format!(
                "{}s is longer than the {}s scrape interval",
                source.scrape_timeout_secs, source.scrape_interval_secs
            ),
        );
    }
    if source.max_series == 0 {
        problems.push(format!("{path}.max_series"), "must be at least 1");
    }
    let bearer = source
        .bearer_token
        .map(|token| secret(problems, &format!("{path}.bearer_token"), token, base_dir));
    for (name, value) in &source.labels {
        if !is_label_name(name) {
            problems.push(
                format!("{path}.labels.{name}"),
                format!("`{name}` is not a label name: use letters, digits and `_`, not starting with a digit or `__`"),
            );
        }
        if value.is_empty() {
            problems.push(format!("{path}.labels.{name}"), "must not be empty");
        }
    }
    let tls = tls_options(
        problems,
        &format!("{path}.tls"),
        source.tls,
        url.as_ref(),
        base_dir,
    );
    let admin = source.admin.and_then(|admin| {
        if source.kind != SourceKind::Litellm {
            problems.push(
                format!("{path}.admin"),
                "an admin API is only supported for `kind: litellm`",
            );
        }
        let base_url = match admin.base_url {
            Some(text) => http_url(problems, &format!("{path}.admin.base_url"), &text),
            None => url.as_ref().map(origin_of),
        };
        if admin.timeout_secs == 0 {
            problems.push(format!("{path}.admin.timeout_secs"), "must be at least 1");
        }
        let master_key = secret(
            problems,
            &format!("{path}.admin.master_key"),
            admin.master_key,
            base_dir,
        );
        Some(AdminConfig {
            base_url: base_url?,
            master_key,
            timeout: Duration::from_secs(admin.timeout_secs),
        })
    });
    Some(SourceConfig {
        name: source.name,
        kind: source.kind,
        url: url?,
        interval: Duration::from_secs(source.scrape_interval_secs),
        timeout: Duration::from_secs(source.scrape_timeout_secs),
        bearer,
        max_series: source.max_series,
        labels: source.labels,
        tls,
        admin,
    })
}

/// Validates one query; `None` only when a problem was recorded.
fn validate_query(
    problems: &mut Problems,
    path: &str,
    query: super::raw::RawQuery,
    base_dir: &Path,
) -> Option<QueryConfig> {
    if query.name.trim().is_empty() || query.name.starts_with("push:") {
        problems.push(
            format!("{path}.name"),
            "must not be empty or start with `push:`",
        );
    }
    let url = http_url(problems, &format!("{path}.url"), &query.url);
    if query.promql.trim().is_empty() {
        problems.push(format!("{path}.promql"), "must not be empty");
    }
    let metric = query.metric.unwrap_or_else(|| query.name.replace('-', "_"));
    if !is_metric_name(&metric) {
        problems.push(
            format!("{path}.metric"),
            format!("`{metric}` is not a metric name: letters, digits, `_` and `:`, not starting with a digit"),
        );
    }
    if query.interval_secs == 0 {
        problems.push(format!("{path}.interval_secs"), "must be at least 1");
    }
    if query.timeout_secs == 0 || query.timeout_secs > query.interval_secs.max(1) {
        problems.push(
            format!("{path}.timeout_secs"),
            "must be at least 1 and at most the interval",
        );
    }
    if query.max_series == 0 {
        problems.push(format!("{path}.max_series"), "must be at least 1");
    }
    let range = query.range.map(|range| {
        if range.step_secs == 0 || range.lookback_secs < range.step_secs {
            problems.push(
                format!("{path}.range"),
                "needs `step_secs` of at least 1 and `lookback_secs` of at least one step",
            );
        }
        (
            Duration::from_secs(range.lookback_secs),
            Duration::from_secs(range.step_secs),
        )
    });
    let bearer = query
        .bearer_token
        .map(|token| secret(problems, &format!("{path}.bearer_token"), token, base_dir));
    let tls = tls_options(
        problems,
        &format!("{path}.tls"),
        query.tls,
        url.as_ref(),
        base_dir,
    );
    Some(QueryConfig {
        name: query.name,
        url: url?,
        promql: query.promql,
        metric,
        interval: Duration::from_secs(query.interval_secs),
        timeout: Duration::from_secs(query.timeout_secs),
        bearer,
        tls,
        max_series: query.max_series,
        range,
    })
}

/// TLS options of a source or query.
fn tls_options(
    problems: &mut Problems,
    path: &str,
    tls: Option<super::raw::RawTls>,
    url: Option<&Url>,
    base_dir: &Path,
) -> TlsOptions {
    let Some(tls) = tls else {
        return TlsOptions::default();
    };
    if url.is_some_and(|url| url.scheme() != "https") {
        problems.push(path, "only applies to an `https` URL");
    }
    let client_cert = match (tls.cert_file, tls.key_file) {
        (Some(cert), Some(key)) => Some(ClientCert {
            cert_file: base_dir.join(cert),
            key_file: base_dir.join(key),
        }),
        (None, None) => None,
        _ => {
            problems.push(path, "set both `cert_file` and `key_file`, or neither");
            None
        }
    };
    TlsOptions {
        ca_file: tls.ca_file.map(|file| base_dir.join(file)),
        client_cert,
        insecure_skip_verify: tls.insecure_skip_verify,
    }
}

/// A metric name as the text format allows it.
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_' || first == ':')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

/// A Prometheus label name that is not reserved (`__` prefixes are Prometheus' own).
pub(super) fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        && !name.starts_with("__")
}

/// Checks a selector: it parses and names a metric. `None` when it does not (the problem is
/// reported).
pub(super) fn check_selector(
    problems: &mut Problems,
    path: &str,
    selector: String,
) -> Option<Selector> {
    match Selector::parse(selector.as_str()) {
        Ok(parsed) => Some(parsed),
        Err(SelectorError::NoMetricName { .. }) => {
            problems.push(path, format!("`{selector}` must start with a metric name"));
            None
        }
        Err(error) => {
            problems.push(path, format!("`{selector}` is not a selector: {error}"));
            None
        }
    }
}

/// The reading fields a threshold or anomaly detector sets (exactly one reading).
pub(super) struct ReadingFields {
    pub(super) value: Option<String>,
    pub(super) rate: Option<String>,
    pub(super) quantile: Option<f64>,
    pub(super) buckets: Option<String>,
    pub(super) ratio: Option<[String; 2]>,
    pub(super) mean: Option<[String; 2]>,
    pub(super) hours_left: Option<[String; 2]>,
    pub(super) window_secs: i64,
}

/// The one reading of a detector at `path`; `None` (reported) when none, several, or one
/// whose selectors do not parse is set.
pub(super) fn check_reading(
    problems: &mut Problems,
    path: &str,
    fields: ReadingFields,
) -> Option<vigil_core::detector::reading::Reading> {
    use vigil_core::detector::reading::Reading;
    let window_secs = fields.window_secs;
    // One entry per reading set, `None` where its selectors did not parse.
    let mut readings = Vec::new();
    if let Some(selector) = fields.value {
        let selector = check_selector(problems, &format!("{path}.value"), selector);
        readings.push(selector.map(|selector| Reading::Value { selector }));
    }
    if let Some(selector) = fields.rate {
        let selector = check_selector(problems, &format!("{path}.rate"), selector);
        readings.push(selector.map(|selector| Reading::Rate {
            selector,
            window_secs,
        }));
    }
    if let Some(quantile) = fields.quantile
        && !(quantile > 0.0 && quantile < 1.0)
    {
        problems.push(
            format!("{path}.quantile"),
            format!("must be between 0 and 1 exclusive (0.95 for p95), found `{quantile}`"),
        );
    }
    match (fields.quantile, fields.buckets) {
        (Some(quantile), Some(selector)) => {
            let selector = check_selector(problems, &format!("{path}.buckets"), selector);
            readings.push(selector.map(|selector| Reading::Quantile {
                selector,
                quantile,
                window_secs,
            }));
        }
        (Some(_), None) => problems.push(
            format!("{path}.buckets"),
            "`quantile` needs `buckets`: the histogram's `_bucket` series",
        ),
        (None, Some(_)) => problems.push(format!("{path}.quantile"), "`buckets` needs `quantile`"),
        (None, None) => {}
    }
    if let Some([numerator, denominator]) = fields.ratio {
        let numerator = check_selector(problems, &format!("{path}.ratio[0]"), numerator);
        let denominator = check_selector(problems, &format!("{path}.ratio[1]"), denominator);
        readings.push(
            numerator
                .zip(denominator)
                .map(|(numerator, denominator)| Reading::Ratio {
                    numerator,
                    denominator,
                    window_secs,
                }),
        );
    }
    if let Some([remaining, spend]) = fields.hours_left {
        let remaining = check_selector(problems, &format!("{path}.hours_left[0]"), remaining);
        let spend = check_selector(problems, &format!("{path}.hours_left[1]"), spend);
        readings.push(
            remaining
                .zip(spend)
                .map(|(remaining, spend)| Reading::HoursLeft {
                    remaining,
                    spend,
                    window_secs,
                }),
        );
    }
    if let Some([sum, count]) = fields.mean {
        let sum = check_selector(problems, &format!("{path}.mean[0]"), sum);
        let count = check_selector(problems, &format!("{path}.mean[1]"), count);
        readings.push(
            sum.zip(count)
                .map(|(sum, count)| Reading::Mean { sum, count }),
        );
    }
    if readings.len() != 1 {
        problems.push(
            path,
            format!(
                "set exactly one reading of `value`, `rate`, `quantile` (with `buckets`), `ratio`, `hours_left` and `mean`; found {}",
                readings.len()
            ),
        );
    }
    if window_secs <= 0 {
        problems.push(format!("{path}.window_secs"), "must be at least 1");
    }
    readings.into_iter().next().flatten()
}

fn validate_threshold(
    problems: &mut Problems,
    path: &str,
    raw: super::raw::RawThreshold,
) -> Option<DetectorConfig> {
    use vigil_core::detector::threshold::{Bound, ThresholdConfig};
    if raw.name.trim().is_empty() {
        problems.push(format!("{path}.name"), "must not be empty");
    }
    let reading = check_reading(
        problems,
        path,
        ReadingFields {
            value: raw.value,
            rate: raw.rate,
            quantile: raw.quantile,
            buckets: raw.buckets,
            ratio: raw.ratio,
            mean: raw.mean,
            hours_left: raw.hours_left,
            window_secs: raw.window_secs,
        },
    );
    let (bound, fire) = match (raw.above, raw.below) {
        (Some(fire), None) => (Bound::Above, fire),
        (None, Some(fire)) => (Bound::Below, fire),
        _ => {
            problems.push(path, "set exactly one of `above` and `below`");
            (Bound::Above, f64::NAN)
        }
    };
    if fire.is_nan() {
        // Already reported: no firing level to compare `clear` with.
    } else if !fire.is_finite() || !raw.clear.is_finite() {
        problems.push(path, "the levels must be numbers");
    } else if (bound == Bound::Above && raw.clear > fire)
        || (bound == Bound::Below && raw.clear < fire)
    {
        problems.push(
            format!("{path}.clear"),
            format!(
                "must be on the good side of the firing level {fire}: {} it",
                if bound == Bound::Above {
                    "at most"
                } else {
                    "at least"
                }
            ),
        );
    }
    for (key, value) in [
        ("fire_after_samples", raw.fire_after_samples),
        ("clear_after_samples", raw.clear_after_samples),
    ] {
        if value == 0 {
            problems.push(format!("{path}.{key}"), "must be at least 1");
        }
    }
    if raw.severity == Severity::Info {
        problems.push(format!("{path}.severity"), "must be `page` or `ticket`");
    }
    if raw.max_groups == 0 {
        problems.push(format!("{path}.max_groups"), "must be at least 1");
    }
    // With no reading, or one whose selectors did not parse, the problem is reported.
    let reading = reading?;
    Some(DetectorConfig::Threshold(ThresholdConfig {
        name: raw.name,
        source: raw.source,
        reading,
        describe: raw.describe,
        group_by: raw.group_by,
        bound,
        fire,
        clear: raw.clear,
        fire_after_samples: raw.fire_after_samples,
        clear_after_samples: raw.clear_after_samples,
        severity: raw.severity,
        max_groups: raw.max_groups,
    }))
}

fn validate_burn_rate(
    problems: &mut Problems,
    path: &str,
    burn: super::raw::RawBurnRate,
) -> Option<DetectorConfig> {
    if burn.name.trim().is_empty() {
        problems.push(format!("{path}.name"), "must not be empty");
    }
    let bad = check_selector(problems, &format!("{path}.bad"), burn.bad);
    let total = check_selector(problems, &format!("{path}.total"), burn.total);
    if !(burn.objective > 0.0 && burn.objective < 1.0) {
        problems.push(
            format!("{path}.objective"),
            format!(
                "must be between 0 and 1 exclusive (0.999 for 99.9%), found `{}`",
                burn.objective
            ),
        );
    }
    if burn.period_days == 0 {
        problems.push(format!("{path}.period_days"), "must be at least 1");
    }
    if burn.max_groups == 0 {
        problems.push(format!("{path}.max_groups"), "must be at least 1");
    }
    let period_secs = i64::from(burn.period_days) * 86_400;
    let rules = match burn.rules {
        None => BurnRule::workbook(period_secs),
        Some(rules) => {
            if rules.is_empty() {
                problems.push(
                    format!("{path}.rules"),
                    "list at least one rule, or leave it out",
                );
            }
            rules
                .into_iter()
                .enumerate()
                .map(|(idx, rule)| {
                    let rule_path = format!("{path}.rules[{idx}]");
                    if rule.short_secs <= 0 || rule.long_secs <= rule.short_secs {
                        problems.push(
                            rule_path.clone(),
                            "needs 0 < short_secs < long_secs: the short window resets the alert",
                        );
                    }
                    if !(rule.burn_rate.is_finite() && rule.burn_rate > 0.0) {
                        problems.push(format!("{rule_path}.burn_rate"), "must be above 0");
                    }
                    if rule.severity == Severity::Info {
                        problems.push(
                            format!("{rule_path}.severity"),
                            "must be `page` or `ticket`",
                        );
                    }
                    BurnRule {
                        severity: rule.severity,
                        long_secs: rule.long_secs,
                        short_secs: rule.short_secs,
                        burn_rate: rule.burn_rate,
                    }
                })
                .collect()
        }
    };
    let shortest_secs = rules
        .iter()
        .map(|rule| rule.short_secs)
        .min()
        .unwrap_or(60)
        .max(1);
    let bucket_ms = match burn.bucket_secs {
        Some(0) => {
            problems.push(format!("{path}.bucket_secs"), "must be at least 1");
            1000
        }
        Some(secs) => i64::try_from(secs)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000),
        None => (shortest_secs * 1000 / 10).max(1000),
    };
    if bucket_ms > shortest_secs.saturating_mul(1000) {
        problems.push(
            format!("{path}.bucket_secs"),
            format!("must not exceed the shortest window ({shortest_secs} s)"),
        );
    }
    let (bad, total) = bad.zip(total)?;
    Some(DetectorConfig::BurnRate(BurnRateConfig {
        name: burn.name,
        source: burn.source,
        bad,
        total,
        group_by: burn.group_by,
        objective: burn.objective,
        period_secs,
        rules,
        bucket_ms,
        max_groups: burn.max_groups,
    }))
}

fn validate_spike(
    problems: &mut Problems,
    path: &str,
    spike: super::raw::RawSpike,
) -> DetectorConfig {
    let unit = match spike.unit.as_deref() {
        None | Some("tokens") => RateUnit::Tokens,
        Some("requests") => RateUnit::Requests,
        Some("usd") => RateUnit::Usd,
        Some(other) => {
            problems.push(
                format!("{path}.unit"),
                format!(
                    "must be `tokens`, `requests` or `usd` (what the metric counts), found `{}`",
                    other.escape_debug()
                ),
            );
            RateUnit::Tokens
        }
    };
    if spike.season_secs < 0 {
        problems.push(
            format!("{path}.season_secs"),
            "must be 0 (off) or a period in seconds (86400 for a day)",
        );
    }
    let mut positive = |key: &str, value: f64| {
        if !(value.is_finite() && value > 0.0) {
            problems.push(
                format!("{path}.{key}"),
                format!("must be a number above 0, found `{value}`"),
            );
        }
    };
    positive("baseline_half_life_secs", spike.baseline_half_life_secs);
    positive("fire_z", spike.fire_z);
    positive("fire_ratio", spike.fire_ratio);
    positive("clear_ratio", spike.clear_ratio);
    positive("page_ratio", spike.page_ratio);
    if !(spike.min_rate_per_sec.is_finite() && spike.min_rate_per_sec >= 0.0) {
        problems.push(
            format!("{path}.min_rate_per_sec"),
            "must be a number of at least 0",
        );
    }
    if !(spike.noise_floor_ratio.is_finite() && spike.noise_floor_ratio >= 0.0) {
        problems.push(
            format!("{path}.noise_floor_ratio"),
            "must be a number of at least 0",
        );
    }
    if spike.fire_ratio <= 1.0 {
        problems.push(
            format!("{path}.fire_ratio"),
            "must be above 1: a spike is a multiple of normal",
        );
    }
    if spike.clear_ratio >= spike.fire_ratio {
        problems.push(
            format!("{path}.clear_ratio"),
            format!(
                "must be below `fire_ratio` ({}) so that firing and clearing differ",
                spike.fire_ratio
            ),
        );
    }
    for (key, value) in [
        ("warmup_samples", spike.warmup_samples),
        ("fire_after_samples", spike.fire_after_samples),
        ("clear_after_samples", spike.clear_after_samples),
    ] {
        if value == 0 {
            problems.push(format!("{path}.{key}"), "must be at least 1");
        }
    }
    if spike.max_groups == 0 {
        problems.push(format!("{path}.max_groups"), "must be at least 1");
    }
    if spike.name.trim().is_empty() {
        problems.push(format!("{path}.name"), "must not be empty");
    }
    DetectorConfig::Spike(SpikeConfig {
        name: spike.name,
        source: spike.source,
        metric: spike.metric,
        read: spike.read,
        unit,
        group_by: spike.group_by,
        alias_label: spike.alias_label,
        team_label: spike.team_label,
        ignore_values: spike.ignore_values,
        max_groups: spike.max_groups,
        thresholds: SpikeThresholds {
            warmup_samples: spike.warmup_samples,
            baseline_half_life_secs: spike.baseline_half_life_secs,
            fire_z: spike.fire_z,
            fire_ratio: spike.fire_ratio,
            min_rate_per_sec: spike.min_rate_per_sec,
            fire_after_samples: spike.fire_after_samples,
            clear_ratio: spike.clear_ratio,
            clear_after_samples: spike.clear_after_samples,
            noise_floor_ratio: spike.noise_floor_ratio,
            page_ratio: spike.page_ratio,
            season_secs: spike.season_secs,
            run_evidence: spike.run_evidence,
            season_memory: spike.season_memory,
        },
    })
}

pub(super) fn secret(
    problems: &mut Problems,
    path: &str,
    raw: RawSecret,
    base_dir: &Path,
) -> SecretSource {
    match (raw.env, raw.file) {
        (Some(name), None) => {
            if name.trim().is_empty() {
                problems.push(format!("{path}.env"), "must name a variable");
            }
            SecretSource::Env(name)
        }
        (None, Some(file)) => SecretSource::File(base_dir.join(file)),
        (Some(_), Some(_)) => {
            problems.push(path, "set either `env` or `file`, not both");
            SecretSource::Env(String::new())
        }
        (None, None) => {
            problems.push(path, "set `env` (a variable name) or `file` (a path)");
            SecretSource::Env(String::new())
        }
    }
}

pub(super) fn http_url(problems: &mut Problems, path: &str, text: &str) -> Option<Url> {
    match Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        Ok(_) => {
            problems.push(
                path,
                format!("`{text}` must be an http or https URL with a host"),
            );
            None
        }
        Err(error) => {
            problems.push(path, format!("`{text}` is not a URL: {error}"));
            None
        }
    }
}

fn origin_of(url: &Url) -> Url {
    let mut origin = url.clone();
    origin.set_path("/");
    origin.set_query(None);
    origin.set_fragment(None);
    origin
}
