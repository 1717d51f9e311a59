//! `vigil replay --db PATH (--incident ID | --all) [--policies DIR | --with-current-policies
//! --config FILE]`: replays recorded sessions (`journal::replay`) and prints what it found.

use std::path::Path;
use std::process::ExitCode;

use vigil_core::authz::AuthzDecision;

use crate::journal::open_location;
use crate::journal::replay::{Alternative, ReplayReport, replay_all, replay_incident};

/// The policies of a folder, for `vigil replay --policies DIR`.
///
/// # Errors
///
/// When the folder's policies do not load.
pub fn policies_of_folder(dir: &Path) -> anyhow::Result<Alternative> {
    let (_, authorizer) = crate::bundle::reload_policies(dir)
        .map_err(|problems| anyhow::anyhow!("the policies of {}:\n{problems}", dir.display()))?;
    Ok(Alternative {
        label: format!("the policies in {}", dir.display()),
        authorizer,
    })
}

/// The policies a config names, for `vigil replay --with-current-policies --config FILE`.
///
/// # Errors
///
/// When the config does not load.
pub fn policies_of_config(config: &Path) -> anyhow::Result<Alternative> {
    let bundle = crate::bundle::load(config)
        .map_err(|problems| anyhow::anyhow!("the config {}:\n{problems}", config.display()))?;
    Ok(Alternative {
        label: format!("the current policies of {}", config.display()),
        authorizer: bundle.authorizer,
    })
}

/// What `vigil replay` replays.
#[derive(Debug, Clone)]
pub enum Scope {
    /// One incident.
    Incident(String),
    /// Every session chain, to its end.
    All,
}

/// `vigil replay --db PATH (--incident ID | --all) [--policies DIR] [--archive DIR]`: exit 0
/// when every command matches, 1 otherwise. Decision diffs against other policies do not
/// fail it. With an archive, an incident the ledger no longer holds is replayed from the
/// segment that holds it (a segment holds whole session chains), and `--all` replays every
/// segment, then the ledger.
pub async fn run(
    db: &vigil_ledger::LedgerLocation,
    scope: &Scope,
    alternative: Option<&Alternative>,
    archive: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let Some(dir) = archive else {
        return run_one(db, scope, alternative).await;
    };
    let mut ledgers = Vec::new();
    match scope {
        Scope::Incident(incident_id) => {
            let live = open_location(db).await?;
            let held = live.has_incident(incident_id).await;
            live.close().await;
            let segment = match held? {
                true => None,
                false => crate::journal::segment_of_incident(dir, incident_id).await?,
            };
            match segment {
                Some(path) => {
                    println!("incident {incident_id} is archived in {}", path.display());
                    ledgers.push(vigil_ledger::LedgerLocation::Sqlite { path });
                }
                None => ledgers.push(db.clone()),
            }
        }
        Scope::All => {
            for path in crate::journal::segments_in(dir)? {
                ledgers.push(vigil_ledger::LedgerLocation::Sqlite { path });
            }
            ledgers.push(db.clone());
        }
    }
    let mut code = ExitCode::SUCCESS;
    for ledger in &ledgers {
        if ledgers.len() > 1 {
            println!("ledger `{ledger}`:");
        }
        if run_one(ledger, scope, alternative).await? != ExitCode::SUCCESS {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

/// Replays `scope` in one ledger and prints the report.
async fn run_one(
    db: &vigil_ledger::LedgerLocation,
    scope: &Scope,
    alternative: Option<&Alternative>,
) -> anyhow::Result<ExitCode> {
    let ledger = open_location(db).await?;
    let report = match scope {
        Scope::Incident(incident_id) => replay_incident(&ledger, incident_id, alternative).await,
        Scope::All => replay_all(&ledger, alternative).await,
    };
    ledger.close().await;
    let report = report?;
    print_report(&report, scope, alternative);
    Ok(if report.mismatches.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(report: &ReplayReport, scope: &Scope, alternative: Option<&Alternative>) {
    let short = |hash: &str| hash.get(..12).unwrap_or_default().to_owned();
    let sessions: Vec<String> = report
        .session_seqs
        .iter()
        .zip(&report.policy_set_hashes)
        .map(|(seq, hash)| format!("entry {seq} (policy set {})", short(hash)))
        .collect();
    match scope {
        Scope::Incident(incident_id) => println!(
            "replaying incident {incident_id} from the session at {}",
            sessions.join(", ")
        ),
        Scope::All => println!(
            "replaying {} session chain(s) to their end: {}",
            sessions.len(),
            sessions.join(", ")
        ),
    }
    for (incident_id, incident) in &report.incidents {
        match scope {
            Scope::Incident(_) => println!("the incident's commands as recorded:"),
            Scope::All => println!("incident {incident_id}: {} commands", incident.n_commands),
        }
        if matches!(scope, Scope::Incident(_)) {
            for line in &incident.lines {
                println!("{line}");
            }
        }
    }
    let n_incident_commands: u64 = report
        .incidents
        .values()
        .map(|incident| incident.n_commands)
        .sum();
    println!(
        "{} events replayed; {} commands compared ({n_incident_commands} of {} incident(s)); {} authorization decisions re-evaluated",
        report.n_events,
        report.n_commands,
        report.incidents.len(),
        report.n_decisions_rechecked
    );
    if let Some(alternative) = alternative {
        println!(
            "policy diff: {} (policy set {}) against the recorded policies",
            alternative.label,
            short(alternative.authorizer.policy_set_hash())
        );
        for diff in &report.decision_diffs {
            println!(
                "  entry {} {} authorize {}",
                diff.seq, diff.incident_id, diff.request
            );
            println!("    - {}", describe_decision(&diff.recorded));
            println!("    + {}", describe_decision(&diff.alternative));
            if !diff.predates.is_empty() {
                println!(
                    "      (the recorded request predates {}: read as the default)",
                    diff.predates.join(", ")
                );
            }
        }
        println!(
            "{} of {} decisions would differ",
            report.decision_diffs.len(),
            report.n_decisions_rechecked
        );
    }
    if report.mismatches.is_empty() {
        println!("result: every command matches");
    } else {
        println!("result: {} MISMATCHES", report.mismatches.len());
        for mismatch in &report.mismatches {
            println!("  {mismatch}");
        }
    }
}

fn describe_decision(decision: &AuthzDecision) -> String {
    let mut text = format!(
        "{} by {}",
        json(&decision.effect).trim_matches('"'),
        if decision.determining_policies.is_empty() {
            "no policy".to_owned()
        } else {
            decision.determining_policies.join(", ")
        }
    );
    if !decision.errors.is_empty() {
        text.push_str(&format!(" (errors: {})", decision.errors.join("; ")));
    }
    text
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .map(|value| vigil_ledger::canonical_json(&value))
        .unwrap_or_default()
}
