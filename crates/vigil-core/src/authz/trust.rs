//! The trust a runbook's action has earned: how often it was verified to work. Policies see
//! it as `context.trust_pct`; the engine keeps the tallies and the config seeds them.

use serde::{Deserialize, Serialize};

use super::ActionName;

/// How often one runbook's action was verified to work, and to fail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustTally {
    /// The runbook.
    pub runbook: String,
    /// The Cedar action of its step.
    pub action: ActionName,
    /// Runs whose verification passed.
    pub verified: u32,
    /// Runs whose verification failed (or whose step failed).
    pub failed: u32,
}

impl TrustTally {
    /// The trust score in percent: the Laplace estimate `(verified + 1) / (runs + 2)`, so a
    /// runbook with no history scores 50 and needs eight clean runs in a row to reach 90.
    #[must_use]
    pub fn score_pct(verified: u32, failed: u32) -> i64 {
        let runs = u64::from(verified) + u64::from(failed);
        // Rounded half up to the nearest percent, in integers.
        let score = ((u64::from(verified) + 1) * 200 + runs + 2) / (2 * (runs + 2));
        i64::try_from(score).unwrap_or(100)
    }
}
