//! The config's `topology:` block: what the operator knows of the stack that the signals do
//! not show (a retrieval store an app reads, an embeddings model group and its context
//! window, a fallback), and how findings group by it. Raw (serde, unknown keys rejected) and
//! validated here; the graph itself is `vigil_core::topology`.
//!
//! ```yaml
//! topology:
//!   group_window_secs: 1800   # connected findings within 30 min join one incident (0: never)
//!   max_hops: 3
//!   nodes:
//!     - { id: "model_group:text-embedding-3-small", modality: embedding, context_window: 8191 }
//!     - { id: "model_group:gpt-4o", modality: chat, context_window: 128000, owner: team-platform }
//!   edges:
//!     - { from: "app:support-bot", relation: reads, to: "retrieval:pgvector-main" }
//!     - { from: "model_group:gpt-4o", relation: falls_back_to, to: "model_group:gpt-4o-mini" }
//! ```

use std::collections::BTreeSet;

use serde::Deserialize;
use vigil_core::problem::Problems;
use vigil_core::topology::{
    DEFAULT_GROUP_WINDOW_MS, DEFAULT_MAX_HOPS, DeclaredNode, Edge, Modality, ModelInfo, NodeFacts,
    NodeId, NodeKind, Relation, TopologyConfig, TopologyLimits,
};

/// The `topology:` block as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTopology {
    /// Connected findings raised within this many seconds of an incident's latest finding
    /// join it; 0 turns grouping off (the topology is still learnt and recorded).
    #[serde(default = "default_group_window_secs")]
    pub group_window_secs: u64,
    /// How far apart (in hops to a shared dependency) two findings may be and still group.
    #[serde(default = "default_max_hops")]
    pub max_hops: u8,
    /// At most this many nodes.
    #[serde(default = "default_max_nodes")]
    pub max_nodes: usize,
    /// At most this many edges.
    #[serde(default = "default_max_edges")]
    pub max_edges: usize,
    /// Nodes the signals do not show, or facts about them they do not carry.
    #[serde(default)]
    pub nodes: Vec<RawNode>,
    /// Edges the signals do not show.
    #[serde(default)]
    pub edges: Vec<RawEdge>,
}

impl Default for RawTopology {
    fn default() -> Self {
        RawTopology {
            group_window_secs: default_group_window_secs(),
            max_hops: default_max_hops(),
            max_nodes: default_max_nodes(),
            max_edges: default_max_edges(),
            nodes: Vec::new(),
            edges: Vec::new(),
        }
    }
}

fn default_group_window_secs() -> u64 {
    u64::try_from(DEFAULT_GROUP_WINDOW_MS / 1000).unwrap_or(1800)
}

fn default_max_hops() -> u8 {
    DEFAULT_MAX_HOPS
}

fn default_max_nodes() -> usize {
    TopologyLimits::default().max_nodes
}

fn default_max_edges() -> usize {
    TopologyLimits::default().max_edges
}

/// One declared node.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    /// `kind:name`, for example `model_group:gpt-4o`.
    pub id: String,
    /// A name for people.
    pub alias: Option<String>,
    /// The team that answers for it: told when vigil changes it.
    pub owner: Option<String>,
    /// A model group's or model's modality: `chat`, `embedding`, `rerank`, `image`, `audio`.
    pub modality: Option<Modality>,
    /// A model group's or model's context window, in tokens.
    pub context_window: Option<u64>,
}

/// One declared edge.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEdge {
    /// The dependent (or owned) node, `kind:name`.
    pub from: String,
    /// `calls`, `uses`, `routes_to`, `falls_back_to`, `hosted_by`, `served_by`, `reads` or
    /// `owned_by`.
    pub relation: Relation,
    /// The dependency (or owner), `kind:name`.
    pub to: String,
}

/// The most hops grouping may look across: beyond it everything connects to everything.
const MAX_HOPS: u8 = 6;

/// The longest grouping window: a day.
const MAX_GROUP_WINDOW_SECS: u64 = 86_400;

