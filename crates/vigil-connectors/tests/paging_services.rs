//! Loopback tests of the PagerDuty and Slack pagers against faithful fakes of their APIs:
//! request shapes, de-duplication, retries on 429 and 5xx, no retries on other 4xx,
//! truncation on character boundaries, secrets that never show, and resolving a page when
//! vigil's incident resolves.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    reason = "tests fail loudly by design"
)]

mod common;

use common::client;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use vigil_connectors::ConnectorError;
use vigil_connectors::exchange::capture;
use vigil_connectors::pager::{PageMessage, PageSeverity, PagerDutyPager, Resolution, SlackPager};
use vigil_connectors::secret::Secret;
use vigil_sim::{PagerDutyFake, SlackFake};

/// A 32-character integration key, as PagerDuty issues them.
const ROUTING_KEY: &str = "R0UT1NGKEYR0UT1NGKEYR0UT1NGKEY32";

fn page() -> PageMessage {
    PageMessage {
        dedup_key: "inc-0007".to_owned(),
        title: "block of key alice-batch did not hold".to_owned(),
        severity: PageSeverity::Critical,
        summary: "Token rate of key alice-batch is 12x its baseline.".to_owned(),
        evidence: vec![
            "rate 1200 tok/s > 100 tok/s".to_owned(),
            "share 93% <of> gateway".to_owned(),
        ],
        actions: vec!["blocked key alice-batch: ok".to_owned()],
        reason: "the rate did not fall within 5 minutes".to_owned(),
        ask: "check the batch job & its retries".to_owned(),
        cause: "a runaway key: key alice-batch (gateway layer; runaway_key, 93 %)".to_owned(),
        chain: vec![
            "[gateway] token spike on key alice-batch".to_owned(),
            "[gateway] cause: a runaway key".to_owned(),
        ],
        against: vec!["[gateway] requests <flat>".to_owned()],
        left_in_place: vec!["block key alice-batch (undo: unblock key alice-batch)".to_owned()],
        commands: vec![
            "vigil ledger show --incident inc-0007".to_owned(),
            "vigil replay --incident inc-0007".to_owned(),
        ],
        assistant: vec!["The assistant agrees with vigil's diagnosis (runaway_key).".to_owned()],
        details: json!({"incident_id": "inc-0007", "reason": "the rate did not fall"}),
    }
}

fn resolution() -> Resolution {
    Resolution {
        dedup_key: "inc-0007".to_owned(),
        title: "block of key alice-batch did not hold".to_owned(),
        summary: "the finding cleared 12 min after the page; the block stays in place".to_owned(),
        details: json!({"incident_id": "inc-0007", "duration": "14 min"}),
    }
}

async fn pagerduty() -> (PagerDutyFake, PagerDutyPager, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let fake = PagerDutyFake::start(listener, shutdown.clone())
        .await
        .unwrap();
    let pager = PagerDutyPager::new(Secret::new(ROUTING_KEY), fake.events_url(), client());
    (fake, pager, shutdown)
}

async fn slack() -> (SlackFake, SlackPager, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let shutdown = CancellationToken::new();
    let fake = SlackFake::start(listener, shutdown.clone()).await.unwrap();
    let pager = SlackPager::new(Secret::new(fake.webhook_url()), client());
    (fake, pager, shutdown)
}

#[tokio::test]
async fn pagerduty_trigger_has_the_events_v2_shape() {
    let (fake, pager, shutdown) = pagerduty().await;
    let dedup_key = pager.trigger(&page()).await.unwrap();
    assert_eq!(dedup_key, "inc-0007");
    assert_eq!(
        fake.events(),
        vec![json!({
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": "inc-0007",
            "client": "vigil",
            "payload": {
                "summary": "block of key alice-batch did not hold",
                "source": "vigil",
                "severity": "critical",
                "custom_details": {"incident_id": "inc-0007", "reason": "the rate did not fall"},
            },
        })]
    );
    assert_eq!(fake.requests(), 1);
    shutdown.cancel();
    fake.stopped().await;
}

