//! Retention: a prefix of the log moved to an archive segment, and what the live ledger keeps
//! so that verification, the tree head, checkpoints and proofs carry on.
//!
//! A segment ([`Ledger::write_segment`]) is a SQLite ledger file of its own holding the
//! entries from the live ledger's archived prefix up to the cut, the blobs they name and the
//! checkpoints of sizes up to the cut, and, when earlier entries were archived before, their
//! leaf hashes and the chain hash they end with. So a segment verifies and replays on its own,
//! with the same code as a live ledger, and its end (size, chain hash, tree head) is where
//! the next segment, or the live ledger, carries on.
//!
//! Archiving ([`Ledger::archive_prefix`]) then removes the entries below the cut from the
//! live ledger in one transaction, keeping their leaf hashes (`ledger_archived_leaves`,
//! about 50 bytes an entry) and, in `ledger_archived_prefix`, the cut and the chain hash of
//! the entry before it. Verification streams the kept leaf hashes into the tree first, then
//! checks the live entries from the cut on, linked to that chain hash: the tree head, the
//! heads at every stored checkpoint's size and every proof are those of the whole log.
//!
//! What the live ledger alone no longer shows is that the kept leaf hashes are those of real
//! entries: the segments show it (`vigil ledger verify --archive DIR` checks each segment and
//! that each continues the one before it and ends where the live ledger carries on), and a
//! signed checkpoint kept elsewhere binds the whole tree, archived part included.

use std::collections::BTreeSet;
use std::path::Path;

use crate::backend::{INSERT_ENTRY, SELECT_LEAVES_FROM_SEQ, hash_column, stored_seq, with_pool};
use crate::hash::GENESIS_CHAIN_HASH;
use crate::hash::blob_references;
use crate::{EntryFilter, Ledger, LedgerError, LedgerLocation, PageLimits, VERIFY_PAGE_ROWS};

const SELECT_PREFIX: &str =
    "SELECT n_entries, chain_hash, at_ms FROM ledger_archived_prefix WHERE id = 1";
const SELECT_ARCHIVED_LEAVES_FROM: &str = "SELECT seq, leaf_hash FROM ledger_archived_leaves \
     WHERE seq >= $1 ORDER BY seq LIMIT $2";
const INSERT_ARCHIVED_LEAF: &str =
    "INSERT INTO ledger_archived_leaves (seq, leaf_hash) VALUES ($1, $2)";
const ARCHIVE_LEAVES_BELOW: &str = "INSERT INTO ledger_archived_leaves (seq, leaf_hash) \
     SELECT seq, leaf_hash FROM ledger_entries WHERE seq < $1";
const DELETE_PREFIX: &str = "DELETE FROM ledger_archived_prefix";
const INSERT_PREFIX: &str = "INSERT INTO ledger_archived_prefix (id, n_entries, chain_hash, at_ms) \
     VALUES (1, $1, $2, $3)";
const DELETE_ENTRIES_BELOW: &str = "DELETE FROM ledger_entries WHERE seq < $1";
const DELETE_BLOB: &str = "DELETE FROM ledger_blobs WHERE hash = $1";
const SELECT_CHECKPOINT_ROWS: &str = "SELECT tree_size, at_ms, checkpoint FROM ledger_checkpoints \
     WHERE tree_size > $1 AND tree_size <= $2 ORDER BY tree_size LIMIT $3";
const INSERT_CHECKPOINT_ROW: &str =
    "INSERT INTO ledger_checkpoints (tree_size, at_ms, checkpoint) VALUES ($1, $2, $3)";

/// Where the live entries of a ledger whose beginning was archived start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArchivedPrefix {
    /// How many entries were archived: the live ones start at this seq.
    pub n_entries: u64,
    /// The chain hash of the last archived entry.
    pub chain_hash: [u8; 32],
    /// When they were archived (milliseconds since the epoch).
    pub at_ms: i64,
}

