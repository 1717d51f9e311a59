//! Alertmanager webhook notifications (version 4): the shape, the version check, every
//! problem with its path, the signals.

use expect_test::{Expect, expect};

use super::*;

fn check(body: &str, expect: Expect) {
    expect.assert_eq(&render(parse_alertmanager(body.as_bytes())));
}

/// As Alertmanager 0.28 sends it: a group with one firing and one resolved alert.
pub(super) const GOOD: &str = r#"{
  "receiver": "vigil",
  "status": "firing",
  "alerts": [
    {
      "status": "firing",
      "labels": {"alertname": "LLMErrorBurst", "severity": "page", "model": "gpt-4o"},
      "annotations": {"summary": "gateway errors above 5%"},
      "startsAt": "2026-03-01T11:58:30.123456789Z",
      "endsAt": "0001-01-01T00:00:00Z",
      "generatorURL": "http://prometheus:9090/graph?g0.expr=rate%28x%5B5m%5D%29\u0026g0.tab=1",
      "fingerprint": "c6eadffa33fcdf37"
    },
    {
      "status": "resolved",
      "labels": {"alertname": "LLMErrorBurst", "severity": "page", "model": "claude-sonnet-4"},
      "annotations": {},
      "startsAt": "2026-03-01T11:40:00+02:00",
      "endsAt": "2026-03-01T11:05:00.250+01:00",
      "generatorURL": "",
      "fingerprint": "1a30ba71cca2921f"
    }
  ],
  "groupLabels": {"alertname": "LLMErrorBurst"},
  "commonLabels": {"alertname": "LLMErrorBurst", "severity": "page"},
  "commonAnnotations": {},
  "externalURL": "http://alertmanager:9093",
  "version": "4",
  "groupKey": "{}/{severity=\"page\"}:{alertname=\"LLMErrorBurst\"}",
  "truncatedAlerts": 0
}"#;

