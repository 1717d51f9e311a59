//! The lease, the fence and the inbox (PostgreSQL only: replicas need a shared database).

use std::time::Duration;

use vigil_ledger::{Ledger, LedgerError};

use crate::cases::sample_entries;
use crate::fixture::{Fixture, TestResult};

const LEASE: Duration = Duration::from_secs(30);

/// One holder at a time; the epoch grows with every new holder; only the holder renews.
pub async fn the_lease_has_one_holder_and_a_growing_epoch(fixture: &Fixture) -> TestResult {
    let ledger = Ledger::open(&fixture.new_location()).await?;
    let replication = ledger.replication()?;
    assert_eq!(replication.holder().await?, None);
    let first = replication
        .try_acquire("a", "http://a", LEASE)
        .await?
        .ok_or("a free lease is taken")?;
    assert_eq!(first.epoch, 1);
    assert!(first.runs_for > Duration::from_secs(20) && first.runs_for <= LEASE);
    assert_eq!(replication.try_acquire("b", "http://b", LEASE).await?, None);
    assert_eq!(replication.try_acquire("a", "http://a", LEASE).await?, None);
    assert!(replication.renew("a", 1, LEASE).await?.is_some());
    assert_eq!(replication.renew("b", 1, LEASE).await?, None);
    let holder = replication.holder().await?.ok_or("held")?;
    assert_eq!((holder.epoch, holder.replica.as_str()), (1, "a"));
    assert_eq!(holder.url, "http://a");
    assert!(!replication.release("b", 1).await?);
    assert!(replication.release("a", 1).await?);
    let second = replication
        .try_acquire("b", "http://b", LEASE)
        .await?
        .ok_or("a released lease is taken")?;
    assert_eq!(second.epoch, 2);
    assert_eq!(replication.renew("a", 1, LEASE).await?, None);
    assert_eq!(
        replication.holder().await?.map(|holder| holder.replica),
        Some("b".to_owned())
    );
    Ok(())
}

/// A writer whose epoch is not current, whose lease expired, or that carries no epoch once
/// the ledger is replicated, is refused by the database; the chain stays one chain.
pub async fn the_database_fences_a_deposed_writer(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut old = Ledger::open(&location).await?;
    // Before any lease, entries need no epoch (a lone daemon).
    old.append(&sample_entries(0..2)).await?;
    let replication = old.replication()?;
    let grant = replication
        .try_acquire("old", "http://old", LEASE)
        .await?
        .ok_or("taken")?;
    old.set_epoch(Some(grant.epoch));
    old.append(&sample_entries(2..4)).await?;
    // A writer without the epoch is refused now.
    let mut stray = Ledger::open(&location).await?;
    let refused = stray.append(&sample_entries(4..5)).await;
    assert!(
        matches!(refused, Err(LedgerError::Fenced { .. })),
        "{refused:?}"
    );
    // A takeover: the old leader is deposed.
    assert!(replication.release("old", grant.epoch).await?);
    let new_grant = replication
        .try_acquire("new", "http://new", LEASE)
        .await?
        .ok_or("taken")?;
    let mut new = Ledger::open(&location).await?;
    new.set_epoch(Some(new_grant.epoch));
    let refused = old.append(&sample_entries(4..5)).await;
    assert!(
        matches!(refused, Err(LedgerError::Fenced { .. })),
        "{refused:?}"
    );
    new.append(&sample_entries(4..6)).await?;
    assert_eq!(new.len(), 6);
    // An expired lease fences its holder even when nobody took it over.
    assert!(replication.release("new", new_grant.epoch).await?);
    let refused = new.append(&sample_entries(6..7)).await;
    assert!(
        matches!(refused, Err(LedgerError::Fenced { .. })),
        "{refused:?}"
    );
    let report = Ledger::open_existing(&location).await?.verify().await?;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.n_entries, 6);
    Ok(())
}

