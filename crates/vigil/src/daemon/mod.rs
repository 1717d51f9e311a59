//! The always-on daemon, built from its parts so that tests can pass loopback listeners,
//! a chosen clock and their own ledger.
//!
//! Tasks: one scraper per source, the engine loop (sole owner of the engine and the ledger),
//! one task per action, page or wake-up, and the HTTP endpoints. They talk over bounded
//! channels. Shutdown: one `CancellationToken`; the engine loop lets in-flight work finish
//! within a grace period, records what did not, and the process exits.

mod actions;
pub mod admin;
pub(crate) mod assistant;
mod checkpointer;
mod console;
mod effects;
mod engine_loop;
mod heartbeat;
pub(crate) mod http;
mod intake;
mod jwks_refresh;
mod openapi;
mod poll;
mod querier;
pub mod replica;
mod resources;
mod scraper;
pub mod server;
mod telemetry;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_connectors::prometheus::QueryClient;
use vigil_connectors::scrape::ScrapeTarget;
use vigil_core::Timestamp;
use vigil_core::engine::{Command, Engine, Event};
use vigil_ledger::Ledger;

pub use crate::clock::Clock;
use effects::Effects;
use engine_loop::EngineLoop;
use querier::Querier;
pub use resources::Resources;
use scraper::Scraper;
pub use server::PeerInfo;
pub use telemetry::Telemetry;

use crate::bundle::Bundle;
use crate::config::QueryConfig;
use crate::journal::recovery;
use crate::journal::{self, SessionRecord};

/// The largest scrape body accepted.
const MAX_SCRAPE_BYTES: usize = 64 * 1024 * 1024;

/// Events waiting for the engine at most; senders wait when it is full.
const EVENT_QUEUE: usize = 1024;

/// The admin API's instructions (and proposal queries) waiting for the engine at most; each
/// request waits for its answer, so this bounds the requests in flight, not a backlog.
const ADMIN_QUEUE: usize = 64;

/// What the daemon appended to its ledger, as it happened (for the demo's timeline).
#[derive(Clone, Debug)]
pub struct Note {
    /// The entry's seq.
    pub seq: u64,
    /// When.
    pub at: Timestamp,
    /// What.
    pub body: NoteBody,
}

/// The content of a [`Note`].
#[derive(Clone, Debug)]
pub enum NoteBody {
    /// A session started or ended.
    Session(SessionRecord),
    /// The engine consumed an event (but a pushed payload: see [`NoteBody::Pushed`]).
    Event(Event),
    /// The engine consumed a pushed payload. Only its size travels: the channel keeps its
    /// last 4096 notes, and one push can weigh tens of MiB (the ledger has the payload).
    Pushed {
        /// The payload's kind (`evals`, `agent_runs`, `alerts`, `spans`).
        kind: &'static str,
        /// How many items it carried.
        n_items: usize,
    },
    /// The engine issued a command.
    Command(Box<Command>),
}

/// What a scraper task needs for one source.
struct SourceRuntime {
    target: ScrapeTarget,
    interval: Duration,
    client: reqwest::Client,
    extra_labels: BTreeMap<String, String>,
}

/// What a query task needs.
struct QueryRuntime {
    config: QueryConfig,
    client: QueryClient,
}

/// How the daemon behaves, beyond its config.
#[derive(Clone, Copy, Debug)]
pub struct DaemonOptions {
    /// How long in-flight work may take to finish after shutdown begins.
    pub grace: Duration,
    /// Whether an interrupted last session is resumed (see `journal/recovery.rs`).
    pub resume: bool,
    /// Whether SIGHUP reloads the policies from the config's `policies_dir` (`vigil serve`).
    pub reload_on_sighup: bool,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            grace: Duration::from_secs(10),
            resume: true,
            reload_on_sighup: false,
        }
    }
}

/// A daemon ready to run.
pub struct Daemon {
    bundle: Bundle,
    ledger: Ledger,
    listener: Option<TcpListener>,
    clock: Clock,
    options: DaemonOptions,
    telemetry: Arc<Telemetry>,
    notes: broadcast::Sender<Note>,
    resources: Resources,
    /// The leader's term, when the daemon runs as one of several replicas (`replica/`).
    term: Option<TermHooks>,
}

