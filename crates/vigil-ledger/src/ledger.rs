//! The ledger handle: open, append, read, blobs. Verification lives in `verify.rs`.

use crate::backend::{
    Backend, INSERT_BLOB, INSERT_CHECKPOINT, INSERT_ENTRY, RawEntry, SELECT_BLOB,
    SELECT_FOR_INCIDENT, SELECT_HEAD, SELECT_LAST_OF_KIND, hash_column, stored_seq, with_pool,
};
use crate::canonical::canonical_json;
use crate::entry::{Entry, EntryKind, NewEntry};
use crate::hash::{self, GENESIS_CHAIN_HASH, blob_hash};
use crate::merkle::Frontier;
use crate::{LedgerError, LedgerLocation};

/// Stores blobs in a ledger's blob table from any task: see [`Ledger::blob_store`].
#[derive(Debug, Clone)]
pub struct BlobStore {
    backend: Backend,
    database: String,
}

impl BlobStore {
    /// Stores `content` under its lowercase hex SHA-256 and returns that hash, as
    /// [`Ledger::put_blob`] does. Durable when this returns.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails.
    pub async fn put(&self, content: &[u8]) -> Result<String, LedgerError> {
        let hash = blob_hash(content);
        with_pool!(&self.backend, pool => {
            sqlx::query(INSERT_BLOB)
                .bind(hash.as_str())
                .bind(content)
                .execute(pool)
                .await
                .map(|_| ())
        })
        .map_err(|source| LedgerError::Query {
            database: self.database.clone(),
            action: "store a blob",
            source,
        })?;
        Ok(hash)
    }
}

/// An open ledger: a connection pool and the head (next seq, last chain hash).
///
/// One `Ledger` per database is the only writer (see the crate docs); it may be read from
/// concurrently through `&self`.
#[derive(Debug)]
pub struct Ledger {
    /// The database.
    pub(crate) backend: Backend,
    /// The location's description, safe to log; put in every error.
    pub(crate) database: String,
    /// The seq the next appended entry gets, which is also the number of entries.
    next_seq: u64,
    /// The chain hash of the last entry, or [`GENESIS_CHAIN_HASH`] when there is none.
    head_chain_hash: [u8; 32],
    /// The RFC 6962 tree of every entry's leaf hash, kept as its right edge; `None` when the
    /// stored leaf hashes do not run from seq 0 without a gap (a damaged log: verify says
    /// where).
    frontier: Option<Frontier>,
    /// The leader's epoch every appended entry carries, when replicated (see
    /// [`crate::replication`]); the database refuses an entry whose epoch is not current.
    epoch: Option<i64>,
    /// A reader ([`Ledger::reader`]): appends are refused.
    read_only: bool,
}

impl Ledger {
    /// A handle that reads this ledger beside its writer, sharing its connection pool: it
    /// sees the head as it is now (its [`len`](Ledger::len) and
    /// [`tree_head`](Ledger::tree_head) do not move on), and reads whatever is stored when
    /// it reads. Appends through it fail with [`LedgerError::ReadOnly`]. The console takes
    /// one per request from the engine loop, which owns the writer.
    #[must_use]
    pub fn reader(&self) -> Ledger {
        Ledger {
            backend: self.backend.clone(),
            database: self.database.clone(),
            next_seq: self.next_seq,
            head_chain_hash: self.head_chain_hash,
            frontier: self.frontier.clone(),
            epoch: self.epoch,
            read_only: true,
        }
    }

    /// Whether this handle is a [`reader`](Ledger::reader).
    #[must_use]
    pub fn is_reader(&self) -> bool {
        self.read_only
    }

    /// Opens the ledger at `location`: creates the SQLite file or the PostgreSQL schema if
    /// missing, applies the migrations and loads the head from the last entry.
    ///
    /// Opening does not verify the log; call [`verify`](Ledger::verify) for that.
    ///
    /// # Errors
    ///
    /// When the database cannot be reached or migrated, the schema name is invalid, or the
    /// last entry's seq or chain hash is malformed.
    pub async fn open(location: &LedgerLocation) -> Result<Ledger, LedgerError> {
        Ledger::open_with(location, true).await
    }

