//! The engine: `handle(event, now) -> commands`, pure and deterministic.
//!
//! It owns all decision state (counter rates, detector baselines, open incidents) and never
//! touches the world. The runtime appends each event to the ledger, calls [`Engine::handle`],
//! appends and carries out the commands, and feeds their results back as events. Feeding the
//! same events with the same `now`s to an engine built from the same config yields the same
//! commands: that is what replay checks.

mod command;
mod config;
mod demand;
mod effect;
mod event;
mod grouping;
mod human;
mod incident;
mod investigate;
mod narration;
mod notify;
mod packet;
mod people;
mod push;
mod recovery;
mod steps;

use std::collections::{BTreeMap, BTreeSet, VecDeque};

pub use command::{AssistantNote, Command, Page, Record, WhyPacket};
pub use config::{
    ApiKeyInfo, DEFAULT_KEY_TIER, EngineConfig, FlapLimits, GlobalLimits, ResourceInfo,
    SourceLimits, StoreLimits,
};
pub use event::{ActionOutcome, Event};
pub use human::{Controls, KillSwitchView, PendingProposal, SilenceView, action_hash};
pub use investigate::note_of;
pub use notify::Notice;
pub use packet::incident_commands;
// These moved below the engine (people's instructions to `people`, the trust tally to
// `authz`); the engine re-exports them, a downward edge, for the binary's importers that
// still name them here.
pub use crate::authz::TrustTally;
// The action a step commands lives in `action`, one module per kind; the engine names it too.
pub use crate::action::Action;
pub use crate::people::{HumanCommand, KillScope};
pub use push::{MAX_REFUSED_LISTED, PushReport, RefusedSeries};

use crate::authz::{ActionName, EntityType};
use crate::detector::anomaly::AnomalyDetector;
use crate::detector::burn_rate::BurnRateDetector;
use crate::detector::change::{Change, VersionChangeDetector};
use crate::detector::proportion::ProportionDropDetector;
use crate::detector::spike::{RateUnit, SpikeDetector};
use crate::detector::threshold::ThresholdDetector;
use crate::detector::{DetectorConfig, Finding, Point, Subject, Transition};
use crate::diagnosis::diagnose;
use crate::human::OriginalUnit;
use crate::intake::PUSH_SOURCES;
use crate::runbook::VerificationCheck;
use crate::signal::Sample;
use crate::store::{IngestReport, SeriesStore, StoreConfig};
use crate::time::Timestamp;
use incident::{Incident, Stage};
use packet::Ask;
use push::PushTotals;

/// What a `users_served` verification found at its deadline.
#[derive(Clone, Debug)]
enum Users {
    /// No open finding of the users detector for the subject, and requests counted.
    Served,
    /// Its detector still sees users hurt.
    Hurt,
    /// Its detector saw nothing of the subject: why.
    Undecided(String),
}

/// The running state of one configured detector.
#[derive(Clone, Debug)]
enum DetectorState {
    Spike(SpikeDetector),
    BurnRate(BurnRateDetector),
    Threshold(ThresholdDetector),
    ProportionDrop(ProportionDropDetector),
    VersionChange(VersionChangeDetector),
    Anomaly(Box<AnomalyDetector>),
}

impl DetectorState {
    fn build(config: &DetectorConfig) -> Self {
        match config {
            DetectorConfig::Spike(spike) => DetectorState::Spike(SpikeDetector::new(spike.clone())),
            DetectorConfig::BurnRate(burn) => {
                DetectorState::BurnRate(BurnRateDetector::new(burn.clone()))
            }
            DetectorConfig::Threshold(threshold) => {
                DetectorState::Threshold(ThresholdDetector::new(threshold.clone()))
            }
            DetectorConfig::ProportionDrop(drop) => {
                DetectorState::ProportionDrop(ProportionDropDetector::new(drop.clone()))
            }
            DetectorConfig::VersionChange(change) => {
                DetectorState::VersionChange(VersionChangeDetector::new(change.clone()))
            }
            DetectorConfig::Anomaly(anomaly) => {
                DetectorState::Anomaly(Box::new(AnomalyDetector::new(anomaly.clone())))
            }
        }
    }

    fn source(&self) -> &str {
        match self {
            DetectorState::Spike(detector) => &detector.config().source,
            DetectorState::BurnRate(detector) => &detector.config().source,
            DetectorState::Threshold(detector) => &detector.config().source,
            DetectorState::ProportionDrop(detector) => &detector.config().source,
            DetectorState::VersionChange(detector) => &detector.config().source,
            DetectorState::Anomaly(detector) => &detector.config().source,
        }
    }
}

/// The storm brake's state at an incident's opening.
struct Storm {
    /// Whether this opening tripped it (the one that pages).
    tripped_now: bool,
    /// The numbers.
    detail: String,
}

/// Counts the engine exposes for self-monitoring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EngineStats {
    /// Incidents currently open.
    pub n_open_incidents: usize,
    /// Series currently held, over all sources.
    pub n_series: usize,
    /// New series refused by the cardinality limits since the engine started, over all
    /// sources (a series refused again by a later scrape or push counts again).
    pub n_series_refused: u64,
    /// Running totals of pushed counters held (at most `store.max_pushed_series` per push
    /// source).
    pub n_push_totals: usize,
}

