//! Reading the checkpoints stored in `ledger_checkpoints`: all of them, a range of tree sizes
//! a page at a time (for verification, which meets them as the log grows), or the newest.

use crate::backend::{
    SELECT_CHECKPOINTS, SELECT_CHECKPOINTS_IN_RANGE, SELECT_LAST_CHECKPOINT, with_pool,
};
use crate::checkpoint::Checkpoint;
use crate::{Ledger, LedgerError};

/// Checkpoints read per round trip by [`Ledger::checkpoints_in`].
pub(crate) const CHECKPOINT_PAGE_ROWS: u32 = 1_000;

impl Ledger {
    /// Every stored checkpoint, by tree size (all in memory: verification reads them a page
    /// at a time instead).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails, [`LedgerError::MalformedCheckpoint`]
    /// when a row is not a checkpoint or its tree size differs from its column.
    pub async fn checkpoints(&self) -> Result<Vec<Checkpoint>, LedgerError> {
        let rows: Vec<(i64, String)> = with_pool!(&self.backend, pool => {
            sqlx::query_as(SELECT_CHECKPOINTS).fetch_all(pool).await
        })
        .map_err(|source| self.query_error("read the checkpoints", source))?;
        rows.into_iter()
            .map(|(tree_size, json)| self.parse_checkpoint(tree_size, &json))
            .collect()
    }

    /// The stored checkpoint of the largest tree size, if any.
    ///
    /// # Errors
    ///
    /// As for [`checkpoints`](Ledger::checkpoints).
    pub async fn last_checkpoint(&self) -> Result<Option<Checkpoint>, LedgerError> {
        let row: Option<(i64, String)> = with_pool!(&self.backend, pool => {
            sqlx::query_as(SELECT_LAST_CHECKPOINT).fetch_optional(pool).await
        })
        .map_err(|source| self.query_error("read the newest checkpoint", source))?;
        row.map(|(tree_size, json)| self.parse_checkpoint(tree_size, &json))
            .transpose()
    }

    /// Up to [`CHECKPOINT_PAGE_ROWS`] stored checkpoints with `after < tree_size <= up_to`,
    /// by tree size (the stored tree size column, so a row whose size is negative is found
    /// and refused as malformed).
    pub(crate) async fn checkpoints_in(
        &self,
        after: i64,
        up_to: i64,
    ) -> Result<Vec<Checkpoint>, LedgerError> {
        let rows: Vec<(i64, String)> = with_pool!(&self.backend, pool => {
            sqlx::query_as(SELECT_CHECKPOINTS_IN_RANGE)
                .bind(after)
                .bind(up_to)
                .bind(i64::from(CHECKPOINT_PAGE_ROWS))
                .fetch_all(pool)
                .await
        })
        .map_err(|source| self.query_error("read the checkpoints", source))?;
        rows.into_iter()
            .map(|(tree_size, json)| self.parse_checkpoint(tree_size, &json))
            .collect()
    }

    /// The checkpoint a row holds, checked against its tree size column.
    fn parse_checkpoint(&self, tree_size: i64, json: &str) -> Result<Checkpoint, LedgerError> {
        let malformed = |reason: String| LedgerError::MalformedCheckpoint {
            database: self.database.clone(),
            tree_size,
            reason,
        };
        let checkpoint: Checkpoint =
            serde_json::from_str(json).map_err(|error| malformed(error.to_string()))?;
        if i64::try_from(checkpoint.tree_size).ok() != Some(tree_size) {
            return Err(malformed(format!(
                "it says tree size {}",
                checkpoint.tree_size
            )));
        }
        Ok(checkpoint)
    }
}
