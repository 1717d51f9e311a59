//! The period report a team takes to its review: what vigil did with the incidents of a
//! period, read from the commands in its ledger.
//!
//! [`ReportBuilder`] is fed every recorded command with the time it was recorded at, in
//! ledger order, and [`ReportBuilder::finish`] counts the incidents **opened** in the period
//! (and everything that happened to them up to the period's end):
//!
//! - **Outcome** of each incident, in this order of precedence: *paged* (vigil sent a page:
//!   its fix failed, it had no safe fix, or a person had to decide), *fixed by vigil* (it
//!   acted, verified and resolved without a person), *fixed with an approval* (the same, but
//!   a person approved a proposed step), *cleared without action* (its findings cleared
//!   before anything was changed), or *still open* at the period's end.
//! - **Auto-resolved share**: *fixed by vigil* over the incidents that ended.
//! - **Pages avoided**: incidents that ended without a page. The assumption, shown with the
//!   number, is that each would have paged someone under a plain alert rule.
//! - **Times**: to detect (from the first bad observation in the finding's evidence to the
//!   finding; only evidence that dates its onset counts, the rest is reported as undated),
//!   to diagnose (opening to the first diagnosis), to resolve (opening to vigil's
//!   resolution) and, for paged incidents, to clear (opening to the page's resolution).
//! - **Failed fixes** (verifications that failed), **compensations**, **policy denials**
//!   (steps Cedar refused), proposals with their approvals and rejections, and the **top
//!   causes** (the best hypothesis of each incident's latest diagnosis).
//! - **Engineer-hours returned**, under [`Assumptions`] that the report prints and the
//!   caller may change: the minutes a person would have spent on each incident that ended
//!   without a page, less the minutes each approval took.
//! - **Scheduled runs** (a runbook's schedule came due, not a detection) are counted apart,
//!   with their own outcomes and pages: no alert rule would have paged for them, so they are
//!   not incidents here and return no hours.
//!
//! Pure: no clock, no I/O. The same commands give the same report, so an auditor who reruns
//! it on an archived ledger gets the numbers that were presented. Memory grows with the
//! incidents and proposals of the period (a few hundred bytes each), not with the ledger.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::detector::threshold::Bound;
use crate::detector::{Evidence, Finding, Point};
use crate::diagnosis::HypothesisKind;
use crate::engine::{Command, HumanCommand, Record};
use crate::time::Timestamp;

/// The period a report covers: incidents opened at or after `from` and at or before
/// `until`, followed up to `until`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Period {
    /// The first instant counted.
    pub from: Timestamp,
    /// The last instant counted.
    pub until: Timestamp,
}

impl Period {
    fn contains(self, at: Timestamp) -> bool {
        self.from <= at && at <= self.until
    }
}

/// What the engineer-hours estimate assumes; printed with it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Assumptions {
    /// Minutes a person would have spent on an incident that vigil ended without a page
    /// (being woken, triage, the fix, the write-up).
    pub minutes_per_incident: f64,
    /// Minutes a person spent on each approval or rejection of a proposal.
    pub minutes_per_decision: f64,
}

impl Default for Assumptions {
    fn default() -> Self {
        Assumptions {
            minutes_per_incident: 45.0,
            minutes_per_decision: 5.0,
        }
    }
}

impl Assumptions {
    /// Checks that both are finite and between 0 and a week of minutes.
    ///
    /// # Errors
    /// The first assumption out of range, named.
    pub fn validate(&self) -> Result<(), String> {
        const WEEK_MINUTES: f64 = 7.0 * 24.0 * 60.0;
        for (name, value) in [
            ("minutes per incident", self.minutes_per_incident),
            ("minutes per decision", self.minutes_per_decision),
        ] {
            if !(value.is_finite() && (0.0..=WEEK_MINUTES).contains(&value)) {
                return Err(format!(
                    "{name} must be between 0 and {WEEK_MINUTES} (a week), found {value}"
                ));
            }
        }
        Ok(())
    }
}

/// How each incident opened in the period ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcomes {
    /// vigil acted, verified and resolved it without a person.
    pub fixed_by_vigil: u64,
    /// vigil acted on a person's approval, verified and resolved it.
    pub fixed_with_approval: u64,
    /// Its findings cleared before anything was changed; nobody was paged.
    pub cleared_without_action: u64,
    /// vigil paged a person.
    pub paged: u64,
    /// Not ended by the period's end.
    pub open: u64,
}

