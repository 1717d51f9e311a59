//! Scrapes that issued no command, recorded together and compactly: one `event` entry per
//! batch of scrapes ([`ScrapeBatchRecord`]), coded by `vigil_core::scrape_codec` (a few bits
//! per sample instead of a JSON object with its whole label set).
//!
//! The entry holds the coded data inline (base64) and names its series dictionary, a
//! content-addressed blob (`series_blob`), so `vigil ledger verify` covers both: the leaf
//! hash the data, the blob check the dictionary. A batch with the same series as the one
//! before it names the same blob, stored once. Each batch decodes on its own.
//!
//! Only a session whose start records [`ScrapeBatching`] batches (sessions recorded before
//! have one JSON entry per scrape, and read as before). In such a session a scrape whose
//! step issued no command is held in the open batch instead of being appended; the batch
//! is appended, in its place in the order of entries, before any other entry (so replay
//! meets every event in the order the engine did), when it spans `max_secs` of scrapes or
//! reaches [`MAX_BATCH_SAMPLES`] or [`MAX_BATCH_DATA_BYTES`], and at the session's end.
//! What is held was acted on by nobody: a crash loses it as if those scrapes had failed, and
//! the engine that recovery rebuilds has not seen them. A standby following the ledger lags
//! by as much.
//!
//! The rule is written once, here ([`ScrapeBatcher`]); the daemon appends a closed batch in
//! a transaction of its own, the simulator with everything else.

use std::sync::Arc;

use anyhow::Context as _;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use vigil_core::engine::{Command, Event};
use vigil_core::scrape_codec::{
    BatchDecoder, BatchEncoder, CODEC_VERSION, DecodedScrape, SeriesDictionary,
};
use vigil_ledger::{Entry, EntryKind, Ledger, NewEntry};

/// A batch is closed once it holds this many samples.
pub const MAX_BATCH_SAMPLES: u64 = 1_000_000;

/// A batch is closed once its coded data reaches this many bytes (its entry is a third more,
/// in base64).
pub const MAX_BATCH_DATA_BYTES: u64 = 2 * 1024 * 1024;

/// The longest span of a batch that a config may ask for, in seconds.
pub const MAX_BATCH_SECS: u64 = 3_600;

/// How a session records its scrapes; in its start, absent in sessions recorded before
/// (one JSON entry per scrape).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeBatching {
    /// A batch is closed by the scrape handled this long (in seconds) or more after its
    /// first one.
    pub max_secs: u64,
}

/// The payload of a batch's entry (kind `event`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeBatchRecord {
    /// The batch.
    pub scrape_batch: ScrapeBatchBody,
}

/// What a batch's entry records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeBatchBody {
    /// The format of `data` ([`vigil_core::scrape_codec::CODEC_VERSION`]).
    pub codec: u32,
    /// How many scrapes it holds; the first was handled at the entry's time.
    pub n_scrapes: u32,
    /// How many samples they hold.
    pub n_samples: u64,
    /// The blob of its series dictionary (canonical JSON of a `SeriesDictionary`).
    pub series_blob: String,
    /// The coded scrapes, in standard base64.
    pub data: String,
}

/// A closed batch: its entry, and the series dictionary to store as a blob first (`None`
/// when it is the previous batch's, stored already).
#[derive(Debug, Clone)]
pub struct ClosedBatch {
    /// The entry to append.
    pub entry: NewEntry,
    /// The dictionary blob's content, when it is new.
    pub series: Option<Vec<u8>>,
}

/// What a driver that appends later (the simulator, tests) records for one step: the blobs
/// to store first, then the entries, in order.
#[derive(Debug, Default)]
pub struct BatchedEntries {
    /// Blob contents (series dictionaries) to store before appending the entries.
    pub blobs: Vec<Vec<u8>>,
    /// The entries, in order.
    pub entries: Vec<NewEntry>,
}

/// The open batch of a session, and the rule for what goes in it and when it closes.
#[derive(Debug, Default)]
pub struct ScrapeBatcher {
    batching: Option<ScrapeBatching>,
    open: BatchEncoder,
    /// When the open batch's last scrape was handled.
    last_at_ms: i64,
    /// The series dictionary of the last batch closed, with its blob's hash: the next batch
    /// usually has the same series, and then its dictionary is not encoded again.
    last_series: Option<(SeriesDictionary, String)>,
}

