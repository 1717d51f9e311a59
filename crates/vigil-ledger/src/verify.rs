//! Verification: re-reading the whole log in pages bounded by bytes (see `read.rs`) and
//! recomputing every hash, the tree head, the heads at the stored checkpoints' sizes, and
//! every blob an entry refers to.
//!
//! Memory: one page of rows, the Merkle frontier (O(log n) hashes), one blob at a time, at
//! most [`CHECKED_BLOBS_REMEMBERED`] blob hashes already checked, and the stored checkpoints
//! whose sizes fall within one page of entries (at most one per entry of the page).

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};
use std::fmt;

use crate::archive::ArchivedPrefix;
use crate::backend::{RawEntry, hash_column, stored_seq};
use crate::checkpoint::Checkpoint;
use crate::hash::{GENESIS_CHAIN_HASH, chain_hash, entry_leaf_hash};
use crate::merkle::Frontier;
use crate::read::{EntryFilter, PageLimits, READ_PAGE_BYTES, RowError};
use crate::stored_checkpoints::CHECKPOINT_PAGE_ROWS;
use crate::{Ledger, LedgerError};

/// How many checked blob hashes a verification remembers, so that a blob referred to by many
/// entries is fetched and hashed once (about 4 MiB). When the set is full it is emptied: a blob
/// referred to again later is checked again, which costs time, never a missed problem.
pub const CHECKED_BLOBS_REMEMBERED: usize = 65_536;

/// The outcome of [`Ledger::verify`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// How many entries, from seq 0, were found intact (all of them when there is no problem).
    pub n_entries: u64,
    /// The chain hash of the last intact entry; `None` when there is none.
    pub head_chain_hash: Option<[u8; 32]>,
    /// The RFC 6962 tree head over the leaf hashes of the intact entries (of all of them
    /// when there is no problem): what a checkpoint signs and proofs lead to.
    pub tree_head: [u8; 32],
    /// The first entry found wrong, if any; verification stops there.
    pub first_problem: Option<VerifyProblem>,
}

impl VerifyReport {
    /// Whether every stored entry is intact.
    ///
    /// Entries removed from the end of the log leave it intact: only a checkpoint of the head
    /// kept elsewhere can reveal that truncation.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.first_problem.is_none()
    }
}

/// The first entry that failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyProblem {
    /// The seq of the entry, or the missing seq for [`ProblemReason::SequenceGap`].
    pub seq: u64,
    /// What is wrong.
    pub reason: ProblemReason,
}

/// Why an entry failed verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemReason {
    /// The leaf hash does not match the stored columns: the payload, time, kind, incident or
    /// seq of this row was changed (including by moving the row to another seq).
    PayloadModified,
    /// The leaf hash matches but the chain hash does not: an entry before this one was
    /// deleted, reordered or inserted, or this row's leaf hash was recomputed after an edit.
    ChainBroken,
    /// The seq does not follow the previous one: entries were deleted.
    SequenceGap {
        /// The seq that should come next.
        expected: u64,
        /// The seq found instead.
        found: u64,
    },
    /// The row cannot be read as an entry (a negative seq, a hash that is not 32 bytes, a
    /// column of the wrong type).
    MalformedRow(String),
    /// The entry refers to a blob (a `..._blob` field) that the blob table does not hold.
    MissingBlob {
        /// The blob's hash.
        hash: String,
    },
    /// The entry refers to a blob whose stored content no longer has its hash.
    CorruptBlob {
        /// The blob's hash.
        hash: String,
    },
    /// The leaf hashes kept for the archived entries (`archive.rs`) do not run from seq 0 to
    /// the archived prefix's end, or one is malformed.
    ArchiveMismatch(String),
}

impl fmt::Display for VerifyProblem {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seq = self.seq;
        match &self.reason {
            ProblemReason::PayloadModified => {
                write!(
                    formatter,
                    "entry {seq} was modified: its leaf hash does not match"
                )
            }
            ProblemReason::ChainBroken => write!(
                formatter,
                "the chain breaks at entry {seq}: it does not link to the entry before it (an entry up to here was edited with its hash recomputed, or entries were removed, reordered or inserted)"
            ),
            ProblemReason::SequenceGap { expected, found } => write!(
                formatter,
                "entries are missing: expected seq {expected}, found seq {found}"
            ),
            ProblemReason::MalformedRow(reason) => {
                write!(formatter, "entry {seq} is malformed: {reason}")
            }
            ProblemReason::MissingBlob { hash } => write!(
                formatter,
                "entry {seq} refers to blob {hash}, which the ledger does not hold"
            ),
            ProblemReason::CorruptBlob { hash } => write!(
                formatter,
                "entry {seq} refers to blob {hash}, whose stored content was changed"
            ),
            ProblemReason::ArchiveMismatch(reason) => {
                write!(
                    formatter,
                    "the archived prefix does not hold at seq {seq}: {reason}"
                )
            }
        }
    }
}

