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
//! [`verify_export_from`] recomputes every leaf hash from the columns, every chain link, the
//! tree head from all leaves, and checks every inclusion proof against it: an edited,
//! deleted, reordered or inserted line is found and named, and so is a tail cut off with its
//! last line rewritten to match (its tree head is not the head of an earlier checkpoint;
//! compare it).
//!
//! Both directions stream: [`Ledger::export_tree`](crate::Ledger::export_tree) and
//! [`ExportTree::write`] write an export of any size holding one page of entries and O(log n)
//! hashes (the tree's levels go to a scratch file), and [`verify_export_from`] checks one
//! holding one line at a time. [`export_lines`] and [`verify_export`] do the same in memory,
//! for small logs and tests.

mod check;
mod write;

use serde::{Deserialize, Serialize};

pub use check::{MAX_EXPORT_LINE_BYTES, verify_export_from};
pub use write::ExportTree;

use crate::Entry;
use crate::hash::GENESIS_CHAIN_HASH;
use crate::merkle::Tree;

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

/// The lines of an export of `entries` (all of a ledger's entries, in order), in memory:
/// [`ExportTree::write`] writes the same bytes for a log of any size.
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

/// Checks an export held in memory, as [`verify_export_from`] does for a file.
///
/// # Errors
///
/// The first line found wrong.
pub fn verify_export(text: &str) -> Result<ExportReport, ExportProblem> {
    let mut reader = std::io::Cursor::new(text.as_bytes());
    // Reading from memory cannot fail; were it to, say so at the first line.
    verify_export_from(&mut reader)
        .unwrap_or_else(|error| Err(problem(1, format!("cannot read the export: {error}"))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EntryKind;
    use crate::hash::{chain_hash, entry_bytes, leaf_hash};

    /// A log of `n` entries, hashed as the ledger hashes them.
    fn log(n: u64) -> Vec<Entry> {
        let mut previous = GENESIS_CHAIN_HASH;
        (0..n)
            .map(|seq| {
                let payload = format!("{{\"n\":{seq},\"text\":\"a \\\"quoted\\\" line\\n\"}}");
                let incident_id = (seq % 2 == 0).then(|| format!("inc-{seq}"));
                let bytes = entry_bytes(
                    seq,
                    1_000 + seq as i64,
                    "event",
                    incident_id.as_deref(),
                    &payload,
                );
                let leaf = leaf_hash(bytes.as_bytes());
                previous = chain_hash(&previous, &leaf);
                Entry {
                    seq,
                    at_ms: 1_000 + seq as i64,
                    kind: EntryKind::Event,
                    incident_id,
                    payload,
                    leaf_hash: leaf,
                    chain_hash: previous,
                }
            })
            .collect()
    }

    fn text(lines: &[String]) -> String {
        let mut text = lines.join("\n");
        text.push('\n');
        text
    }

    fn outcome(text: &str) -> Result<u64, String> {
        verify_export(text)
            .map(|report| report.n_entries)
            .map_err(|problem| problem.to_string())
    }

    #[test]
    fn an_intact_export_verifies_with_blank_lines_and_crlf() {
        let lines = export_lines(&log(13));
        assert_eq!(outcome(&text(&lines)), Ok(13));
        let spaced = lines.join("\r\n\r\n  \n");
        assert_eq!(outcome(&spaced), Ok(13));
        assert_eq!(outcome(&text(&export_lines(&[]))), Ok(0));
    }

    // The problems an export is checked for, each named by its line (counting non-blank
    // lines), with the messages `vigil ledger verify --export` has always printed.
    #[test]
    fn every_tampering_is_named_by_its_line() {
        let lines = export_lines(&log(9));
        let head = lines.last().cloned().unwrap();
        let mut cases: Vec<(&str, Vec<String>, &str)> = Vec::new();
        let mut edited = lines.clone();
        edited[3] = edited[3].replacen("\"at_ms\":", "\"at_ms\":1", 1);
        cases.push(("edited", edited, "line 4: entry 3 was modified"));
        let mut deleted = lines.clone();
        deleted.remove(2);
        cases.push((
            "deleted",
            deleted,
            "line 3: entry 3 where entry 2 should be",
        ));
        let mut swapped = lines.clone();
        swapped.swap(2, 3);
        cases.push((
            "swapped",
            swapped,
            "line 3: entry 3 where entry 2 should be",
        ));
        let mut garbled = lines.clone();
        garbled[5] = "{not json".to_owned();
        cases.push(("garbled", garbled, "line 6: not an entry: "));
        let mut headless = lines.clone();
        headless.pop();
        cases.push(("no head", headless, "line 9: not the head line: "));
        let mut both = lines.clone();
        both[1] = "{not json".to_owned();
        both[9] = "{".to_owned();
        cases.push(("head judged first", both, "line 10: not the head line: "));
        let mut cut = lines[..5].to_vec();
        cut.push(head.clone());
        cases.push((
            "tail cut",
            cut,
            "line 6: the head says 9 entries, the export holds 5",
        ));
        let mut proof = lines.clone();
        let original = proof[4].clone();
        let inclusion = original.find("\"inclusion\":[\"").unwrap() + 14;
        let flipped = if &original[inclusion..=inclusion] == "0" {
            "1"
        } else {
            "0"
        };
        proof[4] = format!(
            "{}{flipped}{}",
            &original[..inclusion],
            &original[inclusion + 1..]
        );
        cases.push((
            "proof altered",
            proof,
            "line 5: entry 4: its inclusion proof fails",
        ));
        cases.push(("empty", Vec::new(), "line 1: the export is empty"));
        for (what, lines, expected) in cases {
            let found = outcome(&text(&lines));
            assert!(
                found
                    .as_ref()
                    .is_err_and(|message| message.starts_with(expected)),
                "{what}: expected `{expected}`, got {found:?}"
            );
        }
        let mut not_utf8 = text(&lines).into_bytes();
        not_utf8[20] = 0xff;
        let mut reader = std::io::Cursor::new(not_utf8);
        let found = verify_export_from(&mut reader).unwrap();
        assert!(
            found.is_err_and(|problem| problem.line == 1 && problem.reason.contains("not UTF-8")),
            "a line that is not UTF-8 is a problem of that line"
        );
    }
}
