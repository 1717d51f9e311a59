//! Part 3 of the `diagnosis` benchmark: opening an incident for one finding while others are
//! open, and `Topology::common_dependency` on its own.

use std::time::{Duration, Instant};

use anyhow::bail;
use vigil_core::engine::{Engine, Event};
use vigil_core::topology::{NodeId, NodeKind, Topology};

use super::stack::{CALM, FIRING, Stack};
use super::{median_of, settle_allocator, step, tally, timed};

/// The findings open before the measured one.
pub(super) struct Case {
    pub(super) label: String,
    with_topology: bool,
    /// Whether the open findings are connected to the new one (keys sharing its provider)
    /// or not (teams' budgets, one incident each).
    connected: bool,
    pub(super) n_others: usize,
}

pub(super) fn cases(stack: &Stack) -> Vec<Case> {
    let n_connected = stack.keys_hosted_by(0).len().saturating_sub(1);
    let mut cases = vec![
        Case {
            label: "none, no topology (baseline: diagnosis alone)".to_owned(),
            with_topology: false,
            connected: false,
            n_others: 0,
        },
        Case {
            label: format!("{} incidents, no topology", 100.min(stack.n_teams)),
            with_topology: false,
            connected: false,
            n_others: 100.min(stack.n_teams),
        },
        Case {
            label: "none".to_owned(),
            with_topology: true,
            connected: false,
            n_others: 0,
        },
    ];
    for n_others in [10, 100] {
        let n_others = n_others.min(stack.n_teams);
        cases.push(Case {
            label: format!("{n_others} unconnected incidents (teams)"),
            with_topology: true,
            connected: false,
            n_others,
        });
    }
    for n_others in [10, 100, 1000] {
        let n_others = n_others.min(n_connected);
        cases.push(Case {
            label: format!("1 incident of {n_others} connected findings (keys)"),
            with_topology: true,
            connected: true,
            n_others,
        });
    }
    cases
}

pub(super) struct CaseResult {
    /// The scrape with one more finding, less the same scrape without it, in microseconds
    /// (the median over the runs of the difference within each run; noise can make it
    /// negative).
    pub(super) one_more_us: f64,
    /// The scrape in which every other finding fired, less the same scrape without any
    /// firing, per finding, in microseconds (median, as `one_more_us`).
    pub(super) burst_per_finding_us: f64,
}