/// A stored checkpoint met by [`Ledger::verify_with_checkpoints`], with the tree head the
/// log has at the checkpoint's size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointHead {
    /// The checkpoint, as stored (its signature not checked).
    pub checkpoint: Checkpoint,
    /// The tree head of the log's first `tree_size` entries; `None` when the intact log is
    /// shorter than that.
    pub head: Option<[u8; 32]>,
}

/// What a verification pass tells its caller as it goes, besides its report.
pub(crate) trait PassHooks {
    /// The leaf hash of the next intact entry, in seq order.
    fn leaf(&mut self, _leaf_hash: &[u8; 32]) -> Result<(), LedgerError> {
        Ok(())
    }

    /// Whether the pass should read the stored checkpoints and call
    /// [`checkpoint`](PassHooks::checkpoint).
    fn wants_checkpoints(&self) -> bool {
        false
    }

    /// A stored checkpoint, in tree size order, once the pass knows the head at its size.
    fn checkpoint(&mut self, _met: CheckpointHead) {}
}

/// A pass that only verifies.
struct NoHooks;

impl PassHooks for NoHooks {}

/// A pass that hands every stored checkpoint to a function.
struct CheckpointHooks<F>(F);

impl<F: FnMut(CheckpointHead)> PassHooks for CheckpointHooks<F> {
    fn wants_checkpoints(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, met: CheckpointHead) {
        (self.0)(met);
    }
}

impl Ledger {
    /// Re-reads every entry, a page at a time (at most [`VERIFY_PAGE_ROWS`] rows and
    /// [`READ_PAGE_BYTES`] of them, or one larger entry), and recomputes its leaf and chain
    /// hashes; reports the first entry that is wrong, and the RFC 6962 tree head of the
    /// intact entries, computed in the same pass. Every blob an entry refers to is checked.
    ///
    /// [`VERIFY_PAGE_ROWS`]: crate::VERIFY_PAGE_ROWS
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails. A tampered or garbled row is not an
    /// error: it is the report's `first_problem`.
    pub async fn verify(&self) -> Result<VerifyReport, LedgerError> {
        self.verify_with_limits(PageLimits::default()).await
    }

    /// [`verify`](Ledger::verify), fetching at most `page_rows` rows per round trip (at
    /// least 1).
    ///
    /// # Errors
    ///
    /// As for [`verify`](Ledger::verify).
    pub async fn verify_with_page_size(&self, page_rows: u32) -> Result<VerifyReport, LedgerError> {
        let limits = PageLimits {
            rows: page_rows,
            bytes: READ_PAGE_BYTES,
        };
        self.verify_with_limits(limits).await
    }

    /// [`verify`](Ledger::verify), reading pages within `limits`.
    ///
    /// # Errors
    ///
    /// As for [`verify`](Ledger::verify).
    pub async fn verify_with_limits(
        &self,
        limits: PageLimits,
    ) -> Result<VerifyReport, LedgerError> {
        self.verify_pass(limits, &BTreeSet::new(), &mut NoHooks)
            .await
            .map(|(report, _)| report)
    }

    /// [`verify`](Ledger::verify), also giving the tree head at each of `sizes` that the
    /// intact log reaches (for checking checkpoints of those sizes in the same pass).
    ///
    /// # Errors
    ///
    /// As for [`verify`](Ledger::verify).
    pub async fn verify_with_heads(
        &self,
        sizes: &BTreeSet<u64>,
    ) -> Result<(VerifyReport, BTreeMap<u64, [u8; 32]>), LedgerError> {
        self.verify_pass(PageLimits::default(), sizes, &mut NoHooks)
            .await
    }

    /// [`verify_with_heads`](Ledger::verify_with_heads), also handing every stored
    /// checkpoint to `on_checkpoint`, in tree size order, with the log's head at its size:
    /// the checkpoints are read a page at a time as the pass reaches their sizes, so there is
    /// no need to hold them all. When the log is intact, every stored checkpoint is handed
    /// over (those beyond its end with no head); when it is not, those up to the first
    /// problem.
    ///
    /// # Errors
    ///
    /// As for [`verify`](Ledger::verify), and [`LedgerError::MalformedCheckpoint`] when a
    /// stored checkpoint cannot be read.
    pub async fn verify_with_checkpoints<F: FnMut(CheckpointHead)>(
        &self,
        sizes: &BTreeSet<u64>,
        on_checkpoint: F,
    ) -> Result<(VerifyReport, BTreeMap<u64, [u8; 32]>), LedgerError> {
        self.verify_pass(
            PageLimits::default(),
            sizes,
            &mut CheckpointHooks(on_checkpoint),
        )
        .await
    }

