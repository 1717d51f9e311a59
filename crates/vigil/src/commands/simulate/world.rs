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
    /// A value set by an action, overriding the script from then on.
    forced: Option<f64>,
    /// A counter's value, and the time it was computed for.
    value: f64,
    at_ms: i64,
}

impl Series {
    fn scripted(&self, at_ms: i64) -> f64 {
        self.script
            .iter()
            .rev()
            .find(|(from, _)| *from <= at_ms)
            .map_or(0.0, |(_, value)| *value)
    }

    /// Brings a counter's value up to `now_ms`, integrating its rate piece by piece.
    fn advance(&mut self, now_ms: i64) {
        if !self.counter || now_ms <= self.at_ms {
            self.at_ms = self.at_ms.max(now_ms);
            return;
        }
        let mut from = self.at_ms;
        while from < now_ms {
            let next_boundary = self
                .script
                .iter()
                .map(|(at, _)| *at)
                .find(|at| *at > from)
                .unwrap_or(i64::MAX);
            let to = if self.forced.is_some() {
                now_ms
            } else {
                next_boundary.min(now_ms)
            };
            let rate = self.forced.unwrap_or_else(|| self.scripted(from));
            self.value += rate * (to - from) as f64 / 1000.0;
            from = to;
        }
        self.at_ms = now_ms;
    }

    fn current(&self, now_ms: i64) -> f64 {
        if self.counter {
            self.value
        } else {
            self.forced.unwrap_or_else(|| self.scripted(now_ms))
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

#[derive(Clone, Copy)]
enum Effect {
    Set(f64),
    Resume,
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
                Series {
                    id: raw.id.clone(),
                    source: raw.source.clone(),
                    metric: raw.metric.clone(),
                    labels: raw.labels.iter().collect(),
                    counter,
                    script: segments
                        .iter()
                        .map(|segment| {
                            (
                                secs_to_ms(segment.from_secs),
                                segment.per_sec.or(segment.value).unwrap_or(0.0),
                            )
                        })
                        .collect(),
                    forced: None,
                    value: 0.0,
                    at_ms: 0,
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
                        let change = match (effect.per_sec.or(effect.value), effect.resume) {
                            (Some(value), _) => Effect::Set(value),
                            (None, _) => Effect::Resume,
                        };
                        Some((idx, change))
                    })
                    .collect(),
            })
            .collect();
        World {
            series,
            responses,
            targets: SimulatedTargets::default(),
            done: Vec::new(),
        }
    }

    /// What `source` exposes at `now_ms` (relative to the scenario's start).
    pub(super) fn scrape(&mut self, source: &str, now_ms: i64) -> Vec<Sample> {
        self.series
            .iter_mut()
            .filter(|series| series.source == source)
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
            // Accepted and ignored: nothing in the stack changes.
            self.targets.apply(action);
            self.done.push(kind);
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
                series.forced = match effect {
                    Effect::Set(value) => Some(value),
                    Effect::Resume => None,
                };
            }
        }
        self.targets.apply(action);
        self.done.push(kind);
        ok(format!("{} done", kind.as_str()), prior)
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
