//! Prometheus Alertmanager's webhook notifications, payload version 4
//! (`POST /v1/push/alertmanager`, configured as a `webhook_config` receiver).
//!
//! The shape is Alertmanager's `notify/webhook` `Message`: its template `Data` plus
//! `version`, `groupKey` and `truncatedAlerts`:
//!
//! ```json
//! {
//!   "version": "4",
//!   "groupKey": "{}/{severity=\"page\"}:{alertname=\"LLMErrorBurst\"}",
//!   "truncatedAlerts": 0,
//!   "status": "firing",
//!   "receiver": "vigil",
//!   "groupLabels": { "alertname": "LLMErrorBurst" },
//!   "commonLabels": { "alertname": "LLMErrorBurst", "severity": "page" },
//!   "commonAnnotations": { "summary": "gateway errors above 5%" },
//!   "externalURL": "http://alertmanager:9093",
//!   "alerts": [
//!     {
//!       "status": "firing",
//!       "labels": { "alertname": "LLMErrorBurst", "severity": "page", "model": "gpt-4o" },
//!       "annotations": { "summary": "gateway errors above 5%" },
//!       "startsAt": "2026-03-01T11:58:30.123456789Z",
//!       "endsAt": "0001-01-01T00:00:00Z",
//!       "generatorURL": "http://prometheus:9090/graph?g0.expr=...",
//!       "fingerprint": "c6eadffa33fcdf37"
//!     }
//!   ]
//! }
//! ```
//!
//! `version` must be `"4"`; nothing else is read when it is not. `status`, `receiver`,
//! `groupKey` and `alerts` are required, and so are each alert's `status`, `labels` and
//! `startsAt`. The other fields default to empty when absent. Unknown fields are ignored,
//! because Alertmanager (and Grafana, which sends the same shape with extras such as
//! `orgId`) adds fields over time. Times are RFC 3339; Go's zero time
//! `0001-01-01T00:00:00Z` in `endsAt` means "not set". At most [`MAX_ALERTS`] alerts.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::json::{self, Walker};
use super::{IntakeError, evals, rfc3339};
use crate::signal::Labels;
use crate::time::Timestamp;

/// The most alerts one notification may carry.
pub const MAX_ALERTS: usize = 5_000;

/// The webhook payload version this parser reads.
pub const SUPPORTED_VERSION: &str = "4";

/// One Alertmanager notification: a group of alerts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertBatch {
    /// The receiver that sent it.
    pub receiver: String,
    /// `firing` when at least one alert of the group fires.
    pub status: AlertStatus,
    /// The group's key (identifies the group across notifications).
    pub group_key: String,
    /// The labels the group is formed by.
    pub group_labels: Labels,
    /// The labels every alert shares.
    pub common_labels: Labels,
    /// The annotations every alert shares.
    pub common_annotations: Labels,
    /// Alertmanager's own URL.
    pub external_url: String,
    /// How many alerts Alertmanager left out because of the receiver's `max_alerts`.
    pub truncated_alerts: u64,
    /// The alerts.
    pub alerts: Vec<Alert>,
}

/// One alert of a notification.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Whether it fires or has resolved.
    pub status: AlertStatus,
    /// Its labels (`alertname`, `severity`, ...).
    pub labels: Labels,
    /// Its annotations (`summary`, `description`, ...).
    pub annotations: Labels,
    /// When it started firing.
    pub starts_at: Timestamp,
    /// When it resolved or will resolve; `None` when Alertmanager sent the zero time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    /// The URL of the rule that produced it.
    pub generator_url: String,
    /// Alertmanager's fingerprint of its label set.
    pub fingerprint: String,
}

impl Alert {
    /// The `alertname` label, or `""`.
    #[must_use]
    pub fn name(&self) -> &str {
        self.labels.get("alertname").unwrap_or_default()
    }

    /// The `severity` label, or `""`.
    #[must_use]
    pub fn severity(&self) -> &str {
        self.labels.get("severity").unwrap_or_default()
    }

    /// What the alert is about: the first of [`ALERT_SUBJECT_LABELS`] it carries with a value
    /// (not empty, not LiteLLM's `None`), as that label and its value.
    #[must_use]
    pub fn subject(&self) -> Option<(&'static str, &str)> {
        ALERT_SUBJECT_LABELS.iter().find_map(|label| {
            let value = self.labels.get(label)?.trim();
            (!value.is_empty() && value != "None").then_some((*label, value))
        })
    }
}

/// The label of `vigil_alert_firing` that says what an alert is about, as `label=value`
/// (`vector_store=qdrant`).
pub const ALERT_SUBJECT_LABEL: &str = "subject";

