//! Expected activity: a rhythm seen on earlier days, or work announced beforehand.
//!
//! The engine keeps a bounded [`Memory`] (sessions whose diagnosis has a
//! [`DemandConfig`]):
//! - **the times each finding fired** (by fingerprint), for `rhythm_lookback_days` days, at
//!   most [`MAX_FIRES_PER_FINGERPRINT`] per fingerprint and [`MAX_FINGERPRINTS`]
//!   fingerprints. A finding that fired at the same time of day (within
//!   `rhythm_tolerance_ms`) on at least `rhythm_min_days` earlier days repeats a rhythm (a
//!   nightly batch, a morning report). One earlier day is enough by default: the spike
//!   detector's own seasonal memory also takes a single day as the rhythm of an hour.
//! - **announcements of planned work** from Alertmanager: a firing alert whose `alertname`,
//!   compared without case, `_`, `-` and spaces, contains one of `planned_work_alertnames`
//!   (`LoadTest`, `PlannedWork`, `Maintenance`, `GameDay`, `StressTest` by default), or that
//!   carries a label or annotation `planned: "true"`. It covers what its labels name: a key
//!   (`hashed_api_key`, `api_key`, `key` equal to the finding's key; `key_alias` or
//!   `api_key_alias` equal to its alias), a team (`team`), or any label the finding's
//!   subject is grouped by with the same value (`model_group: gpt-4o`). An announcement
//!   whose labels name none of these covers what its annotations name: a subject whose key
//!   or alias appears in them as a word. It holds from its `startsAt` (up to
//!   [`ANNOUNCEMENT_LEAD_MS`] before it, for work that starts a little before the alert
//!   does) until it resolves, and for at most [`ANNOUNCEMENT_MAX_MS`] after its latest
//!   notification.
//!
//! Either makes the finding `expected_activity`, ranked first and citing the earlier
//! occurrences or the announcement: the engine holds such an incident (noted, not acted on,
//! not paged) until its finding clears.

use std::collections::{BTreeMap, VecDeque};

use crate::detector::Finding;
use crate::intake::alertmanager::{Alert, AlertBatch, AlertStatus};
use crate::signal::Labels;
use crate::time::Timestamp;
use crate::topology::Layer;

use super::demand::DemandConfig;
use super::{Diagnosis, Fact, Hypothesis, HypothesisKind};

/// At most this many fire times are kept per fingerprint.
pub const MAX_FIRES_PER_FINGERPRINT: usize = 32;

/// At most this many fingerprints are remembered (the one fired longest ago goes first).
pub const MAX_FINGERPRINTS: usize = 4096;

/// At most this many announcements are kept (the oldest goes first).
pub const MAX_ANNOUNCEMENTS: usize = 256;

/// An announcement covers findings from this long before its alert started firing.
pub const ANNOUNCEMENT_LEAD_MS: i64 = 15 * 60 * 1000;

/// An announcement not renewed for this long lapses.
pub const ANNOUNCEMENT_MAX_MS: i64 = 24 * 3600 * 1000;

const DAY_MS: i64 = 86_400_000;

/// One announcement of planned work.
#[derive(Clone, Debug, PartialEq)]
pub struct Announcement {
    /// The alert's name.
    pub alertname: String,
    /// Its labels.
    pub labels: Labels,
    /// Its annotations.
    pub annotations: Labels,
    /// When it started firing.
    pub starts_at: Timestamp,
    /// When it resolved, once it has.
    pub resolved_at: Option<Timestamp>,
    /// When its latest notification came.
    pub seen_at: Timestamp,
}

/// What the engine remembers for recognising expected activity.
#[derive(Clone, Debug, Default)]
pub struct Memory {
    fires: BTreeMap<String, VecDeque<Timestamp>>,
    announcements: BTreeMap<String, Announcement>,
}

/// Why a finding is expected.
#[derive(Clone, Debug, PartialEq)]
pub enum Expected {
    /// It fired at about this time on earlier days: one time per day, the latest first.
    Rhythm(Vec<Timestamp>),
    /// Work was announced for it.
    Announced(Announcement),
}