impl Outcomes {
    /// Incidents that ended (every outcome but `open`).
    #[must_use]
    pub fn ended(&self) -> u64 {
        self.fixed_by_vigil + self.fixed_with_approval + self.cleared_without_action + self.paged
    }
}

/// A set of durations, in seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Durations {
    /// How many were measured.
    pub n: u64,
    /// Their mean; `None` when none were measured.
    pub mean_secs: Option<f64>,
    /// Their median (the lower middle of an even count).
    pub median_secs: Option<f64>,
    /// The longest.
    pub max_secs: Option<f64>,
}

impl Durations {
    fn of(mut secs: Vec<f64>) -> Durations {
        if secs.is_empty() {
            return Durations::default();
        }
        secs.sort_by(f64::total_cmp);
        let n = secs.len();
        let mean = secs.iter().sum::<f64>() / n as f64;
        Durations {
            n: n as u64,
            mean_secs: Some(mean),
            median_secs: secs.get((n - 1) / 2).copied(),
            max_secs: secs.last().copied(),
        }
    }
}

/// The time to detect, with how many incidents' evidence could not date the onset.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DetectTimes {
    /// From the first bad observation to the finding.
    pub dated: Durations,
    /// Incidents whose finding's evidence does not date the onset (windowed evidence such
    /// as burn rates and proportions, schedules, or a finding not in the ledger).
    pub undated: u64,
}

/// One cause among the top causes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Cause {
    /// The hypothesis kind (`runaway_key`, ...), or `undiagnosed`.
    pub kind: String,
    /// Incidents whose best hypothesis it was.
    pub incidents: u64,
    /// Of which vigil fixed without a page (alone or with an approval).
    pub fixed: u64,
    /// Of which paged.
    pub paged: u64,
}

/// The engineer-hours estimate.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HoursReturned {
    /// The assumptions it rests on.
    pub assumptions: Assumptions,
    /// Incidents that ended without a page.
    pub incidents_without_page: u64,
    /// Approvals and rejections people made.
    pub decisions: u64,
    /// `(incidents_without_page × minutes_per_incident − decisions × minutes_per_decision)
    /// / 60`; negative when the decisions cost more than the pages saved.
    pub hours: f64,
}

/// Runbooks run on their schedule in the period (not incidents: nothing was detected).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ScheduledRuns {
    /// Runs started.
    pub runs: u64,
    /// Of which ended without a page.
    pub ended_without_page: u64,
    /// Of which paged a person.
    pub paged: u64,
    /// Pages they sent.
    pub pages_sent: u64,
}

/// Everything a report says.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    /// What it covers.
    pub period: Period,
    /// Incidents opened in the period.
    pub incidents: u64,
    /// How they ended.
    pub outcomes: Outcomes,
    /// `fixed_by_vigil` over the incidents that ended, in percent; `None` when none ended.
    pub auto_resolved_pct: Option<f64>,
    /// Pages vigil sent for them.
    pub pages_sent: u64,
    /// Of which reached the pager.
    pub pages_delivered: u64,
    /// Incidents that ended without a page.
    pub pages_avoided: u64,
    /// From onset to finding.
    pub time_to_detect: DetectTimes,
    /// From opening to the first diagnosis.
    pub time_to_diagnose: Durations,
    /// From opening to vigil's resolution (incidents that ended without a page).
    pub time_to_resolve: Durations,
    /// From opening to the page's resolution (paged incidents whose findings cleared).
    pub time_to_clear_paged: Durations,
    /// Verifications that failed.
    pub failed_fixes: u64,
    /// Incidents with at least one failed verification.
    pub incidents_with_failed_fix: u64,
    /// Compensations started (undoing changes that did not work).
    pub compensations: u64,
    /// Steps Cedar refused.
    pub policy_denials: u64,
    /// Steps proposed to people.
    pub proposals: u64,
    /// Proposals people approved.
    pub approvals: u64,
    /// Proposals people rejected.
    pub rejections: u64,
    /// Causes by incidents, most first (ties by name).
    pub top_causes: Vec<Cause>,
    /// Scheduled runbook runs, apart from the incidents.
    pub scheduled: ScheduledRuns,
    /// The estimate.
    pub hours_returned: HoursReturned,
}

