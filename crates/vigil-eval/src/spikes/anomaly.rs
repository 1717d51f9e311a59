//! The `anomaly` detector kind on the same harness, watching the same per-key token rate.
//!
//! Its method settings are the adaptive detector's defaults (the ones scored on NAB) with
//! `direction: up`, and the rest are the config loader's defaults for the kind, stated in
//! the report: `min_change` 0 (any distance), `clear_fraction` 0.5, `clear_after_samples` 3;
//! but severity `page` rather than the kind's default `ticket`, so that the report's `page`
//! column counts every finding.

use vigil_core::detector::Severity;
use vigil_core::detector::Transition;
use vigil_core::detector::adaptive::{AdaptiveConfig, Direction};
use vigil_core::detector::anomaly::{AnomalyConfig, AnomalyDetector};
use vigil_core::detector::threshold::Reading;
use vigil_core::store::{Selector, SeriesStore};
use vigil_core::time::Timestamp;

use super::harness::{KEY_LABEL, METRIC, SOURCE, WatchesStore};

/// The rate window: two scrape intervals, the shortest that holds two points of a 15 s scrape
/// in `(at - window, at]` (Prometheus' rule; 15 s gives no reading at all), so the reading
/// is the rate of the latest scrape interval, as the spike detector's `irate`.
pub const WINDOW_SECS: i64 = 30;

/// What the report says about the anomaly detector's settings.
pub const SETTINGS: &str = "anomaly: method = AdaptiveConfig::default() with direction up; reading rate(litellm_total_tokens_metric_total[30s]) by hashed_api_key; min_change 0, clear_fraction 0.5, clear_after_samples 3, severity page (the loader's defaults but for severity, which tickets by default)";

impl WatchesStore for AnomalyDetector {
    fn observe(&mut self, at: Timestamp, store: &SeriesStore) -> Vec<Transition> {
        AnomalyDetector::observe(self, at, store)
    }
}

/// The anomaly detector over each key's token rate.
///
/// # Errors
/// The metric name does not parse as a selector (it does).
pub fn detector() -> anyhow::Result<AnomalyDetector> {
    let method = AdaptiveConfig {
        direction: Direction::Up,
        ..AdaptiveConfig::default()
    };
    method.validate()?;
    Ok(AnomalyDetector::new(AnomalyConfig {
        name: "token-anomaly".to_owned(),
        source: SOURCE.to_owned(),
        reading: Reading::Rate {
            selector: Selector::parse(METRIC)?,
            window_secs: WINDOW_SECS,
        },
        describe: "tokens per second".to_owned(),
        group_by: Some(KEY_LABEL.to_owned()),
        method,
        min_change: 0.0,
        clear_fraction: 0.5,
        clear_after_samples: 3,
        severity: Severity::Page,
        max_groups: 10_000,
    }))
}
