//! The investigator against the scriptable OpenAI fake over real HTTP on loopback: each way a
//! model misbehaves, and what vigil makes of it (claims dropped by the engine's check, the
//! deadline holding whatever `Retry-After` says, the breaker opening, the budgets).

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil_core::investigation::{
    AssistantConfig, DropReason, EvidenceItem, Failure, InvestigationOutcome, InvestigationRequest,
    Scope, check,
};
use vigil_sim::{OpenAiFake, Play, Reply, Script};

use super::*;

/// Serves every call with the same two facts.
struct FixedTools;

fn facts() -> Vec<EvidenceItem> {
    vec![
        EvidenceItem::new(
            'f',
            "api_key=team-a".to_owned(),
            "finding of token-spike on api_key team-a: 1,200 tokens per second".to_owned(),
            vec![1200.0],
        ),
        EvidenceItem::new(
            'e',
            "api_key=team-a".to_owned(),
            "runaway_key: team-a holds 96 % of the extra tokens".to_owned(),
            vec![96.0],
        ),
    ]
}

impl ToolServer for FixedTools {
    async fn serve(&self, call: ToolCall, max_bytes: usize) -> ToolOutput {
        match call {
            ToolCall::IncidentEvidence { .. } | ToolCall::SubjectContext { .. } => {
                ToolOutput::capped("the incident's facts", facts(), max_bytes)
            }
            ToolCall::QuerySeries { .. } | ToolCall::LedgerEntries { .. } => {
                ToolOutput::refused("not in this test")
            }
        }
    }
}

const TASK: &str = "Incident inc-test, opened 2026-12-04T00:00:00Z: token spike on team-a.\n\
Its hypotheses, best first:\n1. runaway_key (96 %): key team-a\n2. broad_surge (4 %): many keys";

fn limits() -> AssistantConfig {
    AssistantConfig {
        on: Scope::All,
        max_tool_calls: 4,
        max_turns: 6,
        max_tool_output_bytes: 4096,
        max_tokens_per_incident: 50_000,
        deadline_ms: 3_000,
        tolerance: 0.02,
    }
}

fn settings(base_url: &str) -> AssistantSettings {
    AssistantSettings {
        enabled: true,
        engine: limits(),
        base_url: reqwest::Url::parse(base_url).expect("a URL"),
        model: "gpt-4o-mini".to_owned(),
        api_key: None,
        structured_output: StructuredOutput::JsonSchema,
        tokens_per_day: 1_000_000,
        request_timeout: Duration::from_millis(1_500),
        max_completion_tokens: 800,
        concurrency: 2,
        breaker_failures: 2,
        breaker_cool_off: Duration::from_secs(600),
    }
}

async fn fake(play: Play) -> (OpenAiFake, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let cancel = CancellationToken::new();
    let fake = OpenAiFake::start(listener, play.script(), cancel.clone())
        .await
        .expect("the fake starts");
    (fake, cancel)
}

fn investigator(fake: &OpenAiFake, settings: &AssistantSettings) -> Investigator {
    vigil_connectors::install_crypto_provider();
    let http = vigil_connectors::http::client(settings.request_timeout).expect("a client");
    Investigator::new(settings, ChatClient::new(&fake.base_url(), None, http))
}

fn request() -> InvestigationRequest {
    InvestigationRequest {
        incident_id: Some("inc-test".to_owned()),
        task: TASK.to_owned(),
        limits: limits(),
    }
}

/// Runs one investigation with `play` and returns what came back and the check of it.
async fn run(play: Play) -> (Finished, Option<vigil_core::investigation::CheckedAnswer>) {
    let (fake, cancel) = fake(play).await;
    let investigator = investigator(&fake, &settings(&fake.base_url()));
    let finished = investigator.investigate(&request(), &FixedTools, 0).await;
    cancel.cancel();
    let checked = match &finished.outcome {
        InvestigationOutcome::Answered {
            answer, evidence, ..
        } => Some(check(answer, evidence, TASK, 0.02)),
        InvestigationOutcome::Failed { .. } => None,
    };
    (finished, checked)
}

