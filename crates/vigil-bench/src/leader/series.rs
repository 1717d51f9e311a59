//! Part 1 of `leader`: the most series one leader watches at 15 s on one core.
//!
//! Each size runs its own engine (the config of [`super::workload`]: five detectors per
//! gateway) through `--warmup` intervals (12), with the spike and anomaly detectors' warm-up
//! set 4 samples shorter so that they are past it (a run with the example's 20 samples and 26
//! intervals of warm-up stepped at the same cost, within noise), and then `--timed` timed
//! ones. Every interval, each gateway's scrape is parsed as the daemon's
//! scraper does it (decode, format, parse, keep the metrics the engine reads), stepped with
//! `journal::step` (Cedar answering), and recorded as the engine loop records it: a scrape
//! that issued no command waits in the open batch (`ScrapeBatcher::hold`, its encoding timed
//! here) and the batch is appended when it is due, in a transaction of its own; in the last
//! `--json-intervals` intervals each scrape is also appended as a JSON entry, as a session
//! with `ledger.scrape_batch_secs: 0` records it. Parse, step and encoding are on-CPU times
//! (`/proc/thread-self/schedstat`), appends wall times (they wait for the disk). A batch's
//! append (closing it included) is amortized over the scrapes it holds; the series
//! dictionary, stored once per session (and whenever the series change), is shown apart, and
//! so is nothing else: a gateway's first scrape, which grows the topology and so is recorded
//! whole, falls in the warm-up.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use vigil::journal::{ScrapeBatcher, ScrapeBatching};
use vigil_core::Timestamp;
use vigil_core::engine::{Engine, Event};
use vigil_core::exposition;
use vigil_core::signal::Sample;
use vigil_ledger::{Ledger, LedgerLocation, NewEntry};

use super::workload::{Burst, Gateway, INTERVAL_SECS, SERIES_PER_KEY, Setup, config_yaml};
use super::{Options, Schema, cpu_timed, lead, ms, thousands};

/// What an interval may cost to keep up with 50 % headroom.
const BUDGET: Duration = Duration::from_millis(INTERVAL_SECS as u64 * 1000 / 2);

/// A ledger the scrapes are appended to, and what its appends took.
struct Target {
    label: &'static str,
    ledger: Ledger,
    schema: Option<Schema>,
    /// The batches' appends (closing included), over the whole run.
    batches: Duration,
    /// The scrapes the closed batches held.
    batched_scrapes: u64,
    /// The appends of the steps that were not held (a scrape that issued a command), in the
    /// timed intervals.
    unheld: Duration,
    /// The JSON entries' building and appends, over the JSON intervals.
    json: Duration,
    /// The series dictionaries' blobs.
    dictionaries: Duration,
}

impl Target {
    async fn open(
        label: &'static str,
        location: LedgerLocation,
        schema: Option<Schema>,
    ) -> anyhow::Result<Target> {
        let mut ledger = Ledger::open(&location).await?;
        if schema.is_some() {
            lead(&mut ledger).await?;
        }
        Ok(Target {
            label,
            ledger,
            schema,
            batches: Duration::ZERO,
            batched_scrapes: 0,
            unheld: Duration::ZERO,
            json: Duration::ZERO,
            dictionaries: Duration::ZERO,
        })
    }

    async fn close(self) {
        self.ledger.close().await;
        if let Some(schema) = self.schema {
            schema.drop_now().await;
        }
    }
}

