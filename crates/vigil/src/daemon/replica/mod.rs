//! Replicas with a fenced leader (`replication:` in the config; PostgreSQL only).
//!
//! Every replica serves `/healthz`, `/readyz` (who leads), `/metrics` and the intake, which
//! commits each push to the shared ledger's inbox before answering 2xx. One replica leads: it
//! holds the lease (`vigil_ledger::replication`), and for as long as it does it runs a
//! *term*: the whole daemon of a single replica (`Daemon::run`: recovery of the previous
//! term's unfinished work, scrapes, decisions, appends carrying the term's epoch, actions),
//! fed the inbox's pushes in order, with its admin API behind this replica's gate. The others
//! stand by: they watch the lease, answer where the leader is, and take the lease when it
//! runs out.
//!
//! A term ends when the lease is lost (the database says so, a renewal cannot get through in
//! time, or this process was paused past it), when the database fences an append, or at
//! shutdown, when the lease is released so that a standby takes over at once. The replica
//! then stands by again. Takeover goes through the crash-recovery path: the new leader
//! takes the last term's engine, which it kept warm while standing by by following the
//! ledger (`warm.rs`; rebuilt from the ledger when it could not be), and reads each
//! unfinished action's target back before doing anything.

mod inbox;
pub(crate) mod lease;
pub(crate) mod status;
#[cfg(test)]
mod tests;
mod warm;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_ledger::replication::Replication;
use vigil_ledger::{Ledger, LedgerLocation};

use super::{Clock, Daemon, DaemonOptions, Resources, Telemetry, http, intake, server};
use crate::bundle::Bundle;
use crate::config::replication::{ReplicationConfig, is_replica_id};
use crate::logsafe::Escaped;
pub(crate) use inbox::drain as drain_inbox;
pub(crate) use lease::LeaseView;
pub(crate) use status::{AdminSlot, ReplicaStatus};

/// How often a standby looks at the lease.
const STANDBY_POLL: Duration = Duration::from_millis(500);

/// The longest wait between two looks while the database fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Who this replica is: its id and the URL others reach it at.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The replica id.
    pub id: String,
    /// Its advertised URL.
    pub url: String,
}

impl Identity {
    /// The id from the config, else `$VIGIL_REPLICA_ID`, else the host name; the URL from the
    /// config, else `$VIGIL_ADVERTISE_URL`, else `<scheme>://<listen address>`.
    ///
    /// # Errors
    ///
    /// When no id can be found or the one found is not a replica id.
    pub fn resolve(
        config: &ReplicationConfig,
        listen: SocketAddr,
        scheme: &str,
    ) -> anyhow::Result<Identity> {
        let id = config
            .replica_id
            .clone()
            .or_else(|| std::env::var("VIGIL_REPLICA_ID").ok())
            .or_else(host_name)
            .context("no replica id: set replication.replica_id or VIGIL_REPLICA_ID")?;
        anyhow::ensure!(
            is_replica_id(&id),
            "the replica id `{}` is not 1 to 64 of A-Z a-z 0-9 . _ -",
            Escaped(&id)
        );
        let url = config
            .advertise_url
            .as_ref()
            .map(ToString::to_string)
            .or_else(|| std::env::var("VIGIL_ADVERTISE_URL").ok())
            .unwrap_or_else(|| format!("{scheme}://{listen}"));
        Ok(Identity { id, url })
    }
}

/// The host name, as the kernel has it.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// Makes what one term needs, afresh for each (the config is read again, secrets resolved).
pub type Prepare = Box<dyn Fn() -> anyhow::Result<(Bundle, Resources)> + Send + Sync>;

/// One replica, ready to run.
pub struct Replica {
    /// Who it is.
    pub identity: Identity,
    /// The lease and the inbox's settings.
    pub config: ReplicationConfig,
    /// The shared ledger.
    pub location: LedgerLocation,
    /// Where its HTTP endpoints listen.
    pub listener: TcpListener,
    /// The clock.
    pub clock: Clock,
    /// How each term behaves.
    pub options: DaemonOptions,
    /// What the first term and the listener need (the intake's and the server's settings).
    pub resources: Resources,
    /// The first term's bundle (for the server's settings).
    pub bundle: Bundle,
}

