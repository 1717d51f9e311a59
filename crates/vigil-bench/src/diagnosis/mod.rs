//! `vigil-bench diagnosis`: what the topology and the grouping of findings cost beside
//! ingest, with 10,000 keys and 500 model groups in the topology.
//!
//! The stack ([`stack`]): 10,000 keys over 200 teams, each calling one of 500 model groups;
//! a model group routes to one to three deployments over 20 providers; 100 fallbacks between
//! model groups; 100 apps and 250 eval suites declared in the topology config. The gateway's
//! scrape (about 21,000 series) carries LiteLLM's labels (`hashed_api_key`, `team`,
//! `model_group`, `model_id`, `api_provider`, `litellm_model_name`). Every number is compared
//! with a baseline measured in the same run:
//!
//! 1. Learning the topology: the first scrape (which creates every series) into an engine
//!    with `topology` against one without (ingest alone).
//! 2. A steady scrape (no new series, nothing to learn), with and without `topology`.
//! 3. Opening an incident for one finding, when 0 to 1,000 findings are already open: the
//!    alerts source's scrape in which one key's errors fire, less the same scrape in which
//!    nothing new fires, against one steady gateway scrape. The findings already open are
//!    either unconnected (one incident per team's budget: a team is no one's dependency) or
//!    connected (keys whose model groups share a provider, joined in one incident, which the
//!    new finding joins too). A burst (all of them firing in one scrape) is shown per finding.
//!    Then `Topology::common_dependency` called directly, per call.
//! 4. The topology's size, and an estimate of its heap (see [`estimate_heap`]).
//!
//! A scrape's time is its mean on-CPU time over the repetitions (`/proc/thread-self/schedstat`,
//! as the other benchmarks read it), with the median wall time beside it. That clock advances
//! in steps of milliseconds, too coarse for a step of a few microseconds, so the times of part
//! 3 are wall clock: the median, over the repetitions (each on a fresh engine), of the
//! difference within each.
//!
//! Run it with `cargo run --release -p vigil-bench -- diagnosis` (options: `--keys N`,
//! `--groups N`, `--reps N`, `--scrapes N`). Two runs on the project's machine (2 shared cores,
//! load average 2.4 to 3), the defaults:
//!
//! | | run 1 | run 2 |
//! | --- | --- | --- |
//! | first scrape, ingest alone (on-CPU) | 11.5 ms, 544 ns/series | 12.1 ms, 575 ns/series |
//! | first scrape, ingest + learning | 141 ms, 6,703 ns/series: 12.3x | 142 ms, 6,741 ns/series: 11.7x |
//! | steady scrape, ingest alone | 5.81 ms | 6.08 ms |
//! | steady scrape with the topology | 5.58 ms: 0.96x | 4.75 ms: 0.78x (noise) |
//! | one finding, none open, no topology (diagnosis alone) | 31 µs: 0.56 % of a scrape | 32 µs: 0.68 % |
//! | one finding, none open | 39 µs: 0.69 % | 42 µs: 0.89 % |
//! | one finding, 10 / 100 unconnected incidents open | 29 / 93 µs: 1.7 % | 30 / 94 µs: 2.0 % |
//! | one finding joining an incident of 10 / 100 findings | 36 / 249 µs: 4.5 % | 33 / 287 µs: 6.0 % |
//! | one finding joining an incident of 999 findings | 2.6 ms: 47 % | 2.7 ms: 58 % |
//! | a burst of 999 connected findings, per finding | 1.6 ms | 1.9 ms |
//! | `common_dependency`: key and provider / key and key | 1.8 / 3.3 µs | 1.7 / 3.7 µs |
//! | the topology | 12,629 nodes, 24,247 edges, about 15 MB | the same |
//!
//! Those two runs predate grouping by cached dependency sets and ranking capped at an
//! incident's first 64 findings (3a1a93f). One run after them, on 2026-12-04, with CI running
//! beside it (load average 2.6, so every time is inflated; read the ratios):
//!
//! | | after |
//! | --- | --- |
//! | first scrape, ingest alone / + learning | 28.5 ms / 265 ms on-CPU: 9.3x |
//! | steady scrape, ingest alone / with the topology | 11.6 ms / 12.2 ms: 1.05x |
//! | one finding, none open, no topology / with it | 59 / 119 µs: 0.48 % / 0.98 % of a scrape |
//! | one finding, 100 unconnected incidents open | 131 µs: 1.1 % |
//! | one finding joining an incident of 10 / 100 / 999 findings | 158 / 1,129 / 824 µs: 1.3 / 9.3 / 6.8 % |
//! | a burst of 999 connected findings, per finding | 962 µs (was 1.6 to 1.9 ms) |
//!
//! A join no longer grows with the incident's size past the ranking cap: 999 findings cost
//! less than 100 did in the same run (noise at that load), against 2.6 ms before.
//!
//! Diagnosis itself stays small (tens of microseconds, under 1 % of a scrape's ingest). Before
//! 3a1a93f, grouping grew with the findings open (one `common_dependency` per open finding,
//! N² for a burst of N: 999 took about 1.7 s in one step). Now a new finding is checked once
//! against each open incident's cached dependency set, and ranking reads an incident's first
//! 64 findings, so a join costs about a millisecond whatever the incident's size. Learning the
//! topology costs 9 to 12 times the first scrape's ingest (once per new series; nothing on
//! later scrapes).