    /// The one verification pass behind every `verify_*`.
    pub(crate) async fn verify_pass(
        &self,
        limits: PageLimits,
        sizes: &BTreeSet<u64>,
        hooks: &mut dyn PassHooks,
    ) -> Result<(VerifyReport, BTreeMap<u64, [u8; 32]>), LedgerError> {
        let mut verifier = Verifier::new(sizes);
        let mut blobs = BlobChecks::default();
        let mut pending: VecDeque<Checkpoint> = VecDeque::new();
        if hooks.wants_checkpoints() {
            // Checkpoints of the empty tree (and rows with a negative size, which are refused
            // as malformed) come before any entry.
            self.load_checkpoints(i64::MIN, 0, &mut pending).await?;
            verifier.meet_checkpoints(&mut pending, hooks);
        }
        // The archived entries' leaf hashes come first, then the live entries carry on from
        // the archived prefix's chain hash.
        if let Some(prefix) = self.archived_prefix().await?
            && let Err(problem) = self
                .stream_archived(&mut verifier, &prefix, &mut pending, hooks)
                .await?
        {
            return Ok((verifier.report(Some(problem)), verifier.heads));
        }
        // Starting below zero makes a row moved to a negative seq show up as malformed.
        let mut from_seq = Some(i64::MIN);
        // Bounded: every page moves `from_seq` past at least one seq, or ends the pass.
        while let Some(from) = from_seq {
            let page = self.raw_page(from, &EntryFilter::default(), limits).await?;
            from_seq = page.next_from;
            if hooks.wants_checkpoints() {
                let reach = verifier.expected_seq.saturating_add(page.rows.len() as u64);
                let after = i64::try_from(verifier.expected_seq).unwrap_or(i64::MAX);
                let up_to = i64::try_from(reach).unwrap_or(i64::MAX);
                self.load_checkpoints(after, up_to, &mut pending).await?;
            }
            for row in page.rows {
                let checked = match verifier.check(row) {
                    Ok(checked) => checked,
                    Err(problem) => return Ok((verifier.report(Some(problem)), verifier.heads)),
                };
                hooks.leaf(&checked.leaf_hash)?;
                verifier.meet_checkpoints(&mut pending, hooks);
                for hash in &checked.blob_refs {
                    self.check_blob(hash, checked.seq, &mut blobs).await?;
                }
            }
            pending.clear();
        }
        if hooks.wants_checkpoints() {
            // The checkpoints beyond the intact log's end: no head to hand with them.
            let after = i64::try_from(verifier.expected_seq).unwrap_or(i64::MAX);
            self.drain_checkpoints(after, hooks).await?;
        }
        let problem = blobs.first_problem.take();
        Ok((verifier.report(problem), verifier.heads))
    }

    /// Streams the leaf hashes kept for the archived prefix into the pass, a page at a time,
    /// meeting the checkpoints of their sizes; the inner `Err` is the first problem.
    async fn stream_archived(
        &self,
        verifier: &mut Verifier,
        prefix: &ArchivedPrefix,
        pending: &mut VecDeque<Checkpoint>,
        hooks: &mut dyn PassHooks,
    ) -> Result<Result<(), VerifyProblem>, LedgerError> {
        let mut from = 0_i64;
        // Bounded: every page moves `from` past at least one leaf, or ends the stream.
        loop {
            let page = self
                .archived_leaves_page(from, i64::from(crate::VERIFY_PAGE_ROWS))
                .await?;
            let Some(&(last, _)) = page.last() else {
                break;
            };
            if hooks.wants_checkpoints() {
                let reach = verifier.expected_seq.saturating_add(page.len() as u64);
                let after = i64::try_from(verifier.expected_seq).unwrap_or(i64::MAX);
                let up_to = i64::try_from(reach).unwrap_or(i64::MAX);
                self.load_checkpoints(after, up_to, pending).await?;
            }
            for (seq, leaf_hash) in &page {
                match verifier.archived_leaf(*seq, leaf_hash) {
                    Ok(leaf) => {
                        hooks.leaf(&leaf)?;
                        verifier.meet_checkpoints(pending, hooks);
                    }
                    Err(problem) => return Ok(Err(problem)),
                }
            }
            pending.clear();
            from = last.saturating_add(1);
        }
        Ok(verifier.after_prefix(prefix))
    }