#[tokio::test]
async fn pagerduty_severities_follow_vigils() {
    let (fake, pager, shutdown) = pagerduty().await;
    for (index, severity) in [
        PageSeverity::Critical,
        PageSeverity::Warning,
        PageSeverity::Info,
    ]
    .into_iter()
    .enumerate()
    {
        let message = PageMessage {
            dedup_key: format!("inc-{index}"),
            severity,
            ..page()
        };
        pager.trigger(&message).await.unwrap();
    }
    let severities: Vec<_> = fake
        .events()
        .iter()
        .map(|event| event["payload"]["severity"].clone())
        .collect();
    assert_eq!(
        severities,
        [json!("critical"), json!("warning"), json!("info")]
    );
    shutdown.cancel();
}

#[tokio::test]
async fn two_triggers_for_one_incident_are_one_pagerduty_incident() {
    let (fake, pager, shutdown) = pagerduty().await;
    pager.trigger(&page()).await.unwrap();
    pager.trigger(&page()).await.unwrap();
    let open = fake.open_incidents();
    assert_eq!(open.keys().collect::<Vec<_>>(), ["inc-0007"]);
    assert_eq!(open["inc-0007"].triggers, 2);
    assert_eq!(fake.events().len(), 2);
    shutdown.cancel();
}

#[tokio::test]
async fn pagerduty_resolve_closes_the_incident_its_trigger_opened() {
    let (fake, pager, shutdown) = pagerduty().await;
    pager.trigger(&page()).await.unwrap();
    assert_eq!(pager.resolve(&resolution()).await.unwrap(), "inc-0007");
    assert!(fake.open_incidents().is_empty());
    let resolved = fake.resolved_incidents();
    assert_eq!(resolved.keys().collect::<Vec<_>>(), ["inc-0007"]);
    assert_eq!(
        resolved["inc-0007"].payload["summary"],
        "block of key alice-batch did not hold"
    );
    // The Events API v2 resolve: the trigger's dedup key and no payload.
    assert_eq!(
        fake.events()[1],
        json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "inc-0007"})
    );
    shutdown.cancel();
}

#[tokio::test]
async fn resolving_an_incident_pagerduty_does_not_hold_is_accepted_and_changes_nothing() {
    let (fake, pager, shutdown) = pagerduty().await;
    assert_eq!(pager.resolve(&resolution()).await.unwrap(), "inc-0007");
    assert!(fake.open_incidents().is_empty());
    assert!(fake.resolved_incidents().is_empty());
    assert_eq!(fake.events().len(), 1);
    shutdown.cancel();
}

