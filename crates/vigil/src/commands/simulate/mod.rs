//! `vigil simulate SCENARIO.yaml [--json] [--check]`: a game day on a virtual clock.
//!
//! The scenario names a vigil config (its detectors, runbooks and Cedar policies, loaded and
//! checked exactly as `vigil serve` loads them) and defines a simulated AI stack: series that
//! evolve on a script, pushed payloads, how the stack answers each action, and what people
//! do. The simulator runs vigil's real engine and real Cedar authorizer on a virtual clock:
//! it scrapes the stack every `scrape_interval_secs`, hands every event to the engine with
//! the simulated time, answers its commands as the daemon's runtime would (authorizations at
//! once, actions and pages a moment later, wake-ups at their time), and prints the timeline.
//! What it replaces is the runtime's I/O: sockets, the ledger and the wall clock. An hour of
//! simulated time takes well under a second.
//!
//! With `--json`, one JSON object per line: `t` (seconds since the start), `kind` (`finding`,
//! `incident`, `diagnosis`, `decision`, `proposal`, `action`, `verification`,
//! `compensation`, `page`, `resolved`) and details. With `--check`, the exit code says
//! whether the scenario's `expect` was met (1, listing every difference, when not).

mod assistant;
mod payloads;
mod scenario;
mod score;
mod tally;
mod world;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::{Value, json};
use vigil_core::Timestamp;
use vigil_core::authz::Effect;
use vigil_core::engine::{Command, Engine, Event, Record};
use vigil_core::intake::{self, Pushed};
use vigil_core::people::{CredentialKind, HumanCommand, KillScope, Principal, normalize_name};
use vigil_core::problem::Problems;
use vigil_policy::Authorizer;

use anyhow::Context as _;

use crate::bundle;
use crate::config;
use crate::journal;
use scenario::{RawHumanCommand, RawPush, RawScenario};
use tally::Tally;
use world::{World, secs_to_ms};

/// The simulated clock starts here: 2026-01-01T00:00:00Z.
const EPOCH_MS: i64 = 1_767_225_600_000;
/// How long an action takes to answer.
const ACTION_MS: i64 = 200;
/// How long a page takes to be delivered.
const PAGE_MS: i64 = 100;

/// `vigil simulate` arguments.
#[derive(Debug, Clone)]
pub struct SimulateArgs {
    /// The scenario file.
    pub scenario: PathBuf,
    /// One JSON object per line instead of the human timeline.
    pub json: bool,
    /// Exit 1 when the outcome differs from the scenario's `expect`.
    pub check: bool,
    /// Write the run's ledger here, as the daemon would have written it, so that `vigil
    /// replay` can check every incident of a game day: a SQLite file (replaced if it exists)
    /// or a PostgreSQL schema (which must hold no ledger yet).
    pub ledger: Option<vigil_ledger::LedgerLocation>,
    /// Print nothing but problems and `--check`'s differences.
    pub quiet: bool,
}

/// Runs a scenario; exit 0, or 1 when `--check` found a difference, or 2 when the scenario
/// or its config is invalid.
pub async fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let Some(loaded) = load(&args.scenario) else {
        return Ok(ExitCode::from(2));
    };
    let Loaded {
        scenario,
        mut bundle,
    } = loaded;
    let sim_assistant = match &scenario.assistant {
        Some(play) => Some(assistant::SimAssistant::start(play, &mut bundle.engine).await?),
        None => None,
    };
    let recorder = match &args.ledger {
        Some(path) => Some(Recorder::open(path, &bundle).await?),
        None => None,
    };
    let mut simulation = Simulation::new(
        bundle,
        &scenario,
        Output::new(args.json, args.quiet, &scenario),
        recorder.is_some(),
    );
    simulation.assistant = sim_assistant;
    simulation.blobs = recorder
        .as_ref()
        .map(|recorder| recorder.ledger.blob_store());
    simulation.run(&scenario).await?;
    if let (Some(recorder), Some(journal)) = (recorder, simulation.journal.take()) {
        let end_ms = EPOCH_MS + secs_to_ms(scenario.duration_secs);
        let n_entries = recorder.finish(journal, end_ms).await?;
        if !args.json && !args.quiet {
            println!(
                "ledger: {n_entries} entries written to {}; check an incident with `vigil replay --db {} --incident ID`",
                recorder_path(args),
                recorder_path(args)
            );
        }
    }
    let differences = if args.check {
        simulation.tally.check(&scenario)
    } else {
        Vec::new()
    };
    if !args.json {
        simulation.out.summary(&simulation.tally);
        if let (Some(assistant), Some(play), false) =
            (&simulation.assistant, &scenario.assistant, args.quiet)
        {
            println!(
                "assistant: played `{}` by the OpenAI fake, which answered {} requests",
                play.play,
                assistant.n_requests()
            );
        }
    }
    if differences.is_empty() {
        if args.check && !args.json && !args.quiet {
            println!("check: the outcome is as expected");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("check: {} difference(s) from `expect`:", differences.len());
        for difference in &differences {
            eprintln!("  {difference}");
        }
        Ok(ExitCode::FAILURE)
    }
}

