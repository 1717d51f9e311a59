//! Carrying out the engine's commands that touch the world: remediation actions, pages and
//! wake-ups. Each runs as its own tracked task and answers with an event.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use vigil_connectors::exchange::{Exchange, capture};
use vigil_connectors::pager::{
    ChangeNotice, FollowUp, PageMessage, PageSeverity, PagerDutyPager, Resolution, SlackPager,
    WebhookPager,
};
use vigil_core::Timestamp;
use vigil_core::detector::Severity;
use vigil_core::engine::{Action, Event, Notice, Page};
use vigil_ledger::BlobStore;

use super::actions::{self, Targets};
use super::telemetry::Telemetry;
use crate::clock::Clock;
use crate::investigator::Investigator;
use crate::logsafe::Escaped;

/// Where pages go.
#[derive(Clone, Debug)]
#[expect(
    clippy::enum_variant_names,
    reason = "`PagerDuty` is the service's name, not a kind of `Pager`"
)]
pub(crate) enum Pager {
    /// POST JSON to a webhook.
    Webhook(WebhookPager),
    /// Trigger a PagerDuty incident per vigil incident.
    PagerDuty(PagerDutyPager),
    /// Post to a Slack incoming webhook.
    Slack(SlackPager),
    /// Log only.
    Log,
}

/// The action targets, the pager and the plumbing to answer the engine.
pub(crate) struct Effects {
    pub(crate) targets: Arc<Targets>,
    pub(crate) pager: Pager,
    pub(crate) tracker: TaskTracker,
    pub(crate) answers: mpsc::Sender<Event>,
    pub(crate) clock: Clock,
    pub(crate) cancel: CancellationToken,
    pub(crate) telemetry: Arc<Telemetry>,
    /// Where the HTTP exchanges of actions and pages are stored.
    pub(crate) blobs: BlobStore,
    /// The exchanges blob of each action or page answered but not yet recorded, by its id:
    /// stored before the answer is sent, taken when the engine loop records the answer.
    pub(crate) exchanges: Arc<Mutex<BTreeMap<String, String>>>,
    /// The assistant, when `diagnosis.assistant` is enabled.
    pub(crate) investigator: Option<Arc<Investigator>>,
    /// Where an investigation's tool calls go (the engine loop answers them).
    pub(crate) tool_requests: mpsc::Sender<super::assistant::ToolRequest>,
    /// A replica's lease, when this daemon is its term: every action and page waits until
    /// the lease outlives the call, or is not made (the term ends; the next leader carries
    /// the work on after reading the target back).
    pub(crate) lease: Option<Arc<super::replica::LeaseView>>,
    /// The longest an action's call may take.
    pub(crate) action_timeout: std::time::Duration,
}

/// Whether the lease (if any) outlives a call of `timeout`, waiting a little for a renewal.
async fn lease_allows(
    lease: Option<&super::replica::LeaseView>,
    timeout: std::time::Duration,
    what: &str,
    id: &str,
) -> bool {
    let Some(lease) = lease else {
        return true;
    };
    if lease.ensure(timeout, timeout).await {
        return true;
    }
    tracing::error!(
        id,
        epoch = lease.epoch(),
        "{what} not made: this replica's lease would not outlive the call; the next leader carries it on"
    );
    false
}

/// Stores `exchanges` as one blob and notes it for the answer `id`; a failure is logged (the
/// answer is still recorded, without its evidence).
async fn keep_exchanges(
    blobs: &BlobStore,
    noted: &Mutex<BTreeMap<String, String>>,
    id: &str,
    exchanges: &[Exchange],
) {
    if exchanges.is_empty() {
        return;
    }
    let bytes = serde_json::to_value(exchanges)
        .map(|value| vigil_ledger::canonical_json(&value).into_bytes())
        .unwrap_or_default();
    match blobs.put(&bytes).await {
        Ok(hash) => {
            if let Ok(mut noted) = noted.lock() {
                noted.insert(id.to_owned(), hash);
            }
        }
        Err(error) => {
            tracing::error!(%error, id, "cannot store the HTTP exchanges; the answer is recorded without them")
        }
    }
}

