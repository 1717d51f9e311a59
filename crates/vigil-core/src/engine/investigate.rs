//! The assistant in the engine (sessions whose config has `assistant`): which incidents it
//! investigates, the read-only tools it is served from the engine's state, and what the
//! engine makes of its answer: checked against the evidence the tools returned
//! ([`crate::investigation::check`]), recorded, shown beside the diagnosis (the why-packet,
//! or a follow-up to a page already sent) and given to Cedar as `assistant_agrees`. It never
//! changes which runbook runs.

use std::collections::BTreeMap;

use super::command::AssistantNote;
use super::{Command, Engine, Record};
use crate::diagnosis::{HypothesisKind, advice};
use crate::investigation::tools::{MAX_SERIES_PER_QUERY, ToolCall, ToolOutput};
use crate::investigation::{
    Agreement, AssistantConfig, CheckedAnswer, EvidenceItem, InvestigationOutcome,
    InvestigationRequest, Scope, agreement, check,
};
use crate::store::Selector;
use crate::time::Timestamp;

/// At most this many investigations wait for their answer; past it, new ones are not asked
/// for (recorded as `busy`).
const MAX_PENDING: usize = 256;
/// At most this many items answer a subject or incident tool call (before the byte cap).
const MAX_ITEMS: usize = 40;

/// An incident's side of the assistant.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct AssistantState {
    /// Whether it was asked for (one investigation per incident).
    pub(crate) requested: bool,
    /// Whether its best hypothesis agrees with the diagnosis, once checked.
    pub(crate) agrees: Option<bool>,
    /// What people are shown, once checked.
    pub(crate) note: Option<Box<AssistantNote>>,
}

/// An investigation asked for and not answered yet.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Pending {
    incident_id: Option<String>,
    task: String,
    tolerance: f64,
    /// The diagnosis' best kind when it was asked for (the incident may end before the
    /// answer comes).
    best: Option<HypothesisKind>,
    /// The page's title, if the incident had paged when it was asked for.
    page_title: Option<String>,
}

/// The investigations waiting for their answer, by id.
pub(super) type PendingInvestigations = BTreeMap<String, Pending>;

impl Engine {
    /// At the end of an event: asks for the investigations the scope calls for, of the
    /// incidents this event opened (`all`, and `novel` when no runbook took them) or of those
    /// that paged (`paged`).
    pub(super) fn request_investigations(&mut self, out: &mut Vec<Command>) {
        let opened = std::mem::take(&mut self.assistant_candidates);
        let Some(config) = self.config.assistant.clone() else {
            return;
        };
        let wanted: Vec<String> = match config.on {
            Scope::All => opened,
            Scope::Novel => opened
                .into_iter()
                .filter(|id| {
                    self.incidents
                        .get(id)
                        .is_some_and(|incident| incident.runbook_idx.is_none())
                })
                .collect(),
            Scope::Paged => self
                .incidents
                .iter()
                .filter(|(_, incident)| incident.page_title.is_some())
                .map(|(id, _)| id.clone())
                .collect(),
        };
        for incident_id in wanted {
            self.investigate(&incident_id, &config, out);
        }
    }

    fn investigate(&mut self, incident_id: &str, config: &AssistantConfig, out: &mut Vec<Command>) {
        let Some(incident) = self.incidents.get_mut(incident_id) else {
            return;
        };
        if incident.assistant.requested {
            return;
        }
        incident.assistant.requested = true;
        let investigation_id = format!("{incident_id}/investigation");
        if self.investigations.len() >= MAX_PENDING {
            out.push(Command::Record(Record::InvestigationFailed {
                investigation_id,
                incident_id: Some(incident_id.to_owned()),
                failure: crate::investigation::Failure::Busy,
                detail: format!("{MAX_PENDING} investigations are waiting for their answer"),
                usage: crate::investigation::Usage::default(),
                transcript_blob: None,
            }));
            return;
        }
        let task = self.task_of(incident_id);
        let page_title = self
            .incidents
            .get(incident_id)
            .and_then(|incident| incident.page_title.clone());
        self.investigations.insert(
            investigation_id.clone(),
            Pending {
                incident_id: Some(incident_id.to_owned()),
                task: task.clone(),
                tolerance: config.tolerance,
                best: self.diagnosis_best(incident_id),
                page_title,
            },
        );
        out.push(Command::Investigate {
            investigation_id,
            request: Box::new(InvestigationRequest {
                incident_id: Some(incident_id.to_owned()),
                task,
                limits: config.clone(),
            }),
        });
    }

