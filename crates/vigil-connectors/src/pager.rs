//! Pagers: a generic webhook, PagerDuty's Events API v2 and Slack incoming webhooks. Each
//! posts JSON through one shared retry loop that never shows a secret in an error.
//!
//! A page is sent when vigil hands an incident to a human ([`PageMessage`]); when vigil's
//! incident later resolves, the same pager closes or follows it up ([`Resolution`]):
//! PagerDuty gets a `resolve` event with the trigger's dedup key, Slack a short follow-up
//! message, and the webhook the body of [`webhook_resolution_body`].

use std::time::Duration;

use serde_json::{Value, json};

use crate::ConnectorError;
use crate::http::{Origin, excerpt, read_limited, redact_to_origin, request_error};
use crate::secret::Secret;

/// Attempts per page, the first included.
const MAX_ATTEMPTS: u32 = 3;
/// The wait before the second attempt; it doubles before each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Bytes of an answer read, to quote an error or to check a success.
const ANSWER_BODY_LIMIT: usize = 4096;
/// How long one attempt may take unless a pager's `with_timeout` says otherwise.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// PagerDuty's Events API v2 endpoint (US service region).
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";
/// PagerDuty caps `payload.summary` at this many characters.
pub const PAGERDUTY_SUMMARY_CHARS: usize = 1024;
/// Slack caps a section's text at this many characters.
pub const SLACK_SECTION_CHARS: usize = 3000;
/// Slack caps a header block's text at this many characters.
pub const SLACK_HEADER_CHARS: usize = 150;

/// How urgent a page is, in the words paging services use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageSeverity {
    /// Someone must look now.
    Critical,
    /// Someone should look during working hours.
    Warning,
    /// Worth a record.
    Info,
}

impl PageSeverity {
    /// PagerDuty's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// One page as the pagers need it, built by the daemon from the engine's page.
#[derive(Clone, Debug, PartialEq)]
pub struct PageMessage {
    /// Identifies the incident: repeated pages with the same key are one incident.
    pub dedup_key: String,
    /// One line.
    pub title: String,
    /// How urgent.
    pub severity: PageSeverity,
    /// What vigil saw, in two or three sentences.
    pub summary: String,
    /// The facts behind the diagnosis.
    pub evidence: Vec<String>,
    /// What vigil did and what came of it, in order.
    pub actions: Vec<String>,
    /// Why vigil is handing over.
    pub reason: String,
    /// What the human should look at first: the one thing to do.
    pub ask: String,
    /// The root cause in one line (empty in pages of older sessions).
    pub cause: String,
    /// From the symptom to the cause, one line per finding with its layer.
    pub chain: Vec<String>,
    /// What speaks against the cause.
    pub against: Vec<String>,
    /// vigil's changes still in place, each with how to undo it.
    pub left_in_place: Vec<String>,
    /// The commands that show and replay the incident.
    pub commands: Vec<String>,
    /// The assistant's view, checked against vigil's store and marked as its own (empty
    /// when it is off or had not answered).
    pub assistant: Vec<String>,
    /// The full page as JSON, attached where the service allows details.
    pub details: Value,
}

/// That vigil's incident ended: what closes or follows up its page, built by the daemon from
/// the engine's record of the resolution.
#[derive(Clone, Debug, PartialEq)]
pub struct Resolution {
    /// The incident id, which was the page's dedup key.
    pub dedup_key: String,
    /// The page's title, one line: what was wrong.
    pub title: String,
    /// How it ended, in a sentence or two (for example `the finding cleared after vigil's
    /// change`).
    pub summary: String,
    /// Anything else as JSON (the incident's duration, the commands to read it), attached
    /// where the service allows details.
    pub details: Value,
}

/// The generic webhook's body for a resolution. Receivers tell it from a page by `status`:
///
/// ```json
/// {
///   "source": "vigil",
///   "status": "resolved",
///   "incident_id": "inc-0007",
///   "title": "vigil needs a human: token spike on key alice-batch (gateway)",
///   "summary": "the finding cleared after vigil's change",
///   "details": {}
/// }
/// ```
pub fn webhook_resolution_body(resolution: &Resolution) -> Value {
    json!({
        "source": "vigil",
        "status": "resolved",
        "incident_id": resolution.dedup_key,
        "title": resolution.title,
        "summary": resolution.summary,
        "details": resolution.details,
    })
}

/// What vigil tells the owner of something it changed: a notification, not a page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeNotice {
    /// The incident the change belongs to.
    pub incident_id: String,
    /// Who is told (a team).
    pub owner: String,
    /// What vigil changed, one line.
    pub change: String,
    /// Why.
    pub why: String,
    /// How to undo it.
    pub undo: String,
}

