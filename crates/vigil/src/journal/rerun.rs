//! A recorded session chain run through the engine again, the way replay and recovery read it:
//! every recorded event is handed to the engine through the one step ([`step_with`]), whose
//! answerer is the ledger itself ([`RecordedAnswers`]: the answers recorded right after the
//! event, at their recorded times).
//!
//! An answer recorded later (after a crash, in the session that resumed this one, or after a
//! policy reload) is not an inline answer: it is stepped as an event of its own when the
//! chain reaches it. Either way the engine is handed the recorded events in the recorded
//! order, each at its recorded time, which is what makes the commands come out again.

use std::collections::VecDeque;

use vigil_core::Timestamp;
use vigil_core::engine::{Command, Engine, Event};
use vigil_ledger::{Entry, Ledger};

use super::reader::{ChainEntries, Recorded};
use super::records::{CommandRecord, EventRecord, SessionRecord};
use super::step::{RecordedAnswers, step_with};

/// A chain's entry, with what the engine made of it when it is an event.
#[derive(Debug, Clone)]
pub enum Rerun {
    /// A session started, reloaded its policies or ended.
    Session(SessionRecord),
    /// An event handed to the engine (on its own, or as an inline answer in the step of the
    /// event before it).
    Event {
        /// The recorded event.
        record: EventRecord,
        /// The commands the engine issued for it, in order.
        issued: Vec<Command>,
    },
    /// A command the engine issued when the ledger was written.
    Command(CommandRecord),
}

/// The entries of one session chain ([`ChainEntries`]) in order, each recorded event run
/// through the engine with [`step_with`] and the recorded answers.
pub struct RerunChain<'ledger> {
    entries: ChainEntries<'ledger>,
    engine: Engine,
    /// Entries read ahead of the caller: the rest of the last step's window (the commands and
    /// answers recorded after its event) and the entry that closed it.
    ahead: VecDeque<(Entry, Recorded)>,
    /// For each recorded answer the last step handed back whose entry the caller has not
    /// reached yet, in order: the answer, when it was handed back and the commands the engine
    /// issued for it.
    answered: VecDeque<(Event, Timestamp, Vec<Command>)>,
}

impl<'ledger> RerunChain<'ledger> {
    /// The chain that starts at `origin` (a session start), read up to seq `until`, run
    /// through `engine` (built from the session's recorded config).
    #[must_use]
    pub fn new(
        ledger: &'ledger Ledger,
        origin: &Entry,
        until: u64,
        engine: Engine,
    ) -> RerunChain<'ledger> {
        RerunChain {
            entries: ChainEntries::new(ledger, origin, until),
            engine,
            ahead: VecDeque::new(),
            answered: VecDeque::new(),
        }
    }

    /// The chain's next entry, or `None` at its end.
    ///
    /// # Errors
    ///
    /// When the ledger cannot be read or an entry cannot be decoded.
    pub async fn next(&mut self) -> anyhow::Result<Option<(Entry, Rerun)>> {
        let next = match self.ahead.pop_front() {
            Some(next) => Some(next),
            None => self.entries.next().await?,
        };
        let Some((entry, recorded)) = next else {
            return Ok(None);
        };
        let rerun = match recorded {
            Recorded::Session(record) => Rerun::Session(record),
            Recorded::Command(record) => Rerun::Command(record),
            // The chain opens every batch into its scrapes.
            Recorded::ScrapeBatch(_) => {
                anyhow::bail!("entry {}: a scrape batch left unopened", entry.seq)
            }
            Recorded::Event(record) => match self.answered.pop_front() {
                // An answer the previous step handed back: the answers are taken in order, so
                // it is the next event the chain holds.
                Some((answer, at, issued)) => {
                    // INVARIANT: the answer handed back is the one recorded, at its time.
                    debug_assert_eq!(answer, record.event, "entry {}", entry.seq);
                    debug_assert_eq!(at, Timestamp(entry.at_ms), "entry {}", entry.seq);
                    Rerun::Event { record, issued }
                }
                None => self.step(&entry, record).await?,
            },
        };
        Ok(Some((entry, rerun)))
    }

    /// Reads on up to seq `until`, which must end a step (the entry before an event that
    /// is not an answer given inline, or before a session entry): a step is rerun with the
    /// answers recorded in its window, and a window still open would be rerun short.
    pub fn extend_until(&mut self, until: u64) {
        self.entries.extend_until(until);
    }

    /// Whether the chain ended at a session that starts afresh.
    #[must_use]
    pub fn ended(&self) -> bool {
        self.ahead.is_empty() && self.entries.ended()
    }

    /// The engine, as the entries read so far left it, still reading.
    #[must_use]
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The engine, as the entries read so far left it.
    #[must_use]
    pub fn into_engine(self) -> Engine {
        self.engine
    }

    /// Steps the event recorded in `entry`, with the answers recorded after it.
    async fn step(&mut self, entry: &Entry, record: EventRecord) -> anyhow::Result<Rerun> {
        // The step's window: the commands and answers recorded after the event, up to the
        // next other event or session entry (read too, and kept for the caller).
        while self
            .ahead
            .back()
            .is_none_or(|(_, recorded)| in_window(recorded))
        {
            let Some(next) = self.entries.next().await? else {
                break;
            };
            self.ahead.push_back(next);
        }
        let mut answerer = RecordedAnswers::new(
            self.ahead
                .iter()
                .take_while(|(_, recorded)| in_window(recorded))
                .filter_map(|(entry, recorded)| match recorded {
                    Recorded::Event(answer) => Some((answer.event.clone(), Timestamp(entry.at_ms))),
                    Recorded::Session(_) | Recorded::Command(_) | Recorded::ScrapeBatch(_) => None,
                }),
        );
        let EventRecord {
            event,
            exchanges_blob,
        } = record;
        let taken = step_with(
            &mut self.engine,
            &mut answerer,
            event,
            Timestamp(entry.at_ms),
        );
        let mut handled = taken.handled.into_iter().zip(taken.handled_at);
        let Some(((event, issued), _)) = handled.next() else {
            anyhow::bail!("entry {}: the step handled no event", entry.seq);
        };
        self.answered = handled
            .map(|((answer, issued), at)| (answer, at, issued))
            .collect();
        debug_assert_eq!(self.answered.len(), answerer.n_taken());
        Ok(Rerun::Event {
            record: EventRecord {
                event,
                exchanges_blob,
            },
            issued,
        })
    }
}

