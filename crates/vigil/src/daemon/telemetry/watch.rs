//! What `/metrics` reads when it is asked (the engine's queues, the assistant's breaker) and
//! what ages between two events (checkpoints), and the heartbeat's count.
//!
//! A stuck engine loop updates nothing, so its queue depth is read from the channels at
//! render time rather than reported by the loop. The daemon registers each queue
//! ([`Telemetry::watch_queue`]) and the assistant ([`Telemetry::watch_assistant`]) when it
//! builds them; registering again (a new term of leadership) replaces the probe.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::Telemetry;
use super::render::family;
use crate::investigator::{BreakerState, Investigator};

/// A queue's depth and capacity now, or `None` once it is gone.
type QueueDepth = Box<dyn Fn() -> Option<(usize, usize)> + Send + Sync>;

/// The assistant's breaker state now.
type BreakerProbe = Box<dyn Fn() -> BreakerState + Send + Sync>;

/// Reads the depth of the channel `sender` sends on, without keeping the channel open.
pub(crate) fn queue_probe<T: Send + 'static>(
    sender: &mpsc::Sender<T>,
) -> impl Fn() -> Option<(usize, usize)> + Send + Sync + 'static {
    let weak = sender.downgrade();
    move || {
        let sender = weak.upgrade()?;
        let capacity = sender.max_capacity();
        Some((capacity.saturating_sub(sender.capacity()), capacity))
    }
}

#[derive(Default)]
struct ProbeSet {
    queues: BTreeMap<&'static str, QueueDepth>,
    breaker: Option<BreakerProbe>,
}

/// The probes, behind their own lock (never held with the state's).
#[derive(Default)]
pub(super) struct Probes {
    set: Mutex<ProbeSet>,
}

impl std::fmt::Debug for Probes {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Probes").finish_non_exhaustive()
    }
}

/// What the probes read, for one render.
pub(super) struct Probed {
    /// Each queue: name, depth, capacity.
    queues: Vec<(&'static str, usize, usize)>,
    breaker: Option<BreakerState>,
}

impl Probes {
    fn with<T>(&self, apply: impl FnOnce(&mut ProbeSet) -> T) -> T {
        let mut guard = match self.set.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        apply(&mut guard)
    }

    pub(super) fn read(&self) -> Probed {
        self.with(|set| Probed {
            queues: set
                .queues
                .iter()
                .filter_map(|(name, probe)| {
                    probe().map(|(depth, capacity)| (*name, depth, capacity))
                })
                .collect(),
            breaker: set.breaker.as_ref().map(|probe| probe()),
        })
    }
}

/// Checkpoints and heartbeats.
#[derive(Debug, Default)]
pub(super) struct Watch {
    /// The checkpoint interval, once checkpoints are on.
    checkpoint_interval: Option<Duration>,
    /// When a signed checkpoint last covered the ledger's head (or when checkpoints came on).
    checkpoint_covered_at: Option<Instant>,
    checkpoints_ok: u64,
    checkpoints_failed: u64,
    /// Checkpoints that could not be published, by where (`file`, `webhook`).
    checkpoint_publish_failures: BTreeMap<&'static str, u64>,
    heartbeats_ok: u64,
    heartbeats_failed: u64,
}

impl Telemetry {
    /// Shows the depth of `queue` (events waiting for the engine loop) at each render.
    pub(crate) fn watch_queue(
        &self,
        queue: &'static str,
        depth: impl Fn() -> Option<(usize, usize)> + Send + Sync + 'static,
    ) {
        self.probes.with(|set| {
            set.queues.insert(queue, Box::new(depth));
        });
    }

    /// Shows the assistant's breaker state at each render.
    pub(crate) fn watch_assistant(&self, investigator: Arc<Investigator>) {
        self.watch_breaker(move || investigator.breaker_state());
    }

    /// Shows the breaker state `probe` reads at each render.
    pub(crate) fn watch_breaker(&self, probe: impl Fn() -> BreakerState + Send + Sync + 'static) {
        self.probes.with(|set| set.breaker = Some(Box::new(probe)));
    }

    /// Checkpoints are on, every `interval`: their age counts from now until the first.
    pub(crate) fn checkpoints_on(&self, interval: Duration) {
        let now = Instant::now();
        self.with(|state| {
            state.watch.checkpoint_interval = Some(interval);
            state.watch.checkpoint_covered_at.get_or_insert(now);
        });
    }

    /// A signed checkpoint covers the ledger's head: a new one (`signed`), or the last one
    /// still does (the ledger did not grow).
    pub(crate) fn checkpoint_covered(&self, signed: bool) {
        let now = Instant::now();
        self.with(|state| {
            state.watch.checkpoint_covered_at = Some(now);
            if signed {
                state.watch.checkpoints_ok = state.watch.checkpoints_ok.saturating_add(1);
            }
        });
    }

