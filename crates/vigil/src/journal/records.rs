//! The ledger's vocabulary for vigil: what a session, an event and a command entry hold, and how
//! the session's texts (config, runbooks, policies) are stored and read back.
//!
//! A session entry opens every run of the daemon. It carries the engine's configuration
//! inline and references content-addressed copies of the config file, the runbooks and the
//! policies, so that replay months later runs exactly what ran then.

use serde::{Deserialize, Serialize};
use vigil_core::engine::{Command, EngineConfig, Event};
use vigil_ledger::{Entry, EntryKind, Ledger, LedgerError, NewEntry};
use vigil_policy::{Authorizer, PolicyFile};

use crate::bundle::{Bundle, TextFile};

/// The payload of a `session` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionRecord {
    /// The daemon started.
    SessionStarted {
        /// The build that ran.
        vigil_version: String,
        /// The engine's configuration, as the engine received it.
        engine_config: Box<EngineConfig>,
        /// The hash of the policy set in force.
        policy_set_hash: String,
        /// Blob hash of the config file's text.
        config_blob: String,
        /// Blob hash of the runbook files (a JSON list of `{name, text}`).
        runbooks_blob: String,
        /// Blob hash of the policy texts (JSON `{schema, policies}`).
        policies_blob: String,
        /// The seq of the session this one resumes after a crash: its engine state was
        /// rebuilt by replaying that session's events, and its unfinished work carried on.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resumes: Option<u64>,
        /// How the session records the scrapes that issued no command: in compact batches
        /// (`scrape_batch.rs`). Absent in sessions recorded before and when the config turns
        /// batches off: one JSON entry per scrape.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        scrape_batch: Option<super::ScrapeBatching>,
    },
    /// The daemon loaded a new policy set (SIGHUP) and decides with it from here on.
    PoliciesReloaded {
        /// The hash of the new policy set.
        policy_set_hash: String,
        /// Blob hash of its texts (JSON `{schema, policies}`), as in `session_started`.
        policies_blob: String,
    },
    /// The daemon stopped.
    SessionEnded {
        /// Why.
        reason: String,
        /// Commands recorded but never carried out (or whose answer never came).
        interrupted: Vec<String>,
    },
}

/// The payload of an `event` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRecord {
    /// The event.
    pub event: Event,
    /// For an action's or a page's answer: the blob holding the HTTP exchanges that produced
    /// it (a JSON list of `vigil_connectors::exchange::Exchange`, secrets redacted). Evidence
    /// for auditors; the engine never sees it, and `vigil ledger verify` checks the blob.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exchanges_blob: Option<String>,
}

/// [`EventRecord`] borrowing its event, for writing; the same JSON.
#[derive(Serialize)]
struct EventRecordRef<'a> {
    event: &'a Event,
    #[serde(skip_serializing_if = "Option::is_none")]
    exchanges_blob: Option<String>,
}