/// What a replica's term adds to the daemon (`replica/`): its lease, checked before every
/// action and page; the inbox it drains; where its admin API goes (the replica's gate).
pub(crate) struct TermHooks {
    pub(crate) lease: Arc<replica::LeaseView>,
    pub(crate) replication: vigil_ledger::replication::Replication,
    pub(crate) admin_slot: replica::AdminSlot,
    /// When the lease was taken: the takeover time is measured from here.
    pub(crate) started: tokio::time::Instant,
    /// The last term's session, rebuilt while this replica stood by (`replica/warm.rs`);
    /// `None` when it could not be, and then the term rebuilds it from the ledger.
    pub(crate) warm: Option<crate::journal::recovery::Rebuilt>,
}

/// What the intake routes need.
pub(crate) struct IntakeRuntime {
    pub(crate) bearer: Option<vigil_connectors::secret::Secret>,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_concurrent_pushes: usize,
}

impl Daemon {
    /// Resolves secrets and builds clients ([`Resources::resolve`]); fails with a clear
    /// message when a secret or a client cannot be had, before anything runs.
    pub fn build(
        bundle: Bundle,
        ledger: Ledger,
        listener: Option<TcpListener>,
        clock: Clock,
        options: DaemonOptions,
    ) -> anyhow::Result<Daemon> {
        let resources = Resources::resolve(&bundle.config)?;
        Ok(Daemon::with_resources(
            bundle, resources, ledger, listener, clock, options,
        ))
    }

    /// A daemon from what [`Resources::resolve`] already resolved for `bundle`'s config.
    pub fn with_resources(
        bundle: Bundle,
        resources: Resources,
        ledger: Ledger,
        listener: Option<TcpListener>,
        clock: Clock,
        options: DaemonOptions,
    ) -> Daemon {
        let (notes, _) = broadcast::channel(4096);
        Daemon {
            bundle,
            ledger,
            listener,
            clock,
            options,
            telemetry: Arc::new(Telemetry::default()),
            notes,
            resources,
            term: None,
        }
    }

    /// The daemon reports into `telemetry` (a replica's, which outlives its terms).
    #[must_use]
    pub fn with_telemetry(mut self, telemetry: Arc<Telemetry>) -> Daemon {
        self.telemetry = telemetry;
        self
    }

    /// The daemon runs as a replica's term.
    #[must_use]
    pub(crate) fn with_term(mut self, term: TermHooks) -> Daemon {
        self.term = Some(term);
        self
    }

    /// `https` when the listener terminates TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.resources.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The routes the listener serves, as `METHOD /path`: health and metrics always, the
    /// intake and the admin API when they are on.
    pub fn routes(&self) -> Vec<String> {
        http::served_routes(
            self.resources.intake.is_some(),
            self.resources.admin.is_some(),
            self.serves_console(),
        )
        .into_iter()
        .map(|(method, path)| format!("{method} {path}"))
        .collect()
    }

    /// Whether the listener serves the console (`console:` with `admin:`).
    fn serves_console(&self) -> bool {
        self.bundle.config.console.is_some()
            && self.resources.admin.is_some()
            && self.listener.is_some()
    }

    /// A stream of what the daemon records, as it records it.
    pub fn subscribe(&self) -> broadcast::Receiver<Note> {
        self.notes.subscribe()
    }

