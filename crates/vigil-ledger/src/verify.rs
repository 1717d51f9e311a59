//! Verification: re-reading the whole log in pages and recomputing every hash.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use sqlx::FromRow;

use crate::backend::{RawEntry, SELECT_FROM_SEQ, hash_column, stored_seq, with_pool};
use crate::hash::{GENESIS_CHAIN_HASH, chain_hash, entry_bytes, leaf_hash};
use crate::merkle::Frontier;
use crate::{Ledger, LedgerError};

/// Rows fetched per round trip by [`Ledger::verify`]: memory stays bounded by one page.
pub const VERIFY_PAGE_ROWS: u32 = 10_000;

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
        }
    }
}

impl Ledger {
    /// Re-reads every entry, [`VERIFY_PAGE_ROWS`] at a time, and recomputes its leaf and chain
    /// hashes; reports the first entry that is wrong, and the RFC 6962 tree head of the
    /// intact entries, computed in the same pass.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails. A tampered or garbled row is not an
    /// error: it is the report's `first_problem`.
    pub async fn verify(&self) -> Result<VerifyReport, LedgerError> {
        self.verify_with_page_size(VERIFY_PAGE_ROWS).await
    }

    /// [`verify`](Ledger::verify), fetching `page_rows` rows per round trip (at least 1).
    ///
    /// # Errors
    ///
    /// As for [`verify`](Ledger::verify).
    pub async fn verify_with_page_size(&self, page_rows: u32) -> Result<VerifyReport, LedgerError> {
        self.verify_pages(page_rows, &BTreeSet::new())
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
        self.verify_pages(VERIFY_PAGE_ROWS, sizes).await
    }

    async fn verify_pages(
        &self,
        page_rows: u32,
        sizes: &BTreeSet<u64>,
    ) -> Result<(VerifyReport, BTreeMap<u64, [u8; 32]>), LedgerError> {
        let page_rows = page_rows.max(1);
        let mut verifier = Verifier::default();
        if sizes.contains(&0) {
            verifier.heads.insert(0, verifier.frontier.root());
        }
        verifier.wanted = sizes.clone();
        // Starting below zero makes a row moved to a negative seq show up as malformed.
        let mut from_seq = i64::MIN;
        loop {
            let page: Vec<Result<RawEntry, String>> = with_pool!(&self.backend, pool => {
                sqlx::query(SELECT_FROM_SEQ)
                    .bind(from_seq)
                    .bind(i64::from(page_rows))
                    .fetch_all(pool)
                    .await
                    .map(|rows| {
                        rows.iter()
                            .map(|row| RawEntry::from_row(row).map_err(|error| error.to_string()))
                            .collect()
                    })
            })
            .map_err(|source| self.query_error("verify entries", source))?;
            let is_last_page = page.len() < page_rows as usize;
            for row in page {
                if let Some(problem) = verifier.check(row) {
                    return Ok((verifier.report(Some(problem)), verifier.heads));
                }
            }
            // Every row so far was intact, so the seqs were 0..expected_seq without a gap.
            match i64::try_from(verifier.expected_seq) {
                Ok(next_seq) if !is_last_page => from_seq = next_seq,
                _ => {
                    let problem = self.check_blobs(&verifier.blob_refs).await?;
                    return Ok((verifier.report(problem), verifier.heads));
                }
            }
        }
    }
}

impl Ledger {
    /// The first blob reference (in seq order) whose blob is missing or changed.
    async fn check_blobs(
        &self,
        blob_refs: &BTreeMap<String, u64>,
    ) -> Result<Option<VerifyProblem>, LedgerError> {
        let mut by_seq: Vec<(&u64, &String)> =
            blob_refs.iter().map(|(hash, seq)| (seq, hash)).collect();
        by_seq.sort();
        for (seq, hash) in by_seq {
            let reason = match self.get_blob(hash).await {
                Ok(Some(_)) => continue,
                Ok(None) => ProblemReason::MissingBlob { hash: hash.clone() },
                Err(LedgerError::BlobCorrupted { .. }) => {
                    ProblemReason::CorruptBlob { hash: hash.clone() }
                }
                Err(error) => return Err(error),
            };
            return Ok(Some(VerifyProblem { seq: *seq, reason }));
        }
        Ok(None)
    }
}

/// The blob hashes a payload refers to: the 64 lowercase hex digits that follow a
/// `"..._blob":"` key, by the ledger's naming convention for content-addressed references.
fn blob_references(payload: &str) -> impl Iterator<Item = &str> {
    payload
        .match_indices("_blob\":\"")
        .filter_map(move |(at, marker)| {
            let start = at + marker.len();
            let hash = payload.get(start..start + 64)?;
            let is_hash = hash
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
                && payload.get(start + 64..start + 65) == Some("\"");
            is_hash.then_some(hash)
        })
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
    /// Every blob referred to, with the first entry that refers to it.
    blob_refs: BTreeMap<String, u64>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            expected_seq: 0,
            previous_chain_hash: GENESIS_CHAIN_HASH,
            frontier: Frontier::new(),
            wanted: BTreeSet::new(),
            heads: BTreeMap::new(),
            blob_refs: BTreeMap::new(),
        }
    }
}

impl Verifier {
    /// Checks the next row in seq order; `None` when it is intact.
    fn check(&mut self, row: Result<RawEntry, String>) -> Option<VerifyProblem> {
        let expected = self.expected_seq;
        let problem = |seq, reason| Some(VerifyProblem { seq, reason });
        let raw = match row {
            Ok(raw) => raw,
            Err(reason) => return problem(expected, ProblemReason::MalformedRow(reason)),
        };
        let seq = match stored_seq(raw.seq) {
            Ok(seq) => seq,
            Err(reason) => return problem(expected, ProblemReason::MalformedRow(reason)),
        };
        if seq != expected {
            let reason = ProblemReason::SequenceGap {
                expected,
                found: seq,
            };
            return problem(expected, reason);
        }
        let hashes = hash_column("leaf_hash", &raw.leaf_hash)
            .and_then(|leaf| Ok((leaf, hash_column("chain_hash", &raw.chain_hash)?)));
        let (stored_leaf_hash, stored_chain_hash) = match hashes {
            Ok(hashes) => hashes,
            Err(reason) => return problem(seq, ProblemReason::MalformedRow(reason)),
        };
        let bytes = entry_bytes(
            seq,
            raw.at_ms,
            &raw.kind,
            raw.incident_id.as_deref(),
            &raw.payload,
        );
        if leaf_hash(bytes.as_bytes()) != stored_leaf_hash {
            return problem(seq, ProblemReason::PayloadModified);
        }
        if chain_hash(&self.previous_chain_hash, &stored_leaf_hash) != stored_chain_hash {
            return problem(seq, ProblemReason::ChainBroken);
        }
        self.previous_chain_hash = stored_chain_hash;
        self.frontier.push(stored_leaf_hash);
        for hash in blob_references(&raw.payload) {
            if !self.blob_refs.contains_key(hash) {
                self.blob_refs.insert(hash.to_owned(), seq);
            }
        }
        if self.wanted.contains(&self.frontier.size()) {
            self.heads
                .insert(self.frontier.size(), self.frontier.root());
        }
        // INVARIANT: seq came from an i64, so this cannot overflow.
        self.expected_seq = seq + 1;
        None
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