impl Replica {
    /// Serves, stands by and leads in turn until `cancel` fires; at shutdown a leader ends
    /// its term cleanly and releases the lease.
    ///
    /// # Errors
    ///
    /// When the ledger cannot be opened at all.
    pub async fn run(self, prepare: Prepare, cancel: CancellationToken) -> anyhow::Result<()> {
        let Replica {
            identity,
            config,
            location,
            listener,
            clock,
            options,
            mut resources,
            bundle,
        } = self;
        let ledger = Ledger::open(&location)
            .await
            .with_context(|| format!("opening the ledger {}", location.describe()))?;
        let replication = ledger.replication()?;
        let telemetry = Arc::new(Telemetry::default());
        telemetry.set_replica(&identity.id);
        telemetry.set_leadership(false, 0);
        let status = Arc::new(ReplicaStatus::new(
            identity.id.clone(),
            identity.url.clone(),
        ));
        let slot = AdminSlot::default();
        let tracker = TaskTracker::new();
        let intake_router = resources.intake.as_ref().map(|settings| {
            let router = intake::router(intake::IntakeState {
                sender: intake::PushSink::Inbox(intake::InboxSink {
                    replication: replication.clone(),
                    replica: identity.id.clone(),
                    max_rows: config.inbox_max_rows,
                    clock,
                }),
                ack_wait: intake::ACK_WAIT,
                bearer: settings.bearer.clone(),
                max_body_bytes: settings.max_body_bytes,
            });
            (
                router,
                server::PushLimit::new(settings.max_concurrent_pushes, settings.max_body_bytes),
            )
        });
        let gate = resources.admin.is_some().then(|| status::Gate {
            slot: Arc::clone(&slot),
            status: Arc::clone(&status),
        });
        let server = server::Server {
            listener,
            router: http::replicated_router(
                Arc::clone(&telemetry),
                Arc::clone(&status),
                intake_router,
                gate,
                bundle.config.console.is_some(),
            ),
            tls: resources.tls.clone(),
            limits: server::Limits::new(&bundle.config.server, options.grace / 2),
            telemetry: Arc::clone(&telemetry),
        };
        tracker.spawn(server::refusals::log_summaries(
            Arc::clone(&telemetry),
            bundle.config.server.refused_log_interval,
            cancel.child_token(),
        ));
        tracker.spawn(server.run(cancel.child_token()));
        // The dead man's switch beats on every replica, leading or not.
        if let Some((client, interval)) = resources.heartbeat.take() {
            tracker.spawn(super::heartbeat::run(
                client,
                interval,
                Arc::clone(&telemetry),
                cancel.child_token(),
            ));
        }
        drop((bundle, resources));
        tracing::info!(
            replica = %Escaped(&identity.id),
            url = %Escaped(&identity.url),
            lease_secs = config.lease.as_secs(),
            "vigil replica started; standing by"
        );
        let term = Term {
            identity: &identity,
            config: &config,
            location: &location,
            replication: &replication,
            telemetry: &telemetry,
            status: &status,
            slot: &slot,
            clock,
            options,
        };
        let mut backoff = STANDBY_POLL;
        // A standby keeps the last term's engine warm; a term takes it over.
        let mut warm = Some(warm::Warm::start(location.clone()));
        // Bounded by `cancel`: every round waits or runs a term.
        while !cancel.is_cancelled() {
            let holder = replication.holder().await;
            let free = match &holder {
                Ok(holder) => holder
                    .as_ref()
                    .is_none_or(|holder| holder.runs_for.is_zero()),
                Err(_) => false,
            };
            status.observed(holder.map_err(|error| error.to_string()));
            if free {
                let sent = Instant::now();
                match replication
                    .try_acquire(&identity.id, &identity.url, config.lease)
                    .await
                {
                    Ok(Some(grant)) => {
                        backoff = STANDBY_POLL;
                        term.run(
                            grant.epoch,
                            sent + grant.runs_for,
                            &prepare,
                            warm.take(),
                            &cancel,
                        )
                        .await;
                        warm = Some(warm::Warm::start(location.clone()));
                        continue;
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, "cannot take the lease");
                        status.observed(Err(error.to_string()));
                    }
                }
            }
            let wait = if status.readiness().0.is_success() {
                backoff = STANDBY_POLL;
                STANDBY_POLL
            } else {
                backoff = (backoff * 2).min(MAX_BACKOFF);
                backoff
            };
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        if let Some(warm) = warm {
            warm.stop();
        }
        tracker.close();
        if tokio::time::timeout(options.grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop within the grace period");
        }
        ledger.close().await;
        Ok(())
    }
}