/// The generic webhook's body for a notice. Receivers tell it from a page by `status`:
///
/// ```json
/// { "source": "vigil", "status": "notification", "incident_id": "inc-…", "owner": "team-ml",
///   "change": "block key … on litellm-gateway", "why": "…", "undo": "…" }
/// ```
#[must_use]
pub fn webhook_notice_body(notice: &ChangeNotice) -> Value {
    json!({
        "source": "vigil",
        "status": "notification",
        "incident_id": notice.incident_id,
        "owner": notice.owner,
        "change": notice.change,
        "why": notice.why,
        "undo": notice.undo,
    })
}

/// The Slack message for a notice: plain, no header shouting at anyone.
#[must_use]
pub fn slack_notice_message(notice: &ChangeNotice) -> Value {
    let text = format!(
        "*for {}*: vigil changed something of yours: {}\n*why*: {}\n*undo*: {}",
        notice.owner, notice.change, notice.why, notice.undo
    );
    json!({
        "text": mrkdwn(&format!("for {}: vigil {}", notice.owner, notice.change), SLACK_SECTION_CHARS),
        "blocks": [
            { "type": "section", "text": { "type": "mrkdwn", "text": mrkdwn(&text, SLACK_SECTION_CHARS) } },
            { "type": "context", "elements": [{ "type": "mrkdwn", "text": mrkdwn(&format!("notification · incident {}", notice.incident_id), SLACK_SECTION_CHARS) }] },
        ],
    })
}

/// The PagerDuty change event for a notice (Events API v2 `/v2/change/enqueue`): a change
/// shown beside incidents, which pages nobody.
#[must_use]
pub fn pagerduty_change_event(routing_key: &str, notice: &ChangeNotice) -> Value {
    json!({
        "routing_key": routing_key,
        "payload": {
            "summary": truncate_chars(&format!("vigil: {} (for {})", notice.change, notice.owner), 1024),
            "source": "vigil",
            "custom_details": {
                "incident_id": notice.incident_id,
                "owner": notice.owner,
                "why": notice.why,
                "undo": notice.undo,
            },
        },
    })
}

/// A follow-up to a page: what vigil learnt after it paged (the assistant's findings, once
/// checked against vigil's store). Pages nobody.
#[derive(Clone, Debug, PartialEq)]
pub struct FollowUp {
    /// The page's dedup key (the incident).
    pub dedup_key: String,
    /// The page's title.
    pub title: String,
    /// What to add, one line each.
    pub lines: Vec<String>,
    /// The same as JSON, attached where the service allows details.
    pub details: Value,
}

/// The generic webhook's body for a follow-up. Receivers tell it from a page by `status`:
///
/// ```json
/// { "source": "vigil", "status": "updated", "incident_id": "inc-…", "title": "…",
///   "lines": ["The assistant agrees with vigil's diagnosis (runaway_key).", "…"],
///   "details": { "assistant": { … } } }
/// ```
#[must_use]
pub fn webhook_follow_up_body(follow_up: &FollowUp) -> Value {
    json!({
        "source": "vigil",
        "status": "updated",
        "incident_id": follow_up.dedup_key,
        "title": follow_up.title,
        "lines": follow_up.lines,
        "details": follow_up.details,
    })
}