fn failure(finished: &Finished) -> Option<Failure> {
    match &finished.outcome {
        InvestigationOutcome::Failed { failure, .. } => Some(*failure),
        InvestigationOutcome::Answered { .. } => None,
    }
}

#[tokio::test]
async fn a_good_answer_survives_the_check_whole() {
    let (finished, checked) = run(Play::Good).await;
    let checked = checked.expect("answered");
    assert!(checked.dropped.is_empty(), "{checked:?}");
    let first = checked.hypotheses.first().expect("one hypothesis");
    assert_eq!(first.kind_name(), "runaway_key");
    assert_eq!(first.evidence.len(), 2);
    let usage = finished.outcome.usage();
    assert_eq!((usage.requests, usage.tool_calls), (2, 1));
    assert!(usage.tokens > 0);
    // The transcript holds the task, both requests, the tool call and its output, the answer.
    let transcript = finished.transcript.to_string();
    for part in ["\"task\"", "\"tool\":\"incident_evidence\"", "\"answer\""] {
        assert!(transcript.contains(part), "{part} in {transcript}");
    }
}

#[tokio::test]
async fn hallucinated_evidence_is_dropped_and_counted() {
    let (_, checked) = run(Play::Hallucinated).await;
    let checked = checked.expect("answered");
    assert!(checked.hypotheses.is_empty());
    assert_eq!(
        checked.narrative, None,
        "its numbers are nowhere in vigil's evidence"
    );
    let reasons: Vec<DropReason> = checked.dropped.iter().map(|dropped| dropped.why).collect();
    assert_eq!(
        reasons,
        [
            DropReason::UnknownEvidence,
            DropReason::UnknownEvidence,
            DropReason::NoValidEvidence,
            DropReason::UnsupportedText
        ]
    );
    assert_eq!(checked.claims, 4);
}

#[tokio::test]
async fn malformed_json_and_prose_are_dropped_whole() {
    for play in [Play::Malformed, Play::NoSchema] {
        let (_, checked) = run(play).await;
        let checked = checked.expect("answered");
        assert!(checked.hypotheses.is_empty() && checked.narrative.is_none());
        assert_eq!(
            checked.dropped.first().map(|dropped| dropped.why),
            Some(DropReason::SchemaMismatch),
            "{play:?}"
        );
    }
}

#[tokio::test]
async fn endless_tool_calls_are_refused_and_the_conversation_ends() {
    let (finished, _) = run(Play::EndlessTools).await;
    assert_eq!(failure(&finished), Some(Failure::Exhausted));
    let usage = finished.outcome.usage();
    assert_eq!(usage.requests, 6, "max_turns");
    assert_eq!(
        usage.tool_calls, 1,
        "the first call is served, its repeats refused"
    );
    assert_eq!(usage.tool_calls_refused, 5);
}

#[tokio::test]
async fn the_deadline_holds_against_retry_after_slow_answers_and_closed_connections() {
    // 429 with `Retry-After: 86400`: the client would wait a day; vigil's deadline ends it.
    let (finished, _) = run(Play::RateLimited).await;
    assert!(
        matches!(
            failure(&finished),
            Some(Failure::Deadline | Failure::Status)
        ),
        "{:?}",
        finished.outcome
    );
    let (finished, _) = run(Play::Slow).await;
    assert_eq!(failure(&finished), Some(Failure::Deadline));
    for play in [Play::ServerError, Play::Closed] {
        let (finished, _) = run(play).await;
        assert!(
            matches!(
                failure(&finished),
                Some(Failure::Deadline | Failure::Status | Failure::Connection)
            ),
            "{play:?}: {:?}",
            finished.outcome
        );
    }
}

