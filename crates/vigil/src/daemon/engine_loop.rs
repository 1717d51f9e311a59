//! The engine task: the only owner of the engine and the ledger.
//!
//! For each event: append it to the ledger (durable), hand it to the engine, append the
//! commands (durable), then carry them out. Nothing reaches the world before its intent is
//! in the ledger. Authorization is answered inline, so a decision is recorded as the next
//! event right after the request that asked for it.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use vigil_core::Timestamp;
use vigil_core::engine::{Command, Engine, Event, Record};
use vigil_core::intake::Pushed;
use vigil_ledger::{Entry, Ledger, NewEntry};
use vigil_policy::Authorizer;

use super::checkpointer::{CheckpointRequest, Checkpointer};
use super::clock::Clock;
use super::effects::Effects;
use super::intake::Ack;
use super::telemetry::Telemetry;
use super::{Note, NoteBody};
use crate::bundle::PolicyTexts;
use crate::logsafe::Escaped;
use crate::session::{self, SessionRecord};

/// How often an append is tried before the daemon gives up: a daemon that cannot record
/// must not act.
const APPEND_ATTEMPTS: u32 = 3;

/// Pushes recorded together at most: the ones waiting in the queue share one transaction
/// (one fsync), and each client hears back once that commits.
const PUSH_BATCH: usize = 64;

/// A batch takes no more pushes once it holds this many items (results, runs, alerts,
/// spans): one maximum-size push is a batch of its own.
const PUSH_BATCH_ITEMS: usize = 1_000;

pub(super) struct EngineLoop {
    pub(super) engine: Engine,
    pub(super) ledger: Ledger,
    pub(super) authorizer: Authorizer,
    pub(super) clock: Clock,
    pub(super) telemetry: Arc<Telemetry>,
    pub(super) notes: broadcast::Sender<Note>,
    pub(super) inbox: mpsc::Receiver<Event>,
    /// New policy sets, loaded and validated by the SIGHUP task.
    pub(super) policies: mpsc::Receiver<(PolicyTexts, Authorizer)>,
    pub(super) effects: Effects,
    pub(super) in_flight: BTreeSet<String>,
    pub(super) not_started: Vec<String>,
    pub(super) wakes: BTreeSet<Timestamp>,
    /// Signs the ledger's checkpoints, when configured.
    pub(super) checkpointer: Option<Checkpointer>,
    /// Checkpoints asked for through the admin API.
    pub(super) checkpoint_requests: mpsc::Receiver<CheckpointRequest>,
    /// Pushed payloads, each confirmed once its event is in the ledger.
    pub(super) pushes: mpsc::Receiver<(Pushed, Ack)>,
}

