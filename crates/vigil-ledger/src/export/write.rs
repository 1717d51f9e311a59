//! Writing an export of a whole ledger with bounded memory, in two passes over the log.
//!
//! Every line carries its entry's inclusion proof against the final tree head, which depends
//! on every leaf: so the first pass ([`Ledger::export_tree`]) verifies the log and writes its
//! leaf hashes to a scratch file, where the tree's levels are built ([`DiskTree`], 64 bytes
//! per entry on disk); the second ([`ExportTree::write`]) reads the entries again, a page at
//! a time, and writes each with its proof, read from the file (O(log n) nodes). Memory: one
//! page of entries, two I/O buffers and O(log n) hashes.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::ExportHead;
use crate::hash::{GENESIS_CHAIN_HASH, chain_hash, entry_leaf_hash};
use crate::merkle::{DiskTree, DiskTreeBuilder};
use crate::read::{EntryFilter, PageLimits};
use crate::verify::PassHooks;
use crate::{Entry, Ledger, LedgerError, VerifyReport};

/// The first pass of an export: a log that verified, with its tree in a scratch file (removed
/// when this is dropped).
#[derive(Debug)]
pub struct ExportTree {
    report: VerifyReport,
    tree: DiskTree,
}

/// An exported entry as written: the fields of [`ExportedEntry`](super::ExportedEntry) in
/// the same order, borrowed from the entry rather than copied.
#[derive(Serialize)]
struct ExportedLine<'a> {
    seq: u64,
    at_ms: i64,
    kind: &'a str,
    incident_id: Option<&'a str>,
    payload: &'a str,
    leaf_hash: String,
    chain_hash: String,
    inclusion: Vec<String>,
}

/// The first pass's hooks: every intact leaf goes to the scratch file.
struct LeafWriter {
    builder: DiskTreeBuilder,
    scratch: String,
}

impl PassHooks for LeafWriter {
    fn leaf(&mut self, leaf_hash: &[u8; 32]) -> Result<(), LedgerError> {
        self.builder
            .push(leaf_hash)
            .map_err(|source| scratch_error(&self.scratch, source))
    }
}

/// The error for a failure of the scratch file at `path`.
fn scratch_error(path: &str, source: std::io::Error) -> LedgerError {
    LedgerError::Io {
        action: format!("build the export's proof tree in `{path}`"),
        source,
    }
}

impl Ledger {
    /// The first pass of an export: verifies the log (as [`verify`](Ledger::verify) does)
    /// and builds its Merkle tree in a new file at `scratch`, which must not exist and is
    /// removed when the returned tree is dropped (or at once, when the log is broken).
    ///
    /// # Errors
    ///
    /// The outer error when the database or the scratch file fails, or
    /// [`LedgerError::Archive`] when the ledger's beginning was archived; the inner one is the
    /// report of a log that does not verify (its `first_problem` is set).
    pub async fn export_tree(
        &self,
        scratch: &Path,
    ) -> Result<Result<ExportTree, VerifyReport>, LedgerError> {
        // An export is checked offline from the first entry's chain hash on: a ledger whose
        // beginning was archived is exported segment by segment, from the first.
        if let Some(prefix) = self.archived_prefix().await? {
            return Err(LedgerError::Archive {
                database: self.database.clone(),
                reason: format!(
                    "its first {} entries are archived; an export starts at the first entry: export the archive's first segment, and check the others with `vigil ledger verify --archive`",
                    prefix.n_entries
                ),
            });
        }
        let shown = scratch.display().to_string();
        let builder =
            DiskTreeBuilder::create(scratch).map_err(|source| scratch_error(&shown, source))?;
        let mut hooks = LeafWriter {
            builder,
            scratch: shown,
        };
        let (report, _) = self
            .verify_pass(
                PageLimits::default(),
                &std::collections::BTreeSet::new(),
                &mut hooks,
            )
            .await?;
        if report.first_problem.is_some() {
            return Ok(Err(report));
        }
        let tree = hooks
            .builder
            .finish()
            .map_err(|source| scratch_error(&hooks.scratch, source))?;
        Ok(Ok(ExportTree { report, tree }))
    }
}

impl ExportTree {
    /// The verification of the first pass (intact).
    #[must_use]
    pub fn report(&self) -> &VerifyReport {
        &self.report
    }

    /// The second pass: writes the first [`report`](ExportTree::report)`.n_entries` entries
    /// of `ledger` (the one this tree was built from) to `out`, one JSON line each with its
    /// inclusion proof, then the head line; the same bytes as [`export_lines`] joined by and
    /// ending with a newline. Returns the number of entries written.
    ///
    /// [`export_lines`]: super::export_lines
    ///
    /// # Errors
    ///
    /// [`LedgerError::ChangedDuringExport`] when an entry differs from the first pass (the
    /// log was altered in between), [`LedgerError::Io`] when `out` or the scratch file
    /// fails, [`LedgerError::Query`] when the database does.
    pub async fn write(mut self, ledger: &Ledger, out: &mut dyn Write) -> Result<u64, LedgerError> {
        let n_entries = self.report.n_entries;
        let changed = |seq| LedgerError::ChangedDuringExport {
            database: ledger.database.clone(),
            seq,
        };
        let write_error = |source| LedgerError::Io {
            action: "write the export".to_owned(),
            source,
        };
        let mut reader = ledger.entries(EntryFilter::default(), PageLimits::default());
        let mut previous_chain = GENESIS_CHAIN_HASH;
        for seq in 0..n_entries {
            let entry = reader.next().await?.ok_or_else(|| changed(seq))?;
            let leaf = leaf_of(&entry);
            let tree_leaf = self
                .tree
                .leaf(seq)
                .map_err(|source| scratch_error("the scratch file", source))?;
            let chained = chain_hash(&previous_chain, &leaf);
            if entry.seq != seq || Some(leaf) != tree_leaf || chained != entry.chain_hash {
                return Err(changed(seq));
            }
            previous_chain = chained;
            let inclusion = self
                .tree
                .proof(seq)
                .map_err(|source| scratch_error("the scratch file", source))?
                .unwrap_or_default();
            let line = ExportedLine {
                seq,
                at_ms: entry.at_ms,
                kind: entry.kind.as_str(),
                incident_id: entry.incident_id.as_deref(),
                payload: &entry.payload,
                leaf_hash: hex::encode(leaf),
                chain_hash: hex::encode(entry.chain_hash),
                inclusion: inclusion.iter().map(hex::encode).collect(),
            };
            write_line(out, &line).map_err(write_error)?;
        }
        let head = ExportHead {
            tree_size: n_entries,
            tree_head: hex::encode(self.tree.root()),
            chain_head: hex::encode(previous_chain),
        };
        write_line(out, &head).map_err(write_error)?;
        out.flush().map_err(write_error)?;
        Ok(n_entries)
    }
}

/// The leaf hash of an entry's columns.
fn leaf_of(entry: &Entry) -> [u8; 32] {
    entry_leaf_hash(
        entry.seq,
        entry.at_ms,
        entry.kind.as_str(),
        entry.incident_id.as_deref(),
        &entry.payload,
    )
}

/// Writes `value` as one JSON line.
fn write_line<T: Serialize>(out: &mut dyn Write, value: &T) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    out.write_all(b"\n")
}
