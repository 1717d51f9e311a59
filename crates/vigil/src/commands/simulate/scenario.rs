//! The scenario file of `vigil simulate`, as written (serde, unknown keys rejected) and
//! validated: every problem with its key path, located by line by the caller.
//!
//! `docs/scenarios.md` documents the format for SREs writing game days.

use std::collections::BTreeMap;

use serde::Deserialize;
use vigil_core::action::ActionKind;
use vigil_core::problem::Problems;

/// A scenario as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScenario {
    /// A short name, for the timeline's header.
    pub name: String,
    /// What it plays, for people.
    #[serde(default)]
    pub description: String,
    /// The vigil config to run, relative to the scenario file (its runbooks and policies
    /// folders are read as `vigil serve` reads them). Its sources' URLs are never contacted.
    pub config: String,
    /// How long to run, in simulated seconds.
    pub duration_secs: u64,
    /// Every source is scraped this often.
    #[serde(default = "default_scrape_interval")]
    pub scrape_interval_secs: u64,
    /// The series the simulated stack exposes.
    #[serde(default)]
    pub series: Vec<RawSeries>,
    /// Pushed payloads (evals, agent runs, ...), each at its time.
    #[serde(default)]
    pub pushes: Vec<RawPush>,
    /// How the stack answers vigil's actions. An action no response matches succeeds and
    /// changes nothing (a target that accepts a change and ignores it).
    #[serde(default)]
    pub responses: Vec<RawResponse>,
    /// What people do, each at its time.
    #[serde(default)]
    pub humans: Vec<RawHuman>,
    /// The scheduled runbooks that run in this game day (by id), on their cron schedules.
    /// The others stay quiet, so that a scenario about one incident is not interleaved with
    /// regular checks.
    #[serde(default)]
    pub schedules: Vec<String>,
    /// The assistant (an LLM investigator) on, played by the OpenAI fake on loopback:
    /// `{ play: good, on: all }`. Absent: off.
    #[serde(default)]
    pub assistant: Option<RawAssistantPlay>,
    /// The outcome the scenario expects; `--check` fails when it is not met.
    #[serde(default)]
    pub expect: RawExpect,
}

/// How a scenario's assistant is played.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssistantPlay {
    /// How the fake model plays the investigator: `good`, `disagrees`, `hallucinated`,
    /// `malformed`, `no_schema`, `endless_tools`, `rate_limited`, `server_error`, `slow`,
    /// `closed`.
    pub play: String,
    /// Which incidents it investigates: `novel`, `paged`, `all`.
    #[serde(default = "default_assistant_scope")]
    pub on: vigil_core::investigation::Scope,
}

fn default_assistant_scope() -> vigil_core::investigation::Scope {
    vigil_core::investigation::Scope::All
}

fn default_scrape_interval() -> u64 {
    15
}

/// One series.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSeries {
    /// The name responses refer to it by.
    pub id: String,
    /// The config's source that exposes it.
    pub source: String,
    /// The metric name.
    pub metric: String,
    /// Its labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Absent from scrapes before this simulated second (a deployment that appears, a
    /// fallback's series that starts with its first request); a counter starts from 0 then.
    pub appears_at_secs: Option<u64>,
    /// A counter that grows at these rates: each from its time until the next.
    pub counter: Option<Vec<RawSegment>>,
    /// A gauge with these values: each from its time until the next.
    pub gauge: Option<Vec<RawSegment>>,
}

/// A piece of a series' script.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSegment {
    /// From this simulated second.
    pub from_secs: u64,
    /// A counter's increase per second.
    pub per_sec: Option<f64>,
    /// A gauge's value.
    pub value: Option<f64>,
}

/// A pushed payload, once or repeated.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPush {
    /// When (the first time).
    pub at_secs: u64,
    /// Repeat this often...
    pub every_secs: Option<u64>,
    /// ...until this time (inclusive).
    pub until_secs: Option<u64>,
    /// `evals`, `agent_runs` or `alertmanager`, with `body`.
    pub kind: Option<String>,
    /// The body, exactly as a client would POST it.
    pub body: Option<serde_json::Value>,
    /// Or a batch of eval results, generated (`kind: evals`).
    pub evals: Option<RawEvals>,
    /// Or groups of OTLP trace spans, generated as one `ExportTraceServiceRequest` in OTLP/JSON
    /// (`kind: spans`).
    pub spans: Option<Vec<RawSpans>>,
    /// What to push instead once vigil has carried out an action (the stack's answer to a
    /// fix: after a rollback, the evals pass again).
    pub after: Option<RawAfter>,
}

