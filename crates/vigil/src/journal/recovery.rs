//! Crash recovery: picking up an interrupted session where it stopped.
//!
//! The ledger holds every event with the commands it caused before any was carried out, and
//! the engine is deterministic. So when the last session did not end cleanly (no end entry: a
//! crash or `kill -9`), or ended with work interrupted, the engine's state at that moment is
//! rebuilt by feeding the session's recorded events to a fresh engine built from its
//! recorded config, through the one step with the recorded answers
//! ([`journal::RerunChain`]), checking that it issues the recorded commands again. The
//! commands whose answer never came (an action, a page, an authorization, a wake-up) are the
//! unfinished work: the daemon carries them on, reconciling each action with its target first
//! (`daemon/actions.rs`) so that one that had reached the target is not made twice.
//!
//! A session is resumed only when the config is unchanged (apart from the trust seed, which
//! grows with the ledger); otherwise the daemon starts fresh and says so. Sessions that
//! resumed one another form a chain, which is rebuilt from its first session.

use std::collections::BTreeMap;

use vigil_core::Timestamp;
use vigil_core::engine::{Command, Engine, EngineConfig, Event};
use vigil_ledger::{Entry, Ledger};

use crate::journal::{self, Rerun, RerunChain, SessionRecord};

/// An interrupted session, rebuilt.
pub struct Resumed {
    /// The engine as it was when the session stopped.
    pub engine: Engine,
    /// The seq of the session entry resumed.
    pub session_seq: u64,
    /// Commands recorded without their answer, in the order they were recorded.
    pub unfinished: Vec<Command>,
    /// Commands the engine issued for the last recorded event that the crash kept out of
    /// the ledger: the daemon records them first, then carries them out. (The daemon records
    /// a step in one transaction, so only ledgers written by earlier builds, which recorded
    /// an event before handling it, can hold an event without its commands.)
    pub unrecorded: Vec<Command>,
    /// The seq of the last event fed (the cause of `unrecorded`).
    pub last_event_seq: u64,
    /// Wake-ups recorded at or after the last event's time (verification deadlines).
    pub wakes: Vec<Timestamp>,
    /// Events fed to rebuild it.
    pub n_events: u64,
}

/// Why the last session is not resumed, when there is one to consider.
#[derive(Debug)]
pub enum NotResumed {
    /// The ledger is empty, or the last session ended cleanly.
    NothingToResume,
    /// The config changed since the interrupted session.
    ConfigChanged {
        /// The interrupted session.
        session_seq: u64,
        /// Its unfinished commands (reported, not carried on).
        unfinished: Vec<String>,
    },
}

/// Rebuilds the last session if it was interrupted and ran with `current` config.
pub async fn resume(
    ledger: &Ledger,
    current: &EngineConfig,
) -> anyhow::Result<Result<Resumed, NotResumed>> {
    resume_with(ledger, current, false).await
}