/// A lease runs out by the database's clock alone.
pub async fn a_lease_expires_by_the_database_clock(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let replication = ledger.replication()?;
    let grant = replication
        .try_acquire("a", "http://a", Duration::from_millis(200))
        .await?
        .ok_or("taken")?;
    ledger.set_epoch(Some(grant.epoch));
    // Bounded: the lease is 200 ms of the database's clock.
    let mut taken = None;
    for _ in 0..100 {
        taken = replication.try_acquire("b", "http://b", LEASE).await?;
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(taken.map(|grant| grant.epoch), Some(2));
    assert_eq!(replication.renew("a", 1, LEASE).await?, None);
    let refused = ledger.append(&sample_entries(0..1)).await;
    assert!(
        matches!(refused, Err(LedgerError::Fenced { .. })),
        "{refused:?}"
    );
    Ok(())
}

/// A push is consumed by the append that records it, once; the inbox is bounded.
pub async fn inbox_rows_are_consumed_once_by_the_append(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let replication = ledger.replication()?;
    let mut ids = Vec::new();
    for n in 0..3_u8 {
        let id = replication
            .inbox_put(
                1_000 + i64::from(n),
                "b",
                "/v1/push/evals",
                Some("application/json"),
                &[n],
                3,
            )
            .await?
            .ok_or("room")?;
        ids.push(id);
    }
    assert_eq!(
        replication
            .inbox_put(2_000, "b", "/v1/push/evals", None, b"x", 3)
            .await?,
        None,
        "a full inbox refuses"
    );
    assert_eq!(replication.inbox_len().await?, 3);
    let rows = replication.inbox_after(0, 10).await?;
    assert_eq!(rows.iter().map(|row| row.id).collect::<Vec<_>>(), ids);
    assert_eq!(rows.first().map(|row| row.body.clone()), Some(vec![0]));
    assert_eq!(
        rows.first()
            .and_then(|row| row.content_type.clone())
            .as_deref(),
        Some("application/json")
    );
    let first = *ids.first().ok_or("ids")?;
    ledger
        .append_consuming(&sample_entries(0..1), &[first])
        .await?;
    assert_eq!(replication.inbox_len().await?, 2);
    let again = ledger
        .append_consuming(&sample_entries(1..2), &[first])
        .await;
    assert!(
        matches!(again, Err(LedgerError::InboxConflict { .. })),
        "{again:?}"
    );
    assert_eq!(ledger.len(), 1, "nothing appended by a refused consumption");
    assert_eq!(replication.inbox_after(first, 10).await?.len(), 2);
    Ok(())
}

/// The bound is on the pushes waiting, not on the span of their ids: a push drained out of
/// order leaves a hole that makes room.
pub async fn the_inbox_bound_counts_the_rows_not_the_ids(fixture: &Fixture) -> TestResult {
    let location = fixture.new_location();
    let mut ledger = Ledger::open(&location).await?;
    let replication = ledger.replication()?;
    let put = || replication.inbox_put(1_000, "b", "/v1/push/evals", None, b"x", 3);
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(put().await?.ok_or("room")?);
    }
    assert_eq!(put().await?, None, "three waiting: full");
    let middle = *ids.get(1).ok_or("ids")?;
    ledger
        .append_consuming(&sample_entries(0..1), &[middle])
        .await?;
    let fourth = put().await?.ok_or("the hole makes room")?;
    assert!(fourth > *ids.last().ok_or("ids")?);
    assert_eq!(replication.inbox_len().await?, 3);
    assert_eq!(put().await?, None, "three waiting again: full");
    let waiting: Vec<i64> = replication
        .inbox_after(0, 10)
        .await?
        .iter()
        .map(|row| row.id)
        .collect();
    let mut expected: Vec<i64> = ids.iter().copied().filter(|id| *id != middle).collect();
    expected.push(fourth);
    assert_eq!(waiting, expected);
    Ok(())
}

/// SQLite has no replication.
pub async fn sqlite_is_not_replicable(fixture: &Fixture) -> TestResult {
    let ledger = Ledger::open(&fixture.new_location()).await?;
    assert!(matches!(
        ledger.replication(),
        Err(LedgerError::NotReplicable { .. })
    ));
    Ok(())
}
