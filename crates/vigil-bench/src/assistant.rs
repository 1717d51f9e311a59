//! `vigil-bench assistant`: vigil's own cost per LLM investigation (checking the answer and
//! recording it) against the time the model takes to answer, measured in the same run.
//!
//! The model is vigil-sim's OpenAI fake on loopback playing `Play::Good`: one tool call
//! (`incident_evidence`, served with 20 evidence items of findings and diagnosis facts through
//! `ToolOutput::capped`, as the engine serves it), then an answer citing what the tool returned.
//! Each of `--investigations` investigations (after `--warmup` unmeasured ones) is timed in
//! three phases, in the order the daemon runs them:
//!
//! 1. the answer, the baseline: `Investigator::investigate` whole (two HTTP requests, one tool
//!    call, the transcript redacted). Beside it, the fake's bare HTTP round trips: the same two
//!    request bodies posted with vigil's HTTP client alone, without the investigator and its
//!    OpenAI client.
//! 2. validation: `vigil_core::investigation::check`, the engine's check of the answer against
//!    the evidence the tools returned.
//! 3. recording: the transcript as canonical JSON stored as a blob, then the
//!    `InvestigationFinished` event appended as one entry, both durable, in a SQLite ledger
//!    (WAL, `synchronous=FULL`) in a temporary folder.
//!
//! The fake answers in about a millisecond; a real model takes seconds to a minute (HolmesGPT
//! reports medians of 25 to 82 s per investigation). The fake's answer time is therefore a
//! lower bound of a model's, and the ratio below an upper bound of vigil's share of an
//! investigation's time.
//!
//! Measured on this machine (the build container: 2 CPUs, a SQLite ledger on its disk), two
//! runs of `cargo run --release -p vigil-bench -- assistant`
//! (200 investigations after 20 unmeasured; median / p95 per investigation, in µs):
//!
//! ```text
//!                                              run 1             run 2
//! answer: investigate() (baseline)        1074.0 / 1319.1   1114.7 / 1523.4
//!   the fake's bare HTTP round trips (x2)  424.7 /  545.4    446.1 /  659.7
//! validation: check()                       28.6 /   32.3     30.8 /   46.3
//! recording: blob + entry (durable)        774.7 / 1115.2    816.9 / 1494.7
//!   transcript to canonical JSON            57.2 /   66.0     58.8 /   98.1
//!   put_blob                               377.0 /  528.2    396.2 /  660.1
//!   append InvestigationFinished           351.4 /  471.4    357.1 /  597.0
//! (validation + recording) / answer         74.8 % / 87.0 %   76.1 % / 101.2 %
//! ```
//!
//! The transcript is 18,241 bytes; the tool's output shows all 20 items within the default
//! 4,096 bytes. The ratio's p95 column is the p95s' ratio. Against the fake, vigil's part
//! (about 0.8 ms, mostly the two durable writes of the blob and the entry, whose p95 is the
//! disk's: one earlier run saw 6 ms) is three quarters of the answer time; against a model
//! that answers in 25 s it is about 0.003 %. Checking the answer costs about 30 µs. Of the
//! answer time itself, the fake's HTTP is about 0.45 ms and the investigator (the OpenAI
//! client, the tool call, the transcript's redaction) the other 0.65 ms.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use vigil::config::assistant::{AssistantSettings, StructuredOutput};
use vigil::investigator::{Finished, ToolServer};
use vigil_core::engine::Event;
use vigil_core::investigation::tools::{ToolCall, ToolOutput};
use vigil_core::investigation::{
    AssistantConfig, EvidenceItem, InvestigationOutcome, InvestigationRequest, Scope, check,
    numbers_of,
};
use vigil_ledger::{Ledger, LedgerLocation};
use vigil_sim::{OpenAiFake, Play};

/// The one-line description in the benchmark list.
pub const ABOUT: &str = "assistant: vigil's check and recording per LLM investigation, against the fake model's answer time";

/// A real model's median answer time, from HolmesGPT's published runs (25 to 82 s).
const REAL_MODEL_SECS: f64 = 25.0;

