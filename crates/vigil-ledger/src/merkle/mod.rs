//! RFC 6962 (and RFC 9162 §2.1) Merkle trees over the ledger's leaf hashes: the tree head
//! (`MTH`), inclusion proofs (`PATH`) and consistency proofs (`PROOF`/`SUBPROOF`), and the
//! verifiers an auditor runs on them.
//!
//! Leaf hashes are `SHA-256(0x00 || entry)` (see [`crate::hash::leaf_hash`]); interior nodes
//! are `SHA-256(0x01 || left || right)`; the split of `n` leaves is at the largest power of two
//! smaller than `n`. The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 and accept exactly
//! what the transparency-dev test vectors accept: they take hashes as byte slices, so that a
//! malformed proof (a component of the wrong length, a missing or extra one) is an error, not
//! a panic.
//!
//! Three ways to hold a tree: all its leaves ([`root`], [`inclusion_proof`],
//! [`consistency_proof`], [`Tree`]), for small trees and tests; its right edge alone
//! ([`Frontier`], O(log n)), for the head of a log of any length; and its levels in a file
//! ([`DiskTree`]), for proving every leaf of a large one. [`RangeHeads`] computes one proof
//! in a single pass over the leaves, holding O(log n) hashes.

use sha2::{Digest, Sha256};

mod disk;
mod ranges;

pub use disk::{DiskTree, DiskTreeBuilder};
pub use ranges::{RangeHeads, consistency_ranges, inclusion_ranges};

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf index {index} is not below the tree size {size}")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The second tree is smaller than the first.
    #[error("size2 {size2} is smaller than size1 {size1}")]
    SizesReversed {
        /// The first size.
        size1: u64,
        /// The second size.
        size2: u64,
    },
    /// A consistency proof from the empty tree proves nothing.
    #[error("a consistency proof from an empty tree proves nothing")]
    EmptyFirstTree,
    /// The proof has the wrong number of components.
    #[error("the proof has {got} components; {expected}")]
    WrongLength {
        /// How many it has.
        got: usize,
        /// What was expected, in words.
        expected: String,
    },
    /// A proof component is not a SHA-256 hash.
    #[error("proof component {index} has {len} bytes, not 32")]
    BadComponent {
        /// Which.
        index: usize,
        /// Its length.
        len: usize,
    },
    /// The proof leads to another root.
    #[error("the proof leads to root {computed}, not the expected {expected}")]
    RootMismatch {
        /// What the proof computes, hex.
        computed: String,
        /// The root it should reach, hex.
        expected: String,
    },
}

/// An interior node: SHA-256(0x01 || left || right).
#[must_use]
pub fn node_hash(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The Merkle tree head of `leaves` (leaf hashes): SHA-256 of nothing for no leaves.
#[must_use]
pub fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [] => Sha256::digest([]).into(),
        [leaf] => *leaf,
        _ => {
            let k = split(leaves.len());
            let (left, right) = leaves.split_at(k);
            node_hash(&root(left), &root(right))
        }
    }
}

/// The inclusion proof of leaf `index` in the tree of `leaves` (RFC 9162 `PATH`); `None`
/// when the index is outside the tree.
#[must_use]
pub fn inclusion_proof(leaves: &[[u8; 32]], index: usize) -> Option<Vec<[u8; 32]>> {
    if index >= leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(leaves, index, &mut proof);
    Some(proof)
}

fn path(leaves: &[[u8; 32]], index: usize, proof: &mut Vec<[u8; 32]>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    let (left, right) = leaves.split_at(k);
    if index < k {
        path(left, index, proof);
        proof.push(root(right));
    } else {
        path(right, index - k, proof);
        proof.push(root(left));
    }
}

/// The consistency proof between the first `size1` leaves and all of `leaves` (RFC 9162
/// `PROOF`); `None` unless `0 < size1 <= leaves.len()`.
#[must_use]
pub fn consistency_proof(leaves: &[[u8; 32]], size1: usize) -> Option<Vec<[u8; 32]>> {
    if size1 == 0 || size1 > leaves.len() {
        return None;
    }
    let mut proof = Vec::new();
    subproof(size1, leaves, true, &mut proof);
    Some(proof)
}