mod incidents;
mod stack;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vigil_core::engine::{Command, Engine, Event, Record};
use vigil_core::topology::{NodeId, Topology};

use crate::store::thread_cpu_time;
use incidents::{cases, common_dependency_costs, run_case};
use stack::Stack;

/// The one-line description in the benchmark list.
pub const ABOUT: &str =
    "topology learning and grouping + diagnosis per incident (10k keys, 500 model groups)";

struct Options {
    n_keys: usize,
    n_groups: usize,
    n_reps: usize,
    n_scrapes: usize,
}

fn parse_options(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        n_keys: 10_000,
        n_groups: 500,
        n_reps: 15,
        n_scrapes: 20,
    };
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut value = || -> anyhow::Result<usize> {
            iter.next()
                .with_context(|| format!("`{arg}` needs a number"))?
                .parse()
                .with_context(|| format!("`{arg}` needs a number"))
        };
        match arg.as_str() {
            "--keys" => options.n_keys = value()?,
            "--groups" => options.n_groups = value()?,
            "--reps" => options.n_reps = value()?,
            "--scrapes" => options.n_scrapes = value()?,
            other => bail!(
                "unknown option `{other}` (options: --keys N, default 10000; --groups N, default \
                 500; --reps N, default 15; --scrapes N, default 20)"
            ),
        }
    }
    if options.n_keys == 0 || options.n_groups == 0 || options.n_reps == 0 {
        bail!("need at least 1 key, 1 model group and 1 repetition");
    }
    Ok(options)
}

/// The wall time of `work`.
/// Nothing answers inline: the benchmark's configs have no runbooks to authorize.
struct Unanswered;

impl vigil::journal::Answerer for Unanswered {
    fn answer(
        &mut self,
        _command: &Command,
        _now: vigil_core::Timestamp,
    ) -> Option<(Event, vigil_core::Timestamp)> {
        None
    }
}

/// Hands the engine `event` through the one step every driver uses (the architecture test
/// holds them to it), and returns its commands.
pub(crate) fn step(engine: &mut Engine, event: Event, now: vigil_core::Timestamp) -> Vec<Command> {
    vigil::journal::step_with(engine, &mut Unanswered, event, now)
        .handled
        .into_iter()
        .flat_map(|(_, commands)| commands)
        .collect()
}

fn timed<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let started = Instant::now();
    let result = work();
    (result, started.elapsed())
}