/// A generated batch of eval results for one prompt version.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEvals {
    /// The suite.
    pub suite: String,
    /// The prompt's name.
    pub prompt: String,
    /// Its version.
    pub version: String,
    /// The model.
    #[serde(default = "default_model")]
    pub model: String,
    /// Cases in the batch.
    pub cases: u32,
    /// Of which fail (or give `by_model`).
    pub failed: Option<u32>,
    /// Instead of `failed`: how many of `cases` each model fails. The cases are split between
    /// `model` and the fallback vigil routed it to (`litellm.set_fallbacks`), by
    /// `fallback_share`, and each part fails in proportion.
    pub by_model: Option<BTreeMap<String, RawModelEvals>>,
    /// The share of cases the fallback answers while `model` is routed to one (default 1).
    pub fallback_share: Option<f64>,
    /// Each case's prompt size, when reported.
    pub input_tokens: Option<u64>,
}

/// How one model does on a batch.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawModelEvals {
    /// Of the batch's `cases`, how many this model fails.
    pub failed: u32,
}

/// A group of identical spans, as an OpenTelemetry instrumentation would export them: a call
/// to a model (GenAI semantic conventions) or a database call (a vector store's query).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpans {
    /// How many spans.
    #[serde(default = "default_span_count")]
    pub count: u32,
    /// The resource's `service.name`.
    pub service: Option<String>,
    /// `gen_ai.operation.name` of a model call (default `chat`), or `db.operation.name` of a
    /// database call (default `query`).
    pub operation: Option<String>,
    /// A model call: `gen_ai.request.model`.
    pub model: Option<String>,
    /// `gen_ai.provider.name`.
    pub provider: Option<String>,
    /// `gen_ai.system`, as older instrumentations name the provider.
    pub system: Option<String>,
    /// `gen_ai.response.model`: the snapshot that answered.
    pub response_model: Option<String>,
    /// `gen_ai.usage.input_tokens`.
    pub input_tokens: Option<u64>,
    /// `gen_ai.usage.output_tokens`.
    pub output_tokens: Option<u64>,
    /// `gen_ai.response.finish_reasons`, one.
    pub finish_reason: Option<String>,
    /// A database call: `db.system.name` (`qdrant`, `pgvector`, ...).
    pub db_system: Option<String>,
    /// `db.collection.name`.
    pub collection: Option<String>,
    /// `server.address`.
    pub server_address: Option<String>,
    /// How long each span took; it ends at the push's time.
    #[serde(default = "default_span_duration")]
    pub duration_ms: u64,
    /// `error.type`, and the span's status is an error.
    pub error: Option<String>,
}

fn default_span_count() -> u32 {
    1
}

fn default_span_duration() -> u64 {
    1000
}

fn default_model() -> String {
    "gpt-4o".to_owned()
}

/// The replacement of a push once an action was carried out.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAfter {
    /// The action, as runbooks name it.
    pub action: ActionKind,
    /// The replacement batch of eval results...
    pub evals: Option<RawEvals>,
    /// ...or the replacement body (of the push's `kind`)...
    pub body: Option<serde_json::Value>,
    /// ...or the replacement spans.
    pub spans: Option<Vec<RawSpans>>,
}

/// How the stack answers one kind of action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResponse {
    /// The action, as runbooks name it (`litellm.block_key`, ...).
    pub action: ActionKind,
    /// Only when it targets this key, team, model or prompt (any when absent).
    pub target: Option<String>,
    /// Only when it moves a label to this version (`langfuse.set_label`).
    pub version: Option<u32>,
    /// Only from this simulated second...
    pub from_secs: Option<u64>,
    /// ...and before this one.
    pub until_secs: Option<u64>,
    /// `ok` (the default) or `fail`: the target refuses with an error.
    #[serde(default)]
    pub outcome: RawOutcome,
    /// What changes in the stack when it succeeds.
    #[serde(default)]
    pub effects: Vec<RawEffect>,
}

/// Whether the target accepts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawOutcome {
    /// It accepts.
    #[default]
    Ok,
    /// It answers an error (HTTP 500).
    Fail,
}

/// A change to a series.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEffect {
    /// Which series.
    pub series: String,
    /// A counter grows at this rate from now on.
    pub per_sec: Option<f64>,
    /// A gauge takes this value from now on.
    pub value: Option<f64>,
    /// The series goes back to its script.
    #[serde(default)]
    pub resume: bool,
    /// Or its own script, each segment from its second after the action took effect.
    pub script: Option<Vec<RawEffectSegment>>,
    /// The share of the series the change reaches (0 to 1, default 1): one gateway replica
    /// of two is 0.5. The rest keeps following the series' script.
    pub share: Option<f64>,
}