#[tokio::test]
async fn the_pagerduty_fake_refuses_a_resolve_without_its_dedup_key_as_pagerduty_does() {
    let (fake, _pager, shutdown) = pagerduty().await;
    let answer = client()
        .post(fake.events_url())
        .json(&json!({"routing_key": ROUTING_KEY, "event_action": "resolve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["errors"], json!(["'dedup_key' is missing or blank."]));
    assert!(fake.events().is_empty());
    shutdown.cancel();
}

#[tokio::test]
async fn a_resolve_is_retried_and_its_exchanges_are_captured_without_the_routing_key() {
    let (fake, pager, shutdown) = pagerduty().await;
    pager.trigger(&page()).await.unwrap();
    fake.fail_next(1, 429);
    let (resolved, exchanges) = capture(pager.resolve(&resolution())).await;
    assert_eq!(resolved.unwrap(), "inc-0007");
    assert!(fake.open_incidents().is_empty());
    let statuses: Vec<_> = exchanges.iter().map(|exchange| exchange.status).collect();
    assert_eq!(statuses, [Some(429), Some(202)]);
    let sent = exchanges[1].request_body.as_deref().unwrap();
    assert!(sent.contains(r#""event_action":"resolve""#), "{sent}");
    assert!(!sent.contains(ROUTING_KEY), "{sent}");
    shutdown.cancel();
}

#[tokio::test]
async fn pagerduty_rate_limits_and_server_errors_are_retried() {
    let (fake, pager, shutdown) = pagerduty().await;
    fake.fail_next(1, 429);
    pager.trigger(&page()).await.unwrap();
    assert_eq!(fake.requests(), 2);
    fake.fail_next(2, 500);
    pager.trigger(&page()).await.unwrap();
    assert_eq!(fake.requests(), 5);
    assert_eq!(fake.open_incidents()["inc-0007"].triggers, 2);
    shutdown.cancel();
}

#[tokio::test]
async fn pagerduty_gives_up_after_three_rate_limited_attempts() {
    let (fake, pager, shutdown) = pagerduty().await;
    fake.fail_next(10, 429);
    let error = pager.trigger(&page()).await.unwrap_err();
    let ConnectorError::PagerGaveUp { attempts, last, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!((*attempts, last.status()), (3, Some(429)));
    assert_eq!(fake.requests(), 3);
    assert!(fake.open_incidents().is_empty());
    shutdown.cancel();
}

#[tokio::test]
async fn an_invalid_pagerduty_event_is_not_retried_and_quotes_pagerduty() {
    let (fake, pager, shutdown) = pagerduty().await;
    let blank = PageMessage {
        title: " ".to_owned(),
        ..page()
    };
    let error = pager.trigger(&blank).await.unwrap_err();
    assert_eq!(error.status(), Some(400), "{error:?}");
    assert_eq!(fake.requests(), 1);
    let shown = format!("{error} {error:?} {pager:?}");
    assert!(shown.contains("Event object is invalid"), "{shown}");
    assert!(
        shown.contains("'payload.summary' is missing or blank."),
        "{shown}"
    );
    assert!(!shown.contains(ROUTING_KEY), "{shown}");
    assert!(!shown.contains("/v2/enqueue"), "{shown}");
    shutdown.cancel();
}

#[tokio::test]
async fn a_routing_key_of_the_wrong_length_is_refused_without_showing_it() {
    let (fake, _, shutdown) = pagerduty().await;
    let short_key = "SHORTKEY-never-shown";
    let pager = PagerDutyPager::new(Secret::new(short_key), fake.events_url(), client());
    let error = pager.trigger(&page()).await.unwrap_err();
    assert_eq!(error.status(), Some(400));
    let shown = format!("{error} {error:?} {pager:?}");
    assert!(
        shown.contains("'routing_key' must be 32 characters."),
        "{shown}"
    );
    assert!(!shown.contains(short_key), "{shown}");
    assert_eq!(fake.requests(), 1);
    shutdown.cancel();
}

#[tokio::test]
async fn a_long_multibyte_title_is_cut_to_1024_characters() {
    let (fake, pager, shutdown) = pagerduty().await;
    // 1500 characters of two, three and four bytes each, so byte and character counts differ.
    let title: String = "é日🚨".chars().cycle().take(1500).collect();
    let message = PageMessage {
        title: title.clone(),
        ..page()
    };
    pager.trigger(&message).await.unwrap();
    let summary = fake.events()[0]["payload"]["summary"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(summary.chars().count(), 1024);
    assert!(title.starts_with(&summary));
    shutdown.cancel();
}

#[tokio::test]
async fn a_slack_message_has_a_header_and_readable_sections() {
    let (fake, pager, shutdown) = slack().await;
    pager.send(&page()).await.unwrap();
    assert_eq!(
        fake.messages(),
        vec![json!({
            "text": "block of key alice-batch did not hold: Token rate of key alice-batch is 12x its baseline.",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "block of key alice-batch did not hold"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "critical · incident inc-0007"}]},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*What vigil saw*\nToken rate of key alice-batch is 12x its baseline."}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Root cause*\na runaway key: key alice-batch (gateway layer; runaway_key, 93 %)"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*From symptom to cause*\n• [gateway] token spike on key alice-batch\n• [gateway] cause: a runaway key"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Evidence*\n• rate 1200 tok/s &gt; 100 tok/s\n• share 93% &lt;of&gt; gateway"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Against it*\n• [gateway] requests &lt;flat&gt;"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*What vigil did*\n• blocked key alice-batch: ok"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Left in place*\n• block key alice-batch (undo: unblock key alice-batch)"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*The assistant's view (checked)*\n• The assistant agrees with vigil's diagnosis (runaway_key)."}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Why you are paged*\nthe rate did not fall within 5 minutes"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Do this*\ncheck the batch job &amp; its retries"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "*Read and replay*\n`vigil ledger show --incident inc-0007`\n`vigil replay --incident inc-0007`"}},
            ],
        })]
    );
    assert_eq!(fake.requests(), 1);
    shutdown.cancel();
    fake.stopped().await;
}

