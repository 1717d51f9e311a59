//! Tests of expected activity: rhythms over earlier days and announcements of planned work.

use super::*;
use crate::detector::threshold::{Bound, Reading, ThresholdEvidence};
use crate::detector::{Evidence, Severity, Subject};
use crate::diagnosis::demand::DEFAULT_PLANNED_WORK_ALERTNAMES;
use crate::store::Selector;

const HOUR: i64 = 3_600_000;

fn config(min_days: u32) -> DemandConfig {
    DemandConfig {
        requests: Selector::parse("requests_total").unwrap(),
        cache_hits: Selector::parse("hits_total").unwrap(),
        cache_misses: Selector::parse("misses_total").unwrap(),
        flat_ratio: 1.5,
        before_window_ms: 600_000,
        rhythm_min_days: min_days,
        rhythm_tolerance_ms: HOUR / 2,
        rhythm_lookback_days: 7,
        planned_work_alertnames: DEFAULT_PLANNED_WORK_ALERTNAMES
            .iter()
            .map(|&name| name.to_owned())
            .collect(),
    }
}

fn finding(label: &str, value: &str, alias: Option<&str>, team: Option<&str>, at: i64) -> Finding {
    Finding {
        fingerprint: format!("spike/{label}={value}"),
        detector: "spike".to_owned(),
        source: "gw".to_owned(),
        subject: Subject {
            label: label.to_owned(),
            value: value.to_owned(),
            alias: alias.map(str::to_owned),
            team: team.map(str::to_owned),
        },
        severity: Severity::Page,
        raised_at: Timestamp(at),
        evidence: Evidence::Threshold(ThresholdEvidence {
            describe: "tokens".to_owned(),
            reading: Reading::Value {
                selector: Selector::parse("m").unwrap(),
            },
            value: 20.0,
            bound: Bound::Above,
            fire: 10.0,
            clear: 5.0,
            n_observations: 2,
            recent: Vec::new(),
        }),
    }
}

#[test]
fn a_fire_at_the_same_time_on_earlier_days_is_a_rhythm() {
    let config = config(1);
    let mut memory = Memory::default();
    let night = |day: i64, minutes: i64| Timestamp(day * DAY_MS + 2 * HOUR + minutes * 60_000);
    // The first night: nothing known. A second fire the same night is no rhythm.
    assert!(memory.rhythm(&config, "f", night(0, 0)).is_empty());
    memory.note_fire(&config, "f", night(0, 0));
    assert!(memory.rhythm(&config, "f", night(0, 40)).is_empty());
    memory.note_fire(&config, "f", night(0, 40));
    // The next night, 10 minutes later than the first: a rhythm, citing the nearest fire.
    assert_eq!(memory.rhythm(&config, "f", night(1, 10)), vec![night(0, 0)]);
    memory.note_fire(&config, "f", night(1, 10));
    // Another fingerprint, or the same one two hours off, is none.
    assert!(memory.rhythm(&config, "g", night(2, 0)).is_empty());
    assert!(memory.rhythm(&config, "f", night(2, 120)).is_empty());
    // Two earlier days when two are required; latest first.
    assert_eq!(
        memory.rhythm(&self::config(2), "f", night(2, 0)),
        vec![night(1, 10), night(0, 0)]
    );
    assert!(memory.rhythm(&self::config(3), "f", night(2, 0)).is_empty());
    // Past the lookback, fires are forgotten.
    memory.note_fire(&config, "other", night(20, 0));
    assert!(memory.rhythm(&config, "f", night(21, 0)).is_empty());
}

#[test]
fn the_memory_stays_bounded() {
    let config = config(1);
    let mut memory = Memory::default();
    for idx in 0..(MAX_FINGERPRINTS + 10) {
        memory.note_fire(&config, &format!("f{idx}"), Timestamp(idx as i64));
    }
    for idx in 0..(MAX_FIRES_PER_FINGERPRINT + 10) {
        memory.note_fire(&config, "busy", Timestamp(1_000_000 + idx as i64));
    }
    assert!(memory.fires.len() <= MAX_FINGERPRINTS);
    assert_eq!(memory.fires["busy"].len(), MAX_FIRES_PER_FINGERPRINT);
}

fn alert(name: &str, status: AlertStatus, labels: &[(&str, &str)], summary: &str) -> Alert {
    let mut all = Labels::default();
    all.insert("alertname", name);
    for (label, value) in labels {
        all.insert(*label, *value);
    }
    let mut annotations = Labels::default();
    if !summary.is_empty() {
        annotations.insert("summary", summary);
    }
    Alert {
        status,
        labels: all,
        annotations,
        starts_at: Timestamp(10 * HOUR),
        ends_at: (status == AlertStatus::Resolved).then_some(Timestamp(12 * HOUR)),
        generator_url: String::new(),
        fingerprint: format!("{name}{labels:?}"),
    }
}

