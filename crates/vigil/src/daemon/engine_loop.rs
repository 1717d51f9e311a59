//! The engine task: the only owner of the engine and the ledger.
//!
//! For each event (or batch of pushed payloads): take one [`journal::step`] (the engine
//! handles it, Cedar answers its authorization requests inline and the answers go back to
//! the engine), append everything the step handled, each event followed by its commands, in
//! one transaction (durable), then carry the commands out. Nothing reaches the world before
//! its intent is in the ledger, and a decision is recorded right after the request that asked
//! for it.
//!
//! The engine sees an event before the event is durable; what makes that safe is that nothing
//! the engine made of it is acted on, acknowledged or published until the step's one
//! transaction commits, and a crash before the commit leaves the ledger as if the event never
//! came (an action's lost answer is then recovered by reading its target back). Recording the
//! event first would cost a second transaction per event, and per push in a batch, since the
//! ledger keeps every event's commands right after it (replay and recovery check that).

use std::collections::BTreeSet;
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

use super::admin::{Instruction, InstructionAnswer, ProposalsRequest};
use super::checkpointer::{CheckpointRequest, Checkpointer};
use super::effects::Effects;
use super::intake::Ack;
use super::telemetry::{Telemetry, TimedCedar};
use super::{Note, NoteBody};
use crate::bundle::PolicyTexts;
use crate::clock::Clock;
use crate::journal::{self, SessionRecord};
use crate::logsafe::Escaped;

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
    /// The open batch of scrapes that issued no command (`journal::scrape_batch`): appended
    /// before any other entry, or when full.
    pub(super) scrapes: journal::ScrapeBatcher,
    /// Signs the ledger's checkpoints, when configured.
    pub(super) checkpointer: Option<Checkpointer>,
    /// Checkpoints asked for through the admin API.
    pub(super) checkpoint_requests: mpsc::Receiver<CheckpointRequest>,
    /// Pushed payloads, each confirmed once its event is in the ledger.
    pub(super) pushes: mpsc::Receiver<(Pushed, Ack)>,
    /// Pushes drained from the replicated ledger's inbox (the leader of replicas), each with
    /// its inbox id, which the append that records its event consumes.
    pub(super) drained: mpsc::Receiver<(Pushed, Ack, i64)>,
    /// People's instructions from the admin API, each answered with its own outcome.
    pub(super) instructions: mpsc::Receiver<Instruction>,
    /// The admin API's requests for the pending proposals, answered from the engine's state.
    pub(super) proposal_requests: mpsc::Receiver<ProposalsRequest>,
    /// The console's requests for the engine's view (proposals, controls, a ledger reader).
    pub(super) view_requests: mpsc::Receiver<super::console::ViewRequest>,
    /// The assistant's tool calls, answered read-only from the engine's state and the ledger.
    pub(super) tool_requests: mpsc::Receiver<super::assistant::ToolRequest>,
    /// People's questions (`vigil ask`), answered with the task the model reads.
    pub(super) questions: mpsc::Receiver<super::assistant::QuestionRequest>,
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
                    self.process_pushes(batch, Vec::new()).await?;
                }
                Some(first) = self.drained.recv(), if !draining => {
                    // As above, for pushes from the inbox: the append consumes their rows.
                    let mut n_items = first.0.n_items();
                    let mut batch = vec![first];
                    while batch.len() < PUSH_BATCH && n_items < PUSH_BATCH_ITEMS {
                        match self.drained.try_recv() {
                            Ok(next) => {
                                n_items += next.0.n_items();
                                batch.push(next);
                            }
                            Err(_) => break,
                        }
                    }
                    let mut pushes = Vec::with_capacity(batch.len());
                    let mut consumed = Vec::with_capacity(batch.len());
                    for (payload, ack, inbox_id) in batch {
                        pushes.push((payload, ack));
                        consumed.push(inbox_id);
                    }
                    self.process_pushes(pushes, consumed).await?;
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
                Some(instruction) = self.instructions.recv() => {
                    // While draining, an instruction is not taken; dropping its reply tells
                    // the admin API that the engine did not answer.
                    if !draining {
                        self.answer_instruction(instruction).await?;
                    }
                }
                Some(reply) = self.proposal_requests.recv() => {
                    let _ = reply.send(self.engine.pending_proposals());
                }
                Some(reply) = self.view_requests.recv() => {
                    let _ = reply.send(super::console::EngineView {
                        proposals: self.engine.pending_proposals(),
                        controls: self.engine.controls(self.clock.now()),
                        ledger: self.ledger.reader(),
                        policy_set_hash: self.authorizer.policy_set_hash().to_string(),
                        runbooks: self
                            .engine
                            .config()
                            .runbooks
                            .iter()
                            .map(|runbook| runbook.id.clone())
                            .collect(),
                        detectors: self
                            .engine
                            .config()
                            .detectors
                            .iter()
                            .map(|detector| detector.name().to_owned())
                            .collect(),
                    });
                }
                Some(question) = self.questions.recv() => {
                    let _ = question.reply.send(self.engine.question_task(&question.question));
                }
                Some(request) = self.tool_requests.recv() => {
                    let now = self.clock.now();
                    let output = super::assistant::answer(
                        &self.engine,
                        &self.ledger,
                        request.call,
                        now,
                        request.max_bytes,
                    )
                    .await;
                    let _ = request.reply.send(output);
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
        let entry = journal::session_entry(&record, now.0)?;
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
        let policies_blob = journal::record_policies(&self.ledger, texts)
            .await
            .context("recording the reloaded policies")?;
        let record = SessionRecord::PoliciesReloaded {
            policy_set_hash: authorizer.policy_set_hash().to_owned(),
            policies_blob,
        };
        let now = self.clock.now();
        let entry = journal::session_entry(&record, now.0)?;
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

    /// Carries on what an interrupted session left unfinished (see `journal/recovery.rs`):
    /// records the commands the crash kept out of the ledger, then carries out those and the
    /// ones whose answer never came. Actions are reconciled with their target first; an
    /// authorization request still unanswered is answered now, and the answer stepped.
    pub(super) async fn carry_on(
        &mut self,
        unrecorded: Vec<Command>,
        caused_by: u64,
        unfinished: Vec<Command>,
        wakes: Vec<Timestamp>,
    ) -> anyhow::Result<()> {
        if !unrecorded.is_empty() {
            let now = self.clock.now();
            let entries = journal::command_entries(&unrecorded, caused_by, now.0)?;
            self.append(entries).await?;
        }
        tracing::warn!(
            n_unrecorded = unrecorded.len(),
            n_unfinished = unfinished.len(),
            "carrying on the interrupted session's unfinished work"
        );
        let mut answers = Vec::new();
        for command in unrecorded.into_iter().chain(unfinished) {
            if let Some(answer) = journal::answer(&self.authorizer, &command) {
                answers.push(answer);
                continue;
            }
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
                other => self.carry_out(other, false),
            }
        }
        for at in wakes {
            if self.wakes.insert(at) {
                self.effects.wake_at(at);
            }
        }
        for answer in answers {
            self.process(answer, false).await?;
        }
        Ok(())
    }

    /// Records and handles a person's instruction, then answers it with the
    /// `Record::HumanAction` its own step produced (Cedar's decision on it included, which the
    /// step answers inline), once that is in the ledger.
    async fn answer_instruction(&mut self, instruction: Instruction) -> anyhow::Result<()> {
        let Instruction { event, reply } = instruction;
        let (steps, recorded) = self.step_and_record(vec![(event, None)], &[]).await;
        let (now, event_seqs) = recorded?;
        let answer = steps
            .iter()
            .flat_map(|taken| &taken.handled)
            .flat_map(|(_, commands)| commands)
            .find_map(|command| match command {
                Command::Record(Record::HumanAction {
                    accepted, outcome, ..
                }) => Some(InstructionAnswer {
                    accepted: *accepted,
                    outcome: outcome.clone(),
                }),
                _ => None,
            });
        if let Some(answer) = answer {
            let _ = reply.send(answer);
        }
        self.carry_out_steps(steps, &event_seqs, now, false);
        Ok(())
    }

    /// Steps a batch of pushed payloads and records them in one transaction (see
    /// [`Self::step_and_record`]), then confirms every push with what the engine made of it
    /// (`Engine::push_report`), or with the error that stops the daemon, and carries out the
    /// commands.
    async fn process_pushes(
        &mut self,
        batch: Vec<(Pushed, Ack)>,
        consumed: Vec<i64>,
    ) -> anyhow::Result<()> {
        let mut events = Vec::with_capacity(batch.len());
        let mut acks = Vec::with_capacity(batch.len());
        for (payload, ack) in batch {
            events.push((Event::Pushed { payload }, None));
            acks.push(ack);
        }
        let (steps, recorded) = self.step_and_record(events, &consumed).await;
        let failed = recorded.as_ref().err().map(|error| format!("{error:#}"));
        for (ack, taken) in acks.into_iter().zip(&steps) {
            let report = taken.push_report.clone().unwrap_or_default();
            let _ = ack.send(failed.clone().map_or(Ok(report), Err));
        }
        let (now, event_seqs) = recorded?;
        self.carry_out_steps(steps, &event_seqs, now, false);
        Ok(())
    }

    /// Steps one event (with the blob of the HTTP exchanges behind it, for an action's or a
    /// page's answer), records it in one transaction and carries out its commands.
    async fn process(&mut self, event: Event, draining: bool) -> anyhow::Result<()> {
        let exchanges_blob = match &event {
            Event::ActionFinished { action_id: id, .. }
            | Event::PageFinished { page_id: id, .. } => self.effects.take_exchanges(id),
            _ => None,
        };
        let (steps, recorded) = self
            .step_and_record(vec![(event, exchanges_blob)], &[])
            .await;
        let (now, event_seqs) = recorded?;
        self.carry_out_steps(steps, &event_seqs, now, draining);
        Ok(())
    }

    /// Takes one [`journal::step`] per event, at one `now`, and appends every handled event
    /// followed by its commands in one transaction (in the order handled, so replay sees what
    /// the engine saw). Returns the steps, and the `now` and the seq of every handled event
    /// once they are in the ledger. Nothing of a step is carried out before it is recorded.
    async fn step_and_record(
        &mut self,
        events: Vec<(Event, Option<String>)>,
        consumed: &[i64],
    ) -> (Vec<journal::Step>, anyhow::Result<(Timestamp, Vec<u64>)>) {
        let now = self.clock.now();
        let mut steps = Vec::with_capacity(events.len());
        let mut blobs = Vec::with_capacity(events.len());
        for (event, exchanges_blob) in events {
            // `journal::step`'s Cedar answers, each decision timed for `/metrics`.
            steps.push(journal::step_with(
                &mut self.engine,
                &mut TimedCedar::new(&self.authorizer, &self.telemetry),
                event,
                now,
            ));
            blobs.push(exchanges_blob);
        }
        self.publish_engine_gauges();
        let recorded = self
            .append_handled(&steps, &blobs, now, consumed)
            .await
            .map(|event_seqs| (now, event_seqs));
        (steps, recorded)
    }

    /// Tells `/metrics`, the notes and the log about recorded steps, and carries out their
    /// commands; the inline answers were given by the step.
    fn carry_out_steps(
        &mut self,
        steps: Vec<journal::Step>,
        event_seqs: &[u64],
        now: Timestamp,
        draining: bool,
    ) {
        let handled = steps.into_iter().flat_map(|taken| taken.handled);
        for ((event, commands), event_seq) in handled.zip(event_seqs.iter().copied()) {
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
                | Event::InvestigationFinished { .. }
                | Event::Pushed { .. } => {}
            }
            let _ = self.notes.send(Note {
                seq: event_seq,
                at: now,
                body: note_of_push(event),
            });
            for (offset, command) in (1_u64..).zip(&commands) {
                self.telemetry.command(command_kind(command));
                self.telemetry.recorded(command);
                if let Command::Record(Record::InvestigationChecked { checked, .. }) = command {
                    self.telemetry.claims_checked(checked);
                }
                log_record(command);
                let _ = self.notes.send(Note {
                    seq: event_seq + offset,
                    at: now,
                    body: NoteBody::Command(Box::new(command.clone())),
                });
            }
            for command in commands {
                self.carry_out(command, draining);
            }
        }
    }

    /// Appends the steps' entries ([`journal::step_entries`]) in one transaction; returns
    /// the seqs of the handled events, in order. The entries are rebuilt on every attempt, so
    /// that the commands' `caused_by` follows the seqs the ledger actually assigns.
    async fn append_handled(
        &mut self,
        steps: &[journal::Step],
        blobs: &[Option<String>],
        now: Timestamp,
        consumed: &[i64],
    ) -> anyhow::Result<Vec<u64>> {
        // A scrape that issued no command waits in the open batch, which takes the next seq.
        if let [taken] = steps
            && self.scrapes.hold(&taken.handled, now.0)
        {
            let batch_seq = self.ledger.len();
            if self.scrapes.is_due() {
                self.append_scrapes().await?;
            }
            return Ok(vec![batch_seq; taken.handled.len()]);
        }
        // A scrape that issued commands is recorded at once, coded as a batch of its own.
        let coded = match steps {
            [taken] => {
                if !self.scrapes.is_empty() {
                    self.append_scrapes().await?;
                }
                self.scrapes.code_scrape(&taken.handled, now.0)?
            }
            _ => None,
        };
        if let Some(series) = coded.as_ref().and_then(|coded| coded.series.as_ref()) {
            self.ledger
                .put_blob(series)
                .await
                .context("storing the series of a scrape")?;
        }
        let coded_entry = coded.map(|coded| coded.entry);
        let event_seqs = |first_seq: u64| {
            let mut next_seq = first_seq;
            steps
                .iter()
                .flat_map(|taken| &taken.handled)
                .map(|(_, commands)| {
                    let seq = next_seq;
                    next_seq += 1 + commands.len() as u64;
                    seq
                })
                .collect::<Vec<u64>>()
        };
        let appended = self
            .append_built(consumed, |first_seq| {
                let mut entries = Vec::new();
                for (taken, blob) in steps.iter().zip(blobs) {
                    let seq = first_seq + entries.len() as u64;
                    entries.extend(journal::step_entries(
                        &taken.handled,
                        seq,
                        now.0,
                        blob.clone(),
                    )?);
                }
                if let (Some(coded), Some(first)) = (&coded_entry, entries.first_mut()) {
                    first.clone_from(coded);
                }
                Ok(entries)
            })
            .await?;
        Ok(event_seqs(appended.first().map_or(0, |entry| entry.seq)))
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

    /// Carries out a recorded command. Authorization requests were answered inline by
    /// [`journal::step`] (or by `carry_on`), so nothing is left to do for them here.
    fn carry_out(&mut self, command: Command, draining: bool) {
        match command {
            Command::Record(_) | Command::Authorize { .. } | Command::AuthorizeHuman { .. } => {}
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
            // A resolution is sent once, when recorded; one lost in a crash is not resent
            // (the incident it closes has ended either way).
            Command::ResolvePage {
                incident_id,
                title,
                summary,
            } => {
                if !draining {
                    self.effects.resolve_page(incident_id, title, summary);
                }
            }
            // Sent once, when recorded, like a resolution.
            Command::Notify {
                incident_id,
                notice,
            } => {
                if !draining {
                    self.effects.notify(incident_id, notice);
                }
            }
            // Read-only and not waited for: not started while draining (a resumed session
            // runs it again).
            Command::Investigate {
                investigation_id,
                request,
            } => {
                if !draining {
                    self.effects.investigate(investigation_id, *request);
                }
            }
            // Sent once, when recorded, like a resolution.
            Command::UpdatePage {
                incident_id,
                title,
                note,
            } => {
                if !draining {
                    self.effects.update_page(incident_id, title, *note);
                }
            }
            Command::WakeAt { at } => {
                if self.wakes.insert(at) {
                    self.effects.wake_at(at);
                }
            }
        }
    }

    /// Appends the open batch of scrapes, if any, in a transaction of its own (its series
    /// blob stored first).
    async fn append_scrapes(&mut self) -> anyhow::Result<()> {
        let Some(closed) = self.scrapes.close()? else {
            return Ok(());
        };
        if let Some(series) = &closed.series {
            self.ledger
                .put_blob(series)
                .await
                .context("storing the series of a batch of scrapes")?;
        }
        self.append(vec![closed.entry]).await.map(|_| ())
    }

    /// Appends durably, retrying a few times; gives up with an error (stopping the daemon)
    /// rather than act on something it could not record.
    async fn append(&mut self, entries: Vec<NewEntry>) -> anyhow::Result<Vec<Entry>> {
        self.append_built(&[], |_| Ok(entries.as_slice())).await
    }

    /// Appends the entries `build` makes for the ledger's next seq, retried a few times; the
    /// entries are built again for each attempt, since a failed append may have moved the
    /// head.
    async fn append_built<B: AsRef<[NewEntry]>>(
        &mut self,
        consumed: &[i64],
        build: impl Fn(u64) -> Result<B, serde_json::Error>,
    ) -> anyhow::Result<Vec<Entry>> {
        // The open batch of scrapes goes first, in its place in the order of events.
        if !self.scrapes.is_empty() {
            Box::pin(self.append_scrapes()).await?;
        }
        let mut attempt = 1;
        loop {
            let entries = build(self.ledger.len())?;
            let started = tokio::time::Instant::now();
            let appended = self
                .ledger
                .append_consuming(entries.as_ref(), consumed)
                .await;
            self.telemetry.ledger_append_took(started.elapsed());
            match appended {
                Ok(appended) => {
                    self.telemetry.ledger_appended(self.ledger.len());
                    return Ok(appended);
                }
                // Another replica leads now: retrying cannot help, and nothing of this step
                // may be carried out. The term ends (`daemon/replica/`).
                Err(error @ vigil_ledger::LedgerError::Fenced { .. }) => {
                    self.telemetry.ledger_append_failed();
                    self.telemetry.append_fenced();
                    return Err(error).context(
                        "the ledger fenced this replica off (another replica leads now); it stops acting",
                    );
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
        Record::FindingJoined {
            incident_id,
            fingerprint,
            ..
        } => {
            tracing::info!(%incident_id, fingerprint = %Escaped(fingerprint), %what, "finding joined an open incident");
        }
        Record::TopologyGrew {
            source,
            n_refused_nodes,
            n_refused_edges,
            ..
        } if *n_refused_nodes > 0 || *n_refused_edges > 0 => {
            tracing::warn!(source = %Escaped(source), n_refused_nodes, n_refused_edges, %what, "topology limit reached: new nodes and edges are refused");
        }
        Record::TopologyGrew { .. } => {
            tracing::debug!(%what, "topology grew");
        }
        Record::OwnerNotified {
            incident_id,
            notice,
        } => {
            tracing::info!(%incident_id, owner = %Escaped(&notice.owner), %what, "owner told of vigil's change");
        }
        Record::PageResolved { incident_id, .. } => {
            tracing::info!(%incident_id, %what, "incident ended after its page; resolving the page");
        }
        Record::EffectMeasured { incident_id, .. } => {
            tracing::info!(%incident_id, %what, "effect of a fix measured");
        }
        Record::InvestigationChecked {
            investigation_id, ..
        } => {
            tracing::info!(investigation = %Escaped(investigation_id), %what, "the assistant's answer was checked");
        }
        Record::InvestigationFailed {
            investigation_id, ..
        } => {
            tracing::warn!(investigation = %Escaped(investigation_id), %what, "the assistant gave no answer");
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
        Command::ResolvePage { .. } => "resolve_page",
        Command::Notify { .. } => "notify",
        Command::Investigate { .. } => "investigate",
        Command::UpdatePage { .. } => "update_page",
        Command::WakeAt { .. } => "wake_at",
    }
}