/// vigil's decision core.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    store: SeriesStore,
    detectors: Vec<DetectorState>,
    /// Running totals of pushed counter signals, so detectors see ordinary counters.
    push_totals: PushTotals,
    /// What the engine made of the push the latest `handle` call handled.
    push_report: Option<PushReport>,
    /// Per fingerprint, when its recent findings fired (within the flapping window).
    fires: BTreeMap<String, VecDeque<Timestamp>>,
    /// Sources whose new series are being refused right now (recorded once per episode).
    refusing: BTreeSet<String>,
    /// New series refused per source (every known source, from 0).
    series_refused: BTreeMap<String, u64>,
    incidents: BTreeMap<String, Incident>,
    open_by_fingerprint: BTreeMap<String, String>,
    /// Incidents opened by this event whose runbook is chosen at its end (sessions with a
    /// topology): findings of the same evaluation may still join them, and the runbook then
    /// answers the causes ranked over all of them. Empty between events.
    deferred_choice: Vec<String>,
    /// When vigil last changed each resource, for the cooldown guardrail.
    last_acted: BTreeMap<(EntityType, String), Timestamp>,
    /// When each runbook started its runs in the last hour.
    runs_started: BTreeMap<String, VecDeque<Timestamp>>,
    /// When incidents opened, within the storm brake's window.
    recent_openings: VecDeque<Timestamp>,
    /// Whether the storm brake is on (it pages once when it trips).
    storm: bool,
    /// Kill switches that are on, with who set them.
    killed: BTreeMap<KillScope, human::KillSwitch>,
    /// Active silences by id.
    silences: BTreeMap<String, human::Silence>,
    /// Verified and failed runs per (runbook, action), for the trust score.
    trust: BTreeMap<(String, ActionName), (u32, u32)>,
    /// Version changes within the diagnoser's window, oldest first, for the diagnoser (at
    /// most `MAX_RECENT_CHANGES`).
    changes: Vec<Change>,
    /// People's instructions put to the policy engine, by request id.
    pending_instructions: BTreeMap<String, people::PendingInstruction>,
    /// Instructions put to the policy engine so far (for their request ids).
    n_instructions: u64,
    /// The topology and the incidents that paged but stay joinable (sessions with a
    /// `topology` only).
    grouping: Option<grouping::Grouping>,
    /// The findings open now, by fingerprint, with their detector's name.
    firing: BTreeMap<String, String>,
    /// When findings fired and what planned work was announced, for recognising expected
    /// activity (sessions that read demand only).
    expected: Option<crate::diagnosis::expected::Memory>,
    /// Incidents this event opened that the assistant may investigate (sessions with an
    /// assistant). Empty between events.
    assistant_candidates: Vec<String>,
    /// Investigations asked for and not answered yet.
    investigations: investigate::PendingInvestigations,
}

/// At most this many recent version changes are kept for the diagnoser.
const MAX_RECENT_CHANGES: usize = 256;

impl Engine {
    /// An engine with no history.
    #[must_use]
    pub fn new(config: EngineConfig) -> Self {
        let pushed_limit = config.store.max_pushed_series;
        let max_series = config
            .sources
            .iter()
            .map(|source| source.max_series)
            .chain(PUSH_SOURCES.iter().map(|_| pushed_limit))
            .fold(0_usize, usize::saturating_add);
        let mut store = SeriesStore::new(StoreConfig {
            max_series,
            retention_ms: config.store.retention_ms,
            max_points_per_series: config.store.max_points_per_series,
        });
        for source in &config.sources {
            store.set_source_max_series(&source.name, Some(source.max_series));
        }
        for source in PUSH_SOURCES {
            store.set_source_max_series(source, Some(pushed_limit));
        }
        let detectors = config.detectors.iter().map(DetectorState::build).collect();
        let series_refused = config
            .sources
            .iter()
            .map(|source| source.name.clone())
            .chain(PUSH_SOURCES.iter().map(|&source| source.to_owned()))
            .map(|source| (source, 0))
            .collect();
        let trust = config
            .trust
            .iter()
            .map(|tally| {
                (
                    (tally.runbook.clone(), tally.action),
                    (tally.verified, tally.failed),
                )
            })
            .collect();
        let grouping = config
            .topology
            .as_ref()
            .map(|topology| grouping::Grouping::new(topology, &config.resources));
        Engine {
            grouping,
            firing: BTreeMap::new(),
            config,
            store,
            detectors,
            push_totals: PushTotals::default(),
            push_report: None,
            fires: BTreeMap::new(),
            refusing: BTreeSet::new(),
            series_refused,
            incidents: BTreeMap::new(),
            open_by_fingerprint: BTreeMap::new(),
            deferred_choice: Vec::new(),
            last_acted: BTreeMap::new(),
            runs_started: BTreeMap::new(),
            recent_openings: VecDeque::new(),
            storm: false,
            killed: BTreeMap::new(),
            silences: BTreeMap::new(),
            trust,
            changes: Vec::new(),
            pending_instructions: BTreeMap::new(),
            n_instructions: 0,
            expected: None,
            assistant_candidates: Vec::new(),
            investigations: BTreeMap::new(),
        }
    }