/// Whether an entry can follow an event within the event's step: a command, or an answer
/// given inline.
fn in_window(recorded: &Recorded) -> bool {
    match recorded {
        Recorded::Command(_) => true,
        Recorded::Event(record) => matches!(
            record.event,
            Event::AuthorizationDecided { .. } | Event::HumanDecided { .. }
        ),
        Recorded::Session(_) | Recorded::ScrapeBatch(_) => false,
    }
}

/// The engine as the ledger's session left it at the last moment incident `incident_id` was
/// open (after the last event before it ended, or at its last entry), with that moment: the
/// state `vigil investigate` investigates after the fact. Two passes over the incident's
/// session chain: the first finds the moment, the second rebuilds the engine up to it.
///
/// # Errors
///
/// When the ledger cannot be read, holds no such incident, or its session cannot be rebuilt.
pub async fn engine_while_open(
    ledger: &Ledger,
    incident_id: &str,
) -> anyhow::Result<(Engine, Timestamp)> {
    let incident_entries = ledger.entries_for_incident(incident_id).await?;
    let (Some(first), Some(last)) = (incident_entries.first(), incident_entries.last()) else {
        anyhow::bail!("the ledger has no incident `{incident_id}`");
    };
    let Some(session_entry) = ledger.last_session_at_or_before(first.seq).await? else {
        anyhow::bail!("no session entry precedes incident `{incident_id}`");
    };
    let session_entry = super::records::session_start_of(ledger, session_entry).await?;
    let origin = super::records::chain_origin(ledger, session_entry).await?;
    let SessionRecord::SessionStarted { engine_config, .. } = super::records::session_of(&origin)?
    else {
        anyhow::bail!("entry {} does not start a session", origin.seq);
    };
    // First pass: the last event after which the incident was still open.
    let mut open_until: Option<(u64, i64)> = None;
    let mut entries = RerunChain::new(
        ledger,
        &origin,
        last.seq,
        Engine::new((*engine_config).clone()),
    );
    while let Some((entry, rerun)) = entries.next().await? {
        if matches!(rerun, Rerun::Event { .. }) && entries.engine().has_incident(incident_id) {
            open_until = Some((entry.seq, entry.at_ms));
        }
    }
    let Some((event_seq, at_ms)) = open_until else {
        anyhow::bail!("incident `{incident_id}` was never open in its session's rebuilt state");
    };
    // Second pass: up to that event (stepped with the answers recorded with it).
    let mut entries = RerunChain::new(ledger, &origin, last.seq, Engine::new(*engine_config));
    while let Some((entry, rerun)) = entries.next().await? {
        if matches!(rerun, Rerun::Event { .. }) && entry.seq >= event_seq {
            break;
        }
    }
    let engine = entries.into_engine();
    anyhow::ensure!(
        engine.has_incident(incident_id),
        "incident `{incident_id}` could not be rebuilt open"
    );
    Ok((engine, Timestamp(at_ms)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use vigil_core::Timestamp;
    use vigil_core::engine::{Command, Engine, Event};
    use vigil_ledger::{Ledger, LedgerLocation, NewEntry};

    use super::{Rerun, RerunChain};
    use crate::journal::{
        SessionRecord, answer, command_entries, event_entry, record_bundle, session_entry,
    };

    /// 2026-01-01T00:00:00Z.
    const NOW: Timestamp = Timestamp(1_767_225_600_000);

    /// Writes `entries` to a fresh ledger and returns every recorded event's seq with the
    /// commands the chain's engine issued for it.
    async fn rerun(name: &str, entries: &[NewEntry], engine: Engine) -> Vec<(u64, Vec<Command>)> {
        let path =
            std::env::temp_dir().join(format!("vigil-rerun-{name}-{}.db", std::process::id()));
        crate::journal::remove_sqlite_ledger(&path).unwrap();
        let mut ledger = Ledger::open(&LedgerLocation::Sqlite { path: path.clone() })
            .await
            .unwrap();
        let appended = ledger.append(entries).await.unwrap();
        let mut chain = RerunChain::new(&ledger, &appended[0], u64::MAX, engine);
        let mut events = Vec::new();
        while let Some((entry, rerun)) = chain.next().await.unwrap() {
            if let Rerun::Event { issued, .. } = rerun {
                events.push((entry.seq, issued));
            }
        }
        ledger.close().await;
        crate::journal::remove_sqlite_ledger(&path).unwrap();
        events
    }

    #[tokio::test]
    async fn an_answer_recorded_inline_or_after_a_crash_gets_the_commands_it_got_then() {
        let bundle = crate::bundle::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios/config/vigil.yaml"),
        )
        .unwrap();
        let scratch = std::env::temp_dir().join(format!("vigil-rerun-{}.db", std::process::id()));
        crate::journal::remove_sqlite_ledger(&scratch).unwrap();
        let blobs = Ledger::open(&LedgerLocation::Sqlite {
            path: scratch.clone(),
        })
        .await
        .unwrap();
        let started = record_bundle(&blobs, &bundle).await.unwrap();
        blobs.close().await;
        crate::journal::remove_sqlite_ledger(&scratch).unwrap();
        let SessionRecord::SessionStarted {
            vigil_version,
            engine_config,
            policy_set_hash,
            config_blob,
            runbooks_blob,
            policies_blob,
            ..
        } = started.clone()
        else {
            panic!("not a session start");
        };
        let resuming = SessionRecord::SessionStarted {
            vigil_version,
            engine_config,
            policy_set_hash,
            config_blob,
            runbooks_blob,
            policies_blob,
            resumes: Some(0),
            scrape_batch: None,
        };

        // What the engine issued then: a scheduled run asks for an authorization, answered
        // a little later.
        let event = Event::ScheduledRun {
            runbook_id: "gateway-readiness-check".to_owned(),
        };
        let later = Timestamp(NOW.0 + 3);
        let mut then = Engine::new(bundle.engine.clone());
        let issued = then.handle(&event, NOW);
        let Some(decided) = issued
            .iter()
            .find_map(|command| answer(&bundle.authorizer, command))
        else {
            panic!("no authorization asked: {issued:#?}");
        };
        let issued_for_decided = then.handle(&decided, later);
        let n_issued = issued.len() as u64;

        // Older ledgers recorded the inline answer a few milliseconds after its event.
        let mut inline = vec![
            session_entry(&started, NOW.0).unwrap(),
            event_entry(&event, NOW.0, None).unwrap(),
        ];
        inline.extend(command_entries(&issued, 1, NOW.0).unwrap());
        inline.push(event_entry(&decided, later.0, None).unwrap());
        inline.extend(command_entries(&issued_for_decided, 2 + n_issued, later.0).unwrap());
        let engine = Engine::new(bundle.engine.clone());
        assert_eq!(
            rerun("inline", &inline, engine).await,
            [
                (1, issued.clone()),
                (2 + n_issued, issued_for_decided.clone())
            ]
        );

        // After a crash, the answer is recorded in the session that resumed, as an event of
        // its own.
        let mut resumed = vec![
            session_entry(&started, NOW.0).unwrap(),
            event_entry(&event, NOW.0, None).unwrap(),
        ];
        resumed.extend(command_entries(&issued, 1, NOW.0).unwrap());
        resumed.push(session_entry(&resuming, later.0).unwrap());
        resumed.push(event_entry(&decided, later.0, None).unwrap());
        resumed.extend(command_entries(&issued_for_decided, 3 + n_issued, later.0).unwrap());
        let engine = Engine::new(bundle.engine.clone());
        assert_eq!(
            rerun("resumed", &resumed, engine).await,
            [(1, issued), (3 + n_issued, issued_for_decided)]
        );
    }
}
