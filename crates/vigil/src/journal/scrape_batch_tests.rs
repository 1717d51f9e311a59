//! The batching rule (what is held, when a batch closes, where it goes) and batches read back
//! through the one reader, with their series blob covered by `Ledger::verify`.

use vigil_core::Timestamp;
use vigil_core::engine::{Command, Event};
use vigil_core::signal::Sample;
use vigil_ledger::{EntryKind, ProblemReason};

use super::{ScrapeBatcher, ScrapeBatching, is_batch_payload};
use crate::journal::{ChainEntries, Recorded, SessionRecord, session_entry};

fn scrape(at_ms: i64, value: f64) -> (Event, Vec<Command>) {
    let samples = vec![Sample {
        name: "litellm_total_tokens_metric_total".to_owned(),
        labels: [("hashed_api_key", "k-1")].into_iter().collect(),
        value,
        timestamp_ms: None,
    }];
    let event = Event::Scraped {
        source: "litellm-gateway".to_owned(),
        scraped_at: Timestamp(at_ms - 2),
        samples,
    };
    (event, Vec::new())
}

fn batching(max_secs: u64) -> ScrapeBatcher {
    ScrapeBatcher::new(Some(ScrapeBatching { max_secs }))
}

#[test]
fn only_a_scrape_that_issued_no_command_is_held_and_only_when_the_session_batches() {
    let mut off = ScrapeBatcher::new(None);
    assert!(!off.hold(&[scrape(0, 1.0)], 0));
    let mut on = batching(600);
    assert!(!on.hold(&[(Event::Tick, Vec::new())], 0));
    let (event, _) = scrape(0, 1.0);
    let issued = vec![Command::WakeAt { at: Timestamp(5) }];
    assert!(
        !on.hold(&[(event, issued)], 0),
        "a scrape that issued a command"
    );
    assert!(
        !on.hold(&[scrape(0, 1.0), scrape(1, 2.0)], 0),
        "a step of two events"
    );
    assert!(on.is_empty());
    assert!(on.hold(&[scrape(0, 1.0)], 0));
    assert!(!on.is_empty());
}

#[test]
fn a_batch_goes_before_the_next_entry_and_closes_when_it_spans_max_secs() {
    let mut batcher = batching(30);
    // Two scrapes are held, then a tick takes seq 11 after the batch at seq 10.
    for (at_ms, value) in [(0, 1.0), (15_000, 2.0)] {
        let recorded = batcher
            .step_entries(&[scrape(at_ms, value)], 10, at_ms, None)
            .unwrap();
        assert!(recorded.entries.is_empty() && recorded.blobs.is_empty());
    }
    let tick = batcher
        .step_entries(&[(Event::Tick, Vec::new())], 10, 20_000, None)
        .unwrap();
    assert_eq!(tick.entries.len(), 2);
    assert_eq!(tick.blobs.len(), 1, "the batch's series, the first time");
    assert_eq!(
        tick.entries[0].at_ms, 0,
        "a batch is at its first scrape's time"
    );
    let payload = vigil_ledger::canonical_json(&tick.entries[0].payload);
    assert!(is_batch_payload(&payload), "{payload}");
    assert!(!is_batch_payload(&vigil_ledger::canonical_json(
        &tick.entries[1].payload
    )));
    assert!(batcher.is_empty());
    // Then the scrape handled 30 s after the batch's first closes it, with itself.
    let mut closed = Vec::new();
    for at_ms in [20_000, 35_000, 50_000] {
        let recorded = batcher
            .step_entries(&[scrape(at_ms, 3.0)], 12, at_ms, None)
            .unwrap();
        closed.push(recorded);
    }
    assert!(closed[0].entries.is_empty() && closed[1].entries.is_empty());
    assert_eq!(closed[2].entries.len(), 1);
    assert!(
        closed[2].blobs.is_empty(),
        "the same series: the blob stored already"
    );
    assert!(batcher.close().unwrap().is_none(), "nothing is left open");
}

