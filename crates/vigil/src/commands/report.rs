//! `vigil report --db LEDGER [--since 90d] [--until T] [--format text|json|html]`: the period
//! report a team takes to its review (`vigil_core::report`), read from the ledger
//! (`journal::report`) and rendered (`render::report`).

use std::io::Write as _;
use std::process::ExitCode;

use vigil_core::report::Assumptions;
use vigil_core::time::Timestamp;

use crate::journal::report::{self, Since};
use crate::render;

/// How the report is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For a terminal.
    Text,
    /// The report's fields, for other tools.
    Json,
    /// One HTML page with no external assets and no script.
    Html,
}

/// What `vigil report` was asked for.
#[derive(Debug)]
pub struct ReportArgs {
    /// `90d`, `12h`, ... back from the period's end, or an instant (`2026-09-01T00:00:00Z`).
    pub since: String,
    /// The period's end, an instant; `None`: the ledger's latest entry.
    pub until: Option<String>,
    /// How to print it.
    pub format: Format,
    /// The engineer-hours estimate's assumptions.
    pub assumptions: Assumptions,
}

fn instant(flag: &str, text: &str) -> anyhow::Result<Timestamp> {
    vigil_core::datetime::parse_timestamp_ms(text)
        .map(Timestamp)
        .map_err(|error| anyhow::anyhow!("{flag}: {error}"))
}

/// Parses `--since`: a duration (`90d`) or an instant.
///
/// # Errors
/// When it is neither, saying what both look like.
pub fn parse_since(text: &str) -> anyhow::Result<Since> {
    if text.starts_with(|c: char| c.is_ascii_digit()) && !text.contains('-') {
        return crate::duration::parse_duration(text)
            .map(Since::Before)
            .map_err(|error| anyhow::anyhow!("--since: {error}"));
    }
    instant("--since", text).map(Since::At).map_err(|error| {
        anyhow::anyhow!("{error} (or give a duration back from the period's end, such as 90d)")
    })
}

/// Runs `vigil report`.
///
/// # Errors
/// A bad flag, or a ledger that cannot be read.
pub async fn run(db: &vigil_ledger::LedgerLocation, args: &ReportArgs) -> anyhow::Result<ExitCode> {
    args.assumptions
        .validate()
        .map_err(|error| anyhow::anyhow!("{error}"))?;
    let since = parse_since(&args.since)?;
    let until = args
        .until
        .as_deref()
        .map(|text| instant("--until", text))
        .transpose()?;
    let ledger = crate::journal::open_location(db).await?;
    let read = report::read(&ledger, since, until, args.assumptions).await;
    ledger.close().await;
    let read = read?;
    let out = match args.format {
        Format::Text => render::report::text(&read),
        Format::Json => {
            let mut json = serde_json::to_string_pretty(&read.report)?;
            json.push('\n');
            json
        }
        Format::Html => render::report::html(&read),
    };
    if read.n_unreadable > 0 && args.format != Format::Text {
        eprintln!(
            "warning: {} command entries could not be read and are not counted",
            read.n_unreadable
        );
    }
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) ends the output quietly.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    Ok(ExitCode::SUCCESS)
}
