//! The loop every polling task shares (a scrape target, a PromQL query): wait for the next
//! attempt, take a permit from the global semaphore, make one attempt, send its event to the
//! engine, and back off while attempts keep failing.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigil_core::engine::Event;

/// The longest wait between attempts while a source keeps failing.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Runs `attempt` on `interval` until `cancel` fires or the engine loop goes away.
///
/// The first attempt is offset within the interval by a hash of `name`, so that sources do
/// not all fire at once and each fires at the same offset at every start. Each attempt holds
/// a permit of `permits` while it runs. An attempt answering `Event::ScrapeFailed` counts as
/// a failure and backs the next one off (see [`next_attempt`]).
pub(super) async fn poll<F, Attempt>(
    name: &str,
    interval: Duration,
    permits: &Arc<Semaphore>,
    events: &mpsc::Sender<Event>,
    cancel: &CancellationToken,
    mut attempt: F,
) where
    F: FnMut() -> Attempt,
    Attempt: Future<Output = Event>,
{
    let mut next = Instant::now() + start_offset(name, interval);
    let mut n_failures: u32 = 0;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
        let permit = tokio::select! {
            () = cancel.cancelled() => return,
            permit = permits.clone().acquire_owned() => permit,
        };
        let Ok(_permit) = permit else { return };
        let event = attempt().await;
        n_failures = if matches!(event, Event::ScrapeFailed { .. }) {
            n_failures.saturating_add(1)
        } else {
            0
        };
        tokio::select! {
            () = cancel.cancelled() => return,
            sent = events.send(event) => if sent.is_err() { return },
        }
        next = next_attempt(next, interval, n_failures);
    }
}

/// A stable offset within the interval, from the source's name.
fn start_offset(name: &str, interval: Duration) -> Duration {
    let digest = Sha256::digest(name.as_bytes());
    let seed = digest
        .iter()
        .take(8)
        .fold(0_u64, |acc, byte| (acc << 8) | u64::from(*byte));
    let interval_ms = u64::try_from(interval.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    Duration::from_millis(seed % interval_ms)
}

/// When to attempt next: on the interval grid while healthy (skipping missed ticks), backing
/// off exponentially while failing.
fn next_attempt(previous: Instant, interval: Duration, n_failures: u32) -> Instant {
    let now = Instant::now();
    if n_failures > 0 {
        let factor = 2_u32.saturating_pow(n_failures.saturating_sub(1).min(16));
        let backoff = interval
            .saturating_mul(factor)
            .min(MAX_BACKOFF.max(interval));
        return now + backoff;
    }
    let mut next = previous + interval;
    if next <= now {
        let behind = now.duration_since(next);
        let interval_ns = interval.as_nanos().max(1);
        let skipped = u32::try_from(behind.as_nanos() / interval_ns + 1).unwrap_or(u32::MAX);
        next += interval.saturating_mul(skipped);
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        let interval = Duration::from_secs(15);
        let offset = start_offset("litellm-gateway", interval);
        assert_eq!(offset, start_offset("litellm-gateway", interval));
        assert!(offset < interval);
        assert_ne!(start_offset("a", interval), start_offset("b", interval));
    }

    #[tokio::test(start_paused = true)]
    async fn backoff_doubles_and_is_capped() {
        let interval = Duration::from_secs(10);
        let now = Instant::now();
        assert_eq!(
            next_attempt(now, interval, 1) - now,
            Duration::from_secs(10)
        );
        assert_eq!(
            next_attempt(now, interval, 2) - now,
            Duration::from_secs(20)
        );
        assert_eq!(
            next_attempt(now, interval, 3) - now,
            Duration::from_secs(40)
        );
        assert_eq!(
            next_attempt(now, interval, 9) - now,
            Duration::from_secs(60)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_scrape_skips_missed_ticks() {
        let interval = Duration::from_secs(1);
        let start = Instant::now();
        tokio::time::advance(Duration::from_millis(3500)).await;
        let next = next_attempt(start, interval, 0);
        assert_eq!(next - start, Duration::from_secs(4));
    }
}
