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

use std::collections::{BTreeMap, BTreeSet, VecDeque};

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
    Ok(match rebuild(ledger, even_if_ended).await? {
        Some(rebuilt) => rebuilt.into_resumed(current),
        None => Err(NotResumed::NothingToResume),
    })
}

/// The last session (the one before a clean end only `even_if_ended`), rebuilt from the
/// first session of its chain; `None` when there is none.
///
/// # Errors
///
/// When the ledger cannot be read or the rebuild departs from what it holds.
pub async fn rebuild(ledger: &Ledger, even_if_ended: bool) -> anyhow::Result<Option<Rebuilt>> {
    let Some(located) = locate(ledger, even_if_ended).await? else {
        return Ok(None);
    };
    let mut rebuild = Rebuild::new(ledger, &located.origin, u64::MAX)?;
    // Bounded by the ledger's length: each call reads one entry or ends.
    while rebuild.read_one().await? {}
    Ok(Some(rebuild.finish(located.start_seq)))
}

/// The session to resume and the origin of its chain.
pub(crate) struct Located {
    /// The session start resumed.
    pub(crate) start_seq: u64,
    /// The first session of its chain.
    pub(crate) origin: Entry,
}

/// Finds the last session (the one before a clean end only `even_if_ended`) and its chain's
/// origin; `None` when there is nothing to resume.
pub(crate) async fn locate(
    ledger: &Ledger,
    even_if_ended: bool,
) -> anyhow::Result<Option<Located>> {
    let Some(last_session) = ledger.last_session_at_or_before(u64::MAX).await? else {
        return Ok(None);
    };
    let last_session = journal::session_start_of(ledger, last_session).await?;
    let start = match journal::session_of(&last_session)? {
        SessionRecord::SessionStarted { .. } | SessionRecord::PoliciesReloaded { .. } => {
            last_session
        }
        SessionRecord::SessionEnded { interrupted, .. } => {
            if interrupted.is_empty() && !even_if_ended {
                return Ok(None);
            }
            let Some(before) = last_session.seq.checked_sub(1) else {
                return Ok(None);
            };
            match ledger.last_session_at_or_before(before).await? {
                Some(entry) => journal::session_start_of(ledger, entry).await?,
                None => return Ok(None),
            }
        }
    };
    let start_seq = start.seq;
    let origin = journal::chain_origin(ledger, start).await?;
    Ok(Some(Located { start_seq, origin }))
}

/// A session chain being rebuilt, entry by entry: the engine, and what the entries read so
/// far left unfinished.
pub(crate) struct Rebuild<'ledger> {
    chain: RerunChain<'ledger>,
    recorded_config: EngineConfig,
    origin_seq: u64,
    unfinished: BTreeMap<String, (u64, Command)>,
    n_events: u64,
    last_event_seq: u64,
    last_event_at: Timestamp,
    wakes: BTreeSet<Timestamp>,
    produced: VecDeque<Command>,
}

