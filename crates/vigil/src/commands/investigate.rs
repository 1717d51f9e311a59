//! `vigil investigate --db LEDGER --incident ID`: the assistant investigates an incident after
//! the fact (one that happened with the assistant off, say), against the state the ledger's
//! session had at the last moment the incident was open: its tools read that rebuilt engine
//! and the ledger. The answer is checked as the engine checks it and printed; nothing is
//! written to the ledger (the audited chain holds only what vigil decided at the time).
//! Where the model is comes from the config's `diagnosis.assistant` block, which may be
//! switched off for `vigil serve`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use vigil_core::Timestamp;
use vigil_core::engine::Engine;
use vigil_core::investigation::tools::{ToolCall, ToolOutput};
use vigil_core::investigation::{CheckedAnswer, InvestigationOutcome, check};
use vigil_ledger::{Ledger, LedgerLocation};

use crate::investigator::{Finished, ToolServer};

/// What `vigil investigate` was asked.
#[derive(Debug)]
pub struct InvestigateArgs {
    /// The ledger.
    pub db: LedgerLocation,
    /// The incident.
    pub incident: String,
    /// The config file whose `diagnosis.assistant` says where the model is.
    pub config: PathBuf,
    /// Where to write the conversation's transcript, if anywhere.
    pub transcript: Option<PathBuf>,
}

/// Investigates; exit 0 with an answer, 1 when the assistant gave none.
///
/// # Errors
///
/// The config has no assistant, the ledger or incident cannot be read or rebuilt.
pub async fn run(args: &InvestigateArgs) -> anyhow::Result<ExitCode> {
    let settings = assistant_settings(&args.config)?;
    let investigator = crate::investigator::build(&settings).context("diagnosis.assistant")?;
    let ledger = crate::journal::open_location(&args.db).await?;
    let (engine, at) = crate::journal::rerun::engine_while_open(&ledger, &args.incident).await?;
    let request = engine
        .investigation_request(&args.incident, &settings.engine)
        .context("the incident is not open in the rebuilt state")?;
    println!(
        "investigating incident {} as the ledger left it at {} (printed, not written to the ledger)",
        args.incident,
        at.to_rfc3339()
    );
    let tools = RebuiltTools {
        engine: &engine,
        ledger: &ledger,
        now: at,
    };
    let finished = investigator
        .investigate(&request, &tools, crate::clock::wall_now_ms())
        .await;
    if let Some(path) = &args.transcript {
        let text = serde_json::to_string_pretty(&finished.transcript)?;
        // Only its owner may read it: it holds what the model was told about the stack.
        crate::private_file::create(path, &text)?;
        println!("transcript: {}", path.display());
    }
    let best = engine.diagnosis_best(&args.incident);
    let code = print(&finished, &request.task, best, settings.engine.tolerance);
    ledger.close().await;
    Ok(code)
}

/// The config's assistant block, on or off.
fn assistant_settings(path: &Path) -> anyhow::Result<crate::config::assistant::AssistantSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config {}", path.display()))?;
    let base = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let config = crate::config::parse(&text, &path.display().to_string(), base)
        .map_err(|problems| anyhow::anyhow!("{problems}"))?;
    config.assistant.with_context(|| {
        format!(
            "{} has no `diagnosis.assistant` block: it says where the model is",
            path.display()
        )
    })
}

/// Prints the outcome; exit 0 with an answer, 1 without.
fn print(
    finished: &Finished,
    task: &str,
    best: Option<vigil_core::diagnosis::HypothesisKind>,
    tolerance: f64,
) -> ExitCode {
    let usage = finished.outcome.usage();
    let cost = format!(
        "{} requests, {} tool calls ({} refused), {} tokens, {} ms",
        usage.requests, usage.tool_calls, usage.tool_calls_refused, usage.tokens, usage.latency_ms
    );
    match &finished.outcome {
        InvestigationOutcome::Failed {
            failure, detail, ..
        } => {
            println!(
                "the assistant gave no answer ({}): {}; {cost}",
                failure.as_str(),
                crate::logsafe::Escaped(detail)
            );
            ExitCode::FAILURE
        }
        InvestigationOutcome::Answered {
            answer, evidence, ..
        } => {
            let checked = check(answer, evidence, task, tolerance);
            let agrees = vigil_core::investigation::agreement(&checked.hypotheses, best)
                .map(|agreement| agreement == vigil_core::investigation::Agreement::Agrees);
            let note = vigil_core::engine::note_of(&checked, agrees, best);
            println!("{}", note.agreement);
            println!("{}; {cost}", note.checked);
            for line in &note.hypotheses {
                println!("  hypothesis: {}", crate::logsafe::Escaped(line));
            }
            print_text(&checked);
            ExitCode::SUCCESS
        }
    }
}

fn print_text(checked: &CheckedAnswer) {
    if let Some(narrative) = &checked.narrative {
        println!("  narrative: {}", crate::logsafe::Escaped(narrative));
    }
    if let Some(next) = &checked.next_check {
        println!("  next check: {}", crate::logsafe::Escaped(next));
    }
    for dropped in &checked.dropped {
        println!(
            "  dropped {}: {} ({})",
            crate::logsafe::Escaped(&dropped.claim),
            dropped.why.as_str(),
            crate::logsafe::Escaped(&dropped.detail)
        );
    }
}

/// The tools, served from the rebuilt engine and the ledger.
struct RebuiltTools<'a> {
    engine: &'a Engine,
    ledger: &'a Ledger,
    now: Timestamp,
}

impl ToolServer for RebuiltTools<'_> {
    async fn serve(&self, call: ToolCall, max_bytes: usize) -> ToolOutput {
        crate::daemon::assistant::answer(self.engine, self.ledger, call, self.now, max_bytes).await
    }
}
