//! `/metrics` as rendered: it parses, every family is declared before its first sample,
//! outside values are escaped, and each part shows what it was told.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::*;

/// The value of the line `series` (a name with its labels, exactly as rendered).
fn value(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|line| {
        line.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .map(str::to_owned)
    })
}

fn parses(text: &str) {
    let parsed = vigil_core::exposition::parse_text(text);
    assert!(parsed.errors.is_empty(), "{:?}\n{text}", parsed.errors);
}

#[test]
fn renders_parseable_text_and_readiness() {
    let telemetry = Telemetry::default();
    telemetry.register_source("gw");
    assert_eq!(
        telemetry.not_ready_reasons(),
        vec![
            "the ledger session is not recorded yet",
            "source `gw` has not been scraped yet"
        ]
    );
    telemetry.session_recorded();
    telemetry.scrape_ok("gw", 0.25, 12, 1);
    telemetry.event("scraped");
    let refused = [("gw".to_owned(), 0), ("push:evals".to_owned(), 190_000)];
    telemetry.engine_gauges(2, 10_040, &refused.into_iter().collect());
    assert!(telemetry.not_ready_reasons().is_empty());
    let text = telemetry.render();
    parses(&text);
    for line in [
        "vigil_source_up{source=\"gw\"} 1",
        "vigil_scrape_malformed_lines_total{source=\"gw\"} 1",
        "vigil_events_total{type=\"scraped\"} 1",
        "vigil_tracked_series 10040",
        "vigil_open_incidents 2",
        "vigil_series_refused_total{source=\"gw\"} 0",
        "vigil_series_refused_total{source=\"push:evals\"} 190000",
    ] {
        assert!(text.lines().any(|shown| shown == line), "{line}: {text}");
    }
}

#[test]
fn every_family_is_declared_once_even_before_its_first_sample() {
    let text = Telemetry::default().render();
    parses(&text);
    let mut declared = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap();
            assert!(declared.insert(name.to_owned()), "{name} twice:\n{text}");
        }
    }
    for name in [
        "vigil_leader",
        "vigil_leader_epoch",
        "vigil_lease_renewals_total",
        "vigil_leadership_changes_total",
        "vigil_inbox_pending",
        "vigil_ledger_fenced_appends_total",
        "vigil_ledger_append_seconds",
        "vigil_ledger_append_errors_total",
        "vigil_authorization_seconds",
        "vigil_engine_queue_depth",
        "vigil_open_incidents",
        "vigil_actions_total",
        "vigil_pages_total",
        "vigil_checkpoint_age_seconds",
        "vigil_assistant_breaker",
        "vigil_heartbeats_total",
        "vigil_source_consecutive_failures",
    ] {
        assert!(declared.contains(name), "{name} is not declared:\n{text}");
    }
}

#[test]
fn outcome_counters_that_alerts_read_start_at_zero() {
    let text = Telemetry::default().render();
    for series in [
        "vigil_pages_total{result=\"failed\"}",
        "vigil_pages_total{result=\"resolve_failed\"}",
        "vigil_actions_total{result=\"failed\"}",
        "vigil_lease_renewals_total{outcome=\"failed\"}",
        "vigil_leadership_changes_total{change=\"acquired\"}",
        "vigil_heartbeats_total{outcome=\"failed\"}",
        "vigil_checkpoints_total{outcome=\"failed\"}",
        "vigil_ledger_fenced_appends_total",
        "vigil_ledger_append_errors_total",
    ] {
        assert_eq!(
            value(&text, series).as_deref(),
            Some("0"),
            "{series}: {text}"
        );
    }
    let telemetry = Telemetry::default();
    telemetry.page("failed");
    telemetry.page("failed");
    let text = telemetry.render();
    assert_eq!(
        value(&text, "vigil_pages_total{result=\"failed\"}").as_deref(),
        Some("2")
    );
}