    /// Counts a checkpoint that could not be taken or stored.
    pub(crate) fn checkpoint_failed(&self) {
        self.with(|state| {
            state.watch.checkpoints_failed = state.watch.checkpoints_failed.saturating_add(1);
        });
    }

    /// Counts a checkpoint that could not be published to its `file` or `webhook`.
    pub(crate) fn checkpoint_publish_failed(&self, target: &'static str) {
        self.with(|state| {
            *state
                .watch
                .checkpoint_publish_failures
                .entry(target)
                .or_default() += 1;
        });
    }

    /// Counts a heartbeat, delivered (`ok`) or not.
    pub(crate) fn heartbeat(&self, ok: bool) {
        self.with(|state| {
            let counter = if ok {
                &mut state.watch.heartbeats_ok
            } else {
                &mut state.watch.heartbeats_failed
            };
            *counter = counter.saturating_add(1);
        });
    }

    /// Entries in the ledger, as last recorded (for the heartbeat).
    pub(crate) fn ledger_entries(&self) -> u64 {
        self.with(|state| state.ledger_entries)
    }
}

/// Writes the watched families.
pub(super) fn render(out: &mut String, watch: &Watch, probed: &Probed) {
    family(
        out,
        "vigil_engine_queue_depth",
        "gauge",
        "Items waiting for the engine loop, by queue (events: scrapes, answers, wake-ups; pushes).",
    );
    for (queue, depth, _) in &probed.queues {
        let _ = writeln!(out, "vigil_engine_queue_depth{{queue=\"{queue}\"}} {depth}");
    }
    family(
        out,
        "vigil_engine_queue_capacity",
        "gauge",
        "The most items each queue holds; senders wait when it is full.",
    );
    for (queue, _, capacity) in &probed.queues {
        let _ = writeln!(
            out,
            "vigil_engine_queue_capacity{{queue=\"{queue}\"}} {capacity}"
        );
    }
    family(
        out,
        "vigil_assistant_breaker",
        "gauge",
        "The assistant's circuit breaker: 1 for its state now (closed, half_open, open); absent without the assistant.",
    );
    if let Some(breaker) = probed.breaker {
        for state in BreakerState::ALL {
            let _ = writeln!(
                out,
                "vigil_assistant_breaker{{state=\"{}\"}} {}",
                state.as_str(),
                u8::from(state == breaker)
            );
        }
    }
    family(
        out,
        "vigil_checkpoint_age_seconds",
        "gauge",
        "Seconds since a signed checkpoint last covered the ledger's head (since the start before the first); absent without checkpoints.",
    );
    family(
        out,
        "vigil_checkpoint_interval_seconds",
        "gauge",
        "The configured checkpoint interval (ledger.checkpoint.interval_secs); absent without checkpoints.",
    );
    if let (Some(interval), Some(covered_at)) =
        (watch.checkpoint_interval, watch.checkpoint_covered_at)
    {
        let age = Instant::now().saturating_duration_since(covered_at);
        let _ = writeln!(
            out,
            "vigil_checkpoint_age_seconds {:.3}\nvigil_checkpoint_interval_seconds {}",
            age.as_secs_f64(),
            interval.as_secs()
        );
    }
    family(
        out,
        "vigil_checkpoints_total",
        "counter",
        "Signed checkpoints of the ledger, by outcome (failed: not taken or not stored).",
    );
    let _ = writeln!(
        out,
        "vigil_checkpoints_total{{outcome=\"ok\"}} {}\nvigil_checkpoints_total{{outcome=\"failed\"}} {}",
        watch.checkpoints_ok, watch.checkpoints_failed
    );
    family(
        out,
        "vigil_checkpoint_publish_failures_total",
        "counter",
        "Checkpoints that could not be published, by target (file, webhook).",
    );
    for target in ["file", "webhook"] {
        let count = watch
            .checkpoint_publish_failures
            .get(target)
            .copied()
            .unwrap_or(0);
        let _ = writeln!(
            out,
            "vigil_checkpoint_publish_failures_total{{target=\"{target}\"}} {count}"
        );
    }
    family(
        out,
        "vigil_heartbeats_total",
        "counter",
        "Heartbeats sent to the dead man's switch (heartbeat.url), by outcome.",
    );
    let _ = writeln!(
        out,
        "vigil_heartbeats_total{{outcome=\"ok\"}} {}\nvigil_heartbeats_total{{outcome=\"failed\"}} {}",
        watch.heartbeats_ok, watch.heartbeats_failed
    );
}