#[tokio::test]
async fn a_resolved_incident_gets_a_short_slack_follow_up() {
    let (fake, pager, shutdown) = slack().await;
    pager.send(&page()).await.unwrap();
    pager.resolve(&resolution()).await.unwrap();
    let messages = fake.messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(
        messages[1],
        json!({
            "text": "resolved: block of key alice-batch did not hold: the finding cleared 12 min after the page; the block stays in place",
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "resolved: block of key alice-batch did not hold"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "resolved · incident inc-0007"}]},
                {"type": "section", "text": {"type": "mrkdwn", "text": "the finding cleared 12 min after the page; the block stays in place"}},
            ],
        })
    );
    shutdown.cancel();
    fake.stopped().await;
}

#[tokio::test]
async fn a_slack_follow_up_is_retried_cut_to_slacks_limits_and_never_shows_the_token() {
    let (fake, pager, shutdown) = slack().await;
    fake.fail_next(1, 503);
    let long = Resolution {
        title: "é".repeat(400),
        summary: "<".repeat(2000),
        ..resolution()
    };
    pager.resolve(&long).await.unwrap();
    assert_eq!(fake.requests(), 2);
    assert_eq!(fake.messages().len(), 1);
    fake.archive_channel();
    let error = pager.resolve(&resolution()).await.unwrap_err().to_string();
    assert!(error.contains("channel_is_archived"), "{error}");
    assert!(!error.contains(fake.token()), "{error}");
    shutdown.cancel();
    fake.stopped().await;
}

#[tokio::test]
async fn long_slack_sections_are_cut_within_slacks_limit() {
    let (fake, pager, shutdown) = slack().await;
    let message = PageMessage {
        title: "ü".repeat(400),
        summary: "ü<".repeat(4000),
        ..page()
    };
    // The fake refuses sections over 3000 characters and headers over 150, as Slack does.
    pager.send(&message).await.unwrap();
    let sent = &fake.messages()[0];
    let header = sent["blocks"][0]["text"]["text"].as_str().unwrap();
    assert_eq!(header.chars().count(), 150);
    let section = sent["blocks"][2]["text"]["text"].as_str().unwrap();
    assert!(
        section.chars().count() <= 3000,
        "{}",
        section.chars().count()
    );
    assert!(section.ends_with('…'), "{section}");
    // The cut never splits an escape.
    assert!(
        section.trim_end_matches('…').ends_with(['ü', ';']),
        "{section}"
    );
    shutdown.cancel();
}

#[tokio::test]
async fn slack_rate_limits_and_server_errors_are_retried() {
    let (fake, pager, shutdown) = slack().await;
    fake.fail_next(2, 429);
    pager.send(&page()).await.unwrap();
    assert_eq!(fake.requests(), 3);
    fake.fail_next(1, 503);
    pager.send(&page()).await.unwrap();
    assert_eq!(fake.requests(), 5);
    assert_eq!(fake.messages().len(), 2);
    shutdown.cancel();
}

