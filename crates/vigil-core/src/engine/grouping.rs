//! The topology in the engine: learning it from the signals (and recording what is learnt),
//! and grouping findings connected in it into one incident.
//!
//! A finding is about a node when its subject's label names a kind of node
//! ([`node_of_subject`]). A new finding joins an incident, instead of opening one, when the
//! incident's latest finding was raised within `topology.group_window_ms` (or one of its
//! findings still fires: a live cause explains a symptom that shows late) and one of its
//! findings is connected to the new one: both depend on one node within `topology.max_hops`
//! hops each (a key and an eval suite calling the same model group, a model group and the
//! provider hosting it). A re-fire of a finding the incident already holds joins it too. An
//! incident that paged stays joinable for the window after its latest finding, so a cause
//! that keeps firing (a flapping provider) pages once.
//!
//! Sessions whose config has no `topology` learn nothing and group nothing.

use std::collections::BTreeMap;

use super::incident::{Incident, Member};
use super::{Command, Engine, Record};
use crate::detector::Finding;
use crate::detector::spike::GroupView;
use crate::diagnosis::fallback;
use crate::diagnosis::rank::{enrich, rank};
use crate::diagnosis::{Diagnosis, diagnose};
use crate::intake::Pushed;
use crate::signal::Sample;
use crate::time::Timestamp;
use crate::topology::discover::{Facts, from_labels, from_pushed, node_of_subject};
use crate::topology::{Growth, NodeId, Origin, Topology, TopologyConfig};

/// At most this many of an incident's findings (its first ones) are ranked against one another.
const MAX_RANKED: usize = 64;

/// At most this many incidents that paged are kept joinable.
const MAX_PAGED: usize = 1024;

/// An incident that paged: still joinable for the window after its latest finding.
#[derive(Clone, Debug)]
pub(super) struct Paged {
    pub(super) members: Vec<Member>,
    /// The page's title.
    pub(super) title: String,
    /// When the incident opened.
    pub(super) opened_at: Timestamp,
    /// Since when all its findings have been clear (its page is resolved once they have
    /// stayed clear for the grouping window, so that a flapping cause does not resolve and
    /// page again).
    pub(super) clear_since: Option<Timestamp>,
    /// Whether the flapping guardrail has been recorded for it.
    pub(super) flapping_noted: bool,
}

impl Paged {
    fn last_raised(&self) -> Timestamp {
        self.members
            .iter()
            .map(|member| member.raised_at)
            .max()
            .unwrap_or(Timestamp(i64::MIN))
    }
}

/// The topology and what grouping keeps beside the open incidents.
#[derive(Clone, Debug)]
pub(super) struct Grouping {
    pub(super) topology: Topology,
    pub(super) paged: BTreeMap<String, Paged>,
    /// Whether the graph is refusing growth right now (recorded once per episode).
    refusing: bool,
    /// Bumped whenever the graph grows: the caches below are then stale.
    generation: u64,
    /// Per node a finding was about, what it depends on within `max_hops` (and how far).
    node_deps: BTreeMap<NodeId, BTreeMap<NodeId, u8>>,
    /// Per open or paged incident, what its findings depend on (the fewest hops from any of
    /// them), so that a new finding is checked against an incident in O(its dependencies),
    /// however many findings the incident holds.
    incident_deps: BTreeMap<String, IncidentDeps>,
}

/// What an incident's findings depend on, as of a generation of the graph.
#[derive(Clone, Debug, Default)]
struct IncidentDeps {
    generation: u64,
    /// How many of its members are merged in.
    n_members: usize,
    deps: BTreeMap<NodeId, u8>,
}

impl Grouping {
    /// What `node` depends on within `max_hops`, computed once per generation.
    fn deps_of(&mut self, node: &NodeId, max_hops: u8) -> BTreeMap<NodeId, u8> {
        if let Some(deps) = self.node_deps.get(node) {
            return deps.clone();
        }
        let deps = self.topology.dependencies_within(node, max_hops);
        self.node_deps.insert(node.clone(), deps.clone());
        deps
    }