    /// Opens a ledger that must already exist, as [`open`](Ledger::open) does otherwise:
    /// for tools that read a ledger, which must not create an empty one by mistake.
    ///
    /// # Errors
    ///
    /// [`LedgerError::NotFound`] when the SQLite file, the PostgreSQL schema or its ledger
    /// tables do not exist; otherwise as for [`open`](Ledger::open).
    pub async fn open_existing(location: &LedgerLocation) -> Result<Ledger, LedgerError> {
        Ledger::open_with(location, false).await
    }

    async fn open_with(location: &LedgerLocation, create: bool) -> Result<Ledger, LedgerError> {
        let database = location.describe();
        let backend = Backend::open(location, &database, create).await?;
        let mut ledger = Ledger {
            backend,
            database,
            next_seq: 0,
            head_chain_hash: GENESIS_CHAIN_HASH,
            frontier: Some(Frontier::new()),
            epoch: None,
            read_only: false,
        };
        ledger.load_head().await?;
        tracing::debug!(database = %ledger.database, n_entries = ledger.next_seq, "ledger opened");
        Ok(ledger)
    }

    /// Appends `entries` in one transaction and returns them as stored.
    ///
    /// Payloads are stored as their [`canonical_json`] text. When this returns `Ok`, the
    /// transaction has committed durably (see the crate docs); when it returns `Err`, nothing
    /// was appended, except if the commit itself failed in a way that leaves its outcome
    /// unknown (the connection broke during the commit): the head is then reloaded from the
    /// database, and [`len`](Ledger::len) tells which.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Conflict`] when another writer took a seq, [`LedgerError::Full`] when
    /// seq would pass `i64::MAX`, [`LedgerError::Query`] when the database fails.
    pub async fn append(&mut self, entries: &[NewEntry]) -> Result<Vec<Entry>, LedgerError> {
        self.append_consuming(entries, &[]).await
    }

    /// Appends `entries` as [`append`](Ledger::append) does and, in the same transaction,
    /// deletes the inbox rows `consumed` (the pushes whose events these entries record: see
    /// [`crate::replication`]), so that a push is in the chain exactly once.
    ///
    /// # Errors
    ///
    /// As for [`append`](Ledger::append); [`LedgerError::InboxConflict`] when one of the rows
    /// is no longer in the inbox (another writer consumed it), and nothing is appended.
    pub async fn append_consuming(
        &mut self,
        entries: &[NewEntry],
        consumed: &[i64],
    ) -> Result<Vec<Entry>, LedgerError> {
        if self.read_only {
            return Err(LedgerError::ReadOnly {
                database: self.database.clone(),
            });
        }
        let Some(n_more) = (entries.len() as u64).checked_sub(1) else {
            return Ok(Vec::new());
        };
        let last_seq = self.next_seq.checked_add(n_more);
        if last_seq.is_none_or(|seq| i64::try_from(seq).is_err()) {
            return Err(self.full(last_seq.unwrap_or(u64::MAX)));
        }
        let prepared = self.prepare(entries);
        if let Err(error) = self.insert(&prepared, consumed).await {
            // The commit may have happened even though it reported failure: take the head
            // from the database rather than guessing.
            if let Err(reload_error) = self.load_head().await {
                tracing::warn!(
                    database = %self.database,
                    error = %reload_error,
                    "cannot reload the ledger head after a failed append"
                );
            }
            return Err(error);
        }
        if let Some(last) = prepared.last() {
            self.next_seq = last.seq + 1;
            self.head_chain_hash = last.chain_hash;
        }
        if let Some(frontier) = &mut self.frontier {
            for entry in &prepared {
                frontier.push(entry.leaf_hash);
            }
        }
        Ok(prepared)
    }

    /// Stores `content` under its lowercase hex SHA-256 and returns that hash.
    ///
    /// Storing the same content again is a no-op. The write is durable when this returns.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails.
    pub async fn put_blob(&self, content: &[u8]) -> Result<String, LedgerError> {
        self.blob_store().put(content).await
    }

    /// A handle that stores blobs beside this ledger from other tasks (blobs are
    /// content-addressed and idempotent, so they need no single writer; entries do).
    #[must_use]
    pub fn blob_store(&self) -> BlobStore {
        BlobStore {
            backend: self.backend.clone(),
            database: self.database.clone(),
        }
    }