pub use score::score;

/// A scenario read, checked and ready to play, with the config it runs.
struct Loaded {
    scenario: RawScenario,
    bundle: bundle::Bundle,
}

/// Reads and checks the scenario at `path` and loads its config; `None` when either has
/// problems, which are printed (with the file, the line and the key).
fn load(path: &Path) -> Option<Loaded> {
    let name = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) => {
            eprintln!("{name}: cannot read the scenario: {error}");
            return None;
        }
    };
    let scenario: RawScenario = match config::parse_yaml(&text, &name) {
        Ok(scenario) => scenario,
        Err(problem) => {
            eprint!("{}", config::Problems(vec![problem]));
            return None;
        }
    };
    let mut problems = Problems::default();
    scenario.check(&mut problems);
    if let Err(found) = problems.finish(()) {
        eprint!("{}", config::locate(&name, &text, found));
        return None;
    }
    let base = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let bundle = match bundle::load(&base.join(&scenario.config)) {
        Ok(bundle) => bundle,
        Err(problems) => {
            eprint!("{problems}");
            return None;
        }
    };
    for (idx, id) in scenario.schedules.iter().enumerate() {
        let scheduled = bundle
            .engine
            .runbooks
            .iter()
            .any(|runbook| &runbook.id == id && runbook.schedule.is_some());
        if !scheduled {
            let found = vec![vigil_core::problem::Problem::new(
                format!("schedules[{idx}]"),
                format!("the config has no scheduled runbook `{id}`"),
            )];
            eprint!("{}", config::locate(&name, &text, found));
            return None;
        }
    }
    let known: Vec<&str> = bundle
        .engine
        .sources
        .iter()
        .map(|source| source.name.as_str())
        .collect();
    for series in &scenario.series {
        if !known.contains(&series.source.as_str()) {
            eprintln!(
                "{name}: series of source `{}`, which the config does not have",
                series.source
            );
            return None;
        }
    }
    Some(Loaded { scenario, bundle })
}

fn recorder_path(args: &SimulateArgs) -> String {
    args.ledger
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default()
}

/// A fresh SQLite ledger for a `--ledger` run, with its session entry ready.
struct Recorder {
    ledger: vigil_ledger::Ledger,
    session: crate::journal::SessionRecord,
}

impl Recorder {
    /// Opens a fresh ledger at `location` (a SQLite file is replaced; a PostgreSQL schema
    /// must be empty) and stores the bundle's texts as blobs.
    async fn open(
        location: &vigil_ledger::LedgerLocation,
        bundle: &bundle::Bundle,
    ) -> anyhow::Result<Recorder> {
        if let vigil_ledger::LedgerLocation::Sqlite { path } = location {
            crate::journal::remove_sqlite_ledger(path)?;
        }
        let ledger = vigil_ledger::Ledger::open(location)
            .await
            .with_context(|| format!("creating the ledger {location}"))?;
        anyhow::ensure!(
            ledger.is_empty(),
            "the ledger {location} already holds {} entries; a game day needs a fresh one",
            ledger.len()
        );
        let session = journal::record_bundle(&ledger, bundle).await?;
        Ok(Recorder { ledger, session })
    }

