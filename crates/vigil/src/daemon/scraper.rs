//! One task per source: scrape on an interval, parse, keep the metrics the engine reads, and
//! send the result to the engine. A slow or failing source never delays another.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigil_connectors::scrape::{self, ScrapeTarget};
use vigil_core::engine::Event;
use vigil_core::exposition;
use vigil_core::signal::{Labels, Sample};

use super::poll::poll;
use super::telemetry::Telemetry;
use crate::clock::Clock;
use crate::logsafe::Escaped;

/// How many malformed lines of one scrape are logged (all are counted).
const LOGGED_MALFORMED_LINES: usize = 3;

pub(super) struct Scraper {
    pub(super) target: ScrapeTarget,
    pub(super) interval: Duration,
    pub(super) metrics: BTreeSet<String>,
    pub(super) extra_labels: BTreeMap<String, String>,
    pub(super) client: reqwest::Client,
    pub(super) clock: Clock,
    pub(super) telemetry: Arc<Telemetry>,
    pub(super) permits: Arc<Semaphore>,
    pub(super) events: mpsc::Sender<Event>,
}

impl Scraper {
    pub(super) async fn run(self, cancel: CancellationToken) {
        poll(
            &self.target.name,
            self.interval,
            &self.permits,
            &self.events,
            &cancel,
            || self.scrape_once(),
        )
        .await;
    }

    async fn scrape_once(&self) -> Event {
        let scraped_at = self.clock.now();
        let started = Instant::now();
        let source = self.target.name.clone();
        match scrape::fetch(&self.client, &self.target).await {
            Ok(body) => {
                let decoded = exposition::decode(&body.body);
                let (format, _) =
                    exposition::choose_format(body.content_type.as_deref(), &decoded.text);
                let parsed = decoded.parse(format);
                for error in parsed.errors.iter().take(LOGGED_MALFORMED_LINES) {
                    tracing::warn!(source = %source, line = error.line, reason = %Escaped(&error.reason.to_string()), "malformed exposition line skipped");
                }
                let samples: Vec<Sample> = parsed
                    .samples
                    .iter()
                    .filter(|sample| self.metrics.contains(&*sample.name))
                    .map(|sample| Sample {
                        name: sample.name.to_string(),
                        labels: with_extra_labels(
                            sample
                                .labels
                                .iter()
                                .map(|(name, value)| (&**name, &**value)),
                            &self.extra_labels,
                        ),
                        value: sample.value,
                        timestamp_ms: sample.timestamp_ms,
                    })
                    .collect();
                self.telemetry.scrape_ok(
                    &source,
                    started.elapsed().as_secs_f64(),
                    parsed.samples.len(),
                    parsed.errors.len(),
                );
                Event::Scraped {
                    source,
                    scraped_at,
                    samples,
                }
            }
            Err(error) => {
                self.telemetry
                    .scrape_failed(&source, started.elapsed().as_secs_f64());
                tracing::warn!(source = %source, error = %Escaped(&error.to_string()), "scrape failed");
                Event::ScrapeFailed {
                    source,
                    error: error.to_string(),
                }
            }
        }
    }
}

/// The sample's labels plus the source's extra labels. As Prometheus does by default
/// (`honor_labels: false`), the source's label wins and a scraped label of the same name is
/// kept as `exported_<name>`.
fn with_extra_labels<'a>(
    scraped: impl Iterator<Item = (&'a str, &'a str)>,
    extra: &BTreeMap<String, String>,
) -> Labels {
    // Collected once (the last of a name wins, so the source's labels override): building a
    // label set label by label would copy it for every label.
    scraped
        .map(|(name, value)| {
            if extra.contains_key(name) {
                (format!("exported_{name}"), value)
            } else {
                (name.to_owned(), value)
            }
        })
        .chain(
            extra
                .iter()
                .map(|(name, value)| (name.clone(), value.as_str())),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_labels_win_and_scraped_ones_are_kept_as_exported() {
        let extra = BTreeMap::from([("cluster".to_owned(), "eu-1".to_owned())]);
        let labels =
            with_extra_labels([("cluster", "scraped"), ("model", "m")].into_iter(), &extra);
        assert_eq!(
            labels.to_string(),
            r#"{cluster="eu-1",exported_cluster="scraped",model="m"}"#
        );
        let plain = with_extra_labels([("model", "m")].into_iter(), &BTreeMap::new());
        assert_eq!(plain.to_string(), r#"{model="m"}"#);
    }

    // Real LiteLLM 1.106.2 scrapes (shared evaluation data, not in the repository): every
    // sample line must parse, none may be dropped.
    #[test]
    fn real_litellm_scrapes_parse_without_losing_a_line() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/litellm-1.106.2");
        let Ok(entries) = std::fs::read_dir(&folder) else {
            eprintln!("skipping: {} is not here", folder.display());
            return;
        };
        let mut n_files = 0;
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|ext| ext != "txt") {
                continue;
            }
            n_files += 1;
            let text = std::fs::read_to_string(&path).unwrap();
            let parsed = exposition::parse_text(&text);
            assert!(
                parsed.errors.is_empty(),
                "{}: {:?}",
                path.display(),
                parsed.errors
            );
            let n_sample_lines = text
                .lines()
                .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
                .count();
            assert_eq!(parsed.samples.len(), n_sample_lines, "{}", path.display());
            assert!(
                parsed
                    .samples
                    .iter()
                    .any(|sample| sample.name == "litellm_total_tokens_metric_total")
            );
        }
        assert!(
            n_files >= 2,
            "expected the fixture scrapes in {}",
            folder.display()
        );
    }
}
