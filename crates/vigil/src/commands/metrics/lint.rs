//! promtool-style checks of a parsed exposition: problems that parse but will hurt.

use std::collections::{BTreeMap, BTreeSet};

use vigil_core::exposition::{Exposition, Format, MetricType};

/// Every warning, one line each, in a stable order.
pub fn lint(parsed: &Exposition<'_>) -> Vec<String> {
    let mut warnings = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut buckets: BTreeMap<String, Vec<(f64, f64, usize)>> = BTreeMap::new();
    for sample in &parsed.samples {
        let mut labels: Vec<String> = sample
            .labels
            .iter()
            .map(|(name, value)| format!("{name}={value:?}"))
            .collect();
        labels.sort();
        let key = format!("{}{{{}}}", sample.name, labels.join(","));
        if let Some(first) = seen.insert(key.clone(), sample.line) {
            warnings.push(format!(
                "line {}: duplicate series {key} (first on line {first})",
                sample.line
            ));
        }
        if matches!(
            sample.metric_type,
            MetricType::Histogram | MetricType::GaugeHistogram
        ) && sample.name.ends_with("_bucket")
            && let Some(le) = sample.label("le").and_then(parse_le)
        {
            let mut others: Vec<String> = sample
                .labels
                .iter()
                .filter(|(name, _)| name != "le")
                .map(|(name, value)| format!("{name}={value:?}"))
                .collect();
            others.sort();
            let group = format!("{}{{{}}}", sample.name, others.join(","));
            buckets
                .entry(group)
                .or_default()
                .push((le, sample.value, sample.line));
        }
    }
    for (group, mut points) in buckets {
        points.sort_by(|left, right| left.0.total_cmp(&right.0));
        if points.last().is_none_or(|last| last.0 != f64::INFINITY) {
            warnings.push(format!("{group}: no `le=\"+Inf\"` bucket"));
        }
        for pair in points.windows(2) {
            if let [lower, upper] = pair
                && upper.1 < lower.1
            {
                warnings.push(format!(
                    "line {}: {group}: bucket le={} holds {} but the smaller bucket le={} holds {}: buckets must be cumulative",
                    upper.2, upper.0, upper.1, lower.0, lower.1
                ));
            }
        }
    }
    let mut families_without_help = BTreeSet::new();
    for sample in &parsed.samples {
        let family = sample.family();
        if !family.is_empty()
            && parsed
                .families
                .get(family)
                .is_none_or(|meta| meta.help.is_none())
        {
            families_without_help.insert(family.to_owned());
        }
    }
    for family in families_without_help {
        warnings.push(format!("{family}: no HELP text"));
    }
    let mut counters_without_total = BTreeSet::new();
    let mut non_snake = BTreeSet::new();
    for sample in &parsed.samples {
        if parsed.format == Format::Text
            && sample.metric_type == MetricType::Counter
            && !sample.name.ends_with("_total")
            && !sample.name.ends_with("_created")
        {
            counters_without_total.insert(sample.name.to_string());
        }
        if sample.name.chars().any(|ch| ch.is_ascii_uppercase()) {
            non_snake.insert(sample.name.to_string());
        }
    }
    for name in counters_without_total {
        warnings.push(format!("{name}: counter names should end in `_total`"));
    }
    for name in non_snake {
        warnings.push(format!("{name}: metric names should be snake_case"));
    }
    warnings
}

fn parse_le(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        other => other.parse().ok(),
    }
}
