//! The conformance cases for whole-ledger reads with bounded memory: pages bounded by bytes,
//! the entry reader and its filters, and verification meeting the stored checkpoints a page
//! at a time.

use serde_json::json;
use vigil_ledger::checkpoint::Checkpoint;
use vigil_ledger::{
    Entry, EntryFilter, EntryKind, Ledger, NewEntry, PageLimits, READ_PAGE_BYTES, VERIFY_PAGE_ROWS,
};

use crate::cases::{intact, sample_ledger};
use crate::fixture::{Fixture, TestResult, execute};

/// Bytes of padding in each large entry's payload.
const LARGE_PAYLOAD_BYTES: usize = 300_000;

/// Entry `seq` of the large-entry logs: a scrape-sized entry, or every third one a push of
/// [`LARGE_PAYLOAD_BYTES`]; of every five, one a command and one a session (the ledger does
/// not read payloads, so the kinds only matter to filters).
fn mixed_entry(seq: u64) -> NewEntry {
    let padding = if seq.is_multiple_of(3) {
        "x".repeat(LARGE_PAYLOAD_BYTES)
    } else {
        String::new()
    };
    NewEntry {
        at_ms: 1_700_000_000_000 + seq as i64 * 1_000,
        kind: match seq % 5 {
            2 => EntryKind::Command,
            4 => EntryKind::Session,
            _ => EntryKind::Event,
        },
        incident_id: (seq % 4 == 1).then(|| "inc-big".to_owned()),
        payload: json!({"seq": seq, "padding": padding}),
    }
}

/// The bytes of an entry's row data, as pages count them.
fn row_bytes(entry: &Entry) -> u64 {
    let incident = entry.incident_id.as_deref().map_or(0, str::len);
    (entry.payload.len() + entry.kind.as_str().len() + incident + 64) as u64
}

/// A ledger of `n_entries` mixed entries.
async fn mixed_ledger(fixture: &Fixture, n_entries: u64) -> TestResult<(Ledger, Vec<Entry>)> {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let new_entries: Vec<NewEntry> = (0..n_entries).map(mixed_entry).collect();
    let entries = ledger.append(&new_entries).await?;
    Ok((ledger, entries))
}

/// Whether a filter keeps an entry, as the test computes it.
type Keeps = fn(&&Entry) -> bool;

/// Every entry a reader over `filter` yields, and how many pages it read.
async fn read_through(
    ledger: &Ledger,
    filter: EntryFilter,
    limits: PageLimits,
) -> TestResult<(Vec<Entry>, u64)> {
    let mut reader = ledger.entries(filter, limits);
    let mut found = Vec::new();
    while let Some(entry) = reader.next().await? {
        found.push(entry);
    }
    Ok((found, reader.pages_read()))
}

// Regression: `read` returned `limit` rows whatever their size, so a page of multi-megabyte
// pushes held them all; whole-ledger commands peaked at hundreds of MB.
pub async fn pages_are_bounded_by_bytes(fixture: &Fixture) -> TestResult {
    let (ledger, entries) = mixed_ledger(fixture, 60).await?;
    let total: u64 = entries.iter().map(row_bytes).sum();
    assert!(total > READ_PAGE_BYTES, "the log must not fit one page");

    let page = ledger.read(0, VERIFY_PAGE_ROWS).await?;
    let held: u64 = page.iter().map(row_bytes).sum();
    assert!(
        !page.is_empty() && page.len() < entries.len(),
        "{} of {}",
        page.len(),
        entries.len()
    );
    assert!(held <= READ_PAGE_BYTES, "a page held {held} bytes");
    assert_eq!(
        page.as_slice(),
        entries.get(..page.len()).unwrap_or_default()
    );

    // The longest prefix within the budget; an entry larger than the budget comes alone.
    let one_large = entries.first().map(row_bytes).unwrap_or_default();
    let cases = [
        (0, one_large + 1_000, 3),
        (0, one_large - 1, 1),
        (1, 10, 1),
        (1, one_large, 2),
    ];
    for (from_seq, bytes, expected) in cases {
        let limits = PageLimits { rows: 1_000, bytes };
        let page = ledger
            .read_page(from_seq, &EntryFilter::default(), limits)
            .await?;
        let first = from_seq as usize;
        assert_eq!(
            page.as_slice(),
            entries.get(first..first + expected).unwrap_or_default(),
            "from {from_seq} within {bytes} bytes"
        );
    }
    // Paging with `read` until an empty page still yields every entry once.
    let mut from = 0;
    let mut all = Vec::new();
    for _ in 0..entries.len() + 1 {
        let page = ledger.read(from, VERIFY_PAGE_ROWS).await?;
        let Some(last) = page.last() else { break };
        from = last.seq + 1;
        all.extend(page);
    }
    assert_eq!(all, entries);
    ledger.close().await;
    Ok(())
}