/// A piece of an effect's script.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawEffectSegment {
    /// From this many seconds after the action took effect.
    pub after_secs: u64,
    /// A counter's rate.
    pub per_sec: Option<f64>,
    /// A gauge's value.
    pub value: Option<f64>,
    /// Back to the series' own script.
    #[serde(default)]
    pub resume: bool,
}

/// A person's instruction.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHuman {
    /// When.
    pub at_secs: u64,
    /// Who: the person's name, as their credential would give it.
    pub by: String,
    /// The groups their credential puts them in (for example `ml-oncall`).
    #[serde(default)]
    pub groups: Vec<String>,
    /// The roles their credential grants: `viewer`, `approver`, `operator`, `admin`.
    #[serde(default)]
    pub roles: Vec<vigil_core::people::Role>,
    /// Why.
    #[serde(default)]
    pub reason: String,
    /// `approve` or `reject` (the latest pending proposal), `kill` or `unkill` (global).
    pub command: RawHumanCommand,
}

/// The instructions a scenario can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawHumanCommand {
    /// Approve the latest pending proposal, with the hash it was shown with.
    Approve,
    /// Reject the latest pending proposal.
    Reject,
    /// Turn the global kill switch on.
    Kill,
    /// Turn it off.
    Unkill,
}

/// The expected outcome. Absent keys are not checked.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    /// Incidents opened.
    pub incidents: Option<usize>,
    /// Incidents resolved without a page.
    pub resolved: Option<usize>,
    /// Pages sent.
    pub pages: Option<usize>,
    /// Steps proposed instead of acted.
    pub proposals: Option<usize>,
    /// The actions carried out, in order, as the timeline describes them.
    pub actions: Option<Vec<String>>,
    /// Guardrails that held, in order.
    pub guardrails: Option<Vec<String>>,
    /// Policies that determined a denial, in order.
    pub denied_by: Option<Vec<String>>,
    /// The best hypothesis of the first incident.
    pub hypothesis: Option<String>,
    /// The root cause: the first incident's best hypothesis and its subject.
    pub root_cause: Option<RawRootCause>,
}

/// The expected root cause.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRootCause {
    /// The hypothesis kind, as runbooks name it (`runaway_key`, `recent_change`, ...).
    pub kind: String,
    /// What it blames: a value (`gpt-4o`), or `label=value` (`model_group=gpt-4o`).
    pub subject: Option<String>,
}

/// The payload kinds `pushes` may carry.
pub const PUSH_KINDS: [&str; 4] = ["evals", "agent_runs", "alertmanager", "spans"];

impl RawScenario {
    /// Checks what serde cannot; every problem with its key path.
    pub fn check(&self, problems: &mut Problems) {
        if let Some(assistant) = &self.assistant
            && vigil_sim::Play::parse(&assistant.play).is_none()
        {
            let names: Vec<&str> = vigil_sim::Play::ALL
                .iter()
                .map(|play| play.as_str())
                .collect();
            problems.push(
                "assistant.play",
                format!("`{}` is not one of {}", assistant.play, names.join(", ")),
            );
        }
        if self.duration_secs == 0 || self.duration_secs > 7 * 86_400 {
            problems.push("duration_secs", "must be between 1 and 604800 (a week)");
        }
        if self.scrape_interval_secs == 0 {
            problems.push("scrape_interval_secs", "must be at least 1");
        }
        let mut ids = std::collections::BTreeSet::new();
        for (idx, series) in self.series.iter().enumerate() {
            let path = format!("series[{idx}]");
            if !ids.insert(series.id.as_str()) {
                problems.push(
                    format!("{path}.id"),
                    format!("another series is called `{}`", series.id),
                );
            }
            match (&series.counter, &series.gauge) {
                (Some(segments), None) => {
                    check_segments(problems, &format!("{path}.counter"), segments, true);
                }
                (None, Some(segments)) => {
                    check_segments(problems, &format!("{path}.gauge"), segments, false);
                }
                _ => problems.push(path.clone(), "give exactly one of `counter` and `gauge`"),
            }
            if series
                .appears_at_secs
                .is_some_and(|at| at >= self.duration_secs)
            {
                problems.push(
                    format!("{path}.appears_at_secs"),
                    "must be before `duration_secs`",
                );
            }
        }
        for (idx, push) in self.pushes.iter().enumerate() {
            check_push(problems, &format!("pushes[{idx}]"), push);
        }
        for (idx, response) in self.responses.iter().enumerate() {
            for (effect_idx, effect) in response.effects.iter().enumerate() {
                let path = format!("responses[{idx}].effects[{effect_idx}]");
                if !ids.contains(effect.series.as_str()) {
                    problems.push(
                        format!("{path}.series"),
                        format!("no series is called `{}`", effect.series),
                    );
                }
                check_effect(problems, &path, effect);
            }
        }
        for (idx, human) in self.humans.iter().enumerate() {
            if human.by.trim().is_empty() {
                problems.push(format!("humans[{idx}].by"), "must name someone");
            }
        }
        if let Some(root_cause) = &self.expect.root_cause {
            let is_name = |text: &str| {
                !text.is_empty()
                    && text
                        .bytes()
                        .all(|byte| byte.is_ascii_lowercase() || byte == b'_')
            };
            if !is_name(&root_cause.kind) {
                problems.push(
                    "expect.root_cause.kind",
                    "must be a hypothesis kind in snake_case, such as `runaway_key`",
                );
            }
            if root_cause.subject.as_deref().is_some_and(|subject| {
                subject.trim().is_empty()
                    || subject
                        .split_once('=')
                        .is_some_and(|(l, v)| l.is_empty() || v.is_empty())
            }) {
                problems.push(
                    "expect.root_cause.subject",
                    "must be a value, or `label=value`",
                );
            }
        }
    }
}