impl Effects {
    /// The exchanges blob stored for the answer `id`, if any (taken: asked once).
    pub(crate) fn take_exchanges(&self, id: &str) -> Option<String> {
        self.exchanges.lock().ok()?.remove(id)
    }

    /// Carries out a remediation action and answers with `ActionFinished`. With
    /// `reconcile` (an action a crash left unfinished), the target is read first and an
    /// action it already shows is not made again.
    pub(crate) fn execute(
        &self,
        action_id: String,
        incident_id: String,
        idempotency_key: String,
        action: Action,
        reconcile: bool,
    ) {
        let targets = Arc::clone(&self.targets);
        let answers = self.answers.clone();
        let telemetry = Arc::clone(&self.telemetry);
        let (blobs, noted) = (self.blobs.clone(), Arc::clone(&self.exchanges));
        let (lease, timeout) = (self.lease.clone(), self.action_timeout);
        self.tracker.spawn(async move {
            if !lease_allows(lease.as_deref(), timeout, "action", &action_id).await {
                return;
            }
            tracing::info!(%action_id, %idempotency_key, action = %Escaped(&action.describe()), reconcile, "carrying out action");
            let (outcome, exchanges) =
                capture(actions::run(&targets, &action, &idempotency_key, reconcile)).await;
            keep_exchanges(&blobs, &noted, &action_id, &exchanges).await;
            telemetry.action(if outcome.succeeded { "succeeded" } else { "failed" });
            let _ = answers.send(Event::ActionFinished { action_id, incident_id, outcome }).await;
        });
    }

    /// Sends a page and answers with `PageFinished`.
    pub(crate) fn page(&self, page_id: String, incident_id: String, page: Page) {
        let pager = self.pager.clone();
        let answers = self.answers.clone();
        let telemetry = Arc::clone(&self.telemetry);
        let (blobs, noted) = (self.blobs.clone(), Arc::clone(&self.exchanges));
        let (lease, timeout) = (self.lease.clone(), self.action_timeout);
        self.tracker.spawn(async move {
            if !lease_allows(lease.as_deref(), timeout, "page", &page_id).await {
                return;
            }
            let body = serde_json::json!({
                "source": "vigil",
                "vigil_version": env!("CARGO_PKG_VERSION"),
                "page_id": page_id,
                "incident_id": incident_id,
                "severity": page.severity,
                "title": page.title,
                "why": page.why,
            });
            let ((delivered, detail), exchanges) = capture(async { match &pager {
                Pager::Webhook(webhook) => match webhook.send(&body).await {
                    Ok(()) => (true, "delivered to the webhook".to_owned()),
                    Err(error) => (false, error.to_string()),
                },
                Pager::PagerDuty(pagerduty) => {
                    match pagerduty.trigger(&page_message(&incident_id, &page, body.clone())).await {
                        Ok(dedup_key) => (true, format!("delivered to PagerDuty (dedup key `{dedup_key}`)")),
                        Err(error) => (false, error.to_string()),
                    }
                }
                Pager::Slack(slack) => match slack.send(&page_message(&incident_id, &page, body.clone())).await {
                    Ok(()) => (true, "delivered to Slack".to_owned()),
                    Err(error) => (false, error.to_string()),
                },
                Pager::Log => {
                    tracing::error!(%incident_id, title = %Escaped(&page.title), reason = %Escaped(&page.why.reason), "PAGE (log pager)");
                    (true, "written to the log".to_owned())
                }
            } }).await;
            keep_exchanges(&blobs, &noted, &page_id, &exchanges).await;
            telemetry.page(if delivered { "delivered" } else { "failed" });
            let _ = answers.send(Event::PageFinished { page_id, incident_id, delivered, detail }).await;
        });
    }

