//! `vigil demo`: the whole loop on loopback, in one process, in well under a minute.
//!
//! It starts a simulated LiteLLM gateway (vigil-sim) that speaks LiteLLM's real metric names
//! and admin API, drives real HTTP traffic through it for four keys, and runs the real daemon
//! against it with an ordinary config (`examples/demo/vigil.yaml`), the shipped policies and
//! the shipped runbook (with a shorter verification window). Then one key runs away.

mod timeline;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigil_ledger::{Ledger, LedgerLocation};
use vigil_sim::{
    GatewayConfig, KeyTraffic, PagerSink, SimGateway, SimKey, SimModel, TrafficDriver,
};

use crate::assets;
use crate::bundle::{self, TextFile};
use crate::daemon::{Clock, Daemon, DaemonOptions};
use crate::journal::replay;
use timeline::Outcome;

/// A demo story.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// A key runs away; vigil blocks it, verifies the burn stopped, and resolves with no page.
    RunawayKey,
    /// A key runs away but the gateway ignores the block: vigil undoes it and pages once.
    FailedFix,
}

/// When the runaway starts: after the detector's warm-up.
const RUNAWAY_AFTER: Duration = Duration::from_secs(10);

/// How long the demo waits for the incident to end once the key runs away.
const OUTCOME_DEADLINE: Duration = Duration::from_secs(40);

/// The key that runs away.
const RUNAWAY_ALIAS: &str = "checkout-agent";

struct DemoKey {
    alias: &'static str,
    team: &'static str,
    model: &'static str,
    requests_per_sec: f64,
    prompt_chars: usize,
    max_tokens: u32,
}

const KEYS: [DemoKey; 4] = [
    DemoKey {
        alias: "support-bot",
        team: "support",
        model: "gpt-4o-mini",
        requests_per_sec: 3.0,
        prompt_chars: 1200,
        max_tokens: 250,
    },
    DemoKey {
        alias: "search-rag",
        team: "search",
        model: "gpt-4o",
        requests_per_sec: 2.0,
        prompt_chars: 6000,
        max_tokens: 300,
    },
    DemoKey {
        alias: RUNAWAY_ALIAS,
        team: "commerce",
        model: "gpt-4o",
        requests_per_sec: 2.0,
        prompt_chars: 2000,
        max_tokens: 200,
    },
    DemoKey {
        alias: "payments-prod",
        team: "finance",
        model: "gpt-4o-mini",
        requests_per_sec: 1.0,
        prompt_chars: 800,
        max_tokens: 150,
    },
];

/// Runs one demo scenario; the exit code says whether it behaved as designed.
pub async fn run(
    scenario: Scenario,
    db: &Path,
    assistant: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let assistant = match assistant {
        Some(name) => Some(vigil_sim::Play::parse(name).ok_or_else(|| {
            let names: Vec<&str> = vigil_sim::Play::ALL
                .iter()
                .map(|play| play.as_str())
                .collect();
            anyhow::anyhow!("--assistant `{name}` is not one of {}", names.join(", "))
        })?),
        None => None,
    };
    let started = Instant::now();
    crate::journal::remove_sqlite_ledger(db)?;
    let shown_db = db.display().to_string();
    let db = absolute(db)?;
    let work_dir = std::env::temp_dir().join(format!("vigil-demo-{}", std::process::id()));
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    let result = run_in(scenario, &db, &shown_db, &work_dir, started, assistant).await;
    let _ = std::fs::remove_dir_all(&work_dir);
    result
}

