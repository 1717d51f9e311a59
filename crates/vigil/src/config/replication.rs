//! The config's `replication:` block: several `vigil serve` replicas against one PostgreSQL
//! ledger, one of them leading (off when absent; see `daemon/replica/`).
//!
//! ```yaml
//! replication:
//!   lease_secs: 15            # the leader's lease, by the database's clock
//!   renew_every_secs: 5       # how often the leader renews it
//!   # replica_id: vigil-0     # default: $VIGIL_REPLICA_ID, else the host name
//!   # advertise_url: http://vigil-0.vigil:9464   # default: $VIGIL_ADVERTISE_URL, else http://<listen>
//!   inbox_max_rows: 100000    # pushes accepted and not yet in the ledger; past it, 503
//! ```
//!
//! The replica id and the advertised URL usually differ per replica while the rest of the
//! file is shared (a Kubernetes ConfigMap), hence the environment defaults; they are resolved
//! when the daemon starts (`daemon/replica/`), not here.

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use vigil_core::problem::Problems;

/// The longest lease: a dead leader is replaced after at most this.
const MAX_LEASE_SECS: u64 = 600;

/// The block as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReplication {
    /// The leader's lease in seconds (default 15).
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
    /// How often the leader renews its lease (default 5; at most a third of the lease).
    #[serde(default = "default_renew_every_secs")]
    pub renew_every_secs: u64,
    /// This replica's id (1 to 64 of `A-Z a-z 0-9 . _ -`).
    pub replica_id: Option<String>,
    /// Where the other replicas and `vigil approve` reach this replica's API.
    pub advertise_url: Option<String>,
    /// Pushes accepted by the replicas and not yet in the ledger, at most (default 100,000).
    #[serde(default = "default_inbox_max_rows")]
    pub inbox_max_rows: u64,
}

fn default_lease_secs() -> u64 {
    15
}

fn default_renew_every_secs() -> u64 {
    5
}

fn default_inbox_max_rows() -> u64 {
    100_000
}

/// Replication, validated.
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    /// The leader's lease.
    pub lease: Duration,
    /// Between two renewals.
    pub renew_every: Duration,
    /// The replica id written in the file, if any.
    pub replica_id: Option<String>,
    /// The advertised URL written in the file, if any.
    pub advertise_url: Option<Url>,
    /// The inbox's bound.
    pub inbox_max_rows: u64,
}

/// Whether `id` is a replica id: 1 to 64 of `A-Z a-z 0-9 . _ -`.
pub fn is_replica_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'.' | b'_' | b'-'))
}

/// Validates the block; `None` when absent or when a problem was recorded. `on_postgres`
/// says whether the ledger is on PostgreSQL, which replicas need.
pub(super) fn validate_replication(
    problems: &mut Problems,
    raw: Option<RawReplication>,
    on_postgres: bool,
) -> Option<ReplicationConfig> {
    let raw = raw?;
    let n_before = problems.len();
    if !on_postgres {
        problems.push(
            "replication",
            "replicas share one ledger: set `ledger.postgres_url` (a SQLite file has one writer)",
        );
    }
    if !(1..=MAX_LEASE_SECS).contains(&raw.lease_secs) {
        problems.push(
            "replication.lease_secs",
            format!("must be 1 to {MAX_LEASE_SECS}"),
        );
    }
    if raw.renew_every_secs == 0 || raw.renew_every_secs.saturating_mul(3) > raw.lease_secs {
        problems.push(
            "replication.renew_every_secs",
            format!(
                "must be at least 1 and at most a third of lease_secs ({}), so that one failed renewal does not lose the lease",
                raw.lease_secs
            ),
        );
    }
    if let Some(id) = &raw.replica_id
        && !is_replica_id(id)
    {
        problems.push(
            "replication.replica_id",
            "must be 1 to 64 of A-Z a-z 0-9 . _ -",
        );
    }
    let advertise_url = raw
        .advertise_url
        .as_deref()
        .and_then(|url| super::validate::http_url(problems, "replication.advertise_url", url));
    if raw.inbox_max_rows == 0 {
        problems.push("replication.inbox_max_rows", "must be at least 1");
    }
    let config = ReplicationConfig {
        lease: Duration::from_secs(raw.lease_secs),
        renew_every: Duration::from_secs(raw.renew_every_secs),
        replica_id: raw.replica_id,
        advertise_url,
        inbox_max_rows: raw.inbox_max_rows,
    };
    (problems.len() == n_before).then_some(config)
}