    /// Its configuration.
    #[must_use]
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Counts for self-monitoring.
    #[must_use]
    pub fn stats(&self) -> EngineStats {
        EngineStats {
            n_open_incidents: self.incidents.len(),
            n_series: self.store.n_series(),
            n_series_refused: self
                .series_refused
                .values()
                .fold(0, |sum, count| sum.saturating_add(*count)),
            n_push_totals: self.push_totals.len(),
        }
    }

    /// New series refused by the cardinality limits since the engine started, per source:
    /// every configured source and every push source, from 0.
    #[must_use]
    pub fn series_refused_by_source(&self) -> &BTreeMap<String, u64> {
        &self.series_refused
    }

    /// What the engine made of the push that the latest [`Engine::handle`] call handled:
    /// how many of its series are tracked, and which were refused and why. `None` when
    /// that event was not an [`Event::Pushed`]. The next `handle` call replaces it.
    ///
    /// It is derived from the event and the engine's state like the commands, and changes
    /// nothing: the daemon reads it to answer the client; replay has nobody to answer and
    /// ignores it.
    #[must_use]
    pub fn push_report(&self) -> Option<&PushReport> {
        self.push_report.as_ref()
    }

    /// Handles one event at time `now` and returns what to do, in order.
    pub fn handle(&mut self, event: &Event, now: Timestamp) -> Vec<Command> {
        let mut out = Vec::new();
        self.push_report = None;
        match event {
            Event::Scraped {
                source,
                scraped_at,
                samples,
            } => {
                self.on_scrape(source, *scraped_at, samples, now, &mut out);
            }
            Event::Queried {
                source,
                evaluated_at,
                range,
                samples,
            } => {
                self.on_queried(source, *evaluated_at, *range, samples, now, &mut out);
            }
            // A failed scrape makes the source's series stale: not recovered, not zero.
            Event::ScrapeFailed { source, .. } => {
                if self.is_known_source(source) {
                    self.store.mark_stale(source, now);
                }
            }
            Event::Pushed { payload } => {
                self.note_announcements(payload, now);
                self.on_pushed(payload, now, &mut out);
            }
            Event::Tick => {}
            Event::ScheduledRun { runbook_id } => self.on_scheduled(runbook_id, now, &mut out),
            Event::Human {
                by,
                reason,
                command,
                principal,
            } => self.on_human(by, reason, command, principal.as_ref(), now, &mut out),
            Event::HumanDecided {
                request_id,
                decision,
                ..
            } => self.on_human_decided(request_id, decision, now, &mut out),
            Event::InvestigationFinished {
                investigation_id,
                outcome,
                ..
            } => self.on_investigation_finished(investigation_id, outcome, &mut out),
            Event::AuthorizationDecided {
                request_id,
                incident_id,
                decision,
            } => {
                self.on_decision(incident_id, request_id, decision, now, &mut out);
            }
            Event::ActionFinished {
                action_id,
                incident_id,
                outcome,
            } => {
                self.on_action_finished(incident_id, action_id, outcome, now, &mut out);
            }
            Event::PageFinished {
                page_id,
                incident_id,
                delivered,
                detail,
            } => {
                self.on_page_finished(incident_id, page_id, *delivered, detail, &mut out);
            }
        }
        self.choose_deferred(now, &mut out);
        self.request_investigations(&mut out);
        self.check_deadlines(now, &mut out);
        out
    }

    /// Chooses the runbooks of the incidents this event opened, each answering the causes
    /// ranked over the findings that joined it meanwhile (see `deferred_choice`).
    fn choose_deferred(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        for incident_id in std::mem::take(&mut self.deferred_choice) {
            let Some(mut incident) = self.incidents.remove(&incident_id) else {
                continue;
            };
            if matches!(incident.stage, Stage::Proposed) && incident.runbook_idx.is_none() {
                if let Some(ranked) = incident.ranked.clone() {
                    incident.diagnosis = ranked;
                }
                if demand::is_expected(&incident.diagnosis) {
                    self.hold_expected(&mut incident, out);
                } else {
                    self.choose_runbook(&mut incident, now, out);
                }
            }
            // A resolved one (Done) is swept by `check_deadlines`, like any other.
            self.incidents.insert(incident_id, incident);
        }
    }

    fn on_scrape(
        &mut self,
        source: &str,
        scraped_at: Timestamp,
        samples: &[Sample],
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if !self.is_known_source(source) {
            return;
        }
        let report = self.store.ingest(source, scraped_at, samples);
        self.note_refusals(source, &report, out);
        self.learn_from_samples(source, samples, &report.new_samples, now, out);
        self.run_detectors(source, scraped_at, now, out);
    }

    /// Stores a query's result: an instant query's as a complete scrape, a range query's
    /// points in time order (points the store already has are ignored).
    fn on_queried(
        &mut self,
        source: &str,
        evaluated_at: Timestamp,
        range: bool,
        samples: &[Sample],
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if !self.is_known_source(source) {
            return;
        }
        if !range {
            let report = self.store.ingest(source, evaluated_at, samples);
            self.note_refusals(source, &report, out);
            self.learn_from_samples(source, samples, &report.new_samples, now, out);
            self.run_detectors(source, evaluated_at, now, out);
            return;
        }
        let mut by_time: BTreeMap<i64, Vec<Sample>> = BTreeMap::new();
        for sample in samples {
            let at = sample.timestamp_ms.unwrap_or(evaluated_at.0);
            by_time.entry(at).or_default().push(sample.clone());
        }
        for (at, points) in by_time {
            let report = self.store.ingest_partial(source, Timestamp(at), &points);
            self.note_refusals(source, &report, out);
            self.learn_from_samples(source, &points, &report.new_samples, now, out);
        }
        self.run_detectors(source, evaluated_at, now, out);
    }