/// The incident's task, in the engine's form (`task_of`): the fake's good play answers with
/// the first hypothesis' kind.
const TASK: &str = "Incident inc-0042, opened 2026-12-04T03:12:00Z: tokens per second of api_key \
team-a rose to 1,200 (baseline 85).\n\
Detector token-spike on api_key team-a (source litellm-gateway, severity critical).\n\
vigil's diagnosis: one key holds most of the extra tokens\n\
Its hypotheses, best first:\n\
1. runaway_key (96 %): key team-a holds 96 % of the extra tokens since 03:05\n\
2. broad_surge (3 %): 2 of 14 keys rose more than 50 %\n\
3. upstream_degradation (1 %): latency of gpt-4o is at its baseline\n\
Joined: error rate of api_key team-a rose to 4.1 %.\n\
Investigate with the tools (incident_evidence for inc-0042 first), then answer with the JSON object.";

/// Serves every evidence call with the same 20 facts, as the engine's `tool_incident` does.
struct IncidentTools {
    items: Vec<EvidenceItem>,
}

impl IncidentTools {
    fn new() -> IncidentTools {
        let mut items = Vec::new();
        for (n, key) in ["team-a", "team-b", "team-c", "batch-eval"]
            .iter()
            .enumerate()
        {
            let statement = format!(
                "token-spike on {key}: {} tokens/s (baseline {})",
                1_200 - n * 250,
                85 + n * 10
            );
            let values = numbers_of(&statement);
            items.push(EvidenceItem::new(
                'f',
                format!("api_key={key}"),
                statement,
                values,
            ));
        }
        for n in 0..16_u32 {
            let statement = match n % 4 {
                0 => format!("runaway_key: team-a holds {} % of the extra tokens", 96 - n),
                1 => format!(
                    "runaway_key: team-a sent {} requests in 5 min, {} before",
                    4_800 + n * 31,
                    310 + n
                ),
                2 => format!(
                    "against broad_surge: {} of 14 keys rose more than {} %",
                    2 + n % 3,
                    40 + n
                ),
                _ => format!(
                    "upstream_degradation: gpt-4o p95 latency {} ms, baseline {} ms",
                    820 + n * 7,
                    800
                ),
            };
            let values = numbers_of(&statement);
            items.push(EvidenceItem::new(
                'e',
                "api_key=team-a".to_owned(),
                statement,
                values,
            ));
        }
        IncidentTools { items }
    }
}

impl ToolServer for IncidentTools {
    async fn serve(&self, call: ToolCall, max_bytes: usize) -> ToolOutput {
        match call {
            ToolCall::IncidentEvidence { .. } | ToolCall::SubjectContext { .. } => {
                ToolOutput::capped(
                    "incident inc-0042: its findings and the diagnosis' evidence",
                    self.items.clone(),
                    max_bytes,
                )
            }
            ToolCall::QuerySeries { .. } | ToolCall::LedgerEntries { .. } => {
                ToolOutput::refused("not in this benchmark")
            }
        }
    }
}

/// The shipped defaults of `diagnosis.assistant`, pointed at the fake.
fn settings(base_url: &str) -> anyhow::Result<AssistantSettings> {
    Ok(AssistantSettings {
        enabled: true,
        engine: AssistantConfig {
            on: Scope::All,
            max_tool_calls: 8,
            max_turns: 10,
            max_tool_output_bytes: 4096,
            max_tokens_per_incident: 20_000,
            deadline_ms: 60_000,
            tolerance: 0.02,
        },
        base_url: reqwest::Url::parse(base_url).context("the fake's URL")?,
        model: "gpt-4o-mini".to_owned(),
        api_key: None,
        structured_output: StructuredOutput::JsonSchema,
        tokens_per_day: 1_000_000_000,
        request_timeout: Duration::from_secs(20),
        max_completion_tokens: 800,
        concurrency: 2,
        breaker_failures: 3,
        breaker_cool_off: Duration::from_secs(300),
    })
}

