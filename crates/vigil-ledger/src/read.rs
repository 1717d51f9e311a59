//! Reading entries in pages bounded by bytes as well as rows, and [`EntryReader`], which
//! yields a filtered log one entry at a time.
//!
//! A page is read in two statements: the seqs and row sizes of up to `rows` matching entries
//! (`octet_length`, which does not read the payloads), then the rows of the longest prefix of
//! them whose sizes add up to at most `bytes`, or of the first one alone when it is larger.
//! So a page holds at most `max(bytes, largest entry)` of row data, however many entries the
//! log holds and however large they are.

use crate::backend::{
    RawEntry, SELECT_ANY_OF_INCIDENT, SELECT_INCIDENT_SEQ_RANGE, SELECT_INCIDENT_SIZES_FROM_SEQ,
    SELECT_SEQ_RANGE, SELECT_SIZES_FROM_SEQ, with_pool,
};
use crate::{Entry, EntryKind, Ledger, LedgerError};

/// Rows fetched per page at most, by [`Ledger::verify`], [`Ledger::read`] and [`EntryReader`].
pub const VERIFY_PAGE_ROWS: u32 = 10_000;

/// Bytes of row data (payload, kind, incident and hashes) a page holds at most, unless its one
/// entry is larger: what bounds the memory of every whole-ledger read.
pub const READ_PAGE_BYTES: u64 = 4 << 20;

/// How much one page of entries may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageLimits {
    /// Entries at most (at least 1 is read).
    pub rows: u32,
    /// Bytes of row data at most, except that a page always holds its first entry.
    pub bytes: u64,
}

impl Default for PageLimits {
    fn default() -> Self {
        PageLimits {
            rows: VERIFY_PAGE_ROWS,
            bytes: READ_PAGE_BYTES,
        }
    }
}

/// Which entries a read returns; the default is all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// Only the entries of this incident.
    pub incident_id: Option<String>,
    /// Only the entries with `at_ms` at or after this time (milliseconds since the epoch).
    pub since_ms: Option<i64>,
    /// Only the entries of this kind (the others' payloads are never read from the
    /// database: a report of the commands skips the scrapes).
    pub kind: Option<EntryKind>,
}

/// A row that does not decode: its seq when that column could be read, and why.
pub(crate) type RowError = (Option<i64>, String);

/// One page of rows as the database returned them, each checked later by its reader.
pub(crate) struct RawPage {
    /// The rows, in seq order; an `Err` holds the row's seq (if readable) and why the row
    /// cannot be read as an entry.
    pub(crate) rows: Vec<Result<RawEntry, RowError>>,
    /// Where the next page starts, `None` when this page was the last.
    pub(crate) next_from: Option<i64>,
}