    /// Appends the session's start, the journal and the session's end in one transaction;
    /// returns the number of entries.
    async fn finish(self, mut journal: Journal, end_ms: i64) -> anyhow::Result<usize> {
        let mut ledger = self.ledger;
        // The open batch of scrapes closes at the session's end, as the daemon's does.
        let mut closed = journal::scrape_batch::BatchedEntries::default();
        journal.scrapes.close_into(&mut closed)?;
        journal.entries.append(&mut closed.entries);
        journal.blobs.append(&mut closed.blobs);
        for blob in &journal.blobs {
            ledger.put_blob(blob).await?;
        }
        let mut entries = Vec::with_capacity(journal.entries.len() + 2);
        entries.push(journal::session_entry(&self.session, EPOCH_MS)?);
        entries.extend(journal.entries);
        let end = journal::SessionRecord::SessionEnded {
            reason: "the scenario ended".to_owned(),
            interrupted: Vec::new(),
        };
        entries.push(journal::session_entry(&end, end_ms)?);
        let appended = ledger.append(&entries).await;
        ledger.close().await;
        Ok(appended?.len())
    }
}

/// Something due at a simulated time.
enum Due {
    Scrape,
    Push(usize),
    Human(usize),
    Engine(Box<Event>),
}

struct Simulation {
    engine: Engine,
    authorizer: Authorizer,
    world: World,
    out: Output,
    /// Pending proposals: id and hash, oldest first.
    proposals: Vec<(String, String)>,
    tally: Tally,
    /// What a `--ledger` run appends, as the daemon would have: each event, then its commands.
    journal: Option<Journal>,
    /// Investigations the engine asked for, with when, not yet run.
    investigations: Vec<(String, vigil_core::investigation::InvestigationRequest, i64)>,
    /// The scenario's assistant, when it has one.
    assistant: Option<assistant::SimAssistant>,
    /// Where a `--ledger` run stores the investigations' transcripts.
    blobs: Option<vigil_ledger::BlobStore>,
}

/// The ledger entries of a simulation, in order; seq 0 is the session's start.
struct Journal {
    entries: Vec<vigil_ledger::NewEntry>,
    /// The session's open batch of scrapes (`journal::scrape_batch`).
    scrapes: journal::ScrapeBatcher,
    /// The blobs the batches name, to store before the entries.
    blobs: Vec<Vec<u8>>,
}

impl Journal {
    /// Appends a step's events, each followed by the commands its handling issued, as the
    /// daemon's engine loop does (a scrape that issued none goes to the open batch).
    fn record(&mut self, handled: &[(Event, Vec<Command>)], at_ms: i64) -> anyhow::Result<()> {
        // Seq 0 is the session entry, so the first event's seq is one more than the entries
        // so far.
        let first_seq = self.entries.len() as u64 + 1;
        let mut recorded = self.scrapes.step_entries(handled, first_seq, at_ms, None)?;
        self.entries.append(&mut recorded.entries);
        self.blobs.append(&mut recorded.blobs);
        Ok(())
    }
}

impl Simulation {
    /// A simulation of `scenario` in `bundle`'s config, journaling for a ledger when
    /// `journal` is set.
    fn new(bundle: bundle::Bundle, scenario: &RawScenario, out: Output, journal: bool) -> Self {
        Simulation {
            journal: journal.then(|| Journal {
                entries: Vec::new(),
                scrapes: crate::journal::ScrapeBatcher::new(crate::journal::scrape_batching(
                    &bundle,
                )),
                blobs: Vec::new(),
            }),
            engine: Engine::new(bundle.engine),
            authorizer: bundle.authorizer,
            world: World::new(scenario),
            out,
            proposals: Vec::new(),
            tally: Tally::default(),
            investigations: Vec::new(),
            assistant: None,
            blobs: None,
        }
    }

