//! Telling owners: when vigil changes something that has an owner (a key's team, a prompt's,
//! a model group's, a service's), the owner is told at once, through a notification (not a
//! page): what changed, why, and how to undo it. Sessions with a topology only.
//!
//! The owner is, in order: the resource inventory's `owner`; the topology node's `owner`
//! (declared, or a key's alias-less `owned_by` team); for a key, the team the finding names.

use super::incident::{Incident, Phase};
use super::{Command, Engine, Record};
use crate::authz::EntityType;
use crate::topology::{NodeId, NodeKind, Relation};

/// What an owner is told.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Notice {
    /// Who: a team (as the inventory, the topology or the gateway names it).
    pub owner: String,
    /// What vigil changed, one line.
    pub change: String,
    /// Why, one or two sentences.
    pub why: String,
    /// How to undo it.
    pub undo: String,
}

impl Engine {
    /// The owner of a resource vigil changed, if known.
    fn owner_of(&self, incident: &Incident, entity_type: EntityType, id: &str) -> Option<String> {
        if let Some(info) = self.config.resource(entity_type, id)
            && !info.owner.trim().is_empty()
        {
            return Some(info.owner.clone());
        }
        let kind = match entity_type {
            EntityType::ApiKey => NodeKind::Key,
            EntityType::Team => NodeKind::Team,
            EntityType::Deployment => NodeKind::ModelGroup,
            EntityType::Prompt => NodeKind::Prompt,
            EntityType::Service => NodeKind::App,
            EntityType::Provider => NodeKind::Provider,
            EntityType::Runbook
            | EntityType::Human
            | EntityType::Group
            | EntityType::Role
            | EntityType::Proposal
            | EntityType::Control
            | EntityType::Silence => return None,
        };
        let node = NodeId::new(kind, id);
        if let Some(topology) = self.topology() {
            if let Some(owner) = topology.node(&node).and_then(|node| node.owner.clone()) {
                return Some(owner);
            }
            // A team owns itself; a key is owned by its team.
            if kind == NodeKind::Team {
                return Some(id.to_owned());
            }
            if let Some(team) = topology.targets(&node, Relation::OwnedBy).next() {
                return Some(team.name.clone());
            }
        }
        (kind == NodeKind::Key && incident.finding.subject.value == id)
            .then(|| incident.finding.subject.team.clone())
            .flatten()
            .filter(|team| !team.trim().is_empty() && team != "None")
    }

    /// A forward step changed its target: tell the target's owner, when there is one.
    pub(super) fn notify_owner(
        &self,
        incident: &Incident,
        step_idx: usize,
        out: &mut Vec<Command>,
    ) {
        if self.grouping.is_none() {
            return;
        }
        let Some(target) = self.step_resource(incident, step_idx, Phase::Forward) else {
            return;
        };
        let Some(owner) = self.owner_of(incident, target.entity_type, &target.id) else {
            return;
        };
        let Ok(action) = self.build_action(incident, step_idx, Phase::Forward) else {
            return;
        };
        let undo = match self.build_action(incident, step_idx, Phase::Compensation) {
            Ok(undo) => format!(
                "vigil undoes it by itself if the fix does not hold; to undo it now: {} (or `vigil reject`/the gateway's admin API)",
                undo.describe()
            ),
            Err(_) => "this step has no undo in its runbook: change it back on the target by hand"
                .to_owned(),
        };
        let diagnosis = incident.ranked.as_ref().unwrap_or(&incident.diagnosis);
        let why = diagnosis.best().map_or_else(
            || incident.finding.fingerprint.clone(),
            |best| {
                let first = best.evidence.first().cloned().unwrap_or_default();
                format!(
                    "incident {}: {} ({first})",
                    incident.id,
                    best.kind.as_str().replace('_', " ")
                )
            },
        );
        let notice = Notice {
            owner,
            change: action.describe(),
            why,
            undo,
        };
        out.push(Command::Record(Record::OwnerNotified {
            incident_id: incident.id.clone(),
            notice: notice.clone(),
        }));
        out.push(Command::Notify {
            incident_id: incident.id.clone(),
            notice,
        });
    }
}