    fn is_known_source(&self, source: &str) -> bool {
        self.config.sources.iter().any(|known| known.name == source)
    }

    /// Counts a scrape's (or query's) refusals; its episode ends with one that refuses none.
    fn note_refusals(&mut self, source: &str, report: &IngestReport, out: &mut Vec<Command>) {
        if report.n_refused == 0 {
            self.refusing.remove(source);
            return;
        }
        self.count_refusals(source, report, out);
    }

    /// Counts the refusals of one ingest for `source`, and records the start of an episode
    /// once, with an example.
    fn count_refusals(&mut self, source: &str, report: &IngestReport, out: &mut Vec<Command>) {
        let n_refused = report.n_refused as u64;
        if n_refused == 0 {
            return;
        }
        if let Some(count) = self.series_refused.get_mut(source) {
            *count = count.saturating_add(n_refused);
        }
        if self.refusing.insert(source.to_owned()) {
            out.push(Command::Record(Record::SeriesRefused {
                source: source.to_owned(),
                n_refused,
                n_series: self.store.n_series_of(source) as u64,
                example: report
                    .refused_example
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            }));
        }
    }

    fn run_detectors(
        &mut self,
        source: &str,
        observed_at: Timestamp,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        // Version-change markers first, whatever the config's order: a regression seen in the
        // same observation as the change that caused it must find the change already noted.
        let (markers, others): (Vec<usize>, Vec<usize>) =
            (0..self.detectors.len()).partition(|idx| {
                matches!(
                    self.detectors.get(*idx),
                    Some(DetectorState::VersionChange(_))
                )
            });
        for detector_idx in markers.into_iter().chain(others) {
            let Some(detector) = self.detectors.get_mut(detector_idx) else {
                continue;
            };
            if detector.source() != source {
                continue;
            }
            let transitions = match detector {
                DetectorState::Spike(spike) => spike.observe(observed_at, &self.store),
                DetectorState::BurnRate(burn) => burn.observe(observed_at, &self.store),
                DetectorState::Threshold(threshold) => threshold.observe(observed_at, &self.store),
                DetectorState::ProportionDrop(drop) => drop.observe(observed_at, &self.store),
                DetectorState::Anomaly(anomaly) => anomaly.observe(observed_at, &self.store),
                DetectorState::VersionChange(change) => {
                    let changes = change.observe(observed_at, &self.store);
                    self.note_changes(changes, now, out);
                    continue;
                }
            };
            for transition in transitions {
                match transition {
                    Transition::Fired(finding) => {
                        self.firing
                            .insert(finding.fingerprint.clone(), finding.detector.clone());
                        out.push(Command::Record(Record::FindingRaised {
                            finding: (*finding).clone(),
                        }));
                        let n_recent_fires = self.count_fire(&finding.fingerprint, now);
                        self.open_incident(detector_idx, *finding, n_recent_fires, now, out);
                    }
                    Transition::Cleared(cleared) => {
                        let fingerprint = cleared.fingerprint.clone();
                        self.firing.remove(&fingerprint);
                        out.push(Command::Record(Record::FindingCleared { cleared }));
                        self.on_finding_cleared(&fingerprint, now, out);
                    }
                }
            }
            self.observe_verifications(detector_idx, observed_at, now, out);
        }
    }

    /// Records version changes and keeps them for the diagnoser.
    fn note_changes(&mut self, changes: Vec<Change>, now: Timestamp, out: &mut Vec<Command>) {
        for change in changes {
            out.push(Command::Record(Record::VersionChanged {
                change: change.clone(),
            }));
            self.changes.push(change);
        }
        let window_ms = self.config.diagnosis.change_window_ms;
        let n_old = self
            .changes
            .iter()
            .take_while(|change| now.millis_since(change.at) > window_ms)
            .count()
            .max(self.changes.len().saturating_sub(MAX_RECENT_CHANGES));
        self.changes.drain(..n_old);
    }

    /// Counts a fire of `fingerprint` at `now`: how many fires, this one included, fell within
    /// the flapping window. Fingerprints with no fire in the window are forgotten.
    fn count_fire(&mut self, fingerprint: &str, now: Timestamp) -> usize {
        let window_ms = self.config.flapping.window_ms;
        let recent = self.fires.entry(fingerprint.to_owned()).or_default();
        recent.push_back(now);
        while recent
            .front()
            .is_some_and(|at| now.millis_since(*at) >= window_ms)
        {
            recent.pop_front();
        }
        let count = recent.len();
        self.fires.retain(|_, fires| {
            fires
                .back()
                .is_some_and(|at| now.millis_since(*at) < window_ms)
        });
        count
    }

