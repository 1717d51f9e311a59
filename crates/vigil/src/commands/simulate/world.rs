//! The simulated AI stack a scenario defines: its series as they evolve, and how it answers
//! vigil's actions (with the state each action replaced, as the real targets report it).

use std::collections::BTreeMap;

use vigil_core::action::{ActionKind, SimulatedAction, SimulatedTargets};
use vigil_core::engine::{Action, ActionOutcome};
use vigil_core::signal::{Labels, Sample};

use super::scenario::{RawEffect, RawOutcome, RawResponse, RawScenario};

/// One series and where it is.
struct Series {
    id: String,
    source: String,
    metric: String,
    labels: Labels,
    counter: bool,
    /// `(from_ms, per_sec or value)`.
    script: Vec<(i64, f64)>,
    /// Absent from scrapes before this time.
    appears_ms: i64,
    /// What an action changed, overriding the script from then on.
    changed: Option<Change>,
    /// A counter's value, and the time it was computed for.
    value: f64,
    at_ms: i64,
}

/// What an action did to a series: from `applied_ms`, a share of the series follows the
/// change's own script; the rest, and every gap in that script, follows the series' script.
#[derive(Clone, Debug, PartialEq)]
struct Change {
    applied_ms: i64,
    /// Of the series, how much the change reaches (1: all of it).
    share: f64,
    /// `(ms after applied_ms, rate or value)`; `None` goes back to the series' script.
    segments: Vec<(i64, Option<f64>)>,
}

impl Series {
    fn scripted(&self, at_ms: i64) -> f64 {
        self.script
            .iter()
            .rev()
            .find(|(from, _)| *from <= at_ms)
            .map_or(0.0, |(_, value)| *value)
    }

    /// The rate (a counter) or value (a gauge) at `at_ms`, with what actions changed.
    fn level(&self, at_ms: i64) -> f64 {
        let scripted = self.scripted(at_ms);
        let Some(change) = &self.changed else {
            return scripted;
        };
        let since = at_ms - change.applied_ms;
        let target = change
            .segments
            .iter()
            .rev()
            .find(|(after, _)| *after <= since)
            .and_then(|(_, target)| *target);
        match target {
            Some(target) => change.share * target + (1.0 - change.share) * scripted,
            None => scripted,
        }
    }

    /// The first time after `after_ms` at which the level may change.
    fn next_boundary(&self, after_ms: i64) -> i64 {
        let scripted = self.script.iter().map(|(at, _)| *at);
        let changed = self.changed.iter().flat_map(|change| {
            change
                .segments
                .iter()
                .map(|(after, _)| change.applied_ms.saturating_add(*after))
        });
        scripted
            .chain(changed)
            .filter(|at| *at > after_ms)
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Brings a counter's value up to `now_ms`, integrating its rate piece by piece.
    fn advance(&mut self, now_ms: i64) {
        if !self.counter || now_ms <= self.at_ms {
            self.at_ms = self.at_ms.max(now_ms);
            return;
        }
        let mut from = self.at_ms;
        while from < now_ms {
            let to = self.next_boundary(from).min(now_ms);
            self.value += self.level(from) * (to - from) as f64 / 1000.0;
            from = to;
        }
        self.at_ms = now_ms;
    }

    fn current(&self, now_ms: i64) -> f64 {
        if self.counter {
            self.value
        } else {
            self.level(now_ms)
        }
    }
}

/// The stack.
pub(super) struct World {
    series: Vec<Series>,
    responses: Vec<Response>,
    /// The state actions replaced, as each kind sees it (`vigil_core::action`).
    targets: SimulatedTargets,
    /// The kinds of action carried out successfully so far.
    done: Vec<ActionKind>,
    /// Each model's fallbacks as vigil set them (`litellm.set_fallbacks`), which the
    /// simulated gateway routes to: what evals with `by_model` follow.
    routes: BTreeMap<String, Vec<String>>,
}

struct Response {
    action: ActionKind,
    target: Option<String>,
    version: Option<u32>,
    from_ms: i64,
    until_ms: i64,
    outcome: RawOutcome,
    effects: Vec<(usize, Effect)>,
}

#[derive(Clone)]
enum Effect {
    /// A share of the series follows these segments, relative to when the action took
    /// effect.
    Change {
        share: f64,
        segments: Vec<(i64, Option<f64>)>,
    },
    /// Back to the series' script.
    Resume,
}

impl Effect {
    fn from_raw(raw: &RawEffect) -> Effect {
        let segments = match (&raw.script, raw.per_sec.or(raw.value)) {
            (Some(script), _) => script
                .iter()
                .map(|segment| {
                    let target = if segment.resume {
                        None
                    } else {
                        segment.per_sec.or(segment.value)
                    };
                    (secs_to_ms(segment.after_secs), target)
                })
                .collect(),
            (None, Some(target)) => vec![(0, Some(target))],
            (None, None) => return Effect::Resume,
        };
        Effect::Change {
            share: raw.share.unwrap_or(1.0),
            segments,
        }
    }
}

impl World {
    pub(super) fn new(scenario: &RawScenario) -> World {
        let series: Vec<Series> = scenario
            .series
            .iter()
            .map(|raw| {
                let (counter, segments) = match (&raw.counter, &raw.gauge) {
                    (Some(segments), _) => (true, segments),
                    (None, Some(segments)) => (false, segments),
                    (None, None) => (true, &Vec::new()),
                };
                let appears_ms = raw.appears_at_secs.map_or(0, secs_to_ms);
                Series {
                    id: raw.id.clone(),
                    source: raw.source.clone(),
                    metric: raw.metric.clone(),
                    labels: raw.labels.iter().collect(),
                    counter,
                    appears_ms,
                    script: segments
                        .iter()
                        .map(|segment| {
                            (
                                secs_to_ms(segment.from_secs),
                                segment.per_sec.or(segment.value).unwrap_or(0.0),
                            )
                        })
                        .collect(),
                    changed: None,
                    value: 0.0,
                    // A counter counts from when it appears.
                    at_ms: appears_ms,
                }
            })
            .collect();
        let responses = scenario
            .responses
            .iter()
            .map(|raw: &RawResponse| Response {
                action: raw.action,
                target: raw.target.clone(),
                version: raw.version,
                from_ms: raw.from_secs.map_or(0, secs_to_ms),
                until_ms: raw.until_secs.map_or(i64::MAX, secs_to_ms),
                outcome: raw.outcome,
                effects: raw
                    .effects
                    .iter()
                    .filter_map(|effect: &RawEffect| {
                        let idx = series.iter().position(|s| s.id == effect.series)?;
                        Some((idx, Effect::from_raw(effect)))
                    })
                    .collect(),
            })
            .collect();
        World {
            series,
            responses,
            targets: SimulatedTargets::default(),
            done: Vec::new(),
            routes: BTreeMap::new(),
        }
    }

