//! The two storage backends: connecting, migrating, and the SQL both dialects share.
//!
//! Every statement here is written once: SQLite accepts PostgreSQL's `$N` placeholders and
//! `ON CONFLICT ... DO NOTHING`, so the backends differ only in how they connect and in the
//! migration files (`BLOB` against `BYTEA`).

use std::sync::Arc;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Executor};

use crate::entry::{Entry, EntryKind};
use crate::location::quoted_schema;
use crate::{LedgerError, LedgerLocation};

/// The SQLite schema, embedded at build time.
static SQLITE_MIGRATOR: Migrator = sqlx::migrate!("../../migrations/sqlite");

/// The PostgreSQL schema, embedded at build time.
static POSTGRES_MIGRATOR: Migrator = sqlx::migrate!("../../migrations/postgres");

/// How long a SQLite statement waits for another connection's lock before failing.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections per pool. Appends take `&mut Ledger`, so at most one of them writes; the others
/// serve concurrent reads (SQLite's WAL lets readers run beside the writer).
const MAX_CONNECTIONS: u32 = 4;

/// A connection pool to one of the supported databases (cloning shares the pool).
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// A SQLite file.
    Sqlite(SqlitePool),
    /// A PostgreSQL database, every connection's `search_path` set to the ledger's schema.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool, whichever database it is.
///
/// The body is type-checked once per backend, so it may use anything both pools support.
macro_rules! with_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            $crate::backend::Backend::Sqlite($pool) => $body,
            $crate::backend::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

impl Backend {
    /// Connects to `location` and migrates it. A missing file or schema is created when
    /// `create` is set, and is [`LedgerError::NotFound`] otherwise (as is a PostgreSQL schema
    /// without the ledger's tables).
    pub(crate) async fn open(
        location: &LedgerLocation,
        database: &str,
        create: bool,
    ) -> Result<Backend, LedgerError> {
        let not_found = || LedgerError::NotFound {
            database: database.to_owned(),
        };
        let connect_error = |source| LedgerError::Connect {
            database: database.to_owned(),
            source,
        };
        let migrate_error = |source| LedgerError::Migrate {
            database: database.to_owned(),
            source,
        };
        match location {
            LedgerLocation::Sqlite { path } => {
                if !create && !path.is_file() {
                    return Err(not_found());
                }
                // WAL with synchronous=FULL fsyncs the log on every commit: a transaction
                // that committed survives a power loss.
                let options = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(create)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .busy_timeout(SQLITE_BUSY_TIMEOUT)
                    .foreign_keys(true);
                let pool = SqlitePoolOptions::new()
                    .max_connections(MAX_CONNECTIONS)
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                SQLITE_MIGRATOR.run(&pool).await.map_err(migrate_error)?;
                Ok(Backend::Sqlite(pool))
            }
            LedgerLocation::Postgres { url, schema } => {
                let options: PgConnectOptions = url.parse().map_err(connect_error)?;
                let quoted = schema.as_deref().map(quoted_schema).transpose()?;
                let mut pool_options = PgPoolOptions::new().max_connections(MAX_CONNECTIONS);
                if let Some(quoted) = &quoted {
                    let set_search_path: Arc<str> = format!("SET search_path TO {quoted}").into();
                    pool_options = pool_options.after_connect(move |connection, _metadata| {
                        let statement = Arc::clone(&set_search_path);
                        Box::pin(async move {
                            // The name was checked to be a plain identifier and is quoted.
                            connection.execute(AssertSqlSafe(statement)).await?;
                            Ok(())
                        })
                    });
                }
                let pool = pool_options
                    .connect_with(options)
                    .await
                    .map_err(connect_error)?;
                if let (Some(schema), Some(quoted)) = (schema, quoted) {
                    let query_error = |action| {
                        move |source| LedgerError::Query {
                            database: database.to_owned(),
                            action,
                            source,
                        }
                    };
                    // Look first: `CREATE SCHEMA IF NOT EXISTS` needs the CREATE privilege even
                    // when the schema exists, which a role given a ready-made schema may lack.
                    let exists: bool = sqlx::query_scalar(
                        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
                    )
                    .bind(schema.as_str())
                    .fetch_one(&pool)
                    .await
                    .map_err(query_error("look up the schema"))?;
                    if !exists && !create {
                        pool.close().await;
                        return Err(not_found());
                    }
                    if !exists {
                        // The name was checked to be a plain identifier and is quoted.
                        let statement = format!("CREATE SCHEMA IF NOT EXISTS {quoted}");
                        pool.execute(AssertSqlSafe(statement))
                            .await
                            .map_err(query_error("create the schema"))?;
                    }
                }
                if !create {
                    let has_entries: bool =
                        sqlx::query_scalar("SELECT to_regclass('ledger_entries') IS NOT NULL")
                            .fetch_one(&pool)
                            .await
                            .map_err(|source| LedgerError::Query {
                                database: database.to_owned(),
                                action: "look up the ledger's tables",
                                source,
                            })?;
                    if !has_entries {
                        pool.close().await;
                        return Err(not_found());
                    }
                }
                POSTGRES_MIGRATOR.run(&pool).await.map_err(migrate_error)?;
                Ok(Backend::Postgres(pool))
            }
        }
    }

