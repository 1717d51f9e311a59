//! Part 3 of `leader`: incidents per minute when many keys run away at once.
//!
//! One gateway of `--keys` keys (the config of [`super::workload`], detectors named as in
//! `examples/vigil.yaml` so that the shipped policies apply) and two runbooks: the shipped
//! `block-runaway-key` and a copy of `slow-key-before-budget-runs-out` whose hourly run limit
//! is raised. The storm brake and the global concurrency limit are out of the way (as in the
//! `diagnosis` benchmark), so every incident takes the ordinary path.
//!
//! Two engines see the same 22 scrapes of warm-up (their batches then appended, untimed);
//! then, for [`BURST_SCRAPES`] scrapes, the first K keys of one of them run away, in one of
//! two ways: `tokens`, 30 times their tokens (and so their spend): the token-spike detector
//! fires for each, and a few scrapes later the budget runway; `spend`, the same tokens at 30
//! times the price (a key moved to a dearer model): only the budget runway fires. What the
//! engine then does is what it does in production (the config has the default topology):
//! findings that share a dependency (the same key, the keys' model) join one incident, which
//! pages once; a threshold breach of a key's runway is slowed by the runbook once Cedar
//! allows it (asked inline). Every step is recorded as the engine loop records it: a scrape
//! that issued no command waits in the batch, any other step closes the batch and is
//! appended at once (its scrape coded as a batch of its own), durably; after the burst both
//! batches are closed
//! and appended (timed). The cost of the findings and incidents is the bursting engine's
//! steps and appends less the twin's, which steps the same scrapes with nothing running
//! away (the baseline).

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use vigil::journal::{ScrapeBatcher, ScrapeBatching};
use vigil_core::Timestamp;
use vigil_core::authz::Effect;
use vigil_core::engine::{Command, Engine, Event, Record};
use vigil_ledger::{Ledger, LedgerLocation};
use vigil_policy::Authorizer;

use super::workload::{Burst, Gateway, Setup, config_yaml};
use super::{Options, Schema, cpu_timed, lead, ms, thousands};

/// Scrapes of warm-up, past the spike detector's 20 samples.
const WARMUP_SCRAPES: usize = 22;

/// Scrapes while the keys run away: the spike fires at the second, the runway a few later.
const BURST_SCRAPES: usize = 8;

/// How much more the runaway keys burn.
const FACTOR: f64 = 30.0;

/// How keys run away.
#[derive(Clone, Copy, Debug)]
enum Kind {
    /// More tokens (and so more spend).
    Tokens,
    /// The same tokens at a higher price.
    Spend,
}

impl Kind {
    fn burst(self, n_keys: usize) -> Burst {
        match self {
            Kind::Tokens => Burst {
                n_keys,
                tokens: FACTOR,
                price: 1.0,
            },
            Kind::Spend => Burst {
                n_keys,
                tokens: 1.0,
                price: FACTOR,
            },
        }
    }

    fn label(self) -> &'static str {
        match self {
            Kind::Tokens => "tokens",
            Kind::Spend => "spend",
        }
    }
}

/// `slow-key-before-budget-runs-out` as shipped, with its hourly run limit raised.
const SLOW_KEY_RUNBOOK: &str = r#"id: slow-key-before-budget-runs-out
description: Lower a key's rpm limit when its budget would run out within a day.
owner: finops
trigger:
  hypothesis: threshold_breach
  detectors: [key-budget-runway]
mode: autonomous
trust: reviewed
steps:
  - id: lower-rpm
    action: litellm.update_key
    params:
      key: "{{ incident.key }}"
      rpm_limit: "20"
    compensation:
      action: litellm.restore_key
      params:
        key: "{{ incident.key }}"
verification:
  check: finding_clears
  within_secs: 3600
guardrails:
  max_attempts_per_incident: 1
  cooldown_per_target_secs: 3600
  max_runs_per_hour: 100000
"#;

/// What one engine did and cost over the burst.
#[derive(Default)]
struct Tally {
    step_cpu: Duration,
    append_wall: Duration,
    n_findings: usize,
    n_opened: usize,
    n_allowed: usize,
    n_denied: usize,
    n_executed: usize,
    n_paged: usize,
    n_entries: u64,
    /// Scrapes recorded at once (each a batch of its own), having issued a command.
    n_whole_scrapes: usize,
}

impl Tally {
    fn count(&mut self, handled: &[(Event, Vec<Command>)]) {
        for (event, commands) in handled {
            if let Event::AuthorizationDecided { decision, .. } = event {
                match decision.effect {
                    Effect::Allow => self.n_allowed += 1,
                    Effect::Deny => self.n_denied += 1,
                }
            }
            for command in commands {
                match command {
                    Command::Record(Record::IncidentOpened { .. }) => self.n_opened += 1,
                    Command::Record(Record::FindingRaised { .. }) => self.n_findings += 1,
                    Command::Execute { .. } => self.n_executed += 1,
                    Command::Page { .. } => self.n_paged += 1,
                    _ => {}
                }
            }
        }
    }

