//! The diagnoser's words for people, one snapshot per kind of finding. A change to them is
//! deliberate, and the `Original` snapshots never change: recorded sessions replay with them.

use expect_test::{Expect, expect};

use super::*;
use crate::detector::spike::SpikeThresholds;
use crate::detector::threshold::Reading;
use crate::detector::{Point, Severity, SpikeEvidence, WindowBurn};
use crate::human::NumberStyle;
use crate::store::Selector;
use crate::time::Timestamp;

const CONFIG: DiagnosisConfig = DiagnosisConfig {
    runaway_min_share: 0.7,
    change_window_ms: DEFAULT_CHANGE_WINDOW_MS,
    demand: None,
    excess: crate::diagnosis::ExcessRule::Net,
};

/// When every finding is raised.
const RAISED_AT: i64 = 86_400_000;

fn subject(label: &str, value: &str) -> Subject {
    Subject {
        label: label.to_owned(),
        value: value.to_owned(),
        alias: None,
        team: None,
    }
}

fn finding(detector: &str, subject: Subject, evidence: Evidence) -> Finding {
    Finding {
        fingerprint: format!("{detector}/{}={}", subject.label, subject.value),
        detector: detector.to_owned(),
        source: "gw".to_owned(),
        subject,
        severity: Severity::Page,
        raised_at: Timestamp(RAISED_AT),
        evidence,
    }
}

fn spike() -> Finding {
    finding(
        "spike",
        subject("key", "a"),
        Evidence::Spike(SpikeEvidence {
            metric: "m".to_owned(),
            unit: Default::default(),
            rate_per_sec: 8123.4,
            baseline_per_sec: 412.0,
            spread_per_sec: 10.0,
            z_score: 40.0,
            ratio: 19.7,
            thresholds: SpikeThresholds {
                warmup_samples: 1,
                baseline_half_life_secs: 1.0,
                fire_z: 1.0,
                fire_ratio: 1.0,
                min_rate_per_sec: 1.0,
                fire_after_samples: 1,
                clear_ratio: 1.0,
                clear_after_samples: 1,
                noise_floor_ratio: 0.1,
                page_ratio: 1.0,
                season_secs: 0,
                run_evidence: false,
                season_memory: crate::detector::spike::SeasonMemory::Average,
            },
            recent: vec![],
        }),
    )
}

fn view(key: &str, rate: f64, baseline: f64, firing: bool) -> GroupView {
    GroupView {
        subject: subject("key", key),
        observed_at: Timestamp(RAISED_AT),
        rate_per_sec: rate,
        baseline_per_sec: baseline,
        firing,
        spread_per_sec: 0.1 * baseline,
    }
}

/// A 99.9 % objective over 30 days, with the Workbook's windows scaled down (so that the
/// short windows are 12 min and 2 min, once written `0.2 h` and `0.0 h`).
fn burn() -> Finding {
    finding(
        "slo",
        subject("model_group", "gpt-4o"),
        Evidence::BurnRate(BurnRateEvidence {
            objective: 0.999,
            period_secs: 30 * 86_400,
            windows: vec![
                WindowBurn {
                    severity: Severity::Page,
                    long_secs: 3600,
                    short_secs: 300,
                    threshold: 14.4,
                    long_burn: Some(15.25),
                    short_burn: Some(31.7),
                },
                WindowBurn {
                    severity: Severity::Ticket,
                    long_secs: 720,
                    short_secs: 120,
                    threshold: 6.0,
                    long_burn: Some(2.0),
                    short_burn: None,
                },
            ],
        }),
    )
}

fn threshold() -> Finding {
    finding(
        "latency",
        subject("model_group", "gpt-4o"),
        Evidence::Threshold(ThresholdEvidence {
            describe: "p95 latency (s)".to_owned(),
            reading: Reading::Value {
                selector: Selector::parse("latency_p95").unwrap(),
            },
            value: 6.25,
            bound: Bound::Above,
            fire: 2.0,
            clear: 1.5,
            n_observations: 3,
            recent: vec![
                Point {
                    at: Timestamp(0),
                    value: 1234.5678,
                },
                Point {
                    at: Timestamp(1),
                    value: 0.04,
                },
            ],
        }),
    )
}