impl ScrapeBatcher {
    /// The batcher of a session that batches as `batching` says (`None`: never).
    #[must_use]
    pub fn new(batching: Option<ScrapeBatching>) -> ScrapeBatcher {
        ScrapeBatcher {
            batching,
            ..ScrapeBatcher::default()
        }
    }

    /// The batcher of the session that `record` starts.
    #[must_use]
    pub fn for_session(record: &super::SessionRecord) -> ScrapeBatcher {
        match record {
            super::SessionRecord::SessionStarted { scrape_batch, .. } => {
                ScrapeBatcher::new(*scrape_batch)
            }
            super::SessionRecord::PoliciesReloaded { .. }
            | super::SessionRecord::SessionEnded { .. } => ScrapeBatcher::new(None),
        }
    }

    /// Holds a step in the open batch when the session batches and the step is one scrape
    /// that issued no command; returns whether it did.
    pub fn hold(&mut self, handled: &[(Event, Vec<Command>)], at_ms: i64) -> bool {
        if self.batching.is_none() {
            return false;
        }
        let [
            (
                Event::Scraped {
                    source,
                    scraped_at,
                    samples,
                },
                commands,
            ),
        ] = handled
        else {
            return false;
        };
        if !commands.is_empty() {
            return false;
        }
        self.open.push(at_ms, source, *scraped_at, samples);
        self.last_at_ms = at_ms;
        true
    }

    /// Whether the open batch is full: it spans `max_secs`, or holds [`MAX_BATCH_SAMPLES`]
    /// or [`MAX_BATCH_DATA_BYTES`].
    #[must_use]
    pub fn is_due(&self) -> bool {
        let (Some(batching), Some(first_at_ms)) = (self.batching, self.open.first_at_ms()) else {
            return false;
        };
        let max_ms = i64::try_from(batching.max_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        self.last_at_ms.saturating_sub(first_at_ms) >= max_ms
            || self.open.n_samples() >= MAX_BATCH_SAMPLES
            || self.open.data_bytes() >= MAX_BATCH_DATA_BYTES
            || self.open.n_scrapes() == u32::MAX
    }

    /// Whether no scrape is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.open.n_scrapes() == 0
    }

    /// Closes the open batch, if it holds a scrape.
    ///
    /// # Errors
    ///
    /// When the batch cannot be encoded as JSON (it always can).
    pub fn close(&mut self) -> Result<Option<ClosedBatch>, serde_json::Error> {
        if self.is_empty() {
            return Ok(None);
        }
        let batch = std::mem::take(&mut self.open).finish();
        // Comparing the series is a fraction of encoding and hashing them (a second at
        // 200,000 series); a new dictionary is stored as a blob, the same one only named.
        let (series_blob, series) = match &self.last_series {
            Some((last, hash)) if *last == batch.dictionary => (hash.clone(), None),
            _ => {
                let text = vigil_ledger::canonical_json(&serde_json::to_value(&batch.dictionary)?);
                let hash = vigil_ledger::hash::blob_hash(text.as_bytes());
                self.last_series = Some((batch.dictionary, hash.clone()));
                (hash, Some(text.into_bytes()))
            }
        };
        let record = ScrapeBatchRecord {
            scrape_batch: ScrapeBatchBody {
                codec: CODEC_VERSION,
                n_scrapes: batch.n_scrapes,
                n_samples: batch.n_samples,
                series_blob,
                data: base64::engine::general_purpose::STANDARD.encode(&batch.data),
            },
        };
        Ok(Some(ClosedBatch {
            entry: NewEntry {
                at_ms: batch.first_at_ms,
                kind: EntryKind::Event,
                incident_id: None,
                payload: serde_json::to_value(record)?,
            },
            series,
        }))
    }

    /// Codes the scrape that opens a step which issued commands (so it is recorded at once,
    /// not held) as a batch of its own, which the step's first entry then is in place of the
    /// scrape's JSON: a scrape of 10,000 series is 4 MB as JSON. `None` when the session does
    /// not batch, the step does not open with a scrape, or a batch is open (the caller closes
    /// it first, so that the order of events holds).
    ///
    /// # Errors
    ///
    /// As for [`close`](Self::close).
    pub fn code_scrape(
        &mut self,
        handled: &[(Event, Vec<Command>)],
        at_ms: i64,
    ) -> Result<Option<ClosedBatch>, serde_json::Error> {
        if self.batching.is_none() || !self.is_empty() {
            return Ok(None);
        }
        let Some((
            Event::Scraped {
                source,
                scraped_at,
                samples,
            },
            _,
        )) = handled.first()
        else {
            return Ok(None);
        };
        self.open.push(at_ms, source, *scraped_at, samples);
        self.last_at_ms = at_ms;
        self.close()
    }

