//! Part 4 of `leader`: the ledger's size per day at realistic rates, on SQLite.
//!
//! Each component is written into a SQLite ledger of its own, the way the daemon records it,
//! and measured as the file after `VACUUM` (less an empty ledger's), then extrapolated:
//!
//! - scrapes of one gateway of 10,000 series ([`super::workload`]) every 15 s: as JSON, one
//!   entry per scrape (`--minutes` / 10 of them: every scrape costs the same), and compact, in
//!   batches of at most 600 s (the default), over `--minutes` and twice as long: the slope
//!   between the two is the cost per minute, the rest (the series dictionary, stored once per
//!   session) is paid once;
//! - eval pushes of one result each, stepped by the engine and appended one per transaction;
//! - incidents: every entry that names an incident in the ledgers of three shipped game days
//!   simulated with `vigil simulate --ledger` (`runaway-key`, `failed-fix`,
//!   `budget-exhaustion`: a key blocked and verified, a fix undone and paged, a key slowed
//!   before its budget runs out), measured as the file less the same file without them; and
//!   the scrapes an incident makes leave the batch (a scrape whose step issued a command is
//!   recorded whole, as JSON), counted there and priced at this gateway's JSON scrape.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use sqlx::{Connection as _, SqliteConnection};
use vigil::journal::{ScrapeBatcher, ScrapeBatching};
use vigil_core::Timestamp;
use vigil_core::engine::{Engine, Event};
use vigil_core::intake::{Pushed, parse_evals};
use vigil_ledger::{Ledger, LedgerLocation};

use super::series::scrape_event;
use super::workload::{Burst, Gateway, INTERVAL_SECS, SERIES_PER_KEY, Setup, config_yaml};
use super::{Options, thousands};

/// Series scraped (one gateway).
const N_SERIES: usize = 10_000;

/// The game days whose incidents are measured.
const SCENARIOS: [&str; 3] = ["runaway-key", "failed-fix", "budget-exhaustion"];

const DAY_SECS: f64 = 86_400.0;