fn proportion() -> Finding {
    finding(
        "evals",
        subject("prompt", "support-bot"),
        Evidence::ProportionDrop(ProportionEvidence {
            describe: "eval pass rate".to_owned(),
            good: "good".to_owned(),
            total: "total".to_owned(),
            window_secs: 1800,
            recent_good: 12.0,
            recent_total: 40.0,
            baseline_good: 947.853,
            baseline_total: 1000.0,
            baseline_share: 0.947_853,
            p_value: 1.2e-6,
            min_drop: 0.1,
            alert_probability: 1e-4,
            drift: None,
        }),
    )
}

fn change(age_ms: i64) -> Change {
    Change {
        detector: "versions".to_owned(),
        source: "gw".to_owned(),
        subject: subject("prompt", "support-bot"),
        version_label: "prompt_version".to_owned(),
        from: "3".to_owned(),
        to: "4".to_owned(),
        at: Timestamp(RAISED_AT - age_ms),
    }
}

/// Every text of a diagnosis, one per line.
fn check(
    numbers: NumberStyle,
    finding: &Finding,
    views: &[GroupView],
    changes: &[Change],
    expect: Expect,
) {
    let diagnosis = diagnose(&CONFIG, numbers, finding, views, changes);
    let mut text = format!("why: {}\n", diagnosis.why);
    for hypothesis in &diagnosis.hypotheses {
        text.push_str(&format!("{}:\n", hypothesis.kind.as_str()));
        for fact in &hypothesis.evidence {
            text.push_str(&format!("  {fact}\n"));
        }
    }
    expect.assert_eq(&text);
}

fn runaway_views() -> Vec<GroupView> {
    vec![
        view("a", 8123.4, 412.0, true),
        view("b", 520.0, 500.0, false),
        view("c", 480.0, 500.0, false),
    ]
}

fn surge_views() -> Vec<GroupView> {
    vec![
        view("a", 3000.0, 500.0, true),
        view("b", 2500.0, 500.0, true),
        view("c", 2600.0, 500.0, true),
    ]
}

