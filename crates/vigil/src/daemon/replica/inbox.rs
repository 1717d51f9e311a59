//! The leader's side of the inbox: pushes that any replica committed to the shared ledger's
//! inbox are parsed again and handed to the engine loop in id order; the append that records
//! each one's event deletes its row (`Ledger::append_consuming`), so it is in the chain once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vigil_core::intake::Pushed;
use vigil_ledger::replication::Replication;

use crate::daemon::Telemetry;
use crate::daemon::intake::{Ack, stored_parser};
use crate::logsafe::Escaped;

/// How often the leader looks at the inbox when it found nothing.
const POLL: Duration = Duration::from_millis(100);

/// Pushes taken from the inbox in one round at most.
const ROUND: u32 = 64;

/// Rows that cannot be parsed, remembered so that they do not block the rest; past this many
/// the leader stops draining and says so (something is badly wrong with the replicas).
const MAX_UNREADABLE: usize = 1_024;

/// Drains the inbox into the engine loop until `cancel` fires or the loop stops answering.
pub(crate) async fn drain(
    replication: Replication,
    sender: mpsc::Sender<(Pushed, Ack, i64)>,
    telemetry: Arc<Telemetry>,
    cancel: CancellationToken,
) {
    let mut unreadable: BTreeSet<i64> = BTreeSet::new();
    let mut idle = false;
    // Bounded by the term: every round either waits or hands pushes to the loop, which
    // consumes them.
    loop {
        if idle {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        } else if cancel.is_cancelled() {
            return;
        }
        match replication.inbox_len().await {
            Ok(n) => telemetry.inbox_pending(n),
            Err(error) => {
                tracing::warn!(%error, "cannot count the inbox");
                idle = true;
                continue;
            }
        }
        // Always from the oldest row still there: a row whose id is lower than one already
        // drained may commit later (ids are handed out before commit), so no cursor.
        let limit = ROUND + u32::try_from(unreadable.len()).unwrap_or(u32::MAX);
        let rows = match replication.inbox_after(0, limit).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(%error, "cannot read the inbox");
                idle = true;
                continue;
            }
        };
        let mut waiting = Vec::new();
        for row in rows {
            if unreadable.contains(&row.id) {
                continue;
            }
            let parsed = stored_parser(&row.route, row.content_type.as_deref())
                .ok_or_else(|| format!("no push route `{}`", Escaped(&row.route)))
                .and_then(|parse| parse(&row.body).map_err(|error| error.to_string()));
            match parsed {
                Ok(pushed) => {
                    let (ack, confirmed) = tokio::sync::oneshot::channel();
                    if sender.send((pushed, ack, row.id)).await.is_err() {
                        return;
                    }
                    waiting.push(confirmed);
                }
                Err(why) => {
                    // Another build's replica took it; it stays in the inbox for a leader
                    // that can read it, and is counted.
                    tracing::error!(
                        inbox_id = row.id,
                        replica = %Escaped(&row.replica),
                        "a push in the inbox cannot be read by this build; it stays there: {}",
                        Escaped(&why)
                    );
                    unreadable.insert(row.id);
                    if unreadable.len() >= MAX_UNREADABLE {
                        tracing::error!(
                            "too many unreadable pushes in the inbox; this leader stops draining it"
                        );
                        return;
                    }
                }
            }
        }
        idle = waiting.is_empty();
        for confirmed in waiting {
            match confirmed.await {
                Ok(Ok(_)) => {}
                // Not recorded: the loop is stopping (and the term with it); the rows stay.
                Ok(Err(_)) | Err(_) => return,
            }
        }
    }
}
