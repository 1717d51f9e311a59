//! What a failover moves traffic between, as the topology knows it: the source's and the
//! fallbacks' modality and context window, which Cedar policies check (a failover only to a
//! compatible model).

use super::{NodeId, NodeKind, Topology};
use crate::authz::{FailoverFacts, MIXED_MODALITY, UNKNOWN_MODALITY};

/// The modality and context window of the model group or model named `name`: the model
/// group's when the topology has one with model facts, else the model snapshot's.
fn model_facts(topology: &Topology, name: &str) -> (String, i64) {
    let info = [NodeKind::ModelGroup, NodeKind::Model]
        .into_iter()
        .find_map(|kind| topology.node(&NodeId::new(kind, name))?.model);
    match info {
        Some(info) => (
            info.modality.as_str().to_owned(),
            info.context_window
                .map_or(0, |window| i64::try_from(window).unwrap_or(i64::MAX)),
        ),
        None => (UNKNOWN_MODALITY.to_owned(), 0),
    }
}

/// The facts of a failover of `source` to `targets` (in the step's order).
///
/// The targets' modality is theirs when they all share one, [`MIXED_MODALITY`] when they
/// differ, and [`UNKNOWN_MODALITY`] when any is unknown (or there is none); their context
/// window is the smallest of theirs, 0 when any is unknown: traffic may land on any of them.
#[must_use]
pub fn failover_facts(topology: &Topology, source: &str, targets: &[String]) -> FailoverFacts {
    let (source_modality, source_context_window) = model_facts(topology, source);
    let of_targets: Vec<(String, i64)> = targets
        .iter()
        .map(|target| model_facts(topology, target))
        .collect();
    let any_unknown = of_targets.is_empty()
        || of_targets
            .iter()
            .any(|(modality, _)| modality == UNKNOWN_MODALITY);
    let target_modality = match of_targets.first() {
        _ if any_unknown => UNKNOWN_MODALITY.to_owned(),
        Some((first, _)) if of_targets.iter().all(|(modality, _)| modality == first) => {
            first.clone()
        }
        _ => MIXED_MODALITY.to_owned(),
    };
    let target_context_window = if of_targets.iter().any(|(_, window)| *window == 0) {
        0
    } else {
        of_targets
            .iter()
            .map(|(_, window)| *window)
            .min()
            .unwrap_or(0)
    };
    FailoverFacts {
        source: source.to_owned(),
        source_modality,
        source_context_window,
        target: targets.join(","),
        target_modality,
        target_context_window,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{DeclaredNode, Modality, ModelInfo, NodeFacts, TopologyConfig};

    fn declared(name: &str, modality: Modality, context_window: Option<u64>) -> DeclaredNode {
        DeclaredNode {
            id: NodeId::new(NodeKind::ModelGroup, name),
            facts: NodeFacts {
                model: Some(ModelInfo {
                    modality,
                    context_window,
                }),
                ..NodeFacts::default()
            },
        }
    }

    fn topology() -> Topology {
        Topology::declared(&TopologyConfig {
            nodes: vec![
                declared("gpt-4o", Modality::Chat, Some(128_000)),
                declared("claude-3-5-sonnet", Modality::Chat, Some(200_000)),
                declared("llama-3-8b", Modality::Chat, Some(8_192)),
                declared("text-embedding-3-small", Modality::Embedding, Some(8_191)),
                declared("mystery-chat", Modality::Chat, None),
            ],
            ..TopologyConfig::default()
        })
    }

    fn facts(source: &str, targets: &[&str]) -> FailoverFacts {
        let targets: Vec<String> = targets.iter().map(|&target| target.to_owned()).collect();
        failover_facts(&topology(), source, &targets)
    }

    #[test]
    fn declared_models_give_their_modality_and_window() {
        let found = facts("gpt-4o", &["claude-3-5-sonnet"]);
        assert_eq!(found.source_modality, "chat");
        assert_eq!(found.source_context_window, 128_000);
        assert_eq!(found.target_modality, "chat");
        assert_eq!(found.target_context_window, 200_000);
        assert_eq!(found.target, "claude-3-5-sonnet");
    }

    #[test]
    fn several_fallbacks_give_the_smallest_window_and_their_common_modality() {
        let found = facts("gpt-4o", &["claude-3-5-sonnet", "llama-3-8b"]);
        assert_eq!(found.target_modality, "chat");
        assert_eq!(found.target_context_window, 8_192);
        assert_eq!(found.target, "claude-3-5-sonnet,llama-3-8b");
        let mixed = facts("gpt-4o", &["claude-3-5-sonnet", "text-embedding-3-small"]);
        assert_eq!(mixed.target_modality, MIXED_MODALITY);
    }

    #[test]
    fn what_the_topology_does_not_know_is_unknown() {
        let found = facts("unheard-of", &["claude-3-5-sonnet", "nobody"]);
        assert_eq!(found.source_modality, UNKNOWN_MODALITY);
        assert_eq!(found.source_context_window, 0);
        assert_eq!(found.target_modality, UNKNOWN_MODALITY);
        assert_eq!(found.target_context_window, 0);
        // A known modality without a window: the window is unknown.
        let windowless = facts("gpt-4o", &["mystery-chat"]);
        assert_eq!(windowless.target_modality, "chat");
        assert_eq!(windowless.target_context_window, 0);
        assert_eq!(facts("gpt-4o", &[]).target_modality, UNKNOWN_MODALITY);
    }
}