    fn open_incident(
        &mut self,
        detector_idx: usize,
        finding: Finding,
        n_recent_fires: usize,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let expected = self.expected_of(&finding);
        if let Some(incident_id) = self.open_by_fingerprint.get(&finding.fingerprint).cloned() {
            // De-duplicated: the same problem already has an incident.
            if let Some(incident) = self.incidents.get_mut(&incident_id)
                && let Stage::Holding { clear_since } = &mut incident.stage
            {
                *clear_since = None;
                incident.cleared = false;
                for member in &mut incident.members {
                    if member.fingerprint == finding.fingerprint {
                        member.cleared = false;
                    }
                }
            }
            self.refire(&incident_id, &finding);
            return;
        }
        let views = match self.detectors.get(detector_idx) {
            Some(DetectorState::Spike(spike)) => spike.views(),
            Some(_) | None => Vec::new(),
        };
        let demand = self.demand_evidence(detector_idx, &finding);
        let mut diagnosis = self.diagnose_finding(&finding, &views, demand.as_ref());
        if let Some(expected) = &expected {
            diagnosis = crate::diagnosis::expected::recognise(diagnosis, &finding, expected);
        }
        if let Some(join) = self.group_of(&finding, &diagnosis, now) {
            self.join(join, &finding, &diagnosis, n_recent_fires, out);
            return;
        }
        let mut incident = Incident::new(finding, diagnosis, self.config.mode, now);
        out.push(Command::Record(Record::IncidentOpened {
            incident_id: incident.id.clone(),
            fingerprint: incident.finding.fingerprint.clone(),
            subject: incident.finding.subject.clone(),
            severity: incident.finding.severity,
        }));
        out.push(Command::Record(Record::Diagnosed {
            incident_id: incident.id.clone(),
            diagnosis: incident.diagnosis.clone(),
        }));
        self.open_by_fingerprint
            .insert(incident.finding.fingerprint.clone(), incident.id.clone());
        let storm = self.note_opening(now);
        let silence = self.silenced(
            &incident.finding.detector,
            &incident.finding.subject.value,
            now,
        );
        if let Some(silence) = silence {
            // Muted by a person: recorded, not acted on, nobody paged; it ends when the
            // finding clears.
            self.hold(&mut incident, "silence", &silence, out);
        } else if demand::is_expected(&incident.diagnosis) {
            self.hold_expected(&mut incident, out);
        } else if let Some(storm) = storm {
            self.hold(&mut incident, "storm_brake", &storm.detail, out);
            if storm.tripped_now {
                self.escalate(
                    &mut incident,
                    &format!("the storm brake tripped ({}); vigil stopped acting until the storm passes", storm.detail),
                    Ask::situation("Many things broke at once: look for a shared cause (a provider outage, a deploy) before anything else."),
                    out,
                );
            }
        } else if n_recent_fires >= self.config.flapping.max_fires.max(1) {
            self.assistant_candidates.push(incident.id.clone());
            let detail = format!(
                "the finding fired {n_recent_fires} times within {}",
                self.config
                    .numbers
                    .duration_ms(self.config.flapping.window_ms, OriginalUnit::Minutes)
            );
            out.push(Command::Record(Record::GuardrailHeld {
                incident_id: incident.id.clone(),
                guardrail: "flapping".to_owned(),
                detail: detail.clone(),
            }));
            self.escalate(
                &mut incident,
                &format!("the finding is flapping ({detail}); no runbook acts on it"),
                Ask::situation(
                    "Look for what makes the signal swing, or widen the detector's hysteresis.",
                ),
                out,
            );
        } else if self.config.topology.is_some() {
            // Other findings of this evaluation may still join it (see `deferred_choice`).
            self.deferred_choice.push(incident.id.clone());
            self.assistant_candidates.push(incident.id.clone());
        } else {
            self.choose_runbook(&mut incident, now, out);
            self.assistant_candidates.push(incident.id.clone());
        }
        self.incidents.insert(incident.id.clone(), incident);
    }

    /// A scheduled runbook came due: it runs as an incident of its own (so every step is
    /// authorized, recorded, verified and, when it fails, paged like any other), unless its
    /// previous run is still going. Schedules do not count towards the storm brake or
    /// flapping: they are not findings.
    fn on_scheduled(&mut self, runbook_id: &str, now: Timestamp, out: &mut Vec<Command>) {
        let Some(runbook) = self
            .config
            .runbooks
            .iter()
            .find(|runbook| runbook.id == runbook_id && runbook.schedule.is_some())
        else {
            return;
        };
        let schedule = runbook.schedule.clone().unwrap_or_default();
        let fingerprint = format!("schedule/runbook={runbook_id}");
        if self.open_by_fingerprint.contains_key(&fingerprint) {
            return; // The previous run has not finished.
        }
        let subject = Subject {
            label: "runbook".to_owned(),
            value: runbook_id.to_owned(),
            alias: None,
            team: None,
        };
        let finding = Finding {
            fingerprint,
            detector: "schedule".to_owned(),
            source: "schedule".to_owned(),
            subject,
            severity: crate::detector::Severity::Ticket,
            raised_at: now,
            evidence: crate::detector::Evidence::Schedule(crate::detector::ScheduleEvidence {
                runbook: runbook_id.to_owned(),
                schedule,
            }),
        };
        let diagnosis = diagnose(
            &self.config.diagnosis,
            self.config.numbers,
            &finding,
            &[],
            &[],
        );
        let mut incident = Incident::new(finding, diagnosis, self.config.mode, now);
        out.push(Command::Record(Record::IncidentOpened {
            incident_id: incident.id.clone(),
            fingerprint: incident.finding.fingerprint.clone(),
            subject: incident.finding.subject.clone(),
            severity: incident.finding.severity,
        }));
        out.push(Command::Record(Record::Diagnosed {
            incident_id: incident.id.clone(),
            diagnosis: incident.diagnosis.clone(),
        }));
        self.open_by_fingerprint
            .insert(incident.finding.fingerprint.clone(), incident.id.clone());
        self.choose_runbook(&mut incident, now, out);
        self.incidents.insert(incident.id.clone(), incident);
    }