impl EngineLoop {
    /// Runs until `cancel` fires and in-flight work has finished (or `grace` has passed).
    pub(super) async fn run(
        mut self,
        cancel: CancellationToken,
        grace: Duration,
    ) -> anyhow::Result<Ledger> {
        let mut draining = false;
        let mut drain_deadline = tokio::time::Instant::now();
        let now = self.clock.now();
        let period = self
            .checkpointer
            .as_ref()
            .map_or(Duration::from_secs(86_400), |checkpointer| {
                checkpointer.interval
            });
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer
                .take_or_log(&self.ledger, now, "the session started", true)
                .await;
        }
        let mut checkpoint_timer =
            tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        checkpoint_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            if draining && self.in_flight.is_empty() {
                break "shutdown".to_owned();
            }
            tokio::select! {
                biased;
                () = cancel.cancelled(), if !draining => {
                    draining = true;
                    drain_deadline = tokio::time::Instant::now() + grace;
                }
                () = tokio::time::sleep_until(drain_deadline), if draining => {
                    break format!("shutdown; the grace period of {}s ran out", grace.as_secs());
                }
                Some((texts, authorizer)) = self.policies.recv(), if !draining => {
                    self.swap_policies(&texts, authorizer).await?;
                }
                _ = checkpoint_timer.tick(), if self.checkpointer.is_some() => {
                    let now = self.clock.now();
                    if let Some(checkpointer) = &mut self.checkpointer {
                        checkpointer.take_or_log(&self.ledger, now, "scheduled", false).await;
                    }
                }
                Some(first) = self.pushes.recv(), if !draining => {
                    // The pushes already waiting are recorded with this one, in one
                    // transaction; each client hears back only after it commits, and a
                    // failure stops the daemon as usual.
                    // A batch also stops at PUSH_BATCH_ITEMS, so that large pushes are recorded
                    // one by one: their entries (each a JSON tree of the whole payload) are
                    // built together for the transaction, and that must not multiply.
                    let mut n_items = first.0.n_items();
                    let mut batch = vec![first];
                    while batch.len() < PUSH_BATCH && n_items < PUSH_BATCH_ITEMS {
                        match self.pushes.try_recv() {
                            Ok(next) => {
                                n_items += next.0.n_items();
                                batch.push(next);
                            }
                            Err(_) => break,
                        }
                    }
                    self.process_pushes(batch).await?;
                }
                Some(reply) = self.checkpoint_requests.recv() => {
                    let now = self.clock.now();
                    let answer = match &mut self.checkpointer {
                        Some(checkpointer) => checkpointer
                            .take(&self.ledger, now, "asked for", true)
                            .await
                            .map_err(|error| format!("{error:#}"))
                            .and_then(|taken| taken.ok_or_else(|| "no checkpoint".to_owned())),
                        None => Err("checkpoints are not configured (ledger.checkpoint)".to_owned()),
                    };
                    let _ = reply.send(answer);
                }
                received = self.inbox.recv() => match received {
                    Some(event) => {
                        // While draining, only the answers to work already under way count.
                        let is_answer = matches!(
                            event,
                            Event::ActionFinished { .. }
                                | Event::PageFinished { .. }
                                | Event::AuthorizationDecided { .. }
                                | Event::HumanDecided { .. }
                        );
                        if draining && !is_answer {
                            continue;
                        }
                        self.process(event, draining).await?;
                    }
                    None => break "every event source stopped".to_owned(),
                },
            }
        };
        let mut interrupted: Vec<String> = self.in_flight.iter().cloned().collect();
        interrupted.append(&mut self.not_started);
        if !interrupted.is_empty() {
            tracing::warn!(
                ?interrupted,
                "stopping with work that did not finish; it is recorded as interrupted"
            );
        }
        let record = SessionRecord::SessionEnded {
            reason,
            interrupted,
        };
        let now = self.clock.now();
        let entry = session::session_entry(&record, now.0)?;
        let appended = self.append(vec![entry]).await?;
        for entry in appended {
            let _ = self.notes.send(Note {
                seq: entry.seq,
                at: now,
                body: NoteBody::Session(record.clone()),
            });
        }
        if let Some(checkpointer) = &mut self.checkpointer {
            checkpointer
                .take_or_log(&self.ledger, now, "the session ended", false)
                .await;
        }
        Ok(self.ledger)
    }

    /// Records a new policy set (its texts as a blob, then a `policies_reloaded` entry) and
    /// decides with it from the next event on; replay switches at the same entry.
    async fn swap_policies(
        &mut self,
        texts: &PolicyTexts,
        authorizer: Authorizer,
    ) -> anyhow::Result<()> {
        let policies_blob = session::record_policies(&self.ledger, texts)
            .await
            .context("recording the reloaded policies")?;
        let record = SessionRecord::PoliciesReloaded {
            policy_set_hash: authorizer.policy_set_hash().to_owned(),
            policies_blob,
        };
        let now = self.clock.now();
        let entry = session::session_entry(&record, now.0)?;
        let appended = self.append(vec![entry]).await?;
        tracing::warn!(
            from = %self.authorizer.policy_set_hash(),
            to = %authorizer.policy_set_hash(),
            n_policies = authorizer.policy_ids().len(),
            "policies reloaded"
        );
        self.authorizer = authorizer;
        for entry in appended {
            let _ = self.notes.send(Note {
                seq: entry.seq,
                at: now,
                body: NoteBody::Session(record.clone()),
            });
        }
        Ok(())
    }

    /// Carries on what an interrupted session left unfinished (see `recovery.rs`): records
    /// the commands the crash kept out of the ledger, then carries out those and the ones
    /// whose answer never came. Actions are reconciled with their target first.
    pub(super) async fn carry_on(
        &mut self,
        unrecorded: Vec<Command>,
        caused_by: u64,
        unfinished: Vec<Command>,
        wakes: Vec<Timestamp>,
    ) -> anyhow::Result<()> {
        if !unrecorded.is_empty() {
            let now = self.clock.now();
            let entries = session::command_entries(&unrecorded, caused_by, now.0)?;
            self.append(entries).await?;
        }
        tracing::warn!(
            n_unrecorded = unrecorded.len(),
            n_unfinished = unfinished.len(),
            "carrying on the interrupted session's unfinished work"
        );
        let mut queue = VecDeque::new();
        for command in unrecorded.into_iter().chain(unfinished) {
            match command {
                Command::Execute {
                    action_id,
                    incident_id,
                    idempotency_key,
                    action,
                } => {
                    self.in_flight.insert(action_id.clone());
                    self.effects
                        .execute(action_id, incident_id, idempotency_key, action, true);
                }
                other => self.carry_out(other, false, &mut queue),
            }
        }
        for at in wakes {
            if self.wakes.insert(at) {
                self.effects.wake_at(at);
            }
        }
        while let Some(event) = queue.pop_front() {
            self.process(event, false).await?;
        }
        Ok(())
    }

    /// Handles a batch of pushed payloads, records each event and the commands it caused in
    /// one transaction (in the order handled, so replay sees what the engine saw), confirms
    /// every push with what the engine made of it (`Engine::push_report`), then carries the
    /// commands out and processes what they cause inline.
    async fn process_pushes(&mut self, batch: Vec<(Pushed, Ack)>) -> anyhow::Result<()> {
        let now = self.clock.now();
        let mut handled: Vec<(Event, Vec<Command>)> = Vec::with_capacity(batch.len());
        let mut acks = Vec::with_capacity(batch.len());
        for (payload, ack) in batch {
            let event = Event::Pushed { payload };
            let commands = self.engine.handle(&event, now);
            let report = self.engine.push_report().cloned().unwrap_or_default();
            handled.push((event, commands));
            acks.push((ack, report));
        }
        let recorded = self.append_handled(&handled, now).await;
        let failed = recorded.as_ref().err().map(|error| format!("{error:#}"));
        for (ack, report) in acks {
            let _ = ack.send(failed.clone().map_or(Ok(report), Err));
        }
        let event_seqs = recorded?;
        self.publish_engine_gauges();
        let mut queue = VecDeque::new();
        for ((event, commands), event_seq) in handled.into_iter().zip(event_seqs) {
            self.telemetry.event(event.kind());
            let _ = self.notes.send(Note {
                seq: event_seq,
                at: now,
                body: note_of_push(event),
            });
            for (offset, command) in (1_u64..).zip(&commands) {
                self.telemetry.command(command_kind(command));
                log_record(command);
                let _ = self.notes.send(Note {
                    seq: event_seq + offset,
                    at: now,
                    body: NoteBody::Command(Box::new(command.clone())),
                });
            }
            for command in commands {
                self.carry_out(command, false, &mut queue);
            }
        }
        while let Some(event) = queue.pop_front() {
            self.process(event, false).await?;
        }
        Ok(())
    }

    /// Appends handled events, each followed by its commands, in one transaction; returns
    /// the events' seqs. The entries are rebuilt on every attempt, so that the commands'
    /// `caused_by` follows the seqs the ledger actually assigns.
    async fn append_handled(
        &mut self,
        handled: &[(Event, Vec<Command>)],
        now: Timestamp,
    ) -> anyhow::Result<Vec<u64>> {
        let event_seqs = |first_seq: u64| {
            let mut next_seq = first_seq;
            handled
                .iter()
                .map(|(_, commands)| {
                    let seq = next_seq;
                    next_seq += 1 + commands.len() as u64;
                    seq
                })
                .collect::<Vec<u64>>()
        };
        let appended = self
            .append_built(|first_seq| {
                let mut entries = Vec::new();
                for ((event, commands), seq) in handled.iter().zip(event_seqs(first_seq)) {
                    entries.push(session::event_entry(event, now.0, None)?);
                    entries.extend(session::command_entries(commands, seq, now.0)?);
                }
                Ok(entries)
            })
            .await?;
        Ok(event_seqs(appended.first().map_or(0, |entry| entry.seq)))
    }

    /// Records and handles one event and everything it causes inline.
    async fn process(&mut self, event: Event, draining: bool) -> anyhow::Result<()> {
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let now = self.clock.now();
            let exchanges_blob = match &event {
                Event::ActionFinished { action_id: id, .. }
                | Event::PageFinished { page_id: id, .. } => self.effects.take_exchanges(id),
                _ => None,
            };
            let entry = session::event_entry(&event, now.0, exchanges_blob)?;
            let event_seq = self
                .append(vec![entry])
                .await?
                .first()
                .map_or(0, |entry| entry.seq);
            self.telemetry.event(event.kind());
            match &event {
                Event::ActionFinished { action_id: id, .. }
                | Event::PageFinished { page_id: id, .. } => {
                    self.in_flight.remove(id);
                }
                Event::Tick => self.wakes.retain(|at| *at > now),
                Event::Scraped { .. }
                | Event::Queried { .. }
                | Event::ScrapeFailed { .. }
                | Event::AuthorizationDecided { .. }
                | Event::HumanDecided { .. }
                | Event::Human { .. }
                | Event::ScheduledRun { .. }
                | Event::Pushed { .. } => {}
            }
            let _ = self.notes.send(Note {
                seq: event_seq,
                at: now,
                body: NoteBody::Event(event.clone()),
            });

            let commands = self.engine.handle(&event, now);
            self.publish_engine_gauges();
            if commands.is_empty() {
                continue;
            }
            let entries = session::command_entries(&commands, event_seq, now.0)?;
            let appended = self.append(entries).await?;
            for (command, entry) in commands.iter().zip(&appended) {
                self.telemetry.command(command_kind(command));
                log_record(command);
                let _ = self.notes.send(Note {
                    seq: entry.seq,
                    at: now,
                    body: NoteBody::Command(Box::new(command.clone())),
                });
            }
            for command in commands {
                self.carry_out(command, draining, &mut queue);
            }
        }
        Ok(())
    }

    /// Hands the engine's counts to `/metrics`.
    fn publish_engine_gauges(&self) {
        let stats = self.engine.stats();
        self.telemetry.engine_gauges(
            stats.n_open_incidents,
            stats.n_series,
            self.engine.series_refused_by_source(),
        );
    }

    fn carry_out(&mut self, command: Command, draining: bool, queue: &mut VecDeque<Event>) {
        match command {
            Command::Record(_) => {}
            Command::Authorize {
                request_id,
                incident_id,
                request,
            } => {
                let decision = self.authorizer.authorize(&request);
                queue.push_back(Event::AuthorizationDecided {
                    request_id,
                    incident_id,
                    decision,
                });
            }
            Command::AuthorizeHuman {
                request_id,
                incident_id,
                request,
            } => {
                let decision = self.authorizer.authorize_human(&request);
                queue.push_back(Event::HumanDecided {
                    request_id,
                    incident_id,
                    decision,
                });
            }
            Command::Execute {
                action_id,
                incident_id,
                idempotency_key,
                action,
            } => {
                if draining {
                    self.not_started.push(action_id);
                } else {
                    self.in_flight.insert(action_id.clone());
                    self.effects
                        .execute(action_id, incident_id, idempotency_key, action, false);
                }
            }
            Command::Page {
                page_id,
                incident_id,
                page,
            } => {
                if draining {
                    self.not_started.push(page_id);
                } else {
                    self.in_flight.insert(page_id.clone());
                    self.effects.page(page_id, incident_id, page);
                }
            }
            Command::WakeAt { at } => {
                if self.wakes.insert(at) {
                    self.effects.wake_at(at);
                }
            }
        }
    }

    /// Appends durably, retrying a few times; gives up with an error (stopping the daemon)
    /// rather than act on something it could not record.
    async fn append(&mut self, entries: Vec<NewEntry>) -> anyhow::Result<Vec<Entry>> {
        self.append_built(|_| Ok(entries.as_slice())).await
    }

    /// Appends the entries `build` makes for the ledger's next seq, retried a few times; the
    /// entries are built again for each attempt, since a failed append may have moved the
    /// head.
    async fn append_built<B: AsRef<[NewEntry]>>(
        &mut self,
        build: impl Fn(u64) -> Result<B, serde_json::Error>,
    ) -> anyhow::Result<Vec<Entry>> {
        let mut attempt = 1;
        loop {
            let entries = build(self.ledger.len())?;
            match self.ledger.append(entries.as_ref()).await {
                Ok(appended) => {
                    self.telemetry.ledger_appended(self.ledger.len());
                    return Ok(appended);
                }
                Err(error) if attempt < APPEND_ATTEMPTS => {
                    self.telemetry.ledger_append_failed();
                    tracing::warn!(%error, attempt, "ledger append failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(error) => {
                    self.telemetry.ledger_append_failed();
                    return Err(error).context(
                        "the ledger refused an append; vigil stops rather than act unrecorded",
                    );
                }
            }
        }
    }
}

