//! The topology of the AI stack: who calls what.
//!
//! Nodes are the things an incident can be about, each of a closed [`NodeKind`] that belongs
//! to one [`Layer`]: applications, prompts, agents and eval suites; keys and teams; model
//! groups (with their fallbacks) and the cache; deployments, providers and model snapshots;
//! retrieval stores and other infrastructure. Edges carry a [`Relation`]; every relation but
//! [`Relation::OwnedBy`] means *the first node depends on the second*: a failure travels
//! against the edge (a provider answering 429 hurts every model group hosted by it, and every
//! key and eval suite calling those), demand travels along it (a key's traffic lands on its
//! model group's deployments and their provider).
//!
//! The graph is built from the config (`topology:` and `resources:`, see [`TopologyConfig`])
//! and grows from what the signals carry ([`discover`]): a scrape's new series, a pushed
//! batch. Growth is returned as a [`Growth`] so the engine can record it in the ledger, and
//! replay, which re-derives it from the same events, sees what the diagnoser saw.
//!
//! It is bounded: past [`TopologyLimits::max_nodes`] nodes or `max_edges` edges, new ones
//! are refused and counted; what is known stays.

pub mod compat;
pub mod discover;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::time::Timestamp;

/// Series the engine reads from every scraped source for the topology alone, beside what its
/// detectors read: LiteLLM's deployments (`model_group`, `model_id`, `api_provider`,
/// `litellm_model_name`, `hashed_api_key`, `team`), their state, and the fallbacks it took.
pub const DISCOVERY_METRICS: [&str; 3] = [
    "litellm_deployment_total_requests_total",
    "litellm_deployment_state",
    "litellm_deployment_successful_fallbacks_total",
];

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// An application (a service that calls models).
    App,
    /// A prompt (its versions are the prompt's changes).
    Prompt,
    /// An agent.
    Agent,
    /// An eval suite.
    EvalSuite,
    /// An API key of the gateway.
    Key,
    /// A team of the gateway (owns keys, has a budget).
    Team,
    /// A model group of the gateway: the name clients ask for.
    ModelGroup,
    /// A response cache (the gateway's, or the app's).
    Cache,
    /// One deployment behind a model group (LiteLLM's `model_id`).
    Deployment,
    /// A provider (`openai`, `anthropic`, a self-hosted vLLM).
    Provider,
    /// A model snapshot as the provider names it (`gpt-4o-2024-08-06`).
    Model,
    /// A retrieval store (a vector database, a search index).
    Retrieval,
    /// Other infrastructure (a database, a queue, a GPU pool).
    Infra,
}

/// Every kind, in order.
pub const NODE_KINDS: [NodeKind; 13] = [
    NodeKind::App,
    NodeKind::Prompt,
    NodeKind::Agent,
    NodeKind::EvalSuite,
    NodeKind::Key,
    NodeKind::Team,
    NodeKind::ModelGroup,
    NodeKind::Cache,
    NodeKind::Deployment,
    NodeKind::Provider,
    NodeKind::Model,
    NodeKind::Retrieval,
    NodeKind::Infra,
];

impl NodeKind {
    /// The snake_case name used in configs and node ids.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::App => "app",
            NodeKind::Prompt => "prompt",
            NodeKind::Agent => "agent",
            NodeKind::EvalSuite => "eval_suite",
            NodeKind::Key => "key",
            NodeKind::Team => "team",
            NodeKind::ModelGroup => "model_group",
            NodeKind::Cache => "cache",
            NodeKind::Deployment => "deployment",
            NodeKind::Provider => "provider",
            NodeKind::Model => "model",
            NodeKind::Retrieval => "retrieval",
            NodeKind::Infra => "infra",
        }
    }

    /// The layer of the stack the kind lives in.
    #[must_use]
    pub fn layer(self) -> Layer {
        match self {
            NodeKind::App | NodeKind::Prompt | NodeKind::Agent => Layer::App,
            NodeKind::EvalSuite => Layer::Evals,
            NodeKind::Key | NodeKind::Team | NodeKind::ModelGroup | NodeKind::Cache => {
                Layer::Gateway
            }
            NodeKind::Deployment | NodeKind::Provider | NodeKind::Model => Layer::Provider,
            NodeKind::Retrieval | NodeKind::Infra => Layer::Infrastructure,
        }
    }
}

impl FromStr for NodeKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        NODE_KINDS
            .iter()
            .copied()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = NODE_KINDS.iter().map(|kind| kind.as_str()).collect();
                format!(
                    "unknown node kind `{text}`; expected one of {}",
                    names.join(", ")
                )
            })
    }
}