#[test]
fn a_scrape_that_issued_commands_is_coded_alone_in_its_event_place_after_the_open_batch() {
    let mut batcher = batching(600);
    assert!(
        batcher
            .step_entries(&[scrape(0, 1.0)], 10, 0, None)
            .unwrap()
            .entries
            .is_empty()
    );
    let (event, _) = scrape(15_000, 9.0);
    let issued = vec![Command::WakeAt {
        at: Timestamp(60_000),
    }];
    let recorded = batcher
        .step_entries(&[(event, issued)], 10, 15_000, None)
        .unwrap();
    // The open batch (seq 10), then the scrape as a batch of its own (seq 11) and its command,
    // caused by seq 11.
    assert_eq!(recorded.entries.len(), 3);
    let payloads: Vec<String> = recorded
        .entries
        .iter()
        .map(|entry| vigil_ledger::canonical_json(&entry.payload))
        .collect();
    assert!(is_batch_payload(&payloads[0]) && is_batch_payload(&payloads[1]));
    assert_eq!(recorded.entries[1].at_ms, 15_000);
    assert_eq!(recorded.entries[2].kind, EntryKind::Command);
    assert!(payloads[2].contains("\"caused_by\":11"), "{}", payloads[2]);
    assert_eq!(recorded.blobs.len(), 1, "one series dictionary for both");
    assert!(batcher.is_empty());
    // Without batching, the scrape stays JSON.
    let (event, _) = scrape(15_000, 9.0);
    let plain = ScrapeBatcher::new(None)
        .step_entries(
            &[(event, vec![Command::WakeAt { at: Timestamp(1) }])],
            0,
            15_000,
            None,
        )
        .unwrap();
    assert!(!is_batch_payload(&vigil_ledger::canonical_json(
        &plain.entries[0].payload
    )));
}

#[tokio::test]
async fn batches_read_back_as_their_scrapes_and_verify_covers_their_series_blob() {
    let (path, mut ledger, started) = crate::journal::test_ledger("batches").await;
    let SessionRecord::SessionStarted { scrape_batch, .. } = &started else {
        panic!("not a session start");
    };
    assert_eq!(*scrape_batch, Some(ScrapeBatching { max_secs: 600 }));
    let mut batcher = ScrapeBatcher::for_session(&started);
    let mut entries = vec![session_entry(&started, 0).unwrap()];
    let mut blobs = Vec::new();
    let mut expected = Vec::new();
    let steps = [
        scrape(1_000, 10.0),
        scrape(16_000, f64::NAN),
        (Event::Tick, Vec::new()),
        scrape(31_000, -0.0),
    ];
    for (idx, step) in steps.into_iter().enumerate() {
        let at_ms = [1_000, 16_000, 20_000, 31_000][idx];
        expected.push((at_ms, step.0.clone()));
        let first_seq = entries.len() as u64;
        let mut recorded = batcher
            .step_entries(&[step], first_seq, at_ms, None)
            .unwrap();
        entries.append(&mut recorded.entries);
        blobs.append(&mut recorded.blobs);
    }
    let mut closed = super::BatchedEntries::default();
    batcher.close_into(&mut closed).unwrap();
    entries.append(&mut closed.entries);
    for blob in &blobs {
        ledger.put_blob(blob).await.unwrap();
    }
    let appended = ledger.append(&entries).await.unwrap();
    assert_eq!(appended.len(), 4, "session, batch, tick, batch");
    assert!(
        appended
            .iter()
            .skip(1)
            .all(|entry| entry.kind == EntryKind::Event)
    );

    let mut chain = ChainEntries::new(&ledger, &appended[0], u64::MAX);
    let mut seen = Vec::new();
    while let Some((entry, recorded)) = chain.next().await.unwrap() {
        let Recorded::Event(record) = recorded else {
            panic!("entry {}: not an event", entry.seq);
        };
        seen.push((entry.seq, entry.at_ms, record.event));
    }
    assert_eq!(seen.len(), expected.len());
    for ((seq, at_ms, event), (expected_at, expected_event)) in seen.iter().zip(&expected) {
        assert_eq!(*at_ms, *expected_at);
        // NaN is not equal to itself: compare the events' JSON, which keeps it.
        assert_eq!(
            serde_json::to_string(event).unwrap(),
            serde_json::to_string(expected_event).unwrap(),
            "seq {seq}"
        );
    }
    assert_eq!(
        seen.iter().map(|(seq, ..)| *seq).collect::<Vec<_>>(),
        [1, 1, 2, 3],
        "a batch's scrapes carry its seq"
    );
    assert!(ledger.verify().await.unwrap().is_intact());

    // The series blob is evidence: without it, verify names the first batch.
    let url = format!("sqlite://{}", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let series_blob = vigil_ledger::hash::blob_hash(&blobs[0]);
    sqlx::query("DELETE FROM ledger_blobs WHERE hash = ?")
        .bind(&series_blob)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let report = ledger.verify().await.unwrap();
    let problem = report.first_problem.unwrap();
    assert_eq!(problem.seq, 1);
    assert_eq!(
        problem.reason,
        ProblemReason::MissingBlob { hash: series_blob }
    );
    ledger.close().await;
    crate::journal::remove_sqlite_ledger(&path).unwrap();
}