    async fn run(&mut self, scenario: &RawScenario) -> anyhow::Result<()> {
        let end_ms = secs_to_ms(scenario.duration_secs);
        let mut agenda: BTreeMap<(i64, u64), Due> = BTreeMap::new();
        let mut seq = 0_u64;
        let mut add = |agenda: &mut BTreeMap<(i64, u64), Due>, at: i64, due: Due| {
            seq += 1;
            agenda.insert((at, seq), due);
        };
        let interval = secs_to_ms(scenario.scrape_interval_secs);
        let mut at = interval;
        while at <= end_ms {
            add(&mut agenda, at, Due::Scrape);
            at += interval;
        }
        for (idx, push) in scenario.pushes.iter().enumerate() {
            let mut at = push.at_secs;
            loop {
                add(&mut agenda, secs_to_ms(at), Due::Push(idx));
                match (push.every_secs, push.until_secs) {
                    (Some(every), Some(until)) if at + every <= until => at += every,
                    _ => break,
                }
            }
        }
        for (idx, human) in scenario.humans.iter().enumerate() {
            add(&mut agenda, secs_to_ms(human.at_secs), Due::Human(idx));
        }
        // Scheduled runbooks come due when their cron expressions say, on the virtual clock.
        for runbook in &self.engine.config().runbooks {
            let Some(expression) = &runbook.schedule else {
                continue;
            };
            if !scenario.schedules.contains(&runbook.id) {
                continue;
            }
            let schedule = crate::schedule::Schedule::parse(expression)
                .map_err(|message| anyhow::anyhow!("runbook {}: {message}", runbook.id))?;
            let mut at = Timestamp(EPOCH_MS);
            while let Some(due) = schedule.next_after(at) {
                let due_ms = due.0 - EPOCH_MS;
                if due_ms > end_ms {
                    break;
                }
                let event = Event::ScheduledRun {
                    runbook_id: runbook.id.clone(),
                };
                add(&mut agenda, due_ms, Due::Engine(Box::new(event)));
                at = due;
            }
        }
        // Bounded: every step either consumes an agenda item or is one of the finite
        // engine answers that the commands of the consumed item scheduled.
        let mut budget = 10_000_000_u64;
        loop {
            // The investigations asked for so far run now (over real HTTP to the fake); each
            // answer joins the agenda before anything later happens.
            self.investigate(&mut agenda, &mut add).await;
            let Some(((now_ms, _), due)) = agenda.pop_first() else {
                break;
            };
            budget = budget.saturating_sub(1);
            anyhow::ensure!(budget > 0, "the simulation did not converge");
            if now_ms > end_ms {
                break;
            }
            let event = match due {
                Due::Scrape => {
                    for source in self.world.sources() {
                        let samples = self.world.scrape(&source, now_ms);
                        let event = Event::Scraped {
                            source,
                            scraped_at: Timestamp(EPOCH_MS + now_ms),
                            samples,
                        };
                        self.feed(event, now_ms, &mut agenda, &mut add)?;
                    }
                    continue;
                }
                Due::Push(idx) => {
                    let Some(push) = scenario.pushes.get(idx) else {
                        continue;
                    };
                    let Some(payload) = self.pushed(idx, push, now_ms)? else {
                        continue;
                    };
                    Event::Pushed { payload }
                }
                Due::Human(idx) => {
                    let Some(human) = scenario.humans.get(idx) else {
                        continue;
                    };
                    let command = match human.command {
                        RawHumanCommand::Approve | RawHumanCommand::Reject => {
                            let Some((proposal_id, action_hash)) = self.proposals.last().cloned()
                            else {
                                self.out
                                    .note(now_ms, &format!("{}: no proposal is pending", human.by));
                                continue;
                            };
                            if human.command == RawHumanCommand::Approve {
                                HumanCommand::Approve {
                                    proposal_id,
                                    action_hash,
                                }
                            } else {
                                HumanCommand::Reject { proposal_id }
                            }
                        }
                        RawHumanCommand::Kill => HumanCommand::Kill {
                            scope: KillScope::Global,
                        },
                        RawHumanCommand::Unkill => HumanCommand::Unkill {
                            scope: KillScope::Global,
                        },
                    };
                    let principal = Principal {
                        name: normalize_name(&human.by),
                        credential_id: format!("scenario:{}", normalize_name(&human.by)),
                        via: CredentialKind::Scenario,
                        groups: human
                            .groups
                            .iter()
                            .map(|group| normalize_name(group))
                            .collect(),
                        roles: human.roles.clone(),
                    };
                    Event::Human {
                        by: principal.name.clone(),
                        reason: human.reason.clone(),
                        command,
                        principal: Some(principal),
                    }
                }
                Due::Engine(event) => *event,
            };
            self.feed(event, now_ms, &mut agenda, &mut add)?;
        }
        Ok(())
    }