    /// Counts an incident opening for the storm brake; `Some` while the brake is on.
    fn note_opening(&mut self, now: Timestamp) -> Option<Storm> {
        let limits = &self.config.limits;
        self.recent_openings.push_back(now);
        while self
            .recent_openings
            .front()
            .is_some_and(|at| now.millis_since(*at) >= limits.storm_window_ms)
        {
            self.recent_openings.pop_front();
        }
        let n = self.recent_openings.len();
        if n <= limits.storm_max_incidents {
            self.storm = false;
            return None;
        }
        let tripped_now = !self.storm;
        self.storm = true;
        Some(Storm {
            tripped_now,
            detail: format!(
                "{n} incidents opened within {} (limit {})",
                self.config
                    .numbers
                    .duration_ms(limits.storm_window_ms, OriginalUnit::Minutes),
                limits.storm_max_incidents
            ),
        })
    }

    fn on_finding_cleared(&mut self, fingerprint: &str, now: Timestamp, out: &mut Vec<Command>) {
        let Some(incident_id) = self.open_by_fingerprint.get(fingerprint).cloned() else {
            self.paged_finding_cleared(fingerprint, now, out);
            return;
        };
        let Some(incident) = self.incidents.get_mut(&incident_id) else {
            return;
        };
        for member in &mut incident.members {
            if member.fingerprint == fingerprint {
                member.cleared = true;
            }
        }
        // The incident is clear when all its findings are.
        incident.cleared = incident.members.iter().all(|member| member.cleared);
        if !incident.cleared {
            return;
        }
        if let Stage::Holding { clear_since } = &mut incident.stage {
            *clear_since = Some(now);
            let hold = incident
                .runbook_idx
                .and_then(|idx| self.config.runbooks.get(idx))
                .and_then(|runbook| runbook.verification.hold_until_recovered_ms)
                .unwrap_or(0);
            out.push(Command::WakeAt {
                at: now.plus_millis(hold),
            });
            return;
        }
        let verifies_by_clearing = incident
            .runbook_idx
            .and_then(|idx| self.config.runbooks.get(idx))
            .is_some_and(|runbook| runbook.verification.check == VerificationCheck::FindingClears);
        if verifies_by_clearing && matches!(incident.stage, Stage::Verifying { .. }) {
            self.verification_passed(&incident_id, Vec::new(), now, out);
            return;
        }
        // Only an incident that has not changed anything may end because the signal calmed
        // down by itself; one that acted must still verify (and may need to compensate).
        if matches!(
            incident.stage,
            Stage::Proposed | Stage::Authorizing { .. } | Stage::AwaitingApproval { .. }
        ) && incident.completed.is_empty()
        {
            self.resolve(
                &incident_id,
                "the finding cleared before vigil changed anything",
                now,
                out,
            );
        }
    }

    fn observe_verifications(
        &mut self,
        detector_idx: usize,
        scraped_at: Timestamp,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let Some(DetectorState::Spike(detector)) = self.detectors.get(detector_idx) else {
            return;
        };
        let mut passed = Vec::new();
        for incident in self.incidents.values_mut() {
            if incident.finding.detector != detector.config().name {
                continue;
            }
            let Some(runbook) = incident
                .runbook_idx
                .and_then(|idx| self.config.runbooks.get(idx))
            else {
                continue;
            };
            if runbook.verification.check != VerificationCheck::KeyRateBelow {
                continue;
            }
            let Stage::Verifying {
                started_at,
                n_ok,
                observed,
                ..
            } = &mut incident.stage
            else {
                continue;
            };
            // Only a rate measured in this scrape, after the change, is evidence.
            let Some(view) = detector.view(&incident.finding.subject.value) else {
                continue;
            };
            if view.observed_at != scraped_at || scraped_at <= *started_at {
                continue;
            }
            observed.push(Point {
                at: scraped_at,
                value: view.rate_per_sec,
            });
            if view.rate_per_sec < runbook.verification.threshold_per_sec {
                *n_ok += 1;
            } else {
                *n_ok = 0;
            }
            if *n_ok >= runbook.verification.hold_samples {
                passed.push((incident.id.clone(), observed.clone()));
            }
        }
        for (incident_id, observed) in passed {
            self.verification_passed(&incident_id, observed, now, out);
        }
    }