impl Memory {
    /// The earlier fires of `fingerprint` at the same time of day as `at`, one per earlier
    /// day (the nearest), latest first; empty unless there are at least `rhythm_min_days`.
    #[must_use]
    pub fn rhythm(
        &self,
        config: &DemandConfig,
        fingerprint: &str,
        at: Timestamp,
    ) -> Vec<Timestamp> {
        let Some(fires) = self.fires.get(fingerprint) else {
            return Vec::new();
        };
        let mut by_day: BTreeMap<i64, (i64, Timestamp)> = BTreeMap::new();
        for earlier in fires {
            let age = at.millis_since(*earlier);
            let days = (age + DAY_MS / 2).div_euclid(DAY_MS);
            let off = (age - days * DAY_MS).abs();
            if days < 1 || days > i64::from(config.rhythm_lookback_days) {
                continue;
            }
            if off > config.rhythm_tolerance_ms {
                continue;
            }
            let nearer = by_day.get(&days).is_none_or(|(known, _)| off < *known);
            if nearer {
                by_day.insert(days, (off, *earlier));
            }
        }
        if by_day.len() < config.rhythm_min_days.max(1) as usize {
            return Vec::new();
        }
        by_day.values().map(|(_, earlier)| *earlier).collect()
    }

    /// Remembers that `fingerprint` fired at `at`, forgetting what is past the lookback.
    pub fn note_fire(&mut self, config: &DemandConfig, fingerprint: &str, at: Timestamp) {
        let lookback_ms = i64::from(config.rhythm_lookback_days)
            .saturating_add(1)
            .saturating_mul(DAY_MS);
        let fires = self.fires.entry(fingerprint.to_owned()).or_default();
        fires.push_back(at);
        while fires.len() > MAX_FIRES_PER_FINGERPRINT
            || fires
                .front()
                .is_some_and(|first| at.millis_since(*first) > lookback_ms)
        {
            fires.pop_front();
        }
        self.fires.retain(|_, fires| {
            fires
                .back()
                .is_some_and(|last| at.millis_since(*last) <= lookback_ms)
        });
        while self.fires.len() > MAX_FINGERPRINTS {
            let oldest = self
                .fires
                .iter()
                .min_by_key(|(name, fires)| (fires.back().copied(), (*name).clone()))
                .map(|(name, _)| name.clone());
            match oldest {
                Some(name) => self.fires.remove(&name),
                None => break,
            };
        }
    }

    /// Reads a notification's announcements of planned work.
    pub fn note_alerts(&mut self, config: &DemandConfig, batch: &AlertBatch, now: Timestamp) {
        for alert in &batch.alerts {
            if !announces(config, alert) {
                continue;
            }
            let id = if alert.fingerprint.is_empty() {
                format!("{}/{:?}", alert.name(), alert.labels)
            } else {
                alert.fingerprint.clone()
            };
            let resolved_at = match alert.status {
                AlertStatus::Firing => None,
                AlertStatus::Resolved => Some(alert.ends_at.unwrap_or(now)),
            };
            self.announcements.insert(
                id,
                Announcement {
                    alertname: alert.name().to_owned(),
                    labels: alert.labels.clone(),
                    annotations: alert.annotations.clone(),
                    starts_at: alert.starts_at,
                    resolved_at,
                    seen_at: now,
                },
            );
        }
        self.announcements
            .retain(|_, known| now.millis_since(known.seen_at) <= ANNOUNCEMENT_MAX_MS);
        while self.announcements.len() > MAX_ANNOUNCEMENTS {
            let oldest = self
                .announcements
                .iter()
                .min_by_key(|(id, known)| (known.seen_at, (*id).clone()))
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => self.announcements.remove(&id),
                None => break,
            };
        }
    }

    /// The announcement that covers `finding` at its moment, if any (the latest started).
    #[must_use]
    pub fn announcement_for(&self, finding: &Finding) -> Option<&Announcement> {
        let at = finding.raised_at;
        self.announcements
            .values()
            .filter(|known| {
                known.starts_at.0.saturating_sub(ANNOUNCEMENT_LEAD_MS) <= at.0
                    && known.resolved_at.is_none_or(|resolved| at <= resolved)
                    && at.millis_since(known.seen_at) <= ANNOUNCEMENT_MAX_MS
                    && covers(known, finding)
            })
            .max_by_key(|known| known.starts_at)
    }
}

/// Lower case without `_`, `-` and spaces.
fn normalized(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '_' | '-' | ' '))
        .flat_map(char::to_lowercase)
        .collect()
}

fn is_true(value: Option<&str>) -> bool {
    value.is_some_and(|value| matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "yes"))
}

/// Whether an alert announces planned work (see the module docs).
#[must_use]
pub fn announces(config: &DemandConfig, alert: &Alert) -> bool {
    let name = normalized(alert.name());
    let named = config
        .planned_work_alertnames
        .iter()
        .map(|known| normalized(known))
        .any(|known| !known.is_empty() && name.contains(&known));
    named || is_true(alert.labels.get("planned")) || is_true(alert.annotations.get("planned"))
}