    /// The task the model reads: the incident, what vigil did so far and the deterministic
    /// diagnosis, all in vigil's own words.
    fn task_of(&self, incident_id: &str) -> String {
        let Some(incident) = self.incidents.get(incident_id) else {
            return String::new();
        };
        let diagnosis = incident.ranked.as_ref().unwrap_or(&incident.diagnosis);
        let mut lines = vec![
            format!(
                "Incident {incident_id}, opened {}: {}.",
                incident.opened_at.to_rfc3339(),
                super::narration::finding_words(&incident.finding)
            ),
            format!(
                "Detector {} on {} (source {}, severity {}).",
                incident.finding.detector,
                incident.finding.subject.readable_name(),
                incident.finding.source,
                incident.finding.severity.as_str()
            ),
            format!("vigil's diagnosis: {}", diagnosis.why),
            "Its hypotheses, best first:".to_owned(),
        ];
        for (n, hypothesis) in diagnosis.hypotheses.iter().enumerate() {
            lines.push(format!(
                "{}. {} ({}): {}",
                n + 1,
                hypothesis.kind.as_str(),
                self.config.numbers.percent(hypothesis.confidence),
                advice::cause_line(hypothesis)
            ));
        }
        for member in incident.members.iter().skip(1) {
            lines.push(format!(
                "Joined: {}.",
                super::narration::finding_words(&member.finding)
            ));
        }
        for done in &incident.history {
            lines.push(format!("vigil did: {done}"));
        }
        if let Some(escalation) = &incident.escalation {
            lines.push(format!("vigil paged because {}.", escalation.reason));
        }
        lines.push(format!(
            "Investigate with the tools (incident_evidence for {incident_id} first), then answer \
             with the JSON object."
        ));
        lines.join("\n")
    }

    /// Whether an incident of this id is open (not yet ended and dropped).
    #[must_use]
    pub fn has_incident(&self, incident_id: &str) -> bool {
        self.incidents.contains_key(incident_id)
    }

    /// The investigation the engine would ask for about an open incident, with `limits`,
    /// asking for nothing (for `vigil investigate`, after the fact).
    #[must_use]
    pub fn investigation_request(
        &self,
        incident_id: &str,
        limits: &AssistantConfig,
    ) -> Option<InvestigationRequest> {
        self.incidents.get(incident_id)?;
        Some(InvestigationRequest {
            incident_id: Some(incident_id.to_owned()),
            task: self.task_of(incident_id),
            limits: limits.clone(),
        })
    }

    /// The best hypothesis of an open incident's diagnosis (ranked over its findings).
    #[must_use]
    pub fn diagnosis_best(&self, incident_id: &str) -> Option<HypothesisKind> {
        let incident = self.incidents.get(incident_id)?;
        incident
            .ranked
            .as_ref()
            .unwrap_or(&incident.diagnosis)
            .best()
            .map(|best| best.kind)
    }

    /// A person's question as the model reads it, with what is open now: each open
    /// incident's id, opening and finding, so that the tools can be asked about them.
    #[must_use]
    pub fn question_task(&self, question: &str) -> String {
        let mut lines = vec![
            format!("A person on call asks: {question}"),
            format!("Open incidents ({}):", self.incidents.len()),
        ];
        for incident in self.incidents.values().take(20) {
            lines.push(format!(
                "- {} opened {}: {}",
                incident.id,
                incident.opened_at.to_rfc3339(),
                super::narration::finding_words(&incident.finding)
            ));
        }
        lines.push("Investigate with the tools, then answer with the JSON object.".to_owned());
        lines.join("\n")
    }

