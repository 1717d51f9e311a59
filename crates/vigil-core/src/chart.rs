//! What a chart of a finding's evidence shows: the readings the detector recorded with the
//! finding, and the levels it compared them with (its baseline, where it fires, where it
//! clears). The console draws it as SVG; this module only says what to draw, so that the
//! levels are the detector's own arithmetic, not the page's.

use serde::Serialize;

use crate::detector::threshold::Bound;
use crate::detector::{Evidence, Finding, Point};

/// One chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EvidenceChart {
    /// What is drawn, for people.
    pub title: String,
    /// The unit of the values (`tokens/s`, `ratio`, ...).
    pub unit: String,
    /// The readings, oldest first.
    pub points: Vec<Point>,
    /// Horizontal levels, each with its name.
    pub levels: Vec<Level>,
}

/// A horizontal line on a chart.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Level {
    /// What it is: `baseline`, `fires at`, `clears at`, `expected`.
    pub name: &'static str,
    /// Its value.
    pub value: f64,
}

/// The chart of `finding`'s evidence; `None` for evidence that records no readings (burn
/// rates, proportions and schedules are shown as numbers).
#[must_use]
pub fn evidence_chart(finding: &Finding) -> Option<EvidenceChart> {
    let chart = match &finding.evidence {
        Evidence::Spike(spike) => {
            let t = &spike.thresholds;
            let fire = (spike.baseline_per_sec * t.fire_ratio)
                .max(spike.baseline_per_sec + t.fire_z * spike.spread_per_sec)
                .max(t.min_rate_per_sec);
            EvidenceChart {
                title: format!("{} rate ({})", spike.metric, finding.detector),
                unit: spike.unit.per_second().to_owned(),
                points: spike.recent.clone(),
                levels: vec![
                    Level {
                        name: "baseline",
                        value: spike.baseline_per_sec,
                    },
                    Level {
                        name: "fires at",
                        value: fire,
                    },
                    Level {
                        name: "clears at",
                        value: spike.baseline_per_sec * t.clear_ratio,
                    },
                ],
            }
        }
        Evidence::Threshold(threshold) => EvidenceChart {
            title: format!("{} ({})", threshold.describe, finding.detector),
            unit: match threshold.bound {
                Bound::Above => "value (bad above)".to_owned(),
                Bound::Below => "value (bad below)".to_owned(),
            },
            points: threshold.recent.clone(),
            levels: vec![
                Level {
                    name: "fires at",
                    value: threshold.fire,
                },
                Level {
                    name: "clears at",
                    value: threshold.clear,
                },
            ],
        },
        Evidence::Anomaly(anomaly) => EvidenceChart {
            title: format!("anomaly ({})", finding.detector),
            unit: "value".to_owned(),
            points: anomaly.recent.clone(),
            levels: vec![
                Level {
                    name: "expected",
                    value: anomaly.expected,
                },
                Level {
                    name: "clears at",
                    value: anomaly.clear,
                },
            ],
        },
        Evidence::BurnRate(_) | Evidence::ProportionDrop(_) | Evidence::Schedule(_) => {
            return None;
        }
    };
    let finite = chart.points.iter().any(|point| point.value.is_finite());
    finite.then_some(chart)
}

/// A chart of the readings a verification observed, with no levels (its condition is
/// written beside it).
#[must_use]
pub fn observed_chart(title: &str, points: &[Point]) -> Option<EvidenceChart> {
    points
        .iter()
        .any(|point| point.value.is_finite())
        .then(|| EvidenceChart {
            title: title.to_owned(),
            unit: "value".to_owned(),
            points: points.to_vec(),
            levels: Vec::new(),
        })
}