/// Runs `case` `n_reps` times, each on a fresh engine that has seen the gateway's first
/// scrape.
pub(super) fn run_case(
    stack: &Stack,
    first: &Event,
    case: &Case,
    n_reps: usize,
) -> anyhow::Result<CaseResult> {
    // The new finding's key, and the other keys: all call model groups hosted by provider 0.
    let hosted = stack.keys_hosted_by(0);
    let Some((&new_key, other_keys)) = hosted.split_first() else {
        bail!("no key calls a model group hosted by provider 0");
    };
    let (keys, teams): (Vec<usize>, Vec<usize>) = if case.connected {
        (
            other_keys.iter().take(case.n_others).copied().collect(),
            Vec::new(),
        )
    } else {
        (Vec::new(), (0..case.n_others).collect())
    };
    let readings = |values: &[usize], on: bool| -> Vec<(usize, f64)> {
        let value = if on { FIRING } else { CALM };
        values.iter().map(|&idx| (idx, value)).collect()
    };
    let with_new = |others: Vec<(usize, f64)>, on: bool| -> Vec<(usize, f64)> {
        let mut all = vec![(new_key, if on { FIRING } else { CALM })];
        all.extend(others);
        all
    };
    let calm = stack.alerts_scrape(
        1,
        &with_new(readings(&keys, false), false),
        &readings(&teams, false),
    );
    let burst = stack.alerts_scrape(
        2,
        &with_new(readings(&keys, true), false),
        &readings(&teams, true),
    );
    let steady = stack.alerts_scrape(
        3,
        &with_new(readings(&keys, true), false),
        &readings(&teams, true),
    );
    let one_more = stack.alerts_scrape(
        4,
        &with_new(readings(&keys, true), true),
        &readings(&teams, true),
    );
    let (mut one_more_us, mut burst_us) = (Vec::new(), Vec::new());
    for _ in 0..n_reps {
        let mut engine = Engine::new(stack.engine_config(case.with_topology)?);
        step(&mut engine, first.clone(), stack.at(0));
        settle_allocator();
        step(&mut engine, calm.clone(), stack.at(1));
        let event = burst.clone();
        let (commands, took) = timed(|| step(&mut engine, event, stack.at(2)));
        let [n_opened, n_joined, ..] = tally(&commands);
        let expected = if case.connected && case.n_others > 0 {
            [1, case.n_others - 1]
        } else {
            [case.n_others, 0]
        };
        if [n_opened, n_joined] != expected {
            bail!(
                "{}: the burst opened {n_opened} incidents and joined {n_joined} findings, not {expected:?}",
                case.label
            );
        }
        let burst_took = took;
        let event = steady.clone();
        let (commands, took) = timed(|| step(&mut engine, event, stack.at(3)));
        if tally(&commands)[..2] != [0, 0] {
            bail!("{}: the steady alerts scrape opened or joined", case.label);
        }
        let steady_took = took;
        let event = one_more.clone();
        let (commands, took) = timed(|| step(&mut engine, event, stack.at(4)));
        let [n_opened, n_joined, ..] = tally(&commands);
        let expected = if case.connected && case.n_others > 0 {
            [0, 1]
        } else {
            [1, 0]
        };
        if [n_opened, n_joined] != expected {
            bail!(
                "{}: the new finding opened {n_opened} and joined {n_joined}, not {expected:?}",
                case.label
            );
        }
        let micros = |took: Duration| took.as_secs_f64() * 1e6;
        one_more_us.push(micros(took) - micros(steady_took));
        burst_us.push((micros(burst_took) - micros(steady_took)) / case.n_others.max(1) as f64);
    }
    Ok(CaseResult {
        one_more_us: median_of(one_more_us),
        burst_per_finding_us: median_of(burst_us),
    })
}

/// `Topology::common_dependency` with `max_hops` 3 on pairs of every seventh key and: a
/// provider of its model group (connected, 3 hops), a provider its model group does not use
/// (unconnected), another key whose model group shares a provider (connected).
pub(super) fn common_dependency_costs(stack: &Stack, topology: &Topology, n_keys: usize) {
    let key = |idx: usize| NodeId::new(NodeKind::Key, stack.key_hash(idx));
    let provider = |idx: usize| NodeId::new(NodeKind::Provider, stack.provider_name(idx));
    let mut key_provider = Vec::new();
    let mut key_other_provider = Vec::new();
    for idx in (0..n_keys).step_by(7) {
        let group = stack.group_of_key(idx);
        let used: Vec<usize> = (0..stack.n_deployments(group))
            .map(|deployment| stack.provider_of(group, deployment))
            .collect();
        key_provider.push((key(idx), provider(used.first().copied().unwrap_or(0))));
        if let Some(unused) = (0..stack.n_providers).find(|candidate| !used.contains(candidate)) {
            key_other_provider.push((key(idx), provider(unused)));
        }
    }
    let hosted = stack.keys_hosted_by(0);
    let key_key: Vec<(NodeId, NodeId)> = hosted
        .windows(2)
        .filter_map(|pair| match pair {
            [a, b] => Some((key(*a), key(*b))),
            _ => None,
        })
        .collect();
    println!("\n   Topology::common_dependency (max_hops 3), per call");
    for (what, pairs) in [
        ("key -> a provider of its model group", &key_provider),
        ("key -> a provider it does not use", &key_other_provider),
        ("key -> a key sharing a provider", &key_key),
    ] {
        let mut n_calls = 0_usize;
        let mut n_found = 0_usize;
        let started = Instant::now();
        while n_calls < 50_000 && !pairs.is_empty() {
            for (a, b) in pairs {
                let found = topology.common_dependency(a, b, 3);
                n_found += usize::from(std::hint::black_box(found).is_some());
                n_calls += 1;
            }
        }
        let took = started.elapsed();
        println!(
            "  {what:<44}{:>8.0} ns/call ({n_found} of {n_calls} found one)",
            took.as_secs_f64() * 1e9 / n_calls.max(1) as f64
        );
    }
}