    /// What `source` exposes at `now_ms` (relative to the scenario's start).
    pub(super) fn scrape(&mut self, source: &str, now_ms: i64) -> Vec<Sample> {
        self.series
            .iter_mut()
            .filter(|series| series.source == source && series.appears_ms <= now_ms)
            .map(|series| {
                series.advance(now_ms);
                Sample {
                    name: series.metric.clone(),
                    labels: series.labels.clone(),
                    value: series.current(now_ms),
                    timestamp_ms: None,
                }
            })
            .collect()
    }

    /// Whether an action of this kind was carried out successfully.
    pub(super) fn has_done(&self, kind: ActionKind) -> bool {
        self.done.contains(&kind)
    }

    /// The first fallback vigil routed `model` to, while it is routed there.
    pub(super) fn fallback_of(&self, model: &str) -> Option<&str> {
        self.routes
            .get(model)
            .and_then(|fallbacks| fallbacks.first())
            .map(String::as_str)
    }

    /// The sources that have series.
    pub(super) fn sources(&self) -> Vec<String> {
        let mut sources: Vec<String> = self.series.iter().map(|s| s.source.clone()).collect();
        sources.sort();
        sources.dedup();
        sources
    }

    /// Carries out `action` at `now_ms` and answers as the target would.
    pub(super) fn act(&mut self, action: &Action, now_ms: i64) -> ActionOutcome {
        let SimulatedAction {
            kind,
            target,
            version,
            prior,
        } = self.targets.classify(action);
        let response = self.responses.iter().position(|response| {
            response.action == kind
                && response.target.as_deref().is_none_or(|t| t == target)
                && response.version.is_none_or(|v| Some(v) == version)
                && (response.from_ms..response.until_ms).contains(&now_ms)
        });
        let Some(response_idx) = response else {
            // Accepted and ignored: no series changes (the gateway still routes as told).
            self.accept(action, kind);
            return ok(format!("{} accepted", kind.as_str()), prior);
        };
        let Some(response) = self.responses.get(response_idx) else {
            return ok(String::new(), prior);
        };
        if response.outcome == RawOutcome::Fail {
            return ActionOutcome {
                succeeded: false,
                http_status: Some(500),
                detail: format!("{} refused: internal server error", kind.as_str()),
                prior: BTreeMap::new(),
            };
        }
        let effects = response.effects.clone();
        for (idx, effect) in effects {
            if let Some(series) = self.series.get_mut(idx) {
                series.advance(now_ms);
                series.changed = match effect {
                    Effect::Change { share, segments } => Some(Change {
                        applied_ms: now_ms,
                        share,
                        segments,
                    }),
                    Effect::Resume => None,
                };
            }
        }
        self.accept(action, kind);
        ok(format!("{} done", kind.as_str()), prior)
    }

    /// Keeps what a successful action set.
    fn accept(&mut self, action: &Action, kind: ActionKind) {
        if let Action::LitellmSetFallbacks {
            model, fallbacks, ..
        } = action
        {
            self.routes.insert(model.clone(), fallbacks.clone());
        }
        self.targets.apply(action);
        self.done.push(kind);
    }
}

fn ok(detail: String, prior: BTreeMap<String, String>) -> ActionOutcome {
    ActionOutcome {
        succeeded: true,
        http_status: Some(200),
        detail,
        prior,
    }
}

pub(super) fn secs_to_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}
