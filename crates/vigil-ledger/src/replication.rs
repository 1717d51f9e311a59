//! Replicas on one PostgreSQL ledger: the leader's lease, the fence and the push inbox.
//!
//! # The lease
//!
//! One row, `ledger_lease.leader`: the holder (a replica id and the URL others reach it at),
//! an `epoch` that grows by one with every new holder, and `expires_at`. Every read and write
//! of it uses the database's clock (`clock_timestamp()`), never a replica's, and every
//! duration handed back is relative ("the lease runs for another N ms"), so replicas' clocks
//! may disagree freely. A replica takes the lease only when it has expired
//! ([`Replication::try_acquire`]), renews it only while it still runs
//! ([`Replication::renew`]) and gives it up on a clean stop ([`Replication::release`]).
//!
//! # The fence
//!
//! Every entry appended carries the writer's epoch ([`crate::Ledger::set_epoch`]). A trigger
//! (`migrations/postgres/0003_replication.sql`) refuses, inside the appending transaction, an
//! entry whose epoch is not the current one or whose lease has expired, with SQLSTATE
//! [`FENCED_SQLSTATE`] ([`crate::LedgerError::Fenced`]). It reads the lease row `FOR SHARE`,
//! so a takeover waits for an append in flight, and an append after a takeover sees the new
//! epoch. So a leader that was paused or cut off past its lease cannot write, whatever its
//! own clock believes, and the chain cannot fork (seqs are also a primary key).
//!
//! What the fence does not cover: effects outside the database. A leader decides before it
//! acts, and checks before every action that its lease outlives the call's timeout (the
//! daemon's side); an action already sent when the process froze still lands. The next
//! leader reads every unfinished action's target back before doing anything, and every
//! action carries an idempotency key, so a repeat changes nothing.
//!
//! # The inbox
//!
//! Any replica accepts a push: it commits the raw body to `ledger_inbox` and answers 2xx
//! ([`Replication::inbox_put`]). The leader drains the rows in `id` order
//! ([`Replication::inbox_after`]) and deletes each in the transaction that appends its event
//! ([`crate::Ledger::append_consuming`]), so an acknowledged push is in the chain once,
//! whichever replica took it and whatever failed in between.

use std::time::Duration;

use sqlx::postgres::PgPool;

use crate::backend::Backend;
use crate::{Ledger, LedgerError};

/// The SQLSTATE of the fence's refusal.
pub const FENCED_SQLSTATE: &str = "VGF01";

/// Deletes inbox row `$1` (one push consumed by an append).
pub(crate) const DELETE_INBOX_ROW_SQL: &str = "DELETE FROM ledger_inbox WHERE id = $1";

/// Takes the lease for holder `$1` at URL `$2` for `$3` ms when it is free or expired,
/// bumping the epoch; returns the epoch and the ms the lease runs for.
const ACQUIRE_SQL: &str = "INSERT INTO ledger_lease \
     (name, epoch, holder, holder_url, acquired_at, renewed_at, expires_at) \
     VALUES ('leader', 1, $1, $2, clock_timestamp(), clock_timestamp(), \
             clock_timestamp() + $3 * INTERVAL '1 millisecond') \
     ON CONFLICT (name) DO UPDATE SET epoch = ledger_lease.epoch + 1, \
         holder = EXCLUDED.holder, holder_url = EXCLUDED.holder_url, \
         acquired_at = EXCLUDED.acquired_at, renewed_at = EXCLUDED.renewed_at, \
         expires_at = EXCLUDED.expires_at \
     WHERE ledger_lease.expires_at <= clock_timestamp() \
     RETURNING epoch, \
         CAST(EXTRACT(EPOCH FROM (expires_at - clock_timestamp())) * 1000 AS BIGINT)";

/// Extends the lease of epoch `$1` held by `$2` by `$3` ms from now, if it still runs.
const RENEW_SQL: &str = "UPDATE ledger_lease SET renewed_at = clock_timestamp(), \
     expires_at = clock_timestamp() + $3 * INTERVAL '1 millisecond' \
     WHERE name = 'leader' AND epoch = $1 AND holder = $2 AND expires_at > clock_timestamp() \
     RETURNING CAST(EXTRACT(EPOCH FROM (expires_at - clock_timestamp())) * 1000 AS BIGINT)";

