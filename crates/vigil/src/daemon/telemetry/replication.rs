//! The replication metrics: who leads, at which epoch, how the lease renewals go, how often
//! leadership changed, the standbys' inbox and the appends the database fenced off.
//!
//! A daemon without `replication:` is a lone leader: `vigil_leader{replica="standalone"} 1`
//! at epoch 0, so that the "no leader" alert means the same with one replica or many. The
//! replication code calls [`Telemetry::set_replica`] first (from then on the replica is a
//! standby until [`Telemetry::set_leadership`] says it leads), then the others as things
//! happen.

use std::fmt::Write as _;

use super::Telemetry;
use super::render::{escape, family};

/// The replica id a daemon without replication shows.
pub(super) const STANDALONE: &str = "standalone";

/// Characters of a replica id shown at most (it comes from the environment or the host name).
const MAX_REPLICA_CHARS: usize = 128;

#[derive(Debug)]
pub(super) struct Replication {
    /// This replica's id, as shown.
    replica: String,
    leader: bool,
    epoch: i64,
    renewals_ok: u64,
    renewals_failed: u64,
    acquired: u64,
    lost: u64,
    inbox_pending: u64,
    fenced_appends: u64,
}

impl Default for Replication {
    fn default() -> Self {
        Replication {
            replica: STANDALONE.to_owned(),
            leader: true,
            epoch: 0,
            renewals_ok: 0,
            renewals_failed: 0,
            acquired: 0,
            lost: 0,
            inbox_pending: 0,
            fenced_appends: 0,
        }
    }
}

impl Telemetry {
    /// Names this replica (replication is on): it shows as a standby until
    /// [`Telemetry::set_leadership`] says otherwise.
    pub fn set_replica(&self, replica_id: &str) {
        let shown: String = replica_id.chars().take(MAX_REPLICA_CHARS).collect();
        self.with(|state| {
            state.replication.replica = shown;
            state.replication.leader = false;
        });
    }

    /// Whether this replica leads now, and the epoch it holds or last saw.
    pub fn set_leadership(&self, leader: bool, epoch: i64) {
        self.with(|state| {
            state.replication.leader = leader;
            state.replication.epoch = epoch;
        });
    }

    /// Counts a lease renewal by the leader, `ok` or failed.
    pub fn lease_renewal(&self, ok: bool) {
        self.with(|state| {
            let counter = if ok {
                &mut state.replication.renewals_ok
            } else {
                &mut state.replication.renewals_failed
            };
            *counter = counter.saturating_add(1);
        });
    }

    /// Counts a change of this replica's leadership: `acquired`, or lost.
    pub fn leadership_changed(&self, acquired: bool) {
        self.with(|state| {
            let counter = if acquired {
                &mut state.replication.acquired
            } else {
                &mut state.replication.lost
            };
            *counter = counter.saturating_add(1);
        });
    }

    /// The pushes accepted by any replica and not yet in the ledger.
    pub fn inbox_pending(&self, n: u64) {
        self.with(|state| state.replication.inbox_pending = n);
    }

    /// Counts an append the database refused because this replica's epoch was no longer
    /// current.
    pub fn append_fenced(&self) {
        self.with(|state| {
            state.replication.fenced_appends = state.replication.fenced_appends.saturating_add(1);
        });
    }

    /// This replica's id and whether it leads (for the heartbeat).
    pub(crate) fn role(&self) -> (String, bool) {
        self.with(|state| (state.replication.replica.clone(), state.replication.leader))
    }
}

/// Writes the replication families.
pub(super) fn render(out: &mut String, replication: &Replication) {
    family(
        out,
        "vigil_leader",
        "gauge",
        "1 on the replica that leads (scrapes, decides, records and acts), 0 on a standby; a daemon without replication leads as replica `standalone`.",
    );
    let _ = writeln!(
        out,
        "vigil_leader{{replica=\"{}\"}} {}",
        escape(&replication.replica),
        u8::from(replication.leader)
    );
    family(
        out,
        "vigil_leader_epoch",
        "gauge",
        "The leadership epoch this replica holds or last saw (0 without replication).",
    );
    let _ = writeln!(out, "vigil_leader_epoch {}", replication.epoch);
    family(
        out,
        "vigil_lease_renewals_total",
        "counter",
        "The leader's lease renewals in PostgreSQL, by outcome.",
    );
    let _ = writeln!(
        out,
        "vigil_lease_renewals_total{{outcome=\"ok\"}} {}\nvigil_lease_renewals_total{{outcome=\"failed\"}} {}",
        replication.renewals_ok, replication.renewals_failed
    );
    family(
        out,
        "vigil_leadership_changes_total",
        "counter",
        "Times this replica acquired or lost the leadership.",
    );
    let _ = writeln!(
        out,
        "vigil_leadership_changes_total{{change=\"acquired\"}} {}\nvigil_leadership_changes_total{{change=\"lost\"}} {}",
        replication.acquired, replication.lost
    );
    family(
        out,
        "vigil_inbox_pending",
        "gauge",
        "Pushes accepted by any replica and not yet drained into the ledger by the leader.",
    );
    let _ = writeln!(out, "vigil_inbox_pending {}", replication.inbox_pending);
    family(
        out,
        "vigil_ledger_fenced_appends_total",
        "counter",
        "Appends the database refused because this replica's epoch was no longer current (a deposed leader that tried to write).",
    );
    let _ = writeln!(
        out,
        "vigil_ledger_fenced_appends_total {}",
        replication.fenced_appends
    );
}