fn subproof(m: usize, leaves: &[[u8; 32]], complete: bool, proof: &mut Vec<[u8; 32]>) {
    let n = leaves.len();
    if m == n {
        if !complete {
            proof.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    let (left, right) = leaves.split_at(k);
    if m <= k {
        subproof(m, left, complete, proof);
        proof.push(root(right));
    } else {
        subproof(m - k, right, false, proof);
        proof.push(root(left));
    }
}

fn component(proof: &[&[u8]], index: usize) -> Result<[u8; 32], ProofError> {
    let bytes = proof.get(index).copied().unwrap_or_default();
    bytes.try_into().map_err(|_| ProofError::BadComponent {
        index,
        len: bytes.len(),
    })
}

fn check_root(computed: &[u8; 32], expected: &[u8]) -> Result<(), ProofError> {
    if computed.as_slice() == expected {
        Ok(())
    } else {
        Err(ProofError::RootMismatch {
            computed: hex::encode(computed),
            expected: hex::encode(expected),
        })
    }
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose head is `root`
/// (RFC 9162 §2.1.3.2).
///
/// # Errors
///
/// Why it does not verify.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &[u8],
    proof: &[&[u8]],
    root: &[u8],
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let mut fn_ = index;
    let mut sn = size - 1;
    let Ok(mut r) = <[u8; 32]>::try_from(leaf_hash) else {
        return Err(ProofError::RootMismatch {
            computed: hex::encode(leaf_hash),
            expected: hex::encode(root),
        });
    };
    for idx in 0..proof.len() {
        let p = component(proof, idx)?;
        if sn == 0 {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: format!("at most {idx} for leaf {index} of {size}"),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(&p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, &p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected: format!("more for leaf {index} of {size}"),
        });
    }
    check_root(&r, root)
}

/// Checks that the tree of `size1` leaves with head `root1` is a prefix of the tree of
/// `size2` leaves with head `root2` (RFC 9162 §2.1.4.2).
///
/// # Errors
///
/// Why it does not verify.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &[u8],
    root2: &[u8],
    proof: &[&[u8]],
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizesReversed { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::EmptyFirstTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: "none for equal sizes".to_owned(),
            });
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch {
                computed: hex::encode(root1),
                expected: hex::encode(root2),
            })
        };
    }
    if proof.is_empty() {
        return Err(ProofError::WrongLength {
            got: 0,
            expected: "at least one for different sizes".to_owned(),
        });
    }
    // When size1 is a power of two, its root is the first node of the path.
    let mut path: Vec<&[u8]> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(root1);
    }
    path.extend_from_slice(proof);
    let mut fn_ = size1 - 1;
    let mut sn = size2 - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let first = component(&path, 0)?;
    let (mut fr, mut sr) = (first, first);
    for idx in 1..path.len() {
        let c = component(&path, idx)?;
        if sn == 0 {
            return Err(ProofError::WrongLength {
                got: proof.len(),
                expected: format!("fewer for sizes {size1} and {size2}"),
            });
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(&c, &fr);
            sr = node_hash(&c, &sr);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, &c);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongLength {
            got: proof.len(),
            expected: format!("more for sizes {size1} and {size2}"),
        });
    }
    check_root(&fr, root1)?;
    check_root(&sr, root2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;

    fn leaves(n: usize) -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    fn refs(proof: &[[u8; 32]]) -> Vec<&[u8]> {
        proof.iter().map(<[u8; 32]>::as_slice).collect()
    }

    // Every proof this module makes, for every leaf and every pair of sizes up to 33, verifies,
    // and flipping any bit of any component, or dropping one, makes it fail.
    #[test]
    fn generated_proofs_verify_and_mutations_do_not() {
        for n in 1..=33 {
            let all = leaves(n);
            let head = root(&all);
            for index in 0..n {
                let proof = inclusion_proof(&all, index).unwrap();
                let leaf = all[index];
                verify_inclusion(index as u64, n as u64, &leaf, &refs(&proof), &head).unwrap();
                for bad in 0..proof.len() {
                    let mut mutated = proof.clone();
                    mutated[bad][0] ^= 1;
                    assert!(
                        verify_inclusion(index as u64, n as u64, &leaf, &refs(&mutated), &head)
                            .is_err()
                    );
                }
                if !proof.is_empty() {
                    let shorter = &proof[..proof.len() - 1];
                    assert!(
                        verify_inclusion(index as u64, n as u64, &leaf, &refs(shorter), &head)
                            .is_err()
                    );
                }
            }
            for size1 in 1..=n {
                let proof = consistency_proof(&all, size1).unwrap();
                let old = root(&all[..size1]);
                verify_consistency(size1 as u64, n as u64, &old, &head, &refs(&proof)).unwrap();
                for bad in 0..proof.len() {
                    let mut mutated = proof.clone();
                    mutated[bad][31] ^= 0x80;
                    assert!(
                        verify_consistency(size1 as u64, n as u64, &old, &head, &refs(&mutated))
                            .is_err()
                    );
                }
            }
        }
        assert_eq!(root(&[]), <[u8; 32]>::from(Sha256::digest([])));
    }
}