/// Makes the allocator pay now for a burst of small frees, so that a later step is not
/// charged for it. glibc defers the work: freed small chunks wait in its fast and unsorted
/// bins, and later requests sort them (at most 10,000 per request, and all the fast bins at
/// the first request of 1 KiB or more). After the first scrape, whose learning frees some
/// 500,000 small strings, that takes milliseconds, spread over the next requests; requests
/// of 4 KiB held at once drain it.
fn settle_allocator() {
    let held: Vec<Vec<u8>> = (0..256).map(|_| Vec::with_capacity(4096)).collect();
    drop(std::hint::black_box(held));
}

fn median(mut took: Vec<Duration>) -> Duration {
    took.sort_unstable();
    took.get(took.len() / 2).copied().unwrap_or_default()
}

fn median_of(mut values: Vec<f64>) -> f64 {
    values.sort_unstable_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(0.0)
}

fn ratio(numerator: Duration, denominator: Duration) -> f64 {
    numerator.as_secs_f64() / denominator.as_secs_f64().max(1e-12)
}

fn n_samples(event: &Event) -> usize {
    match event {
        Event::Scraped { samples, .. } => samples.len(),
        _ => 0,
    }
}

/// How many records of each kind the commands hold: (opened, joined, refused, topology grew).
fn tally(commands: &[Command]) -> [usize; 4] {
    let mut counts = [0; 4];
    for command in commands {
        let idx = match command {
            Command::Record(Record::IncidentOpened { .. }) => 0,
            Command::Record(Record::FindingJoined { .. }) => 1,
            Command::Record(Record::SeriesRefused { .. }) => 2,
            Command::Record(Record::TopologyGrew { .. }) => 3,
            _ => continue,
        };
        if let Some(count) = counts.get_mut(idx) {
            *count += 1;
        }
    }
    counts
}

/// The times of repeated runs of one step.
struct Runs {
    wall: Vec<Duration>,
    /// The sum of their on-CPU times, where Linux tells it.
    cpu: Option<Duration>,
}

impl Runs {
    fn new() -> Self {
        Runs {
            wall: Vec::new(),
            cpu: Some(Duration::ZERO),
        }
    }

    /// Runs `work`, adding its times.
    fn time<T>(&mut self, work: impl FnOnce() -> T) -> T {
        let cpu_before = thread_cpu_time();
        let (result, wall) = timed(work);
        let cpu = thread_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after.saturating_sub(before));
        self.wall.push(wall);
        self.cpu = self.cpu.zip(cpu).map(|(total, one)| total + one);
        result
    }

    /// The time to compare: the mean on-CPU time where Linux tells it (its clock ticks in
    /// milliseconds, but its errors average out over runs), else the median wall time.
    fn typical(&self) -> Duration {
        match self.cpu {
            Some(cpu) if !self.wall.is_empty() => cpu / self.wall.len() as u32,
            _ => median(self.wall.clone()),
        }
    }

    fn row(&self, what: &str, n_series: usize, baseline: Option<&Runs>) {
        let typical = self.typical();
        let ratio = baseline.map_or_else(String::new, |baseline| {
            format!("{:>7.2}x", ratio(typical, baseline.typical()))
        });
        println!(
            "  {what:<36}{:>10.2?} wall {:>10.2?} on-CPU {:>7.0} ns/series{ratio}",
            median(self.wall.clone()),
            typical,
            typical.as_secs_f64() * 1e9 / n_series.max(1) as f64,
        );
    }
}