    /// The address the HTTP endpoints listen on, if any.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Runs until `cancel` fires; returns the ledger, closed cleanly.
    pub async fn run(self, cancel: CancellationToken) -> anyhow::Result<Ledger> {
        let Daemon {
            mut bundle,
            mut ledger,
            listener,
            clock,
            options,
            telemetry,
            notes,
            resources,
            mut term,
        } = self;
        let Resources {
            targets,
            queries,
            action_targets,
            pager,
            intake,
            admin,
            tls,
            investigator,
            heartbeat,
        } = resources;
        // Tool calls wait for the engine loop between two events; a few per investigation.
        let (tools_tx, tools_rx) = tokio::sync::mpsc::channel(64);
        let (questions_tx, questions_rx) = tokio::sync::mpsc::channel(8);
        let ask = match (&investigator, &bundle.engine.assistant) {
            (Some(investigator), Some(limits)) => Some(assistant::AskRuntime {
                investigator: Arc::clone(investigator),
                tools: assistant::LoopTools {
                    requests: tools_tx.clone(),
                },
                questions: questions_tx.clone(),
                limits: limits.clone(),
            }),
            _ => None,
        };
        let warm = term.as_mut().and_then(|term| term.warm.take());
        let resumed = match (options.resume, warm) {
            (false, _) => None,
            (true, Some(rebuilt)) => {
                tracing::info!(
                    session = rebuilt.session_seq(),
                    "resuming the last term from the engine kept warm while standing by"
                );
                explain_resume(rebuilt.into_resumed(&bundle.engine))
            }
            // A replica's term carries on the last term even when it handed over cleanly.
            (true, None) => resume_or_explain(&ledger, &bundle.engine, term.is_some()).await?,
        };
        if let Some(resumed) = &resumed {
            // The rebuilt engine runs with the config it was built from (the same but for
            // the trust seed), and this session records that config.
            bundle.engine = resumed.engine.config().clone();
        }
        let mut record = journal::record_bundle(&ledger, &bundle)
            .await
            .context("recording the session's inputs")?;
        if let (Some(resumed), SessionRecord::SessionStarted { resumes, .. }) =
            (&resumed, &mut record)
        {
            *resumes = Some(resumed.session_seq);
        }
        let now = clock.now();
        let entry = journal::session_entry(&record, now.0)?;
        let appended = ledger
            .append(&[entry])
            .await
            .context("recording the session")?;
        for entry in appended {
            let _ = notes.send(Note {
                seq: entry.seq,
                at: now,
                body: NoteBody::Session(record.clone()),
            });
        }
        telemetry.session_recorded();
        telemetry.ledger_appended(ledger.len());
        tracing::info!(
            ledger_entries = ledger.len(),
            policy_set_hash = %bundle.authorizer.policy_set_hash(),
            n_sources = targets.len(),
            "vigil started"
        );

        // SIGHUP is taken over before anything answers on the network, so that a reload asked
        // for as soon as the daemon is up does not hit the default action (termination).
        #[cfg(unix)]
        let hangups = if options.reload_on_sighup {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
                Ok(signal) => Some(signal),
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGHUP; policies will not be reloaded");
                    None
                }
            }
        } else {
            None
        };
        let tracker = TaskTracker::new();
        let checkpointer = bundle
            .config
            .checkpoint
            .as_ref()
            .map(|config| {
                checkpointer::Checkpointer::new(config, tracker.clone(), Arc::clone(&telemetry))
            })
            .transpose()
            .context("preparing the ledger's checkpoints")?;
        let (checkpoints_tx, checkpoints_rx) = mpsc::channel(4);
        let (instructions_tx, instructions_rx) = mpsc::channel(ADMIN_QUEUE);
        let (proposals_tx, proposals_rx) = mpsc::channel(ADMIN_QUEUE);
        let (views_tx, views_rx) = mpsc::channel(ADMIN_QUEUE);
        // Pushed payloads go straight to the engine loop, which confirms each once its event
        // is in the ledger: only then does the client get its 2xx. The queue holds as many as
        // may be handled at once, so that pushes whose clients stopped waiting (past the
        // acknowledgement wait) cannot pile up beyond the push limit's memory bound.
        let push_queue = intake
            .as_ref()
            .map_or(1, |intake| intake.max_concurrent_pushes.max(1));
        let (pushes_tx, pushes_rx) = mpsc::channel(push_queue);
        // A replica's term also takes the pushes that the replicas stored in the inbox.
        let (drained_tx, drained_rx) = mpsc::channel(push_queue);
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        telemetry.watch_queue("events", telemetry::queue_probe(&events_tx));
        telemetry.watch_queue("pushes", telemetry::queue_probe(&pushes_tx));
        if let Some(investigator) = &investigator {
            telemetry.watch_assistant(Arc::clone(investigator));
        }
        let permits = Arc::new(Semaphore::new(bundle.config.max_concurrent_scrapes.max(1)));
        for source in targets {
            telemetry.register_source(&source.target.name);
            let metrics: BTreeSet<String> = bundle.engine.metrics_for_source(&source.target.name);
            let scraper = Scraper {
                target: source.target,
                interval: source.interval,
                metrics,
                extra_labels: source.extra_labels,
                client: source.client,
                clock,
                telemetry: Arc::clone(&telemetry),
                permits: Arc::clone(&permits),
                events: events_tx.clone(),
            };
            tracker.spawn(scraper.run(cancel.child_token()));
        }
        for runbook in &bundle.engine.runbooks {
            let Some(expression) = &runbook.schedule else {
                continue;
            };
            // Checked when the runbooks were loaded; a schedule that no longer parses is
            // reported and skipped rather than stopping the daemon.
            match crate::schedule::Schedule::parse(expression) {
                Ok(schedule) => {
                    tracker.spawn(run_schedule(
                        runbook.id.clone(),
                        schedule,
                        clock,
                        events_tx.clone(),
                        cancel.child_token(),
                    ));
                }
                Err(error) => tracing::error!(runbook = %runbook.id, %error, "schedule skipped"),
            }
        }
        for query in queries {
            telemetry.register_source(&query.config.name);
            let querier = Querier {
                name: query.config.name,
                promql: query.config.promql,
                metric: query.config.metric,
                range: query.config.range,
                interval: query.config.interval,
                client: query.client,
                clock,
                telemetry: Arc::clone(&telemetry),
                permits: Arc::clone(&permits),
                events: events_tx.clone(),
            };
            tracker.spawn(querier.run(cancel.child_token()));
        }
        // The dead man's switch runs on every replica, leader or standby, like the listener
        // (a replica runs it itself, outside its terms).
        if let Some((client, interval)) = heartbeat.filter(|_| term.is_none()) {
            let telemetry = Arc::clone(&telemetry);
            tracker.spawn(heartbeat::run(
                client,
                interval,
                telemetry,
                cancel.child_token(),
            ));
        }
        // Failed sign-ins of the admin API and the console: one log, summarised once an
        // interval.
        let failures = Arc::new(admin::FailureLog::default());
        if admin.is_some() && (listener.is_some() || term.is_some()) {
            tracker.spawn(admin::summarise_failures(
                Arc::clone(&failures),
                bundle.config.server.refused_log_interval,
                cancel.child_token(),
            ));
        }
        // The console: beside the admin API, whose identities it uses; on a replica, behind
        // its gate with the admin API, while this term leads (sessions end with the term).
        let console_router = match (&bundle.config.console, &admin) {
            (Some(config), Some(admin)) if listener.is_some() || term.is_some() => {
                Some(console::router(console::ConsoleState::new(
                    config.clone(),
                    Arc::clone(&admin.authenticator),
                    vigil_core::people::InstructionLimits {
                        max_reason_chars: bundle.config.people.max_reason_chars,
                    },
                    views_tx.clone(),
                    instructions_tx.clone(),
                    notes.clone(),
                    Arc::clone(&telemetry),
                    Arc::clone(&failures),
                    clock,
                    tls.is_some(),
                    cancel.child_token(),
                )))
            }
            _ => None,
        };
        // The SIGHUP task reloads the admin tokens too.
        let authenticator = admin.as_ref().map(|admin| Arc::clone(&admin.authenticator));
        // The admin API: on the listener, or behind a replica's gate while this term leads.
        let admin_router = admin
            .filter(|_| listener.is_some() || term.is_some())
            .map(|admin| {
                if let (Some((url, refresh)), Some(slot)) =
                    (admin.jwks_url, admin.authenticator.jwks_slot())
                {
                    tracker.spawn(jwks_refresh::run(url, refresh, slot, cancel.child_token()));
                }
                admin::router(admin::AdminState {
                    authenticator: admin.authenticator,
                    limits: vigil_core::people::InstructionLimits {
                        max_reason_chars: bundle.config.people.max_reason_chars,
                    },
                    checkpoints: checkpoints_tx.clone(),
                    instructions: instructions_tx.clone(),
                    proposals: proposals_tx.clone(),
                    telemetry: Arc::clone(&telemetry),
                    failures,
                    clock,
                    ask: ask.clone(),
                })
            });
        let (admin_router, console_router) = match (&term, admin_router) {
            (Some(term), Some(router)) => {
                let router = match console_router {
                    Some(console) => router.merge(console),
                    None => router,
                };
                if let Ok(mut slot) = term.admin_slot.write() {
                    *slot = Some(router);
                }
                (None, None)
            }
            (_, router) => (router, console_router),
        };
        if let Some(listener) = listener {
            let intake_router = intake.map(|intake| {
                let router = intake::router(intake::IntakeState {
                    sender: intake::PushSink::Engine(pushes_tx.clone()),
                    ack_wait: intake::ACK_WAIT,
                    bearer: intake.bearer,
                    max_body_bytes: intake.max_body_bytes,
                });
                (
                    router,
                    server::PushLimit::new(intake.max_concurrent_pushes, intake.max_body_bytes),
                )
            });
            let server = server::Server {
                listener,
                router: http::router(
                    Arc::clone(&telemetry),
                    intake_router,
                    admin_router,
                    console_router,
                ),
                tls,
                limits: server::Limits::new(&bundle.config.server, options.grace / 2),
                telemetry: Arc::clone(&telemetry),
            };
            tracing::info!(
                max_connections = server.limits.max_connections,
                "HTTP connection limit"
            );
            tracker.spawn(server::refusals::log_summaries(
                Arc::clone(&telemetry),
                bundle.config.server.refused_log_interval,
                cancel.child_token(),
            ));
            tracker.spawn(server.run(cancel.child_token()));
        }
        let effects = Effects {
            targets: Arc::new(action_targets),
            pager,
            tracker: tracker.clone(),
            answers: events_tx,
            clock,
            cancel: cancel.child_token(),
            telemetry: Arc::clone(&telemetry),
            blobs: ledger.blob_store(),
            exchanges: Arc::default(),
            investigator,
            tool_requests: tools_tx,
            lease: term.as_ref().map(|term| Arc::clone(&term.lease)),
            action_timeout: bundle.config.longest_action_timeout(),
        };
        if let Some(term) = &term {
            tracker.spawn(replica::drain_inbox(
                term.replication.clone(),
                drained_tx,
                Arc::clone(&telemetry),
                cancel.child_token(),
            ));
            tracing::warn!(
                epoch = term.lease.epoch(),
                takeover_ms = u64::try_from(term.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                "leading: the session is recorded and the engine is ready"
            );
        } else {
            drop(drained_tx);
        }
        let Bundle {
            engine: engine_config,
            authorizer,
            ..
        } = bundle;
        let (engine, carry_on) = match resumed {
            Some(resumed) => (
                resumed.engine,
                Some((
                    resumed.unrecorded,
                    resumed.last_event_seq,
                    resumed.unfinished,
                    resumed.wakes,
                )),
            ),
            None => (Engine::new(engine_config), None),
        };
        let (policies_tx, policies_rx) = mpsc::channel(4);
        #[cfg(unix)]
        if let Some(hangups) = hangups {
            tracker.spawn(reload_on_sighup(
                hangups,
                bundle.config.policies_dir.clone(),
                policies_tx,
                authenticator,
                cancel.child_token(),
            ));
        }
        #[cfg(not(unix))]
        drop(policies_tx);
        let mut engine_loop = EngineLoop {
            policies: policies_rx,
            engine,
            ledger,
            authorizer,
            clock,
            telemetry,
            notes,
            inbox: events_rx,
            effects,
            in_flight: BTreeSet::new(),
            not_started: Vec::new(),
            wakes: BTreeSet::new(),
            scrapes: journal::ScrapeBatcher::for_session(&record),
            checkpointer,
            checkpoint_requests: checkpoints_rx,
            instructions: instructions_rx,
            proposal_requests: proposals_rx,
            view_requests: views_rx,
            pushes: pushes_rx,
            drained: drained_rx,
            tool_requests: tools_rx,
            questions: questions_rx,
        };
        drop(checkpoints_tx);
        drop(instructions_tx);
        drop(proposals_tx);
        drop(views_tx);
        drop(pushes_tx);
        drop(questions_tx);
        let result = match carry_on {
            Some((unrecorded, caused_by, unfinished, wakes)) => engine_loop
                .carry_on(unrecorded, caused_by, unfinished, wakes)
                .await
                .map(|()| engine_loop),
            None => Ok(engine_loop),
        };
        let result = match result {
            Ok(engine_loop) => engine_loop.run(cancel.clone(), options.grace).await,
            Err(error) => Err(error),
        };
        // Whatever ended the loop, stop every other task and wait for them, boundedly.
        cancel.cancel();
        tracker.close();
        if tokio::time::timeout(options.grace, tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("some tasks did not stop within the grace period");
        }
        result
    }
}

