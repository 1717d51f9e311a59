//! The compact record of scrapes: several scrapes, of one source or more, coded together in
//! a few bits per sample, and decoded back to exactly what was coded (every `f64` bit, every
//! timestamp, label and sample order).
//!
//! A batch is two parts:
//!
//! - a [`SeriesDictionary`]: for each source, in the order first scraped, its series (name and
//!   labels) in the order first seen. Series are referred to by their index in it. The
//!   ledger stores it as a content-addressed blob, so a batch with the same series as the one
//!   before it names the same blob, recorded once.
//! - the data, a bit stream ([`bits`]) holding, for each scrape in order:
//!   1. the source's index in the dictionary;
//!   2. when it was handled (`at_ms`), as the change of the source's step between two scrapes
//!      (delta of delta; the first scrape of a source steps from the batch's first time), and
//!      when it was taken (`scraped_at`), as the change of its lag behind `at_ms`;
//!   3. its series: `0` when they are the previous scrape's of the source, in the same order;
//!      else `1`, their number and each series index as its distance from the index after
//!      the previous one (a run of series in dictionary order costs a bit each);
//!   4. `0` when no sample carries an exposition timestamp, else `1` and, per sample, `0`
//!      or `1` and the timestamp as the change of the series' step;
//!   5. each sample's value against the same series' previous value in the batch
//!      (`values.rs`: repeated, integer delta of delta, or Gorilla's XOR).
//!
//! Each batch starts afresh (the first value of a series is coded against `0.0`): a batch
//! decodes on its own with its dictionary, whatever was recorded before it.
//!
//! Integers use one variable-length code ([`bits::BitWriter::unsigned`]): zero costs a bit.
//! A steady counter costs about 3 bits a sample, a flat gauge 1, a repeated scrape of the
//! same series 1 bit for its list.

pub mod bits;
mod values;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::signal::{Labels, Sample};
use crate::time::Timestamp;
use bits::{BitReader, BitWriter};
use values::ValueState;

/// The version of the format this module writes; a batch records it.
pub const CODEC_VERSION: u32 = 1;

/// Why a batch's data does not decode. Only a damaged or forged batch causes one: what the
/// encoder writes always decodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The data ends before the last scrape does.
    #[error("the data ends in the middle of a scrape")]
    Truncated,
    /// More than padding is left after the last scrape.
    #[error("data is left after the last scrape")]
    TrailingData,
    /// A scrape names a source the dictionary does not hold.
    #[error("a scrape of source #{index}, which the series dictionary does not hold")]
    UnknownSource {
        /// The index read.
        index: u64,
    },
    /// A scrape names a series the dictionary does not hold.
    #[error("series #{id} of source `{source_name}`, which the series dictionary does not hold")]
    UnknownSeries {
        /// The source.
        source_name: String,
        /// The index read.
        id: u64,
    },
    /// A scrape says it has the previous scrape's series, but it is its source's first.
    #[error("a scrape repeats the series of its source's previous scrape, but there is none")]
    RepeatBeforeAny,
    /// A value reuses a window of meaningful bits before any was set.
    #[error("a value reuses a window of meaningful bits before any was set")]
    WindowBeforeAny,
    /// A window of meaningful bits wider than a value.
    #[error("a window of meaningful bits wider than 64 bits")]
    WindowTooWide,
    /// An integer step after a value that is not an integer.
    #[error("an integer step after a value that is not an integer")]
    IntegerAfterFraction,
    /// An integer beyond what an `f64` holds exactly.
    #[error("an integer beyond what a 64-bit float holds exactly")]
    IntegerOutOfRange,
    /// A scrape claims more samples than the data could hold.
    #[error("a scrape of {n} samples, more than the data holds")]
    TooManySamples {
        /// The number read.
        n: u64,
    },
}

/// The series of a batch, per source: what the data's indexes refer to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SeriesDictionary {
    /// The sources, in the order first scraped in the batch.
    pub sources: Vec<SourceSeries>,
}

