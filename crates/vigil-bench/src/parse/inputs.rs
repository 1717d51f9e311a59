//! The expositions the parse benchmark runs on: the real LiteLLM scrape when the shared
//! fixtures are present, and a synthetic vLLM-style scrape generated here.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Where the real LiteLLM 1.106.2 scrapes live: `../shared/fixtures/litellm-1.106.2` beside the
/// repository (shared evaluation data, never committed).
pub(crate) fn litellm_fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/litellm-1.106.2")
}

/// Histogram bucket bounds as vLLM declares them, rendered as prometheus_client does.
const TTFT_BUCKETS: &[&str] = &[
    "0.001", "0.005", "0.01", "0.02", "0.04", "0.06", "0.08", "0.1", "0.25", "0.5", "0.75", "1.0",
    "2.5", "5.0", "7.5", "10.0", "20.0", "40.0", "80.0", "160.0", "640.0", "2560.0", "+Inf",
];
const E2E_BUCKETS: &[&str] = &[
    "0.3", "0.5", "0.8", "1.0", "1.5", "2.0", "2.5", "5.0", "10.0", "15.0", "20.0", "30.0", "40.0",
    "50.0", "60.0", "120.0", "240.0", "480.0", "960.0", "1920.0", "7680.0", "+Inf",
];
const FINISHED_REASONS: &[&str] = &["stop", "length", "abort", "error"];
const ENGINES_PER_MODEL: usize = 8;

/// The series one (model, engine) pair exposes below: 3 gauges, 2 counters with their
/// `_created`, 4 finished reasons with theirs, and two histograms with `_count`, `_sum` and
/// `_created`.
const SERIES_PER_ENGINE: usize =
    3 + 2 * 2 + FINISHED_REASONS.len() * 2 + (TTFT_BUCKETS.len() + 3) + (E2E_BUCKETS.len() + 3);

/// A synthetic exposition and how many series (sample lines) it has.
pub(crate) struct Synthetic {
    pub(crate) text: String,
    pub(crate) n_series: usize,
}

/// A small deterministic generator for plausible values.
struct Values(u64);

impl Values {
    fn next(&mut self) -> u64 {
        // Knuth's MMIX linear congruential generator; the high bits are good enough here.
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn count(&mut self) -> String {
        format!("{}.0", self.next() % 100_000)
    }

    fn seconds(&mut self) -> String {
        format!("{}.{:06}", self.next() % 50_000, self.next() % 1_000_000)
    }

    fn created(&mut self) -> String {
        format!("1.75432{:08}e+09", self.next() % 100_000_000)
    }
}

/// A vLLM-style scrape as prometheus_client writes it, with at least `min_series` series:
/// colons in names (`vllm:prompt_tokens_total`), `model_name` and `engine` labels, counters
/// with a separate `_created` gauge family, histograms with `le` buckets. With
/// `colons: false`, every `vllm:` becomes `vllm_` (for parsers that drop colon names).
pub(crate) fn vllm_scrape(min_series: usize, colons: bool) -> Synthetic {
    let n_pairs = min_series.div_ceil(SERIES_PER_ENGINE);
    let pairs: Vec<String> = (0..n_pairs)
        .map(|idx| {
            let model = idx / ENGINES_PER_MODEL;
            format!(
                "engine=\"{}\",model_name=\"org-{}/llama-3.1-{}b-instruct-v{model}\"",
                idx % ENGINES_PER_MODEL,
                model % 37,
                match model % 3 {
                    0 => 8,
                    1 => 70,
                    _ => 405,
                },
            )
        })
        .collect();
    let prefix = if colons { "vllm:" } else { "vllm_" };
    let mut values = Values(0x5EED);
    let mut out = String::with_capacity(n_pairs * SERIES_PER_ENGINE * 110);
    let mut n_series = 0;
    let family = |out: &mut String, name: &str, help: &str, kind: &str| {
        let _ = writeln!(out, "# HELP {prefix}{name} {help}");
        let _ = writeln!(out, "# TYPE {prefix}{name} {kind}");
    };

    for (name, help) in [
        (
            "num_requests_running",
            "Number of requests in model execution batches.",
        ),
        (
            "num_requests_waiting",
            "Number of requests waiting to be processed.",
        ),
        (
            "kv_cache_usage_perc",
            "KV-cache usage. 1 means 100 percent usage.",
        ),
    ] {
        family(&mut out, name, help, "gauge");
        for labels in &pairs {
            let _ = writeln!(out, "{prefix}{name}{{{labels}}} {}", values.count());
            n_series += 1;
        }
    }
    for (name, help, reasons) in [
        (
            "prompt_tokens",
            "Number of prefill tokens processed.",
            &[][..],
        ),
        (
            "generation_tokens",
            "Number of generation tokens processed.",
            &[][..],
        ),
        (
            "request_success",
            "Count of successfully processed requests.",
            FINISHED_REASONS,
        ),
    ] {
        for (suffix, kind) in [("_total", "counter"), ("_created", "gauge")] {
            family(&mut out, &format!("{name}{suffix}"), help, kind);
            for labels in &pairs {
                let reasons: Vec<String> = if reasons.is_empty() {
                    vec![String::new()]
                } else {
                    reasons
                        .iter()
                        .map(|reason| format!(",finished_reason=\"{reason}\""))
                        .collect()
                };
                for reason in reasons {
                    let value = if kind == "counter" {
                        values.count()
                    } else {
                        values.created()
                    };
                    let _ = writeln!(out, "{prefix}{name}{suffix}{{{labels}{reason}}} {value}");
                    n_series += 1;
                }
            }
        }
    }
    for (name, help, buckets) in [
        (
            "time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            TTFT_BUCKETS,
        ),
        (
            "e2e_request_latency_seconds",
            "Histogram of end to end request latency in seconds.",
            E2E_BUCKETS,
        ),
    ] {
        family(&mut out, name, help, "histogram");
        for labels in &pairs {
            let mut cumulative = 0;
            for bound in buckets {
                cumulative += values.next() % 50;
                let _ = writeln!(
                    out,
                    "{prefix}{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}.0"
                );
            }
            let _ = writeln!(out, "{prefix}{name}_count{{{labels}}} {cumulative}.0");
            let _ = writeln!(out, "{prefix}{name}_sum{{{labels}}} {}", values.seconds());
            n_series += buckets.len() + 2;
        }
        family(&mut out, &format!("{name}_created"), help, "gauge");
        for labels in &pairs {
            let _ = writeln!(
                out,
                "{prefix}{name}_created{{{labels}}} {}",
                values.created()
            );
            n_series += 1;
        }
    }
    Synthetic {
        text: out,
        n_series,
    }
}
