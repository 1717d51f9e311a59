//! A Prometheus histogram with fixed buckets: cumulative counts per upper bound, a sum and
//! a count, rendered as `NAME_bucket{le=...}`, `NAME_sum` and `NAME_count`.

use std::fmt::Write as _;
use std::time::Duration;

/// Ledger appends: a local SQLite fsync takes a millisecond or so, a PostgreSQL commit over a
/// network a few; past a second something is wrong.
pub(super) const APPEND_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Cedar decisions: tens of microseconds for a small policy set.
pub(super) const AUTHORIZATION_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.1,
];

/// Observations counted per bucket.
#[derive(Debug, Clone)]
pub(super) struct Histogram {
    bounds: &'static [f64],
    /// Observations at or under each bound (not cumulative; summed when rendered).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    pub(super) fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    pub(super) fn observe(&mut self, took: Duration) {
        let seconds = took.as_secs_f64();
        self.sum += seconds;
        self.count = self.count.saturating_add(1);
        // Past the last bound it counts only in `+Inf`, which is the count.
        if let Some(slot) = self
            .bounds
            .iter()
            .position(|bound| seconds <= *bound)
            .and_then(|idx| self.counts.get_mut(idx))
        {
            *slot = slot.saturating_add(1);
        }
    }

    /// Appends the family (`# HELP`, `# TYPE histogram`, the buckets, sum and count).
    pub(super) fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0_u64;
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            cumulative = cumulative.saturating_add(*count);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_the_overflow_counts_only_in_inf() {
        let mut histogram = Histogram::new(&[0.01, 0.1]);
        for millis in [5, 10, 50, 2_000] {
            histogram.observe(Duration::from_millis(millis));
        }
        let mut out = String::new();
        histogram.render(&mut out, "x_seconds", "X.");
        assert_eq!(
            out,
            "# HELP x_seconds X.\n# TYPE x_seconds histogram\n\
             x_seconds_bucket{le=\"0.01\"} 2\n\
             x_seconds_bucket{le=\"0.1\"} 3\n\
             x_seconds_bucket{le=\"+Inf\"} 4\n\
             x_seconds_sum 2.065\n\
             x_seconds_count 4\n"
        );
    }
}
