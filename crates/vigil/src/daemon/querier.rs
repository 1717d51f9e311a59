//! One task per PromQL query: evaluate it against Prometheus on an interval and send the
//! result series to the engine as the query's source. A slow or failing Prometheus never
//! delays a scrape.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use vigil_connectors::prometheus::{QueryClient, QueryResult};
use vigil_core::engine::Event;
use vigil_core::signal::{Labels, Sample};

use super::poll::poll;
use super::telemetry::Telemetry;
use crate::clock::Clock;
use crate::logsafe::Escaped;

pub(super) struct Querier {
    pub(super) name: String,
    pub(super) promql: String,
    pub(super) metric: String,
    pub(super) range: Option<(Duration, Duration)>,
    pub(super) interval: Duration,
    pub(super) client: QueryClient,
    pub(super) clock: Clock,
    pub(super) telemetry: Arc<Telemetry>,
    pub(super) permits: Arc<Semaphore>,
    pub(super) events: mpsc::Sender<Event>,
}

impl Querier {
    pub(super) async fn run(self, cancel: CancellationToken) {
        poll(
            &self.name,
            self.interval,
            &self.permits,
            &self.events,
            &cancel,
            || self.evaluate_once(),
        )
        .await;
    }

    async fn evaluate_once(&self) -> Event {
        let evaluated_at = self.clock.now();
        let started = Instant::now();
        let result = match self.range {
            None => {
                self.client
                    .instant(&self.promql, Some(evaluated_at.0))
                    .await
            }
            Some((lookback, step)) => {
                let lookback_ms = i64::try_from(lookback.as_millis()).unwrap_or(i64::MAX);
                let step_ms = i64::try_from(step.as_millis()).unwrap_or(i64::MAX);
                let start_ms = evaluated_at.0.saturating_sub(lookback_ms);
                self.client
                    .range(&self.promql, start_ms, evaluated_at.0, step_ms)
                    .await
            }
        };
        match result {
            Ok(result) => {
                for warning in result.warnings.iter().take(3) {
                    tracing::warn!(query = %self.name, warning = %Escaped(&warning.to_string()), "Prometheus warned about a query");
                }
                let samples = samples_of(&result, &self.metric);
                self.telemetry.scrape_ok(
                    &self.name,
                    started.elapsed().as_secs_f64(),
                    samples.len(),
                    0,
                );
                Event::Queried {
                    source: self.name.clone(),
                    evaluated_at,
                    range: self.range.is_some(),
                    samples,
                }
            }
            Err(error) => {
                self.telemetry
                    .scrape_failed(&self.name, started.elapsed().as_secs_f64());
                tracing::warn!(query = %self.name, error = %Escaped(&error.to_string()), "query failed");
                Event::ScrapeFailed {
                    source: self.name.clone(),
                    error: error.to_string(),
                }
            }
        }
    }
}

/// Turns result series into samples: `__name__` becomes the name (or `metric` when the query
/// dropped it), every point keeps its own timestamp. A string result has no series.
fn samples_of(result: &QueryResult, metric: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for series in &result.series {
        let name = series.labels.get("__name__").map_or(metric, String::as_str);
        let labels: Labels = series
            .labels
            .iter()
            .filter(|(label, _)| label.as_str() != "__name__")
            .map(|(label, value)| (label.as_str(), value.as_str()))
            .collect();
        for (at_ms, value) in &series.points {
            samples.push(Sample {
                name: name.to_owned(),
                labels: labels.clone(),
                value: *value,
                timestamp_ms: Some(*at_ms),
            });
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use vigil_connectors::prometheus::{QuerySeries, ResultKind};

    use super::*;

    #[test]
    fn result_series_become_samples_named_by_name_or_the_query_metric() {
        let result = QueryResult {
            kind: ResultKind::Matrix,
            series: vec![
                QuerySeries {
                    labels: BTreeMap::from([
                        ("__name__".to_owned(), "up".to_owned()),
                        ("job".to_owned(), "gw".to_owned()),
                    ]),
                    points: vec![(1000, 1.0), (2000, 0.0)],
                },
                QuerySeries {
                    labels: BTreeMap::from([("team".to_owned(), "search".to_owned())]),
                    points: vec![(2000, f64::NAN)],
                },
            ],
            string: None,
            warnings: vec![],
            infos: vec![],
        };
        let rendered: Vec<String> = samples_of(&result, "token_rate")
            .iter()
            .map(|sample| {
                format!(
                    "{}{} {} @{:?}",
                    sample.name, sample.labels, sample.value, sample.timestamp_ms
                )
            })
            .collect();
        assert_eq!(
            rendered,
            vec![
                "up{job=\"gw\"} 1 @Some(1000)",
                "up{job=\"gw\"} 0 @Some(2000)",
                "token_rate{team=\"search\"} NaN @Some(2000)",
            ]
        );
    }
}
