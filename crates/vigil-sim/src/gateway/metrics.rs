//! Counter and gauge families as `prometheus_client` keeps and renders them: series in
//! insertion order, `_total` plus `_created` for counters, `"None"` for missing labels.

use std::collections::HashMap;

use crate::prom::{write_header, write_sample};

/// How many series one family may hold; past this, new series are dropped so that label
/// values chosen by clients (models, user agents, keys) cannot grow memory without bound.
const MAX_SERIES_PER_FAMILY: usize = 4096;

/// The label values of one request, looked up by LiteLLM label name.
///
/// Every label a family names but the request lacks reads `"None"`, as in LiteLLM.
#[derive(Debug, Clone, Default)]
pub(crate) struct Labels {
    values: HashMap<&'static str, String>,
}

impl Labels {
    /// Sets one label value.
    pub(crate) fn set(&mut self, name: &'static str, value: impl Into<String>) -> &mut Self {
        self.values.insert(name, value.into());
        self
    }

    /// The value of one label, if set.
    pub(crate) fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }

    /// The values for `names`, in that order.
    fn values_for(&self, names: &[&str]) -> Vec<String> {
        names
            .iter()
            .map(|name| {
                self.values
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "None".to_owned())
            })
            .collect()
    }
}

#[derive(Debug)]
struct Series {
    labels: Vec<String>,
    value: f64,
    created_unix: f64,
}

/// A family of series in insertion order, as `prometheus_client` keeps them.
#[derive(Debug)]
struct SeriesSet {
    series: Vec<Series>,
    index: HashMap<Vec<String>, usize>,
}

impl SeriesSet {
    fn new() -> Self {
        Self {
            series: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The series for `labels`, created with `initial` if new; `None` when the family is full.
    fn entry(&mut self, labels: Vec<String>, now_unix: f64, initial: f64) -> Option<&mut Series> {
        let position = match self.index.get(&labels) {
            Some(position) => *position,
            None => {
                if self.series.len() >= MAX_SERIES_PER_FAMILY {
                    return None;
                }
                let position = self.series.len();
                self.index.insert(labels.clone(), position);
                self.series.push(Series {
                    labels,
                    value: initial,
                    created_unix: now_unix,
                });
                position
            }
        };
        self.series.get_mut(position)
    }
}

/// A counter: exposed as `<name>_total` plus a `<name>_created` gauge per series.
#[derive(Debug)]
pub(crate) struct CounterFamily {
    base_name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    series: SeriesSet,
}

impl CounterFamily {
    pub(crate) fn new(
        base_name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
    ) -> Self {
        Self {
            base_name,
            help,
            label_names,
            series: SeriesSet::new(),
        }
    }

    /// Adds `amount` to the series named by `labels`.
    pub(crate) fn inc(&mut self, labels: &Labels, amount: f64, now_unix: f64) {
        let values = labels.values_for(self.label_names);
        if let Some(series) = self.series.entry(values, now_unix, 0.0) {
            series.value += amount;
        }
    }

    pub(crate) fn render(&self, out: &mut String) {
        let total = format!("{}_total", self.base_name);
        write_header(out, &total, self.help, "counter");
        for series in &self.series.series {
            write_sample(out, &total, self.label_names, &series.labels, series.value);
        }
        // prometheus_client writes the `_created` family only when it has samples.
        if self.series.series.is_empty() {
            return;
        }
        let created = format!("{}_created", self.base_name);
        write_header(out, &created, self.help, "gauge");
        for series in &self.series.series {
            write_sample(
                out,
                &created,
                self.label_names,
                &series.labels,
                series.created_unix,
            );
        }
    }
}

/// A gauge: one value per series.
#[derive(Debug)]
pub(crate) struct GaugeFamily {
    name: &'static str,
    help: &'static str,
    label_names: &'static [&'static str],
    series: SeriesSet,
}

impl GaugeFamily {
    pub(crate) fn new(
        name: &'static str,
        help: &'static str,
        label_names: &'static [&'static str],
    ) -> Self {
        Self {
            name,
            help,
            label_names,
            series: SeriesSet::new(),
        }
    }

    /// Sets the series named by `labels` to `value`.
    pub(crate) fn set(&mut self, labels: &Labels, value: f64, now_unix: f64) {
        let values = labels.values_for(self.label_names);
        if let Some(series) = self.series.entry(values, now_unix, value) {
            series.value = value;
        }
    }

    pub(crate) fn render(&self, out: &mut String) {
        write_header(out, self.name, self.help, "gauge");
        for series in &self.series.series {
            write_sample(
                out,
                self.name,
                self.label_names,
                &series.labels,
                series.value,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_labels_read_none_and_families_are_bounded() {
        let mut family = CounterFamily::new("x", "help", &["a", "b"]);
        let mut labels = Labels::default();
        labels.set("a", "1");
        family.inc(&labels, 2.0, 10.0);
        let mut out = String::new();
        family.render(&mut out);
        assert!(out.contains("x_total{a=\"1\",b=\"None\"} 2.0\n"), "{out}");
        assert!(
            out.contains("x_created{a=\"1\",b=\"None\"} 10.0\n"),
            "{out}"
        );
        for idx in 0..(MAX_SERIES_PER_FAMILY + 10) {
            labels.set("b", idx.to_string());
            family.inc(&labels, 1.0, 10.0);
        }
        assert_eq!(family.series.series.len(), MAX_SERIES_PER_FAMILY);
    }

    #[test]
    fn an_empty_counter_has_no_created_family() {
        let family = CounterFamily::new("x", "help", &["a"]);
        let mut out = String::new();
        family.render(&mut out);
        assert_eq!(out, "# HELP x_total help\n# TYPE x_total counter\n");
    }
}
