//! The assistant in the engine: which incidents it is asked about, what the engine makes of
//! each answer (good, hallucinated, malformed, none), and that nothing it says changes which
//! runbook runs: the actions and pages are those of a session without it, apart from what a
//! policy reads from `assistant_agrees`.

use super::tests::{BLOCKED, NORMAL, RUNAWAY, Scenario, config};
use super::*;
use crate::authz::{AuthzDecision, Effect, Mode};
use crate::investigation::tools::{ToolCall, ToolOutput};
use crate::investigation::{
    AssistantConfig, EvidenceItem, Failure, InvestigationOutcome, Scope, Usage,
};

fn assistant(on: Scope) -> AssistantConfig {
    AssistantConfig {
        on,
        max_tool_calls: 4,
        max_turns: 6,
        max_tool_output_bytes: 8192,
        max_tokens_per_incident: 20_000,
        deadline_ms: 60_000,
        tolerance: 0.02,
    }
}

fn with_assistant(on: Scope) -> EngineConfig {
    EngineConfig {
        assistant: Some(assistant(on)),
        ..config(Mode::Autonomous)
    }
}

/// The investigation the commands ask for: its id and incident.
fn investigation(commands: &[Command]) -> Option<(String, String)> {
    commands.iter().find_map(|command| match command {
        Command::Investigate {
            investigation_id,
            request,
        } => Some((investigation_id.clone(), request.incident_id.clone()?)),
        _ => None,
    })
}

/// What the incident's evidence tool returns now.
fn evidence_of(scenario: &Scenario, incident_id: &str) -> ToolOutput {
    scenario.engine.investigation_tool(
        &ToolCall::IncidentEvidence {
            incident_id: incident_id.to_owned(),
        },
        scenario.now,
        8192,
    )
}

fn answered(answer: String, evidence: Vec<EvidenceItem>) -> Box<InvestigationOutcome> {
    Box::new(InvestigationOutcome::Answered {
        answer,
        evidence,
        usage: Usage {
            requests: 2,
            tool_calls: 1,
            tool_calls_refused: 0,
            tokens: 900,
            latency_ms: 1200,
        },
        transcript_blob: Some("ab".repeat(32)),
    })
}

/// The world's side of a runaway key, the assistant answering with `outcome` once the key
/// is blocked; returns every command, in order.
fn runaway_with(
    on: Option<Scope>,
    outcome: impl Fn(&Scenario, &str) -> Option<Box<InvestigationOutcome>>,
) -> (Scenario, Vec<Command>) {
    let config = match on {
        Some(on) => with_assistant(on),
        None => config(Mode::Autonomous),
    };
    let mut scenario = Scenario::new(config);
    let mut all = scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    all.extend(commands.clone());
    let asked = investigation(&commands);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    all.extend(commands.clone());
    if let Some((investigation_id, incident_id)) = &asked
        && let Some(outcome) = outcome(&scenario, incident_id)
    {
        scenario.now = scenario.now.plus_millis(10);
        all.extend(scenario.feed(Event::InvestigationFinished {
            investigation_id: investigation_id.clone(),
            incident_id: Some(incident_id.clone()),
            outcome,
        }));
    }
    all.extend(scenario.finish_action(&commands, true));
    all.extend(scenario.scrapes(3, BLOCKED));
    (scenario, all)
}

/// What the world sees: actions and pages, in order.
fn effects(commands: &[Command]) -> Vec<String> {
    commands
        .iter()
        .filter_map(|command| match command {
            Command::Execute { action, .. } => Some(format!("execute {}", action.describe())),
            Command::Page { page, .. } => Some(format!("page {}", page.title)),
            _ => None,
        })
        .collect()
}