pub fn run(args: &[String]) -> anyhow::Result<()> {
    let mut investigations = 200_usize;
    let mut warmup = 20_usize;
    let mut iter = args.iter();
    while let Some(arg) = iter.next() {
        let mut number = |name: &str| -> anyhow::Result<usize> {
            iter.next()
                .with_context(|| format!("{name} needs a number"))?
                .parse::<usize>()
                .with_context(|| format!("{name} needs a number"))
        };
        match arg.as_str() {
            "--investigations" => investigations = number("--investigations")?.max(1),
            "--warmup" => warmup = number("--warmup")?,
            other => {
                anyhow::bail!("unknown option `{other}` (use --investigations N, --warmup N)")
            }
        }
    }
    vigil_connectors::install_crypto_provider();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("a runtime")?;
    let dir = std::env::temp_dir().join(format!("vigil-bench-assistant-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let result = runtime.block_on(bench(&dir, investigations, warmup));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Per-investigation times of each phase.
#[derive(Default)]
struct Times {
    answer: Vec<Duration>,
    round_trips: Vec<Duration>,
    check: Vec<Duration>,
    recording: Vec<Duration>,
    serialise: Vec<Duration>,
    blob: Vec<Duration>,
    entry: Vec<Duration>,
}

async fn bench(dir: &std::path::Path, investigations: usize, warmup: usize) -> anyhow::Result<()> {
    let cancel = CancellationToken::new();
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding loopback")?;
    let fake = OpenAiFake::start(listener, Play::Good.script(), cancel.clone())
        .await
        .context("starting the fake")?;
    let measured = measure(dir, &fake, investigations, warmup).await;
    cancel.cancel();
    fake.stopped().await;
    let (times, transcript_bytes, evidence_items) = measured?;
    print_report(&times, investigations, transcript_bytes, evidence_items);
    Ok(())
}

async fn measure(
    dir: &std::path::Path,
    fake: &OpenAiFake,
    investigations: usize,
    warmup: usize,
) -> anyhow::Result<(Times, usize, usize)> {
    let settings = settings(&fake.base_url())?;
    let investigator = vigil::investigator::build(&settings)?;
    let plain = vigil_connectors::http::client(settings.request_timeout)?;
    let completions = format!("{}/chat/completions", fake.base_url());
    let tools = IncidentTools::new();
    let request = InvestigationRequest {
        incident_id: Some("inc-0042".to_owned()),
        task: TASK.to_owned(),
        limits: settings.engine.clone(),
    };
    let mut ledger = Ledger::open(&LedgerLocation::Sqlite {
        path: dir.join("assistant.db"),
    })
    .await
    .context("opening the ledger")?;
    let mut times = Times::default();
    let (mut transcript_bytes, mut evidence_items) = (0, 0);
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for n in 0..warmup + investigations {
        let at_ms = 1_796_354_000_000 + i64::try_from(n).unwrap_or(0) * 1000;
        let started = Instant::now();
        let finished = investigator.investigate(&request, &tools, at_ms).await;
        let answer_time = started.elapsed();
        let (answer, evidence) = answered(&finished)?;

        // The same two bodies, posted bare: the fake's answer time without the investigator.
        // They are taken once: `requests` clones every body the fake keeps.
        if bodies.is_empty() {
            bodies = last_two_requests(fake)?;
        }
        let started = Instant::now();
        for body in &bodies {
            let response = plain
                .post(&completions)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "the fake answered {response:?}"
            );
            std::hint::black_box(response.bytes().await?);
        }
        let round_trips = started.elapsed();

        let started = Instant::now();
        let checked = check(answer, evidence, TASK, settings.engine.tolerance);
        let check_time = started.elapsed();
        anyhow::ensure!(
            checked.dropped.is_empty() && !checked.hypotheses.is_empty(),
            "the good play's answer did not survive the check: {checked:?}"
        );
        std::hint::black_box(&checked);
        let n_evidence = evidence.len();

        let (bytes, serialise, blob, entry) = record(&mut ledger, finished, at_ms, n).await?;
        if n < warmup {
            continue;
        }
        transcript_bytes = bytes;
        evidence_items = n_evidence;
        times.answer.push(answer_time);
        times.round_trips.push(round_trips);
        times.check.push(check_time);
        times.serialise.push(serialise);
        times.blob.push(blob);
        times.entry.push(entry);
        times.recording.push(serialise + blob + entry);
    }
    ledger.close().await;
    Ok((times, transcript_bytes, evidence_items))
}

/// The answer and evidence of a finished investigation, or why it failed.
fn answered(finished: &Finished) -> anyhow::Result<(&str, &[EvidenceItem])> {
    match &finished.outcome {
        InvestigationOutcome::Answered {
            answer, evidence, ..
        } => Ok((answer, evidence)),
        InvestigationOutcome::Failed {
            failure, detail, ..
        } => anyhow::bail!("the investigation failed: {} ({detail})", failure.as_str()),
    }
}

/// The request bodies of the last investigation, as the fake received them.
fn last_two_requests(fake: &OpenAiFake) -> anyhow::Result<Vec<Vec<u8>>> {
    let requests = fake.requests();
    let start = requests
        .len()
        .checked_sub(2)
        .context("the fake saw fewer than two requests")?;
    requests
        .iter()
        .skip(start)
        .map(|body| serde_json::to_vec(body).context("a request body"))
        .collect()
}

/// Records a finished investigation as the daemon does: the transcript as a blob, then the
/// event as one entry. Returns the transcript's size and the three steps' times.
async fn record(
    ledger: &mut Ledger,
    mut finished: Finished,
    at_ms: i64,
    n: usize,
) -> anyhow::Result<(usize, Duration, Duration, Duration)> {
    let started = Instant::now();
    let bytes = vigil_ledger::canonical_json(&finished.transcript).into_bytes();
    let serialise = started.elapsed();

    let started = Instant::now();
    let hash = ledger.put_blob(&bytes).await?;
    let blob = started.elapsed();

    let started = Instant::now();
    finished.set_transcript_blob(hash);
    let event = Event::InvestigationFinished {
        investigation_id: format!("inv-{n}"),
        incident_id: Some("inc-0042".to_owned()),
        outcome: Box::new(finished.outcome),
    };
    let entry = vigil::journal::event_entry(&event, at_ms, None)?;
    ledger.append(&[entry]).await?;
    let append = started.elapsed();
    Ok((bytes.len(), serialise, blob, append))
}

fn print_report(times: &Times, investigations: usize, transcript_bytes: usize, items: usize) {
    println!(
        "assistant: {investigations} investigations against the OpenAI fake (Play::Good: 2 requests, 1 tool call, {items} evidence items); transcript {transcript_bytes} bytes of canonical JSON"
    );
    println!(
        "{:<44} {:>11} {:>11}",
        "per investigation", "median µs", "p95 µs"
    );
    let rows: [(&str, &[Duration]); 7] = [
        ("answer: investigate() (baseline)", &times.answer),
        (
            "  the fake's bare HTTP round trips (x2)",
            &times.round_trips,
        ),
        ("validation: check()", &times.check),
        (
            "recording: blob + entry (durable, SQLite)",
            &times.recording,
        ),
        ("  transcript to canonical JSON", &times.serialise),
        ("  put_blob", &times.blob),
        ("  append InvestigationFinished", &times.entry),
    ];
    for (name, samples) in rows {
        println!(
            "{name:<44} {:>11.1} {:>11.1}",
            micros(quantile(samples, 0.5)),
            micros(quantile(samples, 0.95))
        );
    }
    let share = |q: f64| {
        (micros(quantile(&times.check, q)) + micros(quantile(&times.recording, q)))
            / micros(quantile(&times.answer, q)).max(1e-9)
    };
    println!(
        "{:<44} {:>10.1}% {:>10.1}%",
        "(validation + recording) / answer",
        share(0.5) * 100.0,
        share(0.95) * 100.0
    );
    let overhead = micros(quantile(&times.check, 0.5)) + micros(quantile(&times.recording, 0.5));
    println!(
        "against a real model's {REAL_MODEL_SECS:.0} s median answer: {:.4} % (the fake answers faster than any model: the ratio above is an upper bound)",
        overhead / (REAL_MODEL_SECS * 1e6) * 100.0
    );
}

/// The `q` quantile (nearest rank) of `samples`.
fn quantile(samples: &[Duration], q: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    let rank = ((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1);
    sorted.get(rank).copied().unwrap_or_default()
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}
