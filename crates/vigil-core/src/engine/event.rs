//! Events: everything the outside world tells the engine. The set is closed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::authz::AuthzDecision;
use crate::intake::Pushed;
use crate::investigation::InvestigationOutcome;
use crate::people::{HumanCommand, Principal};
use crate::signal::Sample;
use crate::time::Timestamp;

/// Something that happened outside the engine. Each is appended to the ledger before the
/// engine handles it, so replaying the ledger's events reproduces every command.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A source was scraped. `samples` holds the samples of the metrics the engine reads.
    Scraped {
        /// The source's name.
        source: String,
        /// When the scrape was taken.
        scraped_at: Timestamp,
        /// The samples.
        samples: Vec<Sample>,
    },
    /// A PromQL query against an existing Prometheus was evaluated; its results are the
    /// series of `source`. An instant query's result is a complete snapshot (a series missing
    /// from it becomes stale); a range query's points are added to what the store has.
    Queried {
        /// The query's name, which is the source of its series.
        source: String,
        /// When the query was evaluated.
        evaluated_at: Timestamp,
        /// Whether it was a range query.
        range: bool,
        /// Every point, each with its own timestamp.
        samples: Vec<Sample>,
    },
    /// A scrape failed; the source's series keep their last state (stale, not recovered).
    ScrapeFailed {
        /// The source's name.
        source: String,
        /// Why.
        error: String,
    },
    /// The policy engine answered an [`Authorize`](super::Command::Authorize) command.
    AuthorizationDecided {
        /// The request's id.
        request_id: String,
        /// The incident it belongs to.
        incident_id: String,
        /// The answer.
        decision: AuthzDecision,
    },
    /// An [`Execute`](super::Command::Execute) command finished.
    ActionFinished {
        /// The action's id.
        action_id: String,
        /// The incident it belongs to.
        incident_id: String,
        /// What happened.
        outcome: ActionOutcome,
    },
    /// A [`Page`](super::Command::Page) command finished.
    PageFinished {
        /// The page's id.
        page_id: String,
        /// The incident it belongs to.
        incident_id: String,
        /// Whether it reached the pager.
        delivered: bool,
        /// The pager's answer or the error.
        detail: String,
    },
    /// A client pushed a validated payload (evals, agent runs, alerts, GenAI spans).
    Pushed {
        /// The payload, as validated.
        payload: Pushed,
    },
    /// Time passed: a wake-up the engine asked for with [`WakeAt`](super::Command::WakeAt).
    Tick,
    /// A scheduled runbook came due (the runtime keeps the clock and the cron schedules).
    ScheduledRun {
        /// The runbook.
        runbook_id: String,
    },
    /// A person told vigil something: an approval, a rejection, a kill switch, a silence.
    Human {
        /// Who: the authenticated principal's normalized name (never empty).
        by: String,
        /// Why, in their words.
        reason: String,
        /// What.
        command: HumanCommand,
        /// Who, as the admin API authenticated them: name, credential, groups and roles.
        /// Absent in ledgers recorded before people were authenticated; a session whose
        /// config authorizes people refuses an instruction without one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        principal: Option<Principal>,
    },
    /// An [`Investigate`](super::Command::Investigate) command finished (or gave up).
    InvestigationFinished {
        /// The investigation's id.
        investigation_id: String,
        /// The incident it was about, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_id: Option<String>,
        /// What came back (boxed: an answer with its evidence is large).
        outcome: Box<InvestigationOutcome>,
    },
    /// The policy engine answered an [`AuthorizeHuman`](super::Command::AuthorizeHuman)
    /// command.
    HumanDecided {
        /// The request's id.
        request_id: String,
        /// The incident the instruction is about, if any (an approval's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        incident_id: Option<String>,
        /// The answer.
        decision: AuthzDecision,
    },
}

impl Event {
    /// The incident the event belongs to, if any.
    #[must_use]
    pub fn incident_id(&self) -> Option<&str> {
        match self {
            Event::AuthorizationDecided { incident_id, .. }
            | Event::ActionFinished { incident_id, .. }
            | Event::PageFinished { incident_id, .. } => Some(incident_id),
            Event::HumanDecided { incident_id, .. }
            | Event::InvestigationFinished { incident_id, .. } => incident_id.as_deref(),
            Event::Scraped { .. }
            | Event::Queried { .. }
            | Event::ScrapeFailed { .. }
            | Event::Pushed { .. }
            | Event::Human { .. }
            | Event::ScheduledRun { .. }
            | Event::Tick => None,
        }
    }

    /// A short name of the variant, for logs and metrics.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Scraped { .. } => "scraped",
            Event::Queried { .. } => "queried",
            Event::ScrapeFailed { .. } => "scrape_failed",
            Event::AuthorizationDecided { .. } => "authorization_decided",
            Event::ActionFinished { .. } => "action_finished",
            Event::PageFinished { .. } => "page_finished",
            Event::Pushed { .. } => "pushed",
            Event::Tick => "tick",
            Event::Human { .. } => "human",
            Event::HumanDecided { .. } => "human_decided",
            Event::ScheduledRun { .. } => "scheduled_run",
            Event::InvestigationFinished { .. } => "investigation_finished",
        }
    }
}

/// What an action target answered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionOutcome {
    /// Whether the call succeeded and the target confirmed the intended state (for example
    /// the key now reads `blocked: true`).
    pub succeeded: bool,
    /// The HTTP status, when there was a response.
    pub http_status: Option<u16>,
    /// A one-line description: the confirmed state, or the error.
    pub detail: String,
    /// The state the action replaced, for a compensation that restores it (for example the
    /// key's previous `rpm_limit`, or a model's previous `fallbacks`); empty for most.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub prior: BTreeMap<String, String>,
}