#[test]
fn a_lone_daemon_leads_as_standalone_and_a_replica_is_a_standby_until_it_leads() {
    let telemetry = Telemetry::default();
    let text = telemetry.render();
    assert_eq!(
        value(&text, "vigil_leader{replica=\"standalone\"}").as_deref(),
        Some("1")
    );
    assert_eq!(telemetry.role(), ("standalone".to_owned(), true));

    // A replica id from the environment is shown escaped, never breaking the line.
    telemetry.set_replica("vigil-0\"}\nfake 1");
    let text = telemetry.render();
    parses(&text);
    assert_eq!(
        value(&text, "vigil_leader{replica=\"vigil-0\\\"}\\nfake 1\"}").as_deref(),
        Some("0"),
        "{text}"
    );
    telemetry.set_replica("vigil-0");
    telemetry.set_leadership(true, 7);
    telemetry.leadership_changed(true);
    telemetry.lease_renewal(true);
    telemetry.lease_renewal(false);
    telemetry.inbox_pending(42);
    telemetry.append_fenced();
    let text = telemetry.render();
    for (series, expected) in [
        ("vigil_leader{replica=\"vigil-0\"}", "1"),
        ("vigil_leader_epoch", "7"),
        ("vigil_leadership_changes_total{change=\"acquired\"}", "1"),
        ("vigil_leadership_changes_total{change=\"lost\"}", "0"),
        ("vigil_lease_renewals_total{outcome=\"ok\"}", "1"),
        ("vigil_lease_renewals_total{outcome=\"failed\"}", "1"),
        ("vigil_inbox_pending", "42"),
        ("vigil_ledger_fenced_appends_total", "1"),
    ] {
        assert_eq!(
            value(&text, series).as_deref(),
            Some(expected),
            "{series}: {text}"
        );
    }
}

#[test]
fn source_names_are_escaped_and_failures_in_a_row_reset_on_success() {
    let telemetry = Telemetry::default();
    let name = "gw\"} 1\nvigil_leader{replica=\"x\"";
    telemetry.scrape_failed(name, 0.5);
    telemetry.scrape_failed(name, 0.5);
    let text = telemetry.render();
    parses(&text);
    assert!(
        !text
            .lines()
            .any(|line| line.starts_with("vigil_leader{replica=\"x\"")),
        "{text}"
    );
    let shown = "gw\\\"} 1\\nvigil_leader{replica=\\\"x\\\"";
    assert_eq!(
        value(
            &text,
            &format!("vigil_source_consecutive_failures{{source=\"{shown}\"}}")
        )
        .as_deref(),
        Some("2"),
        "{text}"
    );
    telemetry.scrape_ok(name, 0.1, 3, 0);
    let text = telemetry.render();
    assert_eq!(
        value(
            &text,
            &format!("vigil_source_consecutive_failures{{source=\"{shown}\"}}")
        )
        .as_deref(),
        Some("0")
    );
    assert_eq!(
        value(
            &text,
            &format!("vigil_scrapes_total{{source=\"{shown}\",result=\"error\"}}")
        )
        .as_deref(),
        Some("2")
    );
}