    /// Resolves the page of an incident that ended: PagerDuty's `resolve` with the incident
    /// as dedup key, a follow-up on Slack and the webhook. Nothing answers it; a failure is
    /// logged and counted (`vigil_pages_total{result="resolve_failed"}`).
    pub(crate) fn resolve_page(&self, incident_id: String, title: String, summary: String) {
        let pager = self.pager.clone();
        let telemetry = Arc::clone(&self.telemetry);
        let (blobs, noted) = (self.blobs.clone(), Arc::clone(&self.exchanges));
        self.tracker.spawn(async move {
            let resolution = Resolution {
                dedup_key: incident_id.clone(),
                title,
                summary,
                details: serde_json::json!({
                    "commands": vigil_core::engine::incident_commands(&incident_id),
                }),
            };
            let (result, exchanges) = capture(async {
                match &pager {
                    Pager::Webhook(webhook) => webhook.resolve(&resolution).await,
                    Pager::PagerDuty(pagerduty) => pagerduty.resolve(&resolution).await.map(drop),
                    Pager::Slack(slack) => slack.resolve(&resolution).await,
                    Pager::Log => {
                        tracing::info!(%incident_id, title = %Escaped(&resolution.title), "PAGE RESOLVED (log pager)");
                        Ok(())
                    }
                }
            })
            .await;
            keep_exchanges(&blobs, &noted, &format!("{incident_id}/resolve"), &exchanges).await;
            match result {
                Ok(()) => telemetry.page("resolved"),
                Err(error) => {
                    telemetry.page("resolve_failed");
                    tracing::warn!(%incident_id, error = %Escaped(&error.to_string()), "the page could not be resolved; resolve it by hand");
                }
            }
        });
    }

    /// Tells an owner what vigil changed: a notification, not a page (the webhook's body has
    /// `"status": "notification"`, Slack gets a message, PagerDuty a change event, which
    /// pages nobody). A failure is logged and counted (`vigil_pages_total{result="notify_failed"}`).
    pub(crate) fn notify(&self, incident_id: String, notice: Notice) {
        let pager = self.pager.clone();
        let telemetry = Arc::clone(&self.telemetry);
        let (blobs, noted) = (self.blobs.clone(), Arc::clone(&self.exchanges));
        self.tracker.spawn(async move {
            let change = ChangeNotice {
                incident_id: incident_id.clone(),
                owner: notice.owner.clone(),
                change: notice.change.clone(),
                why: notice.why.clone(),
                undo: notice.undo.clone(),
            };
            let (result, exchanges) = capture(async {
                match &pager {
                    Pager::Webhook(webhook) => webhook.notify(&change).await,
                    Pager::PagerDuty(pagerduty) => pagerduty.notify(&change).await,
                    Pager::Slack(slack) => slack.notify(&change).await,
                    Pager::Log => {
                        tracing::info!(%incident_id, owner = %Escaped(&change.owner), change = %Escaped(&change.change), "OWNER NOTIFIED (log pager)");
                        Ok(())
                    }
                }
            })
            .await;
            keep_exchanges(&blobs, &noted, &format!("{incident_id}/notify"), &exchanges).await;
            match result {
                Ok(()) => telemetry.page("notified"),
                Err(error) => {
                    telemetry.page("notify_failed");
                    tracing::warn!(%incident_id, owner = %Escaped(&change.owner), error = %Escaped(&error.to_string()), "the owner could not be told of vigil's change");
                }
            }
        });
    }