/// The Slack message for a follow-up: `update: <title>` and its lines.
#[must_use]
pub fn slack_follow_up_message(follow_up: &FollowUp) -> Value {
    let header = format!("update: {}", follow_up.title);
    json!({
        "text": mrkdwn(&header, SLACK_SECTION_CHARS),
        "blocks": [
            { "type": "header", "text": { "type": "plain_text", "text": truncate_chars(&header, SLACK_HEADER_CHARS) } },
            { "type": "section", "text": { "type": "mrkdwn", "text": mrkdwn(&follow_up.lines.join("\n"), SLACK_SECTION_CHARS) } },
            { "type": "context", "elements": [{ "type": "mrkdwn", "text": mrkdwn(&format!("update · incident {}", follow_up.dedup_key), SLACK_SECTION_CHARS) }] },
        ],
    })
}

/// The PagerDuty change event for a follow-up (beside the incident, paging nobody: a
/// second trigger could change the alert's severity).
#[must_use]
pub fn pagerduty_follow_up_event(routing_key: &str, follow_up: &FollowUp) -> Value {
    json!({
        "routing_key": routing_key,
        "payload": {
            "summary": truncate_chars(&format!("vigil update: {}", follow_up.title), 1024),
            "source": "vigil",
            "custom_details": {
                "incident_id": follow_up.dedup_key,
                "lines": follow_up.lines,
                "details": follow_up.details,
            },
        },
    })
}

/// The HTTP client and the time one attempt may take: what every pager carries.
#[derive(Clone)]
struct Transport {
    client: reqwest::Client,
    timeout: Duration,
}

impl Transport {
    /// `client`, each attempt taking at most five seconds.
    fn new(client: reqwest::Client) -> Self {
        Transport {
            client,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// One JSON post with its retry rule, shared by every pager.
struct Delivery<'a> {
    /// The name errors give the receiver.
    target: &'static str,
    transport: &'a Transport,
    url: &'a str,
    bearer: Option<&'a Secret>,
    /// Scrubbed from quoted answers.
    secret: Option<&'a str>,
    /// Whether `429 Too Many Requests` is worth retrying (it is for the rate-limited APIs).
    retry_rate_limited: bool,
}

impl Delivery<'_> {
    /// Posts `body` up to three times with a short backoff, retrying transport errors,
    /// timeouts, 5xx answers and, if asked, 429; returns the successful answer's body.
    async fn send(&self, body: &Value) -> Result<Vec<u8>, ConnectorError> {
        let mut attempt = 1;
        let mut backoff = FIRST_BACKOFF;
        // INVARIANT: the loop returns by attempt `MAX_ATTEMPTS` at the latest.
        loop {
            let error = match self.attempt(body).await {
                Ok(answer) => return Ok(answer),
                Err(error) => error,
            };
            if !self.is_retryable(&error) {
                return Err(error);
            }
            if attempt >= MAX_ATTEMPTS {
                return Err(ConnectorError::PagerGaveUp {
                    url: redact_to_origin(self.url),
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            tracing::warn!(attempt, target = self.target, %error, "page not delivered, retrying");
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2);
            attempt += 1;
        }
    }

    async fn attempt(&self, body: &Value) -> Result<Vec<u8>, ConnectorError> {
        let timeout = self.transport.timeout;
        let mut request = self
            .transport
            .client
            .post(self.url)
            .json(body)
            .timeout(timeout);
        if let Some(bearer) = self.bearer {
            request = request.bearer_auth(bearer.expose());
        }
        let shown_url = redact_to_origin(self.url);
        let pending = crate::exchange::Pending::start(
            &request,
            &shown_url,
            &[
                self.secret.unwrap_or_default(),
                self.bearer.map_or("", |bearer| bearer.expose()),
            ],
        );
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => {
                let error = request_error(self.target, &shown_url, timeout, error);
                if let Some(pending) = pending {
                    pending.failed(&error);
                }
                return Err(error);
            }
        };
        let status = response.status();
        let origin = Origin {
            target: self.target,
            shown_url: &shown_url,
            timeout,
        };
        // A success whose body is too large or cut off is still a delivered page.
        let answer = read_limited(&origin, response, ANSWER_BODY_LIMIT)
            .await
            .unwrap_or_default();
        if let Some(pending) = pending {
            pending.answered(status.as_u16(), &answer);
        }
        if status.is_success() {
            return Ok(answer);
        }
        Err(ConnectorError::Status {
            target: self.target.to_owned(),
            url: shown_url,
            status: status.as_u16(),
            excerpt: excerpt(&answer, self.secret),
        })
    }

    fn is_retryable(&self, error: &ConnectorError) -> bool {
        match error {
            ConnectorError::Transport { .. } | ConnectorError::Timeout { .. } => true,
            ConnectorError::Status { status, .. } => {
                *status >= 500 || (self.retry_rate_limited && *status == 429)
            }
            _ => false,
        }
    }
}

/// Sends pages to one webhook URL. Errors and `Debug` show only the URL's origin, since a
/// webhook's path often is its secret.
#[derive(Clone)]
pub struct WebhookPager {
    url: String,
    bearer: Option<Secret>,
    transport: Transport,
}

impl std::fmt::Debug for WebhookPager {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("WebhookPager")
            .field("url", &redact_to_origin(&self.url))
            .field("bearer", &self.bearer)
            .field("timeout", &self.transport.timeout)
            .finish_non_exhaustive()
    }
}

impl WebhookPager {
    /// A pager posting to `url`, with a bearer token if the receiver needs one; each attempt
    /// may take five seconds.
    pub fn new(url: impl Into<String>, bearer: Option<Secret>, client: reqwest::Client) -> Self {
        Self {
            url: url.into(),
            bearer,
            transport: Transport::new(client),
        }
    }