    /// The assistant's answer came back (or did not): checked, recorded, shown.
    pub(super) fn on_investigation_finished(
        &mut self,
        investigation_id: &str,
        outcome: &InvestigationOutcome,
        out: &mut Vec<Command>,
    ) {
        let Some(pending) = self.investigations.remove(investigation_id) else {
            return; // Not ours, or answered already.
        };
        let (answer, evidence, usage, transcript_blob) = match outcome {
            InvestigationOutcome::Failed {
                failure,
                detail,
                usage,
                transcript_blob,
            } => {
                out.push(Command::Record(Record::InvestigationFailed {
                    investigation_id: investigation_id.to_owned(),
                    incident_id: pending.incident_id,
                    failure: *failure,
                    detail: detail.clone(),
                    usage: usage.clone(),
                    transcript_blob: transcript_blob.clone(),
                }));
                return;
            }
            InvestigationOutcome::Answered {
                answer,
                evidence,
                usage,
                transcript_blob,
            } => (answer, evidence, usage, transcript_blob),
        };
        let checked = check(answer, evidence, &pending.task, pending.tolerance);
        // Compared with the diagnosis now, or, once the incident ended, as it was asked.
        let best = pending
            .incident_id
            .as_deref()
            .and_then(|id| self.diagnosis_best(id))
            .or(pending.best);
        let agrees = agreement(&checked.hypotheses, best).map(|a| a == Agreement::Agrees);
        out.push(Command::Record(Record::InvestigationChecked {
            investigation_id: investigation_id.to_owned(),
            incident_id: pending.incident_id.clone(),
            checked: Box::new(checked.clone()),
            agrees,
            usage: usage.clone(),
            transcript_blob: transcript_blob.clone(),
        }));
        if checked.hypotheses.is_empty() && checked.narrative.is_none() {
            return; // Nothing survived: nothing to show.
        }
        let note = note_of(&checked, agrees, best);
        let incident = pending
            .incident_id
            .as_ref()
            .and_then(|id| self.incidents.get_mut(id));
        // A page already sent (by this incident, or before it ended) is followed up.
        let page_title = match incident {
            Some(incident) => {
                incident.assistant.agrees = agrees;
                incident.assistant.note = Some(Box::new(note.clone()));
                incident.page_title.clone()
            }
            None => pending.page_title,
        };
        if let (Some(title), Some(incident_id)) = (page_title, pending.incident_id) {
            out.push(Command::UpdatePage {
                incident_id,
                title,
                note: Box::new(note),
            });
        }
    }

    /// Serves one of the investigator's tools from the engine's state, read-only, the output
    /// cut to `max_bytes`. [`ToolCall::LedgerEntries`] is the runtime's (it holds the
    /// ledger): the engine refuses it.
    #[must_use]
    pub fn investigation_tool(
        &self,
        call: &ToolCall,
        now: Timestamp,
        max_bytes: usize,
    ) -> ToolOutput {
        match call {
            ToolCall::QuerySeries { selector, minutes } => {
                self.tool_series(selector, *minutes, now, max_bytes)
            }
            ToolCall::SubjectContext { subject } => self.tool_subject(subject, max_bytes),
            ToolCall::IncidentEvidence { incident_id } => {
                self.tool_incident(incident_id, max_bytes)
            }
            ToolCall::LedgerEntries { .. } => {
                ToolOutput::refused("the ledger is not readable here")
            }
        }
    }

    /// The open incidents about `subject` (`label=value` or a bare value), for the ledger
    /// tool the runtime serves.
    #[must_use]
    pub fn incidents_about(&self, subject: &str) -> Vec<String> {
        let named = SubjectName::parse(subject);
        self.incidents
            .values()
            .filter(|incident| {
                incident
                    .members
                    .iter()
                    .any(|member| named.names(&member.finding.subject))
            })
            .map(|incident| incident.id.clone())
            .collect()
    }