/// A segment written by [`Ledger::write_segment`], as its own verification found it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    /// Its first entry's seq (0, or where the previous segment ended).
    pub first_seq: u64,
    /// The seq after its last entry: the tree size at its end.
    pub end_seq: u64,
    /// The chain hash of its last entry.
    pub head_chain_hash: [u8; 32],
    /// The RFC 6962 tree head at its end (over every entry before `end_seq`).
    pub tree_head: [u8; 32],
    /// The blobs its entries name, copied into it.
    pub blobs: BTreeSet<String>,
    /// The checkpoints copied into it (every stored one of a size up to its end).
    pub n_checkpoints: u64,
}

impl Ledger {
    /// The archived prefix, when entries were archived.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails, [`LedgerError::MalformedRow`] when the
    /// stored prefix cannot be read.
    pub async fn archived_prefix(&self) -> Result<Option<ArchivedPrefix>, LedgerError> {
        let row: Option<(i64, Vec<u8>, i64)> = with_pool!(&self.backend, pool => {
            sqlx::query_as(SELECT_PREFIX).fetch_optional(pool).await
        })
        .map_err(|source| self.query_error("read the archived prefix", source))?;
        let Some((n_entries, chain_hash, at_ms)) = row else {
            return Ok(None);
        };
        let malformed = |reason: String| self.malformed(0, format!("archived prefix: {reason}"));
        Ok(Some(ArchivedPrefix {
            n_entries: stored_seq(n_entries).map_err(malformed)?,
            chain_hash: hash_column("chain_hash", &chain_hash).map_err(malformed)?,
            at_ms,
        }))
    }