    /// Brings the incident's dependencies up to date with its members and the graph.
    fn refresh_incident_deps(&mut self, incident_id: &str, members: &[Member], max_hops: u8) {
        let mut cached = self.incident_deps.remove(incident_id).unwrap_or_default();
        if cached.generation != self.generation || cached.n_members > members.len() {
            cached = IncidentDeps {
                generation: self.generation,
                ..IncidentDeps::default()
            };
        }
        for member in members.iter().skip(cached.n_members) {
            let Some(node) = &member.node else {
                continue;
            };
            for (dep, hops) in self.deps_of(node, max_hops) {
                let known = cached.deps.entry(dep).or_insert(hops);
                *known = (*known).min(hops);
            }
        }
        cached.n_members = members.len();
        self.incident_deps.insert(incident_id.to_owned(), cached);
    }
}

impl Grouping {
    /// The declared graph, with what the inventory says: deployments' providers and owners.
    pub(super) fn new(config: &TopologyConfig, resources: &[super::ResourceInfo]) -> Self {
        let mut topology = Topology::declared(config);
        let mut growth = Growth::default();
        for facts in resources.iter().map(super::config::resource_facts) {
            topology.learn(&facts, &Origin::Declared, &mut growth);
        }
        Grouping {
            topology,
            paged: BTreeMap::new(),
            refusing: false,
            generation: 0,
            node_deps: BTreeMap::new(),
            incident_deps: BTreeMap::new(),
        }
    }
}

/// Where a new finding goes.
pub(super) struct Join {
    pub(super) incident_id: String,
    /// How it connects, for people: `both depend on provider:openai (2 and 1 hops)`.
    pub(super) via: String,
    /// Whether the incident already paged.
    pub(super) paged: bool,
}

/// The causes ranked over an incident's distinct findings (the latest of each fingerprint).
fn rerank(members: &[Member], topology: &Topology, max_hops: u8) -> Diagnosis {
    let mut seen = std::collections::BTreeSet::new();
    let mut latest: Vec<&Member> = Vec::new();
    for member in members.iter().rev() {
        if seen.insert(member.fingerprint.as_str()) {
            latest.push(member);
        }
    }
    latest.reverse();
    // Ranking compares findings pairwise: a storm of findings is ranked on its first ones
    // (a cause comes before its symptoms), so that a join costs a bounded time.
    latest.truncate(MAX_RANKED);
    let views: Vec<crate::diagnosis::rank::Member<'_>> = latest
        .iter()
        .map(|member| crate::diagnosis::rank::Member {
            finding: &member.finding,
            diagnosis: &member.diagnosis,
        })
        .collect();
    fallback::prefer_fallback(rank(&views, topology, max_hops))
}

/// The node a finding is about.
pub(super) fn node_of(finding: &Finding) -> Option<NodeId> {
    node_of_subject(&finding.subject.label, &finding.subject.value)
}

impl Engine {
    /// Learns from the samples of `source` at `positions` (the ones that made new series).
    pub(super) fn learn_from_samples(
        &mut self,
        source: &str,
        samples: &[Sample],
        positions: &[usize],
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if self.grouping.is_none() || positions.is_empty() {
            return;
        }
        let mut facts = Facts::default();
        for sample in positions.iter().filter_map(|&idx| samples.get(idx)) {
            let found = from_labels(&sample.labels);
            facts.nodes.extend(found.nodes);
            facts.edges.extend(found.edges);
            let cache = self.cache_facts(source, &sample.name, &sample.labels);
            facts.nodes.extend(cache.nodes);
            facts.edges.extend(cache.edges);
        }
        self.learn(source, &facts, now, out);
    }

    /// Learns from a pushed batch.
    pub(super) fn learn_from_pushed(
        &mut self,
        source: &str,
        payload: &Pushed,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        if self.grouping.is_none() {
            return;
        }
        let facts = from_pushed(payload);
        self.learn(source, &facts, now, out);
    }

    fn learn(&mut self, source: &str, facts: &Facts, now: Timestamp, out: &mut Vec<Command>) {
        let Some(grouping) = self.grouping.as_mut() else {
            return;
        };
        if facts.is_empty() {
            return;
        }
        let mut growth = Growth::default();
        let origin = Origin::Discovered {
            source: source.to_owned(),
            at: now,
        };
        grouping.topology.learn(facts, &origin, &mut growth);
        if !growth.edges.is_empty() || !growth.nodes.is_empty() {
            grouping.generation = grouping.generation.wrapping_add(1);
            grouping.node_deps.clear();
        }
        let refused = growth.n_refused_nodes > 0 || growth.n_refused_edges > 0;
        // Refusals are recorded at the start of an episode; growth whenever there is some.
        let note_refusal = refused && !grouping.refusing;
        grouping.refusing = refused;
        if growth.nodes.is_empty() && growth.edges.is_empty() && !note_refusal {
            return;
        }
        out.push(Command::Record(Record::TopologyGrew {
            source: source.to_owned(),
            nodes: growth.nodes,
            edges: growth.edges,
            n_refused_nodes: growth.n_refused_nodes,
            n_refused_edges: growth.n_refused_edges,
            n_nodes: grouping.topology.n_nodes() as u64,
            n_edges: grouping.topology.n_edges() as u64,
        }));
    }