/// One source's series in a [`SeriesDictionary`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceSeries {
    /// The source's name.
    pub source: String,
    /// Its series, as (metric name, labels), in the order first seen in the batch.
    pub series: Vec<(String, Labels)>,
}

/// A coded batch, ready to record.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBatch {
    /// The series its data refers to.
    pub dictionary: SeriesDictionary,
    /// The bit stream.
    pub data: Vec<u8>,
    /// When its first scrape was handled: the data's times count from it.
    pub first_at_ms: i64,
    /// How many scrapes it holds.
    pub n_scrapes: u32,
    /// How many samples they hold.
    pub n_samples: u64,
}

/// One scrape as a batch holds it: the parts of `Event::Scraped`, with when it was handled.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedScrape {
    /// When the engine handled it (the ledger time of its event).
    pub at_ms: i64,
    /// The source.
    pub source: String,
    /// When it was taken.
    pub scraped_at: Timestamp,
    /// Its samples, in their order.
    pub samples: Vec<Sample>,
}

/// A source's times in a batch: what coding its next scrape's times depends on.
#[derive(Debug, Default, Clone)]
struct SourceClock {
    /// When its previous scrape was handled, if any.
    at_ms: Option<i64>,
    /// The step between its last two scrapes.
    at_step: i64,
    /// How long before being handled its previous scrape was taken.
    lag: i64,
}

impl SourceClock {
    fn encode(&mut self, writer: &mut BitWriter, first_at_ms: i64, at_ms: i64, scraped_at: i64) {
        let step = at_ms.wrapping_sub(self.at_ms.unwrap_or(first_at_ms));
        writer.signed(step.wrapping_sub(self.at_step));
        let lag = at_ms.wrapping_sub(scraped_at);
        writer.signed(lag.wrapping_sub(self.lag));
        self.at_ms = Some(at_ms);
        self.at_step = step;
        self.lag = lag;
    }

    fn decode(
        &mut self,
        reader: &mut BitReader<'_>,
        first_at_ms: i64,
    ) -> Result<(i64, i64), CodecError> {
        let step = self.at_step.wrapping_add(reader.signed()?);
        let at_ms = self.at_ms.unwrap_or(first_at_ms).wrapping_add(step);
        let lag = self.lag.wrapping_add(reader.signed()?);
        self.at_ms = Some(at_ms);
        self.at_step = step;
        self.lag = lag;
        Ok((at_ms, at_ms.wrapping_sub(lag)))
    }
}

/// One source's part of an open batch.
#[derive(Debug, Default)]
struct SourceEncoder {
    name: String,
    /// Series index by metric name, then labels.
    ids: HashMap<String, HashMap<Labels, u32>>,
    /// Per series index.
    states: Vec<ValueState>,
    clock: SourceClock,
    /// The series of the source's previous scrape in the batch.
    previous_ids: Option<Vec<u32>>,
}

impl SourceEncoder {
    /// The index of a series, given one when new.
    fn id_of(&mut self, sample: &Sample) -> u32 {
        let next = u32::try_from(self.states.len()).unwrap_or(u32::MAX);
        let by_labels = match self.ids.get_mut(&sample.name) {
            Some(by_labels) => by_labels,
            None => self.ids.entry(sample.name.clone()).or_default(),
        };
        if let Some(id) = by_labels.get(&sample.labels) {
            return *id;
        }
        by_labels.insert(sample.labels.clone(), next);
        self.states.push(ValueState::default());
        next
    }

    /// Its series in index order.
    fn into_series(self) -> SourceSeries {
        let mut series: Vec<(u32, (String, Labels))> = Vec::with_capacity(self.states.len());
        for (name, by_labels) in self.ids {
            for (labels, id) in by_labels {
                series.push((id, (name.clone(), labels)));
            }
        }
        series.sort_unstable_by_key(|(id, _)| *id);
        SourceSeries {
            source: self.name,
            series: series.into_iter().map(|(_, key)| key).collect(),
        }
    }
}