    /// The fix worked: record it, count it towards the runbook's trust, and resolve.
    fn verification_passed(
        &mut self,
        incident_id: &str,
        observed: Vec<Point>,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let steps_only = self
            .incidents
            .get(incident_id)
            .and_then(|incident| incident.runbook_idx)
            .and_then(|idx| self.config.runbooks.get(idx))
            .is_some_and(|runbook| runbook.verification.check == VerificationCheck::StepsSucceed);
        let unit = self
            .incidents
            .get(incident_id)
            .map_or(RateUnit::Tokens, |incident| {
                incident.finding.evidence.rate_unit()
            });
        let outcome = match observed.last() {
            Some(last) => format!(
                "fixed: the key's rate fell to {} and stayed there",
                self.config.numbers.per_second(last.value, unit.word())
            ),
            None if steps_only => "passed: every step succeeded".to_owned(),
            None => "fixed: the finding cleared after vigil's change".to_owned(),
        };
        out.push(Command::Record(Record::VerificationPassed {
            incident_id: incident_id.to_owned(),
            observed,
        }));
        self.count_outcome(incident_id, true);
        // A temporary change (a failover) stays while the failing side still fails.
        let hold = self
            .incidents
            .get(incident_id)
            .and_then(|incident| incident.runbook_idx)
            .and_then(|idx| self.config.runbooks.get(idx))
            .and_then(|runbook| runbook.verification.hold_until_recovered_ms);
        if let Some(hold) = hold {
            let numbers = self.config.numbers;
            if let Some(incident) = self.incidents.get_mut(incident_id) {
                let clear_since = incident.cleared.then_some(now);
                incident.stage = Stage::Holding { clear_since };
                out.push(Command::Record(Record::GuardrailHeld {
                    incident_id: incident_id.to_owned(),
                    guardrail: "hold_until_recovered".to_owned(),
                    detail: if incident.cleared {
                        format!(
                            "users are served and the problem on {} has cleared; vigil's change is undone once it has stayed clear for {}",
                            incident.finding.subject.display_name(),
                            numbers.duration_ms(hold, crate::human::OriginalUnit::Minutes)
                        )
                    } else {
                        format!(
                            "users are served; vigil's change stays in place while {} still sees the problem on {}, and is undone once it has been clear for {}",
                            incident.finding.detector,
                            incident.finding.subject.display_name(),
                            numbers.duration_ms(hold, crate::human::OriginalUnit::Minutes)
                        )
                    },
                }));
                if let Some(since) = clear_since {
                    out.push(Command::WakeAt {
                        at: since.plus_millis(hold),
                    });
                }
            }
            return;
        }
        self.resolve(incident_id, &outcome, now, out);
    }

    /// Counts a verified (or failed) run towards the trust of each action it took.
    pub(super) fn count_outcome(&mut self, incident_id: &str, verified: bool) {
        let Some(incident) = self.incidents.get(incident_id) else {
            return;
        };
        let Some(runbook) = incident
            .runbook_idx
            .and_then(|idx| self.config.runbooks.get(idx))
        else {
            return;
        };
        let actions: BTreeSet<ActionName> = incident
            .completed
            .iter()
            .filter_map(|idx| runbook.steps.get(*idx))
            .map(|step| step.action.cedar_action())
            .collect();
        for action in actions {
            let tally = self.trust.entry((runbook.id.clone(), action)).or_default();
            if verified {
                tally.0 = tally.0.saturating_add(1);
            } else {
                tally.1 = tally.1.saturating_add(1);
            }
        }
    }

    fn check_deadlines(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        // A finding that cleared while the fix was being applied, and has not fired again,
        // passes a `finding_clears` verification as soon as it starts; `steps_succeed` passes
        // once the last step did.
        let already_clear: Vec<String> = self
            .incidents
            .values()
            .filter(|incident| {
                let check = incident
                    .runbook_idx
                    .and_then(|idx| self.config.runbooks.get(idx))
                    .map(|runbook| runbook.verification.check);
                matches!(incident.stage, Stage::Verifying { .. })
                    && match check {
                        Some(VerificationCheck::FindingClears) => incident.cleared,
                        Some(VerificationCheck::StepsSucceed) => true,
                        Some(VerificationCheck::KeyRateBelow | VerificationCheck::UsersServed)
                        | None => false,
                    }
            })
            .map(|incident| incident.id.clone())
            .collect();
        for incident_id in already_clear {
            self.verification_passed(&incident_id, Vec::new(), now, out);
        }
        let expired: Vec<String> = self
            .incidents
            .values()
            .filter(|incident| {
                matches!(incident.stage, Stage::Verifying { deadline, .. } if deadline <= now)
            })
            .map(|incident| incident.id.clone())
            .collect();
        for incident_id in expired {
            // What users get decides at the deadline: no open finding of its detector passes.
            let users_detector = self
                .incidents
                .get(&incident_id)
                .and_then(|incident| incident.runbook_idx)
                .and_then(|idx| self.config.runbooks.get(idx))
                .filter(|runbook| runbook.verification.check == VerificationCheck::UsersServed)
                .and_then(|runbook| runbook.verification.users_detector.clone());
            match users_detector.map(|detector| self.users_verdict(&incident_id, &detector)) {
                Some(Users::Served) => {
                    self.verification_passed(&incident_id, Vec::new(), now, out);
                }
                Some(Users::Undecided(why)) => {
                    self.verification_undecided(&incident_id, &why, out);
                }
                Some(Users::Hurt) | None => self.verification_failed(&incident_id, now, out),
            }
        }
        self.check_holds(now, out);
        self.resolve_quiet_pages(now, out);
        // Incidents resolved inside a handler leave now.
        let done: Vec<String> = self
            .incidents
            .values()
            .filter(|incident| matches!(incident.stage, Stage::Done))
            .map(|incident| incident.id.clone())
            .collect();
        for incident_id in done {
            if let Some(incident) = self.incidents.remove(&incident_id) {
                for member in &incident.members {
                    self.open_by_fingerprint.remove(&member.fingerprint);
                }
            }
        }
    }

