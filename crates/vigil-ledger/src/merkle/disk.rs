//! An RFC 6962 tree kept level by level in a file, for proving every leaf of a tree too large
//! to hold in memory (an export of the whole ledger).
//!
//! The file holds the leaf hashes, then each level above them (an odd last node carried up
//! unchanged, as [`Tree`](super::Tree) builds it): fewer than 2n hashes, 64 bytes per leaf
//! at most. Building it reads each level once, sequentially; a proof reads one node per
//! level, and proofs of consecutive leaves share their upper nodes, which are kept (one per
//! level), so proving every leaf in order reads about 2n hashes in all. Memory: two I/O
//! buffers and O(log n) hashes. The file is removed when the tree is dropped.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::node_hash;

/// Bytes of one hash in the file.
const HASH_BYTES: u64 = 32;

/// Bytes of each read and write buffer.
const BUFFER_BYTES: usize = 64 * 1024;

/// The tree's file, removed when this is dropped.
#[derive(Debug)]
struct ScratchFile {
    path: PathBuf,
}

impl Drop for ScratchFile {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), %error, "cannot remove a scratch file");
        }
    }
}

/// A tree being built: leaf hashes appended in order.
#[derive(Debug)]
pub struct DiskTreeBuilder {
    writer: BufWriter<File>,
    n_leaves: u64,
    // Declared last so that the writer is closed before the file is removed.
    scratch: ScratchFile,
}

impl DiskTreeBuilder {
    /// Starts a tree in a new file at `path`, which must not exist.
    ///
    /// # Errors
    ///
    /// When the file cannot be created (it exists, or its folder cannot be written).
    pub fn create(path: &Path) -> std::io::Result<DiskTreeBuilder> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(DiskTreeBuilder {
            writer: BufWriter::with_capacity(BUFFER_BYTES, file),
            n_leaves: 0,
            scratch: ScratchFile {
                path: path.to_path_buf(),
            },
        })
    }

    /// Appends the next leaf hash.
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn push(&mut self, leaf: &[u8; 32]) -> std::io::Result<()> {
        self.writer.write_all(leaf)?;
        self.n_leaves += 1;
        Ok(())
    }

    /// Builds the levels above the leaves and returns the tree.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or written.
    pub fn finish(mut self) -> std::io::Result<DiskTree> {
        // (first node, number of nodes) of each level, from the leaves up.
        let mut levels = vec![(0_u64, self.n_leaves)];
        let mut end = self.n_leaves;
        // Bounded: each level has half the nodes of the one below, rounded up.
        while let Some(&(start, len)) = levels.last()
            && len > 1
        {
            self.writer.flush()?;
            let mut reader =
                BufReader::with_capacity(BUFFER_BYTES, File::open(&self.scratch.path)?);
            reader.seek(SeekFrom::Start(start * HASH_BYTES))?;
            let mut pair = [0_u8; 64];
            for _ in 0..len / 2 {
                reader.read_exact(&mut pair)?;
                let (left, right) = pair.split_at(32);
                self.writer.write_all(&node_hash(left, right))?;
            }
            if len % 2 == 1 {
                let mut last = [0_u8; 32];
                reader.read_exact(&mut last)?;
                self.writer.write_all(&last)?;
            }
            let next_len = len.div_ceil(2);
            levels.push((end, next_len));
            end += next_len;
        }
        self.writer.flush()?;
        let file = File::open(&self.scratch.path)?;
        let root = match levels.last() {
            Some(&(start, 1)) => read_node(&file, start)?,
            _ => Sha256::digest([]).into(),
        };
        let cache = vec![None; levels.len()];
        Ok(DiskTree {
            file,
            levels,
            root,
            cache,
            _scratch: self.scratch,
        })
    }
}

/// A tree in a file: its root, and any leaf's inclusion proof.
#[derive(Debug)]
pub struct DiskTree {
    file: File,
    /// (first node, number of nodes) of each level, from the leaves up.
    levels: Vec<(u64, u64)>,
    root: [u8; 32],
    /// The last node read on each level, with its index there.
    cache: Vec<Option<(u64, [u8; 32])>>,
    // Declared last so that the file is closed before it is removed; only its drop is used.
    _scratch: ScratchFile,
}

impl DiskTree {
    /// How many leaves.
    #[must_use]
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |&(_, len)| len)
    }

    /// The tree head.
    #[must_use]
    pub fn root(&self) -> [u8; 32] {
        self.root
    }

    /// Leaf `index`'s hash, `None` outside the tree.
    ///
    /// # Errors
    ///
    /// When the file cannot be read.
    pub fn leaf(&mut self, index: u64) -> std::io::Result<Option<[u8; 32]>> {
        if index >= self.size() {
            return Ok(None);
        }
        read_node(&self.file, index).map(Some)
    }

    /// The inclusion proof of leaf `index` (as [`inclusion_proof`](super::inclusion_proof)
    /// gives it), `None` outside the tree.
    ///
    /// # Errors
    ///
    /// When the file cannot be read.
    pub fn proof(&mut self, index: u64) -> std::io::Result<Option<Vec<[u8; 32]>>> {
        if index >= self.size() {
            return Ok(None);
        }
        let mut proof = Vec::new();
        let mut at = index;
        for (level, &(start, len)) in self.levels.iter().enumerate() {
            if len <= 1 {
                break;
            }
            let sibling = at ^ 1;
            if sibling < len {
                let cached = self.cache.get(level).copied().flatten();
                let hash = match cached {
                    Some((cached_index, hash)) if cached_index == sibling => hash,
                    _ => {
                        let hash = read_node(&self.file, start + sibling)?;
                        if let Some(slot) = self.cache.get_mut(level) {
                            *slot = Some((sibling, hash));
                        }
                        hash
                    }
                };
                proof.push(hash);
            }
            at >>= 1;
        }
        Ok(Some(proof))
    }
}

/// The hash at node `index` of the file.
fn read_node(mut file: &File, index: u64) -> std::io::Result<[u8; 32]> {
    let mut hash = [0_u8; 32];
    file.seek(SeekFrom::Start(index * HASH_BYTES))?;
    file.read_exact(&mut hash)?;
    Ok(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::leaf_hash;
    use crate::merkle::Tree;

    #[test]
    fn the_disk_tree_agrees_with_the_tree_in_memory_and_removes_its_file() {
        let dir = std::env::temp_dir().join(format!("vigil-disk-tree-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for n in 0..=70_u64 {
            let leaves: Vec<[u8; 32]> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
            let path = dir.join(format!("tree-{n}"));
            let mut builder = DiskTreeBuilder::create(&path).unwrap();
            for leaf in &leaves {
                builder.push(leaf).unwrap();
            }
            let mut disk = builder.finish().unwrap();
            let memory = Tree::new(leaves.clone());
            assert_eq!(disk.size(), n);
            assert_eq!(disk.root(), memory.root(), "n = {n}");
            // In order (as an export reads them), then backwards, past the cache.
            let indexes: Vec<u64> = (0..=n).chain((0..n).rev()).collect();
            for index in indexes {
                assert_eq!(
                    disk.proof(index).unwrap(),
                    memory.proof(index as usize),
                    "n = {n}, index = {index}"
                );
                assert_eq!(
                    disk.leaf(index).unwrap(),
                    leaves.get(index as usize).copied()
                );
            }
            assert!(DiskTreeBuilder::create(&path).is_err(), "the file exists");
            drop(disk);
            assert!(!path.exists(), "the file is removed with the tree");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