/// Runs the benchmark with `args` (`--keys N`, `--groups N`, `--reps N`, `--scrapes N`).
pub fn run(args: &[String]) -> anyhow::Result<()> {
    let options = parse_options(args)?;
    let stack = Stack {
        n_keys: options.n_keys,
        n_groups: options.n_groups,
        n_providers: 20,
        n_teams: 200,
    };
    let first = stack.gateway_scrape(0);
    let n_series = n_samples(&first);
    println!(
        "diagnosis: {} keys over {} teams, {} model groups ({} deployments over {} providers, \
         {} fallbacks), 100 apps, 250 eval suites; {n_series} series per gateway scrape; \
         {} runs; load average {}",
        stack.n_keys,
        stack.n_teams,
        stack.n_groups,
        stack.n_all_deployments(),
        stack.n_providers,
        stack.n_fallbacks(),
        options.n_reps,
        std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|text| text.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "unknown".to_owned()),
    );

    // 1. The first scrape, which creates every series (and teaches the whole topology).
    let mut first_runs = [Runs::new(), Runs::new()];
    let mut ledger_bytes = 0;
    for rep in 0..options.n_reps {
        // Alternate which goes first, so neither always runs on a warmer machine.
        let order = if rep % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        for with_topology in order {
            let mut engine = Engine::new(stack.engine_config(with_topology)?);
            let Some(runs) = first_runs.get_mut(usize::from(with_topology)) else {
                continue;
            };
            // The allocator's deferred work for what the scrape freed is part of its cost.
            let event = first.clone();
            let commands = runs.time(|| {
                let commands = step(&mut engine, event, stack.at(0));
                settle_allocator();
                commands
            });
            let [_, _, n_refused, n_grew] = tally(&commands);
            if n_refused > 0 || n_grew != usize::from(with_topology) {
                bail!(
                    "the first scrape refused {n_refused} series and grew the topology {n_grew} times"
                );
            }
            for command in &commands {
                if let Command::Record(record @ Record::TopologyGrew { .. }) = command {
                    ledger_bytes = serde_json::to_vec(record)?.len();
                }
            }
        }
    }
    let [first_alone, first_learning] = &first_runs;
    println!(
        "\n1. learning the topology: the first scrape, which creates every series (median wall, mean on-CPU)"
    );
    first_alone.row("ingest alone (baseline)", n_series, None);
    first_learning.row(
        "ingest + learning the topology",
        n_series,
        Some(first_alone),
    );

    // 2. Steady scrapes: nothing new to learn.
    let mut engines = [
        Engine::new(stack.engine_config(false)?),
        Engine::new(stack.engine_config(true)?),
    ];
    for engine in &mut engines {
        step(engine, first.clone(), stack.at(0));
        settle_allocator();
    }
    let mut steady_runs = [Runs::new(), Runs::new()];
    for idx in 1..=options.n_scrapes.max(1) as i64 {
        let scrape = stack.gateway_scrape(idx);
        let order = if idx % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let (Some(engine), Some(runs)) = (engines.get_mut(which), steady_runs.get_mut(which))
            else {
                continue;
            };
            let event = scrape.clone();
            let commands = runs.time(|| step(engine, event, stack.at(idx)));
            if commands
                .iter()
                .any(|command| matches!(command, Command::Record(_)))
            {
                bail!("a steady scrape recorded something: {commands:?}");
            }
        }
    }
    let [steady_alone, steady_topology] = &steady_runs;
    println!(
        "\n2. a steady scrape (no new series: nothing to learn), {} scrapes",
        options.n_scrapes.max(1)
    );
    steady_alone.row("ingest alone (baseline)", n_series, None);
    steady_topology.row("ingest with the topology", n_series, Some(steady_alone));

    // 3. One more finding, with others open.
    let scrape_took = steady_topology.typical();
    println!(
        "\n3. opening an incident for one finding (grouping + diagnosis), median wall, against \
         one steady gateway scrape ({scrape_took:.2?} on-CPU)"
    );
    println!(
        "  {:<52}{:>10}{:>15}{:>25}",
        "findings already open", "one more", "% of a scrape", "in a burst, per finding"
    );
    for case in cases(&stack) {
        let n_reps = if case.n_others > 100 {
            options.n_reps.min(5)
        } else {
            options.n_reps
        };
        let result = run_case(&stack, &first, &case, n_reps)?;
        let burst = if case.n_others == 0 {
            "-".to_owned()
        } else {
            format!("{:.1} µs", result.burst_per_finding_us)
        };
        println!(
            "  {:<52}{:>8.1} µs{:>14.2}%{:>25}",
            case.label,
            result.one_more_us,
            result.one_more_us / (scrape_took.as_secs_f64() * 1e4).max(1e-12),
            burst
        );
    }

    let [_, engine] = &engines;
    let topology = engine.topology().context("the engine has a topology")?;
    common_dependency_costs(&stack, topology, options.n_keys);

    // 4. Size.
    let heap = estimate_heap(topology);
    println!(
        "\n4. the topology: {} nodes, {} edges; heap about {:.1} MB ({:.0} bytes per node); \
         the first scrape's `topology_grew` record: {:.1} MB of JSON",
        topology.n_nodes(),
        topology.n_edges(),
        heap as f64 / 1e6,
        heap as f64 / topology.n_nodes().max(1) as f64,
        ledger_bytes as f64 / 1e6,
    );
    Ok(())
}