pub(super) fn validate_topology(problems: &mut Problems, raw: RawTopology) -> TopologyConfig {
    if raw.max_hops == 0 || raw.max_hops > MAX_HOPS {
        problems.push(
            "topology.max_hops",
            format!("must be between 1 and {MAX_HOPS}"),
        );
    }
    if raw.group_window_secs > MAX_GROUP_WINDOW_SECS {
        problems.push(
            "topology.group_window_secs",
            format!("must be at most {MAX_GROUP_WINDOW_SECS} (a day)"),
        );
    }
    if raw.max_nodes == 0 {
        problems.push("topology.max_nodes", "must be at least 1");
    }
    if raw.max_edges == 0 {
        problems.push("topology.max_edges", "must be at least 1");
    }
    let mut seen = BTreeSet::new();
    let nodes: Vec<DeclaredNode> = raw
        .nodes
        .into_iter()
        .enumerate()
        .filter_map(|(idx, node)| {
            let path = format!("topology.nodes[{idx}]");
            let id = node_id(problems, &format!("{path}.id"), &node.id)?;
            if !seen.insert(id.clone()) {
                problems.push(
                    format!("{path}.id"),
                    format!("`{id}` is declared twice; declare each node once"),
                );
            }
            let is_model = matches!(id.kind, NodeKind::ModelGroup | NodeKind::Model);
            if !is_model && (node.modality.is_some() || node.context_window.is_some()) {
                problems.push(
                    format!("{path}.modality"),
                    format!(
                        "only a model_group or a model has a modality and a context window, not a {}",
                        id.kind.as_str()
                    ),
                );
            }
            if node.context_window == Some(0) {
                problems.push(format!("{path}.context_window"), "must be at least 1");
            }
            if node.context_window.is_some() && node.modality.is_none() {
                problems.push(
                    format!("{path}.modality"),
                    "a context window needs the model's modality beside it",
                );
            }
            let model = node.modality.map(|modality| ModelInfo {
                modality,
                context_window: node.context_window,
            });
            Some(DeclaredNode {
                id,
                facts: NodeFacts {
                    alias: node.alias.filter(|alias| !alias.trim().is_empty()),
                    owner: node.owner.filter(|owner| !owner.trim().is_empty()),
                    model,
                },
            })
        })
        .collect();
    if nodes.len() > raw.max_nodes {
        problems.push(
            "topology.nodes",
            format!(
                "declares {} nodes, more than max_nodes ({})",
                nodes.len(),
                raw.max_nodes
            ),
        );
    }
    let mut seen_edges = BTreeSet::new();
    let edges: Vec<Edge> = raw
        .edges
        .into_iter()
        .enumerate()
        .filter_map(|(idx, edge)| {
            let path = format!("topology.edges[{idx}]");
            let from = node_id(problems, &format!("{path}.from"), &edge.from);
            let to = node_id(problems, &format!("{path}.to"), &edge.to);
            let (from, to) = (from?, to?);
            if from == to {
                problems.push(
                    format!("{path}.to"),
                    "an edge must join two different nodes",
                );
                return None;
            }
            let edge = Edge {
                from,
                relation: edge.relation,
                to,
            };
            if let Some(problem) = relation_problem(&edge) {
                problems.push(format!("{path}.relation"), problem);
            }
            if !seen_edges.insert(edge.clone()) {
                problems.push(path, format!("`{edge}` is declared twice"));
            }
            Some(edge)
        })
        .collect();
    if edges.len() > raw.max_edges {
        problems.push(
            "topology.edges",
            format!(
                "declares {} edges, more than max_edges ({})",
                edges.len(),
                raw.max_edges
            ),
        );
    }
    TopologyConfig {
        group_window_ms: i64::try_from(raw.group_window_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX),
        max_hops: raw.max_hops,
        limits: TopologyLimits {
            max_nodes: raw.max_nodes,
            max_edges: raw.max_edges,
        },
        nodes,
        edges,
    }
}

fn node_id(problems: &mut Problems, path: &str, text: &str) -> Option<NodeId> {
    match text.trim().parse::<NodeId>() {
        Ok(id) => Some(id),
        Err(message) => {
            problems.push(path, message);
            None
        }
    }
}

/// What is wrong with an edge's relation between these kinds, if anything: a fallback joins
/// model groups, a deployment routes from a model group, and so on.
fn relation_problem(edge: &Edge) -> Option<String> {
    use NodeKind as K;
    let (from, to) = (edge.from.kind, edge.to.kind);
    let fits = match edge.relation {
        Relation::FallsBackTo => from == K::ModelGroup && to == K::ModelGroup,
        Relation::RoutesTo => from == K::ModelGroup && to == K::Deployment,
        Relation::HostedBy => {
            matches!(
                from,
                K::ModelGroup | K::Deployment | K::Model | K::Retrieval
            ) && matches!(to, K::Provider | K::Infra)
        }
        Relation::ServedBy => matches!(from, K::ModelGroup | K::Deployment) && to == K::Model,
        Relation::OwnedBy => to == K::Team,
        Relation::Calls | Relation::Uses | Relation::Reads => true,
    };
    (!fits).then(|| {
        format!(
            "`{}` cannot go from a node of kind {} to one of kind {}",
            edge.relation.as_str(),
            from.as_str(),
            to.as_str()
        )
    })
}