    /// The payload push `idx` carries at `now_ms`: its replacement once vigil carried out the
    /// `after` action, and the evals of whichever model serves then; parsed by vigil's intake
    /// as a pushed body is.
    fn pushed(&self, idx: usize, push: &RawPush, now_ms: i64) -> anyhow::Result<Option<Pushed>> {
        let after = push
            .after
            .as_ref()
            .filter(|after| self.world.has_done(after.action));
        let (evals, spans, body) = match after {
            Some(after) => (&after.evals, &after.spans, &after.body),
            None => (&push.evals, &push.spans, &push.body),
        };
        let (kind, body) = match (evals, spans, body) {
            (Some(evals), _, _) => {
                let fallback = self.world.fallback_of(&evals.model);
                let body = payloads::evals_body(evals, fallback).map_err(|message| {
                    anyhow::anyhow!("pushes[{idx}] at {}s: {message}", now_ms / 1000)
                })?;
                ("evals", body)
            }
            (None, Some(spans), _) => {
                ("spans", payloads::spans_body(spans, idx, EPOCH_MS + now_ms))
            }
            (None, None, Some(body)) => (push.kind.as_deref().unwrap_or("evals"), body.clone()),
            (None, None, None) => return Ok(None),
        };
        let body = serde_json::to_vec(&body)?;
        let payload = match kind {
            "evals" => intake::parse_evals(&body).map(Pushed::Evals),
            "agent_runs" => intake::parse_agent_runs(&body).map(Pushed::AgentRuns),
            "spans" => intake::parse_otlp_traces(&body).map(Pushed::Spans),
            _ => intake::parse_alertmanager(&body).map(Pushed::Alerts),
        }
        .map_err(|error| anyhow::anyhow!("pushes[{idx}]: {error}"))?;
        Ok(Some(payload))
    }

    /// Takes one step with the event (the engine's rule, with Cedar's answers inline) and
    /// carries out what it asks, as the daemon would: the world's answers are scheduled.
    fn feed(
        &mut self,
        event: Event,
        now_ms: i64,
        agenda: &mut BTreeMap<(i64, u64), Due>,
        add: &mut impl FnMut(&mut BTreeMap<(i64, u64), Due>, i64, Due),
    ) -> anyhow::Result<()> {
        let taken = journal::step(
            &mut self.engine,
            &self.authorizer,
            event,
            Timestamp(EPOCH_MS + now_ms),
        );
        if let Some(journal) = &mut self.journal {
            journal.record(&taken.handled, EPOCH_MS + now_ms)?;
        }
        for (event, commands) in taken.handled {
            self.out.event(now_ms, &event, &mut self.tally);
            for command in commands {
                self.out.command(now_ms, &command, &mut self.tally);
                match command {
                    Command::Record(record) => self.note_record(&record),
                    // Answered inline by the step, as the daemon does.
                    Command::Authorize { .. } | Command::AuthorizeHuman { .. } => {}
                    Command::Execute {
                        action_id,
                        incident_id,
                        action,
                        ..
                    } => {
                        let outcome = self.world.act(&action, now_ms);
                        let event = Event::ActionFinished {
                            action_id,
                            incident_id,
                            outcome,
                        };
                        add(agenda, now_ms + ACTION_MS, Due::Engine(Box::new(event)));
                    }
                    // The simulated pager takes it; nothing answers a resolution.
                    Command::ResolvePage { .. }
                    | Command::Notify { .. }
                    | Command::UpdatePage { .. } => {}
                    Command::Investigate {
                        investigation_id,
                        request,
                    } => self
                        .investigations
                        .push((investigation_id, *request, now_ms)),
                    Command::Page {
                        page_id,
                        incident_id,
                        ..
                    } => {
                        let event = Event::PageFinished {
                            page_id,
                            incident_id,
                            delivered: true,
                            detail: "delivered to the simulated pager".to_owned(),
                        };
                        add(agenda, now_ms + PAGE_MS, Due::Engine(Box::new(event)));
                    }
                    Command::WakeAt { at } => {
                        let at_ms = (at.0 - EPOCH_MS).max(now_ms);
                        add(agenda, at_ms, Due::Engine(Box::new(Event::Tick)));
                    }
                }
            }
        }
        Ok(())
    }