#[derive(Debug, Default)]
struct Track {
    opened_at: Option<Timestamp>,
    /// Opened by a runbook's schedule, not a detection.
    scheduled: bool,
    detect_secs: Option<f64>,
    diagnosed_at: Option<Timestamp>,
    cause: Option<&'static str>,
    approved: bool,
    verified: bool,
    failed: u64,
    pages: u64,
    pages_delivered: u64,
    resolved_at: Option<Timestamp>,
    page_resolved_at: Option<Timestamp>,
}

/// Builds a [`Report`] from recorded commands; see the module docs.
#[derive(Debug)]
pub struct ReportBuilder {
    period: Period,
    /// The latest finding raised per fingerprint, as its onset delay in seconds (`None`:
    /// undated). Only the delay is kept, not the finding.
    latest_finding: BTreeMap<String, Option<f64>>,
    incidents: BTreeMap<String, Track>,
    /// Incidents whose id was opened again later (ledgers joined from separate runs, such
    /// as game days on the same virtual clock): counted, not overwritten.
    retired: Vec<Track>,
    /// Proposal id to incident id, for approvals.
    proposals: BTreeMap<String, String>,
    compensations: u64,
    denials: u64,
    n_proposals: u64,
    approvals: u64,
    rejections: u64,
}

impl ReportBuilder {
    /// A builder for `period`.
    #[must_use]
    pub fn new(period: Period) -> ReportBuilder {
        ReportBuilder {
            period,
            latest_finding: BTreeMap::new(),
            incidents: BTreeMap::new(),
            retired: Vec::new(),
            proposals: BTreeMap::new(),
            compensations: 0,
            denials: 0,
            n_proposals: 0,
            approvals: 0,
            rejections: 0,
        }
    }

    /// Takes one recorded command, recorded at `at`. Commands after the period's end are
    /// ignored; an incident's commands count only when its opening was in the period.
    pub fn command(&mut self, at: Timestamp, command: &Command) {
        if at > self.period.until {
            return;
        }
        match command {
            Command::Record(record) => self.record(at, record),
            Command::Page { incident_id, .. } => {
                if let Some(track) = self.incidents.get_mut(incident_id) {
                    track.pages += 1;
                }
            }
            Command::Execute { .. }
            | Command::Authorize { .. }
            | Command::AuthorizeHuman { .. }
            | Command::ResolvePage { .. }
            | Command::Notify { .. }
            | Command::Investigate { .. }
            | Command::UpdatePage { .. }
            | Command::WakeAt { .. } => {}
        }
    }