    fn cost(&self) -> Duration {
        self.step_cpu + self.append_wall
    }
}

/// An engine, its gateway and its ledger, recording as the engine loop does.
struct Driver {
    engine: Engine,
    gateway: Gateway,
    ledger: Ledger,
    batcher: ScrapeBatcher,
    schema: Option<Schema>,
}

impl Driver {
    /// Steps scrape `idx` of the gateway, with `burst` running away, and records it; adds its
    /// costs to `tally` when given.
    async fn scrape(
        &mut self,
        authorizer: &Authorizer,
        metrics: &BTreeSet<String>,
        idx: usize,
        burst: Burst,
        tally: Option<&mut Tally>,
    ) -> anyhow::Result<()> {
        let now = Timestamp(Gateway::at_ms(idx as i64));
        let text = self.gateway.next_scrape(burst);
        let event = super::series::scrape_event(&self.gateway.name, now, &text, metrics)?;
        drop(text);
        let (taken, step_cpu, _) =
            cpu_timed(|| vigil::journal::step(&mut self.engine, authorizer, event, now));
        let started = Instant::now();
        let held = self.batcher.hold(&taken.handled, now.0);
        let mut n_entries = 0;
        if !held || self.batcher.is_due() {
            n_entries += self.append_batch().await?;
        }
        if !held {
            // As the engine loop records it: the scrape coded as a batch of its own.
            let coded = self.batcher.code_scrape(&taken.handled, now.0)?;
            let mut entries =
                vigil::journal::step_entries(&taken.handled, self.ledger.len(), now.0, None)?;
            if let (Some(coded), Some(first)) = (coded, entries.first_mut()) {
                if let Some(series) = &coded.series {
                    self.ledger.put_blob(series).await?;
                }
                *first = coded.entry;
            }
            self.ledger.append(&entries).await?;
            n_entries += entries.len() as u64;
        }
        if let Some(tally) = tally {
            tally.n_whole_scrapes += usize::from(!held);
            tally.step_cpu += step_cpu;
            tally.append_wall += started.elapsed();
            tally.n_entries += n_entries;
            tally.count(&taken.handled);
        }
        Ok(())
    }

    /// Closes and appends the open batch, its series blob first when new; returns the
    /// entries appended.
    async fn append_batch(&mut self) -> anyhow::Result<u64> {
        let Some(closed) = self.batcher.close()? else {
            return Ok(0);
        };
        if let Some(series) = &closed.series {
            self.ledger.put_blob(series).await?;
        }
        self.ledger
            .append(std::slice::from_ref(&closed.entry))
            .await?;
        Ok(1)
    }

    /// Appends the open batch, adding the time to `tally` when given.
    async fn flush(&mut self, tally: Option<&mut Tally>) -> anyhow::Result<()> {
        let started = Instant::now();
        let n_entries = self.append_batch().await?;
        if let Some(tally) = tally {
            tally.append_wall += started.elapsed();
            tally.n_entries += n_entries;
        }
        Ok(())
    }

    async fn close(self) {
        self.ledger.close().await;
        if let Some(schema) = self.schema {
            schema.drop_now().await;
        }
    }
}

const HEADER: [&str; 16] = [
    "kind",
    "K",
    "ledger",
    "findings",
    "incidents",
    "allow",
    "deny",
    "actions",
    "pages",
    "entries",
    "at once",
    "burst ms",
    "base ms",
    "ms/finding",
    "findings/min",
    "incidents/min",
];

fn row(cells: &[String]) {
    let widths = [6, 5, 9, 8, 9, 5, 5, 7, 5, 7, 7, 9, 9, 10, 12, 13];
    let mut line = String::from(" ");
    for (cell, width) in cells.iter().zip(widths) {
        line.push_str(&format!(" {cell:>width$}"));
    }
    println!("{line}");
}