/// Ends the lease of epoch `$1` held by `$2` now.
const RELEASE_SQL: &str = "UPDATE ledger_lease SET expires_at = clock_timestamp() \
     WHERE name = 'leader' AND epoch = $1 AND holder = $2 AND expires_at > clock_timestamp()";

/// The lease as it stands.
const CURRENT_SQL: &str = "SELECT epoch, holder, holder_url, \
     CAST(EXTRACT(EPOCH FROM (expires_at - clock_timestamp())) * 1000 AS BIGINT) \
     FROM ledger_lease WHERE name = 'leader'";

/// Stores one push unless the inbox holds `$6` rows already; returns its id.
///
/// The span of ids waiting (`max - min + 1`, two probes of the primary key) bounds the count
/// from above, so a push is admitted at once while the span is under the limit; only when it
/// is not (a full inbox, or holes left by pushes drained out of order) are the rows counted.
/// Counting every time costs a scan of the inbox per push: 463 pushes a second with 50,000
/// waiting (`vigil-bench leader`). The subqueries are init plans, run only when `CASE`
/// reaches them.
const INBOX_PUT_SQL: &str = "INSERT INTO ledger_inbox \
     (received_at_ms, replica, route, content_type, body) \
     SELECT $1, $2, $3, $4, $5 \
     WHERE CASE \
         WHEN (SELECT coalesce(max(id) - min(id) + 1, 0) FROM ledger_inbox) < $6 THEN true \
         ELSE (SELECT count(*) FROM ledger_inbox) < $6 \
     END RETURNING id";

/// Up to `$2` inbox rows after id `$1`, oldest first.
const INBOX_AFTER_SQL: &str = "SELECT id, received_at_ms, replica, route, content_type, body \
     FROM ledger_inbox WHERE id > $1 ORDER BY id LIMIT $2";

/// The number of rows in the inbox.
const INBOX_COUNT_SQL: &str = "SELECT count(*) FROM ledger_inbox";

/// The lease a replica holds: its epoch and how long it runs, by the database's clock, as of
/// when the statement ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The epoch every append of this term carries.
    pub epoch: i64,
    /// How long the lease runs from when the database answered.
    pub runs_for: Duration,
}

/// Who holds the lease, as the database sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    /// The epoch.
    pub epoch: i64,
    /// The holder's replica id.
    pub replica: String,
    /// Where the holder's API is.
    pub url: String,
    /// How long the lease still runs (zero when it has expired).
    pub runs_for: Duration,
}

/// A push waiting in the inbox.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct InboxRow {
    /// Its id: the order the leader drains in.
    pub id: i64,
    /// When a replica committed it (that replica's clock, for people only).
    pub received_at_ms: i64,
    /// The replica that took it.
    pub replica: String,
    /// The route it came to (`/v1/push/evals`, `/v1/traces`, ...).
    pub route: String,
    /// Its Content-Type, if it had one.
    pub content_type: Option<String>,
    /// The body as received.
    pub body: Vec<u8>,
}

/// The replication side of a PostgreSQL ledger (cloning shares the pool).
#[derive(Clone, Debug)]
pub struct Replication {
    pool: PgPool,
    database: String,
}

impl Ledger {
    /// The lease and the inbox of this ledger.
    ///
    /// # Errors
    ///
    /// [`LedgerError::NotReplicable`] on SQLite.
    pub fn replication(&self) -> Result<Replication, LedgerError> {
        match &self.backend {
            Backend::Postgres(pool) => Ok(Replication {
                pool: pool.clone(),
                database: self.database.clone(),
            }),
            Backend::Sqlite(_) => Err(LedgerError::NotReplicable {
                database: self.database.clone(),
                what: "replication",
            }),
        }
    }
}