/// A batch being coded: scrapes are added in the order handled, then [`finish`] gives the
/// dictionary and the data.
///
/// [`finish`]: BatchEncoder::finish
#[derive(Debug, Default)]
pub struct BatchEncoder {
    first_at_ms: Option<i64>,
    n_scrapes: u32,
    n_samples: u64,
    sources: Vec<SourceEncoder>,
    source_ids: HashMap<String, usize>,
    writer: BitWriter,
}

impl BatchEncoder {
    /// Adds a scrape of `source` taken at `scraped_at` and handled at `at_ms`.
    pub fn push(&mut self, at_ms: i64, source: &str, scraped_at: Timestamp, samples: &[Sample]) {
        let first_at_ms = *self.first_at_ms.get_or_insert(at_ms);
        let source_idx = match self.source_ids.get(source) {
            Some(idx) => *idx,
            None => {
                self.source_ids
                    .insert(source.to_owned(), self.sources.len());
                self.sources.push(SourceEncoder {
                    name: source.to_owned(),
                    ..SourceEncoder::default()
                });
                self.sources.len() - 1
            }
        };
        self.writer.unsigned(source_idx as u64);
        let Some(encoder) = self.sources.get_mut(source_idx) else {
            return;
        };
        encoder
            .clock
            .encode(&mut self.writer, first_at_ms, at_ms, scraped_at.0);
        let ids: Vec<u32> = samples.iter().map(|sample| encoder.id_of(sample)).collect();
        if encoder.previous_ids.as_ref() == Some(&ids) {
            self.writer.bit(false);
        } else {
            self.writer.bit(true);
            self.writer.unsigned(ids.len() as u64);
            let mut expected = 0_i64;
            for id in &ids {
                self.writer.signed(i64::from(*id) - expected);
                expected = i64::from(*id) + 1;
            }
        }
        let has_timestamps = samples.iter().any(|sample| sample.timestamp_ms.is_some());
        self.writer.bit(has_timestamps);
        for (sample, id) in samples.iter().zip(&ids) {
            let Some(state) = encoder.states.get_mut(*id as usize) else {
                continue;
            };
            if has_timestamps {
                state.encode_timestamp(&mut self.writer, sample.timestamp_ms, scraped_at.0);
            }
            state.encode(&mut self.writer, sample.value);
        }
        encoder.previous_ids = Some(ids);
        self.n_scrapes = self.n_scrapes.saturating_add(1);
        self.n_samples += samples.len() as u64;
    }

    /// How many scrapes it holds.
    #[must_use]
    pub fn n_scrapes(&self) -> u32 {
        self.n_scrapes
    }

    /// How many samples they hold.
    #[must_use]
    pub fn n_samples(&self) -> u64 {
        self.n_samples
    }

    /// When its first scrape was handled, if it holds one.
    #[must_use]
    pub fn first_at_ms(&self) -> Option<i64> {
        self.first_at_ms
    }

    /// The size of its data so far, in bytes.
    #[must_use]
    pub fn data_bytes(&self) -> u64 {
        self.writer.n_bits().div_ceil(8)
    }

    /// The dictionary and the data.
    #[must_use]
    pub fn finish(self) -> EncodedBatch {
        EncodedBatch {
            dictionary: SeriesDictionary {
                sources: self
                    .sources
                    .into_iter()
                    .map(SourceEncoder::into_series)
                    .collect(),
            },
            data: self.writer.finish(),
            first_at_ms: self.first_at_ms.unwrap_or_default(),
            n_scrapes: self.n_scrapes,
            n_samples: self.n_samples,
        }
    }
}

/// One source's part of a batch being decoded.
#[derive(Debug, Default)]
struct SourceDecoder {
    states: Vec<ValueState>,
    clock: SourceClock,
    previous_ids: Option<Vec<u32>>,
}

