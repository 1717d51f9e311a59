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
    /// The outcome the scenario expects; `--check` fails when it is not met.
    #[serde(default)]
    pub expect: RawExpect,
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
    /// Of which fail.
    pub failed: u32,
    /// Each case's prompt size, when reported.
    pub input_tokens: Option<u64>,
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
    /// ...or the replacement body (of the push's `kind`).
    pub body: Option<serde_json::Value>,
}

impl RawEvals {
    /// The JSON body of `POST /v1/push/evals`.
    #[must_use]
    pub fn body(&self) -> serde_json::Value {
        let results: Vec<serde_json::Value> = (0..self.cases)
            .map(|idx| {
                let mut result = serde_json::json!({
                    "suite": self.suite,
                    "case": format!("case-{idx}"),
                    "passed": idx >= self.failed,
                    "model": self.model,
                    "prompt_name": self.prompt,
                    "prompt_version": self.version,
                });
                if let (Some(tokens), Some(object)) = (self.input_tokens, result.as_object_mut()) {
                    object.insert("input_tokens".to_owned(), serde_json::json!(tokens));
                }
                result
            })
            .collect();
        serde_json::json!({ "results": results })
    }
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
}

/// The payload kinds `pushes` may carry.
pub const PUSH_KINDS: [&str; 3] = ["evals", "agent_runs", "alertmanager"];

impl RawScenario {
    /// Checks what serde cannot; every problem with its key path.
    pub fn check(&self, problems: &mut Problems) {
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
        }
        for (idx, push) in self.pushes.iter().enumerate() {
            let path = format!("pushes[{idx}]");
            match (&push.kind, &push.body, &push.evals) {
                (Some(kind), Some(_), None) => {
                    if !PUSH_KINDS.contains(&kind.as_str()) {
                        problems.push(
                            format!("{path}.kind"),
                            format!("`{kind}` is not one of {}", PUSH_KINDS.join(", ")),
                        );
                    }
                }
                (None, None, Some(evals)) => {
                    if evals.failed > evals.cases || evals.cases == 0 {
                        problems.push(
                            format!("{path}.evals"),
                            "needs 1 or more cases, and at most as many failed",
                        );
                    }
                }
                _ => problems.push(path.clone(), "give `kind` with `body`, or `evals`"),
            }
            if let Some(after) = &push.after
                && after.evals.is_some() == after.body.is_some()
            {
                problems.push(format!("{path}.after"), "give `evals` or `body`");
            }
            if push.every_secs == Some(0) {
                problems.push(format!("{path}.every_secs"), "must be at least 1");
            }
            if push.every_secs.is_some() != push.until_secs.is_some() {
                problems.push(path, "`every_secs` and `until_secs` go together");
            }
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
                let n_set = usize::from(effect.per_sec.is_some())
                    + usize::from(effect.value.is_some())
                    + usize::from(effect.resume);
                if n_set != 1 {
                    problems.push(
                        path,
                        "give exactly one of `per_sec`, `value` and `resume: true`",
                    );
                }
            }
        }
        for (idx, human) in self.humans.iter().enumerate() {
            if human.by.trim().is_empty() {
                problems.push(format!("humans[{idx}].by"), "must name someone");
            }
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
