//! `authz`: Cedar authorization latency with the shipped policies and realistic requests.
//!
//! The requests are every case of `policies/tests/*.json` (keys with their team, deployments
//! with their provider, prompts, teams; allowed and denied, forward steps and compensations),
//! asked of the policy set in `policies/` exactly as the daemon asks: `Authorizer::authorize`,
//! which converts the request to Cedar entities, validates it against the schema and
//! evaluates. The baseline, measured in the same run and interleaved with it, is the same
//! schema with a single unconditional permit: the cost of conversion and validation with
//! almost no policy to evaluate. Latency is wall time per call, so the percentiles carry the
//! machine's noise; the ratio of the medians is the steadier number.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use vigil_core::authz::AuthzRequest;
use vigil_policy::{Authorizer, PolicyFile};

pub const ABOUT: &str = "Cedar authorization latency (p50, p99) with the shipped policies, against a one-permit baseline";

/// Rounds over the whole request set; each round asks every request once of each set.
const DEFAULT_ROUNDS: usize = 3000;

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut dir = PathBuf::from("policies");
    let mut rounds = DEFAULT_ROUNDS;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--dir" => dir = PathBuf::from(args.next().context("--dir needs a folder")?),
            "--rounds" => rounds = crate::number_after("--rounds", args.next())?,
            other => anyhow::bail!("unknown option `{other}` (use --dir DIR, --rounds N)"),
        }
    }
    let schema = read(&dir.join("vigil.cedarschema"))?;
    let mut policies = Vec::new();
    let mut requests: Vec<AuthzRequest> = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "cedar") {
            policies.push(read(&path)?);
        }
    }
    policies.sort_by(|a, b| a.path.cmp(&b.path));
    let tests_dir = dir.join("tests");
    let mut test_files: Vec<PathBuf> = std::fs::read_dir(&tests_dir)
        .with_context(|| format!("reading {}", tests_dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    test_files.sort();
    for path in &test_files {
        let cases: Vec<serde_json::Value> = serde_json::from_str(&read(path)?.text)
            .with_context(|| format!("{}: not a list of cases", path.display()))?;
        for case in cases {
            let request = case
                .get("request")
                .cloned()
                .with_context(|| format!("{}: a case without a request", path.display()))?;
            requests.push(
                serde_json::from_value(request)
                    .with_context(|| format!("{}: a malformed request", path.display()))?,
            );
        }
    }
    anyhow::ensure!(
        !requests.is_empty(),
        "no requests in {}",
        tests_dir.display()
    );
    let shipped = Authorizer::load(&schema, &policies).context("loading the shipped policies")?;
    let baseline = Authorizer::load(
        &schema,
        &[PolicyFile {
            path: "baseline.cedar".to_owned(),
            text: "@id(\"allow-everything\")\npermit (principal, action, resource);\n".to_owned(),
        }],
    )
    .context("loading the baseline policy")?;
    let n_allowed = requests
        .iter()
        .filter(|request| shipped.authorize(request).effect == vigil_core::authz::Effect::Allow)
        .count();
    println!(
        "authz: {} requests ({n_allowed} allowed, {} denied) from {}, {} policies (set {}), {rounds} rounds",
        requests.len(),
        requests.len() - n_allowed,
        tests_dir.display(),
        shipped.policy_ids().len(),
        shipped.policy_set_hash().get(..12).unwrap_or_default()
    );
    // Warm-up, then interleaved timing so that both sets see the same machine.
    for request in &requests {
        std::hint::black_box(shipped.authorize(request));
        std::hint::black_box(baseline.authorize(request));
    }
    let mut shipped_ns = Vec::with_capacity(requests.len() * rounds);
    let mut baseline_ns = Vec::with_capacity(requests.len() * rounds);
    for _ in 0..rounds {
        for request in &requests {
            shipped_ns.push(time(&shipped, request));
            baseline_ns.push(time(&baseline, request));
        }
    }
    let shipped_stats = Stats::of(&mut shipped_ns);
    let baseline_stats = Stats::of(&mut baseline_ns);
    println!(
        "{:<34} {:>9} {:>9} {:>9} {:>9}",
        "policy set", "p50 µs", "p99 µs", "p99.9 µs", "mean µs"
    );
    for (name, stats) in [
        ("one permit (baseline)", &baseline_stats),
        ("shipped policies", &shipped_stats),
    ] {
        println!(
            "{name:<34} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            stats.p50, stats.p99, stats.p999, stats.mean
        );
    }
    println!(
        "shipped / baseline: p50 {:.2}x, p99 {:.2}x; target p99 < 100 µs: {}",
        shipped_stats.p50 / baseline_stats.p50,
        shipped_stats.p99 / baseline_stats.p99,
        if shipped_stats.p99 < 100.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    Ok(())
}

fn time(authorizer: &Authorizer, request: &AuthzRequest) -> u64 {
    let started = Instant::now();
    std::hint::black_box(authorizer.authorize(std::hint::black_box(request)));
    u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Percentiles in microseconds.
struct Stats {
    p50: f64,
    p99: f64,
    p999: f64,
    mean: f64,
}

impl Stats {
    fn of(samples: &mut [u64]) -> Stats {
        samples.sort_unstable();
        let at = |q: f64| {
            let idx = ((samples.len() as f64 - 1.0) * q).round() as usize;
            samples.get(idx).copied().unwrap_or(0) as f64 / 1000.0
        };
        let total: u128 = samples.iter().map(|ns| u128::from(*ns)).sum();
        Stats {
            p50: at(0.5),
            p99: at(0.99),
            p999: at(0.999),
            mean: total as f64 / samples.len().max(1) as f64 / 1000.0,
        }
    }
}

fn read(path: &Path) -> anyhow::Result<PolicyFile> {
    Ok(PolicyFile {
        path: path.display().to_string(),
        text: std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?,
    })
}
