//! Proofs from one pass over the leaves, without holding them: every component of an
//! inclusion or consistency proof is the head of a range of leaves (RFC 9162 §2.1.3.1 and
//! §2.1.4.1), the ranges are disjoint, and there are O(log n) of them. [`inclusion_ranges`]
//! and [`consistency_ranges`] name them; [`RangeHeads`] computes their heads as the leaves
//! stream past, with a [`Frontier`] each.

use std::ops::Range;

use super::Frontier;

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The ranges of leaves whose heads make up the inclusion proof of leaf `index` in the tree
/// of `size` leaves (RFC 9162 `PATH`), in proof order; `None` unless `index < size`.
#[must_use]
pub fn inclusion_ranges(index: u64, size: u64) -> Option<Vec<Range<u64>>> {
    if index >= size {
        return None;
    }
    let mut ranges = Vec::new();
    path_ranges(index, 0..size, &mut ranges);
    Some(ranges)
}

fn path_ranges(index: u64, leaves: Range<u64>, ranges: &mut Vec<Range<u64>>) {
    let n = leaves.end - leaves.start;
    if n <= 1 {
        return;
    }
    let middle = leaves.start + split(n);
    if index < middle {
        path_ranges(index, leaves.start..middle, ranges);
        ranges.push(middle..leaves.end);
    } else {
        path_ranges(index, middle..leaves.end, ranges);
        ranges.push(leaves.start..middle);
    }
}

/// The ranges of leaves whose heads make up the consistency proof from the tree of `size1`
/// leaves to the tree of `size2` (RFC 9162 `PROOF`), in proof order; `None` unless
/// `0 < size1 <= size2`.
#[must_use]
pub fn consistency_ranges(size1: u64, size2: u64) -> Option<Vec<Range<u64>>> {
    if size1 == 0 || size1 > size2 {
        return None;
    }
    let mut ranges = Vec::new();
    subproof_ranges(size1, 0..size2, true, &mut ranges);
    Some(ranges)
}

fn subproof_ranges(m: u64, leaves: Range<u64>, complete: bool, ranges: &mut Vec<Range<u64>>) {
    let n = leaves.end - leaves.start;
    if m == n {
        if !complete {
            ranges.push(leaves);
        }
        return;
    }
    let middle = leaves.start + split(n);
    if m <= middle - leaves.start {
        subproof_ranges(m, leaves.start..middle, complete, ranges);
        ranges.push(middle..leaves.end);
    } else {
        subproof_ranges(
            m - (middle - leaves.start),
            middle..leaves.end,
            false,
            ranges,
        );
        ranges.push(leaves.start..middle);
    }
}

/// The heads of disjoint ranges of leaves, computed as the leaves are pushed in order.
#[derive(Debug, Clone)]
pub struct RangeHeads {
    /// Each range with the tree of the leaves pushed into it so far.
    ranges: Vec<(Range<u64>, Frontier)>,
}

impl RangeHeads {
    /// Heads for `ranges` (as [`inclusion_ranges`] or [`consistency_ranges`] give them).
    #[must_use]
    pub fn new(ranges: Vec<Range<u64>>) -> RangeHeads {
        RangeHeads {
            ranges: ranges
                .into_iter()
                .map(|range| (range, Frontier::new()))
                .collect(),
        }
    }

    /// Leaf `index`, whose hash is `leaf`: added to the range that holds it, if any.
    pub fn push(&mut self, index: u64, leaf: [u8; 32]) {
        if let Some((_, frontier)) = self
            .ranges
            .iter_mut()
            .find(|(range, _)| range.contains(&index))
        {
            frontier.push(leaf);
        }
    }

    /// The head of every range, in order; `None` until every range has all its leaves.
    #[must_use]
    pub fn heads(&self) -> Option<Vec<[u8; 32]>> {
        self.ranges
            .iter()
            .map(|(range, frontier)| {
                (frontier.size() == range.end - range.start).then(|| frontier.root())
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::merkle::{consistency_proof, inclusion_proof};

    fn heads_of(ranges: Vec<Range<u64>>, leaves: &[[u8; 32]]) -> Option<Vec<[u8; 32]>> {
        let mut heads = RangeHeads::new(ranges);
        for (index, leaf) in leaves.iter().enumerate() {
            heads.push(index as u64, *leaf);
        }
        heads.heads()
    }

    // The streamed proofs are the proofs of the recursive definition, for every leaf and
    // every pair of sizes up to 40.
    #[test]
    fn range_heads_are_the_proofs_of_the_recursive_definition() {
        for n in 0..=40_u64 {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            for index in 0..=n {
                let streamed = inclusion_ranges(index, n).and_then(|r| heads_of(r, &leaves));
                assert_eq!(
                    streamed,
                    inclusion_proof(&leaves, index as usize),
                    "n {n}, index {index}"
                );
            }
            for size1 in 0..=n + 1 {
                let streamed = consistency_ranges(size1, n).and_then(|r| heads_of(r, &leaves));
                assert_eq!(
                    streamed,
                    consistency_proof(&leaves, size1 as usize),
                    "n {n}, size1 {size1}"
                );
            }
        }
    }

    #[test]
    fn heads_wait_for_every_leaf_of_every_range() {
        let leaves: Vec<[u8; 32]> = (0..8_u64).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut heads = RangeHeads::new(inclusion_ranges(0, 8).unwrap_or_default());
        for (index, leaf) in leaves.iter().enumerate().take(7) {
            heads.push(index as u64, *leaf);
        }
        assert_eq!(heads.heads(), None);
    }
}