fn batch(alerts: Vec<Alert>) -> AlertBatch {
    AlertBatch {
        receiver: "vigil".to_owned(),
        status: AlertStatus::Firing,
        group_key: String::new(),
        group_labels: Labels::default(),
        common_labels: Labels::default(),
        common_annotations: Labels::default(),
        external_url: String::new(),
        truncated_alerts: 0,
        alerts,
    }
}

#[test]
fn planned_work_alerts_are_recognised_by_name_or_by_a_planned_label() {
    let config = config(1);
    let firing = AlertStatus::Firing;
    for name in [
        "LoadTestRunning",
        "load_test",
        "Planned-Work",
        "DBMaintenance",
        "GameDay",
    ] {
        assert!(announces(&config, &alert(name, firing, &[], "")), "{name}");
    }
    assert!(!announces(&config, &alert("HighLatency", firing, &[], "")));
    assert!(announces(
        &config,
        &alert("Deploy", firing, &[("planned", "true")], "")
    ));
}

#[test]
fn an_announcement_covers_what_it_names_while_it_fires() {
    let config = config(1);
    let mut memory = Memory::default();
    let at = 11 * HOUR;
    memory.note_alerts(
        &config,
        &batch(vec![
            alert(
                "LoadTest",
                AlertStatus::Firing,
                &[("hashed_api_key", "k-perf")],
                "",
            ),
            alert(
                "PlannedWork",
                AlertStatus::Firing,
                &[("key_alias", "etl")],
                "",
            ),
            alert("Maintenance", AlertStatus::Firing, &[("team", "data")], ""),
            alert(
                "GameDay",
                AlertStatus::Firing,
                &[],
                "chaos drill on the key drill-bot this afternoon",
            ),
            alert(
                "HighLatency",
                AlertStatus::Firing,
                &[("hashed_api_key", "k-other")],
                "",
            ),
        ]),
        Timestamp(10 * HOUR),
    );
    let key = "hashed_api_key";
    let covered = |memory: &Memory, finding: &Finding| {
        memory
            .announcement_for(finding)
            .map(|known| known.alertname.clone())
    };
    assert_eq!(
        covered(&memory, &finding(key, "k-perf", None, None, at)).as_deref(),
        Some("LoadTest")
    );
    assert_eq!(
        covered(&memory, &finding(key, "k1", Some("etl"), None, at)).as_deref(),
        Some("PlannedWork")
    );
    assert_eq!(
        covered(&memory, &finding(key, "k2", None, Some("data"), at)).as_deref(),
        Some("Maintenance")
    );
    assert_eq!(
        covered(&memory, &finding(key, "k3", Some("drill-bot"), None, at)).as_deref(),
        Some("GameDay")
    );
    // Not announced: another key, an alert that announces nothing, a time long before.
    assert_eq!(
        covered(&memory, &finding(key, "k-other", None, None, at)),
        None
    );
    assert_eq!(
        covered(&memory, &finding(key, "k-perf", None, None, 9 * HOUR)),
        None
    );
    // Once it resolves, what comes after is not covered.
    memory.note_alerts(
        &config,
        &batch(vec![alert(
            "LoadTest",
            AlertStatus::Resolved,
            &[("hashed_api_key", "k-perf")],
            "",
        )]),
        Timestamp(12 * HOUR),
    );
    assert_eq!(
        covered(&memory, &finding(key, "k-perf", None, None, 13 * HOUR)),
        None
    );
    assert_eq!(
        covered(&memory, &finding(key, "k-perf", None, None, at)).as_deref(),
        Some("LoadTest")
    );
}

#[test]
fn expected_activity_comes_first_and_cites_why() {
    let plain = Diagnosis {
        hypotheses: vec![Hypothesis {
            kind: HypothesisKind::RunawayKey,
            subject: None,
            confidence: 1.0,
            evidence: Vec::new(),
            change: None,
            layer: None,
            support: Vec::new(),
            against: Vec::new(),
        }],
        why: "A runaway.".to_owned(),
    };
    let finding = finding("hashed_api_key", "k-etl", Some("etl"), None, 2 * DAY_MS);
    let diagnosis = recognise(
        plain,
        &finding,
        &Expected::Rhythm(vec![Timestamp(DAY_MS), Timestamp(0)]),
    );
    let best = diagnosis.best().unwrap();
    assert_eq!(best.kind, HypothesisKind::ExpectedActivity);
    assert_eq!(
        best.evidence[0],
        "spike/hashed_api_key=k-etl fired at about this time of day on 2 earlier days: \
         1970-01-02T00:00:00.000Z, 1970-01-01T00:00:00.000Z"
    );
    assert_eq!(
        best.evidence[1],
        "without the rhythm it would read as runaway key"
    );
    assert!(
        diagnosis.why.starts_with("This repeats a rhythm: etl"),
        "{}",
        diagnosis.why
    );
    assert_eq!(diagnosis.hypotheses[1].kind, HypothesisKind::RunawayKey);
}
