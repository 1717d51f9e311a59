//! Scenario tests of the engine: scrapes in, commands out, rendered as one line each.

use expect_test::{Expect, expect};

use super::*;
use crate::authz::{ActionName, AuthzDecision, Effect, EntityType, Mode};
use crate::detector::spike::{SpikeConfig, SpikeThresholds};
use crate::diagnosis::DiagnosisConfig;
use crate::intake::{Pushed, push_source};
use crate::runbook::RunbookSpec;
use crate::signal::Sample;
use crate::store::Selector;

pub(super) const METRIC: &str = "litellm_total_tokens_metric_total";

pub(super) fn runbook(mode: Mode) -> crate::runbook::Runbook {
    let spec: RunbookSpec = serde_json::from_value(serde_json::json!({
        "id": "block-runaway-key",
        "trigger": { "hypothesis": "runaway_key", "min_confidence": 0.7 },
        "mode": mode,
        "steps": [{
            "id": "block-key",
            "action": "litellm.block_key",
            "params": { "key": "{{ incident.key }}" },
            "compensation": { "action": "litellm.unblock_key", "params": { "key": "{{ incident.key }}" } }
        }],
        "verification": { "check": "key_rate_below", "threshold_per_sec": 100.0, "hold_samples": 2, "within_secs": 10 },
        "guardrails": { "cooldown_per_target_secs": 600 }
    }))
    .unwrap();
    spec.validate().unwrap()
}

pub(super) fn config(mode: Mode) -> EngineConfig {
    EngineConfig {
        mode,
        environment: "production".to_owned(),
        sources: vec![SourceLimits {
            name: "gateway".to_owned(),
            max_series: 1000,
        }],
        detectors: vec![DetectorConfig::Spike(SpikeConfig {
            name: "token-spike".to_owned(),
            source: "gateway".to_owned(),
            metric: METRIC.to_owned(),
            read: crate::detector::spike::SeriesRead::CounterRate,
            unit: Default::default(),
            group_by: "hashed_api_key".to_owned(),
            alias_label: Some("api_key_alias".to_owned()),
            team_label: Some("team".to_owned()),
            ignore_values: vec!["None".to_owned(), String::new()],
            max_groups: 100,
            thresholds: SpikeThresholds {
                warmup_samples: 5,
                baseline_half_life_secs: 60.0,
                fire_z: 6.0,
                fire_ratio: 3.0,
                min_rate_per_sec: 50.0,
                fire_after_samples: 2,
                clear_ratio: 1.5,
                clear_after_samples: 3,
                noise_floor_ratio: 0.1,
                page_ratio: 10.0,
                season_secs: 0,
                run_evidence: false,
                season_memory: crate::detector::spike::SeasonMemory::Average,
            },
        })],
        diagnosis: DiagnosisConfig {
            runaway_min_share: 0.7,
            change_window_ms: crate::diagnosis::DEFAULT_CHANGE_WINDOW_MS,
            demand: None,
            excess: crate::diagnosis::ExcessRule::Net,
        },
        runbooks: vec![runbook(Mode::Autonomous)],
        api_keys: vec![ApiKeyInfo {
            hashed_key: None,
            alias: Some("payments".to_owned()),
            tier: "critical".to_owned(),
        }],
        store: StoreLimits::default(),
        flapping: FlapLimits::default(),
        resources: Vec::new(),
        limits: GlobalLimits::default(),
        trust: Vec::new(),
        people: None,
        topology: None,
        numbers: crate::human::NumberStyle::Readable,
        assistant: None,
    }
}

/// Drives an engine with one scrape per second of three keys' token counters.
pub(super) struct Scenario {
    pub(super) engine: Engine,
    pub(super) now: Timestamp,
    counters: [f64; 3],
    pub(super) log: Vec<String>,
    /// Every page the engine sent, in order.
    pub(super) pages: Vec<Page>,
    events: Vec<(Event, Timestamp)>,
}

const KEYS: [(&str, &str); 3] = [
    ("h-batch", "batch-job"),
    ("h-chat", "chat-app"),
    ("h-pay", "payments"),
];

impl Scenario {
    pub(super) fn new(config: EngineConfig) -> Self {
        Scenario {
            engine: Engine::new(config),
            now: Timestamp(1_800_000_000_000),
            counters: [0.0; 3],
            log: Vec::new(),
            pages: Vec::new(),
            events: Vec::new(),
        }
    }

    pub(super) fn feed(&mut self, event: Event) -> Vec<Command> {
        self.events.push((event.clone(), self.now));
        let commands = self.engine.handle(&event, self.now);
        for command in &commands {
            self.log.push(render(command));
            if let Command::Page { page, .. } = command {
                self.pages.push(page.clone());
            }
        }
        commands
    }

    /// One scrape a second later, each key having used `rates[i]` tokens per second.
    pub(super) fn scrape(&mut self, rates: [f64; 3]) -> Vec<Command> {
        self.now = self.now.plus_millis(1000);
        let mut samples = Vec::new();
        for ((counter, rate), (hash, alias)) in self.counters.iter_mut().zip(rates).zip(KEYS) {
            *counter += rate;
            samples.push(Sample {
                name: METRIC.to_owned(),
                labels: [
                    ("hashed_api_key", hash),
                    ("api_key_alias", alias),
                    ("team", "ml"),
                    ("model", "gpt-4o"),
                ]
                .into_iter()
                .collect(),
                value: *counter,
                timestamp_ms: None,
            });
        }
        self.feed(Event::Scraped {
            source: "gateway".to_owned(),
            scraped_at: self.now,
            samples,
        })
    }

    pub(super) fn scrapes(&mut self, n: usize, rates: [f64; 3]) -> Vec<Command> {
        (0..n).flat_map(|_| self.scrape(rates)).collect()
    }

    pub(super) fn decide(
        &mut self,
        commands: &[Command],
        effect: Effect,
        policies: &[&str],
    ) -> Vec<Command> {
        let Some(Command::Authorize {
            request_id,
            incident_id,
            ..
        }) = commands
            .iter()
            .find(|command| matches!(command, Command::Authorize { .. }))
        else {
            panic!("no authorize command in {commands:?}");
        };
        let decision = AuthzDecision {
            effect,
            determining_policies: policies.iter().map(|id| (*id).to_owned()).collect(),
            errors: vec![],
            policy_set_hash: "abc".to_owned(),
        };
        self.now = self.now.plus_millis(5);
        self.feed(Event::AuthorizationDecided {
            request_id: request_id.clone(),
            incident_id: incident_id.clone(),
            decision,
        })
    }

    pub(super) fn finish_action(&mut self, commands: &[Command], succeeded: bool) -> Vec<Command> {
        let Some(Command::Execute {
            action_id,
            incident_id,
            ..
        }) = commands
            .iter()
            .find(|command| matches!(command, Command::Execute { .. }))
        else {
            panic!("no execute command in {commands:?}");
        };
        self.now = self.now.plus_millis(20);
        self.feed(Event::ActionFinished {
            action_id: action_id.clone(),
            incident_id: incident_id.clone(),
            outcome: ActionOutcome {
                succeeded,
                http_status: Some(200),
                detail: if succeeded {
                    "key blocked".to_owned()
                } else {
                    "refused".to_owned()
                },
                prior: BTreeMap::new(),
            },
        })
    }

    pub(super) fn finish_page(&mut self, commands: &[Command]) -> Vec<Command> {
        let Some(Command::Page {
            page_id,
            incident_id,
            ..
        }) = commands
            .iter()
            .find(|command| matches!(command, Command::Page { .. }))
        else {
            panic!("no page command in {commands:?}");
        };
        self.feed(Event::PageFinished {
            page_id: page_id.clone(),
            incident_id: incident_id.clone(),
            delivered: true,
            detail: "202".to_owned(),
        })
    }

    pub(super) fn check(&self, expect: Expect) {
        expect.assert_eq(&(self.log.join("\n") + "\n"));
    }
}

