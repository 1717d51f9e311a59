//! Writing to the store: complete scrapes (with staleness marking), pushed samples, and the
//! retention sweep that drops expired series.

use super::identity::{identity_hash, is_series_of, kept_labels, touch};
use super::ring::{STALE_MARKER_BITS, is_stale_marker};
use super::{IngestReport, Series, SeriesIdentity, SeriesStore, Slot, SourceState};
use crate::signal::Sample;
use crate::store::symbols::Symbol;
use crate::time::Timestamp;

/// How often, in units of the retention, the store sweeps for expired series on its own.
const SWEEPS_PER_RETENTION: i64 = 8;

/// How many samples ahead of the one being ingested [`touch`] reads.
const LOOKAHEAD: usize = 4;

/// A series' labels as interned (name, value) pairs.
type LabelPairs = Box<[(Symbol, Symbol)]>;

/// The samples being ingested: whose, when, and whether they form a complete scrape.
#[derive(Clone, Copy)]
struct Batch<'a> {
    source: &'a str,
    source_symbol: Symbol,
    /// The time of samples without their own.
    default_at: Timestamp,
    /// The scrape's sequence number, for a complete scrape.
    scrape_seq: Option<u32>,
}

impl SeriesStore {
    /// Ingests one complete scrape of `source` taken at `scraped_at`.
    ///
    /// A sample's own timestamp wins over `scraped_at`. Series of `source` that were in an
    /// earlier complete scrape and are absent from this one become stale at `scraped_at`.
    /// A failed scrape is a complete scrape with no samples (see [`SeriesStore::mark_stale`]).
    pub fn ingest(
        &mut self,
        source: &str,
        scraped_at: Timestamp,
        samples: &[Sample],
    ) -> IngestReport {
        let mut report = IngestReport::default();
        self.advance_clock(scraped_at, &mut report);
        let Some(state) = self.source_state(source) else {
            refuse_all(source, samples, &mut report);
            return report;
        };
        state.scrape_seq = state.scrape_seq.wrapping_add(1);
        let batch = Batch {
            source,
            source_symbol: state.symbol,
            default_at: scraped_at,
            scrape_seq: Some(state.scrape_seq),
        };
        // Exporters list their series in the same order every time: the slot that sample
        // `i` went to last time is the first guess for sample `i` now, checked in full. A
        // right guess saves hashing the sample and probing the index.
        let previous_order = std::mem::take(&mut state.last_order);
        let keep_order = samples.len() <= self.config.max_series;
        let mut order = Vec::with_capacity(if keep_order { samples.len() } else { 0 });
        for (position, sample) in samples.iter().enumerate() {
            if let Some(ahead) = samples.get(position + LOOKAHEAD) {
                touch(ahead);
            }
            let guess = previous_order.get(position).copied();
            let (n_refused, n_new) = (report.n_refused, report.n_new_series);
            let slot = self.append(&batch, sample, guess, &mut report);
            if report.n_refused > n_refused {
                report.refused_samples.push(position);
            }
            if report.n_new_series > n_new {
                report.new_samples.push(position);
            }
            if keep_order {
                order.push(slot.unwrap_or(u32::MAX));
            }
        }
        if let Some(state) = self.sources.get_mut(source) {
            state.last_order = order;
        }
        self.mark_absent_stale(source, scraped_at, &mut report);
        report
    }

    /// Ingests pushed samples of `source` received at `received_at` that do not form a
    /// complete scrape: nothing is marked stale, and a sample's own timestamp wins.
    pub fn ingest_partial(
        &mut self,
        source: &str,
        received_at: Timestamp,
        samples: &[Sample],
    ) -> IngestReport {
        let mut report = IngestReport::default();
        self.advance_clock(received_at, &mut report);
        let Some(state) = self.source_state(source) else {
            refuse_all(source, samples, &mut report);
            return report;
        };
        let batch = Batch {
            source,
            source_symbol: state.symbol,
            default_at: received_at,
            scrape_seq: None,
        };
        for (position, sample) in samples.iter().enumerate() {
            let (n_refused, n_new) = (report.n_refused, report.n_new_series);
            self.append(&batch, sample, None, &mut report);
            if report.n_refused > n_refused {
                report.refused_samples.push(position);
            }
            if report.n_new_series > n_new {
                report.new_samples.push(position);
            }
        }
        report
    }

    /// Marks every scraped series of `source` stale at `at`, as a failed scrape does in
    /// Prometheus: the series are gone until a scrape shows them again.
    pub fn mark_stale(&mut self, source: &str, at: Timestamp) -> IngestReport {
        self.ingest(source, at, &[])
    }

    /// Drops points at or before `now - retention_ms` and the series left without a point;
    /// returns how many series were dropped. Ingesting sweeps on its own every eighth of the
    /// retention; the engine may also call this on a tick.
    pub fn evict_expired(&mut self, now: Timestamp) -> usize {
        let cutoff = now.0.saturating_sub(self.config.retention_ms);
        let mut expired = Vec::new();
        for (idx, slot) in self.slots.iter_mut().enumerate() {
            let Some(series) = slot.series.as_mut() else {
                continue;
            };
            series.ring.evict_through(cutoff);
            // A leading staleness marker says nothing about the points after it.
            while series
                .ring
                .first()
                .is_some_and(|(_, value)| is_stale_marker(value))
            {
                series.ring.pop_front();
            }
            if series.ring.is_empty() {
                expired.push(idx);
            }
        }
        self.remove_slots(&expired);
        self.n_dropped_series = self.n_dropped_series.saturating_add(expired.len() as u64);
        expired.len()
    }