/// The most spans one push may carry (OTLP's array limit in vigil's intake).
pub const MAX_SPANS_PER_PUSH: u64 = vigil_core::intake::otlp::MAX_OTLP_ARRAY as u64;

fn check_push(problems: &mut Problems, path: &str, push: &RawPush) {
    match (&push.kind, &push.body, &push.evals, &push.spans) {
        (Some(kind), Some(_), None, None) => {
            if !PUSH_KINDS.contains(&kind.as_str()) {
                problems.push(
                    format!("{path}.kind"),
                    format!("`{kind}` is not one of {}", PUSH_KINDS.join(", ")),
                );
            }
        }
        (None, None, Some(evals), None) => check_evals(problems, &format!("{path}.evals"), evals),
        (None, None, None, Some(spans)) => check_spans(problems, &format!("{path}.spans"), spans),
        _ => problems.push(path, "give `kind` with `body`, or `evals`, or `spans`"),
    }
    if let Some(after) = &push.after {
        let after_path = format!("{path}.after");
        let n_given = usize::from(after.evals.is_some())
            + usize::from(after.body.is_some())
            + usize::from(after.spans.is_some());
        if n_given != 1 {
            problems.push(
                after_path.clone(),
                "give one of `evals`, `body` and `spans`",
            );
        }
        if let Some(evals) = &after.evals {
            check_evals(problems, &format!("{after_path}.evals"), evals);
        }
        if let Some(spans) = &after.spans {
            check_spans(problems, &format!("{after_path}.spans"), spans);
        }
    }
    if push.every_secs == Some(0) {
        problems.push(format!("{path}.every_secs"), "must be at least 1");
    }
    if push.every_secs.is_some() != push.until_secs.is_some() {
        problems.push(path, "`every_secs` and `until_secs` go together");
    }
}

fn check_evals(problems: &mut Problems, path: &str, evals: &RawEvals) {
    if evals.cases == 0 {
        problems.push(format!("{path}.cases"), "must be at least 1");
    }
    match (evals.failed, &evals.by_model) {
        (Some(failed), None) => {
            if failed > evals.cases {
                problems.push(format!("{path}.failed"), "must be at most `cases`");
            }
        }
        (None, Some(by_model)) => {
            if !by_model.contains_key(&evals.model) {
                problems.push(
                    format!("{path}.by_model"),
                    format!("needs the primary model `{}`", evals.model),
                );
            }
            for (model, model_evals) in by_model {
                if model_evals.failed > evals.cases {
                    problems.push(
                        format!("{path}.by_model.{model}.failed"),
                        "must be at most `cases`",
                    );
                }
            }
        }
        _ => problems.push(path, "give one of `failed` and `by_model`"),
    }
    if let Some(share) = evals.fallback_share {
        if evals.by_model.is_none() {
            problems.push(format!("{path}.fallback_share"), "goes with `by_model`");
        }
        if !(0.0..=1.0).contains(&share) {
            problems.push(format!("{path}.fallback_share"), "must be from 0 to 1");
        }
    }
}