/// As [`resume`]; with `even_if_ended`, a session that ended cleanly is resumed too (when it
/// ran with `current` config): a replica's new term carries on the last term's open
/// incidents, verifications and wake-ups whether that term crashed or handed over.
pub async fn resume_with(
    ledger: &Ledger,
    current: &EngineConfig,
    even_if_ended: bool,
) -> anyhow::Result<Result<Resumed, NotResumed>> {
    let Some(last_seq) = ledger.len().checked_sub(1) else {
        return Ok(Err(NotResumed::NothingToResume));
    };
    let Some(last_session) = ledger.last_session_at_or_before(last_seq).await? else {
        return Ok(Err(NotResumed::NothingToResume));
    };
    let last_session = journal::session_start_of(ledger, last_session).await?;
    let start = match journal::session_of(&last_session)? {
        SessionRecord::SessionStarted { .. } | SessionRecord::PoliciesReloaded { .. } => {
            last_session
        }
        SessionRecord::SessionEnded { interrupted, .. } => {
            if interrupted.is_empty() && !even_if_ended {
                return Ok(Err(NotResumed::NothingToResume));
            }
            let Some(before) = last_session.seq.checked_sub(1) else {
                return Ok(Err(NotResumed::NothingToResume));
            };
            match ledger.last_session_at_or_before(before).await? {
                Some(entry) => journal::session_start_of(ledger, entry).await?,
                None => return Ok(Err(NotResumed::NothingToResume)),
            }
        }
    };
    let resumed_seq = start.seq;
    let origin = journal::chain_origin(ledger, start).await?;
    let SessionRecord::SessionStarted { engine_config, .. } = journal::session_of(&origin)? else {
        anyhow::bail!("entry {} does not start a session", origin.seq);
    };
    let mut unfinished: BTreeMap<String, (u64, Command)> = BTreeMap::new();
    let mut n_events = 0;
    let mut last_event_seq = origin.seq;
    let mut last_event_at = Timestamp(origin.at_ms);
    let mut wakes = std::collections::BTreeSet::new();
    let mut produced: std::collections::VecDeque<Command> = std::collections::VecDeque::new();
    let mut entries = RerunChain::new(
        ledger,
        &origin,
        u64::MAX,
        Engine::new((*engine_config).clone()),
    );
    while let Some((entry, rerun)) = entries.next().await? {
        match rerun {
            // Ends, and starts of sessions that resumed, continue the chain.
            Rerun::Session(_) => {}
            Rerun::Event { record, issued } => {
                check_drained(&produced, &entry)?;
                match &record.event {
                    Event::ActionFinished { action_id: id, .. }
                    | Event::PageFinished { page_id: id, .. }
                    | Event::AuthorizationDecided { request_id: id, .. }
                    | Event::HumanDecided { request_id: id, .. }
                    | Event::InvestigationFinished {
                        investigation_id: id,
                        ..
                    } => {
                        unfinished.remove(id);
                    }
                    _ => {}
                }
                produced = issued.into();
                n_events += 1;
                last_event_seq = entry.seq;
                last_event_at = Timestamp(entry.at_ms);
            }
            Rerun::Command(record) => {
                let expected = produced.pop_front();
                anyhow::ensure!(
                    expected.as_ref() == Some(&record.command),
                    "entry {}: rebuilding the interrupted session gives another command than the ledger holds; it cannot be resumed safely",
                    entry.seq
                );
                let id = match &record.command {
                    Command::Execute { action_id: id, .. }
                    | Command::Page { page_id: id, .. }
                    | Command::Authorize { request_id: id, .. }
                    | Command::AuthorizeHuman { request_id: id, .. }
                    // An investigation is read-only: one cut short by a crash runs again.
                    | Command::Investigate {
                        investigation_id: id,
                        ..
                    } => Some(id.clone()),
                    // A resolution is not answered: nothing is left unfinished by it.
                    Command::Record(_)
                    | Command::WakeAt { .. }
                    | Command::ResolvePage { .. }
                    | Command::UpdatePage { .. }
                    | Command::Notify { .. } => None,
                };
                if let Command::WakeAt { at } = &record.command {
                    wakes.insert(*at);
                }
                if let Some(id) = id {
                    unfinished.insert(id, (entry.seq, record.command));
                }
            }
        }
    }
    let engine = entries.into_engine();
    let mut comparable = (*engine_config).clone();
    comparable.trust.clone_from(&current.trust);
    if &comparable != current {
        return Ok(Err(NotResumed::ConfigChanged {
            session_seq: resumed_seq,
            unfinished: unfinished.into_keys().collect(),
        }));
    }
    let mut unfinished: Vec<(u64, Command)> = unfinished.into_values().collect();
    unfinished.sort_by_key(|(seq, _)| *seq);
    Ok(Ok(Resumed {
        engine,
        session_seq: resumed_seq,
        unfinished: unfinished.into_iter().map(|(_, command)| command).collect(),
        unrecorded: produced.into(),
        last_event_seq,
        wakes: wakes
            .into_iter()
            .filter(|at| *at >= last_event_at)
            .collect(),
        n_events,
    }))
}

/// Every command the engine issued for the previous event must have been recorded; a
/// command recorded but not issued (or the reverse) means the rebuild went astray.
fn check_drained(
    produced: &std::collections::VecDeque<Command>,
    entry: &Entry,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        produced.is_empty(),
        "entry {}: the rebuilt engine issued {} command(s) the ledger does not hold before this event; the session cannot be resumed safely",
        entry.seq,
        produced.len()
    );
    Ok(())
}