    /// Runs the investigations asked for, each against the engine as it is now, and
    /// schedules each answer [`assistant::ANSWER_MS`] after it was asked for. Without an
    /// assistant (a session that had one, replayed here without), each fails at once.
    async fn investigate(
        &mut self,
        agenda: &mut BTreeMap<(i64, u64), Due>,
        add: &mut impl FnMut(&mut BTreeMap<(i64, u64), Due>, i64, Due),
    ) {
        for (investigation_id, request, asked_ms) in std::mem::take(&mut self.investigations) {
            let now = Timestamp(EPOCH_MS + asked_ms);
            let mut finished = match &self.assistant {
                Some(assistant) => assistant.investigate(&self.engine, &request, now).await,
                None => crate::investigator::Finished::unavailable(&request),
            };
            if let Some(blobs) = &self.blobs {
                let bytes = vigil_ledger::canonical_json(&finished.transcript).into_bytes();
                if let Ok(hash) = blobs.put(&bytes).await {
                    finished.set_transcript_blob(hash);
                }
            }
            let event = Event::InvestigationFinished {
                investigation_id,
                incident_id: request.incident_id.clone(),
                outcome: Box::new(finished.outcome),
            };
            add(
                agenda,
                asked_ms + assistant::ANSWER_MS,
                Due::Engine(Box::new(event)),
            );
        }
    }

    fn note_record(&mut self, record: &Record) {
        match record {
            Record::StepProposed {
                proposal_id,
                action_hash,
                ..
            } => self
                .proposals
                .push((proposal_id.clone(), action_hash.clone())),
            Record::HumanAction {
                command:
                    HumanCommand::Approve { proposal_id, .. } | HumanCommand::Reject { proposal_id },
                accepted: true,
                ..
            } => self.proposals.retain(|(id, _)| id != proposal_id),
            Record::IncidentResolved { incident_id, .. }
            | Record::IncidentEscalated { incident_id, .. } => {
                let prefix = format!("{incident_id}/");
                self.proposals.retain(|(id, _)| !id.starts_with(&prefix));
            }
            _ => {}
        }
    }
}

/// The timeline, for people or as JSON lines, or nothing.
struct Output {
    json: bool,
    quiet: bool,
}

impl Output {
    fn new(json: bool, quiet: bool, scenario: &RawScenario) -> Output {
        if !json && !quiet {
            println!(
                "scenario {}: {}",
                scenario.name,
                scenario.description.trim()
            );
            println!(
                "  {} simulated seconds, sources scraped every {}s\n",
                scenario.duration_secs, scenario.scrape_interval_secs
            );
        }
        Output { json, quiet }
    }

    fn emit(&self, now_ms: i64, kind: &str, text: &str, details: Value) {
        if self.quiet {
            return;
        }
        let t = now_ms as f64 / 1000.0;
        if self.json {
            let mut line = json!({ "t": t, "kind": kind });
            if let (Some(line), Value::Object(details)) = (line.as_object_mut(), details) {
                line.extend(details);
            }
            println!("{line}");
        } else {
            println!("{t:>8.1}s  {:<13} {text}", kind.to_uppercase());
        }
    }

    fn note(&self, now_ms: i64, text: &str) {
        if !self.json && !self.quiet {
            println!("{:>8.1}s  {:<13} {text}", now_ms as f64 / 1000.0, "NOTE");
        }
    }

    fn event(&self, now_ms: i64, event: &Event, tally: &mut Tally) {
        match event {
            Event::AuthorizationDecided {
                incident_id,
                decision,
                ..
            } => {
                let (effect, by) = describe_decision(decision, tally);
                self.emit(
                    now_ms,
                    "decision",
                    &format!("Cedar: {effect} by {by}"),
                    json!({ "incident": incident_id, "effect": effect, "policies": decision.determining_policies }),
                );
            }
            Event::ActionFinished {
                incident_id,
                outcome,
                ..
            } => self.emit(
                now_ms,
                "action",
                &format!(
                    "{}: {}",
                    if outcome.succeeded { "done" } else { "FAILED" },
                    outcome.detail
                ),
                json!({ "incident": incident_id, "succeeded": outcome.succeeded, "detail": outcome.detail }),
            ),
            Event::Human {
                by,
                command,
                ..
            } => self.emit(
                now_ms,
                "decision",
                &format!("{by}: {}", command.describe()),
                json!({ "by": by, "human": command.describe() }),
            ),
            Event::HumanDecided { decision, .. } => {
                let (effect, by) = describe_decision(decision, tally);
                self.emit(
                    now_ms,
                    "decision",
                    &format!("Cedar: {effect} the person's instruction by {by}"),
                    json!({ "effect": effect, "policies": decision.determining_policies }),
                );
            }
            Event::Pushed { payload } => {
                self.note(now_ms, &format!("pushed {} {}", payload.n_items(), payload.kind()));
            }
            Event::ScheduledRun { runbook_id } => {
                self.note(now_ms, &format!("runbook {runbook_id} came due on its schedule"));
            }
            Event::Scraped { .. }
            | Event::Queried { .. }
            | Event::ScrapeFailed { .. }
            | Event::PageFinished { .. }
            | Event::InvestigationFinished { .. }
            | Event::Tick => {}
        }
    }

