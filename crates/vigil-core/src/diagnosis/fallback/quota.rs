//! Errors at a provider traced to the keys that drive them (`quota_exhaustion_by_key`): see
//! the [parent module](super) for the rule.

use std::collections::BTreeMap;

use crate::detector::{Finding, Subject};
use crate::diagnosis::{Diagnosis, Fact, Hypothesis, HypothesisKind};
use crate::human::percent;
use crate::human::rate;
use crate::store::SeriesStore;
use crate::time::Timestamp;
use crate::topology::discover::node_of_subject;
use crate::topology::{Layer, NodeKind, Topology};

use super::{FAILURES_METRIC, RATE_WINDOW_MS, REQUESTS_METRIC, rate_of, series_of};

/// The window before the rate window that a key's earlier demand is read over.
const EARLIER_WINDOW_MS: i64 = 3_000_000;
/// How much a key's requests must have grown over its earlier rate to have used a shared
/// quota up.
const MIN_KEY_GROWTH: f64 = 1.5;
/// A key's 429s below this rate are noise.
const MIN_KEY_ERRORS_PER_SEC: f64 = 0.01;

/// One key's part of the provider's 429s.
#[derive(Clone, Debug, Default)]
struct KeyErrors {
    alias: Option<String>,
    team: Option<String>,
    per_sec: f64,
}

