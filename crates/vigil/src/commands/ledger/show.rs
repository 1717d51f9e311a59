//! `vigil ledger show`: entries one per line, streamed a page at a time, filtered by incident
//! and time in SQL; `--full` prints each entry's whole payload.

use std::io::Write as _;
use std::process::ExitCode;

use serde::Deserialize;
use vigil_core::Timestamp;
use vigil_ledger::{Entry, EntryFilter, EntryKind, Ledger, LedgerLocation, PageLimits};

use super::open_location;
use crate::journal::scrape_batch::{self, DictionaryCache, ScrapeBatchRecord};
use crate::journal::{CommandRecord, SessionRecord};

/// Characters of a command's JSON shown in its summary, unless `--full`.
const SUMMARY_CHARS: usize = 160;

/// What `vigil ledger show` prints.
#[derive(Clone, Copy, Debug, Default)]
pub struct ShowOptions<'a> {
    /// Only this incident's entries.
    pub incident: Option<&'a str>,
    /// Only the entries at or after this time (milliseconds since the epoch).
    pub since_ms: Option<i64>,
    /// Scrape and tick events too.
    pub all: bool,
    /// Each entry's whole payload after its summary.
    pub full: bool,
}

/// The part of an event entry's payload a summary needs. Only these fields are read (the
/// rest is skipped without being built), so summarizing a multi-megabyte pushed event holds
/// nothing but its text; `vigil ledger verify` and `vigil replay` read events whole.
#[derive(Deserialize)]
struct EventSummary {
    event: EventType,
    #[serde(default)]
    exchanges_blob: Option<String>,
}

/// An event's `type` (`Event` is tagged with it).
#[derive(Deserialize)]
struct EventType {
    #[serde(rename = "type")]
    kind: String,
}

/// Prints entries, one line each: an incident's, or all of them; only those at or after
/// `since_ms` when given. The entries are read a page at a time and printed as they come.
/// An incident the ledger does not hold exits 1 saying so; no entry to show otherwise is
/// said on stderr, exit 0.
pub async fn show(db: &LedgerLocation, options: ShowOptions<'_>) -> anyhow::Result<ExitCode> {
    let ledger = open_location(db).await?;
    let printed = print_entries(&ledger, options).await;
    let outcome = match printed {
        Ok((0, n_hidden)) => say_nothing_shown(&ledger, db, options, n_hidden).await,
        Ok(_) => Ok(ExitCode::SUCCESS),
        Err(error) => Err(error),
    };
    ledger.close().await;
    outcome
}

/// Prints the entries `options` keep; how many were printed, and how many were hidden
/// because they are scrapes or ticks.
async fn print_entries(ledger: &Ledger, options: ShowOptions<'_>) -> anyhow::Result<(u64, u64)> {
    let filter = EntryFilter {
        incident_id: options.incident.map(str::to_owned),
        since_ms: options.since_ms,
        kind: None,
    };
    let mut reader = ledger.entries(filter, PageLimits::default());
    let mut stdout = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut n_printed, mut n_hidden) = (0, 0);
    while let Some(entry) = reader.next().await? {
        let Some(summary) = summary(ledger, &entry, options).await else {
            n_hidden += 1;
            continue;
        };
        let incident = entry.incident_id.as_deref().unwrap_or("-");
        let at = Timestamp(entry.at_ms).to_rfc3339();
        let written = if options.full {
            writeln!(
                stdout,
                "{:>7} {at} {incident:<16} {summary} {}",
                entry.seq, entry.payload
            )
        } else {
            writeln!(stdout, "{:>7} {at} {incident:<16} {summary}", entry.seq)
        };
        // A batch of scrapes is shown whole with `--full`: one scrape a line, as its event.
        let written = match written {
            Ok(()) if options.full && scrape_batch::is_batch_payload(&entry.payload) => {
                batch_lines(ledger, &entry, &mut stdout).await
            }
            other => other,
        };
        // A closed pipe (`| head`) ends the listing quietly instead of panicking; the line
        // counts as shown, so that nothing is said about an empty listing.
        if written.is_err() {
            return Ok((n_printed + 1, n_hidden));
        }
        n_printed += 1;
    }
    // As above: a closed pipe is not an error.
    let _ = stdout.flush();
    Ok((n_printed, n_hidden))
}