/// The payload of a `command` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CommandRecord {
    /// The seq of the event whose handling issued it.
    pub caused_by: u64,
    /// The command.
    pub command: Command,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredFile {
    name: String,
    text: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredPolicies {
    schema: StoredFile,
    policies: Vec<StoredFile>,
}

/// The ledger entry of an event handed to the engine at `at_ms`, with the blob of the HTTP
/// exchanges behind it (an action's or a page's answer), if any.
///
/// # Errors
///
/// When the event cannot be encoded as JSON (a non-finite number in a sample).
pub fn event_entry(
    event: &Event,
    at_ms: i64,
    exchanges_blob: Option<String>,
) -> Result<NewEntry, serde_json::Error> {
    Ok(NewEntry {
        at_ms,
        kind: EntryKind::Event,
        incident_id: event.incident_id().map(str::to_owned),
        // Serialized from a borrow: a pushed event can weigh tens of MiB, and a copy of it
        // would only live until this returns.
        payload: serde_json::to_value(EventRecordRef {
            event,
            exchanges_blob,
        })?,
    })
}

/// The ledger entries of the commands that handling the event at seq `caused_by` issued.
///
/// # Errors
///
/// When a command cannot be encoded as JSON.
pub fn command_entries(
    commands: &[Command],
    caused_by: u64,
    at_ms: i64,
) -> Result<Vec<NewEntry>, serde_json::Error> {
    commands
        .iter()
        .map(|command| {
            Ok(NewEntry {
                at_ms,
                kind: EntryKind::Command,
                incident_id: command.incident_id().map(str::to_owned),
                payload: serde_json::to_value(CommandRecord {
                    caused_by,
                    command: command.clone(),
                })?,
            })
        })
        .collect()
}

/// The ledger entries of one step taken at `at_ms` (see [`super::step()`]) whose first event
/// gets seq `first_seq`: each handled event followed by the commands it caused. The first
/// event carries the blob of the HTTP exchanges behind it, if any.
///
/// # Errors
///
/// When an event or a command cannot be encoded as JSON.
pub fn step_entries(
    handled: &[(Event, Vec<Command>)],
    first_seq: u64,
    at_ms: i64,
    exchanges_blob: Option<String>,
) -> Result<Vec<NewEntry>, serde_json::Error> {
    let mut entries = Vec::new();
    let mut exchanges_blob = exchanges_blob;
    for (event, commands) in handled {
        let event_seq = first_seq + entries.len() as u64;
        entries.push(event_entry(event, at_ms, exchanges_blob.take())?);
        entries.extend(command_entries(commands, event_seq, at_ms)?);
    }
    Ok(entries)
}

/// The ledger entry of a session record.
///
/// # Errors
///
/// When the record cannot be encoded as JSON.
pub fn session_entry(record: &SessionRecord, at_ms: i64) -> Result<NewEntry, serde_json::Error> {
    Ok(NewEntry {
        at_ms,
        kind: EntryKind::Session,
        incident_id: None,
        payload: serde_json::to_value(record)?,
    })
}

/// Stores a policy set's texts as a blob (the same encoding as a session's policies).
pub async fn record_policies(
    ledger: &Ledger,
    texts: &crate::bundle::PolicyTexts,
) -> Result<String, LedgerError> {
    let policies = StoredPolicies {
        schema: stored(&texts.schema),
        policies: texts.policies.iter().map(stored).collect(),
    };
    ledger.put_blob(&json_bytes(&policies)).await
}

/// The session start an entry belongs to: `entry` itself when it starts a session, else the
/// start before it (skipping policy reloads, which happen within a session).
pub async fn session_start_of(ledger: &Ledger, mut entry: Entry) -> anyhow::Result<Entry> {
    for _ in 0..1_000_000 {
        if !matches!(session_of(&entry)?, SessionRecord::PoliciesReloaded { .. }) {
            return Ok(entry);
        }
        let Some(before) = entry.seq.checked_sub(1) else {
            anyhow::bail!("entry {} reloads policies before any session", entry.seq);
        };
        let Some(earlier) = ledger.last_session_at_or_before(before).await? else {
            anyhow::bail!("entry {} reloads policies before any session", entry.seq);
        };
        entry = earlier;
    }
    anyhow::bail!("more than a million policy reloads in one session")
}

/// Stores the bundle's texts as blobs and returns the session-started record.
pub async fn record_bundle(ledger: &Ledger, bundle: &Bundle) -> Result<SessionRecord, LedgerError> {
    let config_blob = ledger.put_blob(bundle.config_file.text.as_bytes()).await?;
    let runbooks: Vec<StoredFile> = bundle.runbook_files.iter().map(stored).collect();
    let runbooks_blob = ledger.put_blob(&json_bytes(&runbooks)).await?;
    let policies = StoredPolicies {
        schema: stored(&bundle.policy_texts.schema),
        policies: bundle.policy_texts.policies.iter().map(stored).collect(),
    };
    let policies_blob = ledger.put_blob(&json_bytes(&policies)).await?;
    Ok(SessionRecord::SessionStarted {
        vigil_version: env!("CARGO_PKG_VERSION").to_owned(),
        engine_config: Box::new(bundle.engine.clone()),
        policy_set_hash: bundle.authorizer.policy_set_hash().to_owned(),
        config_blob,
        runbooks_blob,
        policies_blob,
        resumes: None,
        scrape_batch: scrape_batching(bundle),
    })
}

/// How a session of `bundle`'s config records its scrapes (`ledger.scrape_batch_secs`).
#[must_use]
pub fn scrape_batching(bundle: &Bundle) -> Option<super::ScrapeBatching> {
    (bundle.config.scrape_batch_secs > 0).then_some(super::ScrapeBatching {
        max_secs: bundle.config.scrape_batch_secs,
    })
}

fn stored(file: &TextFile) -> StoredFile {
    // Only the file name: the hash of the same policies must not depend on where they live.
    let name = std::path::Path::new(&file.name).file_name().map_or_else(
        || file.name.clone(),
        |name| name.to_string_lossy().into_owned(),
    );
    StoredFile {
        name,
        text: file.text.clone(),
    }
}

fn json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_value(value)
        .map(|value| vigil_ledger::canonical_json(&value).into_bytes())
        .unwrap_or_default()
}

/// Rebuilds the policy set a session ran with from its blob.
pub async fn recorded_authorizer(
    ledger: &Ledger,
    policies_blob: &str,
) -> anyhow::Result<Authorizer> {
    let bytes = ledger.get_blob(policies_blob).await?.ok_or_else(|| {
        anyhow::anyhow!("the ledger has no blob `{policies_blob}` (the session's policies)")
    })?;
    let stored: StoredPolicies = serde_json::from_slice(&bytes)?;
    let schema = PolicyFile {
        path: stored.schema.name,
        text: stored.schema.text,
    };
    let policies: Vec<PolicyFile> = stored
        .policies
        .into_iter()
        .map(|file| PolicyFile {
            path: file.name,
            text: file.text,
        })
        .collect();
    Ok(Authorizer::load_recorded(&schema, &policies)?)
}

/// Decodes a session entry.
pub fn session_of(entry: &Entry) -> anyhow::Result<SessionRecord> {
    anyhow::ensure!(
        entry.kind == EntryKind::Session,
        "entry {} is not a session entry",
        entry.seq
    );
    Ok(serde_json::from_str(&entry.payload)?)
}

/// The first session of the chain that `entry` (a session start) belongs to: a session that
/// resumed an interrupted one continues its engine, so replay and recovery start there.
pub async fn chain_origin(ledger: &Ledger, mut entry: Entry) -> anyhow::Result<Entry> {
    for _ in 0..10_000 {
        let SessionRecord::SessionStarted {
            resumes: Some(previous),
            ..
        } = session_of(&entry)?
        else {
            return Ok(entry);
        };
        let Some(earlier) = ledger.last_session_at_or_before(previous).await? else {
            anyhow::bail!(
                "session {} resumes {previous}, which is not a session",
                entry.seq
            );
        };
        anyhow::ensure!(
            earlier.seq == previous && earlier.seq < entry.seq,
            "session {} resumes {previous}, which is not a session start",
            entry.seq
        );
        entry = earlier;
    }
    anyhow::bail!("a chain of more than 10,000 resumed sessions")
}
