//! Turns what the daemon records into a timeline people can follow.

use std::collections::BTreeMap;

use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use vigil_core::authz::{AttrValue, Effect};
use vigil_core::engine::{Action, Command, Event, Record};

use crate::daemon::{Note, NoteBody};
use crate::journal::SessionRecord;

/// How an incident ended, as far as the demo is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Still going.
    Pending,
    /// Resolved with no page.
    Resolved {
        /// The incident.
        incident_id: String,
    },
    /// Handed to a human.
    Escalated {
        /// The incident.
        incident_id: String,
    },
}

/// Prints notes until the channel closes, publishing the first incident's outcome.
pub async fn print(
    mut notes: broadcast::Receiver<Note>,
    started: Instant,
    outcome: watch::Sender<Outcome>,
) {
    let mut printer = Printer {
        started,
        names: BTreeMap::new(),
        saw_samples: false,
        first_incident: None,
    };
    loop {
        match notes.recv().await {
            Ok(note) => {
                if let Some(next) = printer.note(&note) {
                    outcome.send_replace(next);
                }
            }
            Err(broadcast::error::RecvError::Lagged(n_missed)) => {
                printer.line(&format!(
                    "({n_missed} ledger entries not shown: the printer fell behind)"
                ));
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

struct Printer {
    started: Instant,
    /// Hashed key to alias, learned from findings.
    names: BTreeMap<String, String>,
    saw_samples: bool,
    first_incident: Option<String>,
}

impl Printer {
    fn line(&self, text: &str) {
        println!("{:>6.1}s  {text}", self.started.elapsed().as_secs_f64());
    }

    /// A line with a label in the label column.
    fn step(&self, label: &str, text: &str) {
        self.line(&format!("{label:<11}{text}"));
    }

    fn name(&self, key: &str) -> String {
        self.names
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.chars().take(12).collect())
    }

    fn note(&mut self, note: &Note) -> Option<Outcome> {
        match &note.body {
            NoteBody::Session(SessionRecord::SessionStarted {
                policy_set_hash, ..
            }) => {
                self.line(&format!(
                    "vigil started; session recorded at ledger entry {} (policy set {})",
                    note.seq,
                    policy_set_hash.get(..12).unwrap_or_default()
                ));
                None
            }
            NoteBody::Session(SessionRecord::PoliciesReloaded {
                policy_set_hash, ..
            }) => {
                self.line(&format!(
                    "policies reloaded (policy set {})",
                    policy_set_hash.get(..12).unwrap_or_default()
                ));
                None
            }
            NoteBody::Session(SessionRecord::SessionEnded {
                reason,
                interrupted,
            }) => {
                let extra = if interrupted.is_empty() {
                    String::new()
                } else {
                    format!("; interrupted: {interrupted:?}")
                };
                self.line(&format!(
                    "vigil stopped ({reason}){extra}; ledger entry {}",
                    note.seq
                ));
                None
            }
            NoteBody::Event(event) => {
                self.event(event);
                None
            }
            // The demo pushes nothing.
            NoteBody::Pushed { .. } => None,
            NoteBody::Command(command) => self.command(command),
        }
    }

    fn event(&mut self, event: &Event) {
        match event {
            Event::Scraped { samples, .. } => {
                if !self.saw_samples && !samples.is_empty() {
                    self.saw_samples = true;
                    self.line(&format!(
                        "scraping the gateway: {} token counters; learning each key's baseline",
                        samples.len()
                    ));
                }
            }
            Event::ScrapeFailed { source, error } => {
                self.step("SCRAPE FAIL", &format!("{source}: {error}"))
            }
            Event::AuthorizationDecided { decision, .. } => {
                let label = match decision.effect {
                    Effect::Allow => "AUTHORIZED",
                    Effect::Deny => "DENIED",
                };
                let policies = if decision.determining_policies.is_empty() {
                    "no policy permits it (default deny)".to_owned()
                } else {
                    format!("by policy {}", decision.determining_policies.join(", "))
                };
                let set = decision.policy_set_hash.get(..12).unwrap_or_default();
                self.step(label, &format!("{policies} (policy set {set})"));
            }
            Event::ActionFinished { outcome, .. } => {
                let status = outcome
                    .http_status
                    .map_or_else(String::new, |status| format!(" (HTTP {status})"));
                let label = if outcome.succeeded { "ACTED" } else { "FAILED" };
                self.step(label, &format!("{}{status}", outcome.detail));
            }
            Event::PageFinished {
                delivered, detail, ..
            } => {
                let label = if *delivered {
                    "PAGE SENT"
                } else {
                    "PAGE FAILED"
                };
                self.step(label, detail);
            }
            Event::Queried { .. } => {}
            Event::Pushed { payload } => {
                self.step(
                    "PUSHED",
                    &format!("{} {}", payload.n_items(), payload.kind()),
                );
            }
            // The record the engine makes of it says what came back.
            Event::Tick | Event::InvestigationFinished { .. } => {}
            Event::ScheduledRun { runbook_id } => {
                self.step("SCHEDULED", &format!("runbook {runbook_id} came due"));
            }
            Event::Human {
                by,
                reason,
                command,
                ..
            } => {
                self.step("HUMAN", &format!("{by}: {} ({reason})", command.describe()));
            }
            Event::HumanDecided { decision, .. } => {
                let label = match decision.effect {
                    Effect::Allow => "PERMITTED",
                    Effect::Deny => "REFUSED",
                };
                let policies = if decision.determining_policies.is_empty() {
                    "no policy permits it (default deny)".to_owned()
                } else {
                    format!("by policy {}", decision.determining_policies.join(", "))
                };
                self.step(label, &format!("the person's instruction, {policies}"));
            }
        }
    }

    fn command(&mut self, command: &Command) -> Option<Outcome> {
        match command {
            Command::Record(record) => return self.record(record),
            Command::Authorize { request, .. } => {
                let tier = match request.resource.attrs.get("tier") {
                    Some(AttrValue::String(tier)) => tier.clone(),
                    _ => "?".to_owned(),
                };
                self.step(
                    "ASKING",
                    &format!(
                        "Cedar: may runbook {} {} key {} (tier {tier}{})?",
                        request.principal.uid.id,
                        request.action.cedar_id(),
                        self.name(&request.resource.uid.id),
                        if request.context.is_compensation {
                            ", as a compensation"
                        } else {
                            ""
                        }
                    ),
                );
            }
            Command::Execute {
                action,
                idempotency_key,
                ..
            } => {
                let short_key = idempotency_key.get(..12).unwrap_or_default();
                let what = match action {
                    Action::LitellmBlockKey { source, key } => {
                        format!("POST /key/block for key {} on {source}", self.name(key))
                    }
                    Action::LitellmUnblockKey { source, key } => {
                        format!("POST /key/unblock for key {} on {source}", self.name(key))
                    }
                    other => other.describe(),
                };
                self.step("ACTING", &format!("{what} (idempotency key {short_key})"));
            }
            Command::AuthorizeHuman { request, .. } => {
                self.step(
                    "ASKING",
                    &format!(
                        "Cedar: may {} {} {}?",
                        request.principal.uid.id,
                        request.action.cedar_id(),
                        request.resource.uid.id
                    ),
                );
            }
            Command::Page { page, .. } => {
                self.step("PAGING", &format!("\"{}\"", page.title));
                self.step("", &format!("why: {}", page.why.reason));
            }
            Command::Notify { notice, .. } => {
                self.step(
                    "TELLING",
                    &format!("{} (owner): {}", notice.owner, notice.change),
                );
            }
            Command::ResolvePage { title, .. } => {
                self.step("RESOLVING", &format!("the page \"{title}\""));
            }
            Command::Investigate {
                investigation_id, ..
            } => {
                self.step(
                    "ASSISTANT",
                    &format!(
                        "the assistant investigates ({investigation_id}); nothing waits for it"
                    ),
                );
            }
            Command::UpdatePage { title, note, .. } => {
                self.step(
                    "UPDATING",
                    &format!("the page \"{title}\": {}", note.agreement),
                );
                if let Some(narrative) = &note.narrative {
                    self.step("", &format!("assistant: {narrative}"));
                }
            }
            Command::WakeAt { .. } => {}
        }
        None
    }

    fn record(&mut self, record: &Record) -> Option<Outcome> {
        // The words are the record's own (`Record::describe`); the demo adds its labels, the
        // diagnosis' evidence, and the outcome of the first incident.
        let label = match record {
            Record::FindingRaised { finding } => {
                if let Some(alias) = &finding.subject.alias {
                    self.names
                        .insert(finding.subject.value.clone(), alias.clone());
                }
                "DETECTED"
            }
            Record::FindingCleared { .. } => "CLEARED",
            Record::VersionChanged { .. } => "CHANGED",
            Record::SeriesRefused { .. } => "CARDINALITY",
            Record::IncidentOpened { incident_id, .. } => {
                if self.first_incident.is_none() {
                    self.first_incident = Some(incident_id.clone());
                }
                "OPENED"
            }
            Record::Diagnosed { .. } => "DIAGNOSED",
            Record::RunbookSelected { .. } => "RUNBOOK",
            Record::StepDenied { .. } => "NOT ACTING",
            Record::StepProposed { .. } => "PROPOSED",
            Record::HumanAction { accepted: true, .. } => "ACCEPTED",
            Record::HumanAction {
                accepted: false, ..
            } => "REFUSED",
            Record::GuardrailHeld { .. } => "HELD",
            Record::VerificationStarted { .. } => "VERIFYING",
            Record::VerificationPassed { .. } => "VERIFIED",
            Record::VerificationFailed { .. } => "NOT FIXED",
            Record::CompensationStarted { .. } => "UNDOING",
            Record::IncidentResolved { .. } => "RESOLVED",
            Record::IncidentEscalated { .. } => "ESCALATED",
            Record::FindingJoined { .. } => "JOINED",
            Record::EffectMeasured { .. } => "EFFECT",
            Record::PageResolved { .. } => "ENDED",
            Record::OwnerNotified { .. } => "TOLD",
            Record::TopologyGrew { .. } => "TOPOLOGY",
            Record::InvestigationChecked { .. } => "CHECKED",
            Record::InvestigationFailed { .. } => "NO ANSWER",
        };
        self.step(label, &record.describe());
        match record {
            Record::Diagnosed { diagnosis, .. } => {
                for evidence in diagnosis.best().map_or(&[][..], |best| &best.evidence) {
                    self.step("", &format!("- {evidence}"));
                }
                None
            }
            Record::IncidentResolved { incident_id, .. }
                if self.first_incident.as_deref() == Some(incident_id) =>
            {
                Some(Outcome::Resolved {
                    incident_id: incident_id.clone(),
                })
            }
            Record::IncidentEscalated { incident_id, .. }
                if self.first_incident.as_deref() == Some(incident_id) =>
            {
                Some(Outcome::Escalated {
                    incident_id: incident_id.clone(),
                })
            }
            _ => None,
        }
    }
}
