//! The benchmark's inputs parse cleanly, and the real LiteLLM scrapes (when the shared
//! fixtures are present) parse without an error or a lost line, in agreement with
//! `prometheus-parse` wherever it reads them at all. These tests read files, which vigil-core's
//! own tests may not.

use std::collections::BTreeMap;

use prometheus_parse::{Scrape, Value};
use vigil_core::exposition::{self, Format, MetricType, ParsedSample};

use super::inputs;

/// Every `.txt` scrape in the shared fixtures, or none (with a message) when absent.
fn litellm_scrapes() -> Vec<(String, String)> {
    let folder = inputs::litellm_fixture_dir();
    let Ok(entries) = std::fs::read_dir(&folder) else {
        eprintln!("skipping: {} is not here", folder.display());
        return Vec::new();
    };
    let mut scrapes: Vec<(String, String)> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "txt"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            (path.display().to_string(), text)
        })
        .collect();
    scrapes.sort();
    assert!(
        scrapes.len() >= 2,
        "expected the scrapes in {}",
        folder.display()
    );
    scrapes
}

fn n_sample_lines(text: &str) -> usize {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .count()
}

#[test]
fn real_litellm_scrapes_parse_without_losing_a_line() {
    for (path, text) in litellm_scrapes() {
        assert_eq!(exposition::detect_format(&text), Format::Text, "{path}");
        let parsed = exposition::parse(&text, Format::Text);
        assert!(parsed.errors.is_empty(), "{path}: {:?}", parsed.errors);
        assert_eq!(parsed.samples.len(), n_sample_lines(&text), "{path}");
        // Every family the scrape declares types its samples: no sample of a declared family
        // falls back to unknown.
        for sample in &parsed.samples {
            let declared = parsed
                .families
                .get(sample.family())
                .and_then(|meta| meta.metric_type);
            assert_eq!(declared, Some(sample.metric_type), "{path}: {sample:?}");
        }
        let tokens = parsed
            .samples
            .iter()
            .find(|sample| sample.name == "litellm_total_tokens_metric_total");
        assert_eq!(
            tokens.map(|sample| sample.metric_type),
            Some(MetricType::Counter),
            "{path}"
        );
        assert!(
            parsed
                .samples
                .iter()
                .any(|sample| sample.metric_type == MetricType::Histogram
                    && sample.name.ends_with("_bucket")
                    && sample.label("le").is_some()),
            "{path}: no histogram bucket"
        );
    }
}

/// A sample as both parsers state it, labels sorted, NaN made comparable.
fn comparable(
    name: &str,
    labels: BTreeMap<String, String>,
    value: f64,
) -> (String, BTreeMap<String, String>, u64) {
    let bits = if value.is_nan() {
        f64::NAN.to_bits()
    } else {
        value.to_bits()
    };
    (name.to_owned(), labels, bits)
}

#[test]
fn real_litellm_scrapes_agree_with_prometheus_parse() {
    for (path, text) in litellm_scrapes() {
        let lines = text.lines().map(|line| Ok(line.to_owned()));
        let theirs = Scrape::parse_at(lines, Default::default()).unwrap();
        // prometheus-parse folds histogram buckets and summary quantiles into grouped samples
        // and returns the other samples in order; compare those one for one.
        let theirs: Vec<_> = theirs
            .samples
            .iter()
            .filter_map(|sample| {
                let value = match sample.value {
                    Value::Counter(value) | Value::Gauge(value) | Value::Untyped(value) => value,
                    Value::Histogram(_) | Value::Summary(_) => return None,
                };
                let labels = sample
                    .labels
                    .iter()
                    .map(|(name, value)| (name.clone(), value.clone()))
                    .collect();
                Some(comparable(&sample.metric, labels, value))
            })
            .collect();
        let parsed = exposition::parse(&text, Format::Text);
        let is_grouped_by_them = |sample: &ParsedSample<'_>| {
            (sample.metric_type == MetricType::Histogram && sample.name.ends_with("_bucket"))
                || (sample.metric_type == MetricType::Summary && sample.label("quantile").is_some())
        };
        let ours: Vec<_> = parsed
            .samples
            .iter()
            .filter(|sample| !is_grouped_by_them(sample))
            .map(|sample| {
                let labels = sample
                    .labels
                    .iter()
                    .map(|(name, value)| (name.to_string(), value.to_string()))
                    .collect();
                comparable(&sample.name, labels, sample.value)
            })
            .collect();
        assert!(ours.len() > 20, "{path}: {} samples", ours.len());
        for (idx, (our, their)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(our, their, "{path}: sample {idx}");
        }
        assert_eq!(ours.len(), theirs.len(), "{path}");
    }
}

#[test]
fn the_synthetic_scrape_parses_cleanly_with_one_sample_per_series() {
    for colons in [true, false] {
        let synthetic = inputs::vllm_scrape(2_000, colons);
        assert!(synthetic.n_series >= 2_000);
        let parsed = exposition::parse(&synthetic.text, Format::Text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.samples.len(), synthetic.n_series);
        assert_eq!(n_sample_lines(&synthetic.text), synthetic.n_series);
        let prefix = if colons { "vllm:" } else { "vllm_" };
        let counter = format!("{prefix}prompt_tokens_total");
        let bucket = format!("{prefix}time_to_first_token_seconds_bucket");
        for sample in &parsed.samples {
            assert!(sample.name.starts_with(prefix), "{sample:?}");
            if sample.name == counter {
                assert_eq!(sample.metric_type, MetricType::Counter);
            }
            if sample.name == bucket {
                assert_eq!(sample.metric_type, MetricType::Histogram);
                assert!(sample.label("le").is_some());
            }
        }
    }
}
