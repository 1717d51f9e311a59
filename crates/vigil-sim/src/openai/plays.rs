//! Scripts that play vigil's investigator, well or badly: what the demo, the simulator's
//! scenarios, the tests and the benchmark put behind the fake. A good investigator reads the
//! incident's evidence with a tool call and answers citing what the tool returned; the other
//! plays are the misbehaviours a real model shows (hallucinated evidence, malformed JSON, an
//! answer that ignores the schema, endless tool calls, 429 with a huge `Retry-After`, 500s,
//! answers past the deadline, a closed connection).

use serde_json::{Value, json};

use super::script::{Reply, Script};

/// How the fake plays the investigator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Play {
    /// Reads the incident's evidence, then answers with the diagnosis' best kind, citing it.
    Good,
    /// As `Good`, but ranks another kind first (the diagnosis' second, else `unknown`).
    Disagrees,
    /// Answers at once citing evidence ids no tool returned, with made-up numbers.
    Hallucinated,
    /// Answers with JSON cut off in the middle.
    Malformed,
    /// Answers in prose, ignoring the schema.
    NoSchema,
    /// Calls the same tool forever.
    EndlessTools,
    /// Answers 429 with `Retry-After: 86400`.
    RateLimited,
    /// Answers 500.
    ServerError,
    /// Answers well, a minute late.
    Slow,
    /// Closes the connection without answering.
    Closed,
}

impl Play {
    /// Every play, in declaration order.
    pub const ALL: [Play; 10] = [
        Play::Good,
        Play::Disagrees,
        Play::Hallucinated,
        Play::Malformed,
        Play::NoSchema,
        Play::EndlessTools,
        Play::RateLimited,
        Play::ServerError,
        Play::Slow,
        Play::Closed,
    ];

    /// Its name in scenarios (`good`, `rate_limited`, ...).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Play::Good => "good",
            Play::Disagrees => "disagrees",
            Play::Hallucinated => "hallucinated",
            Play::Malformed => "malformed",
            Play::NoSchema => "no_schema",
            Play::EndlessTools => "endless_tools",
            Play::RateLimited => "rate_limited",
            Play::ServerError => "server_error",
            Play::Slow => "slow",
            Play::Closed => "closed",
        }
    }

    /// The play a name names.
    #[must_use]
    pub fn parse(name: &str) -> Option<Play> {
        Play::ALL.into_iter().find(|play| play.as_str() == name)
    }

    /// The script that plays it, for every request.
    #[must_use]
    pub fn script(self) -> Script {
        let reply = match self {
            Play::Good => Reply::respond(|request| investigate(request, false)),
            Play::Disagrees => Reply::respond(|request| investigate(request, true)),
            Play::Hallucinated => Reply::content(
                json!({
                    "hypotheses": [{
                        "kind": "runaway_key",
                        "subject": "team-zeta",
                        "evidence": [{"id": "s-00c0ffee", "value": 123_456.0}, {"id": "f-deadbeef"}]
                    }],
                    "narrative": "Key team-zeta burned 123,456 tokens in 7 minutes after a deploy at 03:12."
                })
                .to_string(),
            ),
            Play::Malformed => Reply::content(r#"{"hypotheses": [{"kind": "runaway_key", "evidence": [{"id": "#),
            Play::NoSchema => Reply::content(
                "The incident looks like a runaway key. I would block it and tell the team.",
            ),
            Play::EndlessTools => {
                Reply::tool_call("subject_context", r#"{"subject":"api_key=team-a"}"#)
            }
            Play::RateLimited => Reply::Status {
                status: 429,
                retry_after: Some("86400".to_owned()),
                message: "Rate limit reached for requests".to_owned(),
            },
            Play::ServerError => Reply::status(500, "The server had an error while processing your request."),
            Play::Slow => Reply::Delay {
                ms: 60_000,
                then: Box::new(Reply::respond(|request| investigate(request, false))),
            },
            Play::Closed => Reply::Close,
        };
        Script {
            replies: Vec::new(),
            then: Some(reply),
        }
    }
}

/// A careful investigator: first the incident's evidence, then an answer citing it.
fn investigate(request: &Value, disagree: bool) -> Reply {
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let task = messages
        .iter()
        .find(|message| message.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|message| message.get("content").and_then(Value::as_str))
        .unwrap_or_default()
        .to_owned();
    let evidence: Vec<Value> = messages
        .iter()
        .filter(|message| message.get("role").and_then(Value::as_str) == Some("tool"))
        .filter_map(|message| message.get("content").and_then(Value::as_str))
        .filter_map(|content| serde_json::from_str::<Value>(content).ok())
        .filter_map(|output| output.get("evidence").and_then(Value::as_array).cloned())
        .flatten()
        .collect();
    let offers_tools = request.get("tools").is_some();
    if evidence.is_empty() && offers_tools {
        let incident = task
            .strip_prefix("Incident ")
            .and_then(|rest| rest.split([',', ' ']).next())
            .unwrap_or_default();
        return Reply::tool_call(
            "incident_evidence",
            json!({ "incident_id": incident }).to_string(),
        );
    }
    // The diagnosis' hypotheses are listed as "1. kind (...)" lines of the task.
    let kinds: Vec<&str> = task
        .lines()
        .filter_map(|line| {
            let (number, rest) = line.split_once(". ")?;
            number.parse::<u32>().ok()?;
            rest.split_whitespace().next()
        })
        .collect();
    let kind = if disagree {
        kinds.get(1).copied().unwrap_or("unknown")
    } else {
        kinds.first().copied().unwrap_or("unknown")
    };
    let cited: Vec<Value> = evidence
        .iter()
        .take(2)
        .filter_map(|item| item.get("id").cloned())
        .map(|id| json!({ "id": id }))
        .collect();
    let hypotheses = if cited.is_empty() {
        Vec::new()
    } else {
        vec![json!({ "kind": kind, "evidence": cited })]
    };
    Reply::content(
        json!({
            "hypotheses": hypotheses,
            "narrative": format!("The evidence vigil holds points to {kind}; the cited facts are vigil's own."),
            "next_check": "Confirm with the owner of the subject that nothing was planned."
        })
        .to_string(),
    )
}
