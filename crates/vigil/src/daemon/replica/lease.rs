//! The leader's view of its lease: how long it still runs by this process's monotonic clock,
//! kept conservative (each renewal counts from before its statement was sent), renewed by a
//! task, and given up (the term's token cancelled) the moment it may have run out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigil_ledger::replication::Replication;

use crate::daemon::Telemetry;

/// How often [`LeaseView::ensure`] looks again while it waits for a renewal.
const ENSURE_POLL: Duration = Duration::from_millis(100);

/// A leader's lease as this process sees it.
#[derive(Debug)]
pub(crate) struct LeaseView {
    /// The epoch of this term.
    epoch: i64,
    /// Until when the lease surely runs (by this process's clock).
    valid_until: Mutex<Instant>,
    /// Cancelled when the lease is, or may be, lost: the term ends.
    lost: CancellationToken,
}

impl LeaseView {
    /// A lease of `epoch` that surely runs until `valid_until`; `lost` ends the term.
    pub(crate) fn new(epoch: i64, valid_until: Instant, lost: CancellationToken) -> LeaseView {
        LeaseView {
            epoch,
            valid_until: Mutex::new(valid_until),
            lost,
        }
    }

    /// The term's epoch.
    pub(crate) fn epoch(&self) -> i64 {
        self.epoch
    }

    fn valid_until(&self) -> Instant {
        match self.valid_until.lock() {
            Ok(guard) => *guard,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn extend(&self, until: Instant) {
        let mut guard = match self.valid_until.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = (*guard).max(until);
    }

    /// How long the lease surely runs from now (zero once it may have run out or was lost).
    pub(crate) fn remaining(&self) -> Duration {
        if self.lost.is_cancelled() {
            return Duration::ZERO;
        }
        self.valid_until().saturating_duration_since(Instant::now())
    }

    /// Whether the term is over.
    pub(crate) fn is_lost(&self) -> bool {
        self.lost.is_cancelled()
    }

    /// Ends the term (once), saying why.
    pub(crate) fn step_down(&self, why: &str) {
        if !self.lost.is_cancelled() {
            tracing::warn!(epoch = self.epoch, "stepping down: {why}");
            self.lost.cancel();
        }
    }

    /// Whether the lease runs for more than `needed` (an action's timeout) from now, waiting
    /// at most `wait` for a renewal to make it so; steps down when it does not, since a
    /// leader that cannot act safely must leave the work to one that can.
    pub(crate) async fn ensure(&self, needed: Duration, wait: Duration) -> bool {
        let give_up = Instant::now() + wait;
        // Bounded by `wait`: each round sleeps ENSURE_POLL.
        loop {
            if self.is_lost() {
                return false;
            }
            if self.remaining() > needed {
                return true;
            }
            if Instant::now() >= give_up {
                self.step_down(&format!(
                    "the lease would not outlive a call of {} ms",
                    needed.as_millis()
                ));
                return false;
            }
            tokio::time::sleep(ENSURE_POLL).await;
        }
    }
}

/// Renews the lease every `renew_every` until the term ends; steps down when the database
/// says the lease is no longer ours, or when it may have run out before a renewal got
/// through (the database unreachable, or this process paused past it).
pub(crate) async fn renew(
    lease: Arc<LeaseView>,
    replication: Replication,
    replica: String,
    length: Duration,
    renew_every: Duration,
    telemetry: Arc<Telemetry>,
) {
    // Bounded by the term: every round waits, and the term ends when the lease does.
    loop {
        let next = Instant::now() + renew_every;
        tokio::select! {
            biased;
            () = lease.lost.cancelled() => return,
            () = tokio::time::sleep_until(lease.valid_until()) => {
                lease.step_down("the lease ran out before it could be renewed");
                return;
            }
            () = tokio::time::sleep_until(next) => {}
        }
        if lease.remaining().is_zero() {
            lease.step_down("the lease ran out before it could be renewed");
            return;
        }
        let sent = Instant::now();
        let answer = tokio::time::timeout(
            renew_every,
            replication.renew(&replica, lease.epoch, length),
        )
        .await;
        match answer {
            Ok(Ok(Some(runs_for))) => {
                lease.extend(sent + runs_for);
                telemetry.lease_renewal(true);
            }
            Ok(Ok(None)) => {
                telemetry.lease_renewal(false);
                lease.step_down("the database says the lease is no longer ours");
                return;
            }
            Ok(Err(error)) => {
                telemetry.lease_renewal(false);
                tracing::warn!(%error, epoch = lease.epoch, "cannot renew the lease; trying again");
            }
            Err(_) => {
                telemetry.lease_renewal(false);
                tracing::warn!(
                    epoch = lease.epoch,
                    "renewing the lease timed out; trying again"
                );
            }
        }
    }
}