fn check_spans(problems: &mut Problems, path: &str, groups: &[RawSpans]) {
    if groups.is_empty() {
        problems.push(path, "needs at least one group of spans");
    }
    let mut n_spans = 0_u64;
    for (idx, group) in groups.iter().enumerate() {
        let here = format!("{path}[{idx}]");
        n_spans += u64::from(group.count);
        if group.count == 0 {
            problems.push(format!("{here}.count"), "must be at least 1");
        }
        let gen_ai_fields = [
            ("provider", group.provider.is_some()),
            ("system", group.system.is_some()),
            ("response_model", group.response_model.is_some()),
            ("input_tokens", group.input_tokens.is_some()),
            ("output_tokens", group.output_tokens.is_some()),
            ("finish_reason", group.finish_reason.is_some()),
        ];
        match (&group.model, &group.db_system) {
            (Some(_), None) => {
                if group.collection.is_some() {
                    problems.push(
                        format!("{here}.collection"),
                        "belongs to a database span (`db_system`)",
                    );
                }
            }
            (None, Some(_)) => {
                for (field, given) in gen_ai_fields {
                    if given {
                        problems.push(
                            format!("{here}.{field}"),
                            "belongs to a model call (`model`), not a database span",
                        );
                    }
                }
            }
            _ => problems.push(
                here,
                "give one of `model` (a call to a model) and `db_system` (a database call)",
            ),
        }
    }
    if n_spans > MAX_SPANS_PER_PUSH {
        problems.push(
            path,
            format!("carries {n_spans} spans; one push carries at most {MAX_SPANS_PER_PUSH}"),
        );
    }
}

fn check_effect(problems: &mut Problems, path: &str, effect: &RawEffect) {
    let n_set = usize::from(effect.per_sec.is_some())
        + usize::from(effect.value.is_some())
        + usize::from(effect.resume)
        + usize::from(effect.script.is_some());
    if n_set != 1 {
        problems.push(
            path,
            "give exactly one of `per_sec`, `value`, `resume: true` and `script`",
        );
    }
    if let Some(share) = effect.share {
        if effect.resume {
            problems.push(format!("{path}.share"), "does not go with `resume`");
        }
        if !(share > 0.0 && share <= 1.0) {
            problems.push(format!("{path}.share"), "must be above 0 and at most 1");
        }
    }
    for value in [effect.per_sec, effect.value].into_iter().flatten() {
        if !value.is_finite() {
            problems.push(path, "must be a finite number");
        }
    }
    let Some(script) = &effect.script else {
        return;
    };
    if script.is_empty() {
        problems.push(format!("{path}.script"), "needs at least one segment");
    }
    let mut previous = None;
    for (idx, segment) in script.iter().enumerate() {
        let here = format!("{path}.script[{idx}]");
        if previous.is_some_and(|after| segment.after_secs <= after) {
            problems.push(
                format!("{here}.after_secs"),
                "must be after the previous segment's",
            );
        }
        previous = Some(segment.after_secs);
        let n_set = usize::from(segment.per_sec.is_some())
            + usize::from(segment.value.is_some())
            + usize::from(segment.resume);
        let finite = [segment.per_sec, segment.value]
            .into_iter()
            .flatten()
            .all(f64::is_finite);
        if n_set != 1 || !finite {
            problems.push(
                here,
                "give exactly one of `per_sec`, `value` and `resume: true`",
            );
        }
    }
}

fn check_segments(problems: &mut Problems, path: &str, segments: &[RawSegment], counter: bool) {
    if segments.is_empty() {
        problems.push(path, "needs at least one segment");
    }
    let mut previous = None;
    for (idx, segment) in segments.iter().enumerate() {
        let here = format!("{path}[{idx}]");
        if previous.is_some_and(|from| segment.from_secs <= from) {
            problems.push(
                format!("{here}.from_secs"),
                "must be after the previous segment's",
            );
        }
        previous = Some(segment.from_secs);
        match (counter, segment.per_sec, segment.value) {
            (true, Some(rate), None) if rate.is_finite() && rate >= 0.0 => {}
            (true, _, _) => problems.push(here, "a counter segment needs `per_sec` (at least 0)"),
            (false, None, Some(value)) if !value.is_nan() => {}
            (false, _, _) => problems.push(here, "a gauge segment needs `value`"),
        }
    }
}