    /// The same pager with another limit on how long one attempt may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.transport.timeout = timeout;
        self
    }

    /// Posts `page`, up to three times with a short backoff, retrying only transport errors,
    /// timeouts and 5xx answers; a 4xx is returned at once, since resending cannot fix it.
    pub async fn send(&self, page: &Value) -> Result<(), ConnectorError> {
        self.delivery().send(page).await.map(drop)
    }

    /// Tells an owner what vigil changed (`"status": "notification"`).
    pub async fn notify(&self, notice: &ChangeNotice) -> Result<(), ConnectorError> {
        self.delivery()
            .send(&webhook_notice_body(notice))
            .await
            .map(drop)
    }

    /// Posts the follow-up of a resolved incident ([`webhook_resolution_body`]), retried as
    /// [`WebhookPager::send`] is.
    pub async fn resolve(&self, resolution: &Resolution) -> Result<(), ConnectorError> {
        self.delivery()
            .send(&webhook_resolution_body(resolution))
            .await
            .map(drop)
    }

    /// Posts a follow-up to a page ([`webhook_follow_up_body`]), retried as
    /// [`WebhookPager::send`] is.
    pub async fn follow_up(&self, follow_up: &FollowUp) -> Result<(), ConnectorError> {
        self.delivery()
            .send(&webhook_follow_up_body(follow_up))
            .await
            .map(drop)
    }

    fn delivery(&self) -> Delivery<'_> {
        Delivery {
            target: "pager",
            transport: &self.transport,
            url: &self.url,
            bearer: self.bearer.as_ref(),
            secret: self.bearer.as_ref().map(Secret::expose),
            retry_rate_limited: false,
        }
    }
}

/// Sends pages to PagerDuty's Events API v2. The routing key never appears in an error or in
/// `Debug`.
#[derive(Clone)]
pub struct PagerDutyPager {
    routing_key: Secret,
    events_url: String,
    transport: Transport,
}