    /// Moves the store's time forward to `at` (never back) and, when a sweep is due, drops
    /// what left the retention window, as ingesting at `at` would first do; returns how many
    /// series were dropped.
    pub fn advance_to(&mut self, at: Timestamp) -> usize {
        self.clock_ms = self.clock_ms.max(at.0);
        if self.clock_ms < self.next_sweep_ms {
            return 0;
        }
        let n_dropped = self.evict_expired(Timestamp(self.clock_ms));
        let interval = (self.config.retention_ms / SWEEPS_PER_RETENTION).max(1);
        self.next_sweep_ms = self.clock_ms.saturating_add(interval);
        n_dropped
    }

    fn advance_clock(&mut self, at: Timestamp, report: &mut IngestReport) {
        report.n_expired_series += self.advance_to(at);
    }

    /// The state of `source`, created on first use (`None` only if no symbol is left).
    pub(super) fn source_state(&mut self, source: &str) -> Option<&mut SourceState> {
        if !self.sources.contains_key(source) {
            let symbol = self.symbols.acquire(source)?;
            self.sources.insert(
                source.to_owned(),
                SourceState {
                    symbol,
                    scrape_seq: 0,
                    series: Vec::new(),
                    max_series: None,
                    last_order: Vec::new(),
                },
            );
        }
        self.sources.get_mut(source)
    }

    /// Appends `sample` to its series (trying slot `guess` first), creating the series if
    /// needed; returns the slot, or `None` if the sample went nowhere.
    fn append(
        &mut self,
        batch: &Batch<'_>,
        sample: &Sample,
        guess: Option<u32>,
        report: &mut IngestReport,
    ) -> Option<u32> {
        let at_ms = sample.timestamp_ms.unwrap_or(batch.default_at.0);
        // Canonical NaN, so that no sample can look like a staleness marker.
        let value = if sample.value.is_nan() {
            f64::NAN
        } else {
            sample.value
        };
        let too_old = at_ms <= self.clock_ms.saturating_sub(self.config.retention_ms);
        let guessed = guess.filter(|&idx| {
            self.slots
                .get(idx as usize)
                .and_then(|slot| slot.series.as_ref())
                .is_some_and(|series| {
                    is_series_of(&self.symbols, series, batch.source_symbol, sample)
                })
        });
        let idx = match guessed {
            Some(idx) => idx,
            None => {
                let hash = identity_hash(batch.source, &sample.name, &sample.labels);
                match self.find(hash, batch.source_symbol, sample) {
                    Some(idx) => idx,
                    None if too_old => {
                        report.n_too_old += 1;
                        return None;
                    }
                    None => self.create_series(batch, hash, sample, report)?,
                }
            }
        };
        let max_points = self.config.max_points_per_series;
        let retention_ms = self.config.retention_ms;
        let series = self
            .slots
            .get_mut(idx as usize)
            .and_then(|slot| slot.series.as_mut())?;
        if let Some(seq) = batch.scrape_seq {
            // Present in the scrape even if its sample is dropped below: not stale.
            series.last_scrape = seq;
            series.in_scrapes = true;
        }
        if too_old {
            report.n_too_old += 1;
            return Some(idx);
        }
        if let Some((last_at, last_value)) = series.ring.last() {
            if at_ms < last_at || (at_ms == last_at && last_value.to_bits() != value.to_bits()) {
                report.n_out_of_order += 1;
                return Some(idx);
            }
            if at_ms == last_at {
                return Some(idx);
            }
        }
        series.ring.push(at_ms, value, max_points);
        series
            .ring
            .evict_through(at_ms.saturating_sub(retention_ms));
        report.n_appended += 1;
        Some(idx)
    }

    fn find(&self, hash: u64, source: Symbol, sample: &Sample) -> Option<u32> {
        self.index
            .find(hash, |&idx| {
                self.slots
                    .get(idx as usize)
                    .and_then(|slot| slot.series.as_ref())
                    .is_some_and(|series| {
                        series.hash == hash && is_series_of(&self.symbols, series, source, sample)
                    })
            })
            .copied()
    }

