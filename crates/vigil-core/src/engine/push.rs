//! Pushed payloads in the engine: their signals become series of the push sources
//! (`push:evals`, ...), and each push gets an account of which of its series are tracked
//! and which were refused, and why ([`PushReport`]).
//!
//! # Running totals
//!
//! A pushed counter signal is an increment; the engine keeps each such series' running total
//! so that detectors see an ordinary counter. A total is kept only while the store holds its
//! series: it is made when the store takes a new series, and forgotten when the store's
//! retention sweep drops the series (a series that no push updated for `store.retention`
//! goes within an eighth of the retention more). The totals are therefore bounded like the
//! store, `store.max_pushed_series` per source. A counter that comes back after it was
//! forgotten starts again from zero: the store sees a new series, whose first point counts
//! as its own increase, never as a jump by the old total.
//!
//! # Refusals
//!
//! New series past a source's limit are refused by the store; the push is still recorded,
//! since the ledger already holds it. Every refused series is counted per source
//! ([`Engine::series_refused_by_source`]), and each episode is recorded once
//! (`Record::SeriesRefused`, with an example). A push source's episode ends when the source
//! has room again, that is when old series went stale, rather than at the next push that
//! brings no new series (which ends a scrape source's): pushes are partial, so a push of
//! known series says nothing about whether the flood of new ones is over.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use super::{Command, Engine};
use crate::intake::push_source;
use crate::intake::{Pushed, SignalKind};
use crate::signal::{Labels, Sample};
use crate::store::SeriesStore;
use crate::time::Timestamp;

/// At most this many refused series are listed in a [`PushReport`].
pub const MAX_REFUSED_LISTED: usize = 10;

/// What the engine made of one push: how many of its series it tracks, which it refused and
/// why. One series is one signal of the payload (see `intake`'s signal table).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushReport {
    /// The store source of the push, such as `push:evals`.
    pub source: String,
    /// The distinct series the push carried.
    pub n_series: usize,
    /// Of those, the ones refused (the others are tracked).
    pub n_refused: usize,
    /// The items (results, runs, alerts, spans) that feed at least one refused series.
    pub n_items_refused: usize,
    /// The first refused series, at most [`MAX_REFUSED_LISTED`], in the signals' order.
    pub refused: Vec<RefusedSeries>,
}

impl PushReport {
    /// The series tracked.
    #[must_use]
    pub fn n_accepted(&self) -> usize {
        self.n_series.saturating_sub(self.n_refused)
    }

    /// The refused series not listed in `refused`.
    #[must_use]
    pub fn n_refused_unlisted(&self) -> usize {
        self.n_refused.saturating_sub(self.refused.len())
    }
}

/// One refused series of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedSeries {
    /// `name{labels}` as in the exposition format.
    pub series: String,
    /// Why, for the sender.
    pub reason: String,
}

/// The running totals of pushed counters, per source, metric name and labels; only for
/// series the store holds.
#[derive(Debug, Default)]
pub(super) struct PushTotals {
    totals: BTreeMap<String, BTreeMap<String, BTreeMap<Labels, f64>>>,
    n_totals: usize,
    /// The store's `n_dropped_series` when the totals were last checked against it.
    synced_drops: u64,
}

impl PushTotals {
    /// The number of totals kept.
    pub(super) fn len(&self) -> usize {
        self.n_totals
    }

    /// The total of a series, if one is kept.
    fn get(&self, source: &str, name: &str, labels: &Labels) -> Option<f64> {
        self.totals.get(source)?.get(name)?.get(labels).copied()
    }

    fn set(&mut self, source: &str, name: &str, labels: &Labels, total: f64) {
        let of_name = self
            .totals
            .entry(source.to_owned())
            .or_default()
            .entry(name.to_owned())
            .or_default();
        if of_name.insert(labels.clone(), total).is_none() {
            self.n_totals += 1;
        }
    }

    /// Forgets the totals of series the store dropped since the last call.
    fn forget_dropped(&mut self, store: &SeriesStore) {
        if store.n_dropped_series() == self.synced_drops {
            return;
        }
        self.synced_drops = store.n_dropped_series();
        let mut n_totals = 0;
        for (source, of_source) in &mut self.totals {
            for (name, of_name) in of_source.iter_mut() {
                of_name.retain(|labels, _| store.holds(source, name, labels));
                n_totals += of_name.len();
            }
            of_source.retain(|_, of_name| !of_name.is_empty());
        }
        self.totals.retain(|_, of_source| !of_source.is_empty());
        self.n_totals = n_totals;
    }
}

