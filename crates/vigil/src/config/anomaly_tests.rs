//! The `anomaly` detector kind in a config: its defaults are the method scored on NAB, and
//! every bad field is reported at once with its path and line.

use std::path::Path;

use expect_test::expect;
use vigil_core::detector::DetectorConfig;
use vigil_core::detector::adaptive::{AdaptiveConfig, Direction};
use vigil_core::detector::reading::Reading;

use super::parse;
use super::tests::MINIMAL;

fn with_detector(block: &str) -> String {
    MINIMAL.replace("pager:", &format!("{block}\npager:"))
}

#[test]
fn an_anomaly_detector_defaults_to_the_scored_method() {
    let text = with_detector(
        r#"  - name: latency-anomaly
    kind: anomaly
    source: gw
    quantile: 0.95
    buckets: litellm_request_total_latency_metric_bucket
    describe: p95 latency (s)
    group_by: model_group"#,
    );
    let config = parse(&text, "vigil.yaml", Path::new(".")).unwrap();
    let Some(DetectorConfig::Anomaly(anomaly)) = config.detectors.get(1) else {
        panic!("{:?}", config.detectors);
    };
    // The scored settings, daily memory on, both directions.
    assert_eq!(
        anomaly.method,
        AdaptiveConfig {
            direction: Direction::Both,
            season_secs: 86_400,
            ..AdaptiveConfig::default()
        }
    );
    assert!(matches!(
        anomaly.reading,
        Reading::Quantile {
            quantile,
            window_secs: 300,
            ..
        } if quantile == 0.95
    ));
    assert_eq!(anomaly.min_change, 0.0);
    assert_eq!(anomaly.clear_fraction, 0.5);
    assert_eq!(anomaly.clear_after_samples, 3);
    assert_eq!(anomaly.max_groups, 200);
    assert_eq!(
        anomaly.severity,
        vigil_core::detector::Severity::Ticket,
        "a learnt limit tickets unless told to page"
    );
    // Only series that name a group are read.
    assert_eq!(
        anomaly.reading.selectors()[0].as_str(),
        r#"litellm_request_total_latency_metric_bucket{model_group!=""}"#
    );
    assert_eq!(
        config.detectors[1].metrics(),
        ["litellm_request_total_latency_metric_bucket"]
    );
}

#[test]
fn an_anomaly_detector_takes_direction_seasonality_and_its_clearing() {
    let text = with_detector(
        r#"  - name: queue
    kind: anomaly
    source: gw
    value: vllm_num_requests_waiting
    describe: requests waiting
    direction: up
    seasonality: none
    alert_probability: 0.0001
    warmup_samples: 40
    min_change: 5
    clear_fraction: 0.25
    clear_after_samples: 4
    severity: page
    max_groups: 7"#,
    );
    let config = parse(&text, "vigil.yaml", Path::new(".")).unwrap();
    let Some(DetectorConfig::Anomaly(anomaly)) = config.detectors.get(1) else {
        panic!("{:?}", config.detectors);
    };
    assert_eq!(anomaly.method.direction, Direction::Up);
    assert_eq!(anomaly.method.season_secs, 0);
    assert_eq!(anomaly.method.alert_probability, 0.0001);
    assert_eq!(anomaly.method.warmup_samples, 40);
    assert_eq!(anomaly.min_change, 5.0);
    assert_eq!(anomaly.clear_fraction, 0.25);
    assert_eq!(anomaly.clear_after_samples, 4);
    assert_eq!(anomaly.max_groups, 7);
    assert_eq!(anomaly.group_by, None);
}

#[test]
fn an_anomaly_detector_reports_every_bad_field() {
    let text = with_detector(
        r#"  - name: ""
    kind: anomaly
    source: gw
    value: up
    rate: 'errors_total{'
    describe: odd
    group_by: "not a label"
    direction: sideways
    seasonality: weekly
    alert_probability: 0.7
    min_change: -1
    clear_fraction: 1
    clear_after_samples: 0
    severity: info
    max_groups: 0"#,
    );
    let rendered = match parse(&text, "vigil.yaml", Path::new(".")) {
        Ok(_) => "ok\n".to_owned(),
        Err(problems) => problems.to_string(),
    };
    expect![[r#"
        12 problems:
          vigil.yaml:12: `detectors[1].name`: must not be empty
          vigil.yaml:16: `detectors[1].rate`: `errors_total{` is not a selector: at offset 13: expected a label name or `}`, found end of input
          vigil.yaml:12: `detectors[1]`: set exactly one reading of `value`, `rate`, `quantile` (with `buckets`), `ratio`, `hours_left` and `mean`; found 2
          vigil.yaml:18: `detectors[1].group_by`: `not a label` is not a label name
          vigil.yaml:21: `detectors[1].alert_probability`: must be above 0 and under 0.5 (the default is the setting scored on NAB), found `0.7`
          vigil.yaml:22: `detectors[1].min_change`: must be a number of the reading's units, 0 or more, found `-1`
          vigil.yaml:23: `detectors[1].clear_fraction`: must be at least 0 (the expected value) and under 1 (the reading that fired) so that clearing has hysteresis, found `1`
          vigil.yaml:24: `detectors[1].clear_after_samples`: must be at least 1
          vigil.yaml:25: `detectors[1].severity`: must be `page` or `ticket`
          vigil.yaml:26: `detectors[1].max_groups`: must be at least 1
          vigil.yaml:19: `detectors[1].direction`: must be `up`, `down` or `both`, found `sideways`
          vigil.yaml:20: `detectors[1].seasonality`: must be `daily` or `none`, found `weekly`
    "#]]
    .assert_eq(&rendered);
}
