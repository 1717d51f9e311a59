//! The series store: every scraped or pushed sample, kept per series in a bounded ring, with
//! the queries the engine asks of them (Prometheus' `rate`, `increase`, `irate` and
//! `histogram_quantile`, and label selectors).
//!
//! # Layout
//!
//! Strings (metric names, label names and values, source names) are interned once in a
//! reference-counted symbol table, so a series' identity is a few 4-byte symbols: its source,
//! its name and its labels as (name, value) pairs in name order. Its points live in a ring of
//! two columns, `u32` millisecond offsets from a per-series base and `f64` values (12 bytes a
//! point), bounded by count (`max_points_per_series`) and by time (`retention_ms`). Series
//! live in a slab; a hash index built with a fixed hasher finds a sample's series without
//! allocating. An hour at 15 s (240 points) with 20 LiteLLM labels takes about 3.5 KiB.
//!
//! # Identity and staleness
//!
//! A series is identified by its source, metric name and labels: the same labels scraped
//! from two sources are two series. As in Prometheus, a label with an empty value is no
//! label (`{a=""}` and `{}` are one series), and matchers see a missing label as `""`.
//!
//! Following Prometheus, a series of a source that is absent from that source's next
//! complete scrape ([`SeriesStore::ingest`]) gets a staleness marker at the scrape's time:
//! it has no latest value and no rate, and when it comes back its rates start afresh instead
//! of spanning the gap (Prometheus would span it; vigil must not read a vanished series as
//! anything). Unlike Prometheus, samples with their own timestamps are marked stale too: a
//! complete scrape without them says they are gone. Pushed samples
//! ([`SeriesStore::ingest_partial`]) are never marked stale. Series whose points have all
//! left the retention window are dropped, stale or not.
//!
//! # Use
//!
//! ```
//! use vigil_core::Timestamp;
//! use vigil_core::signal::Sample;
//! use vigil_core::store::{SeriesStore, StoreConfig, parse_selector};
//!
//! let mut store = SeriesStore::new(StoreConfig::default());
//! let tokens = |key: &str, value: f64| Sample {
//!     name: "litellm_total_tokens_metric_total".to_owned(),
//!     labels: [("hashed_api_key", key), ("team", "search")].into_iter().collect(),
//!     value,
//!     timestamp_ms: None,
//! };
//! for (idx, value) in [0.0, 150.0, 300.0, 450.0, 600.0].into_iter().enumerate() {
//!     let report = store.ingest("litellm", Timestamp(idx as i64 * 15_000), &[tokens("ab12", value)]);
//!     assert_eq!(report.n_refused, 0);
//! }
//! let selector = parse_selector(r#"litellm_total_tokens_metric_total{team=~"search|ml"}"#)?;
//! let series = store.select(&selector);
//! // 10 tokens/s over (0 s, 60 s], extrapolated to the window's start as Prometheus does.
//! let rate = store.rate(series[0], 60_000, Timestamp(60_000)).unwrap();
//! assert!((rate - 10.0).abs() < 1e-9);
//! assert_eq!(store.instant_rate(series[0], 60_000, Timestamp(60_000)), Some(10.0));
//! # Ok::<(), vigil_core::store::SelectorError>(())
//! ```
//!
//! # Determinism
//!
//! The store reads no clock: time arrives with each call. Hash tables only map a series'
//! identity to its slot; every ordered output is sorted by text, so the same calls give the
//! same answers, bit for bit, on any machine. The arithmetic is IEEE-754 basic operations.

#[doc(hidden)]
pub mod bench_support;
mod histogram;
mod identity;
mod ingest;
mod matcher;
mod rate;
mod ring;
mod selector;
mod symbols;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::mem::size_of;

use hashbrown::HashTable;

pub use histogram::{Bucket, BucketValues, Grouping, QuantileGroup, bucket_quantile};
pub use matcher::{METRIC_NAME_LABEL, MatchOp, Matcher, SOURCE_LABEL};
pub use selector::{Selector, SelectorError, parse_selector, selector_metric_name};