impl std::fmt::Debug for PagerDutyPager {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("PagerDutyPager")
            .field("routing_key", &self.routing_key)
            .field("events_url", &redact_to_origin(&self.events_url))
            .field("timeout", &self.transport.timeout)
            .finish_non_exhaustive()
    }
}

impl PagerDutyPager {
    /// A pager for the integration whose routing (integration) key is `routing_key`, posting
    /// to `events_url` ([`PAGERDUTY_EVENTS_URL`], the EU endpoint, or a fake in tests).
    pub fn new(
        routing_key: Secret,
        events_url: impl Into<String>,
        client: reqwest::Client,
    ) -> Self {
        Self {
            routing_key,
            events_url: events_url.into(),
            transport: Transport::new(client),
        }
    }

    /// The same pager with another limit on how long one attempt may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.transport.timeout = timeout;
        self
    }

    /// Triggers (or re-triggers) the incident `page.dedup_key`; returns the dedup key
    /// PagerDuty answered with. Retries transport errors, timeouts, 429 and 5xx; a 400
    /// (invalid event) is returned at once with PagerDuty's message.
    pub async fn trigger(&self, page: &PageMessage) -> Result<String, ConnectorError> {
        let body = self.trigger_body(page);
        self.post(&body, &page.dedup_key).await
    }

    /// Tells an owner what vigil changed, as a change event (`/v2/change/enqueue` beside
    /// the events URL), which pages nobody.
    pub async fn notify(&self, notice: &ChangeNotice) -> Result<(), ConnectorError> {
        self.change(&pagerduty_change_event(self.routing_key.expose(), notice))
            .await
    }

    /// Adds a follow-up beside the incident as a change event, which pages nobody.
    pub async fn follow_up(&self, follow_up: &FollowUp) -> Result<(), ConnectorError> {
        self.change(&pagerduty_follow_up_event(
            self.routing_key.expose(),
            follow_up,
        ))
        .await
    }

    /// Sends a change event (`/v2/change/enqueue` beside the events URL).
    async fn change(&self, body: &Value) -> Result<(), ConnectorError> {
        let url = match self.events_url.strip_suffix("/v2/enqueue") {
            Some(base) => format!("{base}/v2/change/enqueue"),
            None => format!("{}/change", self.events_url.trim_end_matches('/')),
        };
        let delivery = Delivery {
            target: "pagerduty",
            transport: &self.transport,
            url: &url,
            bearer: None,
            secret: Some(self.routing_key.expose()),
            retry_rate_limited: true,
        };
        delivery.send(body).await.map(drop)
    }

    /// Resolves the incident `resolution.dedup_key` (the trigger's dedup key) with a
    /// `resolve` event, which needs no payload; returns the dedup key PagerDuty answered
    /// with. Retried as [`PagerDutyPager::trigger`] is. Resolving an incident PagerDuty no
    /// longer holds open is accepted and changes nothing.
    pub async fn resolve(&self, resolution: &Resolution) -> Result<String, ConnectorError> {
        let body = json!({
            "routing_key": self.routing_key.expose(),
            "event_action": "resolve",
            "dedup_key": resolution.dedup_key,
        });
        self.post(&body, &resolution.dedup_key).await
    }

    /// The trigger event for `page`.
    fn trigger_body(&self, page: &PageMessage) -> Value {
        json!({
            "routing_key": self.routing_key.expose(),
            "event_action": "trigger",
            "dedup_key": page.dedup_key,
            "client": "vigil",
            "payload": {
                "summary": truncate_chars(&page.title, PAGERDUTY_SUMMARY_CHARS),
                "source": "vigil",
                "severity": page.severity.as_str(),
                "custom_details": page.details,
            },
        })
    }

    async fn post(&self, body: &Value, sent_dedup_key: &str) -> Result<String, ConnectorError> {
        let delivery = Delivery {
            target: "pagerduty",
            transport: &self.transport,
            url: &self.events_url,
            bearer: None,
            secret: Some(self.routing_key.expose()),
            retry_rate_limited: true,
        };
        let answer = delivery.send(body).await?;
        // PagerDuty answers `{"status":"success","dedup_key":...}`; the key sent is the fallback.
        let answered_key = serde_json::from_slice::<Value>(&answer)
            .ok()
            .and_then(|answer| {
                answer
                    .get("dedup_key")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            });
        Ok(answered_key.unwrap_or_else(|| sent_dedup_key.to_owned()))
    }
}

