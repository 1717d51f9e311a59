//! The standby's warm engine: a task that follows the shared ledger
//! (`journal::follow::Follower`) while this replica stands by, and hands the rebuilt last
//! session to the term when this replica takes the lease.
//!
//! Without it a new leader rebuilds the last session from its first entry, which takes
//! longer the longer the replicas have run. With it, only what the old leader appended since
//! the standby's last look (at most [`FOLLOW_POLL`] ago, plus a fenced append in flight) is
//! left to read. Anything that goes wrong here costs speed, never correctness: the term then
//! rebuilds from scratch, as crash recovery does.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use vigil_ledger::{Ledger, LedgerLocation};

use crate::journal::follow::Follower;
use crate::journal::recovery::Rebuilt;
use crate::logsafe::Escaped;

/// How often a standby looks for entries the leader appended.
pub(crate) const FOLLOW_POLL: Duration = Duration::from_millis(500);

/// Entries rerun per look before the task yields.
const BUDGET: u64 = 2_000;

/// The wait before following again from scratch after the ledger failed.
const RETRY: Duration = Duration::from_secs(2);

/// The follower task of a replica standing by.
pub(crate) struct Warm {
    finish: CancellationToken,
    stop: CancellationToken,
    task: JoinHandle<Option<Rebuilt>>,
}

impl Warm {
    /// Starts following the ledger at `location`.
    pub(crate) fn start(location: LedgerLocation) -> Warm {
        let finish = CancellationToken::new();
        let stop = CancellationToken::new();
        let task = tokio::spawn(keep_warm(location, finish.clone(), stop.clone()));
        Warm { finish, stop, task }
    }

    /// For a replica that took the lease: the follower reads what is left and hands over the
    /// rebuilt session; `None` when it has none to give (the term rebuilds from scratch).
    pub(crate) async fn take(self) -> Option<Rebuilt> {
        self.finish.cancel();
        match self.task.await {
            Ok(rebuilt) => rebuilt,
            Err(error) => {
                tracing::warn!(%error, "the warm engine's task failed; rebuilding from scratch");
                None
            }
        }
    }

    /// Stops following (at shutdown).
    pub(crate) fn stop(self) {
        self.stop.cancel();
        self.task.abort();
    }
}

/// Follows until `finish` (then hands over) or `stop`. Bounded by them: every round reads,
/// waits, or ends.
async fn keep_warm(
    location: LedgerLocation,
    finish: CancellationToken,
    stop: CancellationToken,
) -> Option<Rebuilt> {
    while !stop.is_cancelled() {
        let ledger = match Ledger::open(&location).await {
            Ok(ledger) => ledger,
            Err(error) => {
                tracing::warn!(%error, "the warm engine cannot open the ledger; trying again");
                if finish.is_cancelled() || pause(RETRY, &finish, &stop).await {
                    return None;
                }
                continue;
            }
        };
        let outcome = follow(&ledger, &finish, &stop).await;
        ledger.close().await;
        match outcome {
            Ok(rebuilt) => return rebuilt,
            Err(error) => {
                tracing::warn!(
                    "the warm engine stopped following the ledger ({}); following again from the start",
                    Escaped(&format!("{error:#}"))
                );
                if finish.is_cancelled() || pause(RETRY, &finish, &stop).await {
                    return None;
                }
            }
        }
    }
    None
}

/// One follower's life on one open ledger: `Ok(None)` when stopped; `Err` when it can no
/// longer follow (the caller starts again, or leaves the rebuild to the term).
async fn follow(
    ledger: &Ledger,
    finish: &CancellationToken,
    stop: &CancellationToken,
) -> anyhow::Result<Option<Rebuilt>> {
    let mut follower = Follower::new(ledger);
    let mut caught_up = false;
    while !stop.is_cancelled() {
        if finish.is_cancelled() {
            return follower.finish().await;
        }
        let progress = follower.catch_up(BUDGET).await?;
        if progress.more {
            tokio::task::yield_now().await;
            continue;
        }
        if !caught_up && follower.origin_seq().is_some() {
            caught_up = true;
            tracing::info!(
                session = follower.origin_seq(),
                "the warm engine has caught up with the ledger"
            );
        }
        // A finish ends the pause at once; the loop then hands over.
        let _ = pause(FOLLOW_POLL, finish, stop).await;
    }
    Ok(None)
}

/// Waits `wait`, or less when `finish` or `stop` fires; whether `stop` fired.
async fn pause(wait: Duration, finish: &CancellationToken, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = finish.cancelled() => false,
        () = tokio::time::sleep(wait) => false,
    }
}