#[tokio::test]
async fn the_breaker_opens_after_failures_and_stops_asking() {
    let (fake, cancel) = fake(Play::ServerError).await;
    let investigator = investigator(&fake, &settings(&fake.base_url()));
    for _ in 0..2 {
        let finished = investigator.investigate(&request(), &FixedTools, 0).await;
        assert!(matches!(
            failure(&finished),
            Some(Failure::Status | Failure::Deadline)
        ));
    }
    assert!(investigator.breaker_open());
    let asked = fake.requests().len();
    let finished = investigator.investigate(&request(), &FixedTools, 0).await;
    assert_eq!(failure(&finished), Some(Failure::BreakerOpen));
    assert_eq!(
        fake.requests().len(),
        asked,
        "an open breaker sends nothing"
    );
    cancel.cancel();
}

#[tokio::test]
async fn token_budgets_end_an_investigation() {
    let (fake, cancel) = fake(Play::Good).await;
    let mut small = settings(&fake.base_url());
    small.tokens_per_day = 10;
    let investigator = investigator(&fake, &small);
    let finished = investigator.investigate(&request(), &FixedTools, 0).await;
    assert_eq!(failure(&finished), Some(Failure::Budget));
    // The day is spent: the next one is not even tried.
    let asked = fake.requests().len();
    let finished = investigator.investigate(&request(), &FixedTools, 0).await;
    assert_eq!(failure(&finished), Some(Failure::Budget));
    assert_eq!(fake.requests().len(), asked);
    // A new day has tokens again.
    let finished = investigator
        .investigate(&request(), &FixedTools, 86_400_000)
        .await;
    assert_eq!(
        failure(&finished),
        Some(Failure::Budget),
        "10 tokens are not enough for one answer"
    );
    assert!(fake.requests().len() > asked);
    let mut per_incident = request();
    per_incident.limits.max_tokens_per_incident = 5;
    let roomy = settings(&fake.base_url());
    let finished = self::investigator(&fake, &roomy)
        .investigate(&per_incident, &FixedTools, 0)
        .await;
    assert_eq!(failure(&finished), Some(Failure::Budget));
    cancel.cancel();
}

#[tokio::test]
async fn keys_never_reach_the_transcript() {
    let (fake, cancel) = fake(Play::Good).await;
    let fake = fake.require_api_key("sk-live-secret-0123456789");
    let settings = settings(&fake.base_url());
    let http = vigil_connectors::http::client(settings.request_timeout).expect("a client");
    let key = vigil_connectors::secret::Secret::new("sk-live-secret-0123456789".to_owned());
    let investigator = Investigator::new(
        &settings,
        ChatClient::new(&fake.base_url(), Some(&key), http),
    );
    let mut asked = request();
    asked.task = format!("{TASK}\nA key in the text: sk-live-secret-0123456789");
    let finished = investigator.investigate(&asked, &FixedTools, 0).await;
    assert_eq!(failure(&finished), None, "{:?}", finished.outcome);
    let transcript = finished.transcript.to_string();
    assert!(!transcript.contains("sk-live-secret"), "{transcript}");
    cancel.cancel();
}

#[tokio::test]
async fn a_script_of_replies_is_followed_in_order() {
    // A model that answers only after a 500: the client's own retry gets the answer.
    let (fake, cancel) = fake(Play::Good).await;
    fake.set_script(Script {
        replies: vec![Reply::status(500, "boom")],
        then: Some(Reply::content(
            r#"{"hypotheses":[],"narrative":"Nothing checks out."}"#,
        )),
    });
    let investigator = investigator(&fake, &settings(&fake.base_url()));
    let finished = investigator.investigate(&request(), &FixedTools, 0).await;
    assert!(
        matches!(&finished.outcome, InvestigationOutcome::Answered { .. })
            || failure(&finished) == Some(Failure::Status),
        "{:?}",
        finished.outcome
    );
    cancel.cancel();
}