pub(super) fn keys_behind_errors(
    mut diagnosis: Diagnosis,
    finding: &Finding,
    store: &SeriesStore,
    topology: &Topology,
    min_share: f64,
) -> Diagnosis {
    let at = finding.raised_at;
    let subject = &finding.subject;
    let mut by_key: BTreeMap<String, KeyErrors> = BTreeMap::new();
    for series in series_of(
        store,
        FAILURES_METRIC,
        &[
            (subject.label.as_str(), subject.value.as_str()),
            ("exception_status", "429"),
        ],
    ) {
        let Some(key) = store
            .label_value(series, "hashed_api_key")
            .filter(|key| *key != "None")
            .map(str::to_owned)
        else {
            continue;
        };
        let per_sec = store.rate(series, RATE_WINDOW_MS, at).unwrap_or(0.0);
        let entry = by_key.entry(key).or_default();
        entry.per_sec += per_sec;
        if entry.alias.is_none() {
            entry.alias = store
                .label_value(series, "api_key_alias")
                .map(str::to_owned);
        }
        if entry.team.is_none() {
            entry.team = store.label_value(series, "team").map(str::to_owned);
        }
    }
    by_key.retain(|_, key| key.per_sec > 0.0);
    let total: f64 = by_key.values().map(|key| key.per_sec).sum();
    // One key alone tells nothing about a shared quota: it could be the provider's outage.
    if total < MIN_KEY_ERRORS_PER_SEC || by_key.len() < 2 {
        return diagnosis;
    }
    // The key whose growing demand used the quota up, when the gateway keeps each key's
    // requests: the provider then answers 429 to every key in proportion to what it sends,
    // so the key with the most 429s may be a big steady one. Else the key with most 429s.
    let grower = grower(store, subject, at, min_share);
    let most_errors = by_key.iter().max_by(|a, b| {
        a.1.per_sec
            .total_cmp(&b.1.per_sec)
            .then_with(|| b.0.cmp(a.0))
    });
    let (key, errors) = match (&grower, most_errors) {
        (Some(grower), _) => {
            let mut errors = by_key.get(&grower.key).cloned().unwrap_or_default();
            errors.alias = errors.alias.or_else(|| grower.alias.clone());
            errors.team = errors.team.or_else(|| grower.team.clone());
            (&grower.key, errors)
        }
        (None, Some((key, errors))) => (key, errors.clone()),
        (None, None) => return diagnosis,
    };
    let share = errors.per_sec / total;
    let name = errors.alias.clone().unwrap_or_else(|| key.clone());
    // The key's share of the requests too, when the gateway reports them per key.
    let key_series = series_of(
        store,
        REQUESTS_METRIC,
        &[
            (subject.label.as_str(), subject.value.as_str()),
            ("hashed_api_key", key.as_str()),
        ],
    );
    let key_requests = rate_of(store, &key_series, at);
    // Its requests before the errors, when the gateway kept them: a key whose demand did
    // not grow is not what used the quota up (a provider answering 429 to everyone hits the
    // biggest key hardest too).
    let before_at = Timestamp(at.0.saturating_sub(RATE_WINDOW_MS));
    let key_requests_before: Option<f64> = key_series
        .iter()
        .map(|&series| observed_rate(store, series, before_at))
        .sum();
    let all_requests = rate_of(
        store,
        &series_of(
            store,
            REQUESTS_METRIC,
            &[(subject.label.as_str(), subject.value.as_str())],
        ),
        at,
    );
    let requests = if key_requests > 0.0 && all_requests > 0.0 {
        format!(
            " and sends {} of its requests",
            percent((key_requests / all_requests).min(1.0))
        )
    } else {
        String::new()
    };
    let split = Fact {
        layer: Layer::Gateway,
        text: format!(
            "of {}'s {} of 429s, key {name} gets {} across {} keys{requests} ({FAILURES_METRIC} \
             by hashed_api_key)",
            subject.value,
            rate(total, "requests/s"),
            percent(share),
            by_key.len()
        ),
    };
    let steady = key_requests_before
        .is_some_and(|before| before > 0.0 && key_requests < before * MIN_KEY_GROWTH);
    if grower.is_none() && (share < min_share || steady) {
        let mut facts = vec![split];
        if steady {
            facts.push(Fact {
                layer: Layer::Gateway,
                text: format!(
                    "key {name}'s requests did not grow ({} now, {} before): it is not \
                     what used the quota up",
                    rate(key_requests, "requests/s"),
                    rate(key_requests_before.unwrap_or(0.0), "requests/s")
                ),
            });
        }
        for hypothesis in &mut diagnosis.hypotheses {
            hypothesis.support.extend(facts.iter().cloned());
        }
        return diagnosis;
    }
    let against = Fact {
        layer: Layer::Gateway,
        text: match &grower {
            Some(grower) => format!(
                "one of our keys ({name}) grew its requests from {} to {}, {} of the growth \
                 in {}'s demand: it uses up the shared quota, and a failover would move the \
                 load, not the cause",
                rate(grower.before, "requests/s"),
                rate(grower.now, "requests/s"),
                percent(grower.share),
                subject.value
            ),
            None => format!(
                "one of our keys ({name}) gets {} of the 429s: it uses up the shared quota, \
                 and a failover would move the load, not the cause",
                percent(share)
            ),
        },
    };
    for other in &mut diagnosis.hypotheses {
        other.against.push(against.clone());
    }
    let mut support = vec![split];
    if grower.is_some() {
        support.push(against.clone());
    }
    if let Some(node) = node_of_subject(&subject.label, &subject.value) {
        let providers: Vec<String> = topology
            .dependencies_within(&node, 2)
            .into_keys()
            .filter(|dependency| dependency.kind == NodeKind::Provider)
            .map(|provider| provider.name)
            .collect();
        if !providers.is_empty() {
            support.push(Fact {
                layer: Layer::Provider,
                text: format!(
                    "{} is served by {}, whose quota the keys share",
                    subject.value,
                    providers.join(", ")
                ),
            });
        }
    }
    diagnosis.why = match &grower {
        Some(grower) => format!(
            "The 429s on {} {} follow one of our own keys' demand: {name} went from {} to {}, \
             {} of the growth. It is using up the shared quota; slowing that key is the fix, \
             not a failover. {}",
            subject.label,
            subject.value,
            rate(grower.before, "requests/s"),
            rate(grower.now, "requests/s"),
            percent(grower.share),
            diagnosis.why
        ),
        None => format!(
            "The 429s on {} {} come mostly from one of our own keys: {name} gets {} of them. \
             It is using up the shared quota; slowing that key is the fix, not a failover. {}",
            subject.label,
            subject.value,
            percent(share),
            diagnosis.why
        ),
    };
    let confidence = grower.as_ref().map_or(share, |grower| grower.share);
    diagnosis.hypotheses.insert(
        0,
        Hypothesis {
            kind: HypothesisKind::QuotaExhaustionByKey,
            subject: Some(Subject {
                label: "hashed_api_key".to_owned(),
                value: key.clone(),
                alias: errors.alias.clone(),
                team: errors.team.clone(),
            }),
            confidence,
            evidence: support.iter().map(|fact| fact.text.clone()).collect(),
            change: None,
            layer: Some(Layer::Gateway),
            support,
            against: Vec::new(),
        },
    );
    diagnosis
}