    fn command(&self, now_ms: i64, command: &Command, tally: &mut Tally) {
        match command {
            Command::Record(record) => self.record(now_ms, record, tally),
            Command::Execute {
                incident_id,
                action,
                idempotency_key,
                ..
            } => {
                tally.actions.push(action.describe());
                self.emit(
                    now_ms,
                    "action",
                    &action.describe(),
                    json!({ "incident": incident_id, "action": action, "idempotency_key": idempotency_key }),
                );
            }
            Command::Page {
                incident_id, page, ..
            } => {
                tally.pages += 1;
                let cause = if page.why.cause.is_empty() {
                    String::new()
                } else {
                    format!(" / cause: {} / do: {}", page.why.cause, page.why.ask)
                };
                self.emit(
                    now_ms,
                    "page",
                    &format!("{} / why: {}{cause}", page.title, page.why.reason),
                    json!({ "incident": incident_id, "title": page.title, "reason": page.why.reason, "actions": page.why.actions, "why": page.why }),
                );
            }
            Command::Notify {
                incident_id,
                notice,
            } => self.emit(
                now_ms,
                "notification",
                &format!("told {} (owner): {}", notice.owner, notice.change),
                json!({ "incident": incident_id, "owner": notice.owner, "change": notice.change, "why": notice.why, "undo": notice.undo }),
            ),
            Command::ResolvePage {
                incident_id, title, ..
            } => self.emit(
                now_ms,
                "page",
                &format!("resolved: {title}"),
                json!({ "incident": incident_id, "title": title, "resolved": true }),
            ),
            Command::UpdatePage {
                incident_id,
                title,
                note,
            } => self.emit(
                now_ms,
                "page",
                &format!("updated: {title}: {}", note.agreement),
                json!({ "incident": incident_id, "title": title, "assistant": note }),
            ),
            Command::Investigate {
                investigation_id, ..
            } => self.emit(
                now_ms,
                "assistant",
                &format!("investigating {investigation_id}"),
                json!({ "investigation": investigation_id }),
            ),
            Command::Authorize { .. } | Command::AuthorizeHuman { .. } | Command::WakeAt { .. } => {
            }
        }
    }