/// Sends pages to a Slack incoming webhook. The webhook URL is the secret (its path holds the
/// token): errors and `Debug` show only its origin.
#[derive(Clone)]
pub struct SlackPager {
    webhook_url: Secret,
    transport: Transport,
}

impl std::fmt::Debug for SlackPager {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("SlackPager")
            .field("webhook_url", &redact_to_origin(self.webhook_url.expose()))
            .field("timeout", &self.transport.timeout)
            .finish_non_exhaustive()
    }
}

impl SlackPager {
    /// A pager posting to the incoming webhook `webhook_url`.
    pub fn new(webhook_url: Secret, client: reqwest::Client) -> Self {
        Self {
            webhook_url,
            transport: Transport::new(client),
        }
    }

    /// The same pager with another limit on how long one attempt may take.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.transport.timeout = timeout;
        self
    }

    /// Posts `page` as a message with blocks. Retries transport errors, timeouts, 429 and
    /// 5xx; Slack's 4xx answers (`invalid_payload`, `invalid_token`, `no_service`,
    /// `channel_is_archived`, ...) are returned at once.
    pub async fn send(&self, page: &PageMessage) -> Result<(), ConnectorError> {
        self.delivery().send(&slack_message(page)).await.map(drop)
    }

    /// Tells an owner what vigil changed, as a plain message.
    pub async fn notify(&self, notice: &ChangeNotice) -> Result<(), ConnectorError> {
        self.delivery()
            .send(&slack_notice_message(notice))
            .await
            .map(drop)
    }

    /// Posts a follow-up to a page as a message of its own naming the incident.
    pub async fn follow_up(&self, follow_up: &FollowUp) -> Result<(), ConnectorError> {
        self.delivery()
            .send(&slack_follow_up_message(follow_up))
            .await
            .map(drop)
    }

    /// Posts the follow-up of a resolved incident ([`slack_resolution_message`]), retried as
    /// [`SlackPager::send`] is. An incoming webhook cannot edit or thread under the page it
    /// posted, so the follow-up is a message of its own naming the incident.
    pub async fn resolve(&self, resolution: &Resolution) -> Result<(), ConnectorError> {
        self.delivery()
            .send(&slack_resolution_message(resolution))
            .await
            .map(drop)
    }

    fn delivery(&self) -> Delivery<'_> {
        Delivery {
            target: "slack",
            transport: &self.transport,
            url: self.webhook_url.expose(),
            bearer: None,
            secret: Some(self.webhook_url.expose()),
            retry_rate_limited: true,
        }
    }
}

/// The Slack follow-up for a resolved incident: `resolved: <title>` as the header, the
/// incident id, and how it ended.
pub fn slack_resolution_message(resolution: &Resolution) -> Value {
    let header = format!("resolved: {}", resolution.title);
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate_chars(&header, SLACK_HEADER_CHARS),
            },
        }),
        json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": mrkdwn(
                    &format!("resolved · incident {}", resolution.dedup_key),
                    SLACK_SECTION_CHARS,
                ),
            }],
        }),
    ];
    if !resolution.summary.trim().is_empty() {
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": mrkdwn(&resolution.summary, SLACK_SECTION_CHARS) },
        }));
    }
    let fallback = if resolution.summary.trim().is_empty() {
        header
    } else {
        format!("{header}: {}", resolution.summary)
    };
    json!({
        "text": mrkdwn(&fallback, SLACK_SECTION_CHARS),
        "blocks": blocks,
    })
}

