//! The investigator's tools: a closed set, all read-only. The engine serves the first three
//! from its state ([`Engine::investigation_tool`](crate::engine::Engine::investigation_tool));
//! the runtime serves [`ToolCall::LedgerEntries`] from the ledger.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::EvidenceItem;

/// The longest window a series query may ask for, in minutes (a day).
pub const MAX_WINDOW_MINUTES: u32 = 24 * 60;
/// At most this many series answer one query.
pub const MAX_SERIES_PER_QUERY: usize = 20;
/// At most this many ledger entries answer one call.
pub const MAX_LEDGER_ENTRIES: usize = 20;

/// A tool call the model made, parsed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "tool", rename_all = "snake_case")]
pub enum ToolCall {
    /// A selector's series over a window: each series' latest value, its value at the
    /// window's start and its per-second rate over the window.
    QuerySeries {
        /// A series selector (`name{label="value"}`).
        selector: String,
        /// The window, in minutes.
        minutes: u32,
    },
    /// What vigil knows about a subject (`api_key=team-a`, `model_group=gpt-4o`, or a bare
    /// value): its findings, version changes and topology neighbours.
    SubjectContext {
        /// The subject.
        subject: String,
    },
    /// An incident's finding, diagnosis and evidence.
    IncidentEvidence {
        /// The incident.
        incident_id: String,
    },
    /// The latest ledger entries that mention a subject.
    LedgerEntries {
        /// The subject.
        subject: String,
    },
}

/// Why a tool call was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// No tool of that name.
    #[error("there is no tool `{0}`")]
    Unknown(String),
    /// The arguments are not what the tool takes.
    #[error("bad arguments for `{tool}`: {detail}")]
    Arguments {
        /// The tool.
        tool: String,
        /// What is wrong.
        detail: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesArgs {
    selector: String,
    #[serde(default)]
    minutes: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectArgs {
    subject: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentArgs {
    incident_id: String,
}

impl ToolCall {
    /// Parses a call from its tool name and the arguments' JSON text as the model wrote it.
    ///
    /// # Errors
    /// An unknown tool, or arguments that are not the tool's.
    pub fn parse(name: &str, arguments: &str) -> Result<ToolCall, ToolError> {
        let bad = |detail: String| ToolError::Arguments {
            tool: name.to_owned(),
            detail,
        };
        let arguments = if arguments.trim().is_empty() {
            "{}"
        } else {
            arguments
        };
        let text_ok = |text: &str, field: &str| {
            if text.trim().is_empty() || text.len() > 512 {
                Err(bad(format!("`{field}` must be 1 to 512 bytes")))
            } else {
                Ok(text.trim().to_owned())
            }
        };
        match name {
            "query_series" => {
                let args: SeriesArgs =
                    serde_json::from_str(arguments).map_err(|error| bad(error.to_string()))?;
                let minutes = args.minutes.unwrap_or(15);
                if minutes == 0 || minutes > MAX_WINDOW_MINUTES {
                    return Err(bad(format!("`minutes` must be 1 to {MAX_WINDOW_MINUTES}")));
                }
                Ok(ToolCall::QuerySeries {
                    selector: text_ok(&args.selector, "selector")?,
                    minutes,
                })
            }
            "subject_context" | "ledger_entries" => {
                let args: SubjectArgs =
                    serde_json::from_str(arguments).map_err(|error| bad(error.to_string()))?;
                let subject = text_ok(&args.subject, "subject")?;
                Ok(if name == "subject_context" {
                    ToolCall::SubjectContext { subject }
                } else {
                    ToolCall::LedgerEntries { subject }
                })
            }
            "incident_evidence" => {
                let args: IncidentArgs =
                    serde_json::from_str(arguments).map_err(|error| bad(error.to_string()))?;
                Ok(ToolCall::IncidentEvidence {
                    incident_id: text_ok(&args.incident_id, "incident_id")?,
                })
            }
            other => Err(ToolError::Unknown(other.chars().take(64).collect())),
        }
    }

    /// The tool's name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            ToolCall::QuerySeries { .. } => "query_series",
            ToolCall::SubjectContext { .. } => "subject_context",
            ToolCall::IncidentEvidence { .. } => "incident_evidence",
            ToolCall::LedgerEntries { .. } => "ledger_entries",
        }
    }
}

/// The tools as the Chat Completions API's `tools` array.
#[must_use]
pub fn definitions() -> Value {
    let function = |name: &str, description: &str, properties: Value, required: &[&str]| {
        json!({
            "type": "function",
            "function": {
                "name": name,
                "description": description,
                "parameters": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": properties,
                    "required": required,
                }
            }
        })
    };
    json!([
        function(
            "query_series",
            "Series matching a selector over a window: latest value, value at the window's start, per-second rate. Evidence ids per series.",
            json!({
                "selector": {"type": "string", "description": "name{label=\"value\"}"},
                "minutes": {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW_MINUTES}
            }),
            &["selector"],
        ),
        function(
            "subject_context",
            "Findings, version changes and topology neighbours of a subject such as api_key=team-a or model_group=gpt-4o.",
            json!({"subject": {"type": "string"}}),
            &["subject"],
        ),
        function(
            "incident_evidence",
            "An incident's finding, diagnosis hypotheses and their evidence.",
            json!({"incident_id": {"type": "string"}}),
            &["incident_id"],
        ),
        function(
            "ledger_entries",
            "The latest ledger entries (vigil's decisions) that mention a subject.",
            json!({"subject": {"type": "string"}}),
            &["subject"],
        ),
    ])
}