impl Ledger {
    /// Up to `limit` entries from seq `from_seq` on, in seq order, in a page of at most
    /// [`READ_PAGE_BYTES`] (or of one entry, when that entry alone is larger): a page may end
    /// before `limit`, and only an empty page means there are no more entries.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails, [`LedgerError::MalformedRow`] when a
    /// row cannot be read back as an entry.
    pub async fn read(&self, from_seq: u64, limit: u32) -> Result<Vec<Entry>, LedgerError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limits = PageLimits {
            rows: limit,
            bytes: READ_PAGE_BYTES,
        };
        self.read_page(from_seq, &EntryFilter::default(), limits)
            .await
    }

    /// The entries `filter` keeps from seq `from_seq` on, in seq order: one page within
    /// `limits`, empty when there are no more.
    ///
    /// # Errors
    ///
    /// As for [`read`](Ledger::read).
    pub async fn read_page(
        &self,
        from_seq: u64,
        filter: &EntryFilter,
        limits: PageLimits,
    ) -> Result<Vec<Entry>, LedgerError> {
        let Ok(from_seq) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        let page = self.raw_page(from_seq, filter, limits).await?;
        page.rows
            .into_iter()
            .map(|row| self.checked_row(row))
            .collect()
    }

    /// A reader of the entries `filter` keeps, in seq order, one at a time: it holds one
    /// page within `limits` at a time (see [`PageLimits`]), so a whole log of any size can
    /// be read with memory bounded by a page.
    #[must_use]
    pub fn entries(&self, filter: EntryFilter, limits: PageLimits) -> EntryReader<'_> {
        EntryReader {
            ledger: self,
            filter,
            limits,
            next_from: Some(0),
            page: Vec::new().into_iter(),
            n_pages: 0,
        }
    }

    /// Whether the ledger holds any entry of incident `incident_id`.
    ///
    /// # Errors
    ///
    /// [`LedgerError::Query`] when the database fails.
    pub async fn has_incident(&self, incident_id: &str) -> Result<bool, LedgerError> {
        let found: Option<i64> = with_pool!(&self.backend, pool => {
            sqlx::query_scalar(SELECT_ANY_OF_INCIDENT)
                .bind(incident_id)
                .fetch_optional(pool)
                .await
        })
        .map_err(|source| self.query_error("look up an incident", source))?;
        Ok(found.is_some())
    }

    /// One page of the rows `filter` keeps from seq `from_seq` on (which may be negative, so
    /// that verification sees rows moved below zero), within `limits`.
    pub(crate) async fn raw_page(
        &self,
        from_seq: i64,
        filter: &EntryFilter,
        limits: PageLimits,
    ) -> Result<RawPage, LedgerError> {
        let rows_limit = limits.rows.max(1);
        let since_ms = filter.since_ms.unwrap_or(i64::MIN);
        // Every kind's name when no kind is asked for: one statement serves both.
        let kind = filter.kind.map_or("%", EntryKind::as_str);
        let sizes: Vec<(i64, i64)> = with_pool!(&self.backend, pool => {
            match &filter.incident_id {
                Some(incident_id) => sqlx::query_as(SELECT_INCIDENT_SIZES_FROM_SEQ)
                    .bind(incident_id.as_str())
                    .bind(from_seq)
                    .bind(since_ms)
                    .bind(kind)
                    .bind(i64::from(rows_limit))
                    .fetch_all(pool)
                    .await,
                None => sqlx::query_as(SELECT_SIZES_FROM_SEQ)
                    .bind(from_seq)
                    .bind(since_ms)
                    .bind(kind)
                    .bind(i64::from(rows_limit))
                    .fetch_all(pool)
                    .await,
            }
        })
        .map_err(|source| self.query_error("size a page of entries", source))?;
        let Some(n_rows) = rows_within(&sizes, limits.bytes) else {
            return Ok(RawPage {
                rows: Vec::new(),
                next_from: None,
            });
        };
        let last_seq = sizes.get(n_rows - 1).map_or(from_seq, |&(seq, _)| seq);
        let is_last = n_rows == sizes.len() && sizes.len() < rows_limit as usize;
        // Rows decode as they arrive, so a page is held once (not as rows and entries).
        let rows: Vec<Result<RawEntry, RowError>> = with_pool!(&self.backend, pool => {
            match &filter.incident_id {
                Some(incident_id) => sqlx::query(SELECT_INCIDENT_SEQ_RANGE)
                    .bind(incident_id.as_str())
                    .bind(from_seq)
                    .bind(last_seq)
                    .bind(since_ms)
                    .bind(kind)
                    .try_map(decode_row)
                    .fetch_all(pool)
                    .await,
                None => sqlx::query(SELECT_SEQ_RANGE)
                    .bind(from_seq)
                    .bind(last_seq)
                    .bind(since_ms)
                    .bind(kind)
                    .try_map(decode_row)
                    .fetch_all(pool)
                    .await,
            }
        })
        .map_err(|source| self.query_error("read entries", source))?;
        let next_from = if is_last {
            None
        } else {
            last_seq.checked_add(1)
        };
        Ok(RawPage { rows, next_from })
    }

    /// The entry of a row, or a [`LedgerError::MalformedRow`].
    pub(crate) fn checked_row(
        &self,
        row: Result<RawEntry, RowError>,
    ) -> Result<Entry, LedgerError> {
        match row {
            Ok(raw) => self.checked_entry(raw),
            Err((seq, reason)) => Err(LedgerError::MalformedRow {
                database: self.database.clone(),
                seq: seq
                    .and_then(|seq| u64::try_from(seq).ok())
                    .unwrap_or_default(),
                reason,
            }),
        }
    }
}