    fn tool_series(
        &self,
        selector: &str,
        minutes: u32,
        now: Timestamp,
        max_bytes: usize,
    ) -> ToolOutput {
        let selector = match Selector::parse(selector) {
            Ok(selector) => selector,
            Err(error) => return ToolOutput::refused(&format!("bad selector: {error}")),
        };
        let window_ms = i64::from(minutes) * 60_000;
        let start = Timestamp(now.0.saturating_sub(window_ms));
        let numbers = self.config.numbers;
        let all = self.store.select(selector.matchers());
        let mut items = Vec::new();
        for series in all.iter().take(MAX_SERIES_PER_QUERY) {
            let Some(identity) = self.store.identity(*series) else {
                continue;
            };
            let Some(latest) = self.store.latest(*series) else {
                continue;
            };
            let earlier = self.store.value_at(*series, start, window_ms);
            let rate = self.store.rate(*series, window_ms, now);
            let mut statement = format!(
                "{} at {}",
                numbers.number(latest.value),
                latest.at.to_rfc3339()
            );
            let mut values = vec![latest.value];
            if let Some(earlier) = earlier {
                statement.push_str(&format!(
                    "; {} at {}",
                    numbers.number(earlier.value),
                    earlier.at.to_rfc3339()
                ));
                values.push(earlier.value);
            }
            if let Some(rate) = rate {
                statement.push_str(&format!(
                    "; rising {} per second over {minutes} min",
                    numbers.number(rate)
                ));
                values.push(rate);
            }
            if self.store.is_stale(*series) {
                statement.push_str(" (stale)");
            }
            items.push(EvidenceItem::new(
                's',
                identity.to_string(),
                statement,
                values,
            ));
        }
        let note = format!(
            "{} series match {}; {} shown at most",
            all.len(),
            selector.as_str(),
            MAX_SERIES_PER_QUERY
        );
        ToolOutput::capped(&note, items, max_bytes)
    }

    fn tool_subject(&self, subject: &str, max_bytes: usize) -> ToolOutput {
        let named = SubjectName::parse(subject);
        let value = named.value;
        let matches = |s: &crate::detector::Subject| named.names(s);
        let mut items = Vec::new();
        for incident in self.incidents.values() {
            for member in &incident.members {
                if matches(&member.finding.subject) {
                    let statement = format!(
                        "incident {}: {} (detector {}, raised {})",
                        incident.id,
                        super::narration::finding_words(&member.finding),
                        member.finding.detector,
                        member.raised_at.to_rfc3339()
                    );
                    items.push(EvidenceItem::new(
                        'f',
                        member.finding.subject.readable_name(),
                        statement.clone(),
                        crate::investigation::numbers_of(&statement),
                    ));
                }
            }
        }
        for change in self
            .changes
            .iter()
            .rev()
            .filter(|change| matches(&change.subject))
        {
            items.push(EvidenceItem::new(
                'c',
                change.subject.readable_name(),
                format!("{} at {}", change.describe(), change.at.to_rfc3339()),
                Vec::new(),
            ));
        }
        if let Some(grouping) = &self.grouping {
            for edge in grouping.topology.edges() {
                if edge.from.name == value || edge.to.name == value {
                    items.push(EvidenceItem::new(
                        't',
                        value.to_owned(),
                        edge.to_string(),
                        Vec::new(),
                    ));
                }
                if items.len() >= MAX_ITEMS * 2 {
                    break;
                }
            }
        }
        items.truncate(MAX_ITEMS);
        let note = format!("what vigil knows about {subject}: findings, version changes, topology");
        ToolOutput::capped(&note, items, max_bytes)
    }

