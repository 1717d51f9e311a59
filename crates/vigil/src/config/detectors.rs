//! The second stage for the detector kinds added after the first three: proportion drops,
//! version-change markers and anomaly detectors.

use vigil_core::detector::DetectorConfig;
use vigil_core::detector::Severity;
use vigil_core::detector::change::VersionChangeConfig;
use vigil_core::detector::proportion::{DriftConfig, ProportionDropConfig};
use vigil_core::problem::Problems;

use super::raw::{RawAnomaly, RawDrift, RawProportionDrop, RawVersionChange};
use super::validate::{ReadingFields, check_reading, check_selector, is_label_name};

pub(super) fn validate_proportion_drop(
    problems: &mut Problems,
    path: &str,
    raw: RawProportionDrop,
) -> Option<DetectorConfig> {
    if raw.name.trim().is_empty() {
        problems.push(format!("{path}.name"), "must not be empty");
    }
    let good = check_selector(problems, &format!("{path}.good"), raw.good);
    let (total, total_is_bad) = match (raw.total, raw.bad) {
        (Some(total), None) => (
            check_selector(problems, &format!("{path}.total"), total),
            false,
        ),
        (None, Some(bad)) => (check_selector(problems, &format!("{path}.bad"), bad), true),
        _ => {
            problems.push(
                path,
                "set exactly one of `total` (all events) and `bad` (the bad events only)",
            );
            (None, false)
        }
    };
    check_group_by(problems, path, raw.group_by.as_deref());
    if raw.window_secs <= 0 {
        problems.push(format!("{path}.window_secs"), "must be at least 1");
    }
    if !(raw.baseline_half_life_days.is_finite() && raw.baseline_half_life_days > 0.0) {
        problems.push(
            format!("{path}.baseline_half_life_days"),
            format!(
                "must be a number of days above 0, found `{}`",
                raw.baseline_half_life_days
            ),
        );
    }
    if raw.min_cases == 0 {
        problems.push(format!("{path}.min_cases"), "must be at least 1");
    }
    check_min_drop(problems, path, raw.min_drop);
    if !(raw.alert_probability > 0.0 && raw.alert_probability < 0.5) {
        problems.push(
            format!("{path}.alert_probability"),
            format!(
                "must be above 0 and under 0.5 (0.001 is one false alarm in a thousand tests), found `{}`",
                raw.alert_probability
            ),
        );
    }
    let clear_drop = checked_clear_drop(problems, path, raw.min_drop, raw.clear_drop);
    if raw.severity == Severity::Info {
        problems.push(format!("{path}.severity"), "must be `page` or `ticket`");
    }
    if raw.max_groups == 0 {
        problems.push(format!("{path}.max_groups"), "must be at least 1");
    }
    let half_life_secs = (raw.baseline_half_life_days * 86_400.0).round();
    let drift = raw
        .drift
        .map(|drift| validate_drift(problems, &format!("{path}.drift"), drift));
    // Selectors that did not parse, or a missing total, were reported.
    let (good, total) = good.zip(total)?;
    Some(DetectorConfig::ProportionDrop(ProportionDropConfig {
        name: raw.name,
        source: raw.source,
        good,
        total,
        total_is_bad,
        describe: raw.describe,
        group_by: raw.group_by,
        window_secs: raw.window_secs,
        baseline_half_life_secs: if half_life_secs.is_finite() && half_life_secs >= 1.0 {
            half_life_secs.min(1e12) as i64
        } else {
            1
        },
        min_cases: raw.min_cases,
        min_baseline_cases: raw.min_baseline_cases,
        min_drop: raw.min_drop,
        alert_probability: raw.alert_probability,
        clear_drop,
        severity: raw.severity,
        max_groups: raw.max_groups,
        drift,
    }))
}

/// The drift block of a proportion-drop detector at `path`.
fn validate_drift(problems: &mut Problems, path: &str, raw: RawDrift) -> DriftConfig {
    if raw.reference_cases == 0 {
        problems.push(format!("{path}.reference_cases"), "must be at least 1");
    }
    if let Some(share) = raw.reference_share {
        if !(share > 0.0 && share < 1.0) {
            problems.push(
                format!("{path}.reference_share"),
                format!("must be between 0 and 1 exclusive (0.95 for 95 %), found `{share}`"),
            );
        } else if share <= raw.min_drop {
            problems.push(
                format!("{path}.min_drop"),
                format!(
                    "must be under `reference_share` ({share}): a share cannot drop below 0, found `{}`",
                    raw.min_drop
                ),
            );
        }
    }
    check_min_drop(problems, path, raw.min_drop);
    let clear_drop = checked_clear_drop(problems, path, raw.min_drop, raw.clear_drop);
    if !(raw.cases_between_false_alarms.is_finite() && raw.cases_between_false_alarms >= 10.0) {
        problems.push(
            format!("{path}.cases_between_false_alarms"),
            format!(
                "must be a number of cases of at least 10 (1000000 is one false alarm in a million cases), found `{}`",
                raw.cases_between_false_alarms
            ),
        );
    }
    DriftConfig {
        reference_cases: raw.reference_cases,
        reference_share: raw.reference_share,
        min_drop: raw.min_drop,
        clear_drop,
        cases_between_false_alarms: raw.cases_between_false_alarms,
    }
}