impl Replication {
    /// Takes the lease for `lease` if nobody holds a live one; `None` when somebody does.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails.
    pub async fn try_acquire(
        &self,
        replica: &str,
        url: &str,
        lease: Duration,
    ) -> Result<Option<Grant>, LedgerError> {
        let row: Option<(i64, i64)> = sqlx::query_as(ACQUIRE_SQL)
            .bind(replica)
            .bind(url)
            .bind(millis(lease))
            .fetch_optional(&self.pool)
            .await
            .map_err(|source| self.query_error("take the lease", source))?;
        Ok(row.map(|(epoch, runs_for_ms)| Grant {
            epoch,
            runs_for: from_millis(runs_for_ms),
        }))
    }

    /// Extends the lease of `epoch` to `lease` from now; `None` when it is no longer ours
    /// (expired, or another replica took it).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails: the lease may or may not have been
    /// extended, so the caller must count on what it knew before.
    pub async fn renew(
        &self,
        replica: &str,
        epoch: i64,
        lease: Duration,
    ) -> Result<Option<Duration>, LedgerError> {
        let row: Option<i64> = sqlx::query_scalar(RENEW_SQL)
            .bind(epoch)
            .bind(replica)
            .bind(millis(lease))
            .fetch_optional(&self.pool)
            .await
            .map_err(|source| self.query_error("renew the lease", source))?;
        Ok(row.map(from_millis))
    }

    /// Ends the lease of `epoch` now, if it is still ours, so that a standby takes over at
    /// once; returns whether it was.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails.
    pub async fn release(&self, replica: &str, epoch: i64) -> Result<bool, LedgerError> {
        let result = sqlx::query(RELEASE_SQL)
            .bind(epoch)
            .bind(replica)
            .execute(&self.pool)
            .await
            .map_err(|source| self.query_error("release the lease", source))?;
        Ok(result.rows_affected() > 0)
    }

    /// Who holds the lease now (an expired one included, with `runs_for` zero); `None` before
    /// any replica ever took it.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails.
    pub async fn holder(&self) -> Result<Option<LeaseHolder>, LedgerError> {
        let row: Option<(i64, String, String, i64)> = sqlx::query_as(CURRENT_SQL)
            .fetch_optional(&self.pool)
            .await
            .map_err(|source| self.query_error("read the lease", source))?;
        Ok(row.map(|(epoch, replica, url, runs_for_ms)| LeaseHolder {
            epoch,
            replica,
            url,
            runs_for: from_millis(runs_for_ms),
        }))
    }

    /// Commits one push to the inbox and returns its id; `None` when the inbox already holds
    /// `max_rows` pushes (the caller refuses the push: nothing was stored).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails: the push was not stored.
    pub async fn inbox_put(
        &self,
        received_at_ms: i64,
        replica: &str,
        route: &str,
        content_type: Option<&str>,
        body: &[u8],
        max_rows: u64,
    ) -> Result<Option<i64>, LedgerError> {
        sqlx::query_scalar(INBOX_PUT_SQL)
            .bind(received_at_ms)
            .bind(replica)
            .bind(route)
            .bind(content_type)
            .bind(body)
            .bind(i64::try_from(max_rows).unwrap_or(i64::MAX))
            .fetch_optional(&self.pool)
            .await
            .map_err(|source| self.query_error("store a push in the inbox", source))
    }

    /// Up to `limit` pushes with an id above `after`, oldest first.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails.
    pub async fn inbox_after(&self, after: i64, limit: u32) -> Result<Vec<InboxRow>, LedgerError> {
        sqlx::query_as(INBOX_AFTER_SQL)
            .bind(after)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(|source| self.query_error("read the inbox", source))
    }

    /// The number of pushes waiting in the inbox.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails.
    pub async fn inbox_len(&self) -> Result<u64, LedgerError> {
        let n: i64 = sqlx::query_scalar(INBOX_COUNT_SQL)
            .fetch_one(&self.pool)
            .await
            .map_err(|source| self.query_error("count the inbox", source))?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    fn query_error(&self, action: &'static str, source: sqlx::Error) -> LedgerError {
        LedgerError::Query {
            database: self.database.clone(),
            action,
            source,
        }
    }
}

/// A duration in whole milliseconds, saturating.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// Milliseconds from the database as a duration; negative ones (an expired lease) are zero.
fn from_millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
