//! Signed checkpoints while the daemon runs: one after the session starts, one every
//! `interval` when the ledger grew, one on demand (`POST /v1/admin/checkpoint`) and one after
//! the session ends. Each is stored in the ledger and, when configured, written to a file
//! (replaced atomically) and POSTed to a webhook, so that a copy survives the database.
//!
//! The engine loop owns the ledger, so it calls [`Checkpointer::take`] itself; the tree head
//! comes from the ledger's frontier in O(log n). A checkpoint that cannot be stored or
//! published is logged and counted, never fatal: the log itself is intact, and the next
//! checkpoint tries again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use ed25519_dalek::SigningKey;
use tokio::sync::oneshot;
use tokio_util::task::TaskTracker;
use vigil_connectors::CheckpointWebhook;
use vigil_core::Timestamp;
use vigil_ledger::Ledger;
use vigil_ledger::checkpoint::Checkpoint;

use super::telemetry::Telemetry;
use crate::checkpoints;
use crate::config::CheckpointConfig;

/// A request for a checkpoint now, answered with it or with why there is none.
pub(crate) type CheckpointRequest = oneshot::Sender<Result<Checkpoint, String>>;

/// Takes and publishes the daemon's checkpoints.
pub(crate) struct Checkpointer {
    key: SigningKey,
    /// How often a checkpoint is taken when the ledger grew.
    pub(crate) interval: Duration,
    publish_file: Option<PathBuf>,
    webhook: Option<CheckpointWebhook>,
    /// The tree size of the last checkpoint taken.
    last_size: Option<u64>,
    tracker: TaskTracker,
    /// Counts checkpoints and publication failures, and shows the checkpoint's age.
    telemetry: Arc<Telemetry>,
}

impl Checkpointer {
    /// Reads the signing key (creating it on first start) and prepares the publishers.
    ///
    /// # Errors
    ///
    /// When the key cannot be read or created: the config asked for checkpoints, so the
    /// daemon must not run without them.
    pub(crate) fn new(
        config: &CheckpointConfig,
        tracker: TaskTracker,
        telemetry: Arc<Telemetry>,
    ) -> anyhow::Result<Self> {
        let place = if config.allow_key_in_git_tree {
            checkpoints::KeyPlace::Anywhere
        } else {
            checkpoints::KeyPlace::OutsideGit
        };
        let key = checkpoints::load_or_create_key(&config.key_file, place)?;
        tracing::info!(
            public_key = %hex::encode(key.verifying_key().to_bytes()),
            every_secs = config.interval.as_secs(),
            "ledger checkpoints are signed"
        );
        telemetry.checkpoints_on(config.interval);
        Ok(Checkpointer {
            key,
            interval: config.interval,
            publish_file: config.publish_file.clone(),
            webhook: config
                .webhook_url
                .clone()
                .map(CheckpointWebhook::new)
                .transpose()
                .context("preparing the checkpoint webhook")?,
            last_size: None,
            tracker,
            telemetry,
        })
    }

    /// Signs, stores and publishes a checkpoint of the ledger's tree head, unless `force` is
    /// unset and the ledger did not grow since the last one (then `Ok(None)`).
    ///
    /// # Errors
    ///
    /// When there is no tree head (damaged leaves) or the checkpoint cannot be stored; a
    /// file or webhook that fails is logged, not an error.
    pub(crate) async fn take(
        &mut self,
        ledger: &Ledger,
        now: Timestamp,
        why: &str,
        force: bool,
    ) -> anyhow::Result<Option<Checkpoint>> {
        let size = ledger.tree_head().map(|(size, _)| size);
        if !force && size.is_some() && size == self.last_size {
            // The last checkpoint still covers the ledger's head.
            self.telemetry.checkpoint_covered(false);
            return Ok(None);
        }
        let checkpoint = match checkpoints::take(ledger, &self.key, now.0).await {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                self.telemetry.checkpoint_failed();
                return Err(error);
            }
        };
        self.telemetry.checkpoint_covered(true);
        self.last_size = Some(checkpoint.tree_size);
        tracing::info!(
            tree_size = checkpoint.tree_size,
            tree_head = %checkpoint.tree_head,
            why,
            "ledger checkpoint signed"
        );
        if let Some(path) = &self.publish_file
            && let Err(error) = checkpoints::publish_file(path, &checkpoint)
        {
            self.telemetry.checkpoint_publish_failed("file");
            tracing::error!(error = %format!("{error:#}"), "cannot publish the checkpoint to its file");
        }
        if let Some(webhook) = &self.webhook {
            let (webhook, sent) = (webhook.clone(), checkpoint.clone());
            let telemetry = Arc::clone(&self.telemetry);
            self.tracker.spawn(async move {
                if let Err(error) = webhook.post(&sent).await {
                    telemetry.checkpoint_publish_failed("webhook");
                    tracing::error!(
                        error = %format!("{error:#}"),
                        tree_size = sent.tree_size,
                        "cannot publish the checkpoint to its webhook"
                    );
                }
            });
        }
        Ok(Some(checkpoint))
    }

    /// [`take`](Checkpointer::take), logging a failure instead of returning it.
    pub(crate) async fn take_or_log(
        &mut self,
        ledger: &Ledger,
        now: Timestamp,
        why: &str,
        force: bool,
    ) -> Option<Checkpoint> {
        match self.take(ledger, now, why, force).await {
            Ok(checkpoint) => checkpoint,
            Err(error) => {
                tracing::error!(error = %format!("{error:#}"), why, "cannot take a ledger checkpoint");
                None
            }
        }
    }
}
