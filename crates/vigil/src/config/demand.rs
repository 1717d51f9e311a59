//! The demand side of the `diagnosis:` block: the request and cache counters a token spike is
//! decomposed with, and how expected activity (a rhythm, announced work) is recognised.

use vigil_core::diagnosis::demand::DemandConfig;
use vigil_core::problem::Problems;

use super::raw::RawDiagnosis;
use super::validate::check_selector;

/// The longest window read before a spike: a day.
const MAX_BEFORE_WINDOW_SECS: i64 = 86_400;

/// The longest memory of fires, in days.
const MAX_RHYTHM_LOOKBACK_DAYS: u32 = 31;

/// Validates the demand settings of `diagnosis:`, reporting every problem.
pub(super) fn validate_demand(problems: &mut Problems, raw: &RawDiagnosis) -> Option<DemandConfig> {
    let requests = check_selector(
        problems,
        "diagnosis.requests_metric",
        raw.requests_metric.clone(),
    );
    let cache_hits = check_selector(
        problems,
        "diagnosis.cache_hits_metric",
        raw.cache_hits_metric.clone(),
    );
    let cache_misses = check_selector(
        problems,
        "diagnosis.cache_misses_metric",
        raw.cache_misses_metric.clone(),
    );
    let mut valid = true;
    if !(raw.flat_requests_ratio > 1.0 && raw.flat_requests_ratio.is_finite()) {
        problems.push(
            "diagnosis.flat_requests_ratio",
            "must be above 1 (a factor of the earlier request rate)",
        );
        valid = false;
    }
    if !(60..=MAX_BEFORE_WINDOW_SECS).contains(&raw.before_window_secs) {
        problems.push(
            "diagnosis.before_window_secs",
            format!("must be between 60 and {MAX_BEFORE_WINDOW_SECS}"),
        );
        valid = false;
    }
    if !(1..=MAX_RHYTHM_LOOKBACK_DAYS).contains(&raw.rhythm_lookback_days) {
        problems.push(
            "diagnosis.rhythm_lookback_days",
            format!("must be between 1 and {MAX_RHYTHM_LOOKBACK_DAYS}"),
        );
        valid = false;
    }
    if raw.rhythm_min_days < 1 || raw.rhythm_min_days > raw.rhythm_lookback_days {
        problems.push(
            "diagnosis.rhythm_min_days",
            "must be at least 1 and at most rhythm_lookback_days",
        );
        valid = false;
    }
    if !(1..=43_200).contains(&raw.rhythm_tolerance_secs) {
        problems.push(
            "diagnosis.rhythm_tolerance_secs",
            "must be between 1 and 43200 (half a day)",
        );
        valid = false;
    }
    for (idx, name) in raw.planned_work_alertnames.iter().enumerate() {
        if name.trim().is_empty() {
            problems.push(
                format!("diagnosis.planned_work_alertnames[{idx}]"),
                "must not be empty",
            );
            valid = false;
        }
    }
    Some(DemandConfig {
        requests: requests?,
        cache_hits: cache_hits?,
        cache_misses: cache_misses?,
        flat_ratio: raw.flat_requests_ratio,
        before_window_ms: raw.before_window_secs.saturating_mul(1000),
        rhythm_min_days: raw.rhythm_min_days,
        rhythm_tolerance_ms: raw.rhythm_tolerance_secs.saturating_mul(1000),
        rhythm_lookback_days: raw.rhythm_lookback_days,
        planned_work_alertnames: raw.planned_work_alertnames.clone(),
    })
    .filter(|_| valid)
}