use crate::signal::Labels;
use crate::time::Timestamp;
use ring::{Ring, is_stale_marker};
use symbols::{Symbol, SymbolTable, hash_table_bytes};

/// The store's bounds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    /// New series past this many (over all sources) are refused; existing ones keep updating.
    pub max_series: usize,
    /// Points older than this, relative to the newest time the store was given, are dropped.
    pub retention_ms: i64,
    /// A series keeps at most this many points (at least 2 are always kept).
    pub max_points_per_series: usize,
}

impl Default for StoreConfig {
    /// 50,000 series (about 165 MiB of LiteLLM series at 15 s scrapes), one hour, and 720
    /// points (one hour at 5 s scrapes).
    fn default() -> Self {
        StoreConfig {
            max_series: 50_000,
            retention_ms: 3_600_000,
            max_points_per_series: 720,
        }
    }
}

/// A handle to one series. It stays valid until the series is dropped; a handle to a
/// dropped series answers nothing, even if its slot is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SeriesRef {
    index: u32,
    generation: u32,
}

/// Who a series is, spelled out.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeriesIdentity {
    /// The source it was scraped from or pushed by.
    pub source: String,
    /// The metric name.
    pub name: String,
    /// The labels.
    pub labels: Labels,
}

impl fmt::Display for SeriesIdentity {
    /// `name{labels}` from `source`, as in the exposition format.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{} from `{}`", self.name, self.labels, self.source)
    }
}

/// One point of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// When it was observed.
    pub at: Timestamp,
    /// Its value.
    pub value: f64,
}

/// What one ingest did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct IngestReport {
    /// Samples appended to a series.
    pub n_appended: usize,
    /// Series created.
    pub n_new_series: usize,
    /// Samples of new series refused because the store (or the source) was full.
    pub n_refused: usize,
    /// The first refused series, for the log.
    pub refused_example: Option<SeriesIdentity>,
    /// The positions, in the samples given, of the refused ones (ascending).
    pub refused_samples: Vec<usize>,
    /// The positions, in the samples given, of the ones that created a series (ascending):
    /// what the topology learns from.
    pub new_samples: Vec<usize>,
    /// Samples dropped because their series already had a point at or after their time
    /// (an identical repeat of the newest point is ignored silently, as Prometheus does).
    pub n_out_of_order: usize,
    /// Samples dropped because they were older than the retention window.
    pub n_too_old: usize,
    /// Series of the source that were absent from this complete scrape and became stale.
    pub n_marked_stale: usize,
    /// Series dropped because all their points left the retention window.
    pub n_expired_series: usize,
}

/// The per-source state: its scrape counter and its series, for staleness marking.
#[derive(Debug)]
struct SourceState {
    symbol: Symbol,
    /// Incremented by every complete scrape; a series seen in it carries the same number.
    scrape_seq: u32,
    series: Vec<u32>,
    max_series: Option<usize>,
    /// The slot each sample of the latest complete scrape went to (`u32::MAX`: none), in
    /// the scrape's order.
    last_order: Vec<u32>,
}

#[derive(Debug)]
struct Series {
    /// The hash of (source, name, labels) the index files it under.
    hash: u64,
    source: Symbol,
    name: Symbol,
    /// (name, value) pairs in label-name order.
    labels: Box<[(Symbol, Symbol)]>,
    /// The source's `scrape_seq` when this series was last in a complete scrape.
    last_scrape: u32,
    /// Whether it was ever in a complete scrape (and so can be marked stale by one).
    in_scrapes: bool,
    ring: Ring,
}

#[derive(Debug, Default)]
struct Slot {
    generation: u32,
    series: Option<Series>,
}