#[test]
fn a_notification_parses_and_zero_end_times_are_unset() {
    check(
        GOOD,
        expect![[r#"
            {
              "receiver": "vigil",
              "status": "firing",
              "group_key": "{}/{severity=\"page\"}:{alertname=\"LLMErrorBurst\"}",
              "group_labels": {
                "alertname": "LLMErrorBurst"
              },
              "common_labels": {
                "alertname": "LLMErrorBurst",
                "severity": "page"
              },
              "common_annotations": {},
              "external_url": "http://alertmanager:9093",
              "truncated_alerts": 0,
              "alerts": [
                {
                  "status": "firing",
                  "labels": {
                    "alertname": "LLMErrorBurst",
                    "model": "gpt-4o",
                    "severity": "page"
                  },
                  "annotations": {
                    "summary": "gateway errors above 5%"
                  },
                  "starts_at": 1772366310123,
                  "generator_url": "http://prometheus:9090/graph?g0.expr=rate%28x%5B5m%5D%29&g0.tab=1",
                  "fingerprint": "c6eadffa33fcdf37"
                },
                {
                  "status": "resolved",
                  "labels": {
                    "alertname": "LLMErrorBurst",
                    "model": "claude-sonnet-4",
                    "severity": "page"
                  },
                  "annotations": {},
                  "starts_at": 1772358000000,
                  "ends_at": 1772359500250,
                  "generator_url": "",
                  "fingerprint": "1a30ba71cca2921f"
                }
              ]
            }
        "#]],
    );
}

#[test]
fn grafana_extras_are_ignored_and_optional_maps_default_to_empty() {
    check(
        r#"{"version": "4", "status": "resolved", "receiver": "", "groupKey": "k", "orgId": 1,
            "alerts": [{"status": "resolved", "labels": {}, "startsAt": "2026-03-01T00:00:00Z",
                        "silenceURL": "http://grafana/silence", "values": {"B": 44.2}}]}"#,
        expect![[r#"
            {
              "receiver": "",
              "status": "resolved",
              "group_key": "k",
              "group_labels": {},
              "common_labels": {},
              "common_annotations": {},
              "external_url": "",
              "truncated_alerts": 0,
              "alerts": [
                {
                  "status": "resolved",
                  "labels": {},
                  "annotations": {},
                  "starts_at": 1772323200000,
                  "generator_url": "",
                  "fingerprint": ""
                }
              ]
            }
        "#]],
    );
}

// Regression (found checking the fuzz targets' message invariant): the version was quoted raw,
// control characters included.
#[test]
fn an_unknown_version_is_quoted_escaped() {
    check(
        r#"{"version": "4\n\u0007"}"#,
        expect![[r#"
            the payload has 1 problem
            version: unsupported webhook payload version `4\n\u{7}`; vigil reads Alertmanager's version `4`
        "#]],
    );
}

#[test]
fn another_version_is_refused_alone() {
    // The other problems of an unknown version are noise: its shape may differ.
    check(
        r#"{"version": "3", "status": "pending", "alerts": "none"}"#,
        expect![[r#"
            the payload has 1 problem
            version: unsupported webhook payload version `3`; vigil reads Alertmanager's version `4`
        "#]],
    );
    check(
        r#"{"version": 4, "alerts": []}"#,
        expect![[r#"
            the payload has 1 problem
            version: must be a string, found a number (write it quoted: `"4"`)
        "#]],
    );
    check(
        r#"{"alerts": []}"#,
        expect![[r#"
            the payload has 1 problem
            version: required field is missing
        "#]],
    );
}

#[test]
fn every_problem_is_reported_with_its_path() {
    check(
        r#"{"version": "4", "status": "pending", "groupKey": 7, "truncatedAlerts": -2,
            "commonLabels": {"severity": 3},
            "alerts": [
              {"status": "firing", "labels": {"alertname": "A", "team": null},
               "startsAt": "yesterday", "endsAt": "2026-13-01T00:00:00Z"},
              {"labels": [], "startsAt": "2026-03-01T25:00:00Z", "fingerprint": false}
            ]}"#,
        expect![[r#"
            the payload has 12 problems
            status: must be `firing` or `resolved`
            receiver: required field is missing
            groupKey: must be a string, found a number (write it quoted: `"7"`)
            commonLabels.severity: must be a string, found a number (write it quoted: `"3"`)
            truncatedAlerts: must be a whole number, 0 or more, found `-2`
            alerts[0].labels.team: must be a string, found null
            alerts[0].startsAt: must be an RFC 3339 time such as `2026-03-01T12:00:00Z`: expected a four-digit year at character 1
            alerts[0].endsAt: must be an RFC 3339 time such as `2026-03-01T12:00:00Z`: the month must be 01 to 12, found 13
            alerts[1].status: required field is missing
            alerts[1].labels: must be an object, found an array
            alerts[1].startsAt: must be an RFC 3339 time such as `2026-03-01T12:00:00Z`: the hour must be 00 to 23, found 25
            alerts[1].fingerprint: must be a string, found a boolean
        "#]],
    );
}

// Regression (found checking the fuzz targets' linear-time invariant): labels were inserted
// one at a time, each insertion rebuilding the set, so a 27 kB notification of 2,000 labels
// took 1.4 s in the fuzz build and a 20 MiB one would have taken hours. Measured, not
// timed here: see fuzz/README.md.
#[test]
fn a_huge_label_map_keeps_every_label() {
    const N_LABELS: usize = 20_000;
    let labels: Vec<String> = (0..N_LABELS)
        .rev()
        .map(|idx| format!("\"l{idx:05}\": \"v{idx}\""))
        .collect();
    let body = format!(
        r#"{{"version": "4", "status": "firing", "receiver": "r", "groupKey": "g",
            "alerts": [{{"status": "firing", "startsAt": "2026-03-01T12:00:00Z",
            "labels": {{{}, "alertname": "Big"}}}}]}}"#,
        labels.join(", ")
    );
    let batch = parse_alertmanager(body.as_bytes()).unwrap();
    let alert = &batch.alerts[0];
    assert_eq!(alert.labels.len(), N_LABELS + 1);
    assert_eq!(alert.name(), "Big");
    assert_eq!(alert.labels.get("l00042"), Some("v42"));
    let names: Vec<&str> = alert.labels.iter().map(|(name, _)| name).collect();
    assert!(
        names.windows(2).all(|pair| pair[0] < pair[1]),
        "labels not sorted"
    );
}

#[test]
fn signals_count_alerts_by_name_status_and_severity() {
    let pushed = Pushed::Alerts(parse_alertmanager(GOOD.as_bytes()).unwrap());
    check_signals(
        &pushed,
        expect![[r#"
            vigil_alert_firing{alertname="LLMErrorBurst",severity="page",subject="model=claude-sonnet-4"} gauge 0
            vigil_alert_firing{alertname="LLMErrorBurst",severity="page",subject="model=gpt-4o"} gauge 1
            vigil_alerts_total{alertname="LLMErrorBurst",severity="page",status="firing"} counter +1
            vigil_alerts_total{alertname="LLMErrorBurst",severity="page",status="resolved"} counter +1
        "#]],
    );
    assert_round_trip(&pushed);
}

#[test]
fn an_alert_about_a_store_becomes_a_firing_gauge_of_its_subject_and_resolves_to_zero() {
    let notification = |status: &str| {
        format!(
            r#"{{"version": "4", "groupKey": "g", "status": "{status}", "receiver": "vigil",
            "alerts": [{{"status": "{status}", "startsAt": "2026-03-01T11:58:30Z",
              "labels": {{"alertname": "VectorDBLatencyHigh", "severity": "page",
                          "vector_store": "qdrant", "service": "support-bot"}}}},
              {{"status": "{status}", "startsAt": "2026-03-01T11:58:30Z",
                "labels": {{"alertname": "Watchdog", "model_group": "None"}}}}]}}"#
        )
    };
    let firing = Pushed::Alerts(parse_alertmanager(notification("firing").as_bytes()).unwrap());
    // The store is what the alert is about, not the app that suffers; an alert that names
    // nothing (LiteLLM's `None` is no name) gets no gauge.
    check_signals(
        &firing,
        expect![[r#"
            vigil_alert_firing{alertname="VectorDBLatencyHigh",severity="page",subject="vector_store=qdrant"} gauge 1
            vigil_alerts_total{alertname="VectorDBLatencyHigh",severity="page",status="firing"} counter +1
            vigil_alerts_total{alertname="Watchdog",severity="",status="firing"} counter +1
        "#]],
    );
    let resolved = Pushed::Alerts(parse_alertmanager(notification("resolved").as_bytes()).unwrap());
    check_signals(
        &resolved,
        expect![[r#"
            vigil_alert_firing{alertname="VectorDBLatencyHigh",severity="page",subject="vector_store=qdrant"} gauge 0
            vigil_alerts_total{alertname="VectorDBLatencyHigh",severity="page",status="resolved"} counter +1
            vigil_alerts_total{alertname="Watchdog",severity="",status="resolved"} counter +1
        "#]],
    );
}
