//! The why-packet of a page, written for a person with thirty seconds (sessions with a
//! topology; sessions recorded before it keep the packet they were recorded with, see
//! [`Engine::escalate`](super::Engine)).
//!
//! It says, in this order:
//! - what was seen and the most likely cause (`summary`, `cause`);
//! - the chain from the symptom to the cause, one finding per line with its layer (`chain`);
//! - the evidence for the cause and against it, each with its layer (`evidence`, `against`);
//! - what vigil did and what it measured (`actions`), and what it left in place, each with
//!   how to undo it (`left_in_place`);
//! - why vigil hands over (`reason`) and the one thing to do (`ask`): about the cause unless
//!   vigil's own situation (a storm, flapping, a change half working) matters more;
//! - the commands that show and replay the incident (`commands`).
//!
//! The same packet goes to every pager and, as the page command, into the ledger. Pure:
//! built from the incident's state alone.

use super::incident::{Incident, Phase};
use super::{Action, Engine, WhyPacket};
use crate::diagnosis::{Diagnosis, Hypothesis, advice};
use crate::topology::Layer;

/// The most lines of each list: a page is read in thirty seconds, the ledger has the rest.
const MAX_LINES: usize = 12;

/// What a page asks a person to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ask {
    /// Act on the cause: the best hypothesis' own advice. `legacy` is what sessions recorded
    /// before the cross-layer packet asked, which they keep.
    Cause { legacy: String },
    /// Something about vigil's own situation (a storm, flapping, a change left half
    /// working) that matters more than the cause.
    Situation(String),
    /// vigil could not undo its change: undo by hand what is left in place.
    Undo { legacy: String },
}

impl Ask {
    /// Acting on the cause, with the words older sessions used.
    pub(crate) fn cause(legacy: &str) -> Self {
        Ask::Cause {
            legacy: legacy.to_owned(),
        }
    }

    /// About vigil's situation.
    pub(crate) fn situation(text: &str) -> Self {
        Ask::Situation(text.to_owned())
    }

    /// Undo by hand, with the words older sessions used.
    pub(crate) fn undo(legacy: &str) -> Self {
        Ask::Undo {
            legacy: legacy.to_owned(),
        }
    }

    /// The words of sessions recorded before the cross-layer packet.
    pub(crate) fn legacy(&self) -> &str {
        match self {
            Ask::Cause { legacy } | Ask::Undo { legacy } => legacy,
            Ask::Situation(text) => text,
        }
    }
}

/// The commands that show and replay an incident (the page, its resolution, the docs).
#[must_use]
pub fn incident_commands(incident_id: &str) -> Vec<String> {
    vec![
        format!("vigil ledger show --incident {incident_id}"),
        format!("vigil replay --incident {incident_id}"),
    ]
}

/// `[layer] text`.
fn tagged(layer: Layer, text: &str) -> String {
    format!("[{}] {text}", layer.as_str())
}

/// Adds `line` unless it is there already or the list is full.
fn push_unique(lines: &mut Vec<String>, line: String) {
    if lines.len() < MAX_LINES && !lines.contains(&line) {
        lines.push(line);
    }
}

/// The evidence for `best`: its own facts with its layer, then the facts other layers gave.
fn evidence_of(best: &Hypothesis, fallback_layer: Layer) -> Vec<String> {
    let own_layer = best.layer.unwrap_or(fallback_layer);
    let mut lines = Vec::new();
    for text in &best.evidence {
        // A fact also listed with its own layer is shown once, there.
        if best.support.iter().any(|fact| &fact.text == text) {
            continue;
        }
        push_unique(&mut lines, tagged(own_layer, text));
    }
    for fact in &best.support {
        push_unique(&mut lines, tagged(fact.layer, &fact.text));
    }
    lines
}

impl Engine {
    /// The packet of a page about `incident` (see the module docs).
    pub(super) fn why_packet(&self, incident: &Incident, reason: &str, ask: &Ask) -> WhyPacket {
        // The causes ranked over all the incident's findings, once another joined it.
        let diagnosis: &Diagnosis = incident.ranked.as_ref().unwrap_or(&incident.diagnosis);
        let symptom_layer = crate::diagnosis::rank::layer_of(&incident.finding);
        let symptom = super::narration::finding_words(&incident.finding);
        let best = diagnosis.best();
        let cause = best.map_or_else(String::new, advice::cause_line);
        let summary = if cause.is_empty() {
            format!("{symptom}; vigil found no cause.")
        } else {
            format!("{symptom}. Most likely cause: {cause}.")
        };
        // From the symptom to the cause: the findings in the order they fired, then the cause.
        let mut chain = vec![tagged(symptom_layer, &symptom)];
        let mut others: Vec<_> = incident
            .members
            .iter()
            .filter(|member| member.fingerprint != incident.finding.fingerprint)
            .collect();
        others.sort_by_key(|member| member.raised_at);
        for member in others {
            let layer = crate::diagnosis::rank::layer_of(&member.finding);
            push_unique(
                &mut chain,
                tagged(layer, &super::narration::finding_words(&member.finding)),
            );
        }
        if let Some(best) = best {
            // The first fact each other layer gave, in the diagnoser's order: the links.
            let mut layers_seen = vec![symptom_layer];
            for fact in &best.support {
                if !layers_seen.contains(&fact.layer) {
                    layers_seen.push(fact.layer);
                    push_unique(&mut chain, tagged(fact.layer, &fact.text));
                }
            }
            let layer = best.layer.unwrap_or(symptom_layer);
            push_unique(&mut chain, tagged(layer, &format!("cause: {cause}")));
        }
        let evidence = best.map_or_else(Vec::new, |best| evidence_of(best, symptom_layer));
        let mut against = Vec::new();
        if let Some(best) = best {
            for fact in &best.against {
                push_unique(&mut against, tagged(fact.layer, &fact.text));
            }
        }
        let ask = match ask {
            Ask::Situation(text) => text.clone(),
            Ask::Cause { legacy } => best.map_or_else(|| legacy.clone(), advice::next_step),
            Ask::Undo { .. } => "vigil could not undo its change: undo by hand what is left \
                                 in place (each line says how), then decide about the cause."
                .to_owned(),
        };
        WhyPacket {
            incident_id: incident.id.clone(),
            summary,
            evidence,
            actions: incident.history.clone(),
            reason: reason.to_owned(),
            ask,
            cause,
            chain,
            against,
            left_in_place: self.left_in_place(incident),
            commands: incident_commands(&incident.id),
            assistant: incident.assistant.note.clone(),
        }
    }

    /// vigil's changes still in place: forward steps that succeeded and were not undone,
    /// each with how to undo it. Reads (an HTTP GET or HEAD) change nothing.
    pub(super) fn left_in_place(&self, incident: &Incident) -> Vec<String> {
        let mut lines = Vec::new();
        for idx in &incident.completed {
            if incident.undone.contains(idx) {
                continue;
            }
            let Ok(action) = self.build_action(incident, *idx, Phase::Forward) else {
                continue;
            };
            if let Action::HttpCall { method, .. } = &action
                && matches!(method.to_ascii_uppercase().as_str(), "GET" | "HEAD")
            {
                continue;
            }
            let undo = match self.build_action(incident, *idx, Phase::Compensation) {
                Ok(undo) => format!("undo: {}", undo.describe()),
                Err(_) => {
                    "its runbook has no undo: change it back on the target by hand".to_owned()
                }
            };
            push_unique(&mut lines, format!("{} ({undo})", action.describe()));
        }
        lines
    }
}