    fn create_series(
        &mut self,
        batch: &Batch<'_>,
        hash: u64,
        sample: &Sample,
        report: &mut IngestReport,
    ) -> Option<u32> {
        let Batch {
            source,
            source_symbol,
            ..
        } = *batch;
        let source_full = self
            .sources
            .get(source)
            .and_then(|state| Some(state.series.len() >= state.max_series?))
            .unwrap_or(false);
        if self.n_series >= self.config.max_series || source_full {
            refuse(source, sample, report);
            return None;
        }
        let Some((name, labels)) = self.intern_identity(sample) else {
            refuse(source, sample, report);
            return None;
        };
        let idx = match self.free_slots.pop() {
            Some(idx) => idx,
            None => {
                let Ok(idx) = u32::try_from(self.slots.len()) else {
                    self.release_identity(name, &labels);
                    refuse(source, sample, report);
                    return None;
                };
                self.slots.push(Slot::default());
                idx
            }
        };
        self.symbols.retain(source_symbol);
        let series = Series {
            hash,
            source: source_symbol,
            name,
            labels,
            last_scrape: 0,
            in_scrapes: false,
            ring: super::ring::Ring::default(),
        };
        if let Some(slot) = self.slots.get_mut(idx as usize) {
            slot.series = Some(series);
        }
        let slots = &self.slots;
        self.index.insert_unique(hash, idx, |&other| {
            slots
                .get(other as usize)
                .and_then(|slot| slot.series.as_ref())
                .map_or(0, |series| series.hash)
        });
        if let Some(state) = self.sources.get_mut(source) {
            state.series.push(idx);
        }
        self.by_name.entry(name).or_default().push(idx);
        self.n_series += 1;
        report.n_new_series += 1;
        Some(idx)
    }

    /// Interns a sample's name and labels, or interns nothing if any symbol is refused.
    fn intern_identity(&mut self, sample: &Sample) -> Option<(Symbol, LabelPairs)> {
        let name = self.symbols.acquire(&sample.name)?;
        let mut labels = Vec::with_capacity(kept_labels(&sample.labels).count());
        for (label, value) in kept_labels(&sample.labels) {
            let pair = self.symbols.acquire(label).and_then(|label| {
                let value = self.symbols.acquire(value);
                if value.is_none() {
                    self.symbols.release(label);
                }
                Some((label, value?))
            });
            match pair {
                Some(pair) => labels.push(pair),
                None => {
                    self.release_identity(name, &labels);
                    return None;
                }
            }
        }
        Some((name, labels.into_boxed_slice()))
    }

    fn release_identity(&mut self, name: Symbol, labels: &[(Symbol, Symbol)]) {
        self.symbols.release(name);
        for &(label, value) in labels {
            self.symbols.release(label);
            self.symbols.release(value);
        }
    }

    /// Gives the series of `source` that were in earlier complete scrapes but not in the
    /// one numbered `seq` a staleness marker at `at`.
    fn mark_absent_stale(&mut self, source: &str, at: Timestamp, report: &mut IngestReport) {
        let Some(state) = self.sources.get(source) else {
            return;
        };
        let max_points = self.config.max_points_per_series;
        for &idx in &state.series {
            let Some(series) = self
                .slots
                .get_mut(idx as usize)
                .and_then(|slot| slot.series.as_mut())
            else {
                continue;
            };
            if !series.in_scrapes || series.last_scrape == state.scrape_seq {
                continue;
            }
            let Some((last_at, last_value)) = series.ring.last() else {
                continue;
            };
            if is_stale_marker(last_value) {
                continue;
            }
            let marker_at = at.0.max(last_at.saturating_add(1));
            series
                .ring
                .push(marker_at, f64::from_bits(STALE_MARKER_BITS), max_points);
            report.n_marked_stale += 1;
        }
    }

    /// Drops the series in `expired` (ascending slot indices) and everything pointing at them.
    fn remove_slots(&mut self, expired: &[usize]) {
        if expired.is_empty() {
            return;
        }
        for &idx in expired {
            let Some(slot) = self.slots.get_mut(idx) else {
                continue;
            };
            let Some(series) = slot.series.take() else {
                continue;
            };
            slot.generation = slot.generation.wrapping_add(1);
            if let Ok(entry) = self
                .index
                .find_entry(series.hash, |&other| other as usize == idx)
            {
                entry.remove();
            }
            self.symbols.release(series.source);
            self.release_identity(series.name, &series.labels);
            if let Ok(idx) = u32::try_from(idx) {
                self.free_slots.push(idx);
            }
            self.n_series = self.n_series.saturating_sub(1);
        }
        let slots = &self.slots;
        let live = |idx: &u32| {
            slots
                .get(*idx as usize)
                .is_some_and(|slot| slot.series.is_some())
        };
        for state in self.sources.values_mut() {
            state.series.retain(live);
        }
        self.by_name.retain(|_, list| {
            list.retain(live);
            !list.is_empty()
        });
        let symbols = &mut self.symbols;
        self.sources.retain(|_, state| {
            let keep = !state.series.is_empty() || state.max_series.is_some();
            if !keep {
                symbols.release(state.symbol);
            }
            keep
        });
    }
}

fn refuse(source: &str, sample: &Sample, report: &mut IngestReport) {
    report.n_refused += 1;
    if report.refused_example.is_none() {
        report.refused_example = Some(SeriesIdentity {
            source: source.to_owned(),
            name: sample.name.clone(),
            labels: sample.labels.clone(),
        });
    }
}

fn refuse_all(source: &str, samples: &[Sample], report: &mut IngestReport) {
    for (position, sample) in samples.iter().enumerate() {
        refuse(source, sample, report);
        report.refused_samples.push(position);
    }
}