pub(super) fn render(command: &Command) -> String {
    match command {
        Command::Record(record) => match record {
            Record::FindingRaised { finding } => format!(
                "finding raised: {} {:?} {}",
                finding.fingerprint,
                finding.severity,
                finding.subject.display_name()
            ),
            Record::SeriesRefused {
                source,
                n_refused,
                n_series,
                example,
            } => {
                format!(
                    "series refused: {source}: {n_refused} refused, {n_series} held, e.g. {example}"
                )
            }
            Record::FindingCleared { cleared } => {
                format!("finding cleared: {}", cleared.fingerprint)
            }
            Record::VersionChanged { change } => format!("version changed: {}", change.describe()),
            Record::TopologyGrew { .. }
            | Record::FindingJoined { .. }
            | Record::EffectMeasured { .. }
            | Record::PageResolved { .. }
            | Record::InvestigationChecked { .. }
            | Record::InvestigationFailed { .. }
            | Record::OwnerNotified { .. } => record.describe(),
            Record::HumanAction {
                by,
                command,
                accepted,
                outcome,
                ..
            } => format!(
                "human: {by}: {} -> {} ({outcome})",
                command.describe(),
                if *accepted { "accepted" } else { "refused" }
            ),
            Record::IncidentOpened { subject, .. } => {
                format!("incident opened: {}", subject.display_name())
            }
            Record::Diagnosed { diagnosis, .. } => {
                let best = diagnosis.best().unwrap();
                format!("diagnosed: {} {:.2}", best.kind.as_str(), best.confidence)
            }
            Record::RunbookSelected {
                runbook_id, mode, ..
            } => {
                format!("runbook: {runbook_id} {}", mode.as_str())
            }
            Record::StepDenied {
                step_id,
                determining_policies,
                ..
            } => {
                format!("denied: {step_id} by {determining_policies:?}")
            }
            Record::StepProposed {
                step_id, action, ..
            } => {
                format!("proposed: {step_id}: {}", action.describe())
            }
            Record::GuardrailHeld { guardrail, .. } => format!("guardrail held: {guardrail}"),
            Record::VerificationStarted { condition, .. } => format!("verifying: {condition}"),
            Record::VerificationPassed { observed, .. } => {
                format!(
                    "verified: {:?}",
                    observed.iter().map(|point| point.value).collect::<Vec<_>>()
                )
            }
            Record::VerificationFailed { reason, .. } => format!("verification failed: {reason}"),
            Record::CompensationStarted { step_ids, .. } => format!("compensating: {step_ids:?}"),
            Record::IncidentResolved {
                outcome,
                duration_ms,
                ..
            } => {
                format!("resolved after {duration_ms}ms: {outcome}")
            }
            Record::IncidentEscalated { reason, .. } => format!("escalated: {reason}"),
        },
        Command::Authorize { request, .. } => format!(
            "authorize: {} {} on {} (tier {:?}, attempt {}, confidence {}%, compensation {})",
            request.principal.uid.id,
            request.action.cedar_id(),
            request.resource.uid.id,
            request.resource.attrs.get("tier").unwrap(),
            request.context.attempt,
            request.context.confidence_pct,
            request.context.is_compensation,
        ),
        Command::AuthorizeHuman { request, .. } => format!(
            "authorize human: {} {} {} (groups and roles {:?})",
            request.principal.uid.id,
            request.action.cedar_id(),
            request.resource.uid.id,
            request
                .principal
                .parents
                .iter()
                .map(|parent| format!("{}:{}", parent.entity_type.cedar_name(), parent.id))
                .collect::<Vec<_>>(),
        ),
        Command::Execute { action, .. } => format!("execute: {}", action.describe()),
        Command::Page { page, .. } => format!("page: {} / {}", page.title, page.why.reason),
        Command::WakeAt { at } => format!("wake at +{}ms", at.0 - 1_800_000_000_000),
        Command::ResolvePage { title, .. } => format!("resolve page: {title}"),
        Command::Notify { notice, .. } => format!("notify {}: {}", notice.owner, notice.change),
        Command::Investigate {
            investigation_id, ..
        } => format!("investigate: {investigation_id}"),
        Command::UpdatePage { title, note, .. } => {
            format!("update page: {title}: {}", note.agreement)
        }
    }
}

pub(super) const NORMAL: [f64; 3] = [200.0, 300.0, 250.0];
pub(super) const RUNAWAY: [f64; 3] = [9000.0, 310.0, 240.0];
pub(super) const BLOCKED: [f64; 3] = [0.0, 300.0, 260.0];