/// The layers of the AI stack, as the why-packet names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layer {
    /// Applications, prompts and agents.
    App,
    /// Evals and observability.
    Evals,
    /// The gateway: keys, teams, model groups, fallbacks, the cache.
    Gateway,
    /// Providers, their deployments and model snapshots.
    Provider,
    /// Retrieval and other infrastructure.
    Infrastructure,
}

impl Layer {
    /// The name people read.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::App => "app",
            Layer::Evals => "evals",
            Layer::Gateway => "gateway",
            Layer::Provider => "provider",
            Layer::Infrastructure => "infrastructure",
        }
    }
}

/// A node: its kind and its name (a key's hash, a model group's name, a provider's name).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId {
    /// What it is.
    pub kind: NodeKind,
    /// Its name.
    pub name: String,
}

impl NodeId {
    /// A node id.
    #[must_use]
    pub fn new(kind: NodeKind, name: impl Into<String>) -> Self {
        NodeId {
            kind,
            name: name.into(),
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}:{}", self.kind.as_str(), self.name)
    }
}

impl FromStr for NodeId {
    type Err = String;

    /// `kind:name`, for example `model_group:gpt-4o`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some((kind, name)) = text.split_once(':') else {
            return Err(format!(
                "`{text}` is not a node; write it as kind:name, for example model_group:gpt-4o"
            ));
        };
        if name.is_empty() {
            return Err(format!("`{text}` names no node after the `:`"));
        }
        Ok(NodeId::new(kind.parse()?, name))
    }
}

impl Serialize for NodeId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for NodeId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How two nodes relate. All but [`Relation::OwnedBy`] read "the first depends on the second".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Relation {
    /// Sends requests to (an app or a key to a model group, an agent to a key).
    Calls,
    /// Is built on (an eval suite on a prompt, an app on a prompt).
    Uses,
    /// Routes requests to (a model group to a deployment).
    RoutesTo,
    /// Sends failed requests on to (a model group to its fallback model group).
    FallsBackTo,
    /// Is hosted by (a deployment or a model group by a provider).
    HostedBy,
    /// Is answered by (a deployment or a model group by a model snapshot).
    ServedBy,
    /// Reads from (an app from a retrieval store or a cache).
    Reads,
    /// Is owned by (a key by a team): who is told when vigil changes it. Not a dependency.
    OwnedBy,
}

impl Relation {
    /// Whether the first node depends on the second (a failure travels against the edge).
    #[must_use]
    pub fn is_dependency(self) -> bool {
        !matches!(self, Relation::OwnedBy)
    }

    /// The snake_case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Relation::Calls => "calls",
            Relation::Uses => "uses",
            Relation::RoutesTo => "routes_to",
            Relation::FallsBackTo => "falls_back_to",
            Relation::HostedBy => "hosted_by",
            Relation::ServedBy => "served_by",
            Relation::Reads => "reads",
            Relation::OwnedBy => "owned_by",
        }
    }
}

/// One edge.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Edge {
    /// The dependent (or the owned) node.
    pub from: NodeId,
    /// How they relate.
    pub relation: Relation,
    /// The dependency (or the owner).
    pub to: NodeId,
}

impl fmt::Display for Edge {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{} {} {}",
            self.from,
            self.relation.as_str(),
            self.to
        )
    }
}

/// What a model does: a failover moves traffic only between models of one modality.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// Chat or text completion.
    Chat,
    /// Embeddings.
    Embedding,
    /// Reranking.
    Rerank,
    /// Images.
    Image,
    /// Audio (speech to text, text to speech).
    Audio,
}

impl Modality {
    /// The snake_case name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Chat => "chat",
            Modality::Embedding => "embedding",
            Modality::Rerank => "rerank",
            Modality::Image => "image",
            Modality::Audio => "audio",
        }
    }
}

/// What is known of a model group or a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// What it does.
    pub modality: Modality,
    /// Its context window in tokens, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
}

/// Where a node or edge came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// The config declared it.
    Declared,
    /// A signal of this source showed it first, at this time.
    Discovered {
        /// The source (`litellm-gateway`, `push:evals`).
        source: String,
        /// When.
        at: Timestamp,
    },
}

/// One node's facts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Where it came from.
    pub origin: Origin,
    /// A name for people (a key's alias), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Who answers for it (a team), when known: who is told when vigil changes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A model group's or model's modality and context window, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
}

/// How large the graph may grow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyLimits {
    /// At most this many nodes.
    pub max_nodes: usize,
    /// At most this many edges.
    pub max_edges: usize,
}

impl Default for TopologyLimits {
    /// Room for tens of thousands of keys: a node costs about 200 bytes, an edge about 300.
    fn default() -> Self {
        TopologyLimits {
            max_nodes: 50_000,
            max_edges: 200_000,
        }
    }
}