    fn record(&mut self, at: Timestamp, record: &Record) {
        match record {
            Record::FindingRaised { finding } => {
                let delay = onset(finding).map(|onset| finding.raised_at.secs_since(onset));
                self.latest_finding
                    .insert(finding.fingerprint.clone(), delay.filter(|d| *d >= 0.0));
            }
            Record::IncidentOpened {
                incident_id,
                fingerprint,
                ..
            } => {
                if self.period.contains(at) {
                    let detect_secs = self.latest_finding.get(fingerprint).copied().flatten();
                    let earlier = self.incidents.insert(
                        incident_id.clone(),
                        Track {
                            opened_at: Some(at),
                            detect_secs,
                            ..Track::default()
                        },
                    );
                    self.retired.extend(earlier);
                }
            }
            Record::Diagnosed {
                incident_id,
                diagnosis,
            } => {
                if let Some(track) = self.incidents.get_mut(incident_id) {
                    track.diagnosed_at.get_or_insert(at);
                    let best = diagnosis.best().map(|best| best.kind);
                    track.cause = best.map(HypothesisKind::as_str);
                    // A schedule that came due is diagnosed as such (no finding is recorded).
                    track.scheduled = best == Some(HypothesisKind::Scheduled);
                }
            }
            Record::StepDenied { incident_id, .. } => {
                if self.incidents.contains_key(incident_id) {
                    self.denials += 1;
                }
            }
            Record::StepProposed {
                incident_id,
                proposal_id,
                ..
            } => {
                if self.incidents.contains_key(incident_id) {
                    self.n_proposals += 1;
                    self.proposals
                        .insert(proposal_id.clone(), incident_id.clone());
                }
            }
            Record::HumanAction {
                command,
                accepted: true,
                ..
            } => match command {
                HumanCommand::Approve { proposal_id, .. } => {
                    if let Some(incident_id) = self.proposals.get(proposal_id) {
                        self.approvals += 1;
                        if let Some(track) = self.incidents.get_mut(incident_id) {
                            track.approved = true;
                        }
                    }
                }
                HumanCommand::Reject { proposal_id }
                    if self.proposals.contains_key(proposal_id) =>
                {
                    self.rejections += 1;
                }
                _ => {}
            },
            Record::VerificationPassed { incident_id, .. } => {
                if let Some(track) = self.incidents.get_mut(incident_id) {
                    track.verified = true;
                }
            }
            Record::VerificationFailed { incident_id, .. } => {
                if let Some(track) = self.incidents.get_mut(incident_id) {
                    track.failed += 1;
                }
            }
            Record::CompensationStarted { incident_id, .. } => {
                if self.incidents.contains_key(incident_id) {
                    self.compensations += 1;
                }
            }
            Record::IncidentResolved { incident_id, .. } => {
                if let Some(track) = self.incidents.get_mut(incident_id) {
                    track.resolved_at.get_or_insert(at);
                }
            }
            Record::PageResolved { incident_id, .. } => {
                if let Some(track) = self.incidents.get_mut(incident_id) {
                    track.page_resolved_at.get_or_insert(at);
                }
            }
            Record::IncidentEscalated {
                incident_id,
                page_delivered,
                ..
            } => {
                if *page_delivered && let Some(track) = self.incidents.get_mut(incident_id) {
                    track.pages_delivered += 1;
                }
            }
            Record::FindingCleared { .. }
            | Record::VersionChanged { .. }
            | Record::SeriesRefused { .. }
            | Record::RunbookSelected { .. }
            | Record::HumanAction { .. }
            | Record::GuardrailHeld { .. }
            | Record::VerificationStarted { .. }
            | Record::TopologyGrew { .. }
            | Record::FindingJoined { .. }
            | Record::EffectMeasured { .. }
            | Record::OwnerNotified { .. }
            | Record::InvestigationChecked { .. }
            | Record::InvestigationFailed { .. } => {}
        }
    }

