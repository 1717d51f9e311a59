//! Where samples' labels live: chunks shared by neighbouring samples, so that a scrape's
//! labels cost one allocation per chunk rather than one per sample. A sample's [`Labels`]
//! reads as a slice.

use std::fmt;
use std::ops::{Deref, Range};
use std::sync::Arc;

use super::{Label, ParsedSample};

/// Labels per chunk. 48 bytes each: a chunk stays below the allocator's threshold for
/// mapping fresh pages, so chunks are reused from scrape to scrape.
const CHUNK_LABELS: usize = 1024;

/// The labels of one sample, in the order they were written. It dereferences to a slice
/// (`iter`, `len`, indexing); cloning it shares the storage.
#[derive(Clone, Default)]
pub struct Labels<'a> {
    /// The chunk holding these labels (none while the parser is still filling it).
    chunk: Option<Arc<Vec<Label<'a>>>>,
    range: Range<usize>,
}

impl<'a> Deref for Labels<'a> {
    type Target = [Label<'a>];

    fn deref(&self) -> &[Label<'a>] {
        self.chunk
            .as_deref()
            .and_then(|chunk| chunk.get(self.range.clone()))
            .unwrap_or_default()
    }
}

impl PartialEq for Labels<'_> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl fmt::Debug for Labels<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// Fills chunks with the labels of the samples being parsed. Each line's labels are written
/// straight into the chunk being filled; a line that fails is rolled back.
#[derive(Default)]
pub(super) struct LabelStore<'a> {
    /// The chunk being filled.
    filling: Vec<Label<'a>>,
    /// The first sample whose labels are in `filling`.
    first_pending_sample: usize,
    /// Where the current line's labels start in `filling`.
    line_start: usize,
}

impl<'a> LabelStore<'a> {
    /// Starts a line whose sample, if any, will be `samples[samples.len()]`; returns the
    /// buffer its labels are appended to. A full chunk is handed to its samples first.
    pub(super) fn start_line(&mut self, samples: &mut [ParsedSample<'a>]) -> &mut Vec<Label<'a>> {
        if self.filling.len() >= CHUNK_LABELS {
            self.freeze(samples);
            self.first_pending_sample = samples.len();
        }
        if self.filling.capacity() == 0 {
            // Some room over the chunk size, so that the line that fills it rarely reallocates.
            self.filling.reserve_exact(CHUNK_LABELS + 64);
        }
        self.line_start = self.filling.len();
        &mut self.filling
    }

    /// The current line's labels so far.
    pub(super) fn line_labels(&self) -> &[Label<'a>] {
        self.filling.get(self.line_start..).unwrap_or_default()
    }

    /// Drops the current line's labels (the line failed).
    pub(super) fn roll_back_line(&mut self) {
        self.filling.truncate(self.line_start);
    }

    /// The current line's labels, for its sample; they reach it when the chunk is frozen.
    pub(super) fn keep_line(&self) -> Labels<'a> {
        Labels {
            chunk: None,
            range: self.line_start..self.filling.len(),
        }
    }

    /// Hands the chunk being filled to the samples whose labels it holds (all of
    /// `samples[first_pending_sample..]`).
    pub(super) fn freeze(&mut self, samples: &mut [ParsedSample<'a>]) {
        let chunk = Arc::new(std::mem::take(&mut self.filling));
        for sample in samples.iter_mut().skip(self.first_pending_sample) {
            sample.labels.chunk = Some(Arc::clone(&chunk));
        }
        self.line_start = 0;
    }

    /// Hands the last chunk to its samples, first giving back the room it did not use (a
    /// small scrape does not keep a whole chunk alive).
    pub(super) fn finish(mut self, samples: &mut [ParsedSample<'a>]) {
        if self.filling.len() < self.filling.capacity() / 2 {
            self.filling.shrink_to_fit();
        }
        self.freeze(samples);
    }
}