    /// The content stored under `hash_hex`, if any.
    ///
    /// # Errors
    ///
    /// [`LedgerError::InvalidBlobHash`] unless `hash_hex` is 64 lowercase hex digits,
    /// [`LedgerError::BlobCorrupted`] when the stored content no longer has that hash,
    /// [`LedgerError::Query`] when the database fails.
    pub async fn get_blob(&self, hash_hex: &str) -> Result<Option<Vec<u8>>, LedgerError> {
        let is_lowercase_hex = |byte: &u8| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte);
        if hash_hex.len() != 64 || !hash_hex.as_bytes().iter().all(is_lowercase_hex) {
            return Err(LedgerError::InvalidBlobHash {
                hash: hash_hex.to_owned(),
            });
        }
        let content: Option<Vec<u8>> = with_pool!(&self.backend, pool => {
            sqlx::query_scalar(SELECT_BLOB)
                .bind(hash_hex)
                .fetch_optional(pool)
                .await
        })
        .map_err(|source| self.query_error("read a blob", source))?;
        if let Some(content) = &content
            && blob_hash(content) != hash_hex
        {
            return Err(LedgerError::BlobCorrupted {
                database: self.database.clone(),
                hash: hash_hex.to_owned(),
            });
        }
        Ok(content)
    }

    /// Stores a signed checkpoint, unless one of the same tree size is stored already;
    /// returns whether it was stored. The write is durable when this returns.
    ///
    /// The checkpoint is not checked here: [`Checkpoint::verify_signature`] and verification
    /// against the log are the reader's job.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails, [`LedgerError::Full`] when the tree
    /// size does not fit the column.
    ///
    /// [`Checkpoint::verify_signature`]: crate::checkpoint::Checkpoint::verify_signature
    pub async fn store_checkpoint(
        &self,
        checkpoint: &crate::checkpoint::Checkpoint,
    ) -> Result<bool, LedgerError> {
        let tree_size =
            i64::try_from(checkpoint.tree_size).map_err(|_| self.full(checkpoint.tree_size))?;
        let json = serde_json::to_value(checkpoint)
            .map(|value| canonical_json(&value))
            .unwrap_or_default();
        let inserted = with_pool!(&self.backend, pool => {
            sqlx::query(INSERT_CHECKPOINT)
                .bind(tree_size)
                .bind(checkpoint.at_ms)
                .bind(json.as_str())
                .execute(pool)
                .await
                .map(|result| result.rows_affected() > 0)
        })
        .map_err(|source| self.query_error("store a checkpoint", source))?;
        Ok(inserted)
    }

    /// The number of entries appended so far, which is also the next entry's seq.
    #[must_use]
    pub fn len(&self) -> u64 {
        self.next_seq
    }

    /// Whether no entry was appended yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.next_seq == 0
    }

    /// The number of entries and the RFC 6962 tree head over their leaf hashes (kept up to
    /// date in O(log n) per append; loaded from the stored leaf hashes by
    /// [`open`](Ledger::open), which does not verify them). `None` when the stored leaf
    /// hashes have a gap or a malformed hash: the log is damaged, and
    /// [`verify`](Ledger::verify) says where.
    #[must_use]
    pub fn tree_head(&self) -> Option<(u64, [u8; 32])> {
        self.frontier
            .as_ref()
            .map(|frontier| (frontier.size(), frontier.root()))
    }

    /// The chain hash of the last entry, `None` when the ledger is empty.
    #[must_use]
    pub fn head_chain_hash(&self) -> Option<[u8; 32]> {
        (self.next_seq > 0).then_some(self.head_chain_hash)
    }

    /// Every entry of incident `incident_id`, in seq order.
    ///
    /// # Errors
    ///
    /// As for [`read`](Ledger::read).
    pub async fn entries_for_incident(&self, incident_id: &str) -> Result<Vec<Entry>, LedgerError> {
        let rows: Vec<RawEntry> = with_pool!(&self.backend, pool => {
            sqlx::query_as(SELECT_FOR_INCIDENT)
                .bind(incident_id)
                .fetch_all(pool)
                .await
        })
        .map_err(|source| self.query_error("read an incident's entries", source))?;
        self.checked_entries(rows)
    }

    /// The latest entry of kind [`EntryKind::Session`] whose seq is at most `seq`: where a
    /// replay of entry `seq` has to start.
    ///
    /// # Errors
    ///
    /// As for [`read`](Ledger::read).
    pub async fn last_session_at_or_before(&self, seq: u64) -> Result<Option<Entry>, LedgerError> {
        let seq = i64::try_from(seq).unwrap_or(i64::MAX);
        let row: Option<RawEntry> = with_pool!(&self.backend, pool => {
            sqlx::query_as(SELECT_LAST_OF_KIND)
                .bind(EntryKind::Session.as_str())
                .bind(seq)
                .fetch_optional(pool)
                .await
        })
        .map_err(|source| self.query_error("find the last session", source))?;
        row.map(|raw| self.checked_entry(raw)).transpose()
    }

    /// Closes the connections, waiting for them to finish.
    pub async fn close(self) {
        self.backend.close().await;
    }

    /// Sets the head from the last stored entry and rebuilds the tree from the stored leaf
    /// hashes.
    async fn load_head(&mut self) -> Result<(), LedgerError> {
        self.load_chain_head().await?;
        self.load_frontier().await
    }

    /// Rebuilds the frontier from the stored leaf hashes, a page at a time.
    async fn load_frontier(&mut self) -> Result<(), LedgerError> {
        let mut frontier = Frontier::new();
        // Bounded by the number of entries: every page moves past at least one.
        while frontier.size() < self.next_seq {
            let from = i64::try_from(frontier.size()).unwrap_or(i64::MAX);
            // The archived entries' leaf hashes first (`archive.rs`), then the live ones'.
            let page = self
                .leaves_page(from, i64::from(crate::VERIFY_PAGE_ROWS))
                .await?;
            if page.is_empty() {
                break;
            }
            for (seq, leaf_hash) in page {
                let leaf = hash_column("leaf_hash", &leaf_hash);
                match leaf {
                    Ok(leaf) if u64::try_from(seq).ok() == Some(frontier.size()) => {
                        frontier.push(leaf);
                    }
                    _ => {
                        tracing::warn!(
                            database = %self.database,
                            seq,
                            "the stored leaf hashes are damaged here; no tree head until the log is repaired (run `vigil ledger verify`)"
                        );
                        self.frontier = None;
                        return Ok(());
                    }
                }
            }
        }
        self.frontier = Some(frontier);
        Ok(())
    }

    /// Sets the next seq and chain hash from the last stored entry.
    async fn load_chain_head(&mut self) -> Result<(), LedgerError> {
        let head: Option<(i64, Vec<u8>)> = with_pool!(&self.backend, pool => {
            sqlx::query_as(SELECT_HEAD).fetch_optional(pool).await
        })
        .map_err(|source| self.query_error("load the head", source))?;
        let Some((seq, chain_hash)) = head else {
            // No live entry: the log starts, or carries on after its archived prefix.
            (self.next_seq, self.head_chain_hash) = self.head_after_prefix().await?;
            return Ok(());
        };
        let seq_hint = u64::try_from(seq).unwrap_or_default();
        let malformed = |reason| self.malformed(seq_hint, reason);
        let last_seq = stored_seq(seq).map_err(malformed)?;
        let chain_hash = hash_column("chain_hash", &chain_hash).map_err(malformed)?;
        // INVARIANT: a stored seq fits an i64, so the next one fits a u64.
        self.next_seq = last_seq + 1;
        self.head_chain_hash = chain_hash;
        Ok(())
    }

    /// `entries` as they will be stored after the head: seqs, canonical payloads and hashes.
    ///
    /// The caller checked that every seq fits an `i64`.
    fn prepare(&self, entries: &[NewEntry]) -> Vec<Entry> {
        let mut previous_chain_hash = self.head_chain_hash;
        let mut prepared = Vec::with_capacity(entries.len());
        for (seq, new_entry) in (self.next_seq..).zip(entries) {
            let payload = canonical_json(&new_entry.payload);
            let entry_bytes = hash::entry_bytes(
                seq,
                new_entry.at_ms,
                new_entry.kind.as_str(),
                new_entry.incident_id.as_deref(),
                &payload,
            );
            let leaf_hash = hash::leaf_hash(entry_bytes.as_bytes());
            let chain_hash = hash::chain_hash(&previous_chain_hash, &leaf_hash);
            previous_chain_hash = chain_hash;
            prepared.push(Entry {
                seq,
                at_ms: new_entry.at_ms,
                kind: new_entry.kind,
                incident_id: new_entry.incident_id.clone(),
                payload,
                leaf_hash,
                chain_hash,
            });
        }
        prepared
    }

    /// Sets the epoch every later append carries (`None`: no epoch, as a ledger that is not
    /// replicated). The replica that took the lease sets it before its first append.
    pub fn set_epoch(&mut self, epoch: Option<i64>) {
        self.epoch = epoch;
    }

    /// The epoch appends carry, if any.
    #[must_use]
    pub fn epoch(&self) -> Option<i64> {
        self.epoch
    }

    /// Inserts `entries` and deletes the inbox rows `consumed` in one transaction and
    /// commits it.
    async fn insert(&self, entries: &[Entry], consumed: &[i64]) -> Result<(), LedgerError> {
        with_pool!(&self.backend, pool => {
            let mut transaction = pool
                .begin()
                .await
                .map_err(|source| self.query_error("begin a transaction", source))?;
            for entry in entries {
                let seq = i64::try_from(entry.seq).map_err(|_| self.full(entry.seq))?;
                sqlx::query(INSERT_ENTRY)
                    .bind(seq)
                    .bind(entry.at_ms)
                    .bind(entry.kind.as_str())
                    .bind(entry.incident_id.as_deref())
                    .bind(entry.payload.as_str())
                    .bind(entry.leaf_hash.as_slice())
                    .bind(entry.chain_hash.as_slice())
                    .bind(self.epoch)
                    .execute(&mut *transaction)
                    .await
                    .map_err(|source| self.insert_error(entry.seq, source))?;
            }
            if !consumed.is_empty() {
                let mut n_deleted = 0;
                for id in consumed {
                    n_deleted += sqlx::query(crate::replication::DELETE_INBOX_ROW_SQL)
                        .bind(*id)
                        .execute(&mut *transaction)
                        .await
                        .map_err(|source| self.query_error("consume inbox rows", source))?
                        .rows_affected();
                }
                if n_deleted != consumed.len() as u64 {
                    return Err(LedgerError::InboxConflict {
                        database: self.database.clone(),
                        expected: consumed.len() as u64,
                        found: n_deleted,
                    });
                }
            }
            transaction
                .commit()
                .await
                .map_err(|source| self.query_error("commit appended entries", source))
        })
    }

    /// Checks every row, failing on the first malformed one.
    fn checked_entries(&self, rows: Vec<RawEntry>) -> Result<Vec<Entry>, LedgerError> {
        rows.into_iter()
            .map(|raw| self.checked_entry(raw))
            .collect()
    }

    /// The entry of `raw`, or a [`LedgerError::MalformedRow`].
    pub(crate) fn checked_entry(&self, raw: RawEntry) -> Result<Entry, LedgerError> {
        let seq_hint = u64::try_from(raw.seq).unwrap_or_default();
        raw.into_entry()
            .map_err(|reason| self.malformed(seq_hint, reason))
    }

    /// A [`LedgerError::Query`] for this ledger.
    pub(crate) fn query_error(&self, action: &'static str, source: sqlx::Error) -> LedgerError {
        LedgerError::Query {
            database: self.database.clone(),
            action,
            source,
        }
    }

    /// A [`LedgerError::MalformedRow`] for this ledger.
    pub(crate) fn malformed(&self, seq: u64, reason: String) -> LedgerError {
        LedgerError::MalformedRow {
            database: self.database.clone(),
            seq,
            reason,
        }
    }

    /// A [`LedgerError::Full`] for this ledger.
    fn full(&self, seq: u64) -> LedgerError {
        LedgerError::Full {
            database: self.database.clone(),
            seq,
        }
    }

    /// The error for a failed insert of entry `seq`: a conflict when the seq was taken,
    /// fenced when the database refused this writer's epoch.
    fn insert_error(&self, seq: u64, source: sqlx::Error) -> LedgerError {
        let database_error = source.as_database_error();
        let is_conflict =
            database_error.is_some_and(|database_error| database_error.is_unique_violation());
        let is_fenced = database_error
            .and_then(|database_error| database_error.code())
            .is_some_and(|code| code == crate::replication::FENCED_SQLSTATE);
        if is_fenced {
            LedgerError::Fenced {
                database: self.database.clone(),
                seq,
                epoch: self.epoch,
                source,
            }
        } else if is_conflict {
            LedgerError::Conflict {
                database: self.database.clone(),
                seq,
                source,
            }
        } else {
            self.query_error("append entries", source)
        }
    }
}
