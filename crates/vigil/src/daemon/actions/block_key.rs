//! `litellm.block_key` / `litellm.unblock_key` against a LiteLLM gateway: the answer must
//! show the key blocked (or not); after a crash, the key's state is read back first.

use std::collections::BTreeMap;

use vigil_connectors::ConnectorError;
use vigil_core::engine::ActionOutcome;

use super::{Targets, litellm, outcome};

/// Blocks (or unblocks) `key`, checked in the gateway's answer.
pub(super) async fn act(
    targets: &Targets,
    source: &str,
    key: &str,
    block: bool,
) -> Result<ActionOutcome, ConnectorError> {
    let admin = litellm(targets, source)?;
    let state = if block {
        admin.block_key(key).await?
    } else {
        admin.unblock_key(key).await?
    };
    Ok(if state.blocked == block {
        let done = if block {
            "key blocked"
        } else {
            "key unblocked"
        };
        outcome(true, done.to_owned(), BTreeMap::new())
    } else {
        outcome(
            false,
            format!(
                "the gateway answered, but reports the key as blocked={}",
                state.blocked
            ),
            BTreeMap::new(),
        )
    })
}

/// Whether the key already reads as asked.
pub(super) async fn already_done(
    targets: &Targets,
    source: &str,
    key: &str,
    block: bool,
) -> Result<Option<String>, ConnectorError> {
    let state = litellm(targets, source)?.key_info(key).await?;
    Ok((state.blocked == block).then(|| format!("the key reads blocked={block}")))
}