/// What every term of one replica shares.
struct Term<'a> {
    identity: &'a Identity,
    config: &'a ReplicationConfig,
    location: &'a LedgerLocation,
    replication: &'a Replication,
    telemetry: &'a Arc<Telemetry>,
    status: &'a Arc<ReplicaStatus>,
    slot: &'a AdminSlot,
    clock: Clock,
    options: DaemonOptions,
}

impl Term<'_> {
    /// Leads for as long as the lease of `epoch` (surely valid until `valid_until`) holds.
    async fn run(
        &self,
        epoch: i64,
        valid_until: Instant,
        prepare: &Prepare,
        warm: Option<warm::Warm>,
        cancel: &CancellationToken,
    ) {
        let started = Instant::now();
        tracing::warn!(epoch, replica = %Escaped(&self.identity.id), "took the lease; leading");
        self.telemetry.set_leadership(true, epoch);
        self.telemetry.leadership_changed(true);
        self.status.leading(epoch);
        let term_cancel = cancel.child_token();
        let lease = Arc::new(LeaseView::new(epoch, valid_until, term_cancel.clone()));
        let renewer = tokio::spawn(lease::renew(
            Arc::clone(&lease),
            self.replication.clone(),
            self.identity.id.clone(),
            self.config.lease,
            self.config.renew_every,
            Arc::clone(self.telemetry),
        ));
        let outcome = self
            .lead(&lease, prepare, warm, &term_cancel, started)
            .await;
        term_cancel.cancel();
        let _ = renewer.await;
        if let Ok(mut slot) = self.slot.write() {
            *slot = None;
        }
        match &outcome {
            Ok(()) => tracing::info!(epoch, "the term ended"),
            Err(error) => {
                tracing::warn!(epoch, "the term ended: {}", Escaped(&format!("{error:#}")))
            }
        }
        // A clean end hands over at once; a lost lease is not ours to release.
        match self.replication.release(&self.identity.id, epoch).await {
            Ok(true) => tracing::info!(epoch, "released the lease"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, epoch, "cannot release the lease"),
        }
        self.telemetry.set_leadership(false, epoch);
        self.telemetry.leadership_changed(false);
        self.status.standing_by();
    }

    /// One term: the daemon of a single replica, fenced by the lease.
    async fn lead(
        &self,
        lease: &Arc<LeaseView>,
        prepare: &Prepare,
        warm: Option<warm::Warm>,
        term_cancel: &CancellationToken,
        started: Instant,
    ) -> anyhow::Result<()> {
        // The lease is ours and the old leader fenced: the warm engine reads the rest.
        let warm = match warm {
            Some(warm) => tokio::select! {
                rebuilt = warm.take() => rebuilt,
                () = term_cancel.cancelled() => return Ok(()),
            },
            None => None,
        };
        let (mut bundle, resources) = prepare().context("loading the config for this term")?;
        let mut ledger = Ledger::open(self.location)
            .await
            .with_context(|| format!("opening the ledger {}", self.location.describe()))?;
        ledger.set_epoch(Some(lease.epoch()));
        bundle.engine.trust = crate::journal::trust::tally(&ledger)
            .await
            .context("reading the runbooks' verified outcomes from the ledger")?
            .tallies;
        let daemon =
            Daemon::with_resources(bundle, resources, ledger, None, self.clock, self.options)
                .with_telemetry(Arc::clone(self.telemetry))
                .with_term(super::TermHooks {
                    lease: Arc::clone(lease),
                    replication: self.replication.clone(),
                    admin_slot: Arc::clone(self.slot),
                    started,
                    warm,
                });
        let ledger = daemon.run(term_cancel.clone()).await?;
        ledger.close().await;
        Ok(())
    }
}