/// A whole tree kept level by level, for proving many leaves of the same tree: an odd last
/// node is carried up unchanged, which builds exactly RFC 6962's tree. Proofs take
/// O(log n) each instead of rebuilding subtrees.
#[derive(Debug, Clone)]
pub struct Tree {
    levels: Vec<Vec<[u8; 32]>>,
}

impl Tree {
    /// The tree of `leaves` (leaf hashes).
    #[must_use]
    pub fn new(leaves: Vec<[u8; 32]>) -> Tree {
        let mut levels = vec![leaves];
        while let Some(level) = levels.last()
            && level.len() > 1
        {
            let next: Vec<[u8; 32]> = level
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node_hash(left, right),
                    [single] => *single,
                    _ => [0; 32],
                })
                .collect();
            levels.push(next);
        }
        Tree { levels }
    }

    /// How many leaves.
    #[must_use]
    pub fn size(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// The tree head.
    #[must_use]
    pub fn root(&self) -> [u8; 32] {
        match self.levels.last().and_then(|level| level.first()) {
            Some(top) if self.size() > 0 => *top,
            _ => Sha256::digest([]).into(),
        }
    }

    /// The inclusion proof of leaf `index`, as [`inclusion_proof`] gives it.
    #[must_use]
    pub fn proof(&self, index: usize) -> Option<Vec<[u8; 32]>> {
        if index >= self.size() {
            return None;
        }
        let mut proof = Vec::new();
        let mut at = index;
        for level in &self.levels {
            if level.len() <= 1 {
                break;
            }
            let sibling = at ^ 1;
            if let Some(hash) = level.get(sibling) {
                proof.push(*hash);
            }
            at >>= 1;
        }
        Some(proof)
    }
}

/// The right edge of a growing tree: the roots of its perfect subtrees, largest first, one
/// per set bit of the size. Appending a leaf and reading the tree head take O(log n) time
/// and the whole state is O(log n) hashes, so a log of any length can be followed as it
/// streams past (verification) or grows (appends).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    /// (height, root) of each perfect subtree, heights strictly decreasing.
    subtrees: Vec<(u32, [u8; 32])>,
    /// Leaves appended.
    size: u64,
}

impl Frontier {
    /// An empty tree.
    #[must_use]
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: [u8; 32]) {
        let mut carry = (0_u32, leaf);
        while let Some(&(height, left)) = self.subtrees.last() {
            if height != carry.0 {
                break;
            }
            self.subtrees.pop();
            carry = (height + 1, node_hash(&left, &carry.1));
        }
        self.subtrees.push(carry);
        self.size += 1;
    }

    /// How many leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree head, as [`root`] computes it over the same leaves.
    #[must_use]
    pub fn root(&self) -> [u8; 32] {
        let mut subtrees = self.subtrees.iter().rev();
        let Some((_, last)) = subtrees.next() else {
            return Sha256::digest([]).into();
        };
        // RFC 6962 splits at the largest power of two: the largest subtree is the left child
        // of the root, and the smaller ones nest to its right.
        subtrees.fold(*last, |right, (_, left)| node_hash(left, &right))
    }
}

#[cfg(test)]
mod tree_tests {
    use super::*;
    use crate::hash::leaf_hash;

    #[test]
    fn the_level_tree_agrees_with_the_recursive_definition() {
        for n in 0..=70 {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| leaf_hash(&[i as u8])).collect();
            let tree = Tree::new(leaves.clone());
            assert_eq!(tree.root(), root(&leaves), "n = {n}");
            for index in 0..n {
                assert_eq!(
                    tree.proof(index),
                    inclusion_proof(&leaves, index),
                    "n = {n}, index = {index}"
                );
            }
            assert_eq!(tree.proof(n), None);
        }
    }

    #[test]
    fn the_frontier_agrees_with_the_recursive_definition_at_every_size() {
        let leaves: Vec<[u8; 32]> = (0..1100_u32).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut frontier = Frontier::new();
        assert_eq!(frontier.root(), root(&[]));
        for (n, leaf) in leaves.iter().enumerate() {
            frontier.push(*leaf);
            assert_eq!(frontier.size(), n as u64 + 1);
            assert_eq!(frontier.root(), root(&leaves[..=n]), "n = {}", n + 1);
        }
    }
}
