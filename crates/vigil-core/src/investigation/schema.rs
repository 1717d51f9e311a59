//! What the model is told and the shape its answer must have.

use serde_json::{Value, json};

use crate::diagnosis::HypothesisKind;

/// The system prompt of every investigation.
pub const SYSTEM_PROMPT: &str = "You are vigil's investigator, helping an on-call engineer \
understand an incident in an AI system (LLM apps, agents, gateways, providers, retrieval). \
You can only read: call the tools to look at vigil's series, findings, version changes, \
topology and ledger. Every tool result lists evidence items, each with an id. \
You never decide or authorize an action. \
Answer with one JSON object that matches the given schema: ranked hypotheses, best first, \
each of a kind from the closed list or \"unknown\", each citing the ids of the evidence \
items that support it (with the number you rely on, copied exactly); a narrative of at most \
three sentences; and optionally one next check for a human. Cite only ids a tool returned. \
Do not write numbers in the narrative that no evidence item holds. If the evidence does \
not support a hypothesis, say \"unknown\".";

/// The JSON schema of an answer (the hypothesis kinds are the closed set, plus `unknown`).
#[must_use]
pub fn answer_schema() -> Value {
    let mut kinds: Vec<&str> = HypothesisKind::ALL
        .iter()
        .map(|kind| kind.as_str())
        .collect();
    kinds.push("unknown");
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["hypotheses", "narrative"],
        "properties": {
            "hypotheses": {
                "type": "array",
                "maxItems": super::check::MAX_HYPOTHESES,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["kind", "evidence"],
                    "properties": {
                        "kind": {"type": "string", "enum": kinds},
                        "subject": {"type": "string"},
                        "evidence": {
                            "type": "array",
                            "maxItems": super::check::MAX_CITATIONS,
                            "items": {
                                "type": "object",
                                "additionalProperties": false,
                                "required": ["id"],
                                "properties": {
                                    "id": {"type": "string"},
                                    "about": {"type": "string"},
                                    "value": {"type": "number"}
                                }
                            }
                        }
                    }
                }
            },
            "narrative": {"type": "string", "maxLength": super::check::MAX_NARRATIVE_CHARS},
            "next_check": {"type": "string", "maxLength": super::check::MAX_NEXT_CHECK_CHARS}
        }
    })
}