    /// Runs an investigation and answers with `InvestigationFinished`, its transcript stored
    /// as a blob first. Not tracked as in flight: shutting down does not wait for it, and a
    /// session resumed after a crash runs it again (it is read-only).
    pub(crate) fn investigate(
        &self,
        investigation_id: String,
        request: vigil_core::investigation::InvestigationRequest,
    ) {
        let answers = self.answers.clone();
        let telemetry = Arc::clone(&self.telemetry);
        let blobs = self.blobs.clone();
        let cancel = self.cancel.clone();
        let investigator = self.investigator.clone();
        let tools = super::assistant::LoopTools {
            requests: self.tool_requests.clone(),
        };
        self.tracker.spawn(async move {
            let incident_id = request.incident_id.clone();
            let mut finished = match &investigator {
                Some(investigator) => {
                    let run = investigator.investigate(&request, &tools, crate::clock::wall_now_ms());
                    tokio::select! {
                        () = cancel.cancelled() => return,
                        finished = run => finished,
                    }
                }
                // A session whose config has the assistant, resumed without one.
                None => crate::investigator::Finished::unavailable(&request),
            };
            let bytes = vigil_ledger::canonical_json(&finished.transcript).into_bytes();
            match blobs.put(&bytes).await {
                Ok(hash) => finished.set_transcript_blob(hash),
                Err(error) => tracing::error!(%error, %investigation_id, "cannot store the investigation's transcript; its outcome is recorded without it"),
            }
            let outcome = finished.outcome;
            telemetry.investigation(&outcome);
            let _ = answers
                .send(Event::InvestigationFinished {
                    investigation_id,
                    incident_id,
                    outcome: Box::new(outcome),
                })
                .await;
        });
    }

    /// Tells the human an incident paged what the assistant found (a follow-up, paging
    /// nobody), once.
    pub(crate) fn update_page(
        &self,
        incident_id: String,
        title: String,
        note: vigil_core::engine::AssistantNote,
    ) {
        let pager = self.pager.clone();
        let telemetry = Arc::clone(&self.telemetry);
        let (blobs, noted) = (self.blobs.clone(), Arc::clone(&self.exchanges));
        self.tracker.spawn(async move {
            let lines = assistant_lines(&note);
            let follow_up = FollowUp {
                dedup_key: incident_id.clone(),
                title,
                lines,
                details: serde_json::json!({ "assistant": note }),
            };
            let (result, exchanges) = capture(async {
                match &pager {
                    Pager::Webhook(webhook) => webhook.follow_up(&follow_up).await,
                    Pager::PagerDuty(pagerduty) => pagerduty.follow_up(&follow_up).await,
                    Pager::Slack(slack) => slack.follow_up(&follow_up).await,
                    Pager::Log => {
                        tracing::info!(%incident_id, title = %Escaped(&follow_up.title), lines = %Escaped(&follow_up.lines.join(" | ")), "PAGE UPDATED (log pager)");
                        Ok(())
                    }
                }
            })
            .await;
            keep_exchanges(&blobs, &noted, &format!("{incident_id}/update"), &exchanges).await;
            match result {
                Ok(()) => telemetry.page("updated"),
                Err(error) => {
                    telemetry.page("update_failed");
                    tracing::warn!(%incident_id, error = %Escaped(&error.to_string()), "the page could not be followed up with the assistant's findings");
                }
            }
        });
    }

    /// Sends `Tick` at `at`, unless the daemon stops first.
    pub(crate) fn wake_at(&self, at: Timestamp) {
        let answers = self.answers.clone();
        let cancel = self.cancel.clone();
        let deadline = self.clock.instant_at(at);
        self.tracker.spawn(async move {
            tokio::select! {
                () = cancel.cancelled() => {}
                () = tokio::time::sleep_until(deadline) => {
                    let _ = answers.send(Event::Tick).await;
                }
            }
        });
    }
}

/// The assistant's note as lines for people: the agreement, what was checked, then each
/// surviving hypothesis, the narrative and the suggested next check.
fn assistant_lines(note: &vigil_core::engine::AssistantNote) -> Vec<String> {
    let mut lines = vec![note.agreement.clone(), note.checked.clone()];
    lines.extend(
        note.hypotheses
            .iter()
            .map(|line| format!("assistant: {line}")),
    );
    if let Some(narrative) = &note.narrative {
        lines.push(format!("assistant: {narrative}"));
    }
    if let Some(next) = &note.next_check {
        lines.push(format!("assistant suggests: {next}"));
    }
    lines
}

