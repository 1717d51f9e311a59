//! The false-positive check on real LLM traffic: the Azure LLM inference trace (one hour of
//! requests of a code and a conversation service, Patel et al., ISCA 2024) replayed as
//! per-minute token counters through the engine's spike detector with its shipped thresholds,
//! and as per-10-second token totals through the adaptive detector (whose shipped warm-up of
//! 100 points is longer than the hour's 60 minutes). The trace has no incident, so every
//! finding is a false positive.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context as _, bail};
use vigil_core::detector::Transition;
use vigil_core::detector::adaptive::{AdaptiveConfig, AdaptiveDetector, Direction};
use vigil_core::detector::spike::{SeriesRead, SpikeConfig, SpikeDetector, SpikeThresholds};
use vigil_core::signal::{Labels, Sample};
use vigil_core::store::{SeriesStore, StoreConfig};
use vigil_core::time::Timestamp;

/// The trace's two services and their files.
const SERVICES: [(&str, &str); 2] = [
    ("code", "AzureLLMInferenceTrace_code.csv"),
    ("conversation", "AzureLLMInferenceTrace_conv.csv"),
];

const MINUTE_MS: i64 = 60_000;

/// The adaptive detector's bucket.
const ADAPTIVE_BUCKET_MS: i64 = 10_000;

/// One service's tokens (context plus generated) per bucket, from its first bucket on.
#[derive(Debug, Clone, PartialEq)]
pub struct MinuteTokens {
    /// The start of the first bucket, in Unix milliseconds.
    pub first_minute_ms: i64,
    /// The bucket width, in milliseconds.
    pub bucket_ms: i64,
    /// Tokens in each bucket, empty buckets included.
    pub tokens: Vec<f64>,
}

/// Reads one trace file (`TIMESTAMP,ContextTokens,GeneratedTokens`) into per-minute totals.
///
/// # Errors
/// A row that is not three fields of a timestamp and two token counts, named by its line.
pub fn per_minute(text: &str, file: &str) -> anyhow::Result<MinuteTokens> {
    per_bucket(text, file, MINUTE_MS)
}

/// Reads one trace file into totals per `bucket_ms`.
///
/// # Errors
/// As [`per_minute`].
pub fn per_bucket(text: &str, file: &str, bucket_ms: i64) -> anyhow::Result<MinuteTokens> {
    let mut by_minute: Vec<(i64, f64)> = Vec::new();
    for (index, line) in text.lines().enumerate().skip(1) {
        let number = index + 1;
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let [timestamp, context, generated] = fields.as_slice() else {
            bail!("{file}:{number}: expected TIMESTAMP,ContextTokens,GeneratedTokens");
        };
        // The trace gives 100 ns digits; a minute bucket needs none of them.
        let millis_only = match timestamp.split_once('.') {
            Some((whole, fraction)) => format!("{whole}.{}", fraction.get(..3).unwrap_or(fraction)),
            None => (*timestamp).to_owned(),
        };
        let at_ms = vigil_core::datetime::parse_timestamp_ms(&millis_only)
            .with_context(|| format!("{file}:{number}"))?;
        let count = |text: &str, what: &str| -> anyhow::Result<f64> {
            text.trim()
                .parse::<u64>()
                .map(|n| n as f64)
                .with_context(|| format!("{file}:{number}: {what} `{text}` is not a count"))
        };
        let tokens = count(context, "ContextTokens")? + count(generated, "GeneratedTokens")?;
        let minute = at_ms.div_euclid(bucket_ms) * bucket_ms;
        match by_minute.last_mut() {
            Some((last, total)) if *last == minute => *total += tokens,
            Some((last, _)) if *last > minute => {
                bail!("{file}:{number}: timestamp `{timestamp}` goes back in time")
            }
            _ => by_minute.push((minute, tokens)),
        }
    }
    let Some(&(first_minute_ms, _)) = by_minute.first() else {
        bail!("{file}: no rows");
    };
    let n_minutes = by_minute
        .last()
        .map_or(0, |(last, _)| (last - first_minute_ms) / bucket_ms + 1);
    let mut tokens = vec![0.0; usize::try_from(n_minutes).unwrap_or(0)];
    for (minute, total) in by_minute {
        let slot = usize::try_from((minute - first_minute_ms) / bucket_ms).unwrap_or(0);
        if let Some(cell) = tokens.get_mut(slot) {
            *cell = total;
        }
    }
    Ok(MinuteTokens {
        first_minute_ms,
        bucket_ms,
        tokens,
    })
}

/// What each detector made of one service's hour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replay {
    /// Spike findings raised by the engine's spike detector (shipped thresholds).
    pub spike_findings: usize,
    /// Alerts of the adaptive detector (shipped settings, rises only).
    pub adaptive_alerts: usize,
}