pub(super) async fn run(options: &Options, dir: &Path) -> anyhow::Result<()> {
    let scrapes_per_day = DAY_SECS / INTERVAL_SECS as f64;
    println!(
        "\n4. ledger size per day: {} series every {INTERVAL_SECS} s, {} eval pushes/s, {} \
         incidents/day; SQLite files after VACUUM, extrapolated",
        thousands(N_SERIES as u64),
        options.pushes_per_sec,
        options.incidents_per_day
    );
    let gateway = Gateway::new(0, 0, N_SERIES / SERIES_PER_KEY);
    let runbooks = dir.join("no-runbooks");
    std::fs::create_dir_all(&runbooks)?;
    let config_path = dir.join("size.yaml");
    std::fs::write(
        &config_path,
        config_yaml(
            std::slice::from_ref(&gateway),
            &Setup {
                plain_names: false,
                warmup_samples: 20,
                runbooks_dir: &runbooks,
                ledger: &dir.join("unused.db"),
                admin_key_file: None,
            },
        ),
    )?;
    let bundle = vigil::bundle::load(&config_path)
        .map_err(|problems| anyhow::anyhow!("the benchmark config is invalid:\n{problems}"))?;
    let metrics = bundle.engine.metrics_for_source(&gateway.name);
    let empty = empty_size(dir).await?;

    // Scrapes as JSON: every scrape costs the same, so a few tell the day.
    let n_json = (options.minutes * 60 / INTERVAL_SECS as usize / 10).max(2);
    let json_db = dir.join("size-json.db");
    let mut ledger = open(&json_db).await?;
    let mut json_gateway = gateway.clone();
    for idx in 0..n_json {
        let now = Timestamp(Gateway::at_ms(idx as i64));
        let text = json_gateway.next_scrape(Burst::NONE);
        let event = scrape_event(&gateway.name, now, &text, &metrics)?;
        let entries =
            vigil::journal::step_entries(&[(event, Vec::new())], ledger.len(), now.0, None)?;
        ledger.append(&entries).await?;
    }
    ledger.close().await;
    let json_per_scrape =
        (vacuumed(&json_db, None).await?.saturating_sub(empty)) as f64 / n_json as f64;

    // Compact: two windows, the second twice the first; the slope is the cost per scrape.
    let compact_db = dir.join("size-compact.db");
    let mut ledger = open(&compact_db).await?;
    let mut batcher = ScrapeBatcher::new(Some(ScrapeBatching { max_secs: 600 }));
    let n_window = options.minutes * 60 / INTERVAL_SECS as usize;
    let mut compact_gateway = gateway.clone();
    let mut sizes = Vec::new();
    for idx in 0..2 * n_window {
        let now = Timestamp(Gateway::at_ms(idx as i64));
        let text = compact_gateway.next_scrape(Burst::NONE);
        let event = scrape_event(&gateway.name, now, &text, &metrics)?;
        let held = batcher.hold(&[(event, Vec::new())], now.0);
        anyhow::ensure!(held, "a scrape that issued no command is held");
        let end_of_window = idx + 1 == n_window || idx + 1 == 2 * n_window;
        if (batcher.is_due() || end_of_window)
            && let Some(closed) = batcher.close()?
        {
            if let Some(series) = &closed.series {
                ledger.put_blob(series).await?;
            }
            ledger.append(std::slice::from_ref(&closed.entry)).await?;
        }
        if end_of_window {
            ledger.close().await;
            sizes.push(vacuumed(&compact_db, None).await?.saturating_sub(empty));
            ledger = open(&compact_db).await?;
        }
    }
    ledger.close().await;
    let [first, second] = *sizes.as_slice() else {
        anyhow::bail!("two windows measured");
    };
    let compact_per_scrape = second.saturating_sub(first) as f64 / n_window as f64;
    let compact_once = first as f64 - compact_per_scrape * n_window as f64;

    // Pushes.
    let n_pushes = (options.pushes_per_sec * 60 * 5).clamp(100, 6_000);
    let pushes_db = dir.join("size-pushes.db");
    let mut ledger = open(&pushes_db).await?;
    let mut engine = Engine::new(bundle.engine.clone());
    for idx in 0..n_pushes {
        let now =
            Timestamp(Gateway::at_ms(0) + (idx * 1000 / options.pushes_per_sec.max(1)) as i64);
        let body = serde_json::json!({"results": [{
            "suite": format!("suite-{}", idx % 25), "case": format!("case-{idx}"),
            "passed": idx % 17 != 0, "model": "gpt-4o", "prompt_name": "support-answer",
            "prompt_version": "v12", "score": 0.5 + (idx % 50) as f64 / 100.0
        }]})
        .to_string();
        let batch = parse_evals(body.as_bytes()).map_err(|error| anyhow::anyhow!("{error}"))?;
        let event = Event::Pushed {
            payload: Pushed::Evals(batch),
        };
        let taken = vigil::journal::step(&mut engine, &bundle.authorizer, event, now);
        let entries = vigil::journal::step_entries(&taken.handled, ledger.len(), now.0, None)?;
        ledger.append(&entries).await?;
    }
    ledger.close().await;
    let per_push =
        (vacuumed(&pushes_db, None).await?.saturating_sub(empty)) as f64 / n_pushes as f64;

    let incidents = incident_bytes(dir).await?;
    // An incident's records, and the scrapes it makes leave the batch, at this gateway's size.
    let per_incident = incidents.records + incidents.whole_scrapes * json_per_scrape;

    let scrapes_json_day = json_per_scrape * scrapes_per_day;
    let scrapes_compact_day = compact_once + compact_per_scrape * scrapes_per_day;
    let pushes_day = per_push * options.pushes_per_sec as f64 * DAY_SECS;
    // With JSON scrapes every scrape is whole already: an incident adds its records only.
    let incidents_day_json = incidents.records * options.incidents_per_day as f64;
    let incidents_day = per_incident * options.incidents_per_day as f64;
    let gb = |bytes: f64| format!("{:.2} GB", bytes / 1e9);
    println!(
        "  {:<37} {:<44} {:>28} {:>9}",
        "component", "measured", "on disk", "per day"
    );
    println!(
        "  {:<37} {:<44} {:>28} {:>9}",
        "scrapes, JSON (scrape_batch_secs: 0)",
        format!(
            "{n_json} scrapes, {} samples",
            thousands((n_json * N_SERIES) as u64)
        ),
        format!("{:.1} B/sample", json_per_scrape / N_SERIES as f64),
        gb(scrapes_json_day)
    );
    println!(
        "  {:<37} {:<44} {:>28} {:>9}",
        "scrapes, compact (the default)",
        format!(
            "{} and {} min, {} samples",
            options.minutes,
            2 * options.minutes,
            thousands((2 * n_window * N_SERIES) as u64)
        ),
        format!(
            "{:.2} B/sample + {:.1} MB once",
            compact_per_scrape / N_SERIES as f64,
            compact_once.max(0.0) / 1e6
        ),
        gb(scrapes_compact_day)
    );
    println!(
        "  {:<37} {:<44} {:>28} {:>9}",
        "eval pushes, one result each",
        format!("{} pushes", thousands(n_pushes as u64)),
        format!("{per_push:.0} B/push"),
        gb(pushes_day)
    );
    println!(
        "  {:<37} {:<44} {:>28} {:>9}",
        "incidents",
        format!(
            "{} of {} game days: {:.1} kB, {:.1} whole scrapes",
            incidents.n_incidents,
            SCENARIOS.len(),
            incidents.records / 1e3,
            incidents.whole_scrapes
        ),
        format!("{:.1} MB/incident compact", per_incident / 1e6),
        gb(incidents_day)
    );
    println!(
        "  total: {} a day with JSON scrapes, {} with compact scrapes ({:.1}x smaller); pushes are {:.0} % of the compact total",
        gb(scrapes_json_day + pushes_day + incidents_day_json),
        gb(scrapes_compact_day + pushes_day + incidents_day),
        (scrapes_json_day + pushes_day + incidents_day_json)
            / (scrapes_compact_day + pushes_day + incidents_day).max(1.0),
        100.0 * pushes_day / (scrapes_compact_day + pushes_day + incidents_day).max(1.0)
    );
    Ok(())
}

