//! `litellm.block_team` / `litellm.unblock_team` against a LiteLLM gateway: the answer must
//! show the team blocked (or not). A team cannot be read back, so after a crash the call is
//! made again (harmless).

use std::collections::BTreeMap;

use vigil_connectors::ConnectorError;
use vigil_core::engine::ActionOutcome;

use super::{Targets, litellm, outcome};

/// Blocks (or unblocks) `team`, checked in the gateway's answer.
pub(super) async fn act(
    targets: &Targets,
    source: &str,
    team: &str,
    block: bool,
) -> Result<ActionOutcome, ConnectorError> {
    let admin = litellm(targets, source)?;
    let state = if block {
        admin.block_team(team).await?
    } else {
        admin.unblock_team(team).await?
    };
    let done = if block {
        "team blocked"
    } else {
        "team unblocked"
    };
    Ok(if state.blocked == block {
        outcome(true, done.to_owned(), BTreeMap::new())
    } else {
        outcome(
            false,
            format!(
                "the gateway answered, but reports the team as blocked={}",
                state.blocked
            ),
            BTreeMap::new(),
        )
    })
}

/// A team's state cannot be read back through the calls vigil makes, and blocking or
/// unblocking it again is harmless: always made again.
pub(super) fn already_done() -> Option<String> {
    None
}