/// A row as a [`RawEntry`], or its seq (when readable) and why it is not one.
fn decode_row<R>(row: R) -> Result<Result<RawEntry, RowError>, sqlx::Error>
where
    R: sqlx::Row,
    for<'r> RawEntry: sqlx::FromRow<'r, R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    &'static str: sqlx::ColumnIndex<R>,
{
    Ok(
        <RawEntry as sqlx::FromRow<R>>::from_row(&row).map_err(|error| {
            let seq = row.try_get::<i64, _>("seq").ok();
            (seq, error.to_string())
        }),
    )
}

/// How many of the first `sizes` (seq, bytes) fit in `budget` bytes: the longest prefix
/// whose sizes add up to at most `budget`, and at least one; `None` when there are none.
fn rows_within(sizes: &[(i64, i64)], budget: u64) -> Option<usize> {
    let mut total: u64 = 0;
    let mut n_rows = 0;
    for &(_, bytes) in sizes {
        total = total.saturating_add(u64::try_from(bytes).unwrap_or(0));
        if n_rows > 0 && total > budget {
            break;
        }
        n_rows += 1;
    }
    (n_rows > 0).then_some(n_rows)
}

/// The entries of a ledger that a filter keeps, in seq order, read a page at a time: see
/// [`Ledger::entries`].
#[derive(Debug)]
pub struct EntryReader<'a> {
    ledger: &'a Ledger,
    filter: EntryFilter,
    limits: PageLimits,
    /// Where the next page starts; `None` once the last page was read.
    next_from: Option<i64>,
    /// The rest of the current page.
    page: std::vec::IntoIter<Result<RawEntry, RowError>>,
    /// Pages read so far.
    n_pages: u64,
}

impl EntryReader<'_> {
    /// The next entry, `None` at the end.
    ///
    /// # Errors
    ///
    /// As for [`Ledger::read`]; the reader should not be used after an error.
    pub async fn next(&mut self) -> Result<Option<Entry>, LedgerError> {
        // Bounded: every page read moves `next_from` past at least one seq, or ends.
        loop {
            if let Some(row) = self.page.next() {
                return self.ledger.checked_row(row).map(Some);
            }
            let Some(from_seq) = self.next_from else {
                return Ok(None);
            };
            let page = self
                .ledger
                .raw_page(from_seq, &self.filter, self.limits)
                .await?;
            self.n_pages += 1;
            self.next_from = page.next_from;
            self.page = page.rows.into_iter();
        }
    }

    /// How many pages the reader has read so far (each within its [`PageLimits`]).
    #[must_use]
    pub fn pages_read(&self) -> u64 {
        self.n_pages
    }
}

#[cfg(test)]
mod tests {
    use super::rows_within;

    #[test]
    fn a_page_takes_the_rows_that_fit_and_always_its_first() {
        let sizes = [(0, 40), (1, 40), (2, 30), (3, 10)];
        let cases: [(u64, Option<usize>); 6] = [
            (0, Some(1)),
            (39, Some(1)),
            (80, Some(2)),
            (109, Some(2)),
            (110, Some(3)),
            (1_000, Some(4)),
        ];
        for (budget, expected) in cases {
            assert_eq!(rows_within(&sizes, budget), expected, "budget {budget}");
        }
        assert_eq!(rows_within(&[], 100), None);
        // A size the database reports as negative counts as nothing, not as a huge number.
        assert_eq!(rows_within(&[(0, -5), (1, 10)], 10), Some(2));
    }
}