/// The key whose growing demand accounts for most of a model group's growth in requests.
#[derive(Clone, Debug)]
struct Grower {
    key: String,
    alias: Option<String>,
    team: Option<String>,
    /// Its requests per second now and in the earlier window.
    now: f64,
    before: f64,
    /// Its part of the growth of all keys' requests (0 to 1).
    share: f64,
}

/// The key that accounts for at least `min_share` of the growth in `subject`'s requests and
/// grew at least [`MIN_KEY_GROWTH`]-fold, by the gateway's requests per key now and in the
/// window before the errors. `None` when the gateway keeps no per-key history or no key
/// grew enough.
fn grower(store: &SeriesStore, subject: &Subject, at: Timestamp, min_share: f64) -> Option<Grower> {
    let before_at = Timestamp(at.0.saturating_sub(RATE_WINDOW_MS));
    let mut keys: BTreeMap<String, Grower> = BTreeMap::new();
    for series in series_of(
        store,
        REQUESTS_METRIC,
        &[(subject.label.as_str(), subject.value.as_str())],
    ) {
        let Some(key) = store
            .label_value(series, "hashed_api_key")
            .filter(|key| !key.is_empty() && *key != "None")
        else {
            continue;
        };
        let entry = keys.entry(key.to_owned()).or_insert_with(|| Grower {
            key: key.to_owned(),
            alias: store
                .label_value(series, "api_key_alias")
                .map(str::to_owned),
            team: store.label_value(series, "team").map(str::to_owned),
            now: 0.0,
            before: 0.0,
            share: 0.0,
        });
        entry.now += store.rate(series, RATE_WINDOW_MS, at).unwrap_or(0.0);
        // A series with no earlier history adds nothing before (a new key cannot be the
        // grower: see below).
        entry.before += observed_rate(store, series, before_at).unwrap_or(0.0);
    }
    let growth = |key: &Grower| (key.now - key.before).max(0.0);
    let total: f64 = keys.values().map(growth).sum();
    if total.is_nan() || total <= 0.0 || keys.len() < 2 {
        return None;
    }
    let top = keys.values().max_by(|a, b| {
        growth(a)
            .total_cmp(&growth(b))
            .then_with(|| b.key.cmp(&a.key))
    })?;
    let share = growth(top) / total;
    (share >= min_share && top.before > 0.0 && top.now >= top.before * MIN_KEY_GROWTH).then(|| {
        Grower {
            share,
            ..top.clone()
        }
    })
}

/// The rate of counter `series` over the points it has in the earlier window before
/// `at`: not extrapolated over a window that reaches back before the series existed, which
/// would make a steady key look as if it had grown. `None` with less than a minute of points.
fn observed_rate(
    store: &SeriesStore,
    series: crate::store::SeriesRef,
    at: Timestamp,
) -> Option<f64> {
    let points = store.run_points(series, EARLIER_WINDOW_MS, at);
    let (first, last) = (points.first()?, points.last()?);
    let span_ms = last.at.millis_since(first.at);
    if span_ms < 60_000 || last.value < first.value {
        return None;
    }
    Some((last.value - first.value) * 1000.0 / span_ms as f64)
}