/// What a tool returned: the text the model reads and the evidence items in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    /// JSON text for the model, at most the investigation's `max_tool_output_bytes`.
    pub text: String,
    /// The items the text shows (only those: an item cut off is not citable).
    pub evidence: Vec<EvidenceItem>,
}

impl ToolOutput {
    /// The output of `items` with a note, cut to `max_bytes`: items are kept whole, in order,
    /// while they fit, and the text says how many were left out.
    #[must_use]
    pub fn capped(note: &str, items: Vec<EvidenceItem>, max_bytes: usize) -> ToolOutput {
        let total = items.len();
        let mut shown: Vec<EvidenceItem> = Vec::new();
        let mut text = render(note, &shown, 0);
        for item in items {
            shown.push(item);
            let candidate = render(note, &shown, total - shown.len());
            if candidate.len() > max_bytes {
                shown.pop();
                break;
            }
            text = candidate;
        }
        if shown.len() < total {
            text = render(note, &shown, total - shown.len());
        }
        if text.len() > max_bytes {
            // Even the note does not fit: say only that.
            shown.clear();
            text = json!({"note": "output cut: raise max_tool_output_bytes", "left_out": total})
                .to_string();
        }
        ToolOutput {
            text,
            evidence: shown,
        }
    }

    /// A refusal the model reads (a repeated call, a call past the limit, bad arguments).
    #[must_use]
    pub fn refused(why: &str) -> ToolOutput {
        ToolOutput {
            text: json!({"refused": why}).to_string(),
            evidence: Vec::new(),
        }
    }
}

fn render(note: &str, items: &[EvidenceItem], left_out: usize) -> String {
    let evidence: Vec<Value> = items
        .iter()
        .map(|item| json!({"id": item.id, "about": item.about, "fact": item.statement}))
        .collect();
    let mut value = json!({"note": note, "evidence": evidence});
    if left_out > 0
        && let Some(object) = value.as_object_mut()
    {
        object.insert("left_out".to_owned(), json!(left_out));
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_parse_or_say_why() {
        assert_eq!(
            ToolCall::parse("query_series", r#"{"selector":"x{a=\"b\"}"}"#),
            Ok(ToolCall::QuerySeries {
                selector: "x{a=\"b\"}".to_owned(),
                minutes: 15
            })
        );
        assert!(matches!(
            ToolCall::parse("rm_rf", "{}"),
            Err(ToolError::Unknown(_))
        ));
        assert!(matches!(
            ToolCall::parse("query_series", r#"{"selector":"x","minutes":100000}"#),
            Err(ToolError::Arguments { .. })
        ));
        assert!(matches!(
            ToolCall::parse("subject_context", "{not json"),
            Err(ToolError::Arguments { .. })
        ));
        assert!(matches!(
            ToolCall::parse("subject_context", r#"{"subject":"a","extra":1}"#),
            Err(ToolError::Arguments { .. })
        ));
    }

    #[test]
    fn outputs_are_capped_at_whole_items() {
        let items: Vec<EvidenceItem> = (0..50)
            .map(|n| {
                EvidenceItem::new(
                    's',
                    format!("series {n}"),
                    format!("value {n}"),
                    vec![f64::from(n)],
                )
            })
            .collect();
        let output = ToolOutput::capped("50 series", items, 1024);
        assert!(output.text.len() <= 1024, "{}", output.text.len());
        assert!(!output.evidence.is_empty() && output.evidence.len() < 50);
        let value: Value = serde_json::from_str(&output.text).unwrap_or(Value::Null);
        assert_eq!(value["left_out"], json!(50 - output.evidence.len()));
        assert_eq!(ToolOutput::capped("n", Vec::new(), 5).evidence.len(), 0);
    }
}
