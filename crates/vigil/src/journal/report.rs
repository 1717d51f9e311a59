//! The period report ([`vigil_core::report`]) read from a ledger: `vigil report` prints it,
//! and the console shows it.
//!
//! Only command entries are read (the report is made of decisions; the database skips
//! scrapes and other events by their kind, so their payloads are never read), from the
//! period's start on. An entry that
//! this build cannot decode is counted and named, never silently skipped.

use vigil_core::report::{Assumptions, Period, Report, ReportBuilder};
use vigil_core::time::Timestamp;
use vigil_ledger::{EntryFilter, EntryKind, Ledger, PageLimits};

use crate::journal::{self, Recorded};

/// Where a period starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// This long before the period's end.
    Before(std::time::Duration),
    /// At this instant.
    At(Timestamp),
}

/// A report and what could not be read for it.
#[derive(Debug)]
pub struct ReadReport {
    /// The report.
    pub report: Report,
    /// Whether the period ends at the ledger's latest entry (no `until` was given).
    pub until_latest_entry: bool,
    /// Command entries that could not be decoded: how many, and the first one's seq and
    /// reason.
    pub n_unreadable: u64,
    /// The first unreadable entry.
    pub first_unreadable: Option<(u64, String)>,
}

/// Reads the report of the period from `since` to `until` (default: the ledger's latest
/// entry, so that a report of an archived ledger covers its own last days, and the same
/// ledger always gives the same report).
///
/// # Errors
/// When the ledger cannot be read or holds no entry, or the period is empty.
pub async fn read(
    ledger: &Ledger,
    since: Since,
    until: Option<Timestamp>,
    assumptions: Assumptions,
) -> anyhow::Result<ReadReport> {
    let until_latest_entry = until.is_none();
    let until = match until {
        Some(until) => until,
        None => latest_entry_at(ledger).await?,
    };
    let from = match since {
        Since::At(from) => from,
        Since::Before(span) => {
            let millis = i64::try_from(span.as_millis()).unwrap_or(i64::MAX);
            until.plus_millis(millis.saturating_neg())
        }
    };
    anyhow::ensure!(
        from <= until,
        "the period is empty: it starts at {} and ends at {}",
        from.to_rfc3339(),
        until.to_rfc3339()
    );
    let period = Period { from, until };
    let mut builder = ReportBuilder::new(period);
    // Only commands: the scrapes' payloads are never read from the database.
    let filter = EntryFilter {
        incident_id: None,
        since_ms: Some(from.0),
        kind: Some(EntryKind::Command),
    };
    let mut reader = ledger.entries(filter, PageLimits::default());
    let (mut n_unreadable, mut first_unreadable) = (0, None);
    while let Some(entry) = reader.next().await? {
        match journal::decode(&entry) {
            Ok(Recorded::Command(record)) => {
                builder.command(Timestamp(entry.at_ms), &record.command);
            }
            Ok(_) => {}
            Err(error) => {
                n_unreadable += 1;
                first_unreadable.get_or_insert_with(|| (entry.seq, format!("{error:#}")));
            }
        }
    }
    Ok(ReadReport {
        report: builder.finish(assumptions),
        until_latest_entry,
        n_unreadable,
        first_unreadable,
    })
}

async fn latest_entry_at(ledger: &Ledger) -> anyhow::Result<Timestamp> {
    let n = ledger.len();
    anyhow::ensure!(
        n > 0,
        "the ledger holds no entries: there is nothing to report"
    );
    let page = ledger.read(n - 1, 1).await?;
    let last = page.last().ok_or_else(|| {
        anyhow::anyhow!("the ledger's last entry (seq {}) could not be read", n - 1)
    })?;
    Ok(Timestamp(last.at_ms))
}