/// The Slack message for `page`: a fallback `text` and blocks that read in half a minute.
pub fn slack_message(page: &PageMessage) -> Value {
    let mut blocks = vec![
        json!({
            "type": "header",
            "text": {
                "type": "plain_text",
                "text": truncate_chars(&page.title, SLACK_HEADER_CHARS),
            },
        }),
        json!({
            "type": "context",
            "elements": [{
                "type": "mrkdwn",
                "text": mrkdwn(
                    &format!("{} · incident {}", page.severity.as_str(), page.dedup_key),
                    SLACK_SECTION_CHARS,
                ),
            }],
        }),
    ];
    let mut section = |heading: &str, text: &str| {
        if text.trim().is_empty() {
            return;
        }
        let heading = format!("*{heading}*\n");
        let budget = SLACK_SECTION_CHARS.saturating_sub(heading.chars().count());
        blocks.push(json!({
            "type": "section",
            "text": { "type": "mrkdwn", "text": format!("{heading}{}", mrkdwn(text, budget)) },
        }));
    };
    section("What vigil saw", &page.summary);
    section("Root cause", &page.cause);
    section("From symptom to cause", &bullets(&page.chain));
    section("Evidence", &bullets(&page.evidence));
    section("Against it", &bullets(&page.against));
    section("What vigil did", &bullets(&page.actions));
    section("Left in place", &bullets(&page.left_in_place));
    section("The assistant's view (checked)", &bullets(&page.assistant));
    section("Why you are paged", &page.reason);
    section("Do this", &page.ask);
    section("Read and replay", &code_lines(&page.commands));
    let fallback = format!("{}: {}", page.title, page.summary);
    json!({
        "text": mrkdwn(&fallback, SLACK_SECTION_CHARS),
        "blocks": blocks,
    })
}

/// Commands, one per line, as code.
fn code_lines(commands: &[String]) -> String {
    commands
        .iter()
        .map(|command| format!("`{}`", command.replace('`', "'")))
        .collect::<Vec<_>>()
        .join("\n")
}

fn bullets(items: &[String]) -> String {
    items
        .iter()
        .map(|item| format!("• {item}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// `text` escaped for Slack's mrkdwn (`&`, `<`, `>`) and cut to at most `limit` characters,
/// never inside an escape; a cut text ends with `…`.
fn mrkdwn(text: &str, limit: usize) -> String {
    let mut escaped = String::with_capacity(text.len().min(limit));
    let mut count: usize = 0;
    for (index, character) in text.char_indices() {
        let piece = match character {
            '&' => "&amp;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => "",
        };
        let piece_chars = if piece.is_empty() { 1 } else { piece.len() };
        let rest_is_last = index.saturating_add(character.len_utf8()) >= text.len();
        // Keep room for the ellipsis unless this is the last character.
        let room = if rest_is_last {
            limit
        } else {
            limit.saturating_sub(1)
        };
        if count.saturating_add(piece_chars) > room {
            escaped.push('…');
            return escaped;
        }
        if piece.is_empty() {
            escaped.push(character);
        } else {
            escaped.push_str(piece);
        }
        count += piece_chars;
    }
    escaped
}

/// The first `limit` characters of `text`, cut on a character boundary.
fn truncate_chars(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => text.get(..cut).unwrap_or(text).to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_cuts_on_character_boundaries() {
        assert_eq!(truncate_chars("ééé", 2), "éé");
        assert_eq!(truncate_chars("ab", 5), "ab");
        assert_eq!(mrkdwn("a<b", 10), "a&lt;b");
        // The escape does not fit with the ellipsis: it is dropped whole, not cut.
        assert_eq!(mrkdwn("ab<cd", 5), "ab…");
        assert_eq!(mrkdwn("abcde", 5), "abcde");
        assert_eq!(mrkdwn("abcdef", 5), "abcd…");
        assert_eq!(mrkdwn(&"ü".repeat(4000), 3000).chars().count(), 3000);
    }
}