    fn tool_incident(&self, incident_id: &str, max_bytes: usize) -> ToolOutput {
        let Some(incident) = self.incidents.get(incident_id) else {
            return ToolOutput::refused("no open incident has this id");
        };
        let about = incident.finding.subject.readable_name();
        let mut items = Vec::new();
        for member in &incident.members {
            let statement = format!(
                "finding of {} on {}: {}",
                member.finding.detector,
                member.finding.subject.readable_name(),
                super::narration::finding_words(&member.finding)
            );
            items.push(EvidenceItem::new(
                'f',
                member.finding.subject.readable_name(),
                statement.clone(),
                crate::investigation::numbers_of(&statement),
            ));
        }
        let diagnosis = incident.ranked.as_ref().unwrap_or(&incident.diagnosis);
        for hypothesis in &diagnosis.hypotheses {
            let subject = hypothesis
                .subject
                .as_ref()
                .map_or_else(|| about.clone(), crate::detector::Subject::readable_name);
            for text in hypothesis
                .evidence
                .iter()
                .chain(hypothesis.support.iter().map(|fact| &fact.text))
            {
                items.push(EvidenceItem::new(
                    'e',
                    subject.clone(),
                    format!("{}: {text}", hypothesis.kind.as_str()),
                    crate::investigation::numbers_of(text),
                ));
            }
            for fact in &hypothesis.against {
                items.push(EvidenceItem::new(
                    'e',
                    subject.clone(),
                    format!("against {}: {}", hypothesis.kind.as_str(), fact.text),
                    crate::investigation::numbers_of(&fact.text),
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        items.retain(|item| seen.insert(item.id.clone()));
        items.truncate(MAX_ITEMS);
        let note = format!("incident {incident_id}: its findings and the diagnosis' evidence");
        ToolOutput::capped(&note, items, max_bytes)
    }
}

/// A subject as the model names it: `label=value`, or a bare value (or alias).
struct SubjectName<'a> {
    label: Option<&'a str>,
    value: &'a str,
}

impl<'a> SubjectName<'a> {
    fn parse(subject: &'a str) -> Self {
        match subject.split_once('=') {
            Some((label, value)) => SubjectName {
                label: Some(label.trim()),
                value: value.trim().trim_matches('"'),
            },
            None => SubjectName {
                label: None,
                value: subject.trim(),
            },
        }
    }

    /// Whether it names `subject` (by value or alias, and label when given).
    fn names(&self, subject: &crate::detector::Subject) -> bool {
        self.label.is_none_or(|label| subject.label == label)
            && (subject.value == self.value || subject.alias.as_deref() == Some(self.value))
    }
}

/// The words people read (the why-packet, a page's follow-up, `vigil investigate`): the
/// surviving hypotheses with the facts they cite (vigil's
/// statements, not the model's), the agreement, and how much was dropped.
pub fn note_of(
    checked: &CheckedAnswer,
    agrees: Option<bool>,
    best: Option<HypothesisKind>,
) -> AssistantNote {
    let best_name = best.map_or("none", HypothesisKind::as_str);
    let agreement = match (agrees, checked.hypotheses.first()) {
        (Some(true), _) => format!("The assistant agrees with vigil's diagnosis ({best_name})."),
        (Some(false), Some(first)) => format!(
            "The assistant disagrees: it ranks {} first, vigil's diagnosis {best_name}.",
            first.kind_name()
        ),
        _ => "None of the assistant's hypotheses checked out.".to_owned(),
    };
    let hypotheses = checked
        .hypotheses
        .iter()
        .map(|hypothesis| {
            let facts: Vec<String> = hypothesis
                .evidence
                .iter()
                .map(|cited| format!("{} ({})", cited.statement, cited.id))
                .collect();
            let subject = hypothesis
                .subject
                .as_ref()
                .map_or_else(String::new, |subject| format!(" of {subject}"));
            format!("{}{subject}: {}", hypothesis.kind_name(), facts.join("; "))
        })
        .collect();
    AssistantNote {
        agrees,
        agreement,
        hypotheses,
        narrative: checked.narrative.clone(),
        next_check: checked.next_check.clone(),
        checked: format!(
            "the assistant's, checked against vigil's store: {} of {} claims dropped",
            checked.dropped.len(),
            checked.claims
        ),
    }
}