/// The note of a handled push: its kind and size, not its payload (see [`NoteBody::Pushed`]).
fn note_of_push(event: Event) -> NoteBody {
    match event {
        Event::Pushed { payload } => NoteBody::Pushed {
            kind: payload.kind(),
            n_items: payload.n_items(),
        },
        other => NoteBody::Event(other),
    }
}

/// Decisions an operator should see in the log as well as in the ledger. Every value that
/// came from outside (a pushed prompt name, a scraped label, a person's name or reason) is
/// escaped, so that it cannot break a log line or forge one.
fn log_record(command: &Command) {
    let Command::Record(record) = command else {
        return;
    };
    // The words are the record's own (`Record::describe`), escaped like every client text;
    // the fields name what the line is about.
    let description = record.describe();
    let what = Escaped(&description);
    match record {
        // Once per episode; the metric counts every refused series.
        Record::SeriesRefused {
            source,
            n_refused,
            n_series,
            example,
        } => tracing::warn!(
            source = %Escaped(source),
            n_series,
            n_refused,
            example = %Escaped(example),
            "cardinality limit reached: new series of this source are refused until it has room again (vigil_series_refused_total counts them)"
        ),
        Record::FindingRaised { finding } => {
            tracing::info!(fingerprint = %Escaped(&finding.fingerprint), severity = finding.severity.as_str(), %what, "finding raised");
        }
        Record::IncidentOpened {
            incident_id,
            fingerprint,
            ..
        } => {
            tracing::info!(%incident_id, fingerprint = %Escaped(fingerprint), %what, "incident opened");
        }
        Record::IncidentResolved { incident_id, .. } => {
            tracing::info!(%incident_id, %what, "incident resolved");
        }
        Record::IncidentEscalated { incident_id, .. } => {
            tracing::warn!(%incident_id, %what, "incident escalated to a human");
        }
        Record::VersionChanged { change } => {
            tracing::info!(detector = %Escaped(&change.detector), %what, "version changed");
        }
        Record::StepProposed {
            incident_id,
            proposal_id,
            ..
        } => {
            tracing::warn!(%incident_id, %proposal_id, %what, "step proposed; `vigil approve` or `vigil reject` it");
        }
        Record::HumanAction {
            by,
            reason,
            accepted,
            credential_id,
            ..
        } => {
            tracing::info!(
                by = %Escaped(by),
                credential = %Escaped(credential_id.as_deref().unwrap_or("-")),
                reason = %Escaped(reason),
                accepted,
                %what,
                "human action"
            );
        }
        Record::FindingCleared { .. }
        | Record::Diagnosed { .. }
        | Record::RunbookSelected { .. }
        | Record::StepDenied { .. }
        | Record::GuardrailHeld { .. }
        | Record::VerificationStarted { .. }
        | Record::VerificationPassed { .. }
        | Record::VerificationFailed { .. }
        | Record::CompensationStarted { .. } => {}
    }
}

fn command_kind(command: &Command) -> &'static str {
    match command {
        Command::Record(_) => "record",
        Command::Authorize { .. } => "authorize",
        Command::AuthorizeHuman { .. } => "authorize_human",
        Command::Execute { .. } => "execute",
        Command::Page { .. } => "page",
        Command::WakeAt { .. } => "wake_at",
    }
}