    /// Closes every connection, waiting for them to finish.
    pub(crate) async fn close(self) {
        with_pool!(self, pool => pool.close().await);
    }
}

/// Inserts one entry; binds seq, at_ms, kind, incident_id, payload, leaf_hash, chain_hash and
/// the writer's epoch (NULL unless replicated: see `replication.rs`).
pub(crate) const INSERT_ENTRY: &str = "INSERT INTO ledger_entries \
     (seq, at_ms, kind, incident_id, payload, leaf_hash, chain_hash, epoch) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// The last entry's seq and chain hash.
pub(crate) const SELECT_HEAD: &str =
    "SELECT seq, chain_hash FROM ledger_entries ORDER BY seq DESC LIMIT 1";

/// Up to `$2` leaf hashes from seq `$1` on, with their seqs, in seq order.
pub(crate) const SELECT_LEAVES_FROM_SEQ: &str = "SELECT seq, leaf_hash FROM ledger_entries \
     WHERE seq >= $1 ORDER BY seq LIMIT $2";

/// The bytes of an entry row's columns as read into memory: what a page is bounded by.
///
/// `octet_length` counts bytes (not characters) in both dialects and needs no more than the
/// value's header, so sizing a page does not read the payloads.
macro_rules! row_bytes {
    () => {
        "CAST(octet_length(payload) AS BIGINT) + CAST(octet_length(kind) AS BIGINT) \
         + CAST(COALESCE(octet_length(incident_id), 0) AS BIGINT) \
         + CAST(octet_length(leaf_hash) AS BIGINT) + CAST(octet_length(chain_hash) AS BIGINT)"
    };
}

/// The seqs and row sizes of up to `$4` entries from seq `$1` on with `at_ms >= $2` and a
/// kind matching the pattern `$3` (`%` for every kind), in seq order: the first half of
/// reading a page bounded by bytes.
pub(crate) const SELECT_SIZES_FROM_SEQ: &str = concat!(
    "SELECT seq, ",
    row_bytes!(),
    " FROM ledger_entries WHERE seq >= $1 AND at_ms >= $2 AND kind LIKE $3 ORDER BY seq LIMIT $4"
);

/// As [`SELECT_SIZES_FROM_SEQ`] for incident `$1` only (seq from `$2`, `at_ms >= $3`, kind
/// like `$4`, up to `$5` rows), along the `(incident_id, seq)` index.
pub(crate) const SELECT_INCIDENT_SIZES_FROM_SEQ: &str = concat!(
    "SELECT seq, ",
    row_bytes!(),
    " FROM ledger_entries WHERE incident_id = $1 AND seq >= $2 AND at_ms >= $3 \
     AND kind LIKE $4 ORDER BY seq LIMIT $5"
);

/// The entries with seq from `$1` to `$2` (inclusive), `at_ms >= $3` and a kind like `$4`,
/// in seq order: the second half of reading a page, over the seqs the first half chose.
pub(crate) const SELECT_SEQ_RANGE: &str = "SELECT seq, at_ms, kind, incident_id, payload, \
     leaf_hash, chain_hash FROM ledger_entries WHERE seq >= $1 AND seq <= $2 AND at_ms >= $3 \
     AND kind LIKE $4 ORDER BY seq";

/// As [`SELECT_SEQ_RANGE`] for incident `$1` only (seq from `$2` to `$3`, `at_ms >= $4`,
/// kind like `$5`).
pub(crate) const SELECT_INCIDENT_SEQ_RANGE: &str = "SELECT seq, at_ms, kind, incident_id, \
     payload, leaf_hash, chain_hash FROM ledger_entries WHERE incident_id = $1 AND seq >= $2 \
     AND seq <= $3 AND at_ms >= $4 AND kind LIKE $5 ORDER BY seq";