    /// Appends the stored checkpoints with `after < tree_size <= up_to` to `pending`, a page
    /// at a time.
    async fn load_checkpoints(
        &self,
        mut after: i64,
        up_to: i64,
        pending: &mut VecDeque<Checkpoint>,
    ) -> Result<(), LedgerError> {
        // Bounded: every full page moves `after` forward, to at most `up_to`.
        loop {
            let page = self.checkpoints_in(after, up_to).await?;
            let is_last = page.len() < CHECKPOINT_PAGE_ROWS as usize;
            match page.last() {
                Some(last) => after = i64::try_from(last.tree_size).unwrap_or(i64::MAX),
                None => return Ok(()),
            }
            pending.extend(page);
            if is_last || after >= up_to {
                return Ok(());
            }
        }
    }

    /// Hands every stored checkpoint with `tree_size > after` to `hooks` with no head.
    async fn drain_checkpoints(
        &self,
        mut after: i64,
        hooks: &mut dyn PassHooks,
    ) -> Result<(), LedgerError> {
        // Bounded as `load_checkpoints` is.
        loop {
            let page = self.checkpoints_in(after, i64::MAX).await?;
            let is_last = page.len() < CHECKPOINT_PAGE_ROWS as usize;
            let Some(last) = page.last() else {
                return Ok(());
            };
            after = i64::try_from(last.tree_size).unwrap_or(i64::MAX);
            for checkpoint in page {
                hooks.checkpoint(CheckpointHead {
                    checkpoint,
                    head: None,
                });
            }
            if is_last || after == i64::MAX {
                return Ok(());
            }
        }
    }

    /// Checks blob `hash`, referred to by entry `seq`, unless it was checked already or an
    /// earlier blob problem was found; records the first problem.
    async fn check_blob(
        &self,
        hash: &str,
        seq: u64,
        blobs: &mut BlobChecks,
    ) -> Result<(), LedgerError> {
        let mut key = [0_u8; 32];
        if blobs.first_problem.is_some()
            || hex::decode_to_slice(hash, &mut key).is_err()
            || blobs.checked.contains(&key)
        {
            return Ok(());
        }
        let reason = match self.get_blob(hash).await {
            Ok(Some(_)) => {
                if blobs.checked.len() >= CHECKED_BLOBS_REMEMBERED {
                    blobs.checked.clear();
                }
                blobs.checked.insert(key);
                return Ok(());
            }
            Ok(None) => ProblemReason::MissingBlob {
                hash: hash.to_owned(),
            },
            Err(LedgerError::BlobCorrupted { .. }) => ProblemReason::CorruptBlob {
                hash: hash.to_owned(),
            },
            Err(error) => return Err(error),
        };
        blobs.first_problem = Some(VerifyProblem { seq, reason });
        Ok(())
    }
}

/// The blobs a verification has checked, and the first entry naming a missing or changed
/// one (reported only when every hash holds: a broken entry is the graver problem).
#[derive(Default)]
struct BlobChecks {
    /// Blob hashes found intact, at most [`CHECKED_BLOBS_REMEMBERED`].
    checked: HashSet<[u8; 32]>,
    /// The first problem, in seq order.
    first_problem: Option<VerifyProblem>,
}

/// An intact row, as the pass needs it after the check.
struct CheckedRow {
    seq: u64,
    leaf_hash: [u8; 32],
    /// The blobs its payload refers to.
    blob_refs: Vec<String>,
}

/// The running state of a verification.
struct Verifier {
    /// The seq the next row must have; also the number of intact rows so far.
    expected_seq: u64,
    /// The chain hash of the last intact row.
    previous_chain_hash: [u8; 32],
    /// The Merkle tree of the intact rows' leaf hashes.
    frontier: Frontier,
    /// The tree sizes whose heads are wanted.
    wanted: BTreeSet<u64>,
    /// The heads at the wanted sizes reached so far.
    heads: BTreeMap<u64, [u8; 32]>,
}

impl Verifier {
    fn new(sizes: &BTreeSet<u64>) -> Verifier {
        let frontier = Frontier::new();
        let mut heads = BTreeMap::new();
        if sizes.contains(&0) {
            heads.insert(0, frontier.root());
        }
        Verifier {
            expected_seq: 0,
            previous_chain_hash: GENESIS_CHAIN_HASH,
            frontier,
            wanted: sizes.clone(),
            heads,
        }
    }

