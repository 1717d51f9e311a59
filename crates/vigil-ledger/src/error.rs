//! The one error type of the ledger, with the database and the seq each failure concerns.

/// Everything that can go wrong while opening, writing, reading or verifying a ledger.
///
/// `database` fields hold a description of the ledger's location that is safe to log:
/// a PostgreSQL URL is shown without its user, password and query parameters.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// An append through a reader ([`crate::Ledger::reader`]), which only reads.
    #[error("ledger `{database}`: this handle is a reader and cannot append")]
    ReadOnly {
        /// The location's description (no credentials).
        database: String,
    },
    /// The PostgreSQL schema name is not a plain SQL identifier.
    #[error(
        "invalid postgresql schema name `{schema}`: expected `[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes"
    )]
    InvalidSchema {
        /// The rejected name.
        schema: String,
    },
    /// A stored checkpoint is not a checkpoint.
    #[error("checkpoint of tree size {tree_size} in ledger `{database}` is unreadable: {reason}")]
    MalformedCheckpoint {
        /// The location's description (no credentials).
        database: String,
        /// The row's tree size.
        tree_size: i64,
        /// What is wrong.
        reason: String,
    },
    /// The ledger does not exist (a missing SQLite file or PostgreSQL schema).
    #[error("no ledger at `{database}`")]
    NotFound {
        /// The location's description (no credentials).
        database: String,
    },
    /// The database could not be reached or opened.
    #[error("cannot connect to ledger `{database}`")]
    Connect {
        /// Where the ledger is.
        database: String,
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },
    /// The schema migrations could not be applied.
    #[error("cannot migrate ledger `{database}`")]
    Migrate {
        /// Where the ledger is.
        database: String,
        /// What the migrator reported.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A statement failed.
    #[error("cannot {action} in ledger `{database}`")]
    Query {
        /// Where the ledger is.
        database: String,
        /// What the ledger was doing, as a verb phrase ("append entries").
        action: &'static str,
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },
    /// The seq an append wanted was already taken: another writer appended to the same ledger.
    #[error(
        "cannot append entry {seq} to ledger `{database}`: the seq is taken, another writer appended"
    )]
    Conflict {
        /// Where the ledger is.
        database: String,
        /// The seq that was taken.
        seq: u64,
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },
    /// The database refused an append because the writer's epoch is no longer the current
    /// one, or its lease expired: another replica leads now (see [`crate::replication`]).
    #[error(
        "cannot append entry {seq} to ledger `{database}`: fenced, epoch {epoch:?} no longer holds the lease"
    )]
    Fenced {
        /// Where the ledger is.
        database: String,
        /// The first seq refused.
        seq: u64,
        /// The epoch the append carried.
        epoch: Option<i64>,
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },
    /// An append meant to consume pushes from the inbox found some of them gone: another
    /// writer consumed them. Nothing was appended.
    #[error(
        "cannot append to ledger `{database}`: {expected} inbox row(s) to consume, {found} still there; another writer took them"
    )]
    InboxConflict {
        /// Where the ledger is.
        database: String,
        /// Rows the append meant to consume.
        expected: u64,
        /// Rows it found.
        found: u64,
    },
    /// Replication needs PostgreSQL.
    #[error("ledger `{database}`: {what} needs a PostgreSQL ledger")]
    NotReplicable {
        /// Where the ledger is.
        database: String,
        /// What was asked.
        what: &'static str,
    },
    /// A stored row cannot be turned into an [`Entry`](crate::Entry).
    #[error("entry {seq} of ledger `{database}` is malformed: {reason}")]
    MalformedRow {
        /// Where the ledger is.
        database: String,
        /// The seq of the row (or the seq expected there, when the stored one is unusable).
        seq: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// An entry's stored payload is not valid JSON.
    #[error("payload of entry {seq} is not valid json")]
    Payload {
        /// The entry.
        seq: u64,
        /// What the parser reported.
        #[source]
        source: serde_json::Error,
    },
    /// The next seq does not fit the database's signed 64-bit column.
    #[error("ledger `{database}` is full: seq {seq} does not fit in a signed 64-bit integer")]
    Full {
        /// Where the ledger is.
        database: String,
        /// The seq that does not fit.
        seq: u64,
    },
    /// An archive the ledger cannot make or read: a cut outside its live entries, a segment
    /// file that exists already, a segment that does not verify or does not continue the one
    /// before it.
    #[error("ledger `{database}`: {reason}")]
    Archive {
        /// Where the ledger is.
        database: String,
        /// What is wrong.
        reason: String,
    },
    /// A blob was asked for by something that is not a lowercase hex SHA-256.
    #[error("invalid blob hash `{hash}`: expected 64 lowercase hex digits")]
    InvalidBlobHash {
        /// The rejected hash.
        hash: String,
    },
    /// A file beside the database failed: an export being written, its scratch tree.
    #[error("cannot {action}")]
    Io {
        /// What the ledger was doing, as a verb phrase naming the file.
        action: String,
        /// What the system reported.
        #[source]
        source: std::io::Error,
    },
    /// An entry read by the second pass of an export differs from the first pass: the log
    /// was changed (or entries were removed) while it was exported.
    #[error(
        "ledger `{database}` changed while it was exported, at entry {seq}; verify it and export again"
    )]
    ChangedDuringExport {
        /// Where the ledger is.
        database: String,
        /// The first entry that differs.
        seq: u64,
    },
    /// A stored blob's content no longer hashes to its key.
    #[error("blob `{hash}` in ledger `{database}` does not match its hash")]
    BlobCorrupted {
        /// Where the ledger is.
        database: String,
        /// The blob's key.
        hash: String,
    },
}