    /// What users of an incident's subject got since its verification started, by the
    /// `users_served` detector (`detector`): hurt while it fires for the subject's group,
    /// undecided when it counted none of their requests (no data is no proof), else served.
    /// A detector that keeps no per-group counts is judged by its open findings alone.
    fn users_verdict(&self, incident_id: &str, detector: &str) -> Users {
        let Some(incident) = self.incidents.get(incident_id) else {
            return Users::Hurt;
        };
        let Stage::Verifying { started_at, .. } = &incident.stage else {
            return Users::Hurt;
        };
        let state = self
            .config
            .detectors
            .iter()
            .position(|config| config.name() == detector)
            .and_then(|idx| self.detectors.get(idx));
        let Some(DetectorState::BurnRate(burn)) = state else {
            return if self.firing.values().any(|name| name == detector) {
                Users::Hurt
            } else {
                Users::Served
            };
        };
        let group = if burn.config().group_by.is_some() {
            incident.finding.subject.value.as_str()
        } else {
            ""
        };
        let shown = if group.is_empty() {
            "all requests"
        } else {
            group
        };
        match burn.group_since(group, *started_at) {
            None => Users::Undecided(format!(
                "detector {detector} has never seen requests of {shown}, so vigil cannot tell whether users are served"
            )),
            Some(seen) if seen.firing => Users::Hurt,
            Some(seen) if seen.total <= 0.0 => Users::Undecided(format!(
                "detector {detector} counted no requests of {shown} since the change, so vigil cannot tell whether users are served"
            )),
            Some(_) => Users::Served,
        }
    }

    /// Held changes whose findings have been clear for the hold are undone.
    fn check_holds(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        let due: Vec<String> = self
            .incidents
            .values()
            .filter(|incident| {
                let hold = incident
                    .runbook_idx
                    .and_then(|idx| self.config.runbooks.get(idx))
                    .and_then(|runbook| runbook.verification.hold_until_recovered_ms);
                matches!((&incident.stage, hold), (Stage::Holding { clear_since: Some(since) }, Some(hold)) if now.millis_since(*since) >= hold)
            })
            .map(|incident| incident.id.clone())
            .collect();
        for incident_id in due {
            self.with_incident(
                &incident_id,
                |incident| matches!(incident.stage, Stage::Holding { .. }).then_some(()),
                |engine, incident, ()| engine.undo_after_recovery(incident, now, out),
            );
        }
    }

    /// Runs `work` on one incident when its stage is the one expected, the one way every
    /// handler changes an incident. `expect` looks at the incident first and returns what
    /// `work` needs from its stage, or `None` when the incident is not where the event expects
    /// it (then nothing changes and `None` is returned, as for an unknown incident). While
    /// `work` runs the incident is out of the map, so `work` may use the whole engine; it is put
    /// back afterwards.
    pub(super) fn with_incident<Expected, Output>(
        &mut self,
        incident_id: &str,
        expect: impl FnOnce(&Incident) -> Option<Expected>,
        work: impl FnOnce(&mut Self, &mut Incident, Expected) -> Output,
    ) -> Option<Output> {
        let expected = expect(self.incidents.get(incident_id)?)?;
        let mut incident = self.incidents.remove(incident_id)?;
        let output = work(self, &mut incident, expected);
        self.incidents.insert(incident.id.clone(), incident);
        Some(output)
    }

    fn resolve(
        &mut self,
        incident_id: &str,
        outcome: &str,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let Some(incident) = self.incidents.remove(incident_id) else {
            return;
        };
        for member in &incident.members {
            self.open_by_fingerprint.remove(&member.fingerprint);
        }
        out.push(Command::Record(Record::IncidentResolved {
            incident_id: incident.id,
            outcome: outcome.to_owned(),
            duration_ms: now.millis_since(incident.opened_at),
        }));
    }

    fn on_page_finished(
        &mut self,
        incident_id: &str,
        page_id: &str,
        delivered: bool,
        detail: &str,
        out: &mut Vec<Command>,
    ) {
        let Some(incident) = self.incidents.get(incident_id) else {
            return;
        };
        if !matches!(&incident.stage, Stage::Paging { page_id: expected } if expected == page_id) {
            return;
        }
        let Some(incident) = self.incidents.remove(incident_id) else {
            return;
        };
        for member in &incident.members {
            self.open_by_fingerprint.remove(&member.fingerprint);
        }
        self.keep_paged(&incident);
        let mut reason = incident
            .escalation
            .map_or_else(String::new, |escalation| escalation.reason);
        if !delivered {
            reason = format!("{reason} (the page was not delivered: {detail})");
        }
        out.push(Command::Record(Record::IncidentEscalated {
            incident_id: incident.id,
            reason,
            page_delivered: delivered,
        }));
    }
}

#[cfg(test)]
mod effect_tests;
#[cfg(test)]
mod grouping_tests;
#[cfg(test)]
mod investigate_tests;
#[cfg(test)]
mod packet_tests;
#[cfg(test)]
mod people_tests;
#[cfg(test)]
mod tests;