async fn run_in(
    scenario: Scenario,
    db: &Path,
    shown_db: &str,
    work_dir: &Path,
    started: Instant,
    assistant: Option<vigil_sim::Play>,
) -> anyhow::Result<ExitCode> {
    let cancel = CancellationToken::new();
    let master_key = random_key("sk-vigil-demo-")?;
    let key_file = work_dir.join("litellm-master-key");
    crate::private_file::create(&key_file, &master_key)?;

    let raw_keys: Vec<String> = KEYS
        .iter()
        .map(|key| random_key(&format!("sk-{}-", key.alias)))
        .collect::<anyhow::Result<_>>()?;
    let gateway = SimGateway::start(
        bind().await?,
        GatewayConfig {
            master_key,
            keys: KEYS
                .iter()
                .zip(&raw_keys)
                .map(|(key, raw_key)| SimKey {
                    raw_key: raw_key.clone(),
                    alias: key.alias.to_owned(),
                    team: key.team.to_owned(),
                    user_id: format!("{}-owner", key.team),
                    max_budget_usd: None,
                })
                .collect(),
            models: vec![
                SimModel {
                    name: "gpt-4o".to_owned(),
                    provider: "openai".to_owned(),
                    input_cost_per_token: 2.5e-6,
                    output_cost_per_token: 1e-5,
                },
                SimModel {
                    name: "gpt-4o-mini".to_owned(),
                    provider: "openai".to_owned(),
                    input_cost_per_token: 1.5e-7,
                    output_cost_per_token: 6e-7,
                },
            ],
            ignore_blocks: scenario == Scenario::FailedFix,
            require_auth_for_metrics: true,
        },
        cancel.child_token(),
    )
    .await?;
    let pager = PagerSink::start(bind().await?, cancel.child_token()).await?;
    // The assistant, played by the OpenAI fake: the demo's config gets a block pointing at it.
    let fake_model = match assistant {
        Some(play) => Some(
            vigil_sim::OpenAiFake::start(bind().await?, play.script(), cancel.child_token())
                .await?,
        ),
        None => None,
    };
    let assistant_block = match (&fake_model, assistant) {
        (Some(fake), Some(_)) => format!(
            "diagnosis:\n  assistant:\n    enabled: true\n    base_url: {}\n    model: vigil-fake\n    on: all\n    deadline_secs: 10\n    request_timeout_secs: 5\n",
            fake.base_url()
        ),
        _ => "diagnosis:\n".to_owned(),
    };

    let config_text = assets::DEMO_CONFIG
        .1
        .replace("@GATEWAY_URL@", &gateway.base_url())
        .replace("@PAGER_URL@", &pager.url())
        .replace("@MASTER_KEY_FILE@", &key_file.display().to_string())
        .replace("@LEDGER_PATH@", &db.display().to_string())
        .replace(
            "@CHECKPOINT_KEY@",
            &checkpoint_key(db).display().to_string(),
        )
        .replace(
            "@CHECKPOINT_FILE@",
            &checkpoint_file(db).display().to_string(),
        )
        .replacen("diagnosis:\n", &assistant_block, 1);
    let bundle = bundle::assemble(
        TextFile {
            name: assets::DEMO_CONFIG.0.to_owned(),
            text: config_text,
        },
        Path::new("."),
        assets::demo_runbooks(),
        assets::policy_texts(),
    )
    .map_err(|problems| anyhow::anyhow!("the embedded demo config is invalid:\n{problems}"))?;
    let policy_set = bundle
        .authorizer
        .policy_set_hash()
        .get(..12)
        .unwrap_or_default()
        .to_owned();
    let n_policies = bundle.authorizer.policy_ids().len();

    let story = match scenario {
        Scenario::RunawayKey => "a runaway API key on a LiteLLM gateway",
        Scenario::FailedFix => "a runaway API key, and a gateway that ignores the block",
    };
    println!("vigil demo: {story}\n");
    println!(
        "  gateway  simulated LiteLLM 1.106 at {} (metrics at /metrics/, admin API /key/block)",
        gateway.base_url()
    );
    println!(
        "  traffic  real HTTP chat requests for 4 keys: {}",
        KEYS.iter()
            .map(|key| key.alias)
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "  vigil    scrapes every 1s; detector token-spike; runbook block-runaway-key; {n_policies} Cedar policies (set {policy_set})"
    );
    println!("  ledger   {shown_db}");
    if let (Some(fake), Some(play)) = (&fake_model, assistant) {
        println!(
            "  assistant  a fake of the OpenAI API at {} playing the investigator `{}`; every claim is checked against vigil's store",
            fake.base_url(),
            play.as_str()
        );
    }
    println!("  pager    webhook sink at {}\n", pager.url());

    let traffic = TrafficDriver::start(
        &gateway.base_url(),
        KEYS.iter()
            .zip(&raw_keys)
            .map(|(key, raw_key)| KeyTraffic {
                raw_key: raw_key.clone(),
                model: key.model.to_owned(),
                requests_per_sec: key.requests_per_sec,
                prompt_chars: key.prompt_chars,
                max_tokens: key.max_tokens,
            })
            .collect(),
        7,
        cancel.child_token(),
    )?;

    let location = LedgerLocation::Sqlite {
        path: db.to_path_buf(),
    };
    let ledger = Ledger::open(&location)
        .await
        .with_context(|| format!("creating the ledger {}", db.display()))?;
    let daemon = Daemon::build(
        bundle,
        ledger,
        None,
        Clock::system(),
        DaemonOptions::default(),
    )?;
    let (outcome_tx, mut outcome_rx) = watch::channel(Outcome::Pending);
    let printer = tokio::spawn(timeline::print(daemon.subscribe(), started, outcome_tx));
    let daemon_cancel = CancellationToken::new();
    let daemon_task = tokio::spawn(daemon.run(daemon_cancel.clone()));

    tokio::time::sleep_until(started + RUNAWAY_AFTER).await;
    let runaway_idx = KEYS
        .iter()
        .position(|key| key.alias == RUNAWAY_ALIAS)
        .unwrap_or(0);
    let runaway_key = raw_keys.get(runaway_idx).cloned().unwrap_or_default();
    traffic.set_rate(&runaway_key, 20.0, 1500)?;
    println!(
        "{:>6.1}s  [traffic] {RUNAWAY_ALIAS} starts looping: 20 requests/s with long completions",
        started.elapsed().as_secs_f64()
    );

    let waited = tokio::time::timeout(
        OUTCOME_DEADLINE,
        outcome_rx.wait_for(|outcome| *outcome != Outcome::Pending),
    )
    .await;
    let outcome = match waited {
        Ok(Ok(outcome)) => outcome.clone(),
        _ => Outcome::Pending,
    };
    let blocked_after = traffic
        .stats_for(&runaway_key)
        .map(|stats| stats.rejected)
        .unwrap_or(0);
    daemon_cancel.cancel();
    let ledger = daemon_task.await.context("the daemon task failed")??;
    let _ = printer.await;
    cancel.cancel();
    traffic.stopped().await;
    // The webhook also receives owners' notifications and resolutions (`status` says
    // which); only the bodies without one are pages.
    let pages: Vec<serde_json::Value> = pager
        .pages()
        .into_iter()
        .filter(|body| body.get("status").is_none())
        .collect();
    ledger.close().await;

    println!();
    let incident_id = match &outcome {
        Outcome::Resolved { incident_id } | Outcome::Escalated { incident_id } => {
            incident_id.clone()
        }
        Outcome::Pending => {
            println!(
                "the incident did not end within {}s: the demo did not behave as designed",
                OUTCOME_DEADLINE.as_secs()
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    let expected = match (scenario, &outcome) {
        (Scenario::RunawayKey, Outcome::Resolved { .. }) => pages.is_empty(),
        (Scenario::FailedFix, Outcome::Escalated { .. }) => pages.len() == 1,
        _ => false,
    };
    match &outcome {
        Outcome::Resolved { .. } => println!(
            "Outcome: resolved by vigil, nobody woken. Pages: {}. Requests from {RUNAWAY_ALIAS} refused by the gateway after the block: {blocked_after}.",
            pages.len()
        ),
        _ => {
            println!(
                "Outcome: vigil's fix did not work; it undid it and paged once. Pages at the sink: {}.",
                pages.len()
            );
            for page in &pages {
                let title = page
                    .get("title")
                    .and_then(|title| title.as_str())
                    .unwrap_or("?");
                let ask = page
                    .pointer("/why/ask")
                    .and_then(|ask| ask.as_str())
                    .unwrap_or("?");
                println!("  page: {title}\n        ask: {ask}");
            }
        }
    }

    let (verified, replayed) = check_ledger(db, &incident_id).await?;
    println!("Ledger: {verified}");
    println!("Replay: {replayed}");
    let vigil = command_prefix();
    println!("\nCheck it yourself:");
    println!("  {vigil} ledger verify --db {shown_db}");
    let public_key = crate::checkpoints::load_or_create_key(
        &checkpoint_key(db),
        crate::checkpoints::KeyPlace::Anywhere,
    )
    .map(|key| hex::encode(key.verifying_key().to_bytes()))?;
    println!(
        "  {vigil} ledger verify --db {shown_db} --checkpoint {} --public-key {public_key}",
        checkpoint_file(Path::new(shown_db)).display()
    );
    println!(
        "    (the checkpoints' signing key is {}; its public key above is what an auditor pins)",
        checkpoint_key(Path::new(shown_db)).display()
    );
    println!("  {vigil} replay --db {shown_db} --incident {incident_id}");
    println!("  {vigil} ledger show --db {shown_db} --incident {incident_id}");
    println!("\n(demo took {:.1}s)", started.elapsed().as_secs_f64());
    if expected {
        Ok(ExitCode::SUCCESS)
    } else {
        println!(
            "the demo did not behave as designed (outcome {outcome:?}, {} pages)",
            pages.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Verifies the ledger and replays the incident, as the printed commands would.
async fn check_ledger(db: &Path, incident_id: &str) -> anyhow::Result<(String, String)> {
    let ledger = crate::journal::open_existing(db).await?;
    let report = ledger.verify().await?;
    let verified = match &report.first_problem {
        None => format!("{} entries, every hash link intact", report.n_entries),
        Some(problem) => format!("BROKEN at entry {}: {problem}", problem.seq),
    };
    let replay = replay::replay_incident(&ledger, incident_id, None).await?;
    ledger.close().await;
    let replayed = if replay.mismatches.is_empty() {
        format!(
            "incident {incident_id}: {} events re-run, {} commands match ({} of the incident), {} Cedar decisions re-evaluated identically",
            replay.n_events,
            replay.n_commands,
            replay
                .incidents
                .get(incident_id)
                .map_or(0, |incident| incident.n_commands),
            replay.n_decisions_rechecked
        )
    } else {
        format!(
            "{} MISMATCHES: {:?}",
            replay.mismatches.len(),
            replay.mismatches
        )
    };
    Ok((verified, replayed))
}

async fn bind() -> anyhow::Result<TcpListener> {
    TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding a loopback port")
}

/// A key nobody can guess (96 random bits): LiteLLM refuses well-known master keys.
fn random_key(prefix: &str) -> anyhow::Result<String> {
    let mut bytes = [0_u8; 12];
    getrandom::getrandom(&mut bytes).map_err(|error| anyhow::anyhow!("no randomness: {error}"))?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// Where the demo publishes its latest checkpoint: beside the ledger.
fn checkpoint_file(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".checkpoint.json");
    PathBuf::from(name)
}

/// Where the demo keeps its checkpoint signing key: beside the ledger, so that it outlives the
/// run and its public key can be pinned (`vigil ledger verify --public-key`).
fn checkpoint_key(db: &Path) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(".checkpoint.key");
    PathBuf::from(name)
}

fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context("reading the current folder")?
        .join(path))
}

/// How to call this binary again from the current folder.
fn command_prefix() -> String {
    let Ok(exe) = std::env::current_exe() else {
        return "vigil".to_owned();
    };
    let Ok(cwd) = std::env::current_dir() else {
        return exe.display().to_string();
    };
    match exe.strip_prefix(&cwd) {
        Ok(relative) => format!("./{}", relative.display()),
        Err(_) => exe.display().to_string(),
    }
}