/// The labels that say what an alert is about, most specific first: the store or the
/// deployment an alert names is what it is about, even when it also names the app that
/// suffers. These are the labels the topology reads as nodes.
pub const ALERT_SUBJECT_LABELS: [&str; 19] = [
    "vector_store",
    "retrieval",
    "index",
    "db_system",
    "cache",
    "model_id",
    "deployment",
    "api_provider",
    "provider",
    "model_group",
    "model_name",
    "model",
    "hashed_api_key",
    "prompt",
    "agent",
    "suite",
    "service",
    "app",
    "application",
];

/// An alert's or a group's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Firing.
    Firing,
    /// Resolved.
    Resolved,
}

impl AlertStatus {
    /// The name used on the wire and in labels.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// Parses and validates an Alertmanager webhook notification, reporting every problem with
/// its path.
pub fn parse_alertmanager(body: &[u8]) -> Result<AlertBatch, IntakeError> {
    let root = json::parse(body)?;
    let mut walker = Walker::default();
    let batch = notification(&mut walker, &root);
    // INVARIANT: `notification` records a problem whenever it returns `None`, so `finish`
    // fails first; the fallback only keeps this total.
    walker
        .finish(batch)?
        .ok_or_else(|| IntakeError::single("", "unreadable notification"))
}

fn notification(walker: &mut Walker, root: &Value) -> Option<AlertBatch> {
    let map = walker.object(root, "")?;
    let version = walker.field(map, "", "version", Walker::any_text)?;
    if version != SUPPORTED_VERSION {
        walker.report(
            "version",
            format!(
                "unsupported webhook payload version `{}`; vigil reads Alertmanager's version `{SUPPORTED_VERSION}`",
                version.chars().take(16).collect::<String>().escape_debug()
            ),
        );
        return None;
    }
    let status = walker.field(map, "", "status", status);
    let receiver = walker.field(map, "", "receiver", Walker::any_text);
    let group_key = walker.field(map, "", "groupKey", Walker::any_text);
    let group_labels = walker.optional_field(map, "", "groupLabels", Walker::string_map);
    let common_labels = walker.optional_field(map, "", "commonLabels", Walker::string_map);
    let common_annotations =
        walker.optional_field(map, "", "commonAnnotations", Walker::string_map);
    let external_url = walker.optional_field(map, "", "externalURL", Walker::any_text);
    let truncated_alerts = walker.optional_field(map, "", "truncatedAlerts", Walker::count);
    let items = walker.field(map, "", "alerts", |walker, value, path| {
        walker.array(value, path, MAX_ALERTS)
    });
    let mut alerts = Vec::new();
    for (idx, item) in items.unwrap_or_default().iter().enumerate() {
        if let Some(alert) = alert(walker, item, &json::index("alerts", idx)) {
            alerts.push(alert);
        }
    }
    Some(AlertBatch {
        receiver: receiver?.to_owned(),
        status: status?,
        group_key: group_key?.to_owned(),
        group_labels: group_labels?.unwrap_or_default(),
        common_labels: common_labels?.unwrap_or_default(),
        common_annotations: common_annotations?.unwrap_or_default(),
        external_url: external_url?.unwrap_or_default().to_owned(),
        truncated_alerts: truncated_alerts?.unwrap_or_default(),
        alerts,
    })
}

fn alert(walker: &mut Walker, value: &Value, path: &str) -> Option<Alert> {
    let map = walker.object(value, path)?;
    let status = walker.field(map, path, "status", status);
    let labels = walker.field(map, path, "labels", Walker::string_map);
    let annotations = walker.optional_field(map, path, "annotations", Walker::string_map);
    let starts_at = walker.field(map, path, "startsAt", evals::time);
    let ends_at = walker.optional_field(map, path, "endsAt", evals::time);
    let generator_url = walker.optional_field(map, path, "generatorURL", Walker::any_text);
    let fingerprint = walker.optional_field(map, path, "fingerprint", Walker::any_text);
    Some(Alert {
        status: status?,
        labels: labels?,
        annotations: annotations?.unwrap_or_default(),
        starts_at: starts_at?,
        ends_at: ends_at?.filter(|ends_at| *ends_at != go_zero_time()),
        generator_url: generator_url?.unwrap_or_default().to_owned(),
        fingerprint: fingerprint?.unwrap_or_default().to_owned(),
    })
}

fn status(walker: &mut Walker, value: &Value, path: &str) -> Option<AlertStatus> {
    match walker.any_text(value, path)? {
        "firing" => Some(AlertStatus::Firing),
        "resolved" => Some(AlertStatus::Resolved),
        _ => {
            walker.report(path, "must be `firing` or `resolved`");
            None
        }
    }
}

/// Go's zero `time.Time`, `0001-01-01T00:00:00Z`, which Alertmanager sends for "not set".
fn go_zero_time() -> Timestamp {
    Timestamp(rfc3339::days_from_civil(1, 1, 1) * 86_400_000)
}