/// The connector-side page: the incident is the dedup key, so that repeated pages about one
/// incident are one incident in the paging service.
fn page_message(incident_id: &str, page: &Page, details: serde_json::Value) -> PageMessage {
    PageMessage {
        dedup_key: incident_id.to_owned(),
        title: page.title.clone(),
        severity: match page.severity {
            Severity::Page => PageSeverity::Critical,
            Severity::Ticket => PageSeverity::Warning,
            Severity::Info => PageSeverity::Info,
        },
        summary: page.why.summary.clone(),
        evidence: page.why.evidence.clone(),
        actions: page.why.actions.clone(),
        reason: page.why.reason.clone(),
        ask: page.why.ask.clone(),
        cause: page.why.cause.clone(),
        chain: page.why.chain.clone(),
        against: page.why.against.clone(),
        left_in_place: page.why.left_in_place.clone(),
        commands: page.why.commands.clone(),
        assistant: page
            .why
            .assistant
            .as_deref()
            .map_or_else(Vec::new, assistant_lines),
        details,
    }
}

#[cfg(test)]
mod tests {
    use vigil_core::engine::WhyPacket;

    use super::*;

    // The incident id is the dedup key: PagerDuty then folds repeated pages into one incident.
    #[test]
    fn a_page_becomes_a_message_keyed_by_its_incident() {
        let page = Page {
            severity: Severity::Ticket,
            title: "budget runs out in 20 hours".to_owned(),
            why: WhyPacket {
                incident_id: "inc-3".to_owned(),
                summary: "spend is up".to_owned(),
                evidence: vec!["12 USD/h".to_owned()],
                actions: vec![],
                reason: "no runbook".to_owned(),
                ask: "raise the budget or find the spender".to_owned(),
                cause: "a reading past its limit: key batch (threshold_breach, 90 %)".to_owned(),
                chain: vec![
                    "[gateway] hours of key budget left of batch at 20 (limit 24)".to_owned(),
                ],
                against: vec!["[gateway] the spend rate is flat".to_owned()],
                left_in_place: vec!["block key k on gw (undo: unblock key k on gw)".to_owned()],
                commands: vigil_core::engine::incident_commands("inc-3"),
                assistant: None,
            },
        };
        let details = serde_json::json!({"incident_id": "inc-3"});
        let message = page_message("inc-3", &page, details.clone());
        assert_eq!(
            message,
            PageMessage {
                dedup_key: "inc-3".to_owned(),
                title: "budget runs out in 20 hours".to_owned(),
                severity: PageSeverity::Warning,
                summary: "spend is up".to_owned(),
                evidence: vec!["12 USD/h".to_owned()],
                actions: vec![],
                reason: "no runbook".to_owned(),
                ask: "raise the budget or find the spender".to_owned(),
                cause: "a reading past its limit: key batch (threshold_breach, 90 %)".to_owned(),
                chain: vec![
                    "[gateway] hours of key budget left of batch at 20 (limit 24)".to_owned()
                ],
                against: vec!["[gateway] the spend rate is flat".to_owned()],
                left_in_place: vec!["block key k on gw (undo: unblock key k on gw)".to_owned()],
                commands: vec![
                    "vigil ledger show --incident inc-3".to_owned(),
                    "vigil replay --incident inc-3".to_owned(),
                ],
                assistant: Vec::new(),
                details,
            }
        );
        for (severity, expected) in [
            (Severity::Page, PageSeverity::Critical),
            (Severity::Info, PageSeverity::Info),
        ] {
            let page = Page {
                severity,
                ..page.clone()
            };
            assert_eq!(
                page_message("inc-3", &page, serde_json::Value::Null).severity,
                expected
            );
        }
    }
}
