//! The ledger as a self-contained file an auditor can check offline, with no database.
//!
//! JSON lines. Each entry line holds the entry's columns (the payload as its stored canonical
//! text), its leaf and chain hashes, and its RFC 6962 inclusion proof against the tree head;
//! the last line holds the tree size, the tree head and the chain head:
//!
//! ```text
//! {"at_ms":…,"chain_hash":"<hex>","incident_id":…,"inclusion":["<hex>",…],"kind":"event","leaf_hash":"<hex>","payload":"<canonical JSON text>","seq":0}
//! …
//! {"chain_head":"<hex>","tree_head":"<hex>","tree_size":N}
//! ```
//!
//! [`verify_export`] recomputes every leaf hash from the columns, every chain link, the tree
//! head from all leaves, and checks every inclusion proof against it: an edited, deleted,
//! reordered or inserted line is found and named, and so is a tail cut off with its last line
//! rewritten to match (its tree head is not the head of an earlier checkpoint; compare it).

use serde::{Deserialize, Serialize};

use crate::Entry;
use crate::hash::{GENESIS_CHAIN_HASH, chain_hash, entry_bytes, leaf_hash};
use crate::merkle::{Tree, verify_inclusion};

/// One exported entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEntry {
    /// The entry's seq.
    pub seq: u64,
    /// Its time.
    pub at_ms: i64,
    /// Its kind, as stored.
    pub kind: String,
    /// Its incident, if any.
    pub incident_id: Option<String>,
    /// The stored canonical payload text.
    pub payload: String,
    /// SHA-256(0x00 || entry bytes), hex.
    pub leaf_hash: String,
    /// The chain hash, hex.
    pub chain_hash: String,
    /// The inclusion proof against the export's tree head, hex.
    pub inclusion: Vec<String>,
}

/// The last line of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportHead {
    /// How many entries.
    pub tree_size: u64,
    /// The RFC 6962 tree head, hex.
    pub tree_head: String,
    /// The chain hash of the last entry (32 zero bytes for none), hex.
    pub chain_head: String,
}

/// The lines of an export of `entries` (all of a ledger's entries, in order).
#[must_use]
pub fn export_lines(entries: &[Entry]) -> Vec<String> {
    let tree = Tree::new(entries.iter().map(|entry| entry.leaf_hash).collect());
    let head = tree.root();
    let mut lines: Vec<String> = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let exported = ExportedEntry {
                seq: entry.seq,
                at_ms: entry.at_ms,
                kind: entry.kind.as_str().to_owned(),
                incident_id: entry.incident_id.clone(),
                payload: entry.payload.clone(),
                leaf_hash: hex::encode(entry.leaf_hash),
                chain_hash: hex::encode(entry.chain_hash),
                inclusion: tree
                    .proof(index)
                    .unwrap_or_default()
                    .iter()
                    .map(hex::encode)
                    .collect(),
            };
            serde_json::to_string(&exported).unwrap_or_default()
        })
        .collect();
    let chain_head = entries
        .last()
        .map_or(GENESIS_CHAIN_HASH, |entry| entry.chain_hash);
    let last = ExportHead {
        tree_size: entries.len() as u64,
        tree_head: hex::encode(head),
        chain_head: hex::encode(chain_head),
    };
    lines.push(serde_json::to_string(&last).unwrap_or_default());
    lines
}

/// What an intact export holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// Entries checked.
    pub n_entries: u64,
    /// The tree head they form, hex.
    pub tree_head: String,
}

/// The first thing wrong in an export.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ExportProblem {
    /// The 1-based line.
    pub line: usize,
    /// What is wrong, naming the entry.
    pub reason: String,
}

fn problem(line: usize, reason: impl Into<String>) -> ExportProblem {
    ExportProblem {
        line,
        reason: reason.into(),
    }
}

/// Checks an export offline.
///
/// # Errors
///
/// The first line found wrong.
pub fn verify_export(text: &str) -> Result<ExportReport, ExportProblem> {
    let lines: Vec<&str> = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    let Some((last, entries)) = lines.split_last() else {
        return Err(problem(1, "the export is empty: not even a head line"));
    };
    let head: ExportHead = serde_json::from_str(last)
        .map_err(|error| problem(lines.len(), format!("not the head line: {error}")))?;
    let mut previous_chain = GENESIS_CHAIN_HASH;
    let mut leaves = Vec::with_capacity(entries.len());
    let mut parsed = Vec::with_capacity(entries.len());
    for (idx, line) in entries.iter().enumerate() {
        let line_no = idx + 1;
        let entry: ExportedEntry = serde_json::from_str(line)
            .map_err(|error| problem(line_no, format!("not an entry: {error}")))?;
        if entry.seq != idx as u64 {
            return Err(problem(
                line_no,
                format!(
                    "entry {} where entry {idx} should be: entries were removed, reordered or inserted",
                    entry.seq
                ),
            ));
        }
        let leaf = leaf_hash(
            entry_bytes(
                entry.seq,
                entry.at_ms,
                &entry.kind,
                entry.incident_id.as_deref(),
                &entry.payload,
            )
            .as_bytes(),
        );
        if hex::encode(leaf) != entry.leaf_hash {
            return Err(problem(
                line_no,
                format!(
                    "entry {} was modified: its leaf hash does not match its columns",
                    entry.seq
                ),
            ));
        }
        let chain = chain_hash(&previous_chain, &leaf);
        if hex::encode(chain) != entry.chain_hash {
            return Err(problem(
                line_no,
                format!("the chain breaks at entry {}", entry.seq),
            ));
        }
        previous_chain = chain;
        leaves.push(leaf);
        parsed.push(entry);
    }
    if head.tree_size != leaves.len() as u64 {
        return Err(problem(
            lines.len(),
            format!(
                "the head says {} entries, the export holds {}",
                head.tree_size,
                leaves.len()
            ),
        ));
    }
    if hex::encode(previous_chain) != head.chain_head {
        return Err(problem(
            lines.len(),
            "the chain head does not match the last entry",
        ));
    }
    let root = Tree::new(leaves.clone()).root();
    if hex::encode(root) != head.tree_head {
        return Err(problem(
            lines.len(),
            "the tree head does not match the entries",
        ));
    }
    for (idx, entry) in parsed.iter().enumerate() {
        let components: Vec<Vec<u8>> = entry
            .inclusion
            .iter()
            .map(|hash| hex::decode(hash).unwrap_or_default())
            .collect();
        let components: Vec<&[u8]> = components.iter().map(Vec::as_slice).collect();
        let leaf = leaves.get(idx).copied().unwrap_or_default();
        verify_inclusion(entry.seq, head.tree_size, &leaf, &components, &root).map_err(
            |error| {
                problem(
                    idx + 1,
                    format!("entry {}: its inclusion proof fails: {error}", entry.seq),
                )
            },
        )?;
    }
    Ok(ExportReport {
        n_entries: head.tree_size,
        tree_head: head.tree_head,
    })
}
