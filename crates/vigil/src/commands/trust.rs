//! `vigil trust --db FILE`: prints the trust tally (`journal::trust`) and which advisory
//! runbooks have earned promotion.

use std::process::ExitCode;

use vigil_core::engine::TrustTally;

use crate::journal::trust::{PROMOTION_MIN_APPROVED_PCT, PROMOTION_MIN_PROPOSALS, tally};

/// `vigil trust --db FILE`.
pub async fn run(db: &vigil_ledger::LedgerLocation) -> anyhow::Result<ExitCode> {
    let ledger = crate::journal::open_location(db).await?;
    let report = tally(&ledger).await?;
    ledger.close().await;
    println!("trust per runbook and action (verified runs; score = (verified + 1) / (runs + 2)):");
    if report.tallies.is_empty() {
        println!("  no verified or failed runs yet: every runbook scores 50%");
    }
    for tally in &report.tallies {
        println!(
            "  {:<32} {:<13} {:>3}%  ({} verified, {} failed)",
            tally.runbook,
            tally.action.cedar_id(),
            TrustTally::score_pct(tally.verified, tally.failed),
            tally.verified,
            tally.failed
        );
    }
    println!(
        "\nproposals per runbook (promotion needs at least {PROMOTION_MIN_PROPOSALS} proposals, \
         {PROMOTION_MIN_APPROVED_PCT}% approved and no failed verification; a person decides):"
    );
    if report.proposals.is_empty() {
        println!("  no proposals yet");
    }
    for (runbook, stats) in &report.proposals {
        println!(
            "  {runbook:<32} {} proposed, {} approved, {} rejected, {} failed verifications{}",
            stats.proposed,
            stats.approved,
            stats.rejected,
            stats.failed_verifications,
            if stats.earned_promotion() {
                "  -> has earned promotion to autonomous"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}