/// Replays per-minute totals as a token counter scraped at the end of each minute through the
/// spike detector, and `fine` (shorter buckets) through the adaptive detector.
#[must_use]
pub fn replay(service: &str, minutes: &MinuteTokens, fine: &MinuteTokens) -> Replay {
    let mut store = SeriesStore::new(StoreConfig::default());
    let mut spike = SpikeDetector::new(SpikeConfig {
        name: "token-spike".to_owned(),
        source: "azure".to_owned(),
        metric: "tokens_total".to_owned(),
        read: SeriesRead::CounterRate,
        unit: Default::default(),
        group_by: "service".to_owned(),
        alias_label: None,
        team_label: None,
        ignore_values: Vec::new(),
        max_groups: 10,
        thresholds: SpikeThresholds::default(),
    });
    let mut adaptive = AdaptiveDetector::new(AdaptiveConfig {
        direction: Direction::Up,
        ..AdaptiveConfig::default()
    });
    let mut counter = 0.0;
    let mut result = Replay {
        spike_findings: 0,
        adaptive_alerts: 0,
    };
    for (index, tokens) in minutes.tokens.iter().enumerate() {
        let minute_end = minutes.first_minute_ms + (index as i64 + 1) * minutes.bucket_ms;
        let at = Timestamp(minute_end);
        counter += tokens;
        let sample = Sample {
            name: "tokens_total".to_owned(),
            labels: Labels::from_iter([("service", service)]),
            value: counter,
            timestamp_ms: None,
        };
        store.ingest("azure", at, std::slice::from_ref(&sample));
        result.spike_findings += spike
            .observe(at, &store)
            .iter()
            .filter(|transition| matches!(transition, Transition::Fired(_)))
            .count();
    }
    for (index, tokens) in fine.tokens.iter().enumerate() {
        let bucket_end = fine.first_minute_ms + (index as i64 + 1) * fine.bucket_ms;
        result.adaptive_alerts += usize::from(adaptive.step(Timestamp(bucket_end), *tokens).alert);
    }
    result
}

/// Runs both services of the trace folder and renders the report.
///
/// # Errors
/// A missing or malformed file.
pub fn run(folder: &Path) -> anyhow::Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Azure LLM inference trace 2023, replayed as per-minute token counters (no incident: every finding is a false positive)\n"
    );
    let _ = writeln!(
        out,
        "{:<14}{:>8}{:>14}{:>14}{:>10}{:>16}{:>23}",
        "service",
        "minutes",
        "tokens/min",
        "max/min",
        "max/mean",
        "spike findings",
        "adaptive alerts (10 s)"
    );
    let mut total = Replay {
        spike_findings: 0,
        adaptive_alerts: 0,
    };
    for (service, file) in SERVICES {
        let path = folder.join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read `{}`", path.display()))?;
        let minutes = per_minute(&text, file)?;
        let fine = per_bucket(&text, file, ADAPTIVE_BUCKET_MS)?;
        let replayed = replay(service, &minutes, &fine);
        let n = minutes.tokens.len().max(1) as f64;
        let mean = minutes.tokens.iter().sum::<f64>() / n;
        let max = minutes.tokens.iter().copied().fold(0.0_f64, f64::max);
        let _ = writeln!(
            out,
            "{service:<14}{:>8}{mean:>14.0}{max:>14.0}{:>10.2}{:>16}{:>23}",
            minutes.tokens.len(),
            max / mean.max(f64::MIN_POSITIVE),
            replayed.spike_findings,
            replayed.adaptive_alerts
        );
        total.spike_findings += replayed.spike_findings;
        total.adaptive_alerts += replayed.adaptive_alerts;
    }
    let _ = writeln!(
        out,
        "\nfalse positives: {} spike findings, {} adaptive alerts",
        total.spike_findings, total.adaptive_alerts
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_summed_per_minute_with_empty_minutes_kept() {
        let text = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
                    2023-11-16 18:17:03.9799600,4808,10\n\
                    2023-11-16 18:17:59.0000001,100,1\n\
                    2023-11-16 18:19:00.5,7,3\n";
        let minutes = per_minute(text, "t.csv").unwrap();
        assert_eq!(minutes.tokens, [4919.0, 0.0, 10.0]);
        let fine = per_bucket(text, "t.csv", 10_000).unwrap();
        assert_eq!(fine.tokens.len(), 13);
        assert_eq!(
            (fine.tokens[0], fine.tokens[5], fine.tokens[12]),
            (4818.0, 101.0, 10.0)
        );
        assert_eq!(
            Timestamp(minutes.first_minute_ms).to_rfc3339(),
            "2023-11-16T18:17:00.000Z"
        );
    }

    #[test]
    fn bad_rows_are_named_by_file_and_line() {
        for (row, expected) in [
            ("2023-11-16 18:17:03,12", "t.csv:2: expected"),
            (
                "2023-11-16 18:17:03,x,1",
                "t.csv:2: ContextTokens `x` is not a count",
            ),
            ("yesterday,1,1", "t.csv:2"),
        ] {
            let text = format!("TIMESTAMP,ContextTokens,GeneratedTokens\n{row}\n");
            let error = format!("{:#}", per_minute(&text, "t.csv").unwrap_err());
            assert!(error.starts_with(expected), "{row}: {error}");
        }
    }

    #[test]
    fn a_real_spike_in_the_replay_is_found_so_a_zero_count_means_something() {
        // Steady traffic with a little wobble, then two minutes at 20 times normal.
        let steady = |n: usize, bucket_ms: i64, per_bucket: f64| MinuteTokens {
            first_minute_ms: 1_700_000_000_000,
            bucket_ms,
            tokens: (0..n)
                .map(|i| per_bucket * (1.0 + f64::from(u8::try_from(i % 7).unwrap()) / 60.0))
                .collect(),
        };
        let (minutes, fine) = (
            steady(60, MINUTE_MS, 60_000.0),
            steady(360, 10_000, 10_000.0),
        );
        assert_eq!(
            replay("code", &minutes, &fine),
            Replay {
                spike_findings: 0,
                adaptive_alerts: 0
            }
        );
        let mut spiky_minutes = minutes.clone();
        spiky_minutes.tokens[45] *= 20.0;
        spiky_minutes.tokens[46] *= 20.0;
        let mut spiky_fine = fine.clone();
        for bucket in &mut spiky_fine.tokens[270..282] {
            *bucket *= 20.0;
        }
        assert_eq!(
            replay("code", &spiky_minutes, &spiky_fine),
            Replay {
                spike_findings: 1,
                adaptive_alerts: 1
            }
        );
    }
}