pub(super) async fn run(options: &Options, dir: &Path) -> anyhow::Result<()> {
    println!(
        "\n3. incidents per minute: K of {} keys of one gateway run away at once for \
         {BURST_SCRAPES} scrapes ({FACTOR}x their tokens, or their spend); opened, diagnosed, \
         authorized by Cedar inline and recorded durably; against a twin engine stepping the \
         same scrapes with nothing running away (the baseline); on-CPU steps plus wall appends",
        thousands(options.keys as u64)
    );
    row(&HEADER.map(str::to_owned));
    let runbooks = dir.join("incident-runbooks");
    std::fs::create_dir_all(&runbooks)?;
    let shipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../runbooks/block-runaway-key.yaml");
    std::fs::copy(&shipped, runbooks.join("block-runaway-key.yaml"))
        .with_context(|| format!("copying {}", shipped.display()))?;
    std::fs::write(runbooks.join("slow-key.yaml"), SLOW_KEY_RUNBOOK)?;
    let config_path = dir.join("incidents.yaml");
    let gateway = Gateway::new(0, 0, options.keys);
    let key_file = dir.join("master.key");
    std::fs::write(&key_file, "sk-bench-never-used\n")?;
    std::fs::write(
        &config_path,
        config_yaml(
            std::slice::from_ref(&gateway),
            &Setup {
                plain_names: true,
                warmup_samples: 20,
                runbooks_dir: &runbooks,
                ledger: &dir.join("unused.db"),
                admin_key_file: Some(&key_file),
            },
        ),
    )?;
    let mut bundle = vigil::bundle::load(&config_path)
        .map_err(|problems| anyhow::anyhow!("the benchmark config is invalid:\n{problems}"))?;
    bundle.engine.limits.max_concurrent_runs = usize::MAX;
    bundle.engine.limits.storm_max_incidents = usize::MAX;
    let metrics = bundle.engine.metrics_for_source(&gateway.name);

    let mut ledgers = vec!["sqlite"];
    if options.postgres.is_some() {
        ledgers.push("postgres");
    }
    for kind in [Kind::Tokens, Kind::Spend] {
        for &n_running_away in &options.runaway {
            for &label in &ledgers {
                let mut drivers = Vec::new();
                for twin in ["burst", "baseline"] {
                    let what = format!("{}{n_running_away}_{twin}", kind.label());
                    let (location, schema) = match (label, &options.postgres) {
                        ("postgres", Some(url)) => {
                            let schema = Schema::new(url, &what);
                            (schema.location(), Some(schema))
                        }
                        _ => (
                            LedgerLocation::Sqlite {
                                path: dir.join(format!("incidents-{what}.db")),
                            },
                            None,
                        ),
                    };
                    let mut ledger = Ledger::open(&location).await?;
                    if schema.is_some() {
                        lead(&mut ledger).await?;
                    }
                    drivers.push(Driver {
                        engine: Engine::new(bundle.engine.clone()),
                        gateway: gateway.clone(),
                        ledger,
                        batcher: ScrapeBatcher::new(Some(ScrapeBatching { max_secs: 600 })),
                        schema,
                    });
                }
                let measured = burst(
                    &bundle.authorizer,
                    &metrics,
                    &mut drivers,
                    kind.burst(n_running_away),
                )
                .await;
                for driver in drivers {
                    driver.close().await;
                }
                let (bursting, baseline) = measured?;
                let extra = bursting.cost().saturating_sub(baseline.cost());
                let per_minute =
                    |n: usize| thousands((60.0 * n as f64 / extra.as_secs_f64().max(1e-9)) as u64);
                row(&[
                    kind.label().to_owned(),
                    n_running_away.to_string(),
                    label.to_owned(),
                    bursting.n_findings.to_string(),
                    bursting.n_opened.to_string(),
                    bursting.n_allowed.to_string(),
                    bursting.n_denied.to_string(),
                    bursting.n_executed.to_string(),
                    bursting.n_paged.to_string(),
                    bursting.n_entries.to_string(),
                    bursting.n_whole_scrapes.to_string(),
                    ms(bursting.cost()),
                    ms(baseline.cost()),
                    ms(extra / bursting.n_findings.max(1) as u32),
                    per_minute(bursting.n_findings),
                    per_minute(bursting.n_opened),
                ]);
            }
        }
    }
    Ok(())
}

/// Warms both drivers up, then runs `runaway` on the first; returns the tallies of the burst
/// and of the baseline.
async fn burst(
    authorizer: &Authorizer,
    metrics: &BTreeSet<String>,
    drivers: &mut [Driver],
    runaway: Burst,
) -> anyhow::Result<(Tally, Tally)> {
    let [bursting, baseline] = drivers else {
        anyhow::bail!("two drivers expected");
    };
    for idx in 0..WARMUP_SCRAPES {
        bursting
            .scrape(authorizer, metrics, idx, Burst::NONE, None)
            .await?;
        baseline
            .scrape(authorizer, metrics, idx, Burst::NONE, None)
            .await?;
    }
    // The warm-up's batch (and the series dictionary) is appended before timing starts.
    bursting.flush(None).await?;
    baseline.flush(None).await?;
    let (mut burst_tally, mut baseline_tally) = (Tally::default(), Tally::default());
    for idx in WARMUP_SCRAPES..WARMUP_SCRAPES + BURST_SCRAPES {
        // Alternate which goes first, so neither always runs on a warmer machine.
        let order = if idx % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            if which == 0 {
                bursting
                    .scrape(authorizer, metrics, idx, runaway, Some(&mut burst_tally))
                    .await?;
            } else {
                baseline
                    .scrape(
                        authorizer,
                        metrics,
                        idx,
                        Burst::NONE,
                        Some(&mut baseline_tally),
                    )
                    .await?;
            }
        }
    }
    bursting.flush(Some(&mut burst_tally)).await?;
    baseline.flush(Some(&mut baseline_tally)).await?;
    Ok((burst_tally, baseline_tally))
}
