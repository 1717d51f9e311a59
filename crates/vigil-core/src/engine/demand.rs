//! The engine's side of the demand reading and of expected activity (sessions whose
//! diagnosis has a `demand` config and whose config has a topology): measuring requests and
//! the cache at a spike's moment from the store, remembering when findings fired and what
//! planned work was announced, and keeping causes that exclude one another apart.
//! The rules themselves are in `diagnosis::demand` and `diagnosis::expected`.

use super::incident::Member;
use super::{DetectorState, Engine};
use crate::detector::Finding;
use crate::diagnosis::demand::{DemandEvidence, may_join, measure};
use crate::diagnosis::expected::{Expected, Memory};
use crate::diagnosis::{Diagnosis, HypothesisKind};
use crate::intake::Pushed;
use crate::signal::Labels;
use crate::time::Timestamp;
use crate::topology::discover::Facts;
use crate::topology::{Edge, NodeFacts, NodeId, NodeKind, Relation};

impl Engine {
    /// Whether this session reads demand and expected activity.
    pub(super) fn reads_demand(&self) -> bool {
        self.config.topology.is_some() && self.config.diagnosis.demand.is_some()
    }

    /// The requests per key and the cache at a spike's moment, for a spike detector's
    /// finding.
    pub(super) fn demand_evidence(
        &self,
        detector_idx: usize,
        finding: &Finding,
    ) -> Option<DemandEvidence> {
        if !self.reads_demand() {
            return None;
        }
        let config = self.config.diagnosis.demand.as_ref()?;
        let Some(DetectorState::Spike(spike)) = self.detectors.get(detector_idx) else {
            return None;
        };
        let spike = spike.config();
        Some(measure(
            config,
            &self.store,
            &spike.source,
            &spike.group_by,
            finding,
        ))
    }

    /// Why a finding that just fired is expected, if it is; then remembers the fire.
    pub(super) fn expected_of(&mut self, finding: &Finding) -> Option<Expected> {
        if !self.reads_demand() {
            return None;
        }
        let config = self.config.diagnosis.demand.as_ref()?;
        let memory = self.expected.get_or_insert_with(Memory::default);
        let rhythm = memory.rhythm(config, &finding.fingerprint, finding.raised_at);
        memory.note_fire(config, &finding.fingerprint, finding.raised_at);
        if let Some(announcement) = memory.announcement_for(finding) {
            return Some(Expected::Announced(announcement.clone()));
        }
        (!rhythm.is_empty()).then_some(Expected::Rhythm(rhythm))
    }

    /// Reads the announcements of planned work in a pushed notification.
    pub(super) fn note_announcements(&mut self, payload: &Pushed, now: Timestamp) {
        if !self.reads_demand() {
            return;
        }
        let (Pushed::Alerts(batch), Some(config)) = (payload, &self.config.diagnosis.demand) else {
            return;
        };
        self.expected
            .get_or_insert_with(Memory::default)
            .note_alerts(config, batch, now);
    }

    /// Whether a finding diagnosed as `diagnosis` may join an incident of these members.
    pub(super) fn may_join_members(&self, diagnosis: &Diagnosis, members: &[Member]) -> bool {
        if !self.reads_demand() {
            return true;
        }
        let finding_best = diagnosis.best().map(|best| best.kind);
        let incident_best = members
            .first()
            .and_then(|member| member.diagnosis.best())
            .map(|best| best.kind);
        may_join(finding_best, incident_best)
    }

    /// What a cache counter's series shows: its keys and model groups read the source's
    /// cache, so a cache that stops answering connects every key that uses it.
    pub(super) fn cache_facts(&self, source: &str, name: &str, labels: &Labels) -> Facts {
        let mut facts = Facts::default();
        let Some(config) = self.config.diagnosis.demand.as_ref() else {
            return facts;
        };
        if name != config.cache_hits.metric_name() && name != config.cache_misses.metric_name() {
            return facts;
        }
        let cache = NodeId::new(NodeKind::Cache, source);
        facts.nodes.push((cache.clone(), NodeFacts::default()));
        let named = |label: &str| {
            labels
                .get(label)
                .map(str::trim)
                .filter(|value| !value.is_empty() && *value != "None")
                .map(crate::intake::label_value)
        };
        let readers = [
            named("hashed_api_key").map(|hash| NodeId::new(NodeKind::Key, hash)),
            named("model_group")
                .or_else(|| named("requested_model"))
                .or_else(|| named("model"))
                .map(|group| NodeId::new(NodeKind::ModelGroup, group)),
        ];
        for reader in readers.into_iter().flatten() {
            facts.edges.push(Edge {
                from: reader,
                relation: Relation::Reads,
                to: cache.clone(),
            });
        }
        facts
    }
}

/// Whether a diagnosis says the activity is expected.
pub(super) fn is_expected(diagnosis: &Diagnosis) -> bool {
    diagnosis
        .best()
        .is_some_and(|best| best.kind == HypothesisKind::ExpectedActivity)
}