    /// Up to `limit` leaf hashes from seq `from` on, in seq order: the archived ones, then
    /// (once they are passed) those of the live entries. An empty page means no more.
    pub(crate) async fn leaves_page(
        &self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, LedgerError> {
        let archived = self.archived_leaves_page(from, limit).await?;
        if !archived.is_empty() {
            return Ok(archived);
        }
        self.seq_page(SELECT_LEAVES_FROM_SEQ, from, limit, "read the leaf hashes")
            .await
    }

    /// Up to `limit` archived leaf hashes from seq `from` on, in seq order.
    pub(crate) async fn archived_leaves_page(
        &self,
        from: i64,
        limit: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, LedgerError> {
        self.seq_page(
            SELECT_ARCHIVED_LEAVES_FROM,
            from,
            limit,
            "read the archived leaf hashes",
        )
        .await
    }

    /// The `(seq, hash)` rows `sql` gives for seq `$1` on, at most `$2` of them.
    async fn seq_page(
        &self,
        sql: &'static str,
        from: i64,
        limit: i64,
        action: &'static str,
    ) -> Result<Vec<(i64, Vec<u8>)>, LedgerError> {
        with_pool!(&self.backend, pool => {
            sqlx::query_as(sql)
                .bind(from)
                .bind(limit)
                .fetch_all(pool)
                .await
        })
        .map_err(|source| self.query_error(action, source))
    }

    /// The next seq and chain hash when no live entry is stored: after the archived prefix,
    /// or at the start.
    pub(crate) async fn head_after_prefix(&self) -> Result<(u64, [u8; 32]), LedgerError> {
        Ok(self
            .archived_prefix()
            .await?
            .map_or((0, GENESIS_CHAIN_HASH), |prefix| {
                (prefix.n_entries, prefix.chain_hash)
            }))
    }

    /// Writes the entries from the archived prefix (or seq 0) up to `end_seq` (excluded) to
    /// a new SQLite segment at `path`, with the blobs they name, the checkpoints of sizes up
    /// to `end_seq` and the archived prefix before them, then opens it again and verifies
    /// it: it must hold `end_seq` entries ending with this ledger's chain hash there.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Archive`] when `end_seq` is not after the archived prefix or past the
    /// log, `path` exists, a named blob is missing, or the segment does not verify as a copy;
    /// otherwise as for reading and appending.
    pub async fn write_segment(&self, end_seq: u64, path: &Path) -> Result<Segment, LedgerError> {
        let prefix = self.archived_prefix().await?;
        let first_seq = prefix.map_or(0, |prefix| prefix.n_entries);
        let refuse = |reason: String| LedgerError::Archive {
            database: self.database.clone(),
            reason,
        };
        if end_seq <= first_seq || end_seq > self.len() {
            return Err(refuse(format!(
                "cannot archive up to entry {end_seq}: the live entries run from {first_seq} to {}",
                self.len()
            )));
        }
        if path.exists() {
            return Err(refuse(format!("{} exists already", path.display())));
        }
        let location = LedgerLocation::Sqlite {
            path: path.to_path_buf(),
        };
        let segment = Ledger::open(&location).await?;
        let copied = self.copy_into(&segment, prefix, first_seq, end_seq).await;
        let copied = match copied {
            Ok(copied) => copied,
            Err(error) => {
                segment.close().await;
                return Err(error);
            }
        };
        segment.close().await;
        let segment = Ledger::open_existing(&location).await?;
        let report = segment.verify().await;
        segment.close().await;
        let report = report?;
        let (expected_chain_hash, n_checkpoints, blobs) = copied;
        if !report.is_intact()
            || report.n_entries != end_seq
            || report.head_chain_hash != Some(expected_chain_hash)
        {
            return Err(refuse(format!(
                "the segment written to {} does not verify as a copy of entries {first_seq} to {}: {:?}",
                path.display(),
                end_seq - 1,
                report.first_problem
            )));
        }
        Ok(Segment {
            first_seq,
            end_seq,
            head_chain_hash: expected_chain_hash,
            tree_head: report.tree_head,
            blobs,
            n_checkpoints,
        })
    }

    /// Copies into `segment` what [`write_segment`](Ledger::write_segment) writes; returns the
    /// chain hash of the last entry copied, the checkpoints copied and the blobs named.
    async fn copy_into(
        &self,
        segment: &Ledger,
        prefix: Option<ArchivedPrefix>,
        first_seq: u64,
        end_seq: u64,
    ) -> Result<([u8; 32], u64, BTreeSet<String>), LedgerError> {
        // The leaf hashes archived before, and where they end.
        let mut from = 0_i64;
        // Bounded: every page moves `from` past at least one leaf.
        loop {
            let page = self
                .archived_leaves_page(from, i64::from(VERIFY_PAGE_ROWS))
                .await?;
            let Some(&(last, _)) = page.last() else {
                break;
            };
            segment.insert_archived_leaves(&page).await?;
            from = last.saturating_add(1);
        }
        if let Some(prefix) = prefix {
            segment.store_prefix(prefix).await?;
        }
        // The entries, a page at a time, as stored (their hashes checked by the verify after).
        let mut blobs = BTreeSet::new();
        let mut chain_hash = prefix.map_or(GENESIS_CHAIN_HASH, |prefix| prefix.chain_hash);
        let mut next = first_seq;
        let limits = PageLimits::default();
        // Bounded: every page moves `next` past at least one entry, or ends the copy.
        while next < end_seq {
            let page = self
                .read_page(next, &EntryFilter::default(), limits)
                .await?;
            let page: Vec<_> = page
                .into_iter()
                .filter(|entry| entry.seq < end_seq)
                .collect();
            let Some(last) = page.last() else {
                break;
            };
            for entry in &page {
                if entry.seq != next {
                    return Err(LedgerError::Archive {
                        database: self.database.clone(),
                        reason: format!("entry {next} is missing (found {})", entry.seq),
                    });
                }
                blobs.extend(blob_references(&entry.payload).map(str::to_owned));
                next += 1;
            }
            chain_hash = last.chain_hash;
            segment.insert_entries(&page).await?;
        }
        for hash in &blobs {
            let content = self
                .get_blob(hash)
                .await?
                .ok_or_else(|| LedgerError::Archive {
                    database: self.database.clone(),
                    reason: format!("blob {hash} is missing"),
                })?;
            segment.put_blob(&content).await?;
        }
        let n_checkpoints = self.copy_checkpoints(segment, end_seq).await?;
        Ok((chain_hash, n_checkpoints, blobs))
    }

    /// Copies the stored checkpoints of sizes up to `end_seq` into `segment`, as stored.
    async fn copy_checkpoints(&self, segment: &Ledger, end_seq: u64) -> Result<u64, LedgerError> {
        let up_to = i64::try_from(end_seq).unwrap_or(i64::MAX);
        let mut after = i64::MIN;
        let mut n_copied = 0;
        // Bounded: every page moves `after` forward.
        loop {
            let rows: Vec<(i64, i64, String)> = with_pool!(&self.backend, pool => {
                sqlx::query_as(SELECT_CHECKPOINT_ROWS)
                    .bind(after)
                    .bind(up_to)
                    .bind(1_000_i64)
                    .fetch_all(pool)
                    .await
            })
            .map_err(|source| self.query_error("read the checkpoints", source))?;
            let Some(&(last, _, _)) = rows.last() else {
                return Ok(n_copied);
            };
            for (tree_size, at_ms, checkpoint) in &rows {
                with_pool!(&segment.backend, pool => {
                    sqlx::query(INSERT_CHECKPOINT_ROW)
                        .bind(*tree_size)
                        .bind(*at_ms)
                        .bind(checkpoint.as_str())
                        .execute(pool)
                        .await
                        .map(|_| ())
                })
                .map_err(|source| segment.query_error("store a checkpoint", source))?;
                n_copied += 1;
            }
            after = last;
        }
    }

    /// Inserts archived leaf hashes, in one transaction.
    async fn insert_archived_leaves(&self, leaves: &[(i64, Vec<u8>)]) -> Result<(), LedgerError> {
        with_pool!(&self.backend, pool => {
            let mut transaction = pool
                .begin()
                .await
                .map_err(|source| self.query_error("begin a transaction", source))?;
            for (seq, leaf_hash) in leaves {
                sqlx::query(INSERT_ARCHIVED_LEAF)
                    .bind(*seq)
                    .bind(leaf_hash.as_slice())
                    .execute(&mut *transaction)
                    .await
                    .map_err(|source| self.query_error("store an archived leaf hash", source))?;
            }
            transaction
                .commit()
                .await
                .map_err(|source| self.query_error("commit archived leaf hashes", source))
        })
    }

    /// Stores entries as they are (seq and hashes included), in one transaction.
    async fn insert_entries(&self, entries: &[crate::Entry]) -> Result<(), LedgerError> {
        with_pool!(&self.backend, pool => {
            let mut transaction = pool
                .begin()
                .await
                .map_err(|source| self.query_error("begin a transaction", source))?;
            for entry in entries {
                let seq = i64::try_from(entry.seq).unwrap_or(i64::MAX);
                sqlx::query(INSERT_ENTRY)
                    .bind(seq)
                    .bind(entry.at_ms)
                    .bind(entry.kind.as_str())
                    .bind(entry.incident_id.as_deref())
                    .bind(entry.payload.as_str())
                    .bind(entry.leaf_hash.as_slice())
                    .bind(entry.chain_hash.as_slice())
                    .bind(Option::<i64>::None)
                    .execute(&mut *transaction)
                    .await
                    .map_err(|source| self.query_error("copy an entry", source))?;
            }
            transaction
                .commit()
                .await
                .map_err(|source| self.query_error("commit copied entries", source))
        })
    }

    /// Stores the archived prefix, replacing any.
    async fn store_prefix(&self, prefix: ArchivedPrefix) -> Result<(), LedgerError> {
        let n_entries = i64::try_from(prefix.n_entries).unwrap_or(i64::MAX);
        with_pool!(&self.backend, pool => {
            let mut transaction = pool
                .begin()
                .await
                .map_err(|source| self.query_error("begin a transaction", source))?;
            sqlx::query(DELETE_PREFIX)
                .execute(&mut *transaction)
                .await
                .map_err(|source| self.query_error("replace the archived prefix", source))?;
            sqlx::query(INSERT_PREFIX)
                .bind(n_entries)
                .bind(prefix.chain_hash.as_slice())
                .bind(prefix.at_ms)
                .execute(&mut *transaction)
                .await
                .map_err(|source| self.query_error("store the archived prefix", source))?;
            transaction
                .commit()
                .await
                .map_err(|source| self.query_error("commit the archived prefix", source))
        })
    }

    /// Removes the entries below `end_seq` (archived with
    /// [`write_segment`](Ledger::write_segment) first), keeping their leaf hashes and the
    /// chain hash of the last one, in one transaction; then deletes each of `released` (the
    /// blobs the segment holds) that no live entry names. Entries appended meanwhile are
    /// untouched.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Archive`] when `end_seq` is not after the archived prefix or past the
    /// log; [`LedgerError::Query`] when the database fails (nothing is removed then).
    pub async fn archive_prefix(
        &self,
        end_seq: u64,
        at_ms: i64,
        released: &BTreeSet<String>,
    ) -> Result<ArchivedPrefix, LedgerError> {
        let first_seq = self.head_after_prefix().await?.0;
        let last = end_seq.checked_sub(1).filter(|last| *last >= first_seq);
        let last_entry = match last {
            Some(last) => self.read(last, 1).await?.into_iter().next(),
            None => None,
        };
        let Some(last_entry) = last_entry.filter(|entry| Some(entry.seq) == last) else {
            return Err(LedgerError::Archive {
                database: self.database.clone(),
                reason: format!(
                    "cannot archive up to entry {end_seq}: the live entries start at {first_seq}"
                ),
            });
        };
        let prefix = ArchivedPrefix {
            n_entries: end_seq,
            chain_hash: last_entry.chain_hash,
            at_ms,
        };
        let end = i64::try_from(end_seq).unwrap_or(i64::MAX);
        with_pool!(&self.backend, pool => {
            let mut transaction = pool
                .begin()
                .await
                .map_err(|source| self.query_error("begin a transaction", source))?;
            for (statement, action) in [
                (ARCHIVE_LEAVES_BELOW, "keep the archived leaf hashes"),
                (DELETE_ENTRIES_BELOW, "remove the archived entries"),
            ] {
                sqlx::query(statement)
                    .bind(end)
                    .execute(&mut *transaction)
                    .await
                    .map_err(|source| self.query_error(action, source))?;
            }
            sqlx::query(DELETE_PREFIX)
                .execute(&mut *transaction)
                .await
                .map_err(|source| self.query_error("replace the archived prefix", source))?;
            sqlx::query(INSERT_PREFIX)
                .bind(end)
                .bind(prefix.chain_hash.as_slice())
                .bind(at_ms)
                .execute(&mut *transaction)
                .await
                .map_err(|source| self.query_error("store the archived prefix", source))?;
            transaction
                .commit()
                .await
                .map_err(|source| self.query_error("commit the archive", source))
        })?;
        self.release_blobs(released).await?;
        Ok(prefix)
    }

    /// Deletes each blob of `released` that no live entry names.
    async fn release_blobs(&self, released: &BTreeSet<String>) -> Result<(), LedgerError> {
        if released.is_empty() {
            return Ok(());
        }
        let mut kept = BTreeSet::new();
        let mut reader = self.entries(EntryFilter::default(), PageLimits::default());
        while let Some(entry) = reader.next().await? {
            for hash in blob_references(&entry.payload) {
                if released.contains(hash) {
                    kept.insert(hash.to_owned());
                }
            }
        }
        for hash in released.difference(&kept) {
            with_pool!(&self.backend, pool => {
                sqlx::query(DELETE_BLOB)
                    .bind(hash.as_str())
                    .execute(pool)
                    .await
                    .map(|_| ())
            })
            .map_err(|source| self.query_error("remove an archived blob", source))?;
        }
        Ok(())
    }
}