async fn open(path: &Path) -> anyhow::Result<Ledger> {
    Ok(Ledger::open(&LedgerLocation::Sqlite {
        path: path.to_path_buf(),
    })
    .await?)
}

/// The size of an empty ledger's file after `VACUUM`.
async fn empty_size(dir: &Path) -> anyhow::Result<u64> {
    let path = dir.join("size-empty.db");
    open(&path).await?.close().await;
    vacuumed(&path, None).await
}

/// The size of a copy of the closed SQLite ledger `db` after `VACUUM`, once `delete` (a
/// statement) has run on it, if given.
async fn vacuumed(db: &Path, delete: Option<&'static str>) -> anyhow::Result<u64> {
    let copy: PathBuf = db.with_extension("vacuumed.db");
    std::fs::copy(db, &copy).with_context(|| format!("copying {}", db.display()))?;
    let mut connection = SqliteConnection::connect(&format!("sqlite://{}", copy.display())).await?;
    if let Some(delete) = delete {
        sqlx::query(delete).execute(&mut connection).await?;
    }
    sqlx::query("VACUUM").execute(&mut connection).await?;
    connection.close().await?;
    let size = std::fs::metadata(&copy)?.len();
    std::fs::remove_file(&copy)?;
    Ok(size)
}

/// The bytes on disk of every entry that names an incident, and the scrapes recorded whole,
/// per incident, in the shipped game days of [`SCENARIOS`].
async fn incident_bytes(dir: &Path) -> anyhow::Result<IncidentBytes> {
    let scenarios = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/scenarios");
    let (mut bytes, mut n_incidents, mut n_whole) = (0_u64, 0_u64, 0_u64);
    for name in SCENARIOS {
        let db = dir.join(format!("size-{name}.db"));
        let code = vigil::commands::simulate::run(&vigil::commands::simulate::SimulateArgs {
            scenario: scenarios.join(format!("{name}.yaml")),
            json: false,
            check: true,
            ledger: Some(LedgerLocation::Sqlite { path: db.clone() }),
            quiet: true,
        })
        .await?;
        anyhow::ensure!(
            code == std::process::ExitCode::SUCCESS,
            "the game day {name} did not go as expected"
        );
        let mut connection =
            SqliteConnection::connect(&format!("sqlite://{}", db.display())).await?;
        let n: i64 = sqlx::query_scalar(
            "SELECT count(DISTINCT incident_id) FROM ledger_entries WHERE incident_id IS NOT NULL",
        )
        .fetch_one(&mut connection)
        .await?;
        // Scrapes that issued a command leave the batch and are recorded whole, as JSON.
        let whole: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM ledger_entries WHERE kind = 'event' \
             AND payload LIKE '{\"event\":{\"samples\":%'",
        )
        .fetch_one(&mut connection)
        .await?;
        n_whole += u64::try_from(whole).unwrap_or_default();
        connection.close().await?;
        let whole = vacuumed(&db, None).await?;
        let without = vacuumed(
            &db,
            Some("DELETE FROM ledger_entries WHERE incident_id IS NOT NULL"),
        )
        .await?;
        bytes += whole.saturating_sub(without);
        n_incidents += u64::try_from(n).unwrap_or_default();
    }
    Ok(IncidentBytes {
        records: bytes as f64 / n_incidents.max(1) as f64,
        whole_scrapes: n_whole as f64 / n_incidents.max(1) as f64,
        n_incidents,
    })
}

/// What an incident adds to the ledger.
struct IncidentBytes {
    /// The bytes of the entries that name it, on disk.
    records: f64,
    /// The scrapes recorded whole (as JSON) because they issued a command, per incident.
    whole_scrapes: f64,
    n_incidents: u64,
}