/// A node the config declares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeclaredNode {
    /// The node.
    pub id: NodeId,
    /// Its alias, owner and model facts.
    #[serde(flatten)]
    pub facts: NodeFacts,
}

/// The facts a declaration or a discovery gives about a node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeFacts {
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Who answers for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// A model's modality and context window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelInfo>,
}

/// The topology's configuration, recorded with every session. Sessions recorded before the
/// topology existed have none, and replay as they ran: one incident per finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopologyConfig {
    /// Findings connected in the topology and raised within this many milliseconds of an
    /// open incident's latest finding join it.
    pub group_window_ms: i64,
    /// Two findings are connected when both depend (along dependency edges) on one node
    /// within this many hops each.
    pub max_hops: u8,
    /// Its bounds.
    #[serde(default)]
    pub limits: TopologyLimits,
    /// Nodes the config declares (with their modality, context window, owner).
    #[serde(default)]
    pub nodes: Vec<DeclaredNode>,
    /// Edges the config declares.
    #[serde(default)]
    pub edges: Vec<Edge>,
}

/// Thirty minutes: symptoms of one cause usually surface within that.
pub const DEFAULT_GROUP_WINDOW_MS: i64 = 30 * 60 * 1000;

/// Three hops: key → model group → deployment → provider.
pub const DEFAULT_MAX_HOPS: u8 = 3;

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig {
            group_window_ms: DEFAULT_GROUP_WINDOW_MS,
            max_hops: DEFAULT_MAX_HOPS,
            limits: TopologyLimits::default(),
            nodes: Vec::new(),
            edges: Vec::new(),
        }
    }
}

/// What one round of discovery added (or could not add).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Growth {
    /// New nodes, in the order they were added.
    pub nodes: Vec<NodeId>,
    /// New edges.
    pub edges: Vec<Edge>,
    /// Nodes refused because the graph was full.
    pub n_refused_nodes: u64,
    /// Edges refused because the graph was full.
    pub n_refused_edges: u64,
}

impl Growth {
    /// Whether nothing was added or refused.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
            && self.edges.is_empty()
            && self.n_refused_nodes == 0
            && self.n_refused_edges == 0
    }
}

/// The graph.
#[derive(Clone, Debug, Default)]
pub struct Topology {
    limits: TopologyLimits,
    nodes: BTreeMap<NodeId, Node>,
    /// Per node, its edges out (to its dependencies and owners).
    outgoing: BTreeMap<NodeId, BTreeSet<(Relation, NodeId)>>,
    /// Per node, its edges in (from its dependents).
    incoming: BTreeMap<NodeId, BTreeSet<(Relation, NodeId)>>,
    n_edges: usize,
}

impl Topology {
    /// The graph the config declares: its `nodes` and `edges`.
    #[must_use]
    pub fn declared(config: &TopologyConfig) -> Self {
        let mut topology = Topology {
            limits: config.limits,
            ..Topology::default()
        };
        let mut growth = Growth::default();
        for node in &config.nodes {
            topology.learn_node(&node.id, &node.facts, &Origin::Declared, &mut growth);
        }
        for edge in &config.edges {
            topology.learn_edge(edge, &Origin::Declared, &mut growth);
        }
        topology
    }

    /// How many nodes.
    #[must_use]
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// How many edges.
    #[must_use]
    pub fn n_edges(&self) -> usize {
        self.n_edges
    }

    /// A node's facts.
    #[must_use]
    pub fn node(&self, id: &NodeId) -> Option<&Node> {
        self.nodes.get(id)
    }

