//! The dead man's switch (`heartbeat:` in the config): every replica, leader or standby,
//! POSTs `{"replica":..,"leader":..,"ledger_entries":..}` to the configured URL every
//! interval, so that the service watching the URL pages someone when vigil goes silent.
//!
//! A heartbeat that fails is counted (`vigil_heartbeats_total{outcome="failed"}`) and logged,
//! escaped, once when the failures start and once when they end; it never stops the daemon.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use vigil_connectors::Heartbeat;

use super::telemetry::Telemetry;
use crate::logsafe::Escaped;

/// What one heartbeat says.
#[derive(Debug, Serialize)]
struct Beat {
    /// The replica's id (`standalone` without replication).
    replica: String,
    /// Whether it leads.
    leader: bool,
    /// Entries in the ledger, as this replica last saw them.
    ledger_entries: u64,
}

/// Sends a heartbeat now and then every `interval` until `cancel`.
pub(super) async fn run(
    heartbeat: Heartbeat,
    interval: Duration,
    telemetry: Arc<Telemetry>,
    cancel: CancellationToken,
) {
    tracing::info!(
        url = %heartbeat.shown_url(),
        every_secs = interval.as_secs(),
        "heartbeats are sent to the dead man's switch"
    );
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let (replica, leader) = telemetry.role();
        let beat = Beat {
            replica,
            leader,
            ledger_entries: telemetry.ledger_entries(),
        };
        // The connector's timeout bounds the call; cancellation cuts it short.
        let sent = tokio::select! {
            () = cancel.cancelled() => return,
            sent = heartbeat.beat(&beat) => sent,
        };
        telemetry.heartbeat(sent.is_ok());
        match sent {
            Ok(()) if failing => {
                failing = false;
                tracing::info!("heartbeats are delivered again");
            }
            Ok(()) => {}
            Err(error) if !failing => {
                failing = true;
                let shown = format!("{error:#}");
                tracing::warn!(
                    error = %Escaped(&shown),
                    "a heartbeat was not delivered; vigil_heartbeats_total{{outcome=\"failed\"}} counts the failures until one is"
                );
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use vigil_sim::PagerSink;

    use super::*;

    /// Heartbeats reach a loopback sink every interval, with the replica's role and the
    /// ledger's size; failures are counted and do not stop the task. Real time: the sink
    /// answers over a real socket, which paused time would race with the client's timeout.
    #[tokio::test]
    async fn beats_every_interval_and_counts_failures() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stop = CancellationToken::new();
        let sink = PagerSink::start(listener, stop.child_token())
            .await
            .unwrap();
        let telemetry = Arc::new(Telemetry::default());
        telemetry.ledger_appended(7);
        let heartbeat = Heartbeat::new(
            reqwest::Url::parse(&sink.url()).unwrap(),
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        sink.fail_next(1);
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(
            heartbeat,
            Duration::from_secs(1),
            Arc::clone(&telemetry),
            cancel.clone(),
        ));
        // Bounded: a hang guard far above the three intervals needed, not a timing check.
        for _ in 0..600 {
            if sink.pages().len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        cancel.cancel();
        task.await.unwrap();
        let pages = sink.pages();
        assert!(pages.len() >= 2, "{pages:?}");
        assert_eq!(
            pages[0],
            serde_json::json!({"replica": "standalone", "leader": true, "ledger_entries": 7})
        );
        let text = telemetry.render();
        assert!(
            text.contains("vigil_heartbeats_total{outcome=\"failed\"} 1"),
            "{text}"
        );
        assert!(
            text.lines().any(|line| line
                .strip_prefix("vigil_heartbeats_total{outcome=\"ok\"} ")
                .is_some_and(|count| count.parse::<u64>().unwrap() >= 2)),
            "{text}"
        );
        stop.cancel();
    }
}