/// All series of all sources, bounded in count, points and time.
pub struct SeriesStore {
    config: StoreConfig,
    symbols: SymbolTable,
    slots: Vec<Slot>,
    /// Free slot indices, reused last-in first-out.
    free_slots: Vec<u32>,
    n_series: usize,
    /// Slot indices by the hash of their series' identity.
    index: HashTable<u32>,
    sources: BTreeMap<String, SourceState>,
    /// Slot indices by metric name, for selectors that name the metric.
    by_name: BTreeMap<Symbol, Vec<u32>>,
    /// The latest time the store was given.
    clock_ms: i64,
    next_sweep_ms: i64,
    /// Series the retention sweep has dropped since the store was made.
    n_dropped_series: u64,
}

impl fmt::Debug for SeriesStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SeriesStore")
            .field("config", &self.config)
            .field("n_series", &self.n_series)
            .field("n_sources", &self.sources.len())
            .finish_non_exhaustive()
    }
}

impl Default for SeriesStore {
    fn default() -> Self {
        SeriesStore::new(StoreConfig::default())
    }
}

impl SeriesStore {
    /// An empty store. A retention below 1 ms is taken as 1 ms, fewer than 2 points as 2.
    #[must_use]
    pub fn new(config: StoreConfig) -> Self {
        let config = StoreConfig {
            max_series: config.max_series,
            retention_ms: config.retention_ms.max(1),
            max_points_per_series: config.max_points_per_series.max(2),
        };
        SeriesStore {
            config,
            symbols: SymbolTable::default(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            n_series: 0,
            index: HashTable::new(),
            sources: BTreeMap::new(),
            by_name: BTreeMap::new(),
            clock_ms: i64::MIN,
            next_sweep_ms: i64::MIN,
            n_dropped_series: 0,
        }
    }

    /// Its bounds.
    #[must_use]
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The number of series held, stale ones included.
    #[must_use]
    pub fn n_series(&self) -> usize {
        self.n_series
    }

    /// The number of series held for `source`.
    #[must_use]
    pub fn n_series_of(&self, source: &str) -> usize {
        self.sources
            .get(source)
            .map_or(0, |state| state.series.len())
    }

    /// How many series the retention sweep has dropped since the store was made: whoever
    /// keeps state per series can tell from a change that some of it may be gone.
    #[must_use]
    pub fn n_dropped_series(&self) -> u64 {
        self.n_dropped_series
    }

    /// Whether the store holds the series `name{labels}` of `source` (stale or not).
    #[must_use]
    pub fn holds(&self, source: &str, name: &str, labels: &Labels) -> bool {
        let Some(source_symbol) = self.sources.get(source).map(|state| state.symbol) else {
            return false;
        };
        let hash = identity::identity_hash(source, name, labels);
        self.index
            .find(hash, |&idx| {
                self.slots
                    .get(idx as usize)
                    .and_then(|slot| slot.series.as_ref())
                    .is_some_and(|series| {
                        series.hash == hash
                            && identity::is_identity_of(
                                &self.symbols,
                                series,
                                source_symbol,
                                name,
                                labels,
                            )
                    })
            })
            .is_some()
    }

    /// Limits `source` to `max_series` series (on top of the store's limit), or lifts its
    /// limit with `None`. Series it already has past the limit are kept.
    pub fn set_source_max_series(&mut self, source: &str, max_series: Option<usize>) {
        if let Some(state) = self.source_state(source) {
            state.max_series = max_series;
        }
    }

    /// An estimate of the bytes the store holds, counting allocations by their capacity.
    ///
    /// It walks every series, so it costs about as much as one scrape's ingest.
    #[must_use]
    pub fn memory_bytes(&self) -> usize {
        let mut total = size_of::<Self>()
            + self.slots.capacity() * size_of::<Slot>()
            + self.free_slots.capacity() * size_of::<u32>()
            + hash_table_bytes(self.index.capacity(), size_of::<u32>())
            + (self.symbols.memory_bytes() - size_of::<SymbolTable>());
        for series in self.slots.iter().filter_map(|slot| slot.series.as_ref()) {
            total += series.labels.len() * size_of::<(Symbol, Symbol)>() + series.ring.heap_bytes();
        }
        for (name, state) in &self.sources {
            total += btree_entry_bytes(size_of::<String>() + size_of::<SourceState>())
                + name.capacity()
                + (state.series.capacity() + state.last_order.capacity()) * size_of::<u32>();
        }
        for list in self.by_name.values() {
            total += btree_entry_bytes(size_of::<Symbol>() + size_of::<Vec<u32>>())
                + list.capacity() * size_of::<u32>();
        }
        total
    }

    /// Who `series` is, or `None` if it was dropped.
    #[must_use]
    pub fn identity(&self, series: SeriesRef) -> Option<SeriesIdentity> {
        let found = self.series(series)?;
        Some(SeriesIdentity {
            source: self.symbols.text(found.source).to_owned(),
            name: self.symbols.text(found.name).to_owned(),
            labels: found
                .labels
                .iter()
                .map(|&(name, value)| (self.symbols.text(name), self.symbols.text(value)))
                .collect(),
        })
    }

    /// The value of label `name` of `series`; [`METRIC_NAME_LABEL`] gives the metric name
    /// and [`SOURCE_LABEL`] the source.
    #[must_use]
    pub fn label_value(&self, series: SeriesRef, name: &str) -> Option<&str> {
        let found = self.series(series)?;
        Some(self.label_text(found, name)).filter(|value| !value.is_empty())
    }

    /// The newest point of `series`, or `None` if it is stale or was dropped.
    #[must_use]
    pub fn latest(&self, series: SeriesRef) -> Option<Point> {
        let (at, value) = self.series(series)?.ring.last()?;
        (!is_stale_marker(value)).then_some(Point {
            at: Timestamp(at),
            value,
        })
    }

    /// The value of `series` at `at` as an instant query sees it: its newest point in
    /// `(at - lookback_ms, at]`, unless that point is a staleness marker.
    #[must_use]
    pub fn value_at(&self, series: SeriesRef, at: Timestamp, lookback_ms: i64) -> Option<Point> {
        let ring = &self.series(series)?.ring;
        let end = ring.partition_point(|point_at| point_at <= at.0);
        let (point_at, value) = ring.get(end.checked_sub(1)?)?;
        let fresh = point_at > at.0.saturating_sub(lookback_ms);
        (fresh && !is_stale_marker(value)).then_some(Point {
            at: Timestamp(point_at),
            value,
        })
    }

    /// Whether `series` is stale: absent from its source's latest complete scrape.
    #[must_use]
    pub fn is_stale(&self, series: SeriesRef) -> bool {
        self.series(series)
            .and_then(|found| found.ring.last())
            .is_some_and(|(_, value)| is_stale_marker(value))
    }

    fn series(&self, series: SeriesRef) -> Option<&Series> {
        let slot = self.slots.get(series.index as usize)?;
        if slot.generation != series.generation {
            return None;
        }
        slot.series.as_ref()
    }

    fn series_ref(&self, index: u32) -> Option<SeriesRef> {
        let slot = self.slots.get(index as usize)?;
        slot.series.as_ref()?;
        Some(SeriesRef {
            index,
            generation: slot.generation,
        })
    }

    /// The value of label `name` of `series`, empty when it has none (as in Prometheus).
    fn label_text(&self, series: &Series, name: &str) -> &str {
        match name {
            METRIC_NAME_LABEL => self.symbols.text(series.name),
            SOURCE_LABEL => self.symbols.text(series.source),
            _ => self
                .symbols
                .get(name)
                .and_then(|symbol| series.label(symbol))
                .map_or("", |value| self.symbols.text(value)),
        }
    }
}

impl Series {
    /// The value of the label named `name`.
    fn label(&self, name: Symbol) -> Option<Symbol> {
        self.labels
            .iter()
            .find(|&&(label, _)| label == name)
            .map(|&(_, value)| value)
    }
}

/// An estimate of the bytes one `BTreeMap` entry of `entry_size` bytes takes: its share of
/// a node (11 slots, typically two thirds full, plus parent and length fields).
fn btree_entry_bytes(entry_size: usize) -> usize {
    entry_size * 3 / 2 + 8
}