#[test]
fn the_original_words_stay_as_recorded() {
    let original = NumberStyle::Original;
    check(
        original,
        &spike(),
        &runaway_views(),
        &[],
        expect![[r#"
        why: Token usage on key a jumped to 8,123/s, 100% of all excess usage on the gateway; the other keys look normal. A single runaway key (a loop, a leaked key or a job gone wrong) is the likely cause.
        runaway_key:
          key a accounts for 100% of the excess token rate across 3 keys
          key a: 8,123/s against a baseline of 412/s (19.7x)
        broad_surge:
          all keys together: 9,123/s against a baseline of 1,412/s
          1 of 3 keys are spiking
    "#]],
    );
    check(
        original,
        &spike(),
        &surge_views(),
        &[],
        expect![[r#"
        why: Token usage rose across many keys (3 of 3 spiking); key a holds only 38% of the excess. This looks like a broad surge, not one runaway key, so blocking a key would not fix it.
        broad_surge:
          all keys together: 8,100/s against a baseline of 1,500/s
          3 of 3 keys are spiking
        runaway_key:
          key a accounts for 38% of the excess token rate across 3 keys
          key a: 3,000/s against a baseline of 500/s (6.0x)
    "#]],
    );
    check(
        original,
        &burn(),
        &[],
        &[],
        expect![[r#"
        why: model_group gpt-4o is failing 31.7x faster than its 99.9% objective allows (at 31.7x the 30.0-day budget lasts 22.7 h). vigil has no automatic fix for an error budget burn; look at the provider or deployment behind it.
        error_budget_burn:
          page rule: burn 15.2x over 1.0 h and 31.7x over 0.1 h (threshold 14.4x)
          ticket rule: burn 2.0x over 0.2 h and no trafficx over 0.0 h (threshold 6.0x)
    "#]],
    );
    check(
        original,
        &threshold(),
        &[],
        &[],
        expect![[r#"
        why: p95 latency (s) of model_group gpt-4o is 6.2 (above its limit of 2.0). vigil has no automatic fix for it; look at what changed in the layer it measures.
        threshold_breach:
          p95 latency (s) of model_group gpt-4o is 6.2, above the limit of 2.0 for 3 observations in a row
          recent readings, oldest first: 1,235, 0.0
          it clears once above no longer holds past 1.5
    "#]],
    );
    check(
        original,
        &proportion(),
        &[],
        &[],
        expect![[r#"
        why: eval pass rate of prompt support-bot fell to 30% from 94.7853% (12.0 of 40.0 recently); a drop this large is unlikely to be noise.
        proportion_drop:
          eval pass rate of prompt support-bot: 12.0 of 40.0 in the last 30 min (30%), against 94.7853% before
          so few under the usual rate has a chance of 1.2e-6 (fires at 1.0e-4)
          baseline: 948 of 1,000 (decayed)
    "#]],
    );
    check(
        original,
        &proportion(),
        &[],
        &[change(7_530_000)],
        expect![[r#"
            why: 125 min before this, prompt_version of prompt support-bot changed from 3 to 4; the change is the first suspect. eval pass rate of prompt support-bot fell to 30% from 94.7853% (12.0 of 40.0 recently); a drop this large is unlikely to be noise.
            recent_change:
              prompt_version of prompt support-bot changed from 3 to 4 125 min before the finding (proportion drop)
              going back means restoring prompt_version 3
            proportion_drop:
              eval pass rate of prompt support-bot: 12.0 of 40.0 in the last 30 min (30%), against 94.7853% before
              so few under the usual rate has a chance of 1.2e-6 (fires at 1.0e-4)
              baseline: 948 of 1,000 (decayed)
        "#]],
    );
}

#[test]
fn the_readable_words_read_in_thirty_seconds() {
    let readable = NumberStyle::Readable;
    check(
        readable,
        &spike(),
        &runaway_views(),
        &[],
        expect![[r#"
            why: Token usage on key a jumped to 8,123 tokens/s, 100 % of all excess usage on the gateway; the other keys look normal. A single runaway key (a loop, a leaked key or a job gone wrong) is the likely cause.
            runaway_key:
              key a accounts for 100 % of the excess token rate across 3 keys
              key a: 8,123 tokens/s against a baseline of 412 tokens/s (19.7×)
            broad_surge:
              all keys together: 9,123 tokens/s against a baseline of 1,412 tokens/s
              1 of 3 keys are spiking
        "#]],
    );
    check(
        readable,
        &spike(),
        &surge_views(),
        &[],
        expect![[r#"
        why: Token usage rose across many keys (3 of 3 spiking); key a holds only 37.9 % of the excess. This looks like a broad surge, not one runaway key, so blocking a key would not fix it.
        broad_surge:
          all keys together: 8,100 tokens/s against a baseline of 1,500 tokens/s
          3 of 3 keys are spiking
        runaway_key:
          key a accounts for 37.9 % of the excess token rate across 3 keys
          key a: 3,000 tokens/s against a baseline of 500 tokens/s (6×)
    "#]],
    );
    check(
        readable,
        &burn(),
        &[],
        &[],
        expect![[r#"
        why: model_group gpt-4o is failing 31.7× faster than its 99.9 % objective allows (at 31.7× the 30-day budget lasts 22 h 43 min). vigil has no automatic fix for an error budget burn; look at the provider or deployment behind it.
        error_budget_burn:
          page rule: burn 15.2× over 1 h and 31.7× over 5 min (threshold 14.4×)
          ticket rule: burn 2× over 12 min and no traffic over 2 min (threshold 6×)
    "#]],
    );
    check(
        readable,
        &threshold(),
        &[],
        &[],
        expect![[r#"
        why: p95 latency (s) of model_group gpt-4o is 6.25 (above its limit of 2). vigil has no automatic fix for it; look at what changed in the layer it measures.
        threshold_breach:
          p95 latency (s) of model_group gpt-4o is 6.25, above the limit of 2 for 3 observations in a row
          recent readings, oldest first: 1,235, 0.04
          it clears once above no longer holds past 1.5
    "#]],
    );
    check(
        readable,
        &proportion(),
        &[],
        &[change(7_530_000)],
        expect![[r#"
            why: 2 h 6 min before this, prompt_version of prompt support-bot changed from 3 to 4; the change is the first suspect. eval pass rate of prompt support-bot fell to 30 % from 94.8 % (12 of 40 recently); a drop this large is unlikely to be noise.
            recent_change:
              prompt_version of prompt support-bot changed from 3 to 4 2 h 6 min before the finding (proportion drop)
              going back means restoring prompt_version 3
            proportion_drop:
              eval pass rate of prompt support-bot: 12 of 40 in the last 30 min (30 %), against 94.8 % before
              so few under the usual rate has a chance of 1.2e-6 (fires at 1.0e-4)
              baseline: 948 of 1,000 (decayed)
        "#]],
    );
}