    /// Every node, in order.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeId, &Node)> {
        self.nodes.iter()
    }

    /// Every edge, in order of its first node.
    pub fn edges(&self) -> impl Iterator<Item = Edge> + '_ {
        self.outgoing.iter().flat_map(|(from, out)| {
            out.iter().map(move |(relation, to)| Edge {
                from: from.clone(),
                relation: *relation,
                to: to.clone(),
            })
        })
    }

    /// The nodes `id` points at with `relation`.
    pub fn targets<'a>(
        &'a self,
        id: &NodeId,
        relation: Relation,
    ) -> impl Iterator<Item = &'a NodeId> + 'a {
        self.outgoing
            .get(id)
            .into_iter()
            .flatten()
            .filter(move |(rel, _)| *rel == relation)
            .map(|(_, to)| to)
    }

    /// The nodes that point at `id` with `relation`.
    pub fn sources<'a>(
        &'a self,
        id: &NodeId,
        relation: Relation,
    ) -> impl Iterator<Item = &'a NodeId> + 'a {
        self.incoming
            .get(id)
            .into_iter()
            .flatten()
            .filter(move |(rel, _)| *rel == relation)
            .map(|(_, from)| from)
    }

    /// Adds a node or the facts it lacks; a new node is noted in `growth` (or refused when
    /// the graph is full). Facts already known are kept: a discovery never overrides a
    /// declaration.
    pub fn learn_node(
        &mut self,
        id: &NodeId,
        facts: &NodeFacts,
        origin: &Origin,
        growth: &mut Growth,
    ) -> bool {
        if let Some(node) = self.nodes.get_mut(id) {
            if node.alias.is_none() {
                node.alias.clone_from(&facts.alias);
            }
            if node.owner.is_none() {
                node.owner.clone_from(&facts.owner);
            }
            if node.model.is_none() {
                node.model = facts.model;
            }
            return true;
        }
        if self.nodes.len() >= self.limits.max_nodes {
            growth.n_refused_nodes = growth.n_refused_nodes.saturating_add(1);
            return false;
        }
        self.nodes.insert(
            id.clone(),
            Node {
                origin: origin.clone(),
                alias: facts.alias.clone(),
                owner: facts.owner.clone(),
                model: facts.model,
            },
        );
        growth.nodes.push(id.clone());
        true
    }

    /// Adds an edge (and its nodes, as bare nodes); a new one is noted in `growth`.
    pub fn learn_edge(&mut self, edge: &Edge, origin: &Origin, growth: &mut Growth) {
        if edge.from == edge.to {
            return;
        }
        if self
            .outgoing
            .get(&edge.from)
            .is_some_and(|out| out.contains(&(edge.relation, edge.to.clone())))
        {
            return;
        }
        let bare = NodeFacts::default();
        if !self.learn_node(&edge.from, &bare, origin, growth)
            || !self.learn_node(&edge.to, &bare, origin, growth)
        {
            growth.n_refused_edges = growth.n_refused_edges.saturating_add(1);
            return;
        }
        if self.n_edges >= self.limits.max_edges {
            growth.n_refused_edges = growth.n_refused_edges.saturating_add(1);
            return;
        }
        self.outgoing
            .entry(edge.from.clone())
            .or_default()
            .insert((edge.relation, edge.to.clone()));
        self.incoming
            .entry(edge.to.clone())
            .or_default()
            .insert((edge.relation, edge.from.clone()));
        self.n_edges += 1;
        growth.edges.push(edge.clone());
    }

    /// Adds what one place showed: its nodes, then its edges.
    pub fn learn(&mut self, facts: &discover::Facts, origin: &Origin, growth: &mut Growth) {
        for (id, node_facts) in &facts.nodes {
            self.learn_node(id, node_facts, origin, growth);
        }
        for edge in &facts.edges {
            self.learn_edge(edge, origin, growth);
        }
    }

    /// What `from` depends on within `max_hops` hops along dependency edges, with the
    /// distance of each (`from` itself at 0). Breadth-first, so each node gets its shortest
    /// distance; bounded by the hops and by the graph.
    #[must_use]
    pub fn dependencies_within(&self, from: &NodeId, max_hops: u8) -> BTreeMap<NodeId, u8> {
        let mut seen = BTreeMap::new();
        seen.insert(from.clone(), 0_u8);
        let mut queue = VecDeque::from([(from.clone(), 0_u8)]);
        while let Some((node, hops)) = queue.pop_front() {
            if hops >= max_hops {
                continue;
            }
            for (relation, next) in self.outgoing.get(&node).into_iter().flatten() {
                if !relation.is_dependency() || seen.contains_key(next) {
                    continue;
                }
                seen.insert(next.clone(), hops + 1);
                queue.push_back((next.clone(), hops + 1));
            }
        }
        seen
    }

    /// A node both `a` and `b` depend on within `max_hops` hops each (either may be the
    /// other's dependency, or the same node): the nearest one (least total hops, then in
    /// node order), with the hops from `a` and from `b`. `None` when they share nothing.
    #[must_use]
    pub fn common_dependency(
        &self,
        a: &NodeId,
        b: &NodeId,
        max_hops: u8,
    ) -> Option<(NodeId, u8, u8)> {
        let from_a = self.dependencies_within(a, max_hops);
        let from_b = self.dependencies_within(b, max_hops);
        from_a
            .iter()
            .filter_map(|(node, hops_a)| {
                from_b
                    .get(node)
                    .map(|hops_b| (node.clone(), *hops_a, *hops_b))
            })
            .min_by_key(|(node, hops_a, hops_b)| {
                (u16::from(*hops_a) + u16::from(*hops_b), node.clone())
            })
    }

    /// Whether `upstream` is one of `downstream`'s dependencies within `max_hops` hops.
    #[must_use]
    pub fn depends_on(&self, downstream: &NodeId, upstream: &NodeId, max_hops: u8) -> bool {
        self.dependencies_within(downstream, max_hops)
            .contains_key(upstream)
    }
}

#[cfg(test)]
mod tests;