/// One size's times, per interval (all gateways).
struct Measured {
    n_series: usize,
    n_gateways: usize,
    parse: Duration,
    step: Duration,
    hold: Duration,
    /// Per target: its label, the batches' appends and the JSON appends, per interval.
    appends: Vec<(&'static str, Duration, Option<Duration>)>,
    dictionary_bytes: usize,
    /// The process's resident memory with the engine at this size, in MB.
    rss_mb: f64,
    /// Per target: the dictionary's blob, once.
    dictionaries: Vec<(&'static str, Duration)>,
}

pub(super) async fn run(options: &Options, dir: &Path) -> anyhow::Result<()> {
    println!(
        "\n1. series watched: gateways of {} LiteLLM-shaped series ({} keys x {SERIES_PER_KEY}, \
         5 detectors each) scraped every {INTERVAL_SECS} s; per interval, all gateways, the mean \
         of {} timed intervals after {} of warm-up, in ms",
        thousands(options.per_gateway as u64),
        thousands((options.per_gateway / SERIES_PER_KEY) as u64),
        options.timed,
        options.warmup
    );
    println!(
        "   parse (the baseline), step and encode on-CPU; appends wall, durable; compact = the \
         default batches (amortized), JSON = one entry per scrape"
    );
    println!(
        "  {:>8} {:>3} {:>6} {:<9} {:>8} {:>8} {:>7} {:>8} {:>9} {:>7} {:>6} {:>5} | {:>9} {:>9} {:>6}",
        "series",
        "gw",
        "RSS MB",
        "ledger",
        "parse",
        "step",
        "encode",
        "append",
        "total",
        "x parse",
        "% 15 s",
        "keeps",
        "JSON app.",
        "JSON tot.",
        "% 15 s",
    );
    let mut largest: Option<Measured> = None;
    for &n_series in &options.series {
        let measured = measure(options, dir, n_series).await?;
        print_rows(&measured);
        largest = Some(measured);
    }
    let Some(largest) = largest else {
        return Ok(());
    };
    for (label, dictionary) in &largest.dictionaries {
        println!(
            "  the series dictionary at {} series: {:.1} MB, stored once per session in {} ms ({label})",
            thousands(largest.n_series as u64),
            largest.dictionary_bytes as f64 / 1e6,
            ms(*dictionary)
        );
    }
    for (label, compact, json) in &largest.appends {
        let cost = largest.parse + largest.step + largest.hold + *compact;
        let json_cost = json.map(|json| largest.parse + largest.step + json);
        println!(
            "  implied maximum at {INTERVAL_SECS} s with 50 % headroom ({label}): {} series compact{}",
            thousands(implied_max(largest.n_series, cost)),
            json_cost.map_or_else(String::new, |cost| format!(
                ", {} as JSON",
                thousands(implied_max(largest.n_series, cost))
            )),
        );
    }
    Ok(())
}

/// The series that would cost [`BUDGET`] an interval if the cost grew linearly from `cost`
/// at `n_series`.
fn implied_max(n_series: usize, cost: Duration) -> u64 {
    (n_series as f64 * BUDGET.as_secs_f64() / cost.as_secs_f64().max(1e-9)) as u64
}

fn print_rows(measured: &Measured) {
    for (label, compact, json) in &measured.appends {
        let total = measured.parse + measured.step + measured.hold + *compact;
        let share = |cost: Duration| 100.0 * cost.as_secs_f64() / (INTERVAL_SECS as f64);
        let json_cells = json.map_or_else(
            || format!("{:>9} {:>9} {:>6}", "-", "-", "-"),
            |json| {
                let total = measured.parse + measured.step + json;
                format!("{:>9} {:>9} {:>5.1}%", ms(json), ms(total), share(total))
            },
        );
        println!(
            "  {:>8} {:>3} {:>6.0} {:<9} {:>8} {:>8} {:>7} {:>8} {:>9} {:>6.1}x {:>5.1}% {:>5} | {json_cells}",
            thousands(measured.n_series as u64),
            measured.n_gateways,
            measured.rss_mb,
            label,
            ms(measured.parse),
            ms(measured.step),
            ms(measured.hold),
            ms(*compact),
            ms(total),
            total.as_secs_f64() / measured.parse.as_secs_f64().max(1e-9),
            share(total),
            if total <= BUDGET { "yes" } else { "NO" },
        );
    }
}

/// The scrape event of gateway `source`'s exposition `text`, as the daemon's scraper makes it.
pub(super) fn scrape_event(
    source: &str,
    now: Timestamp,
    text: &str,
    metrics: &BTreeSet<String>,
) -> anyhow::Result<Event> {
    let decoded = exposition::decode(text.as_bytes());
    let (format, _) = exposition::choose_format(Some("text/plain; version=0.0.4"), &decoded.text);
    let parsed = decoded.parse(format);
    anyhow::ensure!(
        parsed.errors.is_empty(),
        "the benchmark's exposition has malformed lines: {:?}",
        parsed.errors.first()
    );
    let samples: Vec<Sample> = parsed
        .samples
        .iter()
        .filter(|sample| metrics.contains(&*sample.name))
        .map(|sample| Sample {
            name: sample.name.to_string(),
            labels: sample
                .labels
                .iter()
                .map(|(name, value)| (&**name, &**value))
                .collect(),
            value: sample.value,
            timestamp_ms: sample.timestamp_ms,
        })
        .collect();
    Ok(Event::Scraped {
        source: source.to_owned(),
        scraped_at: now,
        samples,
    })
}

async fn measure(options: &Options, dir: &Path, n_series: usize) -> anyhow::Result<Measured> {
    let keys_per_gateway = options.per_gateway / SERIES_PER_KEY;
    let n_gateways = n_series.div_ceil(keys_per_gateway * SERIES_PER_KEY);
    let mut gateways: Vec<Gateway> = (0..n_gateways)
        .map(|idx| Gateway::new(idx, idx * keys_per_gateway, keys_per_gateway))
        .collect();
    let runbooks = dir.join("no-runbooks");
    std::fs::create_dir_all(&runbooks).context("creating an empty runbooks folder")?;
    let config_path = dir.join(format!("series-{n_series}.yaml"));
    std::fs::write(
        &config_path,
        config_yaml(
            &gateways,
            &Setup {
                plain_names: false,
                warmup_samples: options.warmup.saturating_sub(4).max(1),
                runbooks_dir: &runbooks,
                ledger: &dir.join("unused.db"),
                admin_key_file: None,
            },
        ),
    )?;
    let bundle = vigil::bundle::load(&config_path)
        .map_err(|problems| anyhow::anyhow!("the benchmark config is invalid:\n{problems}"))?;
    let metrics: Vec<BTreeSet<String>> = gateways
        .iter()
        .map(|gateway| bundle.engine.metrics_for_source(&gateway.name))
        .collect();
    let mut engine = Engine::new(bundle.engine.clone());

    let mut compact = vec![
        Target::open(
            "sqlite",
            LedgerLocation::Sqlite {
                path: dir.join(format!("series-{n_series}-compact.db")),
            },
            None,
        )
        .await?,
    ];
    let mut json = vec![
        Target::open(
            "sqlite",
            LedgerLocation::Sqlite {
                path: dir.join(format!("series-{n_series}-json.db")),
            },
            None,
        )
        .await?,
    ];
    if let Some(url) = &options.postgres {
        for (targets, what) in [(&mut compact, "compact"), (&mut json, "json")] {
            let schema = Schema::new(url, &format!("s{n_series}_{what}"));
            targets.push(Target::open("postgres", schema.location(), Some(schema)).await?);
        }
    }

    let mut batcher = ScrapeBatcher::new(Some(ScrapeBatching { max_secs: 600 }));
    let n_intervals = options.warmup + options.timed;
    let json_from = n_intervals - options.json_intervals.min(options.timed);
    let (mut parse, mut step, mut hold) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut dictionary_bytes = 0;
    // The scrapes held in the open batch.
    let mut n_held = 0;
    for idx in 0..n_intervals {
        let now = Timestamp(Gateway::at_ms(idx as i64));
        let timed = idx >= options.warmup;
        for (gateway, metrics) in gateways.iter_mut().zip(&metrics) {
            let text = gateway.next_scrape(Burst::NONE);
            let (event, parse_cpu, _) =
                cpu_timed(|| scrape_event(&gateway.name, now, &text, metrics));
            drop(text);
            let event = event?;
            let (taken, step_cpu, _) =
                cpu_timed(|| vigil::journal::step(&mut engine, &bundle.authorizer, event, now));
            let (held, hold_cpu, _) = cpu_timed(|| batcher.hold(&taken.handled, now.0));
            if timed {
                parse += parse_cpu;
                step += step_cpu;
                hold += hold_cpu;
            }
            n_held += u64::from(held);
            if !held || batcher.is_due() {
                dictionary_bytes = append_batch(&mut batcher, &mut compact, n_held)
                    .await?
                    .max(dictionary_bytes);
                n_held = 0;
            }
            if !held {
                // The first scrape of a gateway issues commands (its series grow the
                // topology): recorded whole, once per session, so not timed.
                for target in &mut compact {
                    let started = Instant::now();
                    let entries = vigil::journal::step_entries(
                        &taken.handled,
                        target.ledger.len(),
                        now.0,
                        None,
                    )?;
                    target.ledger.append(&entries).await?;
                    if timed {
                        target.unheld += started.elapsed();
                    }
                }
            }
            if idx >= json_from {
                for target in &mut json {
                    let started = Instant::now();
                    let entries: Vec<NewEntry> = vigil::journal::step_entries(
                        &taken.handled,
                        target.ledger.len(),
                        now.0,
                        None,
                    )?;
                    target.ledger.append(&entries).await?;
                    target.json += started.elapsed();
                }
            }
        }
    }
    dictionary_bytes = append_batch(&mut batcher, &mut compact, n_held)
        .await?
        .max(dictionary_bytes);

    let rss_mb = resident_mb();
    drop(engine);
    let n_timed = options.timed as u32;
    let n_json = options.json_intervals.min(options.timed) as u32;
    let mut appends = Vec::new();
    let mut dictionaries = Vec::new();
    for (compact, json) in compact.into_iter().zip(json) {
        // A batch's cost per scrape it held, times the gateways' scrapes in an interval.
        let batched = compact.batches.as_secs_f64() * n_gateways as f64
            / compact.batched_scrapes.max(1) as f64;
        appends.push((
            compact.label,
            Duration::from_secs_f64(batched) + compact.unheld / n_timed,
            (n_json > 0).then(|| json.json / n_json),
        ));
        dictionaries.push((compact.label, compact.dictionaries));
        compact.close().await;
        json.close().await;
    }
    Ok(Measured {
        n_series: n_gateways * keys_per_gateway * SERIES_PER_KEY,
        n_gateways,
        parse: parse / n_timed,
        step: step / n_timed,
        hold: hold / n_timed,
        appends,
        dictionary_bytes,
        rss_mb,
        dictionaries,
    })
}

/// The process's resident memory (`VmRSS`), in MB; 0 where Linux does not tell it.
fn resident_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<f64>()
                        .ok()
                })
        })
        .map_or(0.0, |kb| kb / 1e3)
}

/// Closes the open batch (of `n_held` scrapes) and appends it to every target as the engine
/// loop does (its series blob first, when new); returns the blob's size (0 when none was
/// stored).
async fn append_batch(
    batcher: &mut ScrapeBatcher,
    targets: &mut [Target],
    n_held: u64,
) -> anyhow::Result<usize> {
    let started = Instant::now();
    let Some(closed) = batcher.close()? else {
        return Ok(0);
    };
    let closing = started.elapsed();
    let mut dictionary_bytes = 0;
    for target in targets {
        if let Some(series) = &closed.series {
            let started = Instant::now();
            target.ledger.put_blob(series).await?;
            target.dictionaries += started.elapsed();
            dictionary_bytes = series.len();
        }
        let started = Instant::now();
        target
            .ledger
            .append(std::slice::from_ref(&closed.entry))
            .await?;
        target.batches += closing + started.elapsed();
        target.batched_scrapes += n_held;
    }
    Ok(dictionary_bytes)
}