#[tokio::test]
async fn slack_refusals_are_not_retried() {
    let (fake, pager, shutdown) = slack().await;
    // An empty header is not a valid block.
    let empty_title = PageMessage {
        title: String::new(),
        ..page()
    };
    let error = pager.send(&empty_title).await.unwrap_err();
    assert_eq!(error.status(), Some(400));
    assert!(error.to_string().ends_with("invalid_blocks"), "{error}");
    assert_eq!(fake.requests(), 1);

    fake.archive_channel();
    let error = pager.send(&page()).await.unwrap_err();
    assert_eq!(error.status(), Some(410));
    assert!(
        error.to_string().ends_with("channel_is_archived"),
        "{error}"
    );
    assert_eq!(fake.requests(), 2);
    assert!(fake.messages().is_empty());
    shutdown.cancel();
}

#[tokio::test]
async fn a_wrong_slack_token_is_refused_and_never_shown() {
    let (fake, _, shutdown) = slack().await;
    let wrong_url = fake
        .webhook_url()
        .replace(fake.token(), "wrongTokenNeverShown");
    let pager = SlackPager::new(Secret::new(wrong_url), client());
    let error = pager.send(&page()).await.unwrap_err();
    assert_eq!(error.status(), Some(403));
    let shown = format!("{error} {error:?} {pager:?}");
    assert!(shown.contains("invalid_token"), "{shown}");
    assert!(
        !shown.contains("wrongTokenNeverShown") && !shown.contains("/services"),
        "{shown}"
    );
    assert_eq!(fake.requests(), 1);
    shutdown.cancel();
}

#[tokio::test]
async fn a_slack_pager_that_gives_up_shows_only_the_origin() {
    let (fake, pager, shutdown) = slack().await;
    fake.fail_next(10, 500);
    let error = pager.send(&page()).await.unwrap_err();
    let ConnectorError::PagerGaveUp { attempts, last, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!((*attempts, last.status()), (3, Some(500)));
    let shown = format!("{error} {error:?} {pager:?}");
    assert!(!shown.contains(fake.token()), "{shown}");
    assert!(
        !shown.contains("/services") && shown.contains("/<redacted>"),
        "{shown}"
    );
    shutdown.cancel();
}

fn notice() -> vigil_connectors::pager::ChangeNotice {
    vigil_connectors::pager::ChangeNotice {
        incident_id: "inc-0007".to_owned(),
        owner: "team-ml".to_owned(),
        change: "block key alice-batch on litellm-gateway".to_owned(),
        why: "runaway key: 95 % of the excess tokens".to_owned(),
        undo: "unblock key alice-batch on litellm-gateway".to_owned(),
    }
}

#[tokio::test]
async fn an_owner_notice_is_a_pagerduty_change_event_that_opens_no_incident() {
    let (fake, pager, shutdown) = pagerduty().await;
    pager.notify(&notice()).await.unwrap();
    assert!(fake.open_incidents().is_empty(), "a notice pages nobody");
    assert!(fake.events().is_empty());
    let changes = fake.change_events();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["routing_key"], ROUTING_KEY);
    assert_eq!(
        changes[0]["payload"]["summary"],
        "vigil: block key alice-batch on litellm-gateway (for team-ml)"
    );
    assert_eq!(
        changes[0]["payload"]["custom_details"]["undo"],
        "unblock key alice-batch on litellm-gateway"
    );
    // The fake refuses a change event without a summary, as PagerDuty does.
    let answer = client()
        .post(
            fake.events_url()
                .replace("/v2/enqueue", "/v2/change/enqueue"),
        )
        .json(&json!({"routing_key": ROUTING_KEY, "payload": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 400);
    shutdown.cancel();
}