impl Engine {
    /// Ingests a pushed payload's signals (counters as running totals), reports what was
    /// tracked and refused, and runs the detectors that read its source.
    pub(super) fn on_pushed(&mut self, payload: &Pushed, now: Timestamp, out: &mut Vec<Command>) {
        let source = push_source(payload.kind());
        let limit = self.config.store.max_pushed_series;
        // What expired by now goes first, and the totals of the series it took with it: the
        // ingest below would sweep at the same time anyway, but after the totals were read.
        self.store.advance_to(now);
        self.push_totals.forget_dropped(&self.store);
        if self.store.n_series_of(&source) < limit {
            self.refusing.remove(&source);
        }

        let mut signals = payload.signals();
        // Alerts as findings came with the topology: a session recorded before it replays
        // with the signals it had.
        if self.config.topology.is_none() {
            signals.retain(|signal| signal.name != crate::intake::ALERT_FIRING);
        }
        // An alert announcing planned work (a load test, maintenance) reports no problem: it
        // makes what it announces expected (`diagnosis::expected`), and is no finding itself.
        if let (Pushed::Alerts(batch), Some(demand)) = (payload, &self.config.diagnosis.demand) {
            let announcing: std::collections::BTreeSet<&str> = batch
                .alerts
                .iter()
                .filter(|alert| crate::diagnosis::expected::announces(demand, alert))
                .map(|alert| alert.name())
                .collect();
            if !announcing.is_empty() {
                signals.retain(|signal| {
                    signal.name != crate::intake::ALERT_FIRING
                        || !signal
                            .labels
                            .get("alertname")
                            .is_some_and(|name| announcing.contains(name))
                });
            }
        }
        let mut samples = Vec::with_capacity(signals.len());
        let mut is_counter = Vec::with_capacity(signals.len());
        for signal in signals {
            let value = match signal.kind {
                SignalKind::Gauge(value) => value,
                SignalKind::CounterIncrement(increment) => {
                    let total = self.push_totals.get(&source, &signal.name, &signal.labels);
                    total.unwrap_or(0.0) + increment
                }
            };
            is_counter.push(matches!(signal.kind, SignalKind::CounterIncrement(_)));
            samples.push(Sample {
                name: signal.name,
                labels: signal.labels,
                value,
                timestamp_ms: None,
            });
        }
        let ingest = self.store.ingest_partial(&source, now, &samples);
        self.learn_from_pushed(&source, payload, now, out);

        let mut refused_positions = ingest.refused_samples.iter().copied().peekable();
        for (position, (sample, counter)) in samples.iter().zip(&is_counter).enumerate() {
            if refused_positions.next_if_eq(&position).is_some() || !counter {
                continue;
            }
            // INVARIANT: a total is kept only for a series the store holds, so that a
            // series the store drops loses its total with it. (A new series is not held
            // when its point is older than the retention before the store's newest time,
            // which the daemon's clock never gives, but a driver's could.)
            let kept = self
                .push_totals
                .get(&source, &sample.name, &sample.labels)
                .is_some();
            if kept || self.store.holds(&source, &sample.name, &sample.labels) {
                self.push_totals
                    .set(&source, &sample.name, &sample.labels, sample.value);
            }
        }

        let refused: Vec<&Sample> = ingest
            .refused_samples
            .iter()
            .filter_map(|&position| samples.get(position))
            .collect();
        let (reason, n_items_refused) = if refused.is_empty() {
            (String::new(), 0)
        } else {
            // Only asked whether a key is in it, so its order cannot show.
            let keys: FxHashSet<(&str, &Labels)> = refused
                .iter()
                .map(|sample| (sample.name.as_str(), &sample.labels))
                .collect();
            let n_items = payload.n_items_feeding(|name, labels| keys.contains(&(name, labels)));
            (self.refusal_reason(&source), n_items)
        };
        self.push_report = Some(PushReport {
            source: source.clone(),
            n_series: samples.len(),
            n_refused: refused.len(),
            n_items_refused,
            refused: refused
                .iter()
                .take(MAX_REFUSED_LISTED)
                .map(|sample| RefusedSeries {
                    series: format!("{}{}", sample.name, sample.labels),
                    reason: reason.clone(),
                })
                .collect(),
        });
        self.count_refusals(&source, &ingest, out);
        self.run_detectors(&source, now, now, out);
    }

    /// Why new series of push source `source` are refused.
    fn refusal_reason(&self, source: &str) -> String {
        let limit = self.config.store.max_pushed_series;
        let n_series = self.store.n_series_of(source);
        if n_series < limit {
            return format!(
                "the series store cannot take more series ({} held over all sources)",
                self.store.n_series()
            );
        }
        format!(
            "{source} already tracks {n_series} series (store.max_pushed_series); new series \
             are refused until old ones go stale (not pushed for the retention, {} s)",
            self.config.store.retention_ms / 1000
        )
    }
}

#[cfg(test)]
mod tests;