    /// Hands `hooks` the pending checkpoints of the current tree size, with its head.
    fn meet_checkpoints(&self, pending: &mut VecDeque<Checkpoint>, hooks: &mut dyn PassHooks) {
        let size = self.frontier.size();
        // Bounded by the pending checkpoints.
        while pending
            .front()
            .is_some_and(|checkpoint| checkpoint.tree_size <= size)
        {
            let Some(checkpoint) = pending.pop_front() else {
                break;
            };
            // Sizes are unique and the tree grows one leaf at a time, so a smaller size was
            // met already: only a size of exactly this tree gets its head.
            let head = (checkpoint.tree_size == size).then(|| self.frontier.root());
            hooks.checkpoint(CheckpointHead { checkpoint, head });
        }
    }

    /// Takes the next leaf hash kept for an archived entry, in seq order.
    fn archived_leaf(&mut self, seq: i64, leaf_hash: &[u8]) -> Result<[u8; 32], VerifyProblem> {
        let expected = self.expected_seq;
        let problem = |reason: String| VerifyProblem {
            seq: expected,
            reason: ProblemReason::ArchiveMismatch(reason),
        };
        if stored_seq(seq).ok() != Some(expected) {
            return Err(problem(format!(
                "the kept leaf hashes skip from seq {expected} to {seq}"
            )));
        }
        let leaf = hash_column("leaf_hash", leaf_hash).map_err(problem)?;
        self.frontier.push(leaf);
        if self.wanted.contains(&self.frontier.size()) {
            self.heads
                .insert(self.frontier.size(), self.frontier.root());
        }
        self.expected_seq = expected + 1;
        Ok(leaf)
    }

    /// Carries on after the archived prefix: the kept leaf hashes must end where it does, and
    /// the first live entry must link to its chain hash.
    fn after_prefix(&mut self, prefix: &ArchivedPrefix) -> Result<(), VerifyProblem> {
        if self.expected_seq != prefix.n_entries {
            return Err(VerifyProblem {
                seq: self.expected_seq,
                reason: ProblemReason::ArchiveMismatch(format!(
                    "{} entries were archived but {} leaf hashes are kept",
                    prefix.n_entries, self.expected_seq
                )),
            });
        }
        self.previous_chain_hash = prefix.chain_hash;
        Ok(())
    }

    /// Checks the next row in seq order.
    fn check(&mut self, row: Result<RawEntry, RowError>) -> Result<CheckedRow, VerifyProblem> {
        let expected = self.expected_seq;
        let problem = |seq, reason| VerifyProblem { seq, reason };
        let raw = match row {
            Ok(raw) => raw,
            Err((_, reason)) => return Err(problem(expected, ProblemReason::MalformedRow(reason))),
        };
        let seq = match stored_seq(raw.seq) {
            Ok(seq) => seq,
            Err(reason) => return Err(problem(expected, ProblemReason::MalformedRow(reason))),
        };
        if seq != expected {
            let reason = ProblemReason::SequenceGap {
                expected,
                found: seq,
            };
            return Err(problem(expected, reason));
        }
        let hashes = hash_column("leaf_hash", &raw.leaf_hash)
            .and_then(|leaf| Ok((leaf, hash_column("chain_hash", &raw.chain_hash)?)));
        let (stored_leaf_hash, stored_chain_hash) = match hashes {
            Ok(hashes) => hashes,
            Err(reason) => return Err(problem(seq, ProblemReason::MalformedRow(reason))),
        };
        let leaf_hash = entry_leaf_hash(
            seq,
            raw.at_ms,
            &raw.kind,
            raw.incident_id.as_deref(),
            &raw.payload,
        );
        if leaf_hash != stored_leaf_hash {
            return Err(problem(seq, ProblemReason::PayloadModified));
        }
        if chain_hash(&self.previous_chain_hash, &stored_leaf_hash) != stored_chain_hash {
            return Err(problem(seq, ProblemReason::ChainBroken));
        }
        self.previous_chain_hash = stored_chain_hash;
        self.frontier.push(stored_leaf_hash);
        if self.wanted.contains(&self.frontier.size()) {
            self.heads
                .insert(self.frontier.size(), self.frontier.root());
        }
        // INVARIANT: seq came from an i64, so this cannot overflow.
        self.expected_seq = seq + 1;
        Ok(CheckedRow {
            seq,
            leaf_hash,
            blob_refs: crate::hash::blob_references(&raw.payload)
                .map(str::to_owned)
                .collect(),
        })
    }

    /// The report after the rows checked so far.
    fn report(&self, first_problem: Option<VerifyProblem>) -> VerifyReport {
        VerifyReport {
            n_entries: self.expected_seq,
            head_chain_hash: (self.expected_seq > 0).then_some(self.previous_chain_hash),
            tree_head: self.frontier.root(),
            first_problem,
        }
    }
}