impl<'ledger> Rebuild<'ledger> {
    /// The rebuild of the chain that starts at `origin`, reading up to seq `until`.
    pub(crate) fn new(
        ledger: &'ledger Ledger,
        origin: &Entry,
        until: u64,
    ) -> anyhow::Result<Rebuild<'ledger>> {
        let SessionRecord::SessionStarted { engine_config, .. } = journal::session_of(origin)?
        else {
            anyhow::bail!("entry {} does not start a session", origin.seq);
        };
        let recorded_config = (*engine_config).clone();
        Ok(Rebuild {
            chain: RerunChain::new(ledger, origin, until, Engine::new(recorded_config.clone())),
            recorded_config,
            origin_seq: origin.seq,
            unfinished: BTreeMap::new(),
            n_events: 0,
            last_event_seq: origin.seq,
            last_event_at: Timestamp(origin.at_ms),
            wakes: BTreeSet::new(),
            produced: VecDeque::new(),
        })
    }

    /// The seq of the session that starts the chain.
    pub(crate) fn origin_seq(&self) -> u64 {
        self.origin_seq
    }

    /// Reads on up to seq `until`, which must end a step (see [`RerunChain::extend_until`]).
    pub(crate) fn extend_until(&mut self, until: u64) {
        self.chain.extend_until(until);
    }

    /// Whether the chain ended at a session that starts afresh.
    pub(crate) fn ended(&self) -> bool {
        self.chain.ended()
    }

    /// Reads and reruns the next entry; `false` at the end of what can be read.
    pub(crate) async fn read_one(&mut self) -> anyhow::Result<bool> {
        let Some((entry, rerun)) = self.chain.next().await? else {
            return Ok(false);
        };
        match rerun {
            // Ends, and starts of sessions that resumed, continue the chain.
            Rerun::Session(_) => {}
            Rerun::Event { record, issued } => {
                check_drained(&self.produced, &entry)?;
                match &record.event {
                    Event::ActionFinished { action_id: id, .. }
                    | Event::PageFinished { page_id: id, .. }
                    | Event::AuthorizationDecided { request_id: id, .. }
                    | Event::HumanDecided { request_id: id, .. }
                    | Event::InvestigationFinished {
                        investigation_id: id,
                        ..
                    } => {
                        self.unfinished.remove(id);
                    }
                    _ => {}
                }
                self.produced = issued.into();
                self.n_events += 1;
                self.last_event_seq = entry.seq;
                self.last_event_at = Timestamp(entry.at_ms);
            }
            Rerun::Command(record) => {
                let expected = self.produced.pop_front();
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
                    self.wakes.insert(*at);
                }
                if let Some(id) = id {
                    self.unfinished.insert(id, (entry.seq, record.command));
                }
            }
        }
        Ok(true)
    }

    /// The rebuilt session `start_seq` (a session of this chain), owning nothing borrowed.
    pub(crate) fn finish(self, start_seq: u64) -> Rebuilt {
        Rebuilt {
            engine: self.chain.into_engine(),
            recorded_config: self.recorded_config,
            session_seq: start_seq,
            unfinished: self.unfinished,
            unrecorded: self.produced.into(),
            last_event_seq: self.last_event_seq,
            last_event_at: self.last_event_at,
            wakes: self.wakes,
            n_events: self.n_events,
        }
    }
}

/// A session chain rebuilt to the end of the ledger, before it is compared with the config
/// in force ([`Rebuilt::into_resumed`]).
#[derive(Debug)]
pub struct Rebuilt {
    engine: Engine,
    recorded_config: EngineConfig,
    session_seq: u64,
    unfinished: BTreeMap<String, (u64, Command)>,
    unrecorded: Vec<Command>,
    last_event_seq: u64,
    last_event_at: Timestamp,
    wakes: BTreeSet<Timestamp>,
    n_events: u64,
}

impl Rebuilt {
    /// The seq of the session entry it resumes.
    #[must_use]
    pub fn session_seq(&self) -> u64 {
        self.session_seq
    }

    /// The session to resume, if it ran with `current` config (apart from the trust seed).
    pub fn into_resumed(self, current: &EngineConfig) -> Result<Resumed, NotResumed> {
        let mut comparable = self.recorded_config;
        comparable.trust.clone_from(&current.trust);
        if &comparable != current {
            return Err(NotResumed::ConfigChanged {
                session_seq: self.session_seq,
                unfinished: self.unfinished.into_keys().collect(),
            });
        }
        let mut unfinished: Vec<(u64, Command)> = self.unfinished.into_values().collect();
        unfinished.sort_by_key(|(seq, _)| *seq);
        let last_event_at = self.last_event_at;
        Ok(Resumed {
            engine: self.engine,
            session_seq: self.session_seq,
            unfinished: unfinished.into_iter().map(|(_, command)| command).collect(),
            unrecorded: self.unrecorded,
            last_event_seq: self.last_event_seq,
            wakes: self
                .wakes
                .into_iter()
                .filter(|at| *at >= last_event_at)
                .collect(),
            n_events: self.n_events,
        })
    }
}

/// Every command the engine issued for the previous event must have been recorded; a
/// command recorded but not issued (or the reverse) means the rebuild went astray.
fn check_drained(produced: &VecDeque<Command>, entry: &Entry) -> anyhow::Result<()> {
    anyhow::ensure!(
        produced.is_empty(),
        "entry {}: the rebuilt engine issued {} command(s) the ledger does not hold before this event; the session cannot be resumed safely",
        entry.seq,
        produced.len()
    );
    Ok(())
}