#[test]
fn runaway_key_is_blocked_verified_and_resolved_without_a_page() {
    let mut scenario = Scenario::new(config(Mode::Autonomous));
    assert!(scenario.scrapes(10, NORMAL).is_empty());
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    scenario.finish_action(&commands, true);
    scenario.scrapes(3, BLOCKED);
    scenario.check(expect![[r#"
        finding raised: token-spike/hashed_api_key=h-batch Page batch-job
        incident opened: batch-job
        diagnosed: runaway_key 1.00
        runbook: block-runaway-key autonomous
        authorize: block-runaway-key block on h-batch (tier String("standard"), attempt 1, confidence 100%, compensation false)
        execute: block key h-batch on gateway
        verifying: the token rate of key batch-job stays under 100 tokens/s for 2 consecutive scrapes within 10 s
        wake at +22025ms
        verified: [0.0, 0.0]
        resolved after 2025ms: fixed: the key's rate fell to 0 tokens/s and stayed there
        finding cleared: token-spike/hashed_api_key=h-batch
    "#]]);
}

/// A key runs away, is blocked, and the gateway ignores the block: the key keeps running
/// away past the deadline, the block is undone and a human paged.
fn a_fix_that_does_not_work(config: EngineConfig) -> Scenario {
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    scenario.finish_action(&commands, true);
    let mut commands = scenario.scrapes(10, RUNAWAY);
    commands.extend(scenario.feed(Event::Tick));
    let commands = scenario.decide(&commands, Effect::Allow, &["compensate-own-block"]);
    let commands = scenario.finish_action(&commands, true);
    scenario.finish_page(&commands);
    scenario
}

#[test]
fn a_fix_that_does_not_work_is_compensated_and_pages_exactly_once() {
    let mut scenario = a_fix_that_does_not_work(config(Mode::Autonomous));
    // Later scrapes raise nothing new: the finding is still the same problem.
    scenario.scrapes(5, RUNAWAY);
    let n_pages = scenario
        .log
        .iter()
        .filter(|line| line.starts_with("page:"))
        .count();
    assert_eq!(n_pages, 1);
    scenario.check(expect![[r#"
        finding raised: token-spike/hashed_api_key=h-batch Page batch-job
        incident opened: batch-job
        diagnosed: runaway_key 1.00
        runbook: block-runaway-key autonomous
        authorize: block-runaway-key block on h-batch (tier String("standard"), attempt 1, confidence 100%, compensation false)
        execute: block key h-batch on gateway
        verifying: the token rate of key batch-job stays under 100 tokens/s for 2 consecutive scrapes within 10 s
        wake at +22025ms
        verification failed: the fix did not work: key batch-job still uses 9,000 tokens/s (must be under 100 tokens/s)
        compensating: ["block-key"]
        authorize: block-runaway-key unblock on h-batch (tier String("standard"), attempt 1, confidence 100%, compensation true)
        execute: unblock key h-batch on gateway
        page: vigil needs a human: token spike on key batch-job (gateway) / the fix did not work: key batch-job still uses 9,000 tokens/s (must be under 100 tokens/s)
        escalated: the fix did not work: key batch-job still uses 9,000 tokens/s (must be under 100 tokens/s)
    "#]]);
}

#[test]
fn a_spike_of_requests_is_verified_paged_and_narrated_in_requests() {
    // The same counters read as a key's requests: every word follows the detector's unit.
    let mut config = config(Mode::Autonomous);
    if let Some(DetectorConfig::Spike(spike)) = config.detectors.first_mut() {
        spike.unit = crate::detector::spike::RateUnit::Requests;
    }
    let scenario = a_fix_that_does_not_work(config);
    let why = &scenario.pages[0].why.summary;
    assert!(
        why.starts_with("Request traffic on key batch-job jumped to 9,000 requests/s"),
        "{why}"
    );
    scenario.check(expect![[r#"
        finding raised: token-spike/hashed_api_key=h-batch Page batch-job
        incident opened: batch-job
        diagnosed: runaway_key 1.00
        runbook: block-runaway-key autonomous
        authorize: block-runaway-key block on h-batch (tier String("standard"), attempt 1, confidence 100%, compensation false)
        execute: block key h-batch on gateway
        verifying: the request rate of key batch-job stays under 100 requests/s for 2 consecutive scrapes within 10 s
        wake at +22025ms
        verification failed: the fix did not work: key batch-job still uses 9,000 requests/s (must be under 100 requests/s)
        compensating: ["block-key"]
        authorize: block-runaway-key unblock on h-batch (tier String("standard"), attempt 1, confidence 100%, compensation true)
        execute: unblock key h-batch on gateway
        page: vigil needs a human: request spike on key batch-job (gateway) / the fix did not work: key batch-job still uses 9,000 requests/s (must be under 100 requests/s)
        escalated: the fix did not work: key batch-job still uses 9,000 requests/s (must be under 100 requests/s)
    "#]]);
}

#[test]
fn a_denied_fix_pages_with_the_policy_that_denied_it() {
    let mut scenario = Scenario::new(config(Mode::Autonomous));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, [200.0, 300.0, 9000.0]);
    // The payments key is critical in the inventory: the request says so.
    assert!(
        scenario
            .log
            .iter()
            .any(|line| line.contains("tier String(\"critical\")"))
    );
    let commands = scenario.decide(&commands, Effect::Deny, &["never-block-critical-keys"]);
    assert!(
        commands
            .iter()
            .all(|command| !matches!(command, Command::Execute { .. }))
    );
    scenario.finish_page(&commands);
    scenario.check(expect![[r#"
        finding raised: token-spike/hashed_api_key=h-pay Page payments
        incident opened: payments
        diagnosed: runaway_key 1.00
        runbook: block-runaway-key autonomous
        authorize: block-runaway-key block on h-pay (tier String("critical"), attempt 1, confidence 100%, compensation false)
        denied: block-key by ["never-block-critical-keys"]
        page: vigil needs a human: token spike on key payments (gateway) / policy refused the fix `block-key`: denied by never-block-critical-keys; vigil has no safe fix
        escalated: policy refused the fix `block-key`: denied by never-block-critical-keys; vigil has no safe fix
    "#]]);
}

#[test]
fn advisory_mode_proposes_and_never_executes() {
    // The runbook says autonomous; the global advisory mode makes it stricter.
    let mut scenario = Scenario::new(config(Mode::Advisory));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    scenario.scrapes(4, NORMAL);
    assert!(
        !scenario
            .log
            .iter()
            .any(|line| line.starts_with("execute") || line.starts_with("page"))
    );
    scenario.check(expect![[r#"
        finding raised: token-spike/hashed_api_key=h-batch Page batch-job
        incident opened: batch-job
        diagnosed: runaway_key 1.00
        runbook: block-runaway-key advisory
        authorize: block-runaway-key block on h-batch (tier String("standard"), attempt 1, confidence 100%, compensation false)
        proposed: block-key: block key h-batch on gateway
        finding cleared: token-spike/hashed_api_key=h-batch
        resolved after 3005ms: the finding cleared before vigil changed anything
    "#]]);
}

#[test]
fn a_broad_surge_has_no_runbook_and_pages() {
    let mut scenario = Scenario::new(config(Mode::Autonomous));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, [4000.0, 5000.0, 4500.0]);
    assert!(
        commands
            .iter()
            .any(|command| matches!(command, Command::Page { .. }))
    );
    // Three findings, but each key's incident pages once and no runbook ran.
    assert!(
        !scenario
            .log
            .iter()
            .any(|line| line.starts_with("authorize"))
    );
    assert_eq!(
        scenario
            .log
            .iter()
            .filter(|line| line.starts_with("page:"))
            .count(),
        3
    );
    assert!(
        scenario
            .log
            .iter()
            .any(|line| line.contains("no runbook answers `broad_surge`"))
    );
}

#[test]
fn a_second_runaway_within_the_cooldown_is_held_and_paged() {
    let mut scenario = Scenario::new(config(Mode::Autonomous));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    scenario.finish_action(&commands, true);
    scenario.scrapes(6, BLOCKED);
    scenario.log.clear();
    // Unblocked by someone, it runs away again a minute later: inside the 600 s cooldown.
    scenario.scrapes(60, NORMAL);
    scenario.scrapes(2, RUNAWAY);
    scenario.check(expect![[r#"
        finding raised: token-spike/hashed_api_key=h-batch Page batch-job
        incident opened: batch-job
        diagnosed: runaway_key 1.00
        runbook: block-runaway-key autonomous
        guardrail held: cooldown_per_target
        page: vigil needs a human: token spike on key batch-job (gateway) / the cooldown guardrail held: vigil changed this target 1 min 8 s ago; the cooldown is 10 min
    "#]]);
}

#[test]
fn answers_that_do_not_match_the_pending_step_are_ignored() {
    let mut scenario = Scenario::new(config(Mode::Autonomous));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let Some(Command::Authorize { incident_id, .. }) = commands
        .iter()
        .find(|command| matches!(command, Command::Authorize { .. }))
    else {
        panic!("no authorize");
    };
    let stale = Event::AuthorizationDecided {
        request_id: "someone-else".to_owned(),
        incident_id: incident_id.clone(),
        decision: AuthzDecision {
            effect: Effect::Allow,
            determining_policies: vec![],
            errors: vec![],
            policy_set_hash: String::new(),
        },
    };
    assert!(scenario.feed(stale).is_empty());
    let unknown = Event::ActionFinished {
        action_id: "x".to_owned(),
        incident_id: "inc-unknown".to_owned(),
        outcome: ActionOutcome {
            succeeded: true,
            http_status: None,
            detail: String::new(),
            prior: BTreeMap::new(),
        },
    };
    assert!(scenario.feed(unknown).is_empty());
}

#[test]
fn replaying_recorded_events_through_json_reproduces_every_command() {
    let mut scenario = Scenario::new(config(Mode::Autonomous));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    scenario.finish_action(&commands, true);
    scenario.scrapes(12, RUNAWAY);
    let recorded_config = serde_json::to_string(scenario.engine.config()).unwrap();

    let mut replayed = Engine::new(serde_json::from_str(&recorded_config).unwrap());
    let mut replay_log = Vec::new();
    for (event, now) in &scenario.events {
        let event: Event = serde_json::from_str(&serde_json::to_string(event).unwrap()).unwrap();
        for command in replayed.handle(&event, *now) {
            replay_log.push(serde_json::to_string(&command).unwrap());
        }
    }
    let mut original = Engine::new(config(Mode::Autonomous));
    let mut original_log = Vec::new();
    for (event, now) in &scenario.events {
        for command in original.handle(event, *now) {
            original_log.push(serde_json::to_string(&command).unwrap());
        }
    }
    assert!(original_log.len() > 10);
    assert_eq!(replay_log, original_log);
}

#[test]
fn a_source_past_its_series_limit_is_recorded_once_per_episode() {
    let mut limited = config(Mode::Autonomous);
    limited.sources[0].max_series = 2;
    let mut scenario = Scenario::new(limited);
    scenario.scrapes(3, NORMAL);
    assert_eq!(
        scenario.log,
        vec![
            "series refused: gateway: 1 refused, 2 held, e.g. \
             litellm_total_tokens_metric_total{api_key_alias=\"payments\",hashed_api_key=\"h-pay\",model=\"gpt-4o\",team=\"ml\"} from `gateway`"
        ]
    );
    assert_eq!(scenario.engine.stats().n_series_refused, 3);
    assert_eq!(scenario.engine.stats().n_series, 2);
}

/// A marker of new `prompt_version`s per `prompt` in pushed eval results.
fn prompt_versions() -> DetectorConfig {
    DetectorConfig::VersionChange(crate::detector::change::VersionChangeConfig {
        name: "prompt-versions".to_owned(),
        source: push_source("evals"),
        selector: Selector::parse("vigil_eval_cases_total").unwrap(),
        version_label: "prompt_version".to_owned(),
        group_by: Some("prompt".to_owned()),
        max_versions: 16,
        max_groups: 100,
    })
}

/// A pushed run of a 20-case suite of prompt `answer` at `version`: the first `n_failed`
/// cases fail; with `tokens`, case `i` reports `tokens + i` prompt tokens.
fn eval_batch(n_failed: u64, version: &str, tokens: Option<u64>) -> Event {
    let results: Vec<serde_json::Value> = (0..20_u64)
        .map(|idx| {
            let mut result = serde_json::json!({
                "suite": "rag", "case": format!("case-{idx}"), "passed": idx >= n_failed,
                "model": "gpt-4o", "prompt_name": "answer", "prompt_version": version
            });
            if let Some(tokens) = tokens {
                result["input_tokens"] = serde_json::json!(tokens + idx);
            }
            result
        })
        .collect();
    let body = serde_json::json!({ "results": results }).to_string();
    Event::Pushed {
        payload: Pushed::Evals(crate::intake::parse_evals(body.as_bytes()).unwrap()),
    }
}

#[test]
fn pushed_signals_become_counters_that_detectors_read() {
    let mut pushed = config(Mode::Autonomous);
    let DetectorConfig::Spike(spike) = &mut pushed.detectors[0] else {
        panic!("the scenario config has a spike detector first");
    };
    spike.name = "eval-failures".to_owned();
    spike.source = push_source("evals");
    spike.metric = "vigil_eval_cases_total".to_owned();
    spike.group_by = "outcome".to_owned();
    spike.alias_label = None;
    spike.team_label = None;
    spike.thresholds.min_rate_per_sec = 5.0;
    let mut scenario = Scenario::new(pushed);
    for _ in 0..10 {
        scenario.now = scenario.now.plus_millis(1000);
        assert!(scenario.feed(eval_batch(1, "7", None)).is_empty());
    }
    // Failures jump from 1 to 15 a second: the running total's rate fires the detector.
    for _ in 0..2 {
        scenario.now = scenario.now.plus_millis(1000);
        scenario.feed(eval_batch(15, "7", None));
    }
    assert_eq!(
        scenario.log.first().map(String::as_str),
        Some("finding raised: eval-failures/outcome=failed Ticket failed")
    );
    assert!(scenario.engine.stats().n_series >= 2);
}

#[test]
fn a_provider_error_budget_burn_is_diagnosed_and_paged_because_no_runbook_fixes_it() {
    use crate::detector::Severity;
    use crate::detector::burn_rate::{BurnRateConfig, BurnRule};
    let mut config = config(Mode::Autonomous);
    config.detectors = vec![DetectorConfig::BurnRate(BurnRateConfig {
        name: "provider-errors".to_owned(),
        source: "gateway".to_owned(),
        bad: Selector::parse(r#"requests_total{status=~"429|5.."}"#).unwrap(),
        total: Selector::parse("requests_total").unwrap(),
        group_by: Some("provider".to_owned()),
        objective: 0.99,
        period_secs: 30 * 86_400,
        rules: BurnRule::workbook(30 * 86_400),
        bucket_ms: 30_000,
        max_groups: 10,
    })];
    let mut scenario = Scenario::new(config);
    let (mut ok, mut limited) = (0.0, 0.0);
    let mut scrape = |scenario: &mut Scenario, error_ratio: f64| {
        scenario.now = scenario.now.plus_millis(15_000);
        ok += 150.0 * (1.0 - error_ratio);
        limited += 150.0 * error_ratio;
        let sample = |status: &str, value: f64| Sample {
            name: "requests_total".to_owned(),
            labels: [("provider", "openai"), ("status", status)]
                .into_iter()
                .collect(),
            value,
            timestamp_ms: None,
        };
        scenario.feed(Event::Scraped {
            source: "gateway".to_owned(),
            scraped_at: scenario.now,
            samples: vec![sample("200", ok), sample("429", limited)],
        })
    };
    for _ in 0..480 {
        assert!(scrape(&mut scenario, 0.001).is_empty(), "two healthy hours");
    }
    // The provider starts answering 429 to half the requests, for twenty minutes. With two
    // hours of history the slow-burn rule's windows are short, so it tickets first; the
    // 1 h page rule needs about 17 minutes of this to reach 14.4x.
    let mut commands = Vec::new();
    for _ in 0..80 {
        commands.extend(scrape(&mut scenario, 0.5));
    }
    let pages: Vec<&Page> = commands
        .iter()
        .filter_map(|command| match command {
            Command::Page { page, .. } => Some(page),
            _ => None,
        })
        .collect();
    let severities: Vec<Severity> = pages.iter().map(|page| page.severity).collect();
    assert_eq!(
        severities,
        [Severity::Ticket, Severity::Page],
        "{:#?}",
        scenario.log
    );
    let page = pages[1];
    assert_eq!(
        page.title,
        "vigil needs a human: error budget burning for openai (gateway)"
    );
    assert!(
        page.why.summary.starts_with("provider openai is failing")
            && page.why.summary.contains("than its 99 % objective allows"),
        "{}",
        page.why.summary
    );
    let rules: Vec<&str> = page
        .why
        .evidence
        .iter()
        .map(|line| line.split(':').next().unwrap())
        .collect();
    assert_eq!(
        rules,
        ["page rule", "page rule", "ticket rule"],
        "{:?}",
        page.why.evidence
    );
    assert!(
        scenario
            .log
            .iter()
            .any(|line| line.contains("no runbook answers `error_budget_burn`")),
        "{:#?}",
        scenario.log
    );
    assert!(
        !scenario
            .log
            .iter()
            .any(|line| line.starts_with("authorize"))
    );
}

#[test]
fn an_agent_past_its_iteration_cap_is_a_threshold_breach_with_a_ticket() {
    use crate::detector::Severity;
    use crate::detector::threshold::{Bound, Reading, ThresholdConfig};
    let mut config = config(Mode::Autonomous);
    config.detectors = vec![DetectorConfig::Threshold(ThresholdConfig {
        name: "agent-depth".to_owned(),
        source: "gateway".to_owned(),
        reading: Reading::Value {
            selector: Selector::parse("agent_iterations").unwrap(),
        },
        describe: "iterations per run".to_owned(),
        group_by: Some("agent".to_owned()),
        bound: Bound::Above,
        fire: 25.0,
        clear: 10.0,
        fire_after_samples: 2,
        clear_after_samples: 2,
        severity: Severity::Ticket,
        max_groups: 10,
    })];
    let mut scenario = Scenario::new(config);
    let mut commands = Vec::new();
    for depth in [4.0, 6.0, 40.0, 41.0, 42.0] {
        scenario.now = scenario.now.plus_millis(15_000);
        let now = scenario.now;
        commands.extend(scenario.feed(Event::Scraped {
            source: "gateway".to_owned(),
            scraped_at: now,
            samples: vec![Sample {
                name: "agent_iterations".to_owned(),
                labels: [("agent", "researcher")].into_iter().collect(),
                value: depth,
                timestamp_ms: None,
            }],
        }));
    }
    let pages: Vec<&Page> = commands
        .iter()
        .filter_map(|command| match command {
            Command::Page { page, .. } => Some(page),
            _ => None,
        })
        .collect();
    let [page] = pages.as_slice() else {
        panic!("{:#?}", scenario.log);
    };
    assert_eq!(page.severity, Severity::Ticket);
    assert_eq!(
        page.title,
        "vigil needs a human: iterations per run of researcher past its limit (gateway)"
    );
    assert_eq!(
        page.why.evidence[0],
        "iterations per run of agent researcher is 41, above the limit of 25 for 2 observations in a row"
    );
    assert!(
        page.why
            .reason
            .contains("no runbook answers `threshold_breach`")
    );
}

#[test]
fn an_agent_looping_on_the_same_tool_call_is_caught_from_pushed_runs() {
    use crate::detector::Severity;
    use crate::detector::threshold::{Bound, Reading, ThresholdConfig};
    let mut config = config(Mode::Autonomous);
    config.detectors = vec![DetectorConfig::Threshold(ThresholdConfig {
        name: "agent-loop".to_owned(),
        source: push_source("agent_runs"),
        reading: Reading::Value {
            selector: Selector::parse("vigil_agent_max_repeat_streak").unwrap(),
        },
        describe: "identical tool calls in a row".to_owned(),
        group_by: Some("agent".to_owned()),
        bound: Bound::Above,
        fire: 5.0,
        clear: 2.0,
        fire_after_samples: 1,
        clear_after_samples: 2,
        severity: Severity::Page,
        max_groups: 10,
    })];
    let mut scenario = Scenario::new(config);
    // A run whose agent calls `search` with the same arguments `streak` times in a row.
    let push = |scenario: &mut Scenario, run: usize, streak: usize| {
        let calls: Vec<serde_json::Value> = (0..streak)
            .map(|_| serde_json::json!({ "name": "search", "arguments": { "q": "refund" } }))
            .chain(std::iter::once(serde_json::json!({ "name": "answer" })))
            .collect();
        let body = serde_json::json!({ "runs": [{
            "run_id": format!("run-{run}"), "agent": "triage-bot", "iterations": streak + 1,
            "outcome": if streak > 5 { "iteration_limit" } else { "success" },
            "tool_calls": calls
        }]})
        .to_string();
        scenario.now = scenario.now.plus_millis(5000);
        scenario.feed(Event::Pushed {
            payload: Pushed::AgentRuns(crate::intake::parse_agent_runs(body.as_bytes()).unwrap()),
        })
    };
    for run in 0..5 {
        assert!(push(&mut scenario, run, 1).is_empty());
    }
    let commands = push(&mut scenario, 5, 40);
    assert!(
        scenario
            .log
            .iter()
            .any(|line| line == "finding raised: agent-loop/agent=triage-bot Page triage-bot"),
        "{:#?}",
        scenario.log
    );
    let page = commands.iter().find_map(|command| match command {
        Command::Page { page, .. } => Some(page),
        _ => None,
    });
    assert_eq!(
        page.map(|page| page.why.evidence[0].as_str()),
        Some(
            "identical tool calls in a row of agent triage-bot is 40, above the limit of 5 for 1 observations in a row"
        )
    );
}

#[test]
fn a_finding_that_keeps_firing_and_clearing_is_flapping_and_its_runbook_holds() {
    let mut scenario = Scenario::new(config(Mode::Advisory));
    scenario.scrapes(10, NORMAL);
    for _ in 0..3 {
        let commands = scenario.scrapes(2, RUNAWAY);
        // The first two incidents are proposed as usual; the third never reaches Cedar.
        if commands
            .iter()
            .any(|command| matches!(command, Command::Authorize { .. }))
        {
            scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
        }
        scenario.scrapes(4, NORMAL);
    }
    let proposals = scenario
        .log
        .iter()
        .filter(|line| line.starts_with("proposed:"))
        .count();
    assert_eq!(proposals, 2, "{:#?}", scenario.log);
    let held = scenario
        .log
        .iter()
        .position(|line| line.contains("flapping"))
        .unwrap_or_else(|| panic!("{:#?}", scenario.log));
    assert!(
        scenario.log[held..]
            .iter()
            .any(|line| line.starts_with("page:")
                && line.contains("the finding is flapping (the finding fired 3 times within 1 h)")),
        "{:#?}",
        scenario.log
    );
}

#[test]
fn an_eval_regression_right_after_a_prompt_change_blames_the_change_and_names_the_version_to_restore()
 {
    use crate::detector::proportion::ProportionDropConfig;
    let mut config = config(Mode::Autonomous);
    // The marker comes after the detector it explains: the engine runs markers first anyway.
    config.detectors = vec![
        DetectorConfig::ProportionDrop(ProportionDropConfig {
            name: "eval-pass-rate".to_owned(),
            source: push_source("evals"),
            good: Selector::parse("vigil_eval_cases_total{outcome=\"passed\"}").unwrap(),
            total: Selector::parse("vigil_eval_cases_total").unwrap(),
            total_is_bad: false,
            describe: "eval pass rate".to_owned(),
            group_by: Some("prompt".to_owned()),
            window_secs: 3600,
            baseline_half_life_secs: 7 * 86_400,
            min_cases: 10,
            min_baseline_cases: 60,
            min_drop: 0.1,
            alert_probability: 1e-3,
            clear_drop: 0.05,
            severity: crate::detector::Severity::Page,
            max_groups: 100,
            drift: None,
        }),
        prompt_versions(),
    ];
    let mut scenario = Scenario::new(config);
    // Half a day of the suite every 30 minutes on version 7: 19 of 20 pass.
    for _ in 0..24 {
        scenario.now = scenario.now.plus_millis(30 * 60_000);
        assert!(scenario.feed(eval_batch(1, "7", None)).is_empty());
    }
    // Version 8 ships; the next run passes 11 of 20.
    scenario.now = scenario.now.plus_millis(30 * 60_000);
    let commands = scenario.feed(eval_batch(9, "8", None));
    assert_eq!(
        scenario.log[..5],
        [
            "version changed: prompt_version of prompt answer changed from 7 to 8",
            "finding raised: eval-pass-rate/prompt=answer Page answer",
            "incident opened: answer",
            "diagnosed: recent_change 0.80",
            "page: vigil needs a human: eval pass rate of answer dropped (push:evals) / no runbook answers `recent_change` at 80% confidence, so vigil has no safe fix",
        ]
    );
    let diagnosis = commands
        .iter()
        .find_map(|command| match command {
            Command::Record(Record::Diagnosed { diagnosis, .. }) => Some(diagnosis),
            _ => None,
        })
        .unwrap();
    let change = diagnosis.hypotheses[0].change.as_ref().unwrap();
    assert_eq!((change.from.as_str(), change.to.as_str()), ("7", "8"));
    assert_eq!(
        diagnosis.hypotheses[1].kind,
        crate::diagnosis::HypothesisKind::ProportionDrop
    );
    assert!(
        diagnosis.why.starts_with(
            "0 s before this, prompt_version of prompt answer changed from 7 to 8; the change is the first suspect."
        ),
        "{}",
        diagnosis.why
    );
}

/// A config whose one detector fires when a deployment's state gauge reaches 2 and clears
/// under 1, after one reading each.
fn deployment_down_config() -> EngineConfig {
    use crate::detector::Severity;
    use crate::detector::threshold::{Bound, Reading, ThresholdConfig};
    let mut config = config(Mode::Autonomous);
    config.detectors = vec![DetectorConfig::Threshold(ThresholdConfig {
        name: "deployment-down".to_owned(),
        source: "gateway".to_owned(),
        reading: Reading::Value {
            selector: Selector::parse("deployment_state").unwrap(),
        },
        describe: "deployment state".to_owned(),
        group_by: Some("model_id".to_owned()),
        bound: Bound::Above,
        fire: 2.0,
        clear: 1.0,
        fire_after_samples: 1,
        clear_after_samples: 1,
        severity: Severity::Page,
        max_groups: 10,
    })];
    config
}

/// Feeds one scrape of a `deployment_state` gauge 15 s after the last; returns the commands,
/// with any page answered as delivered.
fn deployment_state(scenario: &mut Scenario, value: f64) -> Vec<Command> {
    scenario.now = scenario.now.plus_millis(15_000);
    let now = scenario.now;
    let mut commands = scenario.feed(Event::Scraped {
        source: "gateway".to_owned(),
        scraped_at: now,
        samples: vec![Sample {
            name: "deployment_state".to_owned(),
            labels: [("model_id", "gpt-4o-eu")].into_iter().collect(),
            value,
            timestamp_ms: None,
        }],
    });
    if commands
        .iter()
        .any(|command| matches!(command, Command::Page { .. }))
    {
        let answered = scenario.finish_page(&commands);
        commands.extend(answered);
    }
    commands
}

#[test]
fn a_threshold_finding_that_keeps_firing_and_clearing_pages_as_flapping_on_its_third_fire() {
    let mut scenario = Scenario::new(deployment_down_config());
    for state in [0.0, 2.0, 0.0, 2.0, 0.0, 2.0, 0.0] {
        deployment_state(&mut scenario, state);
    }
    let pages: Vec<&String> = scenario
        .log
        .iter()
        .filter(|line| line.starts_with("page:"))
        .collect();
    assert_eq!(pages.len(), 3, "{:#?}", scenario.log);
    // The first two have no runbook; the third is held as flapping.
    assert!(pages[0].contains("no runbook answers `threshold_breach`"));
    assert!(pages[1].contains("no runbook answers `threshold_breach`"));
    assert!(
        pages[2].contains("the finding is flapping (the finding fired 3 times within 1 h)"),
        "{}",
        pages[2]
    );
    // A state that stays bad raises nothing more: one finding per fire, de-duplicated.
    let raised = scenario
        .log
        .iter()
        .filter(|line| line.starts_with("finding raised"))
        .count();
    assert_eq!(raised, 3);
}

#[test]
fn a_vanished_threshold_series_neither_clears_nor_refires() {
    let mut scenario = Scenario::new(deployment_down_config());
    deployment_state(&mut scenario, 2.0);
    // The gateway stops answering: its series go stale.
    for _ in 0..5 {
        scenario.now = scenario.now.plus_millis(15_000);
        scenario.feed(Event::ScrapeFailed {
            source: "gateway".to_owned(),
            error: "connection refused".to_owned(),
        });
    }
    // Back, still down: the open finding holds, nothing clears or fires again.
    deployment_state(&mut scenario, 2.0);
    let lines: Vec<&String> = scenario
        .log
        .iter()
        .filter(|line| line.starts_with("finding"))
        .collect();
    assert_eq!(
        lines,
        ["finding raised: deployment-down/model_id=gpt-4o-eu Page gpt-4o-eu"],
        "{:#?}",
        scenario.log
    );
}

#[test]
fn a_prompt_version_that_bloats_its_prompts_is_caught_on_its_first_push_and_blamed() {
    use crate::detector::Severity;
    use crate::detector::threshold::{Bound, Reading, ThresholdConfig};
    let mut config = config(Mode::Autonomous);
    config.detectors = vec![
        prompt_versions(),
        DetectorConfig::Threshold(ThresholdConfig {
            name: "prompt-size".to_owned(),
            source: push_source("evals"),
            reading: Reading::Mean {
                sum: Selector::parse("vigil_eval_input_tokens_sum").unwrap(),
                count: Selector::parse("vigil_eval_input_tokens_count").unwrap(),
            },
            describe: "mean prompt tokens per eval case".to_owned(),
            group_by: Some("prompt".to_owned()),
            bound: Bound::Above,
            fire: 96_000.0,
            clear: 80_000.0,
            fire_after_samples: 1,
            clear_after_samples: 1,
            severity: Severity::Ticket,
            max_groups: 100,
        }),
    ];
    let mut scenario = Scenario::new(config);
    for _ in 0..3 {
        scenario.now = scenario.now.plus_millis(30 * 60_000);
        assert!(scenario.feed(eval_batch(0, "7", Some(2000))).is_empty());
    }
    // Version 8 stuffs the whole knowledge base into the prompt.
    scenario.now = scenario.now.plus_millis(30 * 60_000);
    let commands = scenario.feed(eval_batch(0, "8", Some(120_000)));
    assert_eq!(
        scenario.log[..4],
        [
            "version changed: prompt_version of prompt answer changed from 7 to 8",
            "finding raised: prompt-size/prompt=answer Ticket answer",
            "incident opened: answer",
            "diagnosed: recent_change 0.80",
        ]
    );
    let finding = commands
        .iter()
        .find_map(|command| match command {
            Command::Record(Record::FindingRaised { finding }) => Some(finding),
            _ => None,
        })
        .unwrap();
    let crate::detector::Evidence::Threshold(evidence) = &finding.evidence else {
        panic!("{finding:?}");
    };
    // The mean of the 20 cases just pushed: 120,000 to 120,019 tokens.
    assert_eq!(evidence.value, 120_009.5);
    // Back to version 7 (a rollback): the mean falls under the clear level and it clears.
    scenario.now = scenario.now.plus_millis(30 * 60_000);
    scenario.feed(eval_batch(0, "7", Some(2000)));
    assert!(
        scenario
            .log
            .contains(&"finding cleared: prompt-size/prompt=answer".to_owned()),
        "{:#?}",
        scenario.log
    );
}

// --- Humans in the loop, kill switches, silences, the storm brake, restores, trust ---

/// The id and hash of the proposal among `commands`.
pub(super) fn proposal(commands: &[Command]) -> (String, String) {
    commands
        .iter()
        .find_map(|command| match command {
            Command::Record(Record::StepProposed {
                proposal_id,
                action_hash,
                ..
            }) => Some((proposal_id.clone(), action_hash.clone())),
            _ => None,
        })
        .expect("a proposal")
}

pub(super) fn human(by: &str, reason: &str, command: HumanCommand) -> Event {
    Event::Human {
        by: by.to_owned(),
        reason: reason.to_owned(),
        command,
        principal: None,
    }
}

#[test]
fn an_approval_is_bound_to_the_exact_step_and_refused_from_its_requester() {
    let mut config = config(Mode::Advisory);
    config.runbooks[0].owner = "alice".to_owned();
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    let (proposal_id, hash) = proposal(&commands);
    assert_eq!(hash.len(), 64);
    let approve = |hash: &str| HumanCommand::Approve {
        proposal_id: proposal_id.clone(),
        action_hash: hash.to_owned(),
    };
    // The runbook's owner asked for it, so she may not approve it.
    assert!(scenario.feed(human("alice", "lgtm", approve(&hash))).len() == 1);
    // An approval of something else (another hash) does not carry this step out.
    assert!(
        scenario
            .feed(human("bob", "lgtm", approve(&"0".repeat(64))))
            .len()
            == 1
    );
    // Nobody: refused.
    assert!(scenario.feed(human(" ", "lgtm", approve(&hash))).len() == 1);
    let commands = scenario.feed(human("bob", "checked the key's traffic", approve(&hash)));
    assert!(matches!(commands.last(), Some(Command::Execute { .. })));
    // The same proposal cannot be approved twice.
    assert!(
        scenario
            .feed(human("carol", "me too", approve(&hash)))
            .len()
            == 1
    );
    scenario.finish_action(&commands, true);
    scenario.scrapes(3, BLOCKED);
    let log = scenario.log.join("\n");
    let log = log.replace(&proposal_id, "PROPOSAL").replace(&hash, "HASH");
    let tail: Vec<&str> = log.lines().skip(5).collect();
    expect![[r#"
        proposed: block-key: block key h-batch on gateway
        human: alice: approve PROPOSAL -> refused (alice requested this step and cannot also approve it; another person must)
        human: bob: approve PROPOSAL -> refused (the approval is for another version of the step (hash 000000000000 does not match 3b1bb8991947); show the proposal again and approve what it says now)
        human:  : approve PROPOSAL -> refused (the command names nobody; every human action must say who did it)
        human: bob: approve PROPOSAL -> accepted (approved; the step runs now)
        execute: block key h-batch on gateway
        human: carol: approve PROPOSAL -> refused (proposal `PROPOSAL` is not pending)
        verifying: the token rate of key batch-job stays under 100 tokens/s for 2 consecutive scrapes within 10 s
        wake at +22025ms
        verified: [0.0, 0.0]
        resolved after 2025ms: fixed: the key's rate fell to 0 tokens/s and stayed there
        finding cleared: token-spike/hashed_api_key=h-batch"#]]
    .assert_eq(&tail.join("\n"));
}

// The admin API lists proposals from here: a proposal is pending from its record until an
// approval is accepted, and a refused approval leaves it pending.
#[test]
fn pending_proposals_are_read_from_the_incidents_state() {
    let mut config = config(Mode::Advisory);
    config.runbooks[0].owner = "alice".to_owned();
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    assert!(scenario.engine.pending_proposals().is_empty());
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    let Some(Command::Record(Record::StepProposed {
        incident_id,
        step_id,
        action,
        proposal_id,
        action_hash,
        requested_by,
        why,
    })) = commands
        .iter()
        .find(|command| matches!(command, Command::Record(Record::StepProposed { .. })))
    else {
        panic!("{commands:?}")
    };
    let recorded = PendingProposal {
        proposal_id: proposal_id.clone(),
        incident_id: incident_id.clone(),
        step_id: step_id.clone(),
        action: action.clone(),
        action_hash: action_hash.clone(),
        requested_by: requested_by.clone(),
        why: why.clone(),
    };
    assert_eq!(
        scenario.engine.pending_proposals(),
        std::slice::from_ref(&recorded)
    );
    let approve = HumanCommand::Approve {
        proposal_id: proposal_id.clone(),
        action_hash: action_hash.clone(),
    };
    scenario.feed(human("alice", "mine", approve.clone()));
    assert_eq!(scenario.engine.pending_proposals(), [recorded]);
    scenario.feed(human("bob", "checked", approve));
    assert!(scenario.engine.pending_proposals().is_empty());
}

#[test]
fn a_rejected_proposal_goes_to_a_human_with_who_rejected_it() {
    let mut scenario = Scenario::new(config(Mode::Advisory));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    let (proposal_id, _) = proposal(&commands);
    let commands = scenario.feed(human(
        "bob",
        "this key is the quarterly batch",
        HumanCommand::Reject { proposal_id },
    ));
    let Some(Command::Page { page, .. }) = commands.last() else {
        panic!("{commands:?}")
    };
    assert_eq!(
        page.why.reason,
        "bob rejected vigil's proposal (this key is the quarterly batch)"
    );
    assert!(!scenario.log.iter().any(|line| line.starts_with("execute")));
}

#[test]
fn the_kill_switch_stops_new_actions_until_it_is_lifted() {
    let mut scenario = Scenario::new(config(Mode::Autonomous));
    let scope = KillScope::Target {
        entity_type: EntityType::ApiKey,
        id: "h-batch".to_owned(),
    };
    scenario.feed(human(
        "carol",
        "migration tonight",
        HumanCommand::Kill {
            scope: scope.clone(),
        },
    ));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::Authorize { .. }))
    );
    let page = commands
        .iter()
        .find_map(|command| match command {
            Command::Page { page, .. } => Some(page),
            _ => None,
        })
        .expect("a page");
    assert_eq!(
        page.why.reason,
        "vigil did not act: the kill switch for ApiKey h-batch is on (set by carol)"
    );
    scenario.finish_page(&commands);
    // Lifting it twice: the second is refused and says why.
    scenario.feed(human(
        "carol",
        "done",
        HumanCommand::Unkill {
            scope: scope.clone(),
        },
    ));
    scenario.feed(human("carol", "done", HumanCommand::Unkill { scope }));
    assert_eq!(
        scenario.log[scenario.log.len() - 1],
        "human: carol: kill switch off for ApiKey h-batch -> refused (no kill switch is on for ApiKey h-batch)"
    );
    // A global kill switch also stops a step between authorization and execution.
    let mut scenario = Scenario::new(config(Mode::Autonomous));
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    scenario.feed(human(
        "dan",
        "incident review",
        HumanCommand::Kill {
            scope: KillScope::Global,
        },
    ));
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::Execute { .. }))
    );
    assert!(
        scenario
            .log
            .iter()
            .any(|line| line == "guardrail held: kill_switch")
    );
}

#[test]
fn the_controls_in_force_say_who_set_them_why_and_until_when() {
    let mut scenario = Scenario::new(config(Mode::Autonomous));
    let set_at = scenario.now;
    scenario.feed(human(
        "carol",
        "migration tonight",
        HumanCommand::Kill {
            scope: KillScope::Global,
        },
    ));
    let ends = set_at.plus_millis(3_600_000);
    scenario.feed(human(
        "dan",
        "load test",
        HumanCommand::Silence {
            silence_id: "s1".to_owned(),
            detector: Some("token-spike".to_owned()),
            subject: None,
            expires_at: ends,
        },
    ));
    let controls = scenario.engine.controls(set_at);
    assert_eq!(
        controls.kill_switches,
        [KillSwitchView {
            scope: KillScope::Global,
            by: "carol".to_owned(),
            reason: "migration tonight".to_owned(),
            since: set_at,
        }]
    );
    assert_eq!(controls.silences.len(), 1);
    let silence = &controls.silences[0];
    assert_eq!(
        (
            silence.by.as_str(),
            silence.reason.as_str(),
            silence.expires_at
        ),
        ("dan", "load test", ends)
    );
    // An expired silence is not in force, even before the engine next drops it.
    assert!(scenario.engine.controls(ends).silences.is_empty());
    scenario.feed(human(
        "carol",
        "done",
        HumanCommand::Unkill {
            scope: KillScope::Global,
        },
    ));
    assert!(scenario.engine.controls(set_at).kill_switches.is_empty());
}

#[test]
fn a_silence_mutes_matching_findings_without_a_page_until_it_expires() {
    let mut scenario = Scenario::new(config(Mode::Autonomous));
    let silence = |expires_at| HumanCommand::Silence {
        silence_id: "s1".to_owned(),
        detector: Some("token-spike".to_owned()),
        subject: Some("h-batch".to_owned()),
        expires_at,
    };
    // A silence needs a reason and a future expiry.
    scenario.feed(human("erin", "", silence(scenario.now.plus_millis(60_000))));
    scenario.feed(human("erin", "load test", silence(scenario.now)));
    scenario.feed(human(
        "erin",
        "load test",
        silence(scenario.now.plus_millis(60_000)),
    ));
    scenario.scrapes(10, NORMAL);
    scenario.scrapes(2, RUNAWAY);
    scenario.scrapes(6, NORMAL);
    assert!(
        !scenario
            .log
            .iter()
            .any(|line| line.starts_with("page") || line.starts_with("authorize"))
    );
    let tail: Vec<&str> = scenario.log.iter().map(String::as_str).collect();
    expect![[r#"
        human: erin: silence s1 (detector token-spike, subject h-batch) until 1800000060000 -> refused (a silence needs a reason)
        human: erin: silence s1 (detector token-spike, subject h-batch) until 1800000000000 -> refused (the silence would already have expired)
        human: erin: silence s1 (detector token-spike, subject h-batch) until 1800000060000 -> accepted (matching findings are muted for 1 min)
        finding raised: token-spike/hashed_api_key=h-batch Page batch-job
        incident opened: batch-job
        diagnosed: runaway_key 1.00
        guardrail held: silence
        finding cleared: token-spike/hashed_api_key=h-batch
        resolved after 3000ms: the finding cleared before vigil changed anything"#]]
    .assert_eq(&tail.join("\n"));
    // After it expires, the same runaway is acted on.
    scenario.now = scenario.now.plus_millis(120_000);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    assert!(
        commands
            .iter()
            .any(|c| matches!(c, Command::Authorize { .. }))
    );
}

#[test]
fn the_storm_brake_stops_acting_and_pages_once() {
    let mut config = config(Mode::Autonomous);
    config.limits.storm_max_incidents = 0;
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    scenario.finish_page(&commands);
    scenario.scrapes(8, NORMAL);
    scenario.scrapes(2, RUNAWAY);
    let pages: Vec<&String> = scenario
        .log
        .iter()
        .filter(|l| l.starts_with("page"))
        .collect();
    assert_eq!(pages.len(), 1, "{:#?}", scenario.log);
    assert!(
        pages[0].contains("the storm brake tripped (1 incidents opened within 10 min (limit 0))")
    );
    assert_eq!(
        scenario
            .log
            .iter()
            .filter(|l| *l == "guardrail held: storm_brake")
            .count(),
        2
    );
    assert!(!scenario.log.iter().any(|l| l.starts_with("authorize")));
}

#[test]
fn runs_past_the_hourly_limit_become_proposals() {
    let mut config = config(Mode::Autonomous);
    config.runbooks[0].guardrails.max_runs_per_hour = 1;
    config.runbooks[0].guardrails.cooldown_per_target_ms = 0;
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    scenario.finish_action(&commands, true);
    scenario.scrapes(3, BLOCKED);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::Execute { .. }))
    );
    let Some(Command::Record(Record::StepProposed { why, .. })) = commands.first() else {
        panic!("{commands:?}")
    };
    assert_eq!(
        why,
        "runbook block-runaway-key started 1 runs in the last hour (limit 1)"
    );
    // The verified first run counts towards the runbook's trust: (1 + 1) / (1 + 2).
    assert_eq!(
        scenario
            .engine
            .trust_pct("block-runaway-key", ActionName::Block),
        67
    );
    assert_eq!(
        scenario
            .engine
            .trust_pct("block-runaway-key", ActionName::Throttle),
        50
    );
}

#[test]
fn a_throttle_that_did_not_help_is_undone_with_the_limits_it_replaced() {
    let mut config = config(Mode::Autonomous);
    let spec: RunbookSpec = serde_json::from_value(serde_json::json!({
        "id": "throttle-runaway-key",
        "trigger": { "hypothesis": "runaway_key" },
        "mode": "autonomous",
        "steps": [{
            "id": "lower-rpm",
            "action": "litellm.update_key",
            "params": { "key": "{{ incident.key }}", "rpm_limit": "10" },
            "compensation": { "action": "litellm.restore_key", "params": { "key": "{{ incident.key }}" } }
        }],
        "verification": { "check": "finding_clears", "within_secs": 10 }
    }))
    .unwrap();
    config.runbooks = vec![spec.validate().unwrap()];
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["throttle-single-key"]);
    let Some(Command::Execute {
        action_id,
        incident_id,
        ..
    }) = commands.last()
    else {
        panic!("{commands:?}")
    };
    scenario.now = scenario.now.plus_millis(20);
    scenario.feed(Event::ActionFinished {
        action_id: action_id.clone(),
        incident_id: incident_id.clone(),
        outcome: ActionOutcome {
            succeeded: true,
            http_status: Some(200),
            detail: "rpm_limit is 10".to_owned(),
            prior: BTreeMap::from([("rpm_limit".to_owned(), "1000".to_owned())]),
        },
    });
    // The key keeps running away: the finding does not clear by the deadline.
    let commands = scenario.scrapes(11, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["compensate-own-changes"]);
    let Some(Command::Execute { action, .. }) = commands.last() else {
        panic!("{commands:?}")
    };
    assert_eq!(
        action.describe(),
        "set rpm_limit=1000 on key h-batch on gateway"
    );
    scenario.finish_action(&commands, true);
    assert!(scenario.log.iter().any(|line| line.starts_with(
        "verification failed: the fix did not work: detector token-spike still sees the problem on batch-job at the deadline"
    )), "{:#?}", scenario.log);
    assert_eq!(
        scenario
            .engine
            .trust_pct("throttle-runaway-key", ActionName::Throttle),
        33
    );
}

#[test]
fn a_finding_that_clears_after_the_fix_passes_finding_clears_verification() {
    let mut config = config(Mode::Autonomous);
    config.runbooks[0].verification.check = crate::runbook::VerificationCheck::FindingClears;
    let mut scenario = Scenario::new(config);
    scenario.scrapes(10, NORMAL);
    let commands = scenario.scrapes(2, RUNAWAY);
    let commands = scenario.decide(&commands, Effect::Allow, &["block-single-runaway-key"]);
    scenario.finish_action(&commands, true);
    scenario.scrapes(4, NORMAL);
    let tail: Vec<&str> = scenario.log.iter().skip(6).map(String::as_str).collect();
    expect![[r#"
        verifying: detector token-spike clears its finding on batch-job within 10 s
        wake at +22025ms
        finding cleared: token-spike/hashed_api_key=h-batch
        verified: []
        resolved after 3025ms: fixed: the finding cleared after vigil's change"#]]
    .assert_eq(&tail.join("\n"));
}

#[test]
fn an_unusual_latency_is_an_unusual_reading_with_its_learnt_baseline_in_the_ticket() {
    use crate::detector::Severity;
    use crate::detector::adaptive::{AdaptiveConfig, Direction};
    use crate::detector::anomaly::AnomalyConfig;
    use crate::detector::threshold::Reading;
    let mut config = config(Mode::Autonomous);
    config.detectors = vec![DetectorConfig::Anomaly(AnomalyConfig {
        name: "latency-anomaly".to_owned(),
        source: "gateway".to_owned(),
        reading: Reading::Value {
            selector: Selector::parse("retrieval_latency_seconds").unwrap(),
        },
        describe: "retrieval latency (s)".to_owned(),
        group_by: Some("store".to_owned()),
        method: AdaptiveConfig {
            direction: Direction::Up,
            season_secs: 0,
            ..AdaptiveConfig::default()
        },
        min_change: 0.1,
        clear_fraction: 0.5,
        clear_after_samples: 3,
        severity: Severity::Ticket,
        max_groups: 10,
    })];
    let mut scenario = Scenario::new(config);
    let mut commands = Vec::new();
    let wobble = [0.0, 0.01, -0.01, 0.005, -0.005];
    for index in 0..420 {
        let latency = if index < 400 { 0.2 } else { 1.5 } + wobble[index % wobble.len()];
        scenario.now = scenario.now.plus_millis(15_000);
        let now = scenario.now;
        commands.extend(scenario.feed(Event::Scraped {
            source: "gateway".to_owned(),
            scraped_at: now,
            samples: vec![Sample {
                name: "retrieval_latency_seconds".to_owned(),
                labels: [("store", "qdrant")].into_iter().collect(),
                value: latency,
                timestamp_ms: None,
            }],
        }));
    }
    let pages: Vec<&Page> = commands
        .iter()
        .filter_map(|command| match command {
            Command::Page { page, .. } => Some(page),
            _ => None,
        })
        .collect();
    let [page] = pages.as_slice() else {
        panic!("{:#?}", scenario.log);
    };
    assert_eq!(page.severity, Severity::Ticket);
    assert_eq!(
        page.title,
        "vigil needs a human: retrieval latency (s) of qdrant far outside its usual range (gateway)"
    );
    assert!(
        page.why.evidence[0].starts_with(
            "retrieval latency (s) of store qdrant is 1.5, above the 0.2 its own history led vigil to expect"
        ),
        "{:?}",
        page.why.evidence
    );
    assert!(
        page.why
            .reason
            .contains("no runbook answers `unusual_reading`"),
        "{}",
        page.why.reason
    );
}
