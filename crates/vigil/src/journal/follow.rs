//! A standby's warm engine: the last session chain, rebuilt as the leader appends to it.
//!
//! A replica that stands by follows the shared ledger with a [`Follower`]: it reruns each
//! step the leader records through the engine, as crash recovery does
//! (`journal/recovery.rs`), so that on takeover only the entries since its last look are
//! left to read. [`Follower::finish`] gives what [`recovery::resume_with`] would rebuild
//! from scratch, the same engine and the same unfinished work; a follower that cannot tell
//! (the chain it followed is not the one to resume) rebuilds from scratch.
//!
//! A step is rerun with the answers recorded in its window (the commands and inline answers
//! after its event), and the leader may still be appending to the last one. So a follower
//! reads only up to the entry before the latest one that opens a step (an event that is not
//! an inline answer, or a session entry): every step before it is whole. Only `finish`,
//! called once the lease is this replica's and the old leader is fenced, reads to the end.

use vigil_ledger::{Entry, EntryKind, Ledger};

use super::recovery::{self, Rebuild, Rebuilt};
use super::scrape_batch;

/// Entries read per look for where steps open.
const SCAN_PAGE: u32 = 1_000;

/// Follows one ledger's last session chain.
pub struct Follower<'ledger> {
    ledger: &'ledger Ledger,
    rebuild: Option<Rebuild<'ledger>>,
    /// The seq of the next entry not yet looked at for where a step opens.
    scanned: u64,
}

/// What one look at the ledger did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Entries rerun.
    pub n_read: u64,
    /// Whether entries that can be read are left (the look stopped at its budget).
    pub more: bool,
}

impl<'ledger> Follower<'ledger> {
    /// A follower that has read nothing yet.
    #[must_use]
    pub fn new(ledger: &'ledger Ledger) -> Follower<'ledger> {
        Follower {
            ledger,
            rebuild: None,
            scanned: 0,
        }
    }

    /// The seq of the session the followed chain starts at, once there is one.
    #[must_use]
    pub fn origin_seq(&self) -> Option<u64> {
        self.rebuild.as_ref().map(Rebuild::origin_seq)
    }

    /// Reads on up to the last step the ledger holds whole, rerunning at most `budget`
    /// entries.
    ///
    /// # Errors
    ///
    /// When the ledger cannot be read, or the rerun departs from what the ledger holds (the
    /// follower is then of no use: [`Follower::finish`] is not to be called).
    pub async fn catch_up(&mut self, budget: u64) -> anyhow::Result<Progress> {
        let rebuild = match &mut self.rebuild {
            Some(rebuild) if !rebuild.ended() => rebuild,
            _ => {
                // Nothing followed yet, or a session started afresh: its chain is the one.
                let Some(located) = recovery::locate(self.ledger, true).await? else {
                    return Ok(Progress::default());
                };
                self.scanned = located.origin.seq + 1;
                self.rebuild.insert(Rebuild::new(
                    self.ledger,
                    &located.origin,
                    located.origin.seq,
                )?)
            }
        };
        // Bounded: each page moves `scanned` on, and a short page ends the look.
        let mut n_scanned = 0_u64;
        let mut closed = None;
        while n_scanned < budget {
            let page = self.ledger.read(self.scanned, SCAN_PAGE).await?;
            for entry in &page {
                if opens_a_step(entry)? {
                    closed = entry.seq.checked_sub(1);
                }
            }
            let Some(last) = page.last() else {
                break;
            };
            self.scanned = last.seq + 1;
            n_scanned += page.len() as u64;
            if page.len() < SCAN_PAGE as usize {
                break;
            }
        }
        if let Some(closed) = closed {
            rebuild.extend_until(closed);
        }
        let mut progress = Progress::default();
        while progress.n_read < budget {
            if !rebuild.read_one().await? {
                return Ok(progress);
            }
            progress.n_read += 1;
        }
        progress.more = true;
        Ok(progress)
    }

    /// Reads to the end of the ledger and gives the session to resume, as
    /// [`recovery::resume_with`] (`even_if_ended`) would rebuild it; `None` when there is
    /// none. Only for a replica that holds the lease: the ledger must be still.
    ///
    /// # Errors
    ///
    /// When the ledger cannot be read or the rerun departs from what it holds.
    pub async fn finish(self) -> anyhow::Result<Option<Rebuilt>> {
        let Some(located) = recovery::locate(self.ledger, true).await? else {
            return Ok(None);
        };
        let mut rebuild = match self.rebuild {
            Some(rebuild) if rebuild.origin_seq() == located.origin.seq && !rebuild.ended() => {
                rebuild
            }
            // Not the chain to resume (a session started afresh since the last look).
            _ => return recovery::rebuild(self.ledger, true).await,
        };
        rebuild.extend_until(u64::MAX);
        // Bounded by the ledger's length: each call reads one entry or ends.
        while rebuild.read_one().await? {}
        Ok(Some(rebuild.finish(located.start_seq)))
    }
}

/// Whether `entry` opens a step: a session entry, or an event that is not an answer given
/// inline (those belong to the window of the step before, as `rerun::in_window` reads it).
/// The event's type is read without decoding the rest of it.
fn opens_a_step(entry: &Entry) -> anyhow::Result<bool> {
    #[derive(serde::Deserialize)]
    struct Probe {
        event: Tag,
    }
    #[derive(serde::Deserialize)]
    struct Tag {
        #[serde(rename = "type")]
        kind: String,
    }
    Ok(match entry.kind {
        EntryKind::Session => true,
        EntryKind::Command => false,
        EntryKind::Event if scrape_batch::is_batch_payload(&entry.payload) => true,
        EntryKind::Event => {
            let probe: Probe = serde_json::from_str(&entry.payload).map_err(|error| {
                anyhow::anyhow!("entry {}: unreadable event: {error}", entry.seq)
            })?;
            !matches!(
                probe.event.kind.as_str(),
                "authorization_decided" | "human_decided"
            )
        }
    })
}