    fn record(&self, now_ms: i64, record: &Record, tally: &mut Tally) {
        // The words are the record's own; the timeline adds its kind and, in JSON, the fields.
        let text = record.describe();
        match record {
            Record::FindingRaised { finding } => self.emit(
                now_ms,
                "finding",
                &text,
                json!({ "detector": finding.detector, "fingerprint": finding.fingerprint, "severity": finding.severity.as_str() }),
            ),
            Record::FindingCleared { cleared } => self.emit(
                now_ms,
                "finding",
                &text,
                json!({ "fingerprint": cleared.fingerprint, "cleared": true }),
            ),
            Record::IncidentOpened {
                incident_id,
                subject,
                ..
            } => {
                tally.opened(incident_id);
                self.emit(
                    now_ms,
                    "incident",
                    &text,
                    json!({ "incident": incident_id, "subject": subject.value }),
                );
            }
            Record::Diagnosed {
                incident_id,
                diagnosis,
            } => {
                let best = diagnosis.best();
                tally.diagnosed(incident_id, diagnosis);
                self.emit(
                    now_ms,
                    "diagnosis",
                    &text,
                    json!({
                        "incident": incident_id,
                        "hypothesis": best.map(|b| b.kind.as_str()),
                        "subject": best.and_then(|b| b.subject.as_ref()).map(|s| format!("{}={}", s.label, s.value)),
                        "confidence": best.map(|b| b.confidence),
                    }),
                );
            }
            Record::RunbookSelected {
                incident_id,
                runbook_id,
                mode,
            } => self.emit(
                now_ms,
                "decision",
                &text,
                json!({ "incident": incident_id, "runbook": runbook_id, "mode": mode.as_str() }),
            ),
            Record::GuardrailHeld {
                incident_id,
                guardrail,
                detail,
            } => {
                tally.guardrails.push(guardrail.clone());
                self.emit(
                    now_ms,
                    "decision",
                    &text,
                    json!({ "incident": incident_id, "guardrail": guardrail, "detail": detail }),
                );
            }
            Record::StepProposed {
                incident_id,
                proposal_id,
                action,
                why,
                ..
            } => {
                tally.proposals += 1;
                self.emit(
                    now_ms,
                    "proposal",
                    &text,
                    json!({ "incident": incident_id, "proposal": proposal_id, "action": action.describe(), "why": why }),
                );
            }
            Record::HumanAction {
                by,
                accepted,
                outcome,
                ..
            } => self.emit(
                now_ms,
                "decision",
                &text,
                json!({ "by": by, "accepted": accepted, "outcome": outcome }),
            ),
            Record::VerificationStarted {
                incident_id,
                condition,
                ..
            } => self.emit(
                now_ms,
                "verification",
                &text,
                json!({ "incident": incident_id, "started": condition }),
            ),
            Record::VerificationPassed { incident_id, .. } => self.emit(
                now_ms,
                "verification",
                &text,
                json!({ "incident": incident_id, "passed": true }),
            ),
            Record::VerificationFailed {
                incident_id,
                reason,
                ..
            } => self.emit(
                now_ms,
                "verification",
                &text,
                json!({ "incident": incident_id, "passed": false, "reason": reason }),
            ),
            Record::CompensationStarted {
                incident_id,
                step_ids,
            } => self.emit(
                now_ms,
                "compensation",
                &text,
                json!({ "incident": incident_id, "steps": step_ids }),
            ),
            Record::IncidentResolved {
                incident_id,
                outcome,
                ..
            } => {
                tally.resolved += 1;
                self.emit(
                    now_ms,
                    "resolved",
                    &text,
                    json!({ "incident": incident_id, "outcome": outcome }),
                );
            }
            Record::FindingJoined {
                incident_id,
                fingerprint,
                ..
            } => self.emit(
                now_ms,
                "incident",
                &text,
                json!({ "incident": incident_id, "joined": fingerprint }),
            ),
            Record::EffectMeasured {
                incident_id,
                verdict,
                ..
            } => self.emit(
                now_ms,
                "verification",
                &text,
                json!({ "incident": incident_id, "effect": verdict }),
            ),
            Record::TopologyGrew {
                source,
                n_nodes,
                n_edges,
                ..
            } => self.emit(
                now_ms,
                "topology",
                &text,
                json!({ "source": source, "nodes": n_nodes, "edges": n_edges }),
            ),
            Record::InvestigationChecked {
                investigation_id,
                checked,
                agrees,
                ..
            } => self.emit(
                now_ms,
                "assistant",
                &text,
                json!({ "investigation": investigation_id, "agrees": agrees, "claims": checked.claims, "dropped": checked.dropped.len(), "checked": checked }),
            ),
            Record::InvestigationFailed {
                investigation_id,
                failure,
                ..
            } => self.emit(
                now_ms,
                "assistant",
                &text,
                json!({ "investigation": investigation_id, "failure": failure.as_str() }),
            ),
            Record::StepDenied { .. }
            | Record::PageResolved { .. }
            | Record::OwnerNotified { .. }
            | Record::IncidentEscalated { .. }
            | Record::VersionChanged { .. }
            | Record::SeriesRefused { .. } => {}
        }
    }

    fn summary(&self, tally: &Tally) {
        if self.quiet {
            return;
        }
        println!(
            "\n{} incident(s), {} resolved without a page, {} page(s), {} proposal(s), {} action(s)",
            tally.incidents,
            tally.resolved,
            tally.pages,
            tally.proposals,
            tally.actions.len()
        );
    }
}

/// A decision's effect and what determined it, for people; a denial's policies are tallied.
fn describe_decision(
    decision: &vigil_core::authz::AuthzDecision,
    tally: &mut Tally,
) -> (&'static str, String) {
    let effect = match decision.effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
    };
    if decision.effect == Effect::Deny {
        tally
            .denied_by
            .extend(decision.determining_policies.iter().cloned());
    }
    let by = if decision.determining_policies.is_empty() {
        "no policy (default deny)".to_owned()
    } else {
        decision.determining_policies.join(", ")
    };
    (effect, by)
}

#[cfg(test)]
mod tests;