/// Reloads the policies and the admin tokens on each SIGHUP: a set or file with any problem
/// is refused whole (every problem logged with its file and line) and the one in force stays.
#[cfg(unix)]
async fn reload_on_sighup(
    mut hangups: tokio::signal::unix::Signal,
    dir: std::path::PathBuf,
    sender: mpsc::Sender<(crate::bundle::PolicyTexts, vigil_policy::Authorizer)>,
    authenticator: Option<Arc<crate::identity::Authenticator>>,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            received = hangups.recv() => if received.is_none() { return },
        }
        match authenticator
            .as_ref()
            .map(|authenticator| authenticator.reload_tokens())
        {
            Some(Ok(Some(n_tokens))) => {
                tracing::warn!(n_tokens, "SIGHUP: the admin tokens file was reloaded");
            }
            Some(Err(error)) => {
                let shown = crate::logsafe::escaped(&format!("{error:#}"));
                tracing::error!(
                    "SIGHUP: the admin tokens were not reloaded; the ones in force stay. {shown}"
                );
            }
            Some(Ok(None)) | None => {}
        }
        match crate::bundle::reload_policies(&dir) {
            Ok(loaded) => {
                if sender.send(loaded).await.is_err() {
                    return;
                }
            }
            Err(problems) => {
                // One line, so that log pipelines keep the problems with the message.
                let listed: Vec<String> = problems.0.iter().map(ToString::to_string).collect();
                tracing::error!(
                    "SIGHUP: the policies were not reloaded; the set in force stays. {} problem(s): {}",
                    listed.len(),
                    listed.join("; ")
                );
            }
        }
    }
}