    /// The incident a new finding joins, if any: a re-fire of one of its findings, else the
    /// nearest connected one (fewest hops, then the latest raised, then by id).
    pub(super) fn group_of(
        &mut self,
        finding: &Finding,
        diagnosis: &Diagnosis,
        now: Timestamp,
    ) -> Option<Join> {
        let window_ms = self.config.topology.as_ref()?.group_window_ms;
        if window_ms <= 0 {
            return None;
        }
        let max_hops = self.config.topology.as_ref()?.max_hops;
        // Incidents whose cause excludes this finding's are not joined (a refire still is).
        let excluded: std::collections::BTreeSet<String> = self
            .incidents
            .values()
            .map(|incident| (&incident.id, &incident.members))
            .chain(
                self.grouping
                    .as_ref()?
                    .paged
                    .iter()
                    .map(|(id, paged)| (id, &paged.members)),
            )
            .filter(|(_, members)| !self.may_join_members(diagnosis, members))
            .map(|(id, _)| id.clone())
            .collect();
        let grouping = self.grouping.as_mut()?;
        // A paged incident stays while its findings still fire (its page is resolved when
        // they clear), and for the window after its latest finding.
        grouping.paged.retain(|_, paged| {
            now.millis_since(paged.last_raised()) <= window_ms
                || paged.clear_since.is_some()
                || !paged.members.iter().all(|member| member.cleared)
        });
        let node = node_of(finding);
        let mine = node
            .as_ref()
            .map(|node| grouping.deps_of(node, max_hops))
            .unwrap_or_default();
        // The paged incidents are set aside while the caches beside them are brought up to date.
        let paged = std::mem::take(&mut grouping.paged);
        let open = self
            .incidents
            .values()
            .filter(|incident| incident.finding.detector != "schedule")
            .map(|incident| (&incident.id, &incident.members, false));
        let candidates: Vec<(&String, &Vec<Member>, bool)> = open
            .chain(paged.iter().map(|(id, paged)| (id, &paged.members, true)))
            // Within the window of its latest finding, or still firing: a cause that is
            // still live explains a symptom that shows late (an eval suite reports hourly).
            .filter(|(_, members, _)| {
                let last_raised = members
                    .iter()
                    .map(|member| member.raised_at)
                    .max()
                    .unwrap_or(Timestamp(i64::MIN));
                now.millis_since(last_raised) <= window_ms
                    || members.iter().any(|member| !member.cleared)
            })
            .collect();
        // Forget the dependencies of incidents that are gone.
        grouping
            .incident_deps
            .retain(|id, _| self.incidents.contains_key(id) || paged.contains_key(id));
        let mut best: Option<(u16, Timestamp, Join)> = None;
        for &(incident_id, members, is_paged) in &candidates {
            let last_raised = members
                .iter()
                .map(|member| member.raised_at)
                .max()
                .unwrap_or(Timestamp(i64::MIN));
            let found = if members
                .iter()
                .any(|member| member.fingerprint == finding.fingerprint)
            {
                Some((0, "it fired before in this incident".to_owned()))
            } else if excluded.contains(incident_id) {
                None
            } else {
                grouping.refresh_incident_deps(incident_id, members, max_hops);
                let empty = BTreeMap::new();
                let theirs = grouping
                    .incident_deps
                    .get(incident_id)
                    .map_or(&empty, |cached| &cached.deps);
                mine.iter()
                    .filter_map(|(dep, &hops_new)| {
                        theirs.get(dep).map(|&hops_theirs| {
                            (u16::from(hops_new) + u16::from(hops_theirs), dep, hops_new, hops_theirs)
                        })
                    })
                    .min_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)))
                    .and_then(|(hops, via, hops_new, hops_theirs)| {
                        let node = node.as_ref()?;
                        let how = match (hops_new, hops_theirs) {
                            (0, 0) => format!("both are about {node}"),
                            (0, _) => format!(
                                "the incident's findings depend on {node} ({hops_theirs} hops)"
                            ),
                            (_, 0) => format!(
                                "{node} depends on {via} ({hops_new} hops), which the incident is about"
                            ),
                            _ => format!(
                                "{node} and the incident's findings both depend on {via} \
                                 ({hops_new} and {hops_theirs} hops)"
                            ),
                        };
                        Some((hops, how))
                    })
            };
            let Some((hops, via)) = found else {
                continue;
            };
            let better = best.as_ref().is_none_or(|(best_hops, best_raised, _)| {
                (hops, std::cmp::Reverse(last_raised))
                    < (*best_hops, std::cmp::Reverse(*best_raised))
            });
            if better {
                best = Some((
                    hops,
                    last_raised,
                    Join {
                        incident_id: incident_id.clone(),
                        via,
                        paged: is_paged,
                    },
                ));
            }
        }
        drop(candidates);
        grouping.paged = paged;
        best.map(|(_, _, join)| join)
    }

    /// Adds `finding` to the incident `join` names and records it; an incident that paged
    /// notes flapping once, and pages no more.
    pub(super) fn join(
        &mut self,
        join: Join,
        finding: &Finding,
        diagnosis: &Diagnosis,
        n_recent_fires: usize,
        out: &mut Vec<Command>,
    ) {
        let member = Member::of(finding, diagnosis);
        out.push(Command::Record(Record::FindingJoined {
            incident_id: join.incident_id.clone(),
            fingerprint: finding.fingerprint.clone(),
            subject: finding.subject.clone(),
            via: join.via,
        }));
        let max_hops = self
            .config
            .topology
            .as_ref()
            .map_or(0, |config| config.max_hops);
        if join.paged {
            let max_fires = self.config.flapping.max_fires.max(1);
            let window_min = self.config.flapping.window_ms / 60_000;
            let Some(Grouping {
                topology, paged, ..
            }) = self.grouping.as_mut()
            else {
                return;
            };
            let Some(paged) = paged.get_mut(&join.incident_id) else {
                return;
            };
            let refire = paged
                .members
                .iter()
                .any(|known| known.fingerprint == member.fingerprint);
            paged.members.push(member);
            paged.clear_since = None;
            if !refire {
                out.push(Command::Record(Record::Diagnosed {
                    incident_id: join.incident_id.clone(),
                    diagnosis: rerank(&paged.members, topology, max_hops),
                }));
            }
            if n_recent_fires >= max_fires && !paged.flapping_noted {
                paged.flapping_noted = true;
                out.push(Command::Record(Record::GuardrailHeld {
                    incident_id: join.incident_id,
                    guardrail: "flapping".to_owned(),
                    detail: format!(
                        "the finding fired {n_recent_fires} times within {window_min} min; \
                         the page already sent covers it"
                    ),
                }));
            }
            return;
        }
        let (Some(incident), Some(grouping)) = (
            self.incidents.get_mut(&join.incident_id),
            self.grouping.as_ref(),
        ) else {
            return;
        };
        let refire = incident
            .members
            .iter()
            .any(|known| known.fingerprint == member.fingerprint);
        incident.members.push(member);
        incident.cleared = false;
        if !refire {
            let ranked = rerank(&incident.members, &grouping.topology, max_hops);
            incident.ranked = Some(ranked.clone());
            out.push(Command::Record(Record::Diagnosed {
                incident_id: join.incident_id.clone(),
                diagnosis: ranked,
            }));
        }
        self.open_by_fingerprint
            .insert(finding.fingerprint.clone(), join.incident_id);
    }

    /// A finding's own diagnosis; with a topology, in its cross-layer form.
    pub(super) fn diagnose_finding(
        &self,
        finding: &Finding,
        views: &[GroupView],
        demand: Option<&crate::diagnosis::demand::DemandEvidence>,
    ) -> Diagnosis {
        let diagnosis = diagnose(
            &self.config.diagnosis,
            self.config.numbers,
            finding,
            views,
            &self.changes,
        );
        let diagnosis = match (&self.grouping, &self.config.topology) {
            (Some(grouping), Some(config)) => fallback::explain(
                enrich(
                    diagnosis,
                    finding,
                    &grouping.topology,
                    config.max_hops,
                    &self.changes,
                    self.config.diagnosis.change_window_ms,
                ),
                finding,
                &self.store,
                &grouping.topology,
                config.max_hops,
                self.config.diagnosis.runaway_min_share,
            ),
            _ => return diagnosis,
        };
        match &self.config.diagnosis.demand {
            Some(config) => crate::diagnosis::demand::decompose(
                config,
                &self.config.diagnosis,
                self.config.numbers,
                diagnosis,
                finding,
                &demand.cloned().unwrap_or_default(),
                views,
            ),
            None => diagnosis,
        }
    }

    /// A finding of an open incident fired again: it is no longer clear (sessions with a
    /// topology only; before, a re-fire changed nothing).
    pub(super) fn refire(&mut self, incident_id: &str, finding: &Finding) {
        if self.grouping.is_none() {
            return;
        }
        if let Some(incident) = self.incidents.get_mut(incident_id) {
            if let Some(member) = incident
                .members
                .iter_mut()
                .find(|member| member.fingerprint == finding.fingerprint)
            {
                member.cleared = false;
                member.raised_at = finding.raised_at;
            }
            incident.cleared = false;
        }
    }

    /// An incident paged and leaves the open ones: with a topology, it stays joinable.
    pub(super) fn keep_paged(&mut self, incident: &Incident) {
        let Some(grouping) = self.grouping.as_mut() else {
            return;
        };
        grouping.paged.insert(
            incident.id.clone(),
            Paged {
                members: incident.members.clone(),
                title: incident.page_title.clone().unwrap_or_default(),
                opened_at: incident.opened_at,
                clear_since: None,
                flapping_noted: false,
            },
        );
        while grouping.paged.len() > MAX_PAGED {
            let oldest = grouping
                .paged
                .iter()
                .min_by_key(|(id, paged)| (paged.last_raised(), (*id).clone()))
                .map(|(id, _)| id.clone());
            match oldest {
                Some(id) => grouping.paged.remove(&id),
                None => break,
            };
        }
    }

    /// A finding of an incident that paged cleared: once all its findings are clear, the
    /// page waits for them to stay clear for the grouping window, then is resolved.
    pub(super) fn paged_finding_cleared(
        &mut self,
        fingerprint: &str,
        now: Timestamp,
        out: &mut Vec<Command>,
    ) {
        let Some(window_ms) = self
            .config
            .topology
            .as_ref()
            .map(|config| config.group_window_ms)
        else {
            return;
        };
        let Some(grouping) = self.grouping.as_mut() else {
            return;
        };
        for paged in grouping.paged.values_mut() {
            let mut found = false;
            for member in &mut paged.members {
                if member.fingerprint == fingerprint {
                    member.cleared = true;
                    found = true;
                }
            }
            if found && paged.members.iter().all(|member| member.cleared) {
                paged.clear_since = Some(now);
                out.push(Command::WakeAt {
                    at: now.plus_millis(window_ms.max(0)),
                });
            }
        }
    }

    /// Resolves the pages of incidents whose findings have all stayed clear for the window.
    pub(super) fn resolve_quiet_pages(&mut self, now: Timestamp, out: &mut Vec<Command>) {
        let Some(window_ms) = self
            .config
            .topology
            .as_ref()
            .map(|config| config.group_window_ms)
        else {
            return;
        };
        let numbers = self.config.numbers;
        let Some(grouping) = self.grouping.as_mut() else {
            return;
        };
        let quiet: Vec<String> = grouping
            .paged
            .iter()
            .filter(|(_, paged)| {
                paged
                    .clear_since
                    .is_some_and(|since| now.millis_since(since) >= window_ms)
            })
            .map(|(id, _)| id.clone())
            .collect();
        for incident_id in quiet {
            let Some(paged) = grouping.paged.remove(&incident_id) else {
                continue;
            };
            let since = paged.clear_since.unwrap_or(now);
            let outcome = format!(
                "every finding of the incident cleared {} after it opened and stayed clear for {}; the page is resolved",
                numbers.duration_ms(
                    since.millis_since(paged.opened_at),
                    crate::human::OriginalUnit::Minutes
                ),
                numbers.duration_ms(now.millis_since(since), crate::human::OriginalUnit::Minutes)
            );
            out.push(Command::Record(Record::PageResolved {
                incident_id: incident_id.clone(),
                outcome: outcome.clone(),
            }));
            out.push(Command::ResolvePage {
                incident_id,
                title: paged.title,
                summary: outcome,
            });
        }
    }

    /// The topology, when the session has one.
    #[must_use]
    pub fn topology(&self) -> Option<&Topology> {
        self.grouping.as_ref().map(|grouping| &grouping.topology)
    }
}