    /// The report, under `assumptions`.
    #[must_use]
    pub fn finish(self, assumptions: Assumptions) -> Report {
        let mut outcomes = Outcomes::default();
        let mut causes: BTreeMap<&'static str, Cause> = BTreeMap::new();
        let (mut detect, mut undated) = (Vec::new(), 0u64);
        let (mut diagnose, mut resolve, mut clear) = (Vec::new(), Vec::new(), Vec::new());
        let (mut pages_sent, mut pages_delivered) = (0, 0);
        let (mut failed_fixes, mut incidents_with_failed_fix) = (0, 0);
        let mut scheduled = ScheduledRuns::default();
        let mut n_incidents = 0_u64;
        for track in self.retired.iter().chain(self.incidents.values()) {
            let Some(opened_at) = track.opened_at else {
                continue;
            };
            if track.scheduled {
                scheduled.runs += 1;
                scheduled.pages_sent += track.pages;
                if track.pages > 0 {
                    scheduled.paged += 1;
                } else if track.resolved_at.is_some() {
                    scheduled.ended_without_page += 1;
                }
                continue;
            }
            n_incidents += 1;
            let outcome = if track.pages > 0 {
                &mut outcomes.paged
            } else if track.resolved_at.is_none() {
                &mut outcomes.open
            } else if !track.verified {
                // The engine resolves an incident that changed something only once its
                // verification passed; one that did not verify ended before any change.
                &mut outcomes.cleared_without_action
            } else if track.approved {
                &mut outcomes.fixed_with_approval
            } else {
                &mut outcomes.fixed_by_vigil
            };
            *outcome += 1;
            let kind = track.cause.unwrap_or("undiagnosed");
            let cause = causes.entry(kind).or_insert_with(|| Cause {
                kind: kind.to_owned(),
                incidents: 0,
                fixed: 0,
                paged: 0,
            });
            cause.incidents += 1;
            if track.pages > 0 {
                cause.paged += 1;
            } else if track.resolved_at.is_some() && track.verified {
                cause.fixed += 1;
            }
            match track.detect_secs {
                Some(secs) => detect.push(secs),
                None => undated += 1,
            }
            if let Some(at) = track.diagnosed_at {
                diagnose.push(at.secs_since(opened_at));
            }
            match (track.pages, track.resolved_at, track.page_resolved_at) {
                (0, Some(at), _) => resolve.push(at.secs_since(opened_at)),
                (1.., _, Some(at)) => clear.push(at.secs_since(opened_at)),
                _ => {}
            }
            pages_sent += track.pages;
            pages_delivered += track.pages_delivered;
            failed_fixes += track.failed;
            incidents_with_failed_fix += u64::from(track.failed > 0);
        }
        let ended = outcomes.ended();
        let pages_avoided = ended - outcomes.paged;
        let decisions = self.approvals + self.rejections;
        let hours = (pages_avoided as f64 * assumptions.minutes_per_incident
            - decisions as f64 * assumptions.minutes_per_decision)
            / 60.0;
        let mut top_causes: Vec<Cause> = causes.into_values().collect();
        top_causes.sort_by(|a, b| b.incidents.cmp(&a.incidents).then(a.kind.cmp(&b.kind)));
        Report {
            period: self.period,
            incidents: n_incidents,
            outcomes,
            auto_resolved_pct: (ended > 0)
                .then(|| 100.0 * outcomes.fixed_by_vigil as f64 / ended as f64),
            pages_sent,
            pages_delivered,
            pages_avoided,
            time_to_detect: DetectTimes {
                dated: Durations::of(detect),
                undated,
            },
            time_to_diagnose: Durations::of(diagnose),
            time_to_resolve: Durations::of(resolve),
            time_to_clear_paged: Durations::of(clear),
            failed_fixes,
            incidents_with_failed_fix,
            compensations: self.compensations,
            policy_denials: self.denials,
            proposals: self.n_proposals,
            approvals: self.approvals,
            rejections: self.rejections,
            top_causes,
            scheduled,
            hours_returned: HoursReturned {
                assumptions,
                incidents_without_page: pages_avoided,
                decisions,
                hours,
            },
        }
    }
}

/// When the bad run that made a finding fire began: the first of the trailing observations
/// in its evidence that were past the detector's firing level. `None` for evidence that
/// does not list its observations against a level (burn rates and proportions judge windows;
/// schedules are not detections).
#[must_use]
pub fn onset(finding: &Finding) -> Option<Timestamp> {
    match &finding.evidence {
        Evidence::Spike(spike) => {
            let t = &spike.thresholds;
            let floor = (spike.baseline_per_sec * t.fire_ratio)
                .max(spike.baseline_per_sec + t.fire_z * spike.spread_per_sec)
                .max(t.min_rate_per_sec);
            first_of_trailing_run(&spike.recent, |value| value >= floor)
        }
        Evidence::Threshold(threshold) => {
            let fire = threshold.fire;
            first_of_trailing_run(&threshold.recent, |value| match threshold.bound {
                Bound::Above => value >= fire,
                Bound::Below => value <= fire,
            })
        }
        Evidence::Anomaly(anomaly) => {
            let clear = anomaly.clear;
            let high = anomaly.is_high();
            first_of_trailing_run(&anomaly.recent, |value| {
                if high { value > clear } else { value < clear }
            })
        }
        Evidence::BurnRate(_) | Evidence::ProportionDrop(_) | Evidence::Schedule(_) => None,
    }
}

/// The first point of the longest run at the end of `points` whose values are all `bad`;
/// `None` when the last point is not.
fn first_of_trailing_run(points: &[Point], bad: impl Fn(f64) -> bool) -> Option<Timestamp> {
    let run = points
        .iter()
        .rev()
        .take_while(|point| point.value.is_finite() && bad(point.value))
        .count();
    let first = points.len().checked_sub(run)?;
    (run > 0).then(|| points.get(first).map(|point| point.at))?
}

#[cfg(test)]
pub(crate) mod tests;