/// Sends `Event::ScheduledRun` each time the runbook's schedule comes due, until `cancel`.
async fn run_schedule(
    runbook_id: String,
    schedule: crate::schedule::Schedule,
    clock: Clock,
    events: mpsc::Sender<Event>,
    cancel: CancellationToken,
) {
    // Each round waits for the next due time strictly after now, so the loop is bounded by
    // the schedule and ends with the daemon.
    while let Some(due) = schedule.next_after(clock.now()) {
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep_until(clock.instant_at(due)) => {}
        }
        let event = Event::ScheduledRun {
            runbook_id: runbook_id.clone(),
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
}

/// The interrupted session to resume, if any; says in the log why one is not.
async fn resume_or_explain(
    ledger: &Ledger,
    config: &vigil_core::engine::EngineConfig,
    even_if_ended: bool,
) -> anyhow::Result<Option<recovery::Resumed>> {
    let outcome = recovery::resume_with(ledger, config, even_if_ended)
        .await
        .context("rebuilding the interrupted session")?;
    Ok(explain_resume(outcome))
}

/// The session to resume, if any; says in the log why there is none.
fn explain_resume(
    outcome: Result<recovery::Resumed, recovery::NotResumed>,
) -> Option<recovery::Resumed> {
    match outcome {
        Ok(resumed) => {
            tracing::warn!(
                session = resumed.session_seq,
                n_events = resumed.n_events,
                n_unfinished = resumed.unfinished.len() + resumed.unrecorded.len(),
                "the last session was interrupted; resuming it"
            );
            Some(resumed)
        }
        Err(recovery::NotResumed::ConfigChanged {
            session_seq,
            unfinished,
        }) => {
            tracing::error!(
                session = session_seq,
                ?unfinished,
                "the last session was interrupted, but the config changed since; starting fresh. Its unfinished work is NOT carried on: check those targets by hand"
            );
            None
        }
        Err(recovery::NotResumed::NothingToResume) => None,
    }
}