fn good_answer(scenario: &Scenario, incident_id: &str) -> Option<Box<InvestigationOutcome>> {
    let output = evidence_of(scenario, incident_id);
    let ids: Vec<String> = output
        .evidence
        .iter()
        .take(2)
        .map(|item| format!(r#"{{"id":"{}"}}"#, item.id))
        .collect();
    Some(answered(
        format!(
            r#"{{"hypotheses":[{{"kind":"runaway_key","evidence":[{}]}}],"narrative":"One key carries the spike."}}"#,
            ids.join(",")
        ),
        output.evidence,
    ))
}

#[test]
fn every_incident_is_investigated_and_a_good_answer_is_kept_beside_the_diagnosis() {
    let (_, commands) = runaway_with(Some(Scope::All), good_answer);
    let (_, without) = runaway_with(None, |_, _| None);
    assert_eq!(
        effects(&commands),
        effects(&without),
        "the assistant changes no action"
    );
    let Some(Record::InvestigationChecked {
        checked, agrees, ..
    }) = commands.iter().find_map(|command| match command {
        Command::Record(record @ Record::InvestigationChecked { .. }) => Some(record),
        _ => None,
    })
    else {
        panic!("no check recorded: {commands:?}");
    };
    assert_eq!(*agrees, Some(true));
    assert!(checked.dropped.is_empty(), "{checked:?}");
    assert_eq!(
        checked.narrative.as_deref(),
        Some("One key carries the spike.")
    );
}

#[test]
fn each_misbehaviour_leaves_the_actions_as_they_were_and_is_recorded() {
    let (_, without) = runaway_with(None, |_, _| None);
    type Play = fn(&Scenario, &str) -> Option<Box<InvestigationOutcome>>;
    let plays: [(&str, Play); 5] = [
        ("hallucinated", |scenario, incident| {
            let output = evidence_of(scenario, incident);
            Some(answered(
                r#"{"hypotheses":[{"kind":"runaway_key","evidence":[{"id":"s-00c0ffee","value":5}]}],"narrative":"It burned 123,456 tokens."}"#.to_owned(),
                output.evidence,
            ))
        }),
        ("malformed", |_, _| {
            Some(answered("{\"hypotheses\": [".to_owned(), Vec::new()))
        }),
        ("no schema", |_, _| {
            Some(answered("Block the key.".to_owned(), Vec::new()))
        }),
        ("deadline", |_, _| {
            Some(Box::new(InvestigationOutcome::Failed {
                failure: Failure::Deadline,
                detail: "no answer within 60s".to_owned(),
                usage: Usage::default(),
                transcript_blob: None,
            }))
        }),
        ("never answers", |_, _| None),
    ];
    for (name, play) in plays {
        let (scenario, commands) = runaway_with(Some(Scope::All), play);
        assert_eq!(effects(&commands), effects(&without), "{name}");
        let recorded: Vec<&Record> = commands
            .iter()
            .filter_map(|command| match command {
                Command::Record(
                    record @ (Record::InvestigationChecked { .. }
                    | Record::InvestigationFailed { .. }),
                ) => Some(record),
                _ => None,
            })
            .collect();
        match name {
            "never answers" => assert!(recorded.is_empty()),
            "deadline" => assert!(matches!(
                recorded.as_slice(),
                [Record::InvestigationFailed {
                    failure: Failure::Deadline,
                    ..
                }]
            )),
            _ => {
                let [
                    Record::InvestigationChecked {
                        checked, agrees, ..
                    },
                ] = recorded.as_slice()
                else {
                    panic!("{name}: {recorded:?}");
                };
                assert!(checked.hypotheses.is_empty(), "{name}");
                assert!(
                    !checked.dropped.is_empty(),
                    "{name}: every bad claim is counted"
                );
                assert_eq!(*agrees, None, "{name}");
            }
        }
        // No authorization ever carries an opinion that did not check out.
        assert!(
            commands.iter().all(|command| !matches!(
                command,
                Command::Authorize { request, .. } if request.context.assistant_agrees.is_some()
            )),
            "{name}"
        );
        drop(scenario);
    }
}

#[test]
fn novel_incidents_only_are_investigated_when_so_configured() {
    // A runbook handles the runaway key: with `novel`, nobody asks the assistant.
    let (_, commands) = runaway_with(Some(Scope::Novel), |_, _| None);
    assert!(investigation(&commands).is_none());
    // Without the runbook the same incident is novel (it pages with no automatic fix).
    let mut config = with_assistant(Scope::Novel);
    config.runbooks.clear();
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    assert!(investigation(&commands).is_some(), "{commands:?}");
    assert!(
        commands
            .iter()
            .any(|command| matches!(command, Command::Page { .. }))
    );
}

/// The assistant answers that many keys grew (`broad_surge`), citing the incident's first
/// fact: a checked disagreement with the runaway-key diagnosis.
fn disagree(
    scenario: &mut Scenario,
    investigation_id: String,
    incident_id: String,
) -> Vec<Command> {
    let output = evidence_of(scenario, &incident_id);
    let first = output
        .evidence
        .first()
        .map(|item| item.id.clone())
        .unwrap_or_default();
    scenario.feed(Event::InvestigationFinished {
        investigation_id,
        incident_id: Some(incident_id),
        outcome: answered(
            format!(r#"{{"hypotheses":[{{"kind":"broad_surge","evidence":[{{"id":"{first}"}}]}}],"narrative":"Many keys grew."}}"#),
            output.evidence,
        ),
    })
}

#[test]
fn an_answer_after_the_page_follows_it_up_and_a_disagreement_reaches_cedar() {
    // Paged incidents only: the investigation starts with the page; its checked answer
    // follows the page up.
    let mut config = with_assistant(Scope::Paged);
    config.runbooks.clear();
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let (investigation_id, incident_id) = investigation(&commands).expect("asked with the page");
    let commands = disagree(&mut scenario, investigation_id, incident_id);
    let Some(Command::UpdatePage { note, .. }) = commands
        .iter()
        .find(|command| matches!(command, Command::UpdatePage { .. }))
    else {
        panic!("no follow-up: {commands:?}");
    };
    assert_eq!(note.agrees, Some(false));
    assert!(note.agreement.contains("disagrees"), "{}", note.agreement);

    // With a runbook, a disagreement checked before a later step is in that step's context.
    let mut scenario = Scenario::new(with_assistant(Scope::All));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let (investigation_id, incident_id) = investigation(&commands).expect("asked");
    disagree(&mut scenario, investigation_id, incident_id);
    let authorize = commands
        .iter()
        .find_map(|command| match command {
            Command::Authorize { request, .. } => Some(request.context.assistant_agrees),
            _ => None,
        })
        .expect("the first step was asked before the answer");
    assert_eq!(
        authorize, None,
        "the first step did not wait for the assistant"
    );
    // The policy denies; the compensation-free denial pages, and the page carries the
    // assistant's view.
    let decision = AuthzDecision {
        effect: Effect::Deny,
        determining_policies: vec!["assistant-disagreement-needs-a-human".to_owned()],
        errors: Vec::new(),
        policy_set_hash: "abc".to_owned(),
    };
    let Some(Command::Authorize {
        request_id,
        incident_id,
        ..
    }) = commands
        .iter()
        .find(|command| matches!(command, Command::Authorize { .. }))
    else {
        panic!("no authorize");
    };
    let commands = scenario.feed(Event::AuthorizationDecided {
        request_id: request_id.clone(),
        incident_id: incident_id.clone(),
        decision,
    });
    let Some(Command::Page { page, .. }) = commands
        .iter()
        .find(|command| matches!(command, Command::Page { .. }))
    else {
        panic!("no page: {commands:?}");
    };
    let note = page
        .why
        .assistant
        .as_ref()
        .expect("the page carries the assistant's view");
    assert_eq!(note.agrees, Some(false));
    assert_eq!(note.narrative.as_deref(), Some("Many keys grew."));
}

#[test]
fn the_tools_read_the_engine_and_refuse_what_they_cannot_serve() {
    let (scenario, commands) = runaway_with(Some(Scope::All), |_, _| None);
    let (_, incident_id) = investigation(&commands).expect("asked");
    let _ = incident_id;
    let series = scenario.engine.investigation_tool(
        &ToolCall::QuerySeries {
            selector: format!("{}{{api_key_alias=\"batch-job\"}}", super::tests::METRIC),
            minutes: 5,
        },
        scenario.now,
        8192,
    );
    assert_eq!(series.evidence.len(), 1, "{}", series.text);
    assert!(series.evidence.iter().all(|item| !item.values.is_empty()));
    let bad = scenario.engine.investigation_tool(
        &ToolCall::QuerySeries {
            selector: "{".to_owned(),
            minutes: 5,
        },
        scenario.now,
        8192,
    );
    assert!(bad.text.contains("refused") && bad.evidence.is_empty());
    let ledger = scenario.engine.investigation_tool(
        &ToolCall::LedgerEntries {
            subject: "batch-job".to_owned(),
        },
        scenario.now,
        8192,
    );
    assert!(ledger.text.contains("refused"));
}