/// The scrapes of a batch, decoded one at a time (an iterator): memory holds the data, the
/// dictionary and one scrape.
#[derive(Debug)]
pub struct BatchDecoder {
    dictionary: Arc<SeriesDictionary>,
    data: Vec<u8>,
    position: u64,
    first_at_ms: i64,
    remaining: u32,
    sources: Vec<SourceDecoder>,
    done: bool,
}

impl BatchDecoder {
    /// The decoder of `n_scrapes` scrapes in `data`, whose first was handled at
    /// `first_at_ms`, with the series of `dictionary`.
    #[must_use]
    pub fn new(
        dictionary: Arc<SeriesDictionary>,
        data: Vec<u8>,
        first_at_ms: i64,
        n_scrapes: u32,
    ) -> BatchDecoder {
        let sources = dictionary
            .sources
            .iter()
            .map(|source| SourceDecoder {
                states: vec![ValueState::default(); source.series.len()],
                ..SourceDecoder::default()
            })
            .collect();
        BatchDecoder {
            dictionary,
            data,
            position: 0,
            first_at_ms,
            remaining: n_scrapes,
            sources,
            done: false,
        }
    }

    /// Decodes the next scrape.
    fn decode_one(&mut self) -> Result<DecodedScrape, CodecError> {
        let mut reader = BitReader::at(&self.data, self.position);
        let index = reader.unsigned()?;
        let (Some(series), Some(decoder)) = (
            usize::try_from(index)
                .ok()
                .and_then(|idx| self.dictionary.sources.get(idx)),
            usize::try_from(index)
                .ok()
                .and_then(|idx| self.sources.get_mut(idx)),
        ) else {
            return Err(CodecError::UnknownSource { index });
        };
        let (at_ms, scraped_at) = decoder.clock.decode(&mut reader, self.first_at_ms)?;
        let ids = if reader.bit()? {
            let n = reader.unsigned()?;
            // Every sample takes at least two bits (its index and its value).
            if n > reader.bits_left() / 2 {
                return Err(CodecError::TooManySamples { n });
            }
            let mut ids = Vec::with_capacity(usize::try_from(n).unwrap_or_default());
            let mut expected = 0_i64;
            for _ in 0..n {
                let id = expected.wrapping_add(reader.signed()?);
                let known = usize::try_from(id)
                    .ok()
                    .filter(|idx| *idx < series.series.len())
                    .and_then(|idx| u32::try_from(idx).ok());
                let Some(id) = known else {
                    return Err(CodecError::UnknownSeries {
                        source_name: series.source.clone(),
                        id: id as u64,
                    });
                };
                ids.push(id);
                expected = i64::from(id) + 1;
            }
            ids
        } else {
            decoder
                .previous_ids
                .clone()
                .ok_or(CodecError::RepeatBeforeAny)?
        };
        let has_timestamps = reader.bit()?;
        let mut samples = Vec::with_capacity(ids.len());
        for id in &ids {
            let (Some(state), Some((name, labels))) = (
                decoder.states.get_mut(*id as usize),
                series.series.get(*id as usize),
            ) else {
                return Err(CodecError::UnknownSeries {
                    source_name: series.source.clone(),
                    id: u64::from(*id),
                });
            };
            let timestamp_ms = if has_timestamps {
                state.decode_timestamp(&mut reader, scraped_at)?
            } else {
                None
            };
            let value = state.decode(&mut reader)?;
            samples.push(Sample {
                name: name.clone(),
                labels: labels.clone(),
                value,
                timestamp_ms,
            });
        }
        decoder.previous_ids = Some(ids);
        self.position = reader.position();
        Ok(DecodedScrape {
            at_ms,
            source: series.source.clone(),
            scraped_at: Timestamp(scraped_at),
            samples,
        })
    }
}

impl Iterator for BatchDecoder {
    type Item = Result<DecodedScrape, CodecError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            self.done = true;
            return BitReader::at(&self.data, self.position)
                .finish()
                .err()
                .map(Err);
        }
        self.remaining -= 1;
        let decoded = self.decode_one();
        if decoded.is_err() {
            self.done = true;
        }
        Some(decoded)
    }
}