    /// For a driver that appends later: what one step records, whose first event would get
    /// seq `first_seq` (see [`super::step_entries`]). A held scrape records nothing (or the
    /// batch it filled); any other step is preceded by the open batch.
    ///
    /// # Errors
    ///
    /// When an event or a command cannot be encoded as JSON.
    pub fn step_entries(
        &mut self,
        handled: &[(Event, Vec<Command>)],
        first_seq: u64,
        at_ms: i64,
        exchanges_blob: Option<String>,
    ) -> Result<BatchedEntries, serde_json::Error> {
        let mut recorded = BatchedEntries::default();
        if self.hold(handled, at_ms) {
            if self.is_due() {
                self.close_into(&mut recorded)?;
            }
            return Ok(recorded);
        }
        self.close_into(&mut recorded)?;
        let first_seq = first_seq + recorded.entries.len() as u64;
        let coded = self.code_scrape(handled, at_ms)?;
        let mut entries = super::step_entries(handled, first_seq, at_ms, exchanges_blob)?;
        if let (Some(coded), Some(first)) = (coded, entries.first_mut()) {
            *first = coded.entry;
            recorded.blobs.extend(coded.series);
        }
        recorded.entries.extend(entries);
        Ok(recorded)
    }

    /// Closes the open batch into `recorded`.
    ///
    /// # Errors
    ///
    /// As for [`close`](Self::close).
    pub fn close_into(&mut self, recorded: &mut BatchedEntries) -> Result<(), serde_json::Error> {
        if let Some(closed) = self.close()? {
            recorded.blobs.extend(closed.series);
            recorded.entries.push(closed.entry);
        }
        Ok(())
    }
}

/// The payload of an event entry, when it is a batch of scrapes: canonical JSON sorts keys,
/// so a batch's payload starts with its one key, and an event's with `event`.
#[must_use]
pub fn is_batch_payload(payload: &str) -> bool {
    payload.starts_with("{\"scrape_batch\":")
}

/// The last series dictionary read, kept for the next batch (usually the same).
#[derive(Debug, Default)]
pub struct DictionaryCache {
    last: Option<(String, Arc<SeriesDictionary>)>,
}

/// Opens the batch recorded in `entry` for decoding: fetches and checks its series blob
/// (through `cache`) and decodes its data from base64.
///
/// # Errors
///
/// When the blob is missing or changed, or the record is not a batch this build reads.
pub async fn open_batch(
    ledger: &Ledger,
    entry: &Entry,
    record: &ScrapeBatchRecord,
    cache: &mut DictionaryCache,
) -> anyhow::Result<BatchDecoder> {
    let body = &record.scrape_batch;
    anyhow::ensure!(
        body.codec == CODEC_VERSION,
        "entry {}: a scrape batch in format {}, which this build does not read (it reads {CODEC_VERSION})",
        entry.seq,
        body.codec
    );
    let dictionary = match &cache.last {
        Some((hash, dictionary)) if *hash == body.series_blob => Arc::clone(dictionary),
        _ => {
            let bytes = ledger.get_blob(&body.series_blob).await?.with_context(|| {
                format!(
                    "entry {}: the ledger has no blob `{}` (the batch's series)",
                    entry.seq, body.series_blob
                )
            })?;
            let dictionary: Arc<SeriesDictionary> = Arc::new(
                serde_json::from_slice(&bytes)
                    .with_context(|| format!("entry {}: unreadable series blob", entry.seq))?,
            );
            cache.last = Some((body.series_blob.clone(), Arc::clone(&dictionary)));
            dictionary
        }
    };
    let data = base64::engine::general_purpose::STANDARD
        .decode(&body.data)
        .with_context(|| format!("entry {}: a scrape batch's data is not base64", entry.seq))?;
    Ok(BatchDecoder::new(
        dictionary,
        data,
        entry.at_ms,
        body.n_scrapes,
    ))
}

/// The event of a decoded scrape.
#[must_use]
pub fn scrape_event(scrape: DecodedScrape) -> Event {
    Event::Scraped {
        source: scrape.source,
        scraped_at: scrape.scraped_at,
        samples: scrape.samples,
    }
}

#[cfg(test)]
#[path = "scrape_batch_tests.rs"]
mod tests;