pub async fn the_entry_reader_yields_each_entry_once_within_its_limits(
    fixture: &Fixture,
) -> TestResult {
    let (ledger, entries) = mixed_ledger(fixture, 30).await?;
    let large = entries.first().map(row_bytes).unwrap_or_default();
    // Budgets from less than one large entry to the whole log, and row limits of 1 and up.
    let limits = [
        // The last page is the empty one after the 30th entry.
        (
            PageLimits {
                rows: 1,
                bytes: u64::MAX,
            },
            31,
        ),
        (
            PageLimits {
                rows: 4,
                bytes: u64::MAX,
            },
            8,
        ),
        (
            PageLimits {
                rows: 1_000,
                bytes: 10,
            },
            30,
        ),
        (
            PageLimits {
                rows: 1_000,
                bytes: large + 1_000,
            },
            10,
        ),
        (PageLimits::default(), 1),
    ];
    for (limit, expected_pages) in limits {
        let (found, n_pages) = read_through(&ledger, EntryFilter::default(), limit).await?;
        assert_eq!(found, entries, "{limit:?}");
        assert_eq!(n_pages, expected_pages, "pages read with {limit:?}");
    }

    let since_ms = 1_700_000_000_000 + 17 * 1_000;
    let filters: [(EntryFilter, Keeps); 7] = [
        (
            EntryFilter {
                kind: Some(EntryKind::Command),
                ..EntryFilter::default()
            },
            |entry: &&Entry| entry.kind == EntryKind::Command,
        ),
        (
            EntryFilter {
                incident_id: Some("inc-big".to_owned()),
                since_ms: Some(since_ms),
                kind: Some(EntryKind::Event),
            },
            |entry: &&Entry| {
                entry.incident_id.as_deref() == Some("inc-big")
                    && entry.at_ms >= 1_700_000_000_000 + 17 * 1_000
                    && entry.kind == EntryKind::Event
            },
        ),
        (
            EntryFilter {
                kind: Some(EntryKind::Session),
                since_ms: Some(since_ms),
                ..EntryFilter::default()
            },
            |entry: &&Entry| {
                entry.kind == EntryKind::Session && entry.at_ms >= 1_700_000_000_000 + 17 * 1_000
            },
        ),
        (
            EntryFilter {
                incident_id: Some("inc-big".to_owned()),
                since_ms: None,
                kind: None,
            },
            |entry: &&Entry| entry.incident_id.as_deref() == Some("inc-big"),
        ),
        (
            EntryFilter {
                incident_id: None,
                since_ms: Some(since_ms),
                kind: None,
            },
            |entry: &&Entry| entry.at_ms >= 1_700_000_000_000 + 17 * 1_000,
        ),
        (
            EntryFilter {
                incident_id: Some("inc-big".to_owned()),
                since_ms: Some(since_ms),
                kind: None,
            },
            |entry: &&Entry| {
                entry.incident_id.as_deref() == Some("inc-big")
                    && entry.at_ms >= 1_700_000_000_000 + 17 * 1_000
            },
        ),
        (
            EntryFilter {
                incident_id: Some("inc-unknown".to_owned()),
                since_ms: None,
                kind: None,
            },
            |_: &&Entry| false,
        ),
    ];
    for (filter, keeps) in filters {
        let expected: Vec<Entry> = entries.iter().filter(keeps).cloned().collect();
        assert!(
            filter.incident_id.as_deref() == Some("inc-unknown") || !expected.is_empty(),
            "{filter:?} keeps nothing: the case tests nothing"
        );
        for limit in [PageLimits { rows: 2, bytes: 10 }, PageLimits::default()] {
            let (found, _) = read_through(&ledger, filter.clone(), limit).await?;
            assert_eq!(found, expected, "{filter:?} with {limit:?}");
        }
    }
    assert!(ledger.has_incident("inc-big").await?);
    assert!(!ledger.has_incident("inc-unknown").await?);
    ledger.close().await;
    Ok(())
}

pub async fn verify_meets_every_checkpoint_at_its_size_a_page_at_a_time(
    fixture: &Fixture,
) -> TestResult {
    let (ledger, location, entries) = sample_ledger(fixture, 30).await?;
    let key = ed25519_dalek::SigningKey::from_bytes(&[4; 32]);
    let leaves: Vec<[u8; 32]> = entries.iter().map(|entry| entry.leaf_hash).collect();
    let root_of = |n: usize| vigil_ledger::merkle::root(leaves.get(..n).unwrap_or_default());
    let sizes = [0_u64, 5, 12, 30, 40];
    for size in sizes {
        let head = root_of(size as usize);
        ledger
            .store_checkpoint(&Checkpoint::sign(&key, size, head, 1_000))
            .await?;
    }
    let mut handed = Vec::new();
    let (report, _) = ledger
        .verify_with_checkpoints(&Default::default(), |checkpoint| {
            handed.push((checkpoint.checkpoint.tree_size, checkpoint.head));
        })
        .await?;
    assert_eq!(report, intact(&entries));
    let expected: Vec<(u64, Option<[u8; 32]>)> = vec![
        (0, Some(root_of(0))),
        (5, Some(root_of(5))),
        (12, Some(root_of(12))),
        (30, Some(root_of(30))),
        (40, None),
    ];
    assert_eq!(handed, expected);
    handed.clear();

    // A broken log hands over the checkpoints up to its first problem only.
    execute(&location, "DELETE FROM ledger_entries WHERE seq = 8", &[]).await?;
    let (report, _) = ledger
        .verify_with_checkpoints(&Default::default(), |checkpoint| {
            handed.push((checkpoint.checkpoint.tree_size, checkpoint.head));
        })
        .await?;
    assert_eq!(report.n_entries, 8);
    assert_eq!(handed, vec![(0, Some(root_of(0))), (5, Some(root_of(5)))]);
    ledger.close().await;
    Ok(())
}

pub async fn verification_does_not_depend_on_page_bounds(fixture: &Fixture) -> TestResult {
    let (ledger, entries) = mixed_ledger(fixture, 20).await?;
    let expected = intact(&entries);
    let large = entries.first().map(row_bytes).unwrap_or_default();
    for limits in [
        PageLimits {
            rows: 1,
            bytes: u64::MAX,
        },
        PageLimits {
            rows: 1_000,
            bytes: 0,
        },
        PageLimits {
            rows: 1_000,
            bytes: large,
        },
        PageLimits {
            rows: 3,
            bytes: 2 * large,
        },
        PageLimits::default(),
    ] {
        assert_eq!(
            ledger.verify_with_limits(limits).await?,
            expected,
            "{limits:?}"
        );
    }
    ledger.close().await;
    Ok(())
}