/// Says on stderr why nothing was printed: exit 1 for an incident the ledger does not hold,
/// else 0.
async fn say_nothing_shown(
    ledger: &Ledger,
    db: &LedgerLocation,
    options: ShowOptions<'_>,
    n_hidden: u64,
) -> anyhow::Result<ExitCode> {
    let mut what = "no entries".to_owned();
    if let Some(incident) = options.incident {
        let shown = incident.escape_debug();
        if !ledger.has_incident(incident).await? {
            eprintln!("ledger `{db}` holds no entry of incident `{shown}`");
            return Ok(ExitCode::FAILURE);
        }
        what.push_str(&format!(" of incident `{shown}`"));
    }
    if let Some(since_ms) = options.since_ms {
        what.push_str(&format!(" since {}", Timestamp(since_ms).to_rfc3339()));
    }
    if n_hidden > 0 {
        eprintln!(
            "ledger `{db}`: {what} to show: {n_hidden} scrape and tick events hidden (--all shows them)"
        );
    } else {
        eprintln!("ledger `{db}`: {what}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The summary of `entry`, `None` when it is hidden (a scrape or a tick without `--all`).
async fn summary(ledger: &Ledger, entry: &Entry, options: ShowOptions<'_>) -> Option<String> {
    let summary = match entry.kind {
        EntryKind::Event if scrape_batch::is_batch_payload(&entry.payload) => {
            if !options.all {
                return None;
            }
            match serde_json::from_str::<ScrapeBatchRecord>(&entry.payload) {
                Ok(record) => format!(
                    "event scrape_batch ({} scrapes, {} samples; series {})",
                    record.scrape_batch.n_scrapes,
                    record.scrape_batch.n_samples,
                    record.scrape_batch.series_blob
                ),
                Err(error) => format!("event (unreadable scrape batch: {error})"),
            }
        }
        EntryKind::Event => match serde_json::from_str::<EventSummary>(&entry.payload) {
            Ok(record) => {
                let kind = record.event.kind.as_str();
                if !options.all && matches!(kind, "scraped" | "tick") {
                    return None;
                }
                let kind = kind.escape_debug();
                match &record.exchanges_blob {
                    Some(hash) => {
                        format!("event {kind} [{}]", exchanges_summary(ledger, hash).await)
                    }
                    None => format!("event {kind}"),
                }
            }
            Err(error) => format!("event (unreadable: {error})"),
        },
        EntryKind::Command => match serde_json::from_str::<CommandRecord>(&entry.payload) {
            // With --full the whole payload follows, the command with it.
            Ok(record) if options.full => format!("command (caused by {})", record.caused_by),
            Ok(record) => format!(
                "command (caused by {}) {}",
                record.caused_by,
                investigation_lines(&record.command).unwrap_or_else(|| short_json(&record.command))
            ),
            Err(error) => format!("command (unreadable: {error})"),
        },
        EntryKind::Session => session_summary(&entry.payload),
    };
    Some(summary)
}

/// Writes each scrape of the batch in `entry`, one line each: its time and its event as
/// JSON (values as the JSON encoding writes them). A batch that does not decode is said in
/// one line.
async fn batch_lines(
    ledger: &Ledger,
    entry: &Entry,
    out: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let opened = match serde_json::from_str::<ScrapeBatchRecord>(&entry.payload) {
        Ok(record) => {
            scrape_batch::open_batch(ledger, entry, &record, &mut DictionaryCache::default()).await
        }
        Err(error) => Err(error.into()),
    };
    let decoder = match opened {
        Ok(decoder) => decoder,
        Err(error) => return writeln!(out, "        (cannot open the batch: {error:#})"),
    };
    for decoded in decoder {
        match decoded {
            Ok(scrape) => {
                let at = Timestamp(scrape.at_ms).to_rfc3339();
                let event = scrape_batch::scrape_event(scrape);
                let json = serde_json::to_string(&event).unwrap_or_default();
                writeln!(out, "        {at} {json}")?;
            }
            Err(error) => return writeln!(out, "        (the batch is damaged here: {error})"),
        }
    }
    Ok(())
}

/// What the assistant's investigation came to, for people: the record's line, then each
/// surviving hypothesis, the narrative, each dropped claim and where the transcript is, one
/// indented line each. Text the model wrote is escaped. `None` for other commands.
fn investigation_lines(command: &vigil_core::engine::Command) -> Option<String> {
    use vigil_core::engine::{Command, Record};
    let Command::Record(record) = command else {
        return None;
    };
    let (first, transcript) = match record {
        Record::InvestigationChecked {
            transcript_blob, ..
        }
        | Record::InvestigationFailed {
            transcript_blob, ..
        } => (record.describe(), transcript_blob),
        _ => return None,
    };
    let mut lines = vec![crate::logsafe::Escaped(&first).to_string()];
    if let Record::InvestigationChecked { checked, .. } = record {
        for hypothesis in &checked.hypotheses {
            let ids: Vec<&str> = hypothesis
                .evidence
                .iter()
                .map(|cited| cited.id.as_str())
                .collect();
            lines.push(format!(
                "    hypothesis (the assistant's): {} citing {}",
                hypothesis.kind_name(),
                ids.join(", ")
            ));
        }
        if let Some(narrative) = &checked.narrative {
            lines.push(format!(
                "    narrative (the assistant's): {}",
                crate::logsafe::Escaped(narrative)
            ));
        }
        for dropped in &checked.dropped {
            lines.push(format!(
                "    dropped {}: {} ({})",
                crate::logsafe::Escaped(&dropped.claim),
                dropped.why.as_str(),
                crate::logsafe::Escaped(&dropped.detail)
            ));
        }
    }
    if let Some(hash) = transcript {
        lines.push(format!(
            "    transcript: vigil ledger blob --db LEDGER {hash}"
        ));
    }
    Some(lines.join("\n"))
}

/// The HTTP exchanges in blob `hash`, one short summary each.
async fn exchanges_summary(ledger: &Ledger, hash: &str) -> String {
    match ledger.get_blob(hash).await {
        Ok(Some(bytes)) => {
            match serde_json::from_slice::<Vec<vigil_connectors::exchange::Exchange>>(&bytes) {
                Ok(exchanges) => exchanges
                    .iter()
                    .map(vigil_connectors::exchange::Exchange::summary)
                    .collect::<Vec<_>>()
                    .join("; "),
                Err(error) => format!("exchanges {hash}: unreadable: {error}"),
            }
        }
        Ok(None) => format!("exchanges {hash}: MISSING"),
        Err(error) => format!("exchanges {hash}: {error}"),
    }
}

fn session_summary(payload: &str) -> String {
    match serde_json::from_str::<SessionRecord>(payload) {
        Ok(SessionRecord::SessionStarted {
            vigil_version,
            engine_config,
            policy_set_hash,
            ..
        }) => format!(
            "session session_started (vigil {vigil_version}, mode {}, {} sources, {} detectors, \
             {} runbooks, policy set {})",
            engine_config.mode.as_str(),
            engine_config.sources.len(),
            engine_config.detectors.len(),
            engine_config.runbooks.len(),
            policy_set_hash.get(..12).unwrap_or_default()
        ),
        Ok(SessionRecord::PoliciesReloaded {
            policy_set_hash, ..
        }) => format!(
            "session policies_reloaded (policy set {})",
            policy_set_hash.get(..12).unwrap_or_default()
        ),
        Ok(SessionRecord::SessionEnded {
            reason,
            interrupted,
        }) => {
            format!("session session_ended ({reason}; interrupted: {interrupted:?})")
        }
        Err(error) => format!("session (unreadable: {error})"),
    }
}

/// `value` as JSON, cut after [`SUMMARY_CHARS`] characters (`--full` shows it whole).
fn short_json<T: serde::Serialize>(value: &T) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    if text.chars().count() > SUMMARY_CHARS {
        format!("{}…", text.chars().take(SUMMARY_CHARS).collect::<String>())
    } else {
        text
    }
}