pub(super) fn validate_version_change(
    problems: &mut Problems,
    path: &str,
    raw: RawVersionChange,
) -> Option<DetectorConfig> {
    if raw.name.trim().is_empty() {
        problems.push(format!("{path}.name"), "must not be empty");
    }
    let selector = check_selector(problems, &format!("{path}.selector"), raw.selector);
    if !is_label_name(&raw.version_label) {
        problems.push(
            format!("{path}.version_label"),
            format!("`{}` is not a label name", raw.version_label),
        );
    }
    check_group_by(problems, path, raw.group_by.as_deref());
    if raw.group_by.as_deref() == Some(raw.version_label.as_str()) {
        problems.push(
            format!("{path}.group_by"),
            "must differ from `version_label`: each version would be a group of its own and never change",
        );
    }
    if raw.max_versions == 0 {
        problems.push(format!("{path}.max_versions"), "must be at least 1");
    }
    if raw.max_groups == 0 {
        problems.push(format!("{path}.max_groups"), "must be at least 1");
    }
    // A selector that did not parse was reported.
    let selector = selector?;
    Some(DetectorConfig::VersionChange(VersionChangeConfig {
        name: raw.name,
        source: raw.source,
        selector,
        version_label: raw.version_label,
        group_by: raw.group_by,
        max_versions: raw.max_versions,
        max_groups: raw.max_groups,
    }))
}

/// Checks a drop's firing level (a share, 0 to 1 exclusive).
fn check_min_drop(problems: &mut Problems, path: &str, min_drop: f64) {
    if !(min_drop > 0.0 && min_drop < 1.0) {
        problems.push(
            format!("{path}.min_drop"),
            format!("must be between 0 and 1 exclusive (0.1 for ten points), found `{min_drop}`"),
        );
    }
}

/// The clearing level of a drop (half `min_drop` unless set), checked to lie under it.
fn checked_clear_drop(
    problems: &mut Problems,
    path: &str,
    min_drop: f64,
    clear_drop: Option<f64>,
) -> f64 {
    let clear_drop = clear_drop.unwrap_or(min_drop / 2.0);
    if !(clear_drop.is_finite() && clear_drop >= 0.0 && clear_drop < min_drop) {
        problems.push(
            format!("{path}.clear_drop"),
            format!(
                "must be at least 0 and under `min_drop` ({min_drop}) so that clearing has hysteresis, found `{clear_drop}`"
            ),
        );
    }
    clear_drop
}

fn check_group_by(problems: &mut Problems, path: &str, group_by: Option<&str>) {
    if let Some(label) = group_by
        && !is_label_name(label)
    {
        problems.push(
            format!("{path}.group_by"),
            format!("`{label}` is not a label name"),
        );
    }
}

pub(super) fn validate_anomaly(
    problems: &mut Problems,
    path: &str,
    raw: RawAnomaly,
) -> Option<DetectorConfig> {
    use vigil_core::detector::adaptive::{AdaptiveConfig, Direction};
    use vigil_core::detector::anomaly::AnomalyConfig;
    if raw.name.trim().is_empty() {
        problems.push(format!("{path}.name"), "must not be empty");
    }
    let reading = check_reading(
        problems,
        path,
        ReadingFields {
            value: raw.value,
            rate: raw.rate,
            quantile: raw.quantile,
            buckets: raw.buckets,
            ratio: raw.ratio,
            mean: raw.mean,
            hours_left: raw.hours_left,
            window_secs: raw.window_secs,
        },
    );
    check_group_by(problems, path, raw.group_by.as_deref());
    if !(raw.alert_probability > 0.0 && raw.alert_probability < 0.5) {
        problems.push(
            format!("{path}.alert_probability"),
            format!(
                "must be above 0 and under 0.5 (the default is the setting scored on NAB), found `{}`",
                raw.alert_probability
            ),
        );
    }
    if !(raw.min_change.is_finite() && raw.min_change >= 0.0) {
        problems.push(
            format!("{path}.min_change"),
            format!(
                "must be a number of the reading's units, 0 or more, found `{}`",
                raw.min_change
            ),
        );
    }
    if !(raw.clear_fraction >= 0.0 && raw.clear_fraction < 1.0) {
        problems.push(
            format!("{path}.clear_fraction"),
            format!(
                "must be at least 0 (the expected value) and under 1 (the reading that fired) so that clearing has hysteresis, found `{}`",
                raw.clear_fraction
            ),
        );
    }
    if raw.clear_after_samples == 0 {
        problems.push(format!("{path}.clear_after_samples"), "must be at least 1");
    }
    if raw.severity == Severity::Info {
        problems.push(format!("{path}.severity"), "must be `page` or `ticket`");
    }
    if raw.max_groups == 0 {
        problems.push(format!("{path}.max_groups"), "must be at least 1");
    }
    let direction = match raw.direction.as_deref() {
        None | Some("both") => Direction::Both,
        Some("up") => Direction::Up,
        Some("down") => Direction::Down,
        Some(other) => {
            problems.push(
                format!("{path}.direction"),
                format!("must be `up`, `down` or `both`, found `{other}`"),
            );
            Direction::Both
        }
    };
    let season_secs = match raw.seasonality.as_deref() {
        None | Some("daily") => 86_400,
        Some("none") => 0,
        Some(other) => {
            problems.push(
                format!("{path}.seasonality"),
                format!("must be `daily` or `none`, found `{other}`"),
            );
            0
        }
    };
    let method = AdaptiveConfig {
        direction,
        season_secs,
        alert_probability: raw.alert_probability,
        warmup_samples: raw.warmup_samples,
        ..AdaptiveConfig::default()
    };
    if let Err(error) = method.validate() {
        problems.push(path, error.to_string());
    }
    // With no reading, or one whose selectors did not parse, the problem is reported.
    let reading = reading?;
    Some(DetectorConfig::Anomaly(AnomalyConfig {
        name: raw.name,
        source: raw.source,
        reading,
        describe: raw.describe,
        group_by: raw.group_by,
        method,
        min_change: raw.min_change,
        clear_fraction: raw.clear_fraction,
        clear_after_samples: raw.clear_after_samples,
        severity: raw.severity,
        max_groups: raw.max_groups,
    }))
}