const KEY_LABELS: [&str; 3] = ["hashed_api_key", "api_key", "key"];
const ALIAS_LABELS: [&str; 2] = ["key_alias", "api_key_alias"];
const TEAM_LABELS: [&str; 2] = ["team", "team_id"];

/// Whether an announcement covers the finding's subject (see the module docs).
fn covers(announcement: &Announcement, finding: &Finding) -> bool {
    let subject = &finding.subject;
    if subject.value.is_empty() {
        return false;
    }
    let labels = &announcement.labels;
    let mut scoped = false;
    for label in KEY_LABELS {
        if let Some(value) = labels.get(label) {
            scoped = true;
            if value == subject.value {
                return true;
            }
        }
    }
    for label in ALIAS_LABELS {
        if let Some(value) = labels.get(label) {
            scoped = true;
            if subject.alias.as_deref() == Some(value) {
                return true;
            }
        }
    }
    for label in TEAM_LABELS {
        if let Some(value) = labels.get(label) {
            scoped = true;
            if subject.team.as_deref() == Some(value) {
                return true;
            }
        }
    }
    if let Some(value) = labels.get(&subject.label) {
        scoped = true;
        if value == subject.value {
            return true;
        }
    }
    if scoped {
        return false;
    }
    let names: Vec<&str> = [Some(subject.value.as_str()), subject.alias.as_deref()]
        .into_iter()
        .flatten()
        .filter(|name| !name.is_empty())
        .collect();
    announcement.annotations.iter().any(|(_, text)| {
        text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_' || c == '.'))
            .any(|word| names.contains(&word))
    })
}

/// The finding's diagnosis with `expected_activity` first, citing why.
#[must_use]
pub fn recognise(mut diagnosis: Diagnosis, finding: &Finding, expected: &Expected) -> Diagnosis {
    let name = finding.subject.display_name();
    let own = diagnosis
        .best()
        .map(|best| best.kind.as_str().replace('_', " "))
        .unwrap_or_default();
    let (confidence, evidence, why) = match expected {
        Expected::Rhythm(earlier) => {
            let times: Vec<String> = earlier.iter().map(|at| at.to_rfc3339()).collect();
            (
                0.9,
                vec![
                    format!(
                        "{} fired at about this time of day on {} earlier day{}: {}",
                        finding.fingerprint,
                        earlier.len(),
                        if earlier.len() == 1 { "" } else { "s" },
                        times.join(", ")
                    ),
                    format!("without the rhythm it would read as {own}"),
                ],
                format!(
                    "This repeats a rhythm: {name} did the same at about this time on {} earlier \
                     day{} ({}). vigil treats it as expected activity (a scheduled job): noted, \
                     not acted on, nobody paged. If this job should not run, stop it at its \
                     schedule.",
                    earlier.len(),
                    if earlier.len() == 1 { "" } else { "s" },
                    times.join(", ")
                ),
            )
        }
        Expected::Announced(announcement) => {
            let summary = announcement
                .annotations
                .get("summary")
                .or_else(|| announcement.annotations.get("description"))
                .map(|text| format!(": {text}"))
                .unwrap_or_default();
            (
                0.95,
                vec![
                    format!(
                        "alert {} announced planned work since {}{summary}",
                        announcement.alertname,
                        announcement.starts_at.to_rfc3339()
                    ),
                    format!("without the announcement it would read as {own}"),
                ],
                format!(
                    "Planned work was announced for {name} (alert {}{summary}). vigil treats \
                     this as expected activity: noted, not acted on, nobody paged. It is \
                     watched again once the announcement resolves.",
                    announcement.alertname
                ),
            )
        }
    };
    let hypothesis = Hypothesis {
        kind: HypothesisKind::ExpectedActivity,
        subject: Some(finding.subject.clone()),
        confidence,
        evidence,
        change: None,
        layer: Some(Layer::Gateway),
        support: match expected {
            Expected::Rhythm(_) => Vec::new(),
            Expected::Announced(announcement) => vec![Fact {
                layer: Layer::Evals,
                text: format!("Alertmanager: {} is firing", announcement.alertname),
            }],
        },
        against: Vec::new(),
    };
    diagnosis.hypotheses.insert(0, hypothesis);
    diagnosis.why = format!("{why} {}", diagnosis.why);
    diagnosis
}

#[cfg(test)]
mod tests;
