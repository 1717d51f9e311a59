//! Proofs against the stored log, from one pass over its leaf hashes ([`RangeHeads`]): an
//! entry's inclusion proof and the consistency proof between two tree sizes, holding O(log n)
//! hashes and one page of leaf hashes, whatever the log's size.

use crate::backend::hash_column;
use crate::merkle::{Frontier, RangeHeads, consistency_ranges, inclusion_ranges};
use crate::{Ledger, LedgerError, VERIFY_PAGE_ROWS};

/// The inclusion proof of one entry in the tree of the log's first `tree_size` entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry.
    pub seq: u64,
    /// The tree's size.
    pub tree_size: u64,
    /// The entry's leaf hash, as stored.
    pub leaf_hash: [u8; 32],
    /// The tree's head.
    pub tree_head: [u8; 32],
    /// The proof (RFC 9162 `PATH`).
    pub proof: Vec<[u8; 32]>,
}

/// The consistency proof between the trees of the log's first `from_size` and `to_size`
/// entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The earlier tree's size.
    pub from_size: u64,
    /// Its head.
    pub from_head: [u8; 32],
    /// The later tree's size.
    pub to_size: u64,
    /// Its head.
    pub to_head: [u8; 32],
    /// The proof (RFC 9162 `PROOF`).
    pub proof: Vec<[u8; 32]>,
}

impl Ledger {
    /// The inclusion proof of entry `seq` in the tree of the first `tree_size` entries, from
    /// the stored leaf hashes (which this does not check against the entries: verify first);
    /// `None` unless `seq < tree_size` and the log holds `tree_size` entries.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails, [`LedgerError::MalformedRow`] when the
    /// stored leaf hashes have a gap or a malformed hash.
    pub async fn prove_inclusion(
        &self,
        seq: u64,
        tree_size: u64,
    ) -> Result<Option<InclusionProof>, LedgerError> {
        let Some(ranges) = inclusion_ranges(seq, tree_size) else {
            return Ok(None);
        };
        let mut heads = RangeHeads::new(ranges);
        let mut tree = Frontier::new();
        let mut leaf_hash = None;
        let complete = self
            .for_each_leaf(tree_size, |index, leaf| {
                heads.push(index, leaf);
                tree.push(leaf);
                if index == seq {
                    leaf_hash = Some(leaf);
                }
            })
            .await?;
        let (Some(proof), Some(leaf_hash), true) = (heads.heads(), leaf_hash, complete) else {
            return Ok(None);
        };
        Ok(Some(InclusionProof {
            seq,
            tree_size,
            leaf_hash,
            tree_head: tree.root(),
            proof,
        }))
    }

    /// The consistency proof from the tree of the first `from_size` entries to the tree of
    /// the first `to_size`, from the stored leaf hashes (verify first); `None` unless
    /// `0 < from_size <= to_size` and the log holds `to_size` entries.
    ///
    /// # Errors
    ///
    /// As for [`prove_inclusion`](Ledger::prove_inclusion).
    pub async fn prove_consistency(
        &self,
        from_size: u64,
        to_size: u64,
    ) -> Result<Option<ConsistencyProof>, LedgerError> {
        let Some(ranges) = consistency_ranges(from_size, to_size) else {
            return Ok(None);
        };
        let mut heads = RangeHeads::new(ranges);
        let mut tree = Frontier::new();
        let mut from_head = None;
        let complete = self
            .for_each_leaf(to_size, |index, leaf| {
                heads.push(index, leaf);
                tree.push(leaf);
                if tree.size() == from_size {
                    from_head = Some(tree.root());
                }
            })
            .await?;
        let (Some(proof), Some(from_head), true) = (heads.heads(), from_head, complete) else {
            return Ok(None);
        };
        Ok(Some(ConsistencyProof {
            from_size,
            from_head,
            to_size,
            to_head: tree.root(),
            proof,
        }))
    }

    /// Calls `each` with the index and stored leaf hash of entries `0..up_to`, in order, a
    /// page at a time; whether the log held them all.
    async fn for_each_leaf(
        &self,
        up_to: u64,
        mut each: impl FnMut(u64, [u8; 32]),
    ) -> Result<bool, LedgerError> {
        let mut next = 0_u64;
        // Bounded: every page moves `next` forward by its length, or ends the loop.
        while next < up_to {
            let remaining = up_to - next;
            let limit = u64::from(VERIFY_PAGE_ROWS).min(remaining);
            let from = i64::try_from(next).unwrap_or(i64::MAX);
            // The archived entries' leaf hashes first (`archive.rs`), then the live ones'.
            let page = self
                .leaves_page(from, i64::try_from(limit).unwrap_or(i64::MAX))
                .await?;
            if page.is_empty() {
                return Ok(false);
            }
            for (seq, leaf) in page {
                let leaf = hash_column("leaf_hash", &leaf);
                match leaf {
                    Ok(leaf) if u64::try_from(seq).ok() == Some(next) => each(next, leaf),
                    Ok(_) => {
                        return Err(self.malformed(
                            next,
                            format!("the stored leaf hashes skip from seq {next} to {seq}"),
                        ));
                    }
                    Err(reason) => return Err(self.malformed(next, reason)),
                }
                next += 1;
            }
        }
        Ok(true)
    }
}