/// The seq of some entry of incident `$1`, if it has any.
pub(crate) const SELECT_ANY_OF_INCIDENT: &str =
    "SELECT seq FROM ledger_entries WHERE incident_id = $1 LIMIT 1";

/// Every entry of incident `$1`, in seq order.
pub(crate) const SELECT_FOR_INCIDENT: &str = "SELECT seq, at_ms, kind, incident_id, payload, \
     leaf_hash, chain_hash FROM ledger_entries WHERE incident_id = $1 ORDER BY seq";

/// The last entry of kind `$1` with seq at most `$2`.
pub(crate) const SELECT_LAST_OF_KIND: &str = "SELECT seq, at_ms, kind, incident_id, payload, \
     leaf_hash, chain_hash FROM ledger_entries WHERE kind = $1 AND seq <= $2 \
     ORDER BY seq DESC LIMIT 1";

/// Stores blob `$2` under hash `$1` unless that hash is already stored.
pub(crate) const INSERT_BLOB: &str =
    "INSERT INTO ledger_blobs (hash, content) VALUES ($1, $2) ON CONFLICT (hash) DO NOTHING";

/// Stores checkpoint `$3` (JSON) of tree size `$1` taken at `$2`, unless that size has one.
pub(crate) const INSERT_CHECKPOINT: &str = "INSERT INTO ledger_checkpoints \
     (tree_size, at_ms, checkpoint) VALUES ($1, $2, $3) ON CONFLICT (tree_size) DO NOTHING";

/// Every stored checkpoint, by tree size.
pub(crate) const SELECT_CHECKPOINTS: &str =
    "SELECT tree_size, checkpoint FROM ledger_checkpoints ORDER BY tree_size";

/// Up to `$3` stored checkpoints with `$1 < tree_size <= $2`, by tree size.
pub(crate) const SELECT_CHECKPOINTS_IN_RANGE: &str = "SELECT tree_size, checkpoint \
     FROM ledger_checkpoints WHERE tree_size > $1 AND tree_size <= $2 ORDER BY tree_size LIMIT $3";

/// The stored checkpoint of the largest tree size.
pub(crate) const SELECT_LAST_CHECKPOINT: &str = "SELECT tree_size, checkpoint \
     FROM ledger_checkpoints ORDER BY tree_size DESC LIMIT 1";

/// The content of blob `$1`.
pub(crate) const SELECT_BLOB: &str = "SELECT content FROM ledger_blobs WHERE hash = $1";

/// An entry row as the database returns it, before any check.
#[derive(Debug, sqlx::FromRow)]
pub(crate) struct RawEntry {
    /// The `seq` column.
    pub(crate) seq: i64,
    /// The `at_ms` column.
    pub(crate) at_ms: i64,
    /// The `kind` column.
    pub(crate) kind: String,
    /// The `incident_id` column.
    pub(crate) incident_id: Option<String>,
    /// The `payload` column.
    pub(crate) payload: String,
    /// The `leaf_hash` column.
    pub(crate) leaf_hash: Vec<u8>,
    /// The `chain_hash` column.
    pub(crate) chain_hash: Vec<u8>,
}

impl RawEntry {
    /// The checked entry, or what is wrong with the row (for [`LedgerError::MalformedRow`]).
    ///
    /// Hashes are checked for length only; [`Ledger::verify`](crate::Ledger::verify) checks
    /// their values.
    pub(crate) fn into_entry(self) -> Result<Entry, String> {
        let seq = stored_seq(self.seq)?;
        let kind = EntryKind::from_stored(&self.kind)
            .ok_or_else(|| format!("unknown kind `{}`", self.kind))?;
        Ok(Entry {
            seq,
            at_ms: self.at_ms,
            kind,
            incident_id: self.incident_id,
            payload: self.payload,
            leaf_hash: hash_column("leaf_hash", &self.leaf_hash)?,
            chain_hash: hash_column("chain_hash", &self.chain_hash)?,
        })
    }
}

/// A stored seq as `u64`, or why it cannot be one.
pub(crate) fn stored_seq(seq: i64) -> Result<u64, String> {
    u64::try_from(seq).map_err(|_| format!("negative seq {seq}"))
}

/// A stored hash column as 32 bytes, or why it cannot be one.
pub(crate) fn hash_column(column: &str, bytes: &[u8]) -> Result<[u8; 32], String> {
    <[u8; 32]>::try_from(bytes)
        .map_err(|_| format!("column `{column}` holds {} bytes, not 32", bytes.len()))
}