#[test]
fn latencies_are_histograms() {
    let telemetry = Telemetry::default();
    telemetry.ledger_append_took(Duration::from_millis(3));
    telemetry.ledger_append_took(Duration::from_secs(30));
    telemetry.authorization_took(Duration::from_micros(40));
    let text = telemetry.render();
    parses(&text);
    for (series, expected) in [
        ("vigil_ledger_append_seconds_bucket{le=\"0.0025\"}", "0"),
        ("vigil_ledger_append_seconds_bucket{le=\"0.005\"}", "1"),
        ("vigil_ledger_append_seconds_bucket{le=\"10\"}", "1"),
        ("vigil_ledger_append_seconds_bucket{le=\"+Inf\"}", "2"),
        ("vigil_ledger_append_seconds_count", "2"),
        ("vigil_authorization_seconds_bucket{le=\"0.00005\"}", "1"),
        ("vigil_authorization_seconds_count", "1"),
    ] {
        assert_eq!(
            value(&text, series).as_deref(),
            Some(expected),
            "{series}: {text}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn queue_depth_is_read_when_asked_and_a_closed_queue_disappears() {
    let telemetry = Telemetry::default();
    let (sender, mut receiver) = mpsc::channel::<u32>(8);
    telemetry.watch_queue("events", queue_probe(&sender));
    for item in 0..3 {
        sender.send(item).await.unwrap();
    }
    let text = telemetry.render();
    assert_eq!(
        value(&text, "vigil_engine_queue_depth{queue=\"events\"}").as_deref(),
        Some("3")
    );
    assert_eq!(
        value(&text, "vigil_engine_queue_capacity{queue=\"events\"}").as_deref(),
        Some("8")
    );
    let _ = receiver.recv().await;
    assert_eq!(
        value(
            &telemetry.render(),
            "vigil_engine_queue_depth{queue=\"events\"}"
        )
        .as_deref(),
        Some("2")
    );
    // The probe does not keep the channel open: the receiver sees it close.
    drop(sender);
    while receiver.recv().await.is_some() {}
    assert_eq!(
        value(
            &telemetry.render(),
            "vigil_engine_queue_depth{queue=\"events\"}"
        ),
        None
    );
}

#[tokio::test(start_paused = true)]
async fn checkpoint_age_grows_until_a_checkpoint_covers_the_head() {
    let telemetry = Telemetry::default();
    assert_eq!(
        value(&telemetry.render(), "vigil_checkpoint_age_seconds"),
        None
    );
    telemetry.checkpoints_on(Duration::from_secs(600));
    tokio::time::advance(Duration::from_secs(90)).await;
    let text = telemetry.render();
    assert_eq!(
        value(&text, "vigil_checkpoint_age_seconds").as_deref(),
        Some("90.000")
    );
    assert_eq!(
        value(&text, "vigil_checkpoint_interval_seconds").as_deref(),
        Some("600")
    );
    telemetry.checkpoint_failed();
    telemetry.checkpoint_publish_failed("webhook");
    tokio::time::advance(Duration::from_secs(10)).await;
    telemetry.checkpoint_covered(true);
    tokio::time::advance(Duration::from_secs(5)).await;
    let text = telemetry.render();
    for (series, expected) in [
        ("vigil_checkpoint_age_seconds", "5.000"),
        ("vigil_checkpoints_total{outcome=\"ok\"}", "1"),
        ("vigil_checkpoints_total{outcome=\"failed\"}", "1"),
        (
            "vigil_checkpoint_publish_failures_total{target=\"webhook\"}",
            "1",
        ),
        (
            "vigil_checkpoint_publish_failures_total{target=\"file\"}",
            "0",
        ),
    ] {
        assert_eq!(
            value(&text, series).as_deref(),
            Some(expected),
            "{series}: {text}"
        );
    }
    // The ledger did not grow: the last checkpoint still covers it, and none is counted.
    tokio::time::advance(Duration::from_secs(600)).await;
    telemetry.checkpoint_covered(false);
    let text = telemetry.render();
    assert_eq!(
        value(&text, "vigil_checkpoint_age_seconds").as_deref(),
        Some("0.000")
    );
    assert_eq!(
        value(&text, "vigil_checkpoints_total{outcome=\"ok\"}").as_deref(),
        Some("1")
    );
}

#[tokio::test(start_paused = true)]
async fn the_assistant_breaker_shows_one_state_at_a_time() {
    let telemetry = Telemetry::default();
    let text = telemetry.render();
    assert!(
        !text
            .lines()
            .any(|line| line.starts_with("vigil_assistant_breaker{"))
    );
    let breaker = Arc::new(std::sync::Mutex::new(crate::investigator::Breaker::new(
        1,
        Duration::from_secs(60),
    )));
    let watched = Arc::clone(&breaker);
    telemetry.watch_breaker(move || watched.lock().unwrap().state(tokio::time::Instant::now()));
    let shown = |telemetry: &Telemetry| -> Vec<String> {
        let text = telemetry.render();
        ["closed", "half_open", "open"]
            .iter()
            .map(|state| {
                value(
                    &text,
                    &format!("vigil_assistant_breaker{{state=\"{state}\"}}"),
                )
                .unwrap()
            })
            .collect()
    };
    assert_eq!(shown(&telemetry), ["1", "0", "0"]);
    breaker
        .lock()
        .unwrap()
        .record(true, tokio::time::Instant::now());
    assert_eq!(shown(&telemetry), ["0", "0", "1"]);
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(shown(&telemetry), ["0", "1", "0"]);
}

#[test]
fn heartbeats_count_by_outcome() {
    let telemetry = Telemetry::default();
    telemetry.heartbeat(true);
    telemetry.heartbeat(false);
    telemetry.heartbeat(true);
    telemetry.ledger_appended(12);
    let text = telemetry.render();
    assert_eq!(
        value(&text, "vigil_heartbeats_total{outcome=\"ok\"}").as_deref(),
        Some("2")
    );
    assert_eq!(
        value(&text, "vigil_heartbeats_total{outcome=\"failed\"}").as_deref(),
        Some("1")
    );
    assert_eq!(telemetry.ledger_entries(), 12);
}