/// An estimate of the topology's heap, from its public view (it keeps no count of its own).
///
/// The graph keeps three B-tree maps keyed by `NodeId` (its nodes with their facts, and each
/// node's outgoing and incoming edges as a `BTreeSet<(Relation, NodeId)>`), so a node's name
/// is stored once in `nodes`, once more in each adjacency map it has edges in, and once in
/// every edge entry at its other end. The estimate counts, per entry, the inline size of
/// key and value (`size_of`) plus the bytes of every string they own, taken as two-thirds
/// full B-tree nodes (so times 1.5); a node's edge set of at most 11 entries is one whole
/// B-tree leaf (capacity 11). Allocator rounding and B-tree internal nodes are left out: it
/// is an estimate to within perhaps a third, not a measurement.
fn estimate_heap(topology: &Topology) -> usize {
    use std::mem::size_of;
    use vigil_core::topology::{Node, Origin, Relation};
    const LEAF_CAPACITY: usize = 11;
    let entry = size_of::<(Relation, NodeId)>();
    let set_bytes = |n_entries: usize| {
        let n_leaves = (n_entries * 3 / 2).div_ceil(LEAF_CAPACITY).max(1);
        n_leaves * (LEAF_CAPACITY * entry + 16)
    };
    let mut bytes = 0_usize;
    for (id, node) in topology.nodes() {
        let owned = id.name.len()
            + node.alias.as_ref().map_or(0, String::len)
            + node.owner.as_ref().map_or(0, String::len)
            + match &node.origin {
                Origin::Declared => 0,
                Origin::Discovered { source, .. } => source.len(),
            };
        bytes += (size_of::<NodeId>() + size_of::<Node>()) * 3 / 2 + owned;
    }
    // Per node, its out-degree and in-degree; each edge entry holds the other end's name.
    let mut degrees: BTreeMap<NodeId, (usize, usize)> = BTreeMap::new();
    for edge in topology.edges() {
        bytes += 2 * (entry * 3 / 2) + edge.from.name.len() + edge.to.name.len();
        degrees.entry(edge.from).or_default().0 += 1;
        degrees.entry(edge.to).or_default().1 += 1;
    }
    let map_entry =
        size_of::<NodeId>() + size_of::<std::collections::BTreeSet<(Relation, NodeId)>>();
    for (id, (n_out, n_in)) in degrees {
        for degree in [n_out, n_in].into_iter().filter(|&degree| degree > 0) {
            // The map entry (its key owns a copy of the name) and the set's leaves, whose
            // entries were counted above only by their share of a two-thirds full node.
            bytes += map_entry * 3 / 2 + id.name.len();
            bytes += set_bytes(degree).saturating_sub(degree * entry * 3 / 2);
        }
    }
    bytes
}
